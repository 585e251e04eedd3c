//! Delivery statistics ([`herald_core::stats`]), counted in this process and written to the
//! [`StatsStore`] in batches: the delivery service counts each attempt's outcome here
//! ([`Stats::record_attempt`], [`Stats::record_given_up`]), in a buffer keyed by (tenant,
//! subscription, hour), and [`Stats::flush`] adds the buffer to the store, one delta per
//! subscription and hour touched since the last flush (on DynamoDB, one UpdateItem each), never
//! one write per delivery.
//!
//! When: while deliveries keep coming, once the oldest buffered count is `Settings::
//! stats_flush_every` old (1 s by default, 10 s on AWS, where each flush costs a write per
//! subscription and hour); as soon as the flow pauses, at once, so that nothing waits in a process
//! that may be frozen or retired next. The Lambda batch handler decides after each batch (a batch
//! smaller than SQS's 10 says the queue is drained: a pause); in one-process mode [`run_flusher`]
//! looks every [`TICK`] (no count for a tick is a pause), and the workers flush once more at
//! shutdown.
//!
//! These are statistics, not records: a flush that fails is logged and its counts dropped (never
//! retried, never failing a delivery or a batch), and counts buffered when the process dies are
//! lost. The delivery log stays the record of every attempt.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use herald_core::delivery::Transition;
use herald_core::ports::{Recorded, StoreError};
use herald_core::stats::{Hour, HourStats, StatsDelta, StatsStore, Tally, Window, WindowStats};
use herald_core::{Attempt, Delivery, SubscriptionId, TenantId};
use jiff::Timestamp;
use tokio::sync::watch;

/// How often one-process mode looks whether a flush is due.
pub const TICK: Duration = Duration::from_secs(1);

type Key = (TenantId, SubscriptionId, Hour);

#[derive(Default)]
struct Pending {
    counts: HashMap<Key, HourStats>,
    /// When the oldest and the newest buffered counts were added.
    first: Option<Instant>,
    last: Option<Instant>,
}

/// The buffer and the store it is flushed to (see the module docs).
pub struct Stats {
    store: Arc<dyn StatsStore>,
    pending: Mutex<Pending>,
}

impl std::fmt::Debug for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stats").finish_non_exhaustive()
    }
}

impl Stats {
    pub fn new(store: Arc<dyn StatsStore>) -> Self {
        Self {
            store,
            pending: Mutex::new(Pending::default()),
        }
    }

    /// Counts a recorded attempt, in the hour it started: the request and its latency, and what
    /// followed it unless another worker's record of that attempt number stands (`Superseded`).
    pub fn record_attempt(&self, attempt: &Attempt, transition: &Transition, recorded: Recorded) {
        let tally = match recorded {
            Recorded::Applied => Tally::of(transition),
            Recorded::Superseded => Tally::Superseded,
        };
        self.add(
            attempt.tenant_id,
            attempt.subscription_id,
            attempt.started_at,
            |s| s.attempt(attempt.latency_ms, tally),
        );
    }

    /// Counts a delivery given up without an attempt, at `at`.
    pub fn record_given_up(&self, delivery: &Delivery, at: Timestamp) {
        self.add(
            delivery.tenant_id,
            delivery.subscription_id,
            at,
            HourStats::given_up,
        );
    }

    fn add(
        &self,
        tenant: TenantId,
        subscription: SubscriptionId,
        at: Timestamp,
        count: impl FnOnce(&mut HourStats),
    ) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        pending.first.get_or_insert(now);
        pending.last = Some(now);
        count(
            pending
                .counts
                .entry((tenant, subscription, Hour::containing(at)))
                .or_default(),
        );
    }

    /// Whether a flush is due: counts are buffered and the oldest is `every` old, or none was
    /// added for `pause` (the flow stopped).
    pub fn flush_due(&self, every: Duration, pause: Duration) -> bool {
        let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        match (pending.first, pending.last) {
            (Some(first), Some(last)) => first.elapsed() >= every || last.elapsed() >= pause,
            _ => false,
        }
    }

    /// Empties the buffer: one delta per (tenant, subscription, hour) counted since last time.
    pub fn take(&self) -> Vec<StatsDelta> {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        pending
            .counts
            .into_iter()
            .map(|((tenant, subscription, hour), stats)| StatsDelta {
                tenant,
                subscription,
                hour,
                stats,
            })
            .collect()
    }

    /// Adds the buffer to the store; answers how many deltas it wrote. A failure is logged and
    /// the counts dropped (see the module docs).
    pub async fn flush(&self) -> usize {
        let deltas = self.take();
        if deltas.is_empty() {
            return 0;
        }
        match self.store.add_stats(&deltas).await {
            Ok(()) => deltas.len(),
            Err(e) => {
                tracing::warn!(error = %e, deltas = deltas.len(), "delivery statistics could not be written; these counts are dropped");
                0
            }
        }
    }

    /// The subscription's `window` at `now`, every hour of it, from the store (what is still in
    /// a buffer, here or in another process, shows after its flush).
    pub async fn read(
        &self,
        tenant: &TenantId,
        subscription: &SubscriptionId,
        window: Window,
        now: Timestamp,
    ) -> Result<WindowStats, StoreError> {
        let (from, to) = window.range(now);
        let stored = self
            .store
            .read_stats(tenant, subscription, from, to)
            .await?;
        Ok(WindowStats::assemble(window, now, stored))
    }
}

/// Flushes `stats` when due (oldest count `every` old, or no count for a [`TICK`]) until
/// `shutdown` turns true (the caller flushes once more when its workers have stopped).
pub async fn run_flusher(stats: Arc<Stats>, every: Duration, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(TICK.min(every)) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        if stats.flush_due(every, TICK) {
            stats.flush().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;
    use herald_core::stats::MemoryStats;
    use herald_core::{AttemptId, DeliveryId};

    use super::*;

    fn attempt(tenant: TenantId, sub: SubscriptionId, at: &str, latency_ms: u64) -> Attempt {
        Attempt {
            id: AttemptId::new(),
            delivery_id: DeliveryId::new(),
            tenant_id: tenant,
            subscription_id: sub,
            number: 1,
            started_at: at.parse().unwrap(),
            status_code: Some(200),
            latency_ms,
            response_excerpt: None,
            error: None,
            succeeded: true,
        }
    }

    #[tokio::test]
    async fn a_flush_is_due_when_the_counts_are_old_or_the_flow_pauses() {
        let stats = Stats::new(Arc::new(MemoryStats::default()));
        let hour = Duration::from_secs(3600);
        // Nothing buffered: never due.
        assert!(!stats.flush_due(Duration::ZERO, Duration::ZERO));
        let (tenant, sub) = (TenantId::new(), SubscriptionId::new());
        stats.record_attempt(
            &attempt(tenant, sub, "2026-12-06T09:10:00Z", 40),
            &Transition::Succeeded,
            Recorded::Applied,
        );
        // Fresh counts while deliveries keep coming: not yet.
        assert!(!stats.flush_due(hour, hour));
        // Old enough, or no count for the pause: due.
        assert!(stats.flush_due(Duration::ZERO, hour));
        assert!(stats.flush_due(hour, Duration::ZERO));
        assert_eq!(stats.flush().await, 1);
        assert!(!stats.flush_due(Duration::ZERO, Duration::ZERO));
    }

    #[tokio::test]
    async fn a_flush_writes_one_delta_per_subscription_and_hour() {
        // Given attempts of two subscriptions over two hours
        let store = Arc::new(MemoryStats::default());
        let stats = Stats::new(store.clone());
        let (tenant, a, b) = (
            TenantId::new(),
            SubscriptionId::new(),
            SubscriptionId::new(),
        );
        let ok = Transition::Succeeded;
        let gone = Transition::Gone;
        for _ in 0..5 {
            stats.record_attempt(
                &attempt(tenant, a, "2026-12-06T09:10:00Z", 40),
                &ok,
                Recorded::Applied,
            );
        }
        stats.record_attempt(
            &attempt(tenant, a, "2026-12-06T09:20:00Z", 40),
            &gone,
            Recorded::Superseded,
        );
        stats.record_attempt(
            &attempt(tenant, a, "2026-12-06T10:00:00Z", 900),
            &gone,
            Recorded::Applied,
        );
        stats.record_attempt(
            &attempt(tenant, b, "2026-12-06T09:59:59Z", 3),
            &ok,
            Recorded::Applied,
        );

        // When it is flushed
        assert_eq!(stats.flush().await, 3);
        assert_eq!(stats.flush().await, 0, "the buffer was emptied");

        // Then the window shows each hour's counts
        let now = "2026-12-06T10:30:00Z".parse().unwrap();
        let window = stats.read(&tenant, &a, Window::Day, now).await.unwrap();
        let nine = &window.buckets[22].1;
        assert_eq!((nine.succeeded, nine.failed, nine.attempts), (5, 0, 6));
        let ten = &window.buckets[23].1;
        assert_eq!((ten.succeeded, ten.failed, ten.attempts), (0, 1, 1));
        let other = stats.read(&tenant, &b, Window::Day, now).await.unwrap();
        assert_eq!(other.totals.succeeded, 1);
    }

    struct Broken;

    #[async_trait]
    impl StatsStore for Broken {
        async fn add_stats(&self, _: &[StatsDelta]) -> Result<(), StoreError> {
            Err(StoreError::backend("unavailable"))
        }

        async fn read_stats(
            &self,
            _: &TenantId,
            _: &SubscriptionId,
            _: Hour,
            _: Hour,
        ) -> Result<Vec<(Hour, HourStats)>, StoreError> {
            Ok(Vec::new())
        }
    }

    #[tokio::test]
    async fn a_failed_flush_drops_its_counts_and_keeps_counting() {
        let stats = Stats::new(Arc::new(Broken));
        let (tenant, sub) = (TenantId::new(), SubscriptionId::new());
        let a = attempt(tenant, sub, "2026-12-06T09:10:00Z", 40);
        stats.record_attempt(&a, &Transition::Succeeded, Recorded::Applied);
        assert_eq!(stats.flush().await, 0);
        assert!(stats.take().is_empty(), "dropped, not kept to grow");
        stats.record_attempt(&a, &Transition::Succeeded, Recorded::Applied);
        assert_eq!(stats.take().len(), 1);
    }
}
