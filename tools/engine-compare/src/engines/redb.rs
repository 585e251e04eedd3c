//! redb 5, laid out as Herald laid it out: one table per table name, `&[u8]` → `&[u8]` (Herald's
//! keys were `&str`: the same bytes, in the same order), and the queue table keyed by
//! `(&str, u64)`; `Durability::Immediate` for durable commits, `None` for the others, Herald's
//! 4 MiB page cache.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use redb::{Database, Durability, Table, TableDefinition, WriteTransaction};

use super::{Engine, QUEUE_TABLE};
use crate::trace::{Batch, Op};

const QUEUE: TableDefinition<'static, (&'static str, u64), &'static [u8]> =
    TableDefinition::new(QUEUE_TABLE);

pub struct Redb {
    db: Database,
}

impl Redb {
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        let db = Database::builder()
            .set_cache_size(4 * 1024 * 1024)
            .create(dir.join("herald.redb"))
            .context("creating the redb file")?;
        Ok(Self { db })
    }
}

// `&[u8]` keys: the same bytes and order as Herald's `&str` keys, and binary keys fit too.
type RecordTable<'txn> = Table<'txn, &'static [u8], &'static [u8]>;

fn open<'txn, 'n, 'b>(
    txn: &'txn WriteTransaction,
    tables: &'b mut HashMap<&'n str, RecordTable<'txn>>,
    name: &'n str,
) -> anyhow::Result<&'b mut RecordTable<'txn>> {
    Ok(match tables.entry(name) {
        Entry::Occupied(e) => e.into_mut(),
        Entry::Vacant(e) => e.insert(txn.open_table(TableDefinition::new(name))?),
    })
}

impl Engine for Redb {
    fn commit(&mut self, batch: &Batch) -> anyhow::Result<()> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(if batch.durable {
            Durability::Immediate
        } else {
            Durability::None
        })?;
        {
            // Each table opened once per transaction, as Herald's writer does.
            let mut tables = HashMap::new();
            let mut queue = None;
            for op in &batch.ops {
                match op {
                    Op::Put { table, key, value } => {
                        open(&txn, &mut tables, table)?.insert(key.as_slice(), value.as_slice())?;
                    }
                    Op::Remove { table, key } => {
                        open(&txn, &mut tables, table)?.remove(key.as_slice())?;
                    }
                    Op::RemoveRange { table, from, to } => {
                        open(&txn, &mut tables, table)?
                            .retain_in(from.as_slice()..to.as_slice(), |_, _| false)?;
                    }
                    Op::QueuePut {
                        queue: q,
                        seq,
                        value,
                    } => {
                        if queue.is_none() {
                            queue = Some(txn.open_table(QUEUE)?);
                        }
                        if let Some(t) = queue.as_mut() {
                            t.insert((q.as_str(), *seq), value.as_slice())?;
                        }
                    }
                    Op::QueueRemove { queue: q, seq } => {
                        if queue.is_none() {
                            queue = Some(txn.open_table(QUEUE)?);
                        }
                        if let Some(t) = queue.as_mut() {
                            t.remove((q.as_str(), *seq))?;
                        }
                    }
                }
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// An empty `Durability::Immediate` commit, so lazy commits at the end reach the disk too.
    fn finish(&mut self) -> anyhow::Result<()> {
        self.commit(&Batch {
            ops: Vec::new(),
            durable: true,
        })
    }
}
