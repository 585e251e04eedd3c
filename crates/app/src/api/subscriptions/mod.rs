//! `/v1/subscriptions`: one module per part of the resource, as svix-server splits its endpoints.
//!
//! - `crud`: create, list, read, update, delete;
//! - `secrets`: the signing secret and its rotation;
//! - `test`: "save and test";
//! - `preview`: what a subscription would send for an event, without sending or saving;
//! - `deliveries`: the subscription's delivery log;
//! - `recovery`: enabling again, and re-queueing failed deliveries, a bounded step at a time;
//! - `stats`: delivery health per hour over the last day or week.
//!
//! Handlers stay thin: they read input with the core's parsers (`herald_core::subscription`), call
//! the core's rules or a service, and shape the answer. No subscription rule is decided here.
//!
//! Reads go to the store, never to the directory, so a PATCH then a GET shows the write; every
//! write then drops the subscription from this process's directory (`forget_subscription`), so
//! fan-out and delivery here see it at once.

mod crud;
mod deliveries;
pub mod preview;
mod recovery;
mod secrets;
mod stats;
mod test;

use herald_core::health::{Health, HealthChange};
use herald_core::ports::StoreError;
use herald_core::{Subscription, SubscriptionId};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiError;
use super::extract::parse_path_id;
use super::views::{subscription_view, SubscriptionView};
use crate::auth::Caller;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(crud::create, crud::list))
        .routes(routes!(crud::read, crud::update, crud::remove))
        .routes(routes!(secrets::read))
        .routes(routes!(secrets::rotate))
        .routes(routes!(test::send))
        .routes(routes!(preview::preview))
        .routes(routes!(deliveries::list))
        .routes(routes!(stats::read))
        .routes(routes!(recovery::recover))
        .routes(routes!(recovery::enable))
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

/// `sub` as answered: with its health as of now.
fn view(state: &AppState, sub: &Subscription) -> SubscriptionView {
    subscription_view(sub, &state.settings.lifecycle, state.clock.now())
}

/// A subscription enabled again starts a new health streak (its last success is kept): what
/// made it fail before says nothing of the endpoint now. Answers the new health.
async fn reset_health(state: &AppState, sub: &Subscription) -> Result<Health, ApiError> {
    match state
        .store
        .update_health(&sub.tenant_id, &sub.id, HealthChange::Reset)
        .await
    {
        Ok(before) => {
            let mut health = before.unwrap_or_else(|| sub.health.clone());
            health.apply(HealthChange::Reset);
            Ok(health)
        }
        Err(StoreError::NotFound) => Err(ApiError::not_found("subscription")),
        Err(e) => Err(e.into()),
    }
}
