//! What the database allows: every benchmark prints, in the same run and on
//! the same PostgreSQL, what pgbench gets through with the same statements
//! at one commit per item, so a result reads as a ratio to that ceiling,
//! not as a number that depends on this machine's disk.

use std::path::PathBuf;
use std::process::Command;

/// The statements of one FAL callback, one commit each: the callback row and
/// its delivery job.
pub const CALLBACK: &str = r#"\set n random(1, 1000000000000)
BEGIN;
INSERT INTO fal_callbacks (request_id, status, body, source)
  VALUES ('pgb-' || :client_id || '-' || :n, 'OK', '{"request_id":"x","status":"OK","payload":{"images":[{"url":"https://fal.media/files/x.png","width":1024,"height":1024}]}}', 'webhook')
  ON CONFLICT (request_id) DO NOTHING;
INSERT INTO jobs (kind, payload, idempotency_key, max_attempts)
  VALUES ('fal.deliver', '{"request_id":"x"}', 'pgb:deliver:' || :client_id || ':' || :n, 10)
  ON CONFLICT (idempotency_key) DO NOTHING;
END;
"#;

/// [`CALLBACK`] as the listener wrote it before group commit: with the
/// NOTIFY that woke workers inside the transaction. PostgreSQL holds a
/// database-wide lock from a notifying transaction's commit until its WAL is
/// flushed, so these commits queue behind each other instead of sharing flushes.
pub fn callback_with_notify() -> String {
    CALLBACK.replace("END;", "SELECT pg_notify('aisha_jobs', 'fal.deliver');\nEND;")
}

/// One no-op job through a queue at one commit per step: enqueued, claimed, done.
pub const JOB: &str = r#"\set n random(1, 1000000000000)
INSERT INTO jobs (kind, payload, idempotency_key, max_attempts) VALUES ('pgb', '{}', 'pgb:job:' || :client_id || ':' || :n, 1) RETURNING id \gset
UPDATE jobs SET state = 'running', locked_by = 'pgb', locked_until = now() + interval '30 s', attempts = 1, claimed_at = now() WHERE id = :id;
UPDATE jobs SET state = 'done', result = 'null', finished_at = now(), locked_by = NULL, locked_until = NULL WHERE id = :id AND locked_by = 'pgb';
"#;

/// One voice update at one commit per step: recorded, claimed, charged with
/// its job and ledger entry, marked handled.
pub const UPDATE: &str = r#"\set n random(1, 1000000000000)
\set user random(1, 300)
INSERT INTO telegram_updates (update_id, chat_id, payload, received_by) VALUES (:n, :user, '{"message":{"voice":{"duration":30}}}', 'pgb') ON CONFLICT DO NOTHING;
UPDATE telegram_updates SET handling_until = now() + interval '15 s' WHERE update_id = :n AND handled_at IS NULL;
BEGIN;
INSERT INTO jobs (kind, user_id, payload, idempotency_key, cost, max_attempts) VALUES ('pgb', :user, '{}', 'pgb:upd:' || :n, 1, 3) ON CONFLICT DO NOTHING;
UPDATE users SET balance = balance - 1 WHERE id = :user AND balance >= 1;
INSERT INTO ledger_entries (user_id, delta, reason) VALUES (:user, -1, 'charge');
END;
UPDATE telegram_updates SET handled_at = now() WHERE update_id = :n;
"#;

/// One small commit, alone: what each of a job's writes costs at the least.
pub const COMMIT: &str = r#"\set n random(1, 1000000000000)
INSERT INTO jobs (kind, payload, idempotency_key, max_attempts) VALUES ('pgb', '{}', 'pgb:one:' || :n, 1);
"#;

#[derive(Debug, Clone)]
pub struct Ceiling {
    pub what: &'static str,
    pub clients: usize,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub durability: String,
}

impl std::fmt::Display for Ceiling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ceiling: pgbench, {} at one commit each, {} clients, {}: {:.0}/s, p50 {:.2} ms, p99 {:.2} ms",
            self.what, self.clients, self.durability, self.per_second, self.p50_ms, self.p99_ms
        )
    }
}

/// `fsync=… synchronous_commit=…` of the server behind `database_url`.
pub fn durability(database_url: &str) -> String {
    let show = |setting: &str| {
        let out = Command::new("psql").args([database_url, "-XtAc", &format!("SHOW {setting}")]).output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()).unwrap_or_else(|_| "?".into())
    };
    format!("fsync={} synchronous_commit={}", show("fsync"), show("synchronous_commit"))
}

/// Runs `script` with pgbench for `seconds` over `clients` connections to the
/// (migrated) database at `database_url`; what it got through and its
/// latency percentiles, from pgbench's per-transaction log.
pub fn pgbench(database_url: &str, what: &'static str, script: &str, clients: usize, seconds: u32) -> Ceiling {
    let dir: PathBuf = std::env::temp_dir().join(format!("aisha-pgbench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("script.sql");
    std::fs::write(&file, script).unwrap();
    let prefix = dir.join("log");
    let output = Command::new("pgbench")
        .args(["-n", "-c", &clients.to_string(), "-j", "2", "-T", &seconds.to_string(), "-l"])
        .arg(format!("--log-prefix={}", prefix.display()))
        .arg("-f")
        .arg(&file)
        .arg(database_url)
        .output()
        .expect("pgbench runs (apt-get install postgresql-client)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "pgbench failed: {}{}", stdout, String::from_utf8_lossy(&output.stderr));
    let mut latencies_ms: Vec<f64> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("log"))
        .flat_map(|e| {
            std::fs::read_to_string(e.path()).unwrap_or_default().lines().map(str::to_owned).collect::<Vec<_>>()
        })
        .filter_map(|line| line.split_whitespace().nth(2).and_then(|us| us.parse::<f64>().ok()).map(|us| us / 1000.0))
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    latencies_ms.sort_by(f64::total_cmp);
    let at =
        |p: f64| latencies_ms.get(((latencies_ms.len().max(1) - 1) as f64 * p) as usize).copied().unwrap_or(f64::NAN);
    let per_second = stdout
        .lines()
        .find_map(|l| {
            l.strip_prefix("tps = ").and_then(|rest| rest.split_whitespace().next()).and_then(|v| v.parse().ok())
        })
        .unwrap_or(f64::NAN);
    Ceiling { what, clients, per_second, p50_ms: at(0.50), p99_ms: at(0.99), durability: durability(database_url) }
}
