//! A subscription's health and the rules that act on it: the circuit breaker, the warnings, and
//! auto-disable by a stated policy.
//!
//! [`Health`] is kept beside the subscription, apart from what its owner sets: workers change it
//! only through a [`HealthChange`], which a store applies atomically when its condition holds
//! ([`HealthChange::applies_to`], [`Health::apply`]), so concurrent workers agree on who gave a
//! warning or claimed a probe. Every failed request counts (transport errors, timeouts, 5xx, 429
//! and the other 4xx, which Herald retries); a request Herald refused to make does not. One success
//! resets the streak.
//!
//! The rules ([`LifecyclePolicy`]):
//!
//! - **Breaker.** After `breaker_threshold` consecutive failures (0: never) nothing is sent for a
//!   cool-down, then one worker claims a probe and sends one request. The cool-down grows while
//!   the endpoint stays down: half of how long it has been failing, at least `breaker_cooldown`
//!   and at most `breaker_max_cooldown` (30 s, 30 s, 45 s, 67 s, … to 10 min as probes fail). It
//!   grows with time rather than per failure, so the many requests in flight when an endpoint goes
//!   down do not push it to the maximum at once. Deliveries that meet an open breaker wait; they
//!   are not attempts.
//! - **Warnings**, once each per streak: the breaker opened, half of `disable_after` passed without
//!   a success, nine tenths passed.
//! - **Disable** after failures without a single success for `disable_after` (default five days,
//!   as Svix), or at once on 410 Gone. A delivery that exhausts its schedule fails alone.

use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::time::after;

/// How long a claimed probe holds the breaker before another worker may probe (an attempt times
/// out after 15 s; a worker that died while probing must not hold it for good).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// A success is written when the subscription was failing, and otherwise at most this often, so a
/// healthy subscription costs no write per delivery: `last_success_at` is exact to this.
pub const SUCCESS_RESOLUTION: Duration = Duration::from_secs(3600);

/// A subscription's recent delivery outcomes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Failed requests since the last success.
    pub consecutive_failures: u32,
    /// The first failure since the last success.
    pub failing_since: Option<Timestamp>,
    pub last_failure_at: Option<Timestamp>,
    /// The last success (to [`SUCCESS_RESOLUTION`]).
    pub last_success_at: Option<Timestamp>,
    /// The highest [`Warning`] given in this streak (0: none).
    pub warned: u8,
    /// When a worker claimed the breaker's probe, until its outcome is in.
    pub probe_at: Option<Timestamp>,
}

/// A change to [`Health`], applied by a store atomically and only when
/// [`applies_to`](Self::applies_to) the stored health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthChange {
    /// A request failed at `at`. Always applies.
    Failed { at: Timestamp },
    /// A request succeeded at `at`. Always applies.
    Succeeded { at: Timestamp },
    /// `warning` was given; applies when no warning as high was.
    Warned { warning: Warning },
    /// A worker takes the probe at `at`; applies while the streak still has `failures` failures
    /// and no other probe is in flight.
    ClaimProbe { at: Timestamp, failures: u32 },
    /// The subscription was enabled again: a new start (the last success is kept).
    Reset,
}

/// The warnings of a failing streak, in order (`herald.subscription.failing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Warning {
    /// The breaker opened: `breaker_threshold` failures in a row.
    BreakerOpened = 1,
    /// Half of the span after which it is disabled has passed without a success.
    HalfSpan = 2,
    /// Nine tenths of it have.
    NearlyDisabled = 3,
}

impl Warning {
    pub fn level(self) -> u8 {
        self as u8
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::BreakerOpened => "breaker_opened",
            Self::HalfSpan => "half_span",
            Self::NearlyDisabled => "nearly_disabled",
        }
    }
}

impl HealthChange {
    /// Whether a store applies this change to `stored`, at `now` for the probe's timeout.
    pub fn applies_to(&self, stored: &Health) -> bool {
        match *self {
            Self::Failed { .. } | Self::Succeeded { .. } | Self::Reset => true,
            Self::Warned { warning } => stored.warned < warning.level(),
            Self::ClaimProbe { at, failures } => {
                stored.consecutive_failures == failures
                    && stored
                        .probe_at
                        .is_none_or(|p| after(p, PROBE_TIMEOUT) <= at)
            }
        }
    }
}

impl Health {
    /// Applies `change` (whose condition the caller checked).
    pub fn apply(&mut self, change: HealthChange) {
        match change {
            HealthChange::Failed { at } => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                self.failing_since.get_or_insert(at);
                self.last_failure_at = Some(at);
                self.probe_at = None;
            }
            HealthChange::Succeeded { at } => {
                *self = Self {
                    last_success_at: Some(at),
                    ..Self::default()
                };
            }
            HealthChange::Warned { warning } => self.warned = warning.level(),
            HealthChange::ClaimProbe { at, .. } => self.probe_at = Some(at),
            HealthChange::Reset => {
                *self = Self {
                    last_success_at: self.last_success_at,
                    ..Self::default()
                };
            }
        }
    }

    /// Whether a success at `now` must be written: the subscription was failing (or probing), or
    /// its last success is older than [`SUCCESS_RESOLUTION`].
    pub fn success_needs_write(&self, now: Timestamp) -> bool {
        self.consecutive_failures > 0
            || self.failing_since.is_some()
            || self.probe_at.is_some()
            || self
                .last_success_at
                .is_none_or(|t| after(t, SUCCESS_RESOLUTION) <= now)
    }

    /// Whether its owner was told it is failing (so its recovery is news).
    pub fn was_reported_failing(&self) -> bool {
        self.warned > 0
    }
}

/// Whether a delivery may be sent now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// The breaker is closed: send.
    Closed,
    /// Open: wait until `until` (the cool-down's end, or a probe in flight timing out).
    Open { until: Timestamp },
    /// The cool-down is over: whoever claims the probe sends one request.
    ProbeDue,
}

/// What a failure leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Nothing,
    /// Tell the owner (unless this warning was given already).
    Warn(Warning),
    /// No success for the whole span: disable it.
    Disable,
}

/// The lifecycle's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LifecyclePolicy {
    /// Failures without a single success for this long disable a subscription.
    pub disable_after: Duration,
    /// Consecutive failures that open the breaker.
    pub breaker_threshold: u32,
    /// The first cool-down; each further failure doubles it.
    pub breaker_cooldown: Duration,
    pub breaker_max_cooldown: Duration,
}

impl Default for LifecyclePolicy {
    fn default() -> Self {
        Self {
            disable_after: Duration::from_secs(5 * 24 * 3600),
            breaker_threshold: 10,
            breaker_cooldown: Duration::from_secs(30),
            breaker_max_cooldown: Duration::from_secs(600),
        }
    }
}

impl LifecyclePolicy {
    /// The policy with its configurable parts given as text: `disable_after` a duration such as
    /// `5d` or `36h`, `breaker_threshold` a whole number (0 turns the breaker off). `None` keeps
    /// the default. The error names what is wrong.
    pub fn configure(
        disable_after: Option<&str>,
        breaker_threshold: Option<&str>,
    ) -> Result<Self, String> {
        let mut policy = Self::default();
        if let Some(text) = disable_after.map(str::trim).filter(|t| !t.is_empty()) {
            policy.disable_after = crate::retry::parse_duration(text)
                .filter(|d| !d.is_zero())
                .ok_or_else(|| format!("`{text}` is not a duration such as 5d, 36h or 90m"))?;
        }
        if let Some(text) = breaker_threshold.map(str::trim).filter(|t| !t.is_empty()) {
            policy.breaker_threshold = text
                .parse()
                .map_err(|_| format!("`{text}` is not a whole number"))?;
        }
        Ok(policy)
    }

    /// Whether the breaker is open (or probing) for `health`.
    fn tripped(&self, health: &Health) -> bool {
        self.breaker_threshold > 0 && health.consecutive_failures >= self.breaker_threshold
    }

    /// The cool-down after the last failure of `health` (see the module docs).
    pub fn cooldown(&self, health: &Health) -> Duration {
        let down_for = match (health.failing_since, health.last_failure_at) {
            (Some(since), Some(last)) => last.duration_since(since).unsigned_abs(),
            _ => Duration::ZERO,
        };
        (down_for / 2).clamp(
            self.breaker_cooldown,
            self.breaker_max_cooldown.max(self.breaker_cooldown),
        )
    }

    /// Whether a delivery to a subscription with `health` may go out at `now`.
    pub fn gate(&self, health: &Health, now: Timestamp) -> Gate {
        if !self.tripped(health) {
            return Gate::Closed;
        }
        let Some(last) = health.last_failure_at else {
            return Gate::Closed;
        };
        let cooled = after(last, self.cooldown(health));
        if now < cooled {
            return Gate::Open { until: cooled };
        }
        // A probe in flight: look again after a cool-down (its outcome is usually in by then),
        // or when it times out if that is sooner.
        match health.probe_at.map(|p| after(p, PROBE_TIMEOUT)) {
            Some(timeout) if now < timeout => Gate::Open {
                until: timeout.min(after(now, self.breaker_cooldown)),
            },
            _ => Gate::ProbeDue,
        }
    }

    /// What follows a failure, given the health after it (at `now`).
    pub fn after_failure(&self, health: &Health, now: Timestamp) -> Verdict {
        let Some(since) = health.failing_since else {
            return Verdict::Nothing;
        };
        let failing_for = now.duration_since(since).unsigned_abs();
        if failing_for >= self.disable_after {
            return Verdict::Disable;
        }
        let due = if failing_for >= self.disable_after.mul_f64(0.9) {
            Some(Warning::NearlyDisabled)
        } else if failing_for >= self.disable_after / 2 {
            Some(Warning::HalfSpan)
        } else if self.tripped(health) {
            Some(Warning::BreakerOpened)
        } else {
            None
        };
        match due {
            Some(w) if w.level() > health.warned => Verdict::Warn(w),
            _ => Verdict::Nothing,
        }
    }

    /// When a subscription failing since `since` is disabled, if no success comes first.
    pub fn disables_at(&self, since: Timestamp) -> Timestamp {
        after(since, self.disable_after)
    }
}

/// A subscription's health as its owner reads it (the API's `health`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthView {
    /// `healthy`, `failing` (failures since the last success) or `paused` (the breaker is open).
    pub state: &'static str,
    pub consecutive_failures: u32,
    pub failing_since: Option<Timestamp>,
    pub last_failure_at: Option<Timestamp>,
    pub last_success_at: Option<Timestamp>,
    /// `closed`, `open` (waiting for `next_probe_at`) or `probing` (one request is out or due).
    pub breaker: &'static str,
    pub next_probe_at: Option<Timestamp>,
    /// When it is disabled if no delivery succeeds first.
    pub disables_at: Option<Timestamp>,
}

impl LifecyclePolicy {
    /// What [`HealthView`] says of `health` at `now`.
    pub fn view(&self, health: &Health, now: Timestamp) -> HealthView {
        let (breaker, next_probe_at) = match self.gate(health, now) {
            Gate::Closed => ("closed", None),
            Gate::Open { until } if health.probe_at.is_none() => ("open", Some(until)),
            Gate::Open { .. } | Gate::ProbeDue => ("probing", None),
        };
        let state = match (breaker, health.consecutive_failures) {
            ("closed", 0) => "healthy",
            ("closed", _) => "failing",
            _ => "paused",
        };
        HealthView {
            state,
            consecutive_failures: health.consecutive_failures,
            failing_since: health.failing_since,
            last_failure_at: health.last_failure_at,
            last_success_at: health.last_success_at,
            breaker,
            next_probe_at,
            disables_at: health.failing_since.map(|s| self.disables_at(s)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    fn failed(times: &[i64]) -> Health {
        let mut h = Health::default();
        for &s in times {
            h.apply(HealthChange::Failed { at: t(s) });
        }
        h
    }

    #[test]
    fn failures_count_from_the_first_and_one_success_resets_all_but_the_success() {
        let mut h = failed(&[0, 10, 20]);
        assert_eq!(h.consecutive_failures, 3);
        assert_eq!(h.failing_since, Some(t(0)));
        assert_eq!(h.last_failure_at, Some(t(20)));
        h.apply(HealthChange::Warned {
            warning: Warning::BreakerOpened,
        });
        assert!(h.was_reported_failing());
        h.apply(HealthChange::Succeeded { at: t(30) });
        assert_eq!(
            h,
            Health {
                last_success_at: Some(t(30)),
                ..Health::default()
            }
        );
    }

    #[test]
    fn a_success_is_written_when_failing_and_otherwise_once_an_hour() {
        let healthy = Health {
            last_success_at: Some(t(0)),
            ..Health::default()
        };
        assert!(!healthy.success_needs_write(t(3599)));
        assert!(healthy.success_needs_write(t(3600)));
        assert!(Health::default().success_needs_write(t(0)));
        assert!(failed(&[0]).success_needs_write(t(1)));
    }

    #[test]
    fn the_cool_down_grows_with_the_time_down_not_with_requests_in_flight() {
        let p = LifecyclePolicy::default();
        // Fifty requests failing within a second: the first cool-down.
        let burst = failed(&(0..50).map(|i| i / 50).collect::<Vec<_>>());
        assert_eq!(p.cooldown(&burst), Duration::from_secs(30));
        assert_eq!(p.cooldown(&failed(&[0, 90])), Duration::from_secs(45));
        assert_eq!(p.cooldown(&failed(&[0, 600])), Duration::from_secs(300));
        assert_eq!(p.cooldown(&failed(&[0, 86_400])), Duration::from_secs(600));
        // Probes failing at each cool-down's end: it grows by half each time, up to the cap.
        let mut h = failed(&[0; 10]);
        let mut probes = Vec::new();
        for _ in 0..12 {
            let Gate::Open { until } = p.gate(&h, h.last_failure_at.unwrap()) else {
                panic!("open after a failure");
            };
            probes.push(until.duration_since(t(0)).as_secs());
            h.apply(HealthChange::Failed { at: until });
        }
        assert_eq!(&probes[..5], &[30, 60, 90, 135, 202]);
        assert_eq!(p.cooldown(&h), Duration::from_secs(600));
        // Zero turns the breaker off.
        let off = LifecyclePolicy {
            breaker_threshold: 0,
            ..p
        };
        assert_eq!(off.gate(&h, h.last_failure_at.unwrap()), Gate::Closed);
    }

    #[test]
    fn the_breaker_opens_at_the_threshold() {
        let p = LifecyclePolicy::default();
        let nine = failed(&[0, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(p.gate(&nine, t(9)), Gate::Closed);
        let ten = failed(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(p.gate(&ten, t(10)), Gate::Open { until: t(39) });
        assert_eq!(p.gate(&ten, t(39)), Gate::ProbeDue);
    }

    #[test]
    fn one_worker_claims_the_probe_and_holds_it_until_its_outcome_or_the_timeout() {
        let p = LifecyclePolicy::default();
        let mut h = failed(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        let claim = HealthChange::ClaimProbe {
            at: t(40),
            failures: 10,
        };
        assert!(claim.applies_to(&h));
        h.apply(claim);
        // A second claim of the same streak finds the probe taken; the gate waits for it.
        assert!(!claim.applies_to(&h));
        assert_eq!(p.gate(&h, t(41)), Gate::Open { until: t(71) });
        assert_eq!(p.gate(&h, t(80)), Gate::Open { until: t(100) });
        // A worker that died while probing does not hold the breaker for good.
        assert!(HealthChange::ClaimProbe {
            at: t(100),
            failures: 10
        }
        .applies_to(&h));
        // The probe fails: a new cool-down from then, and the next probe is free to claim.
        h.apply(HealthChange::Failed { at: t(45) });
        assert_eq!(p.gate(&h, t(46)), Gate::Open { until: t(75) });
        assert_eq!(p.gate(&h, t(105)), Gate::ProbeDue);
        assert!(
            !claim.applies_to(&h),
            "a claim for an older streak count fails"
        );
        // A success closes it.
        h.apply(HealthChange::Succeeded { at: t(106) });
        assert_eq!(p.gate(&h, t(106)), Gate::Closed);
    }

    #[test]
    fn the_policy_is_configured_from_text() {
        let p = LifecyclePolicy::configure(Some("36h"), Some("0")).unwrap();
        assert_eq!(p.disable_after, Duration::from_secs(36 * 3600));
        assert_eq!(p.breaker_threshold, 0);
        assert_eq!(
            LifecyclePolicy::configure(None, Some(" ")).unwrap(),
            LifecyclePolicy::default()
        );
        assert!(LifecyclePolicy::configure(Some("5 days"), None).is_err());
        assert!(LifecyclePolicy::configure(Some("0s"), None).is_err());
        assert!(LifecyclePolicy::configure(None, Some("-1")).is_err());
    }

    #[test]
    fn the_view_names_the_state_and_the_next_probe() {
        let p = LifecyclePolicy::default();
        let healthy = p.view(&Health::default(), t(0));
        assert_eq!((healthy.state, healthy.breaker), ("healthy", "closed"));
        let one = p.view(&failed(&[0]), t(1));
        assert_eq!((one.state, one.breaker), ("failing", "closed"));
        assert_eq!(one.disables_at, Some(t(5 * 86_400)));
        let mut h = failed(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        let open = p.view(&h, t(10));
        assert_eq!((open.state, open.breaker), ("paused", "open"));
        assert_eq!(open.next_probe_at, Some(t(39)));
        h.apply(HealthChange::ClaimProbe {
            at: t(40),
            failures: 10,
        });
        assert_eq!(p.view(&h, t(41)).breaker, "probing");
    }

    #[test]
    fn warnings_come_once_each_in_order_and_the_span_disables() {
        let p = LifecyclePolicy {
            disable_after: Duration::from_secs(1000),
            breaker_threshold: 3,
            ..LifecyclePolicy::default()
        };
        let mut h = failed(&[0, 1]);
        assert_eq!(p.after_failure(&h, t(1)), Verdict::Nothing);
        h.apply(HealthChange::Failed { at: t(2) });
        assert_eq!(
            p.after_failure(&h, t(2)),
            Verdict::Warn(Warning::BreakerOpened)
        );
        let given = HealthChange::Warned {
            warning: Warning::BreakerOpened,
        };
        assert!(given.applies_to(&h));
        h.apply(given);
        assert!(!given.applies_to(&h), "given once per streak");
        assert_eq!(p.after_failure(&h, t(3)), Verdict::Nothing);
        assert_eq!(
            p.after_failure(&h, t(500)),
            Verdict::Warn(Warning::HalfSpan)
        );
        assert_eq!(
            p.after_failure(&h, t(900)),
            Verdict::Warn(Warning::NearlyDisabled)
        );
        h.apply(HealthChange::Warned {
            warning: Warning::NearlyDisabled,
        });
        assert!(!HealthChange::Warned {
            warning: Warning::HalfSpan
        }
        .applies_to(&h));
        assert_eq!(p.after_failure(&h, t(999)), Verdict::Nothing);
        assert_eq!(p.after_failure(&h, t(1000)), Verdict::Disable);
        assert_eq!(p.disables_at(t(0)), t(1000));
    }

    #[test]
    fn a_failure_after_a_success_starts_a_new_span() {
        let p = LifecyclePolicy {
            disable_after: Duration::from_secs(1000),
            ..LifecyclePolicy::default()
        };
        let mut h = failed(&[0]);
        h.apply(HealthChange::Succeeded { at: t(999) });
        h.apply(HealthChange::Failed { at: t(1500) });
        assert_eq!(p.after_failure(&h, t(1500)), Verdict::Nothing);
        assert_eq!(h.failing_since, Some(t(1500)));
    }

    #[test]
    fn enabling_again_is_a_new_start_that_keeps_the_last_success() {
        let mut h = failed(&[0, 1]);
        h.apply(HealthChange::Succeeded { at: t(2) });
        h.apply(HealthChange::Failed { at: t(3) });
        h.apply(HealthChange::Warned {
            warning: Warning::HalfSpan,
        });
        h.apply(HealthChange::Reset);
        assert_eq!(
            h,
            Health {
                last_success_at: Some(t(2)),
                ..Health::default()
            }
        );
    }
}
