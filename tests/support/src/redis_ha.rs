//! A Redis of a test's own that fails over: a master, its replica and three
//! Sentinels (Debian's `redis-server`, and `redis-sentinel` from the package
//! of that name, which `scripts/services.sh` installs), as processes on
//! loopback ports in a scratch directory, all killed when it is dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

/// The name the Sentinels know the master by.
pub const SERVICE: &str = "aisha";

pub struct RedisHa {
    dir: PathBuf,
    /// The two data nodes: the master first, as started.
    pub ports: [u16; 2],
    pub sentinels: [u16; 3],
    servers: Vec<Option<Child>>,
    sentinel_children: Vec<Child>,
}

impl RedisHa {
    /// A master, its replica in sync, and three Sentinels watching them
    /// (quorum 2, a master down after 1 s, failover within 5 s).
    pub async fn start(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("aisha-redis-ha-{name}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let ports = [free_port(), free_port()];
        let master = server(&dir, ports[0], None);
        let replica = server(&dir, ports[1], Some(ports[0]));
        let sentinels = [free_port(), free_port(), free_port()];
        let mut ha =
            Self { dir, ports, sentinels, servers: vec![Some(master), Some(replica)], sentinel_children: vec![] };
        ha.wait_until("the replica in sync", Duration::from_secs(20), |ha| {
            ha.cli(ha.ports[1], &["INFO", "replication"]).contains("master_link_status:up")
        })
        .await;
        for port in sentinels {
            ha.sentinel_children.push(ha.sentinel(port));
        }
        ha.wait_until("every Sentinel sees the replica and the others", Duration::from_secs(30), |ha| {
            ha.sentinels.iter().all(|&s| {
                let master = ha.cli(s, &["SENTINEL", "MASTER", SERVICE]);
                field(&master, "num-slaves") == Some("1") && field(&master, "num-other-sentinels") == Some("2")
            })
        })
        .await;
        ha
    }

    /// fred's URL of the Sentinels (`REDIS_URL`).
    pub fn sentinel_url(&self) -> String {
        let [first, second, third] = self.sentinels;
        format!(
            "redis-sentinel://127.0.0.1:{first}/0?sentinelServiceName={SERVICE}&node=127.0.0.1:{second}&node=127.0.0.1:{third}"
        )
    }

    /// A plain URL of one data node.
    pub fn url_of(&self, port: u16) -> String {
        format!("redis://127.0.0.1:{port}/0")
    }

    /// The master's port, as the Sentinels say now.
    pub fn master(&self) -> Option<u16> {
        let reply = self.cli(self.sentinels[0], &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE]);
        reply.lines().nth(1).and_then(|p| p.trim().parse().ok())
    }

    /// SIGKILLs the data node on `port`.
    pub fn kill(&mut self, port: u16) {
        let at = self.ports.iter().position(|&p| p == port).expect("one of ours");
        if let Some(mut child) = self.servers[at].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until the Sentinels name another master than `old`; how long it took.
    pub async fn promoted(&self, old: u16, within: Duration) -> Duration {
        self.wait_until("the Sentinels' failover", within, |ha| ha.master().is_some_and(|m| m != old)).await
    }

    /// Makes `port` a replica of `of`, as Sentinel reconfigures a returning old master.
    pub fn demote(&self, port: u16, of: u16) {
        self.cli(of, &["REPLICAOF", "NO", "ONE"]);
        self.cli(port, &["REPLICAOF", "127.0.0.1", &of.to_string()]);
    }

    /// `redis-cli -p PORT ARGS…`, its output.
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        let out = Command::new("redis-cli").arg("-p").arg(port.to_string()).args(args).output().expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    async fn wait_until(&self, what: &str, within: Duration, check: impl Fn(&Self) -> bool) -> Duration {
        let started = Instant::now();
        while !check(self) {
            assert!(started.elapsed() < within, "timed out after {within:?} waiting for {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        started.elapsed()
    }

    fn sentinel(&self, port: u16) -> Child {
        let config = self.dir.join(format!("sentinel-{port}.conf"));
        let master = self.ports[0];
        std::fs::write(
            &config,
            format!(
                "port {port}\nbind 127.0.0.1\ndir {dir}\n\
                 sentinel monitor {SERVICE} 127.0.0.1 {master} 2\n\
                 sentinel down-after-milliseconds {SERVICE} 1000\n\
                 sentinel failover-timeout {SERVICE} 5000\n\
                 sentinel parallel-syncs {SERVICE} 1\n",
                dir = self.dir.display()
            ),
        )
        .unwrap();
        let program = if which("redis-sentinel") { "redis-sentinel" } else { "redis-server" };
        let mut command = Command::new(program);
        command.arg(&config);
        if program == "redis-server" {
            command.arg("--sentinel");
        }
        command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("a Sentinel (apt-get install redis-sentinel)")
    }
}

impl Drop for RedisHa {
    fn drop(&mut self) {
        for child in self.servers.iter_mut().flatten().chain(self.sentinel_children.iter_mut()) {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn server(dir: &std::path::Path, port: u16, replica_of: Option<u16>) -> Child {
    let mut command = Command::new("redis-server");
    command
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir);
    if let Some(master) = replica_of {
        command.args(["--replicaof", "127.0.0.1", &master.to_string()]);
    }
    let child = command.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("redis-server");
    crate::wait_listening(([127, 0, 0, 1], port), Duration::from_secs(10), "redis-server");
    child
}

/// `field` of a Sentinel's flat name/value reply, one per line.
fn field<'a>(reply: &'a str, name: &str) -> Option<&'a str> {
    let lines: Vec<&str> = reply.lines().collect();
    lines.iter().position(|l| l.trim() == name).and_then(|i| lines.get(i + 1)).map(|v| v.trim())
}

fn which(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
