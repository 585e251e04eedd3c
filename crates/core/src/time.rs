//! Time arithmetic that saturates instead of failing: a delay too long to add (a `Retry-After` of
//! centuries, a configured span of `u64::MAX` seconds) means "never", not an error.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

/// `t` plus `d`, or the latest time there is.
pub fn after(t: Timestamp, d: Duration) -> Timestamp {
    SignedDuration::try_from(d)
        .ok()
        .and_then(|d| t.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

/// `t` less `d`, or the earliest time there is.
pub fn before(t: Timestamp, d: Duration) -> Timestamp {
    SignedDuration::try_from(d)
        .ok()
        .and_then(|d| t.checked_sub(d).ok())
        .unwrap_or(Timestamp::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Timestamp::from_second(1_800_000_000).unwrap();
        assert_eq!(
            after(t, Duration::from_secs(5)),
            Timestamp::from_second(1_800_000_005).unwrap()
        );
        assert_eq!(
            before(t, Duration::from_secs(5)),
            Timestamp::from_second(1_799_999_995).unwrap()
        );
        assert_eq!(after(t, Duration::MAX), Timestamp::MAX);
        assert_eq!(before(t, Duration::MAX), Timestamp::MIN);
    }
}
