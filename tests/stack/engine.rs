//! Podman and Compose v2 from a test: commands that must succeed, the health
//! checks podman runs only when asked (there is no systemd timer here, so a
//! thread plays that part), and the figures an operator reads off `podman`.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Runs `program args` in `dir`; the output whatever the exit status.
pub fn run(dir: &Path, program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e} (scripts/stack-test.sh installs the engine)"))
}

/// Runs and insists on success; returns stdout.
pub fn ok(dir: &Path, program: &str, args: &[&str]) -> String {
    let output = run(dir, program, args);
    check(&format!("{program} {}", args.join(" ")), &output);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn check(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

pub fn podman(args: &[&str]) -> String {
    ok(Path::new("."), "podman", args)
}

/// Removes every container of a compose project, of whatever profile:
/// `compose down` leaves those of the profiles it is not given (a links
/// worker, a Prometheus), and they ran on after the tests.
pub fn remove_containers_of(project: &str) {
    let label = format!("label=com.docker.compose.project={project}");
    let _ = run(Path::new("."), "podman", &["rm", "-f", "-t", "5", "--filter", &label]);
}

/// `podman inspect -f FORMAT NAME`, trimmed; empty when the container is gone.
pub fn inspect(name: &str, format: &str) -> String {
    let output = run(Path::new("."), "podman", &["inspect", "-f", format, name]);
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

pub fn health(name: &str) -> String {
    inspect(name, "{{.State.Health.Status}}")
}

/// Plays systemd's part: runs every container's HEALTHCHECK of one compose
/// project once a second, until dropped.
pub struct HealthDriver {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HealthDriver {
    pub fn start(project: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, label) = (stop.clone(), format!("label=com.docker.compose.project={project}"));
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                let names = run(Path::new("."), "podman", &["ps", "--filter", &label, "--format", "{{.Names}}"]);
                for name in String::from_utf8_lossy(&names.stdout).lines().filter(|n| !n.is_empty()) {
                    // Fails for a container without a HEALTHCHECK (nginx): nothing to run.
                    let _ = run(Path::new("."), "podman", &["healthcheck", "run", name]);
                }
                std::thread::sleep(Duration::from_millis(700));
            }
        });
        Self { stop, thread: Some(thread) }
    }
}

impl Drop for HealthDriver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Waits until `check` holds, polling every 200 ms (blocking: podman calls are blocking too).
pub async fn until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < timeout, "timed out after {timeout:?} waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    started.elapsed()
}

/// Resident memory of a running container, from `podman stats`.
pub fn rss(name: &str) -> String {
    let output = run(Path::new("."), "podman", &["stats", "--no-stream", "--format", "{{.MemUsage}}", name]);
    String::from_utf8_lossy(&output.stdout).split('/').next().unwrap_or("?").trim().to_owned()
}

/// The host's address on podman's default bridge: containers on any compose
/// network reach it, the outside network does not. netavark takes the bridge
/// down with its last container, so a small container keeps it up
/// (scripts/stack-test.sh removes it at the end).
pub fn bridge_ip() -> std::net::IpAddr {
    let format = "{{range .Subnets}}{{.Gateway}} {{end}}";
    let gateway = podman(&["network", "inspect", "podman", "--format", format]);
    let ip = gateway.split_whitespace().next().and_then(|ip| ip.parse().ok()).expect("podman network has a gateway");
    if inspect(BRIDGE_KEEPER, "{{.State.Running}}") != "true" {
        let _ = run(Path::new("."), "podman", &["rm", "-f", BRIDGE_KEEPER]);
        podman(&[
            "run",
            "-d",
            "--name",
            BRIDGE_KEEPER,
            "--network",
            "podman",
            "localhost/debian:bookworm-slim",
            "sleep",
            "infinity",
        ]);
    }
    ip
}

pub const BRIDGE_KEEPER: &str = "aisha-stack-bridge";

/// Fixes the MAC address of every bridge of `project`'s networks at the one
/// it has now. netavark 1.4 leaves it to the kernel, which gives a bridge
/// the lowest MAC among its ports: when a container leaves the network the
/// bridge's MAC can change, and the containers still on it keep sending to
/// the old one for the ~30 s their ARP entry lives. Seen as the surviving
/// webhook listener's every connection out (PostgreSQL, Redis, S3) getting
/// no ACK, and new ones no SYN-ACK, right after the other listener stopped.
/// (Docker gives its bridges a MAC of their own when it creates them.)
pub fn pin_bridge_macs(project: &str) {
    let label = format!("label=com.docker.compose.project={project}");
    let networks = podman(&["network", "ls", "--filter", &label, "--format", "{{.Name}}"]);
    for network in networks.lines().filter(|n| !n.is_empty()) {
        let bridge = podman(&["network", "inspect", network, "--format", "{{.NetworkInterface}}"]);
        let bridge = bridge.trim();
        let Ok(mac) = std::fs::read_to_string(format!("/sys/class/net/{bridge}/address")) else { continue };
        ok(Path::new("."), "ip", &["link", "set", "dev", bridge, "address", mac.trim()]);
        eprintln!("stack: bridge {bridge} of {network} pinned at {}", mac.trim());
    }
}
