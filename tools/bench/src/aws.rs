//! `herald-bench --store aws`: what a delivery costs on DynamoDB and SQS, counted by Herald itself.
//!
//! The run: an emulator (moto from the test venv, started here on a free port of 127.0.0.1 and
//! stopped at the end; or the endpoint in `AWS_ENDPOINT_URL`, left alone), then per phase a fresh
//! table and queues from `herald aws init`, and `herald dev --store aws` on them with the meter on
//! (`HERALD_METER_AWS=1`). Setup and a warm-up round stay outside the measurement: the meter's
//! counters are read from `/metrics` once everything is quiet, again after the phase's deliveries
//! all succeeded and the last acks went out, and the difference is divided by the deliveries.
//! [`crate::cost`] turns that into units, requests and dollars.
//!
//! Phases (every load loop bounded by its event count and a drain timeout): fan-out 1, fan-out 10,
//! fan-out 1 with an `Idempotency-Key` on every event (intake then writes an idempotency record
//! too), batch intake (`POST /v1/events/batch`, 100 events per request) at fan-out 1 and 10, and a
//! retry phase (fan-out 1, the receiver answering 503 once per delivery, then 204).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::child::{free_port, log_tail, scrape_metrics, wait_healthy, HeraldChild};
use crate::cost::{
    Counters, LambdaModel, PerDelivery, API_GATEWAY_PER_M, DYNAMODB_RRU_PER_M, DYNAMODB_WRU_PER_M,
    LAMBDA_GB_SECOND_ARM64, LAMBDA_REQUESTS_PER_M, PRICES_AS_OF, SQS_PER_M,
};
use crate::load::{send_events, LoadCounters, Payload};
use crate::receiver::{start_receiver, Receiver};

/// ~1 KB events, as the targets are stated for.
const PAYLOAD_BYTES: usize = 1024;
const WARMUP_EVENTS: u64 = 5;
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest the bench waits for the counters to stop moving.
const SETTLE_LIMIT: Duration = Duration::from_secs(20);

/// What `--store aws` was asked for.
#[derive(Debug, Clone)]
pub struct AwsOptions {
    /// `moto_server` to start; default `.venv/bin/moto_server` of the workspace.
    pub moto_server: Option<PathBuf>,
    /// Events per phase; default 200 for fan-out 1 and the retry phase, 40 for fan-out 10.
    pub events: Option<u64>,
    pub concurrency: usize,
    pub drain_timeout_s: u64,
    pub lambda: LambdaModel,
    pub keep_data: bool,
    pub data_parent: Option<PathBuf>,
    /// Leave out the retry phase.
    pub skip_retry: bool,
}

/// How events reach Herald.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Intake {
    /// `POST /v1/events`, one event per request.
    Single,
    /// `POST /v1/events/batch`, 100 events per request.
    Batch,
}

/// One measured phase.
#[derive(Debug, Clone)]
pub struct AwsPhase {
    pub name: &'static str,
    pub events: u64,
    pub fanout: u32,
    pub intake: Intake,
    /// The receiver answers 503 to each delivery's first attempt.
    pub fail_first: bool,
    /// Each event carries an `Idempotency-Key`.
    pub idempotency_key: bool,
}

/// The phases of `--store aws`.
pub fn phases(options: &AwsOptions) -> Vec<AwsPhase> {
    let events = |default: u64| options.events.unwrap_or(default);
    let mut phases = vec![
        AwsPhase {
            name: "fan-out 1",
            events: events(200),
            fanout: 1,
            intake: Intake::Single,
            fail_first: false,
            idempotency_key: false,
        },
        AwsPhase {
            name: "fan-out 10",
            events: events(40),
            fanout: 10,
            intake: Intake::Single,
            fail_first: false,
            idempotency_key: false,
        },
        AwsPhase {
            name: "fan-out 1, Idempotency-Key",
            events: events(100),
            fanout: 1,
            intake: Intake::Single,
            fail_first: false,
            idempotency_key: true,
        },
    ];
    for (name, fanout, default) in [
        ("batch intake, fan-out 1", 1, 200),
        ("batch intake, fan-out 10", 10, 40),
    ] {
        phases.push(AwsPhase {
            name,
            events: events(default),
            fanout,
            intake: Intake::Batch,
            fail_first: false,
            idempotency_key: false,
        });
    }
    if !options.skip_retry {
        phases.push(AwsPhase {
            name: "retry once (fan-out 1)",
            events: events(100),
            fanout: 1,
            intake: Intake::Single,
            fail_first: true,
            idempotency_key: false,
        });
    }
    phases
}

/// The emulator: moto started here (stopped when dropped), or an endpoint given.
struct Emulator {
    endpoint: String,
    moto: Option<Child>,
    /// Only the emulator's defaults are filled in; a given `AWS_ENDPOINT_URL` keeps the caller's
    /// region and credentials.
    env: Vec<(String, String)>,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(mut child) = self.moto.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `.venv/bin/moto_server` of the workspace: of the current folder, or of the folder
/// `target/<profile>/herald-bench` was built in.
fn find_moto(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = given {
        return Ok(path.to_owned());
    }
    let relative = Path::new(".venv/bin/moto_server");
    let mut candidates = vec![relative.to_owned()];
    if let Ok(me) = std::env::current_exe() {
        if let Some(workspace) = me.ancestors().nth(3) {
            candidates.push(workspace.join(relative));
        }
    }
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .context("no .venv/bin/moto_server in the workspace: pass --moto-server PATH, or set AWS_ENDPOINT_URL to an emulator")
}

async fn start_emulator(options: &AwsOptions) -> anyhow::Result<Emulator> {
    let defaults = |endpoint: &str| {
        let mut env = vec![("AWS_ENDPOINT_URL".to_owned(), endpoint.to_owned())];
        for (name, value) in [
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ] {
            if std::env::var_os(name).is_none() {
                env.push((name.to_owned(), value.to_owned()));
            }
        }
        env
    };
    if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") {
        eprintln!("herald-bench: using the emulator at {endpoint} (AWS_ENDPOINT_URL)");
        return Ok(Emulator {
            env: defaults(&endpoint),
            endpoint,
            moto: None,
        });
    }
    let moto = find_moto(options.moto_server.as_deref())?;
    let port = free_port()?;
    let child = std::process::Command::new(&moto)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", moto.display()))?;
    let endpoint = format!("http://127.0.0.1:{port}");
    let emulator = Emulator {
        env: vec![
            ("AWS_ENDPOINT_URL".to_owned(), endpoint.clone()),
            ("AWS_REGION".to_owned(), "us-east-1".to_owned()),
            ("AWS_ACCESS_KEY_ID".to_owned(), "test".to_owned()),
            ("AWS_SECRET_ACCESS_KEY".to_owned(), "test".to_owned()),
            ("AWS_EC2_METADATA_DISABLED".to_owned(), "true".to_owned()),
        ],
        endpoint,
        moto: Some(child),
    };
    let started = Instant::now();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        if started.elapsed() > STARTUP_TIMEOUT {
            bail!("moto did not listen on {addr} within {STARTUP_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "herald-bench: moto ({}) on {}",
        moto.display(),
        emulator.endpoint
    );
    Ok(emulator)
}

/// `export NAME='value'` lines as `herald aws init` prints them.
pub fn parse_exports(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| line.strip_prefix("export "))
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| {
            let value = value
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .map_or_else(|| value.to_owned(), |v| v.replace("'\\''", "'"));
            (name.to_owned(), value)
        })
        .collect()
}

/// `herald aws init` on a fresh table and queue prefix; the variables it exports.
fn aws_init(
    bin: &Path,
    env: &[(String, String)],
    name: &str,
) -> anyhow::Result<Vec<(String, String)>> {
    let output = std::process::Command::new(bin)
        .args(["aws", "init", "--table", name, "--queue-prefix", name])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {} aws init", bin.display()))?;
    if !output.status.success() {
        bail!(
            "herald aws init failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let exports = parse_exports(&String::from_utf8_lossy(&output.stdout));
    if exports.len() != 3 {
        bail!("herald aws init printed {} exports, not 3", exports.len());
    }
    Ok(exports)
}

/// The metric `name` (without `herald_`), 0 when absent.
async fn metric(client: &reqwest::Client, base: &str, name: &str) -> f64 {
    scrape_metrics(client, base)
        .await
        .get(name)
        .copied()
        .unwrap_or(0.0)
}

/// Waits until `deliveries_succeeded_total` reaches `target` (or `limit` passes); the count.
async fn wait_succeeded(client: &reqwest::Client, base: &str, target: f64, limit: Duration) -> f64 {
    let start = Instant::now();
    loop {
        let done = metric(client, base, "deliveries_succeeded_total").await;
        if done >= target || start.elapsed() > limit {
            return done;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Reads the meter once its working calls (everything but empty polls) stopped moving for three
/// seconds: the last acks and sends of the deliveries counted are in, and so is the statistics
/// flush that follows a pause in the flow (`herald_app::stats`: up to two seconds after it).
async fn settled_counters(client: &reqwest::Client, base: &str) -> Counters {
    let start = Instant::now();
    let mut last = Counters::from_metrics(&scrape_metrics(client, base).await);
    let mut still = 0;
    while start.elapsed() < SETTLE_LIMIT {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = Counters::from_metrics(&scrape_metrics(client, base).await);
        if (now.working_calls() - last.working_calls()).abs() < 0.5 {
            still += 1;
            if still >= 6 {
                return now;
            }
        } else {
            still = 0;
        }
        last = now;
    }
    eprintln!("note: the AWS calls did not settle within {SETTLE_LIMIT:?}; figures may include some in flight");
    last
}

/// One phase's result.
#[derive(Debug, Clone)]
pub struct AwsPhaseReport {
    pub phase: AwsPhase,
    pub accepted: u64,
    pub succeeded: u64,
    pub seconds: f64,
    pub cost: PerDelivery,
}

async fn run_phase(
    spec: &AwsPhase,
    options: &AwsOptions,
    bin: &Path,
    emulator: &Emulator,
    serial: usize,
) -> anyhow::Result<AwsPhaseReport> {
    eprintln!(
        "\n== aws phase {}: {} events, fanout {}, payload {PAYLOAD_BYTES} B{}{}",
        spec.name,
        spec.events,
        spec.fanout,
        if spec.fail_first {
            ", receiver answers 503 once per delivery"
        } else {
            ""
        },
        if spec.idempotency_key {
            ", each with an Idempotency-Key"
        } else {
            ""
        }
    );
    let mut builder = tempfile::Builder::new();
    builder.prefix("herald-bench-aws-");
    let temp = match &options.data_parent {
        Some(parent) => builder.tempdir_in(parent),
        None => builder.tempdir(),
    }
    .context("creating the temporary data folder")?;
    let name = format!(
        "bench{}{}",
        serial,
        jiff::Timestamp::now().as_millisecond() % 1_000_000_000
    );
    let mut env = emulator.env.clone();
    env.extend(aws_init(bin, &emulator.env, &name)?);
    env.extend(
        [
            ("HERALD_STORE", "aws"),
            ("HERALD_METER_AWS", "1"),
            ("HERALD_RETRY_SCHEDULE", "1s,2s,4s"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    if spec.fail_first {
        // A receiver that fails every first request, all at once, opens the breaker, which then
        // lets one delivery through per cool-down: that measures the breaker, not a retry.
        env.push(("HERALD_BREAKER_THRESHOLD".to_owned(), "0".to_owned()));
    }

    let receiver = Arc::new(Receiver::new());
    let (receiver_addr, receiver_stop) = start_receiver(receiver.clone()).await?;
    if spec.fail_first {
        receiver.fail_first_attempts();
    }
    let port = free_port()?;
    let herald_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let api_key = herald_app::auth::generate_api_key(
        herald_core::TenantId::new(),
        "bench",
        jiff::Timestamp::now(),
    )
    .key;
    let log_path = temp.path().join("herald.log");
    let mut child = HeraldChild::spawn_with_env(
        bin,
        herald_addr,
        &temp.path().join("data"),
        &api_key,
        &log_path,
        &env,
    )?;
    let base = format!("http://{herald_addr}");
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the HTTP client")?;
    if let Err(e) = wait_healthy(&client, &base, &mut child).await {
        bail!(
            "{e:#}\n--- the end of Herald's log ---\n{}",
            log_tail(&log_path)
        );
    }
    for k in 0..spec.fanout {
        let resp = client
            .post(format!("{base}/v1/subscriptions"))
            .bearer_auth(&api_key)
            .json(&json!({
                "name": format!("bench {k}"),
                "platform": "custom",
                "url": format!("http://{receiver_addr}/hook/{k}"),
                "events": ["bench.*"],
            }))
            .send()
            .await
            .context("creating a subscription")?;
        if resp.status() != reqwest::StatusCode::CREATED {
            let status = resp.status();
            bail!(
                "creating subscription {k}: {status}: {}",
                resp.text().await.unwrap_or_default()
            );
        }
    }
    let payload = if spec.idempotency_key {
        Payload::new(PAYLOAD_BYTES).with_idempotency_keys()
    } else {
        Payload::new(PAYLOAD_BYTES)
    };
    let drain = Duration::from_secs(options.drain_timeout_s);
    let send_cap = Duration::from_secs(120);

    // Warm-up, outside the measurement: connections, the first of everything.
    let warm = send_events(
        &client,
        &base,
        &api_key,
        &payload,
        WARMUP_EVENTS,
        0,
        options.concurrency,
        send_cap,
        &Arc::new(LoadCounters::default()),
        u64::MAX / 2,
    )
    .await;
    let warm_target = (warm.accepted.len() as u64 * u64::from(spec.fanout)) as f64;
    let warmed = wait_succeeded(&client, &base, warm_target, drain).await;
    if warm.accepted.is_empty() || warmed < warm_target {
        bail!(
            "warm-up failed: {} events accepted, {warmed} of {warm_target} deliveries succeeded; errors: {:?}\n--- the end of Herald's log ---\n{}",
            warm.accepted.len(),
            warm.error_samples,
            log_tail(&log_path)
        );
    }
    let before = settled_counters(&client, &base).await;
    let succeeded_before = metric(&client, &base, "deliveries_succeeded_total").await;

    // The measured phase.
    let started = Instant::now();
    let (accepted, errors, error_samples) = match spec.intake {
        Intake::Single => {
            let load = send_events(
                &client,
                &base,
                &api_key,
                &payload,
                spec.events,
                0,
                options.concurrency,
                send_cap,
                &Arc::new(LoadCounters::default()),
                WARMUP_EVENTS,
            )
            .await;
            (load.accepted.len() as u64, load.errors, load.error_samples)
        }
        Intake::Batch => {
            send_batches(
                &client,
                &base,
                &api_key,
                &payload,
                spec.events,
                WARMUP_EVENTS,
            )
            .await
        }
    };
    let target = succeeded_before + (accepted * u64::from(spec.fanout)) as f64;
    let succeeded_after = wait_succeeded(&client, &base, target, drain).await;
    let after = settled_counters(&client, &base).await;
    let seconds = started.elapsed().as_secs_f64();
    child.stop();
    let _ = receiver_stop.send(());
    if options.keep_data {
        eprintln!("kept Herald's log in {}", temp.keep().display());
    }
    let succeeded = (succeeded_after - succeeded_before).max(0.0) as u64;
    if errors > 0 {
        eprintln!("warning: {errors} intake errors, e.g. {error_samples:?}");
    }
    if succeeded < accepted * u64::from(spec.fanout) {
        eprintln!(
            "warning: {succeeded} of {} deliveries succeeded within the {} s drain timeout",
            accepted * u64::from(spec.fanout),
            options.drain_timeout_s
        );
    }
    let mut cost = PerDelivery::of(
        &after.since(&before),
        succeeded,
        spec.fanout,
        &options.lambda,
    );
    if spec.intake == Intake::Batch {
        // One API Gateway request carries 100 events.
        cost.api_gateway_usd_per_m /= 100.0;
    }
    Ok(AwsPhaseReport {
        phase: spec.clone(),
        accepted,
        succeeded,
        seconds,
        cost,
    })
}

/// Sends `events` events (numbered from `seq_offset`) through `POST /v1/events/batch`, 100 per
/// request, one request at a time; returns how many were accepted, the errors and a few samples.
async fn send_batches(
    client: &reqwest::Client,
    base: &str,
    api_key: &str,
    payload: &Payload,
    events: u64,
    seq_offset: u64,
) -> (u64, u64, Vec<String>) {
    let (mut accepted, mut errors, mut samples) = (0u64, 0u64, Vec::new());
    let mut seq = seq_offset;
    let end = seq_offset + events;
    while seq < end {
        let n = (end - seq).min(100);
        let items: Vec<Value> = (seq..seq + n)
            .filter_map(|i| serde_json::from_slice(&payload.body(i)).ok())
            .collect();
        seq += n;
        let answer = client
            .post(format!("{base}/v1/events/batch"))
            .bearer_auth(api_key)
            .json(&json!({ "events": items }))
            .send()
            .await;
        let body: Option<Value> = match answer {
            Ok(r) if r.status().is_success() => r.json().await.ok(),
            Ok(r) => {
                samples.push(format!("HTTP {}", r.status()));
                None
            }
            Err(e) => {
                samples.push(e.to_string());
                None
            }
        };
        let statuses: Vec<String> = body
            .as_ref()
            .and_then(|b| b["data"].as_array())
            .map(|d| {
                d.iter()
                    .map(|i| i["status"].as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default();
        let ok = statuses.iter().filter(|s| *s == "accepted").count() as u64;
        accepted += ok;
        errors += n - ok;
    }
    samples.truncate(5);
    (accepted, errors, samples)
}

fn print_phase(r: &AwsPhaseReport) {
    let c = &r.cost;
    println!(
        "\n{}: {} events accepted, {} deliveries succeeded in {:.1} s; per delivery:",
        r.phase.name, r.accepted, r.succeeded, r.seconds
    );
    for (op, n) in &c.calls {
        println!("  {op:<32} {n:>7.3}");
    }
    println!(
        "  {:<32} {:>7.3}\n  {:<32} {:>7.3}\n  {:<32} {:>7.3}   (+ {} empty polls in the phase, not counted)",
        "DynamoDB write units",
        c.write_units,
        "DynamoDB read units",
        c.read_units,
        "SQS requests",
        c.sqs_requests,
        c.empty_receives
    );
    println!(
        "  $ per million deliveries: DynamoDB {:.2} + SQS {:.2} = {:.2}; API Gateway {:.2}; Lambda {:.2}; total {:.2}",
        c.dynamodb_usd_per_m,
        c.sqs_usd_per_m,
        c.data_usd_per_m(),
        c.api_gateway_usd_per_m,
        c.lambda_usd_per_m,
        c.total_usd_per_m()
    );
    // The targets are stated for first attempts that succeed.
    let verdicts = if r.phase.fail_first {
        Vec::new()
    } else {
        c.verdicts()
    };
    for (figure, value, target, ok) in verdicts {
        println!(
            "  {figure:<32} {value:>7.3}  target <= {target:<5} {}",
            if ok { "OK" } else { "MISS" }
        );
    }
}

/// What one retry adds per retried delivery: the retry phase minus the first-attempt phase.
fn retry_cost(reports: &[AwsPhaseReport]) -> Option<Value> {
    let base = reports
        .iter()
        .find(|r| r.phase.fanout == 1 && !r.phase.fail_first && !r.phase.idempotency_key)?;
    let retry = reports.iter().find(|r| r.phase.fail_first)?;
    let (b, r) = (&base.cost, &retry.cost);
    Some(json!({
        "dynamodb_write_units": ((r.write_units - b.write_units) * 1000.0).round() / 1000.0,
        "dynamodb_read_units": ((r.read_units - b.read_units) * 1000.0).round() / 1000.0,
        "sqs_requests": ((r.sqs_requests - b.sqs_requests) * 1000.0).round() / 1000.0,
        "dynamodb_and_sqs_usd_per_million": ((r.data_usd_per_m() - b.data_usd_per_m()) * 1000.0).round() / 1000.0,
    }))
}

/// Runs `--store aws` and prints the report; the last stdout line is the JSON summary.
pub async fn run(options: &AwsOptions, bin: &Path) -> anyhow::Result<()> {
    let wall = Instant::now();
    let emulator = start_emulator(options).await?;
    let phases = phases(options);
    let mut reports = Vec::with_capacity(phases.len());
    println!(
        "What a delivery costs on AWS (counted by Herald's meter against {}; prices {PRICES_AS_OF}: DynamoDB on-demand ${DYNAMODB_WRU_PER_M}/M WRU, ${DYNAMODB_RRU_PER_M}/M RRU; SQS ${SQS_PER_M}/M requests; API Gateway HTTP ${API_GATEWAY_PER_M}/M; Lambda ${LAMBDA_REQUESTS_PER_M}/M requests + ${LAMBDA_GB_SECOND_ARM64}/GB-s arm64 at {} MB, {} ms per invocation assumed, batches of {})",
        emulator.endpoint,
        options.lambda.memory_mb,
        options.lambda.ms_per_invocation,
        options.lambda.batch_size
    );
    for (serial, spec) in phases.iter().enumerate() {
        let report = run_phase(spec, options, bin, &emulator, serial).await?;
        print_phase(&report);
        reports.push(report);
    }
    let retry = retry_cost(&reports);
    if let Some(retry) = &retry {
        println!("\nOne retry (a 503, then 204) adds per retried delivery: {retry}");
    }
    drop(emulator);
    let summary = json!({
        "store": "aws",
        "prices_as_of": PRICES_AS_OF,
        "lambda_model": {
            "memory_mb": options.lambda.memory_mb,
            "ms_per_invocation_assumed": options.lambda.ms_per_invocation,
            "batch_size": options.lambda.batch_size,
        },
        "phases": reports.iter().map(|r| {
            let mut v = r.cost.json();
            v["name"] = json!(r.phase.name);
            v["events"] = json!(r.accepted);
            v["seconds"] = json!((r.seconds * 10.0).round() / 10.0);
            v["idempotency_key"] = json!(r.phase.idempotency_key);
            v["receiver_fails_first_attempt"] = json!(r.phase.fail_first);
            if r.phase.fail_first {
                v["targets"] = Value::Null;
            }
            v
        }).collect::<Vec<_>>(),
        "retry_adds_per_retried_delivery": retry,
        "total_s": (wall.elapsed().as_secs_f64() * 10.0).round() / 10.0,
    });
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_are_read_back_unquoted() {
        let text = "export HERALD_TABLE='bench1'\nexport HERALD_EVENTS_QUEUE_URL='http://127.0.0.1:5000/123/b-events'\nexport X='it'\\''s'\n";
        let exports = parse_exports(text);
        assert_eq!(exports[0], ("HERALD_TABLE".into(), "bench1".into()));
        assert_eq!(exports[1].1, "http://127.0.0.1:5000/123/b-events");
        assert_eq!(exports[2].1, "it's");
    }

    #[test]
    fn the_phases_are_bounded_and_retry_can_be_left_out() {
        let options = AwsOptions {
            moto_server: None,
            events: None,
            concurrency: 8,
            drain_timeout_s: 120,
            lambda: LambdaModel {
                memory_mb: 256,
                ms_per_invocation: 50.0,
                batch_size: 10,
            },
            keep_data: false,
            data_parent: None,
            skip_retry: false,
        };
        let all = phases(&options);
        assert_eq!(all.len(), 6);
        assert!(all.iter().all(|p| p.events <= 200));
        assert_eq!(all.iter().filter(|p| p.intake == Intake::Batch).count(), 2);
        assert_eq!((all[1].fanout, all[1].events), (10, 40));
        let some = phases(&AwsOptions {
            skip_retry: true,
            events: Some(10),
            ..options
        });
        assert_eq!(some.len(), 5);
        assert!(some.iter().all(|p| p.events == 10));
    }
}
