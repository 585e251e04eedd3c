//! "Save and test" and "Send example": one event to one subscription now — a `webhook.test`
//! event, or a named type's example — tried once through the delivery path's
//! [`attempt_once`](super::delivery::attempt_once), recorded like any delivery (so it shows in the
//! delivery log), never retried, and reported.

use herald_core::delivery::Transition;
use herald_core::health::HealthChange;
use herald_core::operational::DisableReason;
use herald_core::retry::RetryPolicy;
use herald_core::{Delivery, DeliveryId, Event, EventId, EventType, Subscription};
use rand::thread_rng;
use serde_json::json;

use super::delivery::attempt_once;
use super::lifecycle;
use super::WorkerError;
use crate::state::AppState;

/// The answer of "save and test".
#[derive(Debug, Clone)]
pub struct TestReport {
    pub delivered: bool,
    pub status: Option<u16>,
    pub latency_ms: u64,
    pub response_excerpt: Option<String>,
    pub error: Option<String>,
    pub event_id: EventId,
    pub delivery_id: DeliveryId,
}

/// Sends a `webhook.test` event to one subscription now and waits for the answer. The event and the
/// attempt are recorded like any other, so the test shows in the delivery log. No retries follow.
/// The subscription's payload filter does not apply: this tests the endpoint, not the filter.
pub async fn send_test(state: &AppState, sub: &Subscription) -> Result<TestReport, WorkerError> {
    let data = json!({
        "title": "Test event from Herald",
        "message": "If you can read this, your webhook works.",
        "subscription_id": sub.id,
    });
    send_sample(state, sub, EventType::webhook_test(), data).await
}

/// "Send example": [`send_test`] with an event of `event_type` carrying `data` (the type's
/// example), recorded and tried once the same way. It goes to this subscription whatever its
/// patterns: the user asked for it by name.
pub async fn send_sample(
    state: &AppState,
    sub: &Subscription,
    event_type: EventType,
    data: serde_json::Value,
) -> Result<TestReport, WorkerError> {
    let now = state.clock.now();
    let event = Event {
        id: EventId::new(),
        tenant_id: sub.tenant_id,
        event_type,
        timestamp: now,
        data,
        subscriptions: vec![sub.id],
    };
    state
        .writes
        .insert_event_and_send(&event, None, Vec::new())
        .await?;
    // Stored by its first attempt, below.
    let mut delivery = Delivery::pending(&event, sub.id, now);
    let (attempt, outcome) = attempt_once(state, sub, &event, delivery.id, 1).await?;
    // A test is tried once, never retried.
    let transition = delivery.after_attempt(
        &attempt,
        &outcome,
        &RetryPolicy::no_retries(),
        state.clock.now(),
        &mut thread_rng(),
    );
    state
        .writes
        .record_attempt_and_send(&attempt, &delivery, Vec::new())
        .await?;
    if transition == Transition::Gone {
        let mut health = sub.health.clone();
        health.apply(HealthChange::Failed {
            at: state.clock.now(),
        });
        lifecycle::disable(state, sub, &health, DisableReason::Gone, state.clock.now()).await?;
    }
    Ok(TestReport {
        delivered: attempt.succeeded,
        status: attempt.status_code,
        latency_ms: attempt.latency_ms,
        response_excerpt: attempt.response_excerpt,
        error: attempt.error,
        event_id: event.id,
        delivery_id: delivery.id,
    })
}
