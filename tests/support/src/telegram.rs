//! A fake Telegram Bot API: `/bot{token}/{method}` with JSON, form or
//! multipart parameters, `{"ok":…}` envelopes, getUpdates long polling with
//! offsets, 409 when a second poll arrives (the earlier one is terminated, as
//! Telegram does), injected 429 `retry_after` and other errors, and file
//! downloads at `/file/bot{token}/{path}`. Every call is recorded.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::StatusCode;
use serde_json::{json, Value};
use tokio::sync::{oneshot, Notify};

use crate::server::{json_reply, multipart_fields, reply, start_fake, FakeRequest, Reply};

mod flood;
mod guest;
mod stars;
pub use flood::FloodLimits;
pub use stars::{PreCheckout, StarsCharge, PRE_CHECKOUT_DEADLINE};

pub const BOT_ID: i64 = 7_000_000_001;
pub const BOT_USERNAME: &str = "aisha_test_bot";

/// One getUpdates request: who sent it, when it was open, how it ended.
#[derive(Debug, Clone)]
pub struct Poll {
    pub peer: std::net::SocketAddr,
    pub started: Instant,
    pub ended: Option<Instant>,
    /// `ok`, or `409` when a newer poll terminated it.
    pub outcome: &'static str,
}

#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub params: Value,
    pub at: Instant,
    /// Answered with an injected failure (see `fail_next`), so not carried out.
    pub failed: bool,
}

/// An error the next call of a method answers with.
#[derive(Debug, Clone)]
pub enum Failure {
    /// 429 Too Many Requests with `parameters.retry_after`.
    RetryAfter(u64),
    /// Any status with a description, e.g. 500 or 400.
    Status(u16, String),
    /// 409 Conflict as when a webhook is set.
    WebhookActive,
    /// No failure: the call is answered normally, this much later.
    Delay(Duration),
}

impl Call {
    /// Whether it posts a message (what the flood limits count).
    pub fn is_message(&self) -> bool {
        flood::counts(&self.method)
    }
}

#[derive(Default)]
struct State {
    updates: VecDeque<Value>,
    next_update_id: i64,
    next_message_id: i64,
    calls: Vec<Call>,
    failures: HashMap<String, VecDeque<Failure>>,
    files: HashMap<String, (String, Bytes)>,
    active_poll: Option<(u64, oneshot::Sender<()>)>,
    next_poll_id: u64,
    polls_in_flight: usize,
    max_polls_in_flight: usize,
    conflicts: usize,
    webhook_active: bool,
    polls: Vec<Poll>,
    /// The connection (its client's address) each file download came on.
    download_peers: Vec<std::net::SocketAddr>,
    pre_checkouts: HashMap<String, stars::PreCheckout>,
    stars_charges: Vec<stars::StarsCharge>,
    /// (chat, user) → `creator`, `administrator`, `member`…; anyone else is a member.
    members: HashMap<(i64, i64), String>,
    flood: flood::Flood,
    /// Local Bot API mode (`--local`): getFile answers absolute paths on disk.
    local_files: HashMap<String, (String, u64)>,
    guests: guest::Guests,
}

#[derive(Clone)]
pub struct FakeTelegram {
    pub addr: SocketAddr,
    pub token: String,
    state: Arc<Mutex<State>>,
    updates_arrived: Arc<Notify>,
}

impl FakeTelegram {
    pub async fn start(token: &str) -> Self {
        let state = Arc::new(Mutex::new(State { next_update_id: 1, next_message_id: 1, ..Default::default() }));
        let updates_arrived = Arc::new(Notify::new());
        start_fake(
            |addr| Self { addr, token: token.to_owned(), state, updates_arrived },
            |fake: Self, req| async move { fake.handle(req).await },
        )
        .await
    }

    /// The value for `TELEGRAM_API_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    // ---- what tests set up ----

    /// Queues an update; its `update_id` is assigned and returned.
    pub fn push_update(&self, mut update: Value) -> i64 {
        let mut state = self.state.lock().unwrap();
        let id = state.next_update_id;
        state.next_update_id += 1;
        update["update_id"] = json!(id);
        state.updates.push_back(update);
        drop(state);
        self.updates_arrived.notify_waiters();
        id
    }

    pub fn push_text(&self, user_id: i64, language: &str, text: &str) -> i64 {
        let message = self.user_message(user_id, language, json!({ "text": text }));
        self.push_update(json!({ "message": message }))
    }

    /// A voice message whose bytes are served by getFile + download.
    pub fn push_voice(&self, user_id: i64, language: &str, duration: u32, bytes: Bytes) -> i64 {
        let message = self.voice_message(user_id, language, duration, bytes, None);
        self.push_update(json!({ "message": message }))
    }

    /// The voice message whose file is `file_unique_id`, forwarded by
    /// `user_id`: as Telegram does, another `file_id` for the same file.
    pub fn push_forwarded_voice(
        &self,
        user_id: i64,
        language: &str,
        duration: u32,
        bytes: Bytes,
        file_unique_id: &str,
    ) -> i64 {
        let mut message = self.voice_message(user_id, language, duration, bytes, Some(file_unique_id));
        message["forward_origin"] = json!({ "type": "hidden_user", "date": now(), "sender_user_name": "Someone" });
        self.push_update(json!({ "message": message }))
    }

    fn voice_message(
        &self,
        user_id: i64,
        language: &str,
        duration: u32,
        bytes: Bytes,
        file_unique_id: Option<&str>,
    ) -> Value {
        let file_id = self.add_file("voice/file_1.oga", bytes.clone());
        let unique = file_unique_id.map_or_else(|| format!("u{file_id}"), str::to_owned);
        let voice = json!({
            "file_id": file_id, "file_unique_id": unique, "duration": duration,
            "mime_type": "audio/ogg", "file_size": bytes.len(),
        });
        self.user_message(user_id, language, json!({ "voice": voice }))
    }

    /// An audio file (music, a recording) with its MIME type and name.
    pub fn push_audio(
        &self,
        user_id: i64,
        language: &str,
        duration: u32,
        bytes: Bytes,
        mime_type: &str,
        file_name: &str,
    ) -> i64 {
        let file_id = self.add_file(&format!("music/{file_name}"), bytes.clone());
        let audio = json!({
            "file_id": file_id, "file_unique_id": format!("u{file_id}"), "duration": duration,
            "mime_type": mime_type, "file_name": file_name, "file_size": bytes.len(),
        });
        let message = self.user_message(user_id, language, json!({ "audio": audio }));
        self.push_update(json!({ "message": message }))
    }

    /// An audio message whose file is already registered (e.g. by `add_local_file`).
    pub fn push_audio_file(
        &self,
        user_id: i64,
        language: &str,
        duration: u32,
        file_id: &str,
        size: u64,
        mime_type: &str,
    ) -> i64 {
        let audio = json!({
            "file_id": file_id, "file_unique_id": format!("u{file_id}"), "duration": duration,
            "mime_type": mime_type, "file_name": "recording", "file_size": size,
        });
        let message = self.user_message(user_id, language, json!({ "audio": audio }));
        self.push_update(json!({ "message": message }))
    }

    pub fn push_callback(&self, user_id: i64, language: &str, data: &str, message_id: i64) -> i64 {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let message = json!({
            "message_id": message_id, "date": now(), "chat": private_chat(user_id),
            "from": bot_user(), "text": "menu",
        });
        self.push_update(json!({
            "callback_query": {
                "id": id, "from": user(user_id, language), "message": message,
                "chat_instance": format!("ci{user_id}"), "data": data,
            }
        }))
    }

    /// `user_id` pressed a button under the bot's message `message_id` in the group `chat_id`.
    pub fn push_group_callback(&self, chat_id: i64, user_id: i64, language: &str, data: &str, message_id: i64) -> i64 {
        let message = json!({
            "message_id": message_id, "date": now(), "chat": { "id": chat_id, "type": "supergroup", "title": "Test group" },
            "from": bot_user(), "text": "menu",
        });
        self.push_update(json!({
            "callback_query": {
                "id": uuid::Uuid::new_v4().simple().to_string(), "from": user(user_id, language), "message": message,
                "chat_instance": format!("ci{chat_id}"), "data": data,
            }
        }))
    }

    /// Makes `user_id` an `administrator`, `creator`, `member`… of the group `chat_id`.
    pub fn set_member(&self, chat_id: i64, user_id: i64, status: &str) {
        self.state.lock().unwrap().members.insert((chat_id, user_id), status.to_owned());
    }

    /// `user_id`'s status in the group `chat_id` becomes `status`, and
    /// Telegram says so with a `chat_member` update (as it does to a bot
    /// that is an admin there). Returns the update id.
    pub fn change_member(&self, chat_id: i64, user_id: i64, status: &str) -> i64 {
        let old = self
            .state
            .lock()
            .unwrap()
            .members
            .insert((chat_id, user_id), status.to_owned())
            .unwrap_or_else(|| "member".into());
        self.push_update(json!({ "chat_member": {
            "chat": { "id": chat_id, "type": "supergroup", "title": "Test group" },
            "from": user(user_id, "en"), "date": now(),
            "old_chat_member": chat_member(user_id, &old), "new_chat_member": chat_member(user_id, status),
        }}))
    }

    /// A message from `user_id` in the group `chat_id` (negative, as Telegram's are).
    pub fn group_message(&self, chat_id: i64, user_id: i64, language: &str, content: Value) -> Value {
        let mut message = self.user_message(user_id, language, content);
        message["chat"] = json!({ "id": chat_id, "type": "supergroup", "title": "Test group" });
        message
    }

    pub fn push_group_text(&self, chat_id: i64, user_id: i64, language: &str, text: &str) -> i64 {
        let message = self.group_message(chat_id, user_id, language, json!({ "text": text }));
        self.push_update(json!({ "message": message }))
    }

    /// A voice message in a group; returns (update id, message id).
    pub fn push_group_voice(
        &self,
        chat_id: i64,
        user_id: i64,
        language: &str,
        duration: u32,
        bytes: Bytes,
    ) -> (i64, i64) {
        let message = self.group_voice_message(chat_id, user_id, language, duration, bytes);
        let message_id = message["message_id"].as_i64().unwrap_or_default();
        (self.push_update(json!({ "message": message })), message_id)
    }

    /// A voice message in a group as Telegram describes it (its file served).
    pub fn group_voice_message(
        &self,
        chat_id: i64,
        user_id: i64,
        language: &str,
        duration: u32,
        bytes: Bytes,
    ) -> Value {
        let file_id = self.add_file(&format!("voice/group_{}.oga", uuid::Uuid::new_v4().simple()), bytes.clone());
        let voice = json!({
            "file_id": file_id, "file_unique_id": format!("u{file_id}"), "duration": duration,
            "mime_type": "audio/ogg", "file_size": bytes.len(),
        });
        self.group_message(chat_id, user_id, language, json!({ "voice": voice }))
    }

    /// `text` sent in a group as a reply to `to` (a message of that group).
    pub fn push_group_reply(&self, chat_id: i64, user_id: i64, language: &str, text: &str, to: &Value) -> i64 {
        let message = self.group_message(chat_id, user_id, language, json!({ "text": text, "reply_to_message": to }));
        self.push_update(json!({ "message": message }))
    }

    /// As a local Bot API server (`--local`) has it: the file lies at the
    /// absolute `path` on a disk the bot shares, and getFile says so (no
    /// 20 MB limit, nothing to download over HTTP). Returns its file_id.
    pub fn add_local_file(&self, path: &std::path::Path) -> String {
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or_default();
        let mut state = self.state.lock().unwrap();
        let file_id = format!("local{}", state.local_files.len() + 1);
        state.local_files.insert(file_id.clone(), (path.display().to_string(), size));
        file_id
    }

    /// A message from `user_id` in their private chat, with `content` merged in.
    pub fn user_message(&self, user_id: i64, language: &str, content: Value) -> Value {
        let mut message = json!({
            "message_id": self.next_message_id(), "date": now(),
            "chat": private_chat(user_id), "from": user(user_id, language),
        });
        if let (Some(m), Some(c)) = (message.as_object_mut(), content.as_object()) {
            m.extend(c.clone());
        }
        message
    }

    /// Registers a downloadable file; returns its file_id.
    pub fn add_file(&self, path: &str, bytes: Bytes) -> String {
        let mut state = self.state.lock().unwrap();
        let file_id = format!("file{}", state.files.len() + 1);
        state.files.insert(file_id.clone(), (path.to_owned(), bytes));
        file_id
    }

    pub fn fail_next(&self, method: &str, failure: Failure) {
        self.state.lock().unwrap().failures.entry(method.to_owned()).or_default().push_back(failure);
    }

    /// From now on, messages over Telegram's flood limits are refused 429.
    pub fn enforce_flood_limits(&self, limits: FloodLimits) {
        self.state.lock().unwrap().flood.enforce(limits);
    }

    /// Stars the bot paid for messages sent with `allow_paid_broadcast`, in tenths.
    pub fn paid_broadcast_tenths_of_stars(&self) -> usize {
        self.state.lock().unwrap().flood.paid_sent
    }

    /// How many messages the flood limits refused.
    pub fn flood_refusals(&self) -> usize {
        self.state.lock().unwrap().flood.refused
    }

    pub fn set_webhook_active(&self, active: bool) {
        self.state.lock().unwrap().webhook_active = active;
    }

    // ---- what tests read ----

    pub fn calls(&self, method: &str) -> Vec<Call> {
        self.state.lock().unwrap().calls.iter().filter(|c| c.method == method).cloned().collect()
    }

    /// How many `method` calls came in, without copying them.
    pub fn count(&self, method: &str) -> usize {
        self.count_where(|c| c.method == method)
    }

    /// How many calls `which` picks, without copying them: a bench polling
    /// thousands of calls would otherwise spend the cores it measures.
    pub fn count_where(&self, which: impl Fn(&Call) -> bool) -> usize {
        self.state.lock().unwrap().calls.iter().filter(|c| which(c)).count()
    }

    pub fn all_calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    /// Every call addressed to `chat_id`, whatever its method.
    pub fn calls_to(&self, chat_id: i64) -> Vec<Call> {
        let calls = self.state.lock().unwrap().calls.clone();
        calls.into_iter().filter(|c| as_i64(&c.params["chat_id"]) == Some(chat_id)).collect()
    }

    /// Texts sent with sendMessage to `chat_id` (not those answered with an injected failure).
    pub fn sent_texts(&self, chat_id: i64) -> Vec<String> {
        self.calls("sendMessage")
            .into_iter()
            .filter(|c| !c.failed && as_i64(&c.params["chat_id"]) == Some(chat_id))
            .filter_map(|c| c.params["text"].as_str().map(str::to_owned))
            .collect()
    }

    /// The most getUpdates requests ever open at once (1 means no overlap).
    pub fn max_polls_in_flight(&self) -> usize {
        self.state.lock().unwrap().max_polls_in_flight
    }

    /// File downloads, and the connections they came on.
    pub fn downloads(&self) -> (usize, usize) {
        let peers = &self.state.lock().unwrap().download_peers;
        (peers.len(), peers.iter().collect::<std::collections::HashSet<_>>().len())
    }

    /// Every getUpdates request, in arrival order.
    pub fn polls(&self) -> Vec<Poll> {
        self.state.lock().unwrap().polls.clone()
    }

    /// How many polls were answered 409 because another arrived.
    pub fn conflicts(&self) -> usize {
        self.state.lock().unwrap().conflicts
    }

    /// Updates not yet confirmed by an offset.
    pub fn pending_updates(&self) -> usize {
        self.state.lock().unwrap().updates.len()
    }

    fn next_message_id(&self) -> i64 {
        let mut state = self.state.lock().unwrap();
        let id = state.next_message_id;
        state.next_message_id += 1;
        id
    }

    // ---- the server side ----

    async fn handle(&self, req: FakeRequest) -> Reply {
        if let Some(rest) = req.path.strip_prefix("/file/bot") {
            return self.download(rest, req.peer);
        }
        let Some(rest) = req.path.strip_prefix("/bot") else {
            return error(StatusCode::NOT_FOUND, "Not Found", None);
        };
        let Some((token, method)) = rest.split_once('/') else {
            return error(StatusCode::NOT_FOUND, "Not Found", None);
        };
        // Method names are case-insensitive (teloxide sends `GetMe`); record them as documented.
        let mut method = method.to_owned();
        if let Some(first) = method.get_mut(0..1) {
            first.make_ascii_lowercase();
        }
        let method = method.as_str();
        if token != self.token {
            return error(StatusCode::UNAUTHORIZED, "Unauthorized", None);
        }
        let params = params(&req).await;
        let injected = {
            let mut state = self.state.lock().unwrap();
            let now = Instant::now();
            let mut injected = state.failures.get_mut(method).and_then(VecDeque::pop_front);
            if injected.is_none() {
                injected = state.flood.admit(method, &params, now).err().map(Failure::RetryAfter);
            }
            let failed = injected.as_ref().is_some_and(|f| !matches!(f, Failure::Delay(_)));
            let call = Call { method: method.to_owned(), params: params.clone(), at: now, failed };
            state.calls.push(call);
            injected
        };
        match injected {
            Some(Failure::Delay(delay)) => tokio::time::sleep(delay).await,
            Some(failure) => return failure_reply(&failure),
            None => {}
        }
        if let Some(reply) = self.stars_method(method, &params) {
            return reply;
        }
        match method {
            "getUpdates" => self.get_updates(&params, req.peer).await,
            "getMe" => ok(json!({
                "id": BOT_ID, "is_bot": true, "first_name": "Aisha", "username": BOT_USERNAME,
                "can_join_groups": true, "can_read_all_group_messages": false, "supports_inline_queries": false,
                "can_connect_to_business": false, "has_main_web_app": false, "supports_guest_queries": true,
            })),
            "deleteWebhook" => {
                self.state.lock().unwrap().webhook_active = false;
                ok(json!(true))
            }
            "editMessageText" if params.get("inline_message_id").is_some() => self.edit_inline_message(&params),
            "sendMessage" | "editMessageText" => ok(self.bot_message(&params, json!({ "text": params["text"] }))),
            "answerGuestQuery" => self.answer_guest_query(&params),
            "sendPhoto" => ok(self.bot_message(&params, json!({ "photo": [photo_size()] }))),
            "sendDocument" => ok(self.bot_message(
                &params,
                json!({ "document": {
                    "file_id": "doc1", "file_unique_id": "udoc1", "file_name": "file.txt",
                }}),
            )),
            "sendMediaGroup" => {
                let count = params["media"].as_array().map(Vec::len).unwrap_or(1).max(1);
                let messages: Vec<Value> =
                    (0..count).map(|_| self.bot_message(&params, json!({ "photo": [photo_size()] }))).collect();
                ok(Value::Array(messages))
            }
            "sendChatAction"
            | "answerCallbackQuery"
            | "setMyCommands"
            | "deleteMessage"
            | "editMessageReplyMarkup"
            | "setWebhook" => ok(json!(true)),
            "sendMessageDraft" => message_draft(&params),
            "getFile" => self.get_file(&params),
            "getChatMember" => self.get_chat_member(&params),
            "getWebhookInfo" => {
                let pending = self.state.lock().unwrap().updates.len();
                ok(json!({ "url": "", "has_custom_certificate": false, "pending_update_count": pending }))
            }
            _ => error(StatusCode::NOT_FOUND, "Not Found: method not found", None),
        }
    }

    async fn get_updates(&self, params: &Value, peer: std::net::SocketAddr) -> Reply {
        let offset = as_i64(&params["offset"]).unwrap_or(0);
        let limit = as_i64(&params["limit"]).unwrap_or(100).clamp(1, 100) as usize;
        let timeout = Duration::from_secs(as_i64(&params["timeout"]).unwrap_or(0).max(0) as u64);
        let (poll_id, terminated) = {
            let mut state = self.state.lock().unwrap();
            if state.webhook_active {
                return error(StatusCode::CONFLICT, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first", None);
            }
            // Confirmed updates go; ids rise in queue order (`push_update` assigns them), so they are the front.
            while state.updates.front().is_some_and(|u| u["update_id"].as_i64().unwrap_or(0) < offset) {
                state.updates.pop_front();
            }
            // The newer poll wins; the older one is answered 409, as Telegram does.
            if let Some((_, earlier)) = state.active_poll.take() {
                let _ = earlier.send(());
            }
            let (tx, rx) = oneshot::channel();
            state.next_poll_id += 1;
            let poll_id = state.next_poll_id;
            state.active_poll = Some((poll_id, tx));
            state.polls_in_flight += 1;
            state.max_polls_in_flight = state.max_polls_in_flight.max(state.polls_in_flight);
            state.polls.push(Poll { peer, started: Instant::now(), ended: None, outcome: "ok" });
            (poll_id, rx)
        };
        // Closed however the request ends, a client that hangs up included.
        let mut open = OpenPoll { state: self.state.clone(), id: poll_id, outcome: "client gone" };
        let deadline = tokio::time::Instant::now() + timeout;
        tokio::pin!(terminated);
        let outcome = loop {
            let arrived = self.updates_arrived.notified();
            let batch: Vec<Value> = {
                let state = self.state.lock().unwrap();
                state
                    .updates
                    .iter()
                    .filter(|u| u["update_id"].as_i64().unwrap_or(0) >= offset)
                    .take(limit)
                    .cloned()
                    .collect()
            };
            if !batch.is_empty() {
                break Ok(batch);
            }
            tokio::select! {
                _ = arrived => continue,
                _ = tokio::time::sleep_until(deadline) => break Ok(Vec::new()),
                _ = &mut terminated => break Err(()),
            }
        };
        match outcome {
            Ok(batch) => {
                open.outcome = "ok";
                ok(Value::Array(batch))
            }
            Err(()) => {
                open.outcome = "409";
                self.state.lock().unwrap().conflicts += 1;
                error(
                    StatusCode::CONFLICT,
                    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
                    None,
                )
            }
        }
    }

    fn get_chat_member(&self, params: &Value) -> Reply {
        let (chat, user_id) = (as_i64(&params["chat_id"]).unwrap_or(0), as_i64(&params["user_id"]).unwrap_or(0));
        let status =
            self.state.lock().unwrap().members.get(&(chat, user_id)).cloned().unwrap_or_else(|| "member".into());
        ok(chat_member(user_id, &status))
    }

    fn get_file(&self, params: &Value) -> Reply {
        let file_id = params["file_id"].as_str().unwrap_or_default();
        let state = self.state.lock().unwrap();
        if let Some((path, size)) = state.local_files.get(file_id) {
            return ok(
                json!({ "file_id": file_id, "file_unique_id": format!("u{file_id}"), "file_size": size, "file_path": path }),
            );
        }
        match state.files.get(file_id) {
            Some((path, bytes)) if bytes.len() > 20 * 1024 * 1024 => {
                let _ = path;
                error(StatusCode::BAD_REQUEST, "Bad Request: file is too big", None)
            }
            Some((path, bytes)) => ok(json!({
                "file_id": file_id, "file_unique_id": format!("u{file_id}"),
                "file_size": bytes.len(), "file_path": path,
            })),
            None => error(StatusCode::BAD_REQUEST, "Bad Request: invalid file_id", None),
        }
    }

    fn download(&self, rest: &str, peer: std::net::SocketAddr) -> Reply {
        let Some((token, path)) = rest.split_once('/') else {
            return reply(StatusCode::NOT_FOUND, "text/plain", "Not Found");
        };
        if token != self.token {
            return reply(StatusCode::UNAUTHORIZED, "text/plain", "Unauthorized");
        }
        let mut state = self.state.lock().unwrap();
        state.download_peers.push(peer);
        match state.files.values().find(|(p, _)| p == path) {
            Some((_, bytes)) => reply(StatusCode::OK, "application/octet-stream", bytes.clone()),
            None => reply(StatusCode::NOT_FOUND, "text/plain", "Not Found"),
        }
    }

    fn bot_message(&self, params: &Value, content: Value) -> Value {
        let chat_id = as_i64(&params["chat_id"]).unwrap_or(0);
        let message_id = as_i64(&params["message_id"]).unwrap_or_else(|| self.next_message_id());
        let mut message = json!({
            "message_id": message_id, "date": now(), "chat": private_chat(chat_id), "from": bot_user(),
        });
        if let (Some(m), Some(c)) = (message.as_object_mut(), content.as_object()) {
            m.extend(c.clone());
        }
        message
    }
}

/// A getUpdates request while it is open; dropping it closes it.
struct OpenPoll {
    state: Arc<Mutex<State>>,
    id: u64,
    outcome: &'static str,
}

impl Drop for OpenPoll {
    fn drop(&mut self) {
        let mut state = self.state.lock().unwrap();
        state.polls_in_flight -= 1;
        let poll = &mut state.polls[self.id as usize - 1];
        poll.ended = Some(Instant::now());
        poll.outcome = self.outcome;
        if state.active_poll.as_ref().is_some_and(|(id, _)| *id == self.id) {
            state.active_poll = None;
        }
    }
}

fn ok(result: Value) -> Reply {
    json_reply(StatusCode::OK, &json!({ "ok": true, "result": result }))
}

fn error(status: StatusCode, description: &str, parameters: Option<Value>) -> Reply {
    let mut body = json!({ "ok": false, "error_code": status.as_u16(), "description": description });
    if let Some(parameters) = parameters {
        body["parameters"] = parameters;
    }
    json_reply(status, &body)
}

/// `sendMessageDraft` (Bot API 9.3) as strictly as Telegram takes it: a
/// private chat only, a non-zero `draft_id`, 1–4096 characters of text.
fn message_draft(params: &Value) -> Reply {
    let private = as_i64(&params["chat_id"]).is_some_and(|c| c > 0);
    let draft_id = params["draft_id"].as_i64().unwrap_or(0);
    let chars = params["text"].as_str().map_or(0, |t| t.chars().count());
    match (private, draft_id != 0, chars) {
        (false, _, _) => error(StatusCode::BAD_REQUEST, "Bad Request: drafts can be sent to private chats only", None),
        (_, false, _) => error(StatusCode::BAD_REQUEST, "Bad Request: draft_id must be non-zero", None),
        (_, _, 0) => error(StatusCode::BAD_REQUEST, "Bad Request: message text is empty", None),
        (_, _, 4097..) => error(StatusCode::BAD_REQUEST, "Bad Request: message is too long", None),
        _ => ok(json!(true)),
    }
}

fn failure_reply(failure: &Failure) -> Reply {
    match failure {
        Failure::RetryAfter(seconds) => error(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("Too Many Requests: retry after {seconds}"),
            Some(json!({ "retry_after": seconds })),
        ),
        Failure::Status(code, description) => {
            error(StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), description, None)
        }
        Failure::Delay(_) => unreachable!("a delay is not a failure"),
        Failure::WebhookActive => error(
            StatusCode::CONFLICT,
            "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
            None,
        ),
    }
}

/// Parameters from a JSON body, a form body, multipart fields or the query.
async fn params(req: &FakeRequest) -> Value {
    let content_type = req.header("content-type").unwrap_or_default().to_owned();
    if content_type.starts_with("application/json") {
        return serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    }
    let mut map = serde_json::Map::new();
    if content_type.starts_with("multipart/form-data") {
        for part in multipart_fields(req).await.unwrap_or_default() {
            let value = match part.file_name {
                Some(name) => {
                    let mut file =
                        json!({ "file_name": name, "size": part.data.len(), "content_type": part.content_type });
                    // Text documents (transcripts, subtitles) are kept, so tests can read them.
                    if part.data.len() <= 4 * 1024 * 1024 {
                        if let Ok(text) = std::str::from_utf8(&part.data) {
                            file["text"] = json!(text);
                        }
                    }
                    file
                }
                None => parse_scalar(&String::from_utf8_lossy(&part.data)),
            };
            map.insert(part.name, value);
        }
        // Uploads may be referenced as `attach://<part name>` (teloxide does this).
        let parts: Vec<(String, Value)> = map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        for (key, value) in parts {
            if let Some(name) = value.as_str().and_then(|v| v.strip_prefix("attach://")) {
                if let Some(file) = map.get(name).cloned() {
                    map.insert(key, file);
                }
            }
        }
    } else {
        let form = if content_type.starts_with("application/x-www-form-urlencoded") {
            String::from_utf8_lossy(&req.body).into_owned()
        } else {
            req.query.clone().unwrap_or_default()
        };
        for (k, v) in url::form_urlencoded::parse(form.as_bytes()) {
            map.insert(k.into_owned(), parse_scalar(&v));
        }
    }
    Value::Object(map)
}

fn parse_scalar(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.to_owned()))
}

fn as_i64(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn user(id: i64, language: &str) -> Value {
    json!({ "id": id, "is_bot": false, "first_name": format!("User{id}"), "username": format!("user{id}"), "language_code": language })
}

fn bot_user() -> Value {
    json!({ "id": BOT_ID, "is_bot": true, "first_name": "Aisha", "username": BOT_USERNAME })
}

fn private_chat(id: i64) -> Value {
    json!({ "id": id, "type": "private", "first_name": format!("User{id}") })
}

fn photo_size() -> Value {
    json!({ "file_id": "photo1", "file_unique_id": "uphoto1", "width": 1024, "height": 1024, "file_size": 1000 })
}

/// A ChatMember object of `status`, with the fields Telegram gives it.
fn chat_member(user_id: i64, status: &str) -> Value {
    let mut member = json!({ "status": status, "user": user(user_id, "en") });
    match status {
        "creator" => member["is_anonymous"] = json!(false),
        "administrator" => {
            for flag in [
                "is_anonymous",
                "can_be_edited",
                "can_manage_chat",
                "can_change_info",
                "can_delete_messages",
                "can_manage_video_chats",
                "can_invite_users",
                "can_restrict_members",
                "can_promote_members",
            ] {
                member[flag] = json!(flag != "is_anonymous" && flag != "can_be_edited");
            }
        }
        "kicked" => member["until_date"] = json!(0),
        _ => {}
    }
    member
}
