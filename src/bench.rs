//! `herald bench`: load Herald running as a child process and report what it can do.
//!
//! The bench starts Herald (`<herald-bin> dev`) as a child process on a fresh temporary data folder
//! and a free port on 127.0.0.1, so Herald's CPU time and peak RSS can be read from `/proc/<pid>`
//! apart from the load generator and the receiver, which run here, in the bench process. The
//! receiver is an axum server on 127.0.0.1 answering 204 and noting, per `webhook-id` (the event
//! id), when each delivery arrived. The load generator posts `bench.event` events with bounded
//! concurrency, either as fast as possible or at a fixed rate, and notes when each 202 arrived.
//! Latency of one delivery = its arrival at the receiver − the arrival of its event's 202; both
//! are `Instant`s of this process.
//!
//! Without flags it runs two phases (about 30 s): "throughput" (F=1, as fast as possible) and
//! "latency" (F=1, a steady 1,000 events/s). With any of `--events`, `--fanout`, `--rate`,
//! `--payload-bytes`, `--duration-s` it runs one phase with those. The last stdout line is one JSON
//! object with the figures and the conditions; progress goes to stderr once per second.
//!
//! CPU time is `utime + stime` from `/proc/<pid>/stat` in clock ticks (`getconf CLK_TCK`, 100 when
//! that cannot be run), taken as the difference between the start and the end of the measured phase
//! (after setup and warm-up). Peak RSS is `VmHWM` from `/proc/<pid>/status`. Both need Linux; on
//! other systems those figures are absent (`null`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use tokio::task::JoinSet;

/// The targets the figures are reported against.
pub const TARGET_DELIVERIES_PER_S: f64 = 10_000.0;
pub const TARGET_P99_MS: f64 = 10.0;
pub const TARGET_STEADY_RATE: u64 = 1_000;
pub const TARGET_CPU_S_PER_1000: f64 = 0.2;
pub const TARGET_RSS_MB: f64 = 50.0;

const DEFAULT_PAYLOAD_BYTES: usize = 256;
const DEFAULT_EVENTS: u64 = 100_000;
const DEFAULT_DURATION_CAP_S: u64 = 20;
/// Events sent (and waited for) before the measured phase: opens connections, fills caches.
const WARMUP_EVENTS: u64 = 50;
const WARMUP_TIMEOUT: Duration = Duration::from_secs(15);
const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const RECEIVER_SHARDS: usize = 16;
const MAX_ERROR_SAMPLES: usize = 5;

/// What `herald bench` was asked for (the CLI fills this from its flags).
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
    /// The Herald binary to run (`<bin> dev`); the running executable when absent.
    pub herald_bin: Option<PathBuf>,
    /// Keep the temporary folders (data, Herald's log) and print where they are.
    pub keep_data: bool,
    /// Where to create the temporary folders (the system temp folder when absent).
    pub data_parent: Option<PathBuf>,
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

    /// The phases to run: the default pair, or one phase built from the flags.
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

    fn validate(&self) -> anyhow::Result<()> {
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
        Ok(())
    }
}

/// Runs the benchmark and prints the report; the last stdout line is the JSON object.
pub async fn run(options: BenchOptions) -> anyhow::Result<()> {
    options.validate()?;
    let bin = match &options.herald_bin {
        Some(p) => p.clone(),
        None => std::env::current_exe().context("finding the herald executable")?,
    };
    let machine = Machine::detect();
    eprintln!(
        "herald bench: {} cores ({}), Herald binary {}",
        machine.cores,
        machine.cpu_model.as_deref().unwrap_or("unknown CPU"),
        bin.display()
    );
    if !machine.clk_tck_measured {
        eprintln!("note: `getconf CLK_TCK` could not be run; assuming 100 clock ticks per second");
    }
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; use `cargo build --release` for real figures");
    }
    let wall = Instant::now();
    let phases = options.phases();
    let mut reports = Vec::with_capacity(phases.len());
    for spec in &phases {
        let report = run_phase(spec, &options, &bin, &machine).await?;
        print_phase(&report, &machine);
        reports.push(report);
    }
    let total_s = wall.elapsed().as_secs_f64();
    let summary = summary_json(&reports, &machine, total_s, phases.len() > 1);
    print_summary(&summary);
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// One phase
// ---------------------------------------------------------------------------------------------

/// What one phase measured.
#[derive(Debug, Clone)]
struct PhaseReport {
    spec: PhaseSpec,
    sent: u64,
    accepted: u64,
    errors: u64,
    error_samples: Vec<String>,
    stopped_by_time_cap: bool,
    expected: u64,
    delivered: u64,
    duplicates: u64,
    unmatched: u64,
    early_arrivals: u64,
    duration_s: f64,
    send_s: f64,
    deliveries_per_s: f64,
    accepted_per_s: f64,
    latency: Option<Percentiles>,
    accept_latency: Option<Percentiles>,
    herald_cpu_s: Option<f64>,
    bench_cpu_s: Option<f64>,
    machine_busy_pct: Option<f64>,
    /// Wall time between the two CPU snapshots.
    snapshot_s: f64,
    machine_iowait_pct: Option<f64>,
    peak_rss_mb: Option<f64>,
    disk_write_mb: Option<f64>,
    receiver_connections: u64,
    threads_cpu_s: BTreeMap<String, f64>,
    herald_metrics: BTreeMap<String, f64>,
    data_dir: Option<PathBuf>,
    data_fs: Option<String>,
}

impl PhaseReport {
    /// Every event sent was accepted and every accepted event reached every subscription. (A
    /// phase the time cap stopped early can be complete: the cap is part of its conditions.)
    fn complete(&self) -> bool {
        self.errors == 0 && self.delivered >= self.expected
    }

    /// Cores Herald kept busy on average between the snapshots.
    fn herald_cores(&self) -> Option<f64> {
        self.herald_cpu_s.map(|c| c / self.snapshot_s.max(1e-9))
    }

    /// Cores busy with neither Herald nor the bench process (kernel threads, other programs): a
    /// large figure means the machine was not quiet and the figures are disturbed.
    fn other_cores(&self, cores: usize) -> Option<f64> {
        let busy = self.machine_busy_pct? / 100.0 * cores as f64;
        let ours = (self.herald_cpu_s? + self.bench_cpu_s?) / self.snapshot_s.max(1e-9);
        Some((busy - ours).max(0.0))
    }

    fn cpu_s_per_1000(&self) -> Option<f64> {
        match self.herald_cpu_s {
            Some(cpu) if self.delivered > 0 => Some(cpu / (self.delivered as f64 / 1000.0)),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Percentiles {
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    mean: f64,
}

impl Percentiles {
    /// From unsorted values (milliseconds); `None` when empty.
    fn of(mut values: Vec<f64>) -> Option<Self> {
        values.sort_by(f64::total_cmp);
        let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
        Some(Self {
            p50: percentile(&values, 50.0)?,
            p90: percentile(&values, 90.0)?,
            p99: percentile(&values, 99.0)?,
            max: percentile(&values, 100.0)?,
            mean,
        })
    }
}

/// Nearest-rank percentile of `sorted` (ascending): the smallest value with at least `p` % of the
/// values at or below it. `p` is clamped to 0..=100; `None` for an empty slice.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let p = if p.is_nan() {
        100.0
    } else {
        p.clamp(0.0, 100.0)
    };
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted
        .get(rank.saturating_sub(1).min(sorted.len() - 1))
        .copied()
}

/// An event whose 202 arrived.
#[derive(Debug)]
struct Accepted {
    id: String,
    sent: Instant,
    accepted: Instant,
}

#[derive(Debug, Default)]
struct LoadCounters {
    sent: AtomicU64,
    accepted: AtomicU64,
    errors: AtomicU64,
}

async fn run_phase(
    spec: &PhaseSpec,
    options: &BenchOptions,
    bin: &Path,
    machine: &Machine,
) -> anyhow::Result<PhaseReport> {
    eprintln!(
        "\n== phase {}: {} events, fanout {}, rate {}, payload {} B, concurrency {}, send for at most {} s",
        spec.name,
        spec.events,
        spec.fanout,
        rate_text(spec.rate),
        spec.payload_bytes,
        spec.concurrency,
        spec.duration_cap_s
    );
    let mut builder = tempfile::Builder::new();
    builder.prefix("herald-bench-");
    let temp = match &options.data_parent {
        Some(parent) => builder.tempdir_in(parent),
        None => builder.tempdir(),
    }
    .context("creating the temporary data folder")?;
    let data_dir = temp.path().join("data");
    let log_path = temp.path().join("herald.log");
    let data_fs = machine.filesystem_of(temp.path());

    // The receiver, in this process.
    let receiver = Arc::new(Receiver::new());
    let (receiver_addr, receiver_stop) = start_receiver(receiver.clone()).await?;

    // Herald, as a child process.
    let port = free_port()?;
    let herald_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let api_key = herald_app::auth::generate_api_key(
        herald_core::TenantId::new(),
        "bench",
        jiff::Timestamp::now(),
    )
    .key;
    let mut child = HeraldChild::spawn(bin, herald_addr, &data_dir, &api_key, &log_path)?;
    let base = format!("http://{herald_addr}");
    let client = reqwest::Client::builder()
        .no_proxy()
        .http1_only()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(spec.concurrency)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .context("building the HTTP client")?;
    if let Err(e) = wait_healthy(&client, &base, &mut child).await {
        bail!(
            "{e:#}\n--- the end of Herald's log ---\n{}",
            log_tail(&log_path)
        );
    }

    // Setup: F subscriptions, then a warm-up round that must arrive.
    for k in 0..spec.fanout {
        let body = json!({
            "name": format!("bench {k}"),
            "platform": "custom",
            "url": format!("http://{receiver_addr}/hook/{k}"),
            "events": ["bench.*"],
        });
        let resp = client
            .post(format!("{base}/v1/subscriptions"))
            .bearer_auth(&api_key)
            .json(&body)
            .send()
            .await
            .context("creating a subscription")?;
        let status = resp.status();
        if status != reqwest::StatusCode::CREATED {
            let text = resp.text().await.unwrap_or_default();
            bail!("creating subscription {k}: {status}: {text}");
        }
    }
    let payload = Payload::new(spec.payload_bytes);
    let warm_counters = Arc::new(LoadCounters::default());
    let warm = send_events(
        &client,
        &base,
        &api_key,
        &payload,
        WARMUP_EVENTS,
        0,
        spec.concurrency,
        Duration::from_secs(30),
        &warm_counters,
        u64::MAX / 2,
    )
    .await;
    let warm_expected = warm.accepted.len() as u64 * u64::from(spec.fanout);
    let warm_start = Instant::now();
    while receiver.delivered() < warm_expected && warm_start.elapsed() < WARMUP_TIMEOUT {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if warm.accepted.is_empty() || receiver.delivered() < warm_expected {
        bail!(
            "warm-up failed: {} of {WARMUP_EVENTS} events accepted, {} of {warm_expected} deliveries arrived within {} s; errors: {:?}\n--- the end of Herald's log ---\n{}",
            warm.accepted.len(),
            receiver.delivered(),
            WARMUP_TIMEOUT.as_secs(),
            warm.error_samples,
            log_tail(&log_path)
        );
    }
    receiver.reset();

    // The measured phase.
    let pid = child.pid();
    let before = Snapshot::take(pid);
    let counters = Arc::new(LoadCounters::default());
    let stop_progress = Arc::new(AtomicBool::new(false));
    let progress = tokio::spawn(progress_loop(
        spec.name,
        counters.clone(),
        receiver.clone(),
        stop_progress.clone(),
        spec.duration_cap_s + spec.drain_timeout_s + REQUEST_TIMEOUT.as_secs() + 10,
    ));
    let load = send_events(
        &client,
        &base,
        &api_key,
        &payload,
        spec.events,
        spec.rate,
        spec.concurrency,
        Duration::from_secs(spec.duration_cap_s),
        &counters,
        WARMUP_EVENTS,
    )
    .await;
    let send_end = Instant::now();
    let expected = load.accepted.len() as u64 * u64::from(spec.fanout);
    let drain_timeout = Duration::from_secs(spec.drain_timeout_s);
    while receiver.delivered() < expected && send_end.elapsed() < drain_timeout {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let after = Snapshot::take(pid);
    let peak_rss_mb = read_vm_hwm_kb(pid).map(|kb| kb as f64 / 1024.0);
    let herald_metrics = scrape_metrics(&client, &base).await;
    stop_progress.store(true, Ordering::Relaxed);
    let _ = progress.await;
    child.stop();
    let _ = receiver_stop.send(());

    // Figures.
    let arrivals = receiver.take();
    let stats = join_arrivals(&load.accepted, &arrivals, spec.fanout);
    let first_send = load.first_send.unwrap_or(load.started);
    let end = stats.last_arrival.unwrap_or(send_end);
    let duration_s = end.saturating_duration_since(first_send).as_secs_f64();
    let last_accept = load
        .accepted
        .iter()
        .map(|a| a.accepted)
        .max()
        .unwrap_or(first_send);
    let accept_span = last_accept
        .saturating_duration_since(first_send)
        .as_secs_f64();
    let clk = machine.clk_tck as f64;
    let herald_cpu_s = match (&before.herald, &after.herald) {
        (Some(b), Some(a)) => Some(a.ticks.saturating_sub(b.ticks) as f64 / clk),
        _ => None,
    };
    let bench_cpu_s = match (&before.own, &after.own) {
        (Some(b), Some(a)) => Some(a.ticks.saturating_sub(b.ticks) as f64 / clk),
        _ => None,
    };
    let (machine_busy_pct, machine_iowait_pct) = match (&before.system, &after.system) {
        (Some(b), Some(a)) => {
            let total = a.total.saturating_sub(b.total).max(1) as f64;
            let idle = a.idle.saturating_sub(b.idle) as f64;
            let iowait = a.iowait.saturating_sub(b.iowait) as f64;
            (
                Some(100.0 * (total - idle - iowait) / total),
                Some(100.0 * iowait / total),
            )
        }
        _ => (None, None),
    };
    let disk_write_mb = match (before.herald_write_bytes, after.herald_write_bytes) {
        (Some(b), Some(a)) => Some(a.saturating_sub(b) as f64 / (1024.0 * 1024.0)),
        _ => None,
    };
    let mut threads_cpu_s = BTreeMap::new();
    for (tid, (name, ticks)) in &after.threads {
        let start = before.threads.get(tid).map(|(_, t)| *t).unwrap_or(0);
        *threads_cpu_s.entry(name.clone()).or_insert(0.0) +=
            ticks.saturating_sub(start) as f64 / clk;
    }

    let kept = if options.keep_data {
        let path = temp.keep();
        eprintln!(
            "kept the data folder and Herald's log in {}",
            path.display()
        );
        Some(path)
    } else {
        drop(temp);
        None
    };

    Ok(PhaseReport {
        spec: spec.clone(),
        sent: load.sent,
        accepted: load.accepted.len() as u64,
        errors: load.errors,
        error_samples: load.error_samples,
        stopped_by_time_cap: load.stopped_by_time_cap,
        expected,
        delivered: stats.delivered,
        duplicates: stats.duplicates,
        unmatched: stats.unmatched,
        early_arrivals: stats.early,
        duration_s,
        send_s: send_end.saturating_duration_since(first_send).as_secs_f64(),
        deliveries_per_s: if duration_s > 0.0 {
            stats.delivered as f64 / duration_s
        } else {
            0.0
        },
        accepted_per_s: if accept_span > 0.0 {
            load.accepted.len() as f64 / accept_span
        } else {
            0.0
        },
        latency: Percentiles::of(stats.latencies_ms),
        accept_latency: Percentiles::of(
            load.accepted
                .iter()
                .map(|a| a.accepted.saturating_duration_since(a.sent).as_secs_f64() * 1000.0)
                .collect(),
        ),
        herald_cpu_s,
        bench_cpu_s,
        machine_busy_pct,
        snapshot_s: after.at.saturating_duration_since(before.at).as_secs_f64(),
        machine_iowait_pct,
        peak_rss_mb,
        disk_write_mb,
        receiver_connections: stats.connections,
        threads_cpu_s,
        herald_metrics,
        data_dir: kept,
        data_fs,
    })
}

/// What the load generator did.
#[derive(Debug)]
struct LoadResult {
    started: Instant,
    first_send: Option<Instant>,
    sent: u64,
    accepted: Vec<Accepted>,
    errors: u64,
    error_samples: Vec<String>,
    stopped_by_time_cap: bool,
}

/// The request body, padded so that `data` is about `payload_bytes` long.
#[derive(Debug)]
struct Payload {
    bytes: usize,
    pad: String,
}

impl Payload {
    fn new(bytes: usize) -> Self {
        Self {
            bytes,
            pad: "x".repeat(bytes),
        }
    }

    /// `{"type":"bench.event","data":{"seq":N,"pad":"xxx…"}}`; `data` is `bytes` long when the
    /// size allows it (at least the `seq` field otherwise).
    fn body(&self, seq: u64) -> Vec<u8> {
        let seq_text = seq.to_string();
        // `{"seq":` + N + `,"pad":"` + pad + `"}`
        let overhead = 7 + seq_text.len() + 8 + 2;
        let pad = self
            .pad
            .get(..self.bytes.saturating_sub(overhead))
            .unwrap_or("");
        format!(r#"{{"type":"bench.event","data":{{"seq":{seq_text},"pad":"{pad}"}}}}"#)
            .into_bytes()
    }
}

#[allow(clippy::too_many_arguments)]
async fn send_events(
    client: &reqwest::Client,
    base: &str,
    api_key: &str,
    payload: &Payload,
    events: u64,
    rate: u64,
    concurrency: usize,
    cap: Duration,
    counters: &Arc<LoadCounters>,
    seq_offset: u64,
) -> LoadResult {
    let url = Arc::new(format!("{base}/v1/events"));
    let auth = Arc::new(format!("Bearer {api_key}"));
    let started = Instant::now();
    let mut result = LoadResult {
        started,
        first_send: None,
        sent: 0,
        accepted: Vec::with_capacity(usize::try_from(events.min(10_000_000)).unwrap_or(0)),
        errors: 0,
        error_samples: Vec::new(),
        stopped_by_time_cap: false,
    };
    let mut tasks: JoinSet<Result<Accepted, String>> = JoinSet::new();
    let mut next: u64 = 0;
    'outer: while next < events {
        if started.elapsed() >= cap {
            result.stopped_by_time_cap = true;
            break;
        }
        let due = if rate == 0 {
            events
        } else {
            ((started.elapsed().as_secs_f64() * rate as f64) as u64 + 1).min(events)
        };
        while next < due {
            while tasks.len() >= concurrency {
                if let Some(r) = tasks.join_next().await {
                    collect_one(r, &mut result);
                }
            }
            if started.elapsed() >= cap {
                result.stopped_by_time_cap = true;
                break 'outer;
            }
            let body = payload.body(seq_offset + next);
            let client = client.clone();
            let url = url.clone();
            let auth = auth.clone();
            let counters = counters.clone();
            let sent = Instant::now();
            result.first_send.get_or_insert(sent);
            counters.sent.fetch_add(1, Ordering::Relaxed);
            tasks.spawn(async move {
                let r = post_event(&client, &url, &auth, body, sent).await;
                match &r {
                    Ok(_) => counters.accepted.fetch_add(1, Ordering::Relaxed),
                    Err(_) => counters.errors.fetch_add(1, Ordering::Relaxed),
                };
                r
            });
            next += 1;
        }
        if rate > 0 && next < events {
            while let Some(r) = tasks.try_join_next() {
                collect_one(r, &mut result);
            }
            let due_at = started + Duration::from_secs_f64(next as f64 / rate as f64);
            tokio::time::sleep_until(due_at.into()).await;
        }
    }
    result.sent = next;
    // Every request has a timeout, so this ends.
    while let Some(r) = tasks.join_next().await {
        collect_one(r, &mut result);
    }
    result
}

fn collect_one(
    r: Result<Result<Accepted, String>, tokio::task::JoinError>,
    result: &mut LoadResult,
) {
    match r {
        Ok(Ok(a)) => result.accepted.push(a),
        Ok(Err(e)) => {
            result.errors += 1;
            if result.error_samples.len() < MAX_ERROR_SAMPLES && !result.error_samples.contains(&e)
            {
                result.error_samples.push(e);
            }
        }
        Err(e) => {
            result.errors += 1;
            if result.error_samples.len() < MAX_ERROR_SAMPLES {
                result.error_samples.push(format!("task failed: {e}"));
            }
        }
    }
}

async fn post_event(
    client: &reqwest::Client,
    url: &str,
    auth: &str,
    body: Vec<u8>,
    sent: Instant,
) -> Result<Accepted, String> {
    let resp = client
        .post(url)
        .header(reqwest::header::AUTHORIZATION, auth)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let accepted = Instant::now();
    let status = resp.status();
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| format!("reading the answer: {e}"))?;
    if status != reqwest::StatusCode::ACCEPTED {
        let text = String::from_utf8_lossy(&bytes);
        return Err(format!(
            "{status}: {}",
            text.chars().take(200).collect::<String>()
        ));
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        id: String,
    }
    let answer: Answer =
        serde_json::from_slice(&bytes).map_err(|e| format!("the 202 answer has no id: {e}"))?;
    Ok(Accepted {
        id: answer.id,
        sent,
        accepted,
    })
}

async fn progress_loop(
    name: &'static str,
    counters: Arc<LoadCounters>,
    receiver: Arc<Receiver>,
    stop: Arc<AtomicBool>,
    max_ticks: u64,
) {
    let start = Instant::now();
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    interval.tick().await;
    let mut last_delivered = 0u64;
    for _ in 0..max_ticks {
        interval.tick().await;
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let sent = counters.sent.load(Ordering::Relaxed);
        let accepted = counters.accepted.load(Ordering::Relaxed);
        let errors = counters.errors.load(Ordering::Relaxed);
        let delivered = receiver.delivered();
        eprintln!(
            "[{name} {:>3}s] sent {sent:>8}  accepted {accepted:>8}  delivered {delivered:>8}  (+{}/s)  errors {errors}",
            start.elapsed().as_secs(),
            delivered.saturating_sub(last_delivered)
        );
        last_delivered = delivered;
    }
}

// ---------------------------------------------------------------------------------------------
// The receiver
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
struct Arrival {
    subscription: u32,
    peer_port: u16,
    at: Instant,
}

/// Arrivals per event id, in shards so concurrent handlers rarely share a lock.
#[derive(Debug)]
struct Receiver {
    shards: Vec<Mutex<HashMap<String, Vec<Arrival>>>>,
    delivered: AtomicU64,
}

impl Receiver {
    fn new() -> Self {
        Self {
            shards: (0..RECEIVER_SHARDS)
                .map(|_| Mutex::new(HashMap::new()))
                .collect(),
            delivered: AtomicU64::new(0),
        }
    }

    fn shard(&self, id: &str) -> &Mutex<HashMap<String, Vec<Arrival>>> {
        // Event ids end in random ULID characters: the last byte spreads them well enough.
        let b = id.as_bytes().last().copied().unwrap_or(0) as usize;
        &self.shards[b % self.shards.len()]
    }

    fn record(&self, id: &str, arrival: Arrival) {
        {
            let mut map = self.shard(id).lock().unwrap_or_else(|p| p.into_inner());
            match map.get_mut(id) {
                Some(v) => v.push(arrival),
                None => {
                    map.insert(id.to_owned(), vec![arrival]);
                }
            }
        }
        self.delivered.fetch_add(1, Ordering::Relaxed);
    }

    fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    fn reset(&self) {
        for shard in &self.shards {
            shard.lock().unwrap_or_else(|p| p.into_inner()).clear();
        }
        self.delivered.store(0, Ordering::Relaxed);
    }

    fn take(&self) -> HashMap<String, Vec<Arrival>> {
        let mut all = HashMap::new();
        for shard in &self.shards {
            all.extend(std::mem::take(
                &mut *shard.lock().unwrap_or_else(|p| p.into_inner()),
            ));
        }
        all
    }
}

async fn hook(
    State(receiver): State<Arc<Receiver>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    UrlPath(subscription): UrlPath<u32>,
    headers: HeaderMap,
    _body: Bytes,
) -> StatusCode {
    let at = Instant::now();
    if let Some(id) = headers.get("webhook-id").and_then(|v| v.to_str().ok()) {
        receiver.record(
            id,
            Arrival {
                subscription,
                peer_port: peer.port(),
                at,
            },
        );
    }
    StatusCode::NO_CONTENT
}

async fn start_receiver(
    receiver: Arc<Receiver>,
) -> anyhow::Result<(SocketAddr, tokio::sync::oneshot::Sender<()>)> {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .context("binding the receiver on 127.0.0.1")?;
    let addr = listener.local_addr()?;
    let app = Router::new()
        .route("/hook/{k}", post(hook))
        .with_state(receiver);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let serve = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = stopped.await;
        });
        if let Err(e) = serve.await {
            eprintln!("receiver failed: {e}");
        }
    });
    Ok((addr, stop))
}

#[derive(Debug, Default)]
struct JoinStats {
    delivered: u64,
    duplicates: u64,
    unmatched: u64,
    early: u64,
    connections: u64,
    last_arrival: Option<Instant>,
    latencies_ms: Vec<f64>,
}

/// Matches arrivals to accepted events: one delivery per (event, subscription); repeats are
/// duplicates, arrivals of unknown events are unmatched.
fn join_arrivals(
    accepted: &[Accepted],
    arrivals: &HashMap<String, Vec<Arrival>>,
    fanout: u32,
) -> JoinStats {
    let mut stats = JoinStats {
        latencies_ms: Vec::with_capacity(accepted.len() * fanout as usize),
        ..JoinStats::default()
    };
    let mut ports = HashSet::new();
    let by_id: HashMap<&str, &Accepted> = accepted.iter().map(|a| (a.id.as_str(), a)).collect();
    for (id, list) in arrivals {
        for a in list {
            ports.insert(a.peer_port);
        }
        let Some(acc) = by_id.get(id.as_str()) else {
            stats.unmatched += list.len() as u64;
            continue;
        };
        let mut seen = HashSet::with_capacity(list.len());
        for a in list {
            if !seen.insert(a.subscription) {
                stats.duplicates += 1;
                continue;
            }
            stats.delivered += 1;
            if a.at < acc.accepted {
                stats.early += 1;
            }
            stats
                .latencies_ms
                .push(a.at.saturating_duration_since(acc.accepted).as_secs_f64() * 1000.0);
            stats.last_arrival = Some(stats.last_arrival.map_or(a.at, |t| t.max(a.at)));
        }
    }
    stats.connections = ports.len() as u64;
    stats
}

// ---------------------------------------------------------------------------------------------
// The Herald child process
// ---------------------------------------------------------------------------------------------

/// Herald running as `<bin> dev`; killed when dropped, so it never outlives the bench.
#[derive(Debug)]
struct HeraldChild {
    child: Option<Child>,
}

impl HeraldChild {
    fn spawn(
        bin: &Path,
        addr: SocketAddr,
        data_dir: &Path,
        api_key: &str,
        log: &Path,
    ) -> anyhow::Result<Self> {
        let log_file =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let child = std::process::Command::new(bin)
            .arg("dev")
            .env("HERALD_ADDR", addr.to_string())
            .env("HERALD_DATA_DIR", data_dir)
            .env("HERALD_DEV_API_KEY", api_key)
            .env("HERALD_ALLOW_HTTP", "true")
            .env("HERALD_ALLOW_PRIVATE", "true")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file))
            .spawn()
            .with_context(|| format!("starting {} dev", bin.display()))?;
        Ok(Self { child: Some(child) })
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for HeraldChild {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .context("finding a free port on 127.0.0.1")?;
    Ok(listener.local_addr()?.port())
}

async fn wait_healthy(
    client: &reqwest::Client,
    base: &str,
    child: &mut HeraldChild,
) -> anyhow::Result<()> {
    let start = Instant::now();
    while start.elapsed() < STARTUP_TIMEOUT {
        if let Some(status) = child.exited() {
            bail!("Herald exited during startup ({status})");
        }
        if let Ok(resp) = client
            .get(format!("{base}/healthz"))
            .timeout(Duration::from_secs(1))
            .send()
            .await
        {
            if resp.status().is_success() {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!(
        "Herald did not answer /healthz within {} s",
        STARTUP_TIMEOUT.as_secs()
    )
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

async fn scrape_metrics(client: &reqwest::Client, base: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let Ok(resp) = client
        .get(format!("{base}/metrics"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
    else {
        return out;
    };
    let Ok(text) = resp.text().await else {
        return out;
    };
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        if let Some((name, value)) = line.split_once(' ') {
            if let Ok(v) = value.trim().parse::<f64>() {
                out.insert(name.trim_start_matches("herald_").to_owned(), v);
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// /proc readings
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
struct CpuTicks {
    ticks: u64,
}

#[derive(Debug, Clone, Copy)]
struct SystemTicks {
    total: u64,
    idle: u64,
    iowait: u64,
}

/// The counters read at the start and at the end of a measured phase.
#[derive(Debug)]
struct Snapshot {
    at: Instant,
    herald: Option<CpuTicks>,
    own: Option<CpuTicks>,
    system: Option<SystemTicks>,
    herald_write_bytes: Option<u64>,
    /// Herald's threads: tid → (name, utime + stime).
    threads: HashMap<String, (String, u64)>,
}

impl Snapshot {
    fn take(pid: Option<u32>) -> Self {
        let herald = pid.and_then(|p| read_stat_ticks(&format!("/proc/{p}/stat")));
        Self {
            at: Instant::now(),
            herald,
            own: read_stat_ticks("/proc/self/stat"),
            system: read_system_ticks(),
            herald_write_bytes: pid.and_then(read_write_bytes),
            threads: pid.map(read_threads).unwrap_or_default(),
        }
    }
}

/// `utime + stime` of a `/proc/…/stat` line (fields 14 and 15; the name in parentheses may hold
/// spaces, so fields are counted after the last `)`).
fn parse_stat_ticks(text: &str) -> Option<u64> {
    let after = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After ")": state is field 3, so field n is at index n - 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn read_stat_ticks(path: &str) -> Option<CpuTicks> {
    let text = std::fs::read_to_string(path).ok()?;
    parse_stat_ticks(&text).map(|ticks| CpuTicks { ticks })
}

fn read_system_ticks() -> Option<SystemTicks> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest is counted in user already)
    let total: u64 = v.iter().take(8).sum();
    Some(SystemTicks {
        total,
        idle: *v.get(3)?,
        iowait: *v.get(4)?,
    })
}

fn read_write_bytes(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())
}

fn read_threads(pid: u32) -> HashMap<String, (String, u64)> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for entry in dir.flatten().take(10_000) {
        let path = entry.path();
        let name = std::fs::read_to_string(path.join("comm"))
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        let Some(ticks) = std::fs::read_to_string(path.join("stat"))
            .ok()
            .and_then(|t| parse_stat_ticks(&t))
        else {
            continue;
        };
        out.insert(
            entry.file_name().to_string_lossy().into_owned(),
            (name, ticks),
        );
    }
    out
}

/// `VmHWM` (peak resident set) of `/proc/<pid>/status`, in kB.
fn read_vm_hwm_kb(pid: Option<u32>) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    parse_vm_hwm_kb(&text)
}

fn parse_vm_hwm_kb(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The machine the figures were taken on.
#[derive(Debug, Clone)]
struct Machine {
    cores: usize,
    cpu_model: Option<String>,
    clk_tck: u64,
    clk_tck_measured: bool,
    mounts: Vec<(String, String)>,
}

impl Machine {
    fn detect() -> Self {
        let cores = std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(1);
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        });
        let measured = std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .filter(|t| *t > 0);
        let mounts = std::fs::read_to_string("/proc/mounts")
            .map(|t| {
                t.lines()
                    .filter_map(|l| {
                        let mut f = l.split_whitespace();
                        let _device = f.next()?;
                        Some((f.next()?.to_owned(), f.next()?.to_owned()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            cores,
            cpu_model,
            clk_tck: measured.unwrap_or(100),
            clk_tck_measured: measured.is_some(),
            mounts,
        }
    }

    /// The file-system type holding `path` (the longest matching mount point).
    fn filesystem_of(&self, path: &Path) -> Option<String> {
        let path = path.canonicalize().ok()?;
        self.mounts
            .iter()
            .filter(|(mount, _)| path.starts_with(mount))
            .max_by_key(|(mount, _)| mount.len())
            .map(|(_, fs)| fs.clone())
    }

    fn json(&self) -> Value {
        json!({
            "cores": self.cores,
            "cpu_model": self.cpu_model,
            "clk_tck": self.clk_tck,
            "clk_tck_assumed": !self.clk_tck_measured,
            "os": std::env::consts::OS,
            "arch": std::env::consts::ARCH,
            "debug_build": cfg!(debug_assertions),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------------

fn rate_text(rate: u64) -> String {
    if rate == 0 {
        "max".into()
    } else {
        format!("{rate}/s")
    }
}

fn round(v: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (v * f).round() / f
}

fn opt_round(v: Option<f64>, places: i32) -> Value {
    v.map_or(Value::Null, |v| json!(round(v, places)))
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "OK"
    } else {
        "MISS"
    }
}

/// Whether a phase's conditions are those the targets are stated for.
fn throughput_target_applies(spec: &PhaseSpec) -> bool {
    spec.fanout == 1 && spec.rate == 0
}

fn latency_target_applies(spec: &PhaseSpec) -> bool {
    spec.rate == TARGET_STEADY_RATE
}

fn phase_json(r: &PhaseReport, machine: &Machine) -> Value {
    let lat = r.latency;
    let acc = r.accept_latency;
    let mut main = json!({
        "phase": r.spec.name,
        "deliveries_per_s": round(r.deliveries_per_s, 1),
        "p50_ms": lat.map(|l| round(l.p50, 3)),
        "p99_ms": lat.map(|l| round(l.p99, 3)),
        "cpu_s_per_1000": opt_round(r.cpu_s_per_1000(), 4),
        "peak_rss_mb": opt_round(r.peak_rss_mb, 1),
        "complete": r.complete(),
        "n": r.spec.events,
        "fanout": r.spec.fanout,
        "rate": r.spec.rate,
        "payload_bytes": r.spec.payload_bytes,
        "concurrency": r.spec.concurrency,
        "duration_s": round(r.duration_s, 3),
        "duration_cap_s": r.spec.duration_cap_s,
        "drain_timeout_s": r.spec.drain_timeout_s,
        "cores": machine.cores,
    });
    let details = json!({
        "sent": r.sent,
        "accepted": r.accepted,
        "errors": r.errors,
        "error_samples": r.error_samples,
        "stopped_by_time_cap": r.stopped_by_time_cap,
        "send_s": round(r.send_s, 3),
        "accepted_per_s": round(r.accepted_per_s, 1),
        "expected_deliveries": r.expected,
        "deliveries": r.delivered,
        "missing": r.expected.saturating_sub(r.delivered),
        "duplicates": r.duplicates,
        "unmatched": r.unmatched,
        "delivered_before_202": r.early_arrivals,
        "p90_ms": lat.map(|l| round(l.p90, 3)),
        "max_ms": lat.map(|l| round(l.max, 3)),
        "mean_ms": lat.map(|l| round(l.mean, 3)),
        "accept_p50_ms": acc.map(|l| round(l.p50, 3)),
        "accept_p99_ms": acc.map(|l| round(l.p99, 3)),
        "herald_cpu_s": opt_round(r.herald_cpu_s, 2),
        "herald_cpu_cores": opt_round(r.herald_cores(), 2),
        "bench_cpu_s": opt_round(r.bench_cpu_s, 2),
        "other_cpu_cores": opt_round(r.other_cores(machine.cores), 2),
        "machine_busy_pct": opt_round(r.machine_busy_pct, 1),
        "machine_iowait_pct": opt_round(r.machine_iowait_pct, 1),
        "herald_disk_write_mb": opt_round(r.disk_write_mb, 1),
        "herald_threads_cpu_s": r.threads_cpu_s.iter().map(|(k, v)| (k.clone(), json!(round(*v, 2)))).collect::<serde_json::Map<_, _>>(),
        "herald_metrics": r.herald_metrics,
        "receiver_connections": r.receiver_connections,
        "data_fs": r.data_fs,
        "data_dir": r.data_dir.as_ref().map(|p| p.display().to_string()),
    });
    if let (Value::Object(map), Value::Object(more)) = (&mut main, details) {
        map.extend(more);
    }
    main
}

fn targets_json() -> Value {
    json!({
        "deliveries_per_s_min": TARGET_DELIVERIES_PER_S,
        "deliveries_per_s_conditions": "fanout 1, as fast as possible",
        "p99_ms_max": TARGET_P99_MS,
        "p99_conditions": format!("a steady {TARGET_STEADY_RATE} events/s"),
        "cpu_s_per_1000_max": TARGET_CPU_S_PER_1000,
        "peak_rss_mb_max": TARGET_RSS_MB,
    })
}

fn summary_json(
    reports: &[PhaseReport],
    machine: &Machine,
    total_s: f64,
    two_phase: bool,
) -> Value {
    let phases: Vec<Value> = reports.iter().map(|r| phase_json(r, machine)).collect();
    let peak_rss = reports
        .iter()
        .filter_map(|r| r.peak_rss_mb)
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
    let complete = reports.iter().all(PhaseReport::complete);
    let mut out = if two_phase {
        let thr = reports
            .iter()
            .find(|r| throughput_target_applies(&r.spec))
            .or(reports.first());
        let lat = reports
            .iter()
            .find(|r| latency_target_applies(&r.spec))
            .or(reports.last());
        json!({
            "deliveries_per_s": thr.map(|r| round(r.deliveries_per_s, 1)),
            "p50_ms": lat.and_then(|r| r.latency).map(|l| round(l.p50, 3)),
            "p99_ms": lat.and_then(|r| r.latency).map(|l| round(l.p99, 3)),
            "cpu_s_per_1000": opt_round(thr.and_then(PhaseReport::cpu_s_per_1000), 4),
            "peak_rss_mb": opt_round(peak_rss, 1),
            "complete": complete,
            "mode": "default",
            "figures_from": {
                "deliveries_per_s": thr.map(|r| r.spec.name),
                "cpu_s_per_1000": thr.map(|r| r.spec.name),
                "p50_ms": lat.map(|r| r.spec.name),
                "p99_ms": lat.map(|r| r.spec.name),
                "peak_rss_mb": "max over phases",
            },
            "n": reports.iter().map(|r| r.spec.events).sum::<u64>(),
            "fanout": reports.first().map(|r| r.spec.fanout),
            "payload_bytes": reports.first().map(|r| r.spec.payload_bytes),
            "concurrency": reports.first().map(|r| r.spec.concurrency),
            "cores": machine.cores,
        })
    } else {
        phases.first().cloned().unwrap_or_else(|| json!({}))
    };
    if let Value::Object(map) = &mut out {
        if two_phase {
            map.insert("phases".into(), json!(phases));
        } else {
            map.insert("mode".into(), json!("single"));
        }
        map.insert("total_s".into(), json!(round(total_s, 1)));
        map.insert("machine".into(), machine.json());
        map.insert("targets".into(), targets_json());
        map.insert("herald_version".into(), json!(env!("CARGO_PKG_VERSION")));
    }
    out
}

fn print_phase(r: &PhaseReport, machine: &Machine) {
    println!();
    println!(
        "phase {}: n={} fanout={} rate={} payload={} B concurrency={} cores={}",
        r.spec.name,
        r.spec.events,
        r.spec.fanout,
        rate_text(r.spec.rate),
        r.spec.payload_bytes,
        r.spec.concurrency,
        machine.cores
    );
    println!(
        "  sent {} (in {:.1} s{}), accepted {} ({:.0}/s), errors {}{}",
        r.sent,
        r.send_s,
        if r.stopped_by_time_cap {
            ", stopped by the time cap"
        } else {
            ""
        },
        r.accepted,
        r.accepted_per_s,
        r.errors,
        if r.error_samples.is_empty() {
            String::new()
        } else {
            format!(" e.g. {:?}", r.error_samples)
        }
    );
    let missing = r.expected.saturating_sub(r.delivered);
    println!(
        "  delivered {}/{} in {:.2} s{}{}",
        r.delivered,
        r.expected,
        r.duration_s,
        if missing > 0 {
            format!(
                " — {missing} MISSING after the {} s drain timeout",
                r.spec.drain_timeout_s
            )
        } else {
            String::new()
        },
        if r.duplicates > 0 {
            format!(", {} duplicates", r.duplicates)
        } else {
            String::new()
        }
    );
    let thr_note = if throughput_target_applies(&r.spec) {
        verdict(r.deliveries_per_s >= TARGET_DELIVERIES_PER_S).to_owned()
    } else {
        "(target is for F=1 at max rate)".to_owned()
    };
    println!("  deliveries/s             {:>12.1}   target ≥ {TARGET_DELIVERIES_PER_S:.0} (F=1)   {thr_note}", r.deliveries_per_s);
    match r.latency {
        Some(l) => {
            let note = if latency_target_applies(&r.spec) {
                verdict(l.p99 <= TARGET_P99_MS).to_owned()
            } else {
                format!("(target is for a steady {TARGET_STEADY_RATE}/s)")
            };
            println!(
                "  latency p50 / p99 (ms)   {:>7.2} / {:<8.2} target p99 ≤ {TARGET_P99_MS:.0} ms at {TARGET_STEADY_RATE}/s   {note}",
                l.p50, l.p99
            );
            println!(
                "    (p90 {:.2}, max {:.2}, mean {:.2} ms; accepted→delivered)",
                l.p90, l.max, l.mean
            );
        }
        None => println!("  latency                  no deliveries"),
    }
    if let Some(a) = r.accept_latency {
        println!(
            "  intake 202 p50 / p99     {:>7.2} / {:.2} ms (sent→202)",
            a.p50, a.p99
        );
    }
    match r.cpu_s_per_1000() {
        Some(c) => println!(
            "  CPU-s per 1,000 deliv.   {c:>12.4}   target ≤ {TARGET_CPU_S_PER_1000}   {}",
            verdict(c <= TARGET_CPU_S_PER_1000)
        ),
        None => println!("  CPU-s per 1,000 deliv.   unavailable"),
    }
    match r.peak_rss_mb {
        Some(m) => println!(
            "  peak RSS (MB)            {m:>12.1}   target ≤ {TARGET_RSS_MB:.0}    {}",
            verdict(m <= TARGET_RSS_MB)
        ),
        None => println!("  peak RSS                 unavailable"),
    }
    let fmt = |v: Option<f64>| v.map_or("?".to_owned(), |v| format!("{v:.1}"));
    println!(
        "  CPU: Herald {} s ({} cores busy), bench process {} s; machine busy {} %, iowait {} %; other work {} cores",
        fmt(r.herald_cpu_s),
        fmt(r.herald_cores()),
        fmt(r.bench_cpu_s),
        fmt(r.machine_busy_pct),
        fmt(r.machine_iowait_pct),
        fmt(r.other_cores(machine.cores))
    );
    if r.other_cores(machine.cores).is_some_and(|o| o > 0.5) {
        println!("  warning: other work kept the machine busy during this phase; the figures are disturbed");
    }
    let threads: Vec<String> = r
        .threads_cpu_s
        .iter()
        .filter(|(_, v)| **v >= 0.05)
        .map(|(k, v)| format!("{k} {v:.1} s"))
        .collect();
    println!("  Herald threads: {}", threads.join(", "));
    println!(
        "  Herald wrote {} MB to disk ({}); receiver saw {} connections",
        fmt(r.disk_write_mb),
        r.data_fs.as_deref().unwrap_or("?"),
        r.receiver_connections
    );
}

fn print_summary(summary: &Value) {
    println!();
    println!("summary (targets: ≥ {TARGET_DELIVERIES_PER_S:.0} deliveries/s at F=1; p99 ≤ {TARGET_P99_MS:.0} ms at a steady {TARGET_STEADY_RATE}/s; ≤ {TARGET_CPU_S_PER_1000} CPU-s per 1,000 deliveries; RSS ≤ {TARGET_RSS_MB:.0} MB)");
    let get = |k: &str| summary.get(k).and_then(Value::as_f64);
    let show = |v: Option<f64>| v.map_or("n/a".to_owned(), |v| format!("{v}"));
    println!(
        "  deliveries/s {}   p50 {} ms   p99 {} ms   CPU-s/1000 {}   peak RSS {} MB   complete {}",
        show(get("deliveries_per_s")),
        show(get("p50_ms")),
        show(get("p99_ms")),
        show(get("cpu_s_per_1000")),
        show(get("peak_rss_mb")),
        summary
            .get("complete")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_is_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&v, 99.5), Some(100.0));
        let small = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&small, 50.0), Some(2.0));
        assert_eq!(percentile(&small, 51.0), Some(3.0));
        assert_eq!(percentile(&small, 99.0), Some(4.0));
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&small, 150.0), Some(4.0));
        assert_eq!(percentile(&small, -3.0), Some(1.0));
    }

    #[test]
    fn percentiles_sort_their_input() {
        let p = Percentiles::of(vec![5.0, 1.0, 4.0, 2.0, 3.0]).unwrap();
        assert_eq!((p.p50, p.max, p.mean), (3.0, 5.0, 3.0));
        assert!(Percentiles::of(Vec::new()).is_none());
    }

    #[test]
    fn stat_line_gives_utime_plus_stime() {
        let line = "1234 (herald (x) y) S 1 1234 1234 0 -1 4194560 2000 0 0 0 250 50 0 0 20 0 8 0 100 1000000 2000";
        assert_eq!(parse_stat_ticks(line), Some(300));
        assert_eq!(parse_stat_ticks("garbage"), None);
    }

    #[test]
    fn vm_hwm_is_read_in_kb() {
        let status =
            "Name:\therald\nVmPeak:\t  100000 kB\nVmHWM:\t   34816 kB\nVmRSS:\t   30000 kB\n";
        assert_eq!(parse_vm_hwm_kb(status), Some(34816));
        assert_eq!(parse_vm_hwm_kb("Name: x\n"), None);
    }

    #[test]
    fn payload_data_has_the_requested_size() {
        let p = Payload::new(256);
        let body: Value = serde_json::from_slice(&p.body(12345)).unwrap();
        assert_eq!(body["type"], "bench.event");
        assert_eq!(serde_json::to_string(&body["data"]).unwrap().len(), 256);
        let tiny: Value = serde_json::from_slice(&Payload::new(0).body(7)).unwrap();
        assert_eq!(tiny["data"]["seq"], 7);
    }

    #[test]
    fn flags_choose_one_phase_and_no_flags_two() {
        let base = BenchOptions {
            concurrency: 64,
            drain_timeout_s: 30,
            ..BenchOptions::default()
        };
        let two = base.phases();
        assert_eq!(two.len(), 2);
        assert!(throughput_target_applies(&two[0]) && latency_target_applies(&two[1]));
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

    #[test]
    fn arrivals_are_matched_once_per_subscription() {
        let t0 = Instant::now();
        let acc = |id: &str, ms: u64| Accepted {
            id: id.into(),
            sent: t0,
            accepted: t0 + Duration::from_millis(ms),
        };
        let accepted = vec![acc("evt_a", 0), acc("evt_b", 10)];
        let at = |sub: u32, ms: u64| Arrival {
            subscription: sub,
            peer_port: 1000 + sub as u16,
            at: t0 + Duration::from_millis(ms),
        };
        let mut arrivals = HashMap::new();
        arrivals.insert("evt_a".to_owned(), vec![at(0, 5), at(1, 7), at(0, 9)]);
        arrivals.insert("evt_b".to_owned(), vec![at(0, 8)]);
        arrivals.insert("evt_zzz".to_owned(), vec![at(0, 1)]);
        let s = join_arrivals(&accepted, &arrivals, 2);
        assert_eq!(
            (
                s.delivered,
                s.duplicates,
                s.unmatched,
                s.early,
                s.connections
            ),
            (3, 1, 1, 1, 2)
        );
        let mut l = s.latencies_ms;
        l.sort_by(f64::total_cmp);
        assert_eq!(l, vec![0.0, 5.0, 7.0]);
    }
}
