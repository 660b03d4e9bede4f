//! Drafts: in a private chat, a recording of several chunks shows its text
//! so far (`sendMessageDraft`, Bot API 9.3) each time the chunks finished
//! from the start grow, whichever worker finished them. Beside the work,
//! never waited on: the chunks only say "one more is done", and a task of
//! its own reads them and sends. A draft takes its turn in the send
//! budget, is sent once (a refusal is final), and none goes out once the
//! transcript does.

use std::sync::Arc;
use std::time::Duration;

use teloxide::requests::Request;
use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;

use super::timeline::{self, ChunkText};
use crate::clients::flood;
use crate::clients::newer_api::{send_message_draft, SendMessageDraft, DRAFT_MAX_CHARS};
use crate::clients::TgBot;
use crate::store::Db;

/// The longest a finished transcript waits for a draft already on its way.
const IN_FLIGHT_GRACE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Chunks finished so far (a count that only grows).
    Working(usize),
    /// The transcript goes out: no draft after it.
    Done,
}

/// Where and of what the drafts are shown.
pub(super) struct Draft {
    pub bot: TgBot,
    pub db: Db,
    pub chat: i64,
    pub transcript_id: i64,
    pub chunks: usize,
}

/// One recording's drafts, shown until `finish` (or a drop: the job failed).
pub(super) struct Drafts {
    stage: watch::Sender<Stage>,
    sending: Arc<Mutex<()>>,
    task: JoinHandle<()>,
}

impl Drafts {
    pub(super) fn start(draft: Draft) -> Self {
        let (stage, seen) = watch::channel(Stage::Working(0));
        let sending = Arc::new(Mutex::new(()));
        let task = tokio::spawn(show(draft, seen, sending.clone()));
        Drafts { stage, sending, task }
    }

    /// One more chunk is kept.
    pub(super) fn chunk_done(&self) {
        self.stage.send_modify(|stage| {
            if let Stage::Working(n) = stage {
                *n += 1;
            }
        });
    }

    /// No draft from now on: one already on its way is let finish (briefly),
    /// one still waiting its turn is dropped.
    pub(super) async fn finish(self) {
        let _ = self.stage.send(Stage::Done);
        let _ = tokio::time::timeout(IN_FLIGHT_GRACE, self.sending.lock()).await;
    }
}

impl Drop for Drafts {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn show(draft: Draft, mut seen: watch::Receiver<Stage>, sending: Arc<Mutex<()>>) {
    let mut shown = 0;
    while seen.changed().await.is_ok() {
        if *seen.borrow_and_update() == Stage::Done {
            return;
        }
        let Some((from_start, text)) = text_so_far(&draft).await else { continue };
        if from_start <= shown || from_start == draft.chunks {
            continue; // nothing new, or the transcript itself is next
        }
        shown = from_start;
        flood::wait_turn(Some(draft.chat), false).await;
        let _sending = sending.lock().await;
        if *seen.borrow() == Stage::Done {
            return;
        }
        let request = SendMessageDraft { chat_id: draft.chat, draft_id: draft_id(draft.transcript_id), text };
        let outcome = match send_message_draft(&draft.bot, request).send().await {
            Ok(_) => "sent",
            Err(e) => {
                tracing::debug!(transcript_id = draft.transcript_id, error = %e, "a draft was refused; not sent again");
                "refused"
            }
        };
        metrics::counter!("aishad_telegram_drafts_total", "outcome" => outcome).increment(1);
    }
}

/// How many chunks are finished from the first on, and their text joined
/// (its latest part when longer than a draft takes).
async fn text_so_far(draft: &Draft) -> Option<(usize, String)> {
    let parts = draft.db.transcript_chunks(draft.transcript_id).await.ok()?;
    let from_start = parts.iter().enumerate().take_while(|(i, part)| part.idx == *i as i32).count();
    let chunks = parts[..from_start].iter().map(ChunkText::of).collect::<Result<Vec<_>, _>>().ok()?;
    let text = timeline::merge(&chunks).text;
    (!text.is_empty()).then(|| (from_start, latest_part(&text, DRAFT_MAX_CHARS)))
}

/// The last `max` characters of `text`, marked as cut when it was.
fn latest_part(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_owned();
    }
    let start = text.char_indices().nth(count - (max - 1)).map_or(0, |(i, _)| i);
    format!("…{}", &text[start..])
}

/// One draft per recording: its transcript's id, kept within 1..=i32::MAX
/// (the Bot API's Integer, never zero).
fn draft_id(transcript_id: i64) -> i64 {
    (transcript_id - 1).rem_euclid(i64::from(i32::MAX)) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_text_shows_its_latest_part_within_the_limit() {
        assert_eq!(latest_part("short", 10), "short");
        let cut = latest_part("абвгдежзик", 5);
        assert_eq!(cut, "…жзик");
        assert_eq!(cut.chars().count(), 5);
    }

    #[test]
    fn a_draft_id_is_never_zero_and_fits_an_integer() {
        assert_eq!(draft_id(1), 1);
        assert_eq!(draft_id(i64::from(i32::MAX)), i64::from(i32::MAX));
        assert_eq!(draft_id(i64::from(i32::MAX) + 1), 1);
    }
}
