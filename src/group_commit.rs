//! Group commit: writes that many requests make at once share one database round trip.
//!
//! Callers hand an item to one task and wait; the task takes every item queued while its
//! previous commit ran, commits them together and answers each caller with its own result.
//! Under load one commit (one statement, one WAL flush) carries many requests' writes, where
//! each request's own commit cost a statement plan, a round trip and a flush; with no load the
//! latency is one commit. The audit writer and single-user creation use it.

use std::future::Future;

use tokio::sync::{mpsc, oneshot};

/// Items waiting beyond this make callers wait for queue space (back-pressure).
const QUEUE: usize = 8192;

struct Job<T, R> {
    item: T,
    done: oneshot::Sender<R>,
}

/// Handle to a group-commit task; cheap to clone. The task ends when every handle is dropped.
pub struct GroupCommit<T, R> {
    queue: mpsc::Sender<Job<T, R>>,
}

impl<T, R> Clone for GroupCommit<T, R> {
    fn clone(&self) -> Self {
        GroupCommit { queue: self.queue.clone() }
    }
}

impl<T, R> std::fmt::Debug for GroupCommit<T, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GroupCommit")
    }
}

impl<T: Send + 'static, R: Send + 'static> GroupCommit<T, R> {
    /// Starts the task on the current runtime. `commit` gets at most `max_batch` items, in
    /// arrival order, and returns one result per item, in the same order.
    pub fn spawn<F, Fut>(max_batch: usize, commit: F) -> Self
    where
        F: FnMut(Vec<T>) -> Fut + Send + 'static,
        Fut: Future<Output = Vec<R>> + Send + 'static,
    {
        let (queue, jobs) = mpsc::channel(QUEUE);
        tokio::spawn(run(jobs, max_batch.max(1), commit));
        GroupCommit { queue }
    }

    /// Commits `item` with whatever else is queued; `None` if the task is gone (shutdown).
    pub async fn submit(&self, item: T) -> Option<R> {
        let (done, wait) = oneshot::channel();
        self.queue.send(Job { item, done }).await.ok()?;
        wait.await.ok()
    }
}

async fn run<T, R, F, Fut>(mut jobs: mpsc::Receiver<Job<T, R>>, max_batch: usize, mut commit: F)
where
    F: FnMut(Vec<T>) -> Fut,
    Fut: Future<Output = Vec<R>>,
{
    let mut waiters = Vec::with_capacity(max_batch);
    while let Some(first) = jobs.recv().await {
        let mut items = Vec::with_capacity(max_batch);
        items.push(first.item);
        waiters.push(first.done);
        while items.len() < max_batch {
            match jobs.try_recv() {
                Ok(job) => {
                    items.push(job.item);
                    waiters.push(job.done);
                }
                Err(_) => break,
            }
        }
        let results = commit(items).await;
        // A caller that went away (client disconnected) needs no answer. Waiters left over by
        // a short result list are dropped with the drain: they see `None`, not a hang.
        for (waiter, result) in waiters.drain(..).zip(results) {
            let _ = waiter.send(result);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn concurrent_items_share_a_commit_and_get_their_own_results() {
        let batches = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = batches.clone();
        let group = GroupCommit::spawn(64, move |items: Vec<u32>| {
            seen.lock().expect("lock").push(items.len());
            async move {
                tokio::task::yield_now().await;
                items.into_iter().map(|i| i * 10).collect()
            }
        });
        let calls = (0..100).map(|i| {
            let group = group.clone();
            async move { group.submit(i).await }
        });
        let results = futures::future::join_all(calls).await;
        assert_eq!(results, (0..100).map(|i| Some(i * 10)).collect::<Vec<_>>());
        let batches = batches.lock().expect("lock").clone();
        assert_eq!(batches.iter().sum::<usize>(), 100);
        assert!(batches.iter().all(|n| *n <= 64), "a batch exceeded its maximum: {batches:?}");
        assert!(batches.len() < 100, "no two items shared a commit: {batches:?}");
    }

    #[tokio::test]
    async fn a_short_result_list_answers_none_instead_of_hanging() {
        let group = GroupCommit::spawn(8, |_items: Vec<u32>| async { Vec::<u32>::new() });
        assert_eq!(group.submit(1).await, None);
    }
}
