//! `/v1/deliveries/{id}`: one delivery with every attempt, and manual retry (replay).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use herald_core::DeliveryId;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::parse_path_id;
use super::views::{attempt_view, delivery_view, DeliveryDetail, DeliveryView};
use crate::auth::Caller;
use crate::service::recover;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(read))
        .routes(routes!(retry))
}

/// One delivery with every attempt.
#[utoipa::path(get, path = "/v1/deliveries/{id}", operation_id = "get_delivery", tag = "deliveries",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The delivery's id (`del_…`)")),
    responses(
        (status = 200, description = "The delivery and its attempts", body = DeliveryDetail),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 404, description = "No such delivery", body = ErrorBody),
    ))]
async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<DeliveryDetail>, ApiError> {
    let id: DeliveryId = parse_path_id(&id, "delivery")?;
    let delivery = state
        .store
        .get_delivery(&caller.tenant_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("delivery"))?;
    let attempts = state.store.list_attempts(&caller.tenant_id, &id).await?;
    Ok(Json(DeliveryDetail {
        delivery: delivery_view(&delivery),
        attempts_log: attempts.iter().map(attempt_view).collect(),
    }))
}

/// Delivers again now (replay), whatever its state; its retry schedule starts again.
#[utoipa::path(post, path = "/v1/deliveries/{id}/retry", operation_id = "retry_delivery", tag = "deliveries",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The delivery's id (`del_…`)")),
    responses(
        (status = 202, description = "Queued", body = DeliveryView),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 404, description = "No such delivery", body = ErrorBody),
        (status = 409, description = "Its subscription is disabled or deleted", body = ErrorBody),
    ))]
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
