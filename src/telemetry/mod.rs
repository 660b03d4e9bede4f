//! Logs (tracing, JSON or pretty, always redacted), metrics (Prometheus) and
//! the telemetry HTTP port.

pub mod redact;
pub mod server;

use std::sync::OnceLock;

use aisha_actors::settings::{LogFormat, Settings};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

pub use redact::Redactor;
use redact::RedactingMakeWriter;

/// A subscriber that writes through `writer` with every secret of `settings`
/// masked. `init_logging` installs it on stderr; tests install it on a buffer.
pub fn subscriber<W>(settings: &Settings, writer: W) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let writer = RedactingMakeWriter::new(writer, Redactor::new(settings.secret_values()));
    // The level was validated with the settings; fall back rather than panic.
    let filter = EnvFilter::try_new(&settings.log.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    match settings.log.format {
        LogFormat::Json => Box::new(builder.json().flatten_event(true).with_current_span(true).finish()),
        // Colours only for a terminal: `docker compose logs` and files get plain text.
        LogFormat::Pretty => {
            let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
            Box::new(builder.with_target(true).with_ansi(ansi).finish())
        }
    }
}

pub fn init_logging(settings: &Settings) {
    // A second init (tests in one process) keeps the first subscriber.
    let _ = tracing::subscriber::set_global_default(subscriber(settings, std::io::stderr));
}

/// The process-wide Prometheus recorder; installed once, shared after.
pub fn metrics() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Another recorder already installed (only in tests) just means ours sees nothing.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}
