use aishad::cli::{AdminCommand, Cli, Command};
use aishad::settings::{self, LoadOptions, Purpose};
use aishad::{commands, exit, telemetry};
use clap::Parser;

/// glibc's allocator was a quarter of the poller's CPU under load (`perf`:
/// `_int_malloc`, `malloc_consolidate`, `unlink_chunk`, `cfree`): many small
/// short-lived JSON values freed on other threads than allocated them.
/// Built without transparent huge pages (`no_thp`): with them, mimalloc's
/// arenas took 2 MiB pages and an idle webhook listener 37 MiB instead of 24.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Run);
    // Before any setting is read: the command it runs reads its own.
    if let Command::Entrypoint { user, writable, command } = command {
        std::process::exit(commands::entrypoint::enter(commands::entrypoint::Entry { user, writable, command }));
    }
    let options = LoadOptions { profile: cli.profile, config_path: cli.config, mode: cli.mode };
    let purpose = match command {
        Command::Run => Purpose::Run,
        Command::Migrate | Command::Admin(_) => Purpose::Database,
        Command::Config | Command::Health { .. } | Command::Entrypoint { .. } => Purpose::Inspect,
    };
    // `health --url` needs no settings at all: a broken config must not make a
    // healthy process look unhealthy.
    let loaded = match (&command, purpose) {
        (Command::Health { url: Some(_), .. }, _) => None,
        _ => match settings::load(&options, purpose) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("aishad: config error: {e}");
                std::process::exit(exit::CONFIG);
            }
        },
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("aishad: cannot start the async runtime: {e}");
            std::process::exit(exit::SOFTWARE);
        }
    };
    let code = runtime.block_on(async move {
        match command {
            Command::Config => {
                print!("{}", settings::render(loaded.as_ref().expect("loaded for config")));
                0
            }
            Command::Health { url, ready } => {
                let url = url.unwrap_or_else(|| {
                    commands::health::default_url(loaded.as_ref().expect("loaded").http.telemetry_bind)
                });
                match commands::health::probe(&url, ready).await {
                    Ok(()) => 0,
                    Err(e) => {
                        eprintln!("aishad: health: {e}");
                        1
                    }
                }
            }
            Command::Migrate => {
                let settings = loaded.expect("loaded for migrate");
                telemetry::init_logging(&settings);
                commands::migrate(&settings).await
            }
            Command::Admin(AdminCommand::Credit { telegram_id, coins, reason }) => {
                let settings = loaded.expect("loaded for admin");
                commands::admin_credit(&settings, telegram_id, coins, &reason).await
            }
            Command::Admin(AdminCommand::Refund { charge_id }) => {
                commands::stars::refund(&loaded.expect("loaded for admin"), &charge_id).await
            }
            Command::Admin(AdminCommand::Reconcile) => {
                commands::stars::reconcile(&loaded.expect("loaded for admin")).await
            }
            Command::Entrypoint { .. } => unreachable!("exec'd before the settings were read"),
            Command::Run => {
                let settings = loaded.expect("loaded for run");
                telemetry::init_logging(&settings);
                commands::run::run(settings).await
            }
        }
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    std::process::exit(code);
}
