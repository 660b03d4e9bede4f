//! Every container of the shipped deployment files, started the way its
//! runtime starts it, as a process of the daemon built here: the command
//! line, exactly the environment and secret files its file gives it, and
//! the operator's inputs that file documents (docs/operations.md,
//! "Deploying"), nothing more. No cluster is needed to catch a missing
//! setting: a pod that would exit 78 on Kubernetes exits 78 here.
//!
//! Besides those, the test sets only what stands between a process and a
//! container here: where the outside APIs are (the fakes, over plain http),
//! the listen addresses (a pod has its own network; these processes share
//! loopback), this test's Redis and S3 key prefixes, and a short long-poll.
//! Each container then shows it can do its role's work.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aisha_testkit::shipped::{self, Container, Inputs};
use aisha_testkit::{fal::FAL_USER_ID, Daemon, FakeFal, FakeOpenAi, FakeTelegram, TestServices};

const WAIT: Duration = Duration::from_secs(30);
const USER: i64 = 7301;
/// The kinds a worker on the main image claims (the links image adds `link.*`).
const WORKER_KINDS: [&str; 7] =
    ["transcribe", "transcript.digest", "fal.imagine", "fal.generate", "fal.train", "fal.deliver", "fal.poll"];

/// What a worker on the links image claims besides.
const LINK_KINDS: [&str; 2] = ["link.probe", "link.transcribe"];

struct World {
    services: TestServices,
    telegram: FakeTelegram,
    openai: FakeOpenAi,
    fal: FakeFal,
    webhook_port: u16,
}

impl World {
    async fn start(name: &str) -> Self {
        Self {
            services: TestServices::new(name).await,
            telegram: FakeTelegram::start("7301:shipped-token").await,
            openai: FakeOpenAi::start("sk-shipped-openai").await,
            fal: FakeFal::start("shipped-fal-key").await,
            webhook_port: aisha_testkit::free_port(),
        }
    }

    /// The public URL of /webhooks/fal: here, the one listener's loopback port.
    fn fal_webhook_url(&self) -> String {
        format!("http://127.0.0.1:{}/webhooks/fal", self.webhook_port)
    }

    /// What an operator gives a Kubernetes overlay: the Secret's keys and
    /// the overlay's inputs.env.
    fn kubernetes_inputs(&self) -> Inputs {
        let s = &self.services;
        Inputs::new([
            ("telegram-token", self.telegram.token.clone()),
            ("openai-api-key", self.openai.api_key.clone()),
            ("fal-key", self.fal.key.clone()),
            ("fal-files-secret", "shipped-files-secret".into()),
            ("s3-access-key", s.s3_access_key.clone()),
            ("s3-secret-key", s.s3_secret_key.clone()),
            ("database-url", s.database_url.clone()),
            ("redis-url", s.redis_url.clone()),
            ("MINIO_ENDPOINT", s.s3_endpoint.clone()),
            ("MINIO_SECURE", "false".into()),
            ("MINIO_BUCKET_NAME", s.s3_bucket.clone()),
            ("FAL_WEBHOOK_URL", self.fal_webhook_url()),
            ("AISHA_FAL__USER_ID", FAL_USER_ID.into()),
        ])
    }

    /// What an operator gives the Swarm stack: its variables and swarm secrets.
    fn swarm_inputs(&self) -> Inputs {
        let s = &self.services;
        Inputs::new([
            ("AISHAD_IMAGE", "registry.example/aishad:0.1.0".to_owned()),
            ("AISHAD_LINKS_IMAGE", "registry.example/aishad-links:0.1.0".into()),
            ("MINIO_ENDPOINT", s.s3_endpoint.clone()),
            ("MINIO_SECURE", "false".into()),
            ("MINIO_BUCKET_NAME", s.s3_bucket.clone()),
            ("FAL_WEBHOOK_URL", self.fal_webhook_url()),
            ("AISHA_FAL__USER_ID", FAL_USER_ID.into()),
            ("aishad_telegram_token", self.telegram.token.clone()),
            ("aishad_openai_api_key", self.openai.api_key.clone()),
            ("aishad_fal_key", self.fal.key.clone()),
            ("aishad_fal_files_secret", "shipped-files-secret".into()),
            ("aishad_s3_access_key", s.s3_access_key.clone()),
            ("aishad_s3_secret_key", s.s3_secret_key.clone()),
            ("aishad_database_url", s.database_url.clone()),
            ("aishad_redis_url", s.redis_url.clone()),
        ])
    }

    /// What an operator puts in the `.env` the production compose files read.
    fn compose_inputs(&self) -> Inputs {
        let s = &self.services;
        Inputs::new([
            ("TELEGRAM_BOT_TOKEN", self.telegram.token.clone()),
            ("OPENAI_API_KEY", self.openai.api_key.clone()),
            ("FAL_KEY", self.fal.key.clone()),
            ("FAL_WEBHOOK_URL", self.fal_webhook_url()),
            ("AISHA_FAL__FILES_SECRET", "shipped-files-secret".into()),
            ("AISHA_FAL__USER_ID", FAL_USER_ID.into()),
            ("DATABASE_URL", s.database_url.clone()),
            ("REDIS_URL", s.redis_url.clone()),
            ("MINIO_ENDPOINT", s.s3_endpoint.clone()),
            ("MINIO_SECURE", "false".into()),
            ("MINIO_BUCKET_NAME", s.s3_bucket.clone()),
            ("MINIO_ACCESS_KEY", s.s3_access_key.clone()),
            ("MINIO_SECRET_KEY", s.s3_secret_key.clone()),
            ("AISHAD_IMAGE", "registry.example/aishad:0.1.0".into()),
            ("AISHAD_LINKS_IMAGE", "registry.example/aishad-links:0.1.0".into()),
            ("AISHA_LINKS__ENABLED", "true".into()),
            ("WEBHOOK_SERVER_NAME", "bot.example.com".into()),
        ])
    }

    /// The container's own environment, plus what stands in for a container
    /// runtime here (see the module's comment), and nothing the file must say.
    fn environment(&self, container: &Container) -> Vec<(String, String)> {
        self.environment_on(container, self.webhook_port)
    }

    /// The same, a listener on `webhook_port`.
    fn environment_on(&self, container: &Container, webhook_port: u16) -> Vec<(String, String)> {
        let webhook_bind =
            if container.mode() == "webhook" { format!("127.0.0.1:{webhook_port}") } else { "127.0.0.1:0".into() };
        let stand_ins = [
            ("TELEGRAM_API_URL", self.telegram.url()),
            ("OPENAI_BASE_URL", self.openai.url()),
            ("FAL_QUEUE_URL", self.fal.queue_url()),
            ("FAL_JWKS_URL", self.fal.jwks_url()),
            ("AISHA_FAL__INSECURE_HTTP", "true".into()),
            ("TELEMETRY_BIND", "127.0.0.1:0".into()),
            ("WEBHOOK_BIND", webhook_bind),
            ("AISHA_REDIS__KEY_PREFIX", self.services.redis_prefix.clone()),
            ("AISHA_S3__KEY_PREFIX", self.services.s3_prefix.clone()),
            ("AISHA_TELEGRAM__POLL_TIMEOUT", "1s".into()),
        ];
        let mut env: BTreeMap<String, String> = container.env.clone();
        env.extend(stand_ins.map(|(k, v)| (k.to_owned(), v)));
        env.into_iter().collect()
    }
}

fn bin() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_BIN_EXE_aishad"))
}

/// Runs every container: init containers to completion first, then the
/// listeners (FAL must be able to call back before a worker submits), then
/// the rest; each is healthy and ready.
async fn start_all(world: &World, containers: &[Container]) -> Vec<(Container, Daemon)> {
    for init in containers.iter().filter(|c| c.init) {
        let mut daemon = Daemon::start_shipped(bin(), init, &world.environment(init));
        let code = daemon.wait(WAIT).await;
        assert_eq!(code, 0, "{}: exit {code}; logs:\n{}", init.at, daemon.logs().join("\n"));
    }
    let mut running = Vec::new();
    let mut order: Vec<&Container> = containers.iter().filter(|c| !c.init).collect();
    order.sort_by_key(|c| c.mode() != "webhook");
    for (n, container) in order.into_iter().enumerate() {
        // Listeners first: the first one is where FAL calls back.
        let port = if n == 0 { world.webhook_port } else { aisha_testkit::free_port() };
        let daemon = Daemon::start_shipped(bin(), container, &world.environment_on(container, port));
        let telemetry = tokio::time::timeout(WAIT, daemon.telemetry_addr()).await.unwrap_or_else(|_| {
            panic!("{}: did not start; logs:\n{}", container.at, daemon.logs().join("\n"));
        });
        for probe in ["healthz", "readyz"] {
            let url = format!("http://{telemetry}/{probe}");
            aisha_testkit::eventually_async(&format!("{}: /{probe}", container.at), WAIT, || async {
                reqwest::get(&url).await.map(|r| r.status().is_success()).unwrap_or(false)
            })
            .await;
        }
        running.push((container.clone(), daemon));
    }
    running
}

/// Each role does its work: the poller answers a chat, every worker claims
/// each kind, a text-to-image job goes to FAL with the listener's URL, FAL's
/// signed callback is stored there, and the image reaches the user.
async fn every_role_works(world: &World, running: &[(Container, Daemon)]) {
    let modes: Vec<&str> = running.iter().map(|(c, _)| c.mode()).collect();
    for mode in ["polling", "worker", "webhook"] {
        assert!(modes.contains(&mode), "a {mode} container among {modes:?}");
    }
    assert!(running.iter().any(|(c, _)| c.at.contains("links")), "a links worker");
    let listeners: Vec<&Daemon> = running.iter().filter(|(c, _)| c.mode() == "webhook").map(|(_, d)| d).collect();
    for (container, daemon) in running.iter().filter(|(c, _)| c.mode() == "worker") {
        let text = daemon.metrics().await;
        let links = container.at.contains("links").then_some(LINK_KINDS).into_iter().flatten();
        for kind in WORKER_KINDS.into_iter().chain(links) {
            let line = format!("aishad_pool_workers{{kind=\"{kind}\"}} 1");
            assert!(text.contains(&line), "{}: claims {kind}:\n{text}", container.at);
        }
    }
    let telegram = &world.telegram;
    telegram.push_text(USER, "en", "/start");
    aisha_testkit::eventually("the welcome", WAIT, || !telegram.sent_texts(USER).is_empty()).await;
    telegram.push_text(USER, "en", "/imagine a lighthouse at dawn");
    aisha_testkit::eventually("the image", WAIT, || telegram.count("sendPhoto") == 1).await;
    let submission = world.fal.submissions().into_iter().next().expect("a FAL submission");
    assert_eq!(submission.webhook.as_deref(), Some(world.fal_webhook_url().as_str()), "FAL is told the listener");
    let callbacks = world.fal.callbacks_sent();
    assert!(callbacks.iter().any(|(_, status)| *status == 200), "the listener took FAL's callback: {callbacks:?}");
    let stored = world.services.scalar("SELECT count(*) FROM fal_callbacks WHERE source = 'webhook'").await;
    assert_eq!(stored, 1, "the callback is stored");
    // Every other listener takes a signed callback too.
    for (n, listener) in listeners.iter().enumerate().skip(1) {
        let url = webhook_url_of(listener).await;
        let request_id = format!("shipped-listener-{n}");
        let body = world.fal.callback_body(&request_id, &aisha_testkit::fal::Outcome::Ok, serde_json::json!({}));
        assert_eq!(world.fal.deliver(&url, &request_id, &body).await, 200, "{url}");
    }
    let stored = world.services.scalar("SELECT count(*) FROM fal_callbacks WHERE source = 'webhook'").await;
    assert_eq!(stored as usize, listeners.len(), "one callback stored by each listener");
    world.services.assert_ledger_balanced().await;
}

/// A listener's /webhooks/fal, from its start-up log line.
async fn webhook_url_of(daemon: &Daemon) -> String {
    let line = daemon.wait_for_log("webhook listener accepting", WAIT).await;
    let value: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
    format!("http://{}/webhooks/fal", value["addr"].as_str().expect("the listener's address"))
}

/// A stopping worker keeps the paid calls in flight: its drain outlasts the
/// longest of them (`openai.timeout`), whatever the file's kill waits for.
fn workers_drain_past_the_longest_paid_call(containers: &[Container]) {
    let longest = aisha_actors::settings::OpenAiSettings::default().timeout;
    for worker in containers.iter().filter(|c| c.mode() == "worker" && !c.init) {
        let grace =
            worker.env.get("AISHA_SUPERVISOR__SHUTDOWN_GRACE").unwrap_or_else(|| panic!("{}: a drain", worker.at));
        let grace = humantime::parse_duration(grace).unwrap();
        assert!(grace > longest, "{}: drains {grace:?}, past a call of {longest:?}", worker.at);
    }
}

async fn runs_as_shipped(world: &World, deployment: &str, containers: &[Container], inputs: &Inputs) {
    assert!(inputs.unread().is_empty(), "{deployment}: inputs no file asks for: {:?}", inputs.unread());
    workers_drain_past_the_longest_paid_call(containers);
    assert_eq!(inputs.names(), documented_inputs(deployment), "{deployment}: the inputs docs/operations.md lists");
    let running = start_all(world, containers).await;
    every_role_works(world, &running).await;
}

/// The inputs of `deployment` in docs/operations.md's table ("Deploying: what you set").
fn documented_inputs(deployment: &str) -> BTreeSet<String> {
    let doc = std::fs::read_to_string(shipped::repo().join("docs/operations.md")).unwrap();
    doc.lines()
        .filter_map(|line| line.strip_prefix(&format!("| {deployment} | `")))
        .map(|rest| rest.split('`').next().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_container_of_the_kubernetes_dev_overlay_starts_as_shipped_and_does_its_work() {
    let world = World::start("shipped_k8s_dev").await;
    let inputs = world.kubernetes_inputs();
    let containers = shipped::kubernetes_containers("dev", &shipped::kustomize("overlays/dev"), &inputs);
    runs_as_shipped(&world, "kubernetes", &containers, &inputs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_container_of_the_kubernetes_prod_overlay_starts_as_shipped_and_does_its_work() {
    let world = World::start("shipped_k8s_prod").await;
    let inputs = world.kubernetes_inputs();
    let containers = shipped::kubernetes_containers("prod", &shipped::kustomize("overlays/prod"), &inputs);
    runs_as_shipped(&world, "kubernetes", &containers, &inputs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_service_of_the_swarm_stack_starts_as_shipped_and_does_its_work() {
    let world = World::start("shipped_swarm").await;
    let inputs = world.swarm_inputs();
    let containers =
        shipped::swarm_containers("aisha", &shipped::repo().join("deploy/swarm/aishad.stack.yml"), &inputs);
    runs_as_shipped(&world, "swarm", &containers, &inputs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_aishad_container_of_the_production_compose_files_starts_as_shipped_and_does_its_work() {
    let world = World::start("shipped_compose").await;
    let inputs = world.compose_inputs();
    let file = |name: &str| shipped::repo().join(name);
    let mut containers = shipped::compose_containers(&file("docker-compose.bot.simple.yml"), &inputs, &["links"]);
    containers.extend(shipped::compose_containers(&file("docker-compose.webhook.prod.yml"), &inputs, &[]));
    runs_as_shipped(&world, "compose", &containers, &inputs).await;
}

#[tokio::test]
async fn an_overlay_applied_unedited_stops_every_pod_at_start_naming_what_to_set() {
    let world = World::start("shipped_unedited").await;
    let untouched = Inputs::new(
        shipped::secret_keys(&shipped::kustomize("overlays/prod"), "aishad-secrets").into_iter().map(|k| {
            let value = world.kubernetes_inputs().get(&k).unwrap();
            (k, value)
        }),
    );
    let containers = shipped::kubernetes_containers("prod", &shipped::kustomize("overlays/prod"), &untouched);
    let worker = containers.iter().find(|c| c.mode() == "worker" && !c.init).unwrap();
    let mut daemon = Daemon::start_shipped(bin(), worker, &world.environment(worker));
    assert_eq!(daemon.wait(WAIT).await, 78, "{}", daemon.logs().join("\n"));
    let logs = daemon.logs().join("\n");
    assert!(logs.contains("replace-me") && logs.contains("Deploying"), "says what to set: {logs}");
}

#[test]
fn every_compose_input_is_a_line_of_env_example() {
    let example = std::fs::read_to_string(shipped::repo().join(".env.example")).unwrap();
    for name in documented_inputs("compose") {
        let line = |l: &str| l.trim_start_matches("# ").starts_with(&format!("{name}="));
        assert!(example.lines().any(line), ".env.example lacks {name}");
    }
}

#[test]
fn production_files_name_the_released_image_never_latest() {
    let version = env!("CARGO_PKG_VERSION");
    for file in ["docker-compose.bot.simple.yml", "docker-compose.webhook.prod.yml", ".env.example"] {
        let text = std::fs::read_to_string(shipped::repo().join(file)).unwrap();
        assert!(text.contains(&format!("aisha/aishad:{version}")), "{file}: the released version {version}");
        assert!(!text.contains("aishad:latest"), "{file} names aishad:latest");
    }
    let prod = shipped::kustomize("overlays/prod");
    for deployment in shipped::of_kind(&prod, "Deployment") {
        for container in deployment["spec"]["template"]["spec"]["containers"].as_array().unwrap() {
            let image = container["image"].as_str().unwrap();
            assert!(image.ends_with(&format!(":{version}")), "{}: {image}", shipped::name(deployment));
        }
    }
}
