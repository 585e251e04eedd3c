//! Delivery: one attempt of one delivery — render, sign, POST, record — carrying out what the
//! core's rules decide ([`Delivery::step`] for the message, [`Delivery::after_attempt`] for the
//! outcome). Also "save and test", which makes one attempt right away and reports it.
//!
//! The attempt, the delivery's new state and the retry message go through the unit of work in one
//! step, recorded only if no other worker recorded that attempt number first. A message that comes
//! back after its attempt was recorded (receive count > 1) redrives the retry it names, which only
//! a write-then-send adapter acts on.

use std::time::Instant;

use bytes::Bytes;
use herald_core::delivery::{Step, Transition};
use herald_core::outcome::{classify_error, classify_status, AttemptOutcome};
use herald_core::ports::{OutboundRequest, Recorded, StoreError};
use herald_core::render::render;
use herald_core::retry::RetryPolicy;
use herald_core::signing::signature_header;
use herald_core::{
    Attempt, AttemptId, Delivery, DeliveryId, DeliveryMessage, Event, EventId, EventType,
    Subscription, TargetUrl,
};
use jiff::Timestamp;
use rand::thread_rng;
use serde_json::json;

use super::WorkerError;
use crate::metrics::Metrics;
use crate::state::AppState;

/// Longest response excerpt kept per attempt.
pub const MAX_EXCERPT: usize = 4096;

/// Handles one delivery message. `Ok` means the message can be acknowledged; `Err` means it must
/// come back later (the store or queue failed).
pub async fn handle(
    state: &AppState,
    msg: &DeliveryMessage,
    receive_count: u32,
) -> Result<(), WorkerError> {
    let now = state.clock.now();
    let max_delay = state.queue.max_delay();
    if let Some(wait) = msg.remaining_wait(now) {
        // A long wait, chained through the queue's maximum delay.
        let again = msg.clone().delayed(wait, max_delay, now);
        state.queue.send(vec![again]).await?;
        return Ok(());
    }
    let Some(mut delivery) = state
        .store
        .get_delivery(&msg.tenant_id, &msg.delivery_id)
        .await?
    else {
        tracing::warn!(delivery = %msg.delivery_id, "delivery no longer exists; dropping message");
        return Ok(());
    };
    if let Step::Done { follow_up } = delivery.step(msg) {
        if let (Some(next), true) = (follow_up, receive_count > 1) {
            let wait = next.remaining_wait(now).unwrap_or_default();
            state
                .writes
                .redrive(vec![next.delayed(wait, max_delay, now)])
                .await?;
        }
        return Ok(());
    }

    let Some(mut sub) = state
        .store
        .get_subscription(&delivery.tenant_id, &delivery.subscription_id)
        .await?
    else {
        return give_up(state, &mut delivery, "the subscription was deleted", now).await;
    };
    if !sub.enabled {
        return give_up(state, &mut delivery, "the subscription is disabled", now).await;
    }
    if let Some(rate) = sub.rate_limit_per_sec {
        if let Err(wait) = state.rate_limiter.try_acquire(sub.id, rate) {
            let again = msg.clone().delayed(wait, max_delay, now);
            state.queue.send(vec![again]).await?;
            return Ok(());
        }
    }
    let Some(event) = state
        .store
        .get_event(&delivery.tenant_id, &delivery.event_id)
        .await?
    else {
        return give_up(state, &mut delivery, "the event no longer exists", now).await;
    };

    let (attempt, outcome) =
        attempt_once(state, &sub, &event, delivery.id, delivery.attempts + 1).await?;
    let finished_at = state.clock.now();
    let transition = delivery.after_attempt(
        &attempt,
        &outcome,
        &state.settings.retry,
        finished_at,
        &mut thread_rng(),
    );
    let messages = match &transition {
        Transition::Retry { message, delay } => {
            vec![message.clone().delayed(*delay, max_delay, finished_at)]
        }
        _ => Vec::new(),
    };
    let recorded = state
        .writes
        .record_attempt_and_send(&attempt, &delivery, messages)
        .await?;
    if recorded == Recorded::Superseded {
        // A redelivered message raced the original: the request is in the log, the other
        // worker's outcome stands.
        tracing::warn!(tenant = %delivery.tenant_id, delivery = %delivery.id, attempt = attempt.number, "attempt number already recorded by another worker; outcome not applied");
        return Ok(());
    }
    match transition {
        Transition::Succeeded => Metrics::add(&state.metrics.deliveries_succeeded, 1),
        Transition::Retry { .. } => Metrics::add(&state.metrics.deliveries_retried, 1),
        Transition::Failed { exhausted } => {
            Metrics::add(&state.metrics.deliveries_failed, 1);
            if exhausted {
                tracing::warn!(target: "herald::operator", tenant = %delivery.tenant_id, subscription = %delivery.subscription_id, delivery = %delivery.id, attempts = delivery.attempts, "delivery exhausted its retry schedule");
            }
        }
        Transition::Gone => {
            Metrics::add(&state.metrics.deliveries_failed, 1);
            disable(state, &mut sub, "the endpoint answered 410 Gone").await?;
        }
    }
    Ok(())
}

/// Fails a delivery without an attempt.
async fn give_up(
    state: &AppState,
    delivery: &mut Delivery,
    reason: &str,
    now: Timestamp,
) -> Result<(), WorkerError> {
    delivery.give_up(reason, now);
    tracing::info!(tenant = %delivery.tenant_id, subscription = %delivery.subscription_id, delivery = %delivery.id, reason, "delivery not attempted");
    Metrics::add(&state.metrics.deliveries_failed, 1);
    match state
        .writes
        .update_delivery_and_send(delivery, Vec::new())
        .await
    {
        Ok(()) | Err(StoreError::NotFound) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Disables a subscription and emits the operator event.
async fn disable(
    state: &AppState,
    sub: &mut Subscription,
    reason: &str,
) -> Result<(), WorkerError> {
    if !sub.enabled {
        return Ok(());
    }
    sub.enabled = false;
    sub.disabled_reason = Some(reason.to_owned());
    sub.updated_at = state.clock.now();
    match state.store.update_subscription(sub).await {
        Ok(()) | Err(StoreError::NotFound) => {}
        Err(e) => return Err(e.into()),
    }
    Metrics::add(&state.metrics.subscriptions_disabled, 1);
    tracing::warn!(target: "herald::operator", tenant = %sub.tenant_id, subscription = %sub.id, reason, "subscription disabled");
    Ok(())
}

/// Renders, signs and sends one attempt. Transport failures are outcomes, not errors.
pub async fn attempt_once(
    state: &AppState,
    sub: &Subscription,
    event: &Event,
    delivery_id: DeliveryId,
    number: u32,
) -> Result<(Attempt, AttemptOutcome), WorkerError> {
    let started_at = state.clock.now();
    let rendered = render(sub, event);
    let mut attempt = Attempt {
        id: AttemptId::new(),
        delivery_id,
        tenant_id: sub.tenant_id,
        subscription_id: sub.id,
        number,
        started_at,
        status_code: None,
        latency_ms: 0,
        response_excerpt: None,
        error: None,
        succeeded: false,
    };
    // The same subscription and event would fail to render every time: a permanent failure.
    let rendered = match rendered {
        Ok(r) => r,
        Err(e) => {
            attempt.error = Some(format!("could not render the payload: {e}"));
            log_attempt(sub, event, &attempt, "failed");
            return Ok((attempt, AttemptOutcome::Permanent));
        }
    };
    // The URL was checked when saved; policies can tighten since, so check again.
    if let Err(e) = TargetUrl::parse(&rendered.url, state.settings.address_policy) {
        attempt.error = Some(format!("refused: {e}"));
        log_attempt(sub, event, &attempt, "refused");
        return Ok((attempt, AttemptOutcome::Permanent));
    }

    let timestamp = started_at.as_second();
    let msg_id = event.id.to_string();
    let signature = signature_header(
        sub.signing_secrets(started_at),
        &msg_id,
        timestamp,
        &rendered.body,
    );
    let mut headers: Vec<(String, String)> = Vec::with_capacity(8 + sub.headers.len());
    headers.push(("content-type".into(), "application/json".into()));
    headers.push(("webhook-id".into(), msg_id));
    headers.push(("webhook-timestamp".into(), timestamp.to_string()));
    headers.push(("webhook-signature".into(), signature));
    let renders_auth = rendered
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("authorization"));
    if let (Some(token), false) = (&sub.auth_token, renders_auth) {
        headers.push(("authorization".into(), format!("Bearer {token}")));
    }
    headers.extend(sub.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
    headers.extend(rendered.headers);

    let request = OutboundRequest {
        url: rendered.url,
        headers,
        body: Bytes::from(rendered.body),
    };
    let clock = Instant::now();
    let result = state.sender.send(request).await;
    attempt.latency_ms = u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
    Metrics::add(&state.metrics.attempts, 1);
    Metrics::add(&state.metrics.attempt_latency_ms_total, attempt.latency_ms);

    let outcome = match result {
        Ok(response) => {
            attempt.status_code = Some(response.status);
            let excerpt = &response.body_excerpt[..response.body_excerpt.len().min(MAX_EXCERPT)];
            attempt.response_excerpt = Some(String::from_utf8_lossy(excerpt).into_owned());
            let outcome = classify_status(response.status, response.retry_after);
            if outcome != AttemptOutcome::Succeeded {
                attempt.error = Some(describe_status(response.status));
            }
            outcome
        }
        Err(e) => {
            attempt.error = Some(e.to_string());
            classify_error(&e)
        }
    };
    attempt.succeeded = outcome == AttemptOutcome::Succeeded;
    log_attempt(sub, event, &attempt, outcome_name(&outcome));
    Ok((attempt, outcome))
}

fn describe_status(status: u16) -> String {
    match status {
        300..=399 => format!(
            "HTTP {status}: redirects are not followed; point the subscription at the final URL"
        ),
        410 => "HTTP 410 Gone: the subscription was disabled".to_owned(),
        _ => format!("HTTP {status}"),
    }
}

fn outcome_name(outcome: &AttemptOutcome) -> &'static str {
    match outcome {
        AttemptOutcome::Succeeded => "succeeded",
        AttemptOutcome::Retryable { .. } => "retryable",
        AttemptOutcome::Permanent => "failed",
        AttemptOutcome::Gone => "gone",
    }
}

fn log_attempt(sub: &Subscription, event: &Event, attempt: &Attempt, outcome: &str) {
    tracing::info!(
        tenant = %sub.tenant_id,
        subscription = %sub.id,
        event = %event.id,
        delivery = %attempt.delivery_id,
        attempt = attempt.number,
        status = attempt.status_code,
        latency_ms = attempt.latency_ms,
        outcome,
        error = attempt.error.as_deref(),
        "delivery attempt"
    );
}

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
pub async fn send_test(state: &AppState, sub: &Subscription) -> Result<TestReport, WorkerError> {
    let now = state.clock.now();
    let event = Event {
        id: EventId::new(),
        tenant_id: sub.tenant_id,
        event_type: EventType::webhook_test(),
        timestamp: now,
        data: json!({
            "title": "Test event from Herald",
            "message": "If you can read this, your webhook works.",
            "subscription_id": sub.id,
        }),
    };
    state
        .writes
        .insert_event_and_send(&event, None, Vec::new())
        .await?;
    let mut delivery = Delivery::pending(&event, sub.id, now);
    state
        .writes
        .create_deliveries_and_send(vec![(delivery.clone(), None)])
        .await?;
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
        let mut sub = sub.clone();
        disable(state, &mut sub, "the endpoint answered 410 Gone").await?;
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
