//! A subscription's delivery health: `GET /v1/subscriptions/{id}/stats?window=24h|7d`, hourly
//! buckets of deliveries succeeded, failed and retrying, attempts, the success rate and attempt
//! latency percentiles over the window (what each figure counts, and the percentiles' precision:
//! `herald_core::stats`). Read from the statistics store, one key range per request.

use axum::extract::{Path, RawQuery, State};
use axum::Json;
use herald_core::stats::{HourStats, Window};
use herald_core::SubscriptionId;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::Object;
use utoipa::{IntoParams, ToSchema};

use super::load;
use crate::api::error::{ApiError, ErrorBody};
use crate::api::views::string_enum;
use crate::auth::Caller;
use crate::state::AppState;

/// A subscription's delivery health over a window.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatsView {
    #[schema(value_type = String)]
    pub subscription_id: SubscriptionId,
    /// `24h` or `7d`.
    #[schema(example = "24h")]
    pub window: &'static str,
    /// Each bucket's length: an hour.
    #[schema(example = 3600)]
    pub bucket_seconds: i64,
    /// The oldest bucket's start.
    #[schema(value_type = String, format = DateTime)]
    pub from: Timestamp,
    /// The newest bucket's start.
    #[schema(value_type = String, format = DateTime)]
    pub to: Timestamp,
    pub totals: StatsTotals,
    pub latency_ms: LatencyView,
    /// Oldest first, one per hour of the window.
    pub buckets: Vec<StatsBucket>,
}

/// The window's counts.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatsTotals {
    pub succeeded: u64,
    pub failed: u64,
    pub retrying: u64,
    pub attempts: u64,
    /// succeeded / (succeeded + failed); null when none finished.
    pub success_rate: Option<f64>,
}

/// Attempt latency percentiles over the window; null without attempts.
#[derive(Debug, Serialize, ToSchema)]
pub struct LatencyView {
    pub p50: Option<u64>,
    pub p95: Option<u64>,
}

/// One hour's counts.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatsBucket {
    #[schema(value_type = String, format = DateTime)]
    pub start: Timestamp,
    pub succeeded: u64,
    pub failed: u64,
    pub retrying: u64,
    pub attempts: u64,
}

/// How the document describes the query ([`window`] reads it, with its own 422).
#[derive(Debug, Deserialize, IntoParams)]
#[allow(dead_code)] // Read by the document only.
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    /// `24h` (the default) or `7d`.
    #[serde(default)]
    #[param(schema_with = window_schema)]
    pub window: String,
}

fn window_schema() -> Object {
    string_enum([Window::Day, Window::Week].map(Window::as_str))
}

/// Delivery health in hourly buckets: deliveries succeeded, failed and retrying, attempts, the
/// success rate and attempt latency percentiles.
#[utoipa::path(get, path = "/v1/subscriptions/{id}/stats", operation_id = "get_subscription_stats",
    tag = "deliveries",
    security(("api_key" = [])),
    params(
        ("id" = String, Path, description = "The subscription's id (`sub_…`)"),
        StatsParams,
    ),
    responses(
        (status = 200, description = "The stats", body = StatsView),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 404, description = "No such subscription", body = ErrorBody),
        (status = 422, description = "`window` is not `24h` or `7d`", body = ErrorBody),
    ))]
pub(super) async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<StatsView>, ApiError> {
    let window = window(query.as_deref())?;
    let sub = load(&state, &caller, &id).await?;
    let stats = state
        .stats
        .read(&caller.tenant_id, &sub.id, window, state.clock.now())
        .await?;
    let totals = &stats.totals;
    Ok(Json(StatsView {
        subscription_id: sub.id,
        window: window.as_str(),
        bucket_seconds: herald_core::stats::HOUR_SECONDS,
        from: stats.from.start(),
        to: stats.to.start(),
        totals: StatsTotals {
            succeeded: totals.succeeded,
            failed: totals.failed,
            retrying: totals.retrying,
            attempts: totals.attempts,
            success_rate: totals.success_rate(),
        },
        latency_ms: LatencyView {
            p50: totals.latency.percentile(50),
            p95: totals.latency.percentile(95),
        },
        buckets: stats
            .buckets
            .iter()
            .map(|(hour, s)| bucket(hour.start(), s))
            .collect(),
    }))
}

fn bucket(start: Timestamp, s: &HourStats) -> StatsBucket {
    StatsBucket {
        start,
        succeeded: s.succeeded,
        failed: s.failed,
        retrying: s.retrying,
        attempts: s.attempts,
    }
}

/// `?window=`: `24h` when absent; anything but `24h` or `7d` is a 422 naming the field.
fn window(query: Option<&str>) -> Result<Window, ApiError> {
    let given = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "window")
        .map(|(_, v)| v.into_owned());
    match given {
        None => Ok(Window::default()),
        Some(raw) => raw.parse().map_err(|e: herald_core::stats::WindowError| {
            ApiError::validation("window", e.to_string())
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_defaults_to_a_day_and_refuses_anything_else() {
        assert_eq!(window(None).unwrap(), Window::Day);
        assert_eq!(window(Some("")).unwrap(), Window::Day);
        assert_eq!(window(Some("window=7d")).unwrap(), Window::Week);
        assert_eq!(window(Some("x=1&window=24h")).unwrap(), Window::Day);
        for bad in ["window=", "window=30d", "window=24%20h"] {
            let err = window(Some(bad)).unwrap_err();
            assert_eq!(
                (err.status.as_u16(), err.field.as_deref()),
                (422, Some("window")),
                "{bad}"
            );
        }
    }
}
