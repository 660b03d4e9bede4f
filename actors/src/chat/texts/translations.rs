//! What the bot says about translations: the languages offered, the
//! translation itself, and a language it does not offer.

use super::transcripts::spoken_language_name;
use crate::chat::Lang;

pub fn translate_button(lang: Lang) -> &'static str {
    lang.pick("🌐 Перевести", "🌐 Translate")
}

/// The languages offered, with the price told before anything is charged.
pub fn translate_menu(lang: Lang, price: i64) -> String {
    match (lang, price) {
        (Lang::Ru, 0) => "🌐 На какой язык перевести? Бесплатно.".to_owned(),
        (Lang::En, 0) => "🌐 Into which language? Free.".to_owned(),
        (Lang::Ru, p) => format!("🌐 На какой язык перевести? Перевод стоит {p} монет."),
        (Lang::En, p) => format!("🌐 Into which language? A translation costs {p} coins."),
    }
}

pub fn translation_intro(lang: Lang, target: &str) -> String {
    format!("{} · {}", lang.pick("🌐 Перевод", "🌐 Translation"), spoken_language_name(lang, target))
}

/// A language code not among those offered.
pub fn translation_languages(lang: Lang, offered: &[String]) -> String {
    let list = offered.join(", ");
    match lang {
        Lang::Ru => format!("Переведу на: {list}. Например: /translate en — ответом на расшифровку."),
        Lang::En => format!("I translate into: {list}. For example: /translate en, as a reply to a transcript."),
    }
}

/// `/translate` sent without replying to a transcript.
pub fn translate_usage(lang: Lang) -> &'static str {
    lang.pick(
        "Отправьте /translate en ответом на сообщение с расшифровкой (то, что с кнопками), или нажмите под ним «🌐 Перевести».",
        "Send /translate en as a reply to a transcript's message (the one with the buttons), or press \"🌐 Translate\" under it.",
    )
}

pub fn translation_under_way(lang: Lang) -> &'static str {
    lang.pick(
        "Этот перевод уже делается — пришлю, как будет готов. Повторно не списываю.",
        "This translation is under way: I'll send it when it is ready. Not charged again.",
    )
}
