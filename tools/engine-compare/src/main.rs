//! `engine-compare`: replays a Herald write trace (feature `write-trace` of `herald-embedded`,
//! recorded on `herald bench`) commit for commit against redb 5, fjall 3 and SQLite (WAL) and
//! reports what each engine sends to the disk per delivery. See README.md.
//!
//! Every engine and pass count runs in a child process of its own (this binary with `--child`),
//! so `/proc/self/io` counts that engine's writes alone, its background threads included. The
//! child reads the trace into memory first, then measures from just before the store is created
//! to just after its final sync (see each engine's `finish`). With `--passes 2` the trace is
//! replayed twice on the same store, the second time with every record key prefixed by `~` and
//! queue sequence numbers moved past the first pass's (so it writes new keys after the old ones,
//! as ever-growing ULIDs do), and the second pass is reported apart: the steady state.
#![forbid(unsafe_code)]

mod engines;
mod measure;
mod trace;
mod whatif;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Parser;
use serde::{Deserialize, Serialize};

use crate::engines::Engine;
use crate::trace::{Batch, Op};

const ENGINES: [&str; 4] = ["redb", "fjall", "fjall-herald", "sqlite"];

#[derive(Debug, Parser)]
#[command(about = "Replay a Herald write trace against redb, fjall and SQLite")]
struct Cli {
    /// The trace (`HERALD_WRITE_TRACE` of a herald built with `herald-embedded/write-trace`).
    #[arg(long)]
    trace: PathBuf,
    /// Engines to run, comma-separated: redb, fjall, fjall-herald, sqlite.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "redb,fjall,fjall-herald,sqlite"
    )]
    engines: Vec<String>,
    /// Pass counts to run, comma-separated: 1 (one replay), 2 (two in a row on one store).
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    passes: Vec<u32>,
    /// Where the stores are created (a fresh folder each run, removed after).
    #[arg(long, default_value = "/tmp")]
    dir: PathBuf,
    /// Deliveries in the trace, if not the attempt records counted in it.
    #[arg(long)]
    deliveries: Option<u64>,
    /// Also count fsync/fdatasync calls: each run once more under `strace -f -c` (its time unused).
    #[arg(long)]
    fsyncs: bool,
    /// `deflate`: store every value as Herald's DynamoDB codec does (deflated when over 200
    /// bytes), a what-if for smaller records; `json` (default): as traced.
    #[arg(long, default_value = "json", value_parser = ["json", "deflate"])]
    values: String,
    /// `binary`: a what-if with every record key as a binary one could be (ids as 17 bytes,
    /// attempt numbers as 4, no separators); `text` (default): as traced.
    #[arg(long, default_value = "text", value_parser = ["text", "binary"])]
    keys: String,
    /// What-ifs without delivery index rows: `drop` (both kinds), `drop-event` (by event),
    /// `drop-sub` (by subscription), `sub-major` (none, and delivery rows keyed by their
    /// subscription's tag first); `keep` (default): as traced.
    #[arg(long, default_value = "keep", value_parser = ["keep", "drop", "drop-event", "drop-sub", "sub-major"])]
    index: String,
    /// `drop`: a what-if without the queue messages; `keep` (default): as traced.
    #[arg(long, default_value = "keep", value_parser = ["keep", "drop"])]
    queue: String,
    /// Keep the stores (their folders are printed) instead of removing them.
    #[arg(long)]
    keep: bool,
    /// Internal: run one engine here and print its JSON line.
    #[arg(long, hide = true)]
    child: bool,
}

/// What one run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Run {
    engine: String,
    passes: u32,
    deliveries: u64,
    commits: u64,
    /// Bytes of keys and values put by one pass (after `--values`).
    put_bytes: u64,
    /// `write_bytes` over the whole run (every pass and the final sync).
    bytes: u64,
    /// Of those, what the replaying thread wrote (commits and the final sync; not background
    /// threads such as fjall's flushes and compactions).
    foreground_bytes: u64,
    /// What the replaying thread wrote during the durable commits.
    durable_bytes: u64,
    /// `write_bytes` over the last pass and the final sync.
    last_pass_bytes: u64,
    /// Seconds of the replay (every pass) and of the final sync.
    replay_s: f64,
    finish_s: f64,
    cpu_s: f64,
    disk_bytes: u64,
    fsyncs: Option<u64>,
}

impl Run {
    fn per_delivery(&self, bytes: u64, passes: u32) -> f64 {
        bytes as f64 / (self.deliveries * u64::from(passes)).max(1) as f64
    }
}

fn open(engine: &str, dir: &Path) -> anyhow::Result<Box<dyn Engine>> {
    Ok(match engine {
        "redb" => Box::new(engines::redb::Redb::open(dir)?),
        "fjall" => Box::new(engines::fjall::Fjall::open(dir, false)?),
        "fjall-herald" => Box::new(engines::fjall::Fjall::open(dir, true)?),
        "sqlite" => Box::new(engines::sqlite::Sqlite::open(dir)?),
        other => bail!("unknown engine {other} (known: {})", ENGINES.join(", ")),
    })
}

/// The trace's batches with new keys: record keys prefixed by `~`, queue seqs moved by `offset`.
fn second_pass(batches: &[Batch], offset: u64) -> Vec<Batch> {
    let shift = |key: &[u8]| [b"~".as_slice(), key].concat();
    let op = |op: &Op| match op {
        Op::Put { table, key, value } => Op::Put {
            table: table.clone(),
            key: shift(key),
            value: value.clone(),
        },
        Op::Remove { table, key } => Op::Remove {
            table: table.clone(),
            key: shift(key),
        },
        Op::RemoveRange { table, from, to } => Op::RemoveRange {
            table: table.clone(),
            from: shift(from),
            to: shift(to),
        },
        Op::QueuePut { queue, seq, value } => Op::QueuePut {
            queue: queue.clone(),
            seq: seq + offset,
            value: value.clone(),
        },
        Op::QueueRemove { queue, seq } => Op::QueueRemove {
            queue: queue.clone(),
            seq: seq + offset,
        },
    };
    batches
        .iter()
        .map(|b| Batch {
            ops: b.ops.iter().map(op).collect(),
            durable: b.durable,
        })
        .collect()
}

fn child(cli: &Cli) -> anyhow::Result<Run> {
    let [engine] = cli.engines.as_slice() else {
        bail!("--child takes one engine");
    };
    let [passes] = cli.passes.as_slice() else {
        bail!("--child takes one pass count");
    };
    let mut trace = trace::read(&cli.trace)?;
    if cli.values == "deflate" {
        trace::deflate_values(&mut trace.batches);
    }
    match cli.index.as_str() {
        "drop" => whatif::drop_index_rows(&mut trace.batches, &[b"sub_", b"evt_"]),
        "drop-event" => whatif::drop_index_rows(&mut trace.batches, &[b"evt_"]),
        "drop-sub" => whatif::drop_index_rows(&mut trace.batches, &[b"sub_"]),
        "sub-major" => whatif::subscription_major_keys(&mut trace.batches),
        _ => {}
    }
    if cli.queue == "drop" {
        whatif::drop_queue(&mut trace.batches);
    }
    if cli.keys == "binary" {
        whatif::binary_keys(&mut trace.batches);
    }
    let put_bytes = trace::put_bytes(&trace.batches);
    let mut rounds = vec![trace.batches];
    if *passes == 2 {
        let max_seq = rounds[0]
            .iter()
            .flat_map(|b| &b.ops)
            .filter_map(|op| match op {
                Op::QueuePut { seq, .. } => Some(*seq),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        rounds.push(second_pass(&rounds[0], max_seq + 1));
    }
    let temp = tempfile::Builder::new()
        .prefix("engine-compare-")
        .tempdir_in(&cli.dir)
        .context("creating the store folder")?;
    let ticks = measure::ticks_per_second();

    let (bytes0, fg0, cpu0, start) = (
        measure::write_bytes()?,
        measure::thread_write_bytes()?,
        measure::cpu_seconds(ticks)?,
        Instant::now(),
    );
    let mut store = open(engine, temp.path())?;
    let (mut durable_bytes, mut commits, mut last_pass_start) = (0, 0, bytes0);
    for round in &rounds {
        last_pass_start = measure::write_bytes()?;
        for batch in round {
            let before = if batch.durable {
                measure::thread_write_bytes()?
            } else {
                0
            };
            store.commit(batch)?;
            if batch.durable {
                durable_bytes += measure::thread_write_bytes()?.saturating_sub(before);
            }
            commits += 1;
        }
    }
    let replay_s = start.elapsed().as_secs_f64();
    store.finish()?;
    let finish_s = start.elapsed().as_secs_f64() - replay_s;
    let (bytes1, fg1, cpu1) = (
        measure::write_bytes()?,
        measure::thread_write_bytes()?,
        measure::cpu_seconds(ticks)?,
    );
    drop(store);
    let disk_bytes = measure::dir_size(temp.path())?;
    if cli.keep {
        eprintln!("store kept in {}", temp.keep().display());
    }
    Ok(Run {
        engine: engine.clone(),
        passes: *passes,
        deliveries: cli.deliveries.unwrap_or(trace.counts.deliveries),
        commits,
        put_bytes,
        bytes: bytes1 - bytes0,
        foreground_bytes: fg1 - fg0,
        durable_bytes,
        last_pass_bytes: bytes1 - last_pass_start,
        replay_s,
        finish_s,
        cpu_s: cpu1 - cpu0,
        disk_bytes,
        fsyncs: None,
    })
}

/// Runs this binary as a child for one engine and pass count, under strace if `strace_out`.
fn spawn(cli: &Cli, engine: &str, passes: u32, strace_out: Option<&Path>) -> anyhow::Result<Run> {
    let me = std::env::current_exe().context("finding this executable")?;
    let mut cmd = match strace_out {
        Some(out) => {
            let mut c = std::process::Command::new("strace");
            c.args([
                "-f",
                "-c",
                "-e",
                "trace=fsync,fdatasync,sync_file_range",
                "-o",
            ])
            .arg(out)
            .arg(&me);
            c
        }
        None => std::process::Command::new(&me),
    };
    cmd.arg("--child")
        .arg("--trace")
        .arg(&cli.trace)
        .args(["--engines", engine, "--passes", &passes.to_string()])
        .args(["--values", &cli.values])
        .args(["--keys", &cli.keys])
        .args(["--index", &cli.index])
        .args(["--queue", &cli.queue])
        .arg("--dir")
        .arg(&cli.dir);
    if cli.keep {
        cmd.arg("--keep");
    }
    if let Some(d) = cli.deliveries {
        cmd.args(["--deliveries", &d.to_string()]);
    }
    let out = cmd.output().context("running a replay child")?;
    if !out.status.success() {
        bail!(
            "{engine} (passes {passes}) failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout)?;
    let line = stdout.lines().last().context("the child printed nothing")?;
    serde_json::from_str(line).with_context(|| format!("the child's line: {line}"))
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if cli.child {
        println!("{}", serde_json::to_string(&child(&cli)?)?);
        return Ok(());
    }
    let counts = trace::read(&cli.trace)?.counts;
    println!(
        "trace {} (values: {}): {} commits ({} durable, {} rolled back), {} ops ({} puts, {} removes, {} range removes, {} queue puts, {} queue removes), {:.1} MB of keys+values put, {} deliveries",
        cli.trace.display(),
        cli.values,
        counts.commits,
        counts.durable_commits,
        counts.rolled_back,
        counts.ops,
        counts.puts,
        counts.removes,
        counts.range_removes,
        counts.queue_puts,
        counts.queue_removes,
        counts.put_bytes as f64 / 1e6,
        cli.deliveries.unwrap_or(counts.deliveries),
    );
    let per = |n: u64| n as f64 / cli.deliveries.unwrap_or(counts.deliveries).max(1) as f64;
    for (name, t) in &counts.tables {
        println!(
            "  {name:<16} per delivery: {:>5.2} puts, {:>6.0} B of keys, {:>6.0} B of values",
            per(t.puts),
            per(t.key_bytes),
            per(t.value_bytes)
        );
    }
    let mut runs = Vec::new();
    for &passes in &cli.passes {
        for engine in &cli.engines {
            eprintln!("replaying on {engine}, {passes} pass(es)…");
            let mut run = spawn(&cli, engine, passes, None)?;
            if cli.fsyncs {
                let out = cli
                    .dir
                    .join(format!("engine-compare-strace-{engine}-{passes}"));
                spawn(&cli, engine, passes, Some(&out))?;
                let summary = std::fs::read_to_string(&out).context("reading strace's summary")?;
                std::fs::remove_file(&out)?;
                run.fsyncs = Some(measure::strace_syncs(&summary));
            }
            runs.push(run);
        }
    }
    println!(
        "\n{:<13} {:>6} {:>8} {:>9} {:>8} {:>8} {:>9} {:>8} {:>8} {:>9} {:>7} {:>7} {:>8}",
        "engine",
        "passes",
        "B/deliv",
        "last pass",
        "fg",
        "durable",
        "put B/del",
        "fsyncs",
        "replay s",
        "commits/s",
        "sync s",
        "CPU s",
        "disk MB"
    );
    for r in &runs {
        println!(
            "{:<13} {:>6} {:>8.0} {:>9.0} {:>8.0} {:>8.0} {:>9.0} {:>8} {:>8.1} {:>9.0} {:>7.1} {:>7.1} {:>8.1}",
            r.engine,
            r.passes,
            r.per_delivery(r.bytes, r.passes),
            r.per_delivery(r.last_pass_bytes, 1),
            r.per_delivery(r.foreground_bytes, r.passes),
            r.per_delivery(r.durable_bytes, r.passes),
            r.per_delivery(r.put_bytes, 1),
            r.fsyncs.map_or("-".to_owned(), |n| n.to_string()),
            r.replay_s,
            r.commits as f64 / r.replay_s,
            r.finish_s,
            r.cpu_s,
            r.disk_bytes as f64 / 1e6,
        );
    }
    let json = serde_json::json!({
        "trace": cli.trace,
        "values": cli.values,
        "counts": counts,
        "runs": runs.iter().map(|r| serde_json::json!({
            "run": r,
            "bytes_per_delivery": r.per_delivery(r.bytes, r.passes),
            "last_pass_bytes_per_delivery": r.per_delivery(r.last_pass_bytes, 1),
            "foreground_bytes_per_delivery": r.per_delivery(r.foreground_bytes, r.passes),
            "durable_bytes_per_delivery": r.per_delivery(r.durable_bytes, r.passes),
            "commits_per_s": r.commits as f64 / r.replay_s,
        })).collect::<Vec<_>>(),
    });
    println!("{json}");
    Ok(())
}
