//! `--soak`: one Herald with a short retention, loaded with N deliveries and then left idle, while
//! the data folder's size is watched: does the retention keep the folder bounded?
//!
//! The figure is the ratio of the folder's size `--idle` seconds after the last delivery arrived
//! to its size once the first `--soak-baseline` deliveries had arrived (the target: at
//! most 1.5 with a 1-minute retention, 1,000,000 deliveries, 2 minutes idle). Every number is a
//! parameter, so a short soak can run as a smoke test. Everything is bounded: the sending by
//! `--soak-max-s`, the wait for deliveries by `--drain-timeout-s`, the idle time by `--idle`.
//! The folder's size is printed every `--sample-s` seconds, and disk bytes written per delivery
//! (from `/proc/<pid>/io`) over the whole run, idle time included (the sweeper's work counts).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::{json, Value};

use crate::load::{send_events, LoadCounters, Payload};
use crate::machine::Machine;
use crate::options::BenchOptions;
use crate::phase::Harness;
use crate::process::{read_io, read_vm_hwm_kb};
use crate::receiver::Receiver;

/// The target of the issue: the folder at most this many times its size after the baseline.
pub const TARGET_RATIO: f64 = 1.5;

/// What the soak was asked for.
#[derive(Debug, Clone)]
pub struct SoakOptions {
    /// Deliveries to make (events × fan-out).
    pub deliveries: u64,
    /// Deliveries after which the folder's baseline size is read.
    pub baseline: u64,
    /// Herald's `HERALD_RETENTION`.
    pub retention: String,
    /// Seconds to wait after the last delivery before the final size.
    pub idle_s: u64,
    /// Events per second; 0 = as fast as possible.
    pub rate: u64,
    pub fanout: u32,
    pub payload_bytes: usize,
    /// Seconds between two printed samples.
    pub sample_s: u64,
    /// The most seconds of sending.
    pub max_send_s: u64,
}

impl SoakOptions {
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.deliveries == 0 || self.deliveries > 100_000_000 {
            bail!("--soak-deliveries must be 1 to 100,000,000");
        }
        if self.baseline == 0 || self.baseline > self.deliveries {
            bail!("--soak-baseline must be 1 to --soak-deliveries");
        }
        if let Err(e) = herald_core::retention::Retention::parse(&self.retention) {
            bail!("--retention: {e}");
        }
        if self.idle_s > 3600 || self.max_send_s == 0 || self.max_send_s > 24 * 3600 {
            bail!("--idle must be at most 3600 and --soak-max-s 1 to 86400");
        }
        if self.fanout == 0 || self.fanout > 1000 || self.sample_s == 0 {
            bail!("--fanout must be 1 to 1000 and --sample-s above 0");
        }
        Ok(())
    }
}

/// The bytes of the files under `dir`: their lengths, and the disk space allocated to them (a
/// file grown with `set_len` and not yet written is sparse: long, with nothing allocated). What
/// cannot be read counts 0: the folder changes as it is read.
pub fn folder_size(dir: &Path) -> FolderSize {
    let mut total = FolderSize::default();
    let mut pending = vec![dir.to_owned()];
    // Bounded: Herald's data folder holds a handful of files.
    let mut seen = 0;
    while let Some(folder) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            seen += 1;
            if seen > 100_000 {
                return total;
            }
            match entry.file_type() {
                Ok(t) if t.is_dir() => pending.push(entry.path()),
                Ok(t) if t.is_file() => {
                    if let Ok(m) = entry.metadata() {
                        total.bytes += m.len();
                        total.allocated += allocated(&m);
                    }
                }
                _ => {}
            }
        }
    }
    total
}

/// A folder's size: the files' lengths and the space allocated to them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FolderSize {
    pub bytes: u64,
    pub allocated: u64,
}

#[cfg(unix)]
fn allocated(m: &std::fs::Metadata) -> u64 {
    // `st_blocks` counts 512-byte units whatever the file system's block size.
    std::os::unix::fs::MetadataExt::blocks(m).saturating_mul(512)
}

#[cfg(not(unix))]
fn allocated(m: &std::fs::Metadata) -> u64 {
    m.len()
}

/// One reading of the folder.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at_s: f64,
    delivered: u64,
    size: FolderSize,
}

/// What the watcher saw.
#[derive(Debug, Default)]
struct Watched {
    samples: Vec<Sample>,
    baseline: Option<Sample>,
    peak_bytes: u64,
}

/// Reads the folder every 100 ms (the baseline as soon as it is reached), prints a sample every
/// `sample_s`, until `stop`.
async fn watch(
    dir: std::path::PathBuf,
    receiver: Arc<Receiver>,
    baseline: u64,
    sample_s: u64,
    started: Instant,
    stop: Arc<AtomicBool>,
    out: Arc<Mutex<Watched>>,
) {
    let mut next_print = Duration::ZERO;
    while !stop.load(Ordering::Relaxed) {
        let delivered = receiver.delivered();
        let elapsed = started.elapsed();
        let need_baseline = out.lock().is_ok_and(|w| w.baseline.is_none());
        let print = elapsed >= next_print;
        if print || (need_baseline && delivered >= baseline) {
            let sample = Sample {
                at_s: elapsed.as_secs_f64(),
                delivered,
                size: folder_size(&dir),
            };
            if let Ok(mut w) = out.lock() {
                w.peak_bytes = w.peak_bytes.max(sample.size.bytes);
                if need_baseline && delivered >= baseline {
                    w.baseline = Some(sample);
                    eprintln!(
                        "soak: baseline after {delivered} deliveries: {:.1} MB ({:.1} MB allocated)",
                        mb(sample.size.bytes),
                        mb(sample.size.allocated)
                    );
                }
                if print {
                    w.samples.push(sample);
                }
            }
            if print {
                eprintln!(
                    "soak {:>7.1} s: delivered {delivered:>10}, data folder {:>9.1} MB ({:.1} MB allocated)",
                    sample.at_s,
                    mb(sample.size.bytes),
                    mb(sample.size.allocated)
                );
                next_print += Duration::from_secs(sample_s);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// How many events Herald still lists (at most one page: 100), `None` if the list fails.
async fn events_left(harness: &Harness) -> Option<usize> {
    let resp = harness
        .client
        .get(format!("{}/v1/events?limit=100", harness.base))
        .bearer_auth(&harness.api_key)
        .send()
        .await
        .ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let body: Value = resp.json().await.ok()?;
    body.get("data").and_then(Value::as_array).map(Vec::len)
}

/// Runs the soak, prints its lines and answers its JSON object.
pub async fn run_soak(
    soak: &SoakOptions,
    options: &BenchOptions,
    bin: &Path,
    machine: &Machine,
) -> anyhow::Result<Value> {
    soak.validate()?;
    let events = soak.deliveries.div_ceil(u64::from(soak.fanout));
    eprintln!(
        "\n== soak: {} deliveries ({events} events × fanout {}), retention {}, then {} s idle; baseline after {} deliveries",
        soak.deliveries, soak.fanout, soak.retention, soak.idle_s, soak.baseline
    );
    let options = BenchOptions {
        retention: Some(soak.retention.clone()),
        ..options.clone()
    };
    let harness = Harness::start(&options, bin, machine, options.concurrency).await?;
    harness.subscribe(soak.fanout).await?;
    let payload = Payload::new(soak.payload_bytes);
    harness
        .warm_up(&payload, soak.fanout, options.concurrency)
        .await?;
    let pid = harness.child.pid();
    let io_before = pid.and_then(read_io);
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let watched = Arc::new(Mutex::new(Watched::default()));
    let watcher = tokio::spawn(watch(
        harness.data_dir.clone(),
        harness.receiver.clone(),
        soak.baseline,
        soak.sample_s,
        started,
        stop.clone(),
        watched.clone(),
    ));
    let counters = Arc::new(LoadCounters::default());
    let load = send_events(
        &harness.client,
        &harness.base,
        &harness.api_key,
        &payload,
        events,
        soak.rate,
        options.concurrency,
        Duration::from_secs(soak.max_send_s),
        &counters,
        50,
    )
    .await;
    let expected = load.accepted.len() as u64 * u64::from(soak.fanout);
    let send_end = Instant::now();
    let drain = Duration::from_secs(options.drain_timeout_s);
    while harness.receiver.delivered() < expected && send_end.elapsed() < drain {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let delivered = harness.receiver.delivered();
    let last_delivery_s = started.elapsed().as_secs_f64();
    let io_delivered = pid.and_then(read_io);
    eprintln!(
        "soak: {delivered} of {expected} deliveries arrived at {last_delivery_s:.1} s; idle for {} s",
        soak.idle_s
    );
    tokio::time::sleep(Duration::from_secs(soak.idle_s)).await;
    let final_size = folder_size(&harness.data_dir);
    let final_bytes = final_size.bytes;
    let io_after = pid.and_then(read_io);
    let events_left = events_left(&harness).await;
    let peak_rss_mb = read_vm_hwm_kb(pid).map(|kb| kb as f64 / 1024.0);
    stop.store(true, Ordering::Relaxed);
    let _ = watcher.await;
    let kept = harness.finish(options.keep_data);

    let watched = std::mem::take(&mut *watched.lock().unwrap_or_else(|p| p.into_inner()));
    let baseline = watched.baseline;
    let ratio = baseline
        .filter(|b| b.size.bytes > 0)
        .map(|b| final_bytes as f64 / b.size.bytes as f64);
    let allocated_ratio = baseline
        .filter(|b| b.size.allocated > 0)
        .map(|b| final_size.allocated as f64 / b.size.allocated as f64);
    let per_delivery = |io: Option<crate::process::IoCounters>| match (io, io_before) {
        (Some(a), Some(b)) if delivered > 0 => {
            Some(a.since(&b).write_bytes as f64 / delivered as f64)
        }
        _ => None,
    };
    let send_s = load
        .first_send
        .map_or(0.0, |f| send_end.saturating_duration_since(f).as_secs_f64());
    let complete = load.errors == 0 && delivered >= expected;

    println!();
    println!(
        "soak: {} deliveries (fanout {}), retention {}, idle {} s",
        soak.deliveries, soak.fanout, soak.retention, soak.idle_s
    );
    println!(
        "  delivered {delivered}/{expected}, sending took {send_s:.1} s, errors {}",
        load.errors
    );
    match baseline {
        Some(b) => println!(
            "  data folder: {:.1} MB after {} deliveries, {:.1} MB at most, {:.1} MB {} s after the last ({:.1} and {:.1} MB allocated)",
            mb(b.size.bytes),
            b.delivered,
            mb(watched.peak_bytes.max(final_bytes)),
            mb(final_bytes),
            soak.idle_s,
            mb(b.size.allocated),
            mb(final_size.allocated)
        ),
        None => println!("  data folder: the baseline was never reached"),
    }
    match ratio {
        Some(r) => println!(
            "  ratio final / baseline   {r:>8.2}   target ≤ {TARGET_RATIO}   {}",
            if r <= TARGET_RATIO { "OK" } else { "MISS" }
        ),
        None => println!("  ratio final / baseline   unavailable"),
    }
    if let Some(r) = allocated_ratio {
        println!("  allocated final / baseline {r:>6.2}");
    }
    match events_left {
        Some(n) => println!(
            "  events left after the idle time: {n}{}",
            if n >= 100 { " or more" } else { "" }
        ),
        None => println!("  events left after the idle time: unknown (the list could not be read)"),
    }
    if let Some(b) = per_delivery(io_delivered) {
        println!("  disk bytes per delivery  {b:>8.0} (until the last delivery)");
    }
    let samples: Vec<Value> = watched
        .samples
        .iter()
        .map(|s| json!({"t_s": (s.at_s * 10.0).round() / 10.0, "delivered": s.delivered, "folder_bytes": s.size.bytes, "folder_allocated_bytes": s.size.allocated}))
        .collect();
    Ok(json!({
        "mode": "soak",
        "folder_ratio": ratio.map(|r| (r * 1000.0).round() / 1000.0),
        "complete": complete,
        "deliveries": delivered,
        "expected_deliveries": expected,
        "errors": load.errors,
        "error_samples": load.error_samples,
        "fanout": soak.fanout,
        "rate": soak.rate,
        "payload_bytes": soak.payload_bytes,
        "retention": soak.retention,
        "idle_s": soak.idle_s,
        "baseline_deliveries": soak.baseline,
        "baseline_folder_bytes": baseline.map(|b| b.size.bytes),
        "peak_folder_bytes": watched.peak_bytes.max(final_bytes),
        "final_folder_bytes": final_bytes,
        "folder_allocated_ratio": allocated_ratio.map(|r| (r * 1000.0).round() / 1000.0),
        "baseline_folder_allocated_bytes": baseline.map(|b| b.size.allocated),
        "final_folder_allocated_bytes": final_size.allocated,
        "events_left": events_left,
        "send_s": (send_s * 10.0).round() / 10.0,
        "last_delivery_s": (last_delivery_s * 10.0).round() / 10.0,
        "disk_bytes_per_delivery": per_delivery(io_delivered).map(f64::round),
        "disk_bytes_per_delivery_with_idle": per_delivery(io_after).map(f64::round),
        "peak_rss_mb": peak_rss_mb.map(|m| (m * 10.0).round() / 10.0),
        "samples": samples,
        "target_ratio_max": TARGET_RATIO,
        "cores": machine.cores,
        "data_dir": kept.map(|p| p.display().to_string()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> SoakOptions {
        SoakOptions {
            deliveries: 1000,
            baseline: 100,
            retention: "1m".into(),
            idle_s: 120,
            rate: 0,
            fanout: 1,
            payload_bytes: 256,
            sample_s: 5,
            max_send_s: 60,
        }
    }

    #[test]
    fn the_soak_refuses_what_it_cannot_measure() {
        assert!(options().validate().is_ok());
        for bad in [
            SoakOptions {
                baseline: 2000,
                ..options()
            },
            SoakOptions {
                retention: "0s".into(),
                ..options()
            },
            SoakOptions {
                idle_s: 4000,
                ..options()
            },
            SoakOptions {
                deliveries: 0,
                ..options()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_folder_size_counts_nested_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), [0u8; 100]).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/b"), [0u8; 23]).unwrap();
        assert_eq!(folder_size(dir.path()).bytes, 123);
        assert!(folder_size(dir.path()).allocated >= 123);
        assert_eq!(
            folder_size(&dir.path().join("absent")),
            FolderSize::default()
        );
    }
}
