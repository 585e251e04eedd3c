//! Create, list, read, update and delete subscriptions.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use herald_core::ports::{StoreError, SubscriptionFilter};
use herald_core::signing::SigningSecret;
use herald_core::{EventType, NewSubscription, Subscription, SubscriptionId, SubscriptionPatch};

use super::{load, reset_health, view};
use crate::api::error::{ApiError, ErrorBody};
use crate::api::extract::{JsonObject, PageParams, PageQuery};
use crate::api::requests::{SubscriptionCreate, SubscriptionUpdate};
use crate::api::views::{CreatedSubscription, SubscriptionList, SubscriptionView};
use crate::auth::Caller;
use crate::state::AppState;

/// Creates a subscription and its signing secret.
#[utoipa::path(post, path = "/v1/subscriptions", operation_id = "create_subscription", tag = "subscriptions",
    security(("api_key" = [])),
    request_body = SubscriptionCreate,
    responses(
        (status = 201, description = "Created, with its secret", body = CreatedSubscription),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, description = "The body is not `application/json`", body = ErrorBody),
        (status = 422, description = "A field is not valid (`field` names it), or the tenant has \
as many subscriptions as it may", body = ErrorBody),
    ))]
pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonObject(body): JsonObject,
) -> Result<impl IntoResponse, ApiError> {
    let input = NewSubscription::parse(body, state.settings.address_policy)?;

    let limit = state.settings.max_subscriptions_per_tenant;
    // A count that stops at the limit: no records read or decoded.
    let existing = state
        .store
        .count_subscriptions(&caller.tenant_id, limit)
        .await?;
    if existing >= limit {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "limit_reached",
            format!("a tenant can have at most {limit} subscriptions"),
        ));
    }

    let secret = SigningSecret::generate();
    let sub = Subscription::create(
        input,
        SubscriptionId::new(),
        caller.tenant_id,
        secret.clone(),
        state.clock.now(),
    );
    check_template_on_own_examples(&state, &sub).await?;
    let created = state.store.create_subscription(&sub).await;
    // Fan-out in this process sees the new subscription at once (others within the cache TTL).
    state.directory.forget_subscription(&sub.tenant_id, &sub.id);
    created?;
    tracing::info!(tenant = %sub.tenant_id, subscription = %sub.id, platform = sub.platform.platform().as_str(), "subscription created");
    let created = CreatedSubscription {
        subscription: view(&state, &sub),
        secret: secret.expose().to_owned(),
    };
    Ok((StatusCode::CREATED, Json(created)))
}

/// The tenant's subscriptions, oldest first.
#[utoipa::path(get, path = "/v1/subscriptions", operation_id = "list_subscriptions", tag = "subscriptions",
    security(("api_key" = [])),
    params(
        PageParams,
        ("event" = Option<String>, Query, nullable = false,
            description = "Only those that receive this event type"),
        ("enabled" = Option<bool>, Query, nullable = false,
            description = "Only enabled (true) or disabled (false) ones"),
    ),
    responses(
        (status = 200, description = "A page of subscriptions", body = SubscriptionList),
        (status = 400, description = "A query parameter is not valid (`field` names it)",
            body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
    ))]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    mut query: PageQuery,
) -> Result<Json<SubscriptionList>, ApiError> {
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
    Ok(Json(SubscriptionList {
        data: page.items.iter().map(|s| view(&state, s)).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One subscription.
#[utoipa::path(get, path = "/v1/subscriptions/{id}", operation_id = "get_subscription", tag = "subscriptions",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The subscription's id (`sub_…`)")),
    responses(
        (status = 200, description = "The subscription", body = SubscriptionView),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 404, description = "No such subscription", body = ErrorBody),
    ))]
pub(super) async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SubscriptionView>, ApiError> {
    let sub = load(&state, &caller, &id).await?;
    Ok(Json(view(&state, &sub)))
}

/// Changes the fields given; enabling a disabled subscription starts a new health streak.
#[utoipa::path(patch, path = "/v1/subscriptions/{id}", operation_id = "update_subscription", tag = "subscriptions",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The subscription's id (`sub_…`)")),
    request_body = SubscriptionUpdate,
    responses(
        (status = 200, description = "The subscription as changed", body = SubscriptionView),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 404, description = "No such subscription", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, description = "The body is not `application/json`", body = ErrorBody),
        (status = 422, description = "A field is not valid (`field` names it)", body = ErrorBody),
    ))]
pub(super) async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Json<SubscriptionView>, ApiError> {
    let mut sub = load(&state, &caller, &id).await?;
    let new_template = body.get("template").is_some_and(|t| !t.is_null());
    let patch = SubscriptionPatch::parse(body, &sub, state.settings.address_policy)?;
    let was_enabled = sub.enabled;
    sub.apply(patch, state.clock.now());
    if new_template {
        check_template_on_own_examples(&state, &sub).await?;
    }
    let updated = state.store.update_subscription(&sub).await;
    state.directory.forget_subscription(&sub.tenant_id, &sub.id);
    updated.map_err(not_found_as_subscription)?;
    if sub.enabled && !was_enabled {
        sub.health = reset_health(&state, &sub).await?;
    }
    Ok(Json(view(&state, &sub)))
}

/// Deletes a subscription; its deliveries stop.
#[utoipa::path(delete, path = "/v1/subscriptions/{id}", operation_id = "delete_subscription", tag = "subscriptions",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The subscription's id (`sub_…`)")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 404, description = "No such subscription", body = ErrorBody),
    ))]
pub(super) async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let sub = load(&state, &caller, &id).await?;
    let deleted = state
        .store
        .delete_subscription(&caller.tenant_id, &sub.id)
        .await;
    state.directory.forget_subscription(&sub.tenant_id, &sub.id);
    deleted.map_err(not_found_as_subscription)?;
    tracing::info!(tenant = %sub.tenant_id, subscription = %sub.id, "subscription deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Deleted between the read and the write: the subscription is gone.
fn not_found_as_subscription(err: StoreError) -> ApiError {
    match err {
        StoreError::NotFound => ApiError::not_found("subscription"),
        other => other.into(),
    }
}

/// A template is checked against the built-in examples when it is parsed; this checks it against
/// the examples of the tenant's own types the subscription takes too (read through the cached
/// catalog), so a template that fails on one is refused now, not found out at delivery.
pub(super) async fn check_template_on_own_examples(
    state: &AppState,
    sub: &Subscription,
) -> Result<(), ApiError> {
    if sub.template.is_none() {
        return Ok(());
    }
    let catalog = state.directory.catalog(&sub.tenant_id).await?;
    sub.check_template(&catalog.example_events(sub))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use herald_contract::memory::Reply;
    use herald_core::signing::SigningSecret;
    use herald_core::{DeliveryStatus, EventMessage};
    use serde_json::json;

    use super::*;
    use crate::service::testing::Harness;
    use crate::service::{delivery, fanout};

    /// A new event, planned as intake plans (through the directory), fanned out; how many first
    /// attempts it queued.
    async fn fan_out_one(h: &Harness) -> usize {
        let event = h.event("document.created").await;
        let message = EventMessage {
            tenant_id: event.tenant_id,
            event_id: event.id,
            event: None,
        };
        fanout::handle(&h.state, &message, 1).await.unwrap()
    }

    #[tokio::test]
    async fn writes_through_the_api_reach_fan_out_and_delivery_here_at_once() {
        // Arrange: a directory that would hide another process's writes for a minute, and a
        // receiver that fails the first attempt.
        let h = Harness::new([Reply::Status(500)]).with_cache_ttl(Duration::from_secs(60));
        let key = h.api_key().await.key;
        assert_eq!(fan_out_one(&h).await, 0);

        // Created: the next event reaches it.
        let (status, created) = h
            .call(
                &key,
                "POST",
                "/v1/subscriptions",
                Some(json!({"platform": "custom", "url": "https://example.com/hook", "events": ["*"]})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let id: SubscriptionId = created["id"].as_str().unwrap().parse().unwrap();
        let path = format!("/v1/subscriptions/{id}");
        assert_eq!(fan_out_one(&h).await, 1);
        let (first, _) = h.take_deliveries().remove(0);
        delivery::handle(&h.state, &first, 1).await.unwrap();
        let (retry, delay) = h.take_deliveries().remove(0);

        // Rotated: the directory's copy signs with the new secret.
        let (_, rotated) = h
            .call(&key, "POST", &format!("{path}/secret/rotate"), None)
            .await;
        let kept = h
            .state
            .directory
            .get_subscription(&h.tenant, &id)
            .await
            .unwrap();
        assert_eq!(
            kept.unwrap().current_secret().map(SigningSecret::expose),
            rotated["secret"].as_str().map(str::to_owned)
        );

        // Disabled: a GET shows it, fan-out skips it, and the retry is not sent.
        let (status, _) = h
            .call(&key, "PATCH", &path, Some(json!({"enabled": false})))
            .await;
        assert_eq!(status, StatusCode::OK);
        let (_, read) = h.call(&key, "GET", &path, None).await;
        assert_eq!(read["enabled"], false);
        assert_eq!(fan_out_one(&h).await, 0);
        h.clock.advance(delay);
        delivery::handle(&h.state, &retry, 1).await.unwrap();
        let d = h.delivery(&retry).await;
        assert_eq!(d.status, DeliveryStatus::Failed);
        assert_eq!(
            d.last_error.as_deref(),
            Some("the subscription is disabled")
        );
        assert_eq!(h.sender.requests().len(), 1);

        // Deleted: gone from the directory at once.
        let (status, _) = h.call(&key, "DELETE", &path, None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let kept = h
            .state
            .directory
            .get_subscription(&h.tenant, &id)
            .await
            .unwrap();
        assert_eq!(kept, None);
    }
}
