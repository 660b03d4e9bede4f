//! Group commit. With fsync on, a PostgreSQL commit costs a WAL flush, and
//! one commit per request caps a hot path at what the disk flushes a second.
//! Callers that arrive together instead hand their item to a [`GroupCommit`]
//! and wait: a committer takes everything queued (up to a batch), writes it
//! in one transaction, and answers each caller with its own outcome only
//! after that transaction committed. While one committer writes, the next
//! gathers, so batches grow with load and stay at one item when idle: no
//! timer, no added latency.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Mutex};

type Waiting<I, O> = (I, oneshot::Sender<O>);

/// The committers are gone (the process is stopping): nothing was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the {0} group commit has stopped")]
pub struct Stopped(pub &'static str);

pub struct GroupCommit<I, O> {
    name: &'static str,
    queue: mpsc::Sender<Waiting<I, O>>,
}

impl<I, O> Clone for GroupCommit<I, O> {
    fn clone(&self) -> Self {
        Self { name: self.name, queue: self.queue.clone() }
    }
}

impl<I: Send + 'static, O: Send + 'static> GroupCommit<I, O> {
    /// `commit` writes a batch and returns one outcome per item, in order.
    /// `committers` batches may be in flight at once; when every handle is
    /// dropped they finish what is queued and end.
    pub fn start<F, Fut>(name: &'static str, max_batch: usize, committers: usize, commit: F) -> Self
    where
        F: Fn(Vec<I>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<O>> + Send + 'static,
    {
        let max_batch = max_batch.max(1);
        let (queue, incoming) = mpsc::channel::<Waiting<I, O>>(max_batch * committers.max(1) * 4);
        let incoming = Arc::new(Mutex::new(incoming));
        let commit = Arc::new(commit);
        for _ in 0..committers.max(1) {
            let (incoming, commit) = (incoming.clone(), commit.clone());
            tokio::spawn(async move {
                while let Some(batch) = gather(&incoming, max_batch).await {
                    let (items, waiting): (Vec<I>, Vec<oneshot::Sender<O>>) = batch.into_iter().unzip();
                    metrics::histogram!("aishad_group_commit_batch", "what" => name).record(items.len() as f64);
                    let outcomes = commit(items).await;
                    debug_assert_eq!(outcomes.len(), waiting.len(), "{name}: one outcome per item");
                    for (caller, outcome) in waiting.into_iter().zip(outcomes) {
                        let _ = caller.send(outcome);
                    }
                }
            });
        }
        Self { name, queue }
    }

    /// Queues `item` and waits for the commit that holds it.
    pub async fn submit(&self, item: I) -> Result<O, Stopped> {
        let (answer, outcome) = oneshot::channel();
        self.queue.send((item, answer)).await.map_err(|_| Stopped(self.name))?;
        outcome.await.map_err(|_| Stopped(self.name))
    }
}

/// The next batch: waits for one item, then takes what else is queued.
async fn gather<T>(incoming: &Mutex<mpsc::Receiver<T>>, max: usize) -> Option<Vec<T>> {
    let mut incoming = incoming.lock().await;
    let first = incoming.recv().await?;
    let mut batch = Vec::with_capacity(max.min(64));
    batch.push(first);
    while batch.len() < max {
        match incoming.try_recv() {
            Ok(next) => batch.push(next),
            Err(_) => break,
        }
    }
    Some(batch)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn callers_that_arrive_together_share_a_commit_and_get_their_own_outcome() {
        let commits = Arc::new(AtomicUsize::new(0));
        let counted = commits.clone();
        let group = GroupCommit::start("test", 100, 1, move |items: Vec<u32>| {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                items.into_iter().map(|i| if i % 7 == 0 { Err(i) } else { Ok(i * 2) }).collect::<Vec<_>>()
            }
        });
        let calls: Vec<_> = (1..=50u32)
            .map(|i| {
                let g = group.clone();
                tokio::spawn(async move { (i, g.submit(i).await.unwrap()) })
            })
            .collect();
        for call in calls {
            let (i, outcome) = call.await.unwrap();
            assert_eq!(outcome, if i % 7 == 0 { Err(i) } else { Ok(i * 2) }, "a bad item fails only itself");
        }
        assert!(commits.load(Ordering::SeqCst) <= 3, "{} commits for 50 callers", commits.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn an_idle_caller_is_committed_at_once() {
        let group = GroupCommit::start("idle", 100, 2, |items: Vec<u8>| async move { items });
        let started = std::time::Instant::now();
        assert_eq!(group.submit(3).await, Ok(3));
        assert!(started.elapsed() < Duration::from_millis(50));
    }
}
