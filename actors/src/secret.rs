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
        url::Url::parse(&self.0).ok().and_then(|u| u.password().map(percent_decode)).filter(|p| !p.is_empty())
    }

    /// `host:port` for log lines; never the credentials.
    pub fn host(&self) -> String {
        match url::Url::parse(&self.0) {
            Ok(u) => match (u.host_str(), u.port()) {
                (Some(h), Some(p)) => format!("{h}:{p}"),
                (Some(h), None) => h.to_owned(),
                _ => "?".to_owned(),
            },
            Err(_) => "?".to_owned(),
        }
    }

    pub fn masked(&self) -> String {
        self.shown()
    }
}

fn masked_url(value: &str) -> String {
    match url::Url::parse(value) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some(MASK));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) if value.is_empty() => String::new(),
        Err(_) => MASK.to_owned(),
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
}
