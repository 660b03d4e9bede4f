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
use aisha_testkit::cpu_seconds;
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

/// `aishad_group_commit_batch{what="fal_callbacks"}`: (sum, count) so far.
async fn batches(telemetry: std::net::SocketAddr) -> (f64, f64) {
    let text = reqwest::get(format!("http://{telemetry}/metrics")).await.unwrap().text().await.unwrap();
    let value = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name) && l.contains("what=\"fal_callbacks\""))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (value("aishad_group_commit_batch_sum"), value("aishad_group_commit_batch_count"))
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

    let telemetry = daemon.telemetry_addr().await;
    let idle = rss_kib(daemon.pid(), "VmRSS:");
    let ceiling = ceiling::pgbench(
        &services.database_url,
        "a FAL callback (its row + its delivery job)",
        ceiling::CALLBACK,
        CONNECTIONS,
        SECONDS,
    );
    println!("{ceiling}");
    let notifying = ceiling::pgbench(
        &services.database_url,
        "the same with NOTIFY in the transaction",
        &ceiling::callback_with_notify(),
        CONNECTIONS,
        SECONDS,
    );
    println!("{notifying}");

    // Known requests, so each unique callback also queues its delivery job, as in production.
    db.batch_execute(&format!(
        "INSERT INTO users (telegram_id) VALUES (1);
         INSERT INTO jobs (kind, idempotency_key, max_attempts, state)
             SELECT 'fal.imagine', 'bench-' || g, 1, 'done' FROM generate_series(0, {last}) g;
         INSERT INTO fal_requests (request_id, job_id, user_id, chat_id, kind, model, status_url, response_url, cancel_url)
             SELECT 'unique-' || substr(j.idempotency_key, 7), j.id, u.id, 1, 'imagine', 'fal-ai/imagen4/preview', '', '', ''
             FROM jobs j, users u WHERE j.kind = 'fal.imagine';",
        last = PREPARED - 1
    ))
    .await
    .unwrap();
    db.batch_execute("VACUUM ANALYZE").await.unwrap();
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
    let warm = rss_kib(pid, "VmRSS:");

    let unique: Vec<Prepared> = (0..PREPARED).map(|i| sign(format!("unique-{i}"))).collect();
    let batches_before = batches(telemetry).await;
    let cpu_before = cpu_seconds(pid);
    let load = wrk::run(&url, &unique, CONNECTIONS, SECONDS);
    let cpu_after = cpu_seconds(pid);
    report("unique request ids", &load, ceiling.per_second);
    let per = |seconds: f64| seconds / load.requests.max(1) as f64 * 1e6;
    println!(
        "webhook CPU a callback: daemon {:.0} µs, PostgreSQL {:.0} µs (2 cores: {:.0} µs of CPU a callback at this rate; wrk has the rest)",
        per(cpu_after.0 - cpu_before.0),
        per(cpu_after.1 - cpu_before.1),
        2e6 / load.per_second
    );
    let (sum, count) = batches(telemetry).await;
    println!(
        "webhook group commit: {:.1} callbacks a transaction on average ({} transactions)",
        (sum - batches_before.0) / (count - batches_before.1).max(1.0),
        count - batches_before.1
    );
    let count = |sql: &str| {
        let db = &db;
        let sql = sql.to_owned();
        async move { db.query_one(&sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    let persisted = count("SELECT count(*) FROM fal_callbacks WHERE request_id LIKE 'unique-%'").await;
    let queued =
        count("SELECT count(*) FROM jobs WHERE kind = 'fal.deliver' AND payload->>'request_id' LIKE 'unique-%'").await;
    println!("webhook persisted: {persisted} callbacks and {queued} delivery jobs for {} answered 200 (the rest were in flight when wrk stopped)", load.requests - load.not_2xx);
    assert_eq!(load.not_2xx, 0, "every callback is accepted");
    assert!((load.requests as usize) < PREPARED, "no callback was sent twice");
    // wrk counts the answers it read; those in flight when it stopped were stored too.
    let answered = load.requests - load.not_2xx;
    assert!(
        persisted as u64 >= answered && persisted as u64 <= answered + CONNECTIONS as u64,
        "each answered callback was stored, once"
    );
    assert_eq!(queued, persisted, "one delivery job per callback");

    let duplicate = vec![sign("unique-0".to_owned())];
    report("one request id, duplicates", &wrk::run(&url, &duplicate, CONNECTIONS, SECONDS), ceiling.per_second);

    let (loaded, peak) = (rss_kib(pid, "VmRSS:"), rss_kib(pid, "VmHWM:"));
    println!(
        "webhook RSS: idle {:.1} MiB, warmed up {:.1} MiB, after load {:.1} MiB, peak {:.1} MiB",
        idle as f64 / 1024.0,
        warm as f64 / 1024.0,
        loaded as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    daemon.signal("TERM");
    daemon.wait(Duration::from_secs(30)).await;
}
