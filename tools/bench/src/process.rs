//! Process sampling from `/proc`: CPU time (`utime + stime` in clock ticks) of Herald, of its
//! threads and of the bench process, the machine's busy and iowait ticks, Herald's I/O counters
//! (`/proc/<pid>/io`: bytes that reached the block layer, `read_bytes`/`write_bytes`, and bytes
//! passed through read and write calls, `rchar`/`wchar`), and its peak RSS (`VmHWM`).
//!
//! Linux only, and never fatal: a reading that cannot be taken is `None`, and the report shows
//! that figure as unavailable (`null` in the JSON) instead of failing the run.

use std::collections::HashMap;
use std::time::Instant;

/// A process's CPU time, `utime + stime`, in clock ticks.
#[derive(Debug, Clone, Copy)]
pub struct CpuTicks {
    pub ticks: u64,
}

/// The machine's clock ticks (the `cpu` line of `/proc/stat`).
#[derive(Debug, Clone, Copy)]
pub struct SystemTicks {
    pub total: u64,
    pub idle: u64,
    pub iowait: u64,
}

/// Herald's I/O counters, from `/proc/<pid>/io`, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IoCounters {
    /// Read through system calls (the page cache included).
    pub rchar: u64,
    /// Written through system calls (before the page cache).
    pub wchar: u64,
    /// Fetched from the storage layer.
    pub read_bytes: u64,
    /// Sent to the storage layer: what the disk is asked to write.
    pub write_bytes: u64,
}

impl IoCounters {
    /// `self - earlier`, field by field.
    pub fn since(&self, earlier: &IoCounters) -> IoCounters {
        IoCounters {
            rchar: self.rchar.saturating_sub(earlier.rchar),
            wchar: self.wchar.saturating_sub(earlier.wchar),
            read_bytes: self.read_bytes.saturating_sub(earlier.read_bytes),
            write_bytes: self.write_bytes.saturating_sub(earlier.write_bytes),
        }
    }
}

/// The counters read at the start and at the end of a measured phase.
#[derive(Debug)]
pub struct Snapshot {
    pub at: Instant,
    pub herald: Option<CpuTicks>,
    pub own: Option<CpuTicks>,
    pub system: Option<SystemTicks>,
    pub herald_io: Option<IoCounters>,
    /// Herald's threads: tid → (name, utime + stime).
    pub threads: HashMap<String, (String, u64)>,
}

impl Snapshot {
    /// Reads the counters now; `pid` is Herald's.
    pub fn take(pid: Option<u32>) -> Self {
        let herald = pid.and_then(|p| read_stat_ticks(&format!("/proc/{p}/stat")));
        Self {
            at: Instant::now(),
            herald,
            own: read_stat_ticks("/proc/self/stat"),
            system: read_system_ticks(),
            herald_io: pid.and_then(read_io),
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

/// `/proc/<pid>/io` (readable by the process's owner).
pub fn read_io(pid: u32) -> Option<IoCounters> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    parse_io(&text)
}

fn parse_io(text: &str) -> Option<IoCounters> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse().ok())
    };
    Some(IoCounters {
        rchar: field("rchar")?,
        wchar: field("wchar")?,
        read_bytes: field("read_bytes")?,
        write_bytes: field("write_bytes")?,
    })
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
pub fn read_vm_hwm_kb(pid: Option<u32>) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    parse_vm_hwm_kb(&text)
}

fn parse_vm_hwm_kb(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_line_gives_utime_plus_stime() {
        let line = "1234 (herald (x) y) S 1 1234 1234 0 -1 4194560 2000 0 0 0 250 50 0 0 20 0 8 0 100 1000000 2000";
        assert_eq!(parse_stat_ticks(line), Some(300));
        assert_eq!(parse_stat_ticks("garbage"), None);
    }

    #[test]
    fn io_counters_are_read_by_name() {
        let io = "rchar: 100\nwchar: 200\nsyscr: 3\nsyscw: 4\nread_bytes: 4096\nwrite_bytes: 8192\ncancelled_write_bytes: 0\n";
        let got = parse_io(io).unwrap();
        assert_eq!(
            got,
            IoCounters {
                rchar: 100,
                wchar: 200,
                read_bytes: 4096,
                write_bytes: 8192
            }
        );
        // `cancelled_write_bytes` must not be taken for `write_bytes`.
        assert_eq!(parse_io("write_bytes: 1\n"), None);
        let later = IoCounters {
            write_bytes: 10_000,
            ..got
        };
        assert_eq!(later.since(&got).write_bytes, 10_000 - 8192);
    }

    #[test]
    fn vm_hwm_is_read_in_kb() {
        let status =
            "Name:\therald\nVmPeak:\t  100000 kB\nVmHWM:\t   34816 kB\nVmRSS:\t   30000 kB\n";
        assert_eq!(parse_vm_hwm_kb(status), Some(34816));
        assert_eq!(parse_vm_hwm_kb("Name: x\n"), None);
    }
}
