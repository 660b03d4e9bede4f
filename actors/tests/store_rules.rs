//! What the store hands out and what it forgets: transcripts only to their
//! owner and only once delivered; raw updates and callbacks after retention.

mod common;

use aisha_actors::jobs::{queue, NewJob};
use aisha_actors::services::Services;
use aisha_actors::store::chunk_calls::{Caller, Take};
use aisha_actors::store::transcripts::{Finished, SavedChunk, Transcript, TranscriptField};

/// A transcription job to hang a transcript on.
async fn transcribe_job(client: &impl deadpool_postgres::GenericClient, key: &str) -> aisha_actors::jobs::Job {
    queue::enqueue(client, &NewJob::new("transcribe", key, serde_json::json!({}))).await.unwrap().job().clone()
}

#[tokio::test]
async fn a_transcript_is_only_offered_once_it_was_delivered_and_only_to_its_owner() {
    let (_t, services) = common::services("transcript_delivered", |_| {}).await;
    let user = common::user(&services, 4242).await;
    let stranger = common::user(&services, 4343).await;
    let client = services.db.client().await.unwrap();
    let job = transcribe_job(&client, "transcript-store-1").await;
    let transcript =
        services.db.start_transcript(job.id, user, 4242, &common::asked("file-1"), None).await.unwrap().transcript;

    assert!(services.db.transcript_of(user, transcript.id).await.unwrap().is_none(), "still being made");
    services.db.mark_transcript_delivered(transcript.id).await.unwrap();
    assert!(services.db.transcript_of(user, transcript.id).await.unwrap().is_some());
    assert!(services.db.transcript_of(stranger, transcript.id).await.unwrap().is_none(), "someone else's");
}

#[tokio::test]
async fn a_jobs_second_attempt_finds_the_transcript_its_first_made_and_is_told_it_is_not_fresh() {
    let (_t, services) = common::services("transcript_started_twice", |_| {}).await;
    let user = common::user(&services, 4444).await;
    let client = services.db.client().await.unwrap();
    let job = transcribe_job(&client, "transcript-twice-1").await;
    let first = services.db.start_transcript(job.id, user, 4444, &common::asked("file-2"), None).await.unwrap();
    assert!(first.fresh, "the first attempt made it");
    services.db.update_transcript(first.transcript.id, TranscriptField::AudioKey, &"audio/kept.ogg").await.unwrap();

    let second = services.db.start_transcript(job.id, user, 4444, &common::asked("file-2"), None).await.unwrap();
    assert!(!second.fresh, "a retry resumes, so it looks for chunks");
    assert_eq!(second.transcript.id, first.transcript.id);
    assert_eq!(second.transcript.audio_key.as_deref(), Some("audio/kept.ogg"), "what the first attempt kept");
    let rows: i64 =
        client.query_one("SELECT count(*) FROM transcripts WHERE job_id = $1", &[&job.id]).await.unwrap().get(0);
    assert_eq!(rows, 1);
}

/// A transcript its job's first attempt just started, for user `telegram_id`.
async fn started_transcript(services: &Services, telegram_id: i64, key: &str) -> Transcript {
    let user = common::user(services, telegram_id).await;
    let job = transcribe_job(&services.db.client().await.unwrap(), key).await;
    services.db.start_transcript(job.id, user, telegram_id, &common::asked(key), None).await.unwrap().transcript
}

/// A chunk's caller, as `worker`, whose process holds no presence lock.
fn caller(worker: &str) -> Caller<'static> {
    Caller {
        worker: worker.to_owned(),
        presence: "presence-of-nobody",
        presence_namespace: aisha_actors::pool::PRESENCE_LOCK_NAMESPACE,
        stale: std::time::Duration::from_secs(60),
        gone: std::time::Duration::from_secs(6),
    }
}

#[tokio::test]
async fn a_chunk_kept_by_its_caller_is_never_taken_again_even_once_its_call_row_is_gone() {
    let (_t, services) = common::services("chunk_call_kept", |_| {}).await;
    let transcript = started_transcript(&services, 4646, "chunk-kept-1").await;
    let db = &services.db;
    assert!(matches!(db.take_chunk_call(transcript.id, 0, &caller("a/1"), false).await.unwrap(), Take::Ours));
    let chunk = SavedChunk { idx: 0, start: 0.0, end: 2.0, text: "kept".into(), segments: None, heard_seconds: None };
    // The caller's write keeps the chunk and deletes its call row.
    assert!(db.save_chunk(transcript.id, &chunk).await.unwrap(), "this write kept it");
    let taken = db.take_chunk_call(transcript.id, 0, &caller("b/2"), true).await.unwrap();
    assert!(matches!(taken, Take::Kept), "a kept chunk is nobody's call to make again");
    assert!(db.chunk_kept(transcript.id, 0).await.unwrap());
    let again = SavedChunk { text: "made twice".into(), ..chunk };
    assert!(!db.save_chunk(transcript.id, &again).await.unwrap(), "a second write keeps nothing");
    assert_eq!(db.transcript_chunks(transcript.id).await.unwrap()[0].text, "kept", "the first write's text stays");
}

#[tokio::test]
async fn a_call_taken_while_its_keepers_write_commits_is_given_back_not_made_again() {
    let (_t, services) = common::services("chunk_call_race", |_| {}).await;
    let transcript = started_transcript(&services, 4848, "chunk-race-1").await;
    let db = services.db.clone();
    assert!(matches!(db.take_chunk_call(transcript.id, 0, &caller("a/1"), false).await.unwrap(), Take::Ours));
    // The keeper's write, as `save_chunk` makes it, not yet committed.
    let mut keeper = services.db.client().await.unwrap();
    let write = keeper.transaction().await.unwrap();
    write
        .execute(
            "INSERT INTO transcript_chunks (transcript_id, idx, start_seconds, end_seconds, text) VALUES ($1, 0, 0, 2, 'kept')",
            &[&transcript.id],
        )
        .await
        .unwrap();
    write.execute("DELETE FROM transcript_chunk_calls WHERE transcript_id = $1", &[&transcript.id]).await.unwrap();
    // The take starts before the write commits (its snapshot has no chunk) and
    // waits on the call row the write deletes.
    let id = transcript.id;
    let take = tokio::spawn(async move { db.take_chunk_call(id, 0, &caller("b/2"), true).await.unwrap() });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!take.is_finished(), "the take waits for the write");
    write.commit().await.unwrap();

    assert!(matches!(take.await.unwrap(), Take::Kept), "kept while it was taken: nobody's call to make");
    let client = services.db.client().await.unwrap();
    let calls: i64 = client.query_one("SELECT count(*) FROM transcript_chunk_calls", &[]).await.unwrap().get(0);
    assert_eq!(calls, 0, "the call taken in the race is given back");
}

#[tokio::test]
async fn a_finished_transcript_records_the_original_this_attempt_kept_and_otherwise_keeps_an_earlier_ones() {
    let (_t, services) = common::services("transcript_original", |_| {}).await;
    let db = &services.db;
    let finish = |audio_key: Option<&str>| Finished {
        text_key: "transcripts/t.txt".into(),
        chunk_count: 1,
        audio_key: audio_key.map(str::to_owned),
        ..Finished::default()
    };
    let key_of = |t: Transcript| async move { db.transcript_for_job(t.job_id).await.unwrap().unwrap().audio_key };

    let put_now = started_transcript(&services, 4747, "original-1").await;
    db.finish_transcript(put_now.id, &finish(Some("audio/now.ogg"))).await.unwrap();
    assert_eq!(key_of(put_now).await.as_deref(), Some("audio/now.ogg"), "recorded with the transcript");

    let put_before = started_transcript(&services, 4747, "original-2").await;
    db.update_transcript(put_before.id, TranscriptField::AudioKey, &"audio/before.ogg").await.unwrap();
    db.finish_transcript(put_before.id, &finish(None)).await.unwrap();
    assert_eq!(key_of(put_before).await.as_deref(), Some("audio/before.ogg"), "an earlier attempt's key stays");
}

#[tokio::test]
async fn retention_deletes_old_finished_jobs_that_no_money_row_transcript_or_fal_request_points_at() {
    let (_t, services) = common::services("retention_jobs", |_| {}).await;
    let user = common::user(&services, 4545).await;
    let client = services.db.client().await.unwrap();
    let old = "now() - interval '31 days'";
    client
        .batch_execute(&format!(
            "INSERT INTO jobs (id, kind, state, idempotency_key, max_attempts, updated_at) VALUES
                 (901, 'link.probe', 'done', 'k901', 3, {old}),       -- old, finished, free: deleted
                 (902, 'transcribe', 'dead', 'k902', 3, {old}),       -- old but charged and refunded: kept
                 (903, 'fal.poll', 'running', 'k903', 3, {old}),      -- old but not finished: kept
                 (904, 'link.probe', 'cancelled', 'k904', 3, now()),  -- recent: kept
                 (905, 'fal.poll', 'cancelled', 'k905', 3, {old});    -- old, finished, free: deleted
             INSERT INTO ledger_entries (user_id, delta, reason, job_id) VALUES
                 ({user}, 5, 'refund', 902), ({user}, -5, 'charge', 902);"
        ))
        .await
        .unwrap();
    let swept = services.db.sweep(&services.settings.retention).await.unwrap();
    assert_eq!(swept.jobs, 2);
    let left: Vec<i64> =
        client.query("SELECT id FROM jobs ORDER BY 1", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(left, vec![902, 903, 904]);
    let entries: i64 = client.query_one("SELECT count(*) FROM ledger_entries", &[]).await.unwrap().get(0);
    assert!(entries >= 2, "no money row is ever swept");
    aisha_testkit::services::assert_ledger_balanced(&client).await;
}

#[tokio::test]
async fn retention_deletes_old_handled_updates_and_orphan_callbacks_and_keeps_what_is_needed() {
    let (_t, services) = common::services("retention_sweep", |_| {}).await;
    let client = services.db.client().await.unwrap();
    let old = "now() - interval '8 days'";
    client
        .batch_execute(&format!(
            "INSERT INTO telegram_updates (update_id, payload, received_by, received_at, handled_at) VALUES
                 (1, '{{}}', 't', {old}, now()),      -- old and handled: deleted
                 (2, '{{}}', 't', {old}, NULL),       -- old but never handled: kept
                 (3, '{{}}', 't', now(), now()),      -- recent: kept
                 (4, '{{}}', 't', {old}, now());      -- the newest: kept, the offset comes from it
             INSERT INTO fal_callbacks (request_id, status, body, source, received_at) VALUES
                 ('orphan-old', 'OK', '{{}}', 'webhook', now() - interval '2 hours'),
                 ('orphan-new', 'OK', '{{}}', 'webhook', now());"
        ))
        .await
        .unwrap();
    let swept = services.db.sweep(&services.settings.retention).await.unwrap();
    assert_eq!((swept.updates, swept.orphans), (1, 1));
    let left: Vec<i64> = client
        .query("SELECT update_id FROM telegram_updates ORDER BY 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(left, vec![2, 3, 4]);
    let callbacks: Vec<String> =
        client.query("SELECT request_id FROM fal_callbacks", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(callbacks, vec!["orphan-new".to_string()]);
}

#[tokio::test]
async fn profiles_read_together_are_created_refreshed_or_only_read_each_as_alone() {
    use aisha_actors::store::users::TelegramProfile;
    let (_t, services) = common::services("users_together", |_| {}).await;
    let profile = |id: i64, name: &str, lang: Option<&str>| TelegramProfile {
        telegram_id: id,
        first_name: Some(name.into()),
        language_code: lang.map(Into::into),
        ..Default::default()
    };
    let known = services.db.upsert_user(&profile(7001, "Ann", Some("en"))).await.unwrap();
    let renamed = services.db.upsert_user(&profile(7002, "Bob", Some("ru"))).await.unwrap();
    let users = services
        .db
        .upsert_users(&[
            profile(7001, "Ann", None),          // unchanged: no language said keeps the stored one
            profile(7002, "Robert", Some("ru")), // renamed
            profile(7003, "Cid", Some("de")),    // new
            profile(7003, "Cid", Some("de")),    // the same one twice in a batch
        ])
        .await;
    let users: Vec<_> = users.into_iter().map(Result::unwrap).collect();
    assert_eq!(users[0], known);
    assert_eq!((users[1].id, users[1].language_code.as_deref()), (renamed.id, Some("ru")));
    assert_eq!(users[2], users[3]);
    assert_eq!(users[2].language_code.as_deref(), Some("de"));
    let client = services.db.client().await.unwrap();
    let names: Vec<(i64, String)> = client
        .query("SELECT telegram_id, first_name FROM users ORDER BY telegram_id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(names, [(7001, "Ann".into()), (7002, "Robert".into()), (7003, "Cid".into())]);
    let in_flight = services.db.work_in_flight_of(&[users[0].id, users[1].id, users[0].id]).await;
    assert!(in_flight.iter().all(|n| matches!(n, Ok(0))), "{in_flight:?}");
}

#[tokio::test]
async fn callbacks_recorded_together_queue_one_delivery_each_and_only_for_known_requests() {
    use aisha_actors::fal_job::requests::{self, NewCallback};
    let (_t, services) = common::services("callbacks_together", |_| {}).await;
    let db = &services.db;
    let user = common::user(&services, 4545).await;
    let submit = |id: &'static str| async move {
        let request = fal_request(db, user, id).await;
        requests::record_request(db, &request, std::time::Duration::from_secs(3600)).await.unwrap();
    };
    let deliveries = || deliveries(db);
    let callback = |id: &str| NewCallback {
        request_id: id.into(),
        status: "OK".into(),
        body: serde_json::json!({ "request_id": id }),
        source: "webhook",
    };
    let new = |outcomes: Vec<Result<bool, _>>| outcomes.into_iter().map(|o| o.unwrap()).collect::<Vec<bool>>();
    submit("known-1").await;
    submit("known-2").await;

    let batch = vec![callback("known-1"), callback("early"), callback("known-1"), callback("known-2")];
    assert_eq!(
        new(requests::record_callbacks(db, batch).await),
        [true, true, false, true],
        "the second known-1 is its duplicate"
    );
    assert_eq!(deliveries().await, ["known-1", "known-2"], "a callback before its submission queues nothing yet");

    let again = vec![callback("known-2"), callback("early")];
    assert_eq!(new(requests::record_callbacks(db, again).await), [false, false]);
    assert_eq!(deliveries().await, ["known-1", "known-2"], "duplicates queue nothing");

    submit("early").await;
    assert_eq!(
        deliveries().await,
        ["early", "known-1", "known-2"],
        "the submission finds its callback and queues the delivery"
    );
}

/// A submission and its callback recorded at the same moment, each in a
/// transaction that cannot see the other's row yet, still queue the
/// delivery (before, neither did, and the result waited for the safety-net
/// poll, `fal.poll_after`: 90 s).
#[tokio::test]
async fn a_submission_and_its_callback_recorded_at_once_still_queue_the_delivery() {
    use aisha_actors::fal_job::requests::{self, NewCallback};
    let (_t, services) = common::services("callback_race", |_| {}).await;
    let db = &services.db;
    let user = common::user(&services, 4546).await;
    let ids: Vec<String> = (0..40).map(|i| format!("race-{i:02}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let request = fal_request(db, user, id).await;
        let body = serde_json::json!({ "request_id": id });
        let callback = async {
            if i % 2 == 0 {
                requests::record_callback(db, id, "OK", &body, "webhook").await.unwrap()
            } else {
                // Recorded together with another request's callback: the webhook's batch.
                let other = NewCallback {
                    request_id: format!("{id}-other"),
                    status: "OK".into(),
                    body: body.clone(),
                    source: "webhook",
                };
                let mine =
                    NewCallback { request_id: id.clone(), status: "OK".into(), body: body.clone(), source: "webhook" };
                requests::record_callbacks(db, vec![mine, other]).await.remove(0).unwrap()
            }
        };
        let (recorded, new) =
            tokio::join!(requests::record_request(db, &request, std::time::Duration::from_secs(3600)), callback);
        recorded.unwrap();
        assert!(new, "{id}: the callback is new");
    }
    assert_eq!(deliveries(db).await, ids, "every request's delivery queued once");
}

/// A request for a paid job of `user`'s just queued: what a submission records.
async fn fal_request(db: &aisha_actors::store::Db, user: i64, id: &str) -> aisha_actors::store::fal::FalRequest {
    let client = db.client().await.unwrap();
    let job = queue::enqueue(&client, &NewJob::new("fal.imagine", format!("paid-{id}"), serde_json::json!({})))
        .await
        .unwrap()
        .job()
        .clone();
    aisha_actors::store::fal::FalRequest {
        request_id: id.into(),
        job_id: job.id,
        user_id: user,
        chat_id: 4545,
        kind: aisha_actors::store::fal::FalKind::Imagine,
        model: "fal-ai/flux".into(),
        status_url: String::new(),
        response_url: String::new(),
        cancel_url: String::new(),
        avatar_id: None,
        prompt: None,
        aspect_ratio: None,
        language: None,
        state: aisha_actors::store::fal::FalState::Submitted,
        age_seconds: 0.0,
    }
}

/// The request ids of the queued deliveries, in order.
async fn deliveries(db: &aisha_actors::store::Db) -> Vec<String> {
    let client = db.client().await.unwrap();
    let rows = client
        .query("SELECT payload->>'request_id' FROM jobs WHERE kind = 'fal.deliver' ORDER BY 1", &[])
        .await
        .unwrap();
    rows.iter().map(|r| r.get::<_, String>(0)).collect()
}
