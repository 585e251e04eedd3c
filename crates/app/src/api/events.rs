//! `/v1/events` (intake, and the tenant's events newest first) and `/v1/events/{id}`.

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use futures_util::future::try_join_all;
use herald_core::{Delivery, DeliverySummary, EventId, EventType};
use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody, ErrorDetail};
use super::extract::{parse_path_id, read_json, PageParams, PageQuery};
use super::requests::{BatchRequest, EventInput};
use super::views::{delivery_view, event_view, EventDetail};
use crate::auth::Caller;
use crate::service::intake::{self, IntakeError};
use crate::state::AppState;

const MAX_IDEMPOTENCY_KEY: usize = 255;

/// How many events' deliveries the list reads at once.
const SUMMARY_READS_AT_ONCE: usize = 16;

/// Most events one batch request may carry.
pub const MAX_BATCH_EVENTS: usize = 100;

/// The intake routes alone (the `ingest` function serves these).
pub fn intake_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(accept))
        .routes(routes!(accept_batch))
}

/// Reading events and the catalog (the `api` function serves these).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(read))
}

/// An accepted event.
#[derive(Debug, Serialize, ToSchema)]
pub struct AcceptedView {
    #[schema(value_type = String, example = "evt_01JF3Q8Z6X4N7W2C5V9B1M0KQR")]
    pub id: EventId,
    #[serde(rename = "type")]
    #[schema(value_type = String, example = "document.created")]
    pub event_type: EventType,
    #[schema(value_type = String, format = DateTime)]
    pub timestamp: Timestamp,
}

impl From<intake::Accepted> for AcceptedView {
    fn from(a: intake::Accepted) -> Self {
        Self {
            id: a.id,
            event_type: a.event_type,
            timestamp: a.timestamp,
        }
    }
}

/// The answer to each event of a batch, in order.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchAnswer {
    pub data: Vec<BatchItemAnswer>,
}

/// `accepted` (new), `duplicate` (seen before with this key or id: its first answer) or
/// `rejected` (with `error`; nothing was stored for it).
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum BatchItemAnswer {
    Accepted(AcceptedView),
    Duplicate(AcceptedView),
    Rejected { error: ErrorDetail },
}

/// Takes an event to deliver to every matching subscription.
#[utoipa::path(post, path = "/v1/events", operation_id = "send_event", tag = "events",
    security(("api_key" = [])),
    params(("Idempotency-Key" = Option<String>, Header, nullable = false,
        description = "Same key and same body: the same answer, once; same key, another body: 409")),
    request_body = EventInput,
    responses(
        (status = 202, description = "Accepted (or seen before with this key: its first answer)",
            body = AcceptedView),
        (status = 400, description = "The body is not JSON, or `Idempotency-Key` is not 1 to 255 \
visible characters", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 409, description = "This key (or event id) was used with another body",
            body = ErrorBody),
        (status = 413, description = "The event is too large", body = ErrorBody),
        (status = 415, description = "The body is not `application/json`", body = ErrorBody),
        (status = 422, description = "A field is not valid (`field` names it); `data` does not \
match its type's JSON Schema (`schema_violation`, with `violations`); or the type is unknown and \
the tenant refuses unknown types (`unknown_event_type`). Nothing was stored.", body = ErrorBody),
    ))]
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
            IntakeError::Refused(r) => ApiError::refused(r),
            IntakeError::Store(e) => e.into(),
            IntakeError::Queue(e) => e.into(),
        })?;
    Ok((StatusCode::ACCEPTED, Json(AcceptedView::from(accepted))))
}

/// `POST /v1/events/batch`: `{"events": [{type, data, id?, idempotency_key?}, …]}`, up to 100.
/// Each item is answered on its own, in order, so one bad item never rejects the others.
#[utoipa::path(post, path = "/v1/events/batch", operation_id = "send_events", tag = "events",
    security(("api_key" = [])),
    request_body = BatchRequest,
    responses(
        (status = 200, description = "Each event's answer, in order", body = BatchAnswer),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 409, description = "An idempotency key was reused", body = ErrorBody),
        (status = 413, description = "The batch is too large", body = ErrorBody),
        (status = 415, description = "The body is not `application/json`", body = ErrorBody),
        (status = 422, description = "The body is not `{\"events\": [1 to 100 events]}`",
            body = ErrorBody),
    ))]
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
    let mut answers: Vec<Option<BatchItemAnswer>> = Vec::with_capacity(items.len());
    let mut valid = Vec::new();
    let mut positions = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        match parse_batch_item(item, state.settings.max_event_bytes) {
            Ok(parsed) => {
                positions.push(index);
                valid.push(parsed);
                answers.push(None);
            }
            Err((field, message)) => answers.push(Some(BatchItemAnswer::Rejected {
                error: ApiError::validation(field, message).detail(),
            })),
        }
    }
    let outcomes = intake::accept_all(&state, caller.tenant_id, valid)
        .await
        .map_err(|e| match e {
            IntakeError::KeyReused => ApiError::conflict("an idempotency key was reused"),
            IntakeError::Refused(r) => ApiError::refused(r),
            IntakeError::Store(e) => e.into(),
            IntakeError::Queue(e) => e.into(),
        })?;
    for (index, outcome) in positions.into_iter().zip(outcomes) {
        let answer = match outcome {
            intake::ItemOutcome::Accepted(a) => BatchItemAnswer::Accepted(a.into()),
            intake::ItemOutcome::Duplicate(a) => BatchItemAnswer::Duplicate(a.into()),
            intake::ItemOutcome::KeyReused => BatchItemAnswer::Rejected {
                error: ApiError::conflict(
                    "this idempotency key (or event id) was already used with a different body",
                )
                .with_field("idempotency_key")
                .detail(),
            },
            intake::ItemOutcome::Refused(r) => BatchItemAnswer::Rejected {
                error: ApiError::refused(r).detail(),
            },
        };
        if let Some(slot) = answers.get_mut(index) {
            *slot = Some(answer);
        }
    }
    let data = answers.into_iter().flatten().collect();
    Ok((StatusCode::OK, Json(BatchAnswer { data })))
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

/// One event of the list: what it is, and how its deliveries stand.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventListItem {
    #[schema(value_type = String, example = "evt_01JF3Q8Z6X4N7W2C5V9B1M0KQR")]
    pub id: EventId,
    #[serde(rename = "type")]
    #[schema(value_type = String, example = "document.created")]
    pub event_type: EventType,
    #[schema(value_type = String, format = DateTime)]
    pub timestamp: Timestamp,
    pub deliveries: DeliveryCounts,
}

/// How an event's deliveries stand, across its subscriptions.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryCounts {
    pub total: usize,
    pub succeeded: usize,
    pub failed: usize,
    /// Not finished: not tried yet, or failed and retrying.
    pub pending: usize,
}

impl From<DeliverySummary> for DeliveryCounts {
    fn from(summary: DeliverySummary) -> Self {
        // Destructured whole: a field added to the core's summary fails to compile here.
        let DeliverySummary {
            total,
            succeeded,
            failed,
            pending,
        } = summary;
        Self {
            total,
            succeeded,
            failed,
            pending,
        }
    }
}

/// A page of events.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventList {
    pub data: Vec<EventListItem>,
    /// Pass as `?cursor=` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// `GET /v1/events`: the tenant's events, newest first, each with how its deliveries stand. One
/// store read per listed event for the summary (on DynamoDB a BatchGetItem of its plan's keys), all
/// of a page at once: a page is at most 100 events, read by the console, not on the delivery path.
#[utoipa::path(get, path = "/v1/events", operation_id = "list_events", tag = "events",
    security(("api_key" = [])),
    params(
        PageParams,
        ("type" = Option<String>, Query, nullable = false,
            description = "Only events of this type"),
    ),
    responses(
        (status = 200, description = "A page of events", body = EventList),
        (status = 400, description = "A query parameter is not valid (`field` names it)",
            body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
    ))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    mut query: PageQuery,
) -> Result<Json<EventList>, ApiError> {
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
    let data = page
        .items
        .iter()
        .zip(stored)
        .map(|(event, stored)| EventListItem {
            id: event.id,
            event_type: event.event_type.clone(),
            timestamp: event.timestamp,
            deliveries: DeliverySummary::of(&event.deliveries(stored)).into(),
        })
        .collect();
    Ok(Json(EventList {
        data,
        next_cursor: page.next_cursor,
    }))
}

/// An event and its delivery to each subscription it matched (pending until its first attempt).
#[utoipa::path(get, path = "/v1/events/{id}", operation_id = "get_event", tag = "events",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The event's id (`evt_…`)")),
    responses(
        (status = 200, description = "The event and its deliveries", body = EventDetail),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 404, description = "No such event", body = ErrorBody),
    ))]
async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<EventDetail>, ApiError> {
    let id: EventId = parse_path_id(&id, "event")?;
    let event = state
        .store
        .get_event(&caller.tenant_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("event"))?;
    let deliveries = event.deliveries(state.store.deliveries_for_event(&event).await?);
    Ok(Json(EventDetail {
        event: event_view(&event),
        deliveries: deliveries.iter().map(delivery_view).collect(),
    }))
}
