//! The Prometheus of the dev stack, as an on-call engineer meets it: its
//! targets, a query, and /api/v1/alerts. It runs a test copy of
//! deploy/monitoring: scraping and evaluating every 2 s, and every alert's
//! `for:` cut to 10 s, so an alert fires within the test's patience.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::deploy::repo;

/// How long an alert may take to fire once its condition holds (10 s of
/// `for:`, a few evaluations and scrapes for the series to go stale).
const ALERT_WAIT: Duration = Duration::from_secs(120);

/// The files the stack's Prometheus mounts, by absolute path.
pub struct TestCopy {
    pub config: String,
    pub rules: String,
}

/// deploy/monitoring's prometheus.dev.yml and rules, with short intervals.
pub fn test_copy(project: &str) -> TestCopy {
    test_copy_of(project, "prometheus.dev.yml")
}

/// deploy/monitoring's `config` and rules, with short intervals.
pub fn test_copy_of(project: &str, config: &str) -> TestCopy {
    let config_name = config;
    let dir = std::env::temp_dir().join(format!("aisha-stack-{project}-monitoring"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("monitoring dir");
    let monitoring = repo().join("deploy/monitoring");
    let config = std::fs::read_to_string(monitoring.join(config_name)).expect("the Prometheus configuration");
    let config = config
        .replace("scrape_interval: 15s", "scrape_interval: 2s")
        .replace("evaluation_interval: 15s", "evaluation_interval: 2s");
    let rules = std::fs::read_to_string(monitoring.join("aishad.rules.yml")).expect("aishad.rules.yml");
    let rules: String = rules
        .lines()
        .map(|line| {
            if line.trim_start().starts_with("for: ") {
                format!("{}for: 10s", &line[..line.find("for:").unwrap()])
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let write = |name: &str, text: &str| -> String {
        let path: PathBuf = dir.join(name);
        std::fs::write(&path, text).expect("write the test copy");
        path.display().to_string()
    };
    TestCopy { config: write("prometheus.yml", &config), rules: write("aishad.rules.yml", &rules) }
}

async fn get(base: &str, path: &str) -> Option<Value> {
    let response =
        reqwest::Client::new().get(format!("{base}{path}")).timeout(Duration::from_secs(5)).send().await.ok()?;
    response.json().await.ok()
}

async fn until<T>(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> Option<T>) -> (T, Duration) {
    let started = Instant::now();
    loop {
        if let Some(found) = check().await {
            return (found, started.elapsed());
        }
        assert!(started.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Every target of `jobs` scraped and up.
pub async fn every_target_up(base: &str, jobs: &[&str]) -> Duration {
    let (_, took) = until("every target up", ALERT_WAIT, async || {
        let targets = get(base, "/api/v1/targets").await?;
        let active = targets["data"]["activeTargets"].as_array()?.clone();
        let up = |job: &str| {
            active.iter().any(|t| t["labels"]["job"] == job)
                && active.iter().filter(|t| t["labels"]["job"] == job).all(|t| t["health"] == "up")
        };
        jobs.iter().all(|job| up(job)).then_some(())
    })
    .await;
    took
}

/// `query` returns a series (of `job`, unless empty).
pub async fn has_series(base: &str, query: &str, job: &str) {
    until(&format!("a series for {query}"), ALERT_WAIT, async || {
        let answer = get(base, &format!("/api/v1/query?query={}", urlencode(query))).await?;
        let found = answer["data"]["result"].as_array()?.iter().any(|r| job.is_empty() || r["metric"]["job"] == job);
        found.then_some(())
    })
    .await;
}

/// The alerts pending or firing now, as (name, labels).
pub async fn alerts(base: &str) -> Vec<(String, Value)> {
    let answer = get(base, "/api/v1/alerts").await.expect("/api/v1/alerts");
    let alerts = answer["data"]["alerts"].as_array().cloned().unwrap_or_default();
    alerts
        .into_iter()
        .map(|a| (a["labels"]["alertname"].as_str().unwrap_or_default().to_owned(), a["labels"].clone()))
        .collect()
}

/// `alert` firing with `kind` (any, when empty); how long it took.
pub async fn firing(base: &str, alert: &str, kind: &str) -> Duration {
    let (_, took) = until(&format!("{alert} firing for {kind}"), ALERT_WAIT, async || {
        let alerts = get(base, "/api/v1/alerts").await?;
        let fires = alerts["data"]["alerts"].as_array()?.iter().any(|a| {
            a["labels"]["alertname"] == alert
                && (kind.is_empty() || a["labels"]["kind"] == kind)
                && a["state"] == "firing"
        });
        fires.then_some(())
    })
    .await;
    took
}

fn urlencode(query: &str) -> String {
    query
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b == b'_' { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}
