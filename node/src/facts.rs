//! What this peer's machine has (cores, memory, GPUs, free disk on the data dir's
//! filesystem), measured at start and then every [`FACTS_CHECK_INTERVAL`], and proposed
//! as `peer-facts-reported` when it changed enough to matter for placement
//! (`requirements` are checked against these facts inside `apply`).

use std::path::Path;
use std::process::Command as Process;
use std::sync::Arc;

use monk_statemachine::{Command, PeerFacts};
use tracing::{info, warn};

use crate::limits::{FACTS_CHECK_INTERVAL, FACTS_DISK_CHANGE_GB_MIN, FACTS_DISK_CHANGE_PERCENT};
use crate::node::Node;

/// Measures the machine. A fact that cannot be read is 0 (unknown).
pub fn measure(data_dir: &Path) -> PeerFacts {
    PeerFacts {
        cpu_millis: cpu_millis(),
        memory_mb: memory_mb(),
        gpus: count_gpus(),
        disk_free_gb: disk_free_gb(data_dir).unwrap_or(0),
    }
}

/// Cores this process may use (cgroup limits included), in millicores; 0 if unknown.
pub fn cpu_millis() -> u64 {
    std::thread::available_parallelism().map_or(0, |n| n.get() as u64 * 1000)
}

/// The machine's memory in MB; 0 if unknown.
pub fn memory_mb() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| meminfo_total_mb(&text))
        .unwrap_or(0)
}

/// `MemTotal:  24576000 kB` → MB.
fn meminfo_total_mb(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

/// GPUs `nvidia-smi -L` lists (one line each); none where it is absent.
fn count_gpus() -> u32 {
    match Process::new("nvidia-smi").arg("-L").output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("GPU "))
            .count() as u32,
        _ => 0,
    }
}

/// Free space for unprivileged users on the filesystem holding `dir`, in GB.
fn disk_free_gb(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a valid NUL-terminated string and `stat` a writable statvfs.
    let rc = unsafe { libc::statvfs(path.as_ptr(), &mut stat) };
    (rc == 0).then(|| (stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64) / 1_000_000_000)
}

/// Whether `new` differs from what the cluster holds enough to report: any change in
/// cores, memory or GPUs; free disk only when it moved by at least
/// [`FACTS_DISK_CHANGE_PERCENT`] and [`FACTS_DISK_CHANGE_GB_MIN`] (it moves all the time).
pub fn worth_reporting(held: PeerFacts, new: PeerFacts) -> bool {
    if held.cpu_millis != new.cpu_millis || held.memory_mb != new.memory_mb || held.gpus != new.gpus
    {
        return true;
    }
    let change = held.disk_free_gb.abs_diff(new.disk_free_gb);
    change >= FACTS_DISK_CHANGE_GB_MIN
        && change * 100 >= held.disk_free_gb * FACTS_DISK_CHANGE_PERCENT
}

/// Reports this peer's facts while it runs: once it is a member, and then whenever they
/// changed enough.
pub async fn run_reporter(node: Arc<Node>) {
    let mut ticks = node.member_ticks(FACTS_CHECK_INTERVAL);
    while let Some(id) = ticks.next().await {
        let data_dir = node.config.data_dir.clone();
        let Ok(facts) = tokio::task::spawn_blocking(move || measure(&data_dir)).await else {
            continue;
        };
        let held = node.with_state(|s| s.peer(id).map(|p| p.facts));
        let Some(held) = held else { continue };
        if !worth_reporting(held, facts) {
            continue;
        }
        let command = Command::PeerFactsReported { peer: id, facts };
        let proposal = node.stamp(format!("peer:{id}"), command);
        match node.propose(proposal).await {
            Ok(_) => info!(
                cpu_millis = facts.cpu_millis,
                memory_mb = facts.memory_mb,
                gpus = facts.gpus,
                disk_free_gb = facts.disk_free_gb,
                "reported this peer's resources"
            ),
            Err(e) => warn!("could not report this peer's resources: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_is_read_in_mb() {
        let text = "MemTotal:       24576000 kB\nMemFree:  100 kB\n";
        assert_eq!(meminfo_total_mb(text), Some(24000));
        assert_eq!(meminfo_total_mb("nothing here"), None);
    }

    #[test]
    fn small_disk_changes_are_not_reported() {
        let held = PeerFacts {
            cpu_millis: 2000,
            memory_mb: 1000,
            gpus: 0,
            disk_free_gb: 100,
        };
        assert!(!worth_reporting(
            held,
            PeerFacts {
                disk_free_gb: 97,
                ..held
            }
        ));
        assert!(worth_reporting(
            held,
            PeerFacts {
                disk_free_gb: 80,
                ..held
            }
        ));
        assert!(worth_reporting(
            held,
            PeerFacts {
                memory_mb: 2000,
                ..held
            }
        ));
        assert!(worth_reporting(PeerFacts::default(), held));
    }

    #[test]
    fn this_machine_has_cores_memory_and_disk() {
        let facts = measure(Path::new("/"));
        assert!(facts.cpu_millis >= 1000, "{facts:?}");
        assert!(facts.memory_mb > 0, "{facts:?}");
    }
}
