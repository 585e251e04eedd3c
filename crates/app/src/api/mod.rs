//! The HTTP API (v1): one module per resource, merged here. The same routers are served by
//! `herald dev` (axum) and by the Lambda functions (lambda_http), and each logs one line per
//! request ([`trace`]).

pub mod deliveries;
pub mod error;
pub mod events;
pub mod extract;
pub mod subscriptions;
pub mod trace;
pub mod views;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::middleware::from_fn;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::state::AppState;
use error::ApiError;

/// Management routes: subscriptions, deliveries, events (read), event types, health.
pub fn management_router(state: AppState) -> Router {
    Router::new()
        .merge(subscriptions::router())
        .merge(deliveries::router())
        .merge(events::router())
        .route("/healthz", get(healthz))
        .merge(crate::console::router())
        .fallback(not_found)
        .layer(from_fn(trace::log_request))
        .with_state(state)
}

/// Intake only: `POST /v1/events` and health.
pub fn intake_router(state: AppState) -> Router {
    Router::new()
        .merge(events::intake_router())
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .layer(from_fn(trace::log_request))
        .with_state(state)
}

/// Everything, for one-process mode.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(subscriptions::router())
        .merge(deliveries::router())
        .merge(events::router())
        .merge(events::intake_router())
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .merge(crate::console::router())
        .fallback(not_found)
        .layer(from_fn(trace::log_request))
        .with_state(state)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok", "version": herald_core::VERSION }))
}

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
