//! Transcripts and their finished chunks.

use serde_json::Value;

use super::db::{Db, Prepared};
use super::error::StoreError;

#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    pub id: i64,
    pub job_id: i64,
    pub user_id: i64,
    pub chat_id: i64,
    /// The model that made it: the diarizing one gave it speakers.
    pub model: String,
    pub status_message_id: Option<i32>,
    pub audio_key: Option<String>,
    pub plan: Option<Value>,
    pub text_key: Option<String>,
    /// The timed segments (JSON in S3); `None` when the model gave no timing.
    pub segments_key: Option<String>,
    pub duration_seconds: Option<f64>,
    pub chunk_count: Option<i32>,
    pub preview: Option<String>,
    pub delivered: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Set when its text was copied from an earlier transcript of the same audio.
    pub repeat_of: Option<i64>,
}

const COLUMNS: &str =
    "id, job_id, user_id, chat_id, model, status_message_id, audio_key, plan, text_key, segments_key, duration_seconds, \
                       chunk_count, preview, delivered_at IS NOT NULL AS delivered, created_at, repeat_of";

fn transcript(row: &tokio_postgres::Row) -> Transcript {
    Transcript {
        id: row.get("id"),
        job_id: row.get("job_id"),
        user_id: row.get("user_id"),
        chat_id: row.get("chat_id"),
        model: row.get("model"),
        status_message_id: row.get("status_message_id"),
        audio_key: row.get("audio_key"),
        plan: row.get("plan"),
        text_key: row.get("text_key"),
        segments_key: row.get("segments_key"),
        duration_seconds: row.get("duration_seconds"),
        chunk_count: row.get("chunk_count"),
        preview: row.get("preview"),
        delivered: row.get("delivered"),
        created_at: row.get("created_at"),
        repeat_of: row.get("repeat_of"),
    }
}

/// What a transcript was asked for: the same audio asked for the same way
/// gives the same text (see `earlier_transcript`).
#[derive(Debug, Clone, Copy)]
pub struct Asked<'a> {
    pub file_unique_id: &'a str,
    /// The model that makes it: the diarizing one gives speakers.
    pub model: &'a str,
    /// The language the payer said is spoken, `auto` to detect it; `None`
    /// for what is never reused.
    pub spoken_language: Option<&'a str>,
    /// The payer's glossary (its key), `None` when empty.
    pub glossary: Option<&'a str>,
}

/// A job's transcript as its attempt starts it.
#[derive(Debug, Clone)]
pub struct Started {
    pub transcript: Transcript,
    /// Made by this attempt: nothing of it (chunks, calls, audio) exists yet.
    pub fresh: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Finished {
    pub text_key: String,
    pub segments_key: Option<String>,
    pub chars: i32,
    pub preview: String,
    pub duration_seconds: f64,
    pub chunk_count: i32,
    pub language: Option<String>,
    /// The earlier transcript this one's text was copied from (a repeat).
    pub repeat_of: Option<i64>,
    /// The original recording's key, when this attempt kept it in S3 (an
    /// earlier attempt's key stays otherwise).
    pub audio_key: Option<String>,
}

impl Db {
    /// The job's transcript, created on its first attempt, in one round
    /// trip: the row inserted, or the one an earlier attempt made.
    pub async fn start_transcript(
        &self,
        job_id: i64,
        user_id: i64,
        chat_id: i64,
        asked: &Asked<'_>,
        sender_telegram_id: Option<i64>,
    ) -> Result<Started, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt_prepared(
                &format!(
                    "WITH made AS (
                       INSERT INTO transcripts (job_id, user_id, chat_id, file_unique_id, model, spoken_language, glossary, sender_telegram_id)
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (job_id) DO NOTHING
                       RETURNING {COLUMNS})
                     SELECT *, true AS fresh FROM made
                     UNION ALL
                     SELECT {COLUMNS}, false FROM transcripts WHERE job_id = $1 AND NOT EXISTS (SELECT 1 FROM made)"
                ),
                &[
                    &job_id,
                    &user_id,
                    &chat_id,
                    &asked.file_unique_id,
                    &asked.model,
                    &asked.spoken_language,
                    &asked.glossary,
                    &sender_telegram_id,
                ],
            )
            .await?;
        if let Some(row) = row {
            return Ok(Started { transcript: transcript(&row), fresh: row.get("fresh") });
        }
        // An attempt that committed the row after this statement's snapshot
        // was taken: its row, read again.
        let row = client
            .query_one_prepared(&format!("SELECT {COLUMNS} FROM transcripts WHERE job_id = $1"), &[&job_id])
            .await?;
        Ok(Started { transcript: transcript(&row), fresh: false })
    }

    /// The latest finished transcript of the same audio asked for the same
    /// way, other than `not`: what a repeat reuses.
    pub async fn earlier_transcript(&self, asked: &Asked<'_>, not: i64) -> Result<Option<Transcript>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {COLUMNS} FROM transcripts
                      WHERE file_unique_id = $1 AND model = $2 AND spoken_language = $3 AND glossary IS NOT DISTINCT FROM $4
                        AND text_key IS NOT NULL AND id <> $5
                      ORDER BY id DESC LIMIT 1"
                ),
                &[&asked.file_unique_id, &asked.model, &asked.spoken_language, &asked.glossary, &not],
            )
            .await?;
        Ok(row.as_ref().map(transcript))
    }

    pub async fn update_transcript(
        &self,
        id: i64,
        column: TranscriptField,
        value: &(dyn tokio_postgres::types::ToSql + Sync),
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute_prepared(&format!("UPDATE transcripts SET {} = $2 WHERE id = $1", column.name()), &[&id, value])
            .await?;
        Ok(())
    }

    /// Keeps a chunk and ends its call; true when this write kept it (not
    /// when another caller's, or an earlier try of this one, had).
    pub async fn save_chunk(&self, transcript_id: i64, chunk: &SavedChunk) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one_prepared(
                "WITH kept AS (
                   INSERT INTO transcript_chunks (transcript_id, idx, start_seconds, end_seconds, text, segments, heard_seconds)
                   VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (transcript_id, idx) DO NOTHING RETURNING 1),
                 ended AS (DELETE FROM transcript_chunk_calls WHERE transcript_id = $1 AND idx = $2)
                 SELECT EXISTS (SELECT 1 FROM kept)",
                &[
                    &transcript_id,
                    &chunk.idx,
                    &chunk.start,
                    &chunk.end,
                    &chunk.text,
                    &chunk.segments,
                    &chunk.heard_seconds,
                ],
            )
            .await?;
        Ok(row.get(0))
    }

    /// Finished chunks, in order.
    pub async fn transcript_chunks(&self, transcript_id: i64) -> Result<Vec<SavedChunk>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query_prepared(
                "SELECT idx, start_seconds, end_seconds, text, segments, heard_seconds FROM transcript_chunks
                  WHERE transcript_id = $1 ORDER BY idx",
                &[&transcript_id],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| SavedChunk {
                idx: r.get(0),
                start: r.get(1),
                end: r.get(2),
                text: r.get(3),
                segments: r.get(4),
                heard_seconds: r.get(5),
            })
            .collect())
    }

    /// The transcript exists: its text and summary recorded, and its job
    /// marked as holding a result, in one statement, so neither a cancel
    /// nor the job's death refunds what the API was paid for.
    pub async fn finish_transcript(&self, id: i64, f: &Finished) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute_prepared(
                "WITH finished AS (
                     UPDATE transcripts SET text_key = $2, chars = $3, preview = $4, duration_seconds = $5,
                                            chunk_count = $6, language = $7, segments_key = $8, repeat_of = $9,
                                            audio_key = COALESCE($10, audio_key)
                      WHERE id = $1 RETURNING job_id)
                 UPDATE jobs SET result_kept_at = COALESCE(result_kept_at, now()) WHERE id IN (SELECT job_id FROM finished)",
                &[
                    &id,
                    &f.text_key,
                    &f.chars,
                    &f.preview,
                    &f.duration_seconds,
                    &f.chunk_count,
                    &f.language,
                    &f.segments_key,
                    &f.repeat_of,
                    &f.audio_key,
                ],
            )
            .await?;
        Ok(())
    }

    /// Marks the transcript delivered; false when it already was (a retry
    /// raced a delivery), so the caller must not send it again.
    pub async fn mark_transcript_delivered(&self, id: i64) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let n = client
            .execute_prepared(
                "UPDATE transcripts SET delivered_at = now() WHERE id = $1 AND delivered_at IS NULL",
                &[&id],
            )
            .await?;
        Ok(n == 1)
    }

    /// The transcript a job made (or was making).
    pub async fn transcript_for_job(&self, job_id: i64) -> Result<Option<Transcript>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt_prepared(&format!("SELECT {COLUMNS} FROM transcripts WHERE job_id = $1"), &[&job_id])
            .await?;
        Ok(row.as_ref().map(transcript))
    }

    /// Delivered transcripts of a user, newest first.
    pub async fn recent_transcripts(
        &self,
        user_id: i64,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<Transcript>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM transcripts WHERE user_id = $1 AND delivered_at IS NOT NULL
                     ORDER BY id DESC OFFSET $2 LIMIT $3"
                ),
                &[&user_id, &offset, &limit],
            )
            .await?;
        Ok(rows.iter().map(transcript).collect())
    }

    /// A user's own transcript, once delivered (someone else's id, or one still
    /// being made, finds nothing).
    pub async fn transcript_of(&self, user_id: i64, id: i64) -> Result<Option<Transcript>, StoreError> {
        let client = self.client().await?;
        let sql =
            format!("SELECT {COLUMNS} FROM transcripts WHERE id = $1 AND user_id = $2 AND delivered_at IS NOT NULL");
        let row = client.query_opt(&sql, &[&id, &user_id]).await?;
        Ok(row.as_ref().map(transcript))
    }
}

impl Db {
    /// The model that made a transcript (to say which gives no timestamps).
    pub async fn transcript_model(&self, id: i64) -> Result<Option<String>, StoreError> {
        let client = self.client().await?;
        Ok(client.query_opt("SELECT model FROM transcripts WHERE id = $1", &[&id]).await?.map(|r| r.get(0)))
    }
}

/// One finished chunk: where it lies in the recording and what was heard;
/// `segments` is the API's timing (seconds from the chunk's start) as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedChunk {
    pub idx: i32,
    pub start: f64,
    pub end: f64,
    pub text: String,
    pub segments: Option<Value>,
    /// How long the API said the audio it was sent is, when it says.
    pub heard_seconds: Option<f64>,
}

/// The columns a worker fills in as it goes.
#[derive(Debug, Clone, Copy)]
pub enum TranscriptField {
    StatusMessage,
    AudioKey,
    Plan,
}

impl TranscriptField {
    fn name(self) -> &'static str {
        match self {
            TranscriptField::StatusMessage => "status_message_id",
            TranscriptField::AudioKey => "audio_key",
            TranscriptField::Plan => "plan",
        }
    }
}
