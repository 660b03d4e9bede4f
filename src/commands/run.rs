//! `aishad run`: telemetry first (so /healthz answers during start-up), then
//! wait for the database and the bucket with backoff, then the actor tree,
//! then wait for a signal or for the tree to give up.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aisha_actors::backoff::Backoff;
use aisha_actors::error::chain;
use aisha_actors::services::Services;
use aisha_actors::settings::Settings;
use ractor::Actor;
use tokio::sync::watch;

use crate::exit;
use crate::health::Health;
use crate::roles;
use crate::supervisor::{Outcome, Policy, RootSupervisor, SupervisorArgs, SupervisorMsg};
use crate::telemetry::{self, server::Telemetry};

const DEPENDENCY_RETRY: Backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));

pub async fn run(settings: Settings) -> i32 {
    let settings = Arc::new(settings);
    let services = match Services::new(settings.clone()) {
        Ok(services) => services,
        Err(e) => {
            eprintln!("aishad: config error: {e}");
            return exit::CONFIG;
        }
    };
    let health = Arc::new(Health::default());
    let (stop_telemetry, telemetry_stopped) = watch::channel(false);
    let telemetry = Telemetry { health: health.clone(), services: services.clone(), metrics: telemetry::metrics() };
    telemetry::register_counters(settings.mode);
    telemetry::register_setting_gauges(&settings);
    let bind = settings.http.telemetry_bind;
    let (telemetry_addr, telemetry_task) =
        match telemetry::server::spawn(bind, telemetry, wait_true(telemetry_stopped)).await {
            Ok(pair) => pair,
            Err(e) => {
                tracing::error!(%bind, error = %e, "cannot bind the telemetry port");
                return exit::UNAVAILABLE;
            }
        };
    tracing::info!(
        mode = %settings.mode,
        instance_id = %settings.instance_id,
        telemetry = %telemetry_addr,
        version = env!("CARGO_PKG_VERSION"),
        "aishad starting"
    );

    let signal = shutdown_signal();
    tokio::pin!(signal);
    let code = tokio::select! {
        _ = bootstrap(&services) => supervise(&settings, &services, health, &mut signal).await,
        _ = &mut signal => {
            tracing::info!("signal received during start-up; exiting");
            0
        }
    };

    let _ = stop_telemetry.send(true);
    let _ = telemetry_task.await;
    services.redis.quit().await;
    tracing::info!(exit_code = code, "aishad stopped");
    code
}

async fn supervise(
    settings: &Settings,
    services: &Services,
    health: Arc<Health>,
    signal: &mut (impl Future<Output = ()> + Unpin),
) -> i32 {
    let children = match roles::children(settings.mode, services) {
        Ok(children) => children,
        Err(e) => {
            eprintln!("aishad: config error: {e}");
            return exit::CONFIG;
        }
    };
    let outcome = Arc::new(OnceLock::new());
    let args =
        SupervisorArgs { children, policy: Policy::from(&settings.supervisor), health, outcome: outcome.clone() };
    let (supervisor, join) = match Actor::spawn(None, RootSupervisor, args).await {
        Ok(pair) => pair,
        Err(e) => {
            tracing::error!(error = %e, "root supervisor failed to start");
            return exit::SOFTWARE;
        }
    };
    tokio::pin!(join);
    tokio::select! {
        _ = &mut join => {}
        _ = signal => {
            tracing::info!(grace = ?settings.supervisor.shutdown_grace, "signal received; draining");
            let _ = supervisor.cast(SupervisorMsg::Shutdown(None));
            // The supervisor bounds each child by the grace period; this bounds the supervisor.
            let limit = settings.supervisor.shutdown_grace + Duration::from_secs(5);
            if tokio::time::timeout(limit, &mut join).await.is_err() {
                tracing::error!("supervisor did not stop in time");
                supervisor.kill();
            }
        }
    }
    match outcome.get() {
        Some(outcome @ Outcome::RestartIntensityExceeded { child }) => {
            tracing::error!(child, "exiting after too many restarts");
            outcome.exit_code()
        }
        Some(outcome) => outcome.exit_code(),
        None => exit::SOFTWARE,
    }
}

/// Waits until PostgreSQL is migrated (or reachable) and the bucket exists,
/// logging each failed attempt with the host, never the credentials.
async fn bootstrap(services: &Services) {
    let db = &services.db;
    retry_until_ok("postgres", db.host(), || async {
        if services.settings.database.migrate_on_start {
            let report = db.migrate().await?;
            tracing::info!(applied = report.applied.len(), already = report.already, "database migrated");
        } else {
            db.ping().await?;
        }
        Ok::<_, aisha_actors::store::StoreError>(())
    })
    .await;
    let wanted = services.settings.database.min_connections;
    if wanted > 0 {
        let open = db.warm(wanted).await;
        tracing::info!(wanted, open, "database connections opened ahead of the work");
    }
    let s3_host = services.settings.s3.endpoint.clone();
    retry_until_ok("s3", &s3_host, || services.blob.ensure_bucket()).await;
}

pub async fn retry_until_ok<F, Fut, E>(service: &str, host: &str, mut op: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: std::error::Error,
{
    for attempt in 0u32.. {
        match op().await {
            Ok(()) => return,
            Err(e) => {
                let delay = DEPENDENCY_RETRY.delay(attempt);
                tracing::warn!(service, host, attempt = attempt + 1, retry_in = ?delay, error = %chain(&e), "dependency not reachable; retrying");
                metrics::counter!("aishad_dependency_retries_total", "service" => service.to_owned()).increment(1);
                tokio::time::sleep(delay).await;
            }
        }
    }
}

async fn wait_true(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM; only SIGINT will stop aishad");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
