//! The telemetry port: `/healthz` (the process answers), `/readyz` (every
//! required child running, PostgreSQL and Redis reachable), `/metrics`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aisha_actors::http::{full, json, text, Handler, Reply, Request, Server};
use aisha_actors::services::Services;
use http::{Method, Response, StatusCode};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use tokio::task::JoinHandle;

use crate::health::Health;

#[derive(Clone)]
pub struct Telemetry {
    pub health: Arc<Health>,
    pub services: Services,
    pub metrics: PrometheusHandle,
}

pub async fn spawn(
    bind: SocketAddr,
    telemetry: Telemetry,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let server = Server::bind(bind, 64).await?;
    let addr = server.local_addr()?;
    let telemetry = Arc::new(telemetry);
    let handler: Handler = Arc::new(move |req: Request| {
        let telemetry = telemetry.clone();
        Box::pin(async move { route(&telemetry, req).await })
    });
    let task = tokio::spawn(server.serve(handler, shutdown, Duration::from_secs(2)));
    Ok((addr, task))
}

async fn route(telemetry: &Telemetry, req: Request) -> Reply {
    if req.method() != Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
    }
    match req.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" => readiness(telemetry).await,
        "/metrics" => {
            record(telemetry, &check(telemetry).await);
            Response::builder()
                .header(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")
                .body(full(telemetry.metrics.render()))
                .expect("static response parts are valid")
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// Whether the role's actors run and its dependencies answer.
struct Checked {
    ready: bool,
    postgres: Result<(), String>,
    redis: Result<(), String>,
    s3: Result<(), String>,
}

async fn check(telemetry: &Telemetry) -> Checked {
    let services = &telemetry.services;
    let (postgres, redis, s3) = tokio::join!(services.db.ping(), services.redis.ping(), services.blob.ping());
    let postgres = postgres.map_err(|e| e.to_string());
    let redis = redis.map_err(|e| e.to_string());
    let s3 = s3.map_err(|e| e.to_string());
    let ready = telemetry.health.all_running() && postgres.is_ok() && redis.is_ok() && s3.is_ok();
    Checked { ready, postgres, redis, s3 }
}

/// What a scrape says of readiness (as `/readyz` would answer now) and of
/// the settings the alert rules compare against.
fn record(telemetry: &Telemetry, checked: &Checked) {
    let up = |r: &Result<(), String>| if r.is_ok() { 1.0 } else { 0.0 };
    metrics::gauge!("aishad_ready").set(if checked.ready { 1.0 } else { 0.0 });
    for (service, result) in [("postgres", &checked.postgres), ("redis", &checked.redis), ("s3", &checked.s3)] {
        metrics::gauge!("aishad_dependency_up", "service" => service).set(up(result));
    }
    let settings = &telemetry.services.settings;
    metrics::gauge!("aishad_updates_pending_max").set(settings.intake.max_pending as f64);
    metrics::gauge!("aishad_build_info", "version" => env!("CARGO_PKG_VERSION"), "mode" => settings.mode.to_string())
        .set(1.0);
    if let Some(bytes) = resident_bytes() {
        metrics::gauge!("aishad_process_resident_memory_bytes").set(bytes as f64);
    }
}

/// This process's resident set, from `/proc/self/status` (Linux).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

async fn readiness(telemetry: &Telemetry) -> Reply {
    let checked = check(telemetry).await;
    let verdict = |r: &Result<(), String>| match r {
        Ok(()) => json!("ok"),
        Err(e) => json!(e),
    };
    let body = json!({
        "ready": checked.ready,
        "tree_started": telemetry.health.tree_started(),
        "children": telemetry.health.children(),
        "postgres": verdict(&checked.postgres),
        "redis": verdict(&checked.redis),
        "s3": verdict(&checked.s3),
    });
    let status = if checked.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    json(status, &body)
}
