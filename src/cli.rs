//! `aishad [--profile NAME] [--config PATH] [--mode MODE] [run|migrate|config|health]`

use std::path::PathBuf;

use aisha_actors::settings::Mode;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "aishad", version, about = "The Aisha Telegram bot daemon")]
pub struct Cli {
    /// Profile of the config file to use (`dev`, `test`, `prod`, …); AISHA_PROFILE also works.
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// Config file; default `config/aishad.toml` (AISHA_CONFIG also works).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Which actors to run; overrides BOT_MODE and the profile.
    #[arg(long, global = true, value_parser = parse_mode)]
    pub mode: Option<Mode>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon (the default).
    Run,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the effective configuration as TOML, secrets redacted.
    Config,
    /// Operator tasks against the database.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// The image's entrypoint: as root, give each --writable directory to
    /// --user and run the command as that user; as anyone else, say which
    /// is not writable and run it. The command takes this process's place.
    Entrypoint {
        #[arg(long, default_value_t = 10001)]
        user: u32,
        #[arg(long)]
        writable: Vec<std::path::PathBuf>,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        command: Vec<String>,
    },
    /// Exit 0 when the telemetry port's /healthz (with --ready: /readyz) answers 200 within 2 s.
    Health {
        /// Base URL of the telemetry port; default from http.telemetry_bind.
        #[arg(long)]
        url: Option<String>,
        /// Probe readiness (every child running, PostgreSQL and Redis reachable) instead of liveness.
        #[arg(long)]
        ready: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Add coins to a user's balance (a negative amount corrects one; never below zero).
    Credit {
        #[arg(long)]
        telegram_id: i64,
        #[arg(long, allow_hyphen_values = true)]
        coins: i64,
        /// Recorded in the ledger entry.
        #[arg(long)]
        reason: String,
    },
    /// Refund a Telegram Stars payment (refundStarPayment), then take its
    /// coins back (never below zero). Telegram having refunded it already counts as done.
    Refund {
        /// The payment's `telegram_payment_charge_id`.
        #[arg(long)]
        charge_id: String,
    },
    /// Credit every paid Stars charge the ledger lacks (getStarTransactions).
    Reconcile,
}

fn parse_mode(s: &str) -> Result<Mode, String> {
    s.parse()
}
