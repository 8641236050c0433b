//! The storage alarm (issue 13, storage faults), like etcd's `--quota-backend-bytes`:
//! a peer whose data dir grows past its quota, or whose filesystem has less free space
//! than a floor, refuses new client writes with a clear error *before* the disk fills
//! (a full disk stops Raft for good, see `daemon.rs`), and accepts them again once
//! there is room. What frees space or keeps the cluster running still passes: stop,
//! purge, removals, and every command peers propose themselves (reports, liveness).
//!
//! [`alarm`] is pure; [`run`] measures every [`STORAGE_CHECK_INTERVAL`] (`statvfs` and
//! a walk of the data dir) and keeps the verdict in the node.

use std::path::Path;
use std::time::Duration;

use monk_statemachine::Command;
use tracing::{info, warn};

/// How often the data dir and its filesystem are measured.
pub const STORAGE_CHECK_INTERVAL: Duration = Duration::from_secs(2);
/// Default `monkd --quota-bytes`: the data dir may grow to this (etcd's default
/// backend quota is 2 GiB; a Raft log with snapshots needs more headroom).
pub const QUOTA_BYTES_DEFAULT: u64 = 8 << 30;
/// Default `monkd --free-bytes-min`: writes stop while the filesystem has less free.
pub const FREE_BYTES_MIN_DEFAULT: u64 = 256 << 20;

/// The limits a peer keeps (`monkd --quota-bytes`, `--free-bytes-min`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StorageLimits {
    pub quota_bytes: u64,
    pub free_bytes_min: u64,
}

impl Default for StorageLimits {
    fn default() -> StorageLimits {
        StorageLimits {
            quota_bytes: QUOTA_BYTES_DEFAULT,
            free_bytes_min: FREE_BYTES_MIN_DEFAULT,
        }
    }
}

/// Why writes are refused, given the data dir's size and the filesystem's free bytes;
/// `None` when there is room.
pub fn alarm(limits: StorageLimits, used: u64, free: u64) -> Option<String> {
    let mib = |b: u64| b >> 20;
    if used > limits.quota_bytes {
        return Some(format!(
            "the data dir holds {} MiB, over its quota of {} MiB (monkd --quota-bytes)",
            mib(used),
            mib(limits.quota_bytes)
        ));
    }
    if free < limits.free_bytes_min {
        return Some(format!(
            "its filesystem has {} MiB free, under the floor of {} MiB (monkd --free-bytes-min)",
            mib(free),
            mib(limits.free_bytes_min)
        ));
    }
    None
}

/// Whether `command` may be proposed while the alarm is on: what frees space or stops
/// work, and what peers propose to keep the cluster running.
pub fn allowed_in_alarm(command: &Command) -> bool {
    matches!(
        command,
        Command::WorkloadStop { .. }
            | Command::WorkloadPurge { .. }
            | Command::TemplatesRemoved { .. }
            | Command::HubSourceRemoved { .. }
            | Command::ImageRemoved { .. }
            | Command::SecretRemoved { .. }
            | Command::RegistryCredentialRemoved { .. }
            | Command::UserRemoved { .. }
            | Command::JoinTokenRevoked { .. }
            | Command::PeerLeft { .. }
            | Command::PeerDown { .. }
            | Command::PeerUp { .. }
            | Command::WorkloadReport { .. }
            | Command::EntityVerbDone { .. }
            | Command::ActionDone { .. }
            | Command::PeerFactsReported { .. }
            | Command::PeerOverlayChanged { .. }
            | Command::Noop
    )
}

/// Bytes under `dir` (files only; unreadable entries count as nothing).
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Free bytes for unprivileged writers on the filesystem holding `dir`.
pub fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `path` is a valid C string and `stat` a plain struct statvfs fills.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(stat.f_bavail as u64 * stat.f_frsize as u64)
}

/// Measures the data dir until the node shuts down, setting and clearing the alarm.
pub async fn run(node: std::sync::Arc<crate::Node>) {
    let dir = node.config.data_dir.clone();
    let limits = node.config.storage;
    loop {
        if node.is_shut_down() {
            return;
        }
        let measured = {
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || (dir_bytes(&dir), free_bytes(&dir))).await
        };
        if let Ok((used, Ok(free))) = measured {
            let verdict = alarm(limits, used, free);
            let before = node.storage_alarm();
            if verdict != before {
                match &verdict {
                    Some(why) => warn!("storage alarm: new writes are refused: {why}"),
                    None => info!("storage alarm cleared: writes are accepted again"),
                }
                node.set_storage_alarm(verdict);
            }
        }
        tokio::time::sleep(STORAGE_CHECK_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alarm_names_the_limit_it_crossed_and_clears_below_it() {
        let limits = StorageLimits {
            quota_bytes: 100 << 20,
            free_bytes_min: 50 << 20,
        };
        assert_eq!(alarm(limits, 10 << 20, 1 << 30), None);
        let over = alarm(limits, 101 << 20, 1 << 30).unwrap();
        assert!(
            over.contains("101 MiB") && over.contains("--quota-bytes"),
            "{over}"
        );
        let low = alarm(limits, 10 << 20, 49 << 20).unwrap();
        assert!(
            low.contains("49 MiB free") && low.contains("--free-bytes-min"),
            "{low}"
        );
        assert!(allowed_in_alarm(&Command::WorkloadPurge {
            path: "a/b".into()
        }));
        assert!(!allowed_in_alarm(&Command::TemplatesLoaded {
            templates: vec![]
        }));
    }

    #[test]
    fn a_directory_is_measured_with_its_subdirectories() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), vec![0u8; 1000]).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/b"), vec![0u8; 24]).unwrap();
        assert_eq!(dir_bytes(dir.path()), 1024);
        assert!(free_bytes(dir.path()).unwrap() > 0);
        assert!(free_bytes(&dir.path().join("missing")).is_err());
    }
}
