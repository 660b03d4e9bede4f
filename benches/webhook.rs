//! `POST /webhooks/fal` on a real `aishad --mode webhook` process, loopback,
//! real PostgreSQL. Callbacks are signed beforehand with the fake FAL's key
//! (its JWKS is what the daemon trusts), so only the daemon is measured.
//! Run with `scripts/bench.sh -p aishad --bench webhook`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aisha_testkit::fal::unix_now;
use aisha_testkit::{Daemon, FakeFal, TestServices};
use serde_json::json;
use tokio::sync::Mutex;

const CALLBACKS: usize = 4000;
const CONCURRENCY: usize = 32;

use aisha_testkit::proc_status_kib as rss_kib;

type Signed = (Vec<(String, String)>, Vec<u8>);

async fn fire(url: &str, requests: Vec<Signed>) -> (f64, Vec<f64>) {
    let client = reqwest::Client::builder().pool_max_idle_per_host(CONCURRENCY).build().unwrap();
    let queue = Arc::new(Mutex::new(requests));
    let started = Instant::now();
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (client, queue, url) = (client.clone(), queue.clone(), url.to_owned());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let Some((headers, body)) = queue.lock().await.pop() else { return latencies };
                    let mut request = client.post(&url).body(body);
                    for (k, v) in headers {
                        request = request.header(k, v);
                    }
                    let sent = Instant::now();
                    let status = request.send().await.map(|r| r.status().as_u16()).unwrap_or(0);
                    assert_eq!(status, 200, "every callback is accepted");
                    latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                }
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    (latencies.len() as f64 / elapsed, latencies)
}

fn report(label: &str, (rate, latencies): (f64, Vec<f64>)) {
    let at = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    println!(
        "webhook {label:<28} {CALLBACKS} callbacks, {CONCURRENCY} connections: {rate:>6.0} req/s  p50 {:.2} ms  p99 {:.2} ms",
        at(0.50),
        at(0.99)
    );
}

fn main() {
    aisha_testkit::bench_main(run);
}

async fn run() {
    let services = TestServices::new("bench_webhook").await;
    let fal = FakeFal::start("fal-bench").await;
    let port = aisha_testkit::free_port();
    let mut env = services.env();
    env.extend(
        [
            ("TELEGRAM_BOT_TOKEN", "1:bench".to_owned()),
            ("BOT_MODE", "webhook".to_owned()),
            ("FAL_JWKS_URL", fal.jwks_url()),
            ("WEBHOOK_BIND", format!("127.0.0.1:{port}")),
            ("LOG_LEVEL", "warn,aishad=info".to_owned()),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );
    let mut daemon = Daemon::start(Path::new(env!("CARGO_BIN_EXE_aishad")), &["run"], &env);
    daemon.telemetry_addr().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = daemon.pid();
    let idle = rss_kib(pid, "VmRSS:");
    let url = format!("http://127.0.0.1:{port}/webhooks/fal");

    let sign = |request_id: &str| -> Signed {
        let body = serde_json::to_vec(&json!({
            "request_id": request_id, "gateway_request_id": request_id, "status": "OK",
            "payload": { "images": [{ "url": "https://fal.media/files/x.png", "width": 1024, "height": 1024 }] },
        }))
        .unwrap();
        (fal.sign(request_id, unix_now(), &body), body)
    };
    // Known requests, so each unique callback also queues its delivery job, as in production.
    let db = services.db().await;
    db.batch_execute(&format!(
        "INSERT INTO users (telegram_id) VALUES (1);
         INSERT INTO jobs (kind, idempotency_key, max_attempts, state)
             SELECT 'fal.imagine', 'bench-' || g, 1, 'done' FROM generate_series(0, {last}) g;
         INSERT INTO fal_requests (request_id, job_id, user_id, chat_id, kind, model, status_url, response_url, cancel_url)
             SELECT 'unique-' || substr(j.idempotency_key, 7), j.id, u.id, 1, 'imagine', 'fal-ai/imagen4/preview', '', '', ''
             FROM jobs j, users u;",
        last = CALLBACKS - 1
    ))
    .await
    .unwrap();
    // Warm-up: fetches the JWKS once and opens the pool's connections.
    fire(&url, (0..200).map(|i| sign(&format!("warm-{i}"))).collect()).await;

    let unique: Vec<Signed> = (0..CALLBACKS).map(|i| sign(&format!("unique-{i}"))).collect();
    report("unique request ids", fire(&url, unique).await);
    let queued: i64 = db.query_one("SELECT count(*) FROM jobs WHERE kind = 'fal.deliver'", &[]).await.unwrap().get(0);
    assert_eq!(queued as usize, CALLBACKS, "one delivery job per unique callback");
    let duplicate = sign("unique-0");
    report("one request id, duplicates", fire(&url, vec![duplicate; CALLBACKS]).await);

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
