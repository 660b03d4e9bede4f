//! Servers of a test's own, for outage tests: the shared ones must keep
//! serving the other tests while these are stopped and restarted. The real
//! `redis-server` and PostgreSQL the services script installed, on free ports.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    /// Without persistence, as a cache-only Redis runs: a restart loses every key.
    pub async fn start() -> Self {
        let mut redis = Self { port: crate::free_port(), child: None };
        redis.resume().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops it (SIGKILL: whatever it held is gone).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, empty.
    pub async fn resume(&mut self) {
        let port = self.port.to_string();
        let child = Command::new("redis-server")
            .args(["--port", &port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (scripts/services.sh installs it)");
        self.child = Some(child);
        crate::wait_listening(([127, 0, 0, 1], self.port), Duration::from_secs(10), "redis-server");
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A PostgreSQL cluster of a test's own (fsync on, as in production), to
/// stop and restart under a running daemon. Needs root, like the services
/// script: PostgreSQL runs as the `postgres` user.
pub struct PrivatePostgres {
    dir: std::path::PathBuf,
    bin: std::path::PathBuf,
    port: u16,
}

impl PrivatePostgres {
    pub async fn start() -> Self {
        let bin = postgres_bin();
        let dir = std::env::temp_dir().join(format!("aisha-pg-{}-{}", std::process::id(), crate::free_port()));
        std::fs::create_dir_all(&dir).unwrap();
        as_postgres("chown", &["postgres:", dir.to_str().unwrap()], false);
        let data = dir.join("data");
        let initdb = bin.join("initdb");
        as_postgres(
            initdb.to_str().unwrap(),
            &["-D", data.to_str().unwrap(), "-U", "aisha", "-A", "trust", "-E", "UTF8"],
            true,
        );
        let pg = Self { dir, bin, port: crate::free_port() };
        pg.resume().await;
        pg
    }

    pub fn url(&self) -> String {
        format!("postgres://aisha@127.0.0.1:{}/postgres", self.port)
    }

    fn pg_ctl(&self, args: &[&str]) {
        let data = self.dir.join("data");
        let mut all = vec!["-D", data.to_str().unwrap()];
        all.extend_from_slice(args);
        as_postgres(self.bin.join("pg_ctl").to_str().unwrap(), &all, true);
    }

    /// A fast shutdown: every connection is cut.
    pub fn stop(&self) {
        self.pg_ctl(&["-m", "fast", "-w", "stop"]);
    }

    pub async fn resume(&self) {
        let options = format!("-p {} -k {} -c listen_addresses=127.0.0.1", self.port, self.dir.display());
        let log = self.dir.join("postgres.log");
        self.pg_ctl(&["-w", "-t", "30", "-l", log.to_str().unwrap(), "-o", &options, "start"]);
    }
}

/// Debian's PostgreSQL binaries (`initdb`, `pg_ctl`, …).
pub(crate) fn postgres_bin() -> std::path::PathBuf {
    std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL (scripts/services.sh installs it)")
        .flatten()
        .map(|version| version.path().join("bin"))
        .find(|bin| bin.join("initdb").exists())
        .expect("an initdb under /usr/lib/postgresql")
}

pub(crate) fn as_postgres(program: &str, args: &[&str], drop_privileges: bool) {
    let mut command = if drop_privileges {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", program]);
        c
    } else {
        Command::new(program)
    };
    let status = command.args(args).stdout(Stdio::null()).status().unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(status.success(), "{program} {args:?} failed");
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = Command::new("runuser")
            .args([
                "-u",
                "postgres",
                "--",
                self.bin.join("pg_ctl").to_str().unwrap(),
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "stop",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// PgBouncer (Debian's) in front of the shared PostgreSQL, in `mode`
/// (`session` or `transaction`), on a free port, as user `postgres` (it
/// refuses root); stopped when dropped.
pub struct PrivatePgBouncer {
    dir: std::path::PathBuf,
    pub port: u16,
    child: Child,
}

impl PrivatePgBouncer {
    /// Logs in to `upstream` (host, port) as `user` with `password`, whatever
    /// name a client gives (`auth_type = any`): the test's loopback only.
    pub async fn start(upstream: (&str, u16), user: &str, password: &str, mode: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("aisha-pgbouncer-{}-{}", std::process::id(), crate::free_port()));
        std::fs::create_dir_all(&dir).unwrap();
        let port = crate::free_port();
        let (host, upstream_port) = upstream;
        let config = dir.join("pgbouncer.ini");
        std::fs::write(
            &config,
            format!(
                "[databases]\n* = host={host} port={upstream_port} user={user} password={password}\n\
                 [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
                 auth_type = any\npool_mode = {mode}\nmax_client_conn = 500\ndefault_pool_size = 100\n\
                 logfile = {log}\nignore_startup_parameters = extra_float_digits,options\n",
                log = dir.join("pgbouncer.log").display()
            ),
        )
        .unwrap();
        as_postgres("chown", &["-R", "postgres:", dir.to_str().unwrap()], false);
        let child = Command::new("runuser")
            .args(["-u", "postgres", "--", "/usr/sbin/pgbouncer"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pgbouncer (scripts/services.sh installs it)");
        crate::wait_listening(([127, 0, 0, 1], port), Duration::from_secs(10), "pgbouncer");
        Self { dir, port, child }
    }
}

impl Drop for PrivatePgBouncer {
    fn drop(&mut self) {
        terminate(&mut self.child);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// SIGTERM, which `runuser` passes on to the program it runs (a SIGKILL
/// would leave that program behind), then SIGKILL after 20 s.
pub(crate) fn terminate(child: &mut Child) {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}
