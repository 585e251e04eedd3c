//! Herald's operational events about a tenant's own subscriptions (`herald.…`): what each says,
//! and the key that makes it once.
//!
//! A [`Notice`] goes into the subject's tenant stream like any event, keyed, so that two workers
//! that both see the same change (or one that tries again after a crash) store one event. It is
//! planned for the tenant's subscriptions that name `herald.*` (or the type), never for its
//! subject, and an exhausted delivery of an operational event gives no notice: they cannot loop.
//! Their data never holds a callback URL (a Slack or Teams webhook URL is itself a credential),
//! only its host; `title` and `message` are what a chat message shows.

use jiff::Timestamp;
use serde_json::{json, Value};

use crate::health::{Health, LifecyclePolicy, Warning};
use crate::ids::SubscriptionId;
use crate::model::{Delivery, Subscription};
use crate::pattern::{EventType, Operational};

/// An operational event to emit.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub kind: Operational,
    /// The subscription it is about (which never receives it).
    pub subject: SubscriptionId,
    /// Its idempotency key: the same change gives the same key.
    pub key: String,
    pub data: Value,
}

/// Why Herald disabled a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisableReason {
    /// The endpoint answered 410 Gone.
    Gone,
    /// No success for the policy's whole span.
    Failing,
}

impl DisableReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gone => "gone",
            Self::Failing => "failing",
        }
    }

    /// The subscription's `disabled_reason`.
    pub fn describe(self, policy: &LifecyclePolicy) -> String {
        match self {
            Self::Gone => "the endpoint answered 410 Gone".to_owned(),
            Self::Failing => format!(
                "no successful delivery for {}",
                span(policy.disable_after.as_secs())
            ),
        }
    }
}

fn name(sub: &Subscription) -> String {
    sub.name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| sub.id.to_string())
}

fn subject(sub: &Subscription) -> Value {
    json!({
        "id": sub.id,
        "name": sub.name,
        "platform": sub.platform.platform().as_str(),
        "host": sub.url.as_url().host_str(),
    })
}

fn ms(t: Option<Timestamp>) -> i64 {
    t.map_or(0, |t| t.as_millisecond())
}

/// A span in words: "5 days", "36 hours", "90 minutes".
fn span(secs: u64) -> String {
    match secs {
        s if s >= 2 * 86_400 && s % 86_400 == 0 => format!("{} days", s / 86_400),
        s if s >= 2 * 3600 && s % 3600 == 0 => format!("{} hours", s / 3600),
        s if s >= 120 => format!("{} minutes", s / 60),
        s => format!("{s} seconds"),
    }
}

fn time(t: Option<Timestamp>) -> String {
    t.map_or_else(
        || "never".to_owned(),
        |t| t.strftime("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

/// `herald.subscription.failing`: `warning` was due for a subscription with `health` (after the
/// failure that made it due).
pub fn failing(
    sub: &Subscription,
    health: &Health,
    warning: Warning,
    policy: &LifecyclePolicy,
    last_error: Option<&str>,
) -> Notice {
    let disables_at = health.failing_since.map(|s| policy.disables_at(s));
    let what = match warning {
        Warning::BreakerOpened => format!(
            "{} deliveries in a row failed, so Herald pauses it and sends one probe at a time until one succeeds.",
            health.consecutive_failures
        ),
        Warning::HalfSpan | Warning::NearlyDisabled => format!(
            "No delivery has succeeded since {}.",
            time(health.failing_since)
        ),
    };
    Notice {
        kind: Operational::SubscriptionFailing,
        subject: sub.id,
        key: format!(
            "herald:failing:{}:{}:{}",
            sub.id,
            ms(health.failing_since),
            warning.level()
        ),
        data: json!({
            "title": format!("Webhook “{}” is failing", name(sub)),
            "message": format!(
                "{what} Last error: {}. Herald disables it at {} unless a delivery succeeds first. Check that the endpoint is up and answers 2xx, then look at its delivery log.",
                last_error.unwrap_or("none recorded"),
                time(disables_at)
            ),
            "subscription": subject(sub),
            "warning": warning.as_str(),
            "consecutive_failures": health.consecutive_failures,
            "failing_since": health.failing_since,
            "last_success_at": health.last_success_at,
            "last_error": last_error,
            "disables_at": disables_at,
        }),
    }
}

/// `herald.subscription.disabled`, at `at`.
pub fn disabled(
    sub: &Subscription,
    health: &Health,
    reason: DisableReason,
    policy: &LifecyclePolicy,
    at: Timestamp,
) -> Notice {
    let streak = health.failing_since.unwrap_or(at);
    Notice {
        kind: Operational::SubscriptionDisabled,
        subject: sub.id,
        key: format!("herald:disabled:{}:{}", sub.id, streak.as_millisecond()),
        data: json!({
            "title": format!("Webhook “{}” was disabled", name(sub)),
            "message": format!(
                "Herald disabled it: {}. It receives no events until it is enabled again: fix the endpoint, then enable it (POST /v1/subscriptions/{}/enable, with {{\"recover\": true}} to resend what failed meanwhile) or use Enable in the console.",
                reason.describe(policy),
                sub.id
            ),
            "subscription": subject(sub),
            "reason": reason.as_str(),
            "consecutive_failures": health.consecutive_failures,
            "failing_since": health.failing_since,
            "last_success_at": health.last_success_at,
        }),
    }
}

/// `herald.subscription.recovered`: a success at `at` after `before` (a streak its owner was told
/// about).
pub fn recovered(sub: &Subscription, before: &Health, at: Timestamp) -> Notice {
    Notice {
        kind: Operational::SubscriptionRecovered,
        subject: sub.id,
        key: format!("herald:recovered:{}:{}", sub.id, ms(before.failing_since)),
        data: json!({
            "title": format!("Webhook “{}” recovered", name(sub)),
            "message": format!(
                "A delivery succeeded at {} after {} failures since {}. Deliveries that failed meanwhile can be sent again with recover.",
                time(Some(at)),
                before.consecutive_failures,
                time(before.failing_since)
            ),
            "subscription": subject(sub),
            "failing_since": before.failing_since,
            "failures": before.consecutive_failures,
            "recovered_at": at,
        }),
    }
}

/// `herald.delivery.exhausted`: `delivery` (of an event of `event_type`) used up its schedule.
/// `None` for a delivery of an operational event.
pub fn exhausted(
    sub: &Subscription,
    delivery: &Delivery,
    event_type: &EventType,
) -> Option<Notice> {
    if event_type.is_operational() {
        return None;
    }
    Some(Notice {
        kind: Operational::DeliveryExhausted,
        subject: sub.id,
        key: format!("herald:exhausted:{}:{}", delivery.id, delivery.attempts),
        data: json!({
            "title": format!("A {event_type} event could not be delivered to “{}”", name(sub)),
            "message": format!(
                "Delivery {} failed after {} attempts (last error: {}). The webhook stays enabled; resend it with POST /v1/deliveries/{}/retry once the endpoint works.",
                delivery.id,
                delivery.attempts,
                delivery.last_error.as_deref().unwrap_or("none recorded"),
                delivery.id
            ),
            "subscription": subject(sub),
            "delivery_id": delivery.id,
            "event_id": delivery.event_id,
            "event_type": event_type,
            "attempts": delivery.attempts,
            "last_status_code": delivery.last_status_code,
            "last_error": delivery.last_error,
        }),
    })
}

/// `herald.secret.rotated`: the secret was rotated at `at`; the previous one signs until
/// `previous_expires_at`.
pub fn secret_rotated(sub: &Subscription, at: Timestamp, previous_expires_at: Timestamp) -> Notice {
    Notice {
        kind: Operational::SecretRotated,
        subject: sub.id,
        key: format!("herald:rotated:{}:{}", sub.id, at.as_millisecond()),
        data: json!({
            "title": format!("The signing secret of webhook “{}” was rotated", name(sub)),
            "message": format!(
                "Requests are signed with the new secret and, until {}, with the previous one too. Give the receiver the new secret before then.",
                time(Some(previous_expires_at))
            ),
            "subscription": subject(sub),
            "rotated_at": at,
            "previous_expires_at": previous_expires_at,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::HealthChange;

    fn sub() -> Subscription {
        let Value::Object(body) = json!({
            "name": "Docs to Slack",
            "platform": "slack",
            "url": "https://hooks.slack.com/services/T1/B2/secretpart",
            "events": ["*"],
        }) else {
            unreachable!()
        };
        let new = crate::NewSubscription::parse(body, crate::AddressPolicy::PRODUCTION).unwrap();
        Subscription::create(
            new,
            SubscriptionId::new(),
            crate::ids::TenantId::new(),
            crate::signing::SigningSecret::generate(),
            t(0),
        )
    }

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    #[test]
    fn the_same_change_gives_the_same_key_and_a_new_streak_a_new_one() {
        let policy = LifecyclePolicy::default();
        let s = sub();
        let mut h = Health::default();
        h.apply(HealthChange::Failed { at: t(0) });
        let a = failing(&s, &h, Warning::BreakerOpened, &policy, Some("HTTP 503"));
        h.apply(HealthChange::Failed { at: t(1) });
        let b = failing(&s, &h, Warning::BreakerOpened, &policy, Some("HTTP 500"));
        assert_eq!(a.key, b.key);
        assert_ne!(a.key, failing(&s, &h, Warning::HalfSpan, &policy, None).key);
        let mut later = Health::default();
        later.apply(HealthChange::Failed { at: t(100) });
        assert_ne!(
            a.key,
            failing(&s, &later, Warning::BreakerOpened, &policy, None).key
        );
    }

    #[test]
    fn notices_name_the_subscription_and_what_to_do_but_never_its_url() {
        let policy = LifecyclePolicy::default();
        let s = sub();
        let mut h = Health::default();
        h.apply(HealthChange::Failed { at: t(0) });
        let notices = [
            failing(&s, &h, Warning::NearlyDisabled, &policy, Some("HTTP 503")),
            disabled(&s, &h, DisableReason::Failing, &policy, t(10)),
            recovered(&s, &h, t(20)),
            secret_rotated(&s, t(30), t(40)),
        ];
        for n in &notices {
            let text = n.data.to_string();
            assert!(
                n.data["title"].as_str().unwrap().contains("Docs to Slack"),
                "{text}"
            );
            assert!(!n.data["message"].as_str().unwrap().is_empty());
            assert!(!text.contains(s.url.as_str()), "{text}");
            assert_eq!(n.data["subscription"]["host"], "hooks.slack.com");
            assert_eq!(n.subject, s.id);
            EventType::parse(n.kind.as_str()).unwrap();
        }
        assert!(notices[1].data["message"]
            .as_str()
            .unwrap()
            .contains("no successful delivery for 5 days"));
    }

    #[test]
    fn an_exhausted_operational_delivery_gives_no_notice() {
        let s = sub();
        let event = crate::model::Event {
            id: crate::ids::EventId::new(),
            tenant_id: s.tenant_id,
            event_type: EventType::operational(Operational::SubscriptionFailing),
            timestamp: t(0),
            data: json!({}),
            subscriptions: vec![s.id],
        };
        let d = Delivery::pending(&event, s.id, t(0));
        assert_eq!(exhausted(&s, &d, &event.event_type), None);
        let ordinary = EventType::parse("document.published").unwrap();
        let n = exhausted(&s, &d, &ordinary).unwrap();
        assert_eq!(n.kind, Operational::DeliveryExhausted);
        assert_eq!(n.data["delivery_id"], json!(d.id));
    }

    #[test]
    fn spans_read_as_words() {
        assert_eq!(span(5 * 86_400), "5 days");
        assert_eq!(span(36 * 3600), "36 hours");
        assert_eq!(span(90 * 60), "90 minutes");
        assert_eq!(span(30), "30 seconds");
    }
}
