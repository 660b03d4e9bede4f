//! Repeats and drafts (DESIGN, "Guest mode, drafts, repeats, translation"):
//! a voice transcribed before is reused by anyone who sends it again, free,
//! with no download and no API call; a recording of several chunks shows its
//! text so far as a draft in a private chat, then arrives once.

mod common;

use std::time::Duration;

use aisha_testkit::audio::{tone_with_pauses, voice_note};
use aisha_testkit::eventually;
use aisha_testkit::telegram::Failure;
use common::chat_rig::{workers, Rig, WAIT};

const TOKEN: &str = "8484:REPEATS-token-xyz";
const USER: i64 = 3401;
const OTHER: i64 = 3402;
const THIRD: i64 = 3403;

async fn rig(name: &str, tweak: impl FnOnce(&mut aisha_actors::settings::Settings)) -> Rig {
    common::chat_rig::rig(name, TOKEN, USER, tweak).await
}

async fn greet(rig: &Rig, user: i64) {
    rig.telegram.push_text(user, "en", "/start");
    eventually("welcome", WAIT, || !rig.telegram.sent_texts(user).is_empty()).await;
}

/// The ledger's reasons for a user's entries, oldest first, with their amounts.
async fn entries(rig: &Rig, telegram_id: i64) -> Vec<(String, i64)> {
    let client = rig.services.db.client().await.unwrap();
    let rows = client
        .query(
            "SELECT reason, delta FROM ledger_entries e JOIN users u ON u.id = e.user_id
              WHERE u.telegram_id = $1 ORDER BY e.id",
            &[&telegram_id],
        )
        .await
        .unwrap();
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

#[tokio::test]
async fn a_forwarded_voice_reuses_the_transcript_free_without_a_download_or_an_api_call() {
    let rig = rig("rep_forward", |_| {}).await;
    greet(&rig, OTHER).await;
    let pool = workers(&rig.services, "w1").await;
    let audio = voice_note("Forward me to a friend.");
    rig.telegram.push_voice(USER, "en", 3, audio.clone());
    eventually("the first transcript", WAIT, || rig.transcripts_sent().len() == 1).await;
    let unique: String = rig.row("SELECT file_unique_id FROM transcripts").await.get(0);
    let downloads = rig.telegram.count("getFile");

    rig.telegram.push_forwarded_voice(OTHER, "en", 3, audio, &unique);
    eventually("the repeat", WAIT, || rig.transcripts_in(OTHER).len() == 1).await;
    assert_eq!(rig.transcripts_in(OTHER), rig.transcripts_sent(), "the same transcript");
    assert_eq!(rig.openai.transcriptions().len(), 1, "no second API call");
    assert_eq!(rig.telegram.count("getFile"), downloads, "no download");
    let told = rig.telegram.sent_texts(OTHER);
    assert!(told.iter().any(|t| t.contains("transcribed before, so it is free: 1 coins refunded")), "{told:?}");
    assert_eq!(rig.balance_of(OTHER).await, 100, "a repeat is free");
    let reasons: Vec<String> = entries(&rig, OTHER).await.into_iter().map(|(r, _)| r).collect();
    assert_eq!(reasons, ["welcome_bonus", "charge", "repeat"], "its own ledger entry");
    assert_eq!(rig.balance().await, 99, "the first paid");

    let row = rig.row("SELECT repeat_of, text_key FROM transcripts ORDER BY id DESC LIMIT 1").await;
    let first = rig.scalar("SELECT min(id) FROM transcripts").await;
    assert_eq!(row.get::<_, Option<i64>>(0), Some(first));
    let copy: String = row.get(1);
    assert!(copy.starts_with("transcripts/"), "its own copy: {copy}");
    assert_eq!(rig.scalar("SELECT count(DISTINCT text_key) FROM transcripts").await, 2);
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn a_first_owner_who_deletes_their_data_leaves_the_repeat_to_its_holder() {
    let rig = rig("rep_forget", |_| {}).await;
    greet(&rig, OTHER).await;
    greet(&rig, THIRD).await;
    let pool = workers(&rig.services, "w1").await;
    let audio = voice_note("Mine, then theirs.");
    rig.telegram.push_voice(USER, "en", 3, audio.clone());
    eventually("the first transcript", WAIT, || rig.transcripts_sent().len() == 1).await;
    let unique: String = rig.row("SELECT file_unique_id FROM transcripts").await.get(0);
    rig.telegram.push_forwarded_voice(OTHER, "en", 3, audio.clone(), &unique);
    eventually("the repeat", WAIT, || rig.transcripts_in(OTHER).len() == 1).await;

    rig.telegram.push_text(USER, "en", "/deletemydata");
    eventually("confirm", WAIT, || rig.last_message_starting(USER, "⚠️ Delete all").is_some()).await;
    rig.telegram.push_callback(USER, "en", "forget:yes", 1);
    eventually("deleted", WAIT, || rig.last_message_starting(USER, "✅ Your data is deleted").is_some()).await;
    let left = rig.row("SELECT id, text_key, repeat_of FROM transcripts").await;
    assert_eq!(left.get::<_, Option<i64>>(2), None, "the first is gone");
    let text_key: String = left.get(1);
    assert!(rig.services.blob.get_if_any(&text_key).await.unwrap().is_some(), "the holder's copy stays");

    // The copy is a transcript of that audio too: a third sender reuses it.
    rig.telegram.push_forwarded_voice(THIRD, "en", 3, audio, &unique);
    eventually("the third", WAIT, || rig.transcripts_in(THIRD).len() == 1).await;
    assert_eq!(rig.openai.transcriptions().len(), 1);
    let third = rig.row("SELECT repeat_of FROM transcripts ORDER BY id DESC LIMIT 1").await;
    assert_eq!(third.get::<_, Option<i64>>(0), Some(left.get::<_, i64>(0)));
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn the_same_voice_asked_with_speakers_is_transcribed_again_at_its_price() {
    let rig = rig("rep_speakers", |_| {}).await;
    greet(&rig, OTHER).await;
    let pool = workers(&rig.services, "w1").await;
    let audio = voice_note("Who said this?");
    rig.telegram.push_voice(USER, "en", 3, audio.clone());
    eventually("the first transcript", WAIT, || rig.transcripts_sent().len() == 1).await;
    let unique: String = rig.row("SELECT file_unique_id FROM transcripts").await.get(0);

    rig.telegram.push_callback(OTHER, "en", "speakers:on", 1);
    eventually("speakers on", WAIT, || rig.last_message_starting(OTHER, "✅ Transcripts now say").is_some()).await;
    rig.telegram.push_forwarded_voice(OTHER, "en", 3, audio, &unique);
    eventually("the second transcript", WAIT, || rig.transcripts_in(OTHER).len() == 1).await;
    assert_eq!(rig.openai.transcriptions().len(), 2, "speakers change the result: a new call");
    assert_eq!(rig.scalar("SELECT count(repeat_of) FROM transcripts").await, 0);
    assert_eq!(rig.balance_of(OTHER).await, 98, "a minute with speakers");
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn turned_off_a_repeat_is_transcribed_again() {
    let rig = rig("rep_off", |s| s.transcription.cache_by_file = false).await;
    greet(&rig, OTHER).await;
    let pool = workers(&rig.services, "w1").await;
    let audio = voice_note("Again, please.");
    rig.telegram.push_voice(USER, "en", 3, audio.clone());
    eventually("the first transcript", WAIT, || rig.transcripts_sent().len() == 1).await;
    let unique: String = rig.row("SELECT file_unique_id FROM transcripts").await.get(0);
    rig.telegram.push_forwarded_voice(OTHER, "en", 3, audio, &unique);
    eventually("the second transcript", WAIT, || rig.transcripts_in(OTHER).len() == 1).await;
    assert_eq!(rig.openai.transcriptions().len(), 2);
    assert_eq!(rig.balance_of(OTHER).await, 99);
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

/// A recording of three chunks, one at a time so they finish in order.
async fn three_chunks(name: &str, tweak: impl FnOnce(&mut aisha_actors::settings::Settings)) -> Rig {
    rig(name, |s| {
        s.transcription.parallel_chunks = 1;
        tweak(s);
    })
    .await
}

fn drafts(rig: &Rig) -> Vec<aisha_testkit::telegram::Call> {
    rig.telegram.calls("sendMessageDraft")
}

/// When the transcript itself went out.
fn transcript_at(rig: &Rig) -> std::time::Instant {
    let sent = rig.telegram.calls("sendMessage");
    let transcript = sent.iter().find(|c| c.params["text"].as_str().is_some_and(|t| t.starts_with("📝 Transcript")));
    transcript.expect("the transcript").at
}

#[tokio::test]
async fn a_long_recording_shows_its_text_so_far_as_drafts_then_arrives_once() {
    let rig = three_chunks("dr_stream", |_| {}).await;
    let pool = workers(&rig.services, "w1").await;
    rig.telegram.push_voice(USER, "en", 1537, tone_with_pauses(1500, 50, 3));
    eventually("transcript", Duration::from_secs(90), || rig.transcripts_sent().len() == 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let drafts = drafts(&rig);
    assert_eq!(drafts.len(), 2, "after the first and the second chunk; the third is the transcript");
    let texts: Vec<&str> = drafts.iter().map(|c| c.params["text"].as_str().unwrap()).collect();
    assert!(texts[0].contains("chunk_0.ogg") && !texts[0].contains("chunk_1.ogg"), "{texts:?}");
    assert!(texts[1].contains("chunk_0.ogg") && texts[1].contains("chunk_1.ogg"), "{texts:?}");
    let ids: Vec<i64> = drafts.iter().map(|c| c.params["draft_id"].as_i64().unwrap()).collect();
    assert!(ids[0] != 0 && ids[0] == ids[1], "one draft per recording: {ids:?}");
    assert!(drafts.iter().all(|c| c.params["chat_id"].as_i64() == Some(USER)));
    assert!(drafts.iter().all(|c| c.at < transcript_at(&rig)), "no draft after the transcript");
    assert_eq!(rig.transcripts_sent().len(), 1, "delivered once");
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn a_draft_refused_by_telegram_is_not_sent_again_and_the_transcript_arrives() {
    let rig = three_chunks("dr_refused", |_| {}).await;
    rig.telegram.fail_next("sendMessageDraft", Failure::Status(400, "Bad Request: TEXTDRAFT_PEER_INVALID".into()));
    let pool = workers(&rig.services, "w1").await;
    rig.telegram.push_voice(USER, "en", 1537, tone_with_pauses(1500, 50, 3));
    eventually("transcript", Duration::from_secs(90), || rig.transcripts_sent().len() == 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let drafts = drafts(&rig);
    assert_eq!(drafts.len(), 2, "the refused one not sent again; the next one sent");
    assert!(drafts[0].failed && !drafts[1].failed);
    assert!(drafts[1].params["text"].as_str().unwrap().contains("chunk_1.ogg"));
    let started = std::time::Instant::now();
    while rig.scalar("SELECT count(*) FROM jobs WHERE state = 'done'").await == 0 {
        assert!(started.elapsed() < WAIT, "the job never finished");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(rig.scalar("SELECT max(attempts)::bigint FROM jobs").await, 1, "no retry");
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn drafts_turned_off_or_for_one_chunk_are_never_sent() {
    let rig = three_chunks("dr_off", |s| s.transcription.stream_drafts = false).await;
    let pool = workers(&rig.services, "w1").await;
    rig.telegram.push_voice(USER, "en", 1537, tone_with_pauses(1500, 50, 3));
    eventually("transcript", Duration::from_secs(90), || rig.transcripts_sent().len() == 1).await;
    rig.telegram.push_voice(USER, "en", 3, voice_note("One chunk only."));
    eventually("the short one", WAIT, || rig.transcripts_sent().len() == 2).await;
    assert!(drafts(&rig).is_empty());
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}
