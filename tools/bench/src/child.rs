//! The Herald under test, as a child process: `<herald-bin> dev` on a free port of 127.0.0.1 and a
//! fresh data folder, with plain http and loopback targets allowed (the receiver is on
//! 127.0.0.1) and its log in a file beside the data folder.
//!
//! A child process, not a task in the bench, so that `/proc/<pid>` gives Herald's own CPU time and
//! peak RSS. It must never outlive the bench: it is killed when its handle is dropped.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// How long Herald may take to answer `/healthz` after it was started.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);

/// Herald running as `<bin> dev`; killed when dropped, so it never outlives the bench.
#[derive(Debug)]
pub struct HeraldChild {
    child: Option<Child>,
}

impl HeraldChild {
    /// Starts `<bin> dev` with its stderr going to `log`, and with more environment variables
    /// (`--retention`; `--store aws`: the store, the table and queues, the emulator's endpoint,
    /// the meter).
    pub fn spawn_with_env(
        bin: &Path,
        addr: SocketAddr,
        data_dir: &Path,
        api_key: &str,
        log: &Path,
        env: &[(String, String)],
    ) -> anyhow::Result<Self> {
        let log_file =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let child = std::process::Command::new(bin)
            .arg("dev")
            .envs(env.iter().map(|(k, v)| (k, v)))
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

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Kills Herald and waits for it to end.
    pub fn stop(&mut self) {
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

/// A port of 127.0.0.1 that was free a moment ago.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .context("finding a free port on 127.0.0.1")?;
    Ok(listener.local_addr()?.port())
}

/// Waits until Herald answers `/healthz`; fails when it exits or takes too long.
pub async fn wait_healthy(
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

/// The last 20 lines of Herald's log, to show when it failed.
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Herald's `/metrics` (Prometheus text) as name → value, without the `herald_` prefix; empty
/// when it cannot be read.
pub async fn scrape_metrics(client: &reqwest::Client, base: &str) -> BTreeMap<String, f64> {
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
