//! Groups with `/autotranscribe`, `/privacy` and `/deletemydata`, and the
//! rough edges a new user met: each against the real services and the fakes.

mod common;

use aisha_actors::ledger;
use aisha_testkit::audio::voice_note;
use aisha_testkit::eventually;
use common::chat_rig::{rig, workers, WAIT};
use serde_json::json;

const TOKEN: &str = "8282:FEATURES-token-xyz";
const ADMIN: i64 = 3201;
const MEMBER: i64 = 3202;
const GROUP: i64 = -100_777;

#[tokio::test]
async fn a_group_admin_turns_transcription_on_and_pays_for_replies_to_voice_notes() {
    let rig = rig("group_on", TOKEN, ADMIN, |_| {}).await;
    let pool = workers(&rig.services, "w1").await;
    rig.telegram.set_member(GROUP, ADMIN, "administrator");

    // Off by default: silence in the group, for voice notes and chatter alike.
    rig.telegram.push_group_voice(GROUP, MEMBER, "en", 2, voice_note("before"));
    rig.telegram.push_group_text(GROUP, MEMBER, "en", "hello everyone");
    rig.telegram.push_group_text(GROUP, MEMBER, "en", "/autotranscribe on");
    eventually("refusal", WAIT, || rig.telegram.sent_texts(GROUP).len() == 1).await;
    assert_eq!(
        rig.telegram.sent_texts(GROUP),
        ["Only group admins can turn transcription on or off."],
        "only the command was answered"
    );
    assert!(rig.openai.transcriptions().is_empty());

    rig.telegram.push_group_text(GROUP, ADMIN, "en", "/autotranscribe@aisha_test_bot on");
    eventually("on", WAIT, || rig.telegram.sent_texts(GROUP).iter().any(|t| t.starts_with("✅ Transcription is on")))
        .await;
    assert!(rig.telegram.sent_texts(GROUP).last().unwrap().contains("/setprivacy"), "privacy mode explained");
    let before = rig.balance_of(ADMIN).await;
    let (_, voice_message) = rig.telegram.push_group_voice(GROUP, MEMBER, "en", 2, voice_note("In the group"));
    eventually("group transcript", WAIT, || rig.transcripts_in(GROUP).len() == 1).await;
    let reply = rig.last_message_starting(GROUP, "📝 Transcript").unwrap();
    assert_eq!(reply["reply_parameters"]["message_id"].as_i64(), Some(voice_message), "a reply to the voice note");
    assert_eq!(rig.balance_of(ADMIN).await, before - 1, "the admin paid");
    let told =
        || rig.telegram.sent_texts(ADMIN).iter().any(|t| t.starts_with("Transcription in “Test group”: charged 1"));
    eventually("told privately", WAIT, told).await;
    assert!(!rig.telegram.sent_texts(GROUP).iter().any(|t| t.contains("balance")), "no balance said in the group");
    let member_rows =
        rig.scalar(&format!("SELECT count(*) FROM users WHERE telegram_id = {MEMBER} AND balance <> 0")).await;
    assert_eq!(member_rows, 0, "the member paid nothing");

    // Another bot's command, and our own private ones, are not answered in the group.
    rig.telegram.push_group_text(GROUP, MEMBER, "en", "/start@other_bot");
    rig.telegram.push_group_text(GROUP, ADMIN, "en", "/autotranscribe off");
    eventually("off", WAIT, || {
        rig.telegram.sent_texts(GROUP).iter().any(|t| t == "Transcription is off in this group.")
    })
    .await;
    assert!(!rig.telegram.sent_texts(GROUP).iter().any(|t| t.starts_with("Hi! I'm Aisha")));
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn a_group_whose_payer_runs_dry_is_told_once_and_resumes_after_a_top_up() {
    let rig = rig("group_dry", TOKEN, ADMIN, |s| s.pricing.transcription_per_minute = 60).await;
    let pool = workers(&rig.services, "w1").await;
    rig.telegram.set_member(GROUP, ADMIN, "creator");
    rig.telegram.push_group_text(GROUP, ADMIN, "en", "/autotranscribe on");
    eventually("on", WAIT, || rig.telegram.sent_texts(GROUP).len() == 1).await;
    // 100 coins of welcome: one minute at 60, then not enough.
    rig.telegram.push_group_voice(GROUP, MEMBER, "en", 2, voice_note("first"));
    eventually("first", WAIT, || rig.transcripts_in(GROUP).len() == 1).await;
    rig.telegram.push_group_voice(GROUP, MEMBER, "en", 2, voice_note("second"));
    rig.telegram.push_group_voice(GROUP, MEMBER, "en", 2, voice_note("third"));
    eventually("told", WAIT, || rig.telegram.sent_texts(GROUP).iter().any(|t| t.starts_with("⏸"))).await;
    rig.all_handled().await;
    let paused: Vec<String> = rig.telegram.sent_texts(GROUP).into_iter().filter(|t| t.starts_with("⏸")).collect();
    assert_eq!(paused.len(), 1, "told once: {paused:?}");
    assert!(paused[0].contains("@user3201"));

    ledger::admin_credit(&rig.services.db, ADMIN, 100, "top-up in a test").await.unwrap();
    rig.telegram.push_group_voice(GROUP, MEMBER, "en", 2, voice_note("fourth"));
    eventually("resumed", WAIT, || rig.transcripts_in(GROUP).len() == 2).await;
    assert_eq!(rig.balance_of(ADMIN).await, 100 - 60 + 100 - 60);
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn delete_my_data_removes_content_and_s3_objects_and_keeps_the_ledger() {
    let rig = rig("forget", TOKEN, ADMIN, |_| {}).await;
    let pool = workers(&rig.services, "w1").await;
    rig.telegram.push_voice(ADMIN, "en", 2, voice_note("secret plans"));
    eventually("transcript", WAIT, || rig.transcripts_sent().len() == 1).await;
    let user_id = rig.scalar(&format!("SELECT id FROM users WHERE telegram_id = {ADMIN}")).await;
    let blob = &rig.services.blob;
    for key in [format!("images/{user_id}/r1/0.jpg"), format!("avatars/{user_id}/1/photo_01.jpg")] {
        blob.put(&key, bytes::Bytes::from_static(b"\xff\xd8\xff"), "image/jpeg").await.unwrap();
    }
    blob.put("images/999999/r1/0.jpg", bytes::Bytes::from_static(b"\xff\xd8\xff"), "image/jpeg").await.unwrap();
    let entries_before = rig.scalar(&format!("SELECT count(*) FROM ledger_entries WHERE user_id = {user_id}")).await;

    rig.telegram.push_text(ADMIN, "en", "/privacy");
    eventually("privacy", WAIT, || rig.last_message_starting(ADMIN, "🔒 Your data").is_some()).await;
    assert!(rig.last_message_starting(ADMIN, "🔒 Your data").unwrap()["text"]
        .as_str()
        .unwrap()
        .contains("/deletemydata"));
    rig.telegram.push_text(ADMIN, "en", "/deletemydata");
    eventually("confirm", WAIT, || rig.last_message_starting(ADMIN, "⚠️ Delete all").is_some()).await;
    rig.telegram.push_callback(ADMIN, "en", "forget:no", 1);
    eventually("kept", WAIT, || rig.last_message_starting(ADMIN, "OK, nothing was deleted.").is_some()).await;
    assert_eq!(rig.scalar("SELECT count(*) FROM transcripts").await, 1);

    rig.telegram.push_callback(ADMIN, "en", "forget:yes", 1);
    eventually("deleted", WAIT, || rig.last_message_starting(ADMIN, "✅ Your data is deleted").is_some()).await;
    assert_eq!(rig.scalar("SELECT count(*) FROM transcripts").await, 0);
    assert_eq!(rig.scalar("SELECT count(*) FROM transcript_chunks").await, 0);
    for prefix in ["audio", "transcripts", "images", "avatars"] {
        assert_eq!(blob.delete_prefix(&format!("{prefix}/{user_id}/")).await.unwrap(), 0, "{prefix} objects left");
    }
    assert_eq!(blob.delete_prefix("images/999999/").await.unwrap(), 1, "another user's image untouched");
    let scrubbed =
        rig.scalar(&format!("SELECT count(*) FROM jobs WHERE user_id = {user_id} AND payload <> '{{}}'::jsonb")).await;
    assert_eq!(scrubbed, 0, "no job payload keeps a file id");
    let voice = rig
        .scalar("SELECT count(*) FROM telegram_updates WHERE payload ? 'message' AND payload->'message' ? 'voice'")
        .await;
    assert_eq!(voice, 0, "recorded updates scrubbed");
    // Not even the press being handled still names the user.
    let named =
        rig.scalar(&format!("SELECT count(*) FROM telegram_updates WHERE payload::text LIKE '%user{ADMIN}%'")).await;
    assert_eq!(named, 0, "{named} recorded updates still name the user");
    let entries_after = rig.scalar(&format!("SELECT count(*) FROM ledger_entries WHERE user_id = {user_id}")).await;
    assert_eq!(entries_after, entries_before, "ledger entries stay as financial records");
    assert_eq!(rig.balance_of(ADMIN).await, 99);
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn rough_edges_a_new_user_met_are_smoothed() {
    let rig = rig("edges", TOKEN, ADMIN, |_| {}).await;
    // /avatars with none: a New avatar button, no pointing back at /avatars.
    rig.telegram.push_text(ADMIN, "en", "/avatars");
    eventually("avatars", WAIT, || rig.last_message_starting(ADMIN, "You have no avatar yet").is_some()).await;
    let avatars = rig.last_message_starting(ADMIN, "You have no avatar yet").unwrap();
    assert!(!avatars["text"].as_str().unwrap().contains("/avatars"));
    assert_eq!(avatars["reply_markup"]["inline_keyboard"][0][0]["callback_data"], "avatar:new");

    // /cancel in the middle of the avatar dialogue says it stopped it.
    ledger::admin_credit(&rig.services.db, ADMIN, 100, "enough for an avatar").await.unwrap();
    rig.telegram.push_callback(ADMIN, "en", "avatar:new", 1);
    eventually("name asked", WAIT, || rig.telegram.sent_texts(ADMIN).iter().any(|t| t.contains("What shall we call")))
        .await;
    rig.telegram.push_text(ADMIN, "en", "/cancel");
    eventually("stopped", WAIT, || rig.last_message_starting(ADMIN, "Avatar creation stopped").is_some()).await;
    assert!(!rig.telegram.sent_texts(ADMIN).iter().any(|t| t == "Nothing to cancel."));

    // A photo outside the dialogue is pointed at what photos do here.
    let photo = json!({ "photo": [{ "file_id": "p1", "file_unique_id": "up1", "width": 800, "height": 800, "file_size": 1000 }] });
    let message = rig.telegram.user_message(ADMIN, "en", photo);
    rig.telegram.push_update(json!({ "message": message }));
    eventually("photo", WAIT, || rig.last_message_starting(ADMIN, "I take photos to train an avatar").is_some()).await;

    // Russian texts say "пикселей", not "px".
    assert!(!aisha_actors::chat::texts::ask_photos(aisha_actors::chat::Lang::Ru, 10, 20).contains("px"));
    // Captions name no model, and say the aspect ratio as people do.
    assert_eq!(aisha_actors::chat::texts::image_caption("a fox", Some("landscape_16_9")), "🎨 a fox\n16:9");
    rig.stop();
    common::assert_ledger(&rig.services).await;
}
