//! A worker SIGKILLed while it holds jobs, as a container killed by the OOM
//! killer or `docker kill`: restarted under the same INSTANCE_ID it takes
//! its jobs back at once; any other worker takes them within `jobs.lease`.
//! Either way each voice note is answered once and charged once.

use std::path::Path;
use std::time::{Duration, Instant};

use aisha_testkit::audio::voice_note;
use aisha_testkit::daemon::all_mode_env;
use aisha_testkit::fleet::transcripts;
use aisha_testkit::{eventually, Daemon, FakeOpenAi, FakeTelegram, TestServices};

const TOKEN: &str = "61616:RESTART-token-abcdef";
const BIN: &str = env!("CARGO_BIN_EXE_aishad");
/// Two: a worker runs two transcriptions at once (`jobs.kinds.transcribe.workers`).
const USERS: [i64; 2] = [3101, 3102];

fn start(services: &TestServices, telegram: &FakeTelegram, openai: &FakeOpenAi, instance: &str) -> Daemon {
    let mut env = services.env();
    env.extend(all_mode_env(telegram, openai));
    env.push(("INSTANCE_ID".into(), instance.to_owned()));
    Daemon::start(Path::new(BIN), &["run"], &env)
}

async fn running_transcriptions(services: &TestServices) -> i64 {
    let sql = "SELECT count(*) FROM jobs WHERE kind = 'transcribe' AND state = 'running'";
    // Before the daemon has migrated there is no table yet: none running.
    services.db().await.query_one(sql, &[]).await.map(|row| row.get(0)).unwrap_or(0)
}

/// Starts a worker, gives it two voice notes that hang at OpenAI, kills
/// it, starts `successor`, and returns how long after that start every note
/// had its transcript.
async fn kill_with_jobs_in_hand(test: &str, successor: &str) -> (Duration, TestServices, FakeTelegram) {
    let services = TestServices::new(test).await;
    let telegram = FakeTelegram::start(TOKEN).await;
    let openai = FakeOpenAi::start("sk-restart").await;
    openai.set_latency(Duration::from_secs(120));
    let mut first = start(&services, &telegram, &openai, "worker-1");
    for user in USERS {
        telegram.push_text(user, "en", "/start");
        telegram.push_voice(user, "en", 2, voice_note("Held by a worker that dies."));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while running_transcriptions(&services).await < USERS.len() as i64 {
        assert!(Instant::now() < deadline, "the transcriptions never ran at once:\n{}", first.logs().join("\n"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await; // at OpenAI by now
    first.signal("KILL");
    first.wait(Duration::from_secs(5)).await;

    openai.set_latency(Duration::ZERO);
    let restarted = Instant::now();
    let mut second = start(&services, &telegram, &openai, successor);
    let answered = |u: i64| transcripts(&telegram, u);
    eventually("every note transcribed", Duration::from_secs(60), || USERS.iter().all(|&u| answered(u) >= 1)).await;
    let took = restarted.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    for user in USERS {
        assert_eq!(answered(user), 1, "user {user}: one transcript, not two");
    }
    let charges = services.scalar("SELECT count(*) FROM ledger_entries WHERE reason = 'charge'").await;
    assert_eq!(charges, USERS.len() as i64, "each note charged once");
    services.assert_ledger_balanced().await;
    second.signal("TERM");
    assert_eq!(second.wait(Duration::from_secs(20)).await, 0);
    (took, services, telegram)
}

#[tokio::test]
async fn a_worker_restarted_under_its_instance_id_takes_its_jobs_back_at_once() {
    let (took, _services, _telegram) = kill_with_jobs_in_hand("restart_same", "worker-1").await;
    eprintln!("restart figure: same INSTANCE_ID, jobs answered {took:?} after the restart");
    assert!(took < Duration::from_secs(5), "answered {took:?} after the restart");
}

#[tokio::test]
async fn another_worker_takes_a_dead_workers_jobs_within_ten_seconds() {
    let (took, _services, _telegram) = kill_with_jobs_in_hand("restart_other", "worker-2").await;
    eprintln!("restart figure: new INSTANCE_ID, jobs answered {took:?} after the start");
    assert!(took <= Duration::from_secs(10), "answered {took:?} after the start");
}
