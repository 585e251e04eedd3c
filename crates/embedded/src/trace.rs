//! The write trace (cargo feature `write-trace`, off by default): every change the writer thread
//! applies and every commit, appended to the file named by `HERALD_WRITE_TRACE` when the database
//! opens, so `tools/engine-compare` can replay Herald's real write stream against other storage
//! engines (issue 12). Without the feature none of this is compiled.
//!
//! The file is `HWT1` followed by records, each a tag byte and its fields; integers are
//! little-endian, a *name* is a `u8` length and its bytes, a *blob* a `u32` length and its bytes:
//!
//! | tag   | record                                  | fields                           |
//! | ----- | --------------------------------------- | -------------------------------- |
//! | `P`   | put into a record table                 | table name, key blob, value blob |
//! | `D`   | remove from a record table              | table name, key blob, existed u8 |
//! | `R`   | remove every key in `from..to`          | table name, from blob, to blob   |
//! | `Q`   | put into `queue_messages`               | queue blob, seq u64, value blob  |
//! | `q`   | remove from `queue_messages`            | queue blob, seq u64, existed u8  |
//! | `C`   | the operations since the last `C`/`A` were committed | durable u8 (1 = journal synced, 0 = not) |
//! | `A`   | the operations since the last `C`/`A` were rolled back: do not replay them | — |
//!
//! Table names are the keyspaces' (kinds that share one are written under their host's name). The
//! writer thread flushes the file after every `C`/`A`, so a killed process leaves whole batches.
//! If a trace write fails the trace stops (logged once); the store goes on as without it.

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, BufWriter, Write};

use crate::tables::Tbl;

/// The environment variable naming the trace file.
pub(crate) const TRACE_ENV: &str = "HERALD_WRITE_TRACE";

const MAGIC: &[u8; 4] = b"HWT1";

/// An open trace file.
pub(crate) struct Trace {
    out: BufWriter<File>,
}

impl Trace {
    /// Creates (truncates) the trace file named by `HERALD_WRITE_TRACE`, if it is set.
    pub(crate) fn from_env() -> io::Result<Option<Self>> {
        match std::env::var_os(TRACE_ENV) {
            Some(path) if !path.is_empty() => Self::create(std::path::Path::new(&path)).map(Some),
            _ => Ok(None),
        }
    }

    pub(crate) fn create(path: &std::path::Path) -> io::Result<Self> {
        let mut out = BufWriter::with_capacity(1 << 16, File::create(path)?);
        out.write_all(MAGIC)?;
        Ok(Self { out })
    }

    fn name(&mut self, name: &[u8]) -> io::Result<()> {
        let len = u8::try_from(name.len()).map_err(|_| io::Error::other("name too long"))?;
        self.out.write_all(&[len])?;
        self.out.write_all(name)
    }

    /// The tag of a record on a record table, and the table's name.
    fn table_record(&mut self, tag: u8, table: Tbl) -> io::Result<()> {
        self.out.write_all(&[tag])?;
        self.name(table.name().as_bytes())
    }

    fn blob(&mut self, blob: &[u8]) -> io::Result<()> {
        let len = u32::try_from(blob.len()).map_err(|_| io::Error::other("blob too long"))?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(blob)
    }
}

thread_local! {
    /// The writer thread's trace; `None` on every other thread and when tracing is off.
    static TRACE: RefCell<Option<Trace>> = const { RefCell::new(None) };
}

/// Makes `trace` the current thread's (the writer thread calls this first).
pub(crate) fn install(trace: Option<Trace>) {
    TRACE.with(|t| *t.borrow_mut() = trace);
}

fn record(write: impl FnOnce(&mut Trace) -> io::Result<()>) {
    TRACE.with(|cell| {
        let mut slot = cell.borrow_mut();
        if let Some(trace) = slot.as_mut() {
            if let Err(e) = write(trace) {
                tracing::error!(error = %e, "the write trace failed; tracing stops");
                *slot = None;
            }
        }
    });
}

pub(crate) fn put(table: Tbl, key: &[u8], value: &[u8]) {
    record(|t| {
        t.table_record(b'P', table)?;
        t.blob(key)?;
        t.blob(value)
    });
}

pub(crate) fn remove(table: Tbl, key: &[u8], existed: bool) {
    record(|t| {
        t.table_record(b'D', table)?;
        t.blob(key)?;
        t.out.write_all(&[u8::from(existed)])
    });
}

pub(crate) fn remove_range(table: Tbl, from: &[u8], to: &[u8]) {
    record(|t| {
        t.table_record(b'R', table)?;
        t.blob(from)?;
        t.blob(to)
    });
}

pub(crate) fn queue_put(queue: &str, seq: u64, value: &[u8]) {
    record(|t| {
        t.out.write_all(b"Q")?;
        t.blob(queue.as_bytes())?;
        t.out.write_all(&seq.to_le_bytes())?;
        t.blob(value)
    });
}

pub(crate) fn queue_remove(queue: &str, seq: u64, existed: bool) {
    record(|t| {
        t.out.write_all(b"q")?;
        t.blob(queue.as_bytes())?;
        t.out.write_all(&seq.to_le_bytes())?;
        t.out.write_all(&[u8::from(existed)])
    });
}

/// The batch's end: committed (`Some(durable)`) or rolled back (`None`).
pub(crate) fn end_batch(committed: Option<bool>) {
    record(|t| {
        match committed {
            Some(durable) => t.out.write_all(&[b'C', u8::from(durable)])?,
            None => t.out.write_all(b"A")?,
        }
        t.out.flush()
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use herald_core::ports::StoreError;

    use super::*;
    use crate::cache::ReadCache;
    use crate::writer::Writer;

    #[derive(Debug, PartialEq)]
    enum Rec {
        Put(String, String, Vec<u8>),
        Remove(String, String, bool),
        RemoveRange(String, String, String),
        QueuePut(String, u64, Vec<u8>),
        QueueRemove(String, u64, bool),
        Commit(bool),
        Abort,
    }

    struct Cursor<'a>(&'a [u8]);

    impl Cursor<'_> {
        fn take(&mut self, n: usize) -> Vec<u8> {
            let (head, rest) = self.0.split_at(n);
            self.0 = rest;
            head.to_vec()
        }
        fn byte(&mut self) -> u8 {
            self.take(1)[0]
        }
        fn name(&mut self) -> String {
            let n = self.byte() as usize;
            String::from_utf8(self.take(n)).unwrap()
        }
        fn blob(&mut self) -> Vec<u8> {
            let n = u32::from_le_bytes(self.take(4).try_into().unwrap()) as usize;
            self.take(n)
        }
        fn text(&mut self) -> String {
            String::from_utf8(self.blob()).unwrap()
        }
        fn seq(&mut self) -> u64 {
            u64::from_le_bytes(self.take(8).try_into().unwrap())
        }
    }

    fn decode(bytes: &[u8]) -> Vec<Rec> {
        let mut c = Cursor(bytes);
        assert_eq!(c.take(4), MAGIC);
        let mut out = Vec::new();
        while !c.0.is_empty() {
            out.push(match c.byte() {
                b'P' => Rec::Put(c.name(), c.text(), c.blob()),
                b'D' => Rec::Remove(c.name(), c.text(), c.byte() == 1),
                b'R' => Rec::RemoveRange(c.name(), c.text(), c.text()),
                b'Q' => Rec::QueuePut(c.text(), c.seq(), c.blob()),
                b'q' => Rec::QueueRemove(c.text(), c.seq(), c.byte() == 1),
                b'C' => Rec::Commit(c.byte() == 1),
                b'A' => Rec::Abort,
                other => panic!("unknown tag {other}"),
            });
        }
        out
    }

    #[tokio::test]
    async fn writes_commits_and_rollbacks_are_traced_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let trace_path = dir.path().join("t.trace");
        let kv = crate::kv::Kv::open(&dir.path().join("db")).unwrap();
        crate::init(&kv).unwrap();
        let writer = Writer::spawn_traced(
            Arc::new(kv),
            Arc::new(ReadCache::new()),
            Some(Trace::create(&trace_path).unwrap()),
        )
        .unwrap();
        writer
            .write(|ctx| {
                ctx.put(Tbl::Events, "ten_a/evt_1", b"{}")?;
                ctx.put(Tbl::Attempts, "ten_a/del_1/0000000001/att_1", b"[1]")?;
                ctx.queue_put("deliver", 7, b"msg")?;
                assert!(!ctx.remove(Tbl::Events, "ten_a/missing")?);
                ctx.remove_range(Tbl::Stats, "ten_a/", "ten_a0")
            })
            .await
            .unwrap();
        writer
            .write_then_lazy(
                |ctx| {
                    assert!(ctx.queue_remove("deliver", 7)?);
                    ctx.remove(Tbl::Events, "ten_a/evt_1")
                },
                |r| r,
            )
            .await
            .unwrap();
        // Fails after writing: the whole batch is rolled back.
        let failed = writer
            .write(|ctx| {
                ctx.put(Tbl::Events, "ten_a/evt_2", b"{}")?;
                Err::<(), _>(StoreError::backend("boom"))
            })
            .await;
        assert!(failed.is_err());
        drop(writer);

        let s = |x: &str| x.to_owned();
        assert_eq!(
            decode(&std::fs::read(&trace_path).unwrap()),
            vec![
                Rec::Put(s("events"), s("ten_a/evt_1"), b"{}".to_vec()),
                Rec::Put(
                    s("deliveries"),
                    s("ten_a/del_1/0000000001/att_1"),
                    b"[1]".to_vec()
                ),
                Rec::QueuePut(s("deliver"), 7, b"msg".to_vec()),
                Rec::Remove(s("events"), s("ten_a/missing"), false),
                Rec::RemoveRange(s("stats"), s("ten_a/"), s("ten_a0")),
                Rec::Commit(true),
                Rec::QueueRemove(s("deliver"), 7, true),
                Rec::Remove(s("events"), s("ten_a/evt_1"), true),
                Rec::Commit(false),
                Rec::Put(s("events"), s("ten_a/evt_2"), b"{}".to_vec()),
                Rec::Abort,
            ]
        );
    }
}
