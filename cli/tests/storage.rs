//! A peer whose disk fills does not live on as a zombie that answers heartbeats but
//! commits nothing: it exits non-zero naming the cause, and once there is room again it
//! restarts with every acknowledged write.
//!
//! Fills a small tmpfs, which needs root (mount); without it the test says so and
//! skips, unless `MONK_REQUIRE_ROOT=1` (set by `.ci/run`) makes that a failure.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::*;

/// Size of the disk the peer is given, in MiB: room for RocksDB and a few loads.
const DISK_MIB: u32 = 24;
/// Size after "the operator freed space".
const GROWN_MIB: u32 = 256;
/// Loads tried before the disk must have filled.
const LOADS_MAX: usize = 60;

/// A tmpfs mounted for the test, unmounted when dropped.
struct Disk(PathBuf);

impl Disk {
    fn mount(at: &Path) -> Option<Disk> {
        std::fs::create_dir_all(at).unwrap();
        let size = format!("size={DISK_MIB}m");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &size, "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        if mounted {
            return Some(Disk(at.to_path_buf()));
        }
        let reason = "cannot mount a tmpfs (not root?)";
        if std::env::var("MONK_REQUIRE_ROOT").is_ok_and(|v| v == "1") {
            panic!("{reason}; MONK_REQUIRE_ROOT=1 makes this a failure");
        }
        eprintln!("SKIPPED disk-full test: {reason}");
        None
    }

    fn grow(&self) {
        let size = format!("remount,size={GROWN_MIB}m");
        let grown = Command::new("mount")
            .args(["-o", &size])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(grown.success(), "remount {}", self.0.display());
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_stops_the_peer_and_loses_nothing_acknowledged() {
    let root = tempfile::tempdir().unwrap();
    let Some(disk) = Disk::mount(&root.path().join("disk")) else {
        return;
    };
    let mut peer = Peer::start_with(&disk.0, "full", &["--containers", "none"]);
    ok(&peer.addr, &["cluster", "new", "--name", "full"]);
    // About 0.9 MB a load: the disk fills after a couple of dozen.
    let blob: String = (0..900_000)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    let file = root.path().join("big.yaml");
    std::fs::write(
        &file,
        format!("namespace: big\nblob:\n  defines: runnable\n  variables:\n    data: {blob}\n"),
    )
    .unwrap();
    let mut acknowledged = 0;
    let mut refusal = String::new();
    for _ in 0..LOADS_MAX {
        let o = peer.monk(&["load", file.to_str().unwrap()]);
        if !o.status.success() {
            refusal = stderr(&o);
            break;
        }
        acknowledged += 1;
    }
    assert!(
        !refusal.is_empty(),
        "{LOADS_MAX} loads fit on {DISK_MIB} MiB"
    );
    assert!(
        acknowledged > 0,
        "nothing loaded before the disk filled: {refusal}"
    );

    let status = peer
        .wait_exit(Duration::from_secs(20))
        .expect("a peer whose storage failed must exit, not live on");
    assert!(!status.success(), "{status}");
    let log = peer.log_text();
    assert!(log.contains("raft stopped"), "{log}");
    assert!(log.contains("No space left on device"), "{log}");

    // Room again: the peer comes back with every acknowledged load.
    disk.grow();
    peer.restart();
    let rows = json(&peer.addr, &["list", "-o", "json"]);
    let generation = rows[0]["generation"].as_u64().unwrap();
    assert!(
        generation >= acknowledged,
        "{acknowledged} loads were acknowledged, generation {generation} survived"
    );
    peer.terminate();
}
