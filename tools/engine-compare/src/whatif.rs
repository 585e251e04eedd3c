//! Layout what-ifs: the trace rewritten as another key layout would have written it (binary
//! keys, no delivery index rows, deliveries keyed by subscription, no queue), to measure a layout
//! before building it.

use crate::trace::{Batch, Op};

/// Crockford base32, as ULIDs are written.
fn crockford(c: u8) -> Option<u128> {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    ALPHABET.iter().position(|&a| a == c).map(|p| p as u128)
}

/// `xyz_<26-char ULID>` as a tag byte and the ULID's 16 bytes (order kept within a kind).
fn binary_id(part: &[u8]) -> Option<Vec<u8>> {
    if part.len() != 30 || part[3] != b'_' || !part[..3].iter().all(u8::is_ascii_lowercase) {
        return None;
    }
    let mut n: u128 = 0;
    for &c in &part[4..] {
        n = (n << 5) | crockford(c)?;
    }
    let tag = part[0] ^ part[1].rotate_left(2) ^ part[2].rotate_left(4);
    let mut out = vec![tag];
    out.extend_from_slice(&n.to_be_bytes());
    Some(out)
}

/// A text key as a binary one could be: ids as a tag byte and 16 bytes, 10-digit numbers as 4
/// bytes, other parts as text ended by a zero byte; no separators. A what-if for key size.
pub fn binary_key(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() / 2);
    for part in key.split(|&b| b == b'/') {
        if let Some(id) = binary_id(part) {
            out.extend_from_slice(&id);
        } else if part.len() == 10 && part.iter().all(u8::is_ascii_digit) {
            let n: u32 = std::str::from_utf8(part)
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            out.extend_from_slice(&n.to_be_bytes());
        } else {
            out.extend_from_slice(part);
            out.push(0);
        }
    }
    out
}

/// Every record key of the trace (range bounds too) rewritten by `f(table, key)`; queue keys are
/// left as they are.
fn map_record_keys(batches: &mut [Batch], f: impl Fn(&str, &[u8]) -> Vec<u8>) {
    for op in batches.iter_mut().flat_map(|b| b.ops.iter_mut()) {
        match op {
            Op::Put { table, key, .. } | Op::Remove { table, key } => *key = f(table, key),
            Op::RemoveRange { table, from, to } => {
                *from = f(table, from);
                *to = f(table, to);
            }
            Op::QueuePut { .. } | Op::QueueRemove { .. } => {}
        }
    }
}

/// Every record key of the trace as [`binary_key`] makes it (queue keys are binary already).
pub fn binary_keys(batches: &mut [Batch]) {
    map_record_keys(batches, |_, key| binary_key(key));
}

/// Whether `key` in `table` is a delivery index row under one of `kinds` (`sub_`: by
/// subscription, `ten_…/sub_…/del_…`; `evt_`: by event, `ten_…/evt_…/del_…`).
fn is_index_row(table: &str, key: &[u8], kinds: &[&[u8]]) -> bool {
    if table != "deliveries" {
        return false;
    }
    let parts: Vec<&[u8]> = key.split(|&b| b == b'/').collect();
    parts.len() == 3
        && kinds.iter().any(|k| parts[1].starts_with(k))
        && parts[2].starts_with(b"del_")
}

/// The trace without the delivery index rows of `kinds` (see [`is_index_row`]): a what-if for
/// a layout that needs none.
pub fn drop_index_rows(batches: &mut [Batch], kinds: &[&[u8]]) {
    for b in batches.iter_mut() {
        b.ops.retain(|op| match op {
            Op::Put { table, key, .. } | Op::Remove { table, key } => {
                !is_index_row(table, key, kinds)
            }
            _ => true,
        });
    }
}

/// A delivery or attempt key (`ten_…/del_…[/…]`) with the delivery's subscription tag (the low
/// 40 bits of its id: the last 8 characters) before the delivery: `ten_…/t<tag>/del_…[/…]`, so
/// a subscription's deliveries form one range without index rows. Other keys unchanged.
fn subscription_major(table: &str, key: &[u8]) -> Vec<u8> {
    let parts: Vec<&[u8]> = key.split(|&b| b == b'/').collect();
    if table != "deliveries"
        || parts.len() < 2
        || !parts[1].starts_with(b"del_")
        || parts[1].len() != 30
    {
        return key.to_vec();
    }
    let mut out = Vec::with_capacity(key.len() + 10);
    out.extend_from_slice(parts[0]);
    out.extend_from_slice(b"/t");
    out.extend_from_slice(&parts[1][22..]);
    for p in &parts[1..] {
        out.push(b'/');
        out.extend_from_slice(p);
    }
    out
}

/// The trace with delivery and attempt rows keyed subscription-major (see
/// [`subscription_major`]) and no index rows: a what-if for a layout that needs none.
pub fn subscription_major_keys(batches: &mut [Batch]) {
    drop_index_rows(batches, &[b"sub_", b"evt_"]);
    map_record_keys(batches, subscription_major);
}

/// The trace without its queue messages (puts and removes): a what-if for the queue's share.
pub fn drop_queue(batches: &mut [Batch]) {
    for b in batches.iter_mut() {
        b.ops
            .retain(|op| !matches!(op, Op::QueuePut { .. } | Op::QueueRemove { .. }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "ten_01ARZ3NDEKTSV4RRFFQ69G5FAV";
    const D1: &str = "del_01ARZ3NDEKTSV4RRFFQ69G5FAW";
    const D2: &str = "del_01ARZ3NDEKTSV4RRFFQ69G5FAX";

    #[test]
    fn binary_keys_keep_the_order_and_are_shorter() {
        let a = format!("{T}/{D1}/0000000009/att_01ARZ3NDEKTSV4RRFFQ69G5FAV");
        let b = format!("{T}/{D1}/0000000010/att_01ARZ3NDEKTSV4RRFFQ69G5FAV");
        let c = format!("{T}/{D2}");
        let (ba, bb, bc) = (
            binary_key(a.as_bytes()),
            binary_key(b.as_bytes()),
            binary_key(c.as_bytes()),
        );
        assert!(ba < bb && bb < bc);
        assert_eq!(bc.len(), 34);
        assert!(ba.len() < a.len() / 2 + 10);
    }

    #[test]
    fn sub_major_keys_put_the_tag_before_the_delivery_and_leave_others() {
        let key = format!("{T}/{D1}/0000000001/att_x");
        let moved = subscription_major("deliveries", key.as_bytes());
        assert_eq!(
            moved,
            format!("{T}/tQ69G5FAW/{D1}/0000000001/att_x").into_bytes()
        );
        let event = format!("{T}/evt_01ARZ3NDEKTSV4RRFFQ69G5FAV");
        assert_eq!(
            subscription_major("events", event.as_bytes()),
            event.as_bytes()
        );
        let mut batches = vec![Batch {
            ops: vec![
                Op::Put {
                    table: "deliveries".into(),
                    key: format!("{T}/sub_x/{D1}").into_bytes(),
                    value: vec![],
                },
                Op::Put {
                    table: "deliveries".into(),
                    key: format!("{T}/{D1}").into_bytes(),
                    value: vec![1],
                },
                Op::QueuePut {
                    queue: "q".into(),
                    seq: 1,
                    value: vec![],
                },
            ],
            durable: true,
        }];
        subscription_major_keys(&mut batches);
        assert_eq!(batches[0].ops.len(), 2);
        drop_queue(&mut batches);
        assert_eq!(batches[0].ops.len(), 1);
    }
}
