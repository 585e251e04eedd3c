//! The unit of work's contract: a record and the messages it causes go together (a refused write
//! sends nothing), an attempt recorded twice under one number keeps both records and applies the
//! first, the idempotency window is the record's own, and a batch of events answers each in order.

use std::sync::Arc;
use std::time::Duration;

use herald_core::ids::{SubscriptionId, TenantId};
use herald_core::model::{DeliveryMessage, DeliveryStatus, EventMessage, IdempotencyRecord};
use herald_core::ports::{
    InsertEventOutcome, NewEvent, OutgoingMessage, QueueMessage, QueueName, Recorded, StoreError,
};
use jiff::{SignedDuration, Timestamp};

use crate::fixtures::{attempt, delivery, event, keyed_event};
use crate::Backend;

/// Everything that arrives on `queue` within a short wait (acknowledged, so it is gone).
async fn arrived(b: &Backend, queue: QueueName) -> Vec<QueueMessage> {
    let mut out = Vec::new();
    for _ in 0..3 {
        let got = b
            .queue
            .receive(
                queue,
                10,
                Duration::from_millis(700),
                Duration::from_secs(30),
            )
            .await
            .unwrap();
        if got.is_empty() && !out.is_empty() {
            break;
        }
        for m in got {
            b.queue.ack(queue, &m.receipt).await.unwrap();
            out.push(m.message);
        }
    }
    out
}

fn now(message: QueueMessage) -> OutgoingMessage {
    OutgoingMessage {
        message,
        delay: Duration::ZERO,
    }
}

pub async fn records_and_their_messages_go_together(b: Arc<Backend>) {
    let t = TenantId::new();
    let ev = event(t, "document.created");
    let fan_out = QueueMessage::Event(EventMessage {
        tenant_id: t,
        event_id: ev.id,
        event: Some(ev.clone()),
    });
    let inserted = b
        .writes
        .insert_event_and_send(&ev, None, vec![now(fan_out.clone())])
        .await
        .unwrap();
    assert_eq!(inserted, InsertEventOutcome::Inserted);
    assert_eq!(arrived(&b, QueueName::Events).await, vec![fan_out.clone()]);
    // A refused write sends nothing.
    assert!(matches!(
        b.writes
            .insert_event_and_send(&ev, None, vec![now(fan_out)])
            .await,
        Err(StoreError::AlreadyExists)
    ));

    // A first attempt stores the delivery and, applied, sends its retry.
    let first = delivery(t, SubscriptionId::new(), &ev);
    let message_of = |d: &herald_core::model::Delivery, n| {
        QueueMessage::Delivery(DeliveryMessage::attempt_of(d, n))
    };
    let mut d = first.clone();
    d.attempts = 1;
    d.status = DeliveryStatus::Retrying;
    let recorded = b
        .writes
        .record_attempt_and_send(&attempt(&d, 1), &d, vec![now(message_of(&d, 2))])
        .await
        .unwrap();
    assert_eq!(recorded, Recorded::Applied);
    assert_eq!(b.get_delivery(&t, &d.id).await.unwrap(), Some(d.clone()));
    assert_eq!(
        arrived(&b, QueueName::Deliveries).await,
        vec![message_of(&d, 2)]
    );

    // A replay updates the delivery and sends its next attempt.
    d.status = DeliveryStatus::Pending;
    d.run_started_at = 1;
    b.writes
        .update_delivery_and_send(&d, vec![now(message_of(&d, 2))])
        .await
        .unwrap();
    assert_eq!(b.get_delivery(&t, &d.id).await.unwrap(), Some(d.clone()));
    assert_eq!(
        arrived(&b, QueueName::Deliveries).await,
        vec![message_of(&d, 2)]
    );
    // Giving up a delivery never stored stores it, and sends what it is given.
    let mut ghost = delivery(t, SubscriptionId::new(), &ev);
    ghost.give_up("the subscription was deleted", Timestamp::now());
    b.writes
        .update_delivery_and_send(&ghost, Vec::new())
        .await
        .unwrap();
    assert_eq!(b.get_delivery(&t, &ghost.id).await.unwrap(), Some(ghost));
    assert!(arrived(&b, QueueName::Deliveries).await.is_empty());
}

pub async fn a_superseded_attempt_is_logged_and_changes_nothing_else(b: Arc<Backend>) {
    let t = TenantId::new();
    let ev = event(t, "document.created");
    // Not stored yet: its first attempt stores it.
    let d0 = delivery(t, SubscriptionId::new(), &ev);
    let retry = |d: &herald_core::model::Delivery| {
        now(QueueMessage::Delivery(DeliveryMessage::attempt_of(d, 2)))
    };

    // Two workers made attempt 1 (a redelivered message): the first to record wins.
    let mut winner = d0.clone();
    winner.attempts = 1;
    winner.status = DeliveryStatus::Retrying;
    let mut loser = d0.clone();
    loser.attempts = 1;
    loser.status = DeliveryStatus::Succeeded;
    let (a1, a2) = (attempt(&winner, 1), attempt(&loser, 1));
    let first = b
        .writes
        .record_attempt_and_send(&a1, &winner, vec![retry(&winner)])
        .await
        .unwrap();
    let second = b
        .writes
        .record_attempt_and_send(&a2, &loser, vec![retry(&loser)])
        .await
        .unwrap();
    assert_eq!((first, second), (Recorded::Applied, Recorded::Superseded));
    let attempts = b.list_attempts(&t, &d0.id).await.unwrap();
    assert_eq!(attempts.len(), 2, "both requests are in the log");
    assert!(attempts.contains(&a1) && attempts.contains(&a2));
    assert_eq!(
        b.get_delivery(&t, &d0.id).await.unwrap(),
        Some(winner.clone())
    );
    assert_eq!(
        arrived(&b, QueueName::Deliveries).await.len(),
        1,
        "only the applied attempt sends its retry"
    );
}

pub async fn the_idempotency_window_is_honoured(b: Arc<Backend>) {
    let t = TenantId::new();
    let start = Timestamp::now();
    let at = |secs: i64| start.checked_add(SignedDuration::from_secs(secs)).unwrap();
    let window = 600;
    let record = |ev: &herald_core::model::Event, body: &str, created: i64| IdempotencyRecord {
        tenant_id: t,
        key: "key:window".into(),
        body_sha256: body.into(),
        event_id: ev.id,
        created_at: at(created),
        expires_at: at(created + window),
    };
    let keyed = || keyed_event(t, "document.created", "key:window");
    let first = keyed();
    let first_record = record(&first, "a", 0);
    assert_eq!(
        b.insert_event(&first, Some(&first_record)).await.unwrap(),
        InsertEventOutcome::Inserted
    );
    // Within the window, the earlier record, whatever the body (the service compares bodies).
    let second = keyed();
    assert_eq!(
        b.insert_event(&second, Some(&record(&second, "b", window - 1)))
            .await
            .unwrap(),
        InsertEventOutcome::Duplicate(first_record.clone())
    );
    assert_eq!(b.get_event(&t, &second.id).await.unwrap(), None);
    // At its end the key is free: a new event, and a new window from there.
    let third = keyed();
    let third_record = record(&third, "c", window);
    assert_eq!(
        b.insert_event(&third, Some(&third_record)).await.unwrap(),
        InsertEventOutcome::Inserted
    );
    assert_eq!(
        b.get_event(&t, &third.id).await.unwrap(),
        Some(third.clone())
    );
    // The earlier event is still there, by its id.
    assert_eq!(b.get_event(&t, &first.id).await.unwrap(), Some(first));
    let fourth = keyed();
    assert_eq!(
        b.insert_event(&fourth, Some(&record(&fourth, "a", window + 10)))
            .await
            .unwrap(),
        InsertEventOutcome::Duplicate(third_record)
    );
}

pub async fn a_batch_of_events_answers_each_in_order(b: Arc<Backend>) {
    let t = TenantId::new();
    let record = |ev: &herald_core::model::Event, key: &str| IdempotencyRecord {
        tenant_id: t,
        key: key.into(),
        body_sha256: "h".into(),
        event_id: ev.id,
        created_at: Timestamp::now(),
        expires_at: Timestamp::MAX,
    };
    let earlier = keyed_event(t, "document.created", "key:old");
    let earlier_record = record(&earlier, "key:old");
    b.insert_event(&earlier, Some(&earlier_record))
        .await
        .unwrap();
    let events = vec![
        event(t, "document.created"),
        keyed_event(t, "document.created", "key:new"),
        keyed_event(t, "document.created", "key:old"),
        keyed_event(t, "document.created", "key:new"),
    ];
    let message = |ev: &herald_core::model::Event| {
        now(QueueMessage::Event(EventMessage {
            tenant_id: t,
            event_id: ev.id,
            event: None,
        }))
    };
    let item = |ev: &herald_core::model::Event, key: Option<&str>| NewEvent {
        event: ev.clone(),
        idempotency: key.map(|k| record(ev, k)),
        messages: vec![message(ev)],
    };
    let outcomes = b
        .writes
        .insert_events_and_send(vec![
            item(&events[0], None),
            item(&events[1], Some("key:new")),
            item(&events[2], Some("key:old")),
            item(&events[3], Some("key:new")),
        ])
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 4);
    assert_eq!(outcomes[0], InsertEventOutcome::Inserted);
    assert_eq!(outcomes[2], InsertEventOutcome::Duplicate(earlier_record));
    // A key used twice in one batch: one of the two is inserted, the other answers its record.
    let new_outcomes = [&outcomes[1], &outcomes[3]];
    let inserted = new_outcomes
        .iter()
        .filter(|o| ***o == InsertEventOutcome::Inserted)
        .count();
    assert_eq!(inserted, 1, "{outcomes:?}");
    let stored: Vec<bool> = {
        let mut v = Vec::new();
        for ev in &events {
            v.push(b.get_event(&t, &ev.id).await.unwrap().is_some());
        }
        v
    };
    assert_eq!(stored.iter().filter(|s| **s).count(), 2);
    assert!(stored[0] && !stored[2]);
    // One message per inserted event, none for the duplicates.
    let mut got = arrived(&b, QueueName::Events).await;
    got.sort_by_key(|m| format!("{m:?}"));
    let mut want: Vec<QueueMessage> = events
        .iter()
        .zip(&stored)
        .filter(|(_, s)| **s)
        .map(|(ev, _)| message(ev).message)
        .collect();
    want.sort_by_key(|m| format!("{m:?}"));
    assert_eq!(got, want);
}
