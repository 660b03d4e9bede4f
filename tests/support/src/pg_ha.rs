//! A PostgreSQL of a test's own that fails over: three members under
//! Debian's `patroni`, synchronous replication, one `etcd` (from
//! `etcd-server`) as the consensus store, as processes on loopback ports in
//! a scratch directory (which `scripts/services.sh` installs), all stopped
//! when it is dropped. Needs root: PostgreSQL runs as the `postgres` user.
//!
//! `primary_start_timeout: 0`, as the Patroni docs advise when a replica is
//! in sync: a primary whose postmaster dies is failed over, not restarted.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;
use crate::private::{as_postgres, postgres_bin, terminate};

/// The superuser the daemons and the test connect as.
pub const USER: &str = "aisha";
pub const PASSWORD: &str = "aisha-ha-password";
const SCOPE: &str = "aisha";

struct Member {
    name: String,
    port: u16,
    api: u16,
    config: PathBuf,
    child: Option<Child>,
}

pub struct PgHa {
    dir: PathBuf,
    etcd: Child,
    members: Vec<Member>,
}

impl PgHa {
    /// Three members, one leader and a synchronous standby in streaming, and
    /// `database` created on the leader.
    pub async fn start(name: &str, database: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("aisha-pg-ha-{name}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        as_postgres("chown", &["postgres:", dir.to_str().unwrap()], false);
        let etcd_port = free_port();
        let etcd = etcd(&dir, etcd_port);
        let mut ha = Self { dir, etcd, members: vec![] };
        for n in 1..=3 {
            let member = ha.member(&format!("m{n}"), etcd_port);
            ha.members.push(member);
        }
        ha.wait_until("a leader and a synchronous standby", Duration::from_secs(90), |c| {
            let roles: Vec<&str> = c["members"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|m| m["state"] == "running" || m["state"] == "streaming")
                .filter_map(|m| m["role"].as_str())
                .collect();
            roles.contains(&"leader") && roles.contains(&"sync_standby") && roles.len() == 3
        })
        .await;
        ha.psql(&format!("CREATE DATABASE {database}"));
        ha
    }

    /// The URL every daemon is given: all three members, and libpq's rule to
    /// keep only the one that takes writes.
    pub fn url(&self, database: &str) -> String {
        let hosts: Vec<String> = self.members.iter().map(|m| format!("127.0.0.1:{}", m.port)).collect();
        format!("postgres://{USER}:{PASSWORD}@{}/{database}?target_session_attrs=read-write", hosts.join(","))
    }

    /// The leader's name, as the members' REST API says now.
    pub async fn leader(&self) -> Option<String> {
        let cluster = self.cluster().await?;
        cluster["members"]
            .as_array()?
            .iter()
            .find(|m| m["role"] == "leader" && m["state"] == "running")
            .and_then(|m| m["name"].as_str().map(str::to_owned))
    }

    /// SIGKILLs the leader's postmaster (Patroni stays up and fails over);
    /// returns the leader's name.
    pub async fn kill_primary(&self) -> String {
        let leader = self.leader().await.expect("a leader");
        let member = self.members.iter().find(|m| m.name == leader).unwrap();
        let pid_file = std::fs::read_to_string(self.data_dir(member).join("postmaster.pid")).expect("postmaster.pid");
        let pid = pid_file.lines().next().unwrap().trim().to_owned();
        let status = Command::new("kill").args(["-KILL", &pid]).status().unwrap();
        assert!(status.success(), "kill -KILL {pid}");
        leader
    }

    /// Waits until a replica is synchronous again: after a failover the old
    /// primary rejoins (rewound) before one is, and Patroni switches over
    /// only to it.
    pub async fn synchronous(&self) {
        let has_sync = |c: &serde_json::Value| {
            let mut members = c["members"].as_array().into_iter().flatten();
            members.any(|m| m["role"] == "sync_standby" && matches!(m["state"].as_str(), Some("running" | "streaming")))
        };
        self.wait_until("a synchronous standby", Duration::from_secs(60), has_sync).await;
    }

    /// A planned switchover from `old` to its synchronous standby
    /// (`patronictl switchover`, as an operator runs it); returns the new leader.
    pub async fn switchover(&self, old: &str) -> String {
        let cluster = self.cluster().await.expect("the cluster");
        let members = cluster["members"].as_array().cloned().unwrap_or_default();
        let candidate = members
            .iter()
            .find(|m| m["role"] == "sync_standby")
            .and_then(|m| m["name"].as_str())
            .unwrap_or_else(|| panic!("a synchronous standby to switch over to: {cluster}"))
            .to_owned();
        let out = Command::new("patronictl")
            .arg("-c")
            .arg(&self.members[0].config)
            .args(["switchover", "--leader", old, "--candidate", &candidate, "--force"])
            .output()
            .expect("patronictl");
        let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && said.contains("Successfully switched over"), "patronictl switchover: {said}");
        candidate
    }

    /// Waits until a running leader other than `old`; how long it took.
    pub async fn promoted(&self, old: &str, within: Duration) -> Duration {
        self.wait_until(&format!("a leader other than {old}"), within, |c| {
            c["members"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|m| m["role"] == "leader" && m["state"] == "running" && m["name"] != old)
        })
        .await
    }

    async fn cluster(&self) -> Option<serde_json::Value> {
        for member in &self.members {
            let url = format!("http://127.0.0.1:{}/cluster", member.api);
            let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().unwrap();
            if let Ok(response) = client.get(url).send().await {
                if let Ok(cluster) = response.json().await {
                    return Some(cluster);
                }
            }
        }
        None
    }

    async fn wait_until(&self, what: &str, within: Duration, check: impl Fn(&serde_json::Value) -> bool) -> Duration {
        let started = Instant::now();
        loop {
            if self.cluster().await.is_some_and(|c| check(&c)) {
                return started.elapsed();
            }
            assert!(started.elapsed() < within, "timed out after {within:?} waiting for {what}: {}", self.logs());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs `sql` on the leader, connected to it alone (it may refuse
    /// writes: see `target_session_attrs`).
    pub async fn on_leader(&self, sql: &str) {
        let leader = self.leader().await.expect("a leader");
        let port = self.members.iter().find(|m| m.name == leader).unwrap().port;
        psql(&format!("postgres://{USER}:{PASSWORD}@127.0.0.1:{port}/postgres"), sql);
    }

    fn psql(&self, sql: &str) {
        psql(&self.url("postgres"), sql);
    }

    fn data_dir(&self, member: &Member) -> PathBuf {
        self.dir.join(&member.name)
    }

    fn member(&self, name: &str, etcd_port: u16) -> Member {
        let (port, api) = (free_port(), free_port());
        let config = self.dir.join(format!("{name}.yml"));
        std::fs::write(&config, member_config(&self.dir, name, port, api, etcd_port)).unwrap();
        let log = std::fs::File::create(self.dir.join(format!("{name}.log"))).unwrap();
        as_postgres("chown", &["-R", "postgres:", self.dir.to_str().unwrap()], false);
        let child = Command::new("runuser")
            .args(["-u", "postgres", "--", "patroni"])
            .arg(&config)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("patroni (scripts/services.sh installs it)");
        Member { name: name.to_owned(), port, api, config, child: Some(child) }
    }

    fn logs(&self) -> String {
        self.members
            .iter()
            .map(|m| {
                let log = std::fs::read_to_string(self.dir.join(format!("{}.log", m.name))).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                format!("--- {}:\n{}", m.name, tail.into_iter().rev().collect::<Vec<_>>().join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for PgHa {
    fn drop(&mut self) {
        // SIGTERM: Patroni stops its PostgreSQL before it exits.
        for member in &mut self.members {
            if let Some(mut child) = member.child.take() {
                terminate(&mut child);
            }
        }
        for member in &self.members {
            let data = self.data_dir(member);
            if data.join("postmaster.pid").exists() {
                let pg_ctl = postgres_bin().join("pg_ctl");
                let _ = Command::new("runuser")
                    .args(["-u", "postgres", "--", pg_ctl.to_str().unwrap(), "-D", data.to_str().unwrap()])
                    .args(["-m", "immediate", "stop"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
        let _ = self.etcd.kill();
        let _ = self.etcd.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn psql(url: &str, sql: &str) {
    let out = Command::new("psql").args([url, "-qc", sql]).output().expect("psql");
    assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
}

fn etcd(dir: &Path, client: u16) -> Child {
    let peer = free_port();
    let log = std::fs::File::create(dir.join("etcd.log")).unwrap();
    let child = Command::new("etcd")
        .args(["--name", "etcd", "--data-dir"])
        .arg(dir.join("etcd"))
        .args(["--listen-client-urls", &format!("http://127.0.0.1:{client}")])
        .args(["--advertise-client-urls", &format!("http://127.0.0.1:{client}")])
        .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer}")])
        .args(["--initial-advertise-peer-urls", &format!("http://127.0.0.1:{peer}")])
        .args(["--initial-cluster", &format!("etcd=http://127.0.0.1:{peer}")])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("etcd (scripts/services.sh installs etcd-server)");
    crate::wait_listening(([127, 0, 0, 1], client), Duration::from_secs(20), "etcd");
    child
}

/// One member's patroni.yml: a loop of 1 s, the leader key's TTL at
/// Patroni's minimum (20 s), synchronous replication, pg_rewind for a
/// returning old primary.
fn member_config(dir: &Path, name: &str, port: u16, api: u16, etcd: u16) -> String {
    let dir = dir.display();
    let bin = postgres_bin();
    let bin = bin.display();
    format!(
        r#"scope: {SCOPE}
namespace: /aisha/
name: {name}
restapi:
  listen: 127.0.0.1:{api}
  connect_address: 127.0.0.1:{api}
etcd3:
  host: 127.0.0.1:{etcd}
bootstrap:
  dcs:
    ttl: 20
    loop_wait: 1
    retry_timeout: 5
    primary_start_timeout: 0
    synchronous_mode: true
    maximum_lag_on_failover: 1048576
    postgresql:
      use_pg_rewind: true
      parameters:
        max_connections: 200
        wal_log_hints: "on"
  initdb:
    - encoding: UTF8
    - auth-host: scram-sha-256
    - auth-local: trust
  pg_hba:
    - local all all trust
    - host replication replicator 127.0.0.1/32 scram-sha-256
    - host all all 127.0.0.1/32 scram-sha-256
postgresql:
  listen: 127.0.0.1:{port}
  connect_address: 127.0.0.1:{port}
  data_dir: {dir}/{name}
  bin_dir: {bin}
  pgpass: {dir}/pgpass-{name}
  authentication:
    replication: {{username: replicator, password: replicator-ha-password}}
    superuser: {{username: {USER}, password: {PASSWORD}}}
    rewind: {{username: {USER}, password: {PASSWORD}}}
  parameters:
    unix_socket_directories: {dir}
"#
    )
}
