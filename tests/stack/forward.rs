//! The host's services as containers see "external services": TCP
//! forwarders from the podman bridge to the loopback-only PostgreSQL, Redis
//! and S3 that scripts/services.sh runs (which stay off the network).

use std::net::{IpAddr, SocketAddr};

use tokio::net::{TcpListener, TcpStream};

/// Listens on `ip` (a port of its own) and pipes every connection to `target`.
pub async fn forward(ip: IpAddr, target: SocketAddr) -> SocketAddr {
    let listener = TcpListener::bind((ip, 0)).await.expect("bind a forwarder");
    let addr = listener.local_addr().expect("forwarder address");
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    addr
}

/// `host:port` of a URL such as `postgres://u:p@127.0.0.1:55432/db` or `127.0.0.1:58333`.
pub fn target_of(url: &str) -> SocketAddr {
    let rest = url.split("://").last().unwrap_or(url);
    let host_port = rest.rsplit('@').next().unwrap_or(rest).split('/').next().unwrap_or(rest);
    host_port.parse().unwrap_or_else(|_| panic!("{url:?} does not name an ip:port"))
}
