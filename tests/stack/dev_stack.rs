//! docker-compose.bot.dev.yml: the bot and a worker with PostgreSQL, Redis
//! and S3 in containers of their own (local stand-ins of the official images).

use std::time::Duration;

use aisha_testkit::audio::voice_note;
use aisha_testkit::free_port;

use super::deploy::Deployment;
use super::{assert_no_secret, engine, figure, image, Fakes, WAIT};

const USER: i64 = 5101;
const DB_PASSWORD: &str = "stack-dev-db-password-do-not-log";
const S3_SECRET: &str = "stack-dev-s3-secret-do-not-log";
const SERVICES: [&str; 6] = ["postgres", "redis", "minio", "aisha-worker-dev", "aisha-bot-dev", "prometheus"];
const VOLUMES: [&str; 6] = ["bot-temp", "bot-audio", "bot-logs", "worker-temp", "worker-audio", "worker-logs"];

/// The stack, and its Prometheus's base URL.
async fn up(project: &str, fakes: &Fakes) -> (Deployment, String) {
    let prometheus_port = free_port();
    let monitoring = super::prometheus::test_copy(project);
    let mut env = fakes.env();
    env.extend([
        ("POSTGRES_PASSWORD", DB_PASSWORD.to_owned()),
        ("MINIO_ROOT_PASSWORD", S3_SECRET.to_owned()),
        ("POSTGRES_IMAGE", image("POSTGRES_IMAGE")),
        ("REDIS_IMAGE", image("REDIS_IMAGE")),
        ("MINIO_IMAGE", image("MINIO_IMAGE")),
        ("BOT_TELEMETRY_PORT", free_port().to_string()),
        ("MINIO_CONSOLE_PORT", free_port().to_string()),
        ("PROMETHEUS_IMAGE", image("PROMETHEUS_IMAGE")),
        ("PROMETHEUS_PORT", prometheus_port.to_string()),
        ("PROMETHEUS_CONFIG", monitoring.config),
        ("PROMETHEUS_RULES", monitoring.rules),
    ]);
    let deployment = Deployment::new("docker-compose.bot.dev.yml", project, &env);
    // As a v1 deployment left them: existing, root-owned, not empty.
    for volume in VOLUMES {
        deployment.root_owned_volume(volume);
    }
    deployment.compose(&["up", "-d"]);
    for service in SERVICES {
        let cold = deployment.healthy(service, 1, Duration::from_secs(180)).await;
        figure(&format!("dev {service} start to healthy"), format!("{:.1} s", cold.as_secs_f64()));
    }
    (deployment, format!("http://127.0.0.1:{prometheus_port}"))
}

fn transcripts(fakes: &Fakes) -> usize {
    fakes.telegram.sent_texts(USER).iter().filter(|t| t.starts_with("📝")).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_dev_stack_turns_healthy_answers_start_and_a_voice_note_and_logs_no_secret() {
    let fakes = Fakes::start().await;
    let (stack, prometheus) = up("aisha-stack-dev", &fakes).await;
    for service in SERVICES {
        figure(&format!("dev {service} RSS"), engine::rss(&stack.container(service, 1)));
    }

    fakes.telegram.push_text(USER, "en", "/start");
    engine::until("the menu", WAIT, || {
        fakes.telegram.calls("sendMessage").iter().any(|c| {
            c.params["chat_id"] == USER
                && c.params["reply_markup"]["inline_keyboard"].as_array().is_some_and(|rows| !rows.is_empty())
        })
    })
    .await;

    // ffmpeg inside the image measures the note before it goes to the API.
    fakes.telegram.push_voice(USER, "en", 2, voice_note("Hello from inside a container."));
    engine::until("the transcript", WAIT, || transcripts(&fakes) == 1).await;
    let upload = &fakes.openai.transcriptions()[0];
    assert_eq!(upload.file_name, "voice.ogg");
    // An MP3 is decoded and re-encoded as Opus by the image's own ffmpeg build.
    let mp3 = aisha_testkit::audio::speech_file("An MP3 recording, decoded in the container.", "mp3");
    fakes.telegram.push_audio(USER, "en", 3, mp3, "audio/mpeg", "note.mp3");
    engine::until("the second transcript", WAIT, || transcripts(&fakes) == 2).await;
    let upload = &fakes.openai.transcriptions()[1];
    assert_eq!((upload.file_name.as_str(), upload.content_type.as_deref()), ("chunk_0.ogg", Some("audio/ogg")));

    let mut secrets = fakes.secrets();
    secrets.extend([DB_PASSWORD.to_owned(), S3_SECRET.to_owned()]);
    assert_no_secret(&stack.logs(), &secrets);

    // Prometheus scrapes every container, has each role's series, and, the
    // worker stopped, fires the alert that says no worker takes its jobs.
    let took = super::prometheus::every_target_up(&prometheus, &["aishad-polling", "aishad-worker"]).await;
    figure("dev prometheus every target up", format!("{:.1} s", took.as_secs_f64()));
    super::prometheus::has_series(&prometheus, "aishad_poller_leader", "aishad-polling").await;
    super::prometheus::has_series(&prometheus, "aishad_pool_workers", "aishad-worker").await;
    super::prometheus::has_series(&prometheus, "aishad:jobs_queued:max", "").await;
    stack.compose(&["stop", "aisha-worker-dev"]);
    let took = super::prometheus::firing(&prometheus, "AishadNoWorkerForKind", "transcribe").await;
    figure("dev prometheus alert firing after the worker stopped", format!("{:.1} s", took.as_secs_f64()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn old_root_owned_volumes_are_writable_by_aishad_running_as_10001_on_a_read_only_root() {
    let fakes = Fakes::start().await;
    let (stack, _) = up("aisha-stack-perm", &fakes).await;
    // The image has no shell, cat or touch: PID 1 is read from the host, and
    // writing is tried by aishad's own entrypoint probe inside the container.
    let probe = |name: &str, user: &str, dir: &str| {
        let args =
            ["exec", "--user", user, name, "aishad", "entrypoint", "--writable", dir, "--", "aishad", "--version"];
        engine::run(std::path::Path::new("."), "podman", &args)
    };
    for (service, volumes) in [("aisha-bot-dev", ["temp", "audio"]), ("aisha-worker-dev", ["temp", "audio"])] {
        let name = stack.container(service, 1);
        let pid = engine::inspect(&name, "{{.State.Pid}}");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap_or_default().to_owned();
        assert_eq!(uid.split_whitespace().nth(1), Some("10001"), "{name}: PID 1 runs as {uid}");
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
        assert_eq!(comm.trim(), "aishad", "{name}: PID 1 is aishad itself");
        for volume in volumes.iter().map(|v| format!("/app/storage/{v}")).chain(["/app/logs".to_owned()]) {
            let written = probe(&name, "10001:10001", &volume);
            assert!(
                written.status.success() && written.stderr.is_empty(),
                "{name}: {volume} not writable: {written:?}"
            );
            let format = format!(
                "{{{{range .Mounts}}}}{{{{if eq .Destination \"{volume}\"}}}}{{{{.Source}}}}{{{{end}}}}{{{{end}}}}"
            );
            let source = engine::inspect(&name, &format);
            let kept = std::fs::read_to_string(format!("{source}/old-file")).unwrap();
            assert_eq!(kept.trim(), "left-by-v1", "{name}: {volume} kept what was in it");
        }
        let root = probe(&name, "0:0", "/usr/local/bin/probe");
        assert!(!root.status.success(), "{name}: the root filesystem is writable");
        assert!(String::from_utf8_lossy(&root.stderr).contains("Read-only file system"), "{name}: {root:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_postgres_stopped_the_bot_turns_unhealthy_and_after_its_return_healthy_with_nothing_lost() {
    let fakes = Fakes::start().await;
    let (stack, _) = up("aisha-stack-pgdown", &fakes).await;
    fakes.telegram.push_text(USER, "en", "/start");
    engine::until("the welcome", WAIT, || fakes.telegram.sent_texts(USER).len() == 1).await;

    stack.compose(&["stop", "postgres"]);
    let bot = stack.container("aisha-bot-dev", 1);
    let worker = stack.container("aisha-worker-dev", 1);
    let took = engine::until("bot and worker unhealthy", WAIT, || {
        engine::health(&bot) == "unhealthy" && engine::health(&worker) == "unhealthy"
    })
    .await;
    figure("dev unhealthy after postgres stopped", format!("{:.1} s", took.as_secs_f64()));
    // Sent while the database is away: recorded (and answered) once it is back.
    fakes.telegram.push_voice(USER, "en", 2, voice_note("Sent during the outage."));
    fakes.telegram.push_text(USER, "en", "/balance");
    tokio::time::sleep(Duration::from_secs(3)).await;

    stack.compose(&["start", "postgres"]);
    let back = engine::until("bot and worker healthy again", Duration::from_secs(120), || {
        engine::health(&bot) == "healthy" && engine::health(&worker) == "healthy"
    })
    .await;
    figure("dev healthy after postgres started", format!("{:.1} s", back.as_secs_f64()));
    engine::until("the transcript and the balance", WAIT, || {
        transcripts(&fakes) == 1 && fakes.telegram.sent_texts(USER).iter().any(|t| t.contains("Balance"))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(transcripts(&fakes), 1, "answered once");
    assert_eq!(engine::inspect(&bot, "{{.RestartCount}}"), "0", "the bot rode out the outage without a restart");
}
