//! No token, key or password reaches a log line, whichever way it gets there.

use std::io::Write;
use std::sync::{Arc, Mutex};

use aisha_actors::secret::{ConnUrl, Secret};
use aisha_actors::settings::{LogFormat, Settings};
use aishad::telemetry::subscriber;

const TOKEN: &str = "5551234:AAH-very-secret-bot-token";

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buffer {
    type Writer = Buffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn settings(format: LogFormat) -> Settings {
    let mut s = Settings::default();
    s.telegram.token = Secret::new(TOKEN);
    s.openai.api_key = Secret::new("sk-proj-openai-secret");
    s.fal.key = Secret::new("fal-key-id:fal-key-secret");
    s.s3.secret_key = Secret::new("minio-secret-key");
    // libpq's multi-host form (an HA cluster), which is no URL to the `url` crate.
    s.database.url =
        ConnUrl::new("postgres://aisha:pg-secret-pw@db1:5432,db2:5432/aisha?target_session_attrs=read-write");
    s.redis.url = ConnUrl::new("redis://:redis-secret-pw@cache:6379");
    s.log.format = format;
    s
}

fn logged(format: LogFormat) -> String {
    let settings = settings(format);
    let buffer = Buffer::default();
    tracing::subscriber::with_default(subscriber(&settings, buffer.clone()), || {
        tracing::info!(config = ?settings, "effective configuration");
        tracing::info!("effective configuration {settings:?}");
        let url = format!("https://api.telegram.org/bot{TOKEN}/getUpdates");
        tracing::warn!(%url, "request failed");
        tracing::error!(error = %format!("error sending request for url ({url})"), "poll failed");
        let file = format!("https://api.telegram.org/file/bot{TOKEN}/voice/file_1.oga");
        tracing::info!("downloading {file}");
        // A secret logged raw, by mistake, in a message and in a field:
        tracing::info!(key = "sk-proj-openai-secret", "oops {}", "minio-secret-key");
        tracing::info!(dsn = "postgres://aisha:pg-secret-pw@db1:5432,db2:5432/aisha", "connecting");
        tracing::info!(password = "redis-secret-pw", other = "postgres://someone:unlisted-pw@h/db", "more");
    });
    let bytes = buffer.0.lock().unwrap().clone();
    String::from_utf8(bytes).unwrap()
}

fn assert_clean(text: &str) {
    for secret in [
        TOKEN,
        "AAH-very-secret",
        "sk-proj-openai-secret",
        "fal-key-secret",
        "minio-secret-key",
        "pg-secret-pw",
        "redis-secret-pw",
        "unlisted-pw",
    ] {
        assert!(!text.contains(secret), "{secret} reached the log:\n{text}");
    }
}

#[test]
fn json_logs_carry_no_secret() {
    let text = logged(LogFormat::Json);
    assert_eq!(text.lines().count(), 8, "every event was written:\n{text}");
    assert!(text.contains("/bot***/getUpdates"), "{text}");
    assert_clean(&text);
}

#[test]
fn pretty_logs_carry_no_secret() {
    let text = logged(LogFormat::Pretty);
    assert!(text.contains("effective configuration"), "{text}");
    assert_clean(&text);
}
