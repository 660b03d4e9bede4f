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
        "/metrics" => Response::builder()
            .header(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")
            .body(full(telemetry.metrics.render()))
            .expect("static response parts are valid"),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

async fn readiness(telemetry: &Telemetry) -> Reply {
    let services = &telemetry.services;
    let (postgres, redis, s3) = tokio::join!(services.db.ping(), services.redis.ping(), services.blob.ping());
    let verdict = |r: &Result<(), String>| match r {
        Ok(()) => json!("ok"),
        Err(e) => json!(e),
    };
    let postgres = postgres.map_err(|e| e.to_string());
    let redis = redis.map_err(|e| e.to_string());
    let s3 = s3.map_err(|e| e.to_string());
    let ready = telemetry.health.all_running() && postgres.is_ok() && redis.is_ok() && s3.is_ok();
    let body = json!({
        "ready": ready,
        "tree_started": telemetry.health.tree_started(),
        "children": telemetry.health.children(),
        "postgres": verdict(&postgres),
        "redis": verdict(&redis),
        "s3": verdict(&s3),
    });
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    json(status, &body)
}
