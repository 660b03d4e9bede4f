//! aishad: the daemon that wires the actors together. CLI, settings, the root
//! supervisor and telemetry live here; the work lives in `aisha-actors`.

pub mod cli;
pub mod commands;
pub mod health;
pub mod roles;
pub mod settings;
pub mod supervisor;
pub mod telemetry;

/// Process exit codes (sysexits.h where one fits).
pub mod exit {
    /// A dependency (port, database) is not available to a one-shot command.
    pub const UNAVAILABLE: i32 = 69;
    /// The tree gave up (restart intensity) or an internal error.
    pub const SOFTWARE: i32 = 70;
    /// A missing or malformed setting.
    pub const CONFIG: i32 = 78;
}
