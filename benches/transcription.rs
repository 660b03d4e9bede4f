//! A real `aishad --mode worker` process transcribing, with the fake Bot API
//! and a fake OpenAI that answers at once, against the real local services.
//! Run with `scripts/bench.sh -p aishad --bench transcription`.
//!
//! - a 60-minute recording: wall time from claim to reply, the worker's peak
//!   RSS (VmHWM; ffmpeg's own memory is in separate processes), and the share
//!   of the job spent in ffmpeg/ffprobe;
//! - a 10-second voice note, 20 times one after another: per-job overhead,
//!   i.e. claim to reply with an API that costs nothing.
//!
//! On PostgreSQL with fsync on; first pgbench's latency of one small commit
//! from one client, the floor under each of a job's writes.

use std::path::Path;
use std::time::Duration;

use aisha_actors::jobs::{queue, NewJob};
use aisha_actors::secret::ConnUrl;
use aisha_actors::settings::DatabaseSettings;
use aisha_actors::store::Db;
use aisha_testkit::audio::{tone_with_pauses, voice_note};
use aisha_testkit::ceiling;
use aisha_testkit::{Daemon, FakeOpenAi, FakeTelegram, TestServices};
use serde_json::json;

const TOKEN: &str = "5050:BENCH-transcription-token";
const USER: i64 = 77;

fn vm_hwm_kib(pid: u32) -> u64 {
    aisha_testkit::proc_status_kib(pid, "VmHWM:")
}

/// Queued as the bot queues it: charged up front for the declared length.
async fn enqueue(db: &Db, user_id: i64, key: &str, file_id: &str, duration: u32) -> i64 {
    let payload = json!({
        "chat_id": USER, "message_id": 1, "media": "voice", "file_id": file_id, "file_unique_id": key,
        "duration": duration, "mime_type": "audio/ogg", "language": "en",
    });
    let cost = i64::from(duration.div_ceil(60).max(1));
    let job = NewJob { user_id: Some(user_id), chat_id: Some(USER), cost, ..NewJob::new("transcribe", key, payload) };
    let client = db.client().await.unwrap();
    let id = queue::enqueue(&client, &job).await.unwrap().job().id;
    db.wake("transcribe");
    id
}

/// (claim → delivered ms, result JSON) once the job's transcript is delivered.
async fn wait_delivered(db: &Db, job_id: i64) -> (f64, serde_json::Value) {
    loop {
        let client = db.client().await.unwrap();
        let row = client
            .query_opt(
                "SELECT extract(epoch FROM t.delivered_at - j.claimed_at)::float8 * 1000, j.result
                 FROM transcripts t JOIN jobs j ON j.id = t.job_id
                 WHERE j.id = $1 AND j.state = 'done'",
                &[&job_id],
            )
            .await
            .unwrap();
        if let Some(row) = row {
            return (row.get(0), row.get(1));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn main() {
    aisha_testkit::bench_main(run);
}

async fn run() {
    let services = TestServices::new("bench_transcription").await;
    let telegram = FakeTelegram::start(TOKEN).await;
    let openai = FakeOpenAi::start("sk-bench").await;
    let db = Db::new(&DatabaseSettings { url: ConnUrl::new(&services.database_url), ..Default::default() }).unwrap();
    db.migrate().await.unwrap();
    let user_id: i64 = db
        .client()
        .await
        .unwrap()
        .query_one("INSERT INTO users (telegram_id, balance) VALUES ($1, 100000) RETURNING id", &[&USER])
        .await
        .unwrap()
        .get(0);

    println!("{}", ceiling::pgbench(&services.database_url, "one small write", ceiling::COMMIT, 1, 5));
    let mut env = services.env();
    env.extend(
        [
            ("TELEGRAM_BOT_TOKEN", TOKEN.to_owned()),
            ("TELEGRAM_API_URL", telegram.url()),
            ("OPENAI_API_KEY", "sk-bench".to_owned()),
            ("OPENAI_BASE_URL", openai.url()),
            ("BOT_MODE", "worker".to_owned()),
            ("LOG_LEVEL", "warn,aishad=info".to_owned()),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );
    let mut worker = Daemon::start(Path::new(env!("CARGO_BIN_EXE_aishad")), &["run"], &env);
    worker.telemetry_addr().await;
    let idle_kib = vm_hwm_kib(worker.pid());

    // One hour, with a 3 s pause every 50 s.
    let hour = tone_with_pauses(3600, 50, 3);
    let file_id = telegram.add_file("voice/hour.oga", hour.clone());
    let job = enqueue(&db, user_id, "bench-hour", &file_id, 3604).await;
    let (wall_ms, result) = wait_delivered(&db, job).await;
    let peak_kib = vm_hwm_kib(worker.pid());
    let ms = |key: &str| result[key].as_f64().unwrap_or(0.0);
    println!(
        "transcription 60 min ({:.1} MB, {} chunks): claim→reply {:.2} s; ffmpeg: probe+silencedetect {:.2} s ({:.0}% of wall, sequential), \
         chunk encodes {:.2} s summed over {} in parallel (the chunk phase took {:.2} s wall); worker peak RSS {:.1} MiB (idle {:.1} MiB)",
        hour.len() as f64 / 1e6,
        result["chunks"],
        wall_ms / 1000.0,
        ms("ffmpeg_prepare_ms") / 1000.0,
        100.0 * ms("ffmpeg_prepare_ms") / wall_ms,
        ms("ffmpeg_encode_ms") / 1000.0,
        3,
        ms("chunks_ms") / 1000.0,
        peak_kib as f64 / 1024.0,
        idle_kib as f64 / 1024.0,
    );

    let note = voice_note(
        "This is a ten second voice note, spoken slowly, to measure what a job costs besides the API call itself.",
    );
    let mut overheads = Vec::new();
    for i in 0..20 {
        let file_id = telegram.add_file(&format!("voice/note{i}.oga"), note.clone());
        let job = enqueue(&db, user_id, &format!("bench-note-{i}"), &file_id, 10).await;
        overheads.push(wait_delivered(&db, job).await.0);
    }
    overheads.sort_by(f64::total_cmp);
    println!(
        "transcription 10 s voice note ×20, one at a time: claim→reply p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms (API answers at once; with whisper-1's verbose_json)",
        overheads[9],
        overheads[17],
        overheads[19],
    );
    worker.signal("TERM");
    worker.wait(Duration::from_secs(30)).await;
}
