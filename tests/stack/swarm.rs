//! deploy/swarm/aishad.stack.yml on a real three-node Docker swarm
//! (scripts/swarm.sh: a dockerd per network namespace on this machine),
//! with the fakes and the host's services as the outside world: the tasks
//! spread over the nodes, a chat and a transcription are answered, a
//! rolling update under arriving voice notes loses and repeats nothing, a
//! queue spike is met by workers scaled out on nodes that must pull the
//! image first, and a node SIGKILLed while its worker holds jobs costs
//! nothing either.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::time::{Duration, Instant};

use aisha_testkit::audio::voice_note;

use super::deploy::repo;
use super::{aishad_image, engine, figure, links_image, External, Fakes, FAL_KEY, OPENAI_KEY, TOKEN, WAIT};

const LAN: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 231, 0, 1));
const STACK: &str = "aisha";

/// The swarm, torn down however the test ends.
struct Swarm;

impl Swarm {
    fn up(images: &[&str]) -> Self {
        let mut args = vec!["scripts/swarm.sh", "up"];
        args.extend_from_slice(images);
        engine::ok(&repo(), "bash", &args);
        Swarm
    }

    fn script(args: &[&str]) -> String {
        let mut all = vec!["scripts/swarm.sh"];
        all.extend_from_slice(args);
        engine::ok(&repo(), "bash", &all)
    }

    /// The `docker` CLI pointed at node `n` (the socket `scripts/swarm.sh socket N` names).
    fn cli(n: u32) -> Command {
        let mut command = Command::new("docker");
        command.env("DOCKER_HOST", format!("unix://{}/.local/swarm/node{n}/docker.sock", repo().display()));
        command
    }

    /// Whether node `n` holds `image`.
    fn has_image(n: u32, image: &str) -> bool {
        Self::cli(n).args(["image", "inspect", image]).output().is_ok_and(|o| o.status.success())
    }

    /// `docker` on node `n`.
    fn docker(n: u32, args: &[&str]) -> String {
        let output = Self::cli(n).args(args).output().expect("docker");
        engine::check(&format!("docker {}", args.join(" ")), &output);
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// Every running task of a service: (slot, node).
    fn tasks(manager: u32, service: &str) -> Vec<(u32, String)> {
        let out = Self::docker(
            manager,
            &[
                "service",
                "ps",
                &format!("{STACK}_{service}"),
                "--filter",
                "desired-state=running",
                "--format",
                "{{.Name}} {{.Node}} {{.CurrentState}}",
            ],
        );
        out.lines()
            .filter(|l| l.contains("Running"))
            .filter_map(|l| {
                let mut parts = l.split_whitespace();
                let slot = parts.next()?.rsplit('.').next()?.parse().ok()?;
                Some((slot, parts.next()?.to_owned()))
            })
            .collect()
    }
}

impl Drop for Swarm {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg("scripts/swarm.sh").arg("down").current_dir(repo()).status();
    }
}

/// An image ID (`sha256:…`): named so, no node tries a registry first.
fn image_id(image: &str) -> String {
    let id = engine::podman(&["image", "inspect", image, "--format", "{{.Id}}"]);
    format!("sha256:{}", id.trim())
}

/// A second release of the image: the same bits under a new ID.
fn next_release() -> String {
    derived_release("next", "LABEL org.opencontainers.image.version=next", &[])
}

/// A release no node holds a layer of, in the swarm's registry: the same
/// files squashed into one new layer, so a node pulls all of it. Returns
/// the name the nodes pull.
fn unseen_release() -> String {
    let tag = derived_release("unseen", "COPY release /etc/aishad-release", &["--squash-all"]);
    let name = "aisha/aishad:unseen";
    Swarm::script(&["push", &tag, name]);
    format!("10.231.0.1:5000/{name}")
}

/// `localhost/aishad:VERSION-SUFFIX`: the image with one more line, built
/// from a directory that also holds a file `release` (the suffix).
fn derived_release(suffix: &str, line: &str, build_args: &[&str]) -> String {
    let tag = format!("localhost/aishad:{}-{suffix}", env!("CARGO_PKG_VERSION"));
    let dir = std::env::temp_dir().join(format!("aishad-{suffix}-release"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("release"), format!("{suffix}\n")).unwrap();
    std::fs::write(dir.join("Containerfile"), format!("FROM {}\n{line}\n", aishad_image())).unwrap();
    let mut args = vec!["build", "-q"];
    args.extend_from_slice(build_args);
    args.extend(["-t", &tag, dir.to_str().unwrap()]);
    engine::podman(&args);
    tag
}

fn create_secrets(external: &External) {
    let value = |key| external.var(key);
    for (name, secret) in [
        ("aishad_telegram_token", TOKEN.to_owned()),
        ("aishad_openai_api_key", OPENAI_KEY.to_owned()),
        ("aishad_fal_key", FAL_KEY.to_owned()),
        ("aishad_fal_files_secret", "swarm-files-secret".to_owned()),
        ("aishad_s3_access_key", value("MINIO_ACCESS_KEY")),
        ("aishad_s3_secret_key", value("MINIO_SECRET_KEY")),
        ("aishad_database_url", value("DATABASE_URL")),
        ("aishad_redis_url", value("REDIS_URL")),
    ] {
        let file = std::env::temp_dir().join(format!("swarm-{name}"));
        std::fs::write(&file, secret).unwrap();
        Swarm::docker(1, &["secret", "create", name, file.to_str().unwrap()]);
        std::fs::remove_file(file).unwrap();
    }
}

/// `docker stack deploy`, its variables from the fakes and the services.
fn deploy(fakes: &Fakes, external: &External, image: &str, links_image: &str) {
    let value = |key| external.var(key);
    let stack_file = repo().join("deploy/swarm/aishad.stack.yml");
    let output = Swarm::cli(1)
        .envs([
            ("AISHAD_IMAGE", image.to_owned()),
            ("AISHAD_LINKS_IMAGE", links_image.to_owned()),
            ("TELEGRAM_API_URL", fakes.telegram.url()),
            ("OPENAI_BASE_URL", fakes.openai.url()),
            ("FAL_QUEUE_URL", fakes.fal.queue_url()),
            ("FAL_JWKS_URL", fakes.fal.jwks_url()),
            ("AISHA_FAL__INSECURE_HTTP", "true".into()),
            ("AISHA_FAL__USER_ID", aisha_testkit::fal::FAL_USER_ID.into()),
            // A listener's node, as a load balancer in front of them would be.
            ("FAL_WEBHOOK_URL", "http://10.231.0.11:8080/webhooks/fal".into()),
            ("MINIO_ENDPOINT", value("MINIO_ENDPOINT")),
            ("MINIO_SECURE", "false".into()),
            ("MINIO_BUCKET_NAME", value("MINIO_BUCKET_NAME")),
            ("AISHA_REDIS__KEY_PREFIX", value("AISHA_REDIS__KEY_PREFIX")),
            ("AISHA_S3__KEY_PREFIX", value("AISHA_S3__KEY_PREFIX")),
            ("AISHA_TELEGRAM__LEASE_TTL", "6s".into()),
        ])
        .args(["stack", "deploy", "--resolve-image", "never", "-c", stack_file.to_str().unwrap(), STACK])
        .output()
        .expect("docker stack deploy");
    engine::check("docker stack deploy", &output);
}

/// Waits until every service has all its replicas running and healthy,
/// none of them on the node `dead` (whose tasks the swarm still lists as
/// running until it declares the node down).
async fn converged(expected: &[(&str, usize)], dead: Option<u32>, timeout: Duration) -> Duration {
    let started = Instant::now();
    let dead = dead.map(|n| format!("aisha-node{n}"));
    loop {
        let done = expected.iter().all(|(service, n)| {
            Swarm::tasks(1, service).iter().filter(|(_, node)| Some(node) != dead.as_ref()).count() == *n
        });
        if done && all_healthy() {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < timeout,
            "the stack did not converge within {timeout:?}: {}",
            Swarm::docker(1, &["service", "ls"])
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Every aishad container on every live node reports healthy.
fn all_healthy() -> bool {
    (1..=3).filter(|n| node_alive(*n)).all(|n| {
        let states = Swarm::docker(
            n,
            &["ps", "--filter", &format!("label=com.docker.stack.namespace={STACK}"), "--format", "{{.Status}}"],
        );
        states.lines().all(|s| s.contains("(healthy)"))
    })
}

fn node_alive(n: u32) -> bool {
    Swarm::cli(n).arg("info").output().is_ok_and(|o| o.status.success())
}

fn transcripts(fakes: &Fakes, user: i64) -> usize {
    fakes.telegram.sent_texts(user).iter().filter(|t| t.starts_with("📝")).count()
}

async fn welcome(fakes: &Fakes, users: &[i64]) {
    for &user in users {
        fakes.telegram.push_text(user, "en", "/start");
    }
    engine::until("every user welcomed", Duration::from_secs(60), || {
        users.iter().all(|&u| !fakes.telegram.sent_texts(u).is_empty())
    })
    .await;
}

async fn all_transcribed_once(fakes: &Fakes, users: &[i64], timeout: Duration) -> Duration {
    let took =
        engine::until("every note transcribed", timeout, || users.iter().all(|&u| transcripts(fakes, u) >= 1)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    for &user in users {
        assert_eq!(transcripts(fakes, user), 1, "user {user}: one transcript");
    }
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_stack_spreads_over_three_nodes_rolls_and_survives_a_killed_node() {
    let release = image_id(&aishad_image());
    let next = next_release();
    let swarm_up = Instant::now();
    let links = links_image();
    let _swarm = Swarm::up(&[&aishad_image(), &next, &links]);
    figure("swarm 3 nodes formed and 3 images loaded", format!("{:.1} s", swarm_up.elapsed().as_secs_f64()));
    let fakes = Fakes::start_on(LAN).await;
    let external = External::start("stack_swarm", LAN).await;
    create_secrets(&external);
    deploy(&fakes, &external, &release, &image_id(&links));
    let services = [("poller", 2), ("worker", 3), ("webhook", 2), ("links-worker", 1)];
    let took = converged(&services, None, Duration::from_secs(180)).await;
    figure("swarm stack deployed to healthy", format!("{:.1} s", took.as_secs_f64()));

    // Spread: each worker on a node of its own, the pollers and listeners on two.
    for (service, n) in services {
        let nodes: BTreeSet<String> = Swarm::tasks(1, service).into_iter().map(|(_, node)| node).collect();
        assert_eq!(nodes.len(), n, "{service}: one task a node: {nodes:?}");
    }

    // Each listener answers on its node's own address (host-mode publishing): an unsigned callback is refused.
    for (_, node) in Swarm::tasks(1, "webhook") {
        let n: u8 = node.trim_start_matches("aisha-node").parse().unwrap();
        let url = format!("http://10.231.0.1{n}:8080/webhooks/fal");
        let status = reqwest::Client::new().post(&url).body("{}").send().await.map(|r| r.status().as_u16());
        assert!(matches!(status, Ok(400..=499)), "{url}: {status:?}");
    }

    // A chat and a transcription.
    let first: Vec<i64> = vec![9001];
    welcome(&fakes, &first).await;
    fakes.telegram.push_voice(9001, "en", 2, voice_note("Hello from the swarm."));
    all_transcribed_once(&fakes, &first, Duration::from_secs(60)).await;

    // Links are on: the chat reads them (a private one is refused, nothing queued), and
    // only the links image's worker takes link jobs (the main image has no yt-dlp).
    fakes.telegram.push_text(9001, "en", "Transcribe http://10.0.0.1/talk.mp3 please");
    engine::until("the link refused", WAIT, || {
        fakes.telegram.sent_texts(9001).iter().any(|t| t.contains("does not lead to a public website"))
    })
    .await;
    // Both streams: aishad logs to stderr, which `docker service logs` keeps apart.
    let logs = |service: &str| {
        let out = Swarm::cli(1).args(["service", "logs", "--raw", &format!("{STACK}_{service}")]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    let no_ytdlp = "yt-dlp does not run here";
    let worker_logs = logs("worker");
    assert!(
        worker_logs.contains(no_ytdlp),
        "the main image's workers leave link jobs alone: {}",
        &worker_logs[..worker_logs.len().min(3000)]
    );
    assert!(!logs("links-worker").contains(no_ytdlp), "the links worker takes them");

    // A rolling update to the next release while voice notes keep arriving.
    let users: Vec<i64> = (9100..9140).collect();
    welcome(&fakes, &users).await;
    let next_id = image_id(&next);
    let sender = {
        let telegram = fakes.telegram.clone();
        let users = users.clone();
        tokio::spawn(async move {
            for user in users {
                telegram.push_voice(user, "en", 2, voice_note("Said during a rolling update."));
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        })
    };
    let update = Instant::now();
    let updates: Vec<_> = ["worker", "poller", "webhook"]
        .map(|service| {
            let next_id = next_id.clone();
            std::thread::spawn(move || {
                Swarm::docker(
                    1,
                    &[
                        "service",
                        "update",
                        "--quiet",
                        "--detach=false",
                        "--image",
                        &next_id,
                        &format!("{STACK}_{service}"),
                    ],
                )
            })
        })
        .into_iter()
        .collect();
    for update in updates {
        update.join().expect("docker service update");
    }
    figure(
        "swarm rolling update of the worker, poller and webhook services",
        format!("{:.1} s", update.elapsed().as_secs_f64()),
    );
    sender.await.unwrap();
    all_transcribed_once(&fakes, &users, Duration::from_secs(120)).await;
    for service in ["worker", "poller", "webhook"] {
        let image = Swarm::docker(
            1,
            &[
                "service",
                "inspect",
                &format!("{STACK}_{service}"),
                "--format",
                "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
            ],
        );
        assert_eq!(image, next_id, "{service} runs the next release");
    }
    external.test.assert_ledger_balanced().await;

    queue_spike_met_by_pulling_workers(&fakes, &external).await;

    // A node killed while its worker holds jobs.
    let victims: Vec<i64> = (9200..9206).collect();
    welcome(&fakes, &victims).await;
    fakes.openai.set_latency(Duration::from_secs(4));
    for &user in &victims {
        fakes.telegram.push_voice(user, "en", 2, voice_note("Said just before a node dies."));
    }
    let (node, held) = held_on_a_follower(&external, Duration::from_secs(30)).await;
    Swarm::script(&["kill", &node.to_string()]);
    let killed = Instant::now();
    fakes.openai.set_latency(Duration::ZERO);
    let answered = engine::until("the dead node's jobs answered", Duration::from_secs(60), || {
        held.iter().all(|&u| transcripts(&fakes, u) >= 1)
    })
    .await;
    figure("swarm node SIGKILLed: its jobs answered elsewhere after", format!("{:.1} s", answered.as_secs_f64()));
    assert!(answered <= Duration::from_secs(10), "{answered:?} after the kill");
    all_transcribed_once(&fakes, &victims, Duration::from_secs(60)).await;
    converged(&[("worker", 3)], Some(node), Duration::from_secs(120)).await;
    figure("swarm killed node's worker rescheduled after", format!("{:.1} s", killed.elapsed().as_secs_f64()));
    let charges: i64 =
        external.scalar("SELECT count(*) FROM ledger_entries WHERE job_id IS NOT NULL AND reason <> 'charge'").await;
    assert_eq!(charges, 0, "no refund nor second charge");
    external.test.assert_ledger_balanced().await;
}

/// One worker on a release only its node has pulled; voice notes pile up;
/// the workers are scaled to 3, as an operator or an autoscaler would on
/// the queue's age. Figures: the spike to the first claim by a new worker,
/// and to the image on its node.
async fn queue_spike_met_by_pulling_workers(fakes: &Fakes, external: &External) {
    let unseen = unseen_release();
    let service = format!("{STACK}_worker");
    Swarm::docker(
        1,
        &[
            "service",
            "update",
            "--quiet",
            "--detach=false",
            "--no-resolve-image",
            "--replicas",
            "1",
            "--image",
            &unseen,
            &service,
        ],
    );
    converged(&[("worker", 1)], None, Duration::from_secs(120)).await;
    let first: Vec<(u32, String)> = Swarm::tasks(1, "worker");
    let without: Vec<u32> =
        (1..=3).filter(|n| !first.iter().any(|(_, node)| *node == format!("aisha-node{n}"))).collect();
    for &n in &without {
        assert!(!Swarm::has_image(n, &unseen), "node {n} has not pulled the release yet");
    }

    let crowd: Vec<i64> = (9300..9340).collect();
    welcome(fakes, &crowd).await;
    fakes.openai.set_latency(Duration::from_secs(3));
    for &user in &crowd {
        fakes.telegram.push_voice(user, "en", 2, voice_note("Said in a queue spike."));
    }
    let waiting = "SELECT count(*) FROM jobs WHERE kind = 'transcribe' AND state = 'queued'";
    let started = Instant::now();
    while external.scalar(waiting).await < 20 {
        assert!(started.elapsed() < Duration::from_secs(30), "the queue did not spike");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let spiked = Instant::now();
    Swarm::docker(1, &["service", "scale", "--detach=true", &format!("{service}=3")]);
    let old: Vec<String> = first.iter().map(|(slot, _)| format!("{service}-{slot}")).collect();
    let mut pulled = None;
    let claimed = loop {
        if pulled.is_none() && without.iter().any(|&n| Swarm::has_image(n, &unseen)) {
            pulled = Some(spiked.elapsed());
        }
        let new_claims: i64 = external
            .scalar(&format!(
                "SELECT count(*) FROM jobs WHERE kind = 'transcribe' AND state = 'running'
                 AND split_part(locked_by, '#', 1) LIKE '{service}-%' AND split_part(locked_by, '#', 1) NOT IN ({})",
                old.iter().map(|o| format!("'{o}'")).collect::<Vec<_>>().join(", ")
            ))
            .await;
        if new_claims > 0 {
            break spiked.elapsed();
        }
        assert!(spiked.elapsed() < Duration::from_secs(90), "no new worker claimed a job");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let pulled = pulled.expect("a new worker's node pulled the release before it claimed");
    figure(
        "swarm queue spike → image pulled on a new worker's node (workers 1 → 3)",
        format!("{:.1} s", pulled.as_secs_f64()),
    );
    figure(
        "swarm queue spike → a new worker's first claim (image pulled first)",
        format!("{:.1} s", claimed.as_secs_f64()),
    );
    fakes.openai.set_latency(Duration::ZERO);
    all_transcribed_once(fakes, &crowd, Duration::from_secs(120)).await;
    converged(&[("worker", 3)], None, Duration::from_secs(120)).await;
    external.test.assert_ledger_balanced().await;
}

/// Waits until a worker on node 2 or 3 (not the leader's) holds transcriptions; returns its node and users.
async fn held_on_a_follower(external: &External, timeout: Duration) -> (u32, Vec<i64>) {
    let started = Instant::now();
    loop {
        let slots: BTreeMap<u32, String> = Swarm::tasks(1, "worker").into_iter().collect();
        let db = external.test.db().await;
        let rows = db
            .query(
                "SELECT split_part(j.locked_by, '#', 1), u.telegram_id FROM jobs j JOIN users u ON u.id = j.user_id
                 WHERE j.kind = 'transcribe' AND j.state = 'running'",
                &[],
            )
            .await
            .unwrap();
        for row in &rows {
            let instance: String = row.get(0);
            if !instance.starts_with(&format!("{STACK}_worker-")) {
                continue;
            }
            let Some(slot) = instance.rsplit('-').next().and_then(|s| s.parse::<u32>().ok()) else { continue };
            let Some(node) = slots.get(&slot) else { continue };
            let n: u32 = node.trim_start_matches("aisha-node").parse().unwrap_or(1);
            if n != 1 {
                let users = rows.iter().filter(|r| r.get::<_, String>(0) == instance).map(|r| r.get(1)).collect();
                return (n, users);
            }
        }
        assert!(started.elapsed() < timeout, "no worker on a follower node took a job");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
