//! Create, list, read, update and delete subscriptions.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use herald_core::ports::{StoreError, SubscriptionFilter};
use herald_core::signing::SigningSecret;
use herald_core::{EventType, NewSubscription, Subscription, SubscriptionId, SubscriptionPatch};
use serde_json::{json, Value};

use super::load;
use crate::api::error::ApiError;
use crate::api::extract::{JsonObject, PageQuery};
use crate::api::views::subscription_view;
use crate::auth::Caller;
use crate::state::AppState;

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
    state.store.create_subscription(&sub).await?;
    tracing::info!(tenant = %sub.tenant_id, subscription = %sub.id, platform = sub.platform.platform().as_str(), "subscription created");
    let mut view = subscription_view(&sub);
    view["secret"] = json!(secret.expose());
    Ok((StatusCode::CREATED, Json(view)))
}

pub(super) async fn list(
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

pub(super) async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let sub = load(&state, &caller, &id).await?;
    Ok(Json(subscription_view(&sub)))
}

pub(super) async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Json<Value>, ApiError> {
    let mut sub = load(&state, &caller, &id).await?;
    let patch = SubscriptionPatch::parse(body, &sub, state.settings.address_policy)?;
    sub.apply(patch, state.clock.now());
    state
        .store
        .update_subscription(&sub)
        .await
        .map_err(not_found_as_subscription)?;
    Ok(Json(subscription_view(&sub)))
}

pub(super) async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let sub = load(&state, &caller, &id).await?;
    state
        .store
        .delete_subscription(&caller.tenant_id, &sub.id)
        .await
        .map_err(not_found_as_subscription)?;
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
