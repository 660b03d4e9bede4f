//! What the bot says about coins: the balance and its entries, prices and
//! charges, refunds, top-ups with Telegram Stars, and the per-user limits.

use crate::chat::Lang;
use crate::ledger::Entry;

/// The balance and its recent entries; `title` names a job's kind.
pub fn balance(lang: Lang, balance: i64, entries: &[Entry], title: impl Fn(&str) -> String) -> String {
    let mut text = format!("{} {balance}", lang.pick("💰 Баланс:", "💰 Balance:"));
    if !entries.is_empty() {
        text.push_str(lang.pick("\n\nПоследние операции:", "\n\nRecent entries:"));
        for e in entries {
            let what = reason(lang, &e.reason, e.job_kind.as_deref().map(&title));
            text.push_str(&format!("\n{} {:+} — {what}", e.at.format("%d.%m %H:%M"), e.delta));
        }
    }
    text
}

fn reason(lang: Lang, reason: &str, job: Option<String>) -> String {
    let job = job.unwrap_or_default();
    match reason {
        "charge" => format!("{} {job}", lang.pick("списание:", "charge:")),
        "refund" => format!("{} {job}", lang.pick("возврат:", "refund:")),
        "welcome_bonus" => lang.pick("приветственный бонус", "welcome bonus").to_owned(),
        "admin_credit" => lang.pick("начисление", "credit").to_owned(),
        other => other.to_owned(),
    }
}

pub fn insufficient(lang: Lang, price: i64, balance: i64) -> String {
    match lang {
        Lang::Ru => {
            format!("Недостаточно монет: нужно {price}, на балансе {balance}. Пополните баланс и попробуйте снова.")
        }
        Lang::En => format!("Not enough coins: this costs {price}, your balance is {balance}. Top up and try again."),
    }
}

/// `what`: the job's kind, as a user calls it.
pub fn queued(lang: Lang, what: &str, price: i64, balance: i64) -> String {
    match lang {
        Lang::Ru => format!("⏳ Принято в работу: {what}. Списано {price}, баланс {balance}. Пришлю результат, как только будет готово."),
        Lang::En => format!("⏳ Queued: {what}. Charged {price}, balance {balance}. I'll send the result as soon as it is ready."),
    }
}

pub fn already_queued(lang: Lang) -> &'static str {
    lang.pick(
        "Этот запрос уже в работе — повторно не списываю.",
        "This request is already being worked on — not charged again.",
    )
}

pub fn refunded(lang: Lang, coins: i64) -> String {
    match (lang, coins) {
        (_, 0) => String::new(),
        (Lang::Ru, n) => format!("Монеты возвращены: {n}."),
        (Lang::En, n) => format!("{n} coins refunded."),
    }
}

/// A job failed; `what`: its kind, as a user calls it.
pub fn failed(lang: Lang, what: &str) -> String {
    match lang {
        Lang::Ru => format!("❌ Не получилось: {what}."),
        Lang::En => format!("❌ Failed: {what}."),
    }
}

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

pub fn stars_refunded(lang: Lang, coins: i64, balance: i64) -> String {
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
