//! A worker on a host of its own (a network namespace, the services reached
//! over its link) is cut off while its transcriptions' API calls are in
//! flight. PostgreSQL cannot tell a cut-off process from a live one (its
//! session, and so its presence lock, stays), so the other worker takes
//! over those paid calls only once they have shown no sign of life for ten
//! leases, and answers then; when the link comes back, the cut-off
//! worker's answers arrive too late: its leases are gone, every ending is
//! fenced, so nobody gets a second reply and nothing more is charged or
//! refunded. A webhook listener cut off mid-callback likewise: FAL's retry
//! lands on the other listener, and the callback is stored once.

use std::path::Path;
use std::time::{Duration, Instant};

use aisha_testkit::audio::voice_note;
use aisha_testkit::daemon::all_mode_env;
use aisha_testkit::fal::unix_now;
use aisha_testkit::fleet::{transcripts, voice_notes, welcomed_users, Fleet};
use aisha_testkit::netns::Host;
use aisha_testkit::{eventually, Daemon, FakeFal, FakeOpenAi, FakeTelegram, TestServices};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOKEN: &str = "41414:PARTITION-token";
const BIN: &str = env!("CARGO_BIN_EXE_aishad");
/// Long enough that the cut-off worker's calls are still at OpenAI when the
/// others have answered, short enough that they come back within the test.
const API_LATENCY: Duration = Duration::from_secs(14);
/// `jobs.lease` (the default), and how long a paid call whose process may
/// still be alive is waited for: ten leases.
const LEASE: Duration = Duration::from_secs(6);
const TAKE_OVER: Duration = Duration::from_secs(60);

/// Every address in `env` that names a loopback service, reached instead through `host`'s link.
async fn through(host: &Host, env: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut routed = Vec::new();
    for (key, value) in env {
        let value = match key.as_str() {
            "DATABASE_URL" | "REDIS_URL" | "MINIO_ENDPOINT" | "TELEGRAM_API_URL" | "OPENAI_BASE_URL" => {
                host.url(&value).await
            }
            _ => value,
        };
        routed.push((key, value));
    }
    routed
}

/// The chunks whose API call `instance` has in flight now.
async fn calls_of(db: &tokio_postgres::Client, instance: &str) -> i64 {
    db.query_one("SELECT count(*) FROM transcript_chunk_calls WHERE split_part(worker, '#', 1) = $1", &[&instance])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_worker_cut_off_mid_job_loses_its_jobs_to_the_others_and_ends_nothing_when_it_returns() {
    let services = TestServices::new("partition_worker").await;
    let telegram = FakeTelegram::start(TOKEN).await;
    let openai = FakeOpenAi::start("sk-partition").await;
    let db = services.db().await;
    let host = Host::create("worker", 41);
    let mut fleet = Fleet::start(Path::new(BIN), &services, &telegram, &openai, 0, &[]).await;
    let mut env = services.env();
    env.extend(all_mode_env(&telegram, &openai));
    env.extend([("BOT_MODE".into(), "worker".into()), ("INSTANCE_ID".into(), "worker-cut-off".into())]);
    let cut_off = host.start_daemon(Path::new(BIN), &["run"], &through(&host, env).await);
    cut_off.telemetry_addr().await;

    let users = welcomed_users(&telegram, 4100, 4).await;
    openai.set_latency(API_LATENCY);
    voice_notes(&telegram, &users, Duration::from_millis(200), voice_note("Said on the far side of a partition."))
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while calls_of(&db, "worker-cut-off").await < 2 {
        assert!(Instant::now() < deadline, "the worker on the host made no calls: {:?}", cut_off.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Its two transcription workers are busy at OpenAI: pull its cable, and start the one that stays.
    host.cut();
    let cut = Instant::now();
    openai.set_latency(Duration::ZERO);
    let other = Fleet::start(Path::new(BIN), &services, &telegram, &openai, 1, &[]).await;

    eventually("every note answered by the worker that stayed", TAKE_OVER + Duration::from_secs(30), || {
        users.iter().all(|&u| transcripts(&telegram, u) >= 1)
    })
    .await;
    let answered = cut.elapsed();
    eprintln!("partition figure: the cut-off worker's 2 calls taken over and answered {answered:?} after the cut");
    // Its last sign of life came at most a third of a lease before the cut.
    assert!(answered >= TAKE_OVER - LEASE / 3, "a call in flight was made again too soon: {answered:?}");
    assert!(answered <= TAKE_OVER + Duration::from_secs(10), "answered {answered:?} after the cut");

    host.restore();
    // Its calls come back from OpenAI now: it must find its leases gone and end nothing.
    tokio::time::sleep(API_LATENCY.saturating_sub(cut.elapsed()) + Duration::from_secs(6)).await;
    for &user in &users {
        assert_eq!(transcripts(&telegram, user), 1, "user {user}: one transcript, though two workers had the note");
    }
    let entries: Vec<(String, i64)> = db
        .query(
            "SELECT reason, count(*) FROM ledger_entries WHERE job_id IS NOT NULL GROUP BY reason ORDER BY reason",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(entries, vec![("charge".to_owned(), users.len() as i64)], "one charge a note, no refund");
    services.assert_ledger_balanced().await;
    for line in
        cut_off.logs().iter().filter(|l| l.contains("\"WARN\"") || l.contains("\"ERROR\"") || l.contains("lease"))
    {
        eprintln!("partition: the cut-off worker said: {line}");
    }
    stop(cut_off).await;
    drop((fleet.stop().await, other));
}

async fn stop(mut daemon: Daemon) {
    daemon.signal("TERM");
    daemon.wait(Duration::from_secs(40)).await;
}

/// The body of FAL's callback for `request_id`.
fn callback_body(request_id: &str) -> serde_json::Value {
    json!({ "request_id": request_id, "status": "OK", "payload": {} })
}

/// A signed FAL callback for `request_id`, as raw HTTP/1.1 (to cut it off
/// where a test likes): (head, body).
fn callback(fal: &FakeFal, request_id: &str) -> (String, Vec<u8>) {
    let body = serde_json::to_vec(&callback_body(request_id)).unwrap();
    let mut head = format!(
        "POST /webhooks/fal HTTP/1.1\r\nHost: aisha\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in fal.sign(request_id, unix_now(), &body) {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    (head, body)
}

#[tokio::test]
async fn a_listener_cut_off_mid_callback_leaves_it_to_the_other_and_it_is_stored_once() {
    let services = TestServices::new("partition_webhook").await;
    let fal = FakeFal::start("fal-partition").await;
    let host = Host::create("listener", 42);
    let env = |name: &str, bind: String| {
        let mut env = services.env();
        env.extend(
            [("TELEGRAM_BOT_TOKEN", "1:partition"), ("BOT_MODE", "webhook"), ("INSTANCE_ID", name)]
                .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        env.extend([("FAL_JWKS_URL".to_owned(), fal.jwks_url()), ("WEBHOOK_BIND".to_owned(), bind)]);
        env
    };
    let port = aisha_testkit::free_port();
    let cut_off = host.start_daemon(
        Path::new(BIN),
        &["run"],
        &through(&host, env("listener-cut-off", format!("0.0.0.0:{port}"))).await,
    );
    let other_port = aisha_testkit::free_port();
    let other = Daemon::start(Path::new(BIN), &["run"], &env("listener-stays", format!("127.0.0.1:{other_port}")));
    for daemon in [&cut_off, &other] {
        daemon.wait_for_log("webhook listener accepting", Duration::from_secs(30)).await;
    }

    // One callback cut off halfway through its body, one after all of it was sent, before its answer.
    let mut half = TcpStream::connect((host.addr, port)).await.unwrap();
    let (head, body) = callback(&fal, "req-half");
    half.write_all(head.as_bytes()).await.unwrap();
    half.write_all(&body[..body.len() / 2]).await.unwrap();
    let mut whole = TcpStream::connect((host.addr, port)).await.unwrap();
    let (head, whole_body) = callback(&fal, "req-whole");
    whole.write_all(head.as_bytes()).await.unwrap();
    whole.write_all(&whole_body).await.unwrap();
    host.cut();

    // FAL's retries, to the listener that stayed.
    let other_url = format!("http://127.0.0.1:{other_port}/webhooks/fal");
    for request_id in ["req-half", "req-whole"] {
        assert_eq!(
            fal.deliver(&other_url, request_id, &callback_body(request_id)).await,
            200,
            "{request_id}: the retry is taken"
        );
    }
    host.restore();
    // The cut-off listener now gets the rest of the first and may answer both: a duplicate each.
    half.write_all(&body[body.len() / 2..]).await.unwrap();
    let mut answers = Vec::new();
    for stream in [&mut half, &mut whole] {
        let mut answer = vec![0; 256];
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer)).await;
        answers.push(
            read.ok()
                .and_then(Result::ok)
                .map(|n| String::from_utf8_lossy(&answer[..n]).lines().next().unwrap_or_default().to_owned()),
        );
    }
    eprintln!("partition: the cut-off listener answered, once back: {answers:?}");

    let db = services.db().await;
    for request_id in ["req-half", "req-whole"] {
        let stored: i64 = db
            .query_one("SELECT count(*) FROM fal_callbacks WHERE request_id = $1", &[&request_id])
            .await
            .unwrap()
            .get(0);
        assert_eq!(stored, 1, "{request_id}: stored once");
    }
    for daemon in [cut_off, other] {
        stop(daemon).await;
    }
}
