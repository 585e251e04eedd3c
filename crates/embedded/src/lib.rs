//! Herald's embedded adapters: a durable [`Store`](herald_core::ports::Store) and
//! [`Queue`](herald_core::ports::Queue) in one fjall database (an LSM tree, in the data folder's
//! `db/`), for `herald dev`, tests and benchmarks.
//!
//! - Every write is committed and fjall's journal synced (`fdatasync`) before the call returns
//!   `Ok`, so nothing acknowledged is lost if the process is killed or the machine stops.
//! - Writes go through one writer thread that commits them in groups (see `writer`): many
//!   concurrent writes share one transaction and one sync, which is what makes thousands of
//!   deliveries per second possible on an ordinary disk.
//! - Reads use fjall snapshots directly, concurrently with the writer (see `kv`).
//! - The queue keeps an in-memory index of its messages, rebuilt from the database at open: each
//!   message's place in the order and its stored bytes, up to 16 MiB of them per queue (past that
//!   it reads them back from the database). Leases (visibility timeouts) live only in memory, so
//!   after a restart every un-acked message is visible again (at-least-once).
//! - Records past the retention are removed in the background ([`EmbeddedDb::spawn_sweeper`], see
//!   `retention`); fjall's compactions drop them from the disk as writes go on, and when the
//!   writer is quiet after a pass that removed anything the sweeper compacts the database fully
//!   (`compact`).
//!
//! Why fjall (issue 12). Profiling `herald bench` (`strace`, `perf`) showed the CPU, not the disk,
//! limits throughput, and the disk bytes per delivery were set by the engine: redb (Herald's
//! engine until then) rewrites every B-tree page a commit touches, whole, so a delivery cost
//! 6–9 KB of disk writes for about 2.1 KB of keys and JSON it stores (event, delivery, attempt,
//! queue message, index rows). Compact records and keying deliveries by partition (no index rows)
//! brought redb to 3,600–3,700 bytes per delivery at F=1 and 30 KB at a steady 1,000/s, and
//! `tools/engine-compare`'s what-ifs on its real write stream (feature `write-trace`, see `trace`)
//! showed no layout would bring it near 2,000: binary keys take 6 % more off, and even a queue
//! that wrote nothing only 16 %; what is left is the pages a commit rewrites. fjall wrote about
//! half of redb's bytes in the same replay, SQLite in WAL mode more than redb (the tool's README
//! has the figures). An LSM appends each record to its journal once and rewrites it only when
//! flushing and compacting, compressed; records that die young (queue messages, acknowledged
//! within milliseconds) mostly die in the memtable. Chosen by `herald-bench`'s default phases,
//! interleaved, in one quiet hour (2026-12-06): fjall 1,640–1,720 bytes per delivery at F=1
//! (redb 3,620–3,690) and 3.9 KB at a steady 1,000/s (redb 30 KB), at the same F=1 throughput,
//! CPU and p99, for 9–11 MB more peak resident (45–51 MB, at the edge of the 50 MB budget even
//! with 1–1.5 MiB memtables, see `kv`) and about a tenth less throughput at F=10 (18,900–20,600
//! against 21,800–23,100 deliveries/s: fjall spends 0.073–0.080 CPU-s per 1,000 there, redb
//! 0.063–0.066). A fifth of fjall's background work at F=10 was compactions rewriting a whole
//! level, because every flushed table spans all subscriptions' partitions; 4 MiB table files
//! instead of 64 MiB (`kv`) bound that rewrite: 2,110–2,160 → 1,700–1,720 bytes per delivery at
//! F=10 and 7.4–7.8 → 5.8–6.0 CPU-s of the worker per 500,000 deliveries (2026-12-07); in a quiet
//! hour after it, 21,080–23,250 deliveries/s at F=10 at 0.065–0.070 CPU-s per 1,000.
//!
//! ```no_run
//! # fn main() -> Result<(), herald_embedded::EmbeddedError> {
//! let db = herald_embedded::EmbeddedDb::open(std::path::Path::new("./.herald"))?;
//! let (store, queue) = (db.store(), db.queue());
//! # let _ = (store, queue); Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod cache;
mod catalog;
mod codec;
mod compact;
mod kv;
mod outbox;
mod queue;
mod retention;
mod stats;
mod store;
mod tables;
#[cfg(feature = "write-trace")]
mod trace;
mod writer;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use compact::{folder_size, Compaction};
pub use kv::KvError;
pub use outbox::EmbeddedOutbox;
pub use queue::{EmbeddedQueue, MAX_DELAY};
pub use retention::{sweep_interval, Swept};
pub use store::EmbeddedStore;
pub use writer::WriterStats;

use crate::cache::ReadCache;
use crate::kv::Kv;
use crate::queue::QueueShared;
use crate::tables::{SCHEMA_VERSION, SCHEMA_VERSION_KEY};
use crate::writer::Writer;

/// The database's folder inside the data directory.
pub const DB_DIR_NAME: &str = "db";

/// The file an older Herald (redb) kept its database in, inside the data directory.
pub const OLD_DB_FILE_NAME: &str = "herald.redb";

/// Why the embedded database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error("cannot prepare the data directory {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("database error: {0}")]
    Kv(#[from] KvError),
    #[error("the database has schema version {found}, this build reads {expected}: use a new data folder")]
    Schema { found: u64, expected: u64 },
    #[error("the data folder holds a database of an older Herald ({OLD_DB_FILE_NAME}): use a new data folder")]
    OldFileFormat,
    #[error("cannot start the writer thread: {0}")]
    Thread(#[source] std::io::Error),
}

impl From<fjall::Error> for EmbeddedError {
    fn from(err: fjall::Error) -> Self {
        Self::Kv(KvError::Engine(err))
    }
}

/// The shared state behind every handle.
pub(crate) struct Inner {
    // Field order matters for drop: the writer joins its thread (which holds its own `Arc` of the
    // database) before the database's last handle goes.
    pub(crate) writer: Writer,
    pub(crate) kv: Arc<Kv>,
    pub(crate) queues: Arc<QueueShared>,
    pub(crate) cache: Arc<ReadCache>,
    pub(crate) path: PathBuf,
    /// Dropped last, after the writer's thread has closed the file: what [`EmbeddedDb::closed`]
    /// waits for.
    closed: tokio::sync::watch::Sender<()>,
}

/// The embedded database: one fjall database holding the store and the queues. Cheap to clone.
#[derive(Clone)]
pub struct EmbeddedDb {
    inner: Arc<Inner>,
}

impl fmt::Debug for EmbeddedDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedDb")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl EmbeddedDb {
    /// Opens (or creates) the database in `dir/db`, creating the folders if needed, and rebuilds
    /// the queue index. After a crash fjall replays its journal here.
    pub fn open(dir: &Path) -> Result<Self, EmbeddedError> {
        Self::open_with(dir, queue::RESIDENT_BYTES)
    }

    /// [`EmbeddedDb::open`], keeping at most `queue_resident_bytes` of queued messages' bytes in
    /// memory per queue (see `queue`).
    pub(crate) fn open_with(
        dir: &Path,
        queue_resident_bytes: usize,
    ) -> Result<Self, EmbeddedError> {
        let io_err = |source| EmbeddedError::Io {
            path: dir.to_owned(),
            source,
        };
        if dir.join(OLD_DB_FILE_NAME).exists() {
            return Err(EmbeddedError::OldFileFormat);
        }
        // The database holds signing secrets and auth tokens: its folder is its owner's only
        // (fjall creates its files with the process's default mode).
        let path = dir.join(DB_DIR_NAME);
        create_private_dir(dir).map_err(io_err)?;
        create_private_dir(&path).map_err(io_err)?;
        let kv = Kv::open(&path)?;
        init(&kv)?;
        let queues = Arc::new(QueueShared::load(&kv, queue_resident_bytes)?);
        let kv = Arc::new(kv);
        let cache = Arc::new(ReadCache::new());
        let writer =
            Writer::spawn(Arc::clone(&kv), Arc::clone(&cache)).map_err(EmbeddedError::Thread)?;
        tracing::debug!(path = %path.display(), "embedded database open");
        Ok(Self {
            inner: Arc::new(Inner {
                writer,
                kv,
                queues,
                cache,
                path,
                closed: tokio::sync::watch::channel(()).0,
            }),
        })
    }

    /// Resolves once the database is closed: every handle and task using it is gone and the file
    /// is unlocked, so another process (or another `open`) may use it. Holds nothing open itself.
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.inner.closed.subscribe();
        async move { while rx.changed().await.is_ok() {} }
    }

    /// The store over this database.
    pub fn store(&self) -> EmbeddedStore {
        EmbeddedStore::new(Arc::clone(&self.inner))
    }

    /// The queues over this database.
    pub fn queue(&self) -> EmbeddedQueue {
        EmbeddedQueue::new(Arc::clone(&self.inner))
    }

    /// Store writes and queue sends in one commit (see [`EmbeddedOutbox`]).
    pub fn outbox(&self) -> EmbeddedOutbox {
        EmbeddedOutbox::new(Arc::clone(&self.inner))
    }

    /// The database's folder.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// How many group commits and operations the writer has done.
    pub fn writer_stats(&self) -> WriterStats {
        self.inner.writer.stats()
    }
}

/// Creates `dir` (and its parents) if absent; the folder itself readable by its owner only.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Checks the schema version (and records it in a new database).
fn init(kv: &Kv) -> Result<(), EmbeddedError> {
    match kv.meta.get(SCHEMA_VERSION_KEY)? {
        Some(found) => {
            let found = <[u8; 8]>::try_from(&*found).map_or(0, u64::from_be_bytes);
            if found != SCHEMA_VERSION {
                return Err(EmbeddedError::Schema {
                    found,
                    expected: SCHEMA_VERSION,
                });
            }
        }
        None => {
            kv.meta
                .insert(SCHEMA_VERSION_KEY, SCHEMA_VERSION.to_be_bytes())?;
            kv.db.persist(fjall::PersistMode::SyncAll)?;
        }
    }
    Ok(())
}

#[cfg(all(test, unix))]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn the_data_folder_and_the_database_folder_are_created_private() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("data");
        let db = EmbeddedDb::open(&dir).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(db.path()), 0o700);
    }

    #[test]
    fn a_folder_of_the_redb_era_is_refused_with_a_way_out_and_left_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(OLD_DB_FILE_NAME);
        std::fs::write(&path, b"redb\x1a\x0a\xa9\x0d\x0a").unwrap();
        let before = std::fs::read(&path).unwrap();
        let err = EmbeddedDb::open(dir.path()).unwrap_err();
        assert!(matches!(err, EmbeddedError::OldFileFormat), "{err}");
        assert!(err.to_string().contains("new data folder"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
        assert!(!dir.path().join(DB_DIR_NAME).exists());
    }

    #[test]
    fn a_database_of_another_schema_version_is_refused_and_left_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        {
            let kv = Kv::open(&dir.path().join(DB_DIR_NAME)).unwrap();
            kv.meta
                .insert(SCHEMA_VERSION_KEY, 2u64.to_be_bytes())
                .unwrap();
        }
        let err = EmbeddedDb::open(dir.path()).unwrap_err();
        assert!(
            matches!(
                err,
                EmbeddedError::Schema {
                    found: 2,
                    expected: SCHEMA_VERSION
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("new data folder"), "{err}");
        let kv = Kv::open(&dir.path().join(DB_DIR_NAME)).unwrap();
        assert_eq!(
            &*kv.meta.get(SCHEMA_VERSION_KEY).unwrap().unwrap(),
            &2u64.to_be_bytes()
        );
    }
}
