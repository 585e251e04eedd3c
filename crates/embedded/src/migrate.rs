//! Moves a schema version 2 file's deliveries to version 3's layout, in the transaction that
//! opens it (`init`), so a data folder keeps its records across the change.
//!
//! Version 2 keyed a delivery `ten_…/del_…` and its attempts `ten_…/del_…/<n>/att_…`, with two
//! index rows per delivery (`ten_…/sub_…/del_…`, `ten_…/evt_…/del_…`). Version 3 puts both under
//! the subscription's partition ([`delivery_key`], [`attempts_prefix`]) and has no index rows.
//! Rows are read in chunks, so a large file is not held in memory at once; a row of neither
//! form (none is expected) is left where it is.

use redb::{ReadableTable, WriteTransaction};

use herald_core::ids::{DeliveryId, TenantId};

use crate::tables::{attempts_prefix, delivery_key, Tbl};

/// Rows read before they are moved.
const CHUNK: usize = 4096;

/// What one version 2 row becomes.
#[derive(Debug, PartialEq, Eq)]
enum Fate {
    /// Stored again under this key.
    Move(String),
    /// An index row: dropped.
    Drop,
    /// Already version 3, or not a delivery's row.
    Keep,
}

fn fate(key: &str) -> Fate {
    let parts: Vec<&str> = key.split('/').collect();
    let ids = |tenant: &str, delivery: &str| {
        Some((
            TenantId::parse(tenant).ok()?,
            DeliveryId::parse(delivery).ok()?,
        ))
    };
    match parts.as_slice() {
        [tenant, delivery] => match ids(tenant, delivery) {
            Some((t, d)) => Fate::Move(delivery_key(&t, &d)),
            None => Fate::Keep,
        },
        [tenant, delivery, number, attempt] => match ids(tenant, delivery) {
            Some((t, d)) => Fate::Move(format!("{}{number}/{attempt}", attempts_prefix(&t, &d))),
            None => Fate::Keep,
        },
        [_, owner, delivery]
            if (owner.starts_with("sub_") || owner.starts_with("evt_"))
                && delivery.starts_with("del_") =>
        {
            Fate::Drop
        }
        _ => Fate::Keep,
    }
}

/// Rewrites the deliveries table of a version 2 file as version 3 lays it out.
pub(crate) fn v2_to_v3(txn: &WriteTransaction) -> Result<(), redb::Error> {
    let mut table = txn.open_table(Tbl::Deliveries.def())?;
    let mut after: Option<String> = None;
    loop {
        let mut chunk: Vec<(String, Fate, Vec<u8>)> = Vec::new();
        // From the last key seen (inclusive, skipped below): rows moved ahead of it are met
        // again in their new form and kept.
        let start = after.clone().unwrap_or_default();
        let rows = table.range(start.as_str()..)?;
        for row in rows {
            let (key, value) = row?;
            let key = key.value().to_owned();
            if after.as_deref() == Some(key.as_str()) {
                continue;
            }
            if chunk.len() == CHUNK {
                break;
            }
            let fate = fate(&key);
            let value = match fate {
                Fate::Move(_) => value.value().to_vec(),
                _ => Vec::new(),
            };
            chunk.push((key, fate, value));
        }
        let Some((last, _, _)) = chunk.last() else {
            return Ok(());
        };
        after = Some(last.clone());
        for (key, fate, value) in chunk {
            match fate {
                Fate::Move(new_key) => {
                    table.remove(key.as_str())?;
                    table.insert(new_key.as_str(), value.as_slice())?;
                }
                Fate::Drop => {
                    table.remove(key.as_str())?;
                }
                Fate::Keep => {}
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use herald_contract::fixtures::{attempt, delivery, planned_event};
    use herald_core::ids::{AttemptId, EventId, SubscriptionId};
    use herald_core::ports::{DeliveryStore, PageRequest};
    use redb::{Database, ReadableDatabase};

    use super::*;
    use crate::codec::{encode_attempt, encode_delivery_record};
    use crate::tables::{attempt_key, META, SCHEMA_VERSION, SCHEMA_VERSION_KEY};
    use crate::{EmbeddedDb, DB_FILE_NAME};

    #[tokio::test]
    async fn a_version_2_file_opens_with_its_deliveries_and_attempts_where_version_3_keeps_them() {
        let dir = tempfile::tempdir().unwrap();
        let (t, sub, other) = (
            TenantId::new(),
            SubscriptionId::new(),
            SubscriptionId::new(),
        );
        let ev = planned_event(t, &[sub, other]);
        let (mine, theirs) = (delivery(t, sub, &ev), delivery(t, other, &ev));
        let tried = attempt(&mine, 1);
        {
            // As version 2 wrote them: ids under the tenant, two index rows per delivery.
            let db = Database::create(dir.path().join(DB_FILE_NAME)).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META)
                .unwrap()
                .insert(SCHEMA_VERSION_KEY, 2)
                .unwrap();
            {
                let mut rows = txn.open_table(Tbl::Deliveries.def()).unwrap();
                for d in [&mine, &theirs] {
                    let value = encode_delivery_record(d).unwrap();
                    rows.insert(format!("{t}/{}", d.id).as_str(), value.as_slice())
                        .unwrap();
                    for index in [
                        format!("{t}/{}/{}", d.subscription_id, d.id),
                        format!("{t}/{}/{}", ev.id, d.id),
                    ] {
                        rows.insert(index.as_str(), [].as_slice()).unwrap();
                    }
                }
                let key = format!("{t}/{}/0000000001/{}", mine.id, tried.id);
                let value = encode_attempt(&tried).unwrap();
                rows.insert(key.as_str(), value.as_slice()).unwrap();
            }
            txn.commit().unwrap();
        }

        let db = EmbeddedDb::open(dir.path()).unwrap();
        let store = db.store();
        assert_eq!(
            store.get_delivery(&t, &mine.id).await.unwrap(),
            Some(mine.clone())
        );
        assert_eq!(
            store.list_attempts(&t, &mine.id).await.unwrap(),
            vec![tried]
        );
        let page = PageRequest {
            limit: 10,
            cursor: None,
        };
        let log = store.list_deliveries(&t, &sub, &page).await.unwrap();
        assert_eq!(log.items, vec![mine.clone()]);
        assert_eq!(
            store.deliveries_for_event(&ev).await.unwrap(),
            vec![mine, theirs]
        );
        // Three rows are left (two deliveries, one attempt), and the file says version 3.
        let redb = db.inner.db.read().unwrap();
        let txn = redb.begin_read().unwrap();
        let rows = txn.open_table(Tbl::Deliveries.def()).unwrap();
        assert_eq!(rows.iter().unwrap().count(), 3);
        let meta = txn.open_table(META).unwrap();
        let version = meta.get(SCHEMA_VERSION_KEY).unwrap().unwrap().value();
        assert_eq!(version, SCHEMA_VERSION);
    }

    #[test]
    fn version_2_rows_move_under_their_partition_and_index_rows_go() {
        let (t, sub, ev) = (TenantId::new(), SubscriptionId::new(), EventId::new());
        let d = DeliveryId::derive(&ev, &sub);
        let a = AttemptId::new();
        assert_eq!(fate(&format!("{t}/{d}")), Fate::Move(delivery_key(&t, &d)));
        assert_eq!(
            fate(&format!("{t}/{d}/0000000002/{a}")),
            Fate::Move(attempt_key(&t, &d, 2, &a))
        );
        assert_eq!(fate(&format!("{t}/{sub}/{d}")), Fate::Drop);
        assert_eq!(fate(&format!("{t}/{ev}/{d}")), Fate::Drop);
        assert_eq!(fate(&delivery_key(&t, &d)), Fate::Keep);
        assert_eq!(fate(&attempt_key(&t, &d, 1, &a)), Fate::Keep);
    }
}
