//! `/v1/subscriptions`: create, list, read, update, delete, secrets, "save and test", recover.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use herald_core::ports::SubscriptionFilter;
use herald_core::signing::SigningSecret;
use herald_core::{
    EventPattern, EventType, Platform, PlatformConfig, SecretEntry, Subscription, SubscriptionId,
    TargetUrl, TrelloOptions,
};
use jiff::Timestamp;
use serde_json::{json, Value};

use super::error::ApiError;
use super::extract::{parse_path_id, Fields, JsonObject, PageQuery};
use super::views::{delivery_view, subscription_view};
use crate::auth::Caller;
use crate::service::{delivery, recover};
use crate::state::AppState;

const TRELLO_CARDS_URL: &str = "https://api.trello.com/1/cards";
const MAX_PATTERNS: usize = 50;
const MAX_HEADERS: usize = 20;
const MAX_HEADER_VALUE: usize = 1024;
/// How long a rotated-out secret keeps signing.
const ROTATION_OVERLAP: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/subscriptions", post(create).get(list))
        .route(
            "/v1/subscriptions/{id}",
            get(read).patch(update).delete(remove),
        )
        .route("/v1/subscriptions/{id}/secret", get(secret))
        .route("/v1/subscriptions/{id}/secret/rotate", post(rotate))
        .route("/v1/subscriptions/{id}/test", post(test))
        .route("/v1/subscriptions/{id}/deliveries", get(deliveries))
        .route("/v1/subscriptions/{id}/recover", post(recover_failed))
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonObject(body): JsonObject,
) -> Result<impl IntoResponse, ApiError> {
    let now = state.clock.now();
    let mut fields = Fields::new(body);
    let platform_raw = required_string(&mut fields, "platform")?;
    let platform = parse_platform(&platform_raw)?;
    let options = fields.take_value("platform_options").flatten();
    let platform = parse_platform_options(platform, options)?;
    let url = match (fields.take_string("url", 2048)?.flatten(), &platform) {
        (None, PlatformConfig::Trello(_)) => TRELLO_CARDS_URL.to_owned(),
        (None, _) => return Err(ApiError::validation("url", "`url` is required")),
        (Some(raw), _) => parse_url(&raw, &state)?,
    };
    let events = parse_events(fields.take_value("events").flatten())?;
    let name = non_empty(fields.take_string("name", 200)?.flatten());
    let description = non_empty(fields.take_string("description", 2000)?.flatten());
    let enabled = fields.take_bool("enabled")?.unwrap_or(true);
    let headers = parse_headers(fields.take_value("headers").flatten())?;
    let auth_token = parse_auth_token(fields.take_string("auth_token", 4096)?.flatten())?;
    let rate_limit_per_sec = parse_rate_limit(fields.take_value("rate_limit_per_sec").flatten())?;
    fields.finish()?;

    let existing = state
        .store
        .list_subscriptions(
            &caller.tenant_id,
            &SubscriptionFilter::default(),
            &herald_core::ports::PageRequest {
                limit: state.settings.max_subscriptions_per_tenant,
                cursor: None,
            },
        )
        .await?;
    if existing.items.len() >= state.settings.max_subscriptions_per_tenant {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "limit_reached",
            format!(
                "a tenant can have at most {} subscriptions",
                state.settings.max_subscriptions_per_tenant
            ),
        ));
    }

    let secret = SigningSecret::generate();
    let sub = Subscription {
        id: SubscriptionId::new(),
        tenant_id: caller.tenant_id,
        name,
        description,
        platform,
        url,
        events,
        enabled,
        disabled_reason: None,
        secrets: vec![SecretEntry {
            secret: secret.clone(),
            expires_at: None,
        }],
        headers,
        auth_token,
        rate_limit_per_sec,
        created_at: now,
        updated_at: now,
    };
    state.store.create_subscription(&sub).await?;
    tracing::info!(tenant = %sub.tenant_id, subscription = %sub.id, platform = sub.platform.platform().as_str(), "subscription created");
    let mut view = subscription_view(&sub);
    view["secret"] = json!(secret.expose());
    Ok((StatusCode::CREATED, Json(view)))
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    mut query: PageQuery,
) -> Result<Json<Value>, ApiError> {
    let event = match query.rest.remove("event") {
        None => None,
        Some(raw) => Some(EventType::parse(&raw).map_err(|e| {
            ApiError::bad_request("invalid_query", e.to_string()).with_field("event")
        })?),
    };
    let enabled = match query.rest.remove("enabled").as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => {
            return Err(
                ApiError::bad_request("invalid_query", "`enabled` must be true or false")
                    .with_field("enabled"),
            )
        }
    };
    let page = state
        .store
        .list_subscriptions(
            &caller.tenant_id,
            &SubscriptionFilter { event, enabled },
            &query.page(),
        )
        .await?;
    Ok(Json(json!({
        "data": page.items.iter().map(subscription_view).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor,
    })))
}

/// Loads a subscription of the caller's tenant; any other tenant's id is simply not found.
pub(super) async fn load(
    state: &AppState,
    caller: &Caller,
    raw_id: &str,
) -> Result<Subscription, ApiError> {
    let id: SubscriptionId = parse_path_id(raw_id, "subscription")?;
    state
        .store
        .get_subscription(&caller.tenant_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("subscription"))
}

async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let sub = load(&state, &caller, &id).await?;
    Ok(Json(subscription_view(&sub)))
}

async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Json<Value>, ApiError> {
    let mut sub = load(&state, &caller, &id).await?;
    let mut fields = Fields::new(body);

    // Platform and its options are parsed together so they always agree.
    let platform_given = fields.take_string("platform", 32)?;
    let options_given = fields.take_value("platform_options");
    if platform_given.is_some() || options_given.is_some() {
        let platform = match platform_given.flatten() {
            Some(raw) => parse_platform(&raw)?,
            None => sub.platform.platform(),
        };
        let options = match options_given {
            Some(v) => v,
            // Keep the current options when only the same platform is named again.
            None if platform == sub.platform.platform() => current_options(&sub.platform),
            None => None,
        };
        sub.platform = parse_platform_options(platform, options)?;
    }
    if let Some(url) = fields.take_string("url", 2048)? {
        sub.url = match (url, &sub.platform) {
            (None, PlatformConfig::Trello(_)) => TRELLO_CARDS_URL.to_owned(),
            (None, _) => return Err(ApiError::validation("url", "`url` cannot be removed")),
            (Some(raw), _) => parse_url(&raw, &state)?,
        };
    }
    if fields.has("events") {
        sub.events = parse_events(fields.take_value("events").flatten())?;
    }
    if let Some(name) = fields.take_string("name", 200)? {
        sub.name = non_empty(name);
    }
    if let Some(description) = fields.take_string("description", 2000)? {
        sub.description = non_empty(description);
    }
    if let Some(enabled) = fields.take_bool("enabled")? {
        sub.enabled = enabled;
        if enabled {
            sub.disabled_reason = None;
        }
    }
    if let Some(headers) = fields.take_value("headers") {
        sub.headers = parse_headers(headers)?;
    }
    if let Some(token) = fields.take_string("auth_token", 4096)? {
        sub.auth_token = parse_auth_token(token)?;
    }
    if let Some(rate) = fields.take_value("rate_limit_per_sec") {
        sub.rate_limit_per_sec = parse_rate_limit(rate)?;
    }
    fields.finish()?;
    sub.updated_at = state.clock.now();
    state
        .store
        .update_subscription(&sub)
        .await
        .map_err(|e| match e {
            herald_core::ports::StoreError::NotFound => ApiError::not_found("subscription"),
            other => other.into(),
        })?;
    Ok(Json(subscription_view(&sub)))
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let sub = load(&state, &caller, &id).await?;
    state
        .store
        .delete_subscription(&caller.tenant_id, &sub.id)
        .await
        .map_err(|e| match e {
            herald_core::ports::StoreError::NotFound => ApiError::not_found("subscription"),
            other => other.into(),
        })?;
    tracing::info!(tenant = %sub.tenant_id, subscription = %sub.id, "subscription deleted");
    Ok(StatusCode::NO_CONTENT)
}

async fn secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let sub = load(&state, &caller, &id).await?;
    let secret = sub.current_secret().map(SigningSecret::expose);
    Ok(Json(json!({ "secret": secret })))
}

async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let mut sub = load(&state, &caller, &id).await?;
    let now = state.clock.now();
    let expires = now.checked_add(ROTATION_OVERLAP).unwrap_or(now);
    let new_secret = SigningSecret::generate();
    let mut secrets = vec![SecretEntry {
        secret: new_secret.clone(),
        expires_at: None,
    }];
    // The previous current secret signs for 24 more hours; older ones keep their expiry.
    for (i, entry) in sub.secrets.iter().enumerate() {
        let expires_at = if i == 0 {
            Some(expires)
        } else {
            entry.expires_at
        };
        if expires_at.is_some_and(|t| t > now) {
            secrets.push(SecretEntry {
                secret: entry.secret.clone(),
                expires_at,
            });
        }
    }
    sub.secrets = secrets;
    sub.updated_at = now;
    state.store.update_subscription(&sub).await?;
    tracing::info!(tenant = %sub.tenant_id, subscription = %sub.id, "secret rotated");
    Ok(Json(
        json!({ "secret": new_secret.expose(), "previous_secret_expires_at": expires }),
    ))
}

async fn test(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let sub = load(&state, &caller, &id).await?;
    let report = delivery::send_test(&state, &sub)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(json!({
        "delivered": report.delivered,
        "status": report.status,
        "latency_ms": report.latency_ms,
        "response_excerpt": report.response_excerpt,
        "error": report.error,
        "event_id": report.event_id,
        "delivery_id": report.delivery_id,
    })))
}

async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    query: PageQuery,
) -> Result<Json<Value>, ApiError> {
    let sub = load(&state, &caller, &id).await?;
    let page = state
        .store
        .list_deliveries(&caller.tenant_id, &sub.id, &query.page())
        .await?;
    Ok(Json(json!({
        "data": page.items.iter().map(delivery_view).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor,
    })))
}

async fn recover_failed(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<impl IntoResponse, ApiError> {
    let sub = load(&state, &caller, &id).await?;
    if !sub.enabled {
        return Err(ApiError::conflict(
            "the subscription is disabled: enable it first, then recover",
        ));
    }
    let mut fields = Fields::new(body);
    let since_raw = required_string(&mut fields, "since")?;
    let since: Timestamp = since_raw.parse().map_err(|_| {
        ApiError::validation(
            "since",
            "`since` must be an RFC 3339 time such as 2026-12-01T10:00:00Z",
        )
    })?;
    fields.finish()?;
    let count = recover::recover_failed(&state, &sub, since).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "recovered": count }))))
}

// ---- input parsing -------------------------------------------------------------------------------

fn required_string(fields: &mut Fields, name: &str) -> Result<String, ApiError> {
    fields
        .take_string(name, 2048)?
        .flatten()
        .ok_or_else(|| ApiError::validation(name, format!("`{name}` is required")))
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

fn parse_platform(raw: &str) -> Result<Platform, ApiError> {
    Platform::parse(raw).ok_or_else(|| {
        ApiError::validation(
            "platform",
            format!(
                "unknown platform `{}`: use one of custom, slack, mattermost, teams, trello",
                truncate(raw, 40)
            ),
        )
    })
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

fn parse_url(raw: &str, state: &AppState) -> Result<String, ApiError> {
    let url = TargetUrl::parse(raw, state.settings.address_policy)
        .map_err(|e| ApiError::validation("url", e.to_string()))?;
    Ok(url.as_str().to_owned())
}

fn parse_events(value: Option<Value>) -> Result<Vec<EventPattern>, ApiError> {
    let items = match value {
        Some(Value::Array(items)) => items,
        None => {
            return Err(ApiError::validation(
                "events",
                "`events` is required: a list such as [\"document.created\", \"article.*\"]",
            ))
        }
        Some(_) => {
            return Err(ApiError::validation(
                "events",
                "`events` must be a list of event types or patterns",
            ))
        }
    };
    if items.is_empty() {
        return Err(ApiError::validation(
            "events",
            "choose at least one event type",
        ));
    }
    if items.len() > MAX_PATTERNS {
        return Err(ApiError::validation(
            "events",
            format!("at most {MAX_PATTERNS} event patterns"),
        ));
    }
    let mut patterns: Vec<EventPattern> = Vec::with_capacity(items.len());
    for item in items {
        let Value::String(s) = item else {
            return Err(ApiError::validation(
                "events",
                "every event pattern must be a string",
            ));
        };
        let pattern =
            EventPattern::parse(&s).map_err(|e| ApiError::validation("events", e.to_string()))?;
        if !patterns.contains(&pattern) {
            patterns.push(pattern);
        }
    }
    Ok(patterns)
}

/// Headers Herald sets itself, or that would break the request if a subscription overrode them.
fn reserved_header(name: &str) -> bool {
    matches!(
        name,
        "content-type"
            | "content-length"
            | "host"
            | "user-agent"
            | "authorization"
            | "transfer-encoding"
            | "connection"
            | "te"
            | "upgrade"
            | "expect"
            | "keep-alive"
            | "proxy-authorization"
    ) || name.starts_with("webhook-")
}

fn parse_headers(value: Option<Value>) -> Result<BTreeMap<String, String>, ApiError> {
    let map = match value {
        None => return Ok(BTreeMap::new()),
        Some(Value::Object(map)) => map,
        Some(_) => {
            return Err(ApiError::validation(
                "headers",
                "`headers` must be an object of name: value",
            ))
        }
    };
    if map.len() > MAX_HEADERS {
        return Err(ApiError::validation(
            "headers",
            format!("at most {MAX_HEADERS} headers"),
        ));
    }
    let mut out = BTreeMap::new();
    for (name, value) in map {
        let lower = name.to_ascii_lowercase();
        if HeaderName::from_bytes(lower.as_bytes()).is_err() {
            return Err(ApiError::validation(
                "headers",
                format!("`{}` is not a valid header name", truncate(&name, 60)),
            ));
        }
        if reserved_header(&lower) {
            return Err(ApiError::validation("headers", format!("`{lower}` is set by Herald and cannot be overridden (use auth_token for authorization)")));
        }
        let Value::String(value) = value else {
            return Err(ApiError::validation(
                "headers",
                format!("the value of `{lower}` must be a string"),
            ));
        };
        if value.len() > MAX_HEADER_VALUE || HeaderValue::from_str(&value).is_err() {
            return Err(ApiError::validation("headers", format!("the value of `{lower}` is not a valid header value (visible text, at most {MAX_HEADER_VALUE} bytes)")));
        }
        out.insert(lower, value);
    }
    Ok(out)
}

fn parse_auth_token(token: Option<String>) -> Result<Option<String>, ApiError> {
    match token {
        None => Ok(None),
        Some(t) if t.is_empty() => Ok(None),
        Some(t) if t.chars().all(|c| c.is_ascii_graphic()) => Ok(Some(t)),
        Some(_) => Err(ApiError::validation(
            "auth_token",
            "`auth_token` must be visible ASCII without spaces",
        )),
    }
}

fn parse_rate_limit(value: Option<Value>) -> Result<Option<u32>, ApiError> {
    match value {
        None => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v @ 1..=10_000) => Ok(Some(v as u32)),
            _ => Err(ApiError::validation(
                "rate_limit_per_sec",
                "`rate_limit_per_sec` must be a whole number from 1 to 10000",
            )),
        },
        Some(_) => Err(ApiError::validation(
            "rate_limit_per_sec",
            "`rate_limit_per_sec` must be a number",
        )),
    }
}

fn current_options(config: &PlatformConfig) -> Option<Value> {
    match config {
        PlatformConfig::Mattermost { username, icon_url } => {
            Some(json!({ "username": username, "icon_url": icon_url }))
        }
        PlatformConfig::Trello(t) => {
            Some(json!({ "list_id": t.list_id, "api_key": t.api_key, "token": t.token }))
        }
        _ => None,
    }
}

fn option_string(fields: &mut Fields, name: &str, max: usize) -> Result<Option<String>, ApiError> {
    let field = format!("platform_options.{name}");
    match fields.take_value(name) {
        None | Some(None) => Ok(None),
        Some(Some(Value::String(s))) if s.is_empty() => Ok(None),
        Some(Some(Value::String(s))) if s.len() <= max => Ok(Some(s)),
        Some(Some(Value::String(_))) => {
            Err(ApiError::validation(field, format!("`{name}` is too long")))
        }
        Some(Some(_)) => Err(ApiError::validation(
            field,
            format!("`{name}` must be a string"),
        )),
    }
}

fn parse_platform_options(
    platform: Platform,
    options: Option<Value>,
) -> Result<PlatformConfig, ApiError> {
    let map = match options {
        None => serde_json::Map::new(),
        Some(Value::Object(map)) => map,
        Some(_) => {
            return Err(ApiError::validation(
                "platform_options",
                "`platform_options` must be an object",
            ))
        }
    };
    let mut fields = Fields::new(map);
    let config = match platform {
        Platform::Custom => PlatformConfig::Custom,
        Platform::Slack => PlatformConfig::Slack,
        Platform::Teams => PlatformConfig::Teams,
        Platform::Mattermost => {
            let username = option_string(&mut fields, "username", 64)?;
            let icon_url = option_string(&mut fields, "icon_url", 2048)?;
            if let Some(icon) = &icon_url {
                if !(icon.starts_with("https://") || icon.starts_with("http://"))
                    || url::Url::parse(icon).is_err()
                {
                    return Err(ApiError::validation(
                        "platform_options.icon_url",
                        "`icon_url` must be an http(s) URL",
                    ));
                }
            }
            PlatformConfig::Mattermost { username, icon_url }
        }
        Platform::Trello => {
            let mut required = |name: &str| -> Result<String, ApiError> {
                let value = option_string(&mut fields, name, 256)?.ok_or_else(|| {
                    ApiError::validation(
                        format!("platform_options.{name}"),
                        format!("Trello needs `platform_options.{name}`"),
                    )
                })?;
                if !value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                {
                    return Err(ApiError::validation(
                        format!("platform_options.{name}"),
                        format!("`{name}` must be letters and digits only"),
                    ));
                }
                Ok(value)
            };
            let list_id = required("list_id")?;
            let api_key = required("api_key")?;
            let token = required("token")?;
            PlatformConfig::Trello(TrelloOptions {
                list_id,
                api_key,
                token,
            })
        }
    };
    fields.finish().map_err(|e| match e.field {
        Some(f) => ApiError::validation(
            format!("platform_options.{f}"),
            format!(
                "`{f}` is not an option of the {} platform",
                platform.as_str()
            ),
        ),
        None => e,
    })?;
    Ok(config)
}
