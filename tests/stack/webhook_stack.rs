//! docker-compose.webhook.prod.yml: two listeners behind nginx with TLS (a
//! throwaway certificate): signed FAL callbacks over HTTPS stored once each,
//! none lost or answered 5xx while one listener is down, and nothing served
//! but the routes nginx is meant to pass.

use std::time::Duration;

use aisha_testkit::fal::unix_now;
use aisha_testkit::free_port;
use serde_json::json;

use super::deploy::{repo, Deployment};
use super::{engine, figure, image, prometheus, External, Fakes};

const LISTENERS: [&str; 2] = ["aisha-webhook-api-1", "aisha-webhook-api-2"];

/// nginx's certificate for localhost, from scripts/certs.sh's throwaway CA;
/// returns that CA, which the senders trust.
fn certificate(stack: &Deployment) -> reqwest::Certificate {
    let certs = stack.dir.join("certs");
    let script = repo().join("scripts/certs.sh");
    engine::ok(
        &stack.dir,
        "bash",
        &[script.to_str().unwrap(), "issue", "certs", "localhost", "DNS:localhost,IP:127.0.0.1"],
    );
    std::fs::rename(certs.join("localhost.crt"), certs.join("fullchain.pem")).expect("fullchain.pem");
    std::fs::rename(certs.join("localhost.key"), certs.join("privkey.pem")).expect("privkey.pem");
    let ca = engine::ok(&stack.dir, "bash", &[script.to_str().unwrap(), "ca"]);
    let pem = std::fs::read(ca.trim()).expect("CA certificate");
    reqwest::Certificate::from_pem(&pem).expect("PEM certificate")
}

/// Posts a callback FAL would send for `request_id`; returns the status.
async fn callback(http: &reqwest::Client, fakes: &Fakes, base: &str, request_id: &str) -> u16 {
    let body = serde_json::to_vec(&json!({
        "request_id": request_id, "gateway_request_id": request_id, "status": "OK",
        "payload": { "images": [{ "url": format!("{}/files/image-1.png", fakes.fal.queue_url()) }] },
    }))
    .expect("body");
    let mut request =
        http.post(format!("{base}/webhooks/fal")).header("content-type", "application/json").body(body.clone());
    for (name, value) in fakes.fal.sign(request_id, unix_now(), &body) {
        request = request.header(name, value);
    }
    match request.send().await {
        Ok(response) => response.status().as_u16(),
        Err(e) => panic!("callback {request_id} not delivered: {}", aisha_actors::error::chain(&e)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn callbacks_over_tls_are_stored_once_survive_a_listener_going_down_and_nothing_else_is_served() {
    let fakes = Fakes::start().await;
    let external = External::start("stack_webhook", fakes.bridge).await;
    let port = free_port();
    let prometheus_port = free_port();
    let monitoring = prometheus::test_copy_of("webhook", "prometheus.webhook.yml");
    let mut env = super::env_without(&fakes, &external, "");
    env.extend([
        ("NGINX_IMAGE", image("NGINX_IMAGE")),
        ("WEBHOOK_HTTPS_PORT", port.to_string()),
        ("WEBHOOK_SERVER_NAME", "localhost".to_owned()),
        ("NGINX_CERTS_DIR", "./certs".to_owned()),
        ("PROMETHEUS_IMAGE", image("PROMETHEUS_IMAGE")),
        ("PROMETHEUS_PORT", prometheus_port.to_string()),
        ("PROMETHEUS_CONFIG", monitoring.config.clone()),
        ("PROMETHEUS_RULES", monitoring.rules.clone()),
    ]);
    let stack = Deployment::new("docker-compose.webhook.prod.yml", "aisha-stack-webhook", &env);
    let certificate = certificate(&stack);
    stack.compose(&["--profile", "monitoring", "up", "-d"]);
    for listener in LISTENERS {
        let cold = stack.healthy(listener, 1, Duration::from_secs(120)).await;
        figure(&format!("webhook {listener} start to healthy"), format!("{:.1} s", cold.as_secs_f64()));
    }
    let http = reqwest::Client::builder()
        .add_root_certificate(certificate)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let base = format!("https://localhost:{port}");
    engine::until("nginx answers", Duration::from_secs(60), || {
        engine::run(&stack.dir, "curl", &["-s", "-o", "/dev/null", "-k", &format!("{base}/webhooks/fal")]).status.code()
            != Some(7)
    })
    .await;
    for name in LISTENERS.iter().chain(["aisha-nginx-webhook"].iter()) {
        figure(&format!("webhook {name} RSS"), engine::rss(&stack.container(name, 1)));
    }

    // Each callback twice, as FAL retries: stored once each.
    let ids: Vec<String> = (0..40).map(|i| format!("stack-req-{i}")).collect();
    for id in &ids {
        assert_eq!(callback(&http, &fakes, &base, id).await, 200);
        assert_eq!(callback(&http, &fakes, &base, id).await, 200);
    }
    assert_eq!(external.scalar("SELECT count(*) FROM fal_callbacks").await, 40);

    // One listener down: nginx passes every callback to the other.
    stack.compose(&["stop", LISTENERS[0]]);
    let mut statuses = Vec::new();
    for i in 40..80 {
        statuses.push(callback(&http, &fakes, &base, &format!("stack-req-{i}")).await);
    }
    if !statuses.iter().all(|&s| s == 200) {
        let logs = stack.compose(&["logs", "--no-color", "aisha-nginx-webhook", LISTENERS[1]]);
        let ps = stack.compose(&["ps", "-a"]);
        panic!("no sender sees a 5xx: {statuses:?}\n{ps}\n{logs}");
    }
    assert_eq!(external.scalar("SELECT count(*) FROM fal_callbacks").await, 80);

    // Nothing but /webhooks/ (and GET /files/) gets through.
    for path in [
        "/",
        "/metrics",
        "/healthz",
        "/readyz",
        "/files",
        "/files/",
        "/files/a/b",
        "/.env",
        "/webhooks",
        "/webhooks/",
        "/webhooks/other",
    ] {
        let status = http.get(format!("{base}{path}")).send().await.expect("request").status().as_u16();
        assert_eq!(status, 404, "GET {path}");
    }
    let status = http.post(format!("{base}/files/anything")).send().await.expect("request").status().as_u16();
    assert_eq!(status, 403, "POST /files/ is refused");
    let status = http.get(format!("{base}/webhooks/fal")).send().await.expect("request").status().as_u16();
    assert_eq!(status, 403, "GET /webhooks/fal is refused by nginx");
    let logs = stack.compose(&["logs", "--no-color", "aisha-nginx-webhook"]);
    assert!(
        logs.contains("/files/(token)") && !logs.contains("/files/anything"),
        "file tokens stay out of nginx's logs:\n{logs}"
    );
    let unsigned =
        http.post(format!("{base}/webhooks/fal")).body("{}").send().await.expect("request").status().as_u16();
    assert_eq!(unsigned, 401, "an unsigned callback is refused");
    let plain =
        reqwest::get(format!("http://localhost:{port}/webhooks/fal")).await.map(|r| r.status().as_u16()).unwrap_or(0);
    assert_ne!(plain, 200, "no plain HTTP");

    // Its Prometheus, where the file says (127.0.0.1:PROMETHEUS_PORT), sees only listeners: one is
    // down (stopped above), and nothing pages for a poller or worker it was never meant to see.
    let prometheus = format!("http://127.0.0.1:{prometheus_port}");
    prometheus::has_series(&prometheus, "up{job=\"aishad-webhook\",namespace=\"aisha\"} == 1", "aishad-webhook").await;
    prometheus::firing(&prometheus, "AishadTargetDown", "").await;
    let paged: Vec<String> = prometheus::alerts(&prometheus)
        .await
        .into_iter()
        .filter(|(name, _)| ["AishadNoPollerLeader", "AishadNoWorkerForKind"].contains(&name.as_str()))
        .map(|(name, labels)| format!("{name} {labels}"))
        .collect();
    assert!(paged.is_empty(), "a listeners-only Prometheus pages for nothing else: {paged:?}");
}
