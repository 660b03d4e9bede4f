//! Embedded, versioned migrations. All pending ones apply in one transaction
//! under an advisory lock, so two replicas starting together neither collide
//! nor apply anything twice, and a failed migration leaves nothing half-done.

use super::error::StoreError;

pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

macro_rules! migration {
    ($version:literal, $name:literal) => {
        Migration { version: $version, name: $name, sql: include_str!(concat!("../../migrations/", $name, ".sql")) }
    };
}

pub const MIGRATIONS: &[Migration] = &[
    migration!(1, "0001_users"),
    migration!(2, "0002_jobs_ledger_updates"),
    migration!(3, "0003_transcripts"),
    migration!(4, "0004_fal"),
    migration!(5, "0005_intake_fences"),
    migration!(6, "0006_payments"),
    migration!(7, "0007_transcription_features"),
    migration!(8, "0008_claim_on_record"),
    migration!(9, "0009_jobs_without_user"),
    migration!(10, "0010_no_coin_leaks"),
    migration!(11, "0011_speakers"),
    migration!(12, "0012_links"),
    migration!(13, "0013_chunk_calls"),
    migration!(14, "0014_repeats"),
    migration!(15, "0015_glossary"),
    migration!(16, "0016_handing_over"),
];

/// Any constant will do as long as every aishad uses the same one.
const ADVISORY_LOCK_KEY: i64 = 0x6169_7368_615f_6d67; // "aisha_mg"

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationReport {
    pub applied: Vec<String>,
    pub already: usize,
}

pub(super) async fn apply(client: &mut deadpool_postgres::Object) -> Result<MigrationReport, StoreError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&ADVISORY_LOCK_KEY]).await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    BIGINT PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let applied: Vec<i64> =
        tx.query("SELECT version FROM schema_migrations", &[]).await?.iter().map(|row| row.get(0)).collect();
    let mut report = MigrationReport::default();
    for migration in MIGRATIONS {
        if applied.contains(&migration.version) {
            report.already += 1;
            continue;
        }
        tx.batch_execute(migration.sql).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[&migration.version, &migration.name],
        )
        .await?;
        tracing::info!(version = migration.version, name = migration.name, "migration applied");
        report.applied.push(migration.name.to_owned());
    }
    tx.commit().await?;
    Ok(report)
}
