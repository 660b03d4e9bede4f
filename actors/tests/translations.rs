//! Translation: "🌐 Translate" under a transcript, the languages with the
//! price told first, the translation as a message and as files that keep
//! the transcript's timings (cue by cue, in order, in pieces), `/translate`
//! as a reply, digests written in the language picked, and a model call
//! that fails refunded. Real services; the OpenAI fake marks what it
//! "translates" with the target code.

mod common;

use std::time::Duration;

use aisha_testkit::audio::{beeps, voice_note};
use aisha_testkit::eventually;
use aisha_testkit::openai::Answer;
use common::chat_rig::{srt_times, workers, Rig, WAIT};
use serde_json::json;

const TOKEN: &str = "8686:TRANSLATE-token-xyz";
const USER: i64 = 3601;

async fn rig(name: &str) -> Rig {
    common::chat_rig::rig(name, TOKEN, USER, |_| {}).await
}

fn translations(rig: &Rig) -> Vec<serde_json::Value> {
    let sent = rig.telegram.calls("sendMessage");
    let ours = sent.into_iter().filter(|c| c.params["text"].as_str().is_some_and(|t| t.starts_with("🌐 Translation")));
    ours.map(|c| c.params).collect()
}

/// The file `name` sent to the user, its text.
async fn file(rig: &Rig, name: &str) -> String {
    eventually(name, WAIT, || rig.documents(USER).iter().any(|(n, _)| n == name)).await;
    rig.documents(USER).into_iter().find(|(n, _)| n == name).unwrap().1
}

#[tokio::test]
async fn translate_offers_the_languages_with_the_price_then_sends_the_translation_and_its_subtitles() {
    let rig = rig("tr_button").await;
    let pool = workers(&rig.services, "w1").await;
    rig.telegram.push_voice(USER, "en", 3, voice_note("Good morning, everyone."));
    eventually("transcript", WAIT, || rig.transcripts_sent().len() == 1).await;
    let id = rig.delivered_transcript().await;
    let transcript = rig.last_message_starting(USER, "📝 Transcript").unwrap();
    assert!(Rig::button_labels(&transcript, 2).contains(&"🌐 Translate".to_owned()));

    rig.telegram.push_callback(USER, "en", &format!("tr:{id}"), 1);
    eventually("menu", WAIT, || rig.last_message_starting(USER, "🌐 Into which language?").is_some()).await;
    let menu = rig.last_message_starting(USER, "🌐 Into which language?").unwrap();
    assert!(menu["text"].as_str().unwrap().ends_with("A translation costs 1 coins."), "told before any charge");
    let names: Vec<String> = (0..2).flat_map(|row| Rig::button_labels(&menu, row)).collect();
    assert_eq!(names, ["English", "Русский", "Deutsch", "Français", "Español", "Українська"]);
    assert_eq!(rig.balance().await, 99, "nothing charged for the menu");

    rig.telegram.push_callback(USER, "en", &format!("tr:{id}:de"), 1);
    eventually("translation", WAIT, || translations(&rig).len() == 1).await;
    let translation = &translations(&rig)[0];
    let text = translation["text"].as_str().unwrap();
    assert!(text.starts_with("🌐 Translation · Deutsch") && text.contains("[de] transcript of voice.ogg"), "{text}");
    let chat = rig.openai.chats().last().unwrap().clone();
    assert!(chat["messages"][0]["content"].as_str().unwrap().contains("into Deutsch (de)"), "{chat}");
    assert_eq!(rig.balance().await, 98, "one ledger entry for the translation");

    rig.telegram.push_callback(USER, "en", &format!("subs:srt:{id}"), 1);
    rig.telegram.push_callback(USER, "en", &format!("trf:srt:de:{id}"), 1);
    let (original, translated) =
        (file(&rig, &format!("transcript_{id}.srt")).await, file(&rig, &format!("translation_{id}_de.srt")).await);
    assert_eq!(srt_times(&translated), srt_times(&original), "the original timings");
    assert!(translated.contains("[de] transcript of voice.ogg"), "{translated}");
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn translate_as_a_reply_to_a_transcript_and_again_for_free() {
    let rig = rig("tr_command").await;
    let pool = workers(&rig.services, "w1").await;
    rig.telegram.push_voice(USER, "en", 3, voice_note("Bonjour."));
    eventually("transcript", WAIT, || rig.transcripts_sent().len() == 1).await;
    let transcript = rig.last_message_starting(USER, "📝 Transcript").unwrap();
    let replied = json!({
        "message_id": 900, "date": 0, "chat": { "id": USER, "type": "private", "first_name": "U" },
        "from": { "id": 7_000_000_001i64, "is_bot": true, "first_name": "Aisha" },
        "text": transcript["text"], "reply_markup": transcript["reply_markup"],
    });
    let reply = |text: &str| {
        let message = rig.telegram.user_message(USER, "en", json!({ "text": text, "reply_to_message": replied }));
        rig.telegram.push_update(json!({ "message": message }));
    };
    reply("/translate fr");
    eventually("translation", WAIT, || translations(&rig).len() == 1).await;
    assert!(translations(&rig)[0]["text"].as_str().unwrap().contains("[fr] transcript of voice.ogg"));
    assert_eq!(rig.balance().await, 98);

    reply("/translate FR");
    eventually("again", WAIT, || translations(&rig).len() == 2).await;
    assert_eq!(rig.balance().await, 98, "made before: sent again for free");
    assert_eq!(rig.openai.chats().len(), 1, "no second call");

    reply("/translate xx");
    eventually("the languages", WAIT, || rig.last_message_starting(USER, "I translate into: en, ru, de").is_some())
        .await;
    rig.telegram.push_text(USER, "en", "/translate de");
    eventually("how", WAIT, || rig.last_message_starting(USER, "Send /translate en as a reply").is_some()).await;
    assert_eq!(rig.balance().await, 98);
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn a_translation_whose_model_call_fails_is_refunded_and_said() {
    let rig = rig("tr_failed").await;
    let pool = workers(&rig.services, "w1").await;
    rig.telegram.push_voice(USER, "en", 3, voice_note("This will not be translated."));
    eventually("transcript", WAIT, || rig.transcripts_sent().len() == 1).await;
    let id = rig.delivered_transcript().await;
    rig.openai.script_chat([Answer::InsufficientQuota]);
    rig.telegram.push_callback(USER, "en", &format!("tr:{id}:es"), 1);
    eventually("told", WAIT, || rig.last_message_starting(USER, "❌ Failed: transcript translation").is_some()).await;
    let told = rig.last_message_starting(USER, "❌ Failed").unwrap();
    assert!(told["text"].as_str().unwrap().contains("1 coins refunded"), "{told}");
    assert_eq!(rig.balance().await, 99, "the translation refunded");
    assert!(translations(&rig).is_empty());
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn a_long_timed_transcript_is_translated_cue_by_cue_in_pieces_that_keep_the_order() {
    let rig = rig("tr_pieces").await;
    rig.openai.hear_pauses();
    let pool = workers(&rig.services, "w1").await;
    rig.telegram.push_voice(USER, "en", 600, beeps(600, 1700, 300));
    eventually("transcript", Duration::from_secs(90), || {
        !rig.transcripts_sent().is_empty() || !rig.documents(USER).is_empty()
    })
    .await;
    let id = rig.delivered_transcript().await;
    rig.telegram.push_callback(USER, "en", &format!("tr:{id}:uk"), 1);
    rig.telegram.push_callback(USER, "en", &format!("subs:srt:{id}"), 1);
    let original = file(&rig, &format!("transcript_{id}.srt")).await;
    eventually("translation", Duration::from_secs(60), || {
        !translations(&rig).is_empty() || rig.documents(USER).iter().any(|(n, _)| n == "translation_uk.txt")
    })
    .await;
    assert!(rig.openai.chats().len() >= 2, "in pieces: {} calls", rig.openai.chats().len());
    rig.telegram.push_callback(USER, "en", &format!("trf:srt:uk:{id}"), 1);
    let translated = file(&rig, &format!("translation_{id}_uk.srt")).await;
    assert_eq!(srt_times(&translated), srt_times(&original), "every cue, its timing kept");
    let texts = |srt: &str| -> Vec<String> {
        srt.lines().filter(|l| l.contains("sound at")).map(|l| l.replace("[uk] ", "")).collect()
    };
    assert_eq!(texts(&translated), texts(&original), "each cue's own text, in order");
    assert!(translated.lines().filter(|l| l.contains("sound at")).all(|l| l.starts_with("[uk] ")));
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn a_summary_under_a_translation_is_written_in_its_language() {
    let rig = rig("tr_digest").await;
    let pool = workers(&rig.services, "w1").await;
    rig.telegram.push_voice(USER, "en", 3, voice_note("We ship on Friday."));
    eventually("transcript", WAIT, || rig.transcripts_sent().len() == 1).await;
    let id = rig.delivered_transcript().await;
    rig.telegram.push_callback(USER, "en", &format!("tr:{id}:de"), 1);
    eventually("translation", WAIT, || translations(&rig).len() == 1).await;
    let labels = Rig::button_labels(&translations(&rig)[0], 0);
    assert_eq!(labels.len(), 3, "Summary, Action items, Minutes: {labels:?}");
    rig.telegram.push_callback(USER, "en", &format!("digest:summary:{id}:de"), 1);
    eventually("summary", WAIT, || rig.openai.chats().len() == 2).await;
    let prompt = rig.openai.chats()[1]["messages"][0]["content"].as_str().unwrap().to_owned();
    assert!(prompt.contains("Answer in Deutsch (de)"), "{prompt}");
    eventually("sent", WAIT, || rig.telegram.sent_texts(USER).iter().any(|t| t.contains("summary of:"))).await;
    assert_eq!(rig.balance().await, 97, "transcript, translation, summary: one coin each");
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}
