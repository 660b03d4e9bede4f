//! What the bot says about recordings from a link: reading it, its price,
//! and why a link gives nothing.

use crate::chat::Lang;
use crate::clients::links::{LinkError, Refused};

pub fn link_reading(lang: Lang) -> &'static str {
    lang.pick(
        "🔗 Смотрю, что по ссылке. Скажу цену, прежде чем что-то списать.",
        "🔗 Looking at the link. I'll tell you the price before anything is charged.",
    )
}

pub fn link_refused(lang: Lang, why: &Refused) -> &'static str {
    match why {
        Refused::Scheme => lang.pick("Я открываю только ссылки http и https.", "I only open http and https links."),
        // One answer for both: two would tell which internal names exist.
        Refused::Unresolved { .. } | Refused::Private { .. } => lang.pick(
            "Эта ссылка не ведёт на открытый сайт (или такого адреса нет), такие я не открываю. Проверьте ссылку.",
            "That link does not lead to a public website (or the address does not exist); I don't open those. Please check the link.",
        ),
    }
}

/// Links being read for free at once, at most `limit`.
pub fn links_in_reading(lang: Lang, limit: u32) -> String {
    match lang {
        Lang::Ru => {
            format!("Я уже читаю ваши ссылки ({limit}). Дождитесь цены и пришлите эту снова — ничего не списано.")
        }
        Lang::En => {
            format!("I'm already reading {limit} of your links. Wait for their prices and send this one again — nothing was charged.")
        }
    }
}

/// Free readings an hour, used up; the next in `minutes`.
pub fn link_readings_used(lang: Lang, per_hour: u32, minutes: u64) -> String {
    match lang {
        Lang::Ru => format!("Бесплатно я читаю до {per_hour} ссылок в час. Пришлите эту через {minutes} мин — ничего не списано."),
        Lang::En => format!(
            "I read up to {per_hour} links an hour for free. Send this one again in {minutes} min — nothing was charged."
        ),
    }
}

/// A file whose site states no length, larger than a free reading takes.
pub fn link_too_big_to_price(lang: Lang, cap: u64) -> String {
    let mib = cap / (1024 * 1024);
    match lang {
        Lang::Ru => format!(
            "Сайт не говорит, сколько длится запись, а файл больше {mib} МБ: цену без скачивания я не узнаю. Пришлите запись покороче или сам файл — ничего не списано."
        ),
        Lang::En => format!(
            "The site doesn't say how long the recording is, and the file is over {mib} MB, so I can't price it without fetching it all. Please send a shorter one or the file itself — nothing was charged."
        ),
    }
}

/// The price of a link's recording, asked before it is charged.
pub fn link_offer(lang: Lang, title: &str, seconds: f64, price: i64) -> String {
    let minutes = (seconds / 60.0).ceil().max(1.0) as u64;
    let title = if title.is_empty() { lang.pick("запись", "the recording") } else { title };
    match lang {
        Lang::Ru => format!("🔗 «{title}», {minutes} мин. Расшифровка: {price} мон. Начать?"),
        Lang::En => format!("🔗 “{title}”, {minutes} min. Transcribing it costs {price} coins. Go ahead?"),
    }
}

pub fn link_confirm(lang: Lang, price: i64) -> String {
    match lang {
        Lang::Ru => format!("✅ Расшифровать за {price} мон."),
        Lang::En => format!("✅ Transcribe for {price} coins"),
    }
}

pub fn link_not_read(lang: Lang) -> &'static str {
    lang.pick(
        "Эту ссылку я ещё читаю или уже не помню: пришлите её снова.",
        "I'm still reading that link, or no longer have it: please send it again.",
    )
}

/// Why a link gives no recording, in words the user can act on.
pub fn link_failed(lang: Lang, why: &LinkError) -> String {
    let text = match why {
        LinkError::BotCheck => lang.pick(
            "Сайт требует войти, чтобы доказать, что я не бот, — эту запись я скачать не могу. Пришлите сам файл.",
            "The site wants a sign-in to prove I'm not a bot, so I can't fetch this one. Please send the file itself.",
        ),
        LinkError::Unavailable => {
            lang.pick("Запись закрыта, удалена или недоступна.", "The recording is private, removed or unavailable.")
        }
        LinkError::Live => lang.pick(
            "Это прямая трансляция: её можно расшифровать, когда она закончится.",
            "That's a live stream: it can be transcribed once it has ended.",
        ),
        LinkError::GeoBlocked => {
            lang.pick("Запись недоступна в нашем регионе.", "The recording isn't available in our region.")
        }
        LinkError::NoMedia => {
            lang.pick("По ссылке нет ни аудио, ни видео.", "There is no audio or video at that link.")
        }
        LinkError::TooBig(_) => {
            lang.pick("Запись по ссылке слишком большая.", "The recording at that link is too large.")
        }
        LinkError::PageTooLarge => lang.pick(
            "Страница по ссылке слишком большая, чтобы её прочитать.",
            "The page at that link is too large to read.",
        ),
        LinkError::Refused(refused) => link_refused(lang, refused),
        LinkError::TimedOut(_) | LinkError::Failed(_) => lang.pick(
            "Не получилось скачать запись по ссылке. Попробуйте позже или пришлите сам файл.",
            "I couldn't fetch the recording at that link. Please try later or send the file itself.",
        ),
    };
    text.to_owned()
}
