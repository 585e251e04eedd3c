//! The failure lifecycle, carried out for the delivery worker: the core decides
//! ([`LifecyclePolicy`], [`herald_core::operational`]); this reads and writes the subscription's
//! health through the store port, emits the operational events, and disables.
//!
//! Before an attempt, [`admit`] asks the breaker: closed sends; open makes the delivery wait (it
//! is sent on, delayed, and uses up none of its schedule); a due probe is claimed by one worker
//! (a conditional write), which sends, while the others wait. After the request, [`after_request`]
//! records the outcome: a failure always (one atomic write, which answers the health it changed,
//! so warnings and disabling act on what is stored, not on this process's copy); a success only
//! when the subscription was failing or its last success is an hour old, so a healthy
//! subscription pays no write per delivery. Every operational event is keyed by the change it
//! reports, so two workers that both see it (or one that tries again after a crash) store one
//! event; it is emitted before the write that marks it given.

use std::time::Duration;

use herald_core::health::{Gate, Health, HealthChange, Verdict};
use herald_core::operational::{self, DisableReason};
use herald_core::outcome::AttemptOutcome;
use herald_core::ports::StoreError;
use herald_core::time::after;
use herald_core::Subscription;
use jiff::Timestamp;
use rand::Rng;

use super::intake;
use super::WorkerError;
use crate::metrics::PlatformCount;
use crate::state::AppState;

/// Whether a delivery goes out now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Send,
    /// The breaker is open: send the message on, to arrive after this.
    Wait(Duration),
}

/// The breaker's answer for one delivery to `sub` at `now` (see the module docs).
pub async fn admit(
    state: &AppState,
    sub: &Subscription,
    now: Timestamp,
) -> Result<Admission, WorkerError> {
    let policy = &state.settings.lifecycle;
    let until = match policy.gate(&sub.health, now) {
        Gate::Closed => return Ok(Admission::Send),
        Gate::Open { until } => until,
        Gate::ProbeDue => {
            let claim = HealthChange::ClaimProbe {
                at: now,
                failures: sub.health.consecutive_failures,
            };
            let mut health = sub.health.clone();
            health.apply(claim);
            match state
                .store
                .update_health(&sub.tenant_id, &sub.id, claim)
                .await
            {
                Ok(Some(_)) => {
                    state
                        .directory
                        .note_health(&sub.tenant_id, &sub.id, &health);
                    tracing::info!(tenant = %sub.tenant_id, subscription = %sub.id, failures = sub.health.consecutive_failures, "breaker probe");
                    return Ok(Admission::Send);
                }
                // Another worker probes (or the streak moved on): look again after a cool-down.
                Ok(None) => {
                    state
                        .directory
                        .note_health(&sub.tenant_id, &sub.id, &health);
                    after(now, policy.breaker_cooldown)
                }
                Err(StoreError::NotFound) => return Ok(Admission::Send),
                Err(e) => return Err(e.into()),
            }
        }
    };
    state
        .metrics
        .platform_count(sub.platform.platform(), PlatformCount::DeliveriesPaused);
    Ok(Admission::Wait(spread(
        until.duration_since(now).unsigned_abs(),
    )))
}

/// `wait` plus up to a quarter more (at least a second, at most a minute), so the deliveries that
/// waited do not all come back at one instant.
fn spread(wait: Duration) -> Duration {
    let room = (wait / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
    let extra = rand::thread_rng().gen_range(0..=room.as_millis());
    wait + Duration::from_millis(u64::try_from(extra).unwrap_or(0))
}

/// Records what a request to `sub` gave at `now` and carries out what follows (see the module
/// docs). `last_error` is the attempt's, for the warning's text.
pub async fn after_request(
    state: &AppState,
    sub: &Subscription,
    outcome: &AttemptOutcome,
    last_error: Option<&str>,
    now: Timestamp,
) -> Result<(), WorkerError> {
    match outcome {
        // Herald refused to send it (a blocked address, a payload it could not build): the
        // receiver's health is not in question.
        AttemptOutcome::Permanent => Ok(()),
        AttemptOutcome::Succeeded => {
            let due =
                state
                    .directory
                    .claim_success_write(&sub.tenant_id, &sub.id, &sub.health, now);
            if !due {
                return Ok(());
            }
            let Some(before) = change(state, sub, HealthChange::Succeeded { at: now }).await?
            else {
                return Ok(());
            };
            if before.was_reported_failing() {
                intake::emit(
                    state,
                    sub.tenant_id,
                    operational::recovered(sub, &before, now),
                )
                .await?;
            }
            Ok(())
        }
        AttemptOutcome::Retryable { .. } | AttemptOutcome::Gone => {
            let failed = HealthChange::Failed { at: now };
            let Some(mut after) = change(state, sub, failed).await? else {
                return Ok(());
            };
            after.apply(failed);
            let policy = &state.settings.lifecycle;
            if *outcome == AttemptOutcome::Gone {
                return disable(state, sub, &after, DisableReason::Gone, now).await;
            }
            match policy.after_failure(&after, now) {
                Verdict::Nothing => Ok(()),
                Verdict::Disable => disable(state, sub, &after, DisableReason::Failing, now).await,
                Verdict::Warn(warning) => {
                    let notice = operational::failing(sub, &after, warning, policy, last_error);
                    intake::emit(state, sub.tenant_id, notice).await?;
                    change(state, sub, HealthChange::Warned { warning }).await?;
                    Ok(())
                }
            }
        }
    }
}

/// Applies `change`, keeping the result in the directory: the health before it, or `None` when
/// its condition did not hold or the subscription is gone.
async fn change(
    state: &AppState,
    sub: &Subscription,
    change: HealthChange,
) -> Result<Option<Health>, WorkerError> {
    match state
        .store
        .update_health(&sub.tenant_id, &sub.id, change)
        .await
    {
        Ok(Some(before)) => {
            let mut after = before.clone();
            after.apply(change);
            state.directory.note_health(&sub.tenant_id, &sub.id, &after);
            Ok(Some(before))
        }
        Ok(None) | Err(StoreError::NotFound) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Disables `sub` for `reason` (if it still is enabled in the store) and tells its owner.
pub async fn disable(
    state: &AppState,
    sub: &Subscription,
    health: &Health,
    reason: DisableReason,
    now: Timestamp,
) -> Result<(), WorkerError> {
    // The stored copy, not the directory's (up to its TTL old): a change made meanwhile through
    // another process's API is kept.
    let mut fresh = match state
        .store
        .get_subscription(&sub.tenant_id, &sub.id)
        .await?
    {
        Some(fresh) if fresh.enabled => fresh,
        _ => return Ok(()),
    };
    let policy = &state.settings.lifecycle;
    let notice = operational::disabled(&fresh, health, reason, policy, now);
    intake::emit(state, fresh.tenant_id, notice).await?;
    fresh.disable(Some(reason.describe(policy)), now);
    let written = state.store.update_subscription(&fresh).await;
    state.directory.forget_subscription(&sub.tenant_id, &sub.id);
    match written {
        Ok(()) | Err(StoreError::NotFound) => {}
        Err(e) => return Err(e.into()),
    }
    state.metrics.platform_count(
        sub.platform.platform(),
        PlatformCount::SubscriptionsDisabled,
    );
    tracing::warn!(target: "herald::operator", tenant = %sub.tenant_id, subscription = %sub.id, reason = reason.as_str(), "subscription disabled");
    Ok(())
}

#[cfg(test)]
mod tests {
    use herald_contract::memory::Reply;
    use herald_core::health::LifecyclePolicy;
    use herald_core::ports::Clock;
    use herald_core::{Delivery, DeliveryMessage, DeliveryStatus, SubscriptionId};

    use super::*;
    use crate::service::delivery::handle;
    use crate::service::testing::Harness;

    fn harness(script: impl IntoIterator<Item = Reply>, policy: LifecyclePolicy) -> Harness {
        Harness::new(script).with_settings(|s| s.lifecycle = policy)
    }

    fn breaker_at(threshold: u32) -> LifecyclePolicy {
        LifecyclePolicy {
            disable_after: Duration::from_secs(1000),
            breaker_threshold: threshold,
            ..LifecyclePolicy::default()
        }
    }

    /// The first attempt's message of a new `document.published` event to `sub`.
    async fn first_attempt(h: &Harness, sub: &Subscription) -> DeliveryMessage {
        let event = h.event("document.published").await;
        DeliveryMessage::attempt_of(&Delivery::pending(&event, sub.id, h.clock.now()), 1)
    }

    type Notices = Vec<(String, SubscriptionId)>;

    /// The operational events queued since the last call, as (type, the subscription it goes to);
    /// the other queued messages are returned apart.
    fn take_notices(h: &Harness) -> (Notices, Vec<(DeliveryMessage, Duration)>) {
        let (notices, others): (Vec<_>, Vec<_>) = h
            .take_deliveries()
            .into_iter()
            .partition(|(m, _)| m.delivery.event_type.is_operational());
        let notices = notices
            .into_iter()
            .map(|(m, _)| {
                (
                    m.delivery.event_type.to_string(),
                    m.delivery.subscription_id,
                )
            })
            .collect();
        (notices, others)
    }

    async fn stored(h: &Harness, sub: &Subscription) -> Subscription {
        h.subscription(sub).await
    }

    #[tokio::test]
    async fn the_breaker_opens_holds_deliveries_without_attempts_probes_once_and_recovers() {
        let h = harness(
            [Reply::Status(500), Reply::Status(503), Reply::Status(500)],
            breaker_at(3),
        );
        let ops = h.subscribe(&["herald.*"], true).await;
        h.subscribe(&["*"], true).await;
        let sub = h.subscribe(&["document.*"], true).await;

        for _ in 0..3 {
            let m = first_attempt(&h, &sub).await;
            handle(&h.state, &m, 1).await.unwrap();
        }
        let health = stored(&h, &sub).await.health;
        assert_eq!(health.consecutive_failures, 3);
        let (notices, retries) = take_notices(&h);
        assert_eq!(
            notices,
            vec![("herald.subscription.failing".to_owned(), ops.id)],
            "told once, and only the subscription that names herald.*"
        );
        assert_eq!(retries.len(), 3);

        // Open: a new delivery waits, no request, nothing recorded against its schedule.
        let waiting = first_attempt(&h, &sub).await;
        handle(&h.state, &waiting, 1).await.unwrap();
        assert_eq!(h.sender.requests().len(), 3);
        let (_, mut held) = take_notices(&h);
        let (again, delay) = held.remove(0);
        assert_eq!(again.attempt, 1);
        assert!(
            delay >= Duration::from_secs(30) && delay <= Duration::from_secs(38),
            "{delay:?}"
        );
        assert_eq!(
            h.state
                .store
                .get_delivery(&sub.tenant_id, &waiting.delivery_id())
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            h.state
                .metrics
                .deliveries_paused
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );

        // The cool-down is over: this worker claims the probe; the endpoint answers 204.
        h.clock.advance(Duration::from_secs(30));
        handle(&h.state, &again, 1).await.unwrap();
        assert_eq!(h.sender.requests().len(), 4);
        assert_eq!(h.delivery(&again).await.status, DeliveryStatus::Succeeded);
        let health = stored(&h, &sub).await.health;
        assert_eq!(health.consecutive_failures, 0);
        assert_eq!(health.last_success_at, Some(h.clock.now()));
        let (notices, _) = take_notices(&h);
        assert_eq!(
            notices,
            vec![("herald.subscription.recovered".to_owned(), ops.id)]
        );
    }

    #[tokio::test]
    async fn while_a_probe_is_out_the_other_deliveries_wait() {
        let h = harness([Reply::Status(500)], breaker_at(1));
        let sub = h.subscribe(&["document.*"], true).await;
        handle(&h.state, &first_attempt(&h, &sub).await, 1)
            .await
            .unwrap();
        h.take_deliveries();
        h.clock.advance(Duration::from_secs(30));
        // One worker claims the probe (as a slow request would leave it) ...
        let claimed = h
            .state
            .store
            .update_health(
                &sub.tenant_id,
                &sub.id,
                HealthChange::ClaimProbe {
                    at: h.clock.now(),
                    failures: 1,
                },
            )
            .await
            .unwrap();
        assert!(claimed.is_some());
        // ... so another delivery waits for it, without a request.
        handle(&h.state, &first_attempt(&h, &sub).await, 1)
            .await
            .unwrap();
        assert_eq!(h.sender.requests().len(), 1);
        let (_, delay) = h.take_deliveries().remove(0);
        assert!(delay >= Duration::from_secs(30), "{delay:?}");
    }

    #[tokio::test]
    async fn failing_for_the_whole_span_warns_then_disables_and_tells_the_owner_elsewhere() {
        let policy = LifecyclePolicy {
            disable_after: Duration::from_secs(100),
            breaker_threshold: 1000,
            ..LifecyclePolicy::default()
        };
        let h = harness(vec![Reply::Status(500); 4], policy);
        let ops = h.subscribe(&["herald.subscription.*"], true).await;
        let sub = h.subscribe(&["document.*"], true).await;
        let fail_one = || async {
            handle(&h.state, &first_attempt(&h, &sub).await, 1)
                .await
                .unwrap();
            take_notices(&h).0
        };
        assert!(fail_one().await.is_empty());
        h.clock.advance(Duration::from_secs(50));
        assert_eq!(
            fail_one().await,
            vec![("herald.subscription.failing".to_owned(), ops.id)]
        );
        h.clock.advance(Duration::from_secs(40));
        assert_eq!(
            fail_one().await,
            vec![("herald.subscription.failing".to_owned(), ops.id)]
        );
        assert!(stored(&h, &sub).await.enabled);
        h.clock.advance(Duration::from_secs(10));
        assert_eq!(
            fail_one().await,
            vec![("herald.subscription.disabled".to_owned(), ops.id)]
        );
        let disabled = stored(&h, &sub).await;
        assert!(!disabled.enabled);
        assert_eq!(
            disabled.disabled_reason.as_deref(),
            Some("no successful delivery for 100 seconds")
        );
        assert_eq!(disabled.disabled_at, Some(h.clock.now()));
    }

    #[tokio::test]
    async fn a_410_disables_and_says_why_to_the_others() {
        let h = harness([Reply::Status(410)], LifecyclePolicy::default());
        let ops = h.subscribe(&["herald.*"], true).await;
        let sub = h.subscribe(&["document.*"], true).await;
        handle(&h.state, &first_attempt(&h, &sub).await, 1)
            .await
            .unwrap();
        assert!(!stored(&h, &sub).await.enabled);
        let (notices, _) = take_notices(&h);
        assert_eq!(
            notices,
            vec![("herald.subscription.disabled".to_owned(), ops.id)]
        );
        // The ops subscription itself never hears about itself.
        let gone = harness([Reply::Status(410)], LifecyclePolicy::default());
        let only = gone.subscribe(&["herald.*", "document.*"], true).await;
        handle(&gone.state, &first_attempt(&gone, &only).await, 1)
            .await
            .unwrap();
        assert!(take_notices(&gone).0.is_empty());
    }

    #[tokio::test]
    async fn an_exhausted_delivery_is_reported_but_not_one_of_a_report() {
        let h = Harness::with_schedule(&[], [Reply::Status(500), Reply::Status(500)]);
        let ops = h.subscribe(&["herald.delivery.exhausted"], true).await;
        let sub = h.subscribe(&["document.*"], true).await;
        handle(&h.state, &first_attempt(&h, &sub).await, 1)
            .await
            .unwrap();
        let mut queued = h.take_deliveries();
        assert_eq!(queued.len(), 1);
        let (report, _) = queued.remove(0);
        assert_eq!(
            report.delivery.event_type.as_str(),
            "herald.delivery.exhausted"
        );
        assert_eq!(report.delivery.subscription_id, ops.id);
        assert!(
            stored(&h, &sub).await.enabled,
            "one delivery never disables"
        );

        // The report's own delivery exhausts too: nothing more is emitted, so reports cannot loop.
        handle(&h.state, &report, 1).await.unwrap();
        assert_eq!(h.delivery(&report).await.status, DeliveryStatus::Failed);
        assert!(h.take_deliveries().is_empty());
    }

    #[tokio::test]
    async fn a_healthy_subscription_records_its_success_once_an_hour() {
        let h = harness([], LifecyclePolicy::default());
        let sub = h.subscribe(&["document.*"], true).await;
        let start = h.clock.now();
        handle(&h.state, &first_attempt(&h, &sub).await, 1)
            .await
            .unwrap();
        assert_eq!(stored(&h, &sub).await.health.last_success_at, Some(start));
        h.clock.advance(Duration::from_secs(600));
        handle(&h.state, &first_attempt(&h, &sub).await, 1)
            .await
            .unwrap();
        assert_eq!(stored(&h, &sub).await.health.last_success_at, Some(start));
        h.clock.advance(Duration::from_secs(3000));
        handle(&h.state, &first_attempt(&h, &sub).await, 1)
            .await
            .unwrap();
        assert_eq!(
            stored(&h, &sub).await.health.last_success_at,
            Some(h.clock.now())
        );
    }
}
