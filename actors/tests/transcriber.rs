//! Voice to text end to end: an update from the fake Bot API, through the
//! poller, the ledger and the queue, to a Transcriber worker using real
//! ffmpeg, PostgreSQL, Redis and SeaweedFS, and the fake OpenAI API.

mod common;

use std::time::Duration;

use aisha_testkit::audio::{absurdly_long_voice_note, tone_with_pauses, voice_note};
use aisha_testkit::eventually;
use aisha_testkit::openai::Answer;
use bytes::Bytes;
use common::chat_rig::{workers, Rig, WAIT};
use serde_json::json;

const TOKEN: &str = "8080:TRANSCRIBER-token-xyz";
const USER: i64 = 3001;

async fn rig(name: &str, tweak: impl FnOnce(&mut aisha_actors::settings::Settings)) -> Rig {
    common::chat_rig::rig(name, TOKEN, USER, tweak).await
}

#[tokio::test]
async fn a_short_voice_note_comes_back_as_text_with_digest_buttons() {
    let rig = rig("tr_short", |_| {}).await;
    let pool = workers(&rig.services, "w1").await;
    let audio = voice_note("Hello, this is a short voice note.");
    rig.telegram.push_voice(USER, "en", 3, audio.clone());
    eventually("transcript", WAIT, || rig.transcripts_sent().len() == 1).await;

    let sent = rig.telegram.calls("sendMessage");
    let reply = sent.iter().find(|c| c.params["text"].as_str().unwrap_or_default().starts_with("📝")).unwrap();
    assert!(
        reply.params["text"].as_str().unwrap().contains(&format!("transcript of voice.ogg ({} bytes)", audio.len())),
        "sent as is"
    );
    let buttons = reply.params["reply_markup"]["inline_keyboard"][0].as_array().unwrap();
    assert_eq!(buttons.len(), 3, "Summary, Action items, Minutes");
    let files = reply.params["reply_markup"]["inline_keyboard"][1].as_array().unwrap();
    let labels: Vec<&str> = files.iter().filter_map(|b| b["text"].as_str()).collect();
    assert_eq!(labels, ["🎬 .srt", "🎬 .vtt", "📄 .txt"], "whisper-1 gives timing");
    let call = &rig.openai.transcriptions()[0];
    assert_eq!(
        (call.model.as_str(), call.temperature.as_deref(), call.response_format.as_deref()),
        ("whisper-1", Some("0"), Some("verbose_json"))
    );
    assert_eq!(call.language, None, "auto: the API detects the language");
    assert_eq!(call.content_type.as_deref(), Some("audio/ogg"));
    // A short note needs no progress message: "typing…", then the text.
    assert!(
        !rig.telegram.sent_texts(USER).iter().any(|t| t.contains("Transcribing")),
        "no status message for one chunk"
    );
    assert!(rig.telegram.calls("editMessageText").is_empty());
    assert!(!rig.telegram.calls("sendChatAction").is_empty(), "typing shown by the worker");

    let row = rig.row("SELECT audio_key, text_key, chunk_count FROM transcripts").await;
    let (audio_key, text_key): (String, String) = (row.get(0), row.get(1));
    assert_eq!(rig.services.blob.get(&audio_key).await.unwrap(), audio, "the original is kept in S3");
    assert!(String::from_utf8(rig.services.blob.get(&text_key).await.unwrap().to_vec())
        .unwrap()
        .starts_with("transcript of"));
    assert_eq!(row.get::<_, i32>(2), 1);
    assert_eq!(rig.balance().await, 99, "one started minute");
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn a_25_minute_recording_is_cut_at_silences_and_joined_in_order_with_progress() {
    let rig = rig("tr_long", |_| {}).await;
    let pool = workers(&rig.services, "w1").await;
    let audio = tone_with_pauses(1500, 50, 3);
    rig.telegram.push_voice(USER, "en", 1537, audio);
    eventually("transcript", Duration::from_secs(90), || rig.transcripts_sent().len() == 1).await;

    let text = &rig.transcripts_sent()[0];
    let positions: Vec<usize> =
        (0..3).map(|i| text.find(&format!("chunk_{i}.ogg")).expect("every chunk in the text")).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "joined in order: {text}");
    let uploads = rig.openai.transcriptions();
    assert_eq!(uploads.len(), 3);
    assert!(uploads.iter().all(|u| u.file_len < 25 * 1024 * 1024));
    let progress: Vec<String> = rig
        .telegram
        .calls("editMessageText")
        .iter()
        .filter_map(|c| c.params["text"].as_str().map(str::to_owned))
        .collect();
    for step in ["1/3", "2/3", "3/3"] {
        assert!(progress.iter().any(|p| p.ends_with(step)), "progress {step} in {progress:?}");
    }
    let plan: serde_json::Value =
        rig.services.db.client().await.unwrap().query_one("SELECT plan FROM transcripts", &[]).await.unwrap().get(0);
    let cuts: Vec<f64> = plan.as_array().unwrap().iter().skip(1).map(|c| c["start"].as_f64().unwrap()).collect();
    for cut in cuts {
        let into_cycle = cut % 53.0;
        assert!((50.0..=53.0).contains(&into_cycle), "cut at {cut} lies in a pause");
    }
    // Declared 1537 s (26 minutes), measured 24:45 (1484 s of timestamps; the 28 cycles joined by
    // stream copy each play their last packet whole, 0.6 s more): 25 started minutes are the price.
    assert_eq!(rig.balance().await, 100 - 25);
    assert!(
        rig.telegram.sent_texts(USER).iter().any(|t| t.contains("24:45 long: 1 coins refunded")),
        "{:?}",
        rig.telegram.sent_texts(USER)
    );
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn a_429_then_success_gives_one_reply() {
    let rig = rig("tr_429", |_| {}).await;
    rig.openai.script_transcriptions([Answer::RateLimited(1)]);
    let pool = workers(&rig.services, "w1").await;
    rig.telegram.push_voice(USER, "en", 3, voice_note("Rate limits happen."));
    eventually("transcript", WAIT, || rig.transcripts_sent().len() == 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rig.transcripts_sent().len(), 1);
    assert_eq!(rig.openai.transcriptions().len(), 2);
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn an_attempt_whose_chunk_keeps_failing_leaves_its_retry_the_original_in_s3() {
    let rig = rig("tr_retry_original", |_| {}).await;
    // Four refusals use up an attempt's tries; the job's retry is answered.
    rig.openai.script_transcriptions((0..4).map(|_| Answer::RateLimited(1)));
    let pool = workers(&rig.services, "w1").await;
    rig.telegram.push_voice(USER, "en", 3, voice_note("Kept for the retry."));
    eventually("transcript", Duration::from_secs(60), || rig.transcripts_sent().len() == 1).await;
    assert_eq!(rig.scalar("SELECT attempts::bigint FROM jobs").await, 2, "retried as a job");
    assert_eq!(rig.openai.transcriptions().len(), 5);
    assert_eq!(rig.telegram.calls("getFile").len(), 1, "the retry read the original its first attempt kept in S3");
    let key = rig.row("SELECT audio_key FROM transcripts").await.get::<_, String>(0);
    assert!(rig.services.blob.get(&key).await.is_ok(), "kept");
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn insufficient_quota_fails_at_once_with_a_refund_and_a_message() {
    let rig = rig("tr_quota", |_| {}).await;
    rig.openai.script_transcriptions([Answer::InsufficientQuota]);
    let pool = workers(&rig.services, "w1").await;
    rig.telegram.push_voice(USER, "en", 61, voice_note("No quota left."));
    eventually("told", WAIT, || rig.telegram.sent_texts(USER).iter().any(|t| t.contains("Failed"))).await;
    let told = rig.telegram.sent_texts(USER).into_iter().find(|t| t.contains("Failed")).unwrap();
    // Two minutes declared and charged, one given back once measured, the other now.
    assert!(told.contains("1 coins refunded"), "{told}");
    assert_eq!(rig.balance().await, 100);
    assert_eq!(rig.openai.transcriptions().len(), 1, "not retried");
    assert_eq!(rig.scalar("SELECT count(*) FROM jobs WHERE state = 'dead' AND attempts = 1").await, 1);
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn a_file_telegram_will_not_hand_over_is_refunded_without_retry() {
    let rig = rig("tr_toobig", |_| {}).await;
    let pool = workers(&rig.services, "w1").await;
    // Telegram sometimes omits file_size; then only getFile says it is too big.
    let file_id = rig.telegram.add_file("voice/huge.oga", Bytes::from(vec![0u8; 21 * 1024 * 1024]));
    let message = rig.telegram.user_message(
        USER,
        "en",
        json!({ "voice": {
        "file_id": file_id, "file_unique_id": "uhuge", "duration": 60, "mime_type": "audio/ogg" } }),
    );
    rig.telegram.push_update(json!({ "message": message }));
    eventually("told", WAIT, || rig.telegram.sent_texts(USER).iter().any(|t| t.contains("20 MB"))).await;
    assert_eq!(rig.balance().await, 100, "refunded");
    assert_eq!(rig.scalar("SELECT attempts::bigint FROM jobs").await, 1, "no retry");
    assert!(rig.openai.transcriptions().is_empty());
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn a_worker_killed_between_chunks_is_finished_by_another_once() {
    let rig = rig("tr_killed", |s| {
        s.jobs.lease = Duration::from_secs(1);
        s.transcription.parallel_chunks = 1;
    })
    .await;
    rig.openai.set_latency(Duration::from_millis(600));
    let first = workers(&rig.services, "worker-a").await;
    rig.telegram.push_voice(USER, "en", 1537, tone_with_pauses(1500, 50, 3));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while rig.scalar("SELECT count(*) FROM transcript_chunks").await < 1 {
        assert!(tokio::time::Instant::now() < deadline, "no chunk finished");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.kill();

    let second = workers(&rig.services, "worker-b").await;
    eventually("transcript", Duration::from_secs(90), || rig.transcripts_sent().len() == 1).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(rig.transcripts_sent().len(), 1, "no duplicate message");
    let uploads = rig.openai.transcriptions();
    assert_eq!(uploads.iter().filter(|u| u.file_name == "chunk_0.ogg").count(), 1, "the finished chunk was not redone");
    assert!(uploads.len() <= 4, "at most the one chunk in flight at the kill is redone: {}", uploads.len());
    assert_eq!(rig.scalar("SELECT count(*) FROM jobs WHERE state = 'done'").await, 1);
    second.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn a_long_transcript_arrives_as_a_text_document() {
    let rig = rig("tr_document", |_| {}).await;
    rig.openai.script_transcriptions([Answer::Text("This is a sentence of the long talk. ".repeat(600))]);
    let pool = workers(&rig.services, "w1").await;
    rig.telegram.push_voice(USER, "en", 5, voice_note("A long talk."));
    eventually("document", WAIT, || !rig.telegram.calls("sendDocument").is_empty()).await;
    let doc = &rig.telegram.calls("sendDocument")[0];
    assert_eq!(doc.params["document"]["file_name"], "transcript.txt");
    let caption = doc.params["caption"].as_str().unwrap();
    assert!(
        caption.starts_with("📝 Transcript") && caption.contains("«This is a sentence of the long talk."),
        "{caption}"
    );
    assert!(rig.transcripts_sent().is_empty(), "not as messages");
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn no_speech_is_said_plainly_and_refunded() {
    let rig = rig("tr_silence", |_| {}).await;
    rig.openai.script_transcriptions([Answer::Text(String::new())]);
    let pool = workers(&rig.services, "w1").await;
    rig.telegram.push_voice(USER, "en", 3, voice_note("..."));
    eventually("told", WAIT, || rig.telegram.sent_texts(USER).iter().any(|t| t.contains("No speech"))).await;
    assert_eq!(rig.balance().await, 100);
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn the_summary_button_runs_a_chat_completion_on_the_transcript_and_history_resends_it() {
    let rig = rig("tr_summary", |_| {}).await;
    rig.openai.script_transcriptions([Answer::Text("We agreed that Anna ships the release on Friday.".into())]);
    rig.openai.script_chat([Answer::Text("Anna ships the release on Friday.".into())]);
    let pool = workers(&rig.services, "w1").await;
    rig.telegram.push_voice(USER, "en", 3, voice_note("Meeting."));
    eventually("transcript", WAIT, || rig.transcripts_sent().len() == 1).await;
    let id = rig.scalar("SELECT id FROM transcripts").await;

    rig.telegram.push_callback(USER, "en", &format!("digest:summary:{id}"), 1);
    eventually("summary", WAIT, || rig.telegram.sent_texts(USER).iter().any(|t| t.starts_with("📋 Summary"))).await;
    let chat = &rig.openai.chats()[0];
    assert!(chat["messages"][1]["content"].as_str().unwrap().contains("Anna ships the release"));
    assert!(chat["messages"][0]["content"].as_str().unwrap().contains("Answer in English"));
    assert_eq!(rig.balance().await, 100 - 1 - 1, "one minute, one digest");

    // The digest job run again, as a retry after an outage would: what was
    // paid for is sent again, the completion is not asked for twice.
    let client = rig.services.db.client().await.unwrap();
    client
        .execute(
            "UPDATE jobs SET state = 'queued', run_at = now(), locked_by = NULL, locked_until = NULL
             WHERE kind = 'transcript.digest'",
            &[],
        )
        .await
        .unwrap();
    let summaries = || rig.telegram.sent_texts(USER).iter().filter(|t| t.starts_with("📋 Summary")).count();
    eventually("the summary again", WAIT, || summaries() == 2).await;
    assert_eq!(rig.openai.chats().len(), 1, "one chat completion, kept for the retry");
    assert_eq!(rig.balance().await, 100 - 1 - 1, "charged once");

    rig.telegram.push_text(USER, "en", "/history");
    eventually("history", WAIT, || rig.telegram.sent_texts(USER).iter().any(|t| t.starts_with("📝 Your transcripts")))
        .await;
    rig.telegram.push_callback(USER, "en", &format!("transcript:{id}"), 2);
    eventually("resent", WAIT, || rig.transcripts_sent().len() == 2).await;
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn a_recording_over_the_length_cap_is_refused_and_refunded_before_any_api_call() {
    let rig = rig("tr_over_cap", |s| s.transcription.max_duration = Duration::from_secs(1)).await;
    let pool = workers(&rig.services, "w1").await;
    rig.telegram.push_voice(USER, "en", 1, voice_note("This one is longer than the cap allows."));
    eventually("told", WAIT, || rig.telegram.sent_texts(USER).iter().any(|t| t.contains("I transcribe up to 0:01")))
        .await;
    assert!(rig.openai.transcriptions().is_empty(), "no API call");
    assert_eq!(rig.balance().await, 100, "refunded");
    let user_id = rig.scalar(&format!("SELECT id FROM users WHERE telegram_id = {USER}")).await;
    let kept = rig.services.blob.delete_prefix(&format!("audio/{user_id}/")).await.unwrap();
    assert_eq!(kept, 0, "a refused recording is not kept in S3");
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn a_file_without_a_length_is_charged_an_estimate_and_settled_on_the_measured_length() {
    let rig = rig("tr_estimate", |_| {}).await;
    let pool = workers(&rig.services, "w1").await;
    // An audio document: no duration from Telegram. 2:39 of low-bitrate Opus
    // is small enough to suggest under a minute at 128 kbit/s: one minute up
    // front; measured, it is three, so two more are charged.
    let bytes = tone_with_pauses(200, 50, 3);
    let file_id = rig.telegram.add_file("documents/meeting.ogg", bytes.clone());
    let document = json!({ "file_id": file_id, "file_unique_id": "udoc-estimate", "file_name": "meeting.ogg", "mime_type": "audio/ogg", "file_size": bytes.len() });
    let message = rig.telegram.user_message(USER, "en", json!({ "document": document }));
    rig.telegram.push_update(json!({ "message": message }));
    eventually("transcript", WAIT, || rig.transcripts_sent().len() == 1).await;
    let texts = rig.telegram.sent_texts(USER);
    assert!(texts.iter().any(|t| t.contains("Charged 1,")), "{texts:?}");
    assert!(texts.iter().any(|t| t.contains("2:39 long: 2 more coins charged")), "{texts:?}");
    assert_eq!(rig.balance().await, 97);
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn a_recording_claiming_an_absurd_length_is_refused_and_refunded_before_any_api_call() {
    let rig = rig("tr_absurd", |_| {}).await;
    let pool = workers(&rig.services, "w1").await;
    rig.telegram.push_voice(USER, "en", 2, absurdly_long_voice_note("Three thousand years of silence."));
    eventually("told", WAIT, || rig.telegram.sent_texts(USER).iter().any(|t| t.contains("Failed"))).await;
    let told = rig.telegram.sent_texts(USER).join("\n");
    assert!(told.contains("I transcribe up to 4:00:00"), "{told}");
    assert!(rig.openai.transcriptions().is_empty(), "no API call, no plan of millions of chunks");
    assert_eq!(rig.balance().await, 100, "refunded");
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn a_transcript_for_a_user_who_blocked_the_bot_stays_in_history_and_the_charge_stands() {
    let rig = rig("tr_blocked", |_| {}).await;
    rig.openai.set_latency(Duration::from_secs(2));
    let pool = workers(&rig.services, "w1").await;
    rig.telegram.push_voice(USER, "en", 2, voice_note("Nobody will read this."));
    // The worker's "typing…" and the bot's "queued" are out: the next message is the transcript.
    eventually("transcribing", WAIT, || {
        !rig.telegram.calls("sendChatAction").is_empty()
            && rig.telegram.sent_texts(USER).iter().any(|t| t.starts_with("⏳ Queued"))
    })
    .await;
    rig.telegram.fail_next(
        "sendMessage",
        aisha_testkit::telegram::Failure::Status(403, "Forbidden: bot was blocked by the user".into()),
    );
    let deadline = std::time::Instant::now() + WAIT;
    while rig.scalar("SELECT count(*) FROM jobs WHERE kind = 'transcribe' AND state = 'done'").await == 0 {
        assert!(std::time::Instant::now() < deadline, "the job never ended");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(rig.scalar("SELECT count(*) FROM transcripts WHERE delivered_at IS NOT NULL").await, 1, "in /history");
    assert_eq!(rig.balance().await, 99, "not refunded: the transcript was made");
    assert_eq!(rig.openai.transcriptions().len(), 1, "403 is not retried");
    common::assert_ledger(&rig.services).await;
    pool.stop(None);
    rig.stop();
}
