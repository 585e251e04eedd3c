//! How records are shown in API answers: one typed struct per answer, serialised as is and
//! described by the same type in the OpenAPI document ([`super::openapi`]), so the two cannot
//! drift. Secrets, bearer tokens and Trello credentials are never part of a view; the secret has its
//! own endpoint (and the create answer, once).
//!
//! Core types that carry no schema (ids, timestamps, patterns, URLs) are shown with `value_type`
//! overrides: each serialises as the string the override says.

use std::collections::BTreeMap;

use herald_core::health::{HealthView, LifecyclePolicy};
use herald_core::{
    Attempt, AttemptId, Delivery, DeliveryId, DeliveryStatus, Event, EventId, EventPattern,
    EventType, Platform, PlatformConfig, Subscription, SubscriptionId, TargetUrl,
};
use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
use utoipa::ToSchema;

/// A subscription as answered, with its health as of the answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionView {
    #[schema(value_type = String, example = "sub_01JF3Q8Z6X4N7W2C5V9B1M0KQR")]
    pub id: SubscriptionId,
    pub name: Option<String>,
    pub description: Option<String>,
    #[schema(schema_with = platform_schema)]
    pub platform: Platform,
    #[schema(value_type = String, format = "uri", example = "https://hooks.example.com/herald")]
    pub url: TargetUrl,
    /// Event types or patterns (`document.*`, `*`).
    #[schema(value_type = Vec<String>, example = json!(["document.created", "article.*"]))]
    pub events: Vec<EventPattern>,
    #[schema(schema_with = filter_schema)]
    pub filter: Option<Value>,
    /// The message template, if it has one (none: Herald's own message).
    pub template: Option<String>,
    pub enabled: bool,
    /// Why Herald disabled it (410 Gone, no success for too long), while it is disabled.
    pub disabled_reason: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub disabled_at: Option<Timestamp>,
    /// Extra headers sent with every delivery (names lowercase).
    pub headers: BTreeMap<String, String>,
    /// Whether deliveries carry `Authorization: Bearer <auth_token>` (the token is never shown).
    pub auth_token_set: bool,
    pub rate_limit_per_sec: Option<u32>,
    pub health: HealthOut,
    pub platform_options: PlatformOptionsView,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

/// The create answer: the subscription and its signing secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedSubscription {
    #[serde(flatten)]
    pub subscription: SubscriptionView,
    /// The signing secret (`whsec_…`): keep it to verify signatures.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: String,
}

/// Platform settings as shown: Mattermost's `username` and `icon_url`; Trello's `list_id` (its key
/// and token are only said to be set). Empty for the other platforms.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct PlatformOptionsView {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub username: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub icon_url: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub list_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key_set: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_set: Option<bool>,
}

/// A subscription's delivery health.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Health)]
pub struct HealthOut {
    /// `healthy`, `failing` (failures since the last success) or `paused` (the breaker is open).
    #[schema(value_type = String, example = "healthy")]
    pub state: &'static str,
    pub consecutive_failures: u32,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub failing_since: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_failure_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_success_at: Option<Timestamp>,
    /// `closed`, `open` (waiting for `next_probe_at`) or `probing`.
    #[schema(value_type = String, example = "closed")]
    pub breaker: &'static str,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_probe_at: Option<Timestamp>,
    /// When it is disabled if no delivery succeeds first.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub disables_at: Option<Timestamp>,
}

impl From<HealthView> for HealthOut {
    fn from(view: HealthView) -> Self {
        // Destructured whole: a field added to the core's view fails to compile here.
        let HealthView {
            state,
            consecutive_failures,
            failing_since,
            last_failure_at,
            last_success_at,
            breaker,
            next_probe_at,
            disables_at,
        } = view;
        Self {
            state,
            consecutive_failures,
            failing_since,
            last_failure_at,
            last_success_at,
            breaker,
            next_probe_at,
            disables_at,
        }
    }
}

/// A subscription with its health as of `now` under `lifecycle`.
pub fn subscription_view(
    sub: &Subscription,
    lifecycle: &LifecyclePolicy,
    now: Timestamp,
) -> SubscriptionView {
    let platform_options = match &sub.platform {
        PlatformConfig::Mattermost { username, icon_url } => PlatformOptionsView {
            username: Some(username.clone()),
            icon_url: Some(icon_url.clone()),
            ..PlatformOptionsView::default()
        },
        PlatformConfig::Trello(t) => PlatformOptionsView {
            list_id: Some(t.list_id.clone()),
            api_key_set: Some(true),
            token_set: Some(true),
            ..PlatformOptionsView::default()
        },
        PlatformConfig::Custom | PlatformConfig::Slack | PlatformConfig::Teams => {
            PlatformOptionsView::default()
        }
    };
    SubscriptionView {
        id: sub.id,
        name: sub.name.clone(),
        description: sub.description.clone(),
        platform: sub.platform.platform(),
        url: sub.url.clone(),
        events: sub.events.clone(),
        filter: sub.filter.as_ref().map(herald_core::Filter::to_json),
        template: sub.template.as_ref().map(|t| t.as_str().to_owned()),
        enabled: sub.enabled,
        disabled_reason: sub.disabled_reason.clone(),
        disabled_at: sub.disabled_at,
        headers: sub.headers.clone(),
        auth_token_set: sub.auth_token.is_some(),
        rate_limit_per_sec: sub.rate_limit_per_sec,
        health: lifecycle.view(&sub.health, now).into(),
        platform_options,
        created_at: sub.created_at,
        updated_at: sub.updated_at,
    }
}

/// One delivery: an event to one subscription.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    #[schema(value_type = String, example = "del_01JF3Q8Z6X4N7W2C5V9B1M0KQR")]
    pub id: DeliveryId,
    #[schema(value_type = String)]
    pub subscription_id: SubscriptionId,
    #[schema(value_type = String)]
    pub event_id: EventId,
    #[schema(value_type = String, example = "document.created")]
    pub event_type: EventType,
    #[schema(schema_with = delivery_status_schema)]
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: u32,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_attempt_at: Option<Timestamp>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

pub fn delivery_view(d: &Delivery) -> DeliveryView {
    DeliveryView {
        id: d.id,
        subscription_id: d.subscription_id,
        event_id: d.event_id,
        event_type: d.event_type.clone(),
        status: d.status,
        attempts: d.attempts,
        last_status_code: d.last_status_code,
        last_error: d.last_error.clone(),
        next_attempt_at: d.next_attempt_at,
        created_at: d.created_at,
        updated_at: d.updated_at,
    }
}

/// A delivery with every attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub delivery: DeliveryView,
    pub attempts_log: Vec<AttemptView>,
}

/// One attempt of a delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    #[schema(value_type = String, example = "att_01JF3Q8Z6X4N7W2C5V9B1M0KQR")]
    pub id: AttemptId,
    /// 1-based, across replays.
    pub number: u32,
    #[schema(value_type = String, format = DateTime)]
    pub started_at: Timestamp,
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    /// At most 4 KiB of the response body.
    pub response_excerpt: Option<String>,
    pub error: Option<String>,
    pub succeeded: bool,
    /// `delivered`, `accepted` (202: the receiver queued it, as Teams Workflows does) or `failed`.
    #[schema(value_type = String, example = "delivered")]
    pub result: &'static str,
}

pub fn attempt_view(a: &Attempt) -> AttemptView {
    AttemptView {
        id: a.id,
        number: a.number,
        started_at: a.started_at,
        status_code: a.status_code,
        latency_ms: a.latency_ms,
        response_excerpt: a.response_excerpt.clone(),
        error: a.error.clone(),
        succeeded: a.succeeded,
        result: attempt_result(a),
    }
}

/// `delivered`, `accepted` (202: the receiver queued it to process later, as Teams Workflows
/// does; Herald cannot know whether it was then posted), or `failed`.
fn attempt_result(a: &Attempt) -> &'static str {
    match (a.succeeded, a.status_code) {
        (true, Some(202)) => "accepted",
        (true, _) => "delivered",
        (false, _) => "failed",
    }
}

/// An event as received.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    #[schema(value_type = String, example = "evt_01JF3Q8Z6X4N7W2C5V9B1M0KQR")]
    pub id: EventId,
    #[serde(rename = "type")]
    #[schema(value_type = String, example = "document.created")]
    pub event_type: EventType,
    #[schema(value_type = String, format = DateTime)]
    pub timestamp: Timestamp,
    #[schema(value_type = Object)]
    pub data: Value,
}

pub fn event_view(e: &Event) -> EventView {
    EventView {
        id: e.id,
        event_type: e.event_type.clone(),
        timestamp: e.timestamp,
        data: e.data.clone(),
    }
}

/// An event and its delivery to each subscription it matched.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventDetail {
    #[serde(flatten)]
    pub event: EventView,
    pub deliveries: Vec<DeliveryView>,
}

/// A page of subscriptions.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionList {
    pub data: Vec<SubscriptionView>,
    /// Pass as `?cursor=` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// A page of deliveries.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    pub data: Vec<DeliveryView>,
    /// Pass as `?cursor=` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// `{"type": "string", "enum": values}`.
pub(crate) fn string_enum<'a>(values: impl IntoIterator<Item = &'a str>) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values))
        .build()
}

/// A payload filter, or null for none (the language is `herald_core::filter`'s, limits included).
pub fn filter_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::Object,
            Type::Null,
        ]))
        .description(Some(
            "Which events of the subscribed types are delivered, by their fields (none: all). \
             A condition is `{\"path\": P, OP: V}` with OP one of `eq` (string, number, boolean \
             or null), `in` (1 to 100 such values), `exists` (true: present and not null), `gt`, \
             `gte`, `lt`, `lte` (a number) or `prefix` (a string); conditions combine as \
             `{\"all\": [..]}`, `{\"any\": [..]}` and `{\"not\": {..}}`. P is dotted over the \
             event: `type`, `id`, `timestamp` or `data.…` (`data.space.name`; digits index a list, \
             `data.tags.0`). A path that leads nowhere, or to another kind of value, is false. \
             Limits: 8 levels, 64 conditions, paths of 256 characters, 4 KiB in all. A bad \
             filter is answered 422 with `field` naming the bad part (`filter.all[1].in`).",
        ))
        .examples([serde_json::json!({"all": [
            {"path": "data.space.name", "eq": "Handbook"},
            {"not": {"path": "data.draft", "eq": true}}
        ]})])
        .build()
}

/// Every platform, from the core's own list.
pub fn platform_schema() -> Object {
    string_enum(Platform::ALL.iter().map(Platform::as_str))
}

fn delivery_status_schema() -> Object {
    string_enum(
        [
            DeliveryStatus::Pending,
            DeliveryStatus::Retrying,
            DeliveryStatus::Succeeded,
            DeliveryStatus::Failed,
        ]
        .iter()
        .map(DeliveryStatus::as_str),
    )
}
