//! Everything the bot says, in Russian and English, one file per feature
//! (money, transcripts, links, images, avatars, groups, guest answers, translations, glossary, privacy; what is everyone's
//! here). The user's Telegram `language_code` picks the language; anything
//! else gets Russian. Callers write `texts::name` whichever file holds it.

mod avatars;
mod glossary;
mod groups;
mod guest;
mod images;
mod links;
mod money;
mod privacy;
mod transcripts;
mod translations;

pub use avatars::*;
pub use glossary::*;
pub use groups::*;
pub use guest::*;
pub use images::*;
pub use links::*;
pub use money::*;
pub use privacy::*;
pub use transcripts::*;
pub use translations::*;

use super::callback::MenuItem;
use super::Lang;

pub fn welcome(lang: Lang, bonus: Option<i64>, balance: i64) -> String {
    let greeting = lang.pick(
        "Привет! Я Аиша. Пришлите голосовое, аудио или видеосообщение — верну текст. /imagine нарисует картинку по описанию, а в /avatars можно обучить свой аватар.",
        "Hi! I'm Aisha. Send me a voice message, audio or video note and I'll send back the text. /imagine draws a picture from a description, and /avatars trains an avatar of you.",
    );
    let coins = match bonus {
        Some(b) => format!(
            "{} {b}. {} {balance}.",
            lang.pick("🎁 Приветственный бонус:", "🎁 Welcome bonus:"),
            lang.pick("Баланс:", "Balance:")
        ),
        None => format!("{} {balance}.", lang.pick("💰 Баланс:", "💰 Balance:")),
    };
    format!("{greeting}\n\n{coins}")
}

pub fn help(lang: Lang) -> String {
    let mut text = lang
        .pick(
            "Голосовые, аудио, видеосообщения и аудиофайлы до 20 МБ я превращаю в текст (оплата за каждую начатую минуту). Запись, которую уже расшифровывали (пересланную), — бесплатно. В любом чате упомяните меня ответом на голосовое — расшифровка появится там.\n\nКоманды:",
            "I turn voice messages, audio, video notes and audio files up to 20 MB into text (charged per started minute). A recording transcribed before (forwarded) is free. In any chat, mention me in reply to a voice message and the transcript appears there.\n\nCommands:",
        )
        .to_owned();
    for (command, description) in super::command::menu(lang) {
        text.push_str(&format!("\n/{command} — {description}"));
    }
    text
}

pub fn settings(lang: Lang, aspect: &str) -> String {
    let label = aspect_buttons().iter().find(|(k, _)| *k == aspect).map(|(_, l)| *l).unwrap_or("1:1");
    match lang {
        Lang::Ru => format!("⚙️ Настройки\nЯзык бота: русский (по языку Telegram).\nФормат картинок: {label}"),
        Lang::En => format!("⚙️ Settings\nBot language: English (from your Telegram language).\nImage format: {label}"),
    }
}

pub fn cancelled(lang: Lang, jobs: usize, refunded: i64) -> String {
    match (lang, jobs) {
        (Lang::Ru, 0) => "Отменять нечего.".to_owned(),
        (Lang::En, 0) => "Nothing to cancel.".to_owned(),
        (Lang::Ru, n) => format!("Отменено задач: {n}. Возвращено монет: {refunded}."),
        (Lang::En, n) => format!("Cancelled {n} job(s). Refunded {refunded} coins."),
    }
}

pub fn unsupported(lang: Lang) -> &'static str {
    lang.pick(
        "С этим я пока не умею работать. Пришлите голосовое или аудио, или выберите действие в /start.",
        "I can't do anything with this yet. Send a voice message or audio, or pick an action in /start.",
    )
}

pub fn private_only(lang: Lang) -> &'static str {
    lang.pick(
        "Это — в личном чате со мной: откройте его и отправьте команду там.",
        "That one works in a private chat with me: open it and send the command there.",
    )
}

pub fn unknown_command(lang: Lang) -> &'static str {
    lang.pick("Не знаю такой команды. Список команд — /help.", "I don't know that command. See /help.")
}

pub fn something_went_wrong(lang: Lang) -> &'static str {
    lang.pick(
        "Что-то пошло не так. Попробуйте ещё раз чуть позже.",
        "Something went wrong. Please try again a little later.",
    )
}

/// Inline main menu: (label, item) rows.
pub fn main_menu(lang: Lang) -> Vec<Vec<(&'static str, MenuItem)>> {
    vec![
        vec![
            (lang.pick("🎨 Картинка", "🎨 Image"), MenuItem::Imagine),
            (lang.pick("👤 Аватары", "👤 Avatars"), MenuItem::Avatars),
        ],
        vec![
            (lang.pick("🖼 Галерея", "🖼 Gallery"), MenuItem::Gallery),
            (lang.pick("📝 История", "📝 History"), MenuItem::History),
        ],
        vec![
            (lang.pick("💰 Баланс", "💰 Balance"), MenuItem::Balance),
            (lang.pick("⭐ Пополнить", "⭐ Top up"), MenuItem::TopUp),
        ],
        vec![(lang.pick("⚙️ Настройки", "⚙️ Settings"), MenuItem::Settings)],
        vec![(lang.pick("❓ Помощь", "❓ Help"), MenuItem::Help)],
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_lists_every_command() {
        let text = help(Lang::En);
        for (command, _) in crate::chat::command::menu(Lang::En) {
            assert!(text.contains(&format!("/{command}")), "{command}");
        }
    }
}
