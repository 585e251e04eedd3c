//! `/v1/deliveries/{id}`: one delivery with every attempt, and manual retry (replay).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use herald_core::DeliveryId;
use serde_json::{json, Value};

use super::error::ApiError;
use super::extract::parse_path_id;
use super::views::{attempt_view, delivery_view};
use crate::auth::Caller;
use crate::service::recover;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/deliveries/{id}", get(read))
        .route("/v1/deliveries/{id}/retry", post(retry))
}

async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id: DeliveryId = parse_path_id(&id, "delivery")?;
    let delivery = state
        .store
        .get_delivery(&caller.tenant_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("delivery"))?;
    let attempts = state.store.list_attempts(&caller.tenant_id, &id).await?;
    let mut view = delivery_view(&delivery);
    view["attempts_log"] = json!(attempts.iter().map(attempt_view).collect::<Vec<_>>());
    Ok(Json(view))
}

async fn retry(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id: DeliveryId = parse_path_id(&id, "delivery")?;
    let delivery = state
        .store
        .get_delivery(&caller.tenant_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("delivery"))?;
    // A disabled subscription's deliveries are given up by the worker; say so now instead.
    let sub = state
        .store
        .get_subscription(&caller.tenant_id, &delivery.subscription_id)
        .await?;
    match sub {
        None => {
            return Err(ApiError::conflict(
                "the subscription of this delivery was deleted",
            ))
        }
        Some(sub) if !sub.enabled => {
            return Err(ApiError::conflict(
                "the subscription is disabled: enable it first, then retry",
            ))
        }
        Some(_) => {}
    }
    let delivery = recover::requeue(&state, delivery).await?;
    Ok((StatusCode::ACCEPTED, Json(delivery_view(&delivery))))
}
