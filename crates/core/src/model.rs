//! Herald's records: tenants, API keys, subscriptions, events, deliveries and attempts.
//!
//! These are the shapes the store keeps. They are built from parsed input (ids, patterns, URLs,
//! secrets), so a stored record is a valid one. API answers are built from them by the application
//! layer, which decides what may be shown (secrets and Trello credentials never are, unless asked for).

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::filter::Filter;
use crate::health::Health;
use crate::ids::{ApiKeyId, AttemptId, DeliveryId, EventId, SubscriptionId, TenantId};
use crate::pattern::{EventPattern, EventType};
use crate::render::MessageTemplate;
use crate::signing::SigningSecret;
use crate::subscription::TrelloCredential;
use crate::target::TargetUrl;

/// A tenant: owns subscriptions, events and API keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub created_at: Timestamp,
}

/// An API key as stored: only the SHA-256 of the secret part (keys are 256-bit random, so a fast
/// hash is enough; there is nothing to brute-force).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    pub id: ApiKeyId,
    pub tenant_id: TenantId,
    /// Lowercase hex SHA-256 of the full key text.
    pub hash: String,
    pub name: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// Where and how a subscription's deliveries go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Custom,
    Slack,
    Mattermost,
    Teams,
    Trello,
}

impl Platform {
    pub const ALL: [Platform; 5] = [
        Platform::Custom,
        Platform::Slack,
        Platform::Mattermost,
        Platform::Teams,
        Platform::Trello,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Custom => "custom",
            Self::Slack => "slack",
            Self::Mattermost => "mattermost",
            Self::Teams => "teams",
            Self::Trello => "trello",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == input)
    }
}

/// Platform-specific settings, parsed together with the platform so they always agree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "platform", rename_all = "lowercase")]
pub enum PlatformConfig {
    Custom,
    Slack,
    Mattermost {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        username: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        icon_url: Option<String>,
    },
    Teams,
    Trello(TrelloOptions),
}

impl PlatformConfig {
    pub fn platform(&self) -> Platform {
        match self {
            Self::Custom => Platform::Custom,
            Self::Slack => Platform::Slack,
            Self::Mattermost { .. } => Platform::Mattermost,
            Self::Teams => Platform::Teams,
            Self::Trello(_) => Platform::Trello,
        }
    }
}

/// Trello's card-creation settings. `api_key` and `token` are credentials: never logged, never
/// returned by the API (their type's `Debug` shows `<redacted>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrelloOptions {
    pub list_id: String,
    pub api_key: TrelloCredential,
    pub token: TrelloCredential,
}

/// A signing secret and, for a rotated-out secret, when it stops signing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretEntry {
    pub secret: SigningSecret,
    pub expires_at: Option<Timestamp>,
}

/// A subscription: which events go to which endpoint, and how. Its `Debug` leaves out what is a
/// credential (see `subscription`).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: SubscriptionId,
    pub tenant_id: TenantId,
    pub name: Option<String>,
    pub description: Option<String>,
    pub platform: PlatformConfig,
    /// The callback URL as checked at creation (stored as its text); delivery checks it again under
    /// the current address policy.
    pub url: TargetUrl,
    pub events: Vec<EventPattern>,
    /// A condition on the event's fields, applied after `events` (none: every matching event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
    /// The owner's message template for a chat platform or Trello (none: Herald's message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<MessageTemplate>,
    pub enabled: bool,
    /// Why Herald disabled it (410 Gone, too many failures), if it did.
    pub disabled_reason: Option<String>,
    /// When it was disabled (by Herald or by its owner), while it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<Timestamp>,
    /// Current secret first; older ones until they expire.
    pub secrets: Vec<SecretEntry>,
    pub headers: BTreeMap<String, String>,
    pub auth_token: Option<String>,
    pub rate_limit_per_sec: Option<u32>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Its delivery health, as stored beside it (never in its document: stores keep it apart so
    /// that an owner's update cannot overwrite what workers recorded, see `update_health`).
    #[serde(skip)]
    pub health: Health,
}

impl Subscription {
    pub fn matches(&self, event_type: &EventType) -> bool {
        self.events.iter().any(|p| p.matches(event_type))
    }

    /// Renders its template (if it has one, on a platform that takes one) on each of `events`,
    /// refusing it at the first that fails: the check made when a template is saved.
    pub fn check_template(&self, events: &[Event]) -> Result<(), crate::input::FieldError> {
        match (
            &self.template,
            crate::render::Markup::of(self.platform.platform()),
        ) {
            (Some(template), Some(markup)) => template
                .check(markup, events)
                .map_err(crate::input::FieldError::template),
            _ => Ok(()),
        }
    }

    /// Whether `event` is for it: its type matches a pattern and its fields pass the filter.
    pub fn accepts(&self, event: &Event) -> bool {
        self.matches(&event.event_type) && self.filter.as_ref().is_none_or(|f| f.matches(event))
    }

    /// The secrets that sign at `now`: the current one and any rotated-out one not yet expired.
    pub fn signing_secrets(&self, now: Timestamp) -> impl Iterator<Item = &SigningSecret> {
        self.secrets
            .iter()
            .filter(move |e| e.expires_at.is_none_or(|t| t > now))
            .map(|e| &e.secret)
    }

    pub fn current_secret(&self) -> Option<&SigningSecret> {
        self.secrets.first().map(|e| &e.secret)
    }
}

/// An accepted event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: EventId,
    pub tenant_id: TenantId,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub timestamp: Timestamp,
    pub data: serde_json::Value,
    /// The subscriptions it goes to, decided when it was accepted (the core's
    /// [`plan`](crate::delivery::plan) rule): one delivery each. Kept with the event so its
    /// deliveries can be found, and shown as pending until their first attempt, without an index.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscriptions: Vec<SubscriptionId>,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Queued, not tried yet.
    Pending,
    /// Tried and failed; another try is scheduled.
    Retrying,
    Succeeded,
    /// Gave up: permanent failure, schedule exhausted, or subscription gone.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Retrying => "retrying",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

/// One event's delivery to one subscription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: DeliveryId,
    pub tenant_id: TenantId,
    pub subscription_id: SubscriptionId,
    pub event_id: EventId,
    pub event_type: EventType,
    pub status: DeliveryStatus,
    /// Attempts made so far (all runs).
    pub attempts: u32,
    /// The attempt count when the current run began (0, or where a replay/recover restarted the
    /// schedule). The retry schedule is indexed by `attempts - run_started_at`.
    pub run_started_at: u32,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Delivery {
    /// The delivery of `event` to `subscription`, not tried yet and due now. Its id derives from
    /// both, so creating it twice (an at-least-once fan-out) names the same delivery.
    pub fn pending(event: &Event, subscription: SubscriptionId, now: Timestamp) -> Self {
        Self {
            id: DeliveryId::derive(&event.id, &subscription),
            tenant_id: event.tenant_id,
            subscription_id: subscription,
            event_id: event.id,
            event_type: event.event_type.clone(),
            status: DeliveryStatus::Pending,
            attempts: 0,
            run_started_at: 0,
            last_status_code: None,
            last_error: None,
            next_attempt_at: Some(now),
            created_at: now,
            updated_at: now,
        }
    }
}

impl Event {
    /// The ids of the event's deliveries, in plan order: one per planned subscription, derived
    /// from the event and it. Every delivery of the event has one of them, so a store finds them
    /// by key, without an index.
    pub fn delivery_ids(&self) -> impl Iterator<Item = DeliveryId> + '_ {
        self.subscriptions
            .iter()
            .map(|sub| DeliveryId::derive(&self.id, sub))
    }

    /// Every delivery of the event: one per planned subscription, in plan order, as `stored` or,
    /// not stored before its first attempt, pending; then any stored one outside the plan.
    pub fn deliveries(&self, mut stored: Vec<Delivery>) -> Vec<Delivery> {
        let mut all: Vec<Delivery> = self
            .subscriptions
            .iter()
            .map(|sub| {
                let id = DeliveryId::derive(&self.id, sub);
                match stored.iter().position(|d| d.id == id) {
                    Some(i) => stored.swap_remove(i),
                    None => Delivery::pending(self, *sub, self.timestamp),
                }
            })
            .collect();
        all.append(&mut stored);
        all
    }
}

/// How an event's deliveries stand, across its subscriptions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DeliverySummary {
    pub total: usize,
    pub succeeded: usize,
    pub failed: usize,
    /// Not finished: not tried yet, or failed and retrying.
    pub pending: usize,
}

impl DeliverySummary {
    pub fn of(deliveries: &[Delivery]) -> Self {
        let count = |status| deliveries.iter().filter(|d| d.status == status).count();
        let (succeeded, failed) = (
            count(DeliveryStatus::Succeeded),
            count(DeliveryStatus::Failed),
        );
        Self {
            total: deliveries.len(),
            succeeded,
            failed,
            pending: deliveries.len() - succeeded - failed,
        }
    }
}

/// One HTTP attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub id: AttemptId,
    pub delivery_id: DeliveryId,
    pub tenant_id: TenantId,
    pub subscription_id: SubscriptionId,
    /// 1-based, across runs.
    pub number: u32,
    pub started_at: Timestamp,
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    /// At most 4 KiB of the response body, lossily decoded as UTF-8.
    pub response_excerpt: Option<String>,
    pub error: Option<String>,
    pub succeeded: bool,
}

/// The idempotency record kept for intake: which event a key produced, and a hash of the request
/// body so a reuse with a different body can be refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub tenant_id: TenantId,
    /// `key:<Idempotency-Key>` or `id:<event id given in the body>`.
    pub key: String,
    pub body_sha256: String,
    pub event_id: EventId,
    pub created_at: Timestamp,
    /// The end of the idempotency window: from then on the key is free again. Records written
    /// before windows were stored never expire.
    #[serde(default = "never")]
    pub expires_at: Timestamp,
}

fn never() -> Timestamp {
    Timestamp::MAX
}

/// A message on the events queue: fan this event out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventMessage {
    pub tenant_id: TenantId,
    pub event_id: EventId,
    /// The event itself when it is small enough to ride the queue (see [`Carried`]); otherwise
    /// the receiver reads it from the store by id (a claim check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<Event>,
}

/// A message on the deliveries queue: make attempt `attempt` of this delivery.
///
/// It carries the delivery as it stood when the message was sent, and the event when it is small,
/// so a worker makes the attempt without reading either back. (A message received more than once is
/// checked against the store first.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryMessage {
    pub delivery: Delivery,
    /// The attempt number this message is for (1-based). A message whose attempt is already recorded
    /// is a duplicate and is dropped.
    pub attempt: u32,
    /// Not before this time: queues cap their delays (SQS at 15 min), so a longer wait is a chain of
    /// messages, each re-sent until this time has come.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<Timestamp>,
    /// The send slot reserved for this attempt under the subscription's rate
    /// ([`crate::rate`]): it goes out at this time, without reserving again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<Timestamp>,
    /// The event, when small enough (see [`Carried`]); otherwise read from the store by id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<Event>,
}

/// How big an event may be to ride inside queue messages: its JSON encoding in bytes. A queue
/// decides (SQS: a batch of ten messages stays within one billed 64 KiB request; the embedded queue
/// carries none, its store being in the same process).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Carried(pub usize);

impl Carried {
    /// `event` if its JSON fits, for a message to carry.
    pub fn carry(self, event: &Event) -> Option<Event> {
        if self.0 == 0 {
            return None;
        }
        let size = serde_json::to_vec(event)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        (size <= self.0).then(|| event.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(subscriptions: Vec<SubscriptionId>) -> Event {
        Event {
            id: EventId::new(),
            tenant_id: TenantId::new(),
            event_type: EventType::parse("document.created").unwrap_or_else(|e| panic!("{e}")),
            timestamp: Timestamp::UNIX_EPOCH,
            data: serde_json::json!({}),
            subscriptions,
        }
    }

    #[test]
    fn an_events_delivery_ids_are_its_pending_deliveries_ids_in_plan_order() {
        let (a, b) = (SubscriptionId::new(), SubscriptionId::new());
        let ev = event(vec![a, b]);
        let ids: Vec<_> = ev.delivery_ids().collect();
        let pending: Vec<_> = [a, b]
            .map(|s| Delivery::pending(&ev, s, Timestamp::UNIX_EPOCH).id)
            .to_vec();
        assert_eq!(ids, pending);
    }

    #[test]
    fn an_events_deliveries_are_its_plan_as_stored_or_pending() {
        let (a, b, c) = (
            SubscriptionId::new(),
            SubscriptionId::new(),
            SubscriptionId::new(),
        );
        let ev = event(vec![a, b, c]);
        let mut done = Delivery::pending(&ev, c, Timestamp::UNIX_EPOCH);
        done.status = DeliveryStatus::Succeeded;
        let mut gone = Delivery::pending(&ev, a, Timestamp::UNIX_EPOCH);
        gone.status = DeliveryStatus::Failed;
        let mut retrying = Delivery::pending(&ev, SubscriptionId::new(), Timestamp::UNIX_EPOCH);
        retrying.status = DeliveryStatus::Retrying;
        let all = ev.deliveries(vec![done.clone(), retrying.clone(), gone.clone()]);
        let subs: Vec<_> = all.iter().map(|d| d.subscription_id).collect();
        assert_eq!(subs, vec![a, b, c, retrying.subscription_id]);
        assert_eq!(all[1].status, DeliveryStatus::Pending);
        assert_eq!(
            DeliverySummary::of(&all),
            DeliverySummary {
                total: 4,
                succeeded: 1,
                failed: 1,
                pending: 2
            }
        );
        assert_eq!(
            DeliverySummary::of(&event(vec![]).deliveries(vec![])),
            DeliverySummary::default()
        );
    }
}
