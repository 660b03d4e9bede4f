//! `/deletemydata`: after a confirm button, everything the user sent or got
//! is deleted, the S3 objects included; the ledger keeps its entries, as
//! financial records, without content.

use teloxide::payloads::SendMessageSetters;
use teloxide::prelude::Requester;
use teloxide::types::{ChatId, InlineKeyboardMarkup};

use super::{BotHandler, HandleError, Turn};
use crate::chat::callback::{button, Callback};
use crate::chat::{texts, Lang};
use crate::clients::Patiently;
use crate::dialogue;
use crate::ledger;
use crate::store::fal::FalKind;
use crate::store::forget::content_prefixes;

impl BotHandler {
    pub(super) async fn ask_to_forget(&self, chat: ChatId, lang: Lang) -> Result<(), HandleError> {
        let [yes, no] = texts::delete_buttons(lang);
        let buttons = [[button(yes, Callback::Forget(true)), button(no, Callback::Forget(false))]];
        self.bot
            .send_message(chat, texts::confirm_delete(lang))
            .reply_markup(InlineKeyboardMarkup::new(buttons))
            .patiently()
            .await?;
        Ok(())
    }

    /// Queued work is cancelled and refunded first (nothing left to make new
    /// content), and a training under way is cancelled as `/cancel` would;
    /// what a worker already holds finishes, and the user is told.
    pub(super) async fn forget(&self, turn: Turn, telegram_id: i64) -> Result<(), HandleError> {
        let Turn { chat, user_id, lang } = turn;
        let db = &self.services.db;
        let mut running = 0;
        for job in crate::jobs::queue::active_for_user(db, user_id).await? {
            if ledger::cancel_job(db, job.id, "the user deleted their data").await?.is_none() {
                running += 1;
            }
        }
        // A training under way ends as a cancel would; images under way are dropped when they come.
        for training in db.fal_requests_submitted(user_id, FalKind::Train).await? {
            self.cancel_training(&training).await?;
        }
        dialogue::clear(&self.services.redis, user_id).await?;
        let mut files = 0;
        for prefix in content_prefixes(user_id) {
            files += self.services.blob.delete_prefix(&prefix).await?;
        }
        let forgotten = db.forget_user(user_id, telegram_id).await?;
        for prefix in &forgotten.sent_in_groups {
            files += self.services.blob.delete_prefix(prefix).await?;
        }
        tracing::info!(user_id, files, ?forgotten, running, "user data deleted on request");
        metrics::counter!("aishad_data_deletions_total").increment(1);
        self.say(chat, texts::deleted(lang, files, running)).await
    }
}
