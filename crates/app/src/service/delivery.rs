//! Delivery: one attempt of one delivery — render, sign, POST, record — carrying out what the
//! core's rules decide ([`Delivery::step`] for the message, [`Delivery::after_attempt`] for the
//! outcome). "Save and test" ([`super::test_send`]) makes one attempt right away through
//! [`attempt_once`].
//!
//! A message carries the delivery as it stood when it was sent and, when small, the event: a
//! message received for the first time is acted on without reading either back (the subscription
//! comes from the store, the event from the store only for a claim check). A message received again
//! (receive count > 1) is checked against the stored delivery first: if its attempt was recorded,
//! it is dropped and the retry that attempt queued is redriven, which only a write-then-send adapter
//! acts on. The attempt, the delivery's new state and the retry message go through the unit of work
//! in one step, applied only if no other worker recorded that attempt number first.
//!
//! Before the request, the subscription's breaker (`lifecycle::admit`) and, last, its sending rate
//! (a send slot from the shared `RateLimits`) may make the delivery wait: it is sent on, delayed,
//! and keeps its attempt number.

use std::time::{Duration, Instant};

use herald_core::delivery::{SlotWait, Step, Transition, SLOT_GRACE};
use herald_core::operational;
use herald_core::outcome::{classify_error, classify_status, AttemptOutcome};
use herald_core::ports::{OutgoingMessage, QueueMessage, Recorded, StoreError};
use herald_core::rate;
use herald_core::{
    Attempt, AttemptId, Delivery, DeliveryId, DeliveryMessage, Event, Platform, Subscription,
    TargetUrl,
};
use jiff::Timestamp;
use rand::thread_rng;

use super::intake;
use super::lifecycle::{self, Admission};
use super::outbound::build_request;
use super::WorkerError;
use crate::metrics::{DeliveryOutcome, Metrics, PlatformCount};
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
    if let SlotWait::Resend(again) = msg.slot_wait(now, max_delay) {
        // Back too early for its send slot: on to just before it.
        state.queue.send(vec![*again]).await?;
        return Ok(());
    }
    let mut delivery = msg.delivery.clone();
    if receive_count > 1 {
        // Back again: its attempt may have been recorded (and its retry queued) already.
        if let Some(stored) = state
            .store
            .get_delivery(&msg.tenant_id(), &msg.delivery_id())
            .await?
        {
            if let Step::Done { follow_up } = stored.step(msg) {
                if let Some(next) = follow_up {
                    let wait = next.remaining_wait(now).unwrap_or_default();
                    let next = DeliveryMessage {
                        event: msg.event.clone(),
                        ..*next
                    };
                    state
                        .writes
                        .redrive(vec![next.delayed(wait, max_delay, now)])
                        .await?;
                }
                return Ok(());
            }
            delivery = stored;
        }
    }

    let mut sub = state
        .directory
        .get_subscription(&delivery.tenant_id, &delivery.subscription_id)
        .await?;
    if sub.as_ref().is_none_or(|s| !s.enabled) {
        // Giving up is final: ask the store, not the directory's copy (up to its TTL old), so a
        // subscription enabled again a moment ago is delivered to. Paid only on this path.
        sub = state
            .store
            .get_subscription(&delivery.tenant_id, &delivery.subscription_id)
            .await?;
    }
    let Some(sub) = sub else {
        return give_up(
            state,
            &mut delivery,
            None,
            "the subscription was deleted",
            now,
        )
        .await;
    };
    if !sub.enabled {
        let platform = Some(sub.platform.platform());
        return give_up(
            state,
            &mut delivery,
            platform,
            "the subscription is disabled",
            now,
        )
        .await;
    }
    if let Admission::Wait(wait) = lifecycle::admit(state, &sub, now).await? {
        // The breaker is open: the delivery waits, its schedule untouched (and any slot it held
        // is long gone by then).
        let again = DeliveryMessage {
            slot: None,
            ..msg.clone()
        }
        .delayed(wait, max_delay, now);
        state.queue.send(vec![again]).await?;
        return Ok(());
    }
    let event = match &msg.event {
        Some(event) => event.clone(),
        None => match state
            .store
            .get_event(&delivery.tenant_id, &delivery.event_id)
            .await?
        {
            Some(event) => event,
            None => {
                let platform = Some(sub.platform.platform());
                let reason = "the event no longer exists";
                return give_up(state, &mut delivery, platform, reason, now).await;
            }
        },
    };
    // The sending rate, last before the request, so nothing slow comes between slot and send.
    if let Some(rate) = sub.send_rate() {
        if let Some(again) = meet_slot(state, &sub, msg, rate).await? {
            state.metrics.platform_count(
                sub.platform.platform(),
                PlatformCount::DeliveriesRateLimited,
            );
            state.queue.send(vec![again]).await?;
            return Ok(());
        }
    }

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
    if transition == (Transition::Failed { exhausted: true }) {
        // Emitted before the record: a crash between the two repeats the attempt, and the
        // notice, keyed by the delivery, is stored once.
        if let Some(notice) = operational::exhausted(&sub, &delivery, &event.event_type) {
            intake::emit(state, sub.tenant_id, notice).await?;
        }
    }
    let messages = match &transition {
        // The retry carries the event as this message did.
        Transition::Retry { message, delay } => vec![DeliveryMessage {
            event: msg.event.clone(),
            ..(**message).clone()
        }
        .delayed(*delay, max_delay, finished_at)],
        _ => Vec::new(),
    };
    let recorded = state
        .writes
        .record_attempt_and_send(&attempt, &delivery, messages)
        .await?;
    state.stats.record_attempt(&attempt, &transition, recorded);
    if recorded == Recorded::Superseded {
        // A redelivered message raced the original: the request is in the log, the other
        // worker's outcome stands.
        tracing::warn!(tenant = %delivery.tenant_id, delivery = %delivery.id, attempt = attempt.number, "attempt number already recorded by another worker; outcome not applied");
        return Ok(());
    }
    let counted = match transition {
        Transition::Succeeded => DeliveryOutcome::Succeeded,
        Transition::Retry { .. } => DeliveryOutcome::Retried,
        Transition::Failed { exhausted } => {
            if exhausted {
                tracing::warn!(target: "herald::operator", tenant = %delivery.tenant_id, subscription = %delivery.subscription_id, delivery = %delivery.id, attempts = delivery.attempts, "delivery exhausted its retry schedule");
            }
            DeliveryOutcome::Failed
        }
        Transition::Gone => DeliveryOutcome::Failed,
    };
    // Accepted → delivered: the event id's time is when intake accepted it.
    let lag_ms = (counted == DeliveryOutcome::Succeeded).then(|| {
        u64::try_from(finished_at.as_millisecond())
            .unwrap_or(0)
            .saturating_sub(event.id.timestamp_ms())
    });
    state.metrics.delivery(
        Some(sub.platform.platform()),
        counted,
        Some(attempt.latency_ms),
        lag_ms,
        (&delivery.tenant_id, &delivery.subscription_id),
    );
    // The subscription's health: after the record, so a crash between the two loses at most
    // this one outcome from the count, never an attempt.
    lifecycle::after_request(state, &sub, &outcome, attempt.error.as_deref(), finished_at).await
}

/// Meets `msg`'s send slot under `rate` (over the rate, a delivery waits for its slot: not
/// dropped, not a failed attempt): the one it holds, or a new reservation. Answers the message to
/// send on when the slot is seconds away; waits here for one within
/// [`SLOT_SLEEP`](herald_core::delivery::SLOT_SLEEP). A slot already past (a slow store, a late
/// message, a late wake-up) is let go and another taken, so that a late send never crowds the
/// slots after it.
async fn meet_slot(
    state: &AppState,
    sub: &Subscription,
    msg: &DeliveryMessage,
    rate: u32,
) -> Result<Option<OutgoingMessage>, WorkerError> {
    const TRIES: usize = 3;
    let max_delay = state.queue.max_delay();
    let mut held = msg.slot;
    for _ in 0..TRIES {
        let slot = match held.take() {
            Some(slot) => slot,
            None => {
                state
                    .rate_limits
                    .reserve(&sub.tenant_id, &sub.id, rate, state.clock.now())
                    .await?
            }
        };
        // Measured after the reservation, which may have waited its turn.
        match msg.clone().at_slot(slot, state.clock.now(), max_delay) {
            SlotWait::Due => return Ok(None),
            SlotWait::Missed => {}
            SlotWait::Sleep(wait) => {
                tokio::time::sleep(wait).await;
                // A busy machine may wake late; a late send would crowd the next slots.
                if rate::until(state.clock.now(), slot) <= SLOT_GRACE {
                    return Ok(None);
                }
            }
            SlotWait::Resend(again) => return Ok(Some(*again)),
        }
    }
    // Never a late send: back to the queue for a fresh slot in a moment.
    tracing::warn!(tenant = %sub.tenant_id, subscription = %sub.id, "every send slot had passed by the time it could be used; the delivery waits for a new one");
    let again = DeliveryMessage {
        slot: None,
        not_before: None,
        ..msg.clone()
    };
    Ok(Some(OutgoingMessage {
        message: QueueMessage::Delivery(again),
        delay: Duration::from_secs(1),
    }))
}

/// Fails a delivery without an attempt (`platform`: its subscription's, if it still exists).
async fn give_up(
    state: &AppState,
    delivery: &mut Delivery,
    platform: Option<Platform>,
    reason: &str,
    now: Timestamp,
) -> Result<(), WorkerError> {
    delivery.give_up(reason, now);
    tracing::info!(tenant = %delivery.tenant_id, subscription = %delivery.subscription_id, delivery = %delivery.id, reason, "delivery not attempted");
    let ids = (&delivery.tenant_id, &delivery.subscription_id);
    state
        .metrics
        .delivery(platform, DeliveryOutcome::Failed, None, None, ids);
    match state
        .writes
        .update_delivery_and_send(delivery, Vec::new())
        .await
    {
        Ok(()) | Err(StoreError::NotFound) => {
            state.stats.record_given_up(delivery, now);
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
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
    let built = build_request(sub, event, started_at);
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
    let request = match built {
        Ok(built) => {
            if let Some(error) = &built.template_error {
                tracing::warn!(
                    tenant = %sub.tenant_id,
                    subscription = %sub.id,
                    event = %event.id,
                    error = %error,
                    "the subscription's template failed on this event; sending Herald's default message"
                );
            }
            built.request
        }
        Err(e) => {
            attempt.error = Some(format!("could not render the payload: {e}"));
            log_attempt(sub, event, &attempt, "failed");
            return Ok((attempt, AttemptOutcome::Permanent));
        }
    };
    // The URL was checked when saved; policies can tighten since, so check again.
    if let Err(e) = TargetUrl::parse(&request.url, state.settings.address_policy) {
        attempt.error = Some(format!("refused: {e}"));
        log_attempt(sub, event, &attempt, "refused");
        return Ok((attempt, AttemptOutcome::Permanent));
    }

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
        attempt_id = %attempt.id,
        status = attempt.status_code,
        latency_ms = attempt.latency_ms,
        outcome,
        error = attempt.error.as_deref(),
        "delivery attempt"
    );
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use herald_contract::memory::Reply;
    use herald_core::ports::{Clock, QueueName, SendError};
    use herald_core::DeliveryStatus;
    use jiff::SignedDuration;

    use super::*;
    use crate::service::testing::Harness;

    fn at(h: &Harness, secs: i64) -> Timestamp {
        h.clock
            .now()
            .checked_add(SignedDuration::from_secs(secs))
            .unwrap()
    }

    #[tokio::test]
    async fn a_success_is_recorded_and_nothing_follows() {
        let h = Harness::new([]);
        let (_, first) = h.one_delivery().await;
        handle(&h.state, &first, 1).await.unwrap();
        let d = h.delivery(&first).await;
        assert_eq!((d.status, d.attempts), (DeliveryStatus::Succeeded, 1));
        assert_eq!(h.sender.requests().len(), 1);
        assert!(h.take_deliveries().is_empty());
        let log = h
            .state
            .store
            .list_attempts(&d.tenant_id, &d.id)
            .await
            .unwrap();
        assert_eq!(log.len(), 1);
        assert!(log[0].succeeded);
    }

    #[tokio::test]
    async fn a_500_schedules_attempt_two_at_the_policys_time() {
        let h = Harness::new([Reply::Status(500)]);
        let (_, first) = h.one_delivery().await;
        handle(&h.state, &first, 1).await.unwrap();

        let d = h.delivery(&first).await;
        assert_eq!((d.status, d.attempts), (DeliveryStatus::Retrying, 1));
        assert_eq!(d.next_attempt_at, Some(at(&h, 5)));
        assert_eq!(d.last_status_code, Some(500));
        let queued = h.take_deliveries();
        assert_eq!(queued.len(), 1);
        let (next, delay) = &queued[0];
        assert_eq!((next.attempt, *delay), (2, Duration::from_secs(5)));

        // At its time, attempt 2 succeeds.
        h.clock.advance(Duration::from_secs(5));
        handle(&h.state, next, 1).await.unwrap();
        let d = h.delivery(&first).await;
        assert_eq!((d.status, d.attempts), (DeliveryStatus::Succeeded, 2));
        assert_eq!(h.sender.requests().len(), 2);
    }

    #[tokio::test]
    async fn a_4xx_is_retried_and_only_410_is_final() {
        let h = Harness::new([Reply::Status(404)]);
        let (sub, first) = h.one_delivery().await;
        handle(&h.state, &first, 1).await.unwrap();
        assert_eq!(h.delivery(&first).await.status, DeliveryStatus::Retrying);
        let (next, _) = h.take_deliveries().remove(0);
        assert_eq!(next.attempt, 2);
        let sub = h.subscription(&sub).await;
        assert!(sub.enabled);
    }

    #[tokio::test]
    async fn exhaustion_fails_the_delivery_and_leaves_the_subscription_enabled() {
        let h = Harness::with_schedule(&[5], [Reply::Status(500), Reply::Status(503)]);
        let (sub, first) = h.one_delivery().await;
        handle(&h.state, &first, 1).await.unwrap();
        let (next, _) = h.take_deliveries().remove(0);
        h.clock.advance(Duration::from_secs(5));
        handle(&h.state, &next, 1).await.unwrap();

        let d = h.delivery(&first).await;
        assert_eq!((d.status, d.attempts), (DeliveryStatus::Failed, 2));
        assert_eq!(d.next_attempt_at, None);
        assert!(h.take_deliveries().is_empty());
        let sub = h.subscription(&sub).await;
        assert!(
            sub.enabled,
            "one bad delivery does not disable its subscription"
        );
    }

    #[tokio::test]
    async fn a_410_fails_the_delivery_and_disables_the_subscription() {
        let h = Harness::new([Reply::Status(410)]);
        let (sub, first) = h.one_delivery().await;
        handle(&h.state, &first, 1).await.unwrap();
        assert_eq!(h.delivery(&first).await.status, DeliveryStatus::Failed);
        assert!(h.take_deliveries().is_empty());
        let sub = h.subscription(&sub).await;
        assert!(!sub.enabled);
        assert!(sub.disabled_reason.is_some_and(|r| r.contains("410")));
    }

    #[tokio::test]
    async fn a_410_disables_the_stored_subscription_keeping_a_change_the_cache_has_not_seen() {
        let h = Harness::new([Reply::Status(410)]).with_cache_ttl(Duration::from_secs(60));
        let (sub, first) = h.one_delivery().await;
        // The directory holds the subscription; another process renames it meanwhile.
        h.state
            .directory
            .get_subscription(&sub.tenant_id, &sub.id)
            .await
            .unwrap();
        let mut renamed = h.subscription(&sub).await;
        renamed.name = Some("renamed elsewhere".into());
        h.state.store.update_subscription(&renamed).await.unwrap();

        handle(&h.state, &first, 1).await.unwrap();

        let stored = h.subscription(&sub).await;
        assert!(!stored.enabled);
        assert_eq!(stored.name.as_deref(), Some("renamed elsewhere"));
    }

    #[tokio::test]
    async fn a_redelivered_message_sends_nothing_again_and_a_duplicate_changes_nothing() {
        let h = Harness::new([Reply::Status(500), Reply::Status(200)]);
        let (_, first) = h.one_delivery().await;
        handle(&h.state, &first, 1).await.unwrap();
        assert_eq!(h.take_deliveries().len(), 1);
        // Back after its attempt was recorded (a crash before the ack): checked against the
        // store, nothing sent (its retry was committed with the attempt, so nothing is missing).
        handle(&h.state, &first, 2).await.unwrap();
        assert_eq!(h.sender.requests().len(), 1);
        assert!(h.take_deliveries().is_empty());
        // A duplicate received for the first time is trusted: the request may go out again (same
        // webhook-id), and its record is kept, but the first outcome stands.
        handle(&h.state, &first, 1).await.unwrap();
        assert_eq!(h.sender.requests().len(), 2);
        assert!(h.take_deliveries().is_empty());
        let d = h.delivery(&first).await;
        assert_eq!((d.attempts, d.status), (1, DeliveryStatus::Retrying));
        let log = h
            .state
            .store
            .list_attempts(&d.tenant_id, &d.id)
            .await
            .unwrap();
        assert_eq!(log.len(), 2, "both requests are in the log");
    }

    #[tokio::test]
    async fn a_retry_after_beyond_the_queues_maximum_delay_is_chained() {
        let h = Harness::with_schedule(&[5, 5], [Reply::StatusRetryAfter(503, "3600")]);
        let (_, first) = h.one_delivery().await;
        handle(&h.state, &first, 1).await.unwrap();
        assert_eq!(h.delivery(&first).await.next_attempt_at, Some(at(&h, 3600)));
        let (next, delay) = h.take_deliveries().remove(0);
        assert_eq!(delay, h.state.queue.max_delay());
        assert_eq!(next.not_before, Some(at(&h, 3600)));

        // Too early: sent on for the rest of the wait, no request.
        h.clock.advance(delay);
        handle(&h.state, &next, 1).await.unwrap();
        assert_eq!(h.sender.requests().len(), 1);
        let (again, delay) = h.take_deliveries().remove(0);
        assert_eq!(again.attempt, 2);
        assert_eq!(delay, h.state.queue.max_delay());

        // At its time, attempt 2 goes out.
        h.clock.advance(Duration::from_secs(2700));
        handle(&h.state, &again, 1).await.unwrap();
        assert_eq!(h.sender.requests().len(), 2);
        assert_eq!(h.delivery(&first).await.status, DeliveryStatus::Succeeded);
    }

    #[tokio::test]
    async fn over_its_rate_a_delivery_waits_for_its_slot_without_an_attempt() {
        let h = Harness::new([]);
        let mut sub = h.subscribe(&["document.*"], true).await;
        sub.rate_limit_per_sec = Some(1);
        h.state.store.update_subscription(&sub).await.unwrap();
        let start = h.clock.now();
        // Four deliveries took the next four seconds' slots.
        for _ in 0..4 {
            h.state
                .rate_limits
                .reserve(&sub.tenant_id, &sub.id, 1, start)
                .await
                .unwrap();
        }
        let event = h.event("document.published").await;
        let first = DeliveryMessage::attempt_of(&Delivery::pending(&event, sub.id, start), 1);
        handle(&h.state, &first, 1).await.unwrap();

        assert!(h.sender.requests().is_empty());
        let (waiting, delay) = h.take_deliveries().remove(0);
        assert_eq!(waiting.slot, Some(at(&h, 4)));
        assert_eq!((waiting.attempt, delay), (1, Duration::from_secs(2)));
        assert_eq!(
            h.state
                .store
                .get_delivery(&sub.tenant_id, &first.delivery_id())
                .await
                .unwrap(),
            None,
            "waiting is not an attempt"
        );
        // At its slot it goes, without reserving another.
        h.clock.advance(Duration::from_secs(4));
        handle(&h.state, &waiting, 1).await.unwrap();
        assert_eq!(h.sender.requests().len(), 1);
        assert_eq!(h.delivery(&first).await.status, DeliveryStatus::Succeeded);
        let next = h
            .state
            .rate_limits
            .reserve(&sub.tenant_id, &sub.id, 1, h.clock.now())
            .await
            .unwrap();
        assert_eq!(
            next,
            start.checked_add(SignedDuration::from_secs(5)).unwrap(),
            "the slot was used, not taken twice"
        );
    }

    #[tokio::test]
    async fn a_subscription_enabled_since_the_directory_read_it_is_delivered_to() {
        let h = Harness::new([]).with_cache_ttl(Duration::from_secs(60));
        let (sub, first) = h.one_delivery().await;
        let mut disabled = h.subscription(&sub).await;
        disabled.disable(None, h.clock.now());
        h.state.store.update_subscription(&disabled).await.unwrap();
        // The directory keeps the disabled copy; then the owner enables it elsewhere.
        h.state
            .directory
            .get_subscription(&sub.tenant_id, &sub.id)
            .await
            .unwrap();
        disabled.enable(h.clock.now());
        h.state.store.update_subscription(&disabled).await.unwrap();

        handle(&h.state, &first, 1).await.unwrap();
        assert_eq!(h.delivery(&first).await.status, DeliveryStatus::Succeeded);
    }

    #[tokio::test]
    async fn a_deleted_or_disabled_subscription_fails_the_delivery_without_a_request() {
        let h = Harness::new([]);
        let (sub, first) = h.one_delivery().await;
        let mut disabled = sub.clone();
        disabled.enabled = false;
        h.state.store.update_subscription(&disabled).await.unwrap();
        handle(&h.state, &first, 1).await.unwrap();
        let d = h.delivery(&first).await;
        assert_eq!(d.status, DeliveryStatus::Failed);
        assert_eq!(
            d.last_error.as_deref(),
            Some("the subscription is disabled")
        );
        assert!(h.sender.requests().is_empty());
    }

    #[tokio::test]
    async fn a_transport_error_is_retried_and_its_reason_kept() {
        let h = Harness::new([Reply::Error(SendError::Timeout)]);
        let (_, first) = h.one_delivery().await;
        handle(&h.state, &first, 1).await.unwrap();
        let d = h.delivery(&first).await;
        assert_eq!(d.status, DeliveryStatus::Retrying);
        assert_eq!(d.last_error.as_deref(), Some("timed out"));
        assert_eq!(h.take(QueueName::Deliveries).len(), 1);
    }

    #[tokio::test]
    async fn save_and_test_tries_once_and_never_retries() {
        let h = Harness::new([Reply::Status(500)]);
        let sub = h.subscribe(&["*"], true).await;
        let report = crate::service::test_send::send_test(&h.state, &sub)
            .await
            .unwrap();
        assert!(!report.delivered);
        assert_eq!(report.status, Some(500));
        let d = h
            .state
            .store
            .get_delivery(&sub.tenant_id, &report.delivery_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((d.status, d.attempts), (DeliveryStatus::Failed, 1));
        assert!(h.take_deliveries().is_empty());
    }
}
