//! TCP forwarders to the real services: how containers on the podman
//! bridge reach the loopback-only services (tests/stack), and how a test
//! takes a service away from one daemon without taking it from the rest of
//! the suite (`cut`, then `restore`).

use std::net::{IpAddr, SocketAddr};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Forwarder {
    pub addr: SocketAddr,
    up: watch::Sender<bool>,
}

impl Forwarder {
    /// Listens on `ip` (a port of its own) and pipes every connection to `target`.
    pub async fn start(ip: IpAddr, target: SocketAddr) -> Self {
        let listener = TcpListener::bind((ip, 0)).await.expect("bind a forwarder");
        let addr = listener.local_addr().expect("forwarder address");
        let (up, watching) = watch::channel(true);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut up = watching.clone();
                if !*up.borrow() {
                    continue; // dropped: connection refused, as by a dead server
                }
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = up.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Self { addr, up }
    }

    /// The service is gone: open connections drop, new ones are closed at once.
    pub fn cut(&self) {
        self.up.send_replace(false);
    }

    pub fn restore(&self) {
        self.up.send_replace(true);
    }
}

/// A forwarder for the whole test run.
pub async fn forward(ip: IpAddr, target: SocketAddr) -> SocketAddr {
    let forwarder = Forwarder::start(ip, target).await;
    let addr = forwarder.addr;
    std::mem::forget(forwarder.up);
    addr
}

/// `host:port` of a URL such as `postgres://u:p@127.0.0.1:55432/db` or `127.0.0.1:58333`.
pub fn target_of(url: &str) -> SocketAddr {
    let rest = url.split("://").last().unwrap_or(url);
    let host_port = rest.rsplit('@').next().unwrap_or(rest).split('/').next().unwrap_or(rest);
    host_port.parse().unwrap_or_else(|_| panic!("{url:?} does not name an ip:port"))
}
