//! Delivery: one attempt of one delivery — render, sign, POST, record — and what follows from its
//! outcome (success, a retry on the schedule, giving up, disabling the subscription on 410).
//! Also "save and test", which makes one attempt right away and reports it.
//!
//! Every attempt is recorded before the next one is queued. If the process dies between the two,
//! the message comes back (receive count > 1) and the missing retry is queued then.

use std::time::{Duration, Instant};

use bytes::Bytes;
use herald_core::outcome::{classify_error, classify_status, AttemptOutcome};
use herald_core::ports::{OutboundRequest, OutgoingMessage, QueueMessage, StoreError};
use herald_core::render::render;
use herald_core::retry::parse_retry_after;
use herald_core::signing::signature_header;
use herald_core::{
    Attempt, AttemptId, Delivery, DeliveryId, DeliveryMessage, DeliveryStatus, Event, EventId,
    EventType, Subscription, TargetUrl,
};
use jiff::{SignedDuration, Timestamp};
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
    if let Some(not_before) = msg.not_before {
        if not_before > now {
            // A long wait, chained through the queue's maximum delay.
            let remaining = not_before.duration_since(now).unsigned_abs();
            requeue_message(state, msg.clone(), remaining).await?;
            return Ok(());
        }
    }
    let Some(mut delivery) = state
        .store
        .get_delivery(&msg.tenant_id, &msg.delivery_id)
        .await?
    else {
        tracing::warn!(delivery = %msg.delivery_id, "delivery no longer exists; dropping message");
        return Ok(());
    };
    if msg.attempt <= delivery.attempts
        || matches!(
            delivery.status,
            DeliveryStatus::Succeeded | DeliveryStatus::Failed
        )
    {
        // Already made. If this message came back after a crash, the retry it should have queued
        // may be missing: queue it (duplicates are dropped here by attempt number).
        if receive_count > 1
            && delivery.status == DeliveryStatus::Retrying
            && delivery.attempts == msg.attempt
        {
            let wait = delivery
                .next_attempt_at
                .filter(|t| *t > now)
                .map(|t| t.duration_since(now).unsigned_abs())
                .unwrap_or_default();
            let next = DeliveryMessage {
                attempt: msg.attempt + 1,
                not_before: delivery.next_attempt_at,
                ..msg.clone()
            };
            requeue_message(state, next, wait).await?;
        }
        return Ok(());
    }

    let Some(mut sub) = state
        .store
        .get_subscription(&delivery.tenant_id, &delivery.subscription_id)
        .await?
    else {
        give_up(state, &mut delivery, "the subscription was deleted", now).await?;
        return Ok(());
    };
    if !sub.enabled {
        give_up(state, &mut delivery, "the subscription is disabled", now).await?;
        return Ok(());
    }
    if let Some(rate) = sub.rate_limit_per_sec {
        if let Err(wait) = state.rate_limiter.try_acquire(sub.id, rate) {
            requeue_message(state, msg.clone(), wait).await?;
            return Ok(());
        }
    }
    let Some(event) = state
        .store
        .get_event(&delivery.tenant_id, &delivery.event_id)
        .await?
    else {
        give_up(state, &mut delivery, "the event no longer exists", now).await?;
        return Ok(());
    };

    let (attempt, outcome) =
        attempt_once(state, &sub, &event, delivery.id, delivery.attempts + 1).await?;
    let finished_at = state.clock.now();
    delivery.attempts = attempt.number;
    delivery.last_status_code = attempt.status_code;
    delivery.last_error = attempt.error.clone();
    delivery.updated_at = finished_at;

    let mut retry: Option<(Duration, DeliveryMessage)> = None;
    match outcome {
        AttemptOutcome::Succeeded => {
            delivery.status = DeliveryStatus::Succeeded;
            delivery.next_attempt_at = None;
            Metrics::add(&state.metrics.deliveries_succeeded, 1);
        }
        AttemptOutcome::Permanent => {
            delivery.status = DeliveryStatus::Failed;
            delivery.next_attempt_at = None;
            Metrics::add(&state.metrics.deliveries_failed, 1);
        }
        AttemptOutcome::Gone => {
            delivery.status = DeliveryStatus::Failed;
            delivery.next_attempt_at = None;
            Metrics::add(&state.metrics.deliveries_failed, 1);
            disable(state, &mut sub, "the endpoint answered 410 Gone").await?;
        }
        AttemptOutcome::Retryable { retry_after } => {
            let tries_in_run = delivery.attempts.saturating_sub(delivery.run_started_at);
            let next_delay =
                state
                    .settings
                    .retry
                    .next_delay(tries_in_run, retry_after, &mut thread_rng());
            match next_delay {
                Some(delay) => {
                    let at = finished_at
                        .checked_add(SignedDuration::try_from(delay).unwrap_or(SignedDuration::MAX))
                        .unwrap_or(Timestamp::MAX);
                    delivery.status = DeliveryStatus::Retrying;
                    delivery.next_attempt_at = Some(at);
                    Metrics::add(&state.metrics.deliveries_retried, 1);
                    let next = DeliveryMessage {
                        tenant_id: delivery.tenant_id,
                        delivery_id: delivery.id,
                        attempt: delivery.attempts + 1,
                        not_before: Some(at),
                    };
                    retry = Some((delay, next));
                }
                None => {
                    delivery.status = DeliveryStatus::Failed;
                    delivery.next_attempt_at = None;
                    Metrics::add(&state.metrics.deliveries_failed, 1);
                    let reason = format!("{} attempts failed in a row", tries_in_run);
                    disable(state, &mut sub, &reason).await?;
                }
            }
        }
    }
    let retry = retry.map(|(delay, next)| delayed(state, next, delay));
    match &state.outbox {
        Some(outbox) => {
            outbox
                .record_attempt_and_send(&attempt, &delivery, retry.into_iter().collect())
                .await?
        }
        None => {
            state.store.record_attempt(&attempt, &delivery).await?;
            if let Some(message) = retry {
                state.queue.send(vec![message]).await?;
            }
        }
    }
    Ok(())
}

/// `msg` to be handed out after `delay`, chained through the queue's maximum delay (`not_before`
/// carries the real time when the wait is longer).
fn delayed(state: &AppState, mut msg: DeliveryMessage, delay: Duration) -> OutgoingMessage {
    let max = state.queue.max_delay();
    if delay <= max {
        msg.not_before = None;
    }
    OutgoingMessage {
        message: QueueMessage::Delivery(msg),
        delay: delay.min(max),
    }
}

/// Sends `msg` again after `delay`, chaining through the queue's maximum delay.
async fn requeue_message(
    state: &AppState,
    msg: DeliveryMessage,
    delay: Duration,
) -> Result<(), WorkerError> {
    state.queue.send(vec![delayed(state, msg, delay)]).await?;
    Ok(())
}

async fn give_up(
    state: &AppState,
    delivery: &mut Delivery,
    reason: &str,
    now: Timestamp,
) -> Result<(), WorkerError> {
    delivery.status = DeliveryStatus::Failed;
    delivery.last_error = Some(reason.to_owned());
    delivery.next_attempt_at = None;
    delivery.updated_at = now;
    tracing::info!(tenant = %delivery.tenant_id, subscription = %delivery.subscription_id, delivery = %delivery.id, reason, "delivery not attempted");
    Metrics::add(&state.metrics.deliveries_failed, 1);
    match state.store.update_delivery(delivery).await {
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
            let retry_after = response
                .retry_after
                .as_deref()
                .and_then(|v| parse_retry_after(v, state.clock.now()));
            let outcome = classify_status(response.status, retry_after);
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
        event_type: EventType::parse("webhook.test")
            .map_err(|e| WorkerError::Render(e.to_string()))?,
        timestamp: now,
        data: json!({
            "title": "Test event from Herald",
            "message": "If you can read this, your webhook works.",
            "subscription_id": sub.id,
        }),
    };
    state.store.insert_event(&event, None).await?;
    let mut delivery = Delivery::pending(&event, sub.id, now);
    state
        .store
        .create_deliveries(std::slice::from_ref(&delivery))
        .await?;
    let (attempt, outcome) = attempt_once(state, sub, &event, delivery.id, 1).await?;
    delivery.attempts = 1;
    delivery.status = if attempt.succeeded {
        DeliveryStatus::Succeeded
    } else {
        DeliveryStatus::Failed
    };
    delivery.last_status_code = attempt.status_code;
    delivery.last_error = attempt.error.clone();
    // A test is tried once, never retried.
    delivery.next_attempt_at = None;
    delivery.updated_at = state.clock.now();
    state.store.record_attempt(&attempt, &delivery).await?;
    if outcome == AttemptOutcome::Gone {
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
