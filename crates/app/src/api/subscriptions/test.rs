//! "Save and test": one `webhook.test` delivery now, answered with what the endpoint said.

use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

use super::load;
use crate::api::error::ApiError;
use crate::auth::Caller;
use crate::service::delivery;
use crate::state::AppState;

pub(super) async fn send(
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
