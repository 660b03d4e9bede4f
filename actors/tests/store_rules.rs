//! What the store hands out and what it forgets: transcripts only to their
//! owner and only once delivered; raw updates and callbacks after retention.

mod common;

use aisha_actors::jobs::{queue, NewJob};

#[tokio::test]
async fn a_transcript_is_only_offered_once_it_was_delivered_and_only_to_its_owner() {
    let (_t, services) = common::services("transcript_delivered", |_| {}).await;
    let user = common::user(&services, 4242).await;
    let stranger = common::user(&services, 4343).await;
    let client = services.db.client().await.unwrap();
    let job = queue::enqueue(&**client, &NewJob::new("transcribe", "transcript-store-1", serde_json::json!({}))).await.unwrap().job().clone();
    let transcript = services.db.start_transcript(job.id, user, 4242, "file-1", "whisper-1").await.unwrap();

    assert!(services.db.transcript_of(user, transcript.id).await.unwrap().is_none(), "still being made");
    services.db.mark_transcript_delivered(transcript.id).await.unwrap();
    assert!(services.db.transcript_of(user, transcript.id).await.unwrap().is_some());
    assert!(services.db.transcript_of(stranger, transcript.id).await.unwrap().is_none(), "someone else's");
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
    let left: Vec<i64> = client.query("SELECT update_id FROM telegram_updates ORDER BY 1", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(left, vec![2, 3, 4]);
    let callbacks: Vec<String> = client.query("SELECT request_id FROM fal_callbacks", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(callbacks, vec!["orphan-new".to_string()]);
}
