//! The store's contract: conditional writes, tenant isolation, idempotent intake, paging and
//! ordering.

use std::collections::HashSet;
use std::sync::Arc;

use herald_core::health::{Health, HealthChange, Warning};
use herald_core::ids::{ApiKeyId, DeliveryId, SubscriptionId, TenantId};
use herald_core::model::{ApiKeyRecord, DeliveryStatus, Event, IdempotencyRecord};
use herald_core::pattern::EventType;
use herald_core::ports::{
    InsertEventOutcome, Page, PageRequest, Recorded, StoreError, SubscriptionFilter,
};
use jiff::Timestamp;

use crate::fixtures::{
    attempt, delivery, event, keyed_event, page, planned_event, subscription, tenant,
};
use crate::Backend;

/// Every page of a list, following cursors; panics if it does not end within 100 pages.
pub(crate) async fn all_pages<T, F, Fut>(limit: usize, mut fetch: F) -> (Vec<T>, usize)
where
    F: FnMut(PageRequest) -> Fut,
    Fut: std::future::Future<Output = Result<Page<T>, StoreError>>,
{
    let mut items = Vec::new();
    let mut cursor = None;
    for pages in 1..=100 {
        let p = fetch(page(limit, cursor)).await.unwrap();
        assert!(p.items.len() <= limit, "a page holds more than its limit");
        items.extend(p.items);
        match p.next_cursor {
            Some(c) => cursor = Some(c),
            None => return (items, pages),
        }
    }
    panic!("the list did not end after 100 pages");
}

pub async fn tenants_and_api_keys(store: Arc<Backend>) {
    let t = tenant();
    assert_eq!(store.get_tenant(&t.id).await.unwrap(), None);
    store.put_tenant(&t).await.unwrap();
    assert_eq!(store.get_tenant(&t.id).await.unwrap(), Some(t.clone()));
    // put_tenant is an upsert.
    let renamed = herald_core::model::Tenant {
        name: "Acme 2".into(),
        ..t.clone()
    };
    store.put_tenant(&renamed).await.unwrap();
    assert_eq!(store.get_tenant(&t.id).await.unwrap(), Some(renamed));

    let key = ApiKeyRecord {
        id: ApiKeyId::new(),
        tenant_id: t.id,
        hash: format!("{:064x}", rand_u128()),
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

/// A value unique enough for a test key hash.
fn rand_u128() -> u128 {
    herald_core::ids::EventId::new().ulid().0
}

/// A key record of `tenant` with a fresh id and hash.
fn api_key(tenant: TenantId, name: &str) -> ApiKeyRecord {
    ApiKeyRecord {
        id: ApiKeyId::new(),
        tenant_id: tenant,
        hash: format!("{:064x}", rand_u128()),
        name: name.into(),
        created_at: Timestamp::now(),
        revoked_at: None,
    }
}

pub async fn api_keys_are_listed_newest_first_per_tenant(store: Arc<Backend>) {
    let (a, b) = (TenantId::new(), TenantId::new());
    assert!(store.list_api_keys(&a).await.unwrap().is_empty());
    let mut keys = Vec::new();
    for i in 0..5 {
        let key = api_key(a, &format!("key {i}"));
        store.put_api_key(&key).await.unwrap();
        keys.push(key);
    }
    let theirs = api_key(b, "b");
    store.put_api_key(&theirs).await.unwrap();

    // A refused put lists nothing new: neither the same hash under a new id, nor a new hash under
    // an existing id.
    let same_hash = ApiKeyRecord {
        id: ApiKeyId::new(),
        ..keys[0].clone()
    };
    assert!(matches!(
        store.put_api_key(&same_hash).await,
        Err(StoreError::AlreadyExists)
    ));
    let same_id = ApiKeyRecord {
        hash: format!("{:064x}", rand_u128()),
        ..keys[1].clone()
    };
    assert!(matches!(
        store.put_api_key(&same_id).await,
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(store.find_api_key(&same_id.hash).await.unwrap(), None);

    // Ids are ULIDs: newest first is descending id order.
    keys.sort_by_key(|k| k.id);
    keys.reverse();
    assert_eq!(store.list_api_keys(&a).await.unwrap(), keys);
    assert_eq!(store.list_api_keys(&b).await.unwrap(), vec![theirs]);
    assert!(store
        .list_api_keys(&TenantId::new())
        .await
        .unwrap()
        .is_empty());
}

pub async fn revoked_keys_are_found_revoked_and_only_by_their_tenant(store: Arc<Backend>) {
    let (a, b) = (TenantId::new(), TenantId::new());
    let key = api_key(a, "ops");
    let other = api_key(a, "other");
    store.put_api_key(&key).await.unwrap();
    store.put_api_key(&other).await.unwrap();
    let at = Timestamp::now();

    // Tenant B cannot revoke A's key, and an unknown id is not found.
    assert!(matches!(
        store.revoke_api_key(&b, &key.id, at).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.revoke_api_key(&a, &ApiKeyId::new(), at).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        store.find_api_key(&key.hash).await.unwrap(),
        Some(key.clone())
    );

    store.revoke_api_key(&a, &key.id, at).await.unwrap();
    let revoked = ApiKeyRecord {
        revoked_at: Some(at),
        ..key.clone()
    };
    assert_eq!(
        store.find_api_key(&key.hash).await.unwrap(),
        Some(revoked.clone())
    );
    let listed = store.list_api_keys(&a).await.unwrap();
    assert!(listed.contains(&revoked), "{listed:?}");
    assert!(listed.contains(&other), "the other key is untouched");
    assert_eq!(listed.len(), 2);

    // Revoking again keeps the first time.
    let later = Timestamp::now() + jiff::SignedDuration::from_secs(60);
    store.revoke_api_key(&a, &key.id, later).await.unwrap();
    assert_eq!(store.find_api_key(&key.hash).await.unwrap(), Some(revoked));
    assert!(matches!(
        store.revoke_api_key(&b, &key.id, later).await,
        Err(StoreError::NotFound)
    ));
    assert!(store.list_api_keys(&b).await.unwrap().is_empty());
    assert_eq!(store.find_api_key(&other.hash).await.unwrap(), Some(other));
}

pub async fn tenants_are_listed_newest_first(store: Arc<Backend>) {
    let empty = store.list_tenants(&page(10, None)).await.unwrap();
    assert!(empty.items.is_empty());
    assert_eq!(empty.next_cursor, None);

    let mut tenants = Vec::new();
    for _ in 0..7 {
        let t = tenant();
        store.put_tenant(&t).await.unwrap();
        // Keys under a tenant are not tenants.
        store.put_api_key(&api_key(t.id, "k")).await.unwrap();
        tenants.push(t);
    }
    // An upsert changes the listed record, and does not list it twice.
    tenants[3].name = "Renamed".into();
    store.put_tenant(&tenants[3]).await.unwrap();
    tenants.sort_by_key(|t| t.id);
    tenants.reverse();

    let (seen, pages) = all_pages(3, |p| {
        let store = Arc::clone(&store);
        async move { store.list_tenants(&p).await }
    })
    .await;
    assert_eq!(pages, 3);
    assert_eq!(seen, tenants);
    let whole = store.list_tenants(&page(7, None)).await.unwrap();
    assert_eq!(whole.items.len(), 7);
    assert_eq!(whole.next_cursor, None);

    for bad in ["garbage", &SubscriptionId::new().to_string()] {
        assert!(matches!(
            store.list_tenants(&page(3, Some(bad.to_owned()))).await,
            Err(StoreError::BadCursor)
        ));
    }
}

pub async fn subscription_crud_is_conditional(store: Arc<Backend>) {
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
    // A refused update created nothing.
    assert_eq!(store.get_subscription(&t, &sub.id).await.unwrap(), None);

    store.create_subscription(&sub).await.unwrap();
    let clash = herald_core::model::Subscription {
        name: Some("clash".into()),
        ..sub.clone()
    };
    assert!(matches!(
        store.create_subscription(&clash).await,
        Err(StoreError::AlreadyExists)
    ));
    // A refused create changed nothing.
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

pub async fn tenants_never_see_each_other(store: Arc<Backend>) {
    let (a, b) = (TenantId::new(), TenantId::new());
    let sub_a = subscription(a, &["*"], true);
    store.create_subscription(&sub_a).await.unwrap();
    let ev = planned_event(a, &[sub_a.id]);
    store.insert_event(&ev, None).await.unwrap();
    let mut del = delivery(a, sub_a.id, &ev);
    del.attempts = 1;
    store.record_attempt(&attempt(&del, 1), &del).await.unwrap();
    let as_b = herald_core::model::Event {
        tenant_id: b,
        ..ev.clone()
    };

    // Another tenant asking for A's ids gets nothing.
    assert_eq!(store.get_subscription(&b, &sub_a.id).await.unwrap(), None);
    assert_eq!(store.get_event(&b, &ev.id).await.unwrap(), None);
    assert_eq!(store.get_delivery(&b, &del.id).await.unwrap(), None);
    assert!(store.list_attempts(&b, &del.id).await.unwrap().is_empty());
    assert!(store.deliveries_for_event(&as_b).await.unwrap().is_empty());
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
    // A cursor does not open tenant B's range onto A's records.
    let cursor = Some(SubscriptionId::new().to_string());
    let listed = store
        .list_subscriptions(&b, &SubscriptionFilter::default(), &page(10, cursor))
        .await
        .unwrap();
    assert!(listed.items.is_empty());
    // B can neither change nor delete A's records.
    assert!(matches!(
        store.delete_subscription(&b, &sub_a.id).await,
        Err(StoreError::NotFound)
    ));
    let hijack = herald_core::model::Subscription {
        tenant_id: b,
        ..sub_a.clone()
    };
    assert!(matches!(
        store.update_subscription(&hijack).await,
        Err(StoreError::NotFound)
    ));

    // And A still sees all of it, unchanged.
    assert_eq!(
        store.get_subscription(&a, &sub_a.id).await.unwrap(),
        Some(sub_a.clone())
    );
    assert_eq!(store.get_event(&a, &ev.id).await.unwrap(), Some(ev.clone()));
    assert_eq!(
        store.deliveries_for_event(&ev).await.unwrap(),
        vec![del.clone()]
    );
    assert_eq!(store.list_attempts(&a, &del.id).await.unwrap().len(), 1);
}

pub async fn insert_event_is_idempotent_and_atomic(store: Arc<Backend>) {
    let t = TenantId::new();
    let first = keyed_event(t, "document.created", "key:abc");
    let record = IdempotencyRecord {
        tenant_id: t,
        key: "key:abc".into(),
        body_sha256: "1111".into(),
        event_id: first.id,
        created_at: Timestamp::now(),
        expires_at: Timestamp::MAX,
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
    let second = keyed_event(t, "document.created", "key:abc");
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
    // And the first answer stands on a third try.
    assert_eq!(
        store.insert_event(&second, Some(&record2)).await.unwrap(),
        InsertEventOutcome::Duplicate(record.clone())
    );

    // The same key under another tenant is a different key.
    let other = TenantId::new();
    let third = keyed_event(other, "document.created", "key:abc");
    let record3 = IdempotencyRecord {
        tenant_id: other,
        event_id: third.id,
        ..record.clone()
    };
    assert_eq!(
        store.insert_event(&third, Some(&record3)).await.unwrap(),
        InsertEventOutcome::Inserted
    );

    // A key of any length and alphabet is a key.
    let odd_key = format!("key:{}/#ü {}", "x".repeat(250), "\u{1F600}");
    let odd = keyed_event(t, "document.created", &odd_key);
    let odd_record = IdempotencyRecord {
        key: odd_key,
        event_id: odd.id,
        ..record.clone()
    };
    assert_eq!(
        store.insert_event(&odd, Some(&odd_record)).await.unwrap(),
        InsertEventOutcome::Inserted
    );

    // Without a key, a new event is simply stored; its id is never overwritten.
    let plain = event(t, "article.created");
    assert_eq!(
        store.insert_event(&plain, None).await.unwrap(),
        InsertEventOutcome::Inserted
    );
    let clash = Event {
        data: serde_json::json!({"x": 1}),
        ..plain.clone()
    };
    assert!(matches!(
        store.insert_event(&clash, None).await,
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(store.get_event(&t, &plain.id).await.unwrap(), Some(plain));
    // A fresh key makes a new event.
    let fresh = keyed_event(t, "article.created", "key:fresh");
    let fresh_record = IdempotencyRecord {
        key: "key:fresh".into(),
        event_id: fresh.id,
        ..record.clone()
    };
    assert_eq!(
        store
            .insert_event(&fresh, Some(&fresh_record))
            .await
            .unwrap(),
        InsertEventOutcome::Inserted
    );
    assert_eq!(store.get_event(&t, &fresh.id).await.unwrap(), Some(fresh));
}

pub async fn concurrent_inserts_with_one_key_store_one_event(store: Arc<Backend>) {
    let t = TenantId::new();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let ev = keyed_event(t, "document.created", "key:same");
            let rec = IdempotencyRecord {
                tenant_id: t,
                key: "key:same".into(),
                body_sha256: "h".into(),
                event_id: ev.id,
                created_at: Timestamp::now(),
                expires_at: Timestamp::MAX,
            };
            (ev.id, store.insert_event(&ev, Some(&rec)).await.unwrap())
        }));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    let inserted: Vec<_> = results
        .iter()
        .filter(|(_, o)| *o == InsertEventOutcome::Inserted)
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(inserted.len(), 1, "exactly one insert wins");
    for (id, outcome) in &results {
        match outcome {
            InsertEventOutcome::Inserted => {
                assert!(store.get_event(&t, id).await.unwrap().is_some())
            }
            InsertEventOutcome::Duplicate(r) => {
                assert_eq!(r.event_id, inserted[0]);
                assert_eq!(store.get_event(&t, id).await.unwrap(), None);
            }
        }
    }
}

pub async fn subscriptions_page_newest_first_without_gaps(store: Arc<Backend>) {
    let t = TenantId::new();
    let mut ids = Vec::new();
    for _ in 0..25 {
        let sub = subscription(t, &["document.*"], true);
        store.create_subscription(&sub).await.unwrap();
        ids.push(sub.id);
    }
    // Another tenant's records sit next to these and must not leak in.
    store
        .create_subscription(&subscription(TenantId::new(), &["*"], true))
        .await
        .unwrap();
    ids.sort();
    ids.reverse();

    let filter = SubscriptionFilter::default();
    let (seen, pages) = all_pages(10, |p| {
        let (store, filter) = (Arc::clone(&store), filter.clone());
        async move { store.list_subscriptions(&t, &filter, &p).await }
    })
    .await;
    assert_eq!(pages, 3);
    assert_eq!(seen.iter().map(|s| s.id).collect::<Vec<_>>(), ids);

    // An exact multiple of the limit ends without an empty extra page.
    let p = store
        .list_subscriptions(&t, &filter, &page(25, None))
        .await
        .unwrap();
    assert_eq!(p.items.len(), 25);
    assert_eq!(p.next_cursor, None);
    let (_, pages) = all_pages(5, |p| {
        let (store, filter) = (Arc::clone(&store), filter.clone());
        async move { store.list_subscriptions(&t, &filter, &p).await }
    })
    .await;
    assert_eq!(pages, 5);

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

pub async fn subscription_filters_and_enabled_list(store: Arc<Backend>) {
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
    let (seen, _) = all_pages(4, |p| {
        let (store, filter) = (Arc::clone(&store), filter.clone());
        async move { store.list_subscriptions(&t, &filter, &p).await }
    })
    .await;
    assert!(seen.iter().all(|s| s.matches(&created)));
    assert_eq!(seen.iter().map(|s| s.id).collect::<Vec<_>>(), expected_docs);

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
    assert_eq!(p.next_cursor, None);

    // Both filters at once.
    let on_and_created = SubscriptionFilter {
        event: Some(created.clone()),
        enabled: Some(true),
    };
    let p = store
        .list_subscriptions(&t, &on_and_created, &page(100, None))
        .await
        .unwrap();
    assert_eq!(p.items.len(), expected_docs.len() - 1);
    assert!(p.items.iter().all(|s| s.enabled && s.matches(&created)));

    let enabled = store.enabled_subscriptions(&t).await.unwrap();
    assert_eq!(enabled.len(), 32);
    assert!(enabled.iter().all(|s| s.enabled));
}

pub async fn deliveries_are_stored_from_their_first_attempt_and_paged(store: Arc<Backend>) {
    let t = TenantId::new();
    let sub = subscription(t, &["*"], true);
    let other_sub = subscription(t, &["*"], true);
    let mut ids = Vec::new();
    let mut first_event = None;
    for _ in 0..25 {
        let ev = planned_event(t, &[sub.id, other_sub.id]);
        for s in [sub.id, other_sub.id] {
            let mut d = delivery(t, s, &ev);
            d.attempts = 1;
            d.status = DeliveryStatus::Succeeded;
            let recorded = store.record_attempt(&attempt(&d, 1), &d).await.unwrap();
            assert_eq!(recorded, Recorded::Applied);
        }
        ids.push(DeliveryId::derive(&ev.id, &sub.id));
        first_event.get_or_insert(ev);
    }
    let ev = first_event.unwrap();
    let d = store
        .get_delivery(&t, &DeliveryId::derive(&ev.id, &sub.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((d.attempts, d.status), (1, DeliveryStatus::Succeeded));

    // A delivery given up before its first attempt is stored by the update.
    let ev2 = planned_event(t, &[sub.id, other_sub.id]);
    let mut given_up = delivery(t, sub.id, &ev2);
    given_up.give_up("the subscription was deleted", Timestamp::now());
    store.update_delivery(&given_up).await.unwrap();
    assert_eq!(
        store.get_delivery(&t, &given_up.id).await.unwrap(),
        Some(given_up.clone())
    );
    ids.push(given_up.id);
    // Its event lists what is stored; the other planned delivery is not stored yet.
    assert_eq!(
        store.deliveries_for_event(&ev2).await.unwrap(),
        vec![given_up.clone()]
    );

    let for_event = store.deliveries_for_event(&ev).await.unwrap();
    let subs: HashSet<_> = for_event.iter().map(|d| d.subscription_id).collect();
    assert_eq!(subs, HashSet::from([sub.id, other_sub.id]));
    assert_eq!(for_event.len(), 2);
    assert!(for_event.contains(&d));

    ids.sort();
    ids.reverse();
    let (seen, pages) = all_pages(10, |p| {
        let store = Arc::clone(&store);
        async move { store.list_deliveries(&t, &sub.id, &p).await }
    })
    .await;
    assert_eq!(pages, 3);
    assert!(seen.iter().all(|d| d.subscription_id == sub.id));
    assert_eq!(seen.iter().map(|d| d.id).collect::<Vec<_>>(), ids);
    let p = store
        .list_deliveries(&t, &sub.id, &page(26, None))
        .await
        .unwrap();
    assert_eq!(p.items.len(), 26);
    assert_eq!(p.next_cursor, None);
    assert!(matches!(
        store
            .list_deliveries(&t, &sub.id, &page(10, Some("del_nope".into())))
            .await,
        Err(StoreError::BadCursor)
    ));
    assert!(store
        .list_deliveries(&t, &SubscriptionId::new(), &page(10, None))
        .await
        .unwrap()
        .items
        .is_empty());
}

pub async fn attempts_are_recorded_with_the_delivery_and_listed_oldest_first(store: Arc<Backend>) {
    let t = TenantId::new();
    let ev = event(t, "document.created");
    let mut d = delivery(t, SubscriptionId::new(), &ev);
    for n in 1..=11 {
        d.attempts = n;
        d.status = DeliveryStatus::Retrying;
        d.last_status_code = Some(500);
        assert_eq!(
            store.record_attempt(&attempt(&d, n), &d).await.unwrap(),
            Recorded::Applied
        );
    }
    let attempts = store.list_attempts(&t, &d.id).await.unwrap();
    let numbers: Vec<u32> = attempts.iter().map(|a| a.number).collect();
    assert_eq!(numbers, (1..=11).collect::<Vec<_>>(), "numeric order");
    assert_eq!(
        store.get_delivery(&t, &d.id).await.unwrap(),
        Some(d.clone())
    );

    // Recording an attempt number again (a redelivered message that raced the original) keeps
    // both records and leaves the delivery as the first recording made it.
    let mut redo = attempt(&d, 11);
    redo.status_code = Some(200);
    redo.succeeded = true;
    let mut other_outcome = d.clone();
    other_outcome.status = DeliveryStatus::Succeeded;
    other_outcome.last_status_code = Some(200);
    assert_eq!(
        store.record_attempt(&redo, &other_outcome).await.unwrap(),
        Recorded::Superseded
    );
    let attempts = store.list_attempts(&t, &d.id).await.unwrap();
    assert_eq!(attempts.len(), 12);
    assert!(attempts.contains(&redo));
    assert_eq!(attempts[11].number, 11);
    assert_eq!(
        store.get_delivery(&t, &d.id).await.unwrap(),
        Some(d.clone())
    );

    // A later attempt of a delivery never stored keeps only its record (nothing to apply it to).
    let ghost = delivery(t, SubscriptionId::new(), &event(t, "document.created"));
    let late = attempt(&ghost, 2);
    assert_eq!(
        store.record_attempt(&late, &ghost).await.unwrap(),
        Recorded::Superseded
    );
    assert_eq!(
        store.list_attempts(&t, &ghost.id).await.unwrap(),
        vec![late]
    );
    assert_eq!(store.get_delivery(&t, &ghost.id).await.unwrap(), None);
}

pub async fn subscriptions_are_counted_up_to_a_bound(store: Arc<Backend>) {
    let (t, other) = (TenantId::new(), TenantId::new());
    assert_eq!(store.count_subscriptions(&t, 10).await.unwrap(), 0);
    for enabled in [true, false, true] {
        store
            .create_subscription(&subscription(t, &["*"], enabled))
            .await
            .unwrap();
    }
    store
        .create_subscription(&subscription(other, &["*"], true))
        .await
        .unwrap();
    assert_eq!(store.count_subscriptions(&t, 10).await.unwrap(), 3);
    assert_eq!(store.count_subscriptions(&t, 2).await.unwrap(), 2);
    assert_eq!(store.count_subscriptions(&other, 10).await.unwrap(), 1);
}

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

pub async fn subscription_health_is_kept_apart_and_changed_on_condition(store: Arc<Backend>) {
    let t = TenantId::new();
    let sub = subscription(t, &["*"], true);
    store.create_subscription(&sub).await.unwrap();
    let health = |store: Arc<Backend>| async move {
        store
            .get_subscription(&t, &sub.id)
            .await
            .unwrap()
            .unwrap()
            .health
    };
    assert_eq!(health(store.clone()).await, Health::default());

    let fail = |s| HealthChange::Failed { at: at(s) };
    assert_eq!(
        store.update_health(&t, &sub.id, fail(0)).await.unwrap(),
        Some(Health::default())
    );
    let before = store.update_health(&t, &sub.id, fail(5)).await.unwrap();
    assert_eq!(before.map(|h| h.consecutive_failures), Some(1));
    let mut expected = Health::default();
    expected.apply(fail(0));
    expected.apply(fail(5));
    assert_eq!(health(store.clone()).await, expected);

    // The owner's update, from a copy that never saw the failures, keeps them.
    let renamed = herald_core::model::Subscription {
        name: Some("renamed".into()),
        ..sub.clone()
    };
    store.update_subscription(&renamed).await.unwrap();
    let stored = store.get_subscription(&t, &sub.id).await.unwrap().unwrap();
    assert_eq!(stored.name.as_deref(), Some("renamed"));
    assert_eq!(stored.health, expected);

    // A warning is given once; a higher one after it.
    let warn = |warning| HealthChange::Warned { warning };
    assert!(store
        .update_health(&t, &sub.id, warn(Warning::BreakerOpened))
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        store
            .update_health(&t, &sub.id, warn(Warning::BreakerOpened))
            .await
            .unwrap(),
        None
    );
    assert!(store
        .update_health(&t, &sub.id, warn(Warning::HalfSpan))
        .await
        .unwrap()
        .is_some());

    // One probe per streak count, until its outcome or its timeout.
    let claim = |s, failures| HealthChange::ClaimProbe {
        at: at(s),
        failures,
    };
    assert_eq!(
        store
            .update_health(&t, &sub.id, claim(10, 3))
            .await
            .unwrap(),
        None
    );
    assert!(store
        .update_health(&t, &sub.id, claim(10, 2))
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        store
            .update_health(&t, &sub.id, claim(11, 2))
            .await
            .unwrap(),
        None
    );
    assert!(store
        .update_health(&t, &sub.id, claim(70, 2))
        .await
        .unwrap()
        .is_some());
    store.update_health(&t, &sub.id, fail(72)).await.unwrap();
    let failing = health(store.clone()).await;
    assert_eq!(failing.probe_at, None);
    assert_eq!(failing.consecutive_failures, 3);
    assert_eq!(failing.warned, Warning::HalfSpan.level());
    // Lists carry the health too.
    let listed = store
        .list_subscriptions(&t, &SubscriptionFilter::default(), &page(10, None))
        .await
        .unwrap();
    assert_eq!(listed.items[0].health, failing);
    assert_eq!(
        store.enabled_subscriptions(&t).await.unwrap()[0].health,
        failing
    );

    // A success answers the health before it and resets all but itself.
    let before = store
        .update_health(&t, &sub.id, HealthChange::Succeeded { at: at(80) })
        .await
        .unwrap();
    assert_eq!(before, Some(failing));
    let healthy = Health {
        last_success_at: Some(at(80)),
        ..Health::default()
    };
    assert_eq!(health(store.clone()).await, healthy);
    store.update_health(&t, &sub.id, fail(90)).await.unwrap();
    store
        .update_health(&t, &sub.id, HealthChange::Reset)
        .await
        .unwrap();
    assert_eq!(health(store.clone()).await, healthy);

    // Another tenant's subscription, or a deleted one, is not found and not created.
    assert!(matches!(
        store
            .update_health(&TenantId::new(), &sub.id, fail(100))
            .await,
        Err(StoreError::NotFound)
    ));
    store.delete_subscription(&t, &sub.id).await.unwrap();
    assert!(matches!(
        store.update_health(&t, &sub.id, fail(100)).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.get_subscription(&t, &sub.id).await.unwrap(), None);
}

/// Failures recorded at once by many workers all count.
pub async fn concurrent_failures_all_count(store: Arc<Backend>) {
    let t = TenantId::new();
    let sub = subscription(t, &["*"], true);
    store.create_subscription(&sub).await.unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .update_health(&t, &sub.id, HealthChange::Failed { at: at(i) })
                    .await
                    .unwrap()
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let stored = store.get_subscription(&t, &sub.id).await.unwrap().unwrap();
    assert_eq!(stored.health.consecutive_failures, 16);
}
