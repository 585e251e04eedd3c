//! "Save and test": one `webhook.test` delivery now, answered with what the endpoint said; or
//! "Send example": one event of a named type carrying that type's example, the same way.

use axum::extract::{Path, State};
use axum::Json;
use herald_core::input::Fields;
use herald_core::{BuiltinEventType, DeliveryId, EventId, EventType};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::load;
use crate::api::error::{ApiError, ErrorBody};
use crate::api::extract::OptionalJsonObject;
use crate::api::requests::TestRequest;
use crate::auth::Caller;
use crate::service::test_send;
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
/// retried) and answers what the endpoint said. A 410 answer disables the subscription. With
/// `{"event_type": …}` ("Send example"), it sends that type's example as an event of that type
/// instead, the same way.
#[utoipa::path(post, path = "/v1/subscriptions/{id}/test", operation_id = "test_subscription", tag = "subscriptions",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The subscription's id (`sub_…`)")),
    request_body(content = Option<TestRequest>, description = "Optional: empty, `null`, `{}`, or \
the type whose example to send"),
    responses(
        (status = 200, description = "Sent (`delivered` says whether it succeeded)",
            body = TestReportView),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 404, description = "No such subscription", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, description = "A body that is not `application/json`", body = ErrorBody),
        (status = 422, description = "`event_type` is not a known type with an example \
(`field` names it)", body = ErrorBody),
    ))]
pub(super) async fn send(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    OptionalJsonObject(body): OptionalJsonObject,
) -> Result<Json<TestReportView>, ApiError> {
    let wanted = match body {
        None => None,
        Some(body) => {
            let mut fields = Fields::new(body);
            let wanted = fields.take_string("event_type", 128)?.flatten();
            fields.finish()?;
            wanted
        }
    };
    let sample = match wanted {
        None => None,
        Some(name) => Some(example_of(&state, &caller, &name).await?),
    };
    let sub = load(&state, &caller, &id).await?;
    let report = match sample {
        None => test_send::send_test(&state, &sub).await,
        Some((event_type, data)) => test_send::send_sample(&state, &sub, event_type, data).await,
    }
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

/// The example of `name`: a built-in type's, or the tenant's type's; 422 when there is none.
async fn example_of(
    state: &AppState,
    caller: &Caller,
    name: &str,
) -> Result<(EventType, Value), ApiError> {
    let event_type =
        EventType::parse(name).map_err(|e| ApiError::validation("event_type", e.to_string()))?;
    let example = match BuiltinEventType::find(name) {
        Some(builtin) => Some(builtin.example()),
        None => {
            let own = state
                .event_types
                .get_event_type(&caller.tenant_id, &event_type)
                .await?
                .ok_or_else(|| {
                    ApiError::validation(
                        "event_type",
                        format!("`{name}` is neither a built-in event type nor one of yours"),
                    )
                })?;
            own.example
        }
    };
    let example = example.ok_or_else(|| {
        ApiError::validation(
            "event_type",
            format!("`{name}` has no example: add one with PATCH /v1/event-types/{name}"),
        )
    })?;
    Ok((event_type, example))
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
