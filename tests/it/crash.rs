//! Durability: the real `herald dev` binary is SIGKILLed between intake and delivery, restarted on
//! the same data folder, and every accepted event still reaches the subscriber.

use std::collections::BTreeSet;

use serde_json::json;

use crate::helpers::{Api, HeraldProcess, Received, Reply, TestReceiver, WAIT};

const API_KEY: &str = "hk_integration-test-crash-key-0123456789abcdef";
const EVENTS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn accepted_events_survive_a_sigkill_and_are_delivered_after_restart() {
    // Arrange: a receiver that is unavailable (503) while the first process runs, and a retry
    // schedule fast and long enough that nothing gives up before the restart.
    let dir = tempfile::tempdir().unwrap();
    let receiver = TestReceiver::start_with(Reply::status(503)).await;
    let schedule = vec!["200ms"; 100].join(",");
    let env = [
        ("HERALD_RETRY_SCHEDULE", schedule.as_str()),
        ("HERALD_ATTEMPT_TIMEOUT_MS", "2000"),
    ];
    let first = HeraldProcess::start(dir.path(), API_KEY, &env, "first-run").await;
    let api = Api::new(first.url.clone(), API_KEY.to_owned());
    api.subscribe(&receiver, &["*"]).await;

    // Act: 20 events accepted, then SIGKILL right away.
    let mut accepted = BTreeSet::new();
    for n in 0..EVENTS {
        let event = api
            .send_event(json!({"type": "document.created", "data": {"n": n}}))
            .await;
        accepted.insert(event["id"].as_str().unwrap().to_owned());
    }
    first.kill();

    // ... the receiver recovers and Herald starts again on the same data folder.
    receiver.set_default(Reply::ok());
    let second = HeraldProcess::start(dir.path(), API_KEY, &env, "second-run").await;
    let api_after = Api::new(second.url.clone(), API_KEY.to_owned());

    // Assert: every accepted event id arrives and is answered 200 (at least once).
    let delivered_ids = |requests: &[Received]| -> BTreeSet<String> {
        requests
            .iter()
            .filter(|r| r.answered == 200)
            .map(|r| r.webhook_id().to_owned())
            .collect()
    };
    let outcome = receiver
        .try_wait_until(WAIT, |requests| {
            delivered_ids(requests).is_superset(&accepted)
        })
        .await;
    let requests = match outcome {
        Ok(requests) => requests,
        Err(requests) => {
            // Say where each missing event is stuck, from the restarted process's own API.
            let delivered = delivered_ids(&requests);
            let mut stuck = Vec::new();
            for id in accepted.difference(&delivered) {
                stuck.push(api_after.get(&format!("/v1/events/{id}")).await.body);
            }
            let count = stuck.len();
            let stuck = serde_json::Value::from(stuck);
            panic!("{count} of {EVENTS} accepted events were never delivered after the restart: {stuck:#}");
        }
    };
    assert_eq!(accepted.len(), EVENTS);
    let unknown: Vec<_> = delivered_ids(&requests)
        .difference(&accepted)
        .cloned()
        .collect();
    assert!(
        unknown.is_empty(),
        "deliveries of events never accepted: {unknown:?}"
    );
}

/// The state a SIGKILL leaves when it lands inside `delivery::handle` after the failed attempt was
/// recorded (`Retrying`, attempt 1) and before the retry message was queued: the store has the
/// attempt, the queue still holds the un-acked message of attempt 1 and nothing else. The data
/// folder is written directly with the embedded adapters, then Herald starts on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retry_lost_between_recording_an_attempt_and_queueing_it_is_queued_at_restart() {
    use herald_core::ports::{OutgoingMessage, QueueMessage};
    use herald_core::{
        Attempt, AttemptId, Delivery, DeliveryMessage, DeliveryStatus, Event, EventId, EventType,
        SubscriptionId,
    };

    // Arrange: a subscription made through the API, then the app stops.
    let receiver = TestReceiver::start().await;
    let app = crate::helpers::spawn_app().await;
    let sub = app.subscribe(&receiver, &["*"]).await;
    let tenant_id = app.tenant_id();
    let data = app.stop().await;

    // ... the crash state: attempt 1 recorded as failed with a retry due now, its message un-acked.
    let sub_id: SubscriptionId = sub["id"].as_str().unwrap().parse().unwrap();
    let now = jiff::Timestamp::now();
    let event = Event {
        id: EventId::new(),
        tenant_id,
        event_type: EventType::parse("document.created").unwrap(),
        timestamp: now,
        data: json!({"id": "doc_1"}),
    };
    let mut delivery = Delivery::pending(&event, sub_id, now);
    let attempt = Attempt {
        id: AttemptId::new(),
        delivery_id: delivery.id,
        tenant_id,
        subscription_id: sub_id,
        number: 1,
        started_at: now,
        status_code: Some(503),
        latency_ms: 3,
        response_excerpt: Some("unavailable".into()),
        error: Some("HTTP 503".into()),
        succeeded: false,
    };
    {
        let db = herald_embedded::EmbeddedDb::open(data.path()).expect("the data folder opens");
        let (store, queue) = (db.store(), db.queue());
        use herald_core::ports::{Queue, Store};
        store.insert_event(&event, None).await.unwrap();
        store
            .create_deliveries(std::slice::from_ref(&delivery))
            .await
            .unwrap();
        delivery.status = DeliveryStatus::Retrying;
        delivery.attempts = 1;
        delivery.last_status_code = Some(503);
        delivery.last_error = attempt.error.clone();
        store.record_attempt(&attempt, &delivery).await.unwrap();
        let in_flight = DeliveryMessage {
            tenant_id,
            delivery_id: delivery.id,
            attempt: 1,
            not_before: None,
        };
        queue
            .send(vec![OutgoingMessage {
                message: QueueMessage::Delivery(in_flight),
                delay: std::time::Duration::ZERO,
            }])
            .await
            .unwrap();
    }

    // Act: Herald starts again on that folder.
    let app = crate::helpers::spawn_app_in(data, |_| {}).await;

    // Assert: the missing retry is made and the delivery succeeds.
    let request = receiver.wait_for(1, WAIT).await.remove(0);
    assert_eq!(request.webhook_id(), event.id.to_string());
    let done = app
        .wait_for_status(&sub_id.to_string(), &event.id.to_string(), "succeeded")
        .await;
    assert_eq!(done["attempts"], 2);
}
