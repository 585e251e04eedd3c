//! The event list's contract: a tenant's events, keyed or not, newest first, paged without gaps
//! or repeats, filtered by type, and never another tenant's.

use std::sync::Arc;

use herald_core::ids::{DeliveryId, EventId, TenantId};
use herald_core::model::IdempotencyRecord;
use herald_core::pattern::EventType;
use herald_core::ports::{InsertEventOutcome, StoreError};
use jiff::Timestamp;

use crate::fixtures::{event, keyed_event, page};
use crate::store::all_pages;
use crate::Backend;

fn record(tenant: TenantId, key: &str, event: EventId) -> IdempotencyRecord {
    IdempotencyRecord {
        tenant_id: tenant,
        key: key.into(),
        body_sha256: "h".into(),
        event_id: event,
        created_at: Timestamp::now(),
        expires_at: Timestamp::MAX,
    }
}

pub async fn events_are_listed_newest_first_per_tenant(store: Arc<Backend>) {
    let t = TenantId::new();
    assert!(store
        .list_events(&t, None, &page(10, None))
        .await
        .unwrap()
        .items
        .is_empty());
    let mut all = Vec::new();
    let mut documents = Vec::new();
    for i in 0..12 {
        let kind = if i % 3 == 0 {
            "document.created"
        } else {
            "article.created"
        };
        let ev = event(t, kind);
        store.insert_event(&ev, None).await.unwrap();
        if i % 3 == 0 {
            documents.push(ev.id);
        }
        all.push(ev.id);
    }
    // Events accepted under an idempotency key are listed too, once each.
    for i in 0..3 {
        let key = format!("key:{i}");
        let ev = keyed_event(t, "document.created", &key);
        let rec = record(t, &key, ev.id);
        assert_eq!(
            store.insert_event(&ev, Some(&rec)).await.unwrap(),
            InsertEventOutcome::Inserted
        );
        let again = keyed_event(t, "document.created", &key);
        let rec_again = record(t, &key, again.id);
        assert!(matches!(
            store.insert_event(&again, Some(&rec_again)).await.unwrap(),
            InsertEventOutcome::Duplicate(_)
        ));
        documents.push(ev.id);
        all.push(ev.id);
    }
    // Another tenant's events sit next to these and must not leak in.
    let other = TenantId::new();
    let theirs = event(other, "document.created");
    store.insert_event(&theirs, None).await.unwrap();
    for ids in [&mut all, &mut documents] {
        ids.sort();
        ids.reverse();
    }

    let (seen, pages) = all_pages(4, |p| {
        let store = Arc::clone(&store);
        async move { store.list_events(&t, None, &p).await }
    })
    .await;
    assert_eq!(pages, 4);
    assert!(seen.iter().all(|e| e.tenant_id == t));
    assert_eq!(seen.iter().map(|e| e.id).collect::<Vec<_>>(), all);
    // The listed events are the stored ones.
    let first = store.get_event(&t, &all[0]).await.unwrap();
    assert_eq!(first.as_ref(), seen.first());

    // An exact fit ends without an empty extra page.
    let whole = store.list_events(&t, None, &page(15, None)).await.unwrap();
    assert_eq!(whole.items.len(), 15);
    assert_eq!(whole.next_cursor, None);

    let documents_type = EventType::parse("document.created").unwrap();
    let (seen, _) = all_pages(2, |p| {
        let (store, kind) = (Arc::clone(&store), documents_type.clone());
        async move { store.list_events(&t, Some(&kind), &p).await }
    })
    .await;
    assert_eq!(seen.iter().map(|e| e.id).collect::<Vec<_>>(), documents);
    let none = EventType::parse("book.created").unwrap();
    assert!(store
        .list_events(&t, Some(&none), &page(10, None))
        .await
        .unwrap()
        .items
        .is_empty());

    let listed = store
        .list_events(&other, None, &page(10, None))
        .await
        .unwrap();
    assert_eq!(listed.items, vec![theirs]);
    assert_eq!(listed.next_cursor, None);

    for bad in ["garbage".to_owned(), DeliveryId::new().to_string()] {
        assert!(matches!(
            store.list_events(&t, None, &page(10, Some(bad))).await,
            Err(StoreError::BadCursor)
        ));
    }
}
