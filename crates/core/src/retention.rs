//! Retention: when an event, its deliveries and their attempts may be removed, and when an
//! idempotency record has expired. A pure rule on a given "now"; stores carry it out (the embedded
//! store's sweeper; DynamoDB's TTL attributes on AWS).
//!
//! An event and everything derived from it (its deliveries, their attempts and index rows) go
//! together, so nothing dangles: they are removed once the event is older than the retention,
//! every delivery of it is settled (succeeded or failed) and was last changed longer ago than the
//! retention (so an attempt is kept at least the retention after it started, as AWS's attempt TTL
//! does), and no queued message still names the event. A delivery that is pending or retrying is
//! never removed, however long its schedule: where AWS's TTL counts from the delivery's creation
//! whatever its state, the default schedule (about 28 hours) is far inside AWS's 30-day attempt TTL
//! and its event and delivery TTLs are off by default, so on the defaults neither side removes a
//! delivery in flight.

use std::time::Duration;

use jiff::Timestamp;

use crate::model::DeliveryStatus;

/// The default retention: 30 days, as AWS's attempt TTL.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// How long delivered events and their records are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    keep: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            keep: DEFAULT_RETENTION,
        }
    }
}

/// What the rule says about one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Remove the event and everything derived from it.
    Remove,
    /// Keep it: it, or a change to one of its deliveries, is within the retention.
    Young,
    /// Keep it: a delivery of it is pending or retrying, or a queued message names it.
    InFlight,
}

/// One delivery of an event, as the rule needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryState {
    pub status: DeliveryStatus,
    pub updated_at: Timestamp,
}

impl Retention {
    /// A retention of `keep`; zero is refused (it would remove what was just delivered).
    pub fn new(keep: Duration) -> Option<Self> {
        (!keep.is_zero()).then_some(Self { keep })
    }

    /// Reads `30d`, `12h`, `1m`, `90s` (the units of the retry schedule).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        crate::retry::parse_duration(text)
            .and_then(Self::new)
            .ok_or_else(|| format!("`{text}` is not a duration above zero such as 30d, 12h or 90s"))
    }

    pub fn keep(&self) -> Duration {
        self.keep
    }

    /// Records from before this instant are past the retention at `now`.
    pub fn cutoff(&self, now: Timestamp) -> Timestamp {
        let keep = jiff::SignedDuration::try_from(self.keep).unwrap_or(jiff::SignedDuration::MAX);
        now.checked_sub(keep).unwrap_or(Timestamp::MIN)
    }

    /// Whether something that happened `at` is past the retention at `now`.
    pub fn is_past(&self, at: Timestamp, now: Timestamp) -> bool {
        at < self.cutoff(now)
    }

    /// The verdict on an event of `event_at` whose stored deliveries are `deliveries`, with
    /// `queued` telling whether a queued message (to fan out, or to attempt a delivery not yet
    /// stored) names it.
    pub fn judge(
        &self,
        event_at: Timestamp,
        deliveries: impl IntoIterator<Item = DeliveryState>,
        queued: bool,
        now: Timestamp,
    ) -> Verdict {
        if !self.is_past(event_at, now) {
            return Verdict::Young;
        }
        if queued {
            return Verdict::InFlight;
        }
        let mut verdict = Verdict::Remove;
        for d in deliveries {
            match d.status {
                DeliveryStatus::Pending | DeliveryStatus::Retrying => return Verdict::InFlight,
                DeliveryStatus::Succeeded | DeliveryStatus::Failed => {
                    if !self.is_past(d.updated_at, now) {
                        verdict = Verdict::Young;
                    }
                }
            }
        }
        verdict
    }
}

/// Whether an idempotency record whose window ends at `expires_at` has expired at `now` (intake
/// treats it as absent from then on).
pub fn idempotency_expired(expires_at: Timestamp, now: Timestamp) -> bool {
    expires_at <= now
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    fn settled(status: DeliveryStatus, s: i64) -> DeliveryState {
        DeliveryState {
            status,
            updated_at: at(s),
        }
    }

    const MINUTE: Retention = Retention {
        keep: Duration::from_secs(60),
    };

    #[test]
    fn parses_the_durations_of_the_configuration() {
        assert_eq!(Retention::parse("30d").unwrap().keep(), DEFAULT_RETENTION);
        assert_eq!(
            Retention::parse(" 1m ").unwrap().keep(),
            Duration::from_secs(60)
        );
        assert_eq!(
            Retention::parse("90s").unwrap().keep(),
            Duration::from_secs(90)
        );
        for bad in ["", "0s", "30", "d", "30 days", "-1d"] {
            assert!(Retention::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Retention::default().keep(), DEFAULT_RETENTION);
    }

    #[test]
    fn an_event_is_past_the_retention_strictly_after_it() {
        let now = at(1000);
        assert_eq!(MINUTE.cutoff(now), at(940));
        assert!(MINUTE.is_past(at(939), now));
        assert!(!MINUTE.is_past(at(940), now));
        assert_eq!(
            MINUTE.judge(at(940), [], false, now),
            Verdict::Young,
            "exactly the retention old"
        );
        assert_eq!(MINUTE.judge(at(939), [], false, now), Verdict::Remove);
    }

    #[test]
    fn an_old_event_goes_only_when_all_its_deliveries_settled_long_enough_ago() {
        let now = at(1000);
        let old = at(0);
        let done = [
            settled(DeliveryStatus::Succeeded, 1),
            settled(DeliveryStatus::Failed, 900),
        ];
        assert_eq!(MINUTE.judge(old, done, false, now), Verdict::Remove);
        // A delivery replayed and finished 30 s ago keeps its attempts (and so the event) longer.
        let recent = [
            settled(DeliveryStatus::Succeeded, 1),
            settled(DeliveryStatus::Succeeded, 970),
        ];
        assert_eq!(MINUTE.judge(old, recent, false, now), Verdict::Young);
        assert_eq!(MINUTE.judge(old, recent, false, at(1031)), Verdict::Remove);
    }

    #[test]
    fn nothing_in_flight_is_ever_removed() {
        let now = at(10_000_000);
        let old = at(0);
        for status in [DeliveryStatus::Pending, DeliveryStatus::Retrying] {
            let states = [settled(DeliveryStatus::Succeeded, 1), settled(status, 2)];
            assert_eq!(MINUTE.judge(old, states, false, now), Verdict::InFlight);
        }
        // Not fanned out yet, or a delivery waiting for its first attempt (not stored yet).
        assert_eq!(MINUTE.judge(old, [], true, now), Verdict::InFlight);
        // A young event is young whatever is queued.
        assert_eq!(MINUTE.judge(now, [], true, now), Verdict::Young);
    }

    #[test]
    fn an_idempotency_record_expires_at_the_end_of_its_window() {
        assert!(!idempotency_expired(at(10), at(9)));
        assert!(idempotency_expired(at(10), at(10)));
        assert!(idempotency_expired(at(10), at(11)));
    }

    #[test]
    fn a_huge_retention_keeps_everything() {
        let forever = Retention::new(Duration::MAX).unwrap();
        assert_eq!(forever.cutoff(at(0)), Timestamp::MIN);
        assert_eq!(
            forever.judge(Timestamp::MIN, [], false, at(0)),
            Verdict::Young
        );
        assert!(Retention::new(Duration::ZERO).is_none());
    }
}
