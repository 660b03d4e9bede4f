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
        assert_eq!(templates.len(), 3, "{overlay}: one Deployment per role");
        for (deployment, template) in templates {
            let at = format!("{overlay}/{deployment}");
            let pod = &template["spec"];
            assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{at}");
            assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault", "{at}");
            assert_eq!(pod["automountServiceAccountToken"], false, "{at}: no API token");
            assert!(
                pod["terminationGracePeriodSeconds"].as_u64().unwrap() > 30,
                "{at}: longer than the shutdown grace"
            );
            let containers =
                pod["containers"].as_array().unwrap().iter().chain(pod["initContainers"].as_array().unwrap());
            for container in containers {
                let at = format!("{at}/{}", container["name"]);
                let security = &container["securityContext"];
                assert_eq!(security["readOnlyRootFilesystem"], true, "{at}");
                assert_eq!(security["allowPrivilegeEscalation"], false, "{at}");
                assert_eq!(security["capabilities"]["drop"], serde_json::json!(["ALL"]), "{at}");
                for bound in ["requests", "limits"] {
                    for resource in ["cpu", "memory"] {
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
        let monitor = of_kind(&objects, "ServiceMonitor").next().expect("a ServiceMonitor");
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
                assert!(keys.contains(reference["key"].as_str().unwrap()), "{overlay}: KEDA reads {reference}");
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
           ('fal_generate', 'queued', 'e', 5, now())",
    )
    .await
    .unwrap();
    let objects = render("prod");
    let scaler = of_kind(&objects, "ScaledObject").next().unwrap();
    let counts: Vec<(String, i64)> = trigger_counts(&db, scaler).await;
    assert_eq!(
        counts,
        vec![("transcriptions".into(), 2), ("other-jobs".into(), 1)],
        "due or running, not waiting out a retry, not done"
    );
}

async fn trigger_counts(db: &tokio_postgres::Client, scaler: &Value) -> Vec<(String, i64)> {
    let mut counts = Vec::new();
    for trigger in scaler["spec"]["triggers"].as_array().unwrap() {
        assert_eq!(trigger["type"], "postgresql");
        let query = trigger["metadata"]["query"].as_str().unwrap();
        let count: i64 = db.query_one(query, &[]).await.unwrap_or_else(|e| panic!("{query}: {e}")).get(0);
        counts.push((trigger["name"].as_str().unwrap().to_owned(), count));
    }
    counts
}
