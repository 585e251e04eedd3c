//! The HTTP API (v1): one module per resource, merged here. The same routers are served by
//! `herald dev` (axum) and by the Lambda functions (lambda_http), and each logs one line per
//! request ([`trace`]).
//!
//! Each resource declares its routes through utoipa-axum's `routes!`, which registers the handler
//! and its `#[utoipa::path]` description together: the OpenAPI document ([`openapi`]) is collected
//! from the very routers served (a test refuses a plain `.route(…)` here), so a route cannot be
//! served undocumented.

pub mod deliveries;
pub mod error;
pub mod event_types;
pub mod events;
pub mod extract;
pub mod openapi;
pub mod requests;
pub mod subscriptions;
pub mod trace;
pub mod views;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::middleware::from_fn;
use axum::response::IntoResponse;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;
use error::ApiError;

/// The management routes with their descriptions: subscriptions, deliveries, events (read), event
/// types, health and the OpenAPI document.
fn management_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(subscriptions::router())
        .merge(deliveries::router())
        .merge(events::router())
        .merge(event_types::router())
        .routes(routes!(healthz))
        .routes(routes!(openapi::serve))
}

/// Every documented route: what [`router`] serves, less the console's static files.
fn all_routes() -> OpenApiRouter<AppState> {
    management_routes()
        .merge(events::intake_router())
        .routes(routes!(metrics))
}

/// The OpenAPI description of every route of [`router`] (the document `GET /v1/openapi.json`
/// answers; [`openapi::document`] adds the parts no route carries).
pub(crate) fn described_routes() -> utoipa::openapi::OpenApi {
    all_routes().into_openapi()
}

/// Management routes: subscriptions, deliveries, events (read), event types, health, the OpenAPI
/// document and the console.
pub fn management_router(state: AppState) -> Router {
    finish(management_routes(), state)
}

/// Intake only: `POST /v1/events`, `POST /v1/events/batch` and health.
pub fn intake_router(state: AppState) -> Router {
    let (routes, _) = events::intake_router()
        .routes(routes!(healthz))
        .split_for_parts();
    Router::new()
        .merge(routes)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(from_fn(trace::log_request))
        .with_state(state)
}

/// Everything, for one-process mode.
pub fn router(state: AppState) -> Router {
    finish(all_routes(), state)
}

fn finish(routes: OpenApiRouter<AppState>, state: AppState) -> Router {
    let (routes, _) = routes.split_for_parts();
    Router::new()
        .merge(routes)
        .merge(crate::console::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(from_fn(trace::log_request))
        .with_state(state)
}

/// `GET /healthz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthStatus {
    #[schema(example = "ok")]
    pub status: &'static str,
    #[schema(example = "0.1.0")]
    pub version: &'static str,
}

/// Liveness: answers while the process serves requests. No API key.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "health",
    responses((status = 200, description = "Alive", body = HealthStatus)))]
async fn healthz() -> Json<HealthStatus> {
    Json(HealthStatus {
        status: "ok",
        version: herald_core::VERSION,
    })
}

/// Counters in Prometheus' text format (`herald dev` only; the Lambda functions publish
/// CloudWatch metrics instead). No API key: serve it on a trusted interface.
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "health",
    responses((status = 200, description = "Prometheus text exposition format",
        content_type = "text/plain; version=0.0.4", body = String)))]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// A known path with another method: the error shape too (axum keeps its `Allow` header).
async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this path does not take this method",
    )
}
