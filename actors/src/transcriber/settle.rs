//! The price of a transcription, settled twice: on the measured length
//! before any API call (refused, and so refunded, when it is absurd, over
//! `transcription.max_duration` or more than the balance covers), and on
//! what the API says it heard once the chunks are back (the second check:
//! more than was sent is charged, once, and the user told).

use teloxide::payloads::SendMessageSetters;
use teloxide::prelude::Requester;

use super::turn::Turn;
use crate::chat::keyboards::top_up;
use crate::chat::texts;
use crate::clients::Patiently;
use crate::jobs::JobError;
use crate::ledger::{self, Settled};
use crate::store::transcripts::SavedChunk;

/// The measured length sets the price: the difference from what was
/// charged up front is charged or refunded, and the user told. Runs before
/// the recording is planned into chunks.
pub(super) async fn measured_price(turn: &Turn<'_>, seconds: f64) -> Result<(), JobError> {
    let settings = &turn.worker.services.settings;
    let (lang, max) = (turn.lang, settings.transcription.max_duration);
    if seconds > max.as_secs_f64() {
        return Err(JobError::Refused(texts::too_long(lang, seconds, max)));
    }
    let price = ledger::transcription_price(seconds, settings.pricing.transcription_rate(turn.request.speakers))
        .ok_or_else(|| JobError::Refused(texts::implausible_length(lang).to_owned()))?;
    if price == turn.job.cost {
        // What was charged up front stands (an earlier attempt that settled
        // a difference would have left a cost other than this price).
        return Ok(());
    }
    let told = match ledger::settle_price(&turn.worker.services.db, turn.job, &turn.ctx.worker, price).await {
        Ok(Settled::Unchanged) => return Ok(()),
        Ok(Settled::Charged { extra, balance }) => texts::measured_more(lang, seconds, extra, balance),
        Ok(Settled::Refunded { amount, balance }) => texts::measured_less(lang, seconds, amount, balance),
        Ok(Settled::CannotPay { price, balance }) => {
            // Said here, with the Top up button; the failure notice that follows gives the refund.
            let refusal = turn.worker.bot.send_message(turn.money_chat, texts::insufficient(lang, price, balance));
            let _ = refusal.reply_markup(top_up(lang)).patiently().await;
            return Err(JobError::RefusedAndTold);
        }
        Err(ledger::LedgerError::NotHeld(_)) => {
            return Err(JobError::Retry("lost the job before settling its price".into()))
        }
        Err(e) => return Err(JobError::retry(e)),
    };
    tracing::info!(job_id = turn.job.id, price, seconds, "price settled on the measured length");
    let _ = turn.worker.bot.send_message(turn.money_chat, told).patiently().await;
    Ok(())
}

/// Seconds the API says it heard beyond what each chunk holds: zero unless
/// a measurement let through more audio than it counted.
pub fn heard_beyond_sent(parts: &[SavedChunk]) -> f64 {
    parts
        .iter()
        .filter_map(|c| {
            let sent = (c.end - c.start).max(0.0);
            c.heard_seconds.map(|heard| (heard - super::audio::most_heard(sent)).max(0.0))
        })
        .sum()
}

/// The second check: when the API heard more than was measured, the
/// difference is charged (once) and the user told; an operator is alerted
/// either way, since the measurement let it through.
pub(super) async fn heard(turn: &Turn<'_>, measured: f64, parts: &[SavedChunk]) {
    let beyond = heard_beyond_sent(parts);
    if beyond <= 0.0 {
        return;
    }
    let (job, lang) = (turn.job, turn.lang);
    let heard = measured + beyond;
    tracing::error!(job_id = job.id, measured, heard, "the API heard more audio than was measured and sent");
    metrics::counter!("aishad_alerts_total", "alert" => "transcription_heard_more").increment(1);
    metrics::counter!("aishad_transcription_unmeasured_seconds_total").increment(beyond.ceil() as u64);
    let per_minute = turn.worker.services.settings.pricing.transcription_rate(turn.request.speakers);
    let Some(price) = ledger::transcription_price(heard, per_minute) else { return };
    match ledger::settle_heard(&turn.worker.services.db, job, &turn.ctx.worker, price).await {
        Ok(Settled::Charged { extra, balance }) => {
            let told = texts::measured_more(lang, heard, extra, balance);
            let _ = turn.worker.bot.send_message(turn.money_chat, told).patiently().await;
        }
        Ok(Settled::CannotPay { price, balance }) => {
            tracing::error!(
                job_id = job.id,
                price,
                balance,
                "the balance cannot cover what the API heard; the transcript goes out"
            );
        }
        Ok(_) => {}
        Err(e) => {
            tracing::error!(job_id = job.id, error = %e, "could not charge what the API heard beyond the measurement")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(start: f64, end: f64, heard: Option<f64>) -> SavedChunk {
        SavedChunk { idx: 0, start, end, text: String::new(), segments: None, heard_seconds: heard }
    }

    #[test]
    fn only_what_the_api_heard_beyond_each_chunk_counts() {
        assert_eq!(
            heard_beyond_sent(&[part(0.0, 60.0, Some(60.3)), part(59.0, 120.0, None)]),
            0.0,
            "padding and rounding"
        );
        let beyond = heard_beyond_sent(&[part(0.0, 60.0, Some(1200.0)), part(60.0, 120.0, Some(60.0))]);
        assert!((beyond - (1200.0 - 60.0 - 1.2 - 0.5 - 0.1)).abs() < 1e-9, "{beyond}");
    }
}
