pub mod entrypoint;
pub mod health;
pub mod run;
pub mod stars;

use aisha_actors::settings::Settings;
use aisha_actors::store::Db;

use crate::exit;

/// The pool for a one-shot command; the exit code when the URL is unusable.
pub(crate) fn open_db(settings: &Settings) -> Result<Db, i32> {
    Db::new(&settings.database).map_err(|e| {
        eprintln!("aishad: config error: {e}");
        exit::CONFIG
    })
}

/// `aishad admin credit`: one ledger entry, balance updated with it.
pub async fn admin_credit(settings: &Settings, telegram_id: i64, coins: i64, reason: &str) -> i32 {
    if coins == 0 || reason.trim().is_empty() {
        eprintln!("aishad: admin credit: --coins must not be 0 and --reason must not be empty");
        return 64;
    }
    let db = match open_db(settings) {
        Ok(db) => db,
        Err(code) => return code,
    };
    match aisha_actors::ledger::admin_credit(&db, telegram_id, coins, reason.trim()).await {
        Ok(balance) => {
            println!("credited {coins} to telegram user {telegram_id}; balance {balance}");
            0
        }
        Err(aisha_actors::ledger::LedgerError::UnknownUser(id)) => {
            eprintln!("aishad: admin credit: no user with telegram id {id} (they must /start the bot first)");
            65
        }
        Err(e @ aisha_actors::ledger::LedgerError::WouldGoNegative { .. }) => {
            eprintln!("aishad: admin credit: {e}; nothing changed");
            65
        }
        Err(e) => {
            eprintln!("aishad: admin credit: {}", aisha_actors::error::chain(&e));
            exit::UNAVAILABLE
        }
    }
}

/// `aishad migrate`: apply what is pending and say what was done.
pub async fn migrate(settings: &Settings) -> i32 {
    let db = match open_db(settings) {
        Ok(db) => db,
        Err(code) => return code,
    };
    match db.migrate().await {
        Ok(report) => {
            println!("migrations: {} applied, {} already in place", report.applied.len(), report.already);
            for name in report.applied {
                println!("  applied {name}");
            }
            0
        }
        Err(e) => {
            tracing::error!(host = db.host(), error = %e, "migration failed");
            eprintln!("aishad: migrate: {e}");
            exit::UNAVAILABLE
        }
    }
}
