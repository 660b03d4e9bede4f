//! yt-dlp, the fetcher the field uses: what a link holds (`-J`, nothing
//! downloaded), then its audio only. Every request it makes goes through a
//! [`GuardProxy`]; its failures are told apart by what it prints.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use super::guard::{Guard, Refused};
use super::proxy::{Deadlines, GuardProxy};

/// What a link holds, as yt-dlp read it.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub title: String,
    /// Seconds, where the site states them (YouTube does; a plain file does not).
    pub duration: Option<f64>,
}

/// Why a link gives no recording; each has its own text for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the site wants a sign-in to prove we are not a bot")]
    BotCheck,
    #[error("the recording is private, removed or unavailable")]
    Unavailable,
    #[error("the link is a live stream")]
    Live,
    #[error("the recording is not available in our region")]
    GeoBlocked,
    #[error("no audio or video found at the link")]
    NoMedia,
    #[error("the recording is larger than {0} bytes")]
    TooBig(u64),
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error("yt-dlp ran over its {0:?} limit")]
    TimedOut(Duration),
    /// Ours to look at: yt-dlp missing, or failing in a way not listed above.
    #[error("yt-dlp failed: {0}")]
    Failed(String),
}

impl LinkError {
    /// Whether trying again later may help (the rest are the link's fault).
    pub fn may_pass(&self) -> bool {
        matches!(self, LinkError::TimedOut(_) | LinkError::Failed(_))
    }
}

#[derive(Debug, Clone)]
pub struct YtDlp {
    pub program: String,
    pub guard: Guard,
    pub max_bytes: u64,
    pub probe_limit: Duration,
    pub download_limit: Duration,
}

impl YtDlp {
    /// Whether yt-dlp runs here at all (`--version`).
    pub fn available(program: &str) -> bool {
        !program.is_empty()
            && std::process::Command::new(program)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
    }

    /// The title and, where the site says, the length; nothing downloaded.
    pub async fn probe(&self, url: &str) -> Result<Probe, LinkError> {
        let out = self.run(&["-J", "--no-playlist", "--no-warnings", url], self.probe_limit).await?;
        let info: Value = serde_json::from_slice(&out).map_err(|e| LinkError::Failed(format!("-J output: {e}")))?;
        if info["is_live"] == true || matches!(info["live_status"].as_str(), Some("is_live" | "is_upcoming")) {
            return Err(LinkError::Live);
        }
        let title = info["title"].as_str().unwrap_or_default().chars().take(200).collect();
        let duration = info["duration"].as_f64().filter(|d| d.is_finite() && *d > 0.0);
        Ok(Probe { title, duration })
    }

    /// The audio into `dir` (the best audio-only format, else the smallest
    /// whole file), at most `max_bytes`; the file's path.
    pub async fn download(&self, url: &str, dir: &Path) -> Result<PathBuf, LinkError> {
        let template = dir.join("link.%(ext)s");
        let template = template.to_string_lossy();
        let max = self.max_bytes.to_string();
        let args = [
            "--no-playlist",
            "--no-warnings",
            "--no-part",
            "--no-mtime",
            "-f",
            "bestaudio/worstaudio/worst",
            "--max-filesize",
            &max,
            "-o",
            &template,
            "--print",
            "after_move:filepath",
            url,
        ];
        let out = self.run(&args, self.download_limit).await?;
        let path = String::from_utf8_lossy(&out).lines().last().unwrap_or_default().trim().to_owned();
        if path.is_empty() || !Path::new(&path).is_file() {
            // yt-dlp skips a file over --max-filesize and says so, exiting 0.
            return Err(LinkError::TooBig(self.max_bytes));
        }
        Ok(PathBuf::from(path))
    }

    /// yt-dlp with `args` through a fresh guard proxy; its stdout.
    async fn run(&self, args: &[&str], limit: Duration) -> Result<Vec<u8>, LinkError> {
        let proxy = GuardProxy::start(self.guard.clone(), self.max_bytes, Deadlines::default())
            .await
            .map_err(|e| LinkError::Failed(format!("the link proxy: {e}")))?;
        let proxy_url = proxy.url();
        let mut command = tokio::process::Command::new(&self.program);
        command
            .args(["--proxy", &proxy_url, "--socket-timeout", "20", "--ignore-config", "--no-cache-dir"])
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let output = match tokio::time::timeout(limit, command.output()).await {
            Err(_) => return Err(LinkError::TimedOut(limit)),
            Ok(Err(e)) => return Err(LinkError::Failed(format!("cannot run {}: {e}", self.program))),
            Ok(Ok(output)) => output,
        };
        if let Some(refused) = proxy.refused() {
            return Err(LinkError::Refused(refused));
        }
        if proxy.over_cap() {
            return Err(LinkError::TooBig(self.max_bytes));
        }
        if output.status.success() {
            return Ok(output.stdout);
        }
        Err(classify(&String::from_utf8_lossy(&output.stderr)))
    }
}

/// What yt-dlp's error lines mean.
pub fn classify(stderr: &str) -> LinkError {
    let text = stderr.to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
    if has(&["confirm you", "not a bot", "sign in to confirm", "use --cookies"]) {
        LinkError::BotCheck
    } else if has(&["available in your country", "geo restrict", "geo-restrict", "blocked it in your country"]) {
        LinkError::GeoBlocked
    } else if has(&["is live", "live event", "premieres in", "this live stream"]) {
        LinkError::Live
    } else if has(&[
        "private video",
        "video unavailable",
        "has been removed",
        "account associated",
        "http error 404",
        "http error 410",
        "no longer available",
        "members-only",
    ]) {
        LinkError::Unavailable
    } else if has(&["unsupported url", "no video formats", "no media found", "requested format is not available"]) {
        LinkError::NoMedia
    } else {
        let last = stderr.lines().rev().find(|l| l.contains("ERROR")).unwrap_or(stderr.trim());
        LinkError::Failed(last.chars().take(300).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yt_dlps_errors_are_told_apart() {
        let cases = [
            (
                "ERROR: [youtube] abc: Sign in to confirm you’re not a bot. Use --cookies-from-browser",
                LinkError::BotCheck,
            ),
            ("ERROR: [youtube] abc: Private video. Sign in if you've been granted access", LinkError::Unavailable),
            (
                "ERROR: [youtube] abc: Video unavailable. This video has been removed by the uploader",
                LinkError::Unavailable,
            ),
            ("ERROR: [youtube] abc: This live event will begin in 3 hours.", LinkError::Live),
            (
                "ERROR: [youtube] abc: The uploader has not made this video available in your country",
                LinkError::GeoBlocked,
            ),
            ("ERROR: Unsupported URL: https://example.com/page", LinkError::NoMedia),
        ];
        for (stderr, expected) in cases {
            assert_eq!(classify(stderr), expected, "{stderr}");
        }
        assert!(matches!(classify("ERROR: something new"), LinkError::Failed(_)));
    }
}
