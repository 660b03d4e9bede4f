//! Values that must never reach a log line or `aishad config`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const MASK: &str = "***";

/// `new`, `expose`, `is_empty`, and `Debug`/`Display`/`Serialize` that print
/// only what `$shown` makes of the value: the one place either type decides
/// how it appears.
macro_rules! masked {
    ($name:ident, $shown:expr) => {
        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            pub fn expose(&self) -> &str {
                &self.0
            }

            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }

            fn shown(&self) -> String {
                let shown: fn(&str) -> String = $shown;
                shown(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.shown() {
                    shown if shown.is_empty() => f.write_str("\"\""),
                    shown => f.write_str(&shown),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.shown())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.shown())
            }
        }
    };
}

/// A secret string: `Debug`, `Display` and `Serialize` print `***` (or an
/// empty string when unset, so an operator can tell "missing" from "set").
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

masked!(Secret, |value| if value.is_empty() { String::new() } else { MASK.to_owned() });

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Env values that look like numbers (a numeric password) arrive as numbers.
        let value = serde_json::Value::deserialize(deserializer)?;
        match value {
            serde_json::Value::String(s) => Ok(Self(s)),
            serde_json::Value::Number(n) => Ok(Self(n.to_string())),
            serde_json::Value::Bool(b) => Ok(Self(b.to_string())),
            serde_json::Value::Null => Ok(Self::default()),
            _ => Err(serde::de::Error::custom("expected a string")),
        }
    }
}

/// A connection URL whose password is a secret (`postgres://user:pass@host/db`,
/// `redis://:pass@host`). Prints with the password masked; `host()` is safe to log.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct ConnUrl(String);

masked!(ConnUrl, masked_url);

impl ConnUrl {
    /// The password, if any, so the log redactor can scrub it wherever it appears.
    pub fn password(&self) -> Option<String> {
        Authority::of(&self.0).and_then(|a| a.password).map(percent_decode).filter(|p| !p.is_empty())
    }

    /// The hosts (`host:port`, comma-separated as given) for log lines; never the credentials.
    pub fn host(&self) -> String {
        match Authority::of(&self.0) {
            Some(a) if !a.hosts.is_empty() => a.hosts.to_owned(),
            _ => "?".to_owned(),
        }
    }

    pub fn masked(&self) -> String {
        self.shown()
    }
}

/// `scheme://[user[:password]@]hosts[/…]`, read by hand: libpq's multi-host
/// form (`postgres://u:p@h1:5432,h2:5432/db?target_session_attrs=read-write`)
/// is no URL to the `url` crate, yet its password must be masked and
/// scrubbed, and its hosts logged, like any other's.
struct Authority<'a> {
    /// Where the password starts and ends in the whole value.
    password_span: Option<(usize, usize)>,
    password: Option<&'a str>,
    hosts: &'a str,
}

impl<'a> Authority<'a> {
    fn of(value: &'a str) -> Option<Self> {
        let start = value.find("://")? + 3;
        let end = value[start..].find(['/', '?', '#']).map_or(value.len(), |i| start + i);
        let authority = &value[start..end];
        let (userinfo, hosts) = match authority.rfind('@') {
            Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
            None => (None, authority),
        };
        let password_span = userinfo.and_then(|u| u.find(':').map(|colon| (start + colon + 1, start + u.len())));
        let password = password_span.map(|(from, to)| &value[from..to]);
        Some(Self { password_span, password, hosts })
    }
}

fn masked_url(value: &str) -> String {
    if value.is_empty() {
        return String::new();
    }
    match Authority::of(value) {
        Some(Authority { password_span: Some((from, to)), .. }) => {
            format!("{}{MASK}{}", &value[..from], &value[to..])
        }
        Some(_) => value.to_owned(),
        None => MASK.to_owned(),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints_its_value() {
        let s = Secret::new("123456:ABC-token");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"***\"");
        assert_eq!(format!("{}", Secret::default()), "");
    }

    #[test]
    fn conn_url_masks_password_and_logs_host() {
        let u = ConnUrl::new("postgres://aisha:p%40ss@db.internal:5432/aisha");
        assert_eq!(u.masked(), "postgres://aisha:***@db.internal:5432/aisha");
        assert_eq!(u.host(), "db.internal:5432");
        assert_eq!(u.password().as_deref(), Some("p@ss"));
        assert!(!format!("{u:?}").contains("p%40ss"));
    }

    #[test]
    fn conn_url_of_several_hosts_masks_its_password_and_logs_every_host() {
        let u = ConnUrl::new("postgres://aisha:s3cr%2Ft@pg1:5432,pg2:5433,pg3/aisha?target_session_attrs=read-write");
        assert_eq!(u.masked(), "postgres://aisha:***@pg1:5432,pg2:5433,pg3/aisha?target_session_attrs=read-write");
        assert_eq!(u.host(), "pg1:5432,pg2:5433,pg3");
        assert_eq!(u.password().as_deref(), Some("s3cr/t"));
        let sentinel = ConnUrl::new("redis-sentinel://:pw@s1:26379/0?sentinelServiceName=aisha&node=s2:26379");
        assert_eq!(sentinel.masked(), "redis-sentinel://:***@s1:26379/0?sentinelServiceName=aisha&node=s2:26379");
        assert_eq!(sentinel.host(), "s1:26379");
        assert_eq!(ConnUrl::new("postgres://db/aisha").password(), None);
        assert_eq!(ConnUrl::new("postgres://u@db/aisha").masked(), "postgres://u@db/aisha");
        assert_eq!(ConnUrl::new("not a url").masked(), "***");
    }
}
