//! A LoRA-sized file (300 MB) passing through a webhook process by a signed
//! `/files/` link, as FAL downloads avatar weights: streamed from S3, so the
//! process's peak memory stays far below the file, and the webhook
//! container's 128 MiB limit.

use std::path::Path;
use std::time::{Duration, Instant};

use aisha_actors::blob::Blob;
use aisha_actors::clients::fal::files;
use aisha_actors::secret::Secret;
use aisha_actors::settings::S3Settings;
use aisha_testkit::daemon::all_mode_env;
use aisha_testkit::{eventually, free_port, proc_status_kib, Daemon, FakeOpenAi, FakeTelegram, TestServices};

const BIN: &str = env!("CARGO_BIN_EXE_aishad");
const SIZE: u64 = 300 * 1024 * 1024;
const SECRET: &str = "large-files-link-secret";

/// The test's bucket, as the daemon sees it.
fn blob_of(services: &TestServices) -> Blob {
    Blob::new(&S3Settings {
        endpoint: services.s3_endpoint.clone(),
        access_key: Secret::new(&services.s3_access_key),
        secret_key: Secret::new(&services.s3_secret_key),
        bucket: services.s3_bucket.clone(),
        key_prefix: services.s3_prefix.clone(),
        ..Default::default()
    })
    .unwrap()
}

#[tokio::test]
async fn a_300_mb_file_streams_through_a_files_link_in_little_memory() {
    let services = TestServices::new("large_files").await;
    let blob = blob_of(&services);
    blob.ensure_bucket().await.unwrap();
    // Sparse: 300 MB of zeros that take no disk to make.
    let source = std::env::temp_dir().join(format!("aisha-lora-{}.safetensors", std::process::id()));
    std::fs::File::create(&source).unwrap().set_len(SIZE).unwrap();
    let key = "avatars/1/1/lora.safetensors";
    blob.put_file(key, &source, "application/octet-stream").await.unwrap();
    let _ = std::fs::remove_file(&source);

    let port = free_port();
    let mut env = services.env();
    env.extend(
        [
            ("BOT_MODE", "webhook".to_owned()),
            ("TELEGRAM_BOT_TOKEN", "1:LARGE-files-token".to_owned()),
            ("WEBHOOK_BIND", format!("127.0.0.1:{port}")),
            ("AISHA_FAL__FILES_SECRET", SECRET.to_owned()),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );
    let mut daemon = Daemon::start(Path::new(BIN), &["run"], &env);
    daemon.wait_for_log("webhook listener accepting", Duration::from_secs(30)).await;
    let before = proc_status_kib(daemon.pid(), "VmHWM:");

    let token = files::sign(SECRET.as_bytes(), key, i64::MAX / 2);
    let started = Instant::now();
    let mut response = reqwest::get(format!("http://127.0.0.1:{port}/files/{token}")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.content_length(), Some(SIZE));
    let mut received = 0u64;
    while let Some(chunk) = response.chunk().await.unwrap() {
        received += chunk.len() as u64;
    }
    let took = started.elapsed();
    let high_water = proc_status_kib(daemon.pid(), "VmHWM:");
    assert_eq!(received, SIZE);
    eprintln!(
        "large-file figure: 300 MB through /files in {took:?}; daemon peak RSS {} MiB (before the download {} MiB)",
        high_water / 1024,
        before / 1024
    );
    assert!(high_water < 96 * 1024, "peak RSS {} KiB: the file was buffered", high_water);
    blob.delete(key).await.unwrap();
    daemon.signal("TERM");
    assert_eq!(daemon.wait(Duration::from_secs(20)).await, 0);
}

/// With a local Bot API server (`--local`) a user may send 2000 MB: the
/// worker reads the file from the shared volume (never copying it whole into S3) and cuts it
/// with ffmpeg, all through files, so the daemon's memory stays flat.
#[tokio::test]
async fn a_200_mb_recording_from_a_local_bot_api_server_is_transcribed_in_chunks_in_little_memory() {
    const USER: i64 = 4401;
    let services = TestServices::new("local_api").await;
    let telegram = FakeTelegram::start("4401:LOCAL-api-token").await;
    let openai = FakeOpenAi::start("sk-local").await;
    // The local server's working directory, as the shared volume shows it.
    let volume = std::env::temp_dir().join(format!("aisha-bot-api-{}", std::process::id()));
    let recording = volume.join("4401:LOCAL-api-token/music/file_7.wav");
    std::fs::create_dir_all(recording.parent().unwrap()).unwrap();
    // 48 kHz stereo 16-bit: 1100 s is over 200 MiB, ten times what the public Bot API hands a bot.
    let made = std::process::Command::new("ffmpeg")
        .args([
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "sine=f=300:r=48000:d=1100",
            "-ac",
            "2",
            "-c:a",
            "pcm_s16le",
        ])
        .arg(&recording)
        .status()
        .unwrap();
    assert!(made.success());
    let size = std::fs::metadata(&recording).unwrap().len();
    assert!(size > 200 * 1024 * 1024, "{size}");
    let file_id = telegram.add_local_file(&recording);

    let mut env = services.env();
    env.extend(all_mode_env(&telegram, &openai));
    env.extend(
        [
            ("AISHA_TELEGRAM__LOCAL_API", "true".to_owned()),
            ("AISHA_TELEGRAM__LOCAL_FILES_DIR", volume.display().to_string()),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );
    let mut daemon = Daemon::start(Path::new(BIN), &["run"], &env);
    daemon.wait_for_log("took the poller lease; polling", Duration::from_secs(30)).await;
    let before = proc_status_kib(daemon.pid(), "VmHWM:");
    telegram.push_text(USER, "en", "/start");
    let started = Instant::now();
    telegram.push_audio_file(USER, "en", 1100, &file_id, size, "audio/wav");
    let transcript = || telegram.sent_texts(USER).iter().any(|t| t.starts_with("📝 Transcript"));
    eventually("the transcript", Duration::from_secs(240), transcript).await;
    let took = started.elapsed();
    let high_water = proc_status_kib(daemon.pid(), "VmHWM:");
    let uploads = openai.transcriptions();
    eprintln!(
        "local-api figure: {} MiB recording, {} chunks, transcribed in {took:?}; daemon peak RSS {} MiB (before {} MiB)",
        size / (1024 * 1024),
        uploads.len(),
        high_water / 1024,
        before / 1024
    );
    assert!(uploads.len() >= 2, "cut into chunks: {}", uploads.len());
    assert!(uploads.iter().all(|u| u.file_len < 25 * 1024 * 1024), "every chunk under the API's 25 MiB");
    assert!(high_water < 96 * 1024, "peak RSS {high_water} KiB: the recording was buffered");
    let blob = blob_of(&services);
    assert_eq!(blob.delete_prefix("audio/").await.unwrap(), 0, "the shared volume's file is not copied whole into S3");
    let _ = std::fs::remove_dir_all(&volume);
    daemon.signal("TERM");
    assert_eq!(daemon.wait(Duration::from_secs(30)).await, 0);
}
