//! A delivery's life, as rules on [`Delivery`] and [`DeliveryMessage`]: what a message that arrives
//! asks for ([`Delivery::step`]), what follows an attempt ([`Delivery::after_attempt`]), giving up,
//! and starting a new run (replay, recover: [`Delivery::requeue`]). The services carry out what
//! these return; they decide nothing themselves.
//!
//! The rules (DESIGN.md): 2xx succeeds; 410 Gone fails the delivery and disables the subscription;
//! any other answer or transport error is retried on the policy's schedule, a receiver's
//! `Retry-After` replacing the scheduled delay; a delivery that exhausts its schedule fails alone
//! (the subscription stays enabled). Attempt numbers count across runs; the schedule is indexed
//! within the current run.

use std::time::Duration;

use jiff::Timestamp;
use rand::Rng;

use crate::ids::{DeliveryId, SubscriptionId, TenantId};
use crate::model::{Attempt, Delivery, DeliveryMessage, DeliveryStatus, Event, Subscription};
use crate::outcome::AttemptOutcome;
use crate::ports::{OutgoingMessage, QueueMessage};
use crate::retry::RetryPolicy;
use crate::time::after;

/// What to do with a delivery message, given the delivery as stored.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Make the next attempt (number `delivery.attempts + 1`).
    Attempt,
    /// The message's attempt was made already, or the delivery is over: drop the message.
    /// `follow_up` is the message the recorded attempt queued, if it queued one. It matters when
    /// this message was redelivered after its step committed: an adapter that writes first and
    /// sends second may have stopped between the two, and re-sends it (see `UnitOfWork::redrive`).
    Done {
        follow_up: Option<Box<DeliveryMessage>>,
    },
}

/// How early a message comes back for its send slot: the worker waits the rest in process. Two
/// seconds: a queue's delay is whole seconds (SQS rounds up) and a poller may take a moment more.
pub const SLOT_SLEEP: Duration = Duration::from_secs(2);

/// How late a message may be for its slot and still use it.
pub const SLOT_GRACE: Duration = Duration::from_millis(100);

/// What a send slot asks of a message (see [`DeliveryMessage::slot_wait`]).
#[derive(Debug, Clone, PartialEq)]
pub enum SlotWait {
    Due,
    Sleep(Duration),
    Resend(Box<OutgoingMessage>),
    /// Its slot passed more than [`SLOT_GRACE`] ago: reserve another.
    Missed,
}

/// What follows an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    Succeeded,
    /// Try again: send `message` to arrive after `delay`.
    Retry {
        message: Box<DeliveryMessage>,
        delay: Duration,
    },
    /// Failed for good. `exhausted` when the schedule ran out; otherwise Herald refused the request
    /// (a blocked address, a payload it cannot build), which would be refused again.
    Failed {
        exhausted: bool,
    },
    /// The receiver answered 410 Gone: the delivery failed and the subscription must be disabled.
    Gone,
}

/// Intake's rule: the subscriptions `event` goes to, one delivery each: every enabled subscription
/// whose patterns match its type and whose filter, if any, passes its fields
/// ([`Subscription::accepts`]). Stored with the event ([`Event::subscriptions`]); a subscription
/// left out gets no delivery and costs no queue message.
pub fn plan(event: &Event, subscriptions: &[Subscription]) -> Vec<SubscriptionId> {
    subscriptions
        .iter()
        .filter(|s| s.enabled && s.accepts(event))
        .map(|s| s.id)
        .collect()
}

/// Fan-out: the first-attempt message of each delivery `event` plans, due now. Delivery ids derive
/// from (event, subscription), so fanning out twice names the same deliveries.
pub fn fan_out(event: &Event, now: Timestamp) -> Vec<DeliveryMessage> {
    event
        .subscriptions
        .iter()
        .map(|sub| DeliveryMessage::attempt_of(&Delivery::pending(event, *sub, now), 1))
        .collect()
}

impl DeliveryMessage {
    /// The message of attempt `attempt` of `delivery`, due now, carrying no event.
    pub fn attempt_of(delivery: &Delivery, attempt: u32) -> Self {
        Self {
            delivery: delivery.clone(),
            attempt,
            not_before: None,
            slot: None,
            event: None,
        }
    }

    /// What its reserved send slot asks, as it arrives at `now`: go (no slot, or its time has
    /// come), wait a moment here (a queue's delay is whole seconds, so a message comes up to
    /// [`SLOT_SLEEP`] early and the worker waits the rest, keeping sends exactly apart), or go
    /// back to the queue until just before it.
    pub fn slot_wait(&self, now: Timestamp, max_delay: Duration) -> SlotWait {
        let Some(slot) = self.slot else {
            return SlotWait::Due;
        };
        let wait = crate::rate::until(slot, now);
        if wait.is_zero() {
            // Sent much later than its slot, it would crowd the slots after it: it takes a new one.
            if crate::rate::until(now, slot) > SLOT_GRACE {
                SlotWait::Missed
            } else {
                SlotWait::Due
            }
        } else if wait <= SLOT_SLEEP {
            SlotWait::Sleep(wait)
        } else {
            SlotWait::Resend(Box::new(OutgoingMessage {
                message: QueueMessage::Delivery(self.clone()),
                delay: (wait - SLOT_SLEEP).min(max_delay),
            }))
        }
    }

    /// This message, to go out at `slot` (reserved for it), as sent at `now`.
    pub fn at_slot(self, slot: Timestamp, now: Timestamp, max_delay: Duration) -> SlotWait {
        Self {
            slot: Some(slot),
            not_before: None,
            ..self
        }
        .slot_wait(now, max_delay)
    }

    pub fn tenant_id(&self) -> TenantId {
        self.delivery.tenant_id
    }

    pub fn delivery_id(&self) -> DeliveryId {
        self.delivery.id
    }

    /// How long the message must still wait, when it carries a time that lies ahead (a wait
    /// longer than the queue's maximum delay travels as a chain of messages).
    pub fn remaining_wait(&self, now: Timestamp) -> Option<Duration> {
        let not_before = self.not_before.filter(|t| *t > now)?;
        Some(not_before.duration_since(now).unsigned_abs())
    }

    /// This message, to be handed out after `delay` by a queue whose longest delay is
    /// `max_delay`: a longer wait keeps its due time in `not_before` and is chained.
    pub fn delayed(
        mut self,
        delay: Duration,
        max_delay: Duration,
        now: Timestamp,
    ) -> OutgoingMessage {
        if delay <= max_delay {
            self.not_before = None;
        } else if self.not_before.is_none() {
            self.not_before = Some(after(now, delay));
        }
        OutgoingMessage {
            message: QueueMessage::Delivery(self),
            delay: delay.min(max_delay),
        }
    }
}

impl Delivery {
    /// Whether the delivery is over (succeeded or failed for good).
    pub fn is_final(&self) -> bool {
        matches!(
            self.status,
            DeliveryStatus::Succeeded | DeliveryStatus::Failed
        )
    }

    /// What the arrival of `message` asks for. Attempts are numbered, so a duplicate message (an
    /// at-least-once queue, a crash before the acknowledgement) never makes an attempt twice.
    pub fn step(&self, message: &DeliveryMessage) -> Step {
        if message.attempt <= self.attempts || self.is_final() {
            let follow_up = (self.status == DeliveryStatus::Retrying
                && self.attempts == message.attempt)
                .then(|| {
                    Box::new(DeliveryMessage {
                        not_before: self.next_attempt_at,
                        ..DeliveryMessage::attempt_of(self, message.attempt + 1)
                    })
                });
            return Step::Done { follow_up };
        }
        Step::Attempt
    }

    /// Applies `attempt` (made at `now`) and its `outcome`, and says what follows.
    pub fn after_attempt(
        &mut self,
        attempt: &Attempt,
        outcome: &AttemptOutcome,
        policy: &RetryPolicy,
        now: Timestamp,
        rng: &mut impl Rng,
    ) -> Transition {
        self.attempts = attempt.number;
        self.last_status_code = attempt.status_code;
        self.last_error = attempt.error.clone();
        self.updated_at = now;
        let delay = match outcome {
            AttemptOutcome::Retryable { retry_after } => {
                let tries_in_run = self.attempts.saturating_sub(self.run_started_at);
                let asked = retry_after.map(|r| r.delay_from(now));
                policy.next_delay(tries_in_run, asked, rng)
            }
            _ => None,
        };
        (self.status, self.next_attempt_at) = match (outcome, delay) {
            (AttemptOutcome::Succeeded, _) => (DeliveryStatus::Succeeded, None),
            (AttemptOutcome::Retryable { .. }, Some(delay)) => {
                (DeliveryStatus::Retrying, Some(after(now, delay)))
            }
            _ => (DeliveryStatus::Failed, None),
        };
        match (outcome, delay) {
            (AttemptOutcome::Succeeded, _) => Transition::Succeeded,
            (AttemptOutcome::Gone, _) => Transition::Gone,
            (AttemptOutcome::Permanent, _) => Transition::Failed { exhausted: false },
            (AttemptOutcome::Retryable { .. }, None) => Transition::Failed { exhausted: true },
            // The message carries the delivery as it now stands.
            (AttemptOutcome::Retryable { .. }, Some(delay)) => Transition::Retry {
                message: Box::new(DeliveryMessage {
                    not_before: self.next_attempt_at,
                    ..DeliveryMessage::attempt_of(self, self.attempts + 1)
                }),
                delay,
            },
        }
    }

    /// Fails the delivery without an attempt (its subscription or event is gone, or disabled).
    pub fn give_up(&mut self, reason: &str, now: Timestamp) {
        self.status = DeliveryStatus::Failed;
        self.last_error = Some(reason.to_owned());
        self.next_attempt_at = None;
        self.updated_at = now;
    }

    /// Starts a new run (replay, recover), whatever the delivery's state: pending, its schedule
    /// from the top, due now. Returns the message of its next attempt.
    pub fn requeue(&mut self, now: Timestamp) -> DeliveryMessage {
        self.status = DeliveryStatus::Pending;
        self.run_started_at = self.attempts;
        self.next_attempt_at = Some(now);
        self.updated_at = now;
        DeliveryMessage::attempt_of(self, self.attempts + 1)
    }
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;

    use super::*;
    use crate::ids::{AttemptId, EventId, SubscriptionId, TenantId};
    use crate::pattern::EventType;
    use crate::retry::RetryAfter;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).unwrap()
    }

    fn delivery() -> Delivery {
        let event = Event {
            id: EventId::new(),
            tenant_id: TenantId::new(),
            event_type: EventType::parse("document.published").unwrap(),
            timestamp: t(0),
            data: serde_json::json!({}),
            subscriptions: Vec::new(),
        };
        Delivery::pending(&event, SubscriptionId::new(), t(0))
    }

    fn subscription(pattern: &str, enabled: bool) -> Subscription {
        let mut sub: Subscription = serde_json::from_value(serde_json::json!({
            "id": SubscriptionId::new(), "tenant_id": TenantId::new(), "name": null,
            "description": null, "platform": {"platform": "custom"},
            "url": "https://example.com/hook", "events": [pattern], "enabled": enabled,
            "disabled_reason": null, "secrets": [], "headers": {}, "auth_token": null,
            "rate_limit_per_sec": null, "created_at": t(0), "updated_at": t(0)
        }))
        .unwrap();
        sub.enabled = enabled;
        sub
    }

    #[test]
    fn a_reserved_slot_is_met_exactly_sleeping_only_its_last_seconds() {
        let max = Duration::from_secs(900);
        let first = DeliveryMessage::attempt_of(&delivery(), 1);
        assert_eq!(first.slot_wait(t(0), max), SlotWait::Due);
        let ms = |n| t(0).checked_add(SignedDuration::from_millis(n)).unwrap();
        assert_eq!(
            first.clone().at_slot(ms(300), t(0), max),
            SlotWait::Sleep(Duration::from_millis(300))
        );
        let SlotWait::Resend(out) = first.clone().at_slot(t(10), t(0), max) else {
            panic!("a slot 10 s away goes back to the queue");
        };
        assert_eq!(out.delay, Duration::from_secs(8));
        let QueueMessage::Delivery(again) = &out.message else {
            panic!("a delivery message");
        };
        assert_eq!((again.slot, again.attempt), (Some(t(10)), 1));
        // Back early: the worker waits the rest; at its slot it goes; much later, it takes a new
        // slot rather than crowd the next ones.
        let sleep = again.slot_wait(t(8), max);
        assert_eq!(sleep, SlotWait::Sleep(Duration::from_secs(2)));
        assert_eq!(again.slot_wait(t(10), max), SlotWait::Due);
        let in_grace = t(10).checked_add(SignedDuration::from_millis(100)).unwrap();
        assert_eq!(again.slot_wait(in_grace, max), SlotWait::Due);
        assert_eq!(again.slot_wait(t(11), max), SlotWait::Missed);
        // Beyond the queue's longest delay: as far as it goes, then again.
        let SlotWait::Resend(far) = first.at_slot(t(7200), t(0), max) else {
            panic!("resent");
        };
        assert_eq!(far.delay, max);
    }

    #[test]
    fn the_plan_is_every_enabled_matching_subscription_and_fan_out_follows_it() {
        let all = subscription("*", true);
        let docs = subscription("document.*", true);
        let comments = subscription("comment.*", true);
        let off = subscription("*", false);
        let mut event = published(serde_json::json!({}));
        event.subscriptions = plan(&event, &[all.clone(), docs.clone(), comments, off]);
        assert_eq!(event.subscriptions, vec![all.id, docs.id]);

        let messages = fan_out(&event, t(1));
        assert_eq!(messages.len(), 2);
        for (m, sub) in messages.iter().zip([all.id, docs.id]) {
            assert_eq!(m.delivery_id(), DeliveryId::derive(&event.id, &sub));
            assert_eq!((m.attempt, m.not_before), (1, None));
            assert_eq!(m.delivery, Delivery::pending(&event, sub, t(1)));
        }
        assert_eq!(
            fan_out(&event, t(1)),
            messages,
            "the same deliveries every time"
        );
    }

    #[test]
    fn a_filter_leaves_out_the_events_it_refuses_and_they_plan_no_delivery() {
        // A documentation platform publishes for every space; a team wants only the Handbook.
        let all = subscription("document.*", true);
        let mut handbook = subscription("document.*", true);
        handbook.filter = Some(
            crate::filter::Filter::parse(
                &serde_json::json!({"path": "data.space.name", "eq": "Handbook"}),
            )
            .unwrap(),
        );
        let subs = [all.clone(), handbook.clone()];
        let in_handbook = published(serde_json::json!({"space": {"name": "Handbook"}}));
        let elsewhere = published(serde_json::json!({"space": {"name": "Engineering"}}));
        assert_eq!(plan(&in_handbook, &subs), vec![all.id, handbook.id]);
        assert_eq!(plan(&elsewhere, &subs), vec![all.id]);
        // With only the filtered subscription, the other space's event plans nothing: no
        // delivery, no fan-out message.
        let mut alone = elsewhere.clone();
        alone.subscriptions = plan(&elsewhere, std::slice::from_ref(&handbook));
        assert!(alone.subscriptions.is_empty());
        assert!(fan_out(&alone, t(1)).is_empty());
        // The type patterns still come first: a filter does not widen them.
        let mut comment = in_handbook.clone();
        comment.event_type = EventType::parse("comment.created").unwrap();
        assert!(plan(&comment, &subs).is_empty());
    }

    fn published(data: serde_json::Value) -> Event {
        Event {
            id: EventId::new(),
            tenant_id: TenantId::new(),
            event_type: EventType::parse("document.published").unwrap(),
            timestamp: t(0),
            data,
            subscriptions: Vec::new(),
        }
    }

    /// The schedule without jitter, so times are exact.
    fn policy(schedule: &[u64]) -> RetryPolicy {
        RetryPolicy {
            schedule: schedule.iter().map(|s| Duration::from_secs(*s)).collect(),
            jitter: 0.0,
            ..RetryPolicy::default()
        }
    }

    fn attempt(d: &Delivery, status: Option<u16>) -> Attempt {
        Attempt {
            id: AttemptId::new(),
            delivery_id: d.id,
            tenant_id: d.tenant_id,
            subscription_id: d.subscription_id,
            number: d.attempts + 1,
            started_at: t(0),
            status_code: status,
            latency_ms: 3,
            response_excerpt: None,
            error: status.filter(|s| *s >= 300).map(|s| format!("HTTP {s}")),
            succeeded: status.is_some_and(|s| (200..300).contains(&s)),
        }
    }

    fn apply(
        d: &mut Delivery,
        outcome: AttemptOutcome,
        p: &RetryPolicy,
        now: Timestamp,
    ) -> Transition {
        let status = match &outcome {
            AttemptOutcome::Succeeded => Some(204),
            AttemptOutcome::Gone => Some(410),
            AttemptOutcome::Retryable { .. } => Some(503),
            AttemptOutcome::Permanent => None,
        };
        let a = attempt(d, status);
        d.after_attempt(&a, &outcome, p, now, &mut StdRng::seed_from_u64(1))
    }

    const RETRY: AttemptOutcome = AttemptOutcome::Retryable { retry_after: None };

    #[test]
    fn a_pending_delivery_is_due_now_and_its_first_message_is_attempt_one() {
        let d = delivery();
        assert_eq!(d.status, DeliveryStatus::Pending);
        assert_eq!(d.next_attempt_at, Some(t(0)));
        let first = DeliveryMessage::attempt_of(&d, 1);
        assert_eq!(d.step(&first), Step::Attempt);
    }

    #[test]
    fn success_ends_the_delivery() {
        let mut d = delivery();
        let tr = apply(&mut d, AttemptOutcome::Succeeded, &policy(&[5]), t(1));
        assert_eq!(tr, Transition::Succeeded);
        assert_eq!(d.status, DeliveryStatus::Succeeded);
        assert_eq!(
            (d.attempts, d.next_attempt_at, d.updated_at),
            (1, None, t(1))
        );
        assert_eq!(d.last_status_code, Some(204));
    }

    #[test]
    fn a_failure_schedules_the_next_attempt_at_the_policys_time() {
        let mut d = delivery();
        let p = policy(&[5, 300]);
        let tr = apply(&mut d, RETRY, &p, t(10));
        let expected = DeliveryMessage {
            not_before: Some(t(15)),
            ..DeliveryMessage::attempt_of(&d, 2)
        };
        assert_eq!(
            tr,
            Transition::Retry {
                message: Box::new(expected),
                delay: Duration::from_secs(5)
            }
        );
        assert_eq!(d.status, DeliveryStatus::Retrying);
        assert_eq!(d.next_attempt_at, Some(t(15)));
        assert_eq!(d.last_error.as_deref(), Some("HTTP 503"));
        let tr = apply(&mut d, RETRY, &p, t(20));
        assert!(matches!(tr, Transition::Retry { delay, .. } if delay == Duration::from_secs(300)));
        assert_eq!(d.next_attempt_at, Some(t(320)));
    }

    #[test]
    fn retry_after_replaces_the_scheduled_delay_within_bounds() {
        let p = policy(&[5, 5]);
        let mut d = delivery();
        let asked = AttemptOutcome::Retryable {
            retry_after: Some(RetryAfter::Delay(Duration::from_secs(120))),
        };
        apply(&mut d, asked, &p, t(0));
        assert_eq!(d.next_attempt_at, Some(t(120)));
        // A date is read relative to the attempt's time.
        let asked = AttemptOutcome::Retryable {
            retry_after: Some(RetryAfter::At(t(1000))),
        };
        apply(&mut d, asked, &p, t(400));
        assert_eq!(d.next_attempt_at, Some(t(1000)));
        // Never past the end of the schedule, whatever the receiver asks.
        let asked = AttemptOutcome::Retryable {
            retry_after: Some(RetryAfter::Delay(Duration::from_secs(1))),
        };
        let tr = apply(&mut d, asked, &p, t(1000));
        assert_eq!(tr, Transition::Failed { exhausted: true });
    }

    #[test]
    fn exhaustion_fails_the_delivery_alone() {
        let p = policy(&[5]);
        let mut d = delivery();
        apply(&mut d, RETRY, &p, t(0));
        let tr = apply(&mut d, RETRY, &p, t(5));
        assert_eq!(tr, Transition::Failed { exhausted: true });
        assert_eq!((d.status, d.attempts), (DeliveryStatus::Failed, 2));
        assert_eq!(d.next_attempt_at, None);
    }

    #[test]
    fn gone_fails_and_asks_to_disable_whatever_the_schedule() {
        let mut d = delivery();
        let tr = apply(&mut d, AttemptOutcome::Gone, &policy(&[5, 5]), t(0));
        assert_eq!(tr, Transition::Gone);
        assert_eq!(d.status, DeliveryStatus::Failed);
    }

    #[test]
    fn a_refused_request_fails_without_retry() {
        let mut d = delivery();
        let tr = apply(&mut d, AttemptOutcome::Permanent, &policy(&[5]), t(0));
        assert_eq!(tr, Transition::Failed { exhausted: false });
        assert_eq!(d.status, DeliveryStatus::Failed);
    }

    #[test]
    fn a_message_whose_attempt_is_recorded_is_done_and_names_the_retry_it_queued() {
        let p = policy(&[5]);
        let mut d = delivery();
        let first = DeliveryMessage::attempt_of(&d, 1);
        apply(&mut d, RETRY, &p, t(0));
        let follow_up = DeliveryMessage {
            not_before: Some(t(5)),
            ..DeliveryMessage::attempt_of(&d, 2)
        };
        assert_eq!(
            d.step(&first),
            Step::Done {
                follow_up: Some(Box::new(follow_up.clone()))
            }
        );
        assert_eq!(d.step(&follow_up), Step::Attempt);
        // Once over, nothing follows, whatever the message.
        apply(&mut d, AttemptOutcome::Succeeded, &p, t(5));
        assert_eq!(d.step(&first), Step::Done { follow_up: None });
        assert_eq!(d.step(&follow_up), Step::Done { follow_up: None });
        let later = DeliveryMessage::attempt_of(&d, 9);
        assert_eq!(d.step(&later), Step::Done { follow_up: None });
    }

    #[test]
    fn requeue_starts_a_new_run_with_the_schedule_from_the_top() {
        let p = policy(&[5]);
        let mut d = delivery();
        apply(&mut d, RETRY, &p, t(0));
        apply(&mut d, RETRY, &p, t(5));
        assert_eq!(d.status, DeliveryStatus::Failed);
        let next = d.requeue(t(100));
        assert_eq!(next, DeliveryMessage::attempt_of(&d, 3));
        assert_eq!(d.status, DeliveryStatus::Pending);
        assert_eq!((d.run_started_at, d.next_attempt_at), (2, Some(t(100))));
        assert_eq!(d.step(&next), Step::Attempt);
        // The new run has the whole schedule again: attempt 3 fails, attempt 4 is scheduled.
        let tr = apply(&mut d, RETRY, &p, t(100));
        assert!(matches!(tr, Transition::Retry { ref message, .. } if message.attempt == 4));
        // A succeeded delivery can be replayed too.
        apply(&mut d, AttemptOutcome::Succeeded, &p, t(105));
        assert_eq!(d.requeue(t(200)).attempt, 5);
    }

    #[test]
    fn giving_up_fails_with_the_reason() {
        let mut d = delivery();
        d.give_up("the subscription was deleted", t(3));
        assert_eq!(d.status, DeliveryStatus::Failed);
        assert_eq!(
            d.last_error.as_deref(),
            Some("the subscription was deleted")
        );
        assert_eq!((d.attempts, d.updated_at), (0, t(3)));
    }

    #[test]
    fn long_waits_are_chained_through_the_queues_maximum_delay() {
        let d = delivery();
        let max = Duration::from_secs(900);
        let short = DeliveryMessage::attempt_of(&d, 2).delayed(Duration::from_secs(5), max, t(0));
        assert_eq!(short.delay, Duration::from_secs(5));
        assert!(matches!(short.message, QueueMessage::Delivery(ref m) if m.not_before.is_none()));
        let long = DeliveryMessage::attempt_of(&d, 2).delayed(Duration::from_secs(7200), max, t(0));
        assert_eq!(long.delay, max);
        let QueueMessage::Delivery(m) = long.message else {
            panic!("a delivery message")
        };
        assert_eq!(m.not_before, Some(t(7200)));
        assert_eq!(m.remaining_wait(t(900)), Some(Duration::from_secs(6300)));
        assert_eq!(m.remaining_wait(t(7200)), None);
    }
}
