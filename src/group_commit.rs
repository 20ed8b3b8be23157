//! Group commit: writes that many requests make at once share one database round trip.
//!
//! Callers hand an item to one task and wait; the task takes every item queued while its
//! previous commit ran, commits them together and answers each caller with its own result.
//! Under load one commit (one statement, one WAL flush) carries many requests' writes, where
//! each request's own commit cost a statement plan, a round trip and a flush; with no load the
//! latency is one commit. The audit writer and single-user creation use it.
//!
//! A caller that has gone (its request timed out, was cut short or its client disconnected)
//! must not have its write committed after it was answered otherwise: its item is skipped
//! before the batch is sent, and [`Batch::any_gone`] lets the commit roll back instead of
//! committing when one went while the batch's statement ran.

use std::future::Future;

use tokio::sync::{mpsc, oneshot};

use crate::http::ApiError;

/// The batch an item was part of failed; the detail is logged once for the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InsertFailed {
    /// The database is away or did not answer in time: nothing was committed (or, if the
    /// answer to COMMIT itself was lost, it cannot be known).
    #[error("the database is unavailable")]
    Unavailable,
    /// The database refused the batch.
    #[error("the write could not be stored")]
    Failed,
}

impl From<InsertFailed> for ApiError {
    fn from(err: InsertFailed) -> ApiError {
        match err {
            InsertFailed::Unavailable => ApiError::Unavailable,
            InsertFailed::Failed => ApiError::internal(err),
        }
    }
}

/// An item's outcome in an insert batch: `Ok(true)` inserted, `Ok(false)` skipped (a key it
/// needs is taken).
pub type Inserted = Result<bool, InsertFailed>;

/// What every caller of a batch is told when the batch as a whole could not be committed.
pub trait BatchFailed: Clone {
    /// The database is away or did not answer in time.
    const UNAVAILABLE: Self;
    /// The database refused the batch.
    const FAILED: Self;
}

impl BatchFailed for Inserted {
    const UNAVAILABLE: Self = Err(InsertFailed::Unavailable);
    const FAILED: Self = Err(InsertFailed::Failed);
}

/// One try at an insert batch: each item's outcome, or `None` when it rolled back.
pub type Attempt<'b, R = Inserted> =
    std::pin::Pin<Box<dyn Future<Output = crate::store::StoreResult<Option<Vec<R>>>> + Send + 'b>>;

/// Commits an insert batch through `attempt`, which runs its statements and commits only when
/// no caller has gone (answering each item's outcome, in order), else rolls back and
/// answers `None`: then it is tried again without the callers gone. Cut short (each caller told
/// the database is unavailable) when the database is declared away; `what` names the items in
/// the log of a failed batch. Users, tokens and the audit writer's events commit through it.
pub async fn commit_inserts<T, R: BatchFailed>(
    health: &crate::store::Health,
    what: &'static str,
    mut batch: Batch<T, R>,
    attempt: impl for<'b> Fn(&'b Batch<T, R>) -> Attempt<'b, R>,
) {
    loop {
        let outcome = tokio::select! {
            stored = attempt(&batch) => Some(stored),
            () = health.went_down() => None,
        };
        match outcome {
            Some(Ok(Some(outcomes))) => return batch.answer(outcomes),
            Some(Ok(None)) => {
                batch.retain_live();
                if batch.is_empty() {
                    return;
                }
            }
            Some(Err(err)) if err.is_unavailable() => return batch.answer_all(R::UNAVAILABLE),
            Some(Err(err)) => {
                tracing::error!(error = %err, items = batch.items.len(), what, "insert batch failed");
                return batch.answer_all(R::FAILED);
            }
            None => return batch.answer_all(R::UNAVAILABLE),
        }
    }
}

/// Items waiting beyond this make callers wait for queue space (back-pressure).
const QUEUE: usize = 8192;

struct Job<T, R> {
    item: T,
    done: oneshot::Sender<R>,
}

/// Items to commit together, with their callers.
pub struct Batch<T, R> {
    /// The items, in arrival order.
    pub items: Vec<T>,
    callers: Vec<oneshot::Sender<R>>,
}

impl<T, R> Batch<T, R> {
    /// True when a caller has gone since the batch was formed: committing would record a
    /// write its caller was not told about.
    pub fn any_gone(&self) -> bool {
        self.callers.iter().any(oneshot::Sender::is_closed)
    }

    /// Drops the items whose caller has gone.
    pub fn retain_live(&mut self) {
        let items = std::mem::take(&mut self.items);
        let callers = std::mem::take(&mut self.callers);
        for (item, caller) in items.into_iter().zip(callers) {
            if !caller.is_closed() {
                self.items.push(item);
                self.callers.push(caller);
            }
        }
    }

    /// True when no item is left.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Answers each caller with its result, in item order. Callers left over by a short
    /// result list are dropped: they see `None`, not a hang.
    pub fn answer(self, results: impl IntoIterator<Item = R>) {
        for (caller, result) in self.callers.into_iter().zip(results) {
            // A caller that went away meanwhile needs no answer.
            let _ = caller.send(result);
        }
    }

    /// Answers every caller with the same result.
    pub fn answer_all(self, result: R)
    where
        R: Clone,
    {
        let n = self.callers.len();
        self.answer(std::iter::repeat_n(result, n));
    }
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
    /// Starts the task on the current runtime. `commit` gets at most `max_batch` items whose
    /// callers are still waiting, in arrival order, and answers them ([`Batch::answer`]).
    pub fn spawn<F, Fut>(max_batch: usize, commit: F) -> Self
    where
        F: FnMut(Batch<T, R>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (queue, jobs) = mpsc::channel(QUEUE);
        tokio::spawn(run(jobs, max_batch.max(1), commit));
        GroupCommit { queue }
    }

    /// Commits `item` with whatever else is queued; `None` if the task is gone (shutdown) or
    /// gave no answer.
    pub async fn submit(&self, item: T) -> Option<R> {
        let (done, wait) = oneshot::channel();
        self.queue.send(Job { item, done }).await.ok()?;
        wait.await.ok()
    }
}

async fn run<T, R, F, Fut>(mut jobs: mpsc::Receiver<Job<T, R>>, max_batch: usize, mut commit: F)
where
    F: FnMut(Batch<T, R>) -> Fut,
    Fut: Future<Output = ()>,
{
    while let Some(first) = jobs.recv().await {
        let mut batch = Batch { items: Vec::with_capacity(max_batch), callers: Vec::with_capacity(max_batch) };
        let mut next = Some(first);
        while let Some(job) = next.take() {
            batch.items.push(job.item);
            batch.callers.push(job.done);
            if batch.items.len() < max_batch {
                next = jobs.try_recv().ok();
            }
        }
        batch.retain_live();
        if !batch.is_empty() {
            commit(batch).await;
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
        let group = GroupCommit::spawn(64, move |batch: Batch<u32, u32>| {
            seen.lock().expect("lock").push(batch.items.len());
            async move {
                tokio::task::yield_now().await;
                let results: Vec<u32> = batch.items.iter().map(|i| i * 10).collect();
                batch.answer(results);
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
        let group = GroupCommit::spawn(8, |batch: Batch<u32, u32>| async move { batch.answer(Vec::new()) });
        assert_eq!(group.submit(1).await, None);
    }

    #[tokio::test]
    async fn items_whose_caller_has_gone_are_skipped() {
        let (open, opened) = tokio::sync::oneshot::channel::<()>();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = seen.clone();
        let mut gate = Some(opened);
        let group = GroupCommit::spawn(8, move |batch: Batch<u32, u32>| {
            record.lock().expect("lock").extend(batch.items.iter().copied());
            let wait = gate.take();
            async move {
                // The first batch holds the task while the second item's caller gives up.
                if let Some(wait) = wait {
                    let _ = wait.await;
                }
                let results: Vec<u32> = batch.items.clone();
                batch.answer(results);
            }
        });
        let first = tokio::spawn({
            let group = group.clone();
            async move { group.submit(1).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let gave_up = tokio::time::timeout(std::time::Duration::from_millis(50), group.submit(2)).await;
        assert!(gave_up.is_err(), "the second item waits behind the first batch");
        open.send(()).expect("open");
        assert_eq!(first.await.expect("joined"), Some(1));
        assert_eq!(group.submit(3).await, Some(3));
        assert_eq!(*seen.lock().expect("lock"), [1, 3], "the abandoned item was committed");
    }

    #[test]
    fn retain_live_keeps_items_with_their_callers() {
        let (a, _wait_a) = oneshot::channel::<u8>();
        let (b, wait_b) = oneshot::channel::<u8>();
        let (c, mut wait_c) = oneshot::channel::<u8>();
        drop(wait_b);
        let mut batch = Batch { items: vec!['a', 'b', 'c'], callers: vec![a, b, c] };
        assert!(batch.any_gone());
        batch.retain_live();
        assert_eq!(batch.items, ['a', 'c']);
        assert!(!batch.any_gone());
        batch.answer([1, 3]);
        assert_eq!(wait_c.try_recv(), Ok(3));
    }
}
