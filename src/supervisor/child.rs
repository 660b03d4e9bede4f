//! How the supervisor knows a child: its name, restart type and how to start it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use ractor::{Actor, ActorCell, SpawnErr};

/// OTP's restart types (`temporary` is left out: nothing here wants it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// Restarted whenever it ends, cleanly or not.
    Permanent,
    /// Restarted only when it fails; a clean stop is final.
    Transient,
}

type StartFn = dyn Fn(ActorCell) -> Pin<Box<dyn Future<Output = Result<ActorCell, SpawnErr>> + Send>> + Send + Sync;

#[derive(Clone)]
pub struct ChildSpec {
    pub name: &'static str,
    pub restart: Restart,
    start: Arc<StartFn>,
}

impl ChildSpec {
    /// `make` builds a fresh actor and its arguments for every (re)start.
    pub fn new<A, F>(name: &'static str, restart: Restart, make: F) -> Self
    where
        A: Actor,
        F: Fn() -> (A, A::Arguments) + Send + Sync + 'static,
    {
        let make = Arc::new(make);
        let start = move |supervisor: ActorCell| {
            let make = make.clone();
            let fut: Pin<Box<dyn Future<Output = Result<ActorCell, SpawnErr>> + Send>> = Box::pin(async move {
                let (actor, args) = make();
                // Unnamed: ractor's registry is process-global, and a restarted
                // child must not race its predecessor's unregistration.
                let (actor_ref, _join) = A::spawn_linked(None, actor, args, supervisor).await?;
                Ok(actor_ref.get_cell())
            });
            fut
        };
        Self { name, restart, start: Arc::new(start) }
    }

    pub(super) async fn start(&self, supervisor: ActorCell) -> Result<ActorCell, SpawnErr> {
        (self.start)(supervisor).await
    }
}

impl std::fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildSpec").field("name", &self.name).field("restart", &self.restart).finish()
    }
}
