//! What Herald did, per process: counters and histograms shown by `herald dev` at `GET /metrics`
//! (Prometheus text), and the same observations published by the Lambda functions as CloudWatch
//! Embedded Metric Format lines ([`emf`], turned on with [`Metrics::enable_emf`]). An adapter may
//! attach its own counters to the page ([`MetricsSource`]).
//!
//! The services call the recording methods ([`Metrics::delivery`], [`Metrics::events_accepted`],
//! …) where the outcome is known; both outputs come from those calls.

pub mod emf;
mod histogram;

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use herald_core::{Platform, SubscriptionId, TenantId};

pub use emf::{DeliveryObservation, DeliveryOutcome, Emf, PlatformCount};
pub use histogram::Histogram;

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
    pub subscriptions_disabled: AtomicU64,
    /// Deliveries that met an open breaker and were sent on to wait.
    pub deliveries_paused: AtomicU64,
    /// Deliveries that waited for a send slot under their subscription's rate.
    pub deliveries_rate_limited: AtomicU64,
    pub attempt_latency_ms_total: AtomicU64,
    /// Deliveries by platform and outcome (indexed like `Platform::ALL` then "unknown", and
    /// `DeliveryOutcome::ALL`); the per-outcome totals are their sums.
    by_platform: [[AtomicU64; 3]; 6],
    /// Attempt latency of deliveries (not of "save and test").
    pub attempt_latency: Histogram,
    /// Event accepted → delivered, for deliveries that succeeded.
    pub delivery_lag: Histogram,
    /// How long a message waited in its queue before a worker received it (where the queue says).
    pub queue_age: Histogram,
    emf: OnceLock<Emf>,
    pub extra: ExtraMetrics,
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Publishes every observation from now on as EMF lines too, under `namespace`, until
    /// [`Metrics::drain_emf`]; only the first call counts.
    pub fn enable_emf(&self, namespace: &str) -> bool {
        self.emf.set(Emf::new(namespace)).is_ok()
    }

    /// The EMF lines of what was observed since the last drain (none when EMF is off).
    pub fn drain_emf(&self, function: &str, timestamp_ms: i64) -> Vec<String> {
        self.emf
            .get()
            .map(|emf| emf.drain(function, timestamp_ms))
            .unwrap_or_default()
    }

    /// A delivery's outcome after an attempt (`attempt_ms`) or without one; `lag_ms` (accepted →
    /// delivered) for one that succeeded. `platform` is `None` when the subscription is gone.
    pub fn delivery(
        &self,
        platform: Option<Platform>,
        outcome: DeliveryOutcome,
        attempt_ms: Option<u64>,
        lag_ms: Option<u64>,
        ids: (&TenantId, &SubscriptionId),
    ) {
        Self::add(
            &self.by_platform[platform_index(platform)][outcome_index(outcome)],
            1,
        );
        if let Some(ms) = attempt_ms {
            self.attempt_latency.observe(ms);
        }
        if let Some(ms) = lag_ms {
            self.delivery_lag.observe(ms);
        }
        if let Some(emf) = self.emf.get() {
            emf.delivery(DeliveryObservation {
                platform: platform_name(platform),
                outcome,
                attempt_ms,
                lag_ms,
                tenant: ids.0.to_string(),
                subscription: ids.1.to_string(),
            });
        }
    }

    pub fn events_accepted(&self, n: u64) {
        Self::add(&self.events_accepted, n);
        if let Some(emf) = self.emf.get() {
            emf.events_accepted(n);
        }
    }

    /// One of the per-platform counts: a subscription disabled, a delivery paused by its breaker
    /// or waiting for a send slot.
    pub fn platform_count(&self, platform: Platform, what: PlatformCount) {
        let counter = match what {
            PlatformCount::SubscriptionsDisabled => &self.subscriptions_disabled,
            PlatformCount::DeliveriesPaused => &self.deliveries_paused,
            PlatformCount::DeliveriesRateLimited => &self.deliveries_rate_limited,
        };
        Self::add(counter, 1);
        if let Some(emf) = self.emf.get() {
            emf.count(platform.as_str(), what);
        }
    }

    /// A message received `waited` after it was due.
    pub fn queue_age(&self, waited: Duration) {
        let ms = u64::try_from(waited.as_millis()).unwrap_or(u64::MAX);
        self.queue_age.observe(ms);
        if let Some(emf) = self.emf.get() {
            emf.queue_age(ms);
        }
    }

    /// Adds `source`'s counters to [`Metrics::render`]; only the first source attached is kept.
    pub fn attach(&self, source: Arc<dyn MetricsSource>) -> bool {
        self.extra.0.set(source).is_ok()
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let outcome_total = |outcome: DeliveryOutcome| -> u64 {
            let o = outcome_index(outcome);
            self.by_platform.iter().map(|row| load(&row[o])).sum()
        };
        let rows = [
            ("herald_events_accepted_total", load(&self.events_accepted)),
            (
                "herald_deliveries_created_total",
                load(&self.deliveries_created),
            ),
            ("herald_attempts_total", load(&self.attempts)),
            (
                "herald_deliveries_succeeded_total",
                outcome_total(DeliveryOutcome::Succeeded),
            ),
            (
                "herald_deliveries_failed_total",
                outcome_total(DeliveryOutcome::Failed),
            ),
            (
                "herald_deliveries_retried_total",
                outcome_total(DeliveryOutcome::Retried),
            ),
            (
                "herald_subscriptions_disabled_total",
                load(&self.subscriptions_disabled),
            ),
            (
                "herald_deliveries_paused_total",
                load(&self.deliveries_paused),
            ),
            (
                "herald_deliveries_rate_limited_total",
                load(&self.deliveries_rate_limited),
            ),
            (
                "herald_attempt_latency_ms_sum",
                load(&self.attempt_latency_ms_total),
            ),
        ];
        for (name, value) in rows {
            let _ = writeln!(out, "# TYPE {name} counter\n{name} {value}");
        }
        let _ = writeln!(out, "# TYPE herald_deliveries_total counter");
        let platforms = Platform::ALL.map(Some).into_iter().chain([None]);
        for (p, platform) in platforms.enumerate() {
            for (o, outcome) in DeliveryOutcome::ALL.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "herald_deliveries_total{{platform=\"{}\",outcome=\"{}\"}} {}",
                    platform_name(platform),
                    outcome.as_str(),
                    self.by_platform[p][o].load(Ordering::Relaxed)
                );
            }
        }
        for (name, histogram) in [
            ("herald_attempt_latency_ms", &self.attempt_latency),
            ("herald_delivery_lag_ms", &self.delivery_lag),
            ("herald_queue_age_ms", &self.queue_age),
        ] {
            let _ = writeln!(out, "# TYPE {name} histogram");
            histogram.render(&mut out, name, "");
        }
        if let Some(extra) = self.extra.0.get() {
            extra.render(&mut out);
        }
        out
    }
}

fn platform_index(platform: Option<Platform>) -> usize {
    platform
        .and_then(|platform| Platform::ALL.iter().position(|p| *p == platform))
        .unwrap_or(Platform::ALL.len())
}

fn platform_name(platform: Option<Platform>) -> &'static str {
    platform.map_or("unknown", |p| p.as_str())
}

fn outcome_index(outcome: DeliveryOutcome) -> usize {
    DeliveryOutcome::ALL
        .iter()
        .position(|o| *o == outcome)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_call_feeds_prometheus_and_emf() {
        let metrics = Metrics::default();
        let (t, s) = (TenantId::new(), SubscriptionId::new());
        // Off until enabled: nothing kept for EMF.
        metrics.delivery(
            Some(Platform::Slack),
            DeliveryOutcome::Succeeded,
            Some(12),
            Some(40),
            (&t, &s),
        );
        assert!(metrics.drain_emf("deliver", 0).is_empty());
        assert!(metrics.enable_emf("Herald"));
        metrics.delivery(None, DeliveryOutcome::Failed, None, None, (&t, &s));
        metrics.events_accepted(2);
        metrics.platform_count(Platform::Teams, PlatformCount::DeliveriesPaused);
        let text = metrics.render();
        for line in [
            "herald_deliveries_succeeded_total 1\n",
            "herald_deliveries_failed_total 1\n",
            "herald_events_accepted_total 2\n",
            "herald_deliveries_paused_total 1\n",
            "herald_deliveries_total{platform=\"slack\",outcome=\"succeeded\"} 1\n",
            "herald_deliveries_total{platform=\"unknown\",outcome=\"failed\"} 1\n",
            "herald_attempt_latency_ms_count 1\n",
            "herald_delivery_lag_ms_bucket{le=\"50\"} 1\n",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        let lines = metrics.drain_emf("deliver", 0);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines.iter().any(|l| l.contains("\"outcome\":\"failed\"")));
        assert!(!lines
            .iter()
            .any(|l| l.contains("\"outcome\":\"succeeded\"")));
    }
}
