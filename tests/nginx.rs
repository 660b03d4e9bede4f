//! The repository's nginx config in front of two real `aishad` webhook
//! processes, with TLS from a throwaway certificate: signed FAL callbacks go
//! through nginx while one upstream is killed, and every callback is accepted
//! exactly once with no error the client can see.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use aisha_testkit::fal::unix_now;
use aisha_testkit::{free_port, Daemon, FakeFal, TestServices};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_aishad");
const CALLBACKS: usize = 300;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("aisha-{name}-{}", uuid::Uuid::new_v4().simple()));
    for sub in ["", "body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    // nginx's workers may run as nobody.
    Command::new("chmod").args(["-R", "a+rwx"]).arg(&dir).status().unwrap();
    dir
}

/// What the nginx image's envsubst does with the template.
fn render(template: &str, vars: &[(&str, String)]) -> String {
    vars.iter().fold(template.to_owned(), |text, (name, value)| text.replace(&format!("${{{name}}}"), value))
}

struct Nginx(std::process::Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        // One process (master_process off): nothing is left behind holding the test's pipes.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_nginx(dir: &Path, port: u16, upstreams: [u16; 2]) -> Nginx {
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .arg("-keyout")
        .arg(dir.join("privkey.pem"))
        .arg("-out")
        .arg(dir.join("fullchain.pem"))
        .stderr(Stdio::null())
        .status()
        .expect("openssl");
    assert!(status.success());
    let template = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docker/nginx/templates/webhooks.conf.template"),
    )
    .unwrap();
    let server = render(
        &template,
        &[
            ("SERVER_NAME", "localhost".into()),
            ("LISTEN_PORT", format!("127.0.0.1:{port}")),
            ("TLS_CERT", dir.join("fullchain.pem").display().to_string()),
            ("TLS_KEY", dir.join("privkey.pem").display().to_string()),
            ("WEBHOOK_UPSTREAM_1", format!("127.0.0.1:{}", upstreams[0])),
            ("WEBHOOK_UPSTREAM_2", format!("127.0.0.1:{}", upstreams[1])),
        ],
    );
    assert!(!server.contains("${"), "every template variable is set:\n{server}");
    // The image logs to its output through /var/log/nginx; here, to the scratch directory.
    let server = server
        .replace("/var/log/nginx/access.log", &dir.join("access.log").display().to_string())
        .replace("/var/log/nginx/error.log", &dir.join("error.log").display().to_string());
    std::fs::write(dir.join("webhooks.conf"), server).unwrap();
    let d = dir.display();
    let main = format!(
        "master_process off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\nevents {{ worker_connections 256; }}\n\
         http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
           fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  include {d}/webhooks.conf;\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), main).unwrap();
    let nginx = which("nginx");
    let test =
        Command::new(&nginx).arg("-t").arg("-c").arg(dir.join("nginx.conf")).arg("-p").arg(dir).output().unwrap();
    assert!(test.status.success(), "nginx -t: {}", String::from_utf8_lossy(&test.stderr));
    Nginx(
        Command::new(nginx)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-p")
            .arg(dir)
            .args(["-g", "daemon off;"])
            .spawn()
            .unwrap(),
    )
}

fn which(program: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
        let path = Path::new(dir).join(program);
        if path.exists() {
            return path;
        }
    }
    panic!("{program} is not installed: scripts/services.sh install adds it");
}

#[tokio::test]
async fn callbacks_through_nginx_survive_losing_an_upstream_and_land_exactly_once() {
    let services = TestServices::new("nginx_failover").await;
    let fal = FakeFal::start("fal-nginx").await;
    let (up1, up2, edge) = (free_port(), free_port(), free_port());
    let start = |port: u16, name: &str| {
        let mut env = services.env();
        env.extend(
            [
                ("TELEGRAM_BOT_TOKEN", "1:nginx".to_owned()),
                ("BOT_MODE", "webhook".to_owned()),
                ("INSTANCE_ID", name.to_owned()),
                ("FAL_JWKS_URL", fal.jwks_url()),
                ("WEBHOOK_BIND", format!("127.0.0.1:{port}")),
                // Each recorded callback is a debug line: which listener took it.
                ("LOG_LEVEL", "info,aisha_actors::fal_job::callback=debug".to_owned()),
            ]
            .map(|(k, v)| (k.to_owned(), v)),
        );
        Daemon::start(Path::new(BIN), &["run"], &env)
    };
    let mut first = start(up1, "aisha-webhook-api-1");
    let second = start(up2, "aisha-webhook-api-2");
    for daemon in [&first, &second] {
        daemon.wait_for_log("webhook listener accepting", Duration::from_secs(30)).await;
    }
    let dir = scratch("nginx");
    let _nginx = start_nginx(&dir, edge, [up1, up2]);
    tokio::time::sleep(Duration::from_millis(500)).await;

    let client = reqwest::Client::builder().danger_accept_invalid_certs(true).build().unwrap();
    let url = format!("https://127.0.0.1:{edge}/webhooks/fal");
    assert_eq!(
        client.get(format!("https://127.0.0.1:{edge}/")).send().await.unwrap().status(),
        404,
        "nothing else is exposed"
    );
    assert_eq!(client.get(format!("https://127.0.0.1:{edge}/metrics")).send().await.unwrap().status(), 404);

    let mut statuses = Vec::new();
    for i in 0..CALLBACKS {
        if i == CALLBACKS / 3 {
            first.signal("KILL");
        }
        let request_id = format!("req-{i}");
        let body = serde_json::to_vec(&json!({ "request_id": request_id, "status": "OK", "payload": {} })).unwrap();
        let mut request = client.post(&url).body(body.clone());
        for (k, v) in fal.sign(&request_id, unix_now(), &body) {
            request = request.header(k, v);
        }
        statuses.push(request.send().await.map(|r| r.status().as_u16()).unwrap_or(0));
        // Paced under nginx's limit (100/s, a burst of 200): on a quiet machine
        // 300 back to back outrun it and the last draw 429.
        tokio::time::sleep(Duration::from_millis(8)).await;
    }
    let failed: Vec<(usize, u16)> = statuses.iter().copied().enumerate().filter(|(_, s)| *s != 200).collect();
    assert!(
        failed.is_empty(),
        "callbacks not accepted: {failed:?}\nnginx: {}",
        std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
    );

    let db = services.db().await;
    let recorded: i64 = db.query_one("SELECT count(*) FROM fal_callbacks", &[]).await.unwrap().get(0);
    assert_eq!(recorded as usize, CALLBACKS, "every callback recorded exactly once");
    first.wait(Duration::from_secs(5)).await;
    assert!(second.logs().iter().any(|l| l.contains("FAL callback recorded")), "the survivor took over");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn health_is_non_zero_when_nothing_answers() {
    let port = free_port();
    let status = Command::new(BIN).args(["health", "--url", &format!("http://127.0.0.1:{port}")]).status().unwrap();
    assert_ne!(status.code(), Some(0));
}
