//! What the bench was asked for: the options from the command line, the phases they make (the
//! default pair, or one phase built from the flags), and the limits they must stay within.
//!
//! Only decisions live here: nothing is started or measured, so the choice of phases is tested
//! without a Herald.

use std::path::PathBuf;

use anyhow::bail;

use crate::report::TARGET_STEADY_RATE;

const DEFAULT_PAYLOAD_BYTES: usize = 256;
const DEFAULT_EVENTS: u64 = 100_000;
const DEFAULT_DURATION_CAP_S: u64 = 20;
/// Events of the fan-out 10 phase: ten times as many deliveries.
const FANOUT10_EVENTS: u64 = 50_000;

/// What `herald-bench` was asked for (the CLI fills this from its flags).
#[derive(Debug, Clone, Default)]
pub struct BenchOptions {
    pub events: Option<u64>,
    pub fanout: Option<u32>,
    /// Events per second; 0 = as fast as possible.
    pub rate: Option<u64>,
    pub payload_bytes: Option<usize>,
    /// How long to keep sending at most (seconds).
    pub duration_s: Option<u64>,
    /// Intake requests in flight at once.
    pub concurrency: usize,
    /// How long to wait for deliveries once sending ended (seconds).
    pub drain_timeout_s: u64,
    /// The Herald binary to run (`<bin> dev`); the `herald` next to `herald-bench` when absent.
    pub herald_bin: Option<PathBuf>,
    /// Keep the temporary folders (data, Herald's log) and print where they are.
    pub keep_data: bool,
    /// Where to create the temporary folders (the system temp folder when absent).
    pub data_parent: Option<PathBuf>,
    /// Herald's `HERALD_RETENTION` (its default when absent).
    pub retention: Option<String>,
}

/// One phase's conditions.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseSpec {
    pub name: &'static str,
    pub events: u64,
    pub fanout: u32,
    pub rate: u64,
    pub payload_bytes: usize,
    pub duration_cap_s: u64,
    pub concurrency: usize,
    pub drain_timeout_s: u64,
}

impl BenchOptions {
    fn single_phase_requested(&self) -> bool {
        self.events.is_some()
            || self.fanout.is_some()
            || self.rate.is_some()
            || self.payload_bytes.is_some()
            || self.duration_s.is_some()
    }

    /// The phases to run: the default three (throughput at fan-out 1 and 10, then latency at a
    /// steady rate), or one phase built from the flags.
    pub fn phases(&self) -> Vec<PhaseSpec> {
        let concurrency = self.concurrency;
        let drain_timeout_s = self.drain_timeout_s;
        if !self.single_phase_requested() {
            return vec![
                PhaseSpec {
                    name: "throughput",
                    events: DEFAULT_EVENTS,
                    fanout: 1,
                    rate: 0,
                    payload_bytes: DEFAULT_PAYLOAD_BYTES,
                    duration_cap_s: 15,
                    concurrency,
                    drain_timeout_s,
                },
                PhaseSpec {
                    name: "fanout10",
                    events: FANOUT10_EVENTS,
                    fanout: 10,
                    rate: 0,
                    payload_bytes: DEFAULT_PAYLOAD_BYTES,
                    duration_cap_s: 15,
                    concurrency,
                    drain_timeout_s,
                },
                PhaseSpec {
                    name: "latency",
                    events: 10 * TARGET_STEADY_RATE,
                    fanout: 1,
                    rate: TARGET_STEADY_RATE,
                    payload_bytes: DEFAULT_PAYLOAD_BYTES,
                    duration_cap_s: 15,
                    concurrency,
                    drain_timeout_s,
                },
            ];
        }
        let rate = self.rate.unwrap_or(0);
        let events = match (self.events, self.duration_s) {
            (Some(n), _) => n,
            (None, Some(d)) if rate > 0 => rate.saturating_mul(d),
            _ => DEFAULT_EVENTS,
        };
        let duration_cap_s = match self.duration_s {
            Some(d) => d,
            None if rate > 0 => events.div_ceil(rate) + 5,
            None => DEFAULT_DURATION_CAP_S,
        };
        vec![PhaseSpec {
            name: "custom",
            events,
            fanout: self.fanout.unwrap_or(1),
            rate,
            payload_bytes: self.payload_bytes.unwrap_or(DEFAULT_PAYLOAD_BYTES),
            duration_cap_s,
            concurrency,
            drain_timeout_s,
        }]
    }

    /// Refuses options outside what Herald and the bench can take.
    pub fn validate(&self) -> anyhow::Result<()> {
        for p in self.phases() {
            if p.events == 0 || p.events > 10_000_000 {
                bail!("--events must be 1 to 10,000,000");
            }
            if p.fanout == 0 || p.fanout > 1000 {
                bail!("--fanout must be 1 to 1000 (a tenant has at most 1000 subscriptions)");
            }
            if p.rate > 1_000_000 {
                bail!("--rate must be at most 1,000,000 events/s (0 = as fast as possible)");
            }
            if p.payload_bytes > 200 * 1024 {
                bail!("--payload-bytes must be at most 204800 (the intake accepts 256 KiB bodies)");
            }
            if p.duration_cap_s == 0 || p.duration_cap_s > 3600 {
                bail!("--duration-s must be 1 to 3600");
            }
            if p.concurrency == 0 || p.concurrency > 4096 {
                bail!("--concurrency must be 1 to 4096");
            }
            if p.drain_timeout_s > 600 {
                bail!("--drain-timeout-s must be at most 600");
            }
        }
        if let Some(r) = &self.retention {
            if let Err(e) = herald_core::retention::Retention::parse(r) {
                bail!("--retention: {e}");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{latency_target_applies, throughput_target_applies};

    #[test]
    fn flags_choose_one_phase_and_no_flags_three() {
        let base = BenchOptions {
            concurrency: 64,
            drain_timeout_s: 30,
            ..BenchOptions::default()
        };
        let three = base.phases();
        assert_eq!(three.len(), 3);
        assert!(throughput_target_applies(&three[0]) && latency_target_applies(&three[2]));
        assert_eq!((three[1].fanout, three[1].rate), (10, 0));
        let one = BenchOptions {
            rate: Some(500),
            duration_s: Some(4),
            ..base.clone()
        }
        .phases();
        assert_eq!(one.len(), 1);
        assert_eq!(
            (one[0].events, one[0].rate, one[0].duration_cap_s),
            (2000, 500, 4)
        );
        let n = BenchOptions {
            events: Some(10),
            fanout: Some(3),
            ..base
        }
        .phases();
        assert_eq!((n[0].events, n[0].fanout, n[0].rate), (10, 3, 0));
    }
}
