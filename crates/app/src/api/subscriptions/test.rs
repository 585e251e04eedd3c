//! "Save and test": one `webhook.test` delivery now, answered with what the endpoint said.

use axum::extract::{Path, State};
use axum::Json;
use herald_core::{DeliveryId, EventId};
use serde::Serialize;
use utoipa::ToSchema;

use super::load;
use crate::api::error::{ApiError, ErrorBody};
use crate::auth::Caller;
use crate::service::delivery;
use crate::state::AppState;

/// What the endpoint said to a `webhook.test` event.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestReportView {
    /// Whether it answered 2xx.
    pub delivered: bool,
    /// Its status code, if it answered.
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// At most 4 KiB of its answer.
    pub response_excerpt: Option<String>,
    /// Why it failed (timeout, refused connection, blocked address, status).
    pub error: Option<String>,
    #[schema(value_type = String)]
    pub event_id: EventId,
    #[schema(value_type = String)]
    pub delivery_id: DeliveryId,
}

/// "Save and test": sends a `webhook.test` event now (recorded in the delivery log, never
/// retried) and answers what the endpoint said. A 410 answer disables the subscription.
#[utoipa::path(post, path = "/v1/subscriptions/{id}/test", operation_id = "test_subscription", tag = "subscriptions",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The subscription's id (`sub_…`)")),
    responses(
        (status = 200, description = "Sent (`delivered` says whether it succeeded)",
            body = TestReportView),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 404, description = "No such subscription", body = ErrorBody),
    ))]
pub(super) async fn send(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TestReportView>, ApiError> {
    let sub = load(&state, &caller, &id).await?;
    let report = delivery::send_test(&state, &sub)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(TestReportView {
        delivered: report.delivered,
        status: report.status,
        latency_ms: report.latency_ms,
        response_excerpt: report.response_excerpt,
        error: report.error,
        event_id: report.event_id,
        delivery_id: report.delivery_id,
    }))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::http::StatusCode;
    use herald_contract::memory::Reply;

    use crate::service::testing::Harness;

    #[tokio::test]
    async fn a_410_disables_the_subscription_and_fan_out_here_stops_at_once() {
        let h = Harness::new([Reply::Status(410)]).with_cache_ttl(Duration::from_secs(60));
        let key = h.api_key().await.key;
        let sub = h.subscribe(&["*"], true).await;
        let enabled = || h.state.directory.enabled_subscriptions(&h.tenant);
        assert_eq!(enabled().await.unwrap().len(), 1);

        let path = format!("/v1/subscriptions/{}/test", sub.id);
        let (status, report) = h.call(&key, "POST", &path, None).await;

        assert_eq!(status, StatusCode::OK);
        assert_eq!(report["status"], 410);
        assert!(!h.subscription(&sub).await.enabled);
        assert!(enabled().await.unwrap().is_empty());
    }
}
