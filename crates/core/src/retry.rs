//! When to try a failed delivery again.
//!
//! The schedule is DESIGN.md's (after the first try: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h), each
//! delay spread by ±20 % so that a recovering receiver is not hit by every retry at once. A receiver's
//! `Retry-After` replaces the scheduled delay, clamped to `[min_retry_after, max_retry_after]`.

use std::time::Duration;

use rand::Rng;

/// Why a schedule did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("retry schedule `{0}` is not valid: use comma-separated durations such as `5s,5m,30m,2h`")]
pub struct ScheduleParseError(String);

/// The retry schedule and its bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Delay before retry n (index 0 is the delay after the first try).
    pub schedule: Vec<Duration>,
    /// Relative spread: 0.2 means each delay is drawn from [0.8 d, 1.2 d].
    pub jitter: f64,
    pub min_retry_after: Duration,
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        const M: u64 = 60;
        const H: u64 = 3600;
        Self {
            schedule: [5, 5 * M, 30 * M, 2 * H, 5 * H, 10 * H, 10 * H]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            jitter: 0.2,
            min_retry_after: Duration::from_secs(1),
            max_retry_after: Duration::from_secs(10 * H),
        }
    }
}

impl RetryPolicy {
    /// A schedule from text like `5s,5m,30m,2h` (also `250ms`). Jitter and bounds keep their defaults.
    pub fn parse_schedule(text: &str) -> Result<Self, ScheduleParseError> {
        let err = || ScheduleParseError(text.chars().take(80).collect());
        let schedule = text
            .split(',')
            .map(|part| parse_duration(part.trim()).ok_or_else(err))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            schedule,
            ..Self::default()
        })
    }

    /// One try and no retry ("save and test").
    pub fn no_retries() -> Self {
        Self {
            schedule: Vec::new(),
            ..Self::default()
        }
    }

    /// Total tries including the first.
    pub fn max_attempts(&self) -> u32 {
        self.schedule.len() as u32 + 1
    }

    /// The delay before the next try after try number `tries_so_far` (1-based) failed, or `None`
    /// when the schedule is exhausted.
    pub fn next_delay(
        &self,
        tries_so_far: u32,
        retry_after: Option<Duration>,
        rng: &mut impl Rng,
    ) -> Option<Duration> {
        let index = usize::try_from(tries_so_far.checked_sub(1)?).ok()?;
        let base = *self.schedule.get(index)?;
        if let Some(requested) = retry_after {
            return Some(requested.clamp(self.min_retry_after, self.max_retry_after));
        }
        if self.jitter <= 0.0 {
            return Some(base);
        }
        let factor = rng.gen_range((1.0 - self.jitter)..=(1.0 + self.jitter));
        Some(base.mul_f64(factor))
    }
}

/// A duration like `250ms`, `5s`, `30m`, `2h` or `5d`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let unit_ms = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    Some(Duration::from_millis(n.checked_mul(unit_ms)?))
}

/// A receiver's `Retry-After`, parsed: a delay in seconds or an HTTP date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    Delay(Duration),
    At(jiff::Timestamp),
}

impl RetryAfter {
    /// Reads the header value (`120`, or `Tue, 14 Nov 2023 22:14:20 GMT`); `None` if it is neither.
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        if let Ok(secs) = value.parse::<u64>() {
            return Some(Self::Delay(Duration::from_secs(secs)));
        }
        let when = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
        Some(Self::At(when))
    }

    /// How long to wait from `now` (a date in the past means no wait).
    pub fn delay_from(self, now: jiff::Timestamp) -> Duration {
        match self {
            Self::Delay(d) => d,
            Self::At(when) => {
                let secs = when.as_second().saturating_sub(now.as_second());
                Duration::from_secs(u64::try_from(secs).unwrap_or(0))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn default_schedule_is_the_designed_one_within_jitter() {
        let p = RetryPolicy::default();
        let mut rng = StdRng::seed_from_u64(7);
        let expected = [5, 300, 1800, 7200, 18000, 36000, 36000];
        assert_eq!(p.max_attempts(), 8);
        for (i, secs) in expected.iter().enumerate() {
            for _ in 0..200 {
                let d = p
                    .next_delay(i as u32 + 1, None, &mut rng)
                    .unwrap()
                    .as_secs_f64();
                let base = *secs as f64;
                assert!(
                    d >= base * 0.8 - 1e-9 && d <= base * 1.2 + 1e-9,
                    "try {i}: {d}"
                );
            }
        }
        assert_eq!(p.next_delay(8, None, &mut rng), None);
        assert_eq!(p.next_delay(0, None, &mut rng), None);
    }

    #[test]
    fn jitter_actually_spreads() {
        let p = RetryPolicy::default();
        let mut rng = StdRng::seed_from_u64(1);
        let draws: Vec<_> = (0..50)
            .map(|_| p.next_delay(2, None, &mut rng).unwrap())
            .collect();
        assert!(draws.iter().any(|d| *d < Duration::from_secs(290)));
        assert!(draws.iter().any(|d| *d > Duration::from_secs(310)));
    }

    #[test]
    fn retry_after_is_honoured_within_bounds() {
        let p = RetryPolicy::default();
        let mut rng = StdRng::seed_from_u64(1);
        let d = |ra| p.next_delay(1, Some(ra), &mut StdRng::seed_from_u64(1));
        assert_eq!(d(Duration::from_secs(120)), Some(Duration::from_secs(120)));
        assert_eq!(d(Duration::from_secs(0)), Some(Duration::from_secs(1)));
        assert_eq!(
            d(Duration::from_secs(999_999)),
            Some(Duration::from_secs(36_000))
        );
        // not past the end of the schedule, whatever the receiver asks
        assert_eq!(
            p.next_delay(8, Some(Duration::from_secs(5)), &mut rng),
            None
        );
    }

    #[test]
    fn retry_after_header_forms() {
        let now = jiff::Timestamp::from_second(1_700_000_000).unwrap();
        let delay = RetryAfter::parse(" 30 ").unwrap();
        assert_eq!(delay, RetryAfter::Delay(Duration::from_secs(30)));
        assert_eq!(delay.delay_from(now), Duration::from_secs(30));
        let date = RetryAfter::parse("Tue, 14 Nov 2023 22:14:20 GMT").unwrap();
        assert_eq!(
            date,
            RetryAfter::At(jiff::Timestamp::from_second(1_700_000_060).unwrap())
        );
        assert_eq!(date.delay_from(now), Duration::from_secs(60));
        let past = jiff::Timestamp::from_second(1_700_000_100).unwrap();
        assert_eq!(date.delay_from(past), Duration::ZERO);
        assert_eq!(RetryAfter::parse("soon"), None);
    }

    #[test]
    fn schedules_parse_from_text() {
        let p = RetryPolicy::parse_schedule("250ms, 1s,2m,1h").unwrap();
        assert_eq!(
            p.schedule,
            vec![
                Duration::from_millis(250),
                Duration::from_secs(1),
                Duration::from_secs(120),
                Duration::from_secs(3600)
            ]
        );
        assert!(RetryPolicy::parse_schedule("5x").is_err());
        assert!(RetryPolicy::parse_schedule("").is_err());
    }
}
