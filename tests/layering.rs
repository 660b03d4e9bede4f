//! actors/ stands in floors, as ../shared/DESIGN.md's "Shape" lists them:
//! a module may use only modules on the floors below it, or the modules
//! named before it on its own floor. Every `crate::…` path in actors/src is
//! checked, so a new import that points up (and so any circle) fails here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// From the ground up; within a floor, left to right.
const FLOORS: &[(&str, &[&str])] = &[
    ("base: libraries only", &["error", "backoff", "batch", "secret", "settings", "http", "tls"]),
    ("rows: SQL as methods on Db", &["store"]),
    ("Redis and S3", &["cache", "lease", "dialogue", "limits", "blob"]),
    ("outside APIs over HTTP", &["clients"]),
    ("the handles every actor shares", &["services"]),
    ("jobs: rows, kinds, the queue's state machine", &["jobs"]),
    ("money", &["ledger", "payments"]),
    ("FAL request bookkeeping", &["fal_requests"]),
    ("what the bot says", &["chat"]),
    ("the worker pool", &["pool"]),
    ("pool workers", &["transcriber", "fal_job"]),
    ("chat routing", &["bot", "dispatcher"]),
    ("intake", &["poller", "webhook"]),
];

fn rank() -> BTreeMap<&'static str, (usize, &'static str)> {
    let mut rank = BTreeMap::new();
    for (floor, (name, modules)) in FLOORS.iter().enumerate() {
        for module in *modules {
            rank.insert(*module, (floor * 100 + rank.len(), *name));
        }
    }
    rank
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of actors/src belongs to (`None` for lib.rs).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative.components().next()?.as_os_str().to_string_lossy().into_owned();
    let name = first.trim_end_matches(".rs").to_owned();
    (name != "lib").then_some(name)
}

/// Every `crate::name` in the code (not in comments).
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if name.is_empty() {
                // `use crate::{a, b}`: each name in the braces.
                let inner = rest.trim_start_matches('{').split('}').next().unwrap_or_default();
                for part in inner.split(',') {
                    let name: String =
                        part.trim().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                    if !name.is_empty() {
                        found.push((n + 1, name));
                    }
                }
            } else {
                found.push((n + 1, name));
            }
        }
    }
    found
}

#[test]
fn every_import_in_actors_points_down_a_floor() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("actors/src");
    let rank = rank();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut upward = Vec::new();
    for file in &files {
        let Some(module) = module_of(&src, file) else { continue };
        let Some(&(own, own_floor)) = rank.get(module.as_str()) else {
            panic!("actors/src/{module} is on no floor: add it to FLOORS in tests/layering.rs (and to DESIGN's Shape)");
        };
        for (line, used) in crate_paths(&std::fs::read_to_string(file).unwrap()) {
            if used == module {
                continue;
            }
            let Some(&(theirs, their_floor)) = rank.get(used.as_str()) else {
                panic!("{}:{line} uses crate::{used}, which is on no floor", file.display());
            };
            if theirs > own {
                upward.push(format!(
                    "{}:{line}: {module} ({own_floor}) uses {used} ({their_floor})",
                    file.strip_prefix(&src).unwrap().display()
                ));
            }
        }
    }
    assert!(upward.is_empty(), "imports that point up a floor:\n{}", upward.join("\n"));
}

#[test]
fn the_check_sees_imports_in_every_form() {
    let text = "use crate::jobs::Job;\nuse crate::{ledger, store::Db};\nlet x = crate::error::chain(&e); // crate::bot in a comment\n";
    let found: Vec<String> = crate_paths(text).into_iter().map(|(_, name)| name).collect();
    assert_eq!(found, ["jobs", "ledger", "store", "error"]);
}

#[test]
fn every_module_of_actors_is_on_a_floor_and_only_once() {
    let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("actors/src/lib.rs")).unwrap();
    let declared: Vec<&str> =
        lib.lines().filter_map(|l| l.strip_prefix("pub mod ")).map(|m| m.trim_end_matches(';')).collect();
    let rank = rank();
    for module in &declared {
        assert!(rank.contains_key(module), "{module} is on no floor");
    }
    let listed: usize = FLOORS.iter().map(|(_, m)| m.len()).sum();
    assert_eq!(listed, rank.len(), "a module is listed twice");
}

/// The README's Layout lists the floors too, for readers: one line a
/// floor, ground up, `src/` modules before two spaces and what the floor is
/// after. Checked against `FLOORS`, so the two cannot drift apart.
#[test]
fn the_readmes_layout_lists_the_same_floors() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let listed: Vec<Vec<String>> = readme
        .lines()
        .filter_map(|line| line.strip_prefix("  src/"))
        .map(|line| {
            let modules = line.split("  ").next().unwrap_or_default();
            let mut names: Vec<String> =
                modules.split(", ").map(|m| m.trim().trim_end_matches('/').to_owned()).collect();
            names.sort();
            names
        })
        .collect();
    let floors: Vec<Vec<String>> = FLOORS
        .iter()
        .map(|(_, modules)| {
            let mut names: Vec<String> = modules.iter().map(|m| m.to_string()).collect();
            names.sort();
            names
        })
        .collect();
    assert_eq!(listed, floors, "README.md's Layout and tests/layering.rs's FLOORS, floor by floor from the ground up");
}
