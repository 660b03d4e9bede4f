//! The daemon through outages of what it depends on, restarted for real
//! while voice notes are in flight: it stays up, /readyz names what is
//! down, the backlog drains soon after the return, nothing is lost,
//! nothing answered or charged twice, and the ledger balances.

use std::path::Path;
use std::time::{Duration, Instant};

use aisha_testkit::audio::voice_note;
use aisha_testkit::daemon::all_mode_env;
use aisha_testkit::fleet::transcripts;
use aisha_testkit::forward::{target_of, Forwarder};
use aisha_testkit::private::PrivatePostgres;
use aisha_testkit::{eventually, Daemon, FakeFal, FakeOpenAi, FakeTelegram, TestServices};

const TOKEN: &str = "90909:OUTAGES-token-abcdef";
const BIN: &str = env!("CARGO_BIN_EXE_aishad");

/// A daemon in `all` mode against the fakes and the given services' env.
fn start(mut env: Vec<(String, String)>, telegram: &FakeTelegram, openai: &FakeOpenAi) -> Daemon {
    env.extend(all_mode_env(telegram, openai));
    Daemon::start(Path::new(BIN), &["run"], &env)
}

/// Ten users, welcomed, each sending a voice note; returns them.
async fn voice_notes_in_flight(telegram: &FakeTelegram, first_user: i64) -> Vec<i64> {
    let users: Vec<i64> = (0..10).map(|i| first_user + i).collect();
    for &user in &users {
        telegram.push_text(user, "en", "/start");
    }
    eventually("welcomed", Duration::from_secs(30), || users.iter().all(|&u| !telegram.sent_texts(u).is_empty())).await;
    for &user in &users {
        telegram.push_voice(user, "en", 2, voice_note("Said while a service is away."));
    }
    tokio::time::sleep(Duration::from_secs(2)).await; // some recorded, some charged, some at OpenAI
    users
}

/// Waits for every user's one transcript; returns how long it took.
async fn drained(telegram: &FakeTelegram, users: &[i64], since: Instant, what: &str) -> Duration {
    eventually("every note transcribed", Duration::from_secs(90), || {
        users.iter().all(|&u| transcripts(telegram, u) >= 1)
    })
    .await;
    let drained = since.elapsed();
    eprintln!("outage figure: {what}, backlog drained {drained:?} after it was back");
    tokio::time::sleep(Duration::from_secs(2)).await;
    for &user in users {
        assert_eq!(transcripts(telegram, user), 1, "user {user}: one transcript");
    }
    assert!(drained <= Duration::from_secs(30), "drained {drained:?} after the return");
    drained
}

async fn readiness(addr: std::net::SocketAddr) -> serde_json::Value {
    reqwest::get(format!("http://{addr}/readyz")).await.unwrap().json().await.unwrap()
}

/// PostgreSQL away for longer than a job's lease while transcriptions are
/// at OpenAI: what comes back is held and written once the database is back
/// (paid.rs), so no note is sent to OpenAI twice.
#[tokio::test]
async fn a_postgres_restart_under_voice_notes_in_flight_loses_and_doubles_nothing_and_pays_openai_once() {
    let shared = TestServices::new("outage_postgres").await;
    let postgres = PrivatePostgres::start().await;
    let telegram = FakeTelegram::start(TOKEN).await;
    let openai = FakeOpenAi::start("sk-outage").await;
    openai.set_latency(Duration::from_secs(3));
    let mut env: Vec<(String, String)> = shared.env().into_iter().filter(|(k, _)| k != "DATABASE_URL").collect();
    env.push(("DATABASE_URL".into(), postgres.url()));
    let mut daemon = start(env, &telegram, &openai);
    let telemetry = daemon.telemetry_addr().await;
    let users = voice_notes_in_flight(&telegram, 5100).await;

    let at_openai = openai.transcription_arrivals() - openai.transcriptions().len();
    postgres.stop();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let down = readiness(telemetry).await;
    assert_eq!(down["ready"], false, "{down}");
    assert_ne!(down["postgres"], "ok", "/readyz names the database: {down}");
    assert_eq!(down["redis"], "ok", "{down}");
    // Past the jobs' lease (6 s): their leases lapse while the calls come back.
    tokio::time::sleep(Duration::from_secs(6)).await;
    postgres.resume().await;
    let back = Instant::now();

    drained(&telegram, &users, back, "PostgreSQL restart").await;
    let (client, connection) = tokio_postgres::connect(&postgres.url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let charges: i64 =
        client.query_one("SELECT count(*) FROM ledger_entries WHERE reason = 'charge'", &[]).await.unwrap().get(0);
    assert_eq!(charges, users.len() as i64, "each note charged once");
    aisha_testkit::services::assert_ledger_balanced(&client).await;
    assert!(at_openai > 0, "some notes were at OpenAI when the database went");
    assert_eq!(openai.transcription_arrivals(), users.len(), "each note sent to OpenAI once");
    assert_eq!(readiness(telemetry).await["ready"], true);
    daemon.signal("TERM");
    assert_eq!(daemon.wait(Duration::from_secs(30)).await, 0, "it stayed up and stops cleanly");
}

/// PostgreSQL away for longer than a job's lease while an image request is
/// at FAL: the request id FAL answers with is held and written once the
/// database is back, and the job goes on from it (submit.rs): FAL bills
/// one submission.
#[tokio::test]
async fn a_postgres_restart_while_an_image_is_at_fal_submits_it_once() {
    let shared = TestServices::new("outage_fal").await;
    let postgres = PrivatePostgres::start().await;
    let telegram = FakeTelegram::start(TOKEN).await;
    let openai = FakeOpenAi::start("sk-outage").await;
    let fal = FakeFal::start("fal-outage").await;
    fal.set_submit_latency(Duration::from_secs(3));
    fal.set_callbacks(false);
    let mut env: Vec<(String, String)> = shared.env().into_iter().filter(|(k, _)| k != "DATABASE_URL").collect();
    env.push(("DATABASE_URL".into(), postgres.url()));
    env.extend(
        [
            ("FAL_KEY", fal.key.clone()),
            ("FAL_QUEUE_URL", fal.queue_url()),
            ("FAL_JWKS_URL", fal.jwks_url()),
            ("AISHA_FAL__INSECURE_HTTP", "true".to_owned()),
            ("AISHA_FAL__POLL_AFTER", "1s".to_owned()),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );
    let mut daemon = start(env, &telegram, &openai);
    telegram.push_text(5500, "en", "/start");
    eventually("welcomed", Duration::from_secs(30), || !telegram.sent_texts(5500).is_empty()).await;
    telegram.push_text(5500, "en", "/imagine a lighthouse in the fog");
    eventually("the image at FAL", Duration::from_secs(30), || fal.submissions().len() == 1).await;

    postgres.stop();
    // Past the jobs' lease (6 s): FAL answers at 3 s, while the database is away.
    tokio::time::sleep(Duration::from_secs(9)).await;
    postgres.resume().await;

    eventually("the photo", Duration::from_secs(60), || telegram.count("sendPhoto") == 1).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(fal.submissions().len(), 1, "the image submitted to FAL once");
    assert_eq!(telegram.count("sendPhoto"), 1, "one photo");
    let (client, connection) = tokio_postgres::connect(&postgres.url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    aisha_testkit::services::assert_ledger_balanced(&client).await;
    daemon.signal("TERM");
    assert_eq!(daemon.wait(Duration::from_secs(30)).await, 0, "it stayed up and stops cleanly");
}

#[tokio::test]
async fn s3_gone_for_twenty_seconds_under_voice_notes_in_flight_loses_and_doubles_nothing() {
    let shared = TestServices::new("outage_s3").await;
    let s3 = Forwarder::start([127, 0, 0, 1].into(), target_of(&shared.s3_endpoint)).await;
    let telegram = FakeTelegram::start(TOKEN).await;
    let openai = FakeOpenAi::start("sk-outage").await;
    openai.set_latency(Duration::from_secs(2));
    let mut env: Vec<(String, String)> = shared.env().into_iter().filter(|(k, _)| k != "MINIO_ENDPOINT").collect();
    env.push(("MINIO_ENDPOINT".into(), s3.addr.to_string()));
    let mut daemon = start(env, &telegram, &openai);
    let telemetry = daemon.telemetry_addr().await;
    let users = voice_notes_in_flight(&telegram, 5300).await;

    s3.cut();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let down = readiness(telemetry).await;
    assert_eq!(down["ready"], false, "{down}");
    assert_ne!(down["s3"], "ok", "/readyz names S3: {down}");
    assert_eq!(down["postgres"], "ok", "{down}");
    tokio::time::sleep(Duration::from_secs(15)).await;
    s3.restore();
    let back = Instant::now();

    drained(&telegram, &users, back, "S3 away for 20 s").await;
    shared.assert_ledger_balanced().await;
    let charges = shared.scalar("SELECT count(*) FROM ledger_entries WHERE reason = 'charge'").await;
    assert_eq!(charges, users.len() as i64, "each note charged once");
    assert_eq!(readiness(telemetry).await["ready"], true);
    daemon.signal("TERM");
    assert_eq!(daemon.wait(Duration::from_secs(30)).await, 0);
}
