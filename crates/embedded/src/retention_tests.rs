//! The sweeper on a real database file, with the time given (a manual clock): what goes, what
//! stays, and that nothing it leaves behind names what it removed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use herald_contract::fixtures::{attempt, delivery, planned_event, subscription};
use herald_contract::memory::ManualClock;
use herald_core::ids::{EventId, SubscriptionId};
use herald_core::model::{Delivery, DeliveryStatus, Event, EventMessage, IdempotencyRecord};
use herald_core::ports::{
    DeliveryStore, EventStore, InsertEventOutcome, OutgoingMessage, Queue, QueueMessage, QueueName,
    SubscriptionStore, UnitOfWork,
};
use herald_core::retention::Retention;

use super::*;
use crate::tables::Tbl;

const HOUR: Duration = Duration::from_secs(3600);

fn plus(t: Timestamp, d: Duration) -> Timestamp {
    t.checked_add(jiff::SignedDuration::try_from(d).unwrap())
        .unwrap()
}

/// Every key of every record table.
fn all_keys(db: &EmbeddedDb) -> Vec<String> {
    let mut keys = Vec::new();
    for t in Tbl::ALL.into_iter().filter(|t| t.is_host()) {
        let table = db.inner.read_table(t).unwrap();
        for row in table.range(..).unwrap() {
            keys.push(format!("{:?} {}", t, row.unwrap().0.value()));
        }
    }
    keys
}

/// A delivery of `event` to `sub` that made one attempt and ended `status` at `at`.
async fn settle(
    db: &EmbeddedDb,
    event: &Event,
    sub: SubscriptionId,
    status: DeliveryStatus,
    at: Timestamp,
) -> Delivery {
    let d = Delivery {
        status,
        attempts: 1,
        updated_at: at,
        ..delivery(event.tenant_id, sub, event)
    };
    db.outbox()
        .record_attempt_and_send(&attempt(&d, 1), &d, Vec::new())
        .await
        .unwrap();
    d
}

#[tokio::test]
async fn a_pass_removes_an_old_settled_event_whole_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let db = EmbeddedDb::open(dir.path()).unwrap();
    let (store, outbox) = (db.store(), db.outbox());
    let t0 = Timestamp::now();
    let tenant = TenantId::new();
    let (s1, s2) = (
        subscription(tenant, &["*"], true),
        subscription(tenant, &["*"], true),
    );
    for s in [&s1, &s2] {
        store.create_subscription(s).await.unwrap();
    }

    // Given an old event, delivered (one delivery succeeded, one failed), under an idempotency
    // key whose window has ended,
    let old = planned_event(tenant, &[s1.id, s2.id]);
    let record = IdempotencyRecord {
        tenant_id: tenant,
        key: "key:order-1".into(),
        body_sha256: "00".repeat(32),
        event_id: old.id,
        created_at: t0,
        expires_at: plus(t0, HOUR),
    };
    outbox
        .insert_event_and_send(&old, Some(&record), Vec::new())
        .await
        .unwrap();
    let old_ok = settle(&db, &old, s1.id, DeliveryStatus::Succeeded, t0).await;
    let old_failed = settle(&db, &old, s2.id, DeliveryStatus::Failed, t0).await;
    // an old event without deliveries under a key whose window is still open,
    let open_window = IdempotencyRecord {
        key: "key:order-2".into(),
        expires_at: plus(t0, 48 * HOUR),
        ..record.clone()
    };
    let kept_keyed = planned_event(tenant, &[]);
    outbox
        .insert_event_and_send(
            &kept_keyed,
            Some(&IdempotencyRecord {
                event_id: kept_keyed.id,
                ..open_window.clone()
            }),
            Vec::new(),
        )
        .await
        .unwrap();
    // an old event whose delivery is still retrying,
    let retrying_event = planned_event(tenant, &[s1.id]);
    outbox
        .insert_event_and_send(&retrying_event, None, Vec::new())
        .await
        .unwrap();
    let retrying = settle(&db, &retrying_event, s1.id, DeliveryStatus::Retrying, t0).await;
    // an old event not fanned out yet (its message still queued),
    let queued = planned_event(tenant, &[s1.id]);
    let message = OutgoingMessage {
        message: QueueMessage::Event(EventMessage {
            tenant_id: tenant,
            event_id: queued.id,
            event: None,
        }),
        delay: Duration::ZERO,
    };
    outbox
        .insert_event_and_send(&queued, None, vec![message])
        .await
        .unwrap();
    // an old event whose delivery was replayed and settled recently,
    let replayed_event = planned_event(tenant, &[s2.id]);
    outbox
        .insert_event_and_send(&replayed_event, None, Vec::new())
        .await
        .unwrap();
    settle(
        &db,
        &replayed_event,
        s2.id,
        DeliveryStatus::Succeeded,
        plus(t0, 90 * 60 * Duration::from_secs(1)),
    )
    .await;
    // and a newer event.
    let newer_at = plus(t0, 90 * Duration::from_secs(60));
    let newer_ms = u64::try_from(newer_at.as_millisecond()).unwrap();
    let newer = Event {
        id: EventId::keyed(&tenant, "key:newer", newer_ms),
        timestamp: newer_at,
        ..planned_event(tenant, &[s1.id])
    };
    outbox
        .insert_event_and_send(&newer, None, Vec::new())
        .await
        .unwrap();
    let newer_ok = settle(&db, &newer, s1.id, DeliveryStatus::Succeeded, newer_at).await;

    // When a pass runs two hours on, with a retention of one hour,
    let retention = Retention::new(HOUR).unwrap();
    let swept = db.sweep(retention, plus(t0, 2 * HOUR)).await.unwrap();

    // then the old events went, the first with its two deliveries, their attempts and the ended
    // key (the open key stays, its window being intake's),
    assert_eq!(
        swept,
        Swept {
            events: 2,
            deliveries: 2,
            attempts: 2,
            idempotency_records: 1,
            kept_in_flight: 2,
        }
    );
    assert_eq!(store.get_event(&tenant, &old.id).await.unwrap(), None);
    for d in [&old_ok, &old_failed] {
        assert_eq!(store.get_delivery(&tenant, &d.id).await.unwrap(), None);
        assert!(store
            .list_attempts(&tenant, &d.id)
            .await
            .unwrap()
            .is_empty());
    }
    assert!(store.deliveries_for_event(&old).await.unwrap().is_empty());
    let names: Vec<String> = [
        old.id.to_string(),
        old_ok.id.to_string(),
        old_failed.id.to_string(),
    ]
    .into();
    let left = all_keys(&db);
    for key in &left {
        assert!(
            !names.iter().any(|n| key.contains(n.as_str())) && !key.contains("order-1"),
            "{key} dangles"
        );
    }
    // and everything else stayed, the delivery log listing what is left.
    assert_eq!(
        store.get_event(&tenant, &kept_keyed.id).await.unwrap(),
        None
    );
    for e in [&retrying_event, &queued, &replayed_event, &newer] {
        assert!(store.get_event(&tenant, &e.id).await.unwrap().is_some());
    }
    assert!(left.iter().any(|k| k.contains("order-2")));
    let log = store
        .list_deliveries(&tenant, &s1.id, &herald_contract::fixtures::page(100, None))
        .await
        .unwrap();
    let ids: HashSet<_> = log.items.iter().map(|d| d.id).collect();
    assert_eq!(ids, HashSet::from([retrying.id, newer_ok.id]));

    // Once the queued event's message is gone and the retrying delivery failed for good, an
    // hour later, they go too; a pass with nothing to do removes nothing.
    let queue = db.queue();
    let got = queue
        .receive(QueueName::Events, 10, Duration::ZERO, HOUR)
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    queue.ack(QueueName::Events, &got[0].receipt).await.unwrap();
    let gave_up = Delivery {
        status: DeliveryStatus::Failed,
        updated_at: plus(t0, HOUR / 2),
        ..retrying.clone()
    };
    outbox
        .update_delivery_and_send(&gave_up, Vec::new())
        .await
        .unwrap();
    let swept = db.sweep(retention, plus(t0, 2 * HOUR)).await.unwrap();
    assert_eq!(
        (swept.events, swept.deliveries, swept.kept_in_flight),
        (2, 1, 0)
    );
    assert_eq!(
        swept,
        Swept {
            attempts: 1,
            ..swept
        }
    );
    let again = db.sweep(retention, plus(t0, 2 * HOUR)).await.unwrap();
    assert_eq!(again, Swept::default());
    assert!(store.get_event(&tenant, &newer.id).await.unwrap().is_some());
    assert!(matches!(
        outbox
            .insert_event_and_send(&planned_event(tenant, &[]), Some(&open_window), Vec::new())
            .await
            .unwrap(),
        InsertEventOutcome::Duplicate(_)
    ));
}

#[tokio::test]
async fn the_background_sweeper_follows_its_clock_and_does_not_hold_the_file_open() {
    let dir = tempfile::tempdir().unwrap();
    let db = EmbeddedDb::open(dir.path()).unwrap();
    let tenant = TenantId::new();
    let sub = subscription(tenant, &["*"], true);
    db.store().create_subscription(&sub).await.unwrap();
    let event = planned_event(tenant, &[sub.id]);
    db.outbox()
        .insert_event_and_send(&event, None, Vec::new())
        .await
        .unwrap();
    settle(
        &db,
        &event,
        sub.id,
        DeliveryStatus::Succeeded,
        event.timestamp,
    )
    .await;

    let clock = ManualClock::new(plus(event.timestamp, 2 * HOUR));
    let sweeper = db.spawn_sweeper(Retention::new(HOUR).unwrap(), clock);
    let store = db.store();
    let mut waited = 0;
    while store.get_event(&tenant, &event.id).await.unwrap().is_some() {
        assert!(waited < 500, "the sweeper did not remove the old event");
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += 1;
    }
    drop((store, db));
    // The file is free again once the pass is over (it may still be giving space back) and
    // while the sweeper sleeps.
    let mut reopened = EmbeddedDb::open(dir.path());
    for _ in 0..500 {
        if reopened.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        reopened = EmbeddedDb::open(dir.path());
    }
    drop(reopened.unwrap());
    sweeper.abort();
}

/// `len` bytes of hex that LZ4 cannot shrink much (an xorshift stream from `seed`).
fn noise(seed: u64, len: usize) -> String {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b"0123456789abcdef"[(x % 16) as usize])
        })
        .collect()
}

#[tokio::test]
async fn a_pass_that_empties_a_grown_database_gives_its_space_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = EmbeddedDb::open(dir.path()).unwrap();
    let outbox = db.outbox();
    let t0 = Timestamp::now();
    let tenant = TenantId::new();
    let sub = subscription(tenant, &["*"], true);
    db.store().create_subscription(&sub).await.unwrap();
    // Given a database grown by many events (about 12 MB of payload) that have all aged out,
    let mut writes = tokio::task::JoinSet::new();
    for i in 0..3000 {
        let event = Event {
            data: serde_json::json!({ "text": noise(i, 4000) }),
            ..planned_event(tenant, &[])
        };
        let outbox = outbox.clone();
        writes.spawn(async move { outbox.insert_event_and_send(&event, None, Vec::new()).await });
    }
    while let Some(result) = writes.join_next().await {
        result.unwrap().unwrap();
    }
    let tables = || crate::folder_size(&db.path().join(crate::compact::TABLES_DIR)).unwrap();
    // (flushed to table files, as they would be after a while)
    for ks in db.inner.kv.hosts() {
        ks.inner().rotate_memtable_and_wait().unwrap();
    }
    let grown_tables = tables();
    // LZ4 shrinks hex about 2.5 times: 12 MB of it is near 5 MB of table files.
    assert!(grown_tables > 3_000_000, "{grown_tables}");

    // when a pass removes them, and the writer is quiet, a compaction gives the space back.
    let retention = Retention::new(HOUR).unwrap();
    let swept = db.sweep(retention, plus(t0, 2 * HOUR)).await.unwrap();
    assert_eq!(swept.events, 3000);
    let outcome = db.compact(Duration::ZERO).await.unwrap();
    let Compaction::Done { before, after } = outcome else {
        panic!("{outcome:?}")
    };
    // The table files hold little more than the subscription; the journal keeps what it wrote
    // until it is full (64 MB) and replaced (see `compact`).
    assert!(
        before >= grown_tables,
        "{before} before, {grown_tables} grown"
    );
    let left = tables();
    assert!(
        after * 10 < grown_tables,
        "{grown_tables} grown, {after} after"
    );
    assert!(
        left * 10 < grown_tables,
        "{grown_tables} grown, {left} left"
    );
    // Only a writer quiet for long enough compacts, and only a folder worth it.
    assert_eq!(
        db.compact(Duration::from_secs(3600)).await.unwrap(),
        Compaction::Busy
    );
    assert!(matches!(
        db.compact(Duration::ZERO).await.unwrap(),
        Compaction::NotWorth { .. }
    ));
    // What was kept is still there, and the database takes writes as before.
    assert_eq!(
        db.store().get_subscription(&tenant, &sub.id).await.unwrap(),
        Some(sub)
    );
    let kept = planned_event(tenant, &[]);
    outbox
        .insert_event_and_send(&kept, None, Vec::new())
        .await
        .unwrap();
    assert!(db
        .store()
        .get_event(&tenant, &kept.id)
        .await
        .unwrap()
        .is_some());
}
