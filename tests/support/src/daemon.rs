//! Runs the `aishad` binary as a child process, the way an operator does,
//! and reads its JSON log lines.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub struct Daemon {
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Daemon {
    /// Starts `bin` with a clean environment plus `env`, in the repository
    /// root (so `config/aishad.toml` is found), with the `test` profile.
    pub fn start(bin: &Path, args: &[&str], env: &[(String, String)]) -> Self {
        Self::start_in_namespace(None, bin, args, env)
    }

    /// The same, in the network namespace `netns` when given (see `netns::Host`).
    pub fn start_in_namespace(netns: Option<&str>, bin: &Path, args: &[&str], env: &[(String, String)]) -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut command = match netns {
            Some(netns) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", netns]).arg(bin);
                command
            }
            None => Command::new(bin),
        };
        command
            .args(["--profile", "test"])
            .args(args)
            .current_dir(root)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LOG_FORMAT", "json")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        Self::spawn(command)
    }

    /// Starts a container of a deployment file as a process: its command
    /// line (`aishad` being `bin`) with a clean environment plus exactly
    /// `env`, in the repository root as the image's working directory, and
    /// its secret files, all under `/run/secrets`, mounted there in a mount
    /// namespace of its own (the host's `/run/secrets` is left alone).
    pub fn start_shipped(bin: &Path, container: &crate::shipped::Container, env: &[(String, String)]) -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let secrets = tempfile_dir(&container.at);
        for (path, content) in &container.files {
            let relative =
                path.strip_prefix("/run/secrets/").unwrap_or_else(|| panic!("{path}: not under /run/secrets"));
            let file = secrets.join(relative);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, content).unwrap();
        }
        std::fs::create_dir_all("/run/secrets").expect("a mount point for the secrets (as root)");
        let (program, args) = container.args.split_first().expect("a command");
        assert_eq!(program, "aishad", "{}: runs the image's aishad", container.at);
        let mut command = Command::new("unshare");
        command
            .args([
                "--mount",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
                "mount --bind \"$0\" /run/secrets && exec \"$@\"",
            ])
            .arg(&secrets)
            .arg(bin)
            .args(args)
            .current_dir(root)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        Self::spawn(command)
    }

    fn spawn(mut command: Command) -> Self {
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        let mut child = command.spawn().expect("spawn aishad");
        let logs = Arc::new(Mutex::new(Vec::new()));
        if let Some(stderr) = child.stderr.take() {
            collect_lines(stderr, logs.clone());
        }
        if let Some(stdout) = child.stdout.take() {
            collect_lines(stdout, logs.clone());
        }
        Self { child, logs }
    }

    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// Waits for a log line containing `needle`, returning it.
    pub async fn wait_for_log(&self, needle: &str, timeout: Duration) -> String {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(line) = self.logs.lock().unwrap().iter().find(|l| l.contains(needle)) {
                return line.clone();
            }
            if tokio::time::Instant::now() > deadline {
                panic!("no log line containing {needle:?} within {timeout:?}; logs:\n{}", self.logs().join("\n"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The telemetry address, from the start-up log line.
    pub async fn telemetry_addr(&self) -> SocketAddr {
        let line = self.wait_for_log("aishad starting", Duration::from_secs(20)).await;
        let value: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
        value["telemetry"].as_str().expect("telemetry field").parse().expect("socket address")
    }

    /// What its `/metrics` says now (Prometheus's text format).
    pub async fn metrics(&self) -> String {
        let url = format!("http://{}/metrics", self.telemetry_addr().await);
        reqwest::get(&url).await.expect("scrape").text().await.expect("body")
    }

    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill").args([&format!("-{signal}"), &self.pid().to_string()]).status();
        assert!(status.map(|s| s.success()).unwrap_or(false), "kill -{signal} failed");
    }

    /// Waits for the process to exit and returns its code.
    pub async fn wait(&mut self, timeout: Duration) -> i32 {
        let status = tokio::time::timeout(timeout, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("aishad did not exit within {timeout:?}; logs:\n{}", self.logs().join("\n")))
            .expect("wait for aishad");
        // Give the log readers a moment to drain the pipes.
        tokio::time::sleep(Duration::from_millis(50)).await;
        status.code().unwrap_or(-1)
    }

    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }
}

/// A fresh directory under the system's temp dir, named after `what`.
fn tempfile_dir(what: &str) -> std::path::PathBuf {
    let slug: String = what.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    let dir = std::env::temp_dir().join(format!("aishad-{slug}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Appends each line of `stream` to `logs` (and echoes it with AISHA_TEST_ECHO_LOGS).
fn collect_lines(stream: impl tokio::io::AsyncRead + Unpin + Send + 'static, logs: Arc<Mutex<Vec<String>>>) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if std::env::var_os("AISHA_TEST_ECHO_LOGS").is_some() {
                eprintln!("[aishad] {line}");
            }
            logs.lock().unwrap().push(line);
        }
    });
}

/// What a daemon in `all` mode needs to reach the Bot API and OpenAI fakes
/// (short long-polls, so tests run in seconds), as environment variables.
pub fn all_mode_env(telegram: &crate::FakeTelegram, openai: &crate::FakeOpenAi) -> Vec<(String, String)> {
    [
        ("TELEGRAM_BOT_TOKEN", telegram.token.clone()),
        ("TELEGRAM_API_URL", telegram.url()),
        ("OPENAI_API_KEY", openai.api_key.clone()),
        ("OPENAI_BASE_URL", openai.url()),
        ("BOT_MODE", "all".to_owned()),
        ("AISHA_TELEGRAM__POLL_TIMEOUT", "1s".to_owned()),
    ]
    .map(|(k, v)| (k.to_owned(), v))
    .to_vec()
}
