//! A worker SIGKILLed while it holds jobs, as a container killed by the OOM
//! killer or `docker kill`: restarted under the same INSTANCE_ID it takes
//! its jobs back at once; any other worker takes them within `jobs.lease`.
//! Either way each voice note is answered once and charged once.

use std::path::Path;
use std::time::{Duration, Instant};

use aisha_testkit::audio::{beeps, voice_note};
use aisha_testkit::daemon::all_mode_env;
use aisha_testkit::fleet::transcripts;
use aisha_testkit::{eventually, Daemon, FakeOpenAi, FakeTelegram, TestServices};

const TOKEN: &str = "61616:RESTART-token-abcdef";
const BIN: &str = env!("CARGO_BIN_EXE_aishad");
/// Two: a worker runs two transcriptions at once (`jobs.kinds.transcribe.workers`).
const USERS: [i64; 2] = [3101, 3102];

fn start(services: &TestServices, telegram: &FakeTelegram, openai: &FakeOpenAi, instance: &str) -> Daemon {
    start_with(services, telegram, openai, instance, &[])
}

fn start_with(
    services: &TestServices,
    telegram: &FakeTelegram,
    openai: &FakeOpenAi,
    instance: &str,
    extra: &[(&str, &str)],
) -> Daemon {
    let mut env = services.env();
    env.extend(all_mode_env(telegram, openai));
    env.push(("INSTANCE_ID".into(), instance.to_owned()));
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
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

/// SIGTERM (a scale-in, a rolling update) while a long recording is
/// transcribed chunk by chunk: the worker lets the chunk at OpenAI finish,
/// keeps it, starts no other, hands the job back and exits 0 well within its
/// grace, however long the rest would take; another worker does the rest.
/// Each chunk reaches OpenAI once, and the job loses no attempt.
#[tokio::test]
async fn a_stopping_worker_hands_a_long_recording_back_and_no_chunk_is_paid_twice() {
    const USER: i64 = 3201;
    let services = TestServices::new("restart_yield").await;
    let telegram = FakeTelegram::start(TOKEN).await;
    let openai = FakeOpenAi::start("sk-restart").await;
    openai.set_latency(Duration::from_secs(3));
    let chunked = [("AISHA_TRANSCRIPTION__CHUNK_LENGTH", "20s"), ("AISHA_TRANSCRIPTION__PARALLEL_CHUNKS", "1")];
    let mut first = start_with(&services, &telegram, &openai, "worker-1", &chunked);
    telegram.push_text(USER, "en", "/start");
    eventually("the welcome", Duration::from_secs(30), || !telegram.sent_texts(USER).is_empty()).await;
    telegram.push_voice(USER, "en", 80, beeps(80, 2500, 600));
    eventually("a chunk at OpenAI", Duration::from_secs(30), || openai.transcription_arrivals() >= 1).await;

    let stopping = Instant::now();
    first.signal("TERM");
    assert_eq!(first.wait(Duration::from_secs(20)).await, 0, "a clean stop");
    let stopped = stopping.elapsed();
    let sent_before = openai.transcription_arrivals();
    first.wait_for_log("handed back to the queue", Duration::from_secs(1)).await;

    let mut second = start_with(&services, &telegram, &openai, "worker-2", &chunked);
    eventually("the transcript", Duration::from_secs(60), || transcripts(&telegram, USER) == 1).await;
    let chunks = services.scalar("SELECT count(*) FROM transcript_chunks").await as usize;
    eprintln!("restart figure: stopped {stopped:?} after SIGTERM with {sent_before} of {chunks} chunks sent");
    assert!(chunks >= 3, "a recording of several chunks: {chunks}");
    assert!(sent_before < chunks, "the stopping worker did not wait for the whole recording");
    assert_eq!(openai.transcription_arrivals(), chunks, "each chunk sent to OpenAI once");
    let attempts =
        services.scalar("SELECT max(max_attempts - attempts)::int8 FROM jobs WHERE kind = 'transcribe'").await;
    assert_eq!(attempts, 4, "the handed-back attempt was given back (5 allowed, 2 claims)");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(transcripts(&telegram, USER), 1);
    let charges = services.scalar("SELECT count(*) FROM ledger_entries WHERE reason = 'charge'").await;
    assert_eq!(charges, 1, "charged once");
    services.assert_ledger_balanced().await;
    second.signal("TERM");
    assert_eq!(second.wait(Duration::from_secs(20)).await, 0);
}
