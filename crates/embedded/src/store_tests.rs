//! Tests of the store's own behaviour (the port contract suite is in `tests/contract.rs`).
#![allow(clippy::unwrap_used)]

use super::*;
use crate::EmbeddedDb;

#[tokio::test]
async fn a_key_stored_before_the_tenant_index_is_indexed_when_put_again() {
    let dir = tempfile::tempdir().unwrap();
    let db = EmbeddedDb::open(dir.path()).unwrap();
    let store = db.store();
    let key = ApiKeyRecord {
        id: ApiKeyId::new(),
        tenant_id: TenantId::new(),
        hash: "ab".repeat(32),
        name: "development".into(),
        created_at: Timestamp::now(),
        revoked_at: None,
    };
    // The record alone, as an older data folder holds it.
    let (hash, value) = (key.hash.clone(), encode(&key).unwrap());
    store
        .inner
        .writer
        .write(move |ctx| ctx.put(Tbl::ApiKeys, &hash, &value))
        .await
        .unwrap();
    assert!(store
        .list_api_keys(&key.tenant_id)
        .await
        .unwrap()
        .is_empty());

    // `herald dev` puts its key again at every start.
    let again = ApiKeyRecord {
        id: ApiKeyId::new(),
        ..key.clone()
    };
    assert!(matches!(
        store.put_api_key(&again).await,
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(
        store.list_api_keys(&key.tenant_id).await.unwrap(),
        vec![key.clone()]
    );
    store
        .revoke_api_key(&key.tenant_id, &key.id, Timestamp::now())
        .await
        .unwrap();
    let found = store.find_api_key(&key.hash).await.unwrap().unwrap();
    assert!(found.revoked_at.is_some());
}

#[tokio::test]
async fn a_delivery_log_skips_attempts_and_answers_nothing_before_another_logs_cursor() {
    use herald_contract::fixtures::{attempt, delivery, planned_event};
    use herald_core::ports::{Recorded, UnitOfWork};

    let dir = tempfile::tempdir().unwrap();
    let db = EmbeddedDb::open(dir.path()).unwrap();
    let (store, writes) = (db.store(), db.outbox());
    let (t, sub, other) = (
        TenantId::new(),
        SubscriptionId::new(),
        SubscriptionId::new(),
    );
    let mut mine = Vec::new();
    let mut theirs = None;
    for _ in 0..3 {
        let ev = planned_event(t, &[sub, other]);
        for s in [sub, other] {
            let mut d = delivery(t, s, &ev);
            // Two attempts each, so the log's range holds more attempt rows than deliveries.
            for n in 1..=2 {
                d.attempts = n;
                let tried = attempt(&d, n);
                let recorded = writes.record_attempt_and_send(&tried, &d, Vec::new()).await;
                assert_eq!(recorded.unwrap(), Recorded::Applied);
            }
            if s == sub {
                mine.push(d);
            } else {
                theirs = Some(d);
            }
        }
    }
    mine.reverse();
    let first = PageRequest {
        limit: 2,
        cursor: None,
    };
    let page = store.list_deliveries(&t, &sub, &first).await.unwrap();
    assert_eq!(page.items, mine[..2].to_vec());
    let next = PageRequest {
        limit: 2,
        cursor: page.next_cursor,
    };
    let page = store.list_deliveries(&t, &sub, &next).await.unwrap();
    assert_eq!((page.items, page.next_cursor), (mine[2..].to_vec(), None));

    let foreign = PageRequest {
        limit: 2,
        cursor: theirs.map(|d| d.id.to_string()),
    };
    let page = store.list_deliveries(&t, &sub, &foreign).await.unwrap();
    assert!(page.items.is_empty() && page.next_cursor.is_none());
}
