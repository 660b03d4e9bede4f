//! Several processes of one bot, as an operator runs them past one box: a
//! poller and N workers, each a real `aishad`, on the same services and
//! fakes, each with an `INSTANCE_ID` of its own.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;

use crate::daemon::all_mode_env;
use crate::{Daemon, FakeOpenAi, FakeTelegram, TestServices};

pub struct Fleet {
    pub poller: Daemon,
    pub workers: Vec<Daemon>,
}

impl Fleet {
    /// Starts the poller and `workers` workers, and waits until each is up.
    pub async fn start(
        bin: &Path,
        services: &TestServices,
        telegram: &FakeTelegram,
        openai: &FakeOpenAi,
        workers: usize,
        extra: &[(&str, &str)],
    ) -> Self {
        let start = |mode: &str, instance: String| {
            let mut env = services.env();
            env.extend(all_mode_env(telegram, openai));
            env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            env.push(("BOT_MODE".into(), mode.into()));
            env.push(("INSTANCE_ID".into(), instance));
            Daemon::start(bin, &["run"], &env)
        };
        let fleet = Self {
            poller: start("polling", "poller-1".into()),
            workers: (1..=workers).map(|i| start("worker", format!("worker-{i}"))).collect(),
        };
        for daemon in fleet.all() {
            daemon.telemetry_addr().await;
        }
        fleet
    }

    pub fn all(&self) -> impl Iterator<Item = &Daemon> {
        std::iter::once(&self.poller).chain(&self.workers)
    }

    /// User + system CPU seconds of every process so far.
    pub fn cpu_seconds(&self) -> f64 {
        self.all().map(|d| crate::cpu_seconds(d.pid()).0).sum()
    }

    pub async fn stop(&mut self) {
        for daemon in self.all() {
            daemon.signal("TERM");
        }
        self.poller.wait(Duration::from_secs(40)).await;
        for worker in &mut self.workers {
            worker.wait(Duration::from_secs(40)).await;
        }
    }
}

/// `count` users from `first_user`, each welcomed by `/start` (which
/// credits the welcome coins); returns them once every welcome was sent.
pub async fn welcomed_users(telegram: &FakeTelegram, first_user: i64, count: usize) -> Vec<i64> {
    let users: Vec<i64> = (0..count as i64).map(|i| first_user + i).collect();
    for &user in &users {
        telegram.push_text(user, "en", "/start");
    }
    let patience = Duration::from_secs(30) + Duration::from_millis(100) * count as u32;
    crate::eventually("every user welcomed", patience, || users.iter().all(|&u| !telegram.sent_texts(u).is_empty()))
        .await;
    users
}

/// One voice note from each of `users`, spread evenly over `within`.
pub async fn voice_notes(telegram: &FakeTelegram, users: &[i64], within: Duration, note: Bytes) {
    let gap = within / users.len().max(1) as u32;
    for &user in users {
        telegram.push_voice(user, "en", 2, note.clone());
        tokio::time::sleep(gap).await;
    }
}

/// How many transcripts `user` was sent.
pub fn transcripts(telegram: &FakeTelegram, user: i64) -> usize {
    telegram.sent_texts(user).iter().filter(|t| t.contains("transcript of")).count()
}
