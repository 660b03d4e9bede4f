//! A fake FAL queue: `POST /{model_id}?fal_webhook=URL` with `Authorization:
//! Key …`, status/result/cancel at the URLs the submit returns, result files
//! under `/files/`, and webhook callbacks signed exactly as FAL signs them
//! (Ed25519 over `request_id\nuser_id\ntimestamp\nhex(sha256(body))`), with
//! the public key served as a JWKS at `/.well-known/jwks.json`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use ed25519_dalek::{Signer, SigningKey};
use http::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::server::{json_reply, reply, start_fake, FakeRequest, Reply};

pub const FAL_USER_ID: &str = "fal-test-user";

/// A 1×1 PNG, the default result image.
pub const TINY_PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49,
    0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xff, 0xff, 0x3f, 0x00, 0x05, 0xfe, 0x02, 0xfe, 0xa7, 0x35, 0x81, 0x84,
    0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Completes with the model's default result.
    Ok,
    /// Completes with status ERROR and this message.
    Error(String),
    /// Never completes (for timeout and cancel tests).
    Hang,
}

#[derive(Debug, Clone)]
pub struct Submission {
    pub request_id: String,
    pub model: String,
    pub input: Value,
    pub webhook: Option<String>,
    pub status: String,
}

struct State {
    submissions: Vec<Submission>,
    outcome: Outcome,
    send_callbacks: bool,
    callback_delay: Duration,
    /// How long a submission's answer takes (FAL has it, and bills it, at once).
    submit_latency: Duration,
    callbacks_sent: Vec<(String, u16)>,
    files: HashMap<String, Bytes>,
    cancelled: Vec<String>,
    jwks_fetches: usize,
    jwks_down: bool,
}

#[derive(Clone)]
pub struct FakeFal {
    pub addr: SocketAddr,
    pub key: String,
    signing_key: Arc<SigningKey>,
    state: Arc<Mutex<State>>,
    http: reqwest::Client,
}

impl FakeFal {
    pub async fn start(key: &str) -> Self {
        let mut files = HashMap::new();
        files.insert("image-1.png".to_owned(), Bytes::from_static(TINY_PNG));
        files.insert("lora.safetensors".to_owned(), Bytes::from_static(b"fake lora weights"));
        files.insert("config.json".to_owned(), Bytes::from_static(b"{\"trigger\":\"ohwx\"}"));
        let state = State {
            submissions: Vec::new(),
            outcome: Outcome::Ok,
            send_callbacks: true,
            callback_delay: Duration::from_millis(50),
            submit_latency: Duration::ZERO,
            callbacks_sent: Vec::new(),
            files,
            cancelled: Vec::new(),
            jwks_fetches: 0,
            jwks_down: false,
        };
        let signing_key = Arc::new(SigningKey::from_bytes(&rand::random::<[u8; 32]>()));
        start_fake(
            |addr| Self {
                addr,
                key: key.to_owned(),
                signing_key,
                state: Arc::new(Mutex::new(state)),
                http: reqwest::Client::new(),
            },
            |fake: Self, req| async move { fake.handle(req).await },
        )
        .await
    }

    /// The value for `FAL_QUEUE_URL`.
    pub fn queue_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The value for `FAL_JWKS_URL`.
    pub fn jwks_url(&self) -> String {
        format!("http://{}/.well-known/jwks.json", self.addr)
    }

    /// How many times the JWKS was asked for.
    pub fn jwks_fetches(&self) -> usize {
        self.state.lock().unwrap().jwks_fetches
    }

    /// While down, the JWKS answers 503.
    pub fn set_jwks_down(&self, down: bool) {
        self.state.lock().unwrap().jwks_down = down;
    }

    pub fn set_outcome(&self, outcome: Outcome) {
        self.state.lock().unwrap().outcome = outcome;
    }

    /// Submissions are taken at once and answered after `latency`.
    pub fn set_submit_latency(&self, latency: Duration) {
        self.state.lock().unwrap().submit_latency = latency;
    }

    /// With callbacks off, only polling the status URL finds the result.
    pub fn set_callbacks(&self, send: bool) {
        self.state.lock().unwrap().send_callbacks = send;
    }

    pub fn submissions(&self) -> Vec<Submission> {
        self.state.lock().unwrap().submissions.clone()
    }

    /// (request_id, HTTP status the webhook answered) per callback sent.
    pub fn callbacks_sent(&self) -> Vec<(String, u16)> {
        self.state.lock().unwrap().callbacks_sent.clone()
    }

    pub fn cancelled(&self) -> Vec<String> {
        self.state.lock().unwrap().cancelled.clone()
    }

    pub fn jwks(&self) -> Value {
        let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.signing_key.verifying_key().to_bytes());
        json!({ "keys": [{ "kty": "OKP", "crv": "Ed25519", "x": x, "use": "sig", "kid": "fal-test" }] })
    }

    /// The four `X-Fal-Webhook-*` headers for `body`, signed with this fake's key.
    pub fn sign(&self, request_id: &str, timestamp: i64, body: &[u8]) -> Vec<(String, String)> {
        sign_with(&self.signing_key, request_id, FAL_USER_ID, timestamp, body)
    }

    /// The callback body FAL sends for a finished request.
    pub fn callback_body(&self, request_id: &str, outcome: &Outcome, payload: Value) -> Value {
        match outcome {
            Outcome::Error(message) => json!({
                "request_id": request_id, "gateway_request_id": request_id, "status": "ERROR",
                "error": message, "payload": { "detail": [{ "msg": message }] },
            }),
            _ => {
                json!({ "request_id": request_id, "gateway_request_id": request_id, "status": "OK", "payload": payload })
            }
        }
    }

    /// Posts a signed callback to `url`, as FAL does; returns the HTTP status.
    pub async fn deliver(&self, url: &str, request_id: &str, body: &Value) -> u16 {
        let body = serde_json::to_vec(body).expect("serialise");
        let mut request = self.http.post(url).header("content-type", "application/json").body(body.clone());
        for (name, value) in self.sign(request_id, unix_now(), &body) {
            request = request.header(name, value);
        }
        let status = request.send().await.map(|r| r.status().as_u16()).unwrap_or(0);
        self.state.lock().unwrap().callbacks_sent.push((request_id.to_owned(), status));
        status
    }

    /// The result FAL returns for `model`.
    pub fn result_for(&self, model: &str, input: &Value) -> Value {
        let base = self.queue_url();
        if model.contains("training") || model.contains("trainer") {
            json!({
                "diffusers_lora_file": { "url": format!("{base}/files/lora.safetensors"), "content_type": "application/octet-stream", "file_name": "pytorch_lora_weights.safetensors", "file_size": 17 },
                "config_file": { "url": format!("{base}/files/config.json"), "content_type": "application/json", "file_name": "config.json", "file_size": 20 },
            })
        } else {
            let n = input["num_images"].as_u64().unwrap_or(1).max(1);
            let images: Vec<Value> = (0..n)
                .map(|_| json!({ "url": format!("{base}/files/image-1.png"), "width": 1, "height": 1, "content_type": "image/png" }))
                .collect();
            json!({ "images": images, "seed": 42, "has_nsfw_concepts": vec![false; n as usize], "prompt": input["prompt"] })
        }
    }

    async fn handle(&self, req: FakeRequest) -> Reply {
        let path = req.path.trim_start_matches('/').to_owned();
        if req.method == Method::GET && path == ".well-known/jwks.json" {
            let down = {
                let mut state = self.state.lock().unwrap();
                state.jwks_fetches += 1;
                state.jwks_down
            };
            if down {
                return reply(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "unavailable");
            }
            return json_reply(StatusCode::OK, &self.jwks());
        }
        if let Some(name) = path.strip_prefix("files/") {
            return match self.state.lock().unwrap().files.get(name) {
                Some(bytes) => reply(StatusCode::OK, "application/octet-stream", bytes.clone()),
                None => reply(StatusCode::NOT_FOUND, "text/plain", "not found"),
            };
        }
        if req.header("authorization") != Some(&format!("Key {}", self.key)) {
            return json_reply(
                StatusCode::UNAUTHORIZED,
                &json!({ "detail": "Invalid Key Authorization header format" }),
            );
        }
        if let Some((model, rest)) = path.split_once("/requests/") {
            return self.request_route(&req, model, rest);
        }
        if req.method == Method::POST {
            let latency = self.state.lock().unwrap().submit_latency;
            let answer = self.submit(&req, &path);
            tokio::time::sleep(latency).await;
            return answer;
        }
        json_reply(StatusCode::NOT_FOUND, &json!({ "detail": "Not Found" }))
    }

    fn submit(&self, req: &FakeRequest, model: &str) -> Reply {
        let Ok(input) = serde_json::from_slice::<Value>(&req.body) else {
            return json_reply(
                StatusCode::UNPROCESSABLE_ENTITY,
                &json!({ "detail": [{ "msg": "Input should be a valid dictionary" }] }),
            );
        };
        let request_id = uuid::Uuid::new_v4().to_string();
        let webhook = req.query_param("fal_webhook");
        let (outcome, send_callbacks, delay) = {
            let mut state = self.state.lock().unwrap();
            state.submissions.push(Submission {
                request_id: request_id.clone(),
                model: model.to_owned(),
                input: input.clone(),
                webhook: webhook.clone(),
                status: "IN_QUEUE".into(),
            });
            (state.outcome.clone(), state.send_callbacks, state.callback_delay)
        };
        if outcome != Outcome::Hang {
            let fake = self.clone();
            let (request_id, model) = (request_id.clone(), model.to_owned());
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                fake.set_status(&request_id, "COMPLETED");
                if let (true, Some(url)) = (send_callbacks, webhook) {
                    let body = fake.callback_body(&request_id, &outcome, fake.result_for(&model, &input));
                    fake.deliver(&url, &request_id, &body).await;
                }
            });
        }
        let base = format!("{}/{model}/requests/{request_id}", self.queue_url());
        json_reply(
            StatusCode::OK,
            &json!({
                "request_id": request_id, "gateway_request_id": request_id, "status": "IN_QUEUE", "queue_position": 0,
                "response_url": base, "status_url": format!("{base}/status"), "cancel_url": format!("{base}/cancel"),
            }),
        )
    }

    fn request_route(&self, req: &FakeRequest, model: &str, rest: &str) -> Reply {
        let (request_id, action) = rest.split_once('/').unwrap_or((rest, ""));
        let Some(submission) = self.submissions().into_iter().find(|s| s.request_id == request_id) else {
            return json_reply(StatusCode::NOT_FOUND, &json!({ "detail": "Request not found" }));
        };
        let outcome = self.state.lock().unwrap().outcome.clone();
        match (req.method.clone(), action) {
            (Method::GET, "status") => json_reply(
                StatusCode::OK,
                &json!({
                    "status": submission.status, "request_id": request_id, "queue_position": 0,
                    "response_url": format!("{}/{model}/requests/{request_id}", self.queue_url()),
                }),
            ),
            (Method::GET, "") if submission.status != "COMPLETED" => {
                json_reply(StatusCode::BAD_REQUEST, &json!({ "detail": "Request is still in progress" }))
            }
            (Method::GET, "") => match outcome {
                Outcome::Error(message) => {
                    json_reply(StatusCode::UNPROCESSABLE_ENTITY, &json!({ "detail": [{ "msg": message }] }))
                }
                _ => json_reply(StatusCode::OK, &self.result_for(&submission.model, &submission.input)),
            },
            (Method::PUT, "cancel") => {
                self.state.lock().unwrap().cancelled.push(request_id.to_owned());
                self.set_status(request_id, "CANCELLED");
                json_reply(StatusCode::ACCEPTED, &json!({ "status": "CANCELLATION_REQUESTED" }))
            }
            _ => json_reply(StatusCode::METHOD_NOT_ALLOWED, &json!({ "detail": "Method Not Allowed" })),
        }
    }

    fn set_status(&self, request_id: &str, status: &str) {
        let mut state = self.state.lock().unwrap();
        if let Some(s) = state.submissions.iter_mut().find(|s| s.request_id == request_id) {
            s.status = status.to_owned();
        }
    }
}

/// Signs like FAL: Ed25519 over `request_id\nuser_id\ntimestamp\nhex(sha256(body))`.
pub fn sign_with(
    key: &SigningKey,
    request_id: &str,
    user_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Vec<(String, String)> {
    let message = format!("{request_id}\n{user_id}\n{timestamp}\n{}", hex::encode(Sha256::digest(body)));
    let signature = key.sign(message.as_bytes());
    vec![
        ("x-fal-webhook-request-id".into(), request_id.to_owned()),
        ("x-fal-webhook-user-id".into(), user_id.to_owned()),
        ("x-fal-webhook-timestamp".into(), timestamp.to_string()),
        ("x-fal-webhook-signature".into(), hex::encode(signature.to_bytes())),
    ]
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}
