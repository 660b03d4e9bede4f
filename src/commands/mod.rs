pub mod health;
pub mod run;

use aisha_actors::settings::Settings;
use aisha_actors::store::Db;

use crate::exit;

/// `aishad migrate`: apply what is pending and say what was done.
pub async fn migrate(settings: &Settings) -> i32 {
    let db = match Db::new(&settings.database) {
        Ok(db) => db,
        Err(e) => {
            eprintln!("aishad: config error: {e}");
            return exit::CONFIG;
        }
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
