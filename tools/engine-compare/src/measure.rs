//! Readings from `/proc/self` (Linux): bytes this process sent to the block layer, CPU time, and
//! the size of a folder; and fsync counts from `strace -c` output.

use std::path::Path;

use anyhow::Context;

/// `write_bytes` of `/proc/self/io`: bytes this process (every thread, finished ones too) caused
/// to be sent to storage, counted when a page is dirtied or written directly.
pub fn write_bytes() -> anyhow::Result<u64> {
    io_write_bytes("/proc/self/io")
}

/// `write_bytes` of the calling thread alone (`/proc/thread-self/io`): the replay's own writes,
/// without the engine's background threads (fjall's flushes and compactions).
pub fn thread_write_bytes() -> anyhow::Result<u64> {
    io_write_bytes("/proc/thread-self/io")
}

fn io_write_bytes(path: &str) -> anyhow::Result<u64> {
    let io = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    field(&io, "write_bytes").with_context(|| format!("no write_bytes in {path}"))
}

fn field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
}

/// User + system CPU seconds of this process so far (every thread).
pub fn cpu_seconds(ticks_per_second: f64) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("reading /proc/self/stat")?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("odd /proc/self/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: u64 = fields
        .get(11..13)
        .context("short /proc/self/stat")?
        .iter()
        .map(|f| f.parse::<u64>().unwrap_or(0))
        .sum();
    Ok(ticks as f64 / ticks_per_second)
}

/// `getconf CLK_TCK`, 100 when that cannot be run.
pub fn ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Bytes allocated on disk to every file under `dir` (not their lengths: fjall preallocates its
/// journal files).
pub fn dir_size(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_size(&entry.path())?
        } else {
            std::os::unix::fs::MetadataExt::blocks(&meta) * 512
        };
    }
    Ok(total)
}

/// The calls of the sync family in a `strace -c` summary (`fsync`, `fdatasync`, `sync_file_range`).
pub fn strace_syncs(summary: &str) -> u64 {
    summary
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let name = *f.last()?;
            matches!(name, "fsync" | "fdatasync" | "sync_file_range")
                .then(|| f.get(3)?.parse::<u64>().ok())?
        })
        .sum()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_strace_summaries_are_read() {
        let io = "rchar: 1\nwrite_bytes: 8192\ncancelled_write_bytes: 4096\n";
        assert_eq!(field(io, "write_bytes"), Some(8192));
        let summary = "% time     seconds  usecs/call     calls    errors syscall\n\
            ------ ----------- ----------- --------- --------- ----------------\n\
            99.00    1.000000         500      2000           fdatasync\n\
             1.00    0.010000          10        10         1 fsync\n\
            ------ ----------- ----------- --------- --------- ----------------\n\
            100.00    1.010000         500      2010         1 total\n";
        assert_eq!(strace_syncs(summary), 2010);
        assert!(cpu_seconds(100.0).unwrap() >= 0.0);
        assert!(write_bytes().is_ok());
        assert!(thread_write_bytes().is_ok());
    }
}
