//! What an inline button's `callback_data` asks for, typed both ways: every
//! button is made from a [`Callback`] (`button`) and every press read back
//! into one (`Callback::parse`), so the two cannot drift apart. The data
//! comes back from the client, so it is input like any other: ids must be
//! positive, page and gallery positions small enough that arithmetic on
//! them cannot overflow; anything else is no button of ours.

use std::fmt;

use serde::{Deserialize, Serialize};
use teloxide::types::InlineKeyboardButton;

use super::command::Command;

/// What a transcript's digest buttons ask for (and its job carries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DigestKind {
    Summary,
    Actions,
    Minutes,
}

impl DigestKind {
    pub const ALL: [DigestKind; 3] = [DigestKind::Summary, DigestKind::Actions, DigestKind::Minutes];

    pub fn as_str(self) -> &'static str {
        match self {
            DigestKind::Summary => "summary",
            DigestKind::Actions => "actions",
            DigestKind::Minutes => "minutes",
        }
    }

    pub fn parse(name: &str) -> Option<DigestKind> {
        DigestKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// Beyond any real gallery or history; keeps `page * PAGE` far from overflow.
pub const MAX_POSITION: i64 = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Callback<'a> {
    Menu(MenuItem),
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
    /// Speakers in every recording, turned on (true) or off, in `/settings`.
    Speakers(bool),
    /// "Who said what" under a transcript: its price asked (false), then
    /// confirmed (true) and charged.
    WhoSaidWhat(i64, bool),
    /// A link's recording transcribed at the price just told.
    Link(i64),
    /// "🌐 Translate" under a transcript: the languages, with the price.
    Translate(i64),
    /// The transcript into this language (an ISO-639-1 code): charged.
    TranslateTo(&'a str, i64),
    /// A translation as a file (`srt`, `vtt`, `txt`): its language, the transcript.
    TranslationFile(&'a str, &'a str, i64),
    /// A digest written in this language (under a translation).
    DigestIn(DigestKind, &'a str, i64),
}

/// The main menu's buttons; each does what its command does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MenuItem {
    Imagine,
    Avatars,
    Gallery,
    History,
    Balance,
    TopUp,
    Settings,
    Help,
}

impl MenuItem {
    const ALL: [MenuItem; 8] = [
        MenuItem::Imagine,
        MenuItem::Avatars,
        MenuItem::Gallery,
        MenuItem::History,
        MenuItem::Balance,
        MenuItem::TopUp,
        MenuItem::Settings,
        MenuItem::Help,
    ];

    fn as_str(self) -> &'static str {
        match self {
            MenuItem::Imagine => "imagine",
            MenuItem::Avatars => "avatars",
            MenuItem::Gallery => "gallery",
            MenuItem::History => "history",
            MenuItem::Balance => "balance",
            MenuItem::TopUp => "topup",
            MenuItem::Settings => "settings",
            MenuItem::Help => "help",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|item| item.as_str() == s)
    }

    /// The command this button stands for.
    pub fn command(self) -> Command {
        match self {
            MenuItem::Imagine => Command::Imagine(String::new()),
            MenuItem::Avatars => Command::Avatars,
            MenuItem::Gallery => Command::Gallery,
            MenuItem::History => Command::History,
            MenuItem::Balance => Command::Balance,
            MenuItem::TopUp => Command::TopUp,
            MenuItem::Settings => Command::Settings,
            MenuItem::Help => Command::Help,
        }
    }
}

impl Callback<'_> {
    /// The transcript a button under a transcript's message is about.
    pub fn transcript(&self) -> Option<i64> {
        match *self {
            Callback::Digest(_, id)
            | Callback::Subtitles(_, id)
            | Callback::WhoSaidWhat(id, _)
            | Callback::Translate(id)
            | Callback::Transcript(id) => Some(id),
            _ => None,
        }
    }
}

/// A button labelled `label` that sends `callback` back when pressed.
pub fn button(label: impl Into<String>, callback: Callback<'_>) -> InlineKeyboardButton {
    InlineKeyboardButton::callback(label, callback.to_string())
}

fn id(s: &str) -> Option<i64> {
    s.parse::<i64>().ok().filter(|n| *n > 0)
}

/// An ISO-639-1 code (or a three-letter ISO-639-3 one), nothing else.
fn language(s: &str) -> Option<&str> {
    ((2..=3).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_lowercase())).then_some(s)
}

fn position(s: &str) -> Option<i64> {
    s.parse::<i64>().ok().filter(|n| (0..=MAX_POSITION).contains(n))
}

impl<'a> Callback<'a> {
    pub fn parse(data: &'a str) -> Option<Self> {
        let mut parts = data.split(':');
        let head = (parts.next()?, parts.next(), parts.next(), parts.next());
        if parts.next().is_some() {
            return None;
        }
        let parsed = match head {
            ("menu", Some(item), None, None) => Callback::Menu(MenuItem::parse(item)?),
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
            ("digest", Some(kind), Some(n), Some(code)) => {
                Callback::DigestIn(DigestKind::parse(kind)?, language(code)?, id(n)?)
            }
            ("tr", Some(n), None, None) => Callback::Translate(id(n)?),
            ("tr", Some(n), Some(code), None) => Callback::TranslateTo(language(code)?, id(n)?),
            ("trf", Some(f @ ("srt" | "vtt" | "txt")), Some(code), Some(n)) => {
                Callback::TranslationFile(f, language(code)?, id(n)?)
            }
            ("spoken", Some(code), None, None) if code.len() <= 8 => Callback::Spoken(code),
            ("subs", Some(f @ ("srt" | "vtt" | "txt" | "none")), Some(n), None) => Callback::Subtitles(f, id(n)?),
            ("speakers", Some("on"), None, None) => Callback::Speakers(true),
            ("speakers", Some("off"), None, None) => Callback::Speakers(false),
            ("who", Some(n), None, None) => Callback::WhoSaidWhat(id(n)?, false),
            ("who", Some(n), Some("yes"), None) => Callback::WhoSaidWhat(id(n)?, true),
            ("link", Some(n), None, None) => Callback::Link(id(n)?),
            ("forget", Some("yes"), None, None) => Callback::Forget(true),
            ("forget", Some("no"), None, None) => Callback::Forget(false),
            ("topup", Some(n), None, None) => Callback::TopUp(n.parse::<usize>().ok().filter(|i| *i < 100)?),
            _ => return None,
        };
        Some(parsed)
    }
}

/// The `callback_data` that `parse` reads back as this callback.
impl fmt::Display for Callback<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Callback::Menu(item) => write!(f, "menu:{}", item.as_str()),
            Callback::AvatarNew => write!(f, "avatar:new"),
            Callback::AvatarTrain(id) => write!(f, "avatar:train:{id}"),
            Callback::AvatarCancel(id) => write!(f, "avatar:cancel:{id}"),
            Callback::AvatarMain(id) => write!(f, "avatar:main:{id}"),
            Callback::AvatarStatus(id) => write!(f, "avatar:{id}"),
            Callback::Gender(gender) => write!(f, "gender:{gender}"),
            Callback::Regenerate(id) => write!(f, "regen:{id}"),
            Callback::Favourite(id) => write!(f, "fav:{id}"),
            Callback::Delete(id) => write!(f, "del:{id}"),
            Callback::Gallery(index) => write!(f, "gal:{index}"),
            Callback::Aspect(aspect) => write!(f, "aspect:{aspect}"),
            Callback::History(page) => write!(f, "history:{page}"),
            Callback::Transcript(id) => write!(f, "transcript:{id}"),
            Callback::Digest(kind, id) => write!(f, "digest:{}:{id}", kind.as_str()),
            Callback::TopUp(index) => write!(f, "topup:{index}"),
            Callback::Spoken(code) => write!(f, "spoken:{code}"),
            Callback::Subtitles(format, id) => write!(f, "subs:{format}:{id}"),
            Callback::Forget(true) => write!(f, "forget:yes"),
            Callback::Forget(false) => write!(f, "forget:no"),
            Callback::Speakers(on) => write!(f, "speakers:{}", if *on { "on" } else { "off" }),
            Callback::WhoSaidWhat(id, false) => write!(f, "who:{id}"),
            Callback::WhoSaidWhat(id, true) => write!(f, "who:{id}:yes"),
            Callback::Link(id) => write!(f, "link:{id}"),
            Callback::Translate(id) => write!(f, "tr:{id}"),
            Callback::TranslateTo(code, id) => write!(f, "tr:{id}:{code}"),
            Callback::TranslationFile(format, code, id) => write!(f, "trf:{format}:{code}:{id}"),
            Callback::DigestIn(kind, code, id) => write!(f, "digest:{}:{id}:{code}", kind.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_buttons_parse() {
        assert_eq!(Callback::parse("history:2"), Some(Callback::History(2)));
        assert_eq!(Callback::parse("digest:summary:7"), Some(Callback::Digest(DigestKind::Summary, 7)));
        assert_eq!(Callback::parse("menu:balance"), Some(Callback::Menu(MenuItem::Balance)));
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
            "menu:launch",
            "who:0",
            "who:5:no",
            "speakers:maybe",
            "tr:5:DE",
            "tr:5:german",
            "trf:exe:de:5",
            "digest:summary:7:de:extra",
            "",
        ] {
            assert_eq!(Callback::parse(forged), None, "{forged}");
        }
    }

    #[test]
    fn every_button_reads_back_as_what_made_it() {
        let mut made = vec![
            Callback::AvatarNew,
            Callback::AvatarTrain(3),
            Callback::AvatarCancel(3),
            Callback::AvatarMain(3),
            Callback::AvatarStatus(3),
            Callback::Gender("woman"),
            Callback::Regenerate(4),
            Callback::Favourite(4),
            Callback::Delete(4),
            Callback::Gallery(0),
            Callback::Aspect("landscape_16_9"),
            Callback::History(2),
            Callback::Transcript(5),
            Callback::TopUp(1),
            Callback::Spoken("kk"),
            Callback::Subtitles("vtt", 5),
            Callback::Forget(true),
            Callback::Forget(false),
            Callback::Speakers(true),
            Callback::Speakers(false),
            Callback::WhoSaidWhat(7, false),
            Callback::WhoSaidWhat(7, true),
            Callback::Link(8),
            Callback::Translate(9),
            Callback::TranslateTo("uk", 9),
            Callback::TranslationFile("srt", "de", 9),
            Callback::DigestIn(DigestKind::Minutes, "fr", 9),
        ];
        made.extend(MenuItem::ALL.map(Callback::Menu));
        made.extend(DigestKind::ALL.map(|kind| Callback::Digest(kind, 6)));
        for callback in made {
            let data = callback.to_string();
            assert!(data.len() <= 64, "Telegram takes at most 64 bytes: {data}");
            assert_eq!(Callback::parse(&data), Some(callback), "{data}");
        }
    }
}
