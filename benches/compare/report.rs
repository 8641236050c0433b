//! What a run prints and what it appends to `benches/RESULTS.md`: per client count,
//! each side's throughput and p50/p99/p999, the ratio ours/etcd, the fsync floor, and
//! where it ran (date, machine, commit).

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::load::Summary;

/// One client count's figures.
pub struct Row {
    pub clients: usize,
    pub etcd: Summary,
    pub ours: Summary,
}

impl Row {
    /// Our throughput over etcd's.
    pub fn ratio(&self) -> f64 {
        if self.etcd.per_second > 0.0 {
            self.ours.per_second / self.etcd.per_second
        } else {
            f64::NAN
        }
    }
}

/// Where and on what a run happened.
pub struct Setting {
    pub date: String,
    pub machine: String,
    pub commit: String,
    pub etcd_version: String,
    pub fsync_p50: Duration,
    pub fsync_p99: Duration,
    pub secs: u64,
    pub rounds: usize,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The table printed at the end of a run.
pub fn table(setting: &Setting, rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} | {} | {} | fsync floor (4 KiB append + fdatasync) p50 {:.2} ms, p99 {:.2} ms",
        setting.machine,
        setting.commit,
        setting.etcd_version,
        ms(setting.fsync_p50),
        ms(setting.fsync_p99)
    );
    let _ = writeln!(
        out,
        "{:>7} | {:>22} {:>24} | {:>22} {:>24} | {:>6}",
        "clients",
        "etcd writes/s (n/err)",
        "p50/p99/p999 ms",
        "ours writes/s (n/err)",
        "p50/p99/p999 ms",
        "ratio"
    );
    for row in rows {
        let _ = writeln!(
            out,
            "{:>7} | {:>22} {:>24} | {:>22} {:>24} | {:>5.2}x",
            row.clients,
            format!(
                "{:.0} ({}/{})",
                row.etcd.per_second, row.etcd.writes, row.etcd.errors
            ),
            percentiles(&row.etcd),
            format!(
                "{:.0} ({}/{})",
                row.ours.per_second, row.ours.writes, row.ours.errors
            ),
            percentiles(&row.ours),
            row.ratio()
        );
    }
    out
}

fn percentiles(s: &Summary) -> String {
    format!("{:.2}/{:.2}/{:.2}", ms(s.p50), ms(s.p99), ms(s.p999))
}

const RESULTS_HEADER: &str = "# Side-by-side with etcd\n\n\
Appended by `benches/compare/run` (see `benches/compare/main.rs`): a 3-member etcd \
(Debian's `etcd-server`, default settings, fsync on) and a 3-peer `monkd` (release, \
`--containers none`) on loopback, data dirs on one filesystem, driven by one closed-loop \
load generator: 64-byte puts against `noop` proposals, rounds alternating etcd, ours, \
etcd, ours; figures pooled over the rounds. Ratio: our writes/s over etcd's. \
Fsync floor: p50 of a 4 KiB append + fdatasync on the same filesystem, same run.\n\n\
Failover: the leader SIGKILLed under load, p50 (max) over the kills, from the kill to \
a new leader and to the first acknowledged write; on the first row of a run.\n\n\
| date | machine | commit | etcd | secs x rounds | clients | etcd writes/s | etcd p50/p99/p999 ms | ours writes/s | ours p50/p99/p999 ms | ratio | fsync p50 ms | failover |\n\
|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";

/// Appends one markdown row per client count to `path` (writing the header first if
/// the file is new), the failover figures on the first.
pub fn append(path: &Path, setting: &Setting, rows: &[Row], failover: Option<&str>) -> Result<()> {
    let mut text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => RESULTS_HEADER.to_string(),
        Err(e) => return Err(e).with_context(|| format!("{}", path.display())),
    };
    for (i, row) in rows.iter().enumerate() {
        let _ = writeln!(
            text,
            "| {} | {} | {} | {} | {} x {} | {} | {:.0} | {} | {:.0} | {} | {:.2}x | {:.2} | {} |",
            setting.date,
            setting.machine,
            setting.commit,
            setting.etcd_version,
            setting.secs,
            setting.rounds,
            row.clients,
            row.etcd.per_second,
            percentiles(&row.etcd),
            row.ours.per_second,
            percentiles(&row.ours),
            row.ratio(),
            ms(setting.fsync_p50),
            failover.filter(|_| i == 0).unwrap_or("")
        );
    }
    std::fs::write(path, text).with_context(|| format!("{}", path.display()))
}

fn command_line(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `2026-11-29 16:02 UTC`.
pub fn date() -> String {
    command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_else(|| "unknown".into())
}

/// The commit the harness runs from, `+dirty` when the tree has changes.
pub fn commit(repo: &Path) -> String {
    let dir = repo.to_string_lossy();
    let head = command_line("git", &["-C", &dir, "rev-parse", "--short=10", "HEAD"]);
    let dirty = command_line(
        "git",
        &["-C", &dir, "status", "--porcelain", "--untracked-files=no"],
    )
    .is_some_and(|s| !s.is_empty());
    match head {
        Some(head) if dirty => format!("{head}+dirty"),
        Some(head) => head,
        None => "unknown".into(),
    }
}

/// CPUs, model, memory, kernel, the filesystem type under `dir`, and the load average
/// when the run began (the machine may be shared: a busy one drags both sides).
pub fn machine(dir: &Path) -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpus = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown CPU".into());
    let memory_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / (1024.0 * 1024.0));
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let fs = command_line("stat", &["-f", "-c", "%T", &dir.to_string_lossy()])
        .unwrap_or_else(|| "unknown fs".into());
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into());
    format!(
        "{cpus} CPU {model}, {memory_gib:.0} GiB, Linux {}, {fs}, load {load}",
        kernel.trim()
    )
}
