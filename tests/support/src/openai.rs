//! A fake OpenAI API: `POST /audio/transcriptions` (multipart) and
//! `POST /chat/completions`, with OpenAI's error bodies (429
//! `rate_limit_exceeded` with `Retry-After`, 429 `insufficient_quota`, 401
//! `invalid_api_key`, 5xx) and configurable latency, scripted per call.
//! A diarizing model (`…-diarize`) answers `diarized_json` with speakers, and
//! refuses what the real one refuses: a `prompt`, and more than 30 s of
//! audio without `chunking_strategy`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::StatusCode;
use serde_json::{json, Value};

use crate::server::{json_reply, multipart_fields, reply, start_fake, FakeRequest, Reply};

/// What the next call answers.
#[derive(Debug, Clone)]
pub enum Answer {
    /// Success with this text (transcription) or content (chat).
    Text(String),
    /// 429 `rate_limit_exceeded` with `Retry-After: seconds`.
    RateLimited(u64),
    /// 429 `insufficient_quota`: retrying won't help.
    InsufficientQuota,
    /// 401 `invalid_api_key`.
    InvalidKey,
    /// Any status, with OpenAI's error envelope.
    Status(u16),
    /// Wait this long, then take the next answer.
    Delay(Duration),
}

#[derive(Debug, Clone)]
pub struct Transcription {
    pub model: String,
    pub language: Option<String>,
    pub response_format: Option<String>,
    pub temperature: Option<String>,
    pub file_name: String,
    pub file_len: usize,
    pub content_type: Option<String>,
    /// Seconds of audio decoded from the upload, when `hear_lengths` is on
    /// (always for a diarizing model).
    pub heard_seconds: Option<f64>,
    pub prompt: Option<String>,
    pub chunking_strategy: Option<String>,
    pub known_speaker_names: Vec<String>,
    /// Each known speaker's reference as sent: a `data:audio/wav;base64,…` URL.
    pub known_speaker_references: Vec<String>,
}

#[derive(Default)]
struct State {
    transcription_script: VecDeque<Answer>,
    chat_script: VecDeque<Answer>,
    transcriptions: Vec<Transcription>,
    /// Transcription requests that arrived, answered yet or not.
    transcription_arrivals: usize,
    chats: Vec<Value>,
    latency: Duration,
    /// `verbose_json` segments where the file really has sound (see `hear_pauses`).
    hear_pauses: bool,
    /// Decode every upload and answer its real `duration` (see `hear_lengths`).
    hear_lengths: bool,
    /// `verbose_json` with `text` only, as several self-hosted servers answer.
    text_only: bool,
    /// Say every upload was this long, whatever it holds.
    claim_duration: Option<f64>,
}

#[derive(Clone)]
pub struct FakeOpenAi {
    pub addr: SocketAddr,
    pub api_key: String,
    state: Arc<Mutex<State>>,
}

impl FakeOpenAi {
    pub async fn start(api_key: &str) -> Self {
        start_fake(
            |addr| Self { addr, api_key: api_key.to_owned(), state: Arc::default() },
            |fake: Self, req| async move { fake.handle(req).await },
        )
        .await
    }

    /// The value for `OPENAI_BASE_URL`.
    pub fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn script_transcriptions(&self, answers: impl IntoIterator<Item = Answer>) {
        self.state.lock().unwrap().transcription_script.extend(answers);
    }

    pub fn script_chat(&self, answers: impl IntoIterator<Item = Answer>) {
        self.state.lock().unwrap().chat_script.extend(answers);
    }

    /// Added before every answer.
    pub fn set_latency(&self, latency: Duration) {
        self.state.lock().unwrap().latency = latency;
    }

    /// From now on `verbose_json` answers carry one segment per stretch of
    /// sound in the uploaded file (found with ffmpeg between pauses of
    /// 0.1 s), each `sound at {start}`, with times from the file's start, as
    /// whisper-1 times its segments. Otherwise there is one segment, 0–1 s.
    pub fn hear_pauses(&self) {
        self.state.lock().unwrap().hear_pauses = true;
    }

    /// From now on every upload is decoded (ffmpeg, counting samples): its
    /// length is recorded (`Transcription::heard_seconds`) and answered as
    /// `duration`, as OpenAI answers it.
    pub fn hear_lengths(&self) {
        self.state.lock().unwrap().hear_lengths = true;
    }

    /// From now on `verbose_json` is answered with `{"text": …}` alone, as
    /// several self-hosted Whisper servers answer it.
    pub fn answer_text_only(&self) {
        self.state.lock().unwrap().text_only = true;
    }

    /// From now on every answer says the upload was `seconds` long.
    pub fn claim_duration(&self, seconds: f64) {
        self.state.lock().unwrap().claim_duration = Some(seconds);
    }

    /// Seconds of audio heard in all uploads so far (with `hear_lengths`).
    pub fn heard_seconds(&self) -> f64 {
        self.transcriptions().iter().filter_map(|t| t.heard_seconds).sum()
    }

    pub fn transcriptions(&self) -> Vec<Transcription> {
        self.state.lock().unwrap().transcriptions.clone()
    }

    /// Transcription requests that reached the API whole so far, including
    /// those still waiting out the latency (what is in flight counts).
    pub fn transcription_arrivals(&self) -> usize {
        self.state.lock().unwrap().transcription_arrivals
    }

    pub fn chats(&self) -> Vec<Value> {
        self.state.lock().unwrap().chats.clone()
    }

    async fn handle(&self, req: FakeRequest) -> Reply {
        let authorized = req.header("authorization") == Some(&format!("Bearer {}", self.api_key));
        if !authorized {
            return openai_error(
                StatusCode::UNAUTHORIZED,
                "Incorrect API key provided.",
                "invalid_request_error",
                "invalid_api_key",
                None,
            );
        }
        let latency = {
            let mut state = self.state.lock().unwrap();
            // A request whose body never arrived whole (its client went away
            // mid-upload) is no transcription: the API bills none for it.
            state.transcription_arrivals += usize::from(req.path == "/v1/audio/transcriptions" && !req.body.is_empty());
            state.latency
        };
        tokio::time::sleep(latency).await;
        match req.path.as_str() {
            "/v1/audio/transcriptions" => self.transcription(&req).await,
            "/v1/chat/completions" => self.chat(&req).await,
            _ => {
                openai_error(StatusCode::NOT_FOUND, "Unknown request URL", "invalid_request_error", "unknown_url", None)
            }
        }
    }

    async fn transcription(&self, req: &FakeRequest) -> Reply {
        let parts = multipart_fields(req).await.unwrap_or_default();
        let field = |name: &str| {
            parts
                .iter()
                .find(|p| p.name == name && p.file_name.is_none())
                .map(|p| String::from_utf8_lossy(&p.data).into_owned())
        };
        let fields = |name: &str| {
            parts.iter().filter(|p| p.name == name).map(|p| String::from_utf8_lossy(&p.data).into_owned()).collect()
        };
        let Some(file) = parts.iter().find(|p| p.name == "file") else {
            return openai_error(
                StatusCode::BAD_REQUEST,
                "you must provide a file",
                "invalid_request_error",
                "missing_file",
                None,
            );
        };
        let record = Transcription {
            model: field("model").unwrap_or_default(),
            language: field("language"),
            response_format: field("response_format"),
            temperature: field("temperature"),
            file_name: file.file_name.clone().unwrap_or_default(),
            file_len: file.data.len(),
            content_type: file.content_type.clone(),
            heard_seconds: None,
            prompt: field("prompt"),
            chunking_strategy: field("chunking_strategy"),
            known_speaker_names: fields("known_speaker_names[]"),
            known_speaker_references: fields("known_speaker_references[]"),
        };
        if record.file_len > 25 * 1024 * 1024 {
            return openai_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Maximum content size limit (26214400) exceeded",
                "invalid_request_error",
                "file_too_large",
                None,
            );
        }
        let default_text = format!("transcript of {} ({} bytes)", record.file_name, record.file_len);
        let format = record.response_format.clone().unwrap_or_else(|| "json".into());
        let (hear, hear_lengths, text_only, claimed) = {
            let state = self.state.lock().unwrap();
            (
                state.hear_pauses && matches!(format.as_str(), "verbose_json" | "diarized_json"),
                state.hear_lengths,
                state.text_only,
                state.claim_duration,
            )
        };
        let heard = if hear { Some(sounds_in(&file.data).await) } else { None };
        let mut record = record;
        let diarizing = record.model.contains("diarize");
        if hear_lengths || diarizing {
            let audio = file.data.to_vec();
            record.heard_seconds =
                tokio::task::spawn_blocking(move || crate::audio::decoded_seconds(&audio)).await.ok();
        }
        let duration = claimed.or(record.heard_seconds).unwrap_or(1.0);
        let refusal = diarizing.then(|| diarization_refusal(&record, duration)).flatten();
        let known = record.known_speaker_names.clone();
        self.state.lock().unwrap().transcriptions.push(record);
        if let Some(refusal) = refusal {
            return refusal;
        }
        match self.next_answer(true).await {
            Ok(text) => {
                let text = text.unwrap_or(default_text);
                match format.as_str() {
                    "diarized_json" => json_reply(StatusCode::OK, &diarized(&text, duration, heard.as_deref(), &known)),
                    "text" | "srt" | "vtt" => reply(StatusCode::OK, "text/plain; charset=utf-8", text),
                    "verbose_json" if text_only => json_reply(StatusCode::OK, &json!({ "text": text })),
                    "verbose_json" => {
                        let segments: Vec<Value> = match &heard {
                            Some(sounds) => sounds
                                .iter()
                                .enumerate()
                                .map(|(id, (start, end))| json!({ "id": id, "start": start, "end": end, "text": format!(" sound at {start:.1}") }))
                                .collect(),
                            None => vec![json!({ "id": 0, "start": 0.0, "end": 1.0, "text": format!(" {text}") })],
                        };
                        let text = match &heard {
                            Some(_) => segments.iter().filter_map(|s| s["text"].as_str()).collect::<Vec<_>>().join(""),
                            None => text,
                        };
                        json_reply(
                            StatusCode::OK,
                            &json!({ "task": "transcribe", "language": "english", "duration": duration, "text": text, "segments": segments }),
                        )
                    }
                    _ => json_reply(StatusCode::OK, &json!({ "text": text })),
                }
            }
            Err(reply) => reply,
        }
    }

    async fn chat(&self, req: &FakeRequest) -> Reply {
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let last_user = body["messages"]
            .as_array()
            .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
            .and_then(|m| m["content"].as_str())
            .unwrap_or_default()
            .chars()
            .take(60)
            .collect::<String>();
        let model = body["model"].as_str().unwrap_or("gpt-4o-mini").to_owned();
        let translated = translation(&body);
        self.state.lock().unwrap().chats.push(body);
        match self.next_answer(false).await {
            Ok(content) => json_reply(
                StatusCode::OK,
                &json!({
                    "id": format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
                    "object": "chat.completion", "created": 0, "model": model,
                    "choices": [{ "index": 0, "message": { "role": "assistant", "content": content.or(translated).unwrap_or_else(|| format!("summary of: {last_user}")) }, "finish_reason": "stop" }],
                    "usage": { "prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20 },
                }),
            ),
            Err(reply) => reply,
        }
    }

    /// `Ok(Some(text))` scripted success, `Ok(None)` default success, `Err` an error reply.
    async fn next_answer(&self, transcription: bool) -> Result<Option<String>, Reply> {
        loop {
            let answer = {
                let mut state = self.state.lock().unwrap();
                let script = if transcription { &mut state.transcription_script } else { &mut state.chat_script };
                script.pop_front()
            };
            return match answer {
                None => Ok(None),
                Some(Answer::Delay(d)) => {
                    tokio::time::sleep(d).await;
                    continue;
                }
                Some(Answer::Text(t)) => Ok(Some(t)),
                Some(Answer::RateLimited(seconds)) => Err(openai_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Rate limit reached for requests",
                    "requests",
                    "rate_limit_exceeded",
                    Some(seconds),
                )),
                Some(Answer::InsufficientQuota) => Err(openai_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "You exceeded your current quota, please check your plan and billing details.",
                    "insufficient_quota",
                    "insufficient_quota",
                    None,
                )),
                Some(Answer::InvalidKey) => Err(openai_error(
                    StatusCode::UNAUTHORIZED,
                    "Incorrect API key provided.",
                    "invalid_request_error",
                    "invalid_api_key",
                    None,
                )),
                Some(Answer::Status(code)) => Err(openai_error(
                    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    "The server had an error while processing your request.",
                    "server_error",
                    "server_error",
                    None,
                )),
            };
        }
    }
}

/// The 400s of the diarizing model for what it does not take.
fn diarization_refusal(record: &Transcription, duration: f64) -> Option<Reply> {
    let refuse = |message: &str, param: &str| {
        let body = json!({ "error": { "message": message, "type": "invalid_request_error", "param": param, "code": "invalid_value" } });
        Some(json_reply(StatusCode::BAD_REQUEST, &body))
    };
    if record.prompt.is_some() {
        return refuse("Prompt is not supported for diarization models.", "prompt");
    }
    if record.chunking_strategy.is_none() && duration > 30.0 {
        return refuse(
            "chunking_strategy is required for diarization models when the input is longer than 30 seconds.",
            "chunking_strategy",
        );
    }
    if record.known_speaker_names.len() != record.known_speaker_references.len() || record.known_speaker_names.len() > 4
    {
        return refuse(
            "known_speaker_names and known_speaker_references must match, at most 4.",
            "known_speaker_names",
        );
    }
    None
}

/// A `diarized_json` answer: a segment per stretch of sound (with
/// `hear_pauses`) or two halves, speakers taking turns. Labelled with the
/// known speakers' names in order when there are any, else `A`, `B`, … as
/// they first speak, afresh in every request, as the real model does.
fn diarized(text: &str, duration: f64, heard: Option<&[(f64, f64)]>, known: &[String]) -> Value {
    let stretches: Vec<(f64, f64)> = match heard {
        Some(sounds) if !sounds.is_empty() => sounds.to_vec(),
        _ => vec![(0.0, duration / 2.0), (duration / 2.0, duration)],
    };
    let label = |i: usize| match known.get(i % 2) {
        Some(name) => name.clone(),
        None => ((b'A' + (i % 2) as u8) as char).to_string(),
    };
    let segments: Vec<Value> = stretches
        .iter()
        .enumerate()
        .map(|(i, (start, end))| {
            json!({ "type": "transcript.text.segment", "id": format!("seg_{i}"), "start": start, "end": end,
                    "text": format!("{text} part {i}"), "speaker": label(i) })
        })
        .collect();
    let joined = segments.iter().filter_map(|s| s["text"].as_str()).collect::<Vec<_>>().join(" ");
    json!({ "task": "transcribe", "duration": duration, "text": joined, "segments": segments,
            "usage": { "type": "duration", "seconds": duration.ceil() } })
}

async fn sounds_in(audio: &[u8]) -> Vec<(f64, f64)> {
    let audio = audio.to_vec();
    tokio::task::spawn_blocking(move || crate::audio::sounds(&audio)).await.unwrap_or_default()
}

fn openai_error(status: StatusCode, message: &str, kind: &str, code: &str, retry_after: Option<u64>) -> Reply {
    let mut response =
        json_reply(status, &json!({ "error": { "message": message, "type": kind, "param": null, "code": code } }));
    if let Some(seconds) = retry_after {
        response.headers_mut().insert("retry-after", seconds.to_string().parse().expect("valid header"));
    }
    response
}

/// A request to translate "into Name (code)" answered as a model would in
/// shape: each `N|text` line (or the whole text) marked `[code]`, so a test
/// sees what was translated into what, and in which order.
fn translation(body: &Value) -> Option<String> {
    let messages = body["messages"].as_array()?;
    let content = |role: &str| messages.iter().find(|m| m["role"] == role).and_then(|m| m["content"].as_str());
    let (system, user) = (content("system")?, content("user")?);
    if !system.starts_with("Translate") {
        return None;
    }
    let code = system.split_once(" (")?.1.split_once(')')?.0;
    if !system.contains("numbered line") {
        return Some(format!("[{code}] {user}"));
    }
    let lines = user.lines().filter_map(|line| line.split_once('|')).map(|(n, text)| format!("{n}|[{code}] {text}"));
    Some(lines.collect::<Vec<_>>().join("\n"))
}
