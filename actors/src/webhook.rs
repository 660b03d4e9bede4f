//! WebhookListener: the hyper server on `http.webhook_bind` that takes FAL
//! callbacks (and, optionally, Telegram updates). Binding happens in
//! `pre_start`, so a port that cannot be bound is a failed start the
//! supervisor retries with backoff.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::http::{text, Handler, Reply, Request, Server};
use crate::services::Services;

pub struct WebhookListener;

pub enum WebhookMsg {}

pub struct WebhookState {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
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
        _myself: ActorRef<Self::Msg>,
        services: Services,
    ) -> Result<Self::State, ActorProcessingErr> {
        let bind = services.settings.http.webhook_bind;
        let server = Server::bind(bind)
            .await
            .map_err(|e| format!("webhook listener cannot bind {bind}: {e}"))?;
        let addr = server.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let handler = routes(Arc::new(services));
        let task = tokio::spawn(server.serve(
            handler,
            async move {
                let _ = stopped.await;
            },
            DRAIN,
        ));
        tracing::info!(%addr, "webhook listener accepting");
        Ok(WebhookState { addr, stop: Some(stop), server: Some(task) })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(stop) = state.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = state.server.take() {
            let _ = task.await;
        }
        tracing::info!(addr = %state.addr, "webhook listener stopped");
        Ok(())
    }
}

fn routes(services: Arc<Services>) -> Handler {
    Arc::new(move |req: Request| {
        let _services = services.clone();
        Box::pin(async move { route(req).await })
    })
}

async fn route(req: Request) -> Reply {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/") => text(StatusCode::OK, "aishad webhook listener\n"),
        (_, "/webhooks/fal") | (_, "/webhooks/telegram") => {
            text(StatusCode::SERVICE_UNAVAILABLE, "not accepting callbacks yet\n")
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}
