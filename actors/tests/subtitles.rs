//! The transcription language pinned in /settings, and transcripts as
//! `.srt` / `.vtt` / `.txt` with timestamps: real ffmpeg cuts the audio, the
//! OpenAI fake answers `verbose_json` with segments where the sound really is.

mod common;

use std::time::Duration;

use aisha_testkit::audio::{beeps, sounds, voice_note};
use aisha_testkit::eventually;
use common::chat_rig::{rig, srt_times, workers, Rig, WAIT};

const TOKEN: &str = "8181:SUBTITLES-token-xyz";
const USER: i64 = 3101;

#[tokio::test]
async fn a_language_pinned_in_settings_is_sent_to_the_api() {
    let rig = rig("subs_language", TOKEN, USER, |_| {}).await;
    let pool = workers(&rig.services, "w1").await;
    rig.telegram.push_text(USER, "en", "/settings");
    eventually("settings", WAIT, || rig.last_message_starting(USER, "⚙️").is_some()).await;
    let settings = rig.last_message_starting(USER, "⚙️").unwrap();
    let buttons: Vec<String> = settings["reply_markup"]["inline_keyboard"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap().iter().map(|b| b["callback_data"].as_str().unwrap().to_owned()))
        .collect();
    for code in ["auto", "ru", "en", "kk", "uk", "de", "es", "fr", "tr"] {
        assert!(buttons.contains(&format!("spoken:{code}")), "{code} offered: {buttons:?}");
    }
    assert!(settings["text"].as_str().unwrap().contains("Recording language: detect automatically"));

    rig.telegram.push_callback(USER, "en", "spoken:kk", 1);
    eventually("set", WAIT, || rig.last_message_starting(USER, "✅ Recording language: Қазақша").is_some()).await;
    rig.telegram.push_voice(USER, "en", 2, voice_note("Сәлем"));
    eventually("transcript", WAIT, || rig.transcripts_sent().len() == 1).await;
    assert_eq!(rig.openai.transcriptions()[0].language.as_deref(), Some("kk"));

    rig.telegram.push_callback(USER, "en", "spoken:auto", 2);
    eventually("auto again", WAIT, || rig.last_message_starting(USER, "✅ Recording language: detect").is_some()).await;
    rig.telegram.push_voice(USER, "en", 2, voice_note("Hello"));
    eventually("second transcript", WAIT, || rig.transcripts_sent().len() == 2).await;
    assert_eq!(rig.openai.transcriptions()[1].language, None, "auto sends no language");
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn subtitles_of_an_hour_cut_at_fixed_points_keep_time_with_the_words() {
    let rig = rig("subs_hour", TOKEN, USER, |_| {}).await;
    rig.openai.hear_pauses();
    let pool = workers(&rig.services, "w1").await;
    // Pauses of 0.3 s: too short to cut at, so the hour is cut at fixed points with a 1 s overlap.
    let audio = beeps(3600, 1700, 300);
    let words: Vec<f64> = sounds(&audio).into_iter().map(|(start, _)| start).collect();
    assert!(words.len() > 1700, "{} words", words.len());
    rig.telegram.push_voice(USER, "en", 3600, audio);
    eventually("transcript", Duration::from_secs(180), || {
        !rig.documents(USER).is_empty() || !rig.transcripts_sent().is_empty()
    })
    .await;
    let chunks = rig.scalar("SELECT max(chunk_count)::bigint FROM transcripts").await;
    assert!(chunks >= 6, "an hour is cut into {chunks} chunks");
    let id = rig.delivered_transcript().await;

    for format in ["srt", "vtt", "txt"] {
        rig.telegram.push_callback(USER, "en", &format!("subs:{format}:{id}"), 1);
        let name = format!("transcript_{id}.{format}");
        eventually(&name, WAIT, || rig.documents(USER).iter().any(|(n, _)| *n == name)).await;
    }
    let file =
        |ext: &str| rig.documents(USER).into_iter().find(|(n, _)| *n == format!("transcript_{id}{ext}")).unwrap().1;
    let cues = srt_times(&file(".srt"));
    assert!(cues.windows(2).all(|w| w[1].0 > w[0].0 && w[1].0 >= w[0].1), "cue times strictly increasing");
    for (start, _) in &cues {
        let nearest = words.iter().map(|w| (w - start).abs()).fold(f64::INFINITY, f64::min);
        assert!(nearest <= 1.0, "a cue at {start:.2} s is {nearest:.2} s from the nearest word");
    }
    // Each word once; at a seam a word cut in two may be two cues, no more.
    assert!(
        cues.len() >= words.len() - 1 && cues.len() <= words.len() + chunks as usize,
        "{} cues for {} words",
        cues.len(),
        words.len()
    );
    assert!(file(".vtt").starts_with("WEBVTT\n\n00:00:00.000 --> "));
    assert!(file(".txt").starts_with("[00:00:00] sound at 0.0\n"));
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn a_model_without_timing_gives_text_and_says_why_there_are_no_subtitles() {
    let rig = rig("subs_untimed", TOKEN, USER, |s| s.openai.transcription_model = "gpt-4o-transcribe".into()).await;
    let pool = workers(&rig.services, "w1").await;
    rig.telegram.push_voice(USER, "en", 2, voice_note("No timestamps here"));
    eventually("transcript", WAIT, || rig.transcripts_sent().len() == 1).await;
    assert_eq!(rig.openai.transcriptions()[0].response_format.as_deref(), Some("json"));
    let reply = rig.last_message_starting(USER, "📝 Transcript").unwrap();
    let labels = Rig::button_labels(&reply, 1);
    assert_eq!(labels, ["📄 .txt", "🎬 Subtitles: no timing"]);

    let id = rig.delivered_transcript().await;
    rig.telegram.push_callback(USER, "en", &format!("subs:srt:{id}"), 1);
    eventually("why", WAIT, || rig.last_message_starting(USER, "Subtitles need timestamps").is_some()).await;
    assert!(rig.last_message_starting(USER, "Subtitles need timestamps").unwrap()["text"]
        .as_str()
        .unwrap()
        .contains("gpt-4o-transcribe"));
    rig.telegram.push_callback(USER, "en", &format!("subs:txt:{id}"), 1);
    eventually("text file", WAIT, || !rig.documents(USER).is_empty()).await;
    let (name, text) = rig.documents(USER).remove(0);
    assert_eq!(name, format!("transcript_{id}.txt"));
    assert!(text.starts_with("transcript of voice.ogg"), "{text}");
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}
