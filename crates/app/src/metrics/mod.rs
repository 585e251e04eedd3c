//! Delivery counters, per process, shown by `herald dev` at `GET /metrics`. The Lambda functions count
//! them too but do not publish them yet (CloudWatch metrics are future work). An adapter may attach
//! its own counters to the same page ([`MetricsSource`]).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// More counters for the same page, from an adapter the app does not know (e.g. the AWS call meter
/// of `herald dev --store aws`).
pub trait MetricsSource: Send + Sync {
    /// Appends Prometheus text exposition lines.
    fn render(&self, out: &mut String);
}

/// The attached source, if any (set once, at startup).
#[derive(Default)]
pub struct ExtraMetrics(OnceLock<Arc<dyn MetricsSource>>);

impl std::fmt::Debug for ExtraMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ExtraMetrics")
            .field(&self.0.get().is_some())
            .finish()
    }
}

/// Process-wide counters. Relaxed atomics: these are statistics, not synchronisation.
#[derive(Debug, Default)]
pub struct Metrics {
    pub events_accepted: AtomicU64,
    pub deliveries_created: AtomicU64,
    pub attempts: AtomicU64,
    pub deliveries_succeeded: AtomicU64,
    pub deliveries_failed: AtomicU64,
    pub deliveries_retried: AtomicU64,
    pub subscriptions_disabled: AtomicU64,
    /// Deliveries that met an open breaker and were sent on to wait.
    pub deliveries_paused: AtomicU64,
    /// Deliveries that waited for a send slot under their subscription's rate.
    pub deliveries_rate_limited: AtomicU64,
    pub attempt_latency_ms_total: AtomicU64,
    pub extra: ExtraMetrics,
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Adds `source`'s counters to [`Metrics::render`]; only the first source attached is kept.
    pub fn attach(&self, source: Arc<dyn MetricsSource>) -> bool {
        self.extra.0.set(source).is_ok()
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let rows = [
            ("herald_events_accepted_total", &self.events_accepted),
            ("herald_deliveries_created_total", &self.deliveries_created),
            ("herald_attempts_total", &self.attempts),
            (
                "herald_deliveries_succeeded_total",
                &self.deliveries_succeeded,
            ),
            ("herald_deliveries_failed_total", &self.deliveries_failed),
            ("herald_deliveries_retried_total", &self.deliveries_retried),
            (
                "herald_subscriptions_disabled_total",
                &self.subscriptions_disabled,
            ),
            ("herald_deliveries_paused_total", &self.deliveries_paused),
            (
                "herald_deliveries_rate_limited_total",
                &self.deliveries_rate_limited,
            ),
            (
                "herald_attempt_latency_ms_sum",
                &self.attempt_latency_ms_total,
            ),
        ];
        for (name, value) in rows {
            let _ = writeln!(
                out,
                "# TYPE {name} counter\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
        if let Some(extra) = self.extra.0.get() {
            extra.render(&mut out);
        }
        out
    }
}
