//! A fixed-bucket histogram of milliseconds for Prometheus (`_bucket`, `_sum`, `_count`), updated
//! with relaxed atomics.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds (ms) of the buckets; one more bucket holds the rest (`+Inf`). From a fast local
/// receiver (a few ms) to a delivery that waited out its retry schedule (hours).
pub const BOUNDS_MS: [u64; 16] = [
    5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000, 3_600_000,
    86_400_000,
];

#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BOUNDS_MS.len() + 1],
    sum: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, ms: u64) {
        let i = BOUNDS_MS
            .iter()
            .position(|bound| ms <= *bound)
            .unwrap_or(BOUNDS_MS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(ms, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Prometheus text: cumulative buckets, sum and count, `labels` (e.g. `platform="slack"`)
    /// on every line.
    pub fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (i, bucket) in self.buckets.iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            let le = BOUNDS_MS
                .get(i)
                .map_or_else(|| "+Inf".to_owned(), u64::to_string);
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}"
            );
        }
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(
            out,
            "{name}_sum{braces} {}\n{name}_count{braces} {}",
            self.sum.load(Ordering::Relaxed),
            self.count()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_end_in_inf() {
        let h = Histogram::default();
        for ms in [3, 7, 7, 400, 100_000_000] {
            h.observe(ms);
        }
        let mut out = String::new();
        h.render(&mut out, "x_ms", "");
        assert!(out.contains("x_ms_bucket{le=\"5\"} 1\n"), "{out}");
        assert!(out.contains("x_ms_bucket{le=\"10\"} 3\n"), "{out}");
        assert!(out.contains("x_ms_bucket{le=\"500\"} 4\n"), "{out}");
        assert!(out.contains("x_ms_bucket{le=\"86400000\"} 4\n"), "{out}");
        assert!(out.contains("x_ms_bucket{le=\"+Inf\"} 5\n"), "{out}");
        assert!(out.contains("x_ms_sum 100000417\nx_ms_count 5\n"), "{out}");
        let mut labelled = String::new();
        h.render(&mut labelled, "x_ms", "platform=\"slack\"");
        assert!(labelled.contains("x_ms_bucket{platform=\"slack\",le=\"5\"} 1\n"));
        assert!(labelled.contains("x_ms_count{platform=\"slack\"} 5\n"));
    }
}
