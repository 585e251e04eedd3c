//! The storage engine under the tables: fjall, an LSM tree, one keyspace per host table (see
//! `tables`), one for queue messages and one for bookkeeping.
//!
//! Readers see a table through [`ReadTable`], a snapshot of one keyspace whose `get`, `range`
//! and `iter` answer rows as `(Key, Val)`; the writer uses fjall's single-writer transactions
//! (`writer`). A durable commit syncs fjall's journal (`fdatasync`); a lazy one only writes it
//! (it survives the process being killed, not the machine losing power).
//!
//! Settings, chosen for Herald's small, short-lived records and its memory budget (the constants
//! below say why each): LZ4 on every level, filter and index blocks pinned, 1.5 MiB memtables
//! (1 MiB for events and the queue), a 2 MiB block cache, eight level-0 tables before a
//! compaction, 4 MiB table files, one background worker, and at most 64 MiB of journal (fjall's
//! least). fjall stores a keyspace's options when it creates it, and a folder keeps the ones it
//! was made with. Measured on `herald-bench --events 60000 --fanout 1` and `--events 20000
//! --fanout 10` (one round each, 2 cores), on the `fjall` branch before it was merged, against
//! redb 5 (the engine then) at 11,400–12,600 and 21,000–22,100 deliveries/s, 6,100–6,700 and
//! 5,150–5,275 disk bytes per delivery, 36–38 MB peak RSS at F=1:
//!
//! | settings | F=1 /s | F=1 B/delivery | F=1 RSS MB | F=10 /s | F=10 B/delivery |
//! |---|---|---|---|---|---|
//! | fjall defaults but LZ4, 8 MiB memtables, 4 MiB cache | 11,115 | 3,327 | 91 | 10,535 | 4,146 |
//! | + pinned filters and indexes | 11,230 | 3,206 | 85 | 16,363 | 3,511 |
//! | + 8 L0 tables, one worker | 12,609 | 3,068 | 82 | 21,916 | 2,878 |
//! | these settings (4/1 MiB memtables, 2 MiB cache) | 12,256 | 3,193 | 63 | 20,267 | 3,400 |
//! | 2/1 MiB memtables | 12,220 | 3,530 | 57 | 19,894 | 3,717 |
//! | these settings, with main's compact records (`codec`) | 12,891–12,898 | 1,976–1,980 | 57–60 | 21,224–21,652 | 1,910–1,924 |
//!
//! With the compact records, on the bench's default phases (two rounds): F=1 12,382–12,393/s,
//! 1,950–2,013 bytes per delivery, 61–62 MB; F=10 20,464–20,593/s, 2,205–2,242 bytes, 477–487
//! MB; a steady 1,000/s 4.0–4.1 KB per delivery, p99 0.21–0.24 ms. redb in the same hour:
//! 12,242–12,690/s, 4,562–4,774 bytes, 41–42 MB; 23,727–25,834/s, 3,837–3,844 bytes, 229–408 MB;
//! 40 KB. mimalloc v2 (10 ms purge delay instead of v3's 1 s) did not change the
//! peak (54–59 MB); 2 MiB memtables and a 1 MiB cache brought it to 51–54 MB but wrote 2,116–
//! 2,351 bytes and did 19,200–19,300/s at F=10. The soak (1,000,000 deliveries, 1 minute
//! retention, 2 minutes idle): 96 MB after 100,000, 384 MB at most, 67 MB at the end (ratio 0.70;
//! 60 MB of it the journal, which fjall replaces only once 64 MB are written).
//!
//! So fjall halves redb's disk bytes at the same throughput, and costs 20–45 MB more resident,
//! over the 50 MB target: not yet the engine of main then. The memtables are not most of it: with
//! 1 MiB memtables everywhere the peak was still 64 MB (and 4,155 bytes per delivery); with
//! `MIMALLOC_PURGE_DELAY=0` 46.6 MB, at 7 % less throughput.
//!
//! A closer look (`--events 60000 --fanout 1`, one Herald per run, interleaved): most of the
//! difference is live memory, not what the allocator keeps. With `MIMALLOC_PURGE_DELAY=0` fjall
//! peaked at 49.4 MB and redb at 31.4 MB, the same 18 MB apart as without it. fjall's write buffer
//! (sampled every 100 ms) was 1–8 MiB with these settings and never held a sealed memtable: the one
//! worker keeps up with the flushes. A heap profile (`heaptrack`, system allocator, with symbols,
//! at 2,400 deliveries/s) peaked at 24 MB, of which the memtables' contents were 13 MB (key and
//! value slices 8.3 MB, skip-list nodes 4.7 MB): about twice what fjall counts against
//! `max_memtable_size`. Tried: 2 MiB memtables, 48.5–53.6 MB and 1,976–1,997 bytes per delivery;
//! 1 MiB, 54.7–60.8 MB and 2,281–2,397 bytes (more flushes and tables, no less memory); two
//! workers, no less memory and 10 % slower; glibc's malloc, 48 MB at 9,500/s and 0.12 CPU-s per
//! 1,000. main's 5 s hot-path cache on the embedded store (intake no longer reads a tenant's
//! subscriptions on the blocking pool for every event) takes 3–5 MB off both engines: 54–56 MB
//! here. What would shrink both the memtables and the bytes is fewer and smaller rows per
//! delivery: binary keys (348 bytes of text keys per delivery) and no separate index rows.
//!
//! With main's changes of 2026-12-06 evening (the hot-path cache, the queue's stored-bytes index),
//! default phases, two interleaved rounds in a slow hour against this branch before them: F=1
//! 9,517–10,210 → 9,823–10,169/s, 2,024–2,036 → 1,961–2,025 bytes, 64.4–66.4 → 60.1–61.8 MB;
//! F=10 14,144–14,173 → 15,067–15,848/s, 259–445 → 171–177 MB. redb in the same hour:
//! 10,889–11,440/s at F=1, 35.4–35.9 MB, 4,695–4,795 bytes.
//!
//! With deliveries keyed by their subscription's partition and no index rows (schema 4 here,
//! redb's 3; 2026-12-06, late evening, a quiet hour), default phases: 4 MiB memtables
//! (two rounds) 11,198–12,062/s at F=1, 1,548–1,618 bytes, 54.5–65.2 MB; 1.5 MiB (five rounds)
//! 11,914–13,121/s, 1,637–1,721 bytes, 46.9–48.8 MB (49.4–49.9 in four later rounds; 1 MiB
//! memtables, a 512 KiB queue memtable or a 1 MiB cache moved the peak within that spread, 44.5–
//! 50.3 MB), 0.085–0.091 CPU-s per 1,000; F=10 18,868–20,628/s, 2,124–2,245 bytes; a steady
//! 1,000/s 3.9 KB, p99 0.21–0.23 ms. redb, interleaved with the last three: 12,531–12,646/s,
//! 3,621–3,688 bytes, 37.4–38.6 MB; F=10 21,785–23,060/s at 0.063–0.066 CPU-s per 1,000 (fjall
//! 0.073–0.080); a steady 1,000/s 30 KB.
//! Events and deliveries sharing one keyspace (one memtable) did not lower the peak (57–68 MB).

use std::ops::RangeBounds;
use std::path::Path;
use std::sync::Arc;

use fjall::compaction::Leveled;
use fjall::config::{CompressionPolicy, PinningPolicy};
use fjall::{
    CompressionType, Guard, KeyspaceCreateOptions, Readable, SingleWriterTxDatabase,
    SingleWriterTxKeyspace, Slice, Snapshot,
};

use crate::tables::Tbl;

/// The block cache (filter and index blocks are pinned outside it, see `options`).
const CACHE_BYTES: u64 = 2 * 1024 * 1024;
/// A record keyspace's memtable is flushed to a table file when it reaches this. A memtable holds
/// about twice what fjall counts against this (skip-list nodes and one allocation per key and
/// value), and the peak resident size follows it: with deliveries keyed by partition (no index
/// rows), 4 MiB peaked at 54–65 MB on `herald-bench`'s F=1 phase, 2 MiB at 49–51 MB and 1.5 MiB
/// at 47–50 MB, writing 1,610, 1,655 and 1,640–1,720 bytes per delivery.
const MEMTABLE_BYTES: u64 = 3 * 512 * 1024;
/// The events keyspace's: at fan-out 1 it takes as many bytes as the deliveries keyspace, at
/// fan-out 10 a tenth, so a smaller memtable here lowers the F=1 peak without adding compaction
/// where deliveries are many. Three interleaved rounds against 1.5 MiB everywhere (2026-12-06,
/// 23:15): peak 45.6–48.1 MB against 47.0–51.0, F=10 21,886–22,437/s against 22,067–22,355, the
/// background worker's CPU unchanged.
const EVENTS_MEMTABLE_BYTES: u64 = 1024 * 1024;
/// The queue's: its messages live milliseconds, so most die in the memtable; a small one keeps
/// that churn out of the resident size.
const QUEUE_MEMTABLE_BYTES: u64 = 1024 * 1024;
/// Table files in level 0 before they are compacted into level 1 (fjall's default is 4): fewer
/// compactions, so less rewriting and less CPU taken from deliveries. fjall slows writes from 20
/// level-0 tables and halts them from 30, so this stays well below 20: at 32 no compaction ever
/// started and every write halted (seen on the bench); 16 wrote less but left little headroom.
const L0_TABLES: u8 = 8;
/// Table files written by compactions are cut at this size (fjall's default is 64 MiB), and
/// level 1 holds `L0_TABLES` times it. A delivery's key starts with its subscription's
/// partition, so at fan-out 10 every flushed table spans all partitions and overlaps every table
/// of the level below: a compaction from level 0 rewrites each table below it. With 64 MiB tables
/// that was all the data of a level up to 512 MiB, every eight flushes; with small tables and a
/// small level 1 the rewrite stays near the size of level 1, and deeper levels merge only the
/// narrow key ranges that overlap. `herald-bench` default phases, two interleaved rounds
/// (2026-12-07, 00:15): at F=10 the worker's CPU 7.8 → 6.0 s, its compaction reads 597–610 → 396–
/// 402 MB and 2,131–2,156 → 1,703–1,721 bytes written per delivery; F=1 throughput and bytes
/// unchanged (ten rounds of this build after midnight: peak RSS 43.4–46.5 MB, the build before
/// 45.0–48.7 in five). The longer the run, the more it matters: a fan-out-10 soak with nothing
/// expiring (`herald-bench --soak --fanout 10 --soak-deliveries 2000000 --retention 30d`, two
/// rounds each, alternating) had delivered 1,578,000 after 90 s against 1,437,000 in one pair and
/// 1,555,000 after 80 s against 1,379,000 in the other, wrote 2,439–2,497 bytes per delivery against 3,399–3,402, and its folder
/// peaked at 354–394 MB against 509–583 MB.
const TABLE_BYTES: u64 = 4 * 1024 * 1024;
const _: () = assert!(L0_TABLES < 20, "fjall stalls writes from 20 level-0 tables");
/// Journal kept before the memtables it covers are flushed (fjall refuses less).
const JOURNAL_BYTES: u64 = 64 * 1024 * 1024;

/// Why a row could not be read.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    #[error(transparent)]
    Engine(#[from] fjall::Error),
    #[error("a stored key is not UTF-8")]
    KeyNotText,
    #[error("a stored queue key is malformed")]
    BadQueueKey,
}

/// The open database and its keyspaces.
pub(crate) struct Kv {
    pub(crate) db: SingleWriterTxDatabase,
    /// Indexed by `Tbl as usize`; kinds that share a host share its keyspace.
    tables: Vec<SingleWriterTxKeyspace>,
    pub(crate) queue: SingleWriterTxKeyspace,
    pub(crate) meta: SingleWriterTxKeyspace,
}

fn options(memtable: u64) -> KeyspaceCreateOptions {
    // Every filter and index block stays in memory (small: about 10 bits a key): when they were
    // read through the block cache, a point read at fan-out 10 re-read them from the page cache
    // (58 GB of read calls for 200,000 deliveries with a 4 MiB cache).
    KeyspaceCreateOptions::default()
        .data_block_compression_policy(CompressionPolicy::all(CompressionType::Lz4))
        .filter_block_pinning_policy(PinningPolicy::all(true))
        .index_block_pinning_policy(PinningPolicy::all(true))
        .max_memtable_size(memtable)
        .compaction_strategy(Arc::new(
            Leveled::default()
                .with_l0_threshold(L0_TABLES)
                .with_table_target_size(TABLE_BYTES),
        ))
}

impl Kv {
    /// Opens (or creates) the database in `dir`, with every keyspace.
    pub(crate) fn open(dir: &Path) -> Result<Self, KvError> {
        let db = SingleWriterTxDatabase::builder(dir)
            .cache_size(CACHE_BYTES)
            .worker_threads(1)
            .max_journaling_size(JOURNAL_BYTES)
            .open()?;
        let mut tables = Vec::with_capacity(Tbl::ALL.len());
        for t in Tbl::ALL {
            let memtable = match t.host() {
                Tbl::Events => EVENTS_MEMTABLE_BYTES,
                _ => MEMTABLE_BYTES,
            };
            tables.push(db.keyspace(t.host().name(), || options(memtable))?);
        }
        let queue = db.keyspace("queue_messages", || options(QUEUE_MEMTABLE_BYTES))?;
        let meta = db.keyspace("meta", KeyspaceCreateOptions::default)?;
        Ok(Self {
            db,
            tables,
            queue,
            meta,
        })
    }

    pub(crate) fn keyspace(&self, t: Tbl) -> &SingleWriterTxKeyspace {
        // `tables` holds one entry per `Tbl::ALL`, in its order, which is the enum's.
        &self.tables[t as usize]
    }

    /// A snapshot of table `t`.
    pub(crate) fn read(&self, t: Tbl) -> ReadTable {
        ReadTable {
            snap: self.db.read_tx(),
            ks: self.keyspace(t).clone(),
        }
    }

    /// A snapshot of the queue messages.
    pub(crate) fn read_queue(&self) -> ReadTable {
        ReadTable {
            snap: self.db.read_tx(),
            ks: self.queue.clone(),
        }
    }

    /// The keyspaces that hold records, each once.
    pub(crate) fn hosts(&self) -> impl Iterator<Item = &SingleWriterTxKeyspace> {
        Tbl::ALL
            .into_iter()
            .filter(|t| t.is_host())
            .map(|t| self.keyspace(t))
            .chain([&self.queue])
    }
}

/// One table as of a moment.
pub(crate) struct ReadTable {
    snap: Snapshot,
    ks: SingleWriterTxKeyspace,
}

/// A row's key, checked to be text.
pub(crate) struct Key(Slice);

impl Key {
    pub(crate) fn value(&self) -> &str {
        // Checked in `row`; never fails here.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// A row's value.
pub(crate) struct Val(Slice);

impl Val {
    pub(crate) fn value(&self) -> &[u8] {
        &self.0
    }
}

/// Rows of a range, in key order (or reversed with `.rev()`).
pub(crate) type Rows = std::iter::Map<fjall::Iter, fn(Guard) -> Result<(Key, Val), KvError>>;

fn row(guard: Guard) -> Result<(Key, Val), KvError> {
    let (key, value) = guard.into_inner()?;
    if std::str::from_utf8(&key).is_err() {
        return Err(KvError::KeyNotText);
    }
    Ok((Key(key), Val(value)))
}

/// A queue row, whose key is binary (see [`queue_key`]).
fn raw_row(guard: Guard) -> Result<(Key, Val), KvError> {
    let (key, value) = guard.into_inner()?;
    Ok((Key(key), Val(value)))
}

impl ReadTable {
    /// Table `t` of the same snapshot.
    pub(crate) fn table(&self, kv: &Kv, t: Tbl) -> ReadTable {
        ReadTable {
            snap: self.snap.clone(),
            ks: kv.keyspace(t).clone(),
        }
    }

    pub(crate) fn get(&self, key: &str) -> Result<Option<Val>, KvError> {
        self.get_raw(key.as_bytes())
    }

    /// The row under a key as stored (queue keys are binary).
    pub(crate) fn get_raw(&self, key: &[u8]) -> Result<Option<Val>, KvError> {
        Ok(self.snap.get(&self.ks, key)?.map(Val))
    }

    pub(crate) fn range<'k, R: RangeBounds<&'k str>>(&self, range: R) -> Result<Rows, KvError> {
        Ok(self.snap.range::<&str, R>(&self.ks, range).map(row as _))
    }

    /// Every row, keys as stored (queue keys are binary).
    pub(crate) fn iter_raw(&self) -> Rows {
        self.snap.iter(&self.ks).map(raw_row as _)
    }
}

/// The key of message `seq` of queue `queue`: the name, a zero byte, the number big-endian, so
/// a queue's messages sort by number.
pub(crate) fn queue_key(queue: &str, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(queue.len() + 9);
    key.extend_from_slice(queue.as_bytes());
    key.push(0);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// The queue and number of a [`queue_key`].
pub(crate) fn parse_queue_key(key: &[u8]) -> Result<(&str, u64), KvError> {
    let split = key.len().checked_sub(9).ok_or(KvError::BadQueueKey)?;
    let (name, rest) = key.split_at(split);
    let (zero, seq) = rest.split_at(1);
    let seq: [u8; 8] = seq.try_into().map_err(|_| KvError::BadQueueKey)?;
    if zero != [0] {
        return Err(KvError::BadQueueKey);
    }
    let name = std::str::from_utf8(name).map_err(|_| KvError::BadQueueKey)?;
    Ok((name, u64::from_be_bytes(seq)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_key_reads_back_and_sorts_by_number() {
        let (a, b) = (queue_key("deliveries", 9), queue_key("deliveries", 300));
        assert!(a < b);
        assert_eq!(parse_queue_key(&b).unwrap(), ("deliveries", 300));
        assert!(parse_queue_key(b"short").is_err());
    }
}
