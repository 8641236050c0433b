//! Acknowledged means durable, through a real power loss: each peer's data dir is a
//! lossy FUSE mount (`monk_testkit::lossyfs`) that, when the power goes, keeps only
//! what was fsynced, where a SIGKILL alone would leave every written byte in the page
//! cache. After each loss the peers restart on the durable image: every acknowledged
//! `monk load` is there, the peers start without complaint, and three peers that lost
//! power together still hold the same log.
//!
//! Needs root and `/dev/fuse`; without them each test says so and skips, unless
//! `MONK_REQUIRE_ROOT=1` (set by `.ci/run`) makes that a failure.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use monk_testkit::lossyfs::{LossyMount, PowerLoss};
use support::*;

/// Power losses in one test.
const ROUNDS: usize = 3;
/// Loads acknowledged before each power loss of the single peer.
const LOADS_PER_ROUND: usize = 6;
/// How long the client of the three peers loads before they all lose power.
const LOAD_WINDOW: Duration = Duration::from_secs(3);
/// Loads the client of the three peers tries in one round at most.
const CLIENT_LOADS_MAX: usize = 200;
/// How long a restarted cluster may take to elect a leader and answer a read.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// A template file `templates/t<n>.yaml` defining the runnable `power/t<n>`.
fn template(root: &Path, n: usize) -> String {
    let dir = root.join("templates");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("t{n}.yaml"));
    std::fs::write(
        &path,
        format!("namespace: power\nt{n}:\n  defines: runnable\n  variables:\n    n: {n}\n"),
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

/// The template paths a linearizable `monk list` shows, or `None` while it fails.
fn listed(addr: &str) -> Option<BTreeSet<String>> {
    let o = monk(addr, &["list", "-o", "json"]);
    if !o.status.success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).ok()?;
    Some(
        v.as_array()?
            .iter()
            .filter_map(|t| t["path"].as_str().map(String::from))
            .collect(),
    )
}

/// Waits until `addr` answers a linearizable list; what it lists.
fn listed_after_recovery(addr: &str) -> BTreeSet<String> {
    let mut seen = None;
    wait_for(
        RECOVERY_TIMEOUT,
        || {
            seen = listed(addr);
            seen.is_some()
        },
        &format!("{addr} to answer `monk list` after the power loss"),
    );
    seen.unwrap_or_default()
}

/// Lines of a peer's stderr since `from` that say something went wrong at start: an
/// error (except openraft's replication to a peer not restarted yet, which a peer
/// started before the others logs), or a word of damage, refusal or a panic.
fn complaints(log: &str, from: usize) -> Vec<String> {
    log.get(from..)
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            let lower = l.to_ascii_lowercase();
            let error = l.contains(" ERROR ") && !l.contains("openraft::replication");
            error
                || ["corrupt", "refusing", "panicked", "raft stopped"]
                    .iter()
                    .any(|w| lower.contains(w))
        })
        .map(String::from)
        .collect()
}

fn missing(acknowledged: &BTreeSet<String>, present: &BTreeSet<String>) -> Vec<String> {
    acknowledged.difference(present).cloned().collect()
}

/// One peer on a lossy data dir: rounds of acknowledged loads, then SIGKILL and the
/// unsynced writes dropped; after each restart every acknowledged load is listed.
#[test]
fn a_single_peer_keeps_every_acknowledged_load_through_power_losses() {
    let root = tempfile::tempdir().unwrap();
    let Some(mut disk) = LossyMount::mount_or_skip(
        &root.path().join("solo.backing"),
        &root.path().join("solo"),
        "single-peer power loss",
    ) else {
        return;
    };
    // The data dir is the mount itself; the peer's log (`solo.log`) is outside it.
    let mut peer = Peer::start_with(root.path(), "solo", &["--containers", "none"]);
    ok(&peer.addr, &["cluster", "new", "--name", "power"]);
    let mut acknowledged = BTreeSet::new();
    let mut dropped = PowerLoss::default();
    for round in 0..ROUNDS {
        for i in 0..LOADS_PER_ROUND {
            let n = round * LOADS_PER_ROUND + i;
            ok(&peer.addr, &["load", &template(root.path(), n)]);
            acknowledged.insert(format!("power/t{n}"));
        }
        peer.kill();
        let lost = disk.power_loss().unwrap();
        eprintln!("round {round}: the power loss undid {lost:?}");
        dropped.bytes_cut += lost.bytes_cut;
        dropped.creations_dropped += lost.creations_dropped;
        disk.remount().unwrap();
        let log_from = peer.log_text().len();
        peer.restart();
        let present = listed_after_recovery(&peer.addr);
        assert!(
            missing(&acknowledged, &present).is_empty(),
            "round {round}: acknowledged loads lost in a power loss: {:?}\nlog:\n{}",
            missing(&acknowledged, &present),
            peer.log_text()
        );
        // Writes are accepted again.
        ok(&peer.addr, &["load", &template(root.path(), 1000 + round)]);
        acknowledged.insert(format!("power/t{}", 1000 + round));
        let complaints = complaints(&peer.log_text(), log_from);
        assert!(
            complaints.is_empty(),
            "round {round}: the peer complained at start:\n{}",
            complaints.join("\n")
        );
    }
    // The layer did drop something (RocksDB's unsynced info log, at least): the test
    // ran on a disk that loses, not one that keeps everything.
    assert!(
        dropped.bytes_cut + dropped.creations_dropped > 0,
        "no power loss dropped anything: {dropped:?}"
    );
    peer.terminate();
}

/// Copies the directories and regular files under `from` to `to` (not the socket).
fn copy_files(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            copy_files(&entry.path(), &to.join(entry.file_name()));
        } else if kind.is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// Stops the peers and keeps the test's directory (durable images, peers' logs) for
/// `monk log --data-dir`; its path.
fn evidence(root: tempfile::TempDir, peers: &mut [Peer]) -> String {
    for peer in peers.iter_mut() {
        peer.kill();
    }
    root.keep().display().to_string()
}

/// The three peers' SIGKILL in one `kill` command: the same moment, as for a rack
/// losing power.
fn kill_together(peers: &mut [Peer]) {
    let mut kill = Command::new("kill");
    kill.arg("-KILL");
    for peer in peers.iter() {
        if let Some(pid) = peer.pid() {
            kill.arg(pid.to_string());
        }
    }
    let _ = kill.status();
    for peer in peers.iter_mut() {
        peer.kill();
    }
}

/// Three peers, each on its own lossy disk, lose power at the same moment while a
/// client loads; restarted, they hold every acknowledged load and agree on the log.
#[test]
fn three_peers_losing_power_together_keep_every_acknowledged_load_and_agree() {
    let root = tempfile::tempdir().unwrap();
    let names = ["alpha", "beta", "gamma"];
    let mut disks = Vec::new();
    for name in names {
        let Some(disk) = LossyMount::mount_or_skip(
            &root.path().join(format!("{name}.backing")),
            &root.path().join(name),
            "three-peer power loss",
        ) else {
            return;
        };
        disks.push(disk);
    }
    let mut peers: Vec<Peer> = names
        .iter()
        .map(|n| Peer::start_with(root.path(), n, &["--containers", "none"]))
        .collect();
    ok(&peers[0].addr, &["cluster", "new", "--name", "rack"]);
    for peer in &peers[1..] {
        let token = ok(&peers[0].addr, &["cluster", "token"]).trim().to_string();
        ok(&peer.addr, &["cluster", "join", "--token", &token]);
    }
    wait_for(
        Duration::from_secs(40),
        || {
            let o = monk(&peers[0].addr, &["cluster", "peers", "-o", "json"]);
            let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap_or_default();
            v.as_array()
                .is_some_and(|a| a.len() == 3 && a.iter().all(|p| p["voter"] == true))
        },
        "three voters",
    );
    let addrs: Vec<String> = peers.iter().map(|p| p.addr.clone()).collect();
    let acknowledged = Arc::new(Mutex::new(BTreeSet::new()));
    let mut next = 0;
    for round in 0..2 {
        // A client loads distinct templates through every peer in turn until the power
        // goes; only a load that returned success counts.
        let stop = Arc::new(AtomicBool::new(false));
        let client = {
            let (stop, acknowledged, addrs) = (stop.clone(), acknowledged.clone(), addrs.clone());
            let dir = root.path().to_path_buf();
            let first = next;
            std::thread::spawn(move || {
                let mut tried = 0;
                while !stop.load(Ordering::SeqCst) && tried < CLIENT_LOADS_MAX {
                    let n = first + tried;
                    let o = monk(&addrs[n % addrs.len()], &["load", &template(&dir, n)]);
                    if o.status.success() {
                        acknowledged.lock().unwrap().insert(format!("power/t{n}"));
                    }
                    tried += 1;
                }
                tried
            })
        };
        let started = Instant::now();
        while started.elapsed() < LOAD_WINDOW {
            std::thread::sleep(Duration::from_millis(100));
        }
        kill_together(&mut peers);
        stop.store(true, Ordering::SeqCst);
        next += client.join().unwrap();
        for (disk, name) in disks.iter_mut().zip(names) {
            let lost = disk.power_loss().unwrap();
            eprintln!("round {round}: {name}'s power loss undid {lost:?}");
        }
        // The durable images as the power loss left them, kept if a load went missing.
        for (disk, name) in disks.iter().zip(names) {
            copy_files(
                disk.backing(),
                &root.path().join(format!("durable-{round}/{name}")),
            );
        }
        for disk in &mut disks {
            disk.remount().unwrap();
        }
        let log_from: Vec<usize> = peers.iter().map(|p| p.log_text().len()).collect();
        for peer in &mut peers {
            peer.restart();
        }
        let acknowledged = acknowledged.lock().unwrap().clone();
        assert!(
            !acknowledged.is_empty(),
            "round {round}: no load was acknowledged"
        );
        for peer in &peers {
            let present = listed_after_recovery(&peer.addr);
            let lost = missing(&acknowledged, &present);
            if !lost.is_empty() {
                let kept = evidence(root, &mut peers);
                panic!(
                    "round {round}: acknowledged loads lost when all three lost power: {lost:?}; \
                     the durable images are kept in {kept}/durable-{round}, the peers' logs beside them"
                );
            }
        }
        // The three logs agree (`monk verify` over the peers' Raft data); a peer still
        // catching up is asked again, a divergence is reported as it is.
        let deadline = Instant::now() + RECOVERY_TIMEOUT;
        let verified = loop {
            let o = monk(
                &addrs[0],
                &[
                    "verify", "--peer", &addrs[0], "--peer", &addrs[1], "--peer", &addrs[2],
                ],
            );
            let text = format!("{}{}", stdout(&o), stderr(&o));
            if o.status.success() || text.contains("diverge") || Instant::now() >= deadline {
                break text;
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        assert!(
            verified.contains("consistent up to"),
            "round {round}: {verified}"
        );
        for (peer, from) in peers.iter().zip(log_from) {
            let complaints = complaints(&peer.log_text(), from);
            assert!(
                complaints.is_empty(),
                "round {round}: {} complained at start:\n{}",
                peer.name,
                complaints.join("\n")
            );
        }
    }
    for peer in &mut peers {
        peer.terminate();
    }
}
