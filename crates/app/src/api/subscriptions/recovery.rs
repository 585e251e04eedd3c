//! Recover: queue again the failed deliveries since a time, a bounded step per request.
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
use jiff::Timestamp;
use serde_json::{json, Value};

use super::load;
use crate::api::error::ApiError;
use crate::api::extract::JsonObject;
use crate::auth::Caller;
use crate::service::recover;
use crate::state::AppState;

/// Deliveries examined per request when the body names no `limit`.
pub const DEFAULT_LIMIT: usize = 500;
/// The most deliveries one request may examine.
pub const MAX_LIMIT: usize = 1000;
const MAX_TEXT_CHARS: usize = 2048;

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
        Json(json!({ "recovered": step.recovered, "next_cursor": step.next_cursor })),
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

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
