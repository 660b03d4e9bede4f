//! What the bot says as a guest in a chat it may not be in: one answer,
//! short, and the way to the private chat for anything more.

use crate::chat::Lang;

/// The guest answer's title (inline results carry one).
pub fn guest_title(lang: Lang) -> &'static str {
    lang.pick("Расшифровка", "Transcript")
}

pub fn guest_usage(lang: Lang) -> &'static str {
    lang.pick(
        "Упомяните меня в ответ на голосовое, аудио или видеосообщение — и я расшифрую его здесь.",
        "Mention me in reply to a voice message, audio or video note, and I'll transcribe it here.",
    )
}

pub fn guest_working(lang: Lang) -> &'static str {
    lang.pick("⏳ Расшифровываю…", "⏳ Transcribing…")
}

/// The caller cannot pay: no charge, no transcription, and where to top up.
pub fn guest_top_up(lang: Lang, price: i64, balance: i64, bot_username: &str) -> String {
    match lang {
        Lang::Ru => format!(
            "Недостаточно монет: нужно {price}, на балансе {balance}. Пополнить: https://t.me/{bot_username}?start=topup"
        ),
        Lang::En => format!(
            "Not enough coins: this costs {price}, your balance is {balance}. Top up: https://t.me/{bot_username}?start=topup"
        ),
    }
}

/// Under a transcript cut to fit one message: where the whole text waits.
pub fn guest_whole_text(lang: Lang, bot_username: &str) -> String {
    match lang {
        Lang::Ru => format!("…\n\nЦеликом — в личном чате со мной, в /history: https://t.me/{bot_username}"),
        Lang::En => format!("…\n\nThe whole text is in my private chat, in /history: https://t.me/{bot_username}"),
    }
}
