//! A peer refuses to start on a corrupt data dir, naming what is broken, instead of
//! applying garbage; and nothing that was stored is lost when the damage is undone.

mod support;

use rocksdb::{Options, DB};
use support::*;

fn open_raw(dir: &std::path::Path) -> DB {
    DB::open_cf(
        &Options::default(),
        dir.join("raft"),
        ["logs", "meta", "sm"],
    )
    .expect("open the peer's RocksDB")
}

fn prepared_peer(root: &std::path::Path) -> Peer {
    let mut peer = Peer::start(root, "solo");
    ok(&peer.addr, &["cluster", "new", "--name", "c"]);
    let file = root.join("t.yaml");
    std::fs::write(&file, "namespace: ns\nweb:\n  defines: runnable\n").unwrap();
    ok(&peer.addr, &["load", file.to_str().unwrap()]);
    peer.terminate();
    peer
}

#[test]
fn corrupt_entry_stops_the_peer_with_its_index() {
    let root = tempfile::tempdir().unwrap();
    let mut peer = prepared_peer(root.path());
    let (index, original) = {
        let db = open_raw(&peer.data_dir);
        let logs = db.cf_handle("logs").unwrap();
        let (key, value) = db
            .iterator_cf(logs, rocksdb::IteratorMode::End)
            .next()
            .unwrap()
            .unwrap();
        let index = u64::from_be_bytes(key.as_ref().try_into().unwrap());
        let mut damaged = value.to_vec();
        let at = damaged.len() / 2;
        damaged[at] ^= 0x04;
        db.put_cf(logs, key, damaged).unwrap();
        (index, value.to_vec())
    };
    let (status, err) = peer.start_expecting_refusal();
    assert!(!status.success());
    assert!(
        err.contains(&format!("log entry {index} is corrupt")),
        "{err}"
    );
    assert!(err.contains("refusing to start"), "{err}");

    {
        let db = open_raw(&peer.data_dir);
        db.put_cf(db.cf_handle("logs").unwrap(), index.to_be_bytes(), original)
            .unwrap();
    }
    peer.restart();
    wait_for(
        std::time::Duration::from_secs(20),
        || {
            peer.monk(&["list", "--stale"]).status.success()
                && stdout(&peer.monk(&["list", "--stale"])).contains("ns/web")
        },
        "the repaired peer to serve its data",
    );
}

#[test]
fn corrupt_snapshot_stops_the_peer() {
    let root = tempfile::tempdir().unwrap();
    let peer = prepared_peer(root.path());
    {
        let db = open_raw(&peer.data_dir);
        let sm = db.cf_handle("sm").unwrap();
        // Any state will do: a byte of its body is flipped below.
        let mut bytes = monk_statemachine::encode_snapshot(&Default::default());
        let at = bytes.len() - 40;
        bytes[at] ^= 0x01;
        let meta = serde_json::json!({"last_log_id": null, "last_membership": {"log_id": null, "membership": {"configs": [], "nodes": {}}}, "snapshot_id": "x"});
        db.put_cf(sm, b"snapshot_meta", serde_json::to_vec(&meta).unwrap())
            .unwrap();
        db.put_cf(sm, b"snapshot", bytes).unwrap();
    }
    let (status, err) = peer.start_expecting_refusal();
    assert!(!status.success());
    assert!(
        err.contains("snapshot")
            && err.contains("checksum mismatch")
            && err.contains("refusing to start"),
        "{err}"
    );
}

/// Damage in the middle of the write-ahead log (entries RocksDB had not yet flushed
/// when the peer was killed) stops the peer: the default recovery would open without
/// every entry after the damage, and nothing else could tell.
#[test]
fn damage_inside_the_write_ahead_log_stops_the_peer() {
    let root = tempfile::tempdir().unwrap();
    let mut peer = Peer::start(root.path(), "solo");
    ok(&peer.addr, &["cluster", "new", "--name", "c"]);
    for i in 0..20 {
        let file = root.path().join(format!("t{i}.yaml"));
        std::fs::write(
            &file,
            format!("namespace: ns\nweb-{i}:\n  defines: runnable\n"),
        )
        .unwrap();
        ok(&peer.addr, &["load", file.to_str().unwrap()]);
    }
    // Killed: no flush, the entries live in the WAL only.
    peer.kill();
    let wal = std::fs::read_dir(peer.data_dir.join("raft"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .expect("a write-ahead log file");
    let mut bytes = std::fs::read(&wal).unwrap();
    assert!(
        bytes.len() > 4096,
        "{} holds {} bytes",
        wal.display(),
        bytes.len()
    );
    let at = bytes.len() / 3;
    bytes[at] ^= 0x5a;
    std::fs::write(&wal, &bytes).unwrap();
    let (status, err) = peer.start_expecting_refusal();
    assert!(
        !status.success(),
        "a peer must not open a damaged WAL: {err}"
    );
    assert!(err.to_lowercase().contains("corrupt"), "{err}");
}
