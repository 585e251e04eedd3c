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
