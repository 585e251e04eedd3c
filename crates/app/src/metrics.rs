//! Delivery counters, per process, shown by `herald dev` at `GET /metrics`. The Lambda functions count
//! them too but do not publish them yet (CloudWatch metrics are future work).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

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
    pub attempt_latency_ms_total: AtomicU64,
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
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
        out
    }
}
