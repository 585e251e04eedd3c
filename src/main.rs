//! `herald`: run Herald in one process, verify deliveries, benchmark.
#![forbid(unsafe_code)]

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use herald::dev::{self, DevConfig};
use herald::verify::{parse_delivery, verify_delivery};
use herald_core::retry::RetryPolicy;
use herald_core::signing::SigningSecret;
use herald_core::AddressPolicy;

#[derive(Debug, Parser)]
#[command(name = "herald", version, about = "Signed, retried webhook delivery")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// API, intake, fan-out and delivery in one process on an embedded store.
    Dev(DevArgs),
    /// Check the signature of a received delivery (headers, empty line, body) from a file or stdin.
    Verify(VerifyArgs),
    /// Benchmark: run Herald as a child on a fresh data folder, load it, report throughput, latency, CPU, RSS.
    Bench(BenchArgs),
}

#[derive(Debug, clap::Args)]
struct DevArgs {
    /// Address to listen on.
    #[arg(long, env = "HERALD_ADDR", default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Folder of the embedded store and queue.
    #[arg(long, env = "HERALD_DATA_DIR", default_value = "./.herald")]
    data_dir: PathBuf,
    /// The development tenant's API key (generated and kept in the data folder when not set).
    #[arg(long, env = "HERALD_DEV_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Allow plain http:// callback URLs (default true in dev).
    #[arg(long, env = "HERALD_ALLOW_HTTP", default_value_t = true, action = clap::ArgAction::Set)]
    allow_http: bool,
    /// Allow private and loopback callback addresses (default true in dev).
    #[arg(long, env = "HERALD_ALLOW_PRIVATE", default_value_t = true, action = clap::ArgAction::Set)]
    allow_private: bool,
    /// Retry delays after the first try, e.g. `5s,5m,30m,2h,5h,10h,10h` (the default).
    #[arg(long, env = "HERALD_RETRY_SCHEDULE")]
    retry_schedule: Option<String>,
    /// Per-attempt timeout in milliseconds.
    #[arg(long, env = "HERALD_ATTEMPT_TIMEOUT_MS", default_value_t = 15_000)]
    attempt_timeout_ms: u64,
    /// Deliveries in flight at once.
    #[arg(long, env = "HERALD_DELIVERY_CONCURRENCY", default_value_t = 512)]
    delivery_concurrency: usize,
    /// Log format: `pretty` or `json`.
    #[arg(long, env = "HERALD_LOG_FORMAT", default_value = "pretty")]
    log_format: String,
}

#[derive(Debug, clap::Args)]
struct VerifyArgs {
    /// The subscription's signing secret (`whsec_…`).
    #[arg(long, env = "HERALD_VERIFY_SECRET", hide_env_values = true)]
    secret: String,
    /// File holding the delivery; stdin when absent.
    #[arg(long)]
    file: Option<PathBuf>,
    /// Accepted clock difference in seconds (0 turns the check off).
    #[arg(long, default_value_t = 300)]
    tolerance_secs: i64,
}

#[derive(Debug, clap::Args)]
struct BenchArgs {
    /// Events to send (any of these five flags runs one phase with them instead of the default two).
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
    /// The Herald binary to benchmark (runs `<bin> dev`); default: this executable.
    #[arg(long)]
    herald_bin: Option<PathBuf>,
    /// Keep the temporary data folders and Herald's logs.
    #[arg(long)]
    keep_data: bool,
    /// Create the temporary data folders here (default: the system temp folder).
    #[arg(long)]
    data_parent: Option<PathBuf>,
}

fn init_tracing(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Logs go to stderr so stdout carries only what the command prints (URL, key, results).
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    if format == "json" {
        builder.json().flatten_event(true).init();
    } else {
        builder.compact().init();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Dev(args) => run_dev(args).await,
        Command::Verify(args) => run_verify(args),
        Command::Bench(a) => {
            herald::bench::run(herald::bench::BenchOptions {
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
            })
            .await
        }
    }
}

async fn run_dev(args: DevArgs) -> anyhow::Result<()> {
    init_tracing(&args.log_format);
    let mut config = DevConfig::new(args.addr, args.data_dir);
    config.dev_api_key = args.api_key;
    config.address_policy = AddressPolicy {
        allow_http: args.allow_http,
        allow_private: args.allow_private,
    };
    if let Some(schedule) = args.retry_schedule {
        config.retry = RetryPolicy::parse_schedule(&schedule)?;
    }
    config.attempt_timeout = Duration::from_millis(args.attempt_timeout_ms);
    config.workers.delivery_concurrency = args.delivery_concurrency.max(1);
    if config.address_policy.allow_http || config.address_policy.allow_private {
        tracing::warn!(
            allow_http = config.address_policy.allow_http,
            allow_private = config.address_policy.allow_private,
            "development mode: plain http and private/loopback targets are allowed; never run like this in production"
        );
    }
    let running = dev::start(config).await?;
    println!("Herald is running at {}", running.url());
    println!("Development API key: {}", running.api_key);
    println!(
        "Try: curl -H 'Authorization: Bearer {}' {}/v1/event-types",
        running.api_key,
        running.url()
    );
    let state_url = running.url();
    tokio::select! {
        _ = shutdown_signal() => {
            tracing::info!(url = %state_url, "shutting down");
            running.stop().await;
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

fn run_verify(args: VerifyArgs) -> anyhow::Result<()> {
    let secret = SigningSecret::parse(&args.secret).context("reading --secret")?;
    let mut input = Vec::new();
    match &args.file {
        Some(path) => {
            input = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?
        }
        None => {
            std::io::stdin()
                .read_to_end(&mut input)
                .context("reading stdin")?;
        }
    }
    let delivery = parse_delivery(&input)?;
    let now = jiff::Timestamp::now().as_second();
    let tolerance = if args.tolerance_secs <= 0 {
        i64::MAX / 2
    } else {
        args.tolerance_secs
    };
    match verify_delivery(&secret, &delivery, now, tolerance) {
        Ok(()) => {
            println!("valid: the signature of {} matches", delivery.id);
            Ok(())
        }
        Err(e) => {
            println!("invalid: {e}");
            std::process::exit(1);
        }
    }
}
