//! fjall 3 (an LSM): one keyspace per table name, queue messages keyed by [`queue_key`]. A commit
//! is one write batch; a durable one persists the journal with `PersistMode::SyncData`
//! (fdatasync) as part of the batch's commit, a lazy one is committed without persist.
//!
//! Two settings: `default` (fjall's defaults: 64 MiB memtables, 4 KiB blocks, LZ4 only from level
//! 2 on, leveled compaction) and `herald`, what Herald would likely run: LZ4 on every level (JSON
//! compresses well, and every flush and compaction rewrites it), 16 MiB memtables and a 4 MiB
//! block cache (Herald keeps its memory small), and queue acknowledgements as weak tombstones
//! (fjall's `remove_weak`, marked experimental: a queue key is written exactly once, so the
//! tombstone may vanish with the value in the memtable or at the first compaction instead of
//! being carried down the levels).

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use fjall::config::CompressionPolicy;
use fjall::{CompressionType, Database, Keyspace, KeyspaceCreateOptions, PersistMode};

use super::{queue_key, Engine, QUEUE_TABLE};
use crate::trace::{Batch, Op};

pub struct Fjall {
    db: Database,
    keyspaces: HashMap<String, Keyspace>,
    herald: bool,
}

impl Fjall {
    pub fn open(dir: &Path, herald: bool) -> anyhow::Result<Self> {
        let mut builder = Database::builder(dir.join("fjall"));
        if herald {
            builder = builder.cache_size(4 * 1024 * 1024);
        }
        let db = builder.open().context("opening fjall")?;
        Ok(Self {
            db,
            keyspaces: HashMap::new(),
            herald,
        })
    }

    fn keyspace(&mut self, name: &str) -> anyhow::Result<Keyspace> {
        if let Some(ks) = self.keyspaces.get(name) {
            return Ok(ks.clone());
        }
        let herald = self.herald;
        let ks = self.db.keyspace(name, || {
            let options = KeyspaceCreateOptions::default();
            if herald {
                options
                    .data_block_compression_policy(CompressionPolicy::all(CompressionType::Lz4))
                    .max_memtable_size(16 * 1024 * 1024)
            } else {
                options
            }
        })?;
        self.keyspaces.insert(name.to_owned(), ks.clone());
        Ok(ks)
    }

    /// The keys of `ks` in `from..to`, with the batch's own earlier puts and removes in that range
    /// taken into account (a write batch is not visible to reads before it commits).
    fn keys_in(
        ks: &Keyspace,
        from: &[u8],
        to: &[u8],
        pending: &[(String, Vec<u8>, bool)],
        table: &str,
    ) -> anyhow::Result<Vec<Vec<u8>>> {
        let mut keys = std::collections::BTreeSet::new();
        for guard in ks.range(from..to) {
            keys.insert(guard.key()?.to_vec());
        }
        for (t, key, put) in pending {
            if t == table && from <= key.as_slice() && key.as_slice() < to {
                if *put {
                    keys.insert(key.clone());
                } else {
                    keys.remove(key);
                }
            }
        }
        Ok(keys.into_iter().collect())
    }
}

impl Engine for Fjall {
    fn commit(&mut self, batch: &Batch) -> anyhow::Result<()> {
        let mut wb = self
            .db
            .batch()
            .durability(batch.durable.then_some(PersistMode::SyncData));
        // What this batch did so far, for range removes: (table, key, put or removed).
        let mut pending: Vec<(String, Vec<u8>, bool)> = Vec::new();
        let track = batch
            .ops
            .iter()
            .any(|op| matches!(op, Op::RemoveRange { .. }));
        for op in &batch.ops {
            match op {
                Op::Put { table, key, value } => {
                    wb.insert(&self.keyspace(table)?, key.as_slice(), value.as_slice());
                    if track {
                        pending.push((table.clone(), key.clone(), true));
                    }
                }
                Op::Remove { table, key } => {
                    wb.remove(&self.keyspace(table)?, key.as_slice());
                    if track {
                        pending.push((table.clone(), key.clone(), false));
                    }
                }
                Op::RemoveRange { table, from, to } => {
                    let ks = self.keyspace(table)?;
                    for key in Self::keys_in(&ks, from, to, &pending, table)? {
                        wb.remove(&ks, key.as_slice());
                        pending.push((table.clone(), key, false));
                    }
                }
                Op::QueuePut { queue, seq, value } => {
                    let ks = self.keyspace(QUEUE_TABLE)?;
                    wb.insert(&ks, queue_key(queue, *seq), value.as_slice());
                }
                Op::QueueRemove { queue, seq } => {
                    let ks = self.keyspace(QUEUE_TABLE)?;
                    if self.herald {
                        wb.remove_weak(&ks, queue_key(queue, *seq));
                    } else {
                        wb.remove(&ks, queue_key(queue, *seq));
                    }
                }
            }
        }
        wb.commit()?;
        Ok(())
    }

    /// Persists the journal (`SyncAll`), flushes every memtable to a table file and waits until
    /// no flush or compaction is running or queued (stable for a second), so the figure includes
    /// them all; then persists once more.
    fn finish(&mut self) -> anyhow::Result<()> {
        self.db.persist(PersistMode::SyncAll)?;
        for ks in self.keyspaces.values() {
            ks.rotate_memtable_and_wait()?;
        }
        let mut quiet_since = Instant::now();
        let give_up = Instant::now() + Duration::from_secs(600);
        while Instant::now() < give_up {
            if self.db.outstanding_flushes() > 0 || self.db.active_compactions() > 0 {
                quiet_since = Instant::now();
            } else if quiet_since.elapsed() >= Duration::from_secs(1) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.db.persist(PersistMode::SyncAll)?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_range_remove_takes_the_batchs_own_puts_too() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = Fjall::open(dir.path(), false).unwrap();
        for batch in crate::engines::tests::sample() {
            f.commit(&batch).unwrap();
        }
        let ks = f.keyspace("deliveries").unwrap();
        assert_eq!(
            ks.iter().count(),
            0,
            "t/a, t/b, t/c and u/a are all removed"
        );
        assert_eq!(f.keyspace(QUEUE_TABLE).unwrap().iter().count(), 0);
    }
}
