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
        // Durability, not the breaker: every delivery fails until the restart, which would
        // otherwise pause them for its cool-down.
        ("HERALD_BREAKER_THRESHOLD", "0"),
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

/// Defect: a committed retry was sent twice after a crash. The state a SIGKILL leaves after attempt 1
/// failed and was recorded together with its retry message, but before the attempt-1 message's
/// acknowledgement reached the disk (acks are written lazily): the queue holds both messages. After
/// the restart the attempt-1 message comes back (receive count 2); it must not queue attempt 2 again.
/// Every POST must be in the attempt log, and the committed retry goes out once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_committed_retry_goes_out_once_after_a_crash() {
    use herald_core::ports::{OutgoingMessage, Queue, QueueMessage, UnitOfWork};
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

    // ... the crash state: attempt 1 recorded as failed, its retry (due now) committed with it, and
    // the attempt-1 message still on the queue.
    let sub_id: SubscriptionId = sub["id"].as_str().unwrap().parse().unwrap();
    let now = jiff::Timestamp::now();
    let event = Event {
        id: EventId::new(),
        tenant_id,
        event_type: EventType::parse("document.created").unwrap(),
        timestamp: now,
        data: json!({"id": "doc_1"}),
        subscriptions: vec![sub_id],
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
    let message = |delivery: &Delivery, attempt| OutgoingMessage {
        message: QueueMessage::Delivery(DeliveryMessage::attempt_of(delivery, attempt)),
        delay: std::time::Duration::ZERO,
    };
    {
        let db = herald_embedded::EmbeddedDb::open(data.path()).expect("the data folder opens");
        let writes = db.outbox();
        writes
            .insert_event_and_send(&event, None, Vec::new())
            .await
            .unwrap();
        // Fan-out queued the first attempt.
        db.queue().send(vec![message(&delivery, 1)]).await.unwrap();
        delivery.status = DeliveryStatus::Retrying;
        delivery.attempts = 1;
        delivery.last_status_code = Some(503);
        delivery.last_error = attempt.error.clone();
        delivery.next_attempt_at = Some(now);
        writes
            .record_attempt_and_send(&attempt, &delivery, vec![message(&delivery, 2)])
            .await
            .unwrap();
    }

    // Act: Herald starts again on that folder.
    let app = crate::helpers::spawn_app_in(data, |_| {}).await;

    // Assert: the retry is made once, and it is the one in the log.
    let request = receiver.wait_for(1, WAIT).await.remove(0);
    assert_eq!(request.webhook_id(), event.id.to_string());
    let done = app
        .wait_for_status(&sub_id.to_string(), &event.id.to_string(), "succeeded")
        .await;
    assert_eq!(done["attempts"], 2);
    // Give a duplicate every chance to show up before counting.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(
        receiver.requests().len(),
        1,
        "the committed retry was sent more than once"
    );
}
