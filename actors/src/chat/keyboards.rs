//! Inline keyboards: the main menu and the buttons under a transcript.

use teloxide::types::InlineKeyboardMarkup;

use super::callback::DigestKind;
use super::callback::{button, Callback};
use super::{texts, Lang};

/// The "Top up" button under a balance or a refusal for want of coins.
pub fn top_up(lang: Lang) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new([[button(
        super::texts::top_up_button(lang),
        Callback::Menu(super::callback::MenuItem::TopUp),
    )]])
}

pub fn main_menu(lang: Lang) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(
        texts::main_menu(lang)
            .into_iter()
            .map(|row| row.into_iter().map(|(label, item)| button(label, Callback::Menu(item))).collect::<Vec<_>>()),
    )
}

/// Under a transcript: Summary / Action items / Minutes, then the files
/// (`.srt`, `.vtt`, `.txt`; `timed` says whether the model gave timestamps),
/// then "Who said what" when it has no speakers yet.
pub fn transcript_keyboard(lang: Lang, transcript_id: i64, timed: bool, speakers: bool) -> InlineKeyboardMarkup {
    let digests = DigestKind::ALL
        .into_iter()
        .map(|kind| button(texts::digest_button(lang, kind), Callback::Digest(kind, transcript_id)))
        .collect::<Vec<_>>();
    let files = super::texts::file_buttons(lang, timed)
        .into_iter()
        .map(|(label, format)| button(label, Callback::Subtitles(format, transcript_id)))
        .collect::<Vec<_>>();
    let mut rows = vec![digests, files];
    let mut more = vec![button(texts::translate_button(lang), Callback::Translate(transcript_id))];
    if !speakers {
        more.push(button(texts::who_said_what_button(lang), Callback::WhoSaidWhat(transcript_id, false)));
    }
    rows.push(more);
    InlineKeyboardMarkup::new(rows)
}

/// Under a translation into `code`: Summary / Action items / Minutes
/// written in that language, then its files (`.srt` and `.vtt` only when
/// it kept the transcript's timings).
pub fn translation_keyboard(lang: Lang, transcript_id: i64, code: &str, timed: bool) -> InlineKeyboardMarkup {
    let digests = DigestKind::ALL
        .into_iter()
        .map(|kind| button(texts::digest_button(lang, kind), Callback::DigestIn(kind, code, transcript_id)))
        .collect::<Vec<_>>();
    let formats: &[&str] = if timed { &["srt", "vtt", "txt"] } else { &["txt"] };
    let files = formats
        .iter()
        .map(|format| button(format!("📄 .{format}"), Callback::TranslationFile(format, code, transcript_id)))
        .collect::<Vec<_>>();
    InlineKeyboardMarkup::new([digests, files])
}

/// The languages a transcript can be translated into, three to a row.
pub fn translation_languages(transcript_id: i64, codes: &[String]) -> InlineKeyboardMarkup {
    let buttons = codes
        .iter()
        .map(|code| button(texts::spoken_language_name(Lang::En, code), Callback::TranslateTo(code, transcript_id)))
        .collect::<Vec<_>>();
    InlineKeyboardMarkup::new(buttons.chunks(3).map(<[_]>::to_vec))
}
