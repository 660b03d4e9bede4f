//! Who said what: speakers turned on in /settings (the diarizing model, at
//! its own price, told first), the same voices labelled alike across the
//! chunks of a long recording (the first chunk's voices sent as references),
//! speakers in every format, and "👥 Who said what" under a plain transcript,
//! priced, then charged. Real ffmpeg, PostgreSQL, Redis and S3; the OpenAI
//! fake answers `diarized_json` and refuses what the real model refuses.

mod common;

use std::time::Duration;

use aisha_testkit::audio::{beeps, decoded_seconds, voice_note};
use aisha_testkit::eventually;
use aisha_testkit::openai::Answer;
use base64::Engine;
use common::chat_rig::{rig, workers, Rig, WAIT};

const TOKEN: &str = "9292:SPEAKERS-token-xyz";
const USER: i64 = 4101;
const DIARIZE: &str = "gpt-4o-transcribe-diarize";

/// Turns speakers on through /settings, checking the price is told first.
async fn speakers_on(rig: &Rig) {
    rig.telegram.push_text(USER, "en", "/settings");
    eventually("settings", WAIT, || rig.last_message_starting(USER, "⚙️").is_some()).await;
    let settings = rig.last_message_starting(USER, "⚙️").unwrap();
    assert!(settings["text"].as_str().unwrap().contains("Speakers: off (2 coins/min when on)"), "{settings}");
    let toggles: Vec<&str> = settings["reply_markup"]["inline_keyboard"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap().iter().filter_map(|b| b["callback_data"].as_str()))
        .filter(|data| data.starts_with("speakers:"))
        .collect();
    assert_eq!(toggles, ["speakers:on"]);
    rig.telegram.push_callback(USER, "en", "speakers:on", 1);
    eventually("on", WAIT, || rig.last_message_starting(USER, "✅ Transcripts now say who said what").is_some()).await;
    let told = rig.last_message_starting(USER, "✅ Transcripts now say").unwrap();
    assert!(told["text"].as_str().unwrap().contains("2 coins a minute"));
}

/// The newest transcript marked delivered.
async fn delivered(rig: &Rig, count: i64) -> i64 {
    let started = std::time::Instant::now();
    loop {
        if rig.scalar("SELECT count(*) FROM transcripts WHERE delivered_at IS NOT NULL").await >= count {
            return rig.scalar("SELECT max(id) FROM transcripts WHERE delivered_at IS NOT NULL").await;
        }
        assert!(started.elapsed() < WAIT, "transcript {count} not delivered within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn speakers_turned_on_send_the_diarizing_model_and_charge_its_price() {
    let rig = rig("speakers_on", TOKEN, USER, |_| {}).await;
    let pool = workers(&rig.services, "w1").await;
    speakers_on(&rig).await;
    rig.telegram.push_voice(USER, "en", 3, voice_note("Hello there. General Kenobi."));
    eventually("transcript", WAIT, || rig.transcripts_sent().len() == 1).await;
    let sent = &rig.openai.transcriptions()[0];
    assert_eq!(sent.model, DIARIZE);
    assert_eq!(sent.response_format.as_deref(), Some("diarized_json"));
    assert_eq!(sent.chunking_strategy.as_deref(), Some("auto"));
    assert_eq!(sent.prompt, None, "the diarizing model refuses a prompt");
    assert!(sent.known_speaker_names.is_empty(), "one chunk: nobody to recognise");
    let transcript = &rig.transcripts_sent()[0];
    assert!(transcript.contains("A: ") && transcript.contains("B: "), "{transcript}");
    let queued = rig.last_message_starting(USER, "⏳").map(|m| m["text"].as_str().unwrap().to_owned());
    assert!(queued.as_deref().is_some_and(|q| q.contains("Charged 2,")), "the price said when queued: {queued:?}");
    assert_eq!(rig.balance().await, 100 - 2, "a started minute at the diarization price");
    let id = delivered(&rig, 1).await;
    let keyboard = rig.last_message_starting(USER, "📝 Transcript").unwrap()["reply_markup"].to_string();
    assert!(!keyboard.contains(&format!("who:{id}")), "no \"Who said what\" under a transcript that has it");
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn a_long_recording_keeps_its_voices_across_chunks_and_in_every_format() {
    let rig = rig("speakers_chunks", TOKEN, USER, |s| {
        s.transcription.chunk_length = Duration::from_secs(30);
    })
    .await;
    rig.openai.hear_pauses();
    let pool = workers(&rig.services, "w1").await;
    speakers_on(&rig).await;
    // Turns of 2.5 s with pauses of 0.6 s: the fake gives each a speaker, A and B by turns.
    rig.telegram.push_voice(USER, "en", 80, beeps(80, 2500, 600));
    eventually("transcript", WAIT, || rig.transcripts_sent().len() == 1).await;
    let sent = rig.openai.transcriptions();
    assert!(sent.len() >= 3, "cut into chunks: {}", sent.len());
    assert!(sent[0].known_speaker_names.is_empty(), "the first chunk goes alone, first");
    for later in &sent[1..] {
        assert_eq!(later.known_speaker_names, ["A", "B"], "the first chunk's voices, by their labels");
        for reference in &later.known_speaker_references {
            let wav = reference.strip_prefix("data:audio/wav;base64,").expect("a WAV data URL");
            let seconds = decoded_seconds(&base64::engine::general_purpose::STANDARD.decode(wav).unwrap());
            assert!((2.0..=10.0).contains(&seconds), "a reference of {seconds} s");
        }
    }
    let id = delivered(&rig, 1).await;
    rig.telegram.push_callback(USER, "en", &format!("subs:vtt:{id}"), 2);
    rig.telegram.push_callback(USER, "en", &format!("subs:srt:{id}"), 3);
    eventually("files", WAIT, || rig.documents(USER).len() >= 2).await;
    let documents = rig.documents(USER);
    let file = |ext: &str| documents.iter().find(|(name, _)| name.ends_with(ext)).unwrap().1.clone();
    assert!(file(".vtt").contains("<v A>") && file(".vtt").contains("<v B>"), "{}", file(".vtt"));
    assert!(file(".srt").contains("\nA: ") && file(".srt").contains("\nB: "), "{}", file(".srt"));
    assert_eq!(rig.balance().await, 100 - 2 * 2, "80 s: two started minutes at 2");
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn who_said_what_under_a_plain_transcript_is_priced_then_charged() {
    let rig = rig("speakers_redo", TOKEN, USER, |_| {}).await;
    let pool = workers(&rig.services, "w1").await;
    rig.telegram.push_voice(USER, "en", 3, voice_note("Shall we begin?"));
    eventually("plain transcript", WAIT, || rig.transcripts_sent().len() == 1).await;
    assert_eq!(rig.openai.transcriptions()[0].model, "whisper-1");
    let id = delivered(&rig, 1).await;
    let plain = rig.last_message_starting(USER, "📝 Transcript").unwrap();
    assert!(plain["reply_markup"].to_string().contains(&format!("who:{id}")), "{plain}");
    assert_eq!(rig.balance().await, 99);

    rig.telegram.push_callback(USER, "en", &format!("who:{id}"), 2);
    eventually("the price", WAIT, || rig.last_message_starting(USER, "👥").is_some()).await;
    let offer = rig.last_message_starting(USER, "👥").unwrap();
    assert!(offer["text"].as_str().unwrap().contains("2 coins (1 min)"), "{offer}");
    assert_eq!(Rig::button_labels(&offer, 0), ["✅ Yes, 2 coins"]);
    rig.all_handled().await;
    assert_eq!(rig.balance().await, 99, "nothing charged before the yes");

    rig.telegram.push_callback(USER, "en", &format!("who:{id}:yes"), 3);
    eventually("with speakers", WAIT, || rig.transcripts_sent().len() == 2).await;
    assert!(rig.transcripts_sent()[1].contains("A: "), "{}", rig.transcripts_sent()[1]);
    assert_eq!(rig.openai.transcriptions()[1].model, DIARIZE);
    assert_eq!(rig.balance().await, 99 - 2);
    rig.telegram.push_callback(USER, "en", &format!("who:{id}:yes"), 4);
    rig.all_handled().await;
    assert_eq!(rig.openai.transcriptions().len(), 2, "a second yes finds the first");
    assert_eq!(rig.balance().await, 97, "and is not charged again");
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn the_diarizing_models_errors_are_handled_as_the_others() {
    let rig = rig("speakers_errors", TOKEN, USER, |_| {}).await;
    let pool = workers(&rig.services, "w1").await;
    speakers_on(&rig).await;
    rig.openai.script_transcriptions([Answer::Status(503), Answer::InsufficientQuota]);
    rig.telegram.push_voice(USER, "en", 3, voice_note("Out of quota"));
    eventually("told and refunded", WAIT, || {
        rig.telegram.sent_texts(USER).iter().any(|t| t.contains("refunded") || t.contains("returned"))
    })
    .await;
    assert_eq!(rig.openai.transcriptions().len(), 2, "a 503 retried, the quota not");
    assert!(rig.transcripts_sent().is_empty());
    assert_eq!(rig.balance().await, 100, "refunded");
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}
