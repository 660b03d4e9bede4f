//! Groups charge only a current admin: the payer's status is checked when a
//! voice note is charged (and dropped from the cache when Telegram says it
//! changed), a payer who stepped down is told once and charged nothing
//! more, may always turn transcription off, and `/deletemydata` ends their
//! paying and removes the notes they sent in groups. Real services, fakes.

mod common;

use aisha_testkit::audio::voice_note;
use aisha_testkit::eventually;
use common::chat_rig::{rig, workers, Rig, WAIT};

const TOKEN: &str = "8383:GROUP-PAYER-token-xyz";
const ADMIN: i64 = 3301;
const MEMBER: i64 = 3302;
const GROUP: i64 = -100_888;

async fn turned_on(rig: &Rig) {
    rig.telegram.set_member(GROUP, ADMIN, "administrator");
    rig.telegram.push_group_text(GROUP, ADMIN, "en", "/autotranscribe on");
    eventually("on", WAIT, || rig.telegram.sent_texts(GROUP).iter().any(|t| t.starts_with("✅ Transcription is on")))
        .await;
}

fn stopped_told(rig: &Rig) -> usize {
    rig.telegram.sent_texts(GROUP).iter().filter(|t| t.starts_with("⏹ Transcription is off")).count()
}

#[tokio::test]
async fn a_payer_demoted_without_a_word_from_telegram_is_not_charged_and_can_still_turn_it_off() {
    let rig = rig("group_demoted", TOKEN, ADMIN, |_| {}).await;
    let pool = workers(&rig.services, "w1").await;
    turned_on(&rig).await;
    // Demoted; the bot is no admin there, so Telegram sends no chat_member update.
    rig.telegram.set_member(GROUP, ADMIN, "member");
    rig.telegram.push_group_voice(GROUP, MEMBER, "en", 2, voice_note("not paid for"));
    rig.telegram.push_group_voice(GROUP, MEMBER, "en", 2, voice_note("nor this"));
    eventually("the group told", WAIT, || stopped_told(&rig) == 1).await;
    rig.all_handled().await;
    assert_eq!(stopped_told(&rig), 1, "told once");
    assert!(rig.telegram.sent_texts(ADMIN).iter().any(|t| t.starts_with("You are no longer an admin of “Test group”")));
    assert_eq!(rig.balance_of(ADMIN).await, 100, "nothing charged to a former admin");
    assert!(rig.openai.transcriptions().is_empty());

    // No longer an admin, and still allowed to stop paying.
    rig.telegram.push_group_text(GROUP, ADMIN, "en", "/autotranscribe off");
    eventually("off", WAIT, || {
        rig.telegram.sent_texts(GROUP).iter().any(|t| t == "Transcription is off in this group.")
    })
    .await;
    rig.telegram.push_group_text(GROUP, MEMBER, "en", "/autotranscribe on");
    eventually("refused", WAIT, || rig.telegram.sent_texts(GROUP).iter().any(|t| t.starts_with("Only group admins")))
        .await;
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn a_chat_member_update_stops_a_payer_at_once_whatever_was_cached() {
    let rig = rig("group_left", TOKEN, ADMIN, |_| {}).await;
    let pool = workers(&rig.services, "w1").await;
    turned_on(&rig).await;
    rig.telegram.push_group_voice(GROUP, MEMBER, "en", 2, voice_note("paid by the admin"));
    eventually("transcript", WAIT, || rig.transcripts_in(GROUP).len() == 1).await;
    assert_eq!(rig.balance_of(ADMIN).await, 99, "charged while an admin (and the answer cached)");

    rig.telegram.change_member(GROUP, ADMIN, "left");
    eventually("the group told", WAIT, || stopped_told(&rig) == 1).await;
    rig.telegram.push_group_voice(GROUP, MEMBER, "en", 2, voice_note("after they left"));
    rig.all_handled().await;
    assert_eq!(rig.transcripts_in(GROUP).len(), 1, "no transcript nobody pays for");
    assert_eq!(rig.balance_of(ADMIN).await, 99);
    assert_eq!(stopped_told(&rig), 1);
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn delete_my_data_ends_paying_for_groups_and_removes_notes_sent_there() {
    let rig = rig("group_forget", TOKEN, ADMIN, |_| {}).await;
    let pool = workers(&rig.services, "w1").await;
    turned_on(&rig).await;
    rig.telegram.push_group_voice(GROUP, MEMBER, "en", 2, voice_note("a member's words"));
    eventually("transcript", WAIT, || rig.transcripts_in(GROUP).len() == 1).await;
    let (payer, transcript) = {
        let row = rig.row("SELECT user_id, id, sender_telegram_id FROM transcripts").await;
        assert_eq!(row.get::<_, Option<i64>>(2), Some(MEMBER), "the sender is kept with the note");
        (row.get::<_, i64>(0), row.get::<_, i64>(1))
    };
    let audio_prefix = format!("audio/{payer}/{transcript}/");

    // The member asks to forget: their note goes, though the admin paid for it.
    rig.telegram.push_text(MEMBER, "en", "/start");
    eventually("member welcomed", WAIT, || !rig.telegram.sent_texts(MEMBER).is_empty()).await;
    rig.all_handled().await;
    rig.telegram.push_callback(MEMBER, "en", "forget:yes", 1);
    eventually("member's data deleted", WAIT, || {
        rig.last_message_starting(MEMBER, "✅ Your data is deleted").is_some()
    })
    .await;
    assert_eq!(rig.scalar("SELECT count(*) FROM transcripts").await, 0);
    assert_eq!(rig.services.blob.delete_prefix(&audio_prefix).await.unwrap(), 0, "its audio is gone from S3");
    let confirming =
        rig.scalar(&format!("SELECT count(*) FROM telegram_updates WHERE payload::text LIKE '%user{MEMBER}%'")).await;
    assert_eq!(confirming, 0, "not even the press that confirmed it names them");

    // The payer asks to forget: the group stops, and charges nobody.
    rig.telegram.push_callback(ADMIN, "en", "forget:yes", 1);
    eventually("payer's data deleted", WAIT, || rig.last_message_starting(ADMIN, "✅ Your data is deleted").is_some())
        .await;
    assert_eq!(
        rig.scalar("SELECT count(*) FROM group_chats WHERE autotranscribe OR payer_user_id IS NOT NULL").await,
        0
    );
    let before = rig.balance_of(ADMIN).await;
    rig.telegram.push_group_voice(GROUP, MEMBER, "en", 2, voice_note("after the payer left"));
    rig.all_handled().await;
    assert_eq!(rig.balance_of(ADMIN).await, before);
    assert_eq!(rig.transcripts_in(GROUP).len(), 1);
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}
