//! `herald-bench`: load Herald running as a child process and report what it can do.
//!
//! The bench starts Herald (`<herald-bin> dev`; by default the `herald` binary next to this one,
//! so `cargo build --release -p herald -p herald-bench` builds both) as a child process on a fresh
//! temporary data folder and a free port on 127.0.0.1, so Herald's CPU time and peak RSS can be
//! read from `/proc/<pid>` apart from the load generator and the receiver, which run here, in the
//! bench process. The receiver is an axum server on 127.0.0.1 answering 204 and noting, per
//! `webhook-id` (the event id), when each delivery arrived. The load generator posts `bench.event`
//! events with bounded concurrency, either as fast as possible or at a fixed rate, and notes when
//! each 202 arrived. Latency of one delivery = its arrival at the receiver − the arrival of its
//! event's 202; both are `Instant`s of this process.
//!
//! Without flags it runs three phases (about a minute): "throughput" (F=1, as fast as possible),
//! "fanout10" (F=10, as fast as possible) and "latency" (F=1, a steady 1,000 events/s). With any of `--events`, `--fanout`, `--rate`,
//! `--payload-bytes`, `--duration-s` it runs one phase with those. The last stdout line is one JSON
//! object with the figures and the conditions; progress goes to stderr once per second.
//!
//! Every phase reports the bytes Herald sent to the disk per delivery (`write_bytes` of
//! `/proc/<pid>/io` over the measured phase, with `read_bytes`, `rchar` and `wchar` beside it).
//! `--retention` sets Herald's `HERALD_RETENTION` (a short one keeps the sweeper busy during the
//! phases); `--soak` runs the soak instead ([`soak`]).
//!
//! CPU time is `utime + stime` from `/proc/<pid>/stat` in clock ticks (`getconf CLK_TCK`, 100 when
//! that cannot be run), taken as the difference between the start and the end of the measured phase
//! (after setup and warm-up). Peak RSS is `VmHWM` from `/proc/<pid>/status`. Both need Linux; on
//! other systems those figures are absent (`null`).
//!
//! The modules follow the run: [`options`] (what was asked), [`phase`] (one phase, start to end),
//! [`child`] (Herald as a child process), [`load`] (the load generator), [`receiver`] (the
//! receiver), [`process`] and [`machine`] (readings from `/proc`), [`report`] (the figures, the
//! printed lines and the JSON summary). This tool is not part of the `herald` binary and never
//! ships with it.
//!
//! `--store aws` measures something else: what a delivery costs on DynamoDB and SQS, counted by
//! Herald's own meter against moto ([`aws`] runs it, [`cost`] does the arithmetic and holds the
//! dated prices and the targets).
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod aws;
mod child;
mod cost;
mod load;
mod machine;
mod options;
mod phase;
mod process;
mod receiver;
mod report;
mod soak;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Parser;

use crate::machine::Machine;
use crate::options::BenchOptions;
use crate::phase::run_phase;
use crate::report::{print_phase, print_summary, summary_json};

/// Benchmark Herald: run it as a child on a fresh data folder, load it, report throughput,
/// latency, CPU, RSS.
#[derive(Debug, Parser)]
#[command(name = "herald-bench", version)]
struct Cli {
    /// Events to send (any of these five flags runs one phase with them instead of the default three).
    #[arg(long)]
    events: Option<u64>,
    /// Subscriptions every event matches.
    #[arg(long)]
    fanout: Option<u32>,
    /// Events per second; 0 = as fast as possible.
    #[arg(long)]
    rate: Option<u64>,
    /// Size of each event's `data` in bytes.
    #[arg(long)]
    payload_bytes: Option<usize>,
    /// Stop sending after this many seconds.
    #[arg(long)]
    duration_s: Option<u64>,
    /// Intake requests in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds to wait for deliveries after sending ended.
    #[arg(long, default_value_t = 30)]
    drain_timeout_s: u64,
    /// The Herald binary to benchmark (runs `<bin> dev`); default: the `herald` next to this
    /// executable.
    #[arg(long)]
    herald_bin: Option<PathBuf>,
    /// Keep the temporary data folders and Herald's logs.
    #[arg(long)]
    keep_data: bool,
    /// Create the temporary data folders here (default: the system temp folder).
    #[arg(long)]
    data_parent: Option<PathBuf>,
    /// Herald's retention (`HERALD_RETENTION`, e.g. `1m`, `30d`); Herald's default (30 days)
    /// when absent. A short one keeps the sweeper busy during the phases.
    #[arg(long)]
    retention: Option<String>,
    /// `embedded` (throughput, latency, CPU, RSS) or `aws`: what a delivery costs on DynamoDB and
    /// SQS, counted by Herald's meter against moto (or the emulator at `AWS_ENDPOINT_URL`).
    #[arg(long, value_enum, default_value_t = Store::Embedded)]
    store: Store,
    /// With `--store aws`: the moto_server to start (default: `.venv/bin/moto_server` of the
    /// workspace).
    #[arg(long)]
    moto_server: Option<PathBuf>,
    /// With `--store aws`: the Lambda functions' memory (template.yaml's `MemorySize`).
    #[arg(long, default_value_t = 256)]
    lambda_memory_mb: u32,
    /// With `--store aws`: the billed duration assumed per Lambda invocation (not measured).
    #[arg(long, default_value_t = 50.0)]
    lambda_ms: f64,
    /// With `--store aws`: leave out the retry phase.
    #[arg(long)]
    skip_retry: bool,
    /// Soak instead of phases: N deliveries on one Herald with a short retention (`--retention`,
    /// default `1m`), then `--idle` seconds idle, printing the data folder's size over time and
    /// the ratio of its final size to its size after `--soak-baseline` deliveries. Takes
    /// `--fanout`, `--rate` and `--payload-bytes` too.
    #[arg(long)]
    soak: bool,
    /// With `--soak`: deliveries to make.
    #[arg(long, default_value_t = 1_000_000)]
    soak_deliveries: u64,
    /// With `--soak`: deliveries after which the folder's baseline size is read.
    #[arg(long, default_value_t = 100_000)]
    soak_baseline: u64,
    /// With `--soak`: seconds idle after the last delivery before the final size.
    #[arg(long, default_value_t = 120)]
    idle: u64,
    /// With `--soak`: seconds between the printed sizes.
    #[arg(long, default_value_t = 10)]
    sample_s: u64,
    /// With `--soak`: the most seconds of sending.
    #[arg(long, default_value_t = 1800)]
    soak_max_s: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Store {
    Embedded,
    Aws,
}

impl Cli {
    fn aws_options(&self) -> aws::AwsOptions {
        aws::AwsOptions {
            moto_server: self.moto_server.clone(),
            events: self.events,
            concurrency: self.concurrency.clamp(1, 64),
            // moto is slow: never less than two minutes for a phase's deliveries.
            drain_timeout_s: self.drain_timeout_s.max(120),
            lambda: cost::LambdaModel {
                memory_mb: self.lambda_memory_mb,
                ms_per_invocation: self.lambda_ms,
                batch_size: 10,
            },
            keep_data: self.keep_data,
            data_parent: self.data_parent.clone(),
            skip_retry: self.skip_retry,
        }
    }
}

impl Cli {
    fn soak_options(&self) -> soak::SoakOptions {
        soak::SoakOptions {
            deliveries: self.soak_deliveries,
            baseline: self.soak_baseline.min(self.soak_deliveries),
            retention: self.retention.clone().unwrap_or_else(|| "1m".into()),
            idle_s: self.idle,
            rate: self.rate.unwrap_or(0),
            fanout: self.fanout.unwrap_or(1),
            payload_bytes: self.payload_bytes.unwrap_or(256),
            sample_s: self.sample_s,
            max_send_s: self.soak_max_s,
        }
    }
}

impl From<Cli> for BenchOptions {
    fn from(a: Cli) -> Self {
        Self {
            events: a.events,
            fanout: a.fanout,
            rate: a.rate,
            payload_bytes: a.payload_bytes,
            duration_s: a.duration_s,
            concurrency: a.concurrency,
            drain_timeout_s: a.drain_timeout_s,
            herald_bin: a.herald_bin,
            keep_data: a.keep_data,
            data_parent: a.data_parent,
            retention: a.retention,
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if cli.store == Store::Aws {
        if cli.events.is_some_and(|n| n == 0 || n > 10_000) {
            bail!("--events must be 1 to 10,000 with --store aws");
        }
        let bin = match &cli.herald_bin {
            Some(p) => p.clone(),
            None => herald_next_to_this_executable()?,
        };
        return aws::run(&cli.aws_options(), &bin).await;
    }
    if cli.soak {
        let soak = cli.soak_options();
        soak.validate()?;
        let options: BenchOptions = cli.into();
        let bin = match &options.herald_bin {
            Some(p) => p.clone(),
            None => herald_next_to_this_executable()?,
        };
        let summary = soak::run_soak(&soak, &options, &bin, &Machine::detect()).await?;
        println!("{}", serde_json::to_string(&summary)?);
        return Ok(());
    }
    run(cli.into()).await
}

/// Runs the benchmark and prints the report; the last stdout line is the JSON object.
async fn run(options: BenchOptions) -> anyhow::Result<()> {
    options.validate()?;
    let bin = match &options.herald_bin {
        Some(p) => p.clone(),
        None => herald_next_to_this_executable()?,
    };
    let machine = Machine::detect();
    eprintln!(
        "herald-bench: {} cores ({}), Herald binary {}",
        machine.cores,
        machine.cpu_model.as_deref().unwrap_or("unknown CPU"),
        bin.display()
    );
    if !machine.clk_tck_measured {
        eprintln!("note: `getconf CLK_TCK` could not be run; assuming 100 clock ticks per second");
    }
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; use `cargo build --release -p herald -p herald-bench` for real figures");
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

/// The `herald` binary in the folder of this executable: cargo builds both into the same target
/// folder (`target/release/herald` beside `target/release/herald-bench`).
fn herald_next_to_this_executable() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("finding the herald-bench executable")?;
    let bin = me.with_file_name(format!("herald{}", std::env::consts::EXE_SUFFIX));
    if !bin.is_file() {
        bail!(
            "no herald binary at {} (build it with `cargo build --release -p herald -p herald-bench`, or pass --herald-bin)",
            bin.display()
        );
    }
    Ok(bin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn flags_reach_the_options_with_the_old_defaults() {
        let options: BenchOptions = Cli::try_parse_from([
            "herald-bench",
            "--events",
            "2000",
            "--herald-bin",
            "/opt/herald",
        ])
        .unwrap()
        .into();
        assert_eq!(options.events, Some(2000));
        assert_eq!(options.herald_bin, Some(PathBuf::from("/opt/herald")));
        assert_eq!((options.concurrency, options.drain_timeout_s), (64, 30));
        assert!(!options.keep_data && options.data_parent.is_none());
    }

    #[test]
    fn a_short_soak_takes_its_numbers_from_the_flags() {
        let cli = Cli::try_parse_from([
            "herald-bench",
            "--soak",
            "--soak-deliveries",
            "2000",
            "--soak-baseline",
            "500",
            "--retention",
            "5s",
            "--idle",
            "10",
        ])
        .unwrap();
        let soak = cli.soak_options();
        assert!(cli.soak);
        assert_eq!(
            (
                soak.deliveries,
                soak.baseline,
                soak.retention.as_str(),
                soak.idle_s
            ),
            (2000, 500, "5s", 10)
        );
        soak.validate().unwrap();
        let options: BenchOptions = cli.into();
        assert_eq!(options.retention.as_deref(), Some("5s"));
    }
}
