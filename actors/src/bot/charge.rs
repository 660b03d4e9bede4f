//! Charging for work, beneath every paid request: the user's limits, the
//! charge and the job in one transaction, and what the user is told either
//! way; and registering someone first met in another chat as by /start.

use teloxide::payloads::SendMessageSetters;
use teloxide::prelude::Requester;
use teloxide::types::ChatId;

use super::{BotHandler, HandleError, Turn};
use crate::chat::{keyboards, texts, Lang};
use crate::clients::Patiently;
use crate::jobs::NewJob;
use crate::ledger::{self, Charged};
use crate::store::users::{TelegramProfile, User};

/// The refusal of work past `limits.jobs_in_flight`, counted.
pub(super) fn too_many_in_flight(lang: Lang, limit: i64) -> String {
    metrics::counter!("aishad_limited_total", "limit" => "jobs_in_flight").increment(1);
    texts::too_many_in_flight(lang, u32::try_from(limit).unwrap_or(u32::MAX))
}

impl BotHandler {
    pub(super) async fn charge(&self, turn: Turn, job: NewJob, price: i64) -> Result<(), HandleError> {
        self.charge_for(turn, job, price).await.map(drop)
    }

    /// `job` for `chat` at `price`, with its kind's attempts.
    pub(super) fn priced(&self, mut job: NewJob, chat: ChatId, price: i64) -> NewJob {
        job.chat_id = Some(chat.0);
        job.cost = price;
        job.max_attempts = self.services.settings.jobs.kind(&job.kind).max_attempts;
        job
    }

    /// Charges and queues `job`, telling the user either way; true when the
    /// job is queued (now or by an earlier identical request).
    pub(super) async fn charge_for(&self, turn: Turn, job: NewJob, price: i64) -> Result<bool, HandleError> {
        let Turn { chat, user_id, lang } = turn;
        if let Some(refusal) = self.over_limit(user_id, lang).await? {
            self.say(chat, refusal).await?;
            return Ok(false);
        }
        let job = self.priced(job, chat, price);
        let kind = job.kind.clone();
        match self.shared.charge(user_id, job).await? {
            Charged::Queued { job, balance } => {
                tracing::info!(job_id = job.id, user_id, kind = %kind, price, "job queued");
                self.say(chat, texts::queued(lang, &crate::kinds::title(lang, &kind), price, balance)).await?;
                Ok(true)
            }
            Charged::Duplicate(job) => {
                tracing::info!(job_id = job.id, user_id, "duplicate request; not charged again");
                self.say(chat, texts::already_queued(lang)).await?;
                Ok(true)
            }
            Charged::TooManyInFlight { limit } => {
                self.say(chat, too_many_in_flight(lang, limit)).await?;
                Ok(false)
            }
            Charged::InsufficientBalance { price, balance } => {
                let refusal = self.bot.send_message(chat, texts::insufficient(lang, price, balance));
                refusal.reply_markup(keyboards::top_up(lang)).patiently().await?;
                Ok(false)
            }
        }
    }

    /// Why this user may not queue paid work right now, if they may not:
    /// too many paid requests this minute, or too much of their work in flight.
    pub(super) async fn over_limit(&self, user_id: i64, lang: Lang) -> Result<Option<String>, HandleError> {
        let limits = &self.services.settings.limits;
        let in_flight = self.shared.work_in_flight(user_id).await?;
        if in_flight >= i64::from(limits.jobs_in_flight) {
            return Ok(Some(too_many_in_flight(lang, i64::from(limits.jobs_in_flight))));
        }
        match self.shared.paid_request(user_id).await {
            Ok(crate::limits::Verdict::Allowed) => Ok(None),
            Ok(crate::limits::Verdict::RetryIn(wait)) => {
                metrics::counter!("aishad_limited_total", "limit" => "paid_per_minute").increment(1);
                Ok(Some(texts::slow_down(lang, wait.as_secs().max(1))))
            }
            Err(e) => {
                tracing::warn!(user_id, error = %e, "rate limit unavailable (Redis); letting the request through");
                Ok(None)
            }
        }
    }

    /// Someone the bot may never have met, asking from another chat (a
    /// guest query, `/transcribe` in a group): registered as by /start.
    pub(super) async fn register(&self, from: &teloxide::types::User) -> Result<User, HandleError> {
        let user = self.shared.user(TelegramProfile::of(from)).await?;
        ledger::welcome_bonus(&self.services.db, user.id, self.services.settings.pricing.welcome_bonus).await?;
        Ok(User { balance: ledger::balance(&self.services.db, user.id).await?, ..user })
    }
}
