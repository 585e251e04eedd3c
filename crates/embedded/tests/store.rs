//! The store's contract: conditional writes, tenant isolation, idempotent intake, paging.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;

use common::*;
use herald_core::ids::ApiKeyId;
use herald_core::ids::{DeliveryId, SubscriptionId, TenantId};
use herald_core::model::{ApiKeyRecord, DeliveryStatus, IdempotencyRecord};
use herald_core::pattern::EventType;
use herald_core::ports::{InsertEventOutcome, PageRequest, Store, StoreError, SubscriptionFilter};
use jiff::Timestamp;

fn page(limit: usize, cursor: Option<String>) -> PageRequest {
    PageRequest { limit, cursor }
}

#[tokio::test]
async fn tenants_and_api_keys() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).store();
    let t = tenant();
    assert_eq!(store.get_tenant(&t.id).await.unwrap(), None);
    store.put_tenant(&t).await.unwrap();
    assert_eq!(store.get_tenant(&t.id).await.unwrap(), Some(t.clone()));

    let key = ApiKeyRecord {
        id: ApiKeyId::new(),
        tenant_id: t.id,
        hash: "ab".repeat(32),
        name: "dev".into(),
        created_at: Timestamp::now(),
        revoked_at: None,
    };
    store.put_api_key(&key).await.unwrap();
    let again = ApiKeyRecord {
        name: "other".into(),
        ..key.clone()
    };
    assert!(matches!(
        store.put_api_key(&again).await,
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(store.find_api_key(&key.hash).await.unwrap(), Some(key));
    assert_eq!(store.find_api_key("cd").await.unwrap(), None);
}

#[tokio::test]
async fn subscription_crud_is_conditional() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).store();
    let t = TenantId::new();
    let mut sub = subscription(t, &["document.*"], true);

    assert!(matches!(
        store.update_subscription(&sub).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.delete_subscription(&t, &sub.id).await,
        Err(StoreError::NotFound)
    ));

    store.create_subscription(&sub).await.unwrap();
    assert!(matches!(
        store.create_subscription(&sub).await,
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(
        store.get_subscription(&t, &sub.id).await.unwrap(),
        Some(sub.clone())
    );

    sub.name = Some("renamed".into());
    sub.enabled = false;
    store.update_subscription(&sub).await.unwrap();
    assert_eq!(
        store.get_subscription(&t, &sub.id).await.unwrap(),
        Some(sub.clone())
    );

    store.delete_subscription(&t, &sub.id).await.unwrap();
    assert_eq!(store.get_subscription(&t, &sub.id).await.unwrap(), None);
    assert!(matches!(
        store.delete_subscription(&t, &sub.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.update_subscription(&sub).await,
        Err(StoreError::NotFound)
    ));
}

#[tokio::test]
async fn a_refused_write_does_not_disturb_its_batch_neighbours() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).store();
    let t = TenantId::new();
    let existing = subscription(t, &["*"], true);
    store.create_subscription(&existing).await.unwrap();
    // Issued together so they share group commits: the duplicates fail, the rest land.
    let fresh: Vec<_> = (0..50).map(|_| subscription(t, &["*"], true)).collect();
    let mut tasks = Vec::new();
    for (i, sub) in fresh.iter().enumerate() {
        let (store, sub, dup) = (store.clone(), sub.clone(), existing.clone());
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                assert!(matches!(
                    store.create_subscription(&dup).await,
                    Err(StoreError::AlreadyExists)
                ));
            }
            store.create_subscription(&sub).await.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    for sub in &fresh {
        assert!(store.get_subscription(&t, &sub.id).await.unwrap().is_some());
    }
    assert_eq!(
        store.get_subscription(&t, &existing.id).await.unwrap(),
        Some(existing)
    );
}

#[tokio::test]
async fn tenants_never_see_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).store();
    let (a, b) = (TenantId::new(), TenantId::new());
    let sub_a = subscription(a, &["*"], true);
    store.create_subscription(&sub_a).await.unwrap();
    let ev = event(a, "document.created");
    store.insert_event(&ev, None).await.unwrap();
    let del = delivery(a, sub_a.id, &ev);
    store
        .create_deliveries(std::slice::from_ref(&del))
        .await
        .unwrap();
    store.record_attempt(&attempt(&del, 1), &del).await.unwrap();

    assert_eq!(store.get_subscription(&b, &sub_a.id).await.unwrap(), None);
    assert_eq!(store.get_event(&b, &ev.id).await.unwrap(), None);
    assert_eq!(store.get_delivery(&b, &del.id).await.unwrap(), None);
    assert!(store.list_attempts(&b, &del.id).await.unwrap().is_empty());
    assert!(store
        .deliveries_for_event(&b, &ev.id)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .list_deliveries(&b, &sub_a.id, &page(10, None))
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(store.enabled_subscriptions(&b).await.unwrap().is_empty());
    let listed = store
        .list_subscriptions(&b, &SubscriptionFilter::default(), &page(10, None))
        .await
        .unwrap();
    assert!(listed.items.is_empty());
    // A cursor taken from tenant A's list does not open tenant B's range onto A's records.
    let cursor = Some(SubscriptionId::new().to_string());
    let listed = store
        .list_subscriptions(&b, &SubscriptionFilter::default(), &page(10, cursor))
        .await
        .unwrap();
    assert!(listed.items.is_empty());
    assert!(matches!(
        store.delete_subscription(&b, &sub_a.id).await,
        Err(StoreError::NotFound)
    ));

    // And A still sees all of it.
    assert_eq!(
        store.get_subscription(&a, &sub_a.id).await.unwrap(),
        Some(sub_a.clone())
    );
    assert_eq!(
        store.deliveries_for_event(&a, &ev.id).await.unwrap().len(),
        1
    );
    assert_eq!(store.list_attempts(&a, &del.id).await.unwrap().len(), 1);
}

#[tokio::test]
async fn insert_event_is_idempotent_and_atomic() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).store();
    let t = TenantId::new();
    let first = event(t, "document.created");
    let record = IdempotencyRecord {
        tenant_id: t,
        key: "key:abc".into(),
        body_sha256: "1111".into(),
        event_id: first.id,
        created_at: Timestamp::now(),
    };
    assert_eq!(
        store.insert_event(&first, Some(&record)).await.unwrap(),
        InsertEventOutcome::Inserted
    );
    assert_eq!(
        store.get_event(&t, &first.id).await.unwrap(),
        Some(first.clone())
    );

    // Same key again: the earlier record, and the second event is not written.
    let second = event(t, "document.created");
    let record2 = IdempotencyRecord {
        event_id: second.id,
        body_sha256: "2222".into(),
        ..record.clone()
    };
    assert_eq!(
        store.insert_event(&second, Some(&record2)).await.unwrap(),
        InsertEventOutcome::Duplicate(record.clone())
    );
    assert_eq!(store.get_event(&t, &second.id).await.unwrap(), None);

    // The same key under another tenant is a different key.
    let other = TenantId::new();
    let third = event(other, "document.created");
    let record3 = IdempotencyRecord {
        tenant_id: other,
        event_id: third.id,
        ..record.clone()
    };
    assert_eq!(
        store.insert_event(&third, Some(&record3)).await.unwrap(),
        InsertEventOutcome::Inserted
    );

    // Without a key, a new event is simply stored; its id is never overwritten.
    let plain = event(t, "article.created");
    assert_eq!(
        store.insert_event(&plain, None).await.unwrap(),
        InsertEventOutcome::Inserted
    );
    let clash = herald_core::model::Event {
        data: serde_json::json!({"x": 1}),
        ..plain.clone()
    };
    assert!(matches!(
        store.insert_event(&clash, None).await,
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(store.get_event(&t, &plain.id).await.unwrap(), Some(plain));
}

#[tokio::test]
async fn concurrent_inserts_with_one_key_store_one_event() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).store();
    let t = TenantId::new();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let ev = event(t, "document.created");
            let rec = IdempotencyRecord {
                tenant_id: t,
                key: "key:same".into(),
                body_sha256: "h".into(),
                event_id: ev.id,
                created_at: Timestamp::now(),
            };
            (ev.id, store.insert_event(&ev, Some(&rec)).await.unwrap())
        }));
    }
    let mut inserted = Vec::new();
    let mut duplicates = HashSet::new();
    for task in tasks {
        match task.await.unwrap() {
            (id, InsertEventOutcome::Inserted) => inserted.push(id),
            (_, InsertEventOutcome::Duplicate(r)) => {
                duplicates.insert(r.event_id);
            }
        }
    }
    assert_eq!(inserted.len(), 1);
    assert!(duplicates.iter().all(|id| *id == inserted[0]));
}

#[tokio::test]
async fn subscriptions_page_newest_first_without_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).store();
    let t = TenantId::new();
    let mut ids = Vec::new();
    for _ in 0..25 {
        let sub = subscription(t, &["document.*"], true);
        store.create_subscription(&sub).await.unwrap();
        ids.push(sub.id);
    }
    // Another tenant's records sit next to these in the table and must not leak in.
    store
        .create_subscription(&subscription(TenantId::new(), &["*"], true))
        .await
        .unwrap();
    ids.sort();
    ids.reverse();

    let filter = SubscriptionFilter::default();
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let p = store
            .list_subscriptions(&t, &filter, &page(10, cursor))
            .await
            .unwrap();
        pages += 1;
        seen.extend(p.items.iter().map(|s| s.id));
        match p.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ids);

    // An exact multiple of the limit ends without an empty extra page.
    let p = store
        .list_subscriptions(&t, &filter, &page(25, None))
        .await
        .unwrap();
    assert_eq!(p.items.len(), 25);
    assert_eq!(p.next_cursor, None);

    assert!(matches!(
        store
            .list_subscriptions(&t, &filter, &page(10, Some("garbage".into())))
            .await,
        Err(StoreError::BadCursor)
    ));
    assert!(matches!(
        store
            .list_subscriptions(&t, &filter, &page(10, Some(DeliveryId::new().to_string())))
            .await,
        Err(StoreError::BadCursor)
    ));
}

#[tokio::test]
async fn subscription_filters_and_enabled_list() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).store();
    let t = TenantId::new();
    let docs_on = subscription(t, &["document.*"], true);
    let docs_off = subscription(t, &["document.created"], false);
    let articles = subscription(t, &["article.created"], true);
    let mut expected_docs = Vec::new();
    for s in [&docs_on, &docs_off, &articles] {
        store.create_subscription(s).await.unwrap();
    }
    // Many non-matching rows between matching ones, to exercise paging with filters.
    for _ in 0..15 {
        store
            .create_subscription(&subscription(t, &["book.created"], true))
            .await
            .unwrap();
        let s = subscription(t, &["document.created"], true);
        store.create_subscription(&s).await.unwrap();
        expected_docs.push(s.id);
    }
    expected_docs.push(docs_on.id);
    expected_docs.push(docs_off.id);
    expected_docs.sort();
    expected_docs.reverse();

    let created = EventType::parse("document.created").unwrap();
    let filter = SubscriptionFilter {
        event: Some(created.clone()),
        enabled: None,
    };
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let p = store
            .list_subscriptions(&t, &filter, &page(4, cursor))
            .await
            .unwrap();
        assert!(p.items.iter().all(|s| s.matches(&created)));
        seen.extend(p.items.iter().map(|s| s.id));
        match p.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, expected_docs);

    let off = SubscriptionFilter {
        event: None,
        enabled: Some(false),
    };
    let p = store
        .list_subscriptions(&t, &off, &page(100, None))
        .await
        .unwrap();
    assert_eq!(
        p.items.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![docs_off.id]
    );

    let enabled = store.enabled_subscriptions(&t).await.unwrap();
    assert_eq!(enabled.len(), 32);
    assert!(enabled.iter().all(|s| s.enabled));
}

#[tokio::test]
async fn deliveries_create_if_absent_index_and_page() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).store();
    let t = TenantId::new();
    let sub = subscription(t, &["*"], true);
    let other_sub = subscription(t, &["*"], true);
    let mut ids = Vec::new();
    let mut first_event = None;
    for _ in 0..25 {
        let ev = event(t, "document.created");
        let mine = delivery(t, sub.id, &ev);
        let theirs = delivery(t, other_sub.id, &ev);
        let created = store
            .create_deliveries(&[mine.clone(), theirs.clone()])
            .await
            .unwrap();
        assert_eq!(created, vec![mine.id, theirs.id]);
        ids.push(mine.id);
        first_event.get_or_insert(ev);
    }
    let ev = first_event.unwrap();

    // Fan-out running twice creates nothing new and does not reset state.
    let mut d = delivery(t, sub.id, &ev);
    d.status = DeliveryStatus::Succeeded;
    d.attempts = 1;
    store.update_delivery(&d).await.unwrap();
    let again = delivery(t, sub.id, &ev);
    assert!(store
        .create_deliveries(std::slice::from_ref(&again))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.get_delivery(&t, &d.id).await.unwrap(),
        Some(d.clone())
    );

    let for_event = store.deliveries_for_event(&t, &ev.id).await.unwrap();
    let subs: HashSet<_> = for_event.iter().map(|d| d.subscription_id).collect();
    assert_eq!(subs, HashSet::from([sub.id, other_sub.id]));

    ids.sort();
    ids.reverse();
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let p = store
            .list_deliveries(&t, &sub.id, &page(10, cursor))
            .await
            .unwrap();
        pages += 1;
        assert!(p.items.iter().all(|d| d.subscription_id == sub.id));
        seen.extend(p.items.iter().map(|d| d.id));
        match p.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ids);
    assert!(matches!(
        store
            .list_deliveries(&t, &sub.id, &page(10, Some("del_nope".into())))
            .await,
        Err(StoreError::BadCursor)
    ));

    let missing = delivery(t, sub.id, &event(t, "document.created"));
    assert!(matches!(
        store.update_delivery(&missing).await,
        Err(StoreError::NotFound)
    ));
}

#[tokio::test]
async fn attempts_are_recorded_with_the_delivery_and_listed_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).store();
    let t = TenantId::new();
    let ev = event(t, "document.created");
    let mut d = delivery(t, SubscriptionId::new(), &ev);
    store
        .create_deliveries(std::slice::from_ref(&d))
        .await
        .unwrap();
    for n in [1, 2, 3, 9, 10, 11] {
        d.attempts = n;
        d.status = DeliveryStatus::Retrying;
        d.last_status_code = Some(500);
        store.record_attempt(&attempt(&d, n), &d).await.unwrap();
    }
    let numbers: Vec<u32> = store
        .list_attempts(&t, &d.id)
        .await
        .unwrap()
        .iter()
        .map(|a| a.number)
        .collect();
    assert_eq!(numbers, vec![1, 2, 3, 9, 10, 11]);
    assert_eq!(
        store
            .get_delivery(&t, &d.id)
            .await
            .unwrap()
            .unwrap()
            .attempts,
        11
    );

    // An attempt of a delivery that does not exist writes nothing.
    let ghost = delivery(t, SubscriptionId::new(), &event(t, "document.created"));
    assert!(matches!(
        store.record_attempt(&attempt(&ghost, 1), &ghost).await,
        Err(StoreError::NotFound)
    ));
    assert!(store.list_attempts(&t, &ghost.id).await.unwrap().is_empty());
}
