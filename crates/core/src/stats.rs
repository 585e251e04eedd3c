//! Delivery statistics per subscription and hour, for the console's delivery-health chart
//! (`GET /v1/subscriptions/{id}/stats`): what is counted, how hours are bucketed, how a window of
//! buckets is assembled, and the [`StatsStore`] port that keeps the buckets.
//!
//! What an hour's bucket ([`HourStats`]) counts, each in the hour it happened (UTC):
//!
//! - `succeeded`: deliveries that succeeded, in the hour of their successful attempt;
//! - `failed`: deliveries that ended failed: their schedule exhausted, the receiver answered
//!   410 Gone, Herald refused the request, or the delivery was given up without an attempt (its
//!   subscription deleted or disabled, its event gone);
//! - `retrying`: failed attempts after which the delivery was scheduled again;
//! - `attempts`: attempts recorded in the delivery log (requests made, and the rare one Herald
//!   refused to send), including an attempt whose outcome another worker had already recorded;
//! - a latency histogram of those attempts ([`LatencyHistogram`]).
//!
//! So `success_rate` = succeeded / (succeeded + failed) counts finished deliveries, and a delivery
//! that is still retrying counts in neither.
//!
//! Latency percentiles come from a fixed histogram, never from the attempts themselves: bins with
//! the upper bounds of [`LATENCY_BOUNDS_MS`] (1, 2, 3, 5, 7, 10, 15, 20, 30, 50, … ms up to 60 s,
//! and one open bin above). A percentile is answered as the upper bound of the bin that holds its
//! rank: never below the true value, and above 2 ms at most 1.67 × it (the widest ratio of two
//! neighbouring bounds). An attempt slower than 60 s (only with a longer attempt timeout than the
//! 15 s default) is answered as 60000, meaning "60 s or more".
//!
//! Buckets are added to, never rewritten ([`StatsStore::add_stats`]), so every process can add
//! its own counts to the same hour at once. They are meant to be kept [`RETENTION`] after their
//! hour ended (the 7-day window, and a day to spare) and then dropped.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::delivery::Transition;
use crate::ids::{SubscriptionId, TenantId};
use crate::ports::StoreError;

/// An hour, in seconds.
pub const HOUR_SECONDS: i64 = 3600;

/// How long a bucket is kept after its hour ended: the longest window and a day.
pub const RETENTION: Duration = Duration::from_secs(8 * 24 * 3600);

/// The latency bins' upper bounds, in milliseconds (inclusive); one more bin holds the rest.
/// Changing them changes what stored bins mean: only append, and only after [`RETENTION`].
pub const LATENCY_BOUNDS_MS: [u64; 29] = [
    1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500, 700, 1000, 1500, 2000, 3000,
    5000, 7000, 10_000, 15_000, 20_000, 30_000, 50_000, 60_000,
];

/// How many latency bins there are: one per bound and the open one above the last.
pub const LATENCY_BINS: usize = LATENCY_BOUNDS_MS.len() + 1;

/// One hour (UTC), as hours since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hour(i64);

impl Hour {
    /// The hour `t` falls in.
    pub fn containing(t: Timestamp) -> Self {
        Self(t.as_second().div_euclid(HOUR_SECONDS))
    }

    /// Hours since the Unix epoch.
    pub fn index(self) -> i64 {
        self.0
    }

    /// `n` hours later (earlier when negative).
    pub fn plus(self, n: i64) -> Self {
        Self(self.0.saturating_add(n))
    }

    /// When the hour starts (saturating at the ends of time).
    pub fn start(self) -> Timestamp {
        let second = self.0.saturating_mul(HOUR_SECONDS);
        Timestamp::from_second(second).unwrap_or(if second < 0 {
            Timestamp::MIN
        } else {
            Timestamp::MAX
        })
    }

    /// When the bucket of this hour may be dropped, in seconds since the epoch (a TTL).
    pub fn expires_at(self) -> i64 {
        let retention = i64::try_from(RETENTION.as_secs()).unwrap_or(i64::MAX);
        self.plus(1)
            .0
            .saturating_mul(HOUR_SECONDS)
            .saturating_add(retention)
    }

    /// The hour as sortable text, `2026-12-06T09` (UTC): stores key buckets by it, and text
    /// order is time order.
    pub fn key(self) -> String {
        self.start().strftime("%Y-%m-%dT%H").to_string()
    }

    /// The hour [`Hour::key`] wrote, or `None` when `key` is not one.
    pub fn parse_key(key: &str) -> Option<Self> {
        let t: Timestamp = format!("{key}:00:00Z").parse().ok()?;
        let hour = Self::containing(t);
        (hour.key() == key).then_some(hour)
    }
}

/// A latency histogram over [`LATENCY_BOUNDS_MS`]: bin `i` counts latencies in
/// (`bound[i-1]`, `bound[i]`] ms, the last bin those above the last bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencyHistogram([u64; LATENCY_BINS]);

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self([0; LATENCY_BINS])
    }
}

impl LatencyHistogram {
    /// A histogram of these bin counts.
    pub fn from_bins(bins: [u64; LATENCY_BINS]) -> Self {
        Self(bins)
    }

    /// The bin counts, lowest latencies first.
    pub fn bins(&self) -> &[u64; LATENCY_BINS] {
        &self.0
    }

    /// Which bin a latency of `ms` falls in.
    pub fn bin_of(ms: u64) -> usize {
        LATENCY_BOUNDS_MS.partition_point(|bound| *bound < ms)
    }

    pub fn add(&mut self, ms: u64) {
        let bin = &mut self.0[Self::bin_of(ms)];
        *bin = bin.saturating_add(1);
    }

    pub fn merge(&mut self, other: &Self) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            *mine = mine.saturating_add(theirs);
        }
    }

    /// How many latencies it holds.
    pub fn count(&self) -> u64 {
        self.0.iter().fold(0u64, |sum, n| sum.saturating_add(*n))
    }

    /// The `percent`th percentile (nearest rank), as the upper bound of the bin holding it (see
    /// the module docs for the precision); `None` when empty.
    pub fn percentile(&self, percent: u8) -> Option<u64> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        let percent = u128::from(percent.min(100));
        // The smallest rank r with r >= percent% of count, and at least the first.
        let rank = (percent * u128::from(count)).div_ceil(100).max(1);
        let mut seen = 0u128;
        for (bin, n) in self.0.iter().enumerate() {
            seen += u128::from(*n);
            if seen >= rank {
                return Some(
                    LATENCY_BOUNDS_MS
                        .get(bin)
                        .or(LATENCY_BOUNDS_MS.last())
                        .copied()
                        .unwrap_or(0),
                );
            }
        }
        LATENCY_BOUNDS_MS.last().copied()
    }
}

/// What one recorded attempt adds to its hour, besides the attempt and its latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tally {
    /// The delivery succeeded.
    Succeeded,
    /// The delivery was scheduled again.
    Retrying,
    /// The delivery ended failed.
    Failed,
    /// Another worker had recorded this attempt number first: only the request counts (its
    /// outcome is that worker's).
    Superseded,
}

impl Tally {
    /// What an applied attempt followed by `transition` counts as.
    pub fn of(transition: &Transition) -> Self {
        match transition {
            Transition::Succeeded => Self::Succeeded,
            Transition::Retry { .. } => Self::Retrying,
            Transition::Failed { .. } | Transition::Gone => Self::Failed,
        }
    }
}

/// One hour's counts of one subscription (see the module docs for their meaning).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HourStats {
    pub succeeded: u64,
    pub failed: u64,
    pub retrying: u64,
    pub attempts: u64,
    pub latency: LatencyHistogram,
}

impl HourStats {
    /// Counts one attempt of `latency_ms` and what followed it.
    pub fn attempt(&mut self, latency_ms: u64, tally: Tally) {
        self.attempts = self.attempts.saturating_add(1);
        self.latency.add(latency_ms);
        let outcome = match tally {
            Tally::Succeeded => &mut self.succeeded,
            Tally::Retrying => &mut self.retrying,
            Tally::Failed => &mut self.failed,
            Tally::Superseded => return,
        };
        *outcome = outcome.saturating_add(1);
    }

    /// Counts a delivery given up without an attempt.
    pub fn given_up(&mut self) {
        self.failed = self.failed.saturating_add(1);
    }

    pub fn merge(&mut self, other: &Self) {
        self.succeeded = self.succeeded.saturating_add(other.succeeded);
        self.failed = self.failed.saturating_add(other.failed);
        self.retrying = self.retrying.saturating_add(other.retrying);
        self.attempts = self.attempts.saturating_add(other.attempts);
        self.latency.merge(&other.latency);
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// succeeded / (succeeded + failed); `None` when neither happened.
    pub fn success_rate(&self) -> Option<f64> {
        let finished = self.succeeded.saturating_add(self.failed);
        // Counts stay far below 2^53: the conversion is exact.
        #[allow(clippy::cast_precision_loss)]
        (finished > 0).then(|| self.succeeded as f64 / finished as f64)
    }
}

/// Counts to add to one subscription's hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsDelta {
    pub tenant: TenantId,
    pub subscription: SubscriptionId,
    pub hour: Hour,
    pub stats: HourStats,
}

/// A span the endpoint answers: the last 24 hours or the last 7 days, in hourly buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Window {
    #[default]
    Day,
    Week,
}

/// A window that is not `24h` or `7d`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the window must be `24h` or `7d`")]
pub struct WindowError;

impl FromStr for Window {
    type Err = WindowError;

    fn from_str(s: &str) -> Result<Self, WindowError> {
        match s {
            "24h" => Ok(Self::Day),
            "7d" => Ok(Self::Week),
            _ => Err(WindowError),
        }
    }
}

impl Window {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Day => "24h",
            Self::Week => "7d",
        }
    }

    /// How many hourly buckets it has.
    pub fn hours(self) -> i64 {
        match self {
            Self::Day => 24,
            Self::Week => 7 * 24,
        }
    }

    /// Its hours at `now`, `[from, to)`: the last one is the current hour.
    pub fn range(self, now: Timestamp) -> (Hour, Hour) {
        let to = Hour::containing(now).plus(1);
        (to.plus(-self.hours()), to)
    }
}

/// A window's buckets, every hour of it (zeros included), oldest first, and their sum.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowStats {
    pub window: Window,
    /// The oldest bucket's hour.
    pub from: Hour,
    /// The hour after the newest bucket (the newest ends when it starts).
    pub to: Hour,
    pub buckets: Vec<(Hour, HourStats)>,
    pub totals: HourStats,
}

impl WindowStats {
    /// `window` at `now`, from the stored buckets (any order; those outside the window are left
    /// out, several of one hour are added up).
    pub fn assemble(
        window: Window,
        now: Timestamp,
        stored: impl IntoIterator<Item = (Hour, HourStats)>,
    ) -> Self {
        let (from, to) = window.range(now);
        let mut by_hour: BTreeMap<Hour, HourStats> = BTreeMap::new();
        for (hour, stats) in stored {
            if from <= hour && hour < to {
                by_hour.entry(hour).or_default().merge(&stats);
            }
        }
        let mut totals = HourStats::default();
        let buckets = (0..window.hours())
            .map(|i| {
                let hour = from.plus(i);
                let stats = by_hour.get(&hour).copied().unwrap_or_default();
                totals.merge(&stats);
                (hour, stats)
            })
            .collect();
        Self {
            window,
            from,
            to,
            buckets,
            totals,
        }
    }
}

/// Where the hourly buckets are kept. Adapters read a key range of (tenant, subscription, hour),
/// never scan.
#[async_trait]
pub trait StatsStore: Send + Sync + 'static {
    /// Adds each delta to its (tenant, subscription, hour) bucket, which starts at zero. Adding is
    /// not idempotent: a delta added twice counts twice. Each delta stands alone: on an error,
    /// some may have been added.
    async fn add_stats(&self, deltas: &[StatsDelta]) -> Result<(), StoreError>;

    /// The buckets of the subscription's hours `[from, to)` that hold anything, oldest first;
    /// never another tenant's.
    async fn read_stats(
        &self,
        tenant: &TenantId,
        subscription: &SubscriptionId,
        from: Hour,
        to: Hour,
    ) -> Result<Vec<(Hour, HourStats)>, StoreError>;
}

type StatsKey = (TenantId, SubscriptionId, Hour);

/// Buckets in this process's memory (tests, and a state without a durable store for them).
#[derive(Debug, Default)]
pub struct MemoryStats {
    buckets: Mutex<BTreeMap<StatsKey, HourStats>>,
}

#[async_trait]
impl StatsStore for MemoryStats {
    async fn add_stats(&self, deltas: &[StatsDelta]) -> Result<(), StoreError> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        for d in deltas {
            buckets
                .entry((d.tenant, d.subscription, d.hour))
                .or_default()
                .merge(&d.stats);
        }
        Ok(())
    }

    async fn read_stats(
        &self,
        tenant: &TenantId,
        subscription: &SubscriptionId,
        from: Hour,
        to: Hour,
    ) -> Result<Vec<(Hour, HourStats)>, StoreError> {
        if to <= from {
            return Ok(Vec::new());
        }
        let buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        Ok(buckets
            .range((*tenant, *subscription, from)..(*tenant, *subscription, to))
            .map(|((_, _, hour), stats)| (*hour, *stats))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-06T09:41:30Z.
    fn now() -> Timestamp {
        "2026-12-06T09:41:30Z".parse().unwrap()
    }

    fn hour(text: &str) -> Hour {
        Hour::parse_key(text).unwrap()
    }

    #[test]
    fn hours_are_utc_and_their_keys_sort_by_time() {
        let h = Hour::containing(now());
        assert_eq!(h.key(), "2026-12-06T09");
        assert_eq!(h.start(), "2026-12-06T09:00:00Z".parse().unwrap());
        assert_eq!(h.plus(15).key(), "2026-12-07T00");
        assert_eq!(Hour::parse_key("2026-12-06T09"), Some(h));
        for bad in ["2026-12-06", "2026-12-06T9", "2026-12-06T09:30", "x", ""] {
            assert_eq!(Hour::parse_key(bad), None, "{bad}");
        }
        assert!(h.plus(-1).key() < h.key() && h.key() < h.plus(100).key());
        // Kept 8 days after the hour's end.
        let end: Timestamp = "2026-12-06T10:00:00Z".parse().unwrap();
        assert_eq!(h.expires_at(), end.as_second() + 8 * 24 * 3600);
        // Before the epoch, still the hour that holds the time.
        let early: Timestamp = "1969-12-31T23:59:59Z".parse().unwrap();
        assert_eq!(Hour::containing(early).index(), -1);
    }

    #[test]
    fn latencies_fall_in_the_bin_whose_upper_bound_holds_them() {
        assert_eq!(LatencyHistogram::bin_of(0), 0);
        assert_eq!(LatencyHistogram::bin_of(1), 0);
        assert_eq!(LatencyHistogram::bin_of(2), 1);
        assert_eq!(LatencyHistogram::bin_of(101), 12);
        assert_eq!(LatencyHistogram::bin_of(150), 12);
        assert_eq!(LatencyHistogram::bin_of(60_000), 28);
        assert_eq!(LatencyHistogram::bin_of(60_001), 29);
        assert_eq!(LatencyHistogram::bin_of(u64::MAX), LATENCY_BINS - 1);
    }

    #[test]
    fn bounds_rise_and_neighbours_are_at_most_five_thirds_apart_above_two_ms() {
        for pair in LATENCY_BOUNDS_MS.windows(2) {
            assert!(pair[0] < pair[1]);
            if pair[0] >= 2 {
                assert!(pair[1] * 3 <= pair[0] * 5, "{pair:?}");
            }
        }
    }

    #[test]
    fn percentiles_are_the_upper_bound_of_the_bin_holding_the_rank() {
        let mut h = LatencyHistogram::default();
        assert_eq!(h.percentile(50), None);
        h.add(40);
        assert_eq!((h.percentile(50), h.percentile(95)), (Some(50), Some(50)));
        // 90 fast (≤ 100 ms), 10 slow (≤ 2 s): p50 fast, p95 slow.
        let mut h = LatencyHistogram::default();
        for _ in 0..90 {
            h.add(80);
        }
        for _ in 0..10 {
            h.add(1800);
        }
        assert_eq!(h.count(), 100);
        assert_eq!(h.percentile(50), Some(100));
        assert_eq!(h.percentile(90), Some(100));
        assert_eq!(h.percentile(91), Some(2000));
        assert_eq!(h.percentile(95), Some(2000));
        // The open bin answers the last bound.
        let mut h = LatencyHistogram::default();
        h.add(90_000);
        assert_eq!(h.percentile(95), Some(60_000));
    }

    #[test]
    fn attempts_count_by_what_followed_them() {
        let mut s = HourStats::default();
        s.attempt(120, Tally::Retrying);
        s.attempt(90, Tally::Retrying);
        s.attempt(30, Tally::Succeeded);
        s.attempt(15_000, Tally::Failed);
        s.attempt(10, Tally::Superseded);
        s.given_up();
        assert_eq!(
            (s.succeeded, s.failed, s.retrying, s.attempts),
            (1, 2, 2, 5)
        );
        assert_eq!(s.latency.count(), 5);
        assert_eq!(s.success_rate(), Some(1.0 / 3.0));
        assert_eq!(HourStats::default().success_rate(), None);
        assert_eq!(
            Tally::of(&Transition::Failed { exhausted: true }),
            Tally::Failed
        );
        assert_eq!(Tally::of(&Transition::Gone), Tally::Failed);
        assert_eq!(Tally::of(&Transition::Succeeded), Tally::Succeeded);
    }

    #[test]
    fn merging_adds_every_count_and_bin() {
        let mut a = HourStats::default();
        a.attempt(5, Tally::Succeeded);
        let mut b = HourStats::default();
        b.attempt(5, Tally::Retrying);
        b.attempt(700, Tally::Failed);
        a.merge(&b);
        assert_eq!(
            (a.succeeded, a.failed, a.retrying, a.attempts),
            (1, 1, 1, 3)
        );
        assert_eq!(a.latency.bins()[3], 2);
        assert_eq!(a.latency.bins()[16], 1);
        assert!(!a.is_empty() && HourStats::default().is_empty());
    }

    #[test]
    fn windows_parse_and_end_with_the_current_hour() {
        assert_eq!("24h".parse(), Ok(Window::Day));
        assert_eq!("7d".parse(), Ok(Window::Week));
        for bad in ["", "1h", "24H", "7 d", "30d"] {
            assert_eq!(bad.parse::<Window>(), Err(WindowError), "{bad}");
        }
        let (from, to) = Window::Day.range(now());
        assert_eq!(from.key(), "2026-12-05T10");
        assert_eq!(to.key(), "2026-12-06T10");
        let (from, to) = Window::Week.range(now());
        assert_eq!(to.index() - from.index(), 168);
    }

    #[test]
    fn a_window_has_every_hour_oldest_first_and_sums_them() {
        let mut ok = HourStats::default();
        ok.attempt(20, Tally::Succeeded);
        let mut bad = HourStats::default();
        bad.attempt(3000, Tally::Failed);
        let stored = vec![
            (hour("2026-12-06T09"), ok),
            (hour("2026-12-05T10"), bad),
            (hour("2026-12-06T09"), ok),
            // Outside the window: left out.
            (hour("2026-12-05T09"), bad),
            (hour("2026-12-06T10"), bad),
        ];
        let w = WindowStats::assemble(Window::Day, now(), stored);
        assert_eq!(w.buckets.len(), 24);
        assert_eq!(w.buckets[0].0.key(), "2026-12-05T10");
        assert_eq!(w.buckets[23].0.key(), "2026-12-06T09");
        assert_eq!(w.buckets[0].1, bad);
        assert_eq!(w.buckets[23].1.succeeded, 2);
        assert!(w.buckets[1..23].iter().all(|(_, s)| s.is_empty()));
        assert_eq!(
            (w.totals.succeeded, w.totals.failed, w.totals.attempts),
            (2, 1, 3)
        );
        assert_eq!(w.totals.latency.percentile(50), Some(20));
        assert_eq!(w.totals.latency.percentile(95), Some(3000));
        assert_eq!(
            WindowStats::assemble(Window::Week, now(), []).buckets.len(),
            168
        );
    }
}
