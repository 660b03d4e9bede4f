//! Telling a user that a job of theirs failed and what they got back.

use crate::clients::{Patiently, TgBot};
use teloxide::prelude::Requester;
use teloxide::types::ChatId;

use super::{texts, Lang};
use crate::jobs::kind::Title;
use crate::jobs::Job;

/// Tells the user a job of theirs (`title`: what they call its kind)
/// failed (`why`, in their words) and was refunded.
pub async fn tell_failed(bot: &TgBot, job: &Job, title: Title, why: &str, lang: Lang) {
    let Some(chat) = job.chat_id else { return };
    if let Err(e) = bot.send_message(ChatId(chat), failed_text(job, title, why, lang)).patiently().await {
        tracing::warn!(job_id = job.id, error = %e, "could not tell the user about a failed job");
    }
}

/// What `tell_failed` says: the job failed, why, and what came back.
pub fn failed_text(job: &Job, title: Title, why: &str, lang: Lang) -> String {
    let what = lang.title(title);
    let text = format!("{}\n{why}\n{}", texts::failed(lang, what), texts::refunded(lang, job.cost));
    text.trim_end().to_owned()
}
