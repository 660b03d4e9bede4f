//! Guest mode (Bot API 10.0) end to end: a caller mentions the bot in
//! reply to a voice in a chat the bot is not in; the transcript is the
//! bot's one guest answer there, edited into a "⏳" placeholder, paid by the
//! caller (registered as by /start), never by the voice's author, and
//! nothing is ever sent to that chat by `chat_id`.

mod common;

use aisha_testkit::audio::voice_note;
use aisha_testkit::eventually;
use aisha_testkit::openai::Answer;
use common::chat_rig::{workers, Rig, WAIT};

const TOKEN: &str = "8585:GUEST-token-xyz";
const USER: i64 = 3501;
const CALLER: i64 = 3502;
const AUTHOR: i64 = 3503;
/// A chat the bot is not in.
const ELSEWHERE: i64 = -100_350_000;

async fn rig(name: &str, tweak: impl FnOnce(&mut aisha_actors::settings::Settings)) -> Rig {
    common::chat_rig::rig(name, TOKEN, USER, tweak).await
}

/// Every Bot API call addressed to `chat` by `chat_id`, by method.
fn calls_to(rig: &Rig, chat: i64) -> Vec<String> {
    rig.telegram.calls_to(chat).into_iter().map(|c| c.method).collect()
}

async fn users_with(rig: &Rig, telegram_id: i64) -> i64 {
    rig.scalar(&format!("SELECT count(*) FROM users WHERE telegram_id = {telegram_id}")).await
}

#[tokio::test]
async fn a_caller_gets_the_transcript_as_the_guest_answer_in_a_chat_the_bot_is_not_in() {
    let rig = rig("guest_answer", |_| {}).await;
    let pool = workers(&rig.services, "w1").await;
    let query = rig.telegram.push_guest_voice(CALLER, "en", ELSEWHERE, AUTHOR, 3, voice_note("Said in another chat."));
    eventually("the transcript", WAIT, || {
        rig.telegram.guest_answer(&query).is_some_and(|t| t.starts_with("📝 Transcript"))
    })
    .await;
    let answer = rig.telegram.guest_answer(&query).unwrap();
    assert!(answer.contains("transcript of voice.ogg"), "{answer}");
    assert_eq!(rig.telegram.count("answerGuestQuery"), 1, "one answer: the placeholder, then edited");
    let placeholder = &rig.telegram.calls("answerGuestQuery")[0].params;
    assert_eq!(placeholder["result"]["input_message_content"]["message_text"], "⏳ Transcribing…");
    assert!(
        calls_to(&rig, ELSEWHERE).is_empty(),
        "nothing sent to that chat by chat_id: {:?}",
        calls_to(&rig, ELSEWHERE)
    );

    assert_eq!(rig.balance_of(CALLER).await, 99, "registered as by /start (100), one minute charged");
    assert_eq!(users_with(&rig, AUTHOR).await, 0, "the voice's author is never charged, nor even recorded");
    let asked = rig.telegram.calls("getUpdates")[0].params["allowed_updates"].clone();
    assert!(asked.as_array().unwrap().iter().any(|u| u == "guest_message"), "{asked}");
    // Marked just after the edit went out: waited for, then whose it is.
    let id = rig.delivered_transcript().await;
    let owner = format!("SELECT u.telegram_id FROM transcripts t JOIN users u ON u.id = t.user_id WHERE t.id = {id}");
    assert_eq!(rig.scalar(&owner).await, CALLER, "in the caller's /history");
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn a_caller_short_of_coins_is_told_how_to_top_up_with_no_charge_and_no_call() {
    let rig = rig("guest_broke", |s| s.pricing.welcome_bonus = 0).await;
    let pool = workers(&rig.services, "w1").await;
    let query = rig.telegram.push_guest_voice(CALLER, "en", ELSEWHERE, AUTHOR, 3, voice_note("Nobody pays."));
    eventually("the answer", WAIT, || rig.telegram.guest_answer(&query).is_some()).await;
    let answer = rig.telegram.guest_answer(&query).unwrap();
    assert!(answer.starts_with("Not enough coins: this costs 1, your balance is 0."), "{answer}");
    assert!(answer.contains("https://t.me/aisha_test_bot?start=topup"), "{answer}");
    rig.all_handled().await;
    assert_eq!(rig.scalar("SELECT count(*) FROM jobs").await, 0, "nothing queued");
    assert_eq!(rig.balance_of(CALLER).await, 0);
    assert!(rig.telegram.calls("getFile").is_empty() && rig.openai.transcriptions().is_empty());
    assert!(calls_to(&rig, ELSEWHERE).is_empty());
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn a_mention_that_replies_to_no_voice_is_told_how_to_ask() {
    let rig = rig("guest_usage", |_| {}).await;
    let query = rig.telegram.push_guest_mention(CALLER, "en", ELSEWHERE);
    eventually("the answer", WAIT, || rig.telegram.guest_answer(&query).is_some()).await;
    assert!(rig.telegram.guest_answer(&query).unwrap().starts_with("Mention me in reply to a voice message"));
    rig.all_handled().await;
    assert_eq!(rig.scalar("SELECT count(*) FROM jobs").await, 0);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn a_guest_transcription_that_fails_says_so_in_the_answer_and_refunds_the_caller() {
    let rig = rig("guest_failed", |_| {}).await;
    rig.openai.script_transcriptions([Answer::InsufficientQuota]);
    let pool = workers(&rig.services, "w1").await;
    let query = rig.telegram.push_guest_voice(CALLER, "en", ELSEWHERE, AUTHOR, 3, voice_note("This one fails."));
    eventually("the failure", WAIT, || rig.telegram.guest_answer(&query).is_some_and(|t| t.contains("Failed"))).await;
    let answer = rig.telegram.guest_answer(&query).unwrap();
    assert!(answer.contains("1 coins refunded"), "{answer}");
    assert_eq!(rig.balance_of(CALLER).await, 100);
    assert!(calls_to(&rig, ELSEWHERE).is_empty());
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn a_long_guest_transcript_is_cut_to_one_message_pointing_to_the_whole_text() {
    let rig = rig("guest_long", |_| {}).await;
    rig.openai.script_transcriptions([Answer::Text("This is a sentence of the long talk. ".repeat(600))]);
    let pool = workers(&rig.services, "w1").await;
    let query = rig.telegram.push_guest_voice(CALLER, "en", ELSEWHERE, AUTHOR, 5, voice_note("A long talk."));
    eventually("the transcript", WAIT, || {
        rig.telegram.guest_answer(&query).is_some_and(|t| t.starts_with("📝 Transcript"))
    })
    .await;
    let answer = rig.telegram.guest_answer(&query).unwrap();
    assert!(answer.chars().count() <= 4096);
    assert!(
        answer.ends_with("The whole text is in my private chat, in /history: https://t.me/aisha_test_bot"),
        "{answer}"
    );
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

/// A group where auto-transcription is off.
const GROUP: i64 = -100_350_001;

#[tokio::test]
async fn transcribe_as_a_reply_in_a_group_is_paid_by_who_asked_never_the_author() {
    let rig = rig("on_demand", |_| {}).await;
    let pool = workers(&rig.services, "w1").await;
    let voice = rig.telegram.group_voice_message(GROUP, AUTHOR, "en", 3, voice_note("Worth reading later."));
    rig.telegram.push_update(serde_json::json!({ "message": voice.clone() }));
    rig.telegram.push_group_reply(GROUP, CALLER, "en", "/transcribe", &voice);
    eventually("the transcript", WAIT, || rig.transcripts_in(GROUP).len() == 1).await;
    let reply = rig.telegram.calls("sendMessage").into_iter().find(|c| {
        c.params["chat_id"].as_i64() == Some(GROUP) && c.params["text"].as_str().unwrap().starts_with("📝 Transcript")
    });
    let answered = &reply.unwrap().params["reply_parameters"]["message_id"];
    assert_eq!(answered.as_i64(), voice["message_id"].as_i64(), "a reply to the voice");
    assert_eq!(rig.balance_of(CALLER).await, 99, "registered as by /start, one minute charged");
    assert_eq!(users_with(&rig, AUTHOR).await, 0, "the author pays nothing");
    let told = rig.telegram.sent_texts(CALLER);
    assert!(told.iter().any(|t| t.contains("charged 1, balance 99")), "the charge told privately: {told:?}");

    // A second member asking for the same voice gets the one transcript.
    rig.telegram.push_group_reply(GROUP, USER, "en", "/transcribe", &voice);
    rig.all_handled().await;
    assert_eq!(rig.balance().await, 100, "not charged for what is under way or done");
    assert_eq!(rig.openai.transcriptions().len(), 1);
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn transcribe_replying_to_no_voice_says_how_and_charges_nothing() {
    let rig = rig("on_demand_usage", |_| {}).await;
    rig.telegram.push_group_text(GROUP, CALLER, "en", "/transcribe");
    eventually("told how", WAIT, || {
        rig.telegram.sent_texts(GROUP).iter().any(|t| t.starts_with("Send /transcribe as a reply"))
    })
    .await;
    assert_eq!(rig.scalar("SELECT count(*) FROM jobs").await, 0);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}
