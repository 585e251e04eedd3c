//! One phase, start to end: a fresh data folder, the receiver, Herald as a child process, the
//! subscriptions, a warm-up that must arrive, then the measured load, the drain, and the figures
//! taken from what the load generator, the receiver and `/proc` saw.
//!
//! Setup and warm-up stay outside the measurement: the CPU snapshots are taken after the warm-up
//! and after the drain, and the receiver forgets the warm-up's arrivals. A phase never leaves
//! Herald running: the child is killed when the phase ends, also on an error.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::json;

use crate::child::{free_port, log_tail, scrape_metrics, wait_healthy, HeraldChild};
use crate::load::{progress_loop, send_events, LoadCounters, Payload, REQUEST_TIMEOUT};
use crate::machine::Machine;
use crate::options::{BenchOptions, PhaseSpec};
use crate::process::{read_vm_hwm_kb, Snapshot};
use crate::receiver::{join_arrivals, start_receiver, Receiver};
use crate::report::{rate_text, Percentiles, PhaseReport};

/// Events sent (and waited for) before the measured phase: opens connections, fills caches.
const WARMUP_EVENTS: u64 = 50;
const WARMUP_TIMEOUT: Duration = Duration::from_secs(15);

/// Herald as a child process on a fresh data folder, the receiver, and a client to Herald: what a
/// phase and the soak share. Dropping it kills Herald; [`Harness::finish`] also stops the receiver
/// and keeps or removes the folder.
pub struct Harness {
    temp: tempfile::TempDir,
    pub data_dir: PathBuf,
    pub log_path: PathBuf,
    pub data_fs: Option<String>,
    pub receiver: Arc<Receiver>,
    receiver_addr: SocketAddr,
    receiver_stop: tokio::sync::oneshot::Sender<()>,
    pub child: HeraldChild,
    pub client: reqwest::Client,
    pub base: String,
    pub api_key: String,
}

impl Harness {
    /// Starts the receiver and Herald (with `HERALD_RETENTION` when the options give one) and
    /// waits until Herald answers.
    pub async fn start(
        options: &BenchOptions,
        bin: &Path,
        machine: &Machine,
        concurrency: usize,
    ) -> anyhow::Result<Self> {
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
        let env: Vec<(String, String)> = options
            .retention
            .iter()
            .map(|r| ("HERALD_RETENTION".to_owned(), r.clone()))
            .collect();
        let mut child =
            HeraldChild::spawn_with_env(bin, herald_addr, &data_dir, &api_key, &log_path, &env)?;
        let base = format!("http://{herald_addr}");
        let client = reqwest::Client::builder()
            .no_proxy()
            .http1_only()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(concurrency)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .context("building the HTTP client")?;
        if let Err(e) = wait_healthy(&client, &base, &mut child).await {
            bail!(
                "{e:#}\n--- the end of Herald's log ---\n{}",
                log_tail(&log_path)
            );
        }
        Ok(Self {
            temp,
            data_dir,
            log_path,
            data_fs,
            receiver,
            receiver_addr,
            receiver_stop,
            child,
            client,
            base,
            api_key,
        })
    }

    /// Creates `fanout` subscriptions to the receiver, each matching every bench event.
    pub async fn subscribe(&self, fanout: u32) -> anyhow::Result<()> {
        for k in 0..fanout {
            let body = json!({
                "name": format!("bench {k}"),
                "platform": "custom",
                "url": format!("http://{}/hook/{k}", self.receiver_addr),
                "events": ["bench.*"],
            });
            let resp = self
                .client
                .post(format!("{}/v1/subscriptions", self.base))
                .bearer_auth(&self.api_key)
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
        Ok(())
    }

    /// A warm-up round that must arrive (connections opened, caches filled); the receiver then
    /// forgets it.
    pub async fn warm_up(
        &self,
        payload: &Payload,
        fanout: u32,
        concurrency: usize,
    ) -> anyhow::Result<()> {
        let warm_counters = Arc::new(LoadCounters::default());
        let warm = send_events(
            &self.client,
            &self.base,
            &self.api_key,
            payload,
            WARMUP_EVENTS,
            0,
            concurrency,
            Duration::from_secs(30),
            &warm_counters,
            u64::MAX / 2,
        )
        .await;
        let warm_expected = warm.accepted.len() as u64 * u64::from(fanout);
        let warm_start = Instant::now();
        let receiver = &self.receiver;
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
                log_tail(&self.log_path)
            );
        }
        receiver.reset();
        Ok(())
    }

    /// Stops Herald and the receiver; keeps the folder (and says where) or removes it.
    pub fn finish(mut self, keep: bool) -> Option<PathBuf> {
        self.child.stop();
        let _ = self.receiver_stop.send(());
        if keep {
            let path = self.temp.keep();
            eprintln!(
                "kept the data folder and Herald's log in {}",
                path.display()
            );
            Some(path)
        } else {
            None
        }
    }
}

/// Runs one phase and returns what it measured.
pub async fn run_phase(
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
    let harness = Harness::start(options, bin, machine, spec.concurrency).await?;
    harness.subscribe(spec.fanout).await?;
    let payload = Payload::new(spec.payload_bytes);
    harness
        .warm_up(&payload, spec.fanout, spec.concurrency)
        .await?;
    let (client, base, api_key) = (&harness.client, &harness.base, &harness.api_key);
    let receiver = harness.receiver.clone();

    // The measured phase.
    let pid = harness.child.pid();
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
        client,
        base,
        api_key,
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
    let herald_metrics = scrape_metrics(client, base).await;
    stop_progress.store(true, Ordering::Relaxed);
    let _ = progress.await;
    let data_fs = harness.data_fs.clone();
    let kept = harness.finish(options.keep_data);

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
    let io = match (&before.herald_io, &after.herald_io) {
        (Some(b), Some(a)) => Some(a.since(b)),
        _ => None,
    };
    let mut threads_cpu_s = BTreeMap::new();
    for (tid, (name, ticks)) in &after.threads {
        let start = before.threads.get(tid).map(|(_, t)| *t).unwrap_or(0);
        *threads_cpu_s.entry(name.clone()).or_insert(0.0) +=
            ticks.saturating_sub(start) as f64 / clk;
    }

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
        io,
        receiver_connections: stats.connections,
        threads_cpu_s,
        herald_metrics,
        data_dir: kept,
        data_fs,
    })
}
