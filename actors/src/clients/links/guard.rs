//! No server-side request forgery: a link may only lead to a public
//! address. Checked on the addresses a name resolves to (every one: a name
//! that also resolves somewhere private is refused as a whole), and the
//! connection made to the address checked, so DNS cannot change its answer
//! in between. Redirects pass through the same check (see `proxy`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;

/// Why a destination is refused, for the user and the log. A name that
/// does not resolve and one that resolves somewhere private read the same:
/// two messages would tell a user which internal names exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("{host} is not a public address")]
    Private { host: String },
    #[error("{host} is not a public address")]
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
        self.allowed.iter().any(|net| net.contains(&ip)) || (is_public(ip) && !is_own(ip))
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

/// An IPv6 address that carries an IPv4 one, and reaches it, is that IPv4
/// address: mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`, NAT64
/// `64:ff9b::a.b.c.d`, 6to4 `2002:aabb:ccdd::` and Teredo `2001:0::`
/// (whose client address is stored inverted).
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => embedded_v4(v6).map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let v4 = |high: u16, low: u16| Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
    match ip.segments() {
        [0, 0, 0, 0, 0, 0xffff, high, low] => Some(v4(high, low)),
        // `::` and `::1` are IPv6's own unspecified and loopback addresses.
        [0, 0, 0, 0, 0, 0, 0, 0 | 1] => None,
        [0, 0, 0, 0, 0, 0, high, low] | [0, 0, 0, 0, 0xffff, 0, high, low] => Some(v4(high, low)),
        // NAT64: the well-known prefix, and the one for local use (RFC 8215).
        [0x64, 0xff9b, 0, 0, 0, 0, high, low] | [0x64, 0xff9b, 1, _, _, _, high, low] => Some(v4(high, low)),
        [0x2002, high, low, ..] => Some(v4(high, low)),
        [0x2001, 0, _, _, _, _, high, low] => Some(v4(!high, !low)),
        _ => None,
    }
}

/// Cloud metadata services outside the link-local range.
const METADATA_V4: [Ipv4Addr; 1] = [
    Ipv4Addr::new(168, 63, 129, 16), // Azure's wire server
];

/// One of this machine's own addresses (a public one too: a link to it
/// reaches whatever listens on it here). Read from the kernel's tables.
fn is_own(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => local_v4(&std::fs::read_to_string("/proc/net/fib_trie").unwrap_or_default()).contains(&v4),
        IpAddr::V6(v6) => local_v6(&std::fs::read_to_string("/proc/net/if_inet6").unwrap_or_default()).contains(&v6),
    }
}

/// The addresses `/proc/net/fib_trie` marks `/32 host LOCAL`.
fn local_v4(fib_trie: &str) -> Vec<Ipv4Addr> {
    let lines: Vec<&str> = fib_trie.lines().collect();
    lines
        .windows(2)
        .filter(|pair| pair[1].trim() == "/32 host LOCAL")
        .filter_map(|pair| pair[0].trim().trim_start_matches("|--").trim().parse().ok())
        .collect()
}

/// The addresses `/proc/net/if_inet6` lists (32 hex digits each).
fn local_v6(if_inet6: &str) -> Vec<Ipv6Addr> {
    if_inet6
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter_map(|hex| u128::from_str_radix(hex, 16).ok())
        .map(Ipv6Addr::from)
        .collect()
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
        || METADATA_V4.contains(&ip)
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local, fd00:ec2::254 (a metadata service) among them
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first & 0xffc0) == 0xfec0 // site-local (deprecated, still routed inside some sites)
        || first == 0x2001 && ip.segments()[1] == 0x0db8) // documentation
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
            "::127.0.0.1", // IPv4-compatible
            "::10.0.0.1",
            "64:ff9b::10.0.0.1",                    // NAT64 to a private address
            "2002:7f00:1::",                        // 6to4 of 127.0.0.1
            "2002:a9fe:a9fe::1",                    // 6to4 of 169.254.169.254
            "2001:0:4136:e378:8000:63bf:f5ff:fffe", // Teredo of 10.0.0.1 (inverted)
            "fec0::1",                              // site-local
            "168.63.129.16",                        // Azure's metadata wire server
        ] {
            assert!(refused(ip), "{ip} must be refused");
        }
        for ip in ["1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "64:ff9b::1.1.1.1", "2002:101:101::1"] {
            assert!(!refused(ip), "{ip} is public");
        }
    }

    #[test]
    fn this_machines_own_addresses_are_read_from_the_kernel() {
        let fib_trie = "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 203.0.113.7\n        /32 host LOCAL\n     |-- 203.0.113.255\n        /32 link BROADCAST\n";
        assert_eq!(local_v4(fib_trie), vec![Ipv4Addr::new(203, 0, 113, 7)]);
        let if_inet6 = "20010db8000000000000000000000007 02 40 00 80     eth0\n";
        assert_eq!(local_v6(if_inet6), vec!["2001:db8::7".parse::<Ipv6Addr>().unwrap()]);
        assert!(is_own("127.0.0.1".parse().unwrap()), "loopback is this machine's on every Linux");
    }

    #[test]
    fn a_name_that_does_not_resolve_reads_as_one_that_is_private() {
        let (unresolved, private) =
            (Refused::Unresolved { host: "intranet".into() }, Refused::Private { host: "intranet".into() });
        assert_eq!(unresolved.to_string(), private.to_string());
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
