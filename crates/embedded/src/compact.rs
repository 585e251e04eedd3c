//! Compaction at quiet times: gives the space of removed records back to the disk.
//!
//! fjall removes a record by writing a tombstone; the record's bytes leave the disk when a
//! compaction merges the two, which fjall's background compactions do as new writes flush. When
//! the writes stop after a retention pass removed much (a service gone quiet), nothing would
//! flush or merge them, and the data folder would keep its largest size. So when the writer has
//! been quiet for a while, the sweeper flushes every memtable and compacts every keyspace into
//! one sorted run, dropping what the tombstones shadow. It runs on the blocking pool; writes and
//! reads go on meanwhile.
//!
//! The journal is not compacted: fjall writes it up to 64 MB before it starts a new one, and
//! deletes a full one once every memtable it covers is flushed, so it adds at most about 128 MB
//! to the data folder, whatever the retention.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::kv::{Kv, KvError};

/// Why a compaction failed.
#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    #[error(transparent)]
    Kv(#[from] KvError),
    #[error("cannot measure the data folder: {0}")]
    Io(#[from] std::io::Error),
}

impl From<fjall::Error> for CompactError {
    fn from(err: fjall::Error) -> Self {
        Self::Kv(KvError::Engine(err))
    }
}

/// The bookkeeping key a compaction writes (when it last ran, in Unix milliseconds).
const COMPACTED_KEY: &str = "compacted_at_ms";

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Databases whose table files take less than this are left as they are.
pub(crate) const MIN_TABLE_BYTES: u64 = 4 * 1024 * 1024;

/// fjall's folder of keyspaces and their table files, inside the database's folder.
pub(crate) const TABLES_DIR: &str = "keyspaces";

/// What a compaction request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compaction {
    /// The writer was not quiet for long enough; nothing was done.
    Busy,
    /// The table files are small; nothing was done.
    NotWorth { table_bytes: u64 },
    /// Compacted: the bytes of the table files before and after.
    Done { before: u64, after: u64 },
}

/// Compacts `kv` (in `path`) if the writer has been idle for `quiet` (it was idle for `idle`).
pub(crate) fn run(
    kv: &Kv,
    path: &Path,
    idle: Duration,
    quiet: Duration,
) -> Result<Compaction, CompactError> {
    if idle < quiet {
        return Ok(Compaction::Busy);
    }
    let tables = path.join(TABLES_DIR);
    let before = folder_size(&tables)?;
    if before < MIN_TABLE_BYTES {
        return Ok(Compaction::NotWorth {
            table_bytes: before,
        });
    }
    let started = Instant::now();
    for ks in kv.hosts() {
        ks.inner().rotate_memtable_and_wait()?;
    }
    for ks in kv.hosts() {
        ks.inner().major_compact()?;
    }
    // fjall deletes replaced table files at its next memtable rotation (its file maintenance
    // runs then, for every keyspace), and rotates only a memtable that holds something.
    kv.meta.insert(COMPACTED_KEY, now_ms().to_be_bytes())?;
    kv.meta.inner().rotate_memtable_and_wait()?;
    let after = folder_size(&tables)?;
    tracing::info!(
        before,
        after,
        ms = started.elapsed().as_millis() as u64,
        "compacted the database"
    );
    Ok(Compaction::Done { before, after })
}

/// The bytes the files in `dir` and its subfolders take on disk (symbolic links not followed; on
/// Unix the blocks allocated, as `du` counts, since fjall's journals are sparse files of 64 MiB
/// that fill as they are written). Files that vanish while it counts (fjall's flushes and
/// compactions replace them) count as nothing.
pub fn folder_size(dir: &Path) -> std::io::Result<u64> {
    let gone = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
    let mut total = 0;
    let mut pending = vec![dir.to_owned()];
    while let Some(folder) = pending.pop() {
        let entries = match std::fs::read_dir(&folder) {
            Err(e) if gone(&e) => continue,
            other => other?,
        };
        for entry in entries {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                pending.push(entry.path());
            } else if kind.is_file() {
                total += match entry.metadata() {
                    Err(e) if gone(&e) => 0,
                    other => disk_bytes(&other?),
                };
            }
        }
    }
    Ok(total)
}

#[cfg(unix)]
fn disk_bytes(meta: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::blocks(meta) * 512
}

#[cfg(not(unix))]
fn disk_bytes(meta: &std::fs::Metadata) -> u64 {
    meta.len()
}
