//! Logs (tracing, JSON or pretty, always redacted), metrics (Prometheus) and
//! the telemetry HTTP port.

pub mod redact;
pub mod server;

use std::sync::OnceLock;

use aisha_actors::settings::{LogFormat, Mode, Settings};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use redact::RedactingMakeWriter;
pub use redact::Redactor;

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

/// Durations in seconds are histograms (buckets add up across replicas in
/// `histogram_quantile`; summaries do not), from 5 ms to 10 minutes; batch
/// sizes by powers of two. Anything else stays a summary.
const SECONDS_BUCKETS: [f64; 16] =
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0];
/// A send's lateness after its slot: the headroom absorbs tens of ms.
const LATENESS_BUCKETS: [f64; 12] = [0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.25];
const BATCH_BUCKETS: [f64; 9] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

fn builder() -> PrometheusBuilder {
    let builder = PrometheusBuilder::new();
    let with =
        |b: PrometheusBuilder, m: Matcher, v: &[f64]| b.set_buckets_for_metric(m, v).expect("buckets are not empty");
    let builder = with(builder, Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS);
    let builder = with(builder, Matcher::Full("aishad_telegram_send_lateness_seconds".into()), &LATENESS_BUCKETS);
    with(builder, Matcher::Full("aishad_group_commit_batch".into()), &BATCH_BUCKETS)
}

/// Counters of a role registered at 0 for every label value they take, so
/// a series exists before its first increment (`increase()` of a series
/// that appears at 1 says 0, and a dashboard would show nothing). Counters
/// of one kind of job are the pool's, registered when it starts.
pub fn register_counters(mode: Mode) {
    let zero = |name: &'static str, label: &'static str, values: &[&'static str]| {
        for value in values {
            metrics::counter!(name, label => *value).increment(0);
        }
    };
    metrics::counter!("aishad_restart_intensity_exceeded_total").increment(0);
    metrics::counter!("aishad_telegram_retries_total").increment(0);
    metrics::counter!("aishad_telegram_flood_waits_total").increment(0);
    metrics::counter!("aishad_telegram_send_budget_fallbacks_total").increment(0);
    metrics::counter!("aishad_telegram_paid_broadcast_messages_total").increment(0);
    zero("aishad_telegram_send_holds_total", "scope", &["bot", "chat"]);
    zero("aishad_telegram_late_sends_total", "sent", &["paid", "free"]);
    if matches!(mode, Mode::Polling | Mode::Webhook | Mode::All) {
        for name in [
            "aishad_updates_received_total",
            "aishad_updates_handled_total",
            "aishad_stars_received_total",
            "aishad_stars_refunded_total",
        ] {
            metrics::counter!(name).increment(0);
        }
        zero("aishad_update_failures_total", "cause", &["telegram", "database", "redis", "s3", "download", "panic"]);
        let payments = ["credited", "duplicate", "unmatched", "refunded", "checkout_ok", "checkout_refused"];
        zero("aishad_payments_total", "result", &payments);
        zero("aishad_limited_total", "limit", &["jobs_in_flight", "paid_per_minute"]);
    }
    if matches!(mode, Mode::Polling | Mode::All) {
        metrics::counter!("aishad_poller_lease_lost_total").increment(0);
        metrics::counter!("aishad_poller_lease_errors_total").increment(0);
        zero("aishad_telegram_errors_total", "kind", &["409", "429", "other"]);
    }
    // Any process that sends may be refused for our rate.
    zero("aishad_telegram_errors_total", "kind", &["429"]);
    if matches!(mode, Mode::Worker | Mode::All) {
        metrics::counter!("aishad_transcription_unmeasured_seconds_total").increment(0);
        metrics::counter!("aishad_transcription_repeats_total").increment(0);
        zero("aishad_telegram_drafts_total", "outcome", &["sent", "refused"]);
        zero(
            "aishad_alerts_total",
            "alert",
            &["openai_insufficient_quota", "openai_unauthorized", "transcription_heard_more"],
        );
    }
    if matches!(mode, Mode::Webhook | Mode::All) {
        metrics::counter!("aishad_fal_jwks_failures_total").increment(0);
        let verdicts =
            ["accepted", "duplicate", "bad_signature", "wrong_user", "too_large", "malformed", "no_keys", "error"];
        zero("aishad_webhook_verdicts_total", "verdict", &verdicts);
    }
}

/// Gauges that say what the settings are, for the alerts that compare with
/// them: set once the recorder is installed.
pub fn register_setting_gauges(settings: &Settings) {
    let paid = &settings.telegram.paid_broadcast;
    let ceiling = if paid.enabled { f64::from(paid.daily_stars) } else { 0.0 };
    metrics::gauge!("aishad_telegram_paid_broadcast_daily_ceiling_stars").set(ceiling);
}

/// The process-wide Prometheus recorder; installed once, shared after.
pub fn metrics() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = builder().build_recorder();
            let handle = recorder.handle();
            // Another recorder already installed (only in tests) just means ours sees nothing.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}
