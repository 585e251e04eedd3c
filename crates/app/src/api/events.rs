//! `/v1/events` (intake) and `/v1/events/{id}`, `/v1/event-types`.

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use herald_core::{EventId, BUILTIN_EVENT_TYPES};
use serde_json::{json, Value};

use super::error::ApiError;
use super::extract::{parse_path_id, read_json};
use super::views::{delivery_view, event_view};
use crate::auth::Caller;
use crate::service::intake::{self, IntakeError};
use crate::state::AppState;

const MAX_IDEMPOTENCY_KEY: usize = 255;

/// The intake route alone (the `ingest` function serves this).
pub fn intake_router() -> Router<AppState> {
    Router::new().route("/v1/events", post(accept))
}

/// Reading events and the catalog (the `api` function serves these).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/events/{id}", get(read))
        .route("/v1/event-types", get(event_types))
}

async fn accept(
    State(state): State<AppState>,
    caller: Caller,
    req: Request,
) -> Result<impl IntoResponse, ApiError> {
    let idempotency_key = match req.headers().get("idempotency-key") {
        None => None,
        Some(v) => {
            let key = v
                .to_str()
                .ok()
                .map(str::trim)
                .filter(|k| !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY);
            Some(key.map(str::to_owned).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_header",
                    format!(
                        "`Idempotency-Key` must be 1 to {MAX_IDEMPOTENCY_KEY} visible characters"
                    ),
                )
                .with_field("Idempotency-Key")
            })?)
        }
    };
    let (body, _) = read_json(req, state.settings.max_event_bytes).await?;
    let input =
        intake::parse_event_input(body).map_err(|e| ApiError::validation(e.field, e.message))?;
    let accepted = intake::accept(&state, caller.tenant_id, input, idempotency_key)
        .await
        .map_err(|e| match e {
            IntakeError::KeyReused => ApiError::conflict(
                "this Idempotency-Key (or event id) was already used with a different body",
            ),
            IntakeError::Store(e) => e.into(),
            IntakeError::Queue(e) => e.into(),
        })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(
            json!({ "id": accepted.id, "type": accepted.event_type, "timestamp": accepted.timestamp }),
        ),
    ))
}

async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id: EventId = parse_path_id(&id, "event")?;
    let event = state
        .store
        .get_event(&caller.tenant_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("event"))?;
    let deliveries = state
        .store
        .deliveries_for_event(&caller.tenant_id, &id)
        .await?;
    let mut view = event_view(&event);
    view["deliveries"] = json!(deliveries.iter().map(delivery_view).collect::<Vec<_>>());
    Ok(Json(view))
}

async fn event_types(_caller: Caller) -> Json<Value> {
    let data: Vec<Value> = BUILTIN_EVENT_TYPES
        .iter()
        .map(|(name, description)| json!({ "name": name, "description": description, "builtin": true }))
        .collect();
    Json(json!({ "data": data, "next_cursor": null }))
}
