//! Recover: queue again every failed delivery since a time.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use herald_core::input::{FieldError, Fields};
use jiff::Timestamp;
use serde_json::json;

use super::load;
use crate::api::error::ApiError;
use crate::api::extract::JsonObject;
use crate::auth::Caller;
use crate::service::recover;
use crate::state::AppState;

const MAX_TEXT_CHARS: usize = 2048;

pub(super) async fn recover(
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
    let since: Timestamp = fields
        .take_required_string("since", MAX_TEXT_CHARS)?
        .parse()
        .map_err(|_| {
            FieldError::new(
                "since",
                "`since` must be an RFC 3339 time such as 2026-12-01T10:00:00Z",
            )
        })?;
    fields.finish()?;
    let count = recover::recover_failed(&state, &sub, since).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "recovered": count }))))
}
