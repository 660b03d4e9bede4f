//! deploy/monitoring/ against the running daemon: every metric the alert
//! rules and the dashboard name is exported by an aishad of a role that
//! serves it. A polling, a worker and a webhook process (with its Telegram
//! webhook registered) share the real services and the fakes; a voice note
//! goes through them, so the job and outside-API histograms exist, before
//! each one's /metrics is read. (That the queries parse and every alert is
//! tested is scripts/monitoring.sh, with promtool.)

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use aisha_testkit::audio::voice_note;
use aisha_testkit::{eventually, free_port, Daemon, FakeOpenAi, FakeTelegram, TestServices};

const TOKEN: &str = "626262:MONITORING-token-xyz";
const BIN: &str = env!("CARGO_BIN_EXE_aishad");
const USER: i64 = 6201;

/// The metric names (`aishad_…`, without a histogram's `_bucket`, `_sum`,
/// `_count`) that appear in `text`.
fn names_in(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("aishad_") {
        let preceded_by_word = at > 0 && rest.as_bytes()[at - 1].is_ascii_alphanumeric();
        let tail = &rest[at..];
        let end =
            tail.find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')).unwrap_or(tail.len());
        if !preceded_by_word {
            names.insert(base_name(&tail[..end]).to_owned());
        }
        rest = &tail[end..];
    }
    names
}

fn base_name(name: &str) -> &str {
    ["_bucket", "_count", "_sum"].iter().find_map(|suffix| name.strip_suffix(suffix)).unwrap_or(name)
}

/// What one process exports: the names of its samples.
async fn exported(daemon: &Daemon) -> BTreeSet<String> {
    let addr = daemon.telemetry_addr().await;
    let body = reqwest::get(format!("http://{addr}/metrics")).await.expect("scrape").text().await.expect("body");
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(|name| base_name(name).to_owned())
        .collect()
}

async fn ready(daemon: &Daemon) {
    let addr = daemon.telemetry_addr().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("http://{addr}/readyz")).await.map(|r| r.status().as_u16()).unwrap_or(0) != 200 {
        assert!(tokio::time::Instant::now() < deadline, "not ready:\n{}", daemon.logs().join("\n"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_rules_and_the_dashboard_name_is_exported_by_a_running_role() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/monitoring");
    let rules = std::fs::read_to_string(root.join("aishad.rules.yml")).unwrap();
    let dashboard = std::fs::read_to_string(root.join("dashboard.json")).unwrap();
    let named: BTreeSet<String> = names_in(&rules).into_iter().chain(names_in(&dashboard)).collect();
    assert!(named.len() > 30, "{named:?}");

    let services = TestServices::new("monitoring").await;
    let telegram = FakeTelegram::start(TOKEN).await;
    let openai = FakeOpenAi::start("sk-monitoring").await;
    let mut env = services.env();
    env.extend(aisha_testkit::daemon::all_mode_env(&telegram, &openai));
    let port = free_port();
    let role = |mode: &str, extra: &[(&str, String)]| {
        let mut env = env.clone();
        env.push(("BOT_MODE".into(), mode.into()));
        env.push(("INSTANCE_ID".into(), format!("monitoring-{mode}")));
        env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        Daemon::start(Path::new(BIN), &["run"], &env)
    };
    let webhook_url = format!("http://127.0.0.1:{port}/webhooks/telegram");
    let daemons = [
        ("polling", role("polling", &[])),
        ("worker", role("worker", &[])),
        (
            "webhook",
            role(
                "webhook",
                &[
                    ("WEBHOOK_BIND", format!("127.0.0.1:{port}")),
                    ("AISHA_TELEGRAM__WEBHOOK_SECRET", "monitoring-secret".into()),
                    ("AISHA_TELEGRAM__WEBHOOK_URL", webhook_url),
                ],
            ),
        ),
    ];
    for (_, daemon) in &daemons {
        ready(daemon).await;
    }
    telegram.push_text(USER, "en", "/start");
    telegram.push_voice(USER, "en", 2, voice_note("Counted, timed and shown."));
    let transcribed = || telegram.sent_texts(USER).iter().any(|t| t.starts_with("📝"));
    eventually("the transcript", Duration::from_secs(60), transcribed).await;

    let mut by_role: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for (mode, daemon) in &daemons {
        for name in exported(daemon).await {
            by_role.entry(name).or_default().push(mode);
        }
    }
    let missing: Vec<&String> = named.iter().filter(|name| !by_role.contains_key(*name)).collect();
    assert!(missing.is_empty(), "named in deploy/monitoring but exported by no role: {missing:?}");
    for name in &named {
        eprintln!("monitoring: {name} from {}", by_role[name].join(", "));
    }
}
