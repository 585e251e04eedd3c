//! Per-subscription rate limits (`rate_limit_per_sec`): a token bucket per subscription, in process.
//!
//! The buckets live in the process: in `herald dev` the limit is exact, but on Lambda each container
//! keeps its own buckets, so N concurrent deliver containers may together send up to N times the
//! rate. A limit shared across containers is future work (flow control).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use herald_core::SubscriptionId;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Token buckets keyed by subscription.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<SubscriptionId, Bucket>>,
}

impl RateLimiter {
    /// Takes a token for `sub` at `rate` per second (burst = rate). `Ok` to go now, or how long to
    /// wait for the next token.
    pub fn try_acquire(&self, sub: SubscriptionId, rate: u32) -> Result<(), Duration> {
        let rate = f64::from(rate.max(1));
        let now = Instant::now();
        let mut buckets = match self.buckets.lock() {
            Ok(b) => b,
            Err(poisoned) => poisoned.into_inner(),
        };
        let bucket = buckets.entry(sub).or_insert(Bucket {
            tokens: rate,
            last: now,
        });
        let elapsed = now.duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(rate);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_a_burst_then_asks_to_wait() {
        let limiter = RateLimiter::default();
        let sub = SubscriptionId::new();
        for _ in 0..5 {
            assert!(limiter.try_acquire(sub, 5).is_ok());
        }
        let wait = limiter.try_acquire(sub, 5).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(200));
        // other subscriptions are unaffected
        assert!(limiter.try_acquire(SubscriptionId::new(), 5).is_ok());
    }
}
