//! `/glossary`: a user's names and terms go to the API as the prompt where
//! the model takes one, and the forms they are misheard as are replaced in
//! every transcript, the diarizing model's (which refuses a prompt) too.
//! Real services; the OpenAI fake refuses a prompt to the diarizing model.

mod common;

use aisha_testkit::audio::voice_note;
use aisha_testkit::eventually;
use aisha_testkit::openai::Answer;
use common::chat_rig::{workers, Rig, WAIT};

const TOKEN: &str = "8787:GLOSSARY-token-xyz";
const USER: i64 = 3701;

async fn rig(name: &str) -> Rig {
    common::chat_rig::rig(name, TOKEN, USER, |_| {}).await
}

async fn glossary_saved(rig: &Rig, command: &str) {
    let before = rig.telegram.sent_texts(USER).len();
    rig.telegram.push_text(USER, "en", command);
    eventually("saved", WAIT, || rig.telegram.sent_texts(USER).len() > before).await;
    let told = rig.telegram.sent_texts(USER).pop().unwrap();
    assert!(told.starts_with("✅ Glossary saved."), "{told}");
}

#[tokio::test]
async fn the_terms_are_the_prompt_and_what_was_misheard_is_replaced() {
    let rig = rig("glossary_prompt").await;
    let pool = workers(&rig.services, "w1").await;
    glossary_saved(&rig, "/glossary add Kubernetes = cooper netties; Anna Karenina").await;
    let shown = rig.telegram.sent_texts(USER).pop().unwrap();
    assert!(shown.contains("• Kubernetes ← cooper netties\n• Anna Karenina"), "{shown}");

    rig.openai.script_transcriptions([Answer::Text("We deploy Cooper Netties with anna karenina today.".into())]);
    rig.telegram.push_voice(USER, "en", 3, voice_note("We deploy Kubernetes today."));
    eventually("transcript", WAIT, || rig.transcripts_sent().len() == 1).await;
    assert_eq!(rig.openai.transcriptions()[0].prompt.as_deref(), Some("Kubernetes, Anna Karenina."));
    let text = &rig.transcripts_sent()[0];
    assert!(text.contains("We deploy Kubernetes with anna karenina today."), "a misheard form replaced: {text}");

    rig.telegram.push_text(USER, "en", "/glossary remove Nobody");
    eventually("not there", WAIT, || rig.last_message_starting(USER, "“Nobody” is not in").is_some()).await;
    glossary_saved(&rig, "/glossary clear").await;
    assert_eq!(rig.scalar("SELECT jsonb_array_length(glossary)::bigint FROM users").await, 0);
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn the_diarizing_model_gets_no_prompt_and_the_replacements_still_apply() {
    let rig = rig("glossary_speakers").await;
    let pool = workers(&rig.services, "w1").await;
    glossary_saved(&rig, "/glossary add Şule = shula").await;
    rig.telegram.push_callback(USER, "en", "speakers:on", 1);
    eventually("speakers on", WAIT, || rig.last_message_starting(USER, "✅ Transcripts now say").is_some()).await;
    rig.openai.script_transcriptions([Answer::Text("Shula asks".into())]);
    rig.telegram.push_voice(USER, "en", 3, voice_note("Şule asks."));
    eventually("transcript", WAIT, || rig.transcripts_sent().len() == 1).await;
    let call = &rig.openai.transcriptions()[0];
    assert!(call.model.contains("diarize") && call.prompt.is_none(), "{:?}", call.prompt);
    let text = &rig.transcripts_sent()[0];
    assert!(text.contains("Şule asks part 0") && !text.contains("Shula"), "{text}");
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn a_glossary_that_cannot_take_more_says_why_and_keeps_what_it_had() {
    let rig = rig("glossary_limits").await;
    glossary_saved(&rig, "/glossary add Kubernetes").await;
    rig.telegram.push_text(USER, "en", &format!("/glossary add {}", "x".repeat(61)));
    eventually("refused", WAIT, || rig.last_message_starting(USER, "A term or form is longer than 60").is_some()).await;
    rig.telegram.push_text(USER, "en", "/glossary add");
    eventually("how", WAIT, || rig.last_message_starting(USER, "Write the term after add").is_some()).await;
    rig.telegram.push_text(USER, "en", "/glossary");
    eventually("shown", WAIT, || rig.last_message_starting(USER, "📖 Your glossary:\n• Kubernetes\n").is_some()).await;
    rig.stop();
    common::assert_ledger(&rig.services).await;
}
