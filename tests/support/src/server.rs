//! The smallest hyper server: bind a loopback port (or, for containers, the
//! address `set_bind_ip` names), answer with a closure.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// A request with its body read, which is all a fake needs.
#[derive(Debug, Clone)]
pub struct FakeRequest {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Who sent it (tells replicas apart).
    pub peer: SocketAddr,
}

impl FakeRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn query_param(&self, name: &str) -> Option<String> {
        let query = self.query.as_deref()?;
        url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }
}

pub type Reply = Response<Full<Bytes>>;
pub type Handler = Arc<dyn Fn(FakeRequest) -> Pin<Box<dyn Future<Output = Reply> + Send>> + Send + Sync>;

pub fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Reply {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(Full::new(body.into()))
        .expect("valid response")
}

pub fn json_reply(status: StatusCode, value: &serde_json::Value) -> Reply {
    reply(status, "application/json", value.to_string())
}

static BIND_IP: std::sync::RwLock<Option<std::net::IpAddr>> = std::sync::RwLock::new(None);

/// Makes every fake started after this listen on `ip` (and put it in the
/// URLs it hands out) instead of loopback: the stack test binds them on the
/// container bridge, so the containers reach them and the network does not.
pub fn set_bind_ip(ip: std::net::IpAddr) {
    *BIND_IP.write().unwrap() = Some(ip);
}

/// Binds a port, so a fake knows its own address before it serves.
pub async fn bind() -> (TcpListener, SocketAddr) {
    let ip = BIND_IP.read().unwrap().unwrap_or(std::net::Ipv4Addr::LOCALHOST.into());
    let listener = TcpListener::bind((ip, 0)).await.expect("bind a port for a fake");
    let addr = listener.local_addr().expect("local addr");
    (listener, addr)
}

/// Starts a fake: `make` builds it knowing its own address, then every
/// request goes to `handle` with a clone of it.
pub async fn start_fake<T, F, Fut>(make: impl FnOnce(SocketAddr) -> T, handle: F) -> T
where
    T: Clone + Send + Sync + 'static,
    F: Fn(T, FakeRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    let (listener, addr) = bind().await;
    let fake = make(addr);
    let this = fake.clone();
    let handle = Arc::new(handle);
    let handler: Handler = Arc::new(move |req| {
        let (this, handle) = (this.clone(), handle.clone());
        Box::pin(async move { handle(this, req).await })
    });
    serve_on(listener, handler);
    fake
}

/// Binds a loopback port and serves on it.
pub async fn serve(handler: Handler) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let (listener, addr) = bind().await;
    (addr, serve_on(listener, handler))
}

/// Serves until the returned task is aborted (or the test's runtime ends).
pub fn serve_on(listener: TcpListener, handler: Handler) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else { continue };
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let handler = handler.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        let request = FakeRequest {
                            method: parts.method,
                            path: parts.uri.path().to_owned(),
                            query: parts.uri.query().map(str::to_owned),
                            headers: parts.headers,
                            body,
                            peer,
                        };
                        Ok::<_, Infallible>(handler(request).await)
                    }
                });
                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    })
}

/// Parses a multipart/form-data body into text fields and file parts.
pub async fn multipart_fields(request: &FakeRequest) -> Option<Vec<Part>> {
    let content_type = request.header("content-type")?;
    let boundary = multer::parse_boundary(content_type).ok()?;
    let body = request.body.clone();
    let stream = futures::stream::once(async move { Ok::<_, Infallible>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut parts = Vec::new();
    while let Ok(Some(field)) = multipart.next_field().await {
        let name = field.name().unwrap_or_default().to_owned();
        let file_name = field.file_name().map(str::to_owned);
        let content_type = field.content_type().map(|m| m.to_string());
        let data = field.bytes().await.ok()?;
        parts.push(Part { name, file_name, content_type, data });
    }
    Some(parts)
}

#[derive(Debug, Clone)]
pub struct Part {
    pub name: String,
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub data: Bytes,
}
