//! `aishad admin refund` and `aishad admin reconcile`: Telegram Stars from
//! the operator's side. Exit 0 done, 65 nothing to do it to, 69 Telegram or
//! the database unreachable, 78 configuration.

use aisha_actors::clients::telegram_bot;
use aisha_actors::payments::operator::{self, OperatorError};
use aisha_actors::payments::Debited;
use aisha_actors::settings::Settings;
use aisha_actors::store::Db;

use super::open_db;
use crate::exit;

fn open(settings: &Settings) -> Result<(Db, aisha_actors::clients::TgBot), i32> {
    if settings.telegram.token.is_empty() {
        eprintln!("aishad: config error: telegram.token is required (TELEGRAM_BOT_TOKEN)");
        return Err(exit::CONFIG);
    }
    let db = open_db(settings)?;
    let bot = telegram_bot(&settings.telegram).map_err(|e| {
        eprintln!("aishad: config error: {e}");
        exit::CONFIG
    })?;
    Ok((db, bot))
}

fn failed(what: &str, e: &OperatorError) -> i32 {
    eprintln!("aishad: admin {what}: {}", aisha_actors::error::chain(e));
    match e {
        OperatorError::UnknownCharge(_) => 65,
        _ => exit::UNAVAILABLE,
    }
}

pub async fn refund(settings: &Settings, charge_id: &str) -> i32 {
    let (db, bot) = match open(settings) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    match operator::refund(&db, &bot, charge_id).await {
        Ok(Debited::Debited { user_id, coins, balance }) => {
            println!("refunded {charge_id}: {coins} coins taken back from user {user_id}; balance {balance}");
            0
        }
        Ok(Debited::AlreadyRefunded) => {
            println!("{charge_id} was refunded before; nothing more taken back");
            0
        }
        Ok(Debited::Unknown) => failed("refund", &OperatorError::UnknownCharge(charge_id.to_owned())),
        Err(e) => failed("refund", &e),
    }
}

pub async fn reconcile(settings: &Settings) -> i32 {
    let (db, bot) = match open(settings) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    match operator::reconcile(&db, &bot, &settings.payments.packages).await {
        Ok(done) => {
            println!(
                "reconciled: {} Stars payments listed by Telegram, {} credited now, {} refunded already (not credited)",
                done.seen, done.credited, done.refunded
            );
            0
        }
        Err(e) => failed("reconcile", &e),
    }
}
