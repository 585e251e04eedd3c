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
