//! OpenAI (or any Whisper-compatible API): audio transcriptions and chat
//! completions, with errors sorted by what the caller should do about them.

use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};

use crate::settings::OpenAiSettings;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenAiError {
    /// 429 `rate_limit_exceeded`: wait and try again.
    #[error("rate limited by OpenAI (retry after {retry_after:?})")]
    RateLimited { retry_after: Option<Duration> },
    /// 429 `insufficient_quota`: retrying will not help; an operator must act.
    #[error("the OpenAI account is out of quota")]
    InsufficientQuota,
    /// 401: the key is wrong or revoked; an operator must act.
    #[error("OpenAI rejected the API key (401)")]
    Unauthorized,
    /// 4xx other than the above: this request will never succeed.
    #[error("OpenAI refused the request ({status}): {message}")]
    Rejected { status: u16, message: String },
    /// 5xx: may pass.
    #[error("OpenAI server error ({status}): {message}")]
    Server { status: u16, message: String },
    /// Connect errors and timeouts: may pass.
    #[error("could not reach OpenAI: {0}")]
    Network(String),
}

impl super::outcome::Outcome for OpenAiError {
    fn outcome(&self) -> &'static str {
        match self {
            OpenAiError::RateLimited { .. } => "rate_limited",
            OpenAiError::InsufficientQuota => "quota",
            OpenAiError::Unauthorized => "unauthorized",
            OpenAiError::Rejected { .. } => "rejected",
            OpenAiError::Server { .. } => "server_error",
            OpenAiError::Network(_) => "network",
        }
    }
}

impl super::outcome::ApiError for OpenAiError {
    fn failure(&self) -> super::outcome::Failure {
        match self {
            OpenAiError::RateLimited { retry_after } => super::outcome::Failure::RetryAfter(*retry_after),
            OpenAiError::Server { .. } | OpenAiError::Network(_) => super::outcome::Failure::Passing,
            OpenAiError::Rejected { .. } => super::outcome::Failure::Refused,
            OpenAiError::InsufficientQuota | OpenAiError::Unauthorized => super::outcome::Failure::NeedsOperator,
        }
    }

    fn alert(&self) -> &'static str {
        match self {
            OpenAiError::InsufficientQuota => "openai_insufficient_quota",
            OpenAiError::Unauthorized => "openai_unauthorized",
            _ => "openai_other",
        }
    }
}

/// A stretch of speech with its time, in seconds from the file's start.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Segment {
    pub start: f64,
    pub end: f64,
    pub text: String,
    /// Who said it (`diarized_json`): a known speaker's name, else `A`, `B`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker: Option<String>,
}

/// A voice the diarizing model is to label as before: what the first
/// chunk's speaker `name` sounded like, 2–10 s of WAV.
#[derive(Debug, Clone, PartialEq)]
pub struct KnownSpeaker {
    pub name: String,
    pub wav: Bytes,
}

/// How a recording is transcribed: as text (with the names and terms it
/// holds as the `prompt`), or who said what (with the voices already heard,
/// at most [`MAX_KNOWN_SPEAKERS`]).
#[derive(Debug, Clone, Copy)]
pub enum Ask<'a> {
    Text { prompt: Option<&'a str> },
    Speakers(&'a [KnownSpeaker]),
}

/// The most `known_speaker_names[]` the API takes.
pub const MAX_KNOWN_SPEAKERS: usize = 4;

/// What the API heard in one file.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcription {
    pub text: String,
    /// `Some` (possibly empty: silence) when the model gives timing.
    pub segments: Option<Vec<Segment>>,
    /// The language the API detected or was told, when it says.
    pub language: Option<String>,
    /// How long the API found the audio it was sent (`duration` of
    /// `verbose_json`, or `usage.seconds` of a duration-billed `json`).
    pub duration: Option<f64>,
}

impl Transcription {
    fn from_body(body: &Value, timed: bool) -> Self {
        let text = body["text"].as_str().unwrap_or_default().trim().to_owned();
        let segments = body["segments"].as_array().filter(|_| timed).map(|all| {
            all.iter()
                .filter_map(|s| {
                    let (start, end) = (s["start"].as_f64()?, s["end"].as_f64()?);
                    let text = s["text"].as_str()?.trim().to_owned();
                    let speaker = s["speaker"].as_str().map(str::to_owned);
                    (start.is_finite() && end.is_finite() && !text.is_empty()).then_some(Segment {
                        start,
                        end,
                        text,
                        speaker,
                    })
                })
                .collect::<Vec<_>>()
        });
        // A backend that answers `verbose_json` without segments (several
        // self-hosted servers do) still heard the text: that is no timing, not silence.
        let segments = segments.filter(|s| !s.is_empty() || text.is_empty());
        let billed = body["usage"]["seconds"].as_f64().filter(|_| body["usage"]["type"] == "duration");
        Transcription {
            text,
            segments,
            language: body["language"].as_str().map(str::to_owned),
            duration: body["duration"].as_f64().or(billed).filter(|d| d.is_finite() && *d >= 0.0),
        }
    }
}

#[derive(Clone)]
pub struct OpenAi {
    http: reqwest::Client,
    base: String,
    key: String,
    pub transcription_model: String,
    pub diarization_model: String,
    pub chat_model: String,
}

impl OpenAi {
    pub fn new(settings: &OpenAiSettings) -> Result<Self, super::outcome::ClientError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(settings.timeout)
            .build()
            .map_err(|e| super::outcome::ClientError::Http(e.to_string()))?;
        Ok(Self {
            http,
            base: settings.base_url.trim_end_matches('/').to_owned(),
            key: settings.api_key.expose().to_owned(),
            transcription_model: settings.transcription_model.clone(),
            diarization_model: settings.diarization_model.clone(),
            chat_model: settings.chat_model.clone(),
        })
    }

    /// Whether the transcription model returns timed segments
    /// (`verbose_json`, whisper-1); the gpt-4o models give text only.
    pub fn gives_segments(&self) -> bool {
        self.transcription_model.starts_with("whisper")
    }

    /// `POST /audio/transcriptions`; `file_name`'s extension tells the format
    /// (send OGG/Opus as `.ogg`: the gpt-4o models refuse `.oga`).
    /// `language` is an ISO-639-1 code, or `None` to let the API detect it.
    pub async fn transcribe(
        &self,
        file_name: &str,
        audio: Bytes,
        language: Option<&str>,
        ask: Ask<'_>,
    ) -> Result<Transcription, OpenAiError> {
        let call = if matches!(ask, Ask::Speakers(_)) { "diarization" } else { "transcription" };
        super::outcome::timed("openai", call, self.transcribe_once(file_name, audio, language, ask)).await
    }

    async fn transcribe_once(
        &self,
        file_name: &str,
        audio: Bytes,
        language: Option<&str>,
        ask: Ask<'_>,
    ) -> Result<Transcription, OpenAiError> {
        let part = reqwest::multipart::Part::stream_with_length(reqwest::Body::from(audio.clone()), audio.len() as u64)
            .file_name(file_name.to_owned())
            .mime_str(mime_for(file_name))
            .map_err(|e| OpenAiError::Network(e.to_string()))?;
        let mut form = reqwest::multipart::Form::new().part("file", part).text("temperature", "0");
        let timed = match ask {
            Ask::Text { prompt } => {
                let format = if self.gives_segments() { "verbose_json" } else { "json" };
                form = form.text("model", self.transcription_model.clone()).text("response_format", format);
                if let Some(prompt) = prompt {
                    form = form.text("prompt", prompt.to_owned());
                }
                self.gives_segments()
            }
            // No `prompt`: the diarizing model refuses one (400). `auto`
            // chunking, which it requires past 30 s.
            Ask::Speakers(known) => {
                form = form
                    .text("model", self.diarization_model.clone())
                    .text("response_format", "diarized_json")
                    .text("chunking_strategy", "auto");
                for speaker in known.iter().take(MAX_KNOWN_SPEAKERS) {
                    form = form
                        .text("known_speaker_names[]", speaker.name.clone())
                        .text("known_speaker_references[]", wav_data_url(&speaker.wav));
                }
                true
            }
        };
        if let Some(language) = language {
            form = form.text("language", language.to_owned());
        }
        let response = self
            .http
            .post(format!("{}/audio/transcriptions", self.base))
            .bearer_auth(&self.key)
            .multipart(form)
            .send()
            .await
            .map_err(network)?;
        let body = check(response).await?;
        Ok(Transcription::from_body(&body, timed))
    }

    /// `POST /chat/completions` with one system and one user message.
    pub async fn chat(&self, system: &str, user: &str) -> Result<String, OpenAiError> {
        super::outcome::timed("openai", "chat", self.chat_once(system, user)).await
    }

    async fn chat_once(&self, system: &str, user: &str) -> Result<String, OpenAiError> {
        let request = json!({
            "model": self.chat_model,
            "temperature": 0.2,
            "messages": [{ "role": "system", "content": system }, { "role": "user", "content": user }],
        });
        let response = self
            .http
            .post(format!("{}/chat/completions", self.base))
            .bearer_auth(&self.key)
            .json(&request)
            .send()
            .await
            .map_err(network)?;
        let body = check(response).await?;
        Ok(body["choices"][0]["message"]["content"].as_str().unwrap_or_default().trim().to_owned())
    }
}

fn mime_for(file_name: &str) -> &'static str {
    match file_name.rsplit('.').next().unwrap_or_default() {
        "ogg" | "oga" | "opus" => "audio/ogg",
        "mp3" => "audio/mpeg",
        "m4a" | "mp4" => "audio/mp4",
        "wav" => "audio/wav",
        "webm" => "audio/webm",
        "flac" => "audio/flac",
        _ => "application/octet-stream",
    }
}

/// A reference clip as the API takes it: a data URL.
fn wav_data_url(wav: &[u8]) -> String {
    use base64::Engine;
    format!("data:audio/wav;base64,{}", base64::engine::general_purpose::STANDARD.encode(wav))
}

fn network(e: reqwest::Error) -> OpenAiError {
    OpenAiError::Network(crate::error::chain(&e.without_url()))
}

async fn check(response: reqwest::Response) -> Result<Value, OpenAiError> {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(Duration::from_secs_f64);
    let text = response.text().await.map_err(network)?;
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "text": text }));
    if (200..300).contains(&status) {
        return Ok(body);
    }
    let code = body["error"]["code"].as_str().or_else(|| body["error"]["type"].as_str()).unwrap_or_default();
    let message = body["error"]["message"].as_str().unwrap_or(text.as_str()).chars().take(300).collect::<String>();
    if (status, code) == (429, "insufficient_quota") {
        return Err(OpenAiError::InsufficientQuota);
    }
    Err(match super::outcome::Failure::of_status(status) {
        super::outcome::Failure::NeedsOperator => OpenAiError::Unauthorized,
        super::outcome::Failure::RetryAfter(_) => OpenAiError::RateLimited { retry_after },
        super::outcome::Failure::Passing => OpenAiError::Server { status, message },
        super::outcome::Failure::Refused => OpenAiError::Rejected { status, message },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbose_json_segments_are_read_and_bad_ones_skipped() {
        let body = json!({
            "task": "transcribe", "language": "english", "duration": 9.5, "text": " Hello there. General Kenobi. ",
            "segments": [
                { "id": 0, "start": 0.0, "end": 2.4, "text": " Hello there." },
                { "id": 1, "start": 2.4, "end": 9.5, "text": " General Kenobi." },
                { "id": 2, "start": "x", "end": 9.9, "text": "broken" },
            ],
        });
        let t = Transcription::from_body(&body, true);
        assert_eq!(t.text, "Hello there. General Kenobi.");
        assert_eq!(t.segments.as_ref().map(Vec::len), Some(2));
        assert_eq!(
            t.segments.unwrap()[1],
            Segment { start: 2.4, end: 9.5, text: "General Kenobi.".into(), speaker: None }
        );
        assert_eq!(Transcription::from_body(&json!({ "text": "x" }), false).segments, None, "no timing from json");
        assert_eq!(t.duration, Some(9.5));
    }

    #[test]
    fn a_verbose_answer_without_segments_keeps_its_text() {
        let text_only = Transcription::from_body(&json!({ "text": " Hello from a self-hosted server. " }), true);
        assert_eq!((text_only.text.as_str(), text_only.segments), ("Hello from a self-hosted server.", None));
        let empty_segments = Transcription::from_body(&json!({ "text": "Hello", "segments": [] }), true);
        assert_eq!(empty_segments.segments, None, "text without timing, not silence");
        let silence = Transcription::from_body(&json!({ "text": "", "segments": [] }), true);
        assert_eq!(silence.segments, Some(vec![]), "silence stays silence");
    }

    #[test]
    fn the_heard_length_comes_from_duration_or_duration_billing() {
        let billed = json!({ "text": "x", "usage": { "type": "duration", "seconds": 61 } });
        assert_eq!(Transcription::from_body(&billed, false).duration, Some(61.0));
        let tokens = json!({ "text": "x", "usage": { "type": "tokens", "input_tokens": 14, "output_tokens": 45 } });
        assert_eq!(Transcription::from_body(&tokens, false).duration, None, "token billing says no length");
    }
}
