//! Herald's embedded adapters: a durable [`Store`](herald_core::ports::Store) and
//! [`Queue`](herald_core::ports::Queue) in one redb database file, for `herald dev`, tests and
//! benchmarks.
//!
//! - Every write is committed with `Durability::Immediate` before the call returns `Ok`, so nothing
//!   acknowledged is lost if the process is killed at any moment.
//! - Writes go through one writer thread that commits them in groups (see `writer`): many
//!   concurrent writes share one transaction and one fsync, which is what makes thousands of
//!   deliveries per second possible on an ordinary disk.
//! - Reads use redb read transactions directly, concurrently with the writer.
//! - The queue keeps an in-memory index of its messages, rebuilt from the file at open: each
//!   message's place in the order and its stored bytes, up to 16 MiB of them per queue (past that
//!   it reads them back from the file). Leases (visibility timeouts) live only in memory, so after
//!   a restart every un-acked message is visible again (at-least-once).
//! - Records past the retention are removed in the background ([`EmbeddedDb::spawn_sweeper`], see
//!   `retention`); redb reuses the freed pages, so the file stays about as large as a retention's
//!   worth of records needs (it grows by doubling and shrinks only when its end is free), and when
//!   the writer is quiet and at least half the file is free the sweeper compacts it (`compact`).
//! - Where the time and the disk writes go (issue 12, `herald-bench --events 60000 --fanout 1`,
//!   `strace` and `perf` on the Herald process): the CPU limits throughput, not the disk (iowait
//!   about 2 %): at full load a durable group commit carries about thirty deliveries and fsyncs
//!   once (about 230 fdatasyncs/s); the writer thread takes about a third of Herald's CPU, the
//!   request and delivery tasks the rest (glibc's allocator was a fifth of it, so the `herald`
//!   binary uses mimalloc). redb's copy-on-write B-trees rewrite every leaf a commit touches,
//!   whole, and split leaves at their middle, so tables that only grow at their end stay about
//!   half full: a commit writes roughly twice its new rows'
//!   bytes plus, per table touched, a part-filled last leaf and its branch pages (36 pages of
//!   4 KiB per commit measured, three quarters of them leaves). The bytes per delivery therefore
//!   follow the size of what a delivery stores, though less than in proportion: about 2.1 KB of
//!   keys and JSON (event, delivery, attempt, queue message, index rows) wrote 6,100–6,400 bytes;
//!   the compact binary forms of `codec` (about 1.2 KB, estimated) write 4,900–5,000. Fewer trees per
//!   delivery (see `tables`) saved only about 8 %, and redb 5 (its v3 file format, appends that
//!   open a fresh leaf) wrote as many bytes as redb 2.6 with 6–10 % less CPU and 6 MB less
//!   resident. `tools/engine-compare` replays this store's real write stream (feature
//!   `write-trace`, see `trace`) against other engines: fjall (an LSM) writes about half of redb's
//!   bytes, SQLite in WAL mode more than redb (its README has the figures). The store on fjall
//!   with the compact forms (branch `fjall`; `herald-bench`, default phases, 2026-12-06) writes
//!   1,950–2,010 bytes per delivery at F=1, 2,200–2,240 at F=10 and 4.1 KB at a steady 1,000/s
//!   (redb: 4,600–4,800, 3,800 and 40 KB), at 12,400 and 20,500 deliveries/s (redb: 12,200–12,700
//!   and 23,700–25,800), but peaks at 61–62 MB resident at F=1, over the 50 MB budget, and near
//!   480 MB at F=10: not yet the engine here. The difference is live memory, mostly the
//!   memtables' contents at about twice what fjall counts (the branch's `kv` docs have the
//!   profile).
//! - What costs redb most is how many leaves a commit touches, more than the bytes it adds.
//!   `engine-compare`'s what-ifs on one trace of this store (`--index`, `--keys`): without the two
//!   index rows per delivery 24 % fewer bytes at F=1 and 44 % at F=10 (each subscription's index
//!   range had a last leaf rewritten by every commit), with binary keys 9 % and 16 %. So a
//!   delivery is keyed under its subscription's partition and needs no index rows (`tables`):
//!   `herald-bench`, two interleaved rounds, 4,744–4,793 → 3,722–3,830 bytes per delivery at F=1,
//!   4,244–4,334 → 3,638–3,816 at F=10, 36.4–36.9 → 29.3–29.5 KB at a steady 1,000/s.
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
mod migrate;
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
use std::sync::{Arc, RwLock};

use redb::{Database, ReadableTable};

pub use compact::Compaction;
pub use outbox::EmbeddedOutbox;
pub use queue::{EmbeddedQueue, MAX_DELAY};
pub use retention::{sweep_interval, Swept};
pub use store::EmbeddedStore;
pub use writer::WriterStats;

use crate::cache::ReadCache;
use crate::queue::QueueShared;
use crate::tables::{Tbl, META, QUEUE_MESSAGES, SCHEMA_VERSION, SCHEMA_VERSION_KEY};
use crate::writer::Writer;

/// The database file's name inside the data directory.
pub const DB_FILE_NAME: &str = "herald.redb";

/// Why the embedded database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error("cannot prepare the data directory {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the database file: {0}")]
    Open(#[source] Box<redb::DatabaseError>),
    #[error("database error: {0}")]
    Redb(#[source] Box<redb::Error>),
    #[error("the database file has schema version {found}, this build reads {expected}: use a new data folder")]
    Schema { found: u64, expected: u64 },
    #[error("the database file was written by an older Herald (redb file format {0}): use a new data folder")]
    OldFileFormat(u8),
    #[error("cannot start the writer thread: {0}")]
    Thread(#[source] std::io::Error),
}

// Boxed: redb's errors are large and `open` is not a hot path.
impl From<redb::DatabaseError> for EmbeddedError {
    fn from(err: redb::DatabaseError) -> Self {
        Self::Open(Box::new(err))
    }
}

impl From<redb::Error> for EmbeddedError {
    fn from(err: redb::Error) -> Self {
        Self::Redb(Box::new(err))
    }
}

/// The shared state behind every handle.
pub(crate) struct Inner {
    // Field order matters for drop: the writer joins its thread (which holds its own `Arc` of the
    // database) so the file is closed by the time `Inner` is gone.
    // Locked for writing only by a compaction (see `compact`); reads and commits share it.
    pub(crate) db: Arc<RwLock<Database>>,
    pub(crate) writer: Writer,
    pub(crate) queues: Arc<QueueShared>,
    pub(crate) cache: Arc<ReadCache>,
    pub(crate) path: PathBuf,
    /// Dropped last, after the writer's thread has closed the file: what [`EmbeddedDb::closed`]
    /// waits for.
    closed: tokio::sync::watch::Sender<()>,
}

/// Page cache of the database file. Reads are mostly of records written moments ago, so a small
/// cache keeps its hit rate and leaves room under the RSS budget: on `herald bench` 4 MiB delivers
/// as fast as 12 MiB did (the file's pages stay in the OS page cache), 5 MB less resident.
const CACHE_BYTES: usize = 4 * 1024 * 1024;

/// The embedded database: one redb file holding the store and the queues. Cheap to clone.
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
    /// Opens (or creates) `dir/herald.redb`, creating `dir` if needed, and rebuilds the queue
    /// index. After a crash redb repairs the file here, which can take a moment on a large file.
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
        create_private_dir(dir).map_err(io_err)?;
        let path = dir.join(DB_FILE_NAME);
        // The file holds signing secrets and auth tokens: readable by its owner only, from the
        // moment it exists (redb would create it with the process's default mode).
        create_private_file(&path).map_err(io_err)?;
        // redb's default cache may grow to 1 GiB; Herald's working set is small and recent.
        let db = match Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(&path)
        {
            Err(redb::DatabaseError::UpgradeRequired(format)) => {
                return Err(EmbeddedError::OldFileFormat(format))
            }
            other => other?,
        };
        // Make the new file's directory entry durable too.
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err)?;
        init(&db)?;
        let queues = Arc::new(QueueShared::load(&db, queue_resident_bytes)?);
        let db = Arc::new(RwLock::new(db));
        let cache = Arc::new(ReadCache::new());
        let writer = Writer::spawn(Arc::clone(&db), Arc::clone(&cache), path.clone())
            .map_err(EmbeddedError::Thread)?;
        tracing::debug!(path = %path.display(), "embedded database open");
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                writer,
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

    /// The database file.
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

/// Creates `path` empty with mode 0600 if absent (an existing file keeps its content and mode).
fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates every table (so readers never meet a missing one) and checks the schema version.
fn init(db: &Database) -> Result<(), EmbeddedError> {
    let txn = db.begin_write().map_err(redb::Error::from)?;
    {
        let mut meta = txn.open_table(META).map_err(redb::Error::from)?;
        let found = meta
            .get(SCHEMA_VERSION_KEY)
            .map_err(redb::Error::from)?
            .map(|v| v.value());
        match found {
            Some(SCHEMA_VERSION) => {}
            Some(2) => {
                migrate::v2_to_v3(&txn)?;
                meta.insert(SCHEMA_VERSION_KEY, SCHEMA_VERSION)
                    .map_err(redb::Error::from)?;
            }
            Some(found) => {
                return Err(EmbeddedError::Schema {
                    found,
                    expected: SCHEMA_VERSION,
                })
            }
            None => {
                meta.insert(SCHEMA_VERSION_KEY, SCHEMA_VERSION)
                    .map_err(redb::Error::from)?;
            }
        }
        for t in Tbl::ALL.into_iter().filter(|t| t.is_host()) {
            txn.open_table(t.def()).map_err(redb::Error::from)?;
        }
        txn.open_table(QUEUE_MESSAGES).map_err(redb::Error::from)?;
    }
    txn.commit().map_err(redb::Error::from)?;
    Ok(())
}

#[cfg(all(test, unix))]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use redb::ReadableDatabase;

    use super::*;

    #[test]
    fn the_data_folder_and_its_file_are_created_private() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("data");
        let db = EmbeddedDb::open(&dir).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(db.path()), 0o600);
    }

    #[test]
    fn a_file_in_redb_2s_format_is_refused_with_a_way_out_and_left_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE_NAME);
        drop(redb2::Database::create(&path).unwrap());
        let before = std::fs::read(&path).unwrap();
        let err = EmbeddedDb::open(dir.path()).unwrap_err();
        assert!(matches!(err, EmbeddedError::OldFileFormat(_)), "{err}");
        assert!(err.to_string().contains("new data folder"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[test]
    fn a_file_of_another_schema_version_is_refused_and_left_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE_NAME);
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META)
                .unwrap()
                .insert(SCHEMA_VERSION_KEY, 1)
                .unwrap();
            txn.commit().unwrap();
        }
        let err = EmbeddedDb::open(dir.path()).unwrap_err();
        assert!(
            matches!(
                err,
                EmbeddedError::Schema {
                    found: 1,
                    expected: SCHEMA_VERSION
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("new data folder"), "{err}");
        let db = Database::open(&path).unwrap();
        let txn = db.begin_read().unwrap();
        let meta = txn.open_table(META).unwrap();
        assert_eq!(meta.get(SCHEMA_VERSION_KEY).unwrap().unwrap().value(), 1);
    }
}
