//! The guard as an HTTP proxy for yt-dlp: every connection it makes (the
//! page, each redirect, the media, an extractor's API calls) goes through
//! here, and only to a permitted address; a private one is answered 403 and
//! remembered, so the fetch's failure can say why. It also caps the bytes a
//! fetch may bring in, whatever the site says of its size.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::guard::{Guard, Refused};

/// The most a request head may take.
const MAX_HEAD: usize = 16 * 1024;

struct State {
    guard: Guard,
    max_bytes: u64,
    received: AtomicU64,
    over_cap: AtomicBool,
    refused: Mutex<Option<Refused>>,
}

/// A proxy on loopback for one fetch; stops when dropped.
pub struct GuardProxy {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl GuardProxy {
    pub async fn start(guard: Guard, max_bytes: u64) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            guard,
            max_bytes,
            received: AtomicU64::new(0),
            over_cap: AtomicBool::new(false),
            refused: Mutex::new(None),
        });
        let serving = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let state = serving.clone();
                tokio::spawn(async move {
                    if let Err(e) = relay(&state, client).await {
                        tracing::debug!(error = %e, "link proxy connection ended");
                    }
                });
            }
        });
        Ok(GuardProxy { addr, state, task })
    }

    /// The value for yt-dlp's `--proxy`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The first destination refused, if any was.
    pub fn refused(&self) -> Option<Refused> {
        self.state.refused.lock().expect("not poisoned").clone()
    }

    /// Whether the fetch was cut off at `max_bytes`.
    pub fn over_cap(&self) -> bool {
        self.state.over_cap.load(Ordering::SeqCst)
    }
}

impl Drop for GuardProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One client connection: a `CONNECT host:port` tunnel, or one plain HTTP
/// request in absolute form, sent on with `Connection: close`.
async fn relay(state: &State, mut client: TcpStream) -> std::io::Result<()> {
    let (head, body_start) = read_head(&mut client).await?;
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split_whitespace();
    let (method, target, version) =
        (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (host, port, forwarded) = if method.eq_ignore_ascii_case("CONNECT") {
        let (host, port) = target.rsplit_once(':').unwrap_or((target, "443"));
        (host.to_owned(), port.parse().unwrap_or(443), None)
    } else {
        let Ok(url) = url::Url::parse(target) else { return answer(&mut client, "400 Bad Request").await };
        if url.scheme() != "http" {
            return answer(&mut client, "400 Bad Request").await;
        }
        let path = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        let headers: Vec<&str> = lines
            .filter(|l| !l.is_empty())
            .filter(|l| {
                let name = l.split(':').next().unwrap_or_default().trim().to_ascii_lowercase();
                !matches!(name.as_str(), "connection" | "proxy-connection" | "proxy-authorization" | "keep-alive")
            })
            .collect();
        let rewritten = format!("{method} {path} {version}\r\n{}\r\nConnection: close\r\n\r\n", headers.join("\r\n"));
        let host = url.host_str().unwrap_or_default().to_owned();
        (host, url.port_or_known_default().unwrap_or(80), Some(rewritten))
    };
    let addr = match state.guard.resolve(&host, port).await {
        Ok(addr) => addr,
        Err(refused) => {
            tracing::warn!(host, error = %refused, "a link led to an address it may not; refused");
            state.refused.lock().expect("not poisoned").get_or_insert(refused);
            return answer(&mut client, "403 Forbidden").await;
        }
    };
    let mut upstream = TcpStream::connect(addr).await?;
    match forwarded {
        Some(head) => {
            upstream.write_all(head.as_bytes()).await?;
            upstream.write_all(&body_start).await?;
        }
        None => client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await?,
    }
    let (mut client_read, mut client_write) = client.into_split();
    let (mut upstream_read, mut upstream_write) = upstream.into_split();
    let sending = async {
        let _ = tokio::io::copy(&mut client_read, &mut upstream_write).await;
        let _ = upstream_write.shutdown().await;
    };
    let receiving = async {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = match upstream_read.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if state.received.fetch_add(n as u64, Ordering::SeqCst) + n as u64 > state.max_bytes {
                state.over_cap.store(true, Ordering::SeqCst);
                break;
            }
            if client_write.write_all(&buffer[..n]).await.is_err() {
                break;
            }
        }
        let _ = client_write.shutdown().await;
    };
    // Whichever side ends first ends the relay: an upstream that is done
    // (or over the cap) must not wait on a client that keeps its side open.
    tokio::select! {
        () = receiving => {}
        () = async { sending.await; std::future::pending::<()>().await } => {}
    }
    Ok(())
}

/// The request head, and whatever of the body came with it.
async fn read_head(client: &mut TcpStream) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    let mut buffer = Vec::with_capacity(2048);
    let mut chunk = [0u8; 2048];
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buffer.split_off(end + 4);
            buffer.truncate(end);
            return Ok((buffer, rest));
        }
        if buffer.len() > MAX_HEAD {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "request head too large"));
        }
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
}

async fn answer(client: &mut TcpStream, status: &str) -> std::io::Result<()> {
    let reply = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    client.write_all(reply.as_bytes()).await
}
