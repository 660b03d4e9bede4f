//! WebhookListener: the hyper server on `http.webhook_bind` that takes FAL
//! callbacks, serves signed file links, and (with `telegram.webhook_secret`)
//! takes Telegram updates through the same intake as the poller. Binding happens in
//! `pre_start`, so a port that cannot be bound is a failed start the
//! supervisor retries with backoff.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

mod files;
mod telegram;

use http::{Method, StatusCode};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::fal_job::callback::Callbacks;
use crate::http::{text, Handler, Reply, Request, Server};
use crate::intake::Intake;
use crate::services::Services;

pub struct WebhookListener;

pub enum WebhookMsg {}

pub struct WebhookState {
    addr: SocketAddr,
    intake: Option<Arc<Intake>>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    /// Reads getWebhookInfo while our webhook is registered with Telegram.
    webhook_info: Option<JoinHandle<()>>,
}

impl WebhookState {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

/// How long a stopping listener lets in-flight callbacks finish.
const DRAIN: Duration = Duration::from_secs(10);

impl Actor for WebhookListener {
    type Msg = WebhookMsg;
    type State = WebhookState;
    type Arguments = Services;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        services: Services,
    ) -> Result<Self::State, ActorProcessingErr> {
        let intake = telegram::telegram_intake(myself.get_cell(), &services).await?;
        let (telegram, bot) = (services.settings.telegram.clone(), services.telegram.clone());
        if services.settings.fal.user_id.is_empty() {
            tracing::warn!("fal.user_id is not set: FAL callbacks signed for any FAL account are accepted");
        }
        let bind = services.settings.http.webhook_bind;
        let server = Server::bind(bind, services.settings.http.max_connections)
            .await
            .map_err(|e| format!("webhook listener cannot bind {bind}: {e}"))?;
        let addr = server.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let handler = routes(Arc::new(services), intake.clone());
        let task = tokio::spawn(server.serve(
            handler,
            async move {
                let _ = stopped.await;
            },
            DRAIN,
        ));
        tracing::info!(%addr, "webhook listener accepting");
        let webhook_info =
            (intake.is_some() && !telegram.webhook_url.is_empty()).then(|| telegram::watch_webhook_info(bot));
        Ok(WebhookState { addr, intake, stop: Some(stop), server: Some(task), webhook_info })
    }

    async fn post_stop(&self, _myself: ActorRef<Self::Msg>, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        if let Some(stop) = state.stop.take() {
            let _ = stop.send(());
        }
        if let Some(watch) = state.webhook_info.take() {
            watch.abort();
        }
        if let Some(task) = state.server.take() {
            let _ = task.await;
        }
        if let Some(intake) = state.intake.take() {
            intake.drain().await;
        }
        tracing::info!(addr = %state.addr, "webhook listener stopped");
        Ok(())
    }
}

struct Routes {
    services: Services,
    intake: Option<Arc<Intake>>,
    fal: Callbacks,
}

fn routes(services: Arc<Services>, intake: Option<Arc<Intake>>) -> Handler {
    let fal = Callbacks::start(&services.db, &services.settings);
    let routes = Arc::new(Routes { services: (*services).clone(), intake, fal });
    Arc::new(move |req: Request| {
        let routes = routes.clone();
        Box::pin(async move { routes.route(req).await })
    })
}

impl Routes {
    async fn route(&self, req: Request) -> Reply {
        let path = req.uri().path().to_owned();
        match (req.method(), path.as_str()) {
            (&Method::GET, "/") => text(StatusCode::OK, "aishad webhook listener\n"),
            (&Method::POST, "/webhooks/fal") => self.fal.take(&self.services.settings, req).await,
            (_, "/webhooks/fal") => text(StatusCode::METHOD_NOT_ALLOWED, "POST only\n"),
            (&Method::GET, p) if p.starts_with("/files/") => files::serve(&self.services, &p["/files/".len()..]).await,
            (&Method::POST, "/webhooks/telegram") => match &self.intake {
                Some(intake) => telegram::update(&self.services.settings, intake, req).await,
                None => text(StatusCode::NOT_FOUND, "not found\n"),
            },
            _ => text(StatusCode::NOT_FOUND, "not found\n"),
        }
    }
}
