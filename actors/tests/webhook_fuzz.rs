//! Generated junk at the two HTTP parsers of the webhook listener, FAL
//! callbacks and Telegram updates: 100,000 requests a run, half each, with
//! malformed, missing and forged headers, bodies of every encoding and size,
//! and raw bytes that are not HTTP at all. No panic, no 5xx, nothing written,
//! and the listener still serves a genuine callback at the end.
//! `AISHA_FUZZ_SEED=N` replays a run; `AISHA_FUZZ_REQUESTS=N` sets the
//! number per parser.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aisha_actors::secret::Secret;
use aisha_actors::webhook::WebhookListener;
use aisha_testkit::fal::{sign_with, unix_now, FAL_USER_ID};
use aisha_testkit::{FakeFal, FakeTelegram};
use futures::StreamExt;
use ractor::Actor;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "8080:FUZZ-token-abcdefgh";
const SECRET: &str = "fuzz-telegram-secret";
const MAX_BODY: usize = 64 * 1024;

fn junk_bytes(rng: &mut StdRng, lengths: std::ops::Range<usize>) -> Vec<u8> {
    let len = rng.gen_range(lengths);
    (0..len).map(|_| rng.gen()).collect()
}

fn junk_text(rng: &mut StdRng) -> String {
    const PIECES: &[&str] = &[
        "",
        " ",
        "null",
        "0",
        "-1",
        "1e400",
        "9223372036854775808",
        "\"\"",
        "{",
        "}",
        "[",
        "]",
        "\\u0000",
        "ü",
        "😀",
        "\u{202e}",
        "%00",
        "../",
        "\r\n",
        "\"request_id\"",
        "\"status\":\"OK\"",
        "\"update_id\"",
        ":",
        ",",
        "true",
        "{\"a\":",
        "'",
        "\\",
    ];
    (0..rng.gen_range(0..12)).map(|_| PIECES[rng.gen_range(0..PIECES.len())]).collect()
}

/// A body: nothing, random bytes, near-JSON, deep nesting, or around the size limit.
fn body(rng: &mut StdRng) -> Vec<u8> {
    match rng.gen_range(0..8) {
        0 => Vec::new(),
        1 => junk_bytes(rng, 1..512),
        2 => junk_text(rng).into_bytes(),
        3 => format!(
            "{{\"request_id\":{},\"status\":{},\"payload\":{}}}",
            junk_text(rng),
            junk_text(rng),
            junk_text(rng)
        )
        .into_bytes(),
        4 => "[".repeat(rng.gen_range(1..5000)).into_bytes(),
        5 => vec![b'a'; MAX_BODY + rng.gen_range(0..3)],
        6 => format!(
            "{{\"update_id\":{},\"message\":{}}}",
            ["\"7\"", "1.5", "null", "[]", "-0.0"][rng.gen_range(0..5)],
            junk_text(rng)
        )
        .into_bytes(),
        _ => serde_json::json!({ "request_id": junk_text(rng), "status": "OK", "payload": { "images": [] } })
            .to_string()
            .into_bytes(),
    }
}

/// FAL-looking headers: each of the four missing, wrong or malformed at random.
fn fal_headers(rng: &mut StdRng, forger: &ed25519_dalek::SigningKey, body: &[u8]) -> Vec<(String, Vec<u8>)> {
    let request_id = if rng.gen_bool(0.5) { "req-fuzz".to_owned() } else { junk_text(rng) };
    let user = match rng.gen_range(0..3) {
        0 => FAL_USER_ID.to_owned(),
        1 => "another-account".to_owned(),
        _ => junk_text(rng),
    };
    let timestamp = match rng.gen_range(0..4) {
        0 => unix_now(),
        1 => unix_now() - rng.gen_range(301..1_000_000),
        2 => rng.gen(),
        _ => 0,
    };
    // Signed by a key FAL never had: right shape, wrong signer.
    let mut headers: Vec<(String, Vec<u8>)> =
        sign_with(forger, &request_id, &user, timestamp, body).into_iter().map(|(k, v)| (k, v.into_bytes())).collect();
    for header in headers.iter_mut() {
        match rng.gen_range(0..10) {
            0 => header.1 = junk_text(rng).into_bytes(),
            1 => header.1 = junk_bytes(rng, 0..200),
            2 => header.1 = "f".repeat(rng.gen_range(1..300)).into_bytes(),
            _ => {}
        }
    }
    if rng.gen_bool(0.2) {
        headers.remove(rng.gen_range(0..headers.len()));
    }
    headers
}

fn telegram_headers(rng: &mut StdRng) -> Vec<(String, Vec<u8>)> {
    let secret: Vec<u8> = match rng.gen_range(0..5) {
        0 => return Vec::new(),
        1 => SECRET.into(),
        2 => format!("{SECRET}x").into_bytes(),
        3 => junk_bytes(rng, 0..64),
        _ => junk_text(rng).into_bytes(),
    };
    vec![("x-telegram-bot-api-secret-token".into(), secret)]
}

fn content_type(rng: &mut StdRng) -> Option<&'static str> {
    [
        None,
        Some("application/json"),
        Some("text/plain"),
        Some("application/json; charset=utf-16"),
        Some("multipart/form-data; boundary=x"),
    ][rng.gen_range(0..5)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_at_both_webhook_parsers_gets_4xx_writes_nothing_and_breaks_nothing() {
    let telegram = FakeTelegram::start(TOKEN).await;
    let fal = FakeFal::start("fal-fuzz-key").await;
    let port = aisha_testkit::free_port();
    let (telegram_url, jwks_url) = (telegram.url(), fal.jwks_url());
    let (_test, services) = common::services("webhook_fuzz", |s| {
        common::use_telegram(s, TOKEN, telegram_url);
        s.telegram.webhook_secret = Secret::new(SECRET);
        s.fal.jwks_url = jwks_url;
        s.fal.user_id = FAL_USER_ID.into();
        s.http.webhook_bind = ([127, 0, 0, 1], port).into();
        s.http.max_body = aisha_actors::settings::ByteSize(MAX_BODY as u64);
    })
    .await;
    let (listener, _) = Actor::spawn(None, WebhookListener, services.clone()).await.unwrap();

    let seed: u64 = std::env::var("AISHA_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    let per_parser: usize = std::env::var("AISHA_FUZZ_REQUESTS").ok().and_then(|s| s.parse().ok()).unwrap_or(50_000);
    eprintln!("fuzz seed {seed} (AISHA_FUZZ_SEED={seed} replays this run), {per_parser} requests per parser");
    let forger = ed25519_dalek::SigningKey::from_bytes(&[11u8; 32]);
    let client = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();
    let statuses: Arc<std::sync::Mutex<std::collections::BTreeMap<u16, usize>>> = Default::default();
    let server_errors = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();

    let requests = (0..per_parser * 2).map(|i| {
        let mut rng = StdRng::seed_from_u64(seed.wrapping_add(i as u64));
        let (client, statuses, server_errors) = (client.clone(), statuses.clone(), server_errors.clone());
        let forger = forger.clone();
        async move {
            let body = body(&mut rng);
            let (path, headers) = if i % 2 == 0 {
                ("/webhooks/fal", fal_headers(&mut rng, &forger, &body))
            } else {
                ("/webhooks/telegram", telegram_headers(&mut rng))
            };
            let mut request = client.post(format!("http://127.0.0.1:{port}{path}")).body(body.clone());
            for (name, value) in headers {
                if let Ok(value) = reqwest::header::HeaderValue::from_bytes(&value) {
                    request = request.header(name, value);
                }
            }
            if let Some(content_type) = content_type(&mut rng) {
                request = request.header("content-type", content_type);
            }
            let status = match request.send().await {
                Ok(response) => response.status().as_u16(),
                Err(e) => panic!("request {i} (seed {seed}) got no answer: {e:?}"),
            };
            if status >= 500 {
                server_errors.fetch_add(1, Ordering::Relaxed);
                eprintln!(
                    "5xx {status} for request {i}: {path} {}",
                    String::from_utf8_lossy(&body).chars().take(120).collect::<String>()
                );
            }
            *statuses.lock().unwrap().entry(status).or_default() += 1;
        }
    });
    futures::stream::iter(requests).buffer_unordered(32).collect::<Vec<()>>().await;

    // Bytes that are not HTTP at all, and HTTP broken on the wire.
    for i in 0..500u64 {
        let mut rng = StdRng::seed_from_u64(seed ^ (i << 32));
        let raw: Vec<u8> = match i % 4 {
            0 => junk_bytes(&mut rng, 1..2048),
            1 => format!("POST /webhooks/fal HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", junk_text(&mut rng))
                .into_bytes(),
            2 => format!(
                "POST /webhooks/telegram HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n{}\r\n",
                junk_text(&mut rng)
            )
            .into_bytes(),
            _ => [b"POST /webhooks/fal HTTP/1.1\r\n".as_slice(), &junk_bytes(&mut rng, 300..301), b"\r\n\r\n"].concat(),
        };
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let _ = stream.write_all(&raw).await;
        let _ = stream.shutdown().await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(15), stream.read_to_end(&mut answer)).await;
        let head = String::from_utf8_lossy(&answer);
        assert!(
            !head.starts_with("HTTP/1.1 5"),
            "raw request {i} (seed {seed}) got {}",
            head.lines().next().unwrap_or_default()
        );
    }

    let elapsed = started.elapsed();
    let statuses = statuses.lock().unwrap().clone();
    eprintln!("fuzz figure: {} requests + 500 raw in {elapsed:?}; statuses {statuses:?}", per_parser * 2);
    assert_eq!(server_errors.load(Ordering::Relaxed), 0, "no 5xx: {statuses:?}");
    assert!(statuses.keys().all(|s| (400..500).contains(s)), "only refusals: {statuses:?}");
    let client_db = services.db.client().await.unwrap();
    for table in ["fal_callbacks", "telegram_updates", "jobs"] {
        let n: i64 = client_db.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await.unwrap().get(0);
        assert_eq!(n, 0, "{table}: nothing written");
    }
    assert_eq!(listener.get_status(), ractor::ActorStatus::Running);
    let genuine = br#"{"request_id":"req-genuine","status":"OK","payload":{}}"#.to_vec();
    let mut request = client.post(format!("http://127.0.0.1:{port}/webhooks/fal")).body(genuine.clone());
    for (name, value) in fal.sign("req-genuine", unix_now(), &genuine) {
        request = request.header(name, value);
    }
    assert_eq!(request.send().await.unwrap().status(), 200, "still serving");
    listener.stop(None);
}
