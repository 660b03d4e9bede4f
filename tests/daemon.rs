//! The `aishad` binary end to end, as an operator runs it: real PostgreSQL,
//! Redis and SeaweedFS, the fake Bot API, signals and exit codes.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use aisha_actors::settings::Mode;
use aisha_testkit::{Daemon, FakeTelegram, TestServices};
use aishad::roles::child_names;

const TOKEN: &str = "987654:SECRET-daemon-token-xyz";
const BIN: &str = env!("CARGO_BIN_EXE_aishad");

fn bin() -> &'static Path {
    Path::new(BIN)
}

fn env_for(services: &TestServices, telegram: &FakeTelegram) -> Vec<(String, String)> {
    let mut env = services.env();
    env.push(("TELEGRAM_BOT_TOKEN".into(), TOKEN.into()));
    env.push(("TELEGRAM_API_URL".into(), telegram.url()));
    env
}

async fn get(url: String) -> (u16, String) {
    let response = reqwest::Client::new().get(url).timeout(Duration::from_secs(10)).send().await.expect("request");
    (response.status().as_u16(), response.text().await.unwrap_or_default())
}

async fn wait_ready(daemon: &Daemon) -> serde_json::Value {
    let addr = daemon.telemetry_addr().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = get(format!("http://{addr}/readyz")).await;
        if status == 200 {
            return serde_json::from_str(&body).expect("readyz JSON");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not ready in time: {body}\nlogs:\n{}",
            daemon.logs().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn assert_no_secret_logged(daemon: &Daemon) {
    for line in daemon.logs() {
        assert!(!line.contains("SECRET-daemon-token"), "token in a log line: {line}");
        assert!(!line.contains("aisha-local-password"), "database password in a log line: {line}");
    }
}

async fn run_mode_and_check_children(mode: Mode) {
    let services = TestServices::new(&format!("mode_{mode}")).await;
    let telegram = FakeTelegram::start(TOKEN).await;
    let mut env = env_for(&services, &telegram);
    env.push(("BOT_MODE".into(), mode.to_string()));
    let mut daemon = Daemon::start(bin(), &["run"], &env);
    let ready = wait_ready(&daemon).await;

    let mut children: Vec<&str> = ready["children"].as_object().unwrap().keys().map(String::as_str).collect();
    let mut expected = child_names(mode);
    children.sort();
    expected.sort();
    assert_eq!(children, expected, "mode {mode} starts exactly its set");
    assert_eq!(ready["postgres"], "ok");
    assert_eq!(ready["redis"], "ok");

    let addr = daemon.telemetry_addr().await;
    let (status, metrics) = get(format!("http://{addr}/metrics")).await;
    assert_eq!(status, 200);
    for child in child_names(mode) {
        assert!(metrics.contains(&format!("aishad_child_up{{child=\"{child}\"}} 1")), "{metrics}");
    }

    daemon.signal("TERM");
    assert_eq!(daemon.wait(Duration::from_secs(20)).await, 0, "SIGTERM drains and exits 0");
    assert_no_secret_logged(&daemon);
}

#[tokio::test]
async fn polling_mode_starts_only_the_poller() {
    run_mode_and_check_children(Mode::Polling).await;
}

#[tokio::test]
async fn worker_mode_starts_only_the_worker_pools() {
    run_mode_and_check_children(Mode::Worker).await;
}

#[tokio::test]
async fn webhook_mode_starts_only_the_listener() {
    run_mode_and_check_children(Mode::Webhook).await;
}

#[tokio::test]
async fn all_mode_starts_everything() {
    run_mode_and_check_children(Mode::All).await;
}

#[tokio::test]
async fn start_up_applies_migrations_and_creates_the_bucket() {
    let services = TestServices::new("startup_migrates").await;
    let telegram = FakeTelegram::start(TOKEN).await;
    let mut env = env_for(&services, &telegram);
    env.push(("BOT_MODE".into(), "worker".into()));
    let mut daemon = Daemon::start(bin(), &[], &env);
    wait_ready(&daemon).await;
    let rows = services.db().await.query("SELECT version FROM schema_migrations", &[]).await.unwrap();
    assert_eq!(rows.len(), aisha_actors::store::MIGRATIONS.len());
    daemon.signal("INT");
    assert_eq!(daemon.wait(Duration::from_secs(20)).await, 0, "SIGINT behaves like SIGTERM");
}

#[tokio::test]
async fn an_unreachable_database_keeps_the_daemon_up_retrying_and_not_ready() {
    let services = TestServices::new("db_down").await;
    let telegram = FakeTelegram::start(TOKEN).await;
    let mut env = env_for(&services, &telegram);
    env.retain(|(k, _)| k != "DATABASE_URL");
    env.push(("DATABASE_URL".into(), "postgres://aisha:db-pass-never-logged@127.0.0.1:1/aisha".into()));
    env.push(("AISHA_DATABASE__CONNECT_TIMEOUT".into(), "300ms".into()));
    let mut daemon = Daemon::start(bin(), &["run"], &env);
    let addr = daemon.telemetry_addr().await;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let attempts = loop {
        let attempts: Vec<String> =
            daemon.logs().into_iter().filter(|l| l.contains("dependency not reachable")).collect();
        if attempts.len() >= 3 {
            break attempts;
        }
        assert!(tokio::time::Instant::now() < deadline, "expected repeated attempts:\n{}", daemon.logs().join("\n"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for line in &attempts {
        assert!(line.contains("127.0.0.1:1"), "names the host: {line}");
        assert!(!line.contains("db-pass-never-logged"), "never the password: {line}");
    }
    assert_eq!(get(format!("http://{addr}/healthz")).await.0, 200, "alive");
    let (status, body) = get(format!("http://{addr}/readyz")).await;
    assert_eq!(status, 503, "not ready: {body}");
    assert!(!body.contains("db-pass-never-logged"));

    daemon.signal("TERM");
    assert_eq!(daemon.wait(Duration::from_secs(10)).await, 0);
    assert!(daemon.logs().iter().all(|l| !l.contains("panicked")), "never a panic");
}

#[tokio::test]
async fn a_child_that_keeps_crashing_ends_the_process_with_70() {
    let services = TestServices::new("exit70").await;
    let telegram = FakeTelegram::start(TOKEN).await;
    // The webhook listener cannot bind a port someone else holds: every start fails.
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut env = env_for(&services, &telegram);
    env.push(("BOT_MODE".into(), "webhook".into()));
    env.push(("WEBHOOK_BIND".into(), squatter.local_addr().unwrap().to_string()));
    let mut daemon = Daemon::start(bin(), &["run"], &env);
    assert_eq!(daemon.wait(Duration::from_secs(30)).await, 70);
    let logs = daemon.logs().join("\n");
    assert!(logs.contains("restart intensity exceeded"), "{logs}");
    assert!(logs.contains("webhook_listener"), "{logs}");
    drop(squatter);
}

#[tokio::test]
async fn health_subcommand_follows_the_process() {
    let services = TestServices::new("health_cmd").await;
    let telegram = FakeTelegram::start(TOKEN).await;
    let mut env = env_for(&services, &telegram);
    env.push(("BOT_MODE".into(), "worker".into()));
    let mut daemon = Daemon::start(bin(), &["run"], &env);
    let addr = daemon.telemetry_addr().await;
    let health = |url: String| Command::new(BIN).args(["health", "--url", &url]).env_clear().status().unwrap().code();
    assert_eq!(health(format!("http://{addr}")), Some(0));
    daemon.signal("TERM");
    assert_eq!(daemon.wait(Duration::from_secs(20)).await, 0);
    assert_ne!(health(format!("http://{addr}")), Some(0), "unhealthy once the process is gone");
    // Without --url it probes the configured telemetry port.
    let status = Command::new(BIN)
        .args(["health"])
        .env_clear()
        .env("TELEMETRY_BIND", format!("127.0.0.1:{}", addr.port()))
        .status()
        .unwrap();
    assert_ne!(status.code(), Some(0));
}

#[test]
fn config_prints_effective_settings_with_secrets_masked() {
    let output = Command::new(BIN)
        .args(["--profile", "dev", "config"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_clear()
        .env("TELEGRAM_BOT_TOKEN", TOKEN)
        .env("OPENAI_API_KEY", "sk-never-printed")
        .env("DATABASE_URL", "postgres://aisha:pw-never-printed@db:5432/aisha")
        .env("BOT_MODE", "worker")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("mode = \"worker\""), "{text}");
    assert!(text.contains("token = \"***\""), "{text}");
    assert!(text.contains("postgres://aisha:***@db:5432/aisha"), "{text}");
    assert!(text.contains("format = \"pretty\""), "the dev profile applies: {text}");
    for secret in ["SECRET-daemon", "sk-never", "pw-never"] {
        assert!(!text.contains(secret), "{secret} printed:\n{text}");
    }
}

fn run_config_error(env: &[(&str, &str)], args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(BIN)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (output.status.code(), String::from_utf8(output.stderr).unwrap())
}

#[test]
fn a_malformed_database_url_exits_78_with_one_line_naming_the_key() {
    let (code, stderr) =
        run_config_error(&[("DATABASE_URL", "postgres//nope"), ("TELEGRAM_BOT_TOKEN", TOKEN)], &["run"]);
    assert_eq!(code, Some(78));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("database.url") && stderr.contains("DATABASE_URL"), "{stderr}");
}

#[test]
fn a_missing_token_exits_78_naming_the_key() {
    let env = [
        ("DATABASE_URL", "postgres://u:p@localhost/db"),
        ("REDIS_URL", "redis://localhost"),
        ("MINIO_ENDPOINT", "localhost:9000"),
        ("MINIO_ACCESS_KEY", "ak"),
        ("MINIO_SECRET_KEY", "sk"),
    ];
    let (code, stderr) = run_config_error(&env, &["run"]);
    assert_eq!(code, Some(78));
    assert!(stderr.contains("telegram.token") && stderr.contains("TELEGRAM_BOT_TOKEN"), "{stderr}");
}

#[test]
fn a_bad_mode_exits_78() {
    let (code, stderr) = run_config_error(&[("BOT_MODE", "poller")], &["config"]);
    assert_eq!(code, Some(78));
    assert!(stderr.contains("mode"), "{stderr}");
}

#[tokio::test]
async fn migrate_command_applies_then_reports_nothing_to_do() {
    let services = TestServices::new("migrate_cmd").await;
    let run = || {
        Command::new(BIN)
            .args(["migrate"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_clear()
            .env("DATABASE_URL", &services.database_url)
            .output()
            .unwrap()
    };
    let first = run();
    assert_eq!(first.status.code(), Some(0), "{}", String::from_utf8_lossy(&first.stderr));
    assert!(String::from_utf8_lossy(&first.stdout).contains("applied 0001_users"));
    let second = run();
    assert!(String::from_utf8_lossy(&second.stdout).contains("0 applied"));
}

#[test]
fn version_flag_prints_the_version() {
    let output = Command::new(BIN).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&output.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[tokio::test]
async fn admin_credit_adds_coins_to_a_known_user_and_refuses_an_unknown_one() {
    let services = TestServices::new("admin_cmd").await;
    let admin = |telegram_id: &str, coins: &str| {
        Command::new(BIN)
            .args(["admin", "credit", "--telegram-id", telegram_id, "--coins", coins, "--reason", "support ticket 7"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_clear()
            .env("DATABASE_URL", &services.database_url)
            .output()
            .unwrap()
    };
    let migrate =
        Command::new(BIN).arg("migrate").env_clear().env("DATABASE_URL", &services.database_url).output().unwrap();
    assert!(migrate.status.success());
    services.db().await.execute("INSERT INTO users (telegram_id) VALUES (555)", &[]).await.unwrap();

    let ok = admin("555", "40");
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("balance 40"));
    let correction = admin("555", "-50");
    assert_eq!(correction.status.code(), Some(65), "never below zero");
    assert!(String::from_utf8_lossy(&correction.stderr).contains("below zero"));
    let unknown = admin("999", "5");
    assert_eq!(unknown.status.code(), Some(65));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no user with telegram id 999"));
    let entries = services.scalar("SELECT count(*) FROM ledger_entries").await;
    assert_eq!(entries, 1);
}

/// A message Telegram refuses for our rate (429) is sent again after its
/// `retry_after`, and counted in the series `AishadTelegramRateLimited`
/// watches (before, only getUpdates' 429s were).
#[tokio::test]
async fn a_send_refused_for_our_rate_is_sent_again_and_counted_for_the_alert() {
    let services = TestServices::new("daemon_send_429").await;
    let telegram = FakeTelegram::start(TOKEN).await;
    telegram.fail_next("sendMessage", aisha_testkit::telegram::Failure::RetryAfter(1));
    let mut daemon = Daemon::start(bin(), &["run"], &env_for(&services, &telegram));
    let addr = daemon.telemetry_addr().await;
    wait_ready(&daemon).await;
    let (_, before) = get(format!("http://{addr}/metrics")).await;
    assert!(before.contains("aishad_telegram_errors_total{kind=\"429\"} 0"), "known from the start: {before}");

    telegram.push_text(4242, "en", "/start");
    aisha_testkit::eventually("the welcome, sent again", Duration::from_secs(30), || {
        !telegram.sent_texts(4242).is_empty()
    })
    .await;
    let (_, metrics) = get(format!("http://{addr}/metrics")).await;
    assert!(metrics.contains("aishad_telegram_errors_total{kind=\"429\"} 1"), "{metrics}");
    daemon.signal("TERM");
    assert_eq!(daemon.wait(Duration::from_secs(20)).await, 0);
}
