//! docker-compose.bot.simple.yml: bot-primary and worker-1 against external
//! PostgreSQL, Redis and S3 (here the host's): one poller at a time, nothing
//! lost or answered twice across restarts and kills, draining stops, and a
//! missing setting that names itself.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use aisha_testkit::audio::{speech_file, voice_note};
use aisha_testkit::netns::{Host, SITE_ADDRESS};
use aisha_testkit::openai::Answer;

use super::deploy::Deployment;
use super::{assert_no_secret, engine, figure, links_image, External, Fakes, WAIT};

const FILE: &str = "docker-compose.bot.simple.yml";

async fn up(project: &str, fakes: &Fakes, external: &External) -> Deployment {
    let stack = Deployment::new(FILE, project, &super::env_without(fakes, external, ""));
    stack.compose(&["up", "-d"]);
    for service in ["bot-primary", "worker-1"] {
        let cold = stack.healthy(service, 1, Duration::from_secs(120)).await;
        figure(&format!("simple {service} start to healthy"), format!("{:.1} s", cold.as_secs_f64()));
        figure(&format!("simple {service} RSS"), engine::rss(&stack.container(service, 1)));
    }
    stack
}

/// Balance replies per user.
fn balances(fakes: &Fakes, users: &[i64]) -> HashMap<i64, usize> {
    users.iter().map(|&u| (u, fakes.telegram.sent_texts(u).iter().filter(|t| t.contains("Balance")).count())).collect()
}

/// The simple stack up, and a voice note of a new user (with the welcome
/// bonus to pay for it) held at the OpenAI fake for `api_delay`.
async fn voice_in_flight(test: &str, user: i64, api_delay: Duration) -> (Fakes, External, Deployment) {
    let fakes = Fakes::start().await;
    let external = External::start(&format!("stack_simple_{test}"), fakes.bridge).await;
    let stack = up(&format!("aisha-stack-{test}"), &fakes, &external).await;
    fakes.telegram.push_text(user, "en", "/start");
    engine::until("the welcome", WAIT, || !fakes.telegram.sent_texts(user).is_empty()).await;
    fakes.openai.script_transcriptions([Answer::Delay(api_delay)]);
    fakes.telegram.push_voice(user, "en", 2, voice_note("A voice note in flight."));
    engine::until("the job reaches the API", WAIT, || fakes.openai.transcriptions().len() == 1).await;
    (fakes, external, stack)
}

fn transcripts(fakes: &Fakes, user: i64) -> usize {
    fakes.telegram.sent_texts(user).iter().filter(|t| t.starts_with("📝")).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_polling_containers_poll_one_at_a_time_and_a_restart_loses_and_repeats_nothing() {
    let fakes = Fakes::start().await;
    let external = External::start("stack_simple_poll", fakes.bridge).await;
    let stack = up("aisha-stack-simple", &fakes, &external).await;

    stack.compose(&["up", "-d", "--no-recreate", "--scale", "bot-primary=2"]);
    stack.healthy("bot-primary", 2, Duration::from_secs(120)).await;
    let users: Vec<i64> = (6001..6021).collect();
    for &user in &users[..10] {
        fakes.telegram.push_text(user, "en", "/balance");
    }
    engine::until("ten balances", WAIT, || balances(&fakes, &users[..10]).values().all(|&n| n == 1)).await;

    // A restart of both replicas while updates keep coming.
    let mut restart = stack.compose_spawn(&["restart", "bot-primary"]);
    for &user in &users[10..] {
        fakes.telegram.push_text(user, "en", "/balance");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(restart.wait().expect("restart").success(), "docker compose restart bot-primary");
    engine::until("twenty balances", WAIT, || balances(&fakes, &users).values().all(|&n| n >= 1)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let counts = balances(&fakes, &users);
    assert!(counts.values().all(|&n| n == 1), "each update answered exactly once: {counts:?}");
    let polls = fakes.telegram.polls();
    let gone = polls.iter().filter(|p| p.outcome == "client gone").count();
    figure("simple getUpdates requests (of them abandoned by their client)", format!("{} ({gone})", polls.len()));
    let t0 = polls[0].started;
    let overlaps: Vec<String> = polls
        .windows(2)
        .filter(|w| w[0].ended.is_none_or(|end| end > w[1].started))
        .map(|w| {
            format!(
                "{} {:?}..{:?} {} / {} from {:?}",
                w[0].peer,
                w[0].started - t0,
                w[0].ended.map(|e| e - t0),
                w[0].outcome,
                w[1].peer,
                w[1].started - t0
            )
        })
        .collect();
    assert_eq!(fakes.telegram.max_polls_in_flight(), 1, "never two getUpdates at once: {overlaps:#?}");
    assert_eq!(fakes.telegram.conflicts(), 0, "no 409 Conflict");
    assert_eq!(fakes.telegram.pending_updates(), 0, "every update acknowledged");
    let mut secrets = fakes.secrets();
    secrets.extend(external.secrets());
    assert_no_secret(&stack.logs(), &secrets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_killed_mid_job_is_restarted_by_its_policy_and_the_job_finishes_once() {
    let user = 6101;
    let (fakes, external, stack) = voice_in_flight("kill", user, Duration::from_secs(30)).await;

    let worker = stack.container("worker-1", 1);
    let pid = engine::inspect(&worker, "{{.State.Pid}}");
    engine::ok(Path::new("."), "kill", &["-9", &pid]);
    let killed = Instant::now();
    engine::until("worker-1 restarted by its restart policy", WAIT, || {
        engine::inspect(&worker, "{{.RestartCount}}") != "0" && engine::inspect(&worker, "{{.State.Running}}") == "true"
    })
    .await;
    engine::until("the transcript", WAIT, || transcripts(&fakes, user) == 1).await;
    figure("simple job answered after kill -9 of its worker", format!("{:.1} s", killed.elapsed().as_secs_f64()));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(transcripts(&fakes, user), 1, "answered once");
    assert_eq!(external.scalar("SELECT count(*) FROM jobs WHERE state = 'done'").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stopping_a_worker_drains_its_job_within_the_grace_period_and_exits_0() {
    let user = 6201;
    let (fakes, _external, stack) = voice_in_flight("stop", user, Duration::from_secs(5)).await;

    let stopping = Instant::now();
    stack.compose(&["stop", "worker-1"]);
    let took = stopping.elapsed();
    figure("simple worker-1 stop with a job in flight", format!("{:.1} s", took.as_secs_f64()));
    let worker = stack.container("worker-1", 1);
    assert_eq!(engine::inspect(&worker, "{{.State.ExitCode}}"), "0", "a clean stop");
    assert!(took < Duration::from_secs(45), "within stop_grace_period: {took:?}");
    assert_eq!(transcripts(&fakes, user), 1, "the job in flight was finished before the exit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_missing_required_setting_exits_78_and_names_the_key() {
    let fakes = Fakes::start().await;
    let external = External::start("stack_simple_broken", fakes.bridge).await;
    let env = super::env_without(&fakes, &external, "TELEGRAM_BOT_TOKEN");
    let stack = Deployment::new(FILE, "aisha-stack-broken", &env);
    stack.compose(&["up", "-d", "bot-primary"]);
    let bot = stack.container("bot-primary", 1);
    engine::until("bot-primary exits 78", WAIT, || engine::inspect(&bot, "{{.State.ExitCode}}") == "78").await;
    let logs = stack.compose(&["logs", "--no-color", "bot-primary"]);
    assert!(logs.contains("telegram.token: is required but not set"), "{logs}");
    assert!(logs.contains("TELEGRAM_BOT_TOKEN"), "the variable to set is named: {logs}");
}

/// A site of the test's own at an address the production profile's links
/// guard fetches from (a network namespace, `SITE_ADDRESS` routed to it),
/// serving `files` over plain HTTP; stopped when dropped.
struct Site {
    /// Its namespace: deleted (and its route with it) when dropped.
    _host: Host,
    server: std::process::Child,
    dir: std::path::PathBuf,
    port: u16,
}

impl Site {
    fn start(files: &[(&str, bytes::Bytes)]) -> Self {
        let host = Host::create("site", 77);
        host.publish(SITE_ADDRESS);
        let dir = std::env::temp_dir().join(format!("aisha-site-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in files {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        let port = 8080;
        let server = host.spawn(&[
            "/usr/bin/python3",
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            &SITE_ADDRESS.to_string(),
            "--directory",
            dir.to_str().unwrap(),
        ]);
        aisha_testkit::wait_listening((SITE_ADDRESS, port), Duration::from_secs(10), "the site");
        Self { _host: host, server, dir, port }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{SITE_ADDRESS}:{}{path}", self.port)
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// With the `links` profile, as docs/operations.md has an operator turn it
/// on: a link is read by the links worker (yt-dlp, on the links image) at
/// a public address, priced, and transcribed once the user says yes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_the_links_profile_a_link_is_read_priced_and_transcribed_once_confirmed() {
    let fakes = Fakes::start().await;
    let external = External::start("stack_simple_links", fakes.bridge).await;
    let site = Site::start(&[("episode.mp3", speech_file("A recording read from a link.", "mp3"))]);
    let mut env = super::env_without(&fakes, &external, "");
    env.extend([("AISHA_LINKS__ENABLED", "true".to_owned()), ("AISHAD_LINKS_IMAGE", links_image())]);
    let stack = Deployment::new(FILE, "aisha-stack-links", &env);
    stack.compose(&["--profile", "links", "up", "-d"]);
    for service in ["bot-primary", "worker-1", "links-worker-1"] {
        stack.healthy(service, 1, Duration::from_secs(120)).await;
    }
    // No shell on the links image either: the daemon caps yt-dlp's memory itself.
    let links_worker = stack.container("links-worker-1", 1);
    let exec = |program: &str, arg: &str| engine::run(Path::new("."), "podman", &["exec", &links_worker, program, arg]);
    assert!(exec("yt-dlp", "--version").status.success(), "yt-dlp runs in the links worker");
    assert!(!exec("sh", "-c").status.success(), "the links image has a shell");
    let user = 6401;
    let telegram = &fakes.telegram;
    telegram.push_text(user, "en", "/start");
    engine::until("the welcome", WAIT, || !telegram.sent_texts(user).is_empty()).await;
    telegram.push_text(user, "en", &site.url("/episode.mp3"));
    let offer = || {
        telegram
            .calls("sendMessage")
            .into_iter()
            .rev()
            .find(|c| {
                c.params["chat_id"].as_i64() == Some(user)
                    && c.params["text"].as_str().unwrap_or("").starts_with("🔗 “")
            })
            .map(|c| c.params)
    };
    engine::until("the price of the link", WAIT, || offer().is_some()).await;
    let confirm =
        offer().unwrap()["reply_markup"]["inline_keyboard"][0][0]["callback_data"].as_str().unwrap().to_owned();
    telegram.push_callback(user, "en", &confirm, 2);
    engine::until("the transcript", WAIT, || transcripts(&fakes, user) == 1).await;
    assert_eq!(fakes.openai.transcriptions().len(), 1, "transcribed once");
    let worker = stack.compose(&["logs", "--no-color", "links-worker-1"]);
    assert!(worker.contains("link.transcribe"), "the links worker did it:\n{worker}");
    external.test.assert_ledger_balanced().await;
}
