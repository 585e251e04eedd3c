//! Group commit: one writer thread owns every write transaction.
//!
//! Callers hand the writer an operation (a closure over [`WriteCtx`]) and await a oneshot reply.
//! The thread blocks for the first pending operation, drains everything else already queued (up to
//! [`MAX_BATCH`]), applies them all in one redb write transaction, commits it once with
//! `Durability::Immediate` (one fsync for the whole batch; a batch of only acknowledgements skips
//! the fsync, see [`Writer::write_then_lazy`]) and only then answers every caller. Under
//! load the batch grows by itself: while one commit is syncing, the next batch is queueing up.
//!
//! Atomicity per operation: operations check their conditions before their first write, so a
//! logical refusal (`AlreadyExists`, `NotFound`, …) leaves nothing behind and only that operation
//! fails. An operation that fails *after* writing (a storage error half-way) could have left a
//! partial change, so the whole batch is rolled back and every operation in it fails.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use herald_core::ports::StoreError;
use redb::{Database, Durability, ReadableTable, Table, WriteTransaction};
use tokio::sync::oneshot;

use crate::cache::ReadCache;
use crate::compact::{self, CompactRequest, Compaction};
use crate::tables::{Tbl, QUEUE_MESSAGES};

/// How long a small batch waits for more writes before it commits. Every commit rewrites the
/// pages it touches whole, so fewer, larger commits write fewer bytes per delivery: on `herald
/// bench` 1 ms and 128 (was 0.5 ms and 16) wrote 6,200–6,700 bytes per delivery at F=1 instead
/// of 8,100–8,800 and 42 KB instead of 55 KB at a steady 1,000/s, at the same throughput, for
/// 0.7 ms more on the median 202 at 1,000/s (2.1 ms against 1.4 ms). 3 ms and 512 wrote 5,000 but
/// lost a fifth of the throughput and doubled that latency.
const DURABLE_LINGER: Duration = Duration::from_millis(1);
/// Batches at least this large commit at once.
const LINGER_BELOW: usize = 128;

/// How long a batch of only lazy writes waits for company.
const LAZY_LINGER: Duration = Duration::from_millis(2);

/// The most operations one transaction takes; bounds commit size and reply latency.
pub(crate) const MAX_BATCH: usize = 4096;

type RecordTableHandle<'txn> = Table<'txn, &'static str, &'static [u8]>;

/// The tables of the batch's transaction, as seen by one operation. Each is opened on first use:
/// redb does work at commit for every open table, and most batches touch only a few.
pub(crate) struct WriteCtx<'txn> {
    txn: &'txn WriteTransaction,
    tables: [Option<RecordTableHandle<'txn>>; Tbl::ALL.len()],
    queue: Option<Table<'txn, (&'static str, u64), &'static [u8]>>,
    /// Whether the current operation has (possibly) changed anything yet.
    wrote: bool,
    /// Whether the batch touched a table the read cache holds.
    touched_cached: bool,
}

impl<'txn> WriteCtx<'txn> {
    fn new(txn: &'txn WriteTransaction) -> Self {
        Self {
            txn,
            tables: Default::default(),
            queue: None,
            wrote: false,
            touched_cached: false,
        }
    }

    fn table(&mut self, t: Tbl) -> Result<&mut RecordTableHandle<'txn>, StoreError> {
        // Kinds that share a table share its handle: redb opens a table once per transaction.
        let slot = &mut self.tables[t.host() as usize];
        if slot.is_none() {
            *slot = Some(self.txn.open_table(t.def()).map_err(StoreError::backend)?);
        }
        slot.as_mut()
            .ok_or_else(|| StoreError::backend("the table did not open"))
    }

    fn table_mut(&mut self, t: Tbl) -> Result<&mut RecordTableHandle<'txn>, StoreError> {
        if matches!(t, Tbl::Subscriptions | Tbl::ApiKeys) {
            self.touched_cached = true;
        }
        self.table(t)
    }

    fn queue(
        &mut self,
    ) -> Result<&mut Table<'txn, (&'static str, u64), &'static [u8]>, StoreError> {
        if self.queue.is_none() {
            self.queue = Some(
                self.txn
                    .open_table(QUEUE_MESSAGES)
                    .map_err(StoreError::backend)?,
            );
        }
        self.queue
            .as_mut()
            .ok_or_else(|| StoreError::backend("the table did not open"))
    }

    /// The stored bytes under `key`, as this transaction sees them (earlier operations included).
    pub(crate) fn get(&mut self, t: Tbl, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let guard = self.table(t)?.get(key).map_err(StoreError::backend)?;
        Ok(guard.map(|g| g.value().to_vec()))
    }

    pub(crate) fn contains(&mut self, t: Tbl, key: &str) -> Result<bool, StoreError> {
        Ok(self
            .table(t)?
            .get(key)
            .map_err(StoreError::backend)?
            .is_some())
    }

    pub(crate) fn put(&mut self, t: Tbl, key: &str, value: &[u8]) -> Result<(), StoreError> {
        // Marked before the call: a failed insert may still have touched pages.
        self.wrote = true;
        self.table_mut(t)?
            .insert(key, value)
            .map_err(StoreError::backend)?;
        #[cfg(feature = "write-trace")]
        crate::trace::put(t, key.as_bytes(), value);
        Ok(())
    }

    /// Removes `key`; whether it was there.
    pub(crate) fn remove(&mut self, t: Tbl, key: &str) -> Result<bool, StoreError> {
        let result = self.table_mut(t)?.remove(key).map(|old| old.is_some());
        // Removing a missing key changes nothing, so it does not count as a write.
        if !matches!(result, Ok(false)) {
            self.wrote = true;
        }
        #[cfg(feature = "write-trace")]
        if let Ok(existed) = result {
            crate::trace::remove(t, key.as_bytes(), existed);
        }
        result.map_err(StoreError::backend)
    }

    /// Removes every key in `from..to`.
    pub(crate) fn remove_range(&mut self, t: Tbl, from: &str, to: &str) -> Result<(), StoreError> {
        self.wrote = true;
        self.table_mut(t)?
            .retain_in(from..to, |_, _| false)
            .map_err(StoreError::backend)?;
        #[cfg(feature = "write-trace")]
        crate::trace::remove_range(t, from.as_bytes(), to.as_bytes());
        Ok(())
    }

    /// Removes every key in `from..to`; how many there were.
    pub(crate) fn remove_range_counted(
        &mut self,
        t: Tbl,
        from: &str,
        to: &str,
    ) -> Result<u64, StoreError> {
        let mut removed = 0;
        self.wrote = true;
        self.table_mut(t)?
            .retain_in(from..to, |_, _| {
                removed += 1;
                false
            })
            .map_err(StoreError::backend)?;
        #[cfg(feature = "write-trace")]
        crate::trace::remove_range(t, from.as_bytes(), to.as_bytes());
        Ok(removed)
    }

    pub(crate) fn queue_contains(&mut self, queue: &str, seq: u64) -> Result<bool, StoreError> {
        Ok(self
            .queue()?
            .get((queue, seq))
            .map_err(StoreError::backend)?
            .is_some())
    }

    pub(crate) fn queue_put(
        &mut self,
        queue: &str,
        seq: u64,
        value: &[u8],
    ) -> Result<(), StoreError> {
        self.wrote = true;
        self.queue()?
            .insert((queue, seq), value)
            .map_err(StoreError::backend)?;
        #[cfg(feature = "write-trace")]
        crate::trace::queue_put(queue, seq, value);
        Ok(())
    }

    pub(crate) fn queue_remove(&mut self, queue: &str, seq: u64) -> Result<bool, StoreError> {
        let result = self.queue()?.remove((queue, seq)).map(|old| old.is_some());
        if !matches!(result, Ok(false)) {
            self.wrote = true;
        }
        #[cfg(feature = "write-trace")]
        if let Ok(existed) = result {
            crate::trace::queue_remove(queue, seq, existed);
        }
        result.map_err(StoreError::backend)
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

#[derive(Default)]
struct Counters {
    commits: AtomicU64,
    operations: AtomicU64,
}

/// What the writer thread is asked to do.
enum Msg {
    Op(Box<dyn Job>),
    Compact(CompactRequest),
}

/// The handle to the writer thread. Dropping it lets the thread finish what is queued, then joins
/// it, so the database file is closed when the last handle is gone.
pub(crate) struct Writer {
    tx: Option<mpsc::Sender<Msg>>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
}

impl Writer {
    pub(crate) fn spawn(
        db: Arc<RwLock<Database>>,
        cache: Arc<ReadCache>,
        path: PathBuf,
    ) -> std::io::Result<Self> {
        // With the `write-trace` feature, the trace named by `HERALD_WRITE_TRACE` (see `trace`).
        #[cfg(feature = "write-trace")]
        let setup = {
            let trace = crate::trace::Trace::from_env()?;
            move || crate::trace::install(trace)
        };
        #[cfg(not(feature = "write-trace"))]
        let setup = || {};
        Self::spawn_inner(db, cache, path, setup)
    }

    /// [`Writer::spawn`] writing the trace `trace`.
    #[cfg(all(test, feature = "write-trace"))]
    pub(crate) fn spawn_traced(
        db: Arc<RwLock<Database>>,
        cache: Arc<ReadCache>,
        path: PathBuf,
        trace: Option<crate::trace::Trace>,
    ) -> std::io::Result<Self> {
        Self::spawn_inner(db, cache, path, move || crate::trace::install(trace))
    }

    /// `setup` runs first on the new thread.
    fn spawn_inner(
        db: Arc<RwLock<Database>>,
        cache: Arc<ReadCache>,
        path: PathBuf,
        setup: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Msg>();
        let counters = Arc::new(Counters::default());
        let thread_counters = Arc::clone(&counters);
        let thread = std::thread::Builder::new()
            .name("herald-redb-writer".into())
            .spawn(move || {
                setup();
                run(&db, &path, &rx, &thread_counters, &cache)
            })?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
            counters,
        })
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

    /// Compacts the file between two group commits if the writer has had nothing else to do for
    /// `quiet` and the file is mostly free (see `compact`).
    pub(crate) async fn compact(&self, quiet: Duration) -> Result<Compaction, StoreError> {
        let (reply, answer) = oneshot::channel();
        let request = CompactRequest { quiet, reply };
        let sent = self.tx.as_ref().map(|tx| tx.send(Msg::Compact(request)));
        if !matches!(sent, Some(Ok(()))) {
            return Err(StoreError::backend("the writer thread has stopped"));
        }
        answer
            .await
            .map_err(|_| StoreError::backend("the writer thread stopped before answering"))?
            .map_err(StoreError::backend)
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
                if let Err(mpsc::SendError(Msg::Op(job))) = tx.send(Msg::Op(job)) {
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
                tracing::error!("the redb writer thread panicked");
            }
        }
    }
}

/// Sorts a message into the batch or the compaction requests.
fn take(msg: Msg, batch: &mut Vec<Box<dyn Job>>, compactions: &mut Vec<CompactRequest>) {
    match msg {
        Msg::Op(job) => batch.push(job),
        Msg::Compact(request) => compactions.push(request),
    }
}

fn run(
    db: &RwLock<Database>,
    path: &std::path::Path,
    rx: &mpsc::Receiver<Msg>,
    counters: &Counters,
    cache: &ReadCache,
) {
    let mut batch: Vec<Box<dyn Job>> = Vec::new();
    let mut compactions = Vec::new();
    let mut last_write = Instant::now();
    while let Ok(first) = rx.recv() {
        take(first, &mut batch, &mut compactions);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(msg) => take(msg, &mut batch, &mut compactions),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            commit_batch(db, rx, &mut batch, &mut compactions, counters, cache);
            last_write = Instant::now();
        }
        // Between group commits, so no write transaction is open.
        for request in compactions.drain(..) {
            compact::run(db, path, request, last_write);
        }
    }
}

/// Lingers for company as the batch's kind asks, then commits it and answers its operations.
fn commit_batch(
    db: &RwLock<Database>,
    rx: &mpsc::Receiver<Msg>,
    batch: &mut Vec<Box<dyn Job>>,
    compactions: &mut Vec<CompactRequest>,
    counters: &Counters,
    cache: &ReadCache,
) {
    // A batch of only lazy writes (acknowledgements) waits a moment for a durable write to ride
    // along with, instead of costing a commit of its own.
    let linger_until = Instant::now() + LAZY_LINGER;
    while batch.len() < MAX_BATCH && !batch.iter().any(|job| job.durable()) {
        let left = linger_until.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(msg) => take(msg, batch, compactions),
            Err(_) => break,
        }
    }
    // A commit costs about the same for one write as for fifty (redb copies the touched pages
    // and syncs once), so a small batch waits up to `DURABLE_LINGER` for more. Under load the
    // batch is already large and nothing waits; at a steady trickle this trades a fraction of
    // a millisecond of latency for several times fewer commits.
    if batch.len() < LINGER_BELOW {
        let linger_until = Instant::now() + DURABLE_LINGER;
        while batch.len() < LINGER_BELOW {
            let left = linger_until.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(msg) => take(msg, batch, compactions),
                Err(_) => break,
            }
        }
    }
    #[cfg(feature = "write-trace")]
    let durable = batch.iter().any(|job| job.durable());
    let (outcome, touched_cached) = match db.read() {
        Ok(db) => apply_and_commit(&db, batch),
        Err(_) => (Err("the database lock is poisoned".to_owned()), true),
    };
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
fn apply_and_commit(db: &Database, batch: &mut [Box<dyn Job>]) -> (Result<(), String>, bool) {
    let mut txn = match db.begin_write() {
        Ok(txn) => txn,
        Err(e) => return (Err(e.to_string()), true),
    };
    let durable = batch.iter().any(|job| job.durable());
    let durability = if durable {
        Durability::Immediate
    } else {
        Durability::None
    };
    // Refused only when the transaction made a persistent savepoint, which Herald never does.
    if let Err(e) = txn.set_durability(durability) {
        return (Err(e.to_string()), true);
    }
    let (broken, touched_cached) = {
        let mut ctx = WriteCtx::new(&txn);
        let mut broken = false;
        for job in batch.iter_mut() {
            ctx.wrote = false;
            if job.apply(&mut ctx) && ctx.wrote {
                broken = true;
                break;
            }
        }
        (broken, ctx.touched_cached)
    };
    if broken {
        let outcome = match txn.abort() {
            Ok(()) => {
                Err("an operation failed after writing; the whole batch was rolled back".to_owned())
            }
            Err(e) => Err(e.to_string()),
        };
        return (outcome, touched_cached);
    }
    (txn.commit().map_err(|e| e.to_string()), touched_cached)
}
