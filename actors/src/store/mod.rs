//! PostgreSQL: the connection pool and the embedded migrations.

pub mod audit;
pub mod chunk_calls;
mod db;
mod error;
pub mod fal;
pub mod forget;
pub mod groups;
pub mod images;
pub mod links;
mod migrations;
mod read_only;
pub mod retention;
pub mod tls;
pub mod transcripts;
pub mod updates;
pub mod users;
pub mod wake;

/// The one client trait every statement takes: deadpool's, whose clients
/// and transactions keep prepared statements (see [`cached`]).
pub use deadpool_postgres::GenericClient;
pub use migrations::{MigrationReport, MIGRATIONS};

pub use db::{cached, parse_url, Db, Prepared, SharedAnswer};
pub(crate) use error::text_enum;
pub use error::StoreError;
