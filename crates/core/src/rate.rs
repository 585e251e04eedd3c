//! Sending rates: how fast Herald may send to one subscription, and the slots that hold it there
//! across every worker.
//!
//! A rate is a schedule of send slots, `1 / rate` seconds apart (the generic cell rate algorithm
//! with no burst): a delivery reserves the next free slot, never before now, and is sent at it. So
//! a limit of 5 per second is 5 sends in any second, not 5 at once and then a pause; over-limit
//! deliveries wait for their slot (they are neither dropped nor failed attempts). The slots are
//! shared state behind the [`RateLimits`] port: DynamoDB on AWS (one conditional write per
//! delivery, paid only by subscriptions with a rate), this process's memory in `herald dev`
//! ([`LocalRateLimits`]).
//!
//! A subscription's rate is the lower of its own `rate_limit_per_sec` and its platform's documented
//! limit: Slack about 1 message per second per webhook, Microsoft Teams (Workflows) about 4.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;

use crate::ids::{SubscriptionId, TenantId};
use crate::model::{Platform, Subscription};
use crate::ports::StoreError;

/// Slack: "1 message per second per webhook", short bursts allowed.
/// <https://api.slack.com/docs/rate-limits#incoming-webhooks>
pub const SLACK_PER_SECOND: u32 = 1;
/// Teams Workflows webhooks: about 4 requests per second.
/// <https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using#rate-limiting-for-connectors>
pub const TEAMS_PER_SECOND: u32 = 4;

/// The send slots of rate-limited subscriptions, shared by every worker that delivers.
#[async_trait]
pub trait RateLimits: Send + Sync + 'static {
    /// Reserves the next free slot of `subscription` at `per_second` (at least 1), not before
    /// `now`, and answers its time. Two calls never get the same slot.
    async fn reserve(
        &self,
        tenant: &TenantId,
        subscription: &SubscriptionId,
        per_second: u32,
        now: Timestamp,
    ) -> Result<Timestamp, StoreError>;
}

/// The distance between two slots at `per_second`, in microseconds.
pub fn interval_micros(per_second: u32) -> i64 {
    1_000_000 / i64::from(per_second.max(1))
}

/// The slot reserved when the next free one is `next_free` (`None`: never used), at `now`, and
/// the next free one after it: `(slot, next_free)`, in microseconds since the epoch.
pub fn take_slot(next_free: Option<i64>, now: i64, interval: i64) -> (i64, i64) {
    let slot = next_free.map_or(now, |free| free.max(now));
    (slot, slot.saturating_add(interval))
}

impl Subscription {
    /// How many requests a second Herald may send it: the lower of its own limit and its
    /// platform's, or `None` when neither limits it.
    pub fn send_rate(&self) -> Option<u32> {
        let platform = match self.platform.platform() {
            Platform::Slack => Some(SLACK_PER_SECOND),
            Platform::Teams => Some(TEAMS_PER_SECOND),
            _ => None,
        };
        match (self.rate_limit_per_sec.filter(|r| *r > 0), platform) {
            (Some(own), Some(cap)) => Some(own.min(cap)),
            (own, cap) => own.or(cap),
        }
    }
}

/// The slots in this process's memory: exact for one process (`herald dev`, tests).
#[derive(Debug, Default)]
pub struct LocalRateLimits {
    next_free: Mutex<HashMap<(TenantId, SubscriptionId), i64>>,
}

#[async_trait]
impl RateLimits for LocalRateLimits {
    async fn reserve(
        &self,
        tenant: &TenantId,
        subscription: &SubscriptionId,
        per_second: u32,
        now: Timestamp,
    ) -> Result<Timestamp, StoreError> {
        self.reserve_now(tenant, subscription, per_second, now)
    }
}

impl LocalRateLimits {
    /// [`RateLimits::reserve`], without waiting on anything.
    pub fn reserve_now(
        &self,
        tenant: &TenantId,
        subscription: &SubscriptionId,
        per_second: u32,
        now: Timestamp,
    ) -> Result<Timestamp, StoreError> {
        let mut map = self.next_free.lock().unwrap_or_else(|e| e.into_inner());
        let key = (*tenant, *subscription);
        let (slot, next) = take_slot(
            map.get(&key).copied(),
            now.as_microsecond(),
            interval_micros(per_second),
        );
        map.insert(key, next);
        // Slots long past are forgotten: an idle subscription starts afresh at `now` anyway.
        if map.len() > 100_000 {
            let horizon = now.as_microsecond();
            map.retain(|_, free| *free > horizon);
        }
        Timestamp::from_microsecond(slot).map_err(StoreError::backend)
    }
}

/// How long after now a slot lies (zero if it has come).
pub fn until(slot: Timestamp, now: Timestamp) -> Duration {
    if slot <= now {
        Duration::ZERO
    } else {
        slot.duration_since(now).unsigned_abs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: i64) -> Timestamp {
        Timestamp::from_millisecond(1_800_000_000_000 + ms).unwrap()
    }

    #[test]
    fn slots_are_spaced_by_the_rate_and_never_before_now() {
        let i = interval_micros(5);
        assert_eq!(i, 200_000);
        assert_eq!(take_slot(None, 1_000, i), (1_000, 201_000));
        assert_eq!(take_slot(Some(201_000), 1_000, i), (201_000, 401_000));
        // Idle since: the next slot is now, not in the past (no burst after a pause).
        assert_eq!(
            take_slot(Some(201_000), 5_000_000, i),
            (5_000_000, 5_200_000)
        );
        assert_eq!(interval_micros(0), 1_000_000);
    }

    fn subscription(platform: &str, own: Option<u32>) -> Subscription {
        serde_json::from_value(serde_json::json!({
            "id": SubscriptionId::new(), "tenant_id": TenantId::new(), "name": null,
            "description": null, "platform": {"platform": platform},
            "url": "https://example.com/hook", "events": ["*"], "enabled": true,
            "disabled_reason": null, "secrets": [], "headers": {}, "auth_token": null,
            "rate_limit_per_sec": own, "created_at": t(0), "updated_at": t(0)
        }))
        .unwrap()
    }

    #[test]
    fn a_rate_is_the_lower_of_the_subscription_s_and_its_platform_s() {
        assert_eq!(subscription("custom", None).send_rate(), None);
        assert_eq!(subscription("custom", Some(50)).send_rate(), Some(50));
        assert_eq!(subscription("slack", None).send_rate(), Some(1));
        assert_eq!(subscription("slack", Some(5)).send_rate(), Some(1));
        assert_eq!(subscription("teams", None).send_rate(), Some(4));
        assert_eq!(subscription("teams", Some(2)).send_rate(), Some(2));
        assert_eq!(subscription("mattermost", None).send_rate(), None);
    }

    #[test]
    fn local_slots_hold_the_rate_per_subscription() {
        let limits = LocalRateLimits::default();
        let (tenant, a, b) = (
            TenantId::new(),
            SubscriptionId::new(),
            SubscriptionId::new(),
        );
        let mut slots = Vec::new();
        for _ in 0..5 {
            slots.push(limits.reserve_now(&tenant, &a, 4, t(0)).unwrap());
        }
        assert_eq!(slots, vec![t(0), t(250), t(500), t(750), t(1000)]);
        // Another subscription has its own slots.
        assert_eq!(limits.reserve_now(&tenant, &b, 4, t(0)).unwrap(), t(0));
        // After a pause, the next slot is now.
        assert_eq!(
            limits.reserve_now(&tenant, &a, 4, t(9000)).unwrap(),
            t(9000)
        );
        assert_eq!(until(t(1000), t(250)), Duration::from_millis(750));
        assert_eq!(until(t(0), t(250)), Duration::ZERO);
    }
}
