//! Group commit: one writer thread owns every write transaction.
//!
//! Callers hand the writer an operation (a closure over [`WriteCtx`]) and await a oneshot reply.
//! The thread blocks for the first pending operation, drains everything else already queued (up to
//! [`MAX_BATCH`]), applies them all in one fjall write transaction, commits it once and syncs the
//! journal (one `fdatasync` for the whole batch; a batch of only acknowledgements skips the sync,
//! see [`Writer::write_then_lazy`]) and only then answers every caller. Under
//! load the batch grows by itself: while one commit is syncing, the next batch is queueing up.
//!
//! Atomicity per operation: operations check their conditions before their first write, so a
//! logical refusal (`AlreadyExists`, `NotFound`, …) leaves nothing behind and only that operation
//! fails. An operation that fails *after* writing (a storage error half-way) could have left a
//! partial change, so the whole batch is rolled back and every operation in it fails.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fjall::{PersistMode, Readable, SingleWriterTxKeyspace, SingleWriterWriteTx};
use herald_core::ports::StoreError;
use tokio::sync::oneshot;

use crate::cache::ReadCache;
use crate::kv::{queue_key, Kv, KvError};
use crate::tables::Tbl;

/// How long a small batch waits for more writes before it commits: fewer, larger commits sync
/// the journal fewer times. Chosen on redb, where every commit also rewrote the pages it touched
/// whole, so fewer commits wrote fewer bytes per delivery: on `herald bench` 1 ms and 128 (was
/// 0.5 ms and 16) wrote 6,200–6,700 bytes per delivery at F=1 instead of 8,100–8,800 and 42 KB
/// instead of 55 KB at a steady 1,000/s, at the same throughput, for 0.7 ms more on the median
/// 202 at 1,000/s (2.1 ms against 1.4 ms). 3 ms and 512 wrote 5,000 but lost a fifth of the
/// throughput and doubled that latency.
const DURABLE_LINGER: Duration = Duration::from_millis(1);
/// Batches at least this large commit at once.
const LINGER_BELOW: usize = 128;

/// How long a batch of only lazy writes waits for company.
const LAZY_LINGER: Duration = Duration::from_millis(2);

/// The most operations one transaction takes; bounds commit size and reply latency.
pub(crate) const MAX_BATCH: usize = 4096;

/// The batch's transaction, as seen by one operation. Reads see the batch's earlier writes.
pub(crate) struct WriteCtx<'db> {
    tx: SingleWriterWriteTx<'db>,
    kv: &'db Kv,
    /// Whether the current operation has (possibly) changed anything yet.
    wrote: bool,
    /// Whether the batch touched a table the read cache holds.
    touched_cached: bool,
}

impl<'db> WriteCtx<'db> {
    fn new(kv: &'db Kv, durable: bool) -> Self {
        let mode = if durable {
            PersistMode::SyncData
        } else {
            PersistMode::Buffer
        };
        Self {
            tx: kv.db.write_tx().durability(Some(mode)),
            kv,
            wrote: false,
            touched_cached: false,
        }
    }

    fn table_mut(&mut self, t: Tbl) -> &'db SingleWriterTxKeyspace {
        if matches!(t, Tbl::Subscriptions | Tbl::ApiKeys) {
            self.touched_cached = true;
        }
        self.kv.keyspace(t)
    }

    /// The stored bytes under `key`, as this transaction sees them (earlier operations included).
    pub(crate) fn get(&mut self, t: Tbl, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let value = self
            .tx
            .get(self.kv.keyspace(t), key)
            .map_err(StoreError::backend)?;
        Ok(value.map(|v| v.to_vec()))
    }

    pub(crate) fn contains(&mut self, t: Tbl, key: &str) -> Result<bool, StoreError> {
        self.tx
            .contains_key(self.kv.keyspace(t), key)
            .map_err(StoreError::backend)
    }

    pub(crate) fn put(&mut self, t: Tbl, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.wrote = true;
        let ks = self.table_mut(t);
        self.tx.insert(ks, key, value);
        #[cfg(feature = "write-trace")]
        crate::trace::put(t, key.as_bytes(), value);
        Ok(())
    }

    /// Removes `key`; whether it was there.
    pub(crate) fn remove(&mut self, t: Tbl, key: &str) -> Result<bool, StoreError> {
        let ks = self.table_mut(t);
        let existed = self
            .tx
            .take(ks, key)
            .map_err(StoreError::backend)?
            .is_some();
        // Removing a missing key changes nothing, so it does not count as a write.
        self.wrote |= existed;
        #[cfg(feature = "write-trace")]
        crate::trace::remove(t, key.as_bytes(), existed);
        Ok(existed)
    }

    /// Removes every key in `from..to`.
    pub(crate) fn remove_range(&mut self, t: Tbl, from: &str, to: &str) -> Result<(), StoreError> {
        self.remove_range_counted(t, from, to).map(drop)
    }

    /// Removes every key in `from..to`; how many there were.
    pub(crate) fn remove_range_counted(
        &mut self,
        t: Tbl,
        from: &str,
        to: &str,
    ) -> Result<u64, StoreError> {
        let keys = self.keys_in(t, from, to)?;
        let ks = self.table_mut(t);
        self.wrote |= !keys.is_empty();
        for key in &keys {
            self.tx.remove(ks, key.as_str());
        }
        #[cfg(feature = "write-trace")]
        crate::trace::remove_range(t, from.as_bytes(), to.as_bytes());
        Ok(keys.len() as u64)
    }

    /// The keys in `from..to`, in order, as this transaction sees them.
    pub(crate) fn keys_in(
        &mut self,
        t: Tbl,
        from: &str,
        to: &str,
    ) -> Result<Vec<String>, StoreError> {
        let mut keys = Vec::new();
        for guard in self.tx.range(self.kv.keyspace(t), from..to) {
            let key = guard.key().map_err(StoreError::backend)?;
            let key = String::from_utf8(key.to_vec())
                .map_err(|_| StoreError::backend(KvError::KeyNotText))?;
            keys.push(key);
        }
        Ok(keys)
    }

    pub(crate) fn queue_contains(&mut self, queue: &str, seq: u64) -> Result<bool, StoreError> {
        self.tx
            .contains_key(&self.kv.queue, queue_key(queue, seq))
            .map_err(StoreError::backend)
    }

    pub(crate) fn queue_put(
        &mut self,
        queue: &str,
        seq: u64,
        value: &[u8],
    ) -> Result<(), StoreError> {
        self.wrote = true;
        self.tx.insert(&self.kv.queue, queue_key(queue, seq), value);
        #[cfg(feature = "write-trace")]
        crate::trace::queue_put(queue, seq, value);
        Ok(())
    }

    pub(crate) fn queue_remove(&mut self, queue: &str, seq: u64) -> Result<bool, StoreError> {
        let existed = self
            .tx
            .take(&self.kv.queue, queue_key(queue, seq))
            .map_err(StoreError::backend)?
            .is_some();
        self.wrote |= existed;
        #[cfg(feature = "write-trace")]
        crate::trace::queue_remove(queue, seq, existed);
        Ok(existed)
    }
}

/// One queued operation, type-erased so the writer can batch operations of every kind.
trait Job: Send {
    /// Applies the operation inside the batch's transaction and keeps its result; true if it failed.
    fn apply(&mut self, ctx: &mut WriteCtx<'_>) -> bool;
    /// Called exactly once, after the batch committed (`Ok`) or was rolled back (`Err`).
    fn finish(self: Box<Self>, batch: Result<(), &str>);
    /// Whether this operation needs its commit synced to disk before it is answered.
    fn durable(&self) -> bool;
}

struct OpJob<R, F, D> {
    op: Option<F>,
    result: Option<Result<R, StoreError>>,
    done: D,
    durable: bool,
}

impl<R, F, D> Job for OpJob<R, F, D>
where
    R: Send,
    F: FnOnce(&mut WriteCtx<'_>) -> Result<R, StoreError> + Send,
    D: FnOnce(Result<R, StoreError>) + Send,
{
    fn apply(&mut self, ctx: &mut WriteCtx<'_>) -> bool {
        let Some(op) = self.op.take() else {
            return false;
        };
        let result = op(ctx);
        let failed = result.is_err();
        self.result = Some(result);
        failed
    }

    fn finish(self: Box<Self>, batch: Result<(), &str>) {
        let this = *self;
        let result = match (batch, this.result) {
            (Ok(()), Some(result)) => result,
            (Ok(()), None) => Err(StoreError::backend("the write was not applied")),
            // The operation that broke the batch reports its own error.
            (Err(_), Some(Err(own))) => Err(own),
            (Err(why), _) => Err(StoreError::backend(format!("write not committed: {why}"))),
        };
        (this.done)(result);
    }

    fn durable(&self) -> bool {
        self.durable
    }
}

/// Counters of the writer, for benchmarks and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Transactions committed.
    pub commits: u64,
    /// Operations applied in them.
    pub operations: u64,
}

struct Counters {
    commits: AtomicU64,
    operations: AtomicU64,
    /// When the last batch committed, in milliseconds since `epoch`.
    last_write_ms: AtomicU64,
    epoch: Instant,
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            commits: AtomicU64::new(0),
            operations: AtomicU64::new(0),
            last_write_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }
}

/// The handle to the writer thread. Dropping it lets the thread finish what is queued, then joins
/// it, so the database is closed when the last handle is gone.
pub(crate) struct Writer {
    tx: Option<mpsc::Sender<Box<dyn Job>>>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
}

impl Writer {
    pub(crate) fn spawn(kv: Arc<Kv>, cache: Arc<ReadCache>) -> std::io::Result<Self> {
        // With the `write-trace` feature, the trace named by `HERALD_WRITE_TRACE` (see `trace`).
        #[cfg(feature = "write-trace")]
        let setup = {
            let trace = crate::trace::Trace::from_env()?;
            move || crate::trace::install(trace)
        };
        #[cfg(not(feature = "write-trace"))]
        let setup = || {};
        Self::spawn_inner(kv, cache, setup)
    }

    /// [`Writer::spawn`] writing the trace `trace`.
    #[cfg(all(test, feature = "write-trace"))]
    pub(crate) fn spawn_traced(
        kv: Arc<Kv>,
        cache: Arc<ReadCache>,
        trace: Option<crate::trace::Trace>,
    ) -> std::io::Result<Self> {
        Self::spawn_inner(kv, cache, move || crate::trace::install(trace))
    }

    /// `setup` runs first on the new thread.
    fn spawn_inner(
        kv: Arc<Kv>,
        cache: Arc<ReadCache>,
        setup: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Box<dyn Job>>();
        let counters = Arc::new(Counters::default());
        let thread_counters = Arc::clone(&counters);
        let thread = std::thread::Builder::new()
            .name("herald-writer".into())
            .spawn(move || {
                setup();
                run(&kv, &rx, &thread_counters, &cache)
            })?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
            counters,
        })
    }

    /// How long ago the writer last committed (since it started, if never).
    pub(crate) fn idle_for(&self) -> Duration {
        let c = &self.counters;
        let last = Duration::from_millis(c.last_write_ms.load(Ordering::Relaxed));
        c.epoch.elapsed().saturating_sub(last)
    }

    pub(crate) fn stats(&self) -> WriterStats {
        WriterStats {
            commits: self.counters.commits.load(Ordering::Relaxed),
            operations: self.counters.operations.load(Ordering::Relaxed),
        }
    }

    /// Runs `op` in the next group commit; returns its result once the commit is durable.
    pub(crate) async fn write<R, F>(&self, op: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut WriteCtx<'_>) -> Result<R, StoreError> + Send + 'static,
    {
        self.write_then(op, |r| r).await
    }

    /// Like [`Writer::write`], and runs `then` on the writer thread with the outcome right after
    /// the commit. `then` runs even if the caller's future was dropped meanwhile, so in-memory state
    /// that must follow the durable state (the queue index) is updated there.
    pub(crate) async fn write_then<R, T, F, A>(&self, op: F, then: A) -> Result<T, StoreError>
    where
        R: Send + 'static,
        T: Send + 'static,
        F: FnOnce(&mut WriteCtx<'_>) -> Result<R, StoreError> + Send + 'static,
        A: FnOnce(Result<R, StoreError>) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(op, then, true).await
    }

    /// Like [`Writer::write_then`] for writes whose loss in a crash is harmless (acknowledgements:
    /// a message whose delete is lost comes back, and every handler is idempotent). A batch of only
    /// such writes commits without an fsync; the next durable commit makes them durable too.
    pub(crate) async fn write_then_lazy<R, T, F, A>(&self, op: F, then: A) -> Result<T, StoreError>
    where
        R: Send + 'static,
        T: Send + 'static,
        F: FnOnce(&mut WriteCtx<'_>) -> Result<R, StoreError> + Send + 'static,
        A: FnOnce(Result<R, StoreError>) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(op, then, false).await
    }

    async fn submit<R, T, F, A>(&self, op: F, then: A, durable: bool) -> Result<T, StoreError>
    where
        R: Send + 'static,
        T: Send + 'static,
        F: FnOnce(&mut WriteCtx<'_>) -> Result<R, StoreError> + Send + 'static,
        A: FnOnce(Result<R, StoreError>) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(OpJob {
            durable,
            op: Some(op),
            result: None,
            done: move |result| {
                // The caller may have gone away; the write stands either way.
                let _ = reply.send(then(result));
            },
        });
        match &self.tx {
            Some(tx) => {
                if let Err(mpsc::SendError(job)) = tx.send(job) {
                    job.finish(Err("the writer thread has stopped"));
                }
            }
            None => job.finish(Err("the database is closing")),
        }
        answer
            .await
            .map_err(|_| StoreError::backend("the writer thread stopped before answering"))?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop once the queue is drained.
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the writer thread panicked");
            }
        }
    }
}

fn run(kv: &Kv, rx: &mpsc::Receiver<Box<dyn Job>>, counters: &Counters, cache: &ReadCache) {
    let mut batch: Vec<Box<dyn Job>> = Vec::new();
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_batch(kv, rx, &mut batch, counters, cache);
        let ms = u64::try_from(counters.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        counters.last_write_ms.store(ms, Ordering::Relaxed);
    }
}

/// Lingers for company as the batch's kind asks, then commits it and answers its operations.
fn commit_batch(
    kv: &Kv,
    rx: &mpsc::Receiver<Box<dyn Job>>,
    batch: &mut Vec<Box<dyn Job>>,
    counters: &Counters,
    cache: &ReadCache,
) {
    // A batch of only lazy writes (acknowledgements) waits a moment for a durable write to ride
    // along with, instead of costing a commit of its own.
    let linger_until = Instant::now() + LAZY_LINGER;
    while batch.len() < MAX_BATCH && !batch.iter().any(|job| job.durable()) {
        let left = linger_until.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
    // A commit costs about the same for one write as for fifty (one journal sync), so a small
    // batch waits up to `DURABLE_LINGER` for more. Under load the batch is already large and
    // nothing waits; at a steady trickle this trades a fraction of a millisecond of latency for
    // several times fewer syncs.
    if batch.len() < LINGER_BELOW {
        let linger_until = Instant::now() + DURABLE_LINGER;
        while batch.len() < LINGER_BELOW {
            let left = linger_until.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
    }
    #[cfg(feature = "write-trace")]
    let durable = batch.iter().any(|job| job.durable());
    let (outcome, touched_cached) = apply_and_commit(kv, batch);
    #[cfg(feature = "write-trace")]
    crate::trace::end_batch(outcome.is_ok().then_some(durable));
    // Before anyone is answered, so a read after a write never meets the old record.
    if touched_cached {
        cache.invalidate();
    }
    match &outcome {
        Ok(()) => {
            counters.commits.fetch_add(1, Ordering::Relaxed);
            counters
                .operations
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            tracing::trace!(operations = batch.len(), "group commit");
        }
        Err(why) => {
            tracing::error!(operations = batch.len(), error = %why, "group commit failed")
        }
    }
    for job in batch.drain(..) {
        job.finish(outcome.as_ref().map(|_| ()).map_err(String::as_str));
    }
}

/// The batch's outcome, and whether it touched a table the read cache holds (true when unsure).
fn apply_and_commit(kv: &Kv, batch: &mut [Box<dyn Job>]) -> (Result<(), String>, bool) {
    let durable = batch.iter().any(|job| job.durable());
    let mut ctx = WriteCtx::new(kv, durable);
    let mut broken = false;
    for job in batch.iter_mut() {
        ctx.wrote = false;
        if job.apply(&mut ctx) && ctx.wrote {
            broken = true;
            break;
        }
    }
    let touched_cached = ctx.touched_cached;
    if broken {
        ctx.tx.rollback();
        let why = "an operation failed after writing; the whole batch was rolled back";
        return (Err(why.to_owned()), touched_cached);
    }
    (ctx.tx.commit().map_err(|e| e.to_string()), touched_cached)
}
