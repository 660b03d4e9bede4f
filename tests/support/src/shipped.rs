//! The deployment files as shipped, read the way their runtimes read them: a
//! Kubernetes overlay rendered by `kubectl kustomize`, a Swarm stack file
//! interpolated as `docker stack deploy` does. Each container comes out as
//! its command, its environment and the secret files mounted into it, so a
//! test can run it as a process given exactly those (tests/as_shipped.rs).
//!
//! What only an operator knows (endpoints, the public URL, the secrets'
//! values) comes from [`Inputs`]; an input a file asks for that the test did
//! not give, or one given that no file asks for, fails the test: the inputs
//! are the list `docs/operations.md` documents.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// One container of a deployment file, as its runtime starts it.
#[derive(Debug, Clone)]
pub struct Container {
    /// `prod/aishad-worker/migrate`: the file, the workload and the container.
    pub at: String,
    /// Runs to completion before the workload's other containers start.
    pub init: bool,
    /// The command line, `aishad` first, as the file gives it.
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// Files mounted into it: the absolute path → its content.
    pub files: BTreeMap<String, String>,
}

impl Container {
    /// The `--mode` the command line names (`all` when none).
    pub fn mode(&self) -> &str {
        self.args.windows(2).find(|w| w[0] == "--mode").map(|w| w[1].as_str()).unwrap_or("all")
    }
}

/// The operator's values, by the name the file gives them (a variable, a
/// ConfigMap key, a Secret key, a swarm secret); each one the files read is
/// marked, so the test can tell which were never asked for.
#[derive(Debug, Default)]
pub struct Inputs {
    values: BTreeMap<String, String>,
    read: RefCell<BTreeSet<String>>,
}

impl Inputs {
    pub fn new<K: Into<String>, V: Into<String>>(values: impl IntoIterator<Item = (K, V)>) -> Self {
        Self { values: values.into_iter().map(|(k, v)| (k.into(), v.into())).collect(), read: Default::default() }
    }

    pub fn get(&self, name: &str) -> Option<String> {
        let value = self.values.get(name).cloned();
        if value.is_some() {
            self.read.borrow_mut().insert(name.to_owned());
        }
        value
    }

    /// The names given.
    pub fn names(&self) -> BTreeSet<String> {
        self.values.keys().cloned().collect()
    }

    /// The names given that no file read.
    pub fn unread(&self) -> BTreeSet<String> {
        let read = self.read.borrow();
        self.values.keys().filter(|k| !read.contains(*k)).cloned().collect()
    }
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `kubectl kustomize` of a folder under `deploy/kubernetes`, as JSON objects.
pub fn kustomize(folder: &str) -> Vec<Value> {
    let dir = repo().join("deploy/kubernetes").join(folder);
    let out = Command::new("kubectl").arg("kustomize").arg(&dir).output().expect("kubectl (scripts/kubernetes.sh)");
    assert!(out.status.success(), "kubectl kustomize {folder}: {}", String::from_utf8_lossy(&out.stderr));
    yaml_documents(&String::from_utf8(out.stdout).unwrap())
}

pub fn yaml_documents(text: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_yaml::Deserializer::from_str(text)
        .map(|doc| {
            let mut value = serde_yaml::Value::deserialize(doc).expect("YAML");
            value.apply_merge().expect("YAML merge keys");
            serde_yaml::from_value::<Value>(value).expect("YAML as JSON")
        })
        .collect()
}

pub fn of_kind<'a>(objects: &'a [Value], kind: &'a str) -> impl Iterator<Item = &'a Value> {
    objects.iter().filter(move |o| o["kind"] == kind)
}

pub fn name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

fn strings(value: &Value) -> Vec<String> {
    value.as_array().into_iter().flatten().map(|v| v.as_str().expect("a string").to_owned()).collect()
}

/// Every container of every Deployment of a rendered overlay, init
/// containers first, each as the kubelet would start it in a pod of that
/// Deployment: ConfigMaps by `envFrom`, the pod's name by `fieldRef`, each
/// Secret volume's keys as files. A ConfigMap key or Secret key named in
/// `inputs` takes the operator's value; a Secret key it lacks fails.
pub fn kubernetes_containers(overlay: &str, objects: &[Value], inputs: &Inputs) -> Vec<Container> {
    let mut out = Vec::new();
    for deployment in of_kind(objects, "Deployment") {
        let pod = &deployment["spec"]["template"]["spec"];
        let pod_name = format!("{}-5d8c7f-x2k4q", name(deployment));
        let init = pod["initContainers"].as_array().into_iter().flatten().map(|c| (true, c));
        for (is_init, container) in init.chain(pod["containers"].as_array().into_iter().flatten().map(|c| (false, c))) {
            let at = format!("{overlay}/{}/{}", name(deployment), container["name"].as_str().unwrap());
            let mut env = BTreeMap::new();
            for source in container["envFrom"].as_array().into_iter().flatten() {
                let map_name = source["configMapRef"]["name"].as_str().expect("envFrom a ConfigMap");
                let map = of_kind(objects, "ConfigMap").find(|m| name(m) == map_name).expect("the ConfigMap exists");
                for (key, value) in map["data"].as_object().into_iter().flatten() {
                    let value = inputs.get(key).unwrap_or_else(|| value.as_str().unwrap().to_owned());
                    env.insert(key.clone(), value);
                }
            }
            for var in container["env"].as_array().into_iter().flatten() {
                let value = match (&var["value"], &var["valueFrom"]["fieldRef"]["fieldPath"]) {
                    (Value::String(v), _) => v.clone(),
                    (_, path) if path == "metadata.name" => pod_name.clone(),
                    _ => panic!("{at}: an env source this reader does not know: {var}"),
                };
                env.insert(var["name"].as_str().unwrap().to_owned(), value);
            }
            let files = secret_files(&at, objects, pod, container, inputs);
            out.push(Container { at, init: is_init, args: strings(&container["args"]), env, files });
        }
    }
    out
}

fn secret_files(
    at: &str,
    objects: &[Value],
    pod: &Value,
    container: &Value,
    inputs: &Inputs,
) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    for mount in container["volumeMounts"].as_array().into_iter().flatten() {
        let volume = pod["volumes"].as_array().unwrap().iter().find(|v| v["name"] == mount["name"]).unwrap();
        let Some(secret) = volume["secret"]["secretName"].as_str() else { continue };
        for key in secret_keys(objects, secret) {
            let value = inputs.get(&key).unwrap_or_else(|| panic!("{at}: no operator value for the Secret key {key}"));
            files.insert(format!("{}/{key}", mount["mountPath"].as_str().unwrap()), value);
        }
    }
    files
}

/// The keys of the Secret `secret` as the overlay provides it: generated, or written by ESO.
pub fn secret_keys(objects: &[Value], secret: &str) -> BTreeSet<String> {
    let generated = of_kind(objects, "Secret")
        .filter(|s| name(s) == secret)
        .flat_map(|s| s["data"].as_object().unwrap().keys().cloned());
    let external = of_kind(objects, "ExternalSecret").filter(|e| e["spec"]["target"]["name"] == secret).flat_map(|e| {
        e["spec"]["data"].as_array().unwrap().iter().map(|d| d["secretKey"].as_str().unwrap().to_owned())
    });
    generated.chain(external).collect()
}

/// Every service of a Swarm stack file whose image is aishad's, as one task
/// (slot 1) of it: its environment interpolated from `inputs` as `docker
/// stack deploy` does (`${VAR}`, `${VAR:-default}`, `${VAR:?message}`, which
/// fails the test as it fails the deploy), Go templates of the task's name
/// filled in, and each swarm secret as `/run/secrets/NAME`.
pub fn swarm_containers(stack: &str, file: &Path, inputs: &Inputs) -> Vec<Container> {
    let text = std::fs::read_to_string(file).unwrap();
    let document = yaml_documents(&text).remove(0);
    let mut out = Vec::new();
    for (service, spec) in document["services"].as_object().unwrap() {
        let image = interpolate(spec["image"].as_str().unwrap_or_default(), inputs);
        if !image.contains("aishad") {
            continue;
        }
        let at = format!("swarm/{service}");
        let task = |value: &str| {
            value.replace("{{.Service.Name}}", &format!("{stack}_{service}")).replace("{{.Task.Slot}}", "1")
        };
        let env = spec["environment"]
            .as_object()
            .expect("environment as a map")
            .iter()
            .map(|(k, v)| (k.clone(), task(&interpolate(&scalar(v), inputs))))
            .collect();
        let files = strings(&spec["secrets"])
            .into_iter()
            .map(|secret| {
                let value = inputs.get(&secret).unwrap_or_else(|| panic!("{at}: no operator value for {secret}"));
                (format!("/run/secrets/{secret}"), value)
            })
            .collect();
        out.push(Container { at, init: false, args: strings(&spec["command"]), env, files });
    }
    out
}

/// Every aishad service of a compose file, with the services of `profiles`
/// besides those without one: its command line, every `.env` line (the
/// operator's inputs) where it reads `env_file: [.env]`, and its
/// `environment`, interpolated from the same `.env` as `docker compose`
/// does. Every service's variables are read, aishad's or not (nginx's
/// `WEBHOOK_SERVER_NAME` is an input too).
pub fn compose_containers(file: &Path, inputs: &Inputs, profiles: &[&str]) -> Vec<Container> {
    let document = yaml_documents(&std::fs::read_to_string(file).unwrap()).remove(0);
    let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
    let mut out = Vec::new();
    for (service, spec) in document["services"].as_object().unwrap() {
        let enabled =
            spec["profiles"].as_array().is_none_or(|p| p.iter().any(|p| profiles.contains(&p.as_str().unwrap())));
        if !enabled {
            continue;
        }
        let image = interpolate(spec["image"].as_str().unwrap_or_default(), inputs);
        let environment: BTreeMap<String, String> = spec["environment"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), interpolate(&scalar(v), inputs)))
            .collect();
        if !image.contains("aishad") {
            continue;
        }
        let mut env = BTreeMap::new();
        if strings(&spec["env_file"]).iter().any(|f| f == ".env") {
            env.extend(inputs.names().into_iter().filter_map(|name| Some((name.clone(), inputs.get(&name)?))));
        }
        env.extend(environment);
        let at = format!("{stem}/{service}");
        out.push(Container { at, init: false, args: strings(&spec["command"]), env, files: BTreeMap::new() });
    }
    out
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Compose's variable syntax, as far as the shipped files use it.
pub fn interpolate(text: &str, inputs: &Inputs) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("a closing brace") + start;
        let expression = &rest[start + 2..end];
        out.push_str(&expand(expression, inputs));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn expand(expression: &str, inputs: &Inputs) -> String {
    let (var, rule) = match expression.find([':', '-', '?']) {
        Some(i) => (&expression[..i], &expression[i..]),
        None => (expression, ""),
    };
    let value = inputs.get(var).filter(|v| !v.is_empty());
    if let Some(default) = rule.strip_prefix(":-").or_else(|| rule.strip_prefix('-')) {
        return value.unwrap_or_else(|| default.to_owned());
    }
    if let Some(message) = rule.strip_prefix(":?").or_else(|| rule.strip_prefix('?')) {
        return value.unwrap_or_else(|| panic!("the file requires {var}: {message}"));
    }
    value.unwrap_or_default()
}
