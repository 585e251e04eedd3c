//! A subscription's delivery health: `GET /v1/subscriptions/{id}/stats?window=24h|7d`, hourly
//! buckets of deliveries succeeded, failed and retrying, attempts, the success rate and attempt
//! latency percentiles over the window (what each figure counts, and the percentiles' precision:
//! `herald_core::stats`). Read from the statistics store, one key range per request.

use axum::extract::{Path, RawQuery, State};
use axum::Json;
use herald_core::stats::{HourStats, Window};
use serde_json::{json, Value};

use super::load;
use crate::api::error::ApiError;
use crate::auth::Caller;
use crate::state::AppState;

pub(super) async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let window = window(query.as_deref())?;
    let sub = load(&state, &caller, &id).await?;
    let stats = state
        .stats
        .read(&caller.tenant_id, &sub.id, window, state.clock.now())
        .await?;
    let totals = &stats.totals;
    Ok(Json(json!({
        "subscription_id": sub.id,
        "window": window.as_str(),
        "bucket_seconds": herald_core::stats::HOUR_SECONDS,
        "from": stats.from.start(),
        "to": stats.to.start(),
        "totals": {
            "succeeded": totals.succeeded,
            "failed": totals.failed,
            "retrying": totals.retrying,
            "attempts": totals.attempts,
            "success_rate": totals.success_rate(),
        },
        "latency_ms": {
            "p50": totals.latency.percentile(50),
            "p95": totals.latency.percentile(95),
        },
        "buckets": stats
            .buckets
            .iter()
            .map(|(hour, s)| bucket(hour.start(), s))
            .collect::<Vec<_>>(),
    })))
}

fn bucket(start: jiff::Timestamp, s: &HourStats) -> Value {
    json!({
        "start": start,
        "succeeded": s.succeeded,
        "failed": s.failed,
        "retrying": s.retrying,
        "attempts": s.attempts,
    })
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
