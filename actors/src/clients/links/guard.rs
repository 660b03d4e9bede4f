//! No server-side request forgery: a link may only lead to a public
//! address. Checked on the addresses a name resolves to (every one: a name
//! that also resolves somewhere private is refused as a whole), and the
//! connection made to the address checked, so DNS cannot change its answer
//! in between. Redirects pass through the same check (see `proxy`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;

/// Why a destination is refused, for the user and the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("{host} is a private, loopback, link-local or metadata address")]
    Private { host: String },
    #[error("{host} does not resolve")]
    Unresolved { host: String },
    #[error("only http and https links are fetched")]
    Scheme,
}

/// The addresses links may lead to: public ones, and in the test profile
/// also the ranges `links.allow_ranges` names.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    allowed: Vec<IpNet>,
}

impl Guard {
    /// `allow`: CIDR ranges allowed despite being private (tests' local servers).
    pub fn new(allow: &[String]) -> Result<Self, String> {
        let allowed = allow
            .iter()
            .map(|range| range.parse::<IpNet>().map_err(|e| format!("links.allow_ranges: {range}: {e}")))
            .collect::<Result<_, _>>()?;
        Ok(Guard { allowed })
    }

    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.allowed.iter().any(|net| net.contains(&ip)) || is_public(ip)
    }

    /// Where to connect for `host:port`: an address it resolves to, all of
    /// which are permitted.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<SocketAddr, Refused> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let found: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((bare, port)).await.map(Iterator::collect).unwrap_or_default(),
        };
        let Some(first) = found.first().copied() else { return Err(Refused::Unresolved { host: host.to_owned() }) };
        if found.iter().any(|addr| !self.permits(addr.ip())) {
            return Err(Refused::Private { host: host.to_owned() });
        }
        Ok(first)
    }

    /// A link as the user sent it: http(s), to a permitted host.
    pub async fn check_url(&self, url: &url::Url) -> Result<(), Refused> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refused::Scheme);
        }
        let host = url.host_str().ok_or(Refused::Scheme)?;
        self.resolve(host, url.port_or_known_default().unwrap_or(80)).await.map(drop)
    }
}

/// An IPv4 address written as IPv6 (`::ffff:10.0.0.1`) is that IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // 169.254/16: the cloud metadata service lives here
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local, fd00:ec2::254 (a metadata service) among them
        || (first & 0xffc0) == 0xfe80 // link-local
        || first == 0x2001 && ip.segments()[1] == 0x0db8 // documentation
        || first == 0x0064 && ip.segments()[1] == 0xff9b) // NAT64 can reach private IPv4
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(ip: &str) -> bool {
        !Guard::default().permits(ip.parse().unwrap())
    }

    #[test]
    fn private_loopback_link_local_and_metadata_addresses_are_refused() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
        ] {
            assert!(refused(ip), "{ip} must be refused");
        }
        for ip in ["1.1.1.1", "93.184.216.34", "2606:4700:4700::1111"] {
            assert!(!refused(ip), "{ip} is public");
        }
    }

    #[test]
    fn a_test_range_is_allowed_only_where_named() {
        let guard = Guard::new(&["127.0.0.0/8".into()]).unwrap();
        assert!(guard.permits("127.0.0.1".parse().unwrap()));
        assert!(!guard.permits("10.0.0.1".parse().unwrap()));
        assert!(Guard::new(&["not a range".into()]).is_err());
    }

    #[tokio::test]
    async fn a_link_to_a_private_address_is_refused_before_anything_is_fetched() {
        let guard = Guard::default();
        let url = |s: &str| url::Url::parse(s).unwrap();
        assert_eq!(
            guard.check_url(&url("http://169.254.169.254/latest/meta-data/")).await,
            Err(Refused::Private { host: "169.254.169.254".into() })
        );
        assert!(matches!(guard.check_url(&url("http://localhost:8080/")).await, Err(Refused::Private { .. })));
        assert_eq!(guard.check_url(&url("file:///etc/passwd")).await, Err(Refused::Scheme));
    }
}
