//! Inline keyboards: the main menu and the buttons under a transcript.

use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup};

use super::texts::{self, Lang};
use crate::jobs::kinds::DigestKind;

/// Rows of `(label, callback data)` as an inline keyboard.
pub fn keyboard(rows: Vec<Vec<(&'static str, &'static str)>>) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(rows.into_iter().map(|row| {
        row.into_iter().map(|(label, data)| InlineKeyboardButton::callback(label, data)).collect::<Vec<_>>()
    }))
}

/// The "Top up" button under a balance or a refusal for want of coins.
pub fn top_up(lang: Lang) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new([[InlineKeyboardButton::callback(super::money_texts::top_up_button(lang), "menu:topup")]])
}

pub fn main_menu(lang: Lang) -> InlineKeyboardMarkup {
    keyboard(texts::main_menu(lang))
}

/// Under a transcript: Summary / Action items / Minutes, then the files
/// (`.srt`, `.vtt`, `.txt`; `timed` says whether the model gave timestamps).
pub fn transcript_keyboard(lang: Lang, transcript_id: i64, timed: bool) -> InlineKeyboardMarkup {
    let digests = DigestKind::ALL
        .into_iter()
        .map(|kind| {
            InlineKeyboardButton::callback(
                texts::digest_button(lang, kind),
                format!("digest:{}:{transcript_id}", kind.as_str()),
            )
        })
        .collect::<Vec<_>>();
    let files = super::feature_texts::file_buttons(lang, timed)
        .into_iter()
        .map(|(label, format)| InlineKeyboardButton::callback(label, format!("subs:{format}:{transcript_id}")))
        .collect::<Vec<_>>();
    InlineKeyboardMarkup::new([digests, files])
}
