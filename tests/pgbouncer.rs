//! The daemon behind PgBouncer (Debian's), as managed PostgreSQL offers it
//! and large deployments run it. Session pooling keeps what the daemon needs
//! of a session: LISTEN (workers woken by NOTIFY), the presence advisory
//! locks and prepared statements. Transaction pooling keeps none of the
//! three, which docs/operations.md ("Data tier") says.

use std::path::Path;
use std::time::Duration;

use aisha_testkit::audio::voice_note;
use aisha_testkit::daemon::all_mode_env;
use aisha_testkit::fleet::transcripts;
use aisha_testkit::private::PrivatePgBouncer;
use aisha_testkit::{eventually, Daemon, FakeOpenAi, FakeTelegram, TestServices};

const TOKEN: &str = "50505:PGBOUNCER-token";
const BIN: &str = env!("CARGO_BIN_EXE_aishad");

#[tokio::test]
async fn behind_pgbouncer_in_session_mode_notes_are_answered_once_and_workers_hold_their_presence() {
    let services = TestServices::new("pgbouncer_session").await;
    let direct = url::Url::parse(&services.database_url).unwrap();
    let upstream = (direct.host_str().unwrap(), direct.port().unwrap());
    let bouncer = PrivatePgBouncer::start(upstream, direct.username(), direct.password().unwrap(), "session").await;
    let telegram = FakeTelegram::start(TOKEN).await;
    let openai = FakeOpenAi::start("sk-pgbouncer").await;
    let mut env: Vec<(String, String)> = services.env().into_iter().filter(|(k, _)| k != "DATABASE_URL").collect();
    let through = format!("postgres://{}@127.0.0.1:{}/{}", direct.username(), bouncer.port, services.database_name);
    env.push(("DATABASE_URL".into(), through));
    env.extend(all_mode_env(&telegram, &openai));
    let mut daemon = Daemon::start(Path::new(BIN), &["run"], &env);

    let users: Vec<i64> = (5600..5606).collect();
    for &user in &users {
        telegram.push_text(user, "en", "/start");
    }
    eventually("welcomed", Duration::from_secs(30), || users.iter().all(|&u| !telegram.sent_texts(u).is_empty())).await;
    for &user in &users {
        telegram.push_voice(user, "en", 2, voice_note("Said through a connection pooler."));
    }
    eventually("every note transcribed", Duration::from_secs(60), || {
        users.iter().all(|&u| transcripts(&telegram, u) >= 1)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    for &user in &users {
        assert_eq!(transcripts(&telegram, user), 1, "user {user}: answered once");
    }
    assert_eq!(openai.transcription_arrivals(), users.len(), "each note sent to OpenAI once");

    // Seen from the server: the presence locks are held through the pooler,
    // and the LISTEN session is one of its sessions.
    let db = services.db().await;
    let locks: i64 = db
        .query_one("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted", &[])
        .await
        .unwrap()
        .get(0);
    assert!(locks >= 1, "the workers' presence locks are held");
    let listening: i64 = db
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(listening >= 1, "a LISTEN session");
    services.assert_ledger_balanced().await;
    daemon.signal("TERM");
    assert_eq!(daemon.wait(Duration::from_secs(30)).await, 0);
}
