//! Test support for aishad: handles on the real local services (each test gets
//! its own database, Redis key prefix and bucket), a way to run the daemon
//! binary, and HTTP fakes of the paid outside APIs that speak their wire
//! formats, errors included.

pub mod audio;
pub mod ceiling;
pub mod daemon;
pub mod fal;
pub mod fleet;
pub mod forward;
pub mod media_site;
pub mod netns;
pub mod openai;
pub mod pg_ha;
pub mod private;
pub mod redis_ha;
pub mod server;
pub mod services;
pub mod shipped;
pub mod telegram;
pub mod wrk;

pub use daemon::Daemon;
pub use fal::FakeFal;
pub use openai::FakeOpenAi;
pub use services::TestServices;
pub use telegram::FakeTelegram;

use std::time::{Duration, Instant};

/// A loopback port nothing listens on right now (for a server that must be
/// told its address before it starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Waits until something listens on `addr` (a server a test just started),
/// for at most `within`; `what` names it when nothing does.
pub fn wait_listening(addr: impl Into<std::net::SocketAddr>, within: Duration, what: &str) {
    let (addr, deadline) = (addr.into(), Instant::now() + within);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {addr} within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How long after `since` the first of `moments` came (zero when none did):
/// the first poll or answer after a failover, say.
pub fn first_after(moments: impl IntoIterator<Item = Instant>, since: Instant) -> Duration {
    moments.into_iter().filter(|&at| at > since).min().map(|at| at.duration_since(since)).unwrap_or_default()
}

/// Polls `check` every 20 ms until it holds or `timeout` passes.
pub async fn eventually<F: FnMut() -> bool>(what: &str, timeout: Duration, mut check: F) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Awaits `check` every 100 ms until it holds or `timeout` passes.
pub async fn eventually_async<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A `/proc/{pid}/status` memory field in KiB (`VmRSS:`, `VmHWM:`), 0 if unreadable.
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// CPU seconds in a `/proc/PID/stat` line: user and system, and with
/// `reaped` those of the children it waited for too (ffmpeg's for aishad).
fn stat_seconds(stat: &str, reaped: bool) -> f64 {
    // Fields after the command's closing parenthesis: utime, stime, cutime and cstime are the 12th to 15th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let ticks: f64 =
        rest.split_whitespace().skip(11).take(if reaped { 4 } else { 2 }).filter_map(|f| f.parse::<f64>().ok()).sum();
    ticks / 100.0 // USER_HZ, 100 on every Linux port
}

fn every_stat() -> impl Iterator<Item = String> {
    std::fs::read_dir("/proc").unwrap().flatten().filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
}

/// CPU seconds (user + system) used so far by `pid`, and by every PostgreSQL process together.
pub fn cpu_seconds(pid: u32) -> (f64, f64) {
    let daemon = std::fs::read_to_string(format!("/proc/{pid}/stat")).map(|s| stat_seconds(&s, false)).unwrap_or(0.0);
    let postgres = every_stat().filter(|s| s.contains("(postgres)")).map(|s| stat_seconds(&s, false)).sum();
    (daemon, postgres)
}

/// CPU seconds used so far by every process on this machine, by pid: its
/// name and its seconds, with the children it reaped.
pub fn cpu_seconds_by_process() -> std::collections::BTreeMap<u32, (String, f64)> {
    let mut by = std::collections::BTreeMap::new();
    for stat in every_stat() {
        let Some((pid, rest)) = stat.split_once(" (") else { continue };
        let (Ok(pid), Some((name, _))) = (pid.parse::<u32>(), rest.rsplit_once(") ")) else { continue };
        by.insert(pid, (name.to_owned(), stat_seconds(&stat, true)));
    }
    by
}

/// What each name of process spent between two [`cpu_seconds_by_process`]
/// readings, most first. By pid, not by name: a kernel worker renames
/// itself for each kind of work, and by name its whole life would count.
pub fn cpu_spent_by_name(
    before: &std::collections::BTreeMap<u32, (String, f64)>,
    after: &std::collections::BTreeMap<u32, (String, f64)>,
) -> Vec<(String, f64)> {
    let mut by: std::collections::BTreeMap<&str, f64> = std::collections::BTreeMap::new();
    for (pid, (name, seconds)) in after {
        let earlier = before.get(pid).map_or(0.0, |(_, s)| *s);
        *by.entry(name).or_insert(0.0) += (seconds - earlier).max(0.0);
    }
    let mut spent: Vec<(String, f64)> = by.into_iter().map(|(name, s)| (name.to_owned(), s)).collect();
    spent.sort_by(|a, b| b.1.total_cmp(&a.1));
    spent
}

/// A benchmark's `main`: runs `bench` on a multi-threaded runtime under
/// `cargo bench` only (`cargo test --benches` builds benches without `--bench`).
pub fn bench_main<F: std::future::Future<Output = ()>>(bench: impl FnOnce() -> F) {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    runtime.block_on(bench());
}
