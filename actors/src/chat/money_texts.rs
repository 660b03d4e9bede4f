//! What the bot says about money: top-ups with Telegram Stars, payment
//! support, terms and privacy, and the per-user limits.

use super::texts::Lang;

pub fn top_up_button(lang: Lang) -> &'static str {
    lang.pick("⭐ Пополнить баланс", "⭐ Top up")
}

pub fn packages_intro(lang: Lang, balance: i64) -> String {
    match lang {
        Lang::Ru => format!("💰 Баланс: {balance}. Выберите пакет монет — оплата в Telegram Stars ⭐."),
        Lang::En => format!("💰 Balance: {balance}. Choose a coin package — paid with Telegram Stars ⭐."),
    }
}

pub fn package_button(label: &str, stars: i64) -> String {
    format!("{label} — {stars} ⭐")
}

pub fn invoice_title(lang: Lang, label: &str) -> String {
    match lang {
        Lang::Ru => format!("Аиша: {label}"),
        Lang::En => format!("Aisha: {label}"),
    }
}

pub fn invoice_description(lang: Lang, coins: i64) -> String {
    match lang {
        Lang::Ru => format!("{coins} монет на расшифровки, картинки и аватары. Монеты зачисляются сразу после оплаты."),
        Lang::En => format!("{coins} coins for transcripts, images and avatars, credited as soon as you pay."),
    }
}

pub fn paid(lang: Lang, coins: i64, balance: i64) -> String {
    match lang {
        Lang::Ru => format!("✅ Оплата получена: +{coins} монет. Баланс: {balance}."),
        Lang::En => format!("✅ Payment received: +{coins} coins. Balance: {balance}."),
    }
}

pub fn paid_unmatched(lang: Lang) -> &'static str {
    lang.pick(
        "Оплата получена, но мы не смогли сопоставить её с пакетом. Мы уже разбираемся; если монеты не появятся в течение дня — напишите /paysupport.",
        "Payment received, but we could not match it to a package. We are looking into it; if the coins do not arrive within a day, see /paysupport.",
    )
}

pub fn refunded(lang: Lang, coins: i64, balance: i64) -> String {
    match lang {
        Lang::Ru => format!("↩️ Платёж возвращён: списано {coins} монет. Баланс: {balance}."),
        Lang::En => format!("↩️ Payment refunded: {coins} coins taken back. Balance: {balance}."),
    }
}

pub fn checkout_refused(lang: Lang, why: crate::payments::Refusal) -> &'static str {
    use crate::payments::Refusal;
    match why {
        Refusal::UnknownOrder => lang.pick(
            "Этот счёт не найден. Откройте /topup и выберите пакет заново.",
            "This invoice is unknown. Open /topup and choose a package again.",
        ),
        Refusal::AlreadyPaid => lang.pick(
            "Этот счёт уже оплачен. Для нового пополнения откройте /topup.",
            "This invoice is paid already. Open /topup to top up again.",
        ),
        Refusal::AmountChanged => lang.pick(
            "Сумма счёта изменилась. Откройте /topup и выберите пакет заново.",
            "The invoice amount changed. Open /topup and choose a package again.",
        ),
    }
}

pub fn paysupport(lang: Lang) -> &'static str {
    lang.pick(
        "⭐ Оплата и возвраты\n\nМонеты покупаются за Telegram Stars и зачисляются сразу. Если монеты не пришли или оплата прошла по ошибке, напишите нам в этот чат в течение 14 дней, указав дату платежа: мы вернём Stars через Telegram, а монеты этого платежа будут списаны (потраченные монеты не списываются ниже нуля).\n\nЕсли задание не выполнено по нашей вине, монеты за него возвращаются автоматически.",
        "⭐ Payments and refunds\n\nCoins are bought with Telegram Stars and credited at once. If coins did not arrive, or you paid by mistake, write to us in this chat within 14 days with the date of the payment: we refund the Stars through Telegram and take that payment's coins back (never below zero: coins already spent stay spent).\n\nIf a job fails on our side, its coins come back automatically.",
    )
}

pub fn terms(lang: Lang) -> &'static str {
    lang.pick(
        "📄 Условия\n\nАиша расшифровывает аудио и создаёт изображения за монеты. Цена указана до начала работы; расшифровка стоит по минутам по измеренной длине записи (разница списывается или возвращается). Если результат не получен по нашей вине, монеты возвращаются. Готовый результат остаётся в /gallery и /history, даже если его не удалось доставить. Не отправляйте то, на что у вас нет прав.",
        "📄 Terms\n\nAisha transcribes audio and makes images for coins. The price is shown before work starts; a transcript costs per minute of the recording's measured length (the difference is charged or refunded). If a result fails on our side, its coins come back. A finished result stays in /gallery and /history even if it could not be delivered. Do not send what you have no rights to.",
    )
}

pub fn slow_down(lang: Lang, seconds: u64) -> String {
    match lang {
        Lang::Ru => format!("Слишком много запросов подряд. Попробуйте снова через {seconds} с — ничего не списано."),
        Lang::En => format!("Too many requests in a row. Try again in {seconds} s — nothing was charged."),
    }
}

pub fn too_many_in_flight(lang: Lang, limit: u32) -> String {
    match lang {
        Lang::Ru => {
            format!("У вас уже {limit} заданий в работе. Дождитесь результата и попробуйте снова — ничего не списано.")
        }
        Lang::En => {
            format!("You already have {limit} jobs in progress. Wait for a result and try again — nothing was charged.")
        }
    }
}

pub fn avatar_costs_more(lang: Lang, price: i64, balance: i64) -> String {
    match lang {
        Lang::Ru => format!("Обучение аватара стоит {price} монет, на балансе {balance}. Пополните баланс — и возвращайтесь с 10–20 фото."),
        Lang::En => format!("Training an avatar costs {price} coins; your balance is {balance}. Top up, then come back with 10–20 photos."),
    }
}

pub fn avatar_price(lang: Lang, price: i64) -> String {
    match lang {
        Lang::Ru => {
            format!("Обучение аватара стоит {price} монет; спишем их, когда вы пришлёте фото и начнёте обучение.")
        }
        Lang::En => {
            format!("Training an avatar costs {price} coins, charged when you have sent the photos and start training.")
        }
    }
}

pub fn sent_privately(lang: Lang) -> &'static str {
    lang.pick("⭐ Отправила вам в личные сообщения.", "⭐ Sent to you in a private chat.")
}

pub fn open_private_chat(lang: Lang) -> &'static str {
    lang.pick(
        "⭐ Оплата и баланс — только в личном чате: откройте чат со мной и отправьте /topup или /balance.",
        "⭐ Payments and balances are private: open a chat with me and send /topup or /balance.",
    )
}

pub fn still_running(lang: Lang, jobs: usize) -> String {
    match lang {
        Lang::Ru => format!("Уже в работе: {jobs} — их не отменить, результат придёт."),
        Lang::En => format!("Already under way: {jobs} — these cannot be cancelled; the result will come."),
    }
}

fn clock(seconds: f64) -> String {
    let total = seconds.max(0.0).round() as u64;
    match total / 3600 {
        0 => format!("{}:{:02}", total / 60, total % 60),
        hours => format!("{hours}:{:02}:{:02}", total / 60 % 60, total % 60),
    }
}

pub fn measured_more(lang: Lang, seconds: f64, extra: i64, balance: i64) -> String {
    match lang {
        Lang::Ru => format!("Длина записи — {}: списано ещё {extra} монет. Баланс: {balance}.", clock(seconds)),
        Lang::En => {
            format!("The recording is {} long: {extra} more coins charged. Balance: {balance}.", clock(seconds))
        }
    }
}

pub fn measured_less(lang: Lang, seconds: f64, amount: i64, balance: i64) -> String {
    match lang {
        Lang::Ru => format!("Длина записи — {}: возвращено {amount} монет. Баланс: {balance}.", clock(seconds)),
        Lang::En => format!("The recording is {} long: {amount} coins refunded. Balance: {balance}.", clock(seconds)),
    }
}

pub fn too_long(lang: Lang, seconds: f64, max: std::time::Duration) -> String {
    let max = clock(max.as_secs_f64());
    match lang {
        Lang::Ru => format!("Запись длится {}, а я расшифровываю до {max}. Монеты возвращены.", clock(seconds)),
        Lang::En => {
            format!("The recording is {} long; I transcribe up to {max}. Your coins were refunded.", clock(seconds))
        }
    }
}

pub fn implausible_length(lang: Lang) -> &'static str {
    lang.pick(
        "Файл сообщает длину, которой не может быть при его размере, — похоже, он повреждён. Монеты возвращены.",
        "The file claims a length its size cannot hold — it looks damaged. Your coins were refunded.",
    )
}
