//! `/v1/events` (intake, and the tenant's events newest first) and `/v1/events/{id}`,
//! `/v1/event-types`.

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::future::try_join_all;
use herald_core::{
    Delivery, DeliverySummary, EventId, EventType, Operational, BUILTIN_EVENT_TYPES,
};
use serde_json::{json, Value};

use super::error::ApiError;
use super::extract::{parse_path_id, read_json, PageQuery};
use super::views::{delivery_view, event_view};
use crate::auth::Caller;
use crate::service::intake::{self, IntakeError};
use crate::state::AppState;

const MAX_IDEMPOTENCY_KEY: usize = 255;

/// How many events' deliveries the list reads at once.
const SUMMARY_READS_AT_ONCE: usize = 16;

/// Most events one batch request may carry.
pub const MAX_BATCH_EVENTS: usize = 100;

/// The intake routes alone (the `ingest` function serves these).
pub fn intake_router() -> Router<AppState> {
    Router::new()
        .route("/v1/events", post(accept))
        .route("/v1/events/batch", post(accept_batch))
}

/// Reading events and the catalog (the `api` function serves these).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/events", get(list))
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

/// `POST /v1/events/batch`: `{"events": [{type, data, id?, idempotency_key?}, …]}`, up to 100.
/// Each item is answered on its own, in order, so one bad item never rejects the others.
async fn accept_batch(
    State(state): State<AppState>,
    caller: Caller,
    req: Request,
) -> Result<impl IntoResponse, ApiError> {
    let (body, _) = read_json(req, state.settings.max_batch_bytes).await?;
    let items = match body {
        Value::Object(mut map) if map.len() == 1 => match map.remove("events") {
            Some(Value::Array(items)) => items,
            _ => return Err(batch_shape_error()),
        },
        _ => return Err(batch_shape_error()),
    };
    if items.is_empty() || items.len() > MAX_BATCH_EVENTS {
        return Err(ApiError::validation(
            "events",
            format!("`events` must hold 1 to {MAX_BATCH_EVENTS} events"),
        ));
    }
    // Parse every item; the valid ones go to intake together, the others are answered here.
    let mut answers: Vec<Option<Value>> = Vec::with_capacity(items.len());
    let mut valid = Vec::new();
    let mut positions = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        match parse_batch_item(item, state.settings.max_event_bytes) {
            Ok(parsed) => {
                positions.push(index);
                valid.push(parsed);
                answers.push(None);
            }
            Err((field, message)) => answers.push(Some(json!({
                "status": "rejected",
                "error": {"code": "validation_failed", "message": message, "field": field},
            }))),
        }
    }
    let outcomes = intake::accept_all(&state, caller.tenant_id, valid)
        .await
        .map_err(|e| match e {
            IntakeError::KeyReused => ApiError::conflict("an idempotency key was reused"),
            IntakeError::Store(e) => e.into(),
            IntakeError::Queue(e) => e.into(),
        })?;
    for (index, outcome) in positions.into_iter().zip(outcomes) {
        let answer = match outcome {
            intake::ItemOutcome::Accepted(a) => json!({
                "status": "accepted", "id": a.id, "type": a.event_type, "timestamp": a.timestamp,
            }),
            intake::ItemOutcome::Duplicate(a) => json!({
                "status": "duplicate", "id": a.id, "type": a.event_type, "timestamp": a.timestamp,
            }),
            intake::ItemOutcome::KeyReused => json!({
                "status": "rejected",
                "error": {
                    "code": "conflict",
                    "message": "this idempotency key (or event id) was already used with a different body",
                    "field": "idempotency_key",
                },
            }),
        };
        if let Some(slot) = answers.get_mut(index) {
            *slot = Some(answer);
        }
    }
    let data: Vec<Value> = answers.into_iter().flatten().collect();
    Ok((StatusCode::OK, Json(json!({ "data": data }))))
}

fn batch_shape_error() -> ApiError {
    ApiError::validation(
        "events",
        "the body must be {\"events\": [{\"type\": …, \"data\": {…}}, …]}",
    )
}

/// One batch item: the intake body of `POST /v1/events`, plus an optional `idempotency_key`.
fn parse_batch_item(
    item: Value,
    max_bytes: usize,
) -> Result<intake::IntakeItem, (&'static str, String)> {
    let size = serde_json::to_vec(&item)
        .map(|b| b.len())
        .unwrap_or(usize::MAX);
    if size > max_bytes {
        return Err((
            "body",
            format!("the event is larger than {} KiB", max_bytes / 1024),
        ));
    }
    let Value::Object(mut map) = item else {
        return Err((
            "body",
            "each event must be a JSON object: {\"type\": …, \"data\": {…}}".to_owned(),
        ));
    };
    let idempotency_key = match map.remove("idempotency_key") {
        None | Some(Value::Null) => None,
        Some(Value::String(k))
            if !k.trim().is_empty()
                && k.len() <= MAX_IDEMPOTENCY_KEY
                && k.chars().all(|c| c.is_ascii_graphic() || c == ' ') =>
        {
            Some(k.trim().to_owned())
        }
        Some(_) => {
            return Err((
                "idempotency_key",
                format!("`idempotency_key` must be 1 to {MAX_IDEMPOTENCY_KEY} visible characters"),
            ))
        }
    };
    let input = intake::parse_event_input(Value::Object(map)).map_err(|e| (e.field, e.message))?;
    Ok(intake::IntakeItem {
        input,
        idempotency_key,
    })
}

/// `GET /v1/events`: the tenant's events, newest first, each with how its deliveries stand. One
/// store read per listed event for the summary (on DynamoDB a BatchGetItem of its plan's keys), all
/// of a page at once: a page is at most 100 events, read by the console, not on the delivery path.
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    mut query: PageQuery,
) -> Result<Json<Value>, ApiError> {
    let event_type = match query.rest.remove("type") {
        None => None,
        Some(raw) => Some(EventType::parse(&raw).map_err(|e| {
            ApiError::bad_request("invalid_query", e.to_string()).with_field("type")
        })?),
    };
    let page = state
        .store
        .list_events(&caller.tenant_id, event_type.as_ref(), &query.page())
        .await?;
    let mut stored: Vec<Vec<Delivery>> = Vec::with_capacity(page.items.len());
    for chunk in page.items.chunks(SUMMARY_READS_AT_ONCE) {
        let reads = chunk.iter().map(|e| state.store.deliveries_for_event(e));
        stored.extend(try_join_all(reads).await?);
    }
    let data: Vec<Value> = page
        .items
        .iter()
        .zip(stored)
        .map(|(event, stored)| {
            let summary = DeliverySummary::of(&event.deliveries(stored));
            json!({
                "id": event.id,
                "type": event.event_type,
                "timestamp": event.timestamp,
                "deliveries": summary,
            })
        })
        .collect();
    Ok(Json(
        json!({ "data": data, "next_cursor": page.next_cursor }),
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
    let deliveries = event.deliveries(state.store.deliveries_for_event(&event).await?);
    let mut view = event_view(&event);
    view["deliveries"] = json!(deliveries.iter().map(delivery_view).collect::<Vec<_>>());
    Ok(Json(view))
}

async fn event_types(_caller: Caller) -> Json<Value> {
    let data: Vec<Value> = BUILTIN_EVENT_TYPES
        .iter()
        .map(|(name, description)| json!({ "name": name, "description": description, "builtin": true }))
        // Herald's own events: a subscription names `herald.*` (or one of them) to receive them.
        .chain(Operational::ALL.iter().map(|kind| {
            json!({ "name": kind.as_str(), "description": kind.description(), "builtin": true, "operational": true })
        }))
        .collect();
    Json(json!({ "data": data, "next_cursor": null }))
}
