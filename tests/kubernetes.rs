//! The Kubernetes manifests (deploy/kubernetes), rendered as an operator
//! applies them (`kubectl kustomize` of each overlay), held to the policy
//! every pod must meet, and their objects to each other: what a selector
//! names exists, every secret file a pod reads is in the Secret, and KEDA's
//! queue queries run on the real schema. `scripts/kubernetes.sh check`
//! validates every object against the Kubernetes schemas besides.

use std::collections::BTreeSet;

use aisha_actors::secret::ConnUrl;
use aisha_actors::settings::DatabaseSettings;
use aisha_actors::store::Db;
use aisha_testkit::shipped::{self, kustomize, name, of_kind};
use aisha_testkit::TestServices;
use serde_json::Value;

const OVERLAYS: [&str; 2] = ["dev", "prod"];

fn render(overlay: &str) -> Vec<Value> {
    kustomize(&format!("overlays/{overlay}"))
}

/// Whether `labels` meet a `matchLabels` selector (an empty one selects all).
fn selects(selector: &Value, labels: &Value) -> bool {
    selector.as_object().is_none_or(|m| m.iter().all(|(k, v)| &labels[k] == v))
}

fn pod_templates(objects: &[Value]) -> Vec<(&str, &Value)> {
    of_kind(objects, "Deployment").map(|d| (name(d), &d["spec"]["template"])).collect()
}

#[test]
fn every_pod_runs_unprivileged_on_a_read_only_root_with_limits_and_probes() {
    for overlay in OVERLAYS {
        let objects = render(overlay);
        let templates = pod_templates(&objects);
        assert_eq!(templates.len(), 4, "{overlay}: one Deployment per role, the links worker's its own");
        for (deployment, template) in templates {
            let at = format!("{overlay}/{deployment}");
            let pod = &template["spec"];
            assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{at}");
            assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault", "{at}");
            assert_eq!(pod["automountServiceAccountToken"], false, "{at}: no API token");
            let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
            assert!(grace > 30, "{at}: longer than the shutdown grace");
            if deployment.contains("worker") {
                assert!(grace > 330, "{at}: longer than a worker's drain, which outlasts a paid call");
            }
            let containers =
                pod["containers"].as_array().unwrap().iter().chain(pod["initContainers"].as_array().unwrap());
            for container in containers {
                let at = format!("{at}/{}", container["name"]);
                let security = &container["securityContext"];
                assert_eq!(security["readOnlyRootFilesystem"], true, "{at}");
                assert_eq!(security["allowPrivilegeEscalation"], false, "{at}");
                assert_eq!(security["capabilities"]["drop"], serde_json::json!(["ALL"]), "{at}");
                for bound in ["requests", "limits"] {
                    for resource in ["cpu", "memory", "ephemeral-storage"] {
                        assert!(container["resources"][bound][resource].is_string(), "{at}: {bound}.{resource}");
                    }
                }
                assert!(
                    container["env"].as_array().into_iter().flatten().all(|e| e["value"].is_null()),
                    "{at}: no value inline"
                );
            }
            let main = &pod["containers"][0];
            assert_eq!(main["livenessProbe"]["httpGet"]["path"], "/healthz", "{at}");
            assert_eq!(main["readinessProbe"]["httpGet"]["path"], "/readyz", "{at}");
            assert_eq!(main["env"][0]["name"], "INSTANCE_ID", "{at}");
            assert_eq!(main["env"][0]["valueFrom"]["fieldRef"]["fieldPath"], "metadata.name", "{at}: unique per pod");
            assert_eq!(
                pod["initContainers"][0]["args"],
                serde_json::json!(["aishad", "migrate"]),
                "{at}: migrations first"
            );
        }
    }
}

#[test]
fn every_pod_is_behind_the_default_deny_and_its_own_allowances() {
    for overlay in OVERLAYS {
        let objects = render(overlay);
        let policies: Vec<&Value> = of_kind(&objects, "NetworkPolicy").collect();
        let deny = policies.iter().find(|p| name(p) == "default-deny").expect("a default deny");
        assert_eq!(deny["spec"]["podSelector"], serde_json::json!({}), "{overlay}: it selects every pod");
        assert_eq!(deny["spec"]["policyTypes"], serde_json::json!(["Ingress", "Egress"]));
        for (deployment, template) in pod_templates(&objects) {
            let labels = &template["metadata"]["labels"];
            let allows = |direction: &str| {
                policies.iter().any(|p| {
                    name(p) != "default-deny"
                        && p["spec"]["policyTypes"].as_array().unwrap().iter().any(|t| t == direction)
                        && selects(&p["spec"]["podSelector"]["matchLabels"], labels)
                })
            };
            assert!(allows("Egress"), "{overlay}/{deployment}: may reach its services");
            assert!(allows("Ingress"), "{overlay}/{deployment}: Prometheus may scrape it");
        }
    }
}

#[test]
fn every_reference_between_objects_resolves() {
    for overlay in OVERLAYS {
        let objects = render(overlay);
        let templates = pod_templates(&objects);
        let deployments: BTreeSet<&str> = templates.iter().map(|(n, _)| *n).collect();
        for service in of_kind(&objects, "Service") {
            let selector = &service["spec"]["selector"];
            assert!(
                templates.iter().any(|(_, t)| selects(selector, &t["metadata"]["labels"])),
                "{overlay}: service {} selects no pod",
                name(service)
            );
        }
        for budget in of_kind(&objects, "PodDisruptionBudget") {
            let selector = &budget["spec"]["selector"]["matchLabels"];
            assert!(
                templates.iter().any(|(_, t)| selects(selector, &t["metadata"]["labels"])),
                "{overlay}: PDB {}",
                name(budget)
            );
        }
        for scaler in of_kind(&objects, "HorizontalPodAutoscaler").chain(of_kind(&objects, "ScaledObject")) {
            let target = scaler["spec"]["scaleTargetRef"]["name"].as_str().unwrap();
            assert!(deployments.contains(target), "{overlay}: {} scales {target}", name(scaler));
        }
        let Some(monitor) = of_kind(&objects, "ServiceMonitor").next() else { continue };
        let port = monitor["spec"]["endpoints"][0]["port"].as_str().unwrap();
        let scraped: Vec<&Value> = of_kind(&objects, "Service")
            .filter(|s| selects(&monitor["spec"]["selector"]["matchLabels"], &s["metadata"]["labels"]))
            .collect();
        assert!(
            scraped.iter().any(|s| s["spec"]["ports"].as_array().unwrap().iter().any(|p| p["name"] == port)),
            "{overlay}: the ServiceMonitor's port"
        );
    }
}

fn secret_keys(objects: &[Value]) -> BTreeSet<String> {
    shipped::secret_keys(objects, "aishad-secrets")
}

#[test]
fn every_secret_is_read_from_a_file_the_secret_provides_and_none_from_the_environment() {
    for overlay in OVERLAYS {
        let objects = render(overlay);
        let keys = secret_keys(&objects);
        assert!(!keys.is_empty(), "{overlay}: the Secret comes from somewhere");
        let env = of_kind(&objects, "ConfigMap").find(|c| name(c).starts_with("aishad-env")).unwrap();
        let env = env["data"].as_object().unwrap();
        for key in aishad::settings::SECRET_KEYS {
            let variables = aishad::settings::env_names(key);
            let plain: Vec<&String> = variables.iter().filter(|v| env.contains_key(v.as_str())).collect();
            assert!(plain.is_empty(), "{overlay}: {key} in plain text as {plain:?}");
            let Some(file) = variables.iter().find_map(|v| env.get(&format!("{v}_FILE"))) else {
                assert!(
                    key.starts_with("telegram.webhook") || *key == "fal.files_secret",
                    "{overlay}: {key} is set nowhere"
                );
                continue;
            };
            let file = file.as_str().unwrap().strip_prefix("/run/secrets/aishad/").expect("under the mounted Secret");
            assert!(keys.contains(file), "{overlay}: {key} reads {file}, which the Secret lacks ({keys:?})");
        }
        for auth in of_kind(&objects, "TriggerAuthentication") {
            for reference in auth["spec"]["secretTargetRef"].as_array().unwrap() {
                assert_eq!(reference["name"], "aishad-keda", "{overlay}: KEDA reads the queue as a role of its own");
                assert!(!keys.contains(reference["name"].as_str().unwrap()), "{overlay}: no pod mounts KEDA's Secret");
            }
        }
    }
}

#[tokio::test]
async fn kedas_queue_queries_run_on_the_real_schema_and_count_what_is_due() {
    let services = TestServices::new("kubernetes_keda").await;
    let settings = DatabaseSettings { url: ConnUrl::new(&services.database_url), ..Default::default() };
    Db::new(&settings).unwrap().migrate().await.unwrap();
    let db = services.db().await;
    db.batch_execute(
        "INSERT INTO jobs (kind, state, idempotency_key, max_attempts, run_at) VALUES
           ('transcribe', 'queued', 'a', 5, now()), ('transcribe', 'running', 'b', 5, now()),
           ('transcribe', 'queued', 'c', 5, now() + interval '1 hour'), ('transcribe', 'done', 'd', 5, now()),
           ('fal_generate', 'queued', 'e', 5, now()), ('link.probe', 'running', 'f', 5, now())",
    )
    .await
    .unwrap();
    let reader = queue_reader(&services).await;
    let objects = render("prod");
    let counts: Vec<(String, i64)> = trigger_counts(&reader, &objects).await;
    assert_eq!(
        counts,
        vec![("links".into(), 1), ("transcriptions".into(), 2), ("other-jobs".into(), 1)],
        "due or running, not waiting out a retry, not done; link jobs only for the links workers"
    );
    let refused = reader.execute("UPDATE jobs SET state = 'dead'", &[]).await;
    assert!(refused.is_err(), "KEDA's role may only count");
}

/// A connection as KEDA's role, made by the SQL docs/operations.md gives
/// (under a name of this test's own: roles are the server's, not the database's).
async fn queue_reader(services: &TestServices) -> tokio_postgres::Client {
    let doc = std::fs::read_to_string(shipped::repo().join("docs/operations.md")).unwrap();
    let sql = doc.split("<!-- keda-role:begin -->").nth(1).unwrap().split("<!-- keda-role:end -->").next().unwrap();
    let sql = sql.trim().trim_start_matches("```sql").trim_end_matches("```");
    let role = format!("keda_{}", &services.database_name[services.database_name.len() - 10..]);
    let sql = sql
        .replace("aishad_keda", &role)
        .replace("'choose-one'", "'keda-test-password'")
        .replace("DATABASE aisha ", &format!("DATABASE {} ", services.database_name));
    services.db().await.batch_execute(&sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    let mut url = url::Url::parse(&services.database_url).unwrap();
    url.set_username(&role).unwrap();
    url.set_password(Some("keda-test-password")).unwrap();
    let (client, connection) =
        tokio_postgres::connect(url.as_str(), tokio_postgres::NoTls).await.expect("connect as KEDA");
    tokio::spawn(connection);
    client
}

async fn trigger_counts(db: &tokio_postgres::Client, objects: &[Value]) -> Vec<(String, i64)> {
    let mut counts = Vec::new();
    let triggers = of_kind(objects, "ScaledObject").flat_map(|s| s["spec"]["triggers"].as_array().unwrap());
    for trigger in triggers {
        assert_eq!(trigger["type"], "postgresql");
        let query = trigger["metadata"]["query"].as_str().unwrap();
        let count: i64 = db.query_one(query, &[]).await.unwrap_or_else(|e| panic!("{query}: {e}")).get(0);
        counts.push((trigger["name"].as_str().unwrap().to_owned(), count));
    }
    counts
}

#[test]
fn the_dev_overlay_needs_no_custom_resource_so_a_bare_cluster_takes_it() {
    let core = ["v1", "apps/v1", "policy/v1", "networking.k8s.io/v1", "autoscaling/v2"];
    for object in render("dev") {
        let api = object["apiVersion"].as_str().unwrap();
        assert!(core.contains(&api), "dev: {} {} needs {api}", object["kind"], name(&object));
    }
}

#[test]
fn no_disruption_budget_blocks_a_drain_and_every_worker_scaler_has_a_fallback() {
    for overlay in OVERLAYS {
        let objects = render(overlay);
        for budget in of_kind(&objects, "PodDisruptionBudget") {
            assert_eq!(budget["spec"]["maxUnavailable"], 1, "{overlay}/{}", name(budget));
            assert!(budget["spec"]["minAvailable"].is_null(), "{overlay}/{}: blocks at one replica", name(budget));
        }
        for scaler in of_kind(&objects, "ScaledObject") {
            assert!(scaler["spec"]["fallback"]["replicas"].as_u64().unwrap() >= 1, "{overlay}/{}", name(scaler));
        }
    }
}

#[test]
fn the_listeners_are_reached_from_outside_on_the_webhook_paths_alone_and_drain_before_they_stop() {
    let objects = render("prod");
    let env = of_kind(&objects, "ConfigMap").find(|c| name(c).starts_with("aishad-env")).unwrap();
    let public = url::Url::parse(env["data"]["FAL_WEBHOOK_URL"].as_str().unwrap()).unwrap();
    let ingress = of_kind(&objects, "Ingress").next().expect("an Ingress");
    assert_eq!(ingress["spec"]["rules"][0]["host"], public.host_str().unwrap(), "the host FAL calls back");
    assert_eq!(ingress["spec"]["tls"][0]["hosts"][0], public.host_str().unwrap());
    let paths: Vec<&str> = ingress["spec"]["rules"][0]["http"]["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["/webhooks/fal", "/webhooks/telegram", "/files/"]);
    assert_eq!(ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"], "1m");
    let policy = of_kind(&objects, "NetworkPolicy").find(|p| name(p) == "aishad-webhook-ingress").unwrap();
    assert!(policy["spec"]["ingress"][0]["from"].is_null(), "not tied to one controller's namespace");
    let webhook = of_kind(&objects, "Deployment").find(|d| name(d) == "aishad-webhook").unwrap();
    let pod = &webhook["spec"]["template"]["spec"];
    let pause = pod["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"].as_u64().unwrap();
    let grace = aisha_actors::settings::SupervisorSettings::default().shutdown_grace.as_secs();
    assert!(pod["terminationGracePeriodSeconds"].as_u64().unwrap() > pause + grace, "pause, drain, then the kill");
}
