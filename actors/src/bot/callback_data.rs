//! What an inline button's `callback_data` asks for. The data comes back
//! from the client, so it is input like any other: ids must be positive,
//! page and gallery positions small enough that arithmetic on them cannot
//! overflow; anything else is no button of ours.

use crate::jobs::kinds::DigestKind;

/// Beyond any real gallery or history; keeps `page * PAGE` far from overflow.
pub const MAX_POSITION: i64 = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Callback<'a> {
    Menu(&'a str),
    AvatarNew,
    AvatarTrain(i64),
    AvatarCancel(i64),
    AvatarMain(i64),
    AvatarStatus(i64),
    Gender(&'a str),
    Regenerate(i64),
    Favourite(i64),
    Delete(i64),
    Gallery(i64),
    Aspect(&'a str),
    History(i64),
    Transcript(i64),
    Digest(DigestKind, i64),
    /// A coin package, by its place in `payments.packages`.
    TopUp(usize),
    /// The language recordings are in (`auto` or an ISO-639-1 code).
    Spoken(&'a str),
    /// A transcript as a file: `srt`, `vtt`, `txt`, or `none` (no timing).
    Subtitles(&'a str, i64),
    /// `/deletemydata` confirmed (true) or called off.
    Forget(bool),
}

fn id(s: &str) -> Option<i64> {
    s.parse::<i64>().ok().filter(|n| *n > 0)
}

fn position(s: &str) -> Option<i64> {
    s.parse::<i64>().ok().filter(|n| (0..=MAX_POSITION).contains(n))
}

impl<'a> Callback<'a> {
    pub fn parse(data: &'a str) -> Option<Self> {
        let mut parts = data.split(':');
        let parsed = match (parts.next()?, parts.next(), parts.next(), parts.next()) {
            ("menu", Some(item), None, None) => Callback::Menu(item),
            ("avatar", Some("new"), None, None) => Callback::AvatarNew,
            ("avatar", Some("train"), Some(n), None) => Callback::AvatarTrain(id(n)?),
            ("avatar", Some("cancel"), Some(n), None) => Callback::AvatarCancel(id(n)?),
            ("avatar", Some("main"), Some(n), None) => Callback::AvatarMain(id(n)?),
            ("avatar", Some(n), None, None) => Callback::AvatarStatus(id(n)?),
            ("gender", Some(g @ ("man" | "woman")), None, None) => Callback::Gender(g),
            ("regen", Some(n), None, None) => Callback::Regenerate(id(n)?),
            ("fav", Some(n), None, None) => Callback::Favourite(id(n)?),
            ("del", Some(n), None, None) => Callback::Delete(id(n)?),
            ("gal", Some(n), None, None) => Callback::Gallery(position(n)?),
            ("aspect", Some(a), None, None) => Callback::Aspect(a),
            ("history", Some(n), None, None) => Callback::History(position(n)?),
            ("transcript", Some(n), None, None) => Callback::Transcript(id(n)?),
            ("digest", Some(kind), Some(n), None) => Callback::Digest(DigestKind::parse(kind)?, id(n)?),
            ("spoken", Some(code), None, None) if code.len() <= 8 => Callback::Spoken(code),
            ("subs", Some(f @ ("srt" | "vtt" | "txt" | "none")), Some(n), None) => Callback::Subtitles(f, id(n)?),
            ("forget", Some("yes"), None, None) => Callback::Forget(true),
            ("forget", Some("no"), None, None) => Callback::Forget(false),
            ("topup", Some(n), None, None) => Callback::TopUp(n.parse::<usize>().ok().filter(|i| *i < 100)?),
            _ => return None,
        };
        Some(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_buttons_parse() {
        assert_eq!(Callback::parse("history:2"), Some(Callback::History(2)));
        assert_eq!(Callback::parse("digest:summary:7"), Some(Callback::Digest(DigestKind::Summary, 7)));
        assert_eq!(Callback::parse("menu:balance"), Some(Callback::Menu("balance")));
        assert_eq!(Callback::parse("avatar:12"), Some(Callback::AvatarStatus(12)));
        assert_eq!(Callback::parse("subs:srt:5"), Some(Callback::Subtitles("srt", 5)));
        assert_eq!(Callback::parse("spoken:kk"), Some(Callback::Spoken("kk")));
        assert_eq!(Callback::parse("forget:yes"), Some(Callback::Forget(true)));
    }

    #[test]
    fn forged_numbers_are_no_button_of_ours() {
        for forged in [
            "history:-1",
            "history:9223372036854775807",
            "history:99999999999999999999",
            "gal:-5",
            "transcript:0",
            "transcript:-3",
            "del:abc",
            "regen:",
            "digest:poem:1",
            "subs:exe:1",
            "subs:srt:-1",
            "forget:maybe",
            "history:1:extra",
            "",
        ] {
            assert_eq!(Callback::parse(forged), None, "{forged}");
        }
    }
}
