//! actors/ stands in floors, as docs/design.md's "Shape" lists them:
//! a module may use only modules on the floors below it, or the modules
//! named before it on its own floor. Every `crate::…` path in actors/src is
//! checked, so a new import that points up (and so any circle) fails here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// From the ground up; within a floor, left to right.
const FLOORS: &[(&str, &[&str])] = &[
    ("base: libraries only", &["error", "backoff", "keep", "batch", "secret", "settings", "http", "tls"]),
    ("rows: SQL as methods on Db", &["store"]),
    ("Redis and S3", &["cache", "lease", "dialogue", "limits", "blob"]),
    ("outside APIs over HTTP", &["clients"]),
    ("the handles every actor shares", &["services"]),
    ("jobs: rows, kinds, the queue's state machine", &["jobs"]),
    ("money", &["ledger", "payments"]),
    ("what the bot says", &["chat"]),
    ("the worker pool", &["pool"]),
    ("pool workers, then every kind of work they declare", &["transcriber", "fal_job", "kinds"]),
    ("chat routing", &["bot", "dispatcher"]),
    ("intake: room, record once, dispatch", &["intake"]),
    ("the ways updates come in", &["poller", "webhook"]),
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

/// The module path of a file of actors/src: lib.rs is the crate root,
/// `a/mod.rs` and `a.rs` are `a`, `a/b.rs` is `a::b`.
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut path: Vec<String> = relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
    if matches!(path.last().map(String::as_str), Some("mod" | "lib")) {
        path.pop();
    }
    path
}

/// Every path in a file that names something of this crate, resolved from
/// the crate root: `use` trees of any nesting (each leaf a path), paths
/// written inline in code or types, `crate::`, `self::` and `super::` (also
/// from inside an inline `mod`). Names brought in by `use` are followed at
/// their `use`, so each dependency is seen where it enters the file.
struct CratePaths {
    module: Vec<String>,
    found: Vec<Vec<String>>,
}

impl CratePaths {
    fn of(module: Vec<String>, text: &str) -> Vec<Vec<String>> {
        let file = syn::parse_file(text).expect("actors/src parses");
        let mut visitor = Self { module, found: Vec::new() };
        syn::visit::Visit::visit_file(&mut visitor, &file);
        visitor.found
    }

    /// `segments` from the crate root, if they start at the crate, `self` or `super`.
    fn resolve(&self, segments: &[String]) -> Option<Vec<String>> {
        let (first, rest) = segments.split_first()?;
        let mut base = match first.as_str() {
            "crate" => Vec::new(),
            "self" => self.module.clone(),
            "super" => self.module[..self.module.len().checked_sub(1)?].to_vec(),
            _ => return None,
        };
        let mut rest = rest;
        while let Some(("super", tail)) = rest.split_first().map(|(s, t)| (s.as_str(), t)) {
            base.pop()?;
            rest = tail;
        }
        base.extend(rest.iter().cloned());
        Some(base)
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(path) => {
                prefix.push(path.ident.to_string());
                self.use_tree(prefix, &path.tree);
                prefix.pop();
            }
            syn::UseTree::Group(group) => group.items.iter().for_each(|item| self.use_tree(prefix, item)),
            syn::UseTree::Name(name) => self.record(prefix, Some(name.ident.to_string())),
            syn::UseTree::Rename(rename) => self.record(prefix, Some(rename.ident.to_string())),
            syn::UseTree::Glob(_) => self.record(prefix, None),
        }
    }

    fn record(&mut self, prefix: &[String], last: Option<String>) {
        let mut segments = prefix.to_vec();
        segments.extend(last.filter(|name| name != "self"));
        if let Some(resolved) = self.resolve(&segments) {
            self.found.push(resolved);
        }
    }
}

impl<'ast> syn::visit::Visit<'ast> for CratePaths {
    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        if item.content.is_some() {
            self.module.push(item.ident.to_string());
            syn::visit::visit_item_mod(self, item);
            self.module.pop();
        }
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        self.use_tree(&mut Vec::new(), &item.tree);
    }

    /// A macro's arguments are tokens, not syntax: crate paths in them are read token by token.
    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        let mut tokens = Vec::new();
        flatten(mac.tokens.clone(), &mut tokens);
        let mut at = 0;
        while at < tokens.len() {
            let mut segments = Vec::new();
            while let Some(proc_macro2::TokenTree::Ident(ident)) = tokens.get(at) {
                segments.push(ident.to_string());
                let is_colon =
                    |at: usize| matches!(tokens.get(at), Some(proc_macro2::TokenTree::Punct(p)) if p.as_char() == ':');
                let joined = is_colon(at + 1) && is_colon(at + 2);
                if !joined {
                    break;
                }
                at += 3;
            }
            if segments.len() > 1 {
                self.record(&segments, None);
            }
            at += 1;
        }
        syn::visit::visit_macro(self, mac);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        self.record(&segments, None);
        syn::visit::visit_path(self, path);
    }
}

/// Every token of a stream, groups opened.
fn flatten(stream: proc_macro2::TokenStream, out: &mut Vec<proc_macro2::TokenTree>) {
    for token in stream {
        match token {
            proc_macro2::TokenTree::Group(group) => flatten(group.stream(), out),
            other => out.push(other),
        }
    }
}

/// The top-level modules of this crate that `text` (the file at `module`) uses.
fn used_modules(module: &[String], text: &str) -> Vec<String> {
    CratePaths::of(module.to_vec(), text).into_iter().filter_map(|path| path.first().cloned()).collect()
}

#[test]
fn every_import_in_actors_points_down_a_floor() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("actors/src");
    let rank = rank();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut upward = Vec::new();
    for file in &files {
        let path = module_path(&src, file);
        let Some(module) = path.first().cloned() else { continue };
        let Some(&(own, own_floor)) = rank.get(module.as_str()) else {
            panic!("actors/src/{module} is on no floor: add it to FLOORS in tests/layering.rs (and to DESIGN's Shape)");
        };
        for used in used_modules(&path, &std::fs::read_to_string(file).unwrap()) {
            if used == module {
                continue;
            }
            let Some(&(theirs, their_floor)) = rank.get(used.as_str()) else {
                panic!("{} uses crate::{used}, which is on no floor", file.display());
            };
            if theirs > own {
                let at = file.strip_prefix(&src).unwrap().display();
                upward.push(format!("{at}: {module} ({own_floor}) uses {used} ({their_floor})"));
            }
        }
    }
    assert!(upward.is_empty(), "imports that point up a floor:\n{}", upward.join("\n"));
}

#[test]
fn the_check_sees_imports_in_every_form() {
    let text = r#"
        use crate::{a::{b::C, d}, e};
        use crate::{
            f::G,
            h,
        };
        use super::i::J;
        use self::k::L;
        use std::collections::HashMap;
        fn run() { let x = crate::m::n(); let y: super::super::o::P = make(); }
        mod tests { use super::q; use super::super::super::r; }
        fn log() { tracing::info!(x = %crate::t::u(), "in a macro"); }
        // crate::s in a comment is no use
    "#;
    let mut found = used_modules(&["clients".into(), "fal".into()], text);
    found.sort();
    found.dedup();
    let expected = ["a", "clients", "e", "f", "h", "m", "o", "r", "t"];
    assert_eq!(
        found, expected,
        "nested and wrapped lists, super and self from a submodule and an inline mod, paths in code, types and macros"
    );
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

/// The floors of `FLOORS`, each sorted: what a listing must name.
fn floors_sorted() -> Vec<Vec<String>> {
    FLOORS
        .iter()
        .map(|(_, modules)| {
            let mut names: Vec<String> = modules.iter().map(|m| m.to_string()).collect();
            names.sort();
            names
        })
        .collect()
}

/// One line a floor: the modules before two spaces, `a/` for a folder.
fn layout_floors<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<Vec<String>> {
    lines
        .map(|line| {
            let modules = line.split("  ").next().unwrap_or_default();
            let mut names: Vec<String> =
                modules.split(", ").map(|m| m.trim().trim_end_matches('/').to_owned()).collect();
            names.sort();
            names
        })
        .collect()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// The README's Layout, DESIGN's Shape (docs/design.md) and the crate's own
/// doc list the floors too, for readers: checked against `FLOORS`, the one
/// source, so none can drift.
#[test]
fn the_readme_design_and_lib_rs_list_the_same_floors() {
    let readme = read("README.md");
    let listed = layout_floors(readme.lines().filter_map(|line| line.strip_prefix("  src/")));
    assert_eq!(listed, floors_sorted(), "README.md's Layout and FLOORS, floor by floor from the ground up");

    let design = read("docs/design.md");
    let shape = design.lines().skip_while(|l| !l.starts_with("actors/")).skip(1);
    let listed = layout_floors(shape.take_while(|l| l.starts_with("  ")).map(str::trim_start));
    assert_eq!(listed, floors_sorted(), "docs/design.md's Shape and FLOORS");

    let lib = read("actors/src/lib.rs");
    let listed: Vec<Vec<String>> = lib
        .lines()
        .filter_map(|line| line.strip_prefix("//! - "))
        .map(|line| {
            let names = line.rsplit_once(": ").map_or("", |(_, names)| names);
            let mut names: Vec<String> = names.split(", ").map(|n| n.trim_matches('`').to_owned()).collect();
            names.sort();
            names
        })
        .collect();
    assert_eq!(listed, floors_sorted(), "actors/src/lib.rs's floors and FLOORS");
}

/// Functions short enough to read at once: none in `src/` or `actors/src`
/// runs over 80 lines (rustfmt's layout: a body ends at the `}` under its `fn`).
#[test]
fn no_function_runs_over_80_lines() {
    const LONGEST: usize = 80;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    rust_files(&root.join("actors/src"), &mut files);
    let mut long = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (at, line) in lines.iter().enumerate() {
            let indent = &line[..line.len() - line.trim_start().len()];
            let head = line.trim_start();
            let head = head.strip_prefix("pub(crate) ").or(head.strip_prefix("pub(super) ")).unwrap_or(head);
            let head = head.strip_prefix("pub ").unwrap_or(head);
            let head = head.strip_prefix("const ").unwrap_or(head);
            let head = head.strip_prefix("async ").unwrap_or(head);
            if !head.starts_with("fn ") || line.trim_end().ends_with(';') {
                continue;
            }
            let close = format!("{indent}}}");
            let Some(length) = lines[at + 1..].iter().position(|l| *l == close).map(|end| end + 2) else { continue };
            if length > LONGEST {
                long.push(format!("{}:{}: {length} lines", file.strip_prefix(root).unwrap().display(), at + 1));
            }
        }
    }
    assert!(long.is_empty(), "functions over {LONGEST} lines:\n{}", long.join("\n"));
}
