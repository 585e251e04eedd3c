//! The outbox (the embedded unit of work) across a reopen: an attempt and its retry message land in
//! one commit and both survive. What every unit of work must do is in `tests/contract.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use herald_core::ports::*;
use herald_core::*;
use herald_embedded::EmbeddedDb;
use jiff::Timestamp;

const NOW: Duration = Duration::ZERO;
const LEASE: Duration = Duration::from_secs(30);

fn event(tenant: TenantId) -> Event {
    Event {
        id: EventId::new(),
        tenant_id: tenant,
        event_type: EventType::parse("document.created").unwrap(),
        timestamp: Timestamp::now(),
        data: serde_json::json!({}),
        subscriptions: Vec::new(),
    }
}

fn delivery(e: &Event) -> Delivery {
    Delivery {
        next_attempt_at: None,
        ..Delivery::pending(e, SubscriptionId::new(), Timestamp::now())
    }
}

fn first_try(d: &Delivery) -> OutgoingMessage {
    OutgoingMessage {
        message: QueueMessage::Delivery(DeliveryMessage::attempt_of(d, 1)),
        delay: NOW,
    }
}

#[tokio::test]
async fn an_attempt_and_its_retry_land_together_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let e = event(TenantId::new());
    let mut d = delivery(&e);
    {
        let db = EmbeddedDb::open(dir.path()).unwrap();
        let outbox = db.outbox();
        db.queue().send(vec![first_try(&d)]).await.unwrap();
        let _ = db
            .queue()
            .receive(QueueName::Deliveries, 10, NOW, LEASE)
            .await
            .unwrap();
        d.attempts = 1;
        d.status = DeliveryStatus::Retrying;
        let attempt = Attempt {
            id: AttemptId::new(),
            delivery_id: d.id,
            tenant_id: d.tenant_id,
            subscription_id: d.subscription_id,
            number: 1,
            started_at: Timestamp::now(),
            status_code: Some(500),
            latency_ms: 3,
            response_excerpt: None,
            error: Some("HTTP 500".into()),
            succeeded: false,
        };
        let retry = OutgoingMessage {
            message: QueueMessage::Delivery(DeliveryMessage::attempt_of(&d, 2)),
            delay: Duration::from_millis(100),
        };
        outbox
            .record_attempt_and_send(&attempt, &d, vec![retry])
            .await
            .unwrap();
        // A later attempt of a delivery never stored: only its record, nothing sent.
        let ghost = delivery(&e);
        assert_eq!(
            outbox
                .record_attempt_and_send(
                    &Attempt {
                        delivery_id: ghost.id,
                        number: 2,
                        ..attempt
                    },
                    &ghost,
                    vec![first_try(&ghost)]
                )
                .await
                .unwrap(),
            Recorded::Superseded
        );
    }
    let db = EmbeddedDb::open(dir.path()).unwrap();
    assert_eq!(
        db.store()
            .list_attempts(&d.tenant_id, &d.id)
            .await
            .unwrap()
            .len(),
        1
    );
    // The first-try message (leased, never acked) is visible at once, the retry only after its
    // 100 ms delay: keep receiving until both are in, within a generous bound.
    let queue = db.queue();
    let mut got = Vec::new();
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while got.len() < 2 && std::time::Instant::now() < until {
        got.extend(
            queue
                .receive(QueueName::Deliveries, 10, Duration::from_secs(1), LEASE)
                .await
                .unwrap(),
        );
    }
    let attempts: Vec<u32> = got
        .iter()
        .map(|m| match &m.message {
            QueueMessage::Delivery(x) => x.attempt,
            _ => 0,
        })
        .collect();
    // The first-try message was leased but never acked, so it comes back too; the retry is there.
    assert!(attempts.contains(&2), "{attempts:?}");
    assert!(!got
        .iter()
        .any(|m| matches!(&m.message, QueueMessage::Delivery(x) if x.delivery_id() != d.id)));
}
