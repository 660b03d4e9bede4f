//! `/deletemydata`: a user's content removed from every table in one
//! transaction. Rows that are financial records (ledger entries, Stars
//! orders and payments, the jobs and FAL requests they point at) stay, with
//! their content (payloads, prompts, callback bodies) scrubbed. S3 objects
//! are the caller's: see [`content_prefixes`].

use super::db::Db;
use super::error::StoreError;
use deadpool_postgres::GenericClient;

/// What was removed or scrubbed, by table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forgotten {
    pub transcripts: u64,
    pub images: u64,
    pub avatars: u64,
    pub jobs_scrubbed: u64,
    pub fal_requests_scrubbed: u64,
    /// FAL requests still being made: their results will be dropped, not stored.
    pub fal_requests_dropped: u64,
    pub updates_scrubbed: u64,
    /// Groups where this user paid for transcription: off, and no payer.
    pub groups_left: u64,
    /// S3 prefixes of voice notes this user sent in groups, kept under the
    /// payer's id: the caller deletes them too.
    pub sent_in_groups: Vec<String>,
}

/// The S3 prefixes that hold a user's bytes (keys are `{kind}/{user_id}/…`).
pub fn content_prefixes(user_id: i64) -> [String; 4] {
    ["audio", "transcripts", "images", "avatars"].map(|kind| format!("{kind}/{user_id}/"))
}

impl Db {
    /// Deletes the user's transcripts (and those of voice notes they sent in
    /// groups), images, avatars and their photos; stops paying for groups;
    /// drops FAL results still to come; scrubs finished jobs' payloads, FAL
    /// prompts and callback bodies, and every update they sent, handled or
    /// not, the press that confirmed this among them (kept as ids, so a
    /// redelivery is still known; one in hand is handled from memory).
    /// Jobs still queued or running keep their payloads: the caller cancels
    /// what it can first, and a running job needs its own.
    pub async fn forget_user(&self, user_id: i64, telegram_id: i64) -> Result<Forgotten, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let mut out = Forgotten::default();
        forget_transcripts(&tx, user_id, telegram_id, &mut out).await?;
        out.groups_left = tx
            .execute(
                "UPDATE group_chats SET autotranscribe = false, payer_user_id = NULL, updated_at = now() WHERE payer_user_id = $1",
                &[&user_id],
            )
            .await?;
        forget_images_and_avatars(&tx, user_id, &mut out).await?;
        forget_fal_requests(&tx, user_id, &mut out).await?;
        scrub_history(&tx, user_id, telegram_id, &mut out).await?;
        tx.commit().await?;
        Ok(out)
    }
}

/// Their own transcripts and links, and the transcripts of voice notes they
/// sent in a group (another user paid: its S3 prefixes go to the caller).
async fn forget_transcripts(
    tx: &impl GenericClient,
    user_id: i64,
    telegram_id: i64,
    out: &mut Forgotten,
) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM transcript_chunks
          WHERE transcript_id IN (SELECT id FROM transcripts WHERE user_id = $1 OR sender_telegram_id = $2)",
        &[&user_id, &telegram_id],
    )
    .await?;
    let deleted = tx
        .query(
            "DELETE FROM transcripts WHERE user_id = $1 OR sender_telegram_id = $2 RETURNING user_id, id",
            &[&user_id, &telegram_id],
        )
        .await?;
    out.transcripts = deleted.len() as u64;
    tx.execute("DELETE FROM links WHERE user_id = $1", &[&user_id]).await?;
    out.sent_in_groups = deleted
        .iter()
        .map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1)))
        .filter(|(payer, _)| *payer != user_id)
        .flat_map(|(payer, id)| [format!("audio/{payer}/{id}/"), format!("transcripts/{payer}/{id}/")])
        .collect();
    Ok(())
}

async fn forget_images_and_avatars(
    tx: &impl GenericClient,
    user_id: i64,
    out: &mut Forgotten,
) -> Result<(), StoreError> {
    out.images = tx.execute("DELETE FROM images WHERE user_id = $1", &[&user_id]).await?;
    tx.execute("UPDATE fal_requests SET avatar_id = NULL WHERE user_id = $1 AND avatar_id IS NOT NULL", &[&user_id])
        .await?;
    tx.execute("DELETE FROM avatar_photos WHERE avatar_id IN (SELECT id FROM avatars WHERE user_id = $1)", &[&user_id])
        .await?;
    out.avatars = tx.execute("DELETE FROM avatars WHERE user_id = $1", &[&user_id]).await?;
    Ok(())
}

/// FAL requests stay (they are what charges point at), without their
/// prompts and callback bodies; one still being made has its result dropped
/// when it comes (deliver ends on this state).
async fn forget_fal_requests(tx: &impl GenericClient, user_id: i64, out: &mut Forgotten) -> Result<(), StoreError> {
    out.fal_requests_dropped = tx
        .execute(
            "UPDATE fal_requests SET state = 'forgotten', finished_at = now(), prompt = NULL WHERE user_id = $1 AND state = 'submitted'",
            &[&user_id],
        )
        .await?;
    out.fal_requests_scrubbed = tx
        .execute("UPDATE fal_requests SET prompt = NULL WHERE user_id = $1 AND state <> 'submitted'", &[&user_id])
        .await?;
    tx.execute(
        "UPDATE fal_callbacks SET body = '{}'::jsonb
          WHERE request_id IN (SELECT request_id FROM fal_requests WHERE user_id = $1 AND state <> 'submitted')",
        &[&user_id],
    )
    .await?;
    Ok(())
}

/// Finished jobs' payloads, every update they sent (kept as ids, so a
/// redelivery is still known), and their names.
async fn scrub_history(
    tx: &impl GenericClient,
    user_id: i64,
    telegram_id: i64,
    out: &mut Forgotten,
) -> Result<(), StoreError> {
    out.jobs_scrubbed = tx
        .execute(
            "UPDATE jobs SET payload = '{}'::jsonb, result = NULL
              WHERE user_id = $1 AND state NOT IN ('queued', 'running') AND payload <> '{}'::jsonb",
            &[&user_id],
        )
        .await?;
    out.updates_scrubbed = tx
        .execute(
            "UPDATE telegram_updates SET payload = jsonb_build_object('update_id', update_id, 'scrubbed', true)
              WHERE NOT payload ? 'scrubbed'
                AND (chat_id = $1
                     OR (payload #>> '{message,from,id}')::bigint = $1
                     OR (payload #>> '{callback_query,from,id}')::bigint = $1
                     OR (payload #>> '{pre_checkout_query,from,id}')::bigint = $1
                     OR (payload #>> '{guest_message,from,id}')::bigint = $1)",
            &[&telegram_id],
        )
        .await?;
    tx.execute(
        "UPDATE users SET username = NULL, first_name = NULL, last_name = NULL, glossary = '[]', updated_at = now() WHERE id = $1",
        &[&user_id],
    )
    .await?;
    Ok(())
}
