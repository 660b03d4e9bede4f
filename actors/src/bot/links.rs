//! A link in a private chat: checked (no private addresses), read by a link
//! worker for free, which tells its price; transcribed once confirmed, and
//! charged then, as any recording.

use teloxide::types::Message;
use url::Url;

use super::{BotHandler, HandleError, Turn};
use crate::chat::{texts, Lang};
use crate::clients::links::Guard;
use crate::ledger::{self, Charged};
use crate::limits::{self, Verdict};
use crate::transcriber::kinds::{LinkProbe, LinkSource, Source, Transcribe, LINK_PROBE};

impl BotHandler {
    /// Checks the link, then queues the free job that reads it.
    pub(super) async fn on_link(&self, turn: Turn, message: &Message, url: Url) -> Result<(), HandleError> {
        let Turn { chat, user_id, lang } = turn;
        let guard = Guard::new(&self.services.settings.links.allow_ranges).unwrap_or_default();
        if let Err(refused) = guard.check_url(&url).await {
            tracing::info!(user_id, error = %refused, "a link refused before it was read");
            return self.say(chat, texts::link_refused(lang, &refused)).await;
        }
        if let Some(refusal) = self.over_reading_limit(user_id, lang).await? {
            return self.say(chat, refusal).await;
        }
        let link_id = self.services.db.add_link(user_id, chat.0, url.as_str()).await?;
        let probe = LinkProbe { link_id, chat_id: chat.0, language: lang.code().to_owned() };
        let job = LINK_PROBE.job(format!("tg:{}:{}:link", chat.0, message.id.0), &probe);
        match self.shared.charge(user_id, self.priced(job, chat, 0)).await? {
            Charged::Queued { job, .. } => {
                tracing::info!(job_id = job.id, user_id, link_id, "link queued to be read");
                self.say(chat, texts::link_reading(lang)).await
            }
            Charged::Duplicate(_) => Ok(()),
            Charged::TooManyInFlight { limit } => self.say(chat, super::charge::too_many_in_flight(lang, limit)).await,
            Charged::InsufficientBalance { .. } => self.say(chat, texts::something_went_wrong(lang)).await,
        }
    }

    /// Reading is free, so it has limits of its own: links read at once and
    /// readings an hour. Redis not answering lets the reading through.
    async fn over_reading_limit(&self, user_id: i64, lang: Lang) -> Result<Option<String>, HandleError> {
        let links = &self.services.settings.links;
        let reading = crate::jobs::queue::in_flight_of_kind(&self.services.db, user_id, LINK_PROBE.name).await?;
        if reading >= i64::from(links.probes_in_flight) {
            metrics::counter!("aishad_limited_total", "limit" => "links_in_reading").increment(1);
            return Ok(Some(texts::links_in_reading(lang, links.probes_in_flight)));
        }
        match limits::link_reading(&self.services.redis, user_id, links.probes_per_hour).await {
            Ok(Verdict::Allowed) => Ok(None),
            Ok(Verdict::RetryIn(wait)) => {
                metrics::counter!("aishad_limited_total", "limit" => "link_readings_per_hour").increment(1);
                Ok(Some(texts::link_readings_used(lang, links.probes_per_hour, wait.as_secs().div_ceil(60))))
            }
            Err(e) => {
                tracing::warn!(user_id, error = %e, "link reading limit unavailable (Redis); letting it through");
                Ok(None)
            }
        }
    }

    /// The link's recording transcribed at the price its reading told.
    pub(super) async fn link_confirmed(&self, turn: Turn, link_id: i64) -> Result<(), HandleError> {
        let Turn { chat, user_id, lang } = turn;
        let link = self.services.db.link_of(user_id, link_id).await?;
        let Some((link, seconds)) = link.and_then(|l| l.duration_seconds.map(|s| (l, s))) else {
            return self.say(chat, texts::link_not_read(lang)).await;
        };
        let settings = &self.services.settings;
        let speakers = self.services.db.speakers(user_id).await?;
        let Some(price) = ledger::transcription_price(seconds, settings.pricing.transcription_rate(speakers)) else {
            return self.say(chat, texts::implausible_length(lang)).await;
        };
        let request = Transcribe {
            chat_id: chat.0,
            source: Source::Link(LinkSource { link_id, url: link.url, audio_key: link.audio_key }),
            duration: Some(seconds.ceil() as u32),
            file_name: link.title,
            language: lang.code().to_owned(),
            spoken_language: Some(self.services.db.transcription_language(user_id).await?),
            reply_to: None,
            payer_chat_id: None,
            sender_telegram_id: None,
            speakers,
            guest: None,
        };
        // One transcription per link read: a second press finds the first.
        let job = request.kind().job(format!("link:{link_id}"), &request);
        self.charge(turn, job, price).await
    }
}
