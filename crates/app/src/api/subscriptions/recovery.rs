//! Recover (queue again the failed deliveries since a time, a bounded step per request) and
//! enable (deliver to a disabled subscription again, optionally recovering its down time).
//!
//! One request examines at most `limit` deliveries (default [`DEFAULT_LIMIT`], at most
//! [`MAX_LIMIT`]) so that it ends well within API Gateway's 30 s, and answers where to continue:
//! `{"recovered": n, "next_cursor": "…"}`. The client sends the cursor back with the same `since`
//! until `next_cursor` is null.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use herald_core::input::{FieldError, Fields};
use herald_core::ports::StoreError;
use herald_core::time::before;
use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::{load, reset_health, view};
use crate::api::error::{ApiError, ErrorBody};
use crate::api::extract::{JsonObject, OptionalJsonObject};
use crate::api::requests::{EnableRequest, RecoverRequest};
use crate::api::views::SubscriptionView;
use crate::auth::Caller;
use crate::service::recover;
use crate::state::AppState;

/// Deliveries examined per request when the body names no `limit`.
pub const DEFAULT_LIMIT: usize = 500;
/// The most deliveries one request may examine.
pub const MAX_LIMIT: usize = 1000;
const MAX_TEXT_CHARS: usize = 2048;

/// One step of a recovery.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecoverStep {
    /// Failed deliveries queued again in this step.
    pub recovered: usize,
    /// Send it back as `cursor` (with the same `since`) to go on; null when done.
    pub next_cursor: Option<String>,
}

/// What enable did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Enabled {
    pub subscription: SubscriptionView,
    /// Only when `recover` was asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recover: Option<EnableRecovery>,
}

/// The first recovery step of enable.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnableRecovery {
    /// Where the recovery began: pass it as `since` to `recover` with `next_cursor`.
    #[schema(value_type = String, format = DateTime)]
    pub since: Timestamp,
    pub recovered: usize,
    pub next_cursor: Option<String>,
}

/// Queues again the failed deliveries created since `since`, at most `limit` examined per call.
#[utoipa::path(post, path = "/v1/subscriptions/{id}/recover", operation_id = "recover_deliveries", tag = "deliveries",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The subscription's id (`sub_…`)")),
    request_body = RecoverRequest,
    responses(
        (status = 202, description = "Queued; go on with `next_cursor` until it is null",
            body = RecoverStep),
        (status = 400, description = "The body is not JSON, or the cursor is not valid",
            body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 404, description = "No such subscription", body = ErrorBody),
        (status = 409, description = "The subscription is disabled: enable it first",
            body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, description = "The body is not `application/json`", body = ErrorBody),
        (status = 422, description = "A field is not valid (`field` names it)", body = ErrorBody),
    ))]
pub(super) async fn recover(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<impl IntoResponse, ApiError> {
    let sub = load(&state, &caller, &id).await?;
    if !sub.enabled {
        return Err(ApiError::conflict(
            "the subscription is disabled: enable it first, then recover",
        ));
    }
    let mut fields = Fields::new(body);
    let since: Timestamp = fields
        .take_required_string("since", MAX_TEXT_CHARS)?
        .parse()
        .map_err(|_| {
            FieldError::new(
                "since",
                "`since` must be an RFC 3339 time such as 2026-12-01T10:00:00Z",
            )
        })?;
    let cursor = fields
        .take_string("cursor", MAX_TEXT_CHARS)?
        .flatten()
        .filter(|c| !c.is_empty());
    let limit = parse_limit(fields.take_value("limit").flatten())?;
    fields.finish()?;

    let step = recover::recover_failed(&state, &sub, since, cursor, limit).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(RecoverStep {
            recovered: step.recovered,
            next_cursor: step.next_cursor,
        }),
    ))
}

fn parse_limit(value: Option<Value>) -> Result<usize, FieldError> {
    match value {
        None => Ok(DEFAULT_LIMIT),
        Some(v) => v
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                FieldError::new(
                    "limit",
                    format!("`limit` must be a whole number from 1 to {MAX_LIMIT}"),
                )
            }),
    }
}

/// `POST /v1/subscriptions/{id}/enable`, body empty or `{"recover": true}`: delivers to it again.
/// With `recover`, the failed deliveries of its down time are queued again too: those created since
/// it began failing (or was disabled, if sooner), less the retry schedule's length (a delivery
/// still retrying then started that long before), one bounded step as `recover` takes;
/// `next_cursor` continues through `recover` with the same `since`. Deliveries still waiting on
/// its breaker need no recovery: they go out once it is enabled. Enabling starts a new health
/// streak.
#[utoipa::path(post, path = "/v1/subscriptions/{id}/enable", operation_id = "enable_subscription", tag = "subscriptions",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The subscription's id (`sub_…`)")),
    request_body(content = Option<EnableRequest>, description = "Optional: empty, or a JSON object"),
    responses(
        (status = 200, description = "Enabled", body = Enabled),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 404, description = "No such subscription", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, description = "A body that is not `application/json`", body = ErrorBody),
        (status = 422, description = "A field is not valid (`field` names it)", body = ErrorBody),
    ))]
pub(super) async fn enable(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    OptionalJsonObject(body): OptionalJsonObject,
) -> Result<impl IntoResponse, ApiError> {
    let mut sub = load(&state, &caller, &id).await?;
    let recover_asked = match body {
        None => false,
        Some(body) => {
            let mut fields = Fields::new(body);
            let recover = fields.take_bool("recover")?.unwrap_or(false);
            fields.finish()?;
            recover
        }
    };
    // The down time began with the failing streak (kept until the health is reset below).
    let down_since = sub
        .health
        .failing_since
        .into_iter()
        .chain(sub.disabled_at)
        .min();
    if !sub.enabled {
        sub.enable(state.clock.now());
        let written = state.store.update_subscription(&sub).await;
        state.directory.forget_subscription(&sub.tenant_id, &sub.id);
        written.map_err(|e| match e {
            StoreError::NotFound => ApiError::not_found("subscription"),
            other => other.into(),
        })?;
        sub.health = reset_health(&state, &sub).await?;
        tracing::info!(tenant = %sub.tenant_id, subscription = %sub.id, "subscription enabled");
    }
    let mut answer = Enabled {
        subscription: view(&state, &sub),
        recover: None,
    };
    if recover_asked {
        let down_since = down_since.unwrap_or_else(|| state.clock.now());
        let schedule = state
            .settings
            .retry
            .schedule
            .iter()
            .sum::<std::time::Duration>();
        let since = before(down_since, schedule).max(Timestamp::UNIX_EPOCH);
        let step = recover::recover_failed(&state, &sub, since, None, DEFAULT_LIMIT).await?;
        answer.recover = Some(EnableRecovery {
            since,
            recovered: step.recovered,
            next_cursor: step.next_cursor,
        });
    }
    Ok(Json(answer))
}

#[cfg(test)]
mod tests {
    use herald_contract::memory::Reply;
    use serde_json::json;

    use super::*;
    use crate::service::delivery;
    use crate::service::testing::Harness;

    #[tokio::test]
    async fn enable_delivers_again_and_can_recover_what_failed_while_down() {
        let h = Harness::new([Reply::Status(410)]);
        let key = h.api_key().await.key;
        let (sub, first) = h.one_delivery().await;
        delivery::handle(&h.state, &first, 1).await.unwrap();
        let disabled = h.subscription(&sub).await;
        assert!(!disabled.enabled);
        assert!(disabled.disabled_at.is_some());
        // Refused while disabled; recover says how to go on.
        let recover = format!("/v1/subscriptions/{}/recover", sub.id);
        let (status, _) = h
            .call(
                &key,
                "POST",
                &recover,
                Some(json!({"since": "2020-01-01T00:00:00Z"})),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT);

        let enable = format!("/v1/subscriptions/{}/enable", sub.id);
        let (status, bad) = h
            .call(&key, "POST", &enable, Some(json!({"recover": "yes"})))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert!(
            !h.subscription(&sub).await.enabled,
            "bad input changes nothing"
        );

        let (status, answer) = h
            .call(&key, "POST", &enable, Some(json!({"recover": true})))
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["subscription"]["enabled"], true);
        assert_eq!(answer["subscription"]["disabled_reason"], Value::Null);
        assert_eq!(answer["recover"]["recovered"], 1);
        let stored = h.subscription(&sub).await;
        assert!(stored.enabled && stored.disabled_at.is_none());
        let queued = h.take_deliveries();
        assert_eq!(queued.len(), 1);
        assert_eq!(queued[0].0.delivery.id, first.delivery.id);

        // Enabling an enabled subscription, without a body (or with `null`), changes nothing and
        // recovers nothing.
        for body in [None, Some(Value::Null)] {
            let (status, again) = h.call(&key, "POST", &enable, body).await;
            assert_eq!(status, StatusCode::OK, "{again}");
            assert_eq!(again["subscription"]["enabled"], true);
            assert!(again.get("recover").is_none());
            assert!(h.take_deliveries().is_empty());
        }
    }

    #[test]
    fn the_limit_defaults_and_is_bounded() {
        assert_eq!(parse_limit(None), Ok(DEFAULT_LIMIT));
        assert_eq!(parse_limit(Some(json!(1))), Ok(1));
        assert_eq!(parse_limit(Some(json!(MAX_LIMIT))), Ok(MAX_LIMIT));
        for bad in [json!(0), json!(1001), json!(2.5), json!("10"), json!(-1)] {
            assert_eq!(parse_limit(Some(bad)).unwrap_err().field, "limit");
        }
    }
}
