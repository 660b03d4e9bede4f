//! What goes wrong with the database, told apart, and the enums kept in
//! TEXT columns (each variant and its value named once).

use std::time::Duration;

use super::read_only;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database.url is not a valid PostgreSQL URL: {0}")]
    InvalidUrl(String),
    #[error("could not get a database connection from {host}: {source}")]
    Pool {
        host: String,
        #[source]
        source: deadpool_postgres::PoolError,
    },
    #[error("database query failed: {0}")]
    Query(tokio_postgres::Error),
    #[error("database did not answer within {0:?}")]
    Timeout(Duration),
    /// A statement shared with other callers (a group commit) failed, or
    /// the writer it was handed to has stopped: the message says which.
    #[error("{0}")]
    Shared(String),
    /// A value this version has no name for (a newer one wrote it).
    #[error("{column} holds {value:?}, which this version does not know")]
    Unknown { column: &'static str, value: String },
}

/// An enum kept in a TEXT column: each variant and the value that stores
/// it, named once; [`text_column`] reads one back.
macro_rules! text_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The value the column stores.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            pub fn parse(text: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == text)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use text_enum;

/// Column `column` of `row`, read as `parse` reads it.
pub(crate) fn text_column<T>(
    row: &tokio_postgres::Row,
    column: &'static str,
    parse: fn(&str) -> Option<T>,
) -> Result<T, StoreError> {
    let value: &str = row.try_get(column)?;
    parse(value).ok_or_else(|| StoreError::Unknown { column, value: value.to_owned() })
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        if read_only::refused(&e) {
            read_only::seen();
        }
        StoreError::Query(e)
    }
}

impl StoreError {
    /// The server refused a write: the primary this connection reached was
    /// demoted or turned read-only, a failover is under way.
    pub fn is_read_only(&self) -> bool {
        matches!(self, StoreError::Query(e) if read_only::refused(e))
    }

    /// The message without the leading key name, for errors that name it elsewhere.
    pub fn reason(&self) -> String {
        match self {
            StoreError::InvalidUrl(reason) => format!("is not a valid PostgreSQL URL: {reason}"),
            other => other.to_string(),
        }
    }
}
