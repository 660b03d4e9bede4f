//! A small hyper server loop shared by the webhook listener and the telemetry
//! port: bounded bodies read within a time limit, headers within another, a
//! cap on open connections, plain-text/JSON responses, graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

pub type Request = http::Request<Incoming>;
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// A response body: whole, or streamed (a file never sits in memory whole).
pub type Body = BoxBody<Bytes, BoxError>;
pub type Reply = Response<Body>;
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
pub type Handler = Arc<dyn Fn(Request) -> BoxFuture<Reply> + Send + Sync>;

/// A body held whole.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

/// A body sent as its chunks arrive.
pub fn streamed<S, E>(chunks: S) -> Body
where
    S: futures::Stream<Item = Result<Bytes, E>> + Send + Sync + 'static,
    E: Into<BoxError> + 'static,
{
    use futures::TryStreamExt;
    StreamBody::new(chunks.map_ok(hyper::body::Frame::data).map_err(Into::into)).boxed()
}

pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Reply {
    let mut reply = Response::builder().status(status).header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8");
    if status.is_client_error() {
        // A refusal may leave the body unread; then the connection cannot be
        // reused, and saying so keeps a client from sending on a closing socket.
        reply = reply.header(http::header::CONNECTION, "close");
    }
    reply.body(full(body)).expect("static response parts are valid")
}

pub fn json(status: StatusCode, value: &serde_json::Value) -> Reply {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(full(value.to_string()))
        .expect("static response parts are valid")
}

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("body larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("could not read the body: {0}")]
    Read(String),
    #[error("the body did not arrive within {0:?}")]
    Timeout(Duration),
}

impl BodyError {
    pub fn status(&self) -> StatusCode {
        match self {
            BodyError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::Read(_) => StatusCode::BAD_REQUEST,
            BodyError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
        }
    }
}

/// How long a client may take to send a body (a slow sender holds a connection).
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request's headers, and how long an
/// idle keep-alive connection stays open.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads the whole body within [`BODY_TIMEOUT`], refusing more than `limit`
/// bytes (checked against `Content-Length` first, so an honest large upload
/// is refused unread).
pub async fn read_body(req: Request, limit: usize) -> Result<(http::request::Parts, Bytes), BodyError> {
    tokio::time::timeout(BODY_TIMEOUT, read_body_untimed(req, limit))
        .await
        .unwrap_or(Err(BodyError::Timeout(BODY_TIMEOUT)))
}

async fn read_body_untimed(req: Request, limit: usize) -> Result<(http::request::Parts, Bytes), BodyError> {
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok((parts, collected.to_bytes())),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(BodyError::TooLarge { limit }),
        Err(e) => Err(BodyError::Read(e.to_string())),
    }
}

/// A bound listener; `serve` runs it until `shutdown` resolves, then lets
/// in-flight requests finish for up to `drain`. At most `max_connections`
/// are open at once; more wait in the kernel's backlog.
pub struct Server {
    listener: TcpListener,
    connections: Arc<tokio::sync::Semaphore>,
}

impl Server {
    pub async fn bind(addr: SocketAddr, max_connections: usize) -> std::io::Result<Self> {
        let connections = Arc::new(tokio::sync::Semaphore::new(max_connections.max(1)));
        Ok(Self { listener: TcpListener::bind(addr).await?, connections })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub async fn serve(self, handler: Handler, shutdown: impl Future<Output = ()>, drain: Duration) {
        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                permit = self.connections.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
                _ = &mut shutdown => break,
            };
            let (stream, _peer) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // EMFILE and friends pass; don't spin on them.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = &mut shutdown => break,
            };
            let handler = handler.clone();
            let service = service_fn(move |req| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(handler(req).await) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            let conn = graceful.watch(conn);
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                drop(permit);
            });
        }
        drop(self.listener);
        if tokio::time::timeout(drain, graceful.shutdown()).await.is_err() {
            tracing::warn!(?drain, "in-flight HTTP requests did not finish in time");
        }
    }
}
