//! Snapshots and compaction with real processes: a peer that joins after the leader
//! compacted its log can only catch up through InstallSnapshot over gRPC, and must
//! reach the same state digest; a restarted peer restores from its own snapshot.

mod support;

use std::time::Duration;

use support::*;

/// Small enough that a few dozen commands trigger snapshots and compaction.
const SNAPSHOT_EVERY: &str = "8";

fn consensus(addr: &str) -> serde_json::Value {
    json(addr, &["system", "consensus", "-o", "json"])
}

/// [`consensus`], or null while the peer cannot answer (a joiner that has not applied
/// the cluster's users yet says so and is asked again).
fn consensus_if_answered(addr: &str) -> serde_json::Value {
    let o = monk(addr, &["system", "consensus", "-o", "json"]);
    serde_json::from_slice(&o.stdout).unwrap_or_default()
}

#[test]
fn late_joiner_catches_up_from_a_snapshot() {
    let root = tempfile::tempdir().unwrap();
    let flags = ["--snapshot-every", SNAPSHOT_EVERY];
    let first = Peer::start_with(root.path(), "first", &flags);
    ok(&first.addr, &["cluster", "new", "--name", "snap"]);
    for i in 0..30 {
        let file = root.path().join(format!("t{i}.yaml"));
        std::fs::write(&file, format!("namespace: ns\nsvc-{i}:\n  defines: runnable\n  containers:\n    main:\n      image: busybox\n")).unwrap();
        ok(&first.addr, &["load", file.to_str().unwrap()]);
    }
    wait_for(
        Duration::from_secs(20),
        || consensus(&first.addr)["purged_index"].as_u64().is_some(),
        "the leader to compact its log",
    );

    let late = Peer::start_with(root.path(), "late", &flags);
    let token = ok(&first.addr, &["cluster", "token"]).trim().to_string();
    ok(&late.addr, &["cluster", "join", "--token", &token]);
    wait_for(
        Duration::from_secs(30),
        || {
            let (a, b) = (consensus(&first.addr), consensus_if_answered(&late.addr));
            a["applied_index"] == b["applied_index"] && a["state_digest"] == b["state_digest"]
        },
        "the late joiner to reach the leader's digest",
    );
    let joined = consensus(&late.addr);
    assert!(
        joined["snapshot_index"].as_u64().is_some_and(|i| i > 0),
        "the late joiner installed a snapshot: {joined}"
    );
    let listed = ok(&late.addr, &["list", "--stale"]);
    assert!(
        listed.contains("ns/svc-0") && listed.contains("ns/svc-29"),
        "{listed}"
    );
}

/// A single peer that compacted its log restarts from its stored snapshot plus the log
/// after it, with everything still there; its logs are JSON lines.
#[test]
fn restart_restores_from_the_stored_snapshot() {
    let root = tempfile::tempdir().unwrap();
    let flags = ["--snapshot-every", SNAPSHOT_EVERY, "--log-format", "json"];
    let mut peer = Peer::start_with(root.path(), "solo", &flags);
    ok(&peer.addr, &["cluster", "new", "--name", "snap"]);
    for i in 0..30 {
        let file = root.path().join(format!("t{i}.yaml"));
        std::fs::write(
            &file,
            format!("namespace: ns\nsvc-{i}:\n  defines: runnable\n"),
        )
        .unwrap();
        ok(&peer.addr, &["load", file.to_str().unwrap()]);
    }
    wait_for(
        Duration::from_secs(20),
        || consensus(&peer.addr)["purged_index"].as_u64().is_some(),
        "the log to be compacted",
    );
    let before = consensus(&peer.addr);
    peer.terminate();
    peer.restart();
    // openraft resumes a committed leadership without a new entry, so the restored
    // state must be exactly the one before: same applied index, same digest.
    wait_for(
        Duration::from_secs(30),
        || {
            let after = consensus(&peer.addr);
            after["applied_index"] == before["applied_index"]
                && after["state_digest"] == before["state_digest"]
                && after["snapshot_index"].as_u64().is_some()
        },
        "the restarted peer to restore the state it had",
    );
    let listed = ok(&peer.addr, &["list"]);
    assert!(
        listed.contains("ns/svc-0") && listed.contains("ns/svc-29"),
        "{listed}"
    );
    let online = ok(&peer.addr, &["replay"]);
    assert!(
        online.contains("snapshot"),
        "replay starts from the stored snapshot: {online}"
    );

    let log = peer.log_text();
    assert!(log.lines().count() >= 3, "monkd logged: {log}");
    for line in log.lines() {
        let entry: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("--log-format json wrote a non-JSON line ({e}): {line}"));
        assert!(
            entry.get("level").is_some() && entry.get("timestamp").is_some(),
            "{line}"
        );
    }
}
