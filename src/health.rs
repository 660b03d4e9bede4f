//! What `/readyz` reports: the supervisor writes each child's state here.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ChildHealth {
    pub running: bool,
    pub restarts: u64,
}

#[derive(Debug, Default)]
pub struct Health {
    children: RwLock<BTreeMap<&'static str, ChildHealth>>,
    tree_started: AtomicBool,
}

impl Health {
    pub fn register(&self, child: &'static str) {
        self.children.write().expect("health lock").entry(child).or_default();
        // At 0 from the start, so the first restart is an increase Prometheus sees.
        metrics::counter!("aishad_child_restarts_total", "child" => child).increment(0);
    }

    pub fn set_running(&self, child: &'static str, running: bool) {
        self.children.write().expect("health lock").entry(child).or_default().running = running;
        metrics::gauge!("aishad_child_up", "child" => child).set(if running { 1.0 } else { 0.0 });
    }

    pub fn restarted(&self, child: &'static str) {
        self.children.write().expect("health lock").entry(child).or_default().restarts += 1;
        metrics::counter!("aishad_child_restarts_total", "child" => child).increment(1);
    }

    pub fn set_tree_started(&self, started: bool) {
        self.tree_started.store(started, Ordering::SeqCst);
    }

    pub fn tree_started(&self) -> bool {
        self.tree_started.load(Ordering::SeqCst)
    }

    pub fn children(&self) -> BTreeMap<&'static str, ChildHealth> {
        self.children.read().expect("health lock").clone()
    }

    /// Every child is up and the tree has started.
    pub fn all_running(&self) -> bool {
        self.tree_started() && self.children.read().expect("health lock").values().all(|c| c.running)
    }
}
