//! `POST /webhooks/fal` on a real `aishad --mode webhook` process, loopback,
//! against PostgreSQL with fsync on (`scripts/bench.sh` starts one). wrk
//! sends callbacks signed beforehand with the fake FAL's key (its JWKS is
//! what the daemon trusts), so only the daemon is measured; each unique one
//! is verified, recorded and its delivery job queued before its 200. The
//! pgbench ceiling for the same two inserts at one commit per callback is
//! measured first, on the same database. Run with
//! `scripts/bench.sh -p aishad --bench webhook`.

use std::path::Path;
use std::time::Duration;

use aisha_testkit::ceiling;
use aisha_testkit::fal::unix_now;
use aisha_testkit::proc_status_kib as rss_kib;
use aisha_testkit::wrk::{self, Load, Prepared};
use aisha_testkit::{Daemon, FakeFal, TestServices};
use serde_json::json;

const CONNECTIONS: usize = 32;
const SECONDS: u32 = 10;
/// More than the run can send, so no callback is sent twice.
const PREPARED: usize = 200_000;

fn report(label: &str, load: &Load, ceiling: f64) {
    println!(
        "webhook {label:<26} {CONNECTIONS} connections {SECONDS} s: {:>6.0} req/s ({:.2}× the ceiling)  p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  ({} requests, {} not 200, {} socket errors)",
        load.per_second,
        load.per_second / ceiling,
        load.p50_ms,
        load.p90_ms,
        load.p99_ms,
        load.requests,
        load.not_2xx,
        load.errors
    );
}

fn main() {
    aisha_testkit::bench_main(run);
}

async fn run() {
    let services = TestServices::new("bench_webhook").await;
    let db = services.db().await;
    let fal = FakeFal::start("fal-bench").await;
    let port = aisha_testkit::free_port();
    let mut env = services.env();
    env.extend(
        [
            ("TELEGRAM_BOT_TOKEN", "1:bench".to_owned()),
            ("BOT_MODE", "webhook".to_owned()),
            ("FAL_JWKS_URL", fal.jwks_url()),
            ("WEBHOOK_BIND", format!("127.0.0.1:{port}")),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );
    let mut daemon = Daemon::start(Path::new(env!("CARGO_BIN_EXE_aishad")), &["run"], &env);
    daemon.wait_for_log("webhook listener accepting", Duration::from_secs(30)).await;

    let ceiling = ceiling::pgbench(&services.database_url, "a FAL callback (its row + its delivery job)", ceiling::CALLBACK, CONNECTIONS, SECONDS);
    println!("{ceiling}");

    // Known requests, so each unique callback also queues its delivery job, as in production.
    db.batch_execute(&format!(
        "INSERT INTO users (telegram_id) VALUES (1);
         INSERT INTO jobs (kind, idempotency_key, max_attempts, state)
             SELECT 'fal.imagine', 'bench-' || g, 1, 'done' FROM generate_series(0, {last}) g;
         INSERT INTO fal_requests (request_id, job_id, user_id, chat_id, kind, model, status_url, response_url, cancel_url)
             SELECT 'unique-' || substr(j.idempotency_key, 7), j.id, u.id, 1, 'imagine', 'fal-ai/imagen4/preview', '', '', ''
             FROM jobs j, users u WHERE j.kind = 'fal.imagine';
         VACUUM ANALYZE;",
        last = PREPARED - 1
    ))
    .await
    .unwrap();
    let now = unix_now();
    let sign = |request_id: String| -> Prepared {
        let body = serde_json::to_vec(&json!({
            "request_id": request_id, "gateway_request_id": request_id, "status": "OK",
            "payload": { "images": [{ "url": "https://fal.media/files/x.png", "width": 1024, "height": 1024 }] },
        }))
        .unwrap();
        (fal.sign(&request_id, now, &body), body)
    };
    let url = format!("http://127.0.0.1:{port}/webhooks/fal");
    let pid = daemon.pid();
    // Warm-up: fetches the JWKS and opens the pool's connections.
    let warm: Vec<Prepared> = (0..2000).map(|i| sign(format!("warm-{i}"))).collect();
    wrk::run(&url, &warm, CONNECTIONS, 2);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = rss_kib(pid, "VmRSS:");

    let unique: Vec<Prepared> = (0..PREPARED).map(|i| sign(format!("unique-{i}"))).collect();
    let load = wrk::run(&url, &unique, CONNECTIONS, SECONDS);
    report("unique request ids", &load, ceiling.per_second);
    let count = |sql: &str| {
        let db = &db;
        let sql = sql.to_owned();
        async move { db.query_one(&sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    let persisted = count("SELECT count(*) FROM fal_callbacks WHERE request_id LIKE 'unique-%'").await;
    let queued = count("SELECT count(*) FROM jobs WHERE kind = 'fal.deliver' AND payload->>'request_id' LIKE 'unique-%'").await;
    println!("webhook persisted: {persisted} callbacks and {queued} delivery jobs for {} answered 200", load.requests - load.not_2xx);
    assert_eq!(load.not_2xx, 0, "every callback is accepted");
    assert!((load.requests as usize) < PREPARED, "no callback was sent twice");
    assert_eq!(persisted as u64, load.requests, "each answered callback was stored, once");
    assert_eq!(queued, persisted, "one delivery job per callback");

    let duplicate = vec![sign("unique-0".to_owned())];
    report("one request id, duplicates", &wrk::run(&url, &duplicate, CONNECTIONS, SECONDS), ceiling.per_second);

    let (loaded, peak) = (rss_kib(pid, "VmRSS:"), rss_kib(pid, "VmHWM:"));
    println!(
        "webhook RSS: idle {:.1} MiB, after load {:.1} MiB, peak {:.1} MiB",
        idle as f64 / 1024.0,
        loaded as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    daemon.signal("TERM");
    daemon.wait(Duration::from_secs(30)).await;
}
