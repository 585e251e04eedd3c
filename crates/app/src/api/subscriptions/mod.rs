//! `/v1/subscriptions`: one module per part of the resource, as svix-server splits its endpoints.
//!
//! - `crud`: create, list, read, update, delete;
//! - `secrets`: the signing secret and its rotation;
//! - `test`: "save and test";
//! - `deliveries`: the subscription's delivery log;
//! - `recovery`: re-queueing failed deliveries, a bounded step at a time.
//!
//! Handlers stay thin: they read input with the core's parsers (`herald_core::subscription`), call
//! the core's rules or a service, and shape the answer. No subscription rule is decided here.
//!
//! Reads go to the store, never to the directory, so a PATCH then a GET shows the write; every
//! write then drops the subscription from this process's directory (`forget_subscription`), so
//! fan-out and delivery here see it at once.

mod crud;
mod deliveries;
mod recovery;
mod secrets;
mod test;

use axum::routing::{get, post};
use axum::Router;
use herald_core::{Subscription, SubscriptionId};

use super::error::ApiError;
use super::extract::parse_path_id;
use crate::auth::Caller;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/subscriptions", post(crud::create).get(crud::list))
        .route(
            "/v1/subscriptions/{id}",
            get(crud::read).patch(crud::update).delete(crud::remove),
        )
        .route("/v1/subscriptions/{id}/secret", get(secrets::read))
        .route(
            "/v1/subscriptions/{id}/secret/rotate",
            post(secrets::rotate),
        )
        .route("/v1/subscriptions/{id}/test", post(test::send))
        .route("/v1/subscriptions/{id}/deliveries", get(deliveries::list))
        .route("/v1/subscriptions/{id}/recover", post(recovery::recover))
}

/// Loads a subscription of the caller's tenant; any other tenant's id is simply not found.
async fn load(state: &AppState, caller: &Caller, raw_id: &str) -> Result<Subscription, ApiError> {
    let id: SubscriptionId = parse_path_id(raw_id, "subscription")?;
    state
        .store
        .get_subscription(&caller.tenant_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("subscription"))
}
