//! `POST /v1/subscriptions/preview`: what a subscription would send for an event — the URL,
//! headers and body exactly as delivery builds them (`service::outbound::build_request`), without
//! sending, storing or reading anything but the caller's key. Cheap enough for every keystroke.
//!
//! The subscription is read like a new one, with a placeholder URL when it has none and the
//! event's type as its events when it lists none; it is signed with a throwaway secret (it has no
//! secret yet), and credentials are shown as `<redacted>`. A template that does not compile, or
//! fails on the previewed event, is answered 422 `invalid_template` with its line.

use axum::extract::State;
use axum::Json;
use herald_core::input::Fields;
use herald_core::render::is_sensitive_header;
use herald_core::signing::SigningSecret;
use herald_core::{
    BuiltinEventType, Event, EventId, EventType, FieldError, NewSubscription, Platform,
    Subscription, SubscriptionId, TenantId,
};
use serde::Serialize;
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use crate::api::error::{ApiError, ErrorBody};
use crate::api::extract::JsonObject;
use crate::api::requests::PreviewRequest;
use crate::api::views::{event_view, EventView};
use crate::auth::Caller;
use crate::service::outbound::build_request;
use crate::state::AppState;

const REDACTED: &str = "<redacted>";
const MAX_EVENT_TYPE_CHARS: usize = 200;
const NOTE: &str = "Nothing was sent or saved. The signature headers use a throwaway secret (the \
subscription's own is made when it is created), the id and timestamp are this preview's, and \
credentials are shown as <redacted>.";

/// What would be sent.
#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewView {
    #[schema(
        example = "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"
    )]
    pub url: String,
    #[schema(example = "POST")]
    pub method: &'static str,
    /// `[name, value]` pairs in the order sent; the outbound client adds only the transport's
    /// own (`host`, `content-length`).
    #[schema(value_type = Vec<Vec<String>>,
        example = json!([["content-type", "application/json"], ["webhook-id", "evt_01JF3Q8Z6X4N7W2C5V9B1M0KQR"]]))]
    pub headers: Vec<(String, String)>,
    /// The exact body text.
    pub body: String,
    /// The event previewed, with this preview's id and time.
    pub event: EventView,
    /// What differs from a real delivery (secret, id, time, credentials).
    pub note: &'static str,
}

/// Shows what a subscription would send for an event (given, or the example of `event_type`):
/// URL, headers and body exactly as delivered, without sending or saving anything.
#[utoipa::path(post, path = "/v1/subscriptions/preview", operation_id = "preview_subscription", tag = "subscriptions",
    security(("api_key" = [])),
    request_body = PreviewRequest,
    responses(
        (status = 200, description = "What would be sent", body = PreviewView),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, description = "The body is not `application/json`", body = ErrorBody),
        (status = 422, description = "A field is not valid (`field` names it; `subscription.` \
fields as in create), neither or both of `event` and `event_type`, or a template that cannot be \
used (`invalid_template`, with `line`)", body = ErrorBody),
    ))]
pub(super) async fn preview(
    State(state): State<AppState>,
    caller: Caller,
    JsonObject(body): JsonObject,
) -> Result<Json<PreviewView>, ApiError> {
    let mut fields = Fields::new(body);
    let subscription = match fields.take_value("subscription") {
        Some(Some(Value::Object(map))) => map,
        Some(Some(_)) => return Err(invalid("subscription", "`subscription` must be an object")),
        Some(None) | None => return Err(invalid("subscription", "`subscription` is required")),
    };
    let event = fields.take_value("event").flatten();
    let event_type = fields
        .take_string("event_type", MAX_EVENT_TYPE_CHARS)?
        .flatten();
    fields.finish()?;

    let (event_type, data) = match (event, event_type) {
        (Some(event), None) => parse_event(event)?,
        (None, Some(raw)) => {
            let event_type =
                EventType::parse(&raw).map_err(|e| invalid("event_type", e.to_string()))?;
            let data = example_for(&state, &caller.tenant_id, &event_type)
                .await?
                .ok_or_else(|| {
                    invalid(
                        "event_type",
                        format!("`{event_type}` has no example: send an `event` with its `data`"),
                    )
                })?;
            (event_type, data)
        }
        (None, None) => return Err(invalid("event", "give an `event` or an `event_type`")),
        (Some(_), Some(_)) => {
            return Err(invalid(
                "event_type",
                "give an `event` or an `event_type`, not both",
            ))
        }
    };

    let now = state.clock.now();
    let input = NewSubscription::parse(
        with_defaults(subscription, &event_type),
        state.settings.address_policy,
    )
    .map_err(|e| ApiError::from(nested(e)))?;
    let sub = Subscription::create(
        input,
        SubscriptionId::new(),
        caller.tenant_id,
        SigningSecret::generate(),
        now,
    );
    let event = Event {
        id: EventId::new(),
        tenant_id: caller.tenant_id,
        event_type,
        timestamp: now,
        data,
        subscriptions: Vec::new(),
    };
    let built = build_request(&sub, &event, now).map_err(ApiError::internal)?;
    if let Some(error) = built.template_error {
        return Err(FieldError::template(error).into());
    }
    let request = built.request;
    let mut headers: Vec<(String, String)> = request
        .headers
        .into_iter()
        .map(|(name, value)| {
            let value = if is_sensitive_header(&name) {
                REDACTED.to_owned()
            } else {
                value
            };
            (name, value)
        })
        .collect();
    headers.push((
        "user-agent".to_owned(),
        format!("Herald/{}", herald_core::VERSION),
    ));
    Ok(Json(PreviewView {
        url: request.url,
        method: "POST",
        headers,
        body: String::from_utf8_lossy(&request.body).into_owned(),
        event: event_view(&event),
        note: NOTE,
    }))
}

/// The example `data` of an event type, for a preview given only a type: the tenant's own type's
/// (through the cached catalog), else the built-in one's.
pub async fn example_for(
    state: &AppState,
    tenant: &TenantId,
    event_type: &EventType,
) -> Result<Option<Value>, ApiError> {
    let catalog = state.directory.catalog(tenant).await?;
    if let Some(own) = catalog.get(event_type) {
        return Ok(own.record.example.clone());
    }
    Ok(BuiltinEventType::find(event_type.as_str()).map(BuiltinEventType::example))
}

/// `{"type": …, "data": {…}}`; `data` defaults to `{}`.
fn parse_event(value: Value) -> Result<(EventType, Value), ApiError> {
    let Value::Object(map) = value else {
        return Err(invalid(
            "event",
            "`event` must be an object: {\"type\": …, \"data\": {…}}",
        ));
    };
    let mut fields = Fields::new(map);
    let raw = fields
        .take_required_string("type", MAX_EVENT_TYPE_CHARS)
        .map_err(|e| invalid("event.type", e.message))?;
    let event_type = EventType::parse(&raw).map_err(|e| invalid("event.type", e.to_string()))?;
    let data = match fields.take_value("data") {
        None | Some(None) => json!({}),
        Some(Some(data @ Value::Object(_))) => data,
        Some(Some(_)) => return Err(invalid("event.data", "`data` must be an object")),
    };
    fields
        .finish()
        .map_err(|e| invalid(format!("event.{}", e.field), e.message))?;
    Ok((event_type, data))
}

/// The subscription with what a preview may leave out: a placeholder URL for its platform,
/// placeholder Trello options, and the event's type as its events.
fn with_defaults(mut sub: Map<String, Value>, event_type: &EventType) -> Map<String, Value> {
    let platform = sub
        .get("platform")
        .and_then(Value::as_str)
        .and_then(|p| Platform::ALL.into_iter().find(|x| x.as_str() == p));
    if sub.get("url").is_none_or(Value::is_null) {
        if let Some(url) = platform.and_then(placeholder_url) {
            sub.insert("url".to_owned(), Value::String(url.to_owned()));
        }
    }
    if platform == Some(Platform::Trello) && sub.get("platform_options").is_none_or(Value::is_null)
    {
        sub.insert(
            "platform_options".to_owned(),
            json!({"list_id": "your-list-id", "api_key": "your-api-key", "token": "your-token"}),
        );
    }
    if sub.get("events").is_none_or(Value::is_null) {
        sub.insert("events".to_owned(), json!([event_type.as_str()]));
    }
    sub
}

/// A URL of the platform's usual shape (Trello has its own fixed one).
fn placeholder_url(platform: Platform) -> Option<&'static str> {
    match platform {
        Platform::Custom => Some("https://example.com/webhooks/herald"),
        Platform::Slack => {
            Some("https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX")
        }
        Platform::Mattermost => Some("https://mattermost.example.com/hooks/xxxxxxxxxxxxxxxxxxxxxxxxxx"),
        Platform::Teams => Some(
            "https://prod-00.westus.logic.azure.com/workflows/00000000000000000000000000000000/triggers/manual/paths/invoke",
        ),
        Platform::Trello => None,
    }
}

/// A subscription field's error, named as in the preview body (`subscription.url`); a template's
/// keeps `template`, its own field, as in create.
fn nested(mut err: FieldError) -> FieldError {
    if err.code != "invalid_template" {
        err.field = format!("subscription.{}", err.field);
    }
    err
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
    ApiError::validation(field, message)
}
