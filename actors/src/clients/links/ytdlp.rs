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
    /// yt-dlp ran out of its address space: a page that inflates to
    /// gigabytes (`Content-Encoding: gzip, gzip`); trying again inflates it again.
    #[error("the page inflates past yt-dlp's memory")]
    PageTooLarge,
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
    /// Its address space, in bytes (see `run`).
    pub max_memory: u64,
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
            .args(NO_FFMPEG)
            // For the traceback: a MemoryError's message is empty, its name
            // is in the traceback's last line only.
            .arg("--verbose")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let failed = |e: std::io::Error| LinkError::Failed(format!("{}: {e}", self.program));
        let child = command.spawn().map_err(failed)?;
        cap_address_space(&child, self.max_memory).map_err(failed)?;
        let output = match tokio::time::timeout(limit, capped_output(child)).await {
            Err(_) => return Err(LinkError::TimedOut(limit)),
            Ok(Err(e)) => return Err(failed(e)),
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

/// yt-dlp runs no ffmpeg or ffprobe of its own: they would fetch HLS
/// segments and keys themselves, outside the guard proxy (ffmpeg honours
/// `no_proxy` and opens protocols a proxy never sees), and the dev and
/// `all` hosts have Debian's ffmpeg, network protocols and all. So: its own
/// downloader for every protocol, no fixups after a download, and an
/// ffmpeg location where nothing is (yt-dlp then goes on without one).
const NO_FFMPEG: [&str; 6] =
    ["--downloader", "native", "--fixup", "never", "--ffmpeg-location", "/nonexistent/aishad-no-ffmpeg-for-yt-dlp"];

/// The most of yt-dlp's output read into the daemon: `-J` of a long
/// playlist page is a few MiB; a site cannot make it fill the worker.
const MAX_STDOUT: u64 = 16 * 1024 * 1024;
const MAX_STDERR: u64 = 256 * 1024;

/// Caps `child`'s address space at `bytes` (`RLIMIT_AS`, which every
/// process it starts inherits), so a page that inflates in memory ends in a
/// `MemoryError`, not in the worker's memory. Set from here just after the
/// start: no unsafe `pre_exec` in the daemon and no shell in the image. The
/// child is then an interpreter still starting; the first byte of a page
/// comes through the daemon's own proxy well after.
fn cap_address_space(child: &tokio::process::Child, bytes: u64) -> std::io::Result<()> {
    use rustix::process::{prlimit, Pid, Resource, Rlimit};
    let pid =
        child.id().and_then(|id| Pid::from_raw(id as i32)).ok_or_else(|| std::io::Error::other("ended at once"))?;
    let cap = Rlimit { current: Some(bytes), maximum: Some(bytes) };
    prlimit(Some(pid), Resource::As, cap)?;
    Ok(())
}

/// The program's exit status and output, stdout at most `MAX_STDOUT` (more
/// is an error, the program killed), stderr's first `MAX_STDERR` bytes (the
/// rest read and dropped, so the program never blocks on it).
async fn capped_output(mut child: tokio::process::Child) -> std::io::Result<std::process::Output> {
    let stdout = child.stdout.take().ok_or_else(|| std::io::Error::other("no stdout"))?;
    let stderr = child.stderr.take().ok_or_else(|| std::io::Error::other("no stderr"))?;
    // Stdout's reader stops past the cap and drops its pipe: the program's
    // next write fails, it ends, and stderr's reader sees the end too.
    let (out, err) = tokio::join!(keep_first(stdout, MAX_STDOUT, true), keep_first(stderr, MAX_STDERR, false));
    let (out, err) = (out?, err?);
    if out.len() as u64 > MAX_STDOUT {
        let _ = child.kill().await;
        return Err(std::io::Error::other(format!("printed more than {MAX_STDOUT} bytes")));
    }
    let status = child.wait().await?;
    Ok(std::process::Output { status, stdout: out, stderr: err })
}

/// The first `cap` bytes of `pipe`; past them, stops at once (`stop`: one
/// byte more is kept, to tell) or reads on to the end, dropping the rest.
async fn keep_first(mut pipe: impl tokio::io::AsyncRead + Unpin, cap: u64, stop: bool) -> std::io::Result<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let (mut kept, mut buffer) = (Vec::new(), vec![0u8; 64 * 1024]);
    loop {
        let n = pipe.read(&mut buffer).await?;
        if n == 0 {
            return Ok(kept);
        }
        let room = (cap as usize + usize::from(stop)).saturating_sub(kept.len());
        kept.extend_from_slice(&buffer[..n.min(room)]);
        if stop && kept.len() as u64 > cap {
            return Ok(kept);
        }
    }
}

/// What yt-dlp's error lines mean.
pub fn classify(stderr: &str) -> LinkError {
    if stderr.lines().any(|l| l.trim() == "MemoryError" || l.contains("Cannot allocate memory")) {
        return LinkError::PageTooLarge;
    }
    // `--verbose`'s own lines echo the command line, the link among it.
    let said: Vec<&str> = stderr.lines().filter(|l| !l.starts_with("[debug]")).collect();
    let text = said.join("\n").to_ascii_lowercase();
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

    /// A stand-in for yt-dlp: a shell script of the test's own.
    fn fake_ytdlp(name: &str, body: &str) -> YtDlp {
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::temp_dir().join(format!("aisha-fake-ytdlp-{name}-{}", std::process::id()));
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        YtDlp {
            program: path.to_string_lossy().into_owned(),
            guard: Guard::default(),
            max_bytes: 1 << 20,
            max_memory: 512 * 1024 * 1024,
            probe_limit: Duration::from_secs(30),
            download_limit: Duration::from_secs(30),
        }
    }

    #[tokio::test]
    async fn a_fetch_that_would_take_gigabytes_fails_within_its_address_space() {
        // What inflating a `gzip, gzip` page does to yt-dlp: 3 GiB at once.
        let bomb = fake_ytdlp("bomb", r#"exec python3 -c 'x = bytearray(3 << 30); print("{\"title\": \"t\"}")'"#);
        let result = bomb.probe("http://example.com/").await;
        assert_eq!(result, Err(LinkError::PageTooLarge));
        println!("links figure: yt-dlp's address space is capped at {} MiB; a 3 GiB allocation fails", 512);
    }

    #[tokio::test]
    async fn output_past_the_cap_is_an_error_not_a_worker_full_of_it() {
        let chatty = fake_ytdlp("chatty", "head -c 20000000 /dev/zero");
        let result = chatty.probe("http://example.com/").await;
        assert!(matches!(&result, Err(LinkError::Failed(why)) if why.contains("printed more than")), "{result:?}");
    }

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
