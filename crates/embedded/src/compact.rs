//! Compaction at quiet times: gives a mostly empty file's space back to the disk.
//!
//! redb reuses freed pages and shrinks the file at a commit only while its end is free, so after
//! a burst has aged out the file can stay many times larger than what it holds, kept long by a
//! few live pages near its end. `Database::compact` moves those pages down and truncates, but it
//! needs the database to itself: no write transaction (it runs on the writer thread, between
//! group commits) and no read transaction (it takes the database's lock for writing, so reads
//! wait for it, and it is refused while a read that began earlier is still open).
//!
//! Because reads and writes wait while it runs, it runs only when it is cheap and nobody waits:
//! the writer has been quiet for a while, the file is large enough to matter, and at least half
//! of it is free (so there is little left to move).

use std::path::Path;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use redb::{CompactionMode, Database};
use tokio::sync::oneshot;

/// Files smaller than this are left as they are.
pub(crate) const MIN_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// What a compaction request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compaction {
    /// The writer was not quiet for long enough; nothing was done.
    Busy,
    /// The file is small or mostly in use; nothing was done.
    NotWorth { file_bytes: u64, used_bytes: u64 },
    /// A read was in progress; nothing was done (try again later).
    Refused,
    /// Compacted: the file's length before and after.
    Done { before: u64, after: u64 },
}

/// A request to the writer thread.
pub(crate) struct CompactRequest {
    /// How long the writer must have been without other writes.
    pub(crate) quiet: Duration,
    pub(crate) reply: oneshot::Sender<Result<Compaction, String>>,
}

/// Runs `request` on the writer thread, which last finished a batch at `last_write`.
pub(crate) fn run(
    db: &RwLock<Database>,
    path: &Path,
    request: CompactRequest,
    last_write: Instant,
) {
    let outcome = compact(db, path, request.quiet, last_write);
    // The requester may have gone away; nothing depends on the answer.
    let _ = request.reply.send(outcome);
}

fn compact(
    db: &RwLock<Database>,
    path: &Path,
    quiet: Duration,
    last_write: Instant,
) -> Result<Compaction, String> {
    if last_write.elapsed() < quiet {
        return Ok(Compaction::Busy);
    }
    let file_len = || {
        std::fs::metadata(path)
            .map(|m| m.len())
            .map_err(|e| e.to_string())
    };
    let before = file_len()?;
    let used = {
        let guard = db.read().map_err(|_| "the database lock is poisoned")?;
        let txn = guard.begin_write().map_err(|e| e.to_string())?;
        let stats = txn.stats().map_err(|e| e.to_string())?;
        txn.abort().map_err(|e| e.to_string())?;
        stats.allocated_pages() * stats.page_size() as u64
    };
    if before < MIN_FILE_BYTES || used.saturating_mul(2) > before {
        return Ok(Compaction::NotWorth {
            file_bytes: before,
            used_bytes: used,
        });
    }
    let started = Instant::now();
    let mut guard = db.write().map_err(|_| "the database lock is poisoned")?;
    match guard.compact(CompactionMode::Balanced) {
        Ok(_) => {}
        Err(redb::CompactionError::TransactionInProgress) => return Ok(Compaction::Refused),
        Err(e) => return Err(e.to_string()),
    }
    drop(guard);
    let after = file_len()?;
    tracing::info!(
        before,
        after,
        ms = started.elapsed().as_millis() as u64,
        "compacted the database file"
    );
    Ok(Compaction::Done { before, after })
}
