//! `aishad health`: Docker's HEALTHCHECK. Exit 0 only when `/healthz` (or,
//! with `--ready`, `/readyz`) answers 200 within 2 s. Plain HTTP/1.1 over a
//! socket: no client stack to fail.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TIMEOUT: Duration = Duration::from_secs(2);

/// The URL to probe when none is given: the telemetry bind, with a wildcard
/// address replaced by loopback.
pub fn default_url(bind: SocketAddr) -> String {
    let host = match bind.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_owned(),
        ip if ip.is_unspecified() => "[::1]".to_owned(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    format!("http://{host}:{}", bind.port())
}

pub async fn probe(base: &str, ready: bool) -> Result<(), String> {
    let path = if ready { "/readyz" } else { "/healthz" };
    let url = url::Url::parse(base).map_err(|e| format!("invalid --url {base:?}: {e}"))?;
    if url.scheme() != "http" {
        return Err(format!("only http:// is supported, got {base:?}"));
    }
    let host = url.host_str().ok_or("the URL has no host")?.to_owned();
    let port = url.port_or_known_default().unwrap_or(80);
    let request = async {
        let mut stream = TcpStream::connect((host.trim_matches(['[', ']']), port)).await.map_err(|e| e.to_string())?;
        let head = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        stream.write_all(head.as_bytes()).await.map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; 64];
        let n = stream.read(&mut buf).await.map_err(|e| e.to_string())?;
        let status_line = String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or_default().to_owned();
        match status_line.split_whitespace().nth(1) {
            Some("200") => Ok(()),
            _ => Err(format!("unhealthy: {status_line:?}")),
        }
    };
    tokio::time::timeout(TIMEOUT, request).await.map_err(|_| format!("no answer within {TIMEOUT:?}"))?
}
