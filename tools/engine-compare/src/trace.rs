//! Reading a Herald write trace (`crates/embedded/src/trace.rs` describes the format): the
//! committed batches in order, each with its operations; rolled-back batches are skipped.

use std::io::{BufReader, Read};
use std::path::Path;

use anyhow::{bail, Context};

/// One change, as the writer thread applied it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put {
        table: String,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    /// Removes that found nothing are kept out (they changed nothing).
    Remove {
        table: String,
        key: Vec<u8>,
    },
    RemoveRange {
        table: String,
        from: Vec<u8>,
        to: Vec<u8>,
    },
    QueuePut {
        queue: String,
        seq: u64,
        value: Vec<u8>,
    },
    QueueRemove {
        queue: String,
        seq: u64,
    },
}

/// One committed batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    pub ops: Vec<Op>,
    /// `Durability::Immediate` (true) or `None`.
    pub durable: bool,
}

/// What a trace holds.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Counts {
    pub commits: u64,
    pub durable_commits: u64,
    pub rolled_back: u64,
    pub ops: u64,
    pub puts: u64,
    pub removes: u64,
    pub range_removes: u64,
    pub queue_puts: u64,
    pub queue_removes: u64,
    /// Bytes of keys and values of the puts (queue keys as name + 8).
    pub put_bytes: u64,
    /// Attempt records put (`ten_…/del_…/<10 digits>/<attempt id>` in `deliveries`).
    pub deliveries: u64,
    /// Per table: puts, and bytes of their keys and of their values.
    pub tables: std::collections::BTreeMap<String, TableCount>,
}

/// The puts into one table.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TableCount {
    pub puts: u64,
    pub key_bytes: u64,
    pub value_bytes: u64,
}

/// The whole trace, in memory (a 60,000-delivery trace is a few hundred MB at most).
pub struct Trace {
    pub batches: Vec<Batch>,
    pub counts: Counts,
}

/// Whether `key` in `table` is an attempt record.
pub fn is_attempt(table: &str, key: &[u8]) -> bool {
    if table != "deliveries" {
        return false;
    }
    let parts: Vec<&[u8]> = key.split(|&b| b == b'/').collect();
    parts.len() == 4
        && parts[1].starts_with(b"del_")
        && parts[2].len() == 10
        && parts[2].iter().all(u8::is_ascii_digit)
}

struct Reader<R> {
    inner: R,
}

impl<R: Read> Reader<R> {
    fn bytes(&mut self, n: usize) -> anyhow::Result<Vec<u8>> {
        let mut buf = vec![0; n];
        self.inner.read_exact(&mut buf).context("truncated trace")?;
        Ok(buf)
    }
    fn u8(&mut self) -> anyhow::Result<u8> {
        Ok(self.bytes(1)?[0])
    }
    fn u64(&mut self) -> anyhow::Result<u64> {
        let mut buf = [0; 8];
        self.inner.read_exact(&mut buf).context("truncated trace")?;
        Ok(u64::from_le_bytes(buf))
    }
    fn name(&mut self) -> anyhow::Result<String> {
        let n = self.u8()? as usize;
        String::from_utf8(self.bytes(n)?).context("a table name that is not UTF-8")
    }
    fn blob(&mut self) -> anyhow::Result<Vec<u8>> {
        let mut len = [0; 4];
        self.inner.read_exact(&mut len).context("truncated trace")?;
        self.bytes(u32::from_le_bytes(len) as usize)
    }
    /// The next tag, or `None` at a clean end.
    fn tag(&mut self) -> anyhow::Result<Option<u8>> {
        let mut tag = [0; 1];
        match self.inner.read(&mut tag)? {
            0 => Ok(None),
            _ => Ok(Some(tag[0])),
        }
    }
}

pub fn read(path: &Path) -> anyhow::Result<Trace> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    parse(BufReader::with_capacity(1 << 20, file))
}

pub fn parse(input: impl Read) -> anyhow::Result<Trace> {
    let mut r = Reader { inner: input };
    if r.bytes(4)? != b"HWT1" {
        bail!("not a Herald write trace (no HWT1 header)");
    }
    let mut batches = Vec::new();
    let mut counts = Counts::default();
    let mut ops = Vec::new();
    while let Some(tag) = r.tag()? {
        let op = match tag {
            b'P' => Op::Put {
                table: r.name()?,
                key: r.blob()?,
                value: r.blob()?,
            },
            b'D' => {
                let (table, key) = (r.name()?, r.blob()?);
                if r.u8()? == 0 {
                    continue;
                }
                Op::Remove { table, key }
            }
            b'R' => Op::RemoveRange {
                table: r.name()?,
                from: r.blob()?,
                to: r.blob()?,
            },
            b'Q' => {
                let queue = String::from_utf8(r.blob()?).context("queue name")?;
                Op::QueuePut {
                    queue,
                    seq: r.u64()?,
                    value: r.blob()?,
                }
            }
            b'q' => {
                let queue = String::from_utf8(r.blob()?).context("queue name")?;
                let seq = r.u64()?;
                if r.u8()? == 0 {
                    continue;
                }
                Op::QueueRemove { queue, seq }
            }
            b'C' => {
                let durable = r.u8()? == 1;
                count(&mut counts, &ops, durable);
                batches.push(Batch {
                    ops: std::mem::take(&mut ops),
                    durable,
                });
                continue;
            }
            b'A' => {
                counts.rolled_back += 1;
                ops.clear();
                continue;
            }
            other => bail!("unknown record tag {other:#x}"),
        };
        ops.push(op);
    }
    // A batch without its `C` (the process was killed mid-commit) was never acknowledged.
    Ok(Trace { batches, counts })
}

/// Values longer than this are deflated by [`deflate_values`] (as Herald's DynamoDB codec does).
const DEFLATE_ABOVE: usize = 200;

/// The batches with every value stored as Herald's DynamoDB codec stores records: deflated
/// (level 6) when longer than 200 bytes and smaller so, else as it was. A what-if: Herald's
/// embedded store keeps plain JSON today.
pub fn deflate_values(batches: &mut [Batch]) {
    let pack = |value: &mut Vec<u8>| {
        if value.len() > DEFLATE_ABOVE {
            let packed = miniz_oxide::deflate::compress_to_vec(value, 6);
            if packed.len() < value.len() {
                *value = packed;
            }
        }
    };
    for op in batches.iter_mut().flat_map(|b| b.ops.iter_mut()) {
        if let Op::Put { value, .. } | Op::QueuePut { value, .. } = op {
            pack(value);
        }
    }
}

/// Bytes of keys and values put (queue keys as name + 8).
pub fn put_bytes(batches: &[Batch]) -> u64 {
    let mut c = Counts::default();
    for b in batches {
        count(&mut c, &b.ops, b.durable);
    }
    c.put_bytes
}

fn count(c: &mut Counts, ops: &[Op], durable: bool) {
    c.commits += 1;
    c.durable_commits += u64::from(durable);
    c.ops += ops.len() as u64;
    for op in ops {
        match op {
            Op::Put { table, key, value } => {
                c.puts += 1;
                c.put_bytes += (key.len() + value.len()) as u64;
                c.deliveries += u64::from(is_attempt(table, key));
                let t = c.tables.entry(table.clone()).or_default();
                t.puts += 1;
                t.key_bytes += key.len() as u64;
                t.value_bytes += value.len() as u64;
            }
            Op::Remove { .. } => c.removes += 1,
            Op::RemoveRange { .. } => c.range_removes += 1,
            Op::QueuePut { queue, value, .. } => {
                c.queue_puts += 1;
                c.put_bytes += (queue.len() + 8 + value.len()) as u64;
                let t = c.tables.entry("queue_messages".to_owned()).or_default();
                t.puts += 1;
                t.key_bytes += queue.len() as u64 + 8;
                t.value_bytes += value.len() as u64;
            }
            Op::QueueRemove { .. } => c.queue_removes += 1,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn blob(out: &mut Vec<u8>, b: &[u8]) {
        out.extend_from_slice(&(b.len() as u32).to_le_bytes());
        out.extend_from_slice(b);
    }

    #[test]
    fn committed_batches_are_read_and_rolled_back_ones_skipped() {
        let mut t = b"HWT1".to_vec();
        t.push(b'P');
        t.push(10);
        t.extend_from_slice(b"deliveries");
        blob(&mut t, b"ten_a/del_b/0000000001/att_c");
        blob(&mut t, b"{}");
        t.push(b'D');
        t.push(6);
        t.extend_from_slice(b"events");
        blob(&mut t, b"missing");
        t.push(0);
        t.extend_from_slice(b"C\x01");
        t.push(b'Q');
        blob(&mut t, b"deliver");
        t.extend_from_slice(&7u64.to_le_bytes());
        blob(&mut t, b"m");
        t.push(b'A');
        t.push(b'q');
        blob(&mut t, b"deliver");
        t.extend_from_slice(&7u64.to_le_bytes());
        t.push(1);
        t.extend_from_slice(b"C\x00");
        let trace = parse(&t[..]).unwrap();
        assert_eq!(trace.batches.len(), 2);
        assert!(trace.batches[0].durable && !trace.batches[1].durable);
        assert_eq!(trace.batches[0].ops.len(), 1, "the no-op remove is dropped");
        assert_eq!(
            trace.batches[1].ops,
            vec![Op::QueueRemove {
                queue: "deliver".into(),
                seq: 7
            }]
        );
        assert_eq!(trace.counts.deliveries, 1);
        assert_eq!(trace.counts.rolled_back, 1);
        assert!(!is_attempt("deliveries", b"ten_a/del_b"));
    }
}
