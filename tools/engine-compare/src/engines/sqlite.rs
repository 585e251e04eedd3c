//! SQLite in WAL mode (rusqlite, bundled SQLite): one table per table name,
//! `(k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID`, queue messages keyed by [`queue_key`]; one
//! transaction per commit, `synchronous=FULL` for durable commits (the WAL is fsynced at commit)
//! and `NORMAL` for the others; default page size, cache and `wal_autocheckpoint` (1,000 pages).

use std::collections::HashSet;
use std::path::Path;

use anyhow::Context;
use rusqlite::{params, Connection};

use super::{queue_key, Engine, QUEUE_TABLE};
use crate::trace::{Batch, Op};

pub struct Sqlite {
    conn: Connection,
    tables: HashSet<String>,
    /// The `synchronous` setting in force (true = FULL).
    full: Option<bool>,
}

impl Sqlite {
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        let conn = Connection::open(dir.join("herald.sqlite")).context("opening SQLite")?;
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))?;
        anyhow::ensure!(mode == "wal", "SQLite refused WAL mode: {mode}");
        Ok(Self {
            conn,
            tables: HashSet::new(),
            full: None,
        })
    }

    /// The table's quoted name, created on first use (names come from the trace: quoted).
    fn table(&mut self, name: &str) -> anyhow::Result<String> {
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        if !self.tables.contains(name) {
            self.conn.execute_batch(&format!(
                "CREATE TABLE IF NOT EXISTS {quoted} (k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID"
            ))?;
            self.tables.insert(name.to_owned());
        }
        Ok(quoted)
    }

    fn put(&mut self, table: &str, key: &[u8], value: &[u8]) -> anyhow::Result<()> {
        let t = self.table(table)?;
        self.conn
            .prepare_cached(&format!(
                "INSERT OR REPLACE INTO {t} (k, v) VALUES (?1, ?2)"
            ))?
            .execute(params![key, value])?;
        Ok(())
    }

    fn remove(&mut self, table: &str, key: &[u8]) -> anyhow::Result<()> {
        let t = self.table(table)?;
        self.conn
            .prepare_cached(&format!("DELETE FROM {t} WHERE k = ?1"))?
            .execute(params![key])?;
        Ok(())
    }

    fn set_synchronous(&mut self, full: bool) -> anyhow::Result<()> {
        if self.full != Some(full) {
            let level = if full { "FULL" } else { "NORMAL" };
            self.conn
                .execute_batch(&format!("PRAGMA synchronous={level}"))?;
            self.full = Some(full);
        }
        Ok(())
    }
}

impl Engine for Sqlite {
    fn commit(&mut self, batch: &Batch) -> anyhow::Result<()> {
        // Tables are created outside the transaction that first writes them.
        for op in &batch.ops {
            if let Op::Put { table, .. }
            | Op::Remove { table, .. }
            | Op::RemoveRange { table, .. } = op
            {
                self.table(table)?;
            }
        }
        self.table(QUEUE_TABLE)?;
        self.set_synchronous(batch.durable)?;
        self.conn.execute_batch("BEGIN")?;
        for op in &batch.ops {
            match op {
                Op::Put { table, key, value } => self.put(table, key, value)?,
                Op::Remove { table, key } => self.remove(table, key)?,
                Op::RemoveRange { table, from, to } => {
                    let t = self.table(table)?;
                    self.conn
                        .prepare_cached(&format!("DELETE FROM {t} WHERE k >= ?1 AND k < ?2"))?
                        .execute(params![from, to])?;
                }
                Op::QueuePut { queue, seq, value } => {
                    self.put(QUEUE_TABLE, &queue_key(queue, *seq), value)?
                }
                Op::QueueRemove { queue, seq } => {
                    self.remove(QUEUE_TABLE, &queue_key(queue, *seq))?
                }
            }
        }
        self.conn.execute_batch("COMMIT")?;
        Ok(())
    }

    /// A `synchronous=FULL` commit (the WAL fsynced), then `wal_checkpoint(TRUNCATE)`, so every
    /// page also reaches the database file, as redb's and fjall's final homes are counted.
    fn finish(&mut self) -> anyhow::Result<()> {
        self.commit(&Batch {
            ops: Vec::new(),
            durable: true,
        })?;
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }
}
