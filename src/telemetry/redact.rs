//! Scrubs secrets from every formatted log line before it is written. Works
//! on the finished line, so a token inside a URL inside an error inside a
//! field is caught as surely as one logged on purpose.

use std::io::{self, Write};
use std::sync::{Arc, OnceLock};

use regex::Regex;
use tracing_subscriber::fmt::MakeWriter;

const MASK: &str = "***";

#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Arc<Vec<String>>,
}

fn patterns() -> &'static [Regex; 2] {
    static PATTERNS: OnceLock<[Regex; 2]> = OnceLock::new();
    PATTERNS.get_or_init(|| {
        [
            // Bot API paths: /bot123456:AA.../getUpdates and /file/bot123456:AA.../path
            Regex::new(r"bot\d{3,}:[A-Za-z0-9_-]{10,}").expect("valid regex"),
            // Credentials in any URL: scheme://user:password@host
            Regex::new(r"(?P<pre>[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s/]+@").expect("valid regex"),
        ]
    })
}

impl Redactor {
    /// Secrets shorter than 4 characters are ignored: masking every "a" would
    /// make logs unreadable and protect nothing.
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<String> = secrets.into_iter().filter(|s| s.len() >= 4).collect();
        // Longest first, so a secret containing another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Self { secrets: Arc::new(secrets) }
    }

    pub fn redact(&self, line: &str) -> String {
        let mut out = line.to_owned();
        for secret in self.secrets.iter() {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), MASK);
            }
        }
        let [bot_path, url_password] = patterns();
        let out = bot_path.replace_all(&out, "bot***");
        url_password.replace_all(&out, "${pre}***@").into_owned()
    }
}

/// A `MakeWriter` whose writers buffer one event and write it redacted.
#[derive(Clone)]
pub struct RedactingMakeWriter<M> {
    inner: M,
    redactor: Redactor,
}

impl<M> RedactingMakeWriter<M> {
    pub fn new(inner: M, redactor: Redactor) -> Self {
        Self { inner, redactor }
    }
}

pub struct RedactingWriter<W: Write> {
    inner: W,
    redactor: Redactor,
    buffer: Vec<u8>,
}

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return self.inner.flush();
        }
        let line = String::from_utf8_lossy(&self.buffer);
        let clean = self.redactor.redact(&line);
        self.buffer.clear();
        self.inner.write_all(clean.as_bytes())?;
        self.inner.flush()
    }
}

impl<W: Write> Drop for RedactingWriter<W> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

impl<'a, M> MakeWriter<'a> for RedactingMakeWriter<M>
where
    M: MakeWriter<'a>,
{
    type Writer = RedactingWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter { inner: self.inner.make_writer(), redactor: self.redactor.clone(), buffer: Vec::new() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_known_secrets_and_token_shaped_paths() {
        let r = Redactor::new(["sk-live-abcdef".to_string(), "pw".to_string()]);
        let line =
            "POST https://api.telegram.org/bot123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/getMe key=sk-live-abcdef pw";
        let clean = r.redact(line);
        assert!(!clean.contains("AAHdqTcv"), "{clean}");
        assert!(!clean.contains("sk-live"), "{clean}");
        assert!(clean.contains("/bot***/getMe"), "{clean}");
        assert!(clean.ends_with(" pw"), "short secrets are left alone: {clean}");
    }

    #[test]
    fn masks_url_passwords() {
        let r = Redactor::default();
        let clean = r.redact("connect postgres://aisha:hunter22@db:5432/aisha failed");
        assert_eq!(clean, "connect postgres://aisha:***@db:5432/aisha failed");
    }
}
