//! The engines a trace is replayed against: each applies one committed batch as one atomic commit
//! of its own, durable (synced before it returns) exactly when Herald's was.

use crate::trace::Batch;

pub mod fjall;
pub mod redb;
pub mod sqlite;

/// One storage engine under replay.
pub trait Engine {
    /// Applies `batch` as one atomic commit; durable when `batch.durable`.
    fn commit(&mut self, batch: &Batch) -> anyhow::Result<()>;
    /// Makes everything durable and settled (see each engine) before the bytes are read.
    fn finish(&mut self) -> anyhow::Result<()>;
}

/// `(queue, seq)` as one byte key that sorts like redb's tuple key: name, a 0 byte, big-endian seq.
pub fn queue_key(queue: &str, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(queue.len() + 9);
    key.extend_from_slice(queue.as_bytes());
    key.push(0);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// The table that holds the queue messages (as in Herald's redb file).
pub const QUEUE_TABLE: &str = "queue_messages";

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use crate::trace::Op;

    /// Puts, a range remove that must also catch the batch's own put, queue traffic, a lazy batch.
    pub fn sample() -> Vec<Batch> {
        let put = |key: &str| Op::Put {
            table: "deliveries".into(),
            key: key.into(),
            value: b"{}".to_vec(),
        };
        vec![
            Batch {
                ops: vec![put("t/a"), put("t/b")],
                durable: true,
            },
            Batch {
                ops: vec![
                    put("t/c"),
                    Op::RemoveRange {
                        table: "deliveries".into(),
                        from: b"t/".to_vec(),
                        to: b"t0".to_vec(),
                    },
                    put("u/a"),
                    Op::QueuePut {
                        queue: "deliver".into(),
                        seq: 1,
                        value: b"m".to_vec(),
                    },
                ],
                durable: true,
            },
            Batch {
                ops: vec![
                    Op::QueueRemove {
                        queue: "deliver".into(),
                        seq: 1,
                    },
                    Op::Remove {
                        table: "deliveries".into(),
                        key: b"u/a".to_vec(),
                    },
                ],
                durable: false,
            },
        ]
    }

    #[test]
    fn every_engine_replays_the_sample() {
        for open in [
            |d: &std::path::Path| -> Box<dyn Engine> { Box::new(redb::Redb::open(d).unwrap()) },
            |d: &std::path::Path| -> Box<dyn Engine> {
                Box::new(fjall::Fjall::open(d, true).unwrap())
            },
            |d: &std::path::Path| -> Box<dyn Engine> { Box::new(sqlite::Sqlite::open(d).unwrap()) },
        ] {
            let dir = tempfile::tempdir().unwrap();
            let mut engine = open(dir.path());
            for batch in sample() {
                engine.commit(&batch).unwrap();
            }
            engine.finish().unwrap();
        }
        assert!(queue_key("q", 1) < queue_key("q", 256));
    }
}
