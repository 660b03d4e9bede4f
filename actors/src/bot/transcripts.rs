//! Transcripts in the chat: `/history` with paging, getting one again from
//! S3, and the Summary / Action items / Minutes buttons.

use teloxide::payloads::SendDocumentSetters;
use teloxide::payloads::SendMessageSetters;
use teloxide::prelude::Requester;
use teloxide::types::{CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, InputFile};

use super::{BotHandler, HandleError, Turn};
use crate::chat::callback::DigestKind;
use crate::chat::callback::{button, Callback};
use crate::chat::keyboards::transcript_keyboard;
use crate::chat::reply;
use crate::chat::texts;
use crate::clients::Patiently;
use crate::transcriber::kinds::{Digest, Transcribe, TRANSCRIPT_DIGEST};

impl BotHandler {
    /// Ten delivered transcripts per page, newest first, each with a button to get it again.
    pub(super) async fn history(&self, turn: Turn, page: i64) -> Result<(), HandleError> {
        let Turn { chat, user_id, lang } = turn;
        const PAGE: i64 = 10;
        let page = page.max(0);
        let mut items = self.services.db.recent_transcripts(user_id, page * PAGE, PAGE + 1).await?;
        if items.is_empty() {
            return self.say(chat, texts::no_transcripts(lang)).await;
        }
        let more = items.len() as i64 > PAGE;
        items.truncate(PAGE as usize);
        let mut text = texts::history_title(lang, page);
        let mut buttons = Vec::new();
        for (i, t) in items.iter().enumerate() {
            let n = page * PAGE + i as i64 + 1;
            let seconds = t.duration_seconds.unwrap_or_default();
            let preview = t.preview.clone().unwrap_or_default();
            text.push_str(&format!(
                "\n{n}. {} · {}:{:02} — «{preview}…»",
                t.created_at.format("%d.%m %H:%M"),
                (seconds / 60.0).floor() as u64,
                (seconds % 60.0).round() as u64
            ));
            buttons.push(button(format!("📄 {n}"), Callback::Transcript(t.id)));
        }
        let mut rows: Vec<Vec<InlineKeyboardButton>> = buttons.chunks(5).map(<[_]>::to_vec).collect();
        let mut nav = Vec::new();
        if page > 0 {
            nav.push(button("‹", Callback::History(page - 1)));
        }
        if more {
            nav.push(button("›", Callback::History(page + 1)));
        }
        if !nav.is_empty() {
            rows.push(nav);
        }
        self.bot.send_message(chat, text).reply_markup(InlineKeyboardMarkup::new(rows)).patiently().await?;
        Ok(())
    }

    /// Sends a stored transcript again, from S3.
    pub(super) async fn resend_transcript(&self, turn: Turn, id: i64) -> Result<(), HandleError> {
        let Turn { chat, user_id, lang } = turn;
        let Some(t) = self.services.db.transcript_of(user_id, id).await? else {
            return self.say(chat, texts::transcript_gone(lang)).await;
        };
        let Some(key) = t.text_key else { return self.say(chat, texts::transcript_gone(lang)).await };
        let text = match self.services.blob.get(&key).await {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) => {
                tracing::warn!(transcript_id = id, error = %e, "stored transcript unreadable");
                return self.say(chat, texts::something_went_wrong(lang)).await;
            }
        };
        let intro = texts::transcript_intro(lang, t.duration_seconds.unwrap_or_default());
        let speakers = t.model == self.services.settings.openai.diarization_model;
        let keyboard = transcript_keyboard(lang, id, t.segments_key.is_some(), speakers);
        let max = self.services.settings.transcription.max_messages;
        reply::send_long(&self.bot, chat, &intro, &text, Some(keyboard), max, "transcript.txt").await?;
        Ok(())
    }

    /// "Who said what" under a transcript: its price first; confirmed, the
    /// recording transcribed again with speakers and charged as any request
    /// (the worker settles the price on the length it measures).
    pub(super) async fn who_said_what(&self, turn: Turn, id: i64, confirmed: bool) -> Result<(), HandleError> {
        let Turn { chat, user_id, lang } = turn;
        let Some(t) = self.services.db.transcript_of(user_id, id).await? else {
            return self.say(chat, texts::transcript_gone(lang)).await;
        };
        if t.model == self.services.settings.openai.diarization_model {
            return self.say(chat, texts::already_with_speakers(lang)).await;
        }
        let seconds = t.duration_seconds.unwrap_or_default();
        let rate = self.services.settings.pricing.transcription_rate(true);
        let Some(price) = crate::ledger::transcription_price(seconds, rate) else {
            return self.say(chat, texts::implausible_length(lang)).await;
        };
        if !confirmed {
            let yes = [[button(texts::who_said_what_confirm(lang, price), Callback::WhoSaidWhat(id, true))]];
            let offer = self.bot.send_message(chat, texts::who_said_what_offer(lang, seconds, price));
            offer.reply_markup(InlineKeyboardMarkup::new(yes)).patiently().await?;
            return Ok(());
        }
        let original = crate::jobs::queue::get(&self.services.db, t.job_id).await?;
        let Some(mut request) = original.and_then(|job| job.payload_as::<Transcribe>().ok()) else {
            return self.say(chat, texts::transcript_gone(lang)).await;
        };
        request.speakers = true;
        // One redo per transcript: a second press finds the first. A link's
        // goes to a worker where yt-dlp runs, in case its audio was not kept.
        let job = request.kind().job(format!("who:{id}"), &request);
        self.charge(turn, job, price).await
    }

    /// A transcript as `.srt`, `.vtt` or `.txt` (with timestamps when the
    /// model gave them), made from the stored segments; free.
    pub(super) async fn subtitles(&self, turn: Turn, format: &str, id: i64) -> Result<(), HandleError> {
        let Turn { chat, user_id, lang } = turn;
        use crate::transcriber::timeline::Cue;
        let Some(t) = self.services.db.transcript_of(user_id, id).await? else {
            return self.say(chat, texts::transcript_gone(lang)).await;
        };
        let cues: Vec<Cue> = match &t.segments_key {
            Some(key) => serde_json::from_slice(&self.services.blob.get(key).await?).unwrap_or_default(),
            None => Vec::new(),
        };
        if cues.is_empty() && format != "txt" {
            let model = self.services.db.transcript_model(id).await?.unwrap_or_default();
            return self.say(chat, texts::no_timing(lang, &model)).await;
        }
        let plain = match (format, &t.text_key) {
            ("txt", Some(key)) => String::from_utf8_lossy(&self.services.blob.get(key).await?).into_owned(),
            ("txt", None) => return self.say(chat, texts::transcript_gone(lang)).await,
            _ => String::new(),
        };
        self.send_as_file(turn, format, &cues, &plain, &format!("transcript_{id}.{format}")).await
    }

    /// Timed text as a file: `.srt`, `.vtt`, or `.txt` (with timestamps when
    /// there are cues, `plain` as it is when not).
    pub(super) async fn send_as_file(
        &self,
        turn: Turn,
        format: &str,
        cues: &[crate::transcriber::timeline::Cue],
        plain: &str,
        name: &str,
    ) -> Result<(), HandleError> {
        use crate::transcriber::timeline;
        let body = match format {
            "srt" => timeline::srt(cues),
            "vtt" => timeline::vtt(cues),
            _ => timeline::timestamped_text(cues, plain),
        };
        let file = InputFile::memory(body.into_bytes()).file_name(name.to_owned());
        let caption = texts::subtitles_caption(turn.lang, format);
        self.bot.send_document(turn.chat, file).caption(caption).patiently().await?;
        Ok(())
    }

    /// Summary / action items / minutes of a transcript (`written_in` a
    /// language picked under a translation): charged and queued.
    pub(super) async fn digest(
        &self,
        turn: Turn,
        query: &CallbackQuery,
        kind: DigestKind,
        id: i64,
        written_in: Option<&str>,
    ) -> Result<(), HandleError> {
        let Turn { chat, user_id, lang } = turn;
        if self.services.db.transcript_of(user_id, id).await?.is_none() {
            return self.say(chat, texts::transcript_gone(lang)).await;
        }
        // The callback query id: a redelivered press is the same request.
        let key = format!("tg:cb:{}", query.id.0);
        if written_in.is_some_and(|code| !self.services.settings.translation.offers(code)) {
            return self.say(chat, texts::unknown_command(lang)).await;
        }
        let written_in = written_in.map(str::to_owned);
        let payload = Digest { transcript_id: id, kind, chat_id: chat.0, language: lang.code().to_owned(), written_in };
        let job = TRANSCRIPT_DIGEST.job(key, &payload);
        self.charge(turn, job, self.services.settings.pricing.transcript_digest).await
    }
}
