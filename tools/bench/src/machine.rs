//! The machine the figures were taken on: cores, CPU model, clock ticks per second (to turn
//! `/proc` ticks into seconds), and the mounts (to name the file system under the data folder).
//!
//! Read once at the start; it describes, it never decides. Figures are only comparable between
//! runs on the same machine, so the report carries this description with them.

use std::path::Path;
use std::process::Stdio;

use serde_json::{json, Value};

/// The machine the figures were taken on.
#[derive(Debug, Clone)]
pub struct Machine {
    pub cores: usize,
    pub cpu_model: Option<String>,
    /// Clock ticks per second (`getconf CLK_TCK`, 100 when that cannot be run).
    pub clk_tck: u64,
    pub clk_tck_measured: bool,
    mounts: Vec<(String, String)>,
}

impl Machine {
    /// Reads the machine's description (`/proc/cpuinfo`, `/proc/mounts`, `getconf CLK_TCK`).
    pub fn detect() -> Self {
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
    pub fn filesystem_of(&self, path: &Path) -> Option<String> {
        let path = path.canonicalize().ok()?;
        self.mounts
            .iter()
            .filter(|(mount, _)| path.starts_with(mount))
            .max_by_key(|(mount, _)| mount.len())
            .map(|(_, fs)| fs.clone())
    }

    /// The `machine` object of the JSON summary.
    pub fn json(&self) -> Value {
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
