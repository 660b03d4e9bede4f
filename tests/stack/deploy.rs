//! A deployment directory as an operator keeps one: the compose file, its
//! `.env`, and what the file mounts (nginx templates, certificates), in a
//! directory of its own, driven with `docker compose` exactly as the docs say.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use super::engine::{self, HealthDriver};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

pub struct Deployment {
    pub dir: PathBuf,
    pub file: &'static str,
    pub project: String,
    /// The `.env` keys: this process's own environment must not override them.
    keys: std::cell::RefCell<Vec<String>>,
    _health: HealthDriver,
}

impl Deployment {
    /// A fresh directory holding `file` (and docker/nginx), with `env` as its `.env`.
    pub fn new(file: &'static str, project: &str, env: &[(&str, String)]) -> Self {
        let dir = std::env::temp_dir().join(format!("aisha-stack-{project}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("docker")).expect("deployment dir");
        std::fs::copy(repo().join(file), dir.join(file)).expect("copy the compose file");
        engine::ok(&dir, "cp", &["-r", repo().join("docker/nginx").to_str().unwrap(), "docker/"]);
        let deployment = Self {
            dir,
            file,
            project: project.to_owned(),
            keys: Default::default(),
            _health: HealthDriver::start(project),
        };
        deployment.write_env(env);
        // The container store is the machine's: a run that was killed may have left this project up.
        deployment.down();
        deployment
    }

    /// Its containers, whatever their profile, then its networks and volumes.
    fn down(&self) {
        engine::remove_containers_of(&self.project);
        let _ = self.compose_output(&["down", "-v", "--remove-orphans", "--timeout", "5"]);
    }

    pub fn write_env(&self, env: &[(&str, String)]) {
        let text: String = env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        std::fs::write(self.dir.join(".env"), text).expect("write .env");
        *self.keys.borrow_mut() = env.iter().map(|(k, _)| (*k).to_owned()).collect();
    }

    /// A command in the deployment directory, as an operator's shell there
    /// would run it: what `.env` sets is not overridden from outside.
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command.current_dir(&self.dir);
        for key in self.keys.borrow().iter().chain(&["AISHAD_IMAGE".to_owned()]) {
            command.env_remove(key);
        }
        command
    }

    /// `docker compose -p PROJECT -f FILE args…` in the deployment directory.
    pub fn compose_output(&self, args: &[&str]) -> Output {
        self.command("docker")
            .args(["compose", "-p", &self.project, "-f", self.file])
            .args(args)
            .output()
            .expect("docker")
    }

    /// The same, started and left running (the caller waits for it).
    pub fn compose_spawn(&self, args: &[&str]) -> std::process::Child {
        self.command("docker")
            .args(["compose", "-p", &self.project, "-f", self.file])
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("docker")
    }

    pub fn compose(&self, args: &[&str]) -> String {
        let output = self.compose_output(args);
        engine::check(&format!("docker compose {}", args.join(" ")), &output);
        // `up`, also after global options (`--profile monitoring up -d`).
        if args.contains(&"up") {
            engine::pin_bridge_macs(&self.project);
        }
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// `bash -c script` in the deployment directory (the docs' own commands).
    pub fn shell(&self, script: &str, env: &[(&str, String)]) -> String {
        let output = self
            .command("bash")
            .args(["-euo", "pipefail", "-c", script])
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .expect("bash");
        engine::check(script, &output);
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The container of `service` (replica `n`, from 1), as Compose v2 names it.
    pub fn container(&self, service: &str, n: u32) -> String {
        format!("{}-{service}-{n}", self.project)
    }

    /// Waits until the container's own HEALTHCHECK says healthy; returns the
    /// time from the container's (last) start to then.
    pub async fn healthy(&self, service: &str, n: u32, timeout: Duration) -> Duration {
        let name = self.container(service, n);
        engine::until(&format!("{name} healthy"), timeout, || engine::health(&name) == "healthy").await;
        container_age(&name)
    }

    pub fn logs(&self) -> String {
        self.compose(&["logs", "--no-color"])
    }

    /// A named volume of this project, made as an older deployment left it:
    /// created by Compose, owned by root, with a file in it.
    pub fn root_owned_volume(&self, name: &str) {
        let volume = format!("{}_{name}", self.project);
        let project = format!("com.docker.compose.project={}", self.project);
        let label = format!("com.docker.compose.volume={name}");
        engine::podman(&["volume", "create", "--label", &project, "--label", &label, &volume]);
        let mount = format!("{volume}:/v");
        engine::podman(&[
            "run",
            "--rm",
            "-v",
            &mount,
            "localhost/debian:bookworm-slim",
            "sh",
            "-c",
            "chown root:root /v && chmod 755 /v && echo left-by-v1 > /v/old-file && chmod 644 /v/old-file",
        ]);
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let services = self.compose_output(&["config", "--services"]);
            for service in String::from_utf8_lossy(&services.stdout).lines() {
                let logs = self.compose_output(&["logs", "--no-color", "--tail", "25", service]);
                eprintln!("--- {} {service} ---\n{}", self.project, String::from_utf8_lossy(&logs.stdout));
            }
        }
        self.down();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How long ago the container (last) started.
pub fn container_age(name: &str) -> Duration {
    let started: u128 = engine::inspect(name, "{{.State.StartedAt.UnixMilli}}").parse().unwrap_or(0);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    Duration::from_millis(now.saturating_sub(started) as u64)
}
