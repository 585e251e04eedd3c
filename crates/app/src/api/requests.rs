//! The wire shape of request bodies, for the OpenAPI document.
//!
//! Handlers read bodies as JSON objects and hand them to the core's parsers
//! (`herald_core::subscription`, [`crate::service::intake::parse_event_input`]), which check more
//! than a schema can say (URLs, patterns, header names). These types describe what those parsers
//! take: the same field names, types and bounds, and no other field (`deny_unknown_fields`, as the
//! parsers refuse leftovers). Their examples are sent through the real handlers by a test in
//! [`super::openapi`], so a documented body is one the API accepts.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

/// A new subscription.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "Docs to the team channel",
    "platform": "custom",
    "url": "https://hooks.example.com/herald",
    "events": ["document.created", "article.*"],
    "filter": {"path": "data.space.name", "eq": "Handbook"},
    "headers": {"x-team": "docs"},
    "rate_limit_per_sec": 5
}))]
pub struct SubscriptionCreate {
    #[schema(max_length = 200)]
    pub name: Option<String>,
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    #[schema(schema_with = super::views::platform_schema)]
    pub platform: String,
    /// The callback URL: `https://` to a public address (`herald dev` also allows `http://` and
    /// loopback). Optional for Trello, which posts to its card endpoint.
    #[schema(format = "uri", max_length = 2048)]
    pub url: Option<String>,
    /// 1 to 50 event types or patterns: `document.created`, `article.*`, `*`, `herald.*`.
    #[schema(min_items = 1, max_items = 50, example = json!(["document.created"]))]
    pub events: Vec<String>,
    #[schema(schema_with = super::views::filter_schema)]
    pub filter: Option<Value>,
    /// A message template (minijinja, at most 4 KiB) for slack, mattermost, teams or trello: the
    /// message's text, with `type`, `id`, `timestamp`, `data` and `event` from the event; values
    /// are escaped for the platform. Refused for custom. A template that does not compile or fails
    /// on the examples of the types subscribed to is answered 422 `invalid_template` with its line.
    #[schema(
        max_length = 4096,
        example = "{{ data.author.name }} published {{ data.title }}"
    )]
    pub template: Option<String>,
    /// Defaults to true (`null` is refused).
    #[serde(default)]
    #[schema(default = true)]
    pub enabled: bool,
    /// Up to 20 extra headers sent with every delivery; Herald's own (`content-type`,
    /// `authorization`, `webhook-*`, …) cannot be set.
    pub headers: Option<BTreeMap<String, String>>,
    /// Sent as `Authorization: Bearer <auth_token>`: visible ASCII, no spaces.
    #[schema(max_length = 4096)]
    pub auth_token: Option<String>,
    #[schema(minimum = 1, maximum = 10000)]
    pub rate_limit_per_sec: Option<u32>,
    pub platform_options: Option<PlatformOptions>,
}

/// A partial update: absent fields stay, `null` clears what can be cleared.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"enabled": false, "description": "paused for the migration"}))]
pub struct SubscriptionUpdate {
    #[schema(max_length = 200)]
    pub name: Option<String>,
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    #[schema(schema_with = super::views::platform_schema)]
    pub platform: Option<String>,
    #[schema(format = "uri", max_length = 2048)]
    pub url: Option<String>,
    #[serde(default)]
    #[schema(min_items = 1, max_items = 50)]
    pub events: Vec<String>,
    /// `null` removes the filter.
    #[schema(schema_with = super::views::filter_schema)]
    pub filter: Option<Value>,
    /// `null` removes the template (Herald's own message again).
    #[schema(max_length = 4096)]
    pub template: Option<String>,
    /// `null` is refused.
    #[serde(default)]
    pub enabled: bool,
    pub headers: Option<BTreeMap<String, String>>,
    #[schema(max_length = 4096)]
    pub auth_token: Option<String>,
    #[schema(minimum = 1, maximum = 10000)]
    pub rate_limit_per_sec: Option<u32>,
    pub platform_options: Option<PlatformOptions>,
}

/// What to preview: a subscription as in create (only `platform` required) and an event, given or
/// the example of a type (one of `event`, `event_type`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "subscription": {
        "platform": "teams",
        "template": "{{ data.author.name }} published {{ data.title }} in {{ data.space.name }}"
    },
    "event_type": "document.published"
}))]
pub struct PreviewRequest {
    pub subscription: PreviewSubscription,
    pub event: Option<PreviewEvent>,
    /// An event type whose example data to use (instead of `event`).
    #[schema(example = "document.published", max_length = 200)]
    pub event_type: Option<String>,
}

/// A subscription to preview: the fields of create, all optional but `platform`. Without `url`, a
/// placeholder of the platform's shape; without `events`, the event's type.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewSubscription {
    #[schema(max_length = 200)]
    pub name: Option<String>,
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    #[schema(schema_with = super::views::platform_schema)]
    pub platform: String,
    #[schema(format = "uri", max_length = 2048)]
    pub url: Option<String>,
    #[schema(min_items = 1, max_items = 50)]
    pub events: Option<Vec<String>>,
    #[schema(schema_with = super::views::filter_schema)]
    pub filter: Option<Value>,
    #[schema(max_length = 4096)]
    pub template: Option<String>,
    /// `null` is refused.
    #[serde(default)]
    pub enabled: bool,
    pub headers: Option<BTreeMap<String, String>>,
    #[schema(max_length = 4096)]
    pub auth_token: Option<String>,
    #[schema(minimum = 1, maximum = 10000)]
    pub rate_limit_per_sec: Option<u32>,
    pub platform_options: Option<PlatformOptions>,
}

/// An event to preview; `data` defaults to `{}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewEvent {
    #[serde(rename = "type")]
    #[schema(example = "document.published", max_length = 200)]
    pub event_type: String,
    #[schema(value_type = Object)]
    pub data: Option<Value>,
}

/// Settings of the platforms that have some: Mattermost (`username`, `icon_url`) and Trello
/// (`list_id`, `api_key`, `token`, all required for Trello).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlatformOptions {
    pub username: Option<String>,
    #[schema(format = "uri")]
    pub icon_url: Option<String>,
    pub list_id: Option<String>,
    pub api_key: Option<String>,
    pub token: Option<String>,
}

/// Queue again the failed deliveries created since `since`, a bounded step at a time.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"since": "2026-12-01T10:00:00Z"}))]
pub struct RecoverRequest {
    #[schema(format = DateTime)]
    pub since: String,
    /// `next_cursor` of the previous step.
    pub cursor: Option<String>,
    /// Deliveries examined in this step (default 500).
    #[schema(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// Optional body of enable.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"recover": true}))]
pub struct EnableRequest {
    /// Also queue again what failed while it was down (`null` is refused).
    #[serde(default)]
    pub recover: bool,
}

/// An event to deliver.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "type": "document.created",
    "data": {"id": "doc_42", "title": "Onboarding", "url": "https://docs.example.com/doc_42"}
}))]
pub struct EventInput {
    /// A dotted lowercase event type; the `herald.` namespace is Herald's own.
    #[serde(rename = "type")]
    #[schema(example = "document.created")]
    pub event_type: String,
    #[schema(value_type = Object)]
    pub data: Value,
    /// Your own id: a second event with the same id and body is the same event.
    #[schema(min_length = 1, max_length = 255)]
    pub id: Option<String>,
}

/// Up to 100 events at once, each answered on its own.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"events": [
    {"type": "document.created", "data": {"id": "doc_1"}},
    {"type": "document.updated", "data": {"id": "doc_1"}, "idempotency_key": "doc_1-v2"}
]}))]
pub struct BatchRequest {
    /// Each a [`BatchItem`]. An item that is not (of another shape, with an unknown field, an
    /// invalid type) does not fail the request: it is answered `rejected` in its place, so the
    /// items' schema is left open here.
    #[schema(min_items = 1, max_items = 100, value_type = Vec<Value>)]
    pub events: Vec<Value>,
}

/// One event of a batch: the body of `POST /v1/events` and an optional idempotency key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchItem {
    #[serde(rename = "type")]
    pub event_type: String,
    #[schema(value_type = Object)]
    pub data: Value,
    #[schema(min_length = 1, max_length = 255)]
    pub id: Option<String>,
    #[schema(min_length = 1, max_length = 255)]
    pub idempotency_key: Option<String>,
}

/// Optional: the type whose example to send instead of a `webhook.test` event.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"event_type": "document.published"}))]
pub struct TestRequest {
    /// A built-in type or one of the tenant's, with an example.
    #[schema(example = "document.published")]
    pub event_type: Option<String>,
}
