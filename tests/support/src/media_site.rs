//! The sites a link points to, on loopback: a direct media file, a podcast
//! page with an `<audio>` tag, a page whose JSON-LD states the length (as
//! YouTube's player data does), a page with no media, and a redirect to a
//! private address. Every request is recorded, so a test can tell what was
//! fetched, and when.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::StatusCode;

use crate::server::{reply, start_fake, FakeRequest, Reply};

/// A file served as it is: its headers and bytes.
type Served = (Vec<(String, String)>, Bytes);

#[derive(Clone)]
pub struct MediaSite {
    pub addr: SocketAddr,
    audio: Bytes,
    requests: Arc<Mutex<Vec<String>>>,
    taken_down: Arc<std::sync::atomic::AtomicBool>,
    /// More files, by path.
    files: Arc<Mutex<HashMap<String, Served>>>,
}

impl MediaSite {
    /// A site serving `audio` (an MP3) as `/episode.mp3`.
    pub async fn start(audio: Bytes) -> Self {
        start_fake(
            |addr| MediaSite {
                addr,
                audio,
                requests: Arc::default(),
                taken_down: Arc::default(),
                files: Arc::default(),
            },
            |site: Self, req| async move { site.handle(req) },
        )
        .await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Serves `bytes` at `path` from now on.
    pub fn serve(&self, path: &str, content_type: &str, bytes: Bytes) {
        self.serve_with(path, &[("content-type", content_type)], bytes);
    }

    /// Serves `bytes` at `path` with these headers (a `Content-Encoding`
    /// the bytes may or may not have).
    pub fn serve_with(&self, path: &str, headers: &[(&str, &str)], bytes: Bytes) {
        let headers = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.files.lock().unwrap().insert(path.to_owned(), (headers, bytes));
    }

    /// From now on the media file is gone (404), as a removed upload is.
    pub fn take_down(&self) {
        self.taken_down.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// The paths requested so far, in order.
    pub fn requested(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    fn handle(&self, req: FakeRequest) -> Reply {
        self.requests.lock().unwrap().push(req.path.clone());
        let media = self.url("/episode.mp3");
        if let Some((headers, bytes)) = self.files.lock().unwrap().get(&req.path).cloned() {
            let reply = headers.iter().fold(http::Response::builder(), |r, (k, v)| r.header(k, v));
            return reply.body(http_body_util::Full::new(bytes)).expect("valid response");
        }
        match req.path.as_str() {
            "/episode.mp3" if self.taken_down.load(std::sync::atomic::Ordering::SeqCst) => {
                reply(StatusCode::NOT_FOUND, "text/plain", "gone")
            }
            "/episode.mp3" => reply(StatusCode::OK, "audio/mpeg", self.audio.clone()),
            "/podcast.html" => page("Episode 12", &format!(r#"<audio controls src="{media}"></audio>"#)),
            "/stated.html" => page(
                "Podcast 7",
                &format!(
                    r#"<script type="application/ld+json">{{"@context":"https://schema.org","@type":"AudioObject",
                    "name":"Podcast 7","contentUrl":"{media}","duration":"PT1M5S","encodingFormat":"audio/mpeg"}}</script>"#
                ),
            ),
            "/nothing.html" => page("Nothing", "<p>No recording here.</p>"),
            // The cloud metadata service: what a forged link is after.
            "/moved" => http::Response::builder()
                .status(StatusCode::FOUND)
                .header(http::header::LOCATION, "http://169.254.169.254/latest/meta-data/")
                .body(http_body_util::Full::new(Bytes::new()))
                .expect("valid response"),
            _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found"),
        }
    }
}

fn page(title: &str, body: &str) -> Reply {
    reply(
        StatusCode::OK,
        "text/html; charset=utf-8",
        format!("<html><head><title>{title}</title></head><body><h1>{title}</h1>{body}</body></html>"),
    )
}

/// An HTML page that inflates to `inflated` bytes, gzipped twice, as sent
/// with `Content-Encoding: gzip, gzip`: a few KiB on the wire. Its inner
/// layer repeats one gzip member of 16 MiB of spaces (members concatenate).
pub fn gzip_bomb(inflated: u64) -> Bytes {
    let script = r#"
import sys, zlib
def member(b):
    c = zlib.compressobj(9, zlib.DEFLATED, 31); return c.compress(b) + c.flush()
head = member(b'<!DOCTYPE html><html><head><title>t</title></head><body>' + b' ' * 1000)
inner = head + member(b' ' * (1 << 24)) * (int(sys.argv[1]) >> 24)
c = zlib.compressobj(9, zlib.DEFLATED, 31)
sys.stdout.buffer.write(c.compress(inner) + c.flush())
"#;
    let out = std::process::Command::new("python3").args(["-c", script, &inflated.to_string()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out.stdout.into()
}
