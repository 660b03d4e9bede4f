//! A "host" of its own for a test: a network namespace joined to this one
//! by a veth pair (10.231.N.1 here, 10.231.N.2 there). The services and
//! fakes listen on loopback, so each is reached from the host through a
//! forwarder on 10.231.N.1. `cut` takes the host's link down, as a pulled
//! cable or a partition does: packets vanish, no connection is refused or
//! reset, and what was open stays open until the link comes back.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;

use crate::forward::forward;
use crate::Daemon;

/// 192.88.99.0/24 was the 6to4 relay anycast prefix, deprecated by RFC 7526
/// and answered by nobody: public by the links guard's rules (as by the
/// standard library's `is_global`), so a site a test serves there is one the
/// production profile fetches from.
pub const SITE_ADDRESS: Ipv4Addr = Ipv4Addr::new(192, 88, 99, 10);

pub struct Host {
    pub name: String,
    /// Our side of the link: what the host reaches us at.
    pub gateway: Ipv4Addr,
    /// The host's own address.
    pub addr: Ipv4Addr,
    veth: String,
}

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().expect("ip (iproute2)");
    assert!(status.success(), "ip {}", args.join(" "));
}

/// `ip` for cleaning up: what is already gone is fine.
fn quietly(args: &[&str]) {
    let _ = Command::new("ip").args(args).stderr(std::process::Stdio::null()).status();
}

impl Host {
    /// A new host; `subnet` (1–254) must be unique among the tests running at once.
    pub fn create(label: &str, subnet: u8) -> Self {
        let name = format!("aisha-{label}-{}", std::process::id());
        let veth = format!("vh{subnet}p{}", std::process::id() % 100_000);
        let peer = format!("vn{subnet}p{}", std::process::id() % 100_000);
        let gateway = Ipv4Addr::new(10, 231, subnet, 1);
        let addr = Ipv4Addr::new(10, 231, subnet, 2);
        quietly(&["netns", "del", &name]);
        ip(&["netns", "add", &name]);
        let host = Self { name, gateway, addr, veth };
        ip(&["link", "add", &host.veth, "type", "veth", "peer", "name", &peer]);
        ip(&["link", "set", &peer, "netns", &host.name]);
        ip(&["addr", "add", &format!("{gateway}/30"), "dev", &host.veth]);
        ip(&["link", "set", &host.veth, "up"]);
        host.exec(&["ip", "addr", "add", &format!("{addr}/30"), "dev", &peer]);
        host.exec(&["ip", "link", "set", &peer, "up"]);
        host.exec(&["ip", "link", "set", "lo", "up"]);
        host
    }

    fn exec(&self, command: &[&str]) {
        let mut args = vec!["netns", "exec", self.name.as_str()];
        args.extend_from_slice(command);
        ip(&args);
    }

    /// Where the host reaches `target` (a loopback service): a forwarder on our side of the link.
    pub async fn reach(&self, target: SocketAddr) -> SocketAddr {
        forward(IpAddr::V4(self.gateway), target).await
    }

    /// `url` with its loopback `ip:port` replaced by the forwarder the host reaches it through.
    pub async fn url(&self, url: &str) -> String {
        let target = crate::forward::target_of(url);
        url.replacen(&target.to_string(), &self.reach(target).await.to_string(), 1)
    }

    /// Pulls the cable.
    pub fn cut(&self) {
        ip(&["link", "set", &self.veth, "down"]);
    }

    pub fn restore(&self) {
        ip(&["link", "set", &self.veth, "up"]);
    }

    /// Gives this host `public` as well, routed here from this namespace
    /// (a host route over the link): for a test that must reach it at an
    /// address the links guard counts public. Use one nobody on the
    /// Internet answers at (see `SITE_ADDRESS`); packets for it never leave
    /// this machine.
    pub fn publish(&self, public: Ipv4Addr) {
        let peer = self.peer();
        self.exec(&["ip", "addr", "add", &format!("{public}/32"), "dev", &peer]);
        ip(&["route", "add", &format!("{public}/32"), "via", &self.addr.to_string(), "dev", &self.veth]);
    }

    /// A program run on this host (`ip netns exec`), its output discarded.
    pub fn spawn(&self, program: &[&str]) -> std::process::Child {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(program)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("ip netns exec")
    }

    fn peer(&self) -> String {
        self.veth.replacen("vh", "vn", 1)
    }

    /// Runs `aishad` on this host (see [`Daemon::start`]).
    pub fn start_daemon(&self, bin: &Path, args: &[&str], env: &[(String, String)]) -> Daemon {
        Daemon::start_in_namespace(Some(&self.name), bin, args, env)
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        // Deleting the namespace deletes its end of the pair, and with it ours.
        quietly(&["netns", "del", &self.name]);
        quietly(&["link", "del", &self.veth]);
    }
}
