//! The audio the API hears is paid for: a recording's length is measured
//! from what it holds (its Opus packets counted, or the file decoded), not
//! read from what its container claims; the API is never sent more than was
//! measured; what the API says it heard is a second check; and a backend
//! that answers text without timing keeps its text. A failure says nothing
//! of ours to the user. Real ffmpeg, PostgreSQL, Redis and S3; the Bot API
//! and OpenAI fakes, the OpenAI one decoding every upload to count what it heard.

mod common;

use std::time::Duration;

use aisha_testkit::audio::{switching_formats, voice_note, voice_note_claiming, with_a_damaged_page};
use aisha_testkit::eventually;
use aisha_testkit::openai::Answer;
use common::chat_rig::{workers, Rig, WAIT};

const TOKEN: &str = "8080:AUDIO-PAID-token-xyz";
const USER: i64 = 3101;
/// `voice_note_claiming(1200, 60)` holds 22 cycles of 53 s: 19:26, twenty started minutes.
const HELD_SECONDS: f64 = 22.0 * 53.0;

async fn rig(name: &str, tweak: impl FnOnce(&mut aisha_actors::settings::Settings)) -> Rig {
    let rig = common::chat_rig::rig(name, TOKEN, USER, tweak).await;
    rig.openai.hear_lengths();
    rig
}

fn told(rig: &Rig, needle: &str) -> bool {
    rig.telegram.sent_texts(USER).iter().any(|t| t.contains(needle))
}

#[tokio::test]
async fn a_voice_note_whose_last_page_claims_a_minute_is_charged_for_the_twenty_it_holds() {
    let rig = rig("paid_lying_ogg", |_| {}).await;
    let pool = workers(&rig.services, "w1").await;
    // Telegram's declared duration and the last page both say 60 s.
    rig.telegram.push_voice(USER, "en", 60, voice_note_claiming(1200, 60));
    eventually("transcript", Duration::from_secs(90), || rig.transcripts_sent().len() == 1).await;

    assert!(told(&rig, "The recording is 19:2"), "the measured length is said: {:?}", rig.telegram.sent_texts(USER));
    assert_eq!(rig.balance().await, 100 - 20, "twenty started minutes, not one");
    let heard = rig.openai.heard_seconds();
    assert!(heard <= 20.0 * 60.0, "the API heard {heard:.1} s, more than the 20 minutes charged");
    assert!(heard >= HELD_SECONDS - 5.0, "all of it was transcribed: {heard:.1} s");
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn a_recording_the_walk_cannot_vouch_for_is_decoded_to_measure_it() {
    // A page with a bad checksum: the packet walk gives up, ffmpeg decodes
    // the file (skipping that page), and the claim of 60 s is not believed.
    let rig = rig("paid_damaged_ogg", |_| {}).await;
    let pool = workers(&rig.services, "w1").await;
    rig.telegram.push_voice(USER, "en", 60, with_a_damaged_page(&voice_note_claiming(1200, 60)));
    eventually("transcript", Duration::from_secs(90), || rig.transcripts_sent().len() == 1).await;

    assert_eq!(rig.balance().await, 100 - 20);
    let heard = rig.openai.heard_seconds();
    assert!((HELD_SECONDS - 10.0..=20.0 * 60.0).contains(&heard), "heard {heard:.1} s");
    assert!(
        rig.openai.transcriptions().iter().all(|t| t.file_name.starts_with("chunk_")),
        "cut and re-encoded, never sent as it came"
    );
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn what_the_balance_cannot_cover_once_measured_is_refused_before_any_api_call() {
    let rig = rig("paid_cannot_cover", |s| s.pricing.transcription_per_minute = 10).await;
    let pool = workers(&rig.services, "w1").await;
    rig.telegram.push_voice(USER, "en", 60, voice_note_claiming(1200, 60));
    eventually("refused", Duration::from_secs(60), || told(&rig, "Failed")).await;

    assert!(told(&rig, "Not enough coins"), "{:?}", rig.telegram.sent_texts(USER));
    assert!(rig.openai.transcriptions().is_empty(), "nothing sent to the API");
    assert_eq!(rig.balance().await, 100, "the minute charged up front came back");
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn a_backend_that_answers_verbose_json_without_segments_keeps_the_text() {
    let rig = rig("paid_text_only", |_| {}).await;
    rig.openai.answer_text_only();
    let pool = workers(&rig.services, "w1").await;
    rig.telegram.push_voice(USER, "en", 3, voice_note("A self-hosted server answers text alone."));
    eventually("transcript", WAIT, || rig.transcripts_sent().len() == 1).await;

    let reply = rig.last_message_starting(USER, "📝 Transcript").unwrap();
    assert!(reply["text"].as_str().unwrap().contains("transcript of voice.ogg"), "the text is kept: {reply}");
    let labels = Rig::button_labels(&reply, 1);
    assert_eq!(labels, ["📄 .txt", "🎬 Subtitles: no timing"], "subtitles are not offered without timing");
    assert!(!told(&rig, "No speech"));
    assert_eq!(rig.balance().await, 99, "charged, not refunded");
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn what_the_api_heard_beyond_what_was_sent_is_charged_once_and_told() {
    let rig = rig("paid_heard_more", |_| {}).await;
    // An API (or a measurement) that disagrees: every upload said to be 130 s long.
    rig.openai.claim_duration(130.0);
    let pool = workers(&rig.services, "w1").await;
    rig.telegram.push_voice(USER, "en", 3, voice_note("Short, but heard long."));
    eventually("transcript", WAIT, || rig.transcripts_sent().len() == 1).await;
    eventually("told", WAIT, || told(&rig, "2 more coins charged")).await;

    assert_eq!(rig.balance().await, 100 - 3, "three started minutes of what the API heard");
    let adjustments = rig.scalar("SELECT count(*) FROM ledger_entries WHERE reason = 'heard_adjustment'").await;
    assert_eq!(adjustments, 1);
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn a_price_settled_down_still_charges_what_the_api_heard_beyond() {
    let rig = rig("paid_settled_then_heard", |_| {}).await;
    rig.openai.claim_duration(130.0);
    let pool = workers(&rig.services, "w1").await;
    // Declared 5 minutes (5 charged), measured a few seconds (4 back), heard 130 s (3 minutes).
    rig.telegram.push_voice(USER, "en", 300, voice_note("Declared long, heard long, short in fact."));
    eventually("transcript", WAIT, || rig.transcripts_sent().len() == 1).await;
    eventually("told", WAIT, || told(&rig, "2 more coins charged")).await;

    assert!(told(&rig, "refunded"), "{:?}", rig.telegram.sent_texts(USER));
    assert_eq!(rig.balance().await, 100 - 3, "before: the refund stood and what was heard went free");
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn a_model_that_reports_no_length_is_checked_on_what_was_sent() {
    let rig = rig("paid_no_length", |_| {}).await;
    rig.openai.answer_text_only();
    let pool = workers(&rig.services, "w1").await;
    rig.telegram.push_voice(USER, "en", 3, voice_note("Heard with no length told."));
    eventually("transcript", WAIT, || rig.transcripts_sent().len() == 1).await;
    let kept = rig.scalar("SELECT count(*) FROM transcript_chunks WHERE heard_seconds BETWEEN 0.5 AND 10").await;
    assert_eq!(kept, 1, "our own count of what was sent stands for the API's");
    assert_eq!(rig.balance().await, 99);
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn a_recording_whose_format_changes_every_second_is_refused_before_the_api_hears_it() {
    let rig = rig("paid_switching", |_| {}).await;
    let pool = workers(&rig.services, "w1").await;
    // 40 s that measured as its last second: 1 coin, and 40 s sent.
    rig.telegram.push_audio(USER, "en", 1, switching_formats(40), "video/x-matroska", "switching.mkv");
    eventually("refused", WAIT, || told(&rig, "Failed")).await;

    assert!(told(&rig, "could not read any audio"), "{:?}", rig.telegram.sent_texts(USER));
    assert!(rig.openai.transcriptions().is_empty(), "the API heard {:.1} s", rig.openai.heard_seconds());
    assert_eq!(rig.balance().await, 100);
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn no_operator_text_reaches_a_chat_when_a_job_fails() {
    let rig = rig("paid_operator_text", |_| {}).await;
    rig.openai.script_transcriptions([Answer::InvalidKey]);
    let pool = workers(&rig.services, "w1").await;
    rig.telegram.push_voice(USER, "en", 3, voice_note("The key was revoked."));
    eventually("told", WAIT, || told(&rig, "Failed")).await;
    // A job whose payload this version cannot read, for the same chat.
    let user_id = rig.scalar(&format!("SELECT id FROM users WHERE telegram_id = {USER}")).await;
    let mut broken =
        aisha_actors::jobs::NewJob::new("transcribe", "broken-payload", serde_json::json!({ "language": "en" }));
    (broken.user_id, broken.chat_id) = (Some(user_id), Some(USER));
    aisha_actors::jobs::queue::enqueue(&rig.services.db.client().await.unwrap(), &broken).await.unwrap();
    eventually("told twice", WAIT, || {
        rig.telegram.sent_texts(USER).iter().filter(|t| t.contains("Failed")).count() == 2
    })
    .await;

    for text in rig.telegram.sent_texts(USER).iter().filter(|t| t.contains("Failed")) {
        assert!(text.contains("unavailable right now"), "the user hears it is unavailable: {text}");
        for operator in ["401", "API key", "OpenAI", "malformed", "job"] {
            assert!(!text.contains(operator), "{operator:?} reached the chat: {text}");
        }
    }
    assert_eq!(rig.balance().await, 100, "refunded");
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}
