//! Incident forensics through the real `monk` binary on real data dirs.
//!
//! - A scripted scenario with real `monkd` peers: the offline replay of a peer's data
//!   dir reaches the digest the live cluster reported, and the audit commands work on
//!   a data dir while its `monkd` runs. With `MONK_WRITE_AUDIT_FIXTURE=1` the scenario
//!   also (re)writes the committed fixture `tests/fixtures/datadir-v1/`.
//! - The committed fixture (written by the first release) is checked against text
//!   expectations in `tests/expect/audit-*.txt` (regenerate with `UPDATE_EXPECT=1`).
//! - Tampering with one entry on disk is reported by `verify` at exactly that index;
//!   a corrupt entry is reported with index and byte offset and everything before it
//!   is still printed.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use monk_statemachine::{Command, Proposal, SecretScope, FORMAT_VERSION};
use support::*;

const FIXTURE: &str = "tests/fixtures/datadir-v1";

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `monk` offline from the crate directory (so fixture paths print relative).
fn offline(args: &[&str]) -> Output {
    std::process::Command::new(monk_bin())
        .args(args)
        .current_dir(manifest_dir())
        .env_remove("MONK_ADDR")
        .output()
        .expect("run monk")
}

fn offline_ok(args: &[&str]) -> String {
    let o = offline(args);
    assert!(o.status.success(), "monk {args:?} failed: {}", stderr(&o));
    stdout(&o)
}

fn propose(addr: &str, actor: &str, command: Command) -> monk_statemachine::Applied {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // As the peer itself: only peers send executor reports and raw sealed
        // secrets, and a peer's proposal keeps the actor it names.
        let mut client = monk_testkit::process::peer_client(addr).await.unwrap();
        let proposal = Proposal {
            format_version: FORMAT_VERSION,
            proposed_at_ms: 0,
            actor: actor.into(),
            request_id: format!("audit-{}", command.kind()),
            command,
        };
        client.propose_raw(&proposal).await.unwrap().applied
    })
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

fn peer_status(addr: &str, name: &str) -> Option<bool> {
    let peers = json(addr, &["cluster", "peers", "-o", "json"]);
    peers
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["up"].as_bool())
}

fn voters(addr: &str) -> usize {
    let peers = json(addr, &["cluster", "peers", "-o", "json"]);
    peers
        .as_array()
        .map_or(0, |a| a.iter().filter(|p| p["voter"] == true).count())
}

/// The scripted incident: a three-peer cluster, definitions loaded and changed, secrets
/// set, a rejected removal, one peer killed (declared down: the other two keep a
/// quorum) and restarted (up again). Returns the data dirs of the two peers that stay
/// up and the live applied index and digest of the first.
fn scenario(root: &Path) -> ([PathBuf; 2], u64, String) {
    let alpha = Peer::start(root, "alpha");
    let beta = Peer::start(root, "beta");
    let mut gamma = Peer::start(root, "gamma");
    form_three_voters(&alpha, &beta, &gamma, "forensics");
    let v1 = write(
        root,
        "v1.yaml",
        "namespace: shop\nweb:\n  defines: runnable\n  containers:\n    main:\n      image: nginx:1.25\n  variables:\n    port: 8080\ndb:\n  defines: runnable\n  containers:\n    main:\n      image: postgres:16\n",
    );
    ok(&alpha.addr, &["load", &v1]);
    let secret = |name: &str, scope: SecretScope| Command::SecretSet {
        name: name.into(),
        scope,
        sealed: b"sealed-bytes-not-plaintext".to_vec(),
    };
    assert!(propose(
        &alpha.addr,
        "cli:ops@laptop",
        secret("db-password", SecretScope::Entity("shop/db".into()))
    )
    .is_accepted());
    assert!(propose(
        &alpha.addr,
        "cli:ops@laptop",
        secret("registry-token", SecretScope::Global)
    )
    .is_accepted());
    let v2 = write(
        root,
        "v2.yaml",
        "namespace: shop\nweb:\n  defines: runnable\n  containers:\n    main:\n      image: nginx:1.27\n  variables:\n    port: 9090\n",
    );
    ok(&alpha.addr, &["load", &v2]);
    let rejected = propose(
        &alpha.addr,
        "cli:intern@laptop",
        Command::TemplatesRemoved {
            paths: vec!["shop/cache".into()],
        },
    );
    assert!(!rejected.is_accepted());
    assert!(propose(
        &alpha.addr,
        "cli:ops@laptop",
        Command::TemplatesRemoved {
            paths: vec!["shop/db".into()]
        }
    )
    .is_accepted());

    gamma.kill();
    wait_for(
        Duration::from_secs(30),
        || peer_status(&alpha.addr, "gamma") == Some(false),
        "gamma declared down",
    );
    gamma.restart();
    wait_for(
        Duration::from_secs(30),
        || peer_status(&alpha.addr, "gamma") == Some(true),
        "gamma up again",
    );

    // Offline commands work on a data dir while its monkd runs.
    let live_log = offline_ok(&["log", "--data-dir", alpha.data_dir.to_str().unwrap()]);
    assert!(live_log.contains("peer-down"), "{live_log}");

    settle_and_stop(alpha, beta, gamma)
}

/// Alpha creates the cluster, beta and gamma join, and all three become voters: only
/// then does killing one leave a quorum to declare it down.
fn form_three_voters(alpha: &Peer, beta: &Peer, gamma: &Peer, cluster: &str) {
    ok(&alpha.addr, &["cluster", "new", "--name", cluster]);
    for joiner in [beta, gamma] {
        let token = ok(&alpha.addr, &["cluster", "token"]).trim().to_string();
        ok(&joiner.addr, &["cluster", "join", "--token", &token]);
    }
    wait_for(
        Duration::from_secs(30),
        || voters(&alpha.addr) == 3,
        "three voters",
    );
}

/// Waits until alpha and beta applied the same entries, stops all three, and returns
/// the two data dirs with alpha's applied index and state digest.
fn settle_and_stop(
    mut alpha: Peer,
    mut beta: Peer,
    mut gamma: Peer,
) -> ([PathBuf; 2], u64, String) {
    wait_for(
        Duration::from_secs(20),
        || {
            let a = json(&alpha.addr, &["system", "consensus", "-o", "json"]);
            let b = json(&beta.addr, &["system", "consensus", "-o", "json"]);
            a["applied_index"] == b["applied_index"] && a["state_digest"] == b["state_digest"]
        },
        "both peers applied the same entries",
    );
    let consensus = json(&alpha.addr, &["system", "consensus", "-o", "json"]);
    let index = consensus["applied_index"].as_u64().unwrap();
    let digest = consensus["state_digest"].as_str().unwrap().to_string();
    alpha.terminate();
    beta.terminate();
    gamma.terminate();
    (
        [alpha.data_dir.clone(), beta.data_dir.clone()],
        index,
        digest,
    )
}

/// Copies a data dir without RocksDB's lock and info logs (not needed to read it).
fn copy_data_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "LOCK" || name.starts_with("LOG") {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            copy_data_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn scenario_replay_reaches_the_live_digest() {
    let root = tempfile::tempdir().unwrap();
    let (dirs, index, live_digest) = scenario(root.path());
    let replayed = offline_ok(&[
        "replay",
        "--data-dir",
        dirs[0].to_str().unwrap(),
        "--to-index",
        &index.to_string(),
        "-o",
        "json",
    ]);
    let replayed: serde_json::Value = serde_json::from_str(&replayed).unwrap();
    assert_eq!(replayed["applied_index"].as_u64(), Some(index));
    assert_eq!(
        replayed["state_digest"].as_str(),
        Some(live_digest.as_str())
    );
    let verified = offline(&[
        "verify",
        "--data-dir",
        dirs[0].to_str().unwrap(),
        "--data-dir",
        dirs[1].to_str().unwrap(),
    ]);
    assert!(
        verified.status.success(),
        "{}{}",
        stdout(&verified),
        stderr(&verified)
    );
    if std::env::var_os("MONK_WRITE_AUDIT_FIXTURE").is_some() {
        let fixture = manifest_dir().join(FIXTURE);
        let _ = std::fs::remove_dir_all(&fixture);
        copy_data_dir(&dirs[0], &fixture.join("alpha"));
        copy_data_dir(&dirs[1], &fixture.join("beta"));
    }
}

/// One `monk` run as it appears in a text fixture.
fn transcript(args: &[&str]) -> String {
    let o = offline(args);
    let mut text = format!("$ monk {}\n{}", args.join(" "), stdout(&o));
    if !o.status.success() {
        text.push_str(&format!(
            "[exit {}] {}",
            o.status.code().unwrap_or(-1),
            stderr(&o)
        ));
    }
    text + "\n"
}

fn check_expect(name: &str, actual: &str) {
    expect_test::expect_file![manifest_dir().join("tests/expect").join(name)].assert_eq(actual);
}

fn alpha() -> String {
    format!("{FIXTURE}/alpha")
}

fn beta() -> String {
    format!("{FIXTURE}/beta")
}

#[test]
fn fixture_log_matches_expectation() {
    let a = alpha();
    let mut text = transcript(&["log", "--data-dir", &a]);
    text += &transcript(&[
        "log",
        "--data-dir",
        &a,
        "--kind",
        "templates-loaded",
        "-o",
        "json",
    ]);
    text += &transcript(&["log", "--data-dir", &a, "--path", "shop/db"]);
    text += &transcript(&[
        "log",
        "--data-dir",
        &format!("{a}/raft"),
        "--actor",
        "cli:intern@laptop",
    ]);
    text += &transcript(&["log", "--data-dir", &a, "--from", "7", "--to", "13"]);
    text += &transcript(&[
        "log",
        "--data-dir",
        &a,
        "--since",
        "2026-11-22T03:14:23.980Z",
        "--until",
        "2026-11-22T04:14:23.995+01:00",
    ]);
    check_expect("audit-log.txt", &text);
}

#[test]
fn fixture_replay_matches_expectation() {
    let a = alpha();
    let mut text = transcript(&["replay", "--data-dir", &a]);
    text += &transcript(&["replay", "--data-dir", &a, "--to-index", "13"]);
    text += &transcript(&[
        "replay",
        "--data-dir",
        &a,
        "--to-time",
        "2026-11-22T03:14:24.000Z",
    ]);
    text += &transcript(&["replay", "--data-dir", &a, "--to-index", "99"]);
    text += &transcript(&["replay", "--data-dir", &a, "-o", "json"]);
    check_expect("audit-replay.txt", &text);
}

#[test]
fn fixture_diff_matches_expectation() {
    let a = alpha();
    let mut text = transcript(&["diff", "--data-dir", &a, "0", "15"]);
    text += &transcript(&["diff", "--data-dir", &a, "15", "99999"]);
    text += &transcript(&["diff", "--data-dir", &a, "15", "13"]);
    text += &transcript(&[
        "diff",
        "--data-dir",
        &a,
        "2026-11-22T03:14:25Z",
        "2026-11-22T03:14:31Z",
    ]);
    text += &transcript(&["diff", "--data-dir", &a, "13", "19", "-o", "json"]);
    check_expect("audit-diff.txt", &text);
}

#[test]
fn fixture_history_matches_expectation() {
    let a = alpha();
    let mut text = transcript(&["history", "--data-dir", &a, "shop/web"]);
    text += &transcript(&["history", "--data-dir", &a, "shop/db"]);
    text += &transcript(&["history", "--data-dir", &a, "peer/3"]);
    text += &transcript(&["history", "--data-dir", &a, "shop/web", "-o", "json"]);
    check_expect("audit-history.txt", &text);
}

#[test]
fn fixture_verify_and_snapshot_match_expectation() {
    let (a, b) = (alpha(), beta());
    let mut text = transcript(&["verify", "--data-dir", &a, "--data-dir", &b]);
    text += &transcript(&["verify", "--data-dir", &a, "--data-dir", &b, "-o", "json"]);
    text += &transcript(&["snapshot", "inspect", &a]);
    check_expect("audit-verify.txt", &text);
}

/// The fixture is plain files a fresh clone can open read-only, and it stays small.
#[test]
fn first_release_fixture_is_plain_small_and_replays() {
    let root = manifest_dir().join(FIXTURE);
    let mut total = 0;
    let mut names = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let kind = entry.file_type().unwrap();
            assert!(
                !kind.is_symlink(),
                "{} is a symlink",
                entry.path().display()
            );
            if kind.is_dir() {
                stack.push(entry.path());
            } else {
                total += entry.metadata().unwrap().len();
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
    }
    assert!(total < 400 * 1024, "fixture is {total} bytes");
    for needed in ["CURRENT", "node.json"] {
        assert!(
            names.iter().any(|n| n == needed),
            "no {needed} in {names:?}"
        );
    }
    assert!(
        names.iter().any(|n| n.starts_with("MANIFEST-")),
        "{names:?}"
    );
    for dir in [alpha(), beta()] {
        let out = offline_ok(&["replay", "--data-dir", &dir, "-o", "json"]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["state"]["cluster_name"], "forensics");
        assert!(v["applied_index"].as_u64().unwrap() > 10, "{v}");
        assert!(!out.contains("sealed"), "{out}");
    }
}

fn open_rw(data_dir: &Path) -> rocksdb::DB {
    rocksdb::DB::open_cf(
        &rocksdb::Options::default(),
        data_dir.join("raft"),
        ["logs", "meta", "sm"],
    )
    .unwrap()
}

/// A copy of the fixture's first peer with entry `index` rewritten by `change`.
fn tampered_copy(root: &Path, index: u64, change: impl FnOnce(Vec<u8>) -> Vec<u8>) -> PathBuf {
    let dir = root.join("tampered");
    copy_data_dir(&manifest_dir().join(FIXTURE).join("alpha"), &dir);
    let db = open_rw(&dir);
    let logs = db.cf_handle("logs").unwrap();
    let value = db
        .get_cf(logs, index.to_be_bytes())
        .unwrap()
        .expect("entry exists");
    db.put_cf(logs, index.to_be_bytes(), change(value)).unwrap();
    dir
}

#[test]
fn verify_reports_the_index_of_an_entry_changed_on_disk() {
    let root = tempfile::tempdir().unwrap();
    const TAMPERED: u64 = 14;
    // A valid entry with a different actor and a fresh checksum: only a comparison
    // with another peer can tell.
    let dir = tampered_copy(root.path(), TAMPERED, |bytes| {
        let mut entry = monk_log::codec::decode_entry(TAMPERED, &bytes).unwrap();
        match &mut entry.payload {
            openraft::EntryPayload::Normal(p) => p.actor = "cli:mallory@elsewhere".into(),
            other => panic!("entry {TAMPERED} is {other:?}, pick a normal entry"),
        }
        monk_log::codec::encode_entry(&entry)
    });
    let o = offline(&[
        "verify",
        "--data-dir",
        &beta(),
        "--data-dir",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let text = stdout(&o);
    assert!(
        text.contains(&format!("first difference at index {TAMPERED}")),
        "{text}"
    );
    assert!(text.contains("cli:mallory@elsewhere"), "{text}");

    // Three peers: each compared with the first.
    let o = offline(&[
        "verify",
        "--data-dir",
        &alpha(),
        "--data-dir",
        &beta(),
        "--data-dir",
        dir.to_str().unwrap(),
    ]);
    let text = stdout(&o);
    assert!(text.contains("beta: consistent up to 20"), "{text}");
    assert!(
        text.contains(&format!("tampered: first difference at index {TAMPERED}")),
        "{text}"
    );

    let json_out = offline(&[
        "verify",
        "--data-dir",
        &beta(),
        "--data-dir",
        dir.to_str().unwrap(),
        "-o",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&json_out)).unwrap();
    assert_eq!(v["consistent"], false);
    assert_eq!(v["peers"][0]["index"].as_u64(), Some(TAMPERED));
}

#[test]
fn corrupt_entry_is_reported_and_what_came_before_is_kept() {
    let root = tempfile::tempdir().unwrap();
    const CORRUPT: u64 = 14;
    let dir = tampered_copy(root.path(), CORRUPT, |mut bytes| {
        let at = bytes.len() / 2;
        bytes[at] ^= 0x10;
        bytes
    });
    let d = dir.to_str().unwrap();
    let o = offline(&["log", "--data-dir", d]);
    assert_eq!(o.status.code(), Some(1));
    let (out, err) = (stdout(&o), stderr(&o));
    assert!(
        err.contains(&format!("log entry {CORRUPT} is corrupt at byte")),
        "{err}"
    );
    assert!(
        err.contains(&format!("up to index {}", CORRUPT - 1)),
        "{err}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with(&format!("{} ", CORRUPT - 1))),
        "{out}"
    );
    assert!(
        !out.lines().any(|l| l.starts_with(&format!("{CORRUPT} "))),
        "{out}"
    );

    let o = offline(&["replay", "--data-dir", d, "-o", "json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["applied_index"].as_u64(), Some(CORRUPT - 1));

    let o = offline(&["verify", "--data-dir", &alpha(), "--data-dir", d]);
    assert!(
        stdout(&o).contains(&format!("first difference at index {CORRUPT}")),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("checksum mismatch"), "{}", stdout(&o));
}

#[test]
fn bad_arguments_fail_with_one_line() {
    let o = offline(&["replay", "--data-dir", "/nonexistent/monk", "-o", "json"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no such data dir"), "{}", stderr(&o));
    let o = offline(&["replay", "--data-dir", &alpha(), "--to-time", "yesterday"]);
    assert!(
        stderr(&o).contains("not an RFC 3339 time"),
        "{}",
        stderr(&o)
    );
    let o = offline(&["history", "--data-dir", &alpha(), "peer/x"]);
    assert!(stderr(&o).contains("peer/ID"), "{}", stderr(&o));
}

/// Writes entries 0..=40 with the live store code into `dir/raft`; with `compact`,
/// a snapshot after entry 30 and the log purged up to 20 (as compaction does).
fn synthetic_data_dir(dir: &Path, compact: bool) {
    use monk_testkit::datadir::{blank, membership, normal, DataDirWriter};
    let proposal = |index: u64, command: Command| Proposal {
        format_version: FORMAT_VERSION,
        proposed_at_ms: 1_700_000_000_000 + index * 1_000,
        actor: "cli:test".into(),
        request_id: format!("r{index}"),
        command,
    };
    let mut writer = DataDirWriter::create(&dir.join("raft")).unwrap();
    let created = Command::ClusterCreated {
        name: "compacted".into(),
        first_peer_name: "solo".into(),
        first_peer_address: "127.0.0.1:1".into(),
        tags: vec![],
        capacity: Default::default(),
        facts: None,
        admin_token_sha256: None,
        overlay_range: None,
        overlay: None,
        open_network: false,
    };
    writer
        .append_and_apply(vec![
            membership(0, 0),
            blank(1, 1),
            normal(1, 2, proposal(2, created)),
        ])
        .unwrap();
    for index in 3..=40u64 {
        let command = if index % 10 == 0 {
            Command::SecretSet {
                name: format!("s{index}"),
                scope: SecretScope::Global,
                sealed: vec![0xab; 8],
            }
        } else {
            Command::Noop
        };
        writer
            .append_and_apply(vec![normal(1, index, proposal(index, command))])
            .unwrap();
        if compact && index == 30 {
            writer.snapshot().unwrap();
            writer.purge(1, 20).unwrap();
        }
    }
}

#[test]
fn compacted_data_dir_replays_from_its_snapshot_and_says_what_is_possible() {
    let root = tempfile::tempdir().unwrap();
    let (compacted, full) = (root.path().join("compacted"), root.path().join("full"));
    synthetic_data_dir(&compacted, true);
    synthetic_data_dir(&full, false);
    let c = compacted.to_str().unwrap();

    let inspect = offline_ok(&["snapshot", "inspect", c]);
    assert!(inspect.contains("index     30"), "{inspect}");
    assert!(inspect.contains("format    1"), "{inspect}");
    assert!(
        inspect
            .lines()
            .any(|l| l.starts_with("secrets") && l.contains(" 3 ")),
        "{inspect}"
    );
    let inspect: serde_json::Value =
        serde_json::from_str(&offline_ok(&["snapshot", "inspect", c, "-o", "json"])).unwrap();
    assert_eq!(inspect["index"].as_u64(), Some(30));

    let o = offline(&["replay", "--data-dir", c, "--to-index", "25"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("30..=40"), "{}", stderr(&o));

    let replayed = offline_ok(&["replay", "--data-dir", c, "--to-index", "35"]);
    assert!(
        replayed.contains("from the snapshot at index 30 (term 1) to index 35"),
        "{replayed}"
    );
    let at = |dir: &str, index: &str| -> serde_json::Value {
        serde_json::from_str(&offline_ok(&[
            "replay",
            "--data-dir",
            dir,
            "--to-index",
            index,
            "-o",
            "json",
        ]))
        .unwrap()
    };
    assert_eq!(
        at(c, "35")["state_digest"],
        at(full.to_str().unwrap(), "35")["state_digest"]
    );

    let log = offline_ok(&["log", "--data-dir", c, "--to", "32"]);
    assert!(
        log.lines()
            .any(|l| l.starts_with("21 ") && l.ends_with("(in snapshot)")),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.starts_with("31 ") && l.ends_with("accepted")),
        "{log}"
    );

    let verified = offline_ok(&[
        "verify",
        "--data-dir",
        full.to_str().unwrap(),
        "--data-dir",
        c,
    ]);
    assert!(verified.contains("consistent up to 40"), "{verified}");

    // A snapshot file (the bytes of the stored snapshot) inspects the same way.
    let reader = monk_log::DataDirReader::open(&compacted.join("raft")).unwrap();
    let (_, bytes) = reader.snapshot().unwrap().unwrap();
    let file = root.path().join("snap.bin");
    std::fs::write(&file, bytes).unwrap();
    let from_file = offline_ok(&["snapshot", "inspect", file.to_str().unwrap()]);
    assert!(from_file.contains("index     30"), "{from_file}");
    assert!(!from_file.contains("abab"), "{from_file}");
}

#[test]
fn log_lists_entries_inside_the_snapshot_without_results() {
    let root = tempfile::tempdir().unwrap();
    let compacted = root.path().join("compacted");
    synthetic_data_dir(&compacted, true);
    let log = offline_ok(&[
        "log",
        "--data-dir",
        compacted.to_str().unwrap(),
        "--to",
        "25",
        "-o",
        "json",
    ]);
    let rows: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.first().and_then(|r| r["index"].as_u64()), Some(21));
    assert_eq!(rows.last().and_then(|r| r["index"].as_u64()), Some(25));
    assert!(rows.iter().all(|r| r["result"].is_null()), "{log}");
}

// ---------------------------------------------------------------------------------
// Workloads in the audit: a second committed fixture, written by a scenario with
// three real `monkd` peers (no container executor: reports are proposed the way an
// executor would, so the fixture does not depend on Docker).

const WORKLOAD_FIXTURE: &str = "tests/fixtures/datadir-workloads";

fn instances(addr: &str) -> Vec<serde_json::Value> {
    json(addr, &["ps", "-o", "json"])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Reports every replica of `path` running from the peer it is placed on.
fn report_running(addr: &str, path: &str) {
    for i in instances(addr).iter().filter(|i| i["path"] == path) {
        let Some(peer) = i["peer"].as_u64() else {
            continue;
        };
        let applied = propose(
            addr,
            &format!("peer:{peer}/executor"),
            Command::WorkloadReport {
                peer,
                path: path.into(),
                replica: i["replica"].as_u64().unwrap() as u32,
                generation: i["generation"].as_u64().unwrap(),
                status: monk_statemachine::InstanceStatus::Running,
                message: String::new(),
                addresses: Default::default(),
            },
        );
        assert!(applied.is_accepted(), "{applied:?}");
    }
}

/// The scripted workload incident: a web tier and a database run, an executor reports,
/// a stale report from the wrong peer is rejected, the web tier is updated, a peer that
/// holds replicas is killed (its replicas move), comes back, and the web tier is
/// scaled down and the database stopped.
fn workload_scenario(root: &Path) -> ([PathBuf; 2], u64, String) {
    let none = ["--containers", "none"];
    let alpha = Peer::start_with(root, "alpha", &[&none[..], &["--tags", "edge"]].concat());
    let beta = Peer::start_with(root, "beta", &none);
    let mut gamma = Peer::start_with(root, "gamma", &[&none[..], &["--tags", "edge"]].concat());
    form_three_voters(&alpha, &beta, &gamma, "forensics-w");
    let stack = write(
        root,
        "stack.yaml",
        "namespace: shop\nweb:\n  defines: runnable\n  scale:\n    value: 3\n  containers:\n    main:\n      image: nginx:1.27\n  variables:\n    port: 8080\ndb:\n  defines: runnable\n  affinity:\n    tag: edge\n  containers:\n    main:\n      image: postgres:16\n",
    );
    ok(&alpha.addr, &["load", &stack]);
    ok(&alpha.addr, &["run", "--wait", "0", "shop/web"]);
    report_running(&alpha.addr, "shop/web");
    ok(&alpha.addr, &["run", "--wait", "0", "shop/db"]);
    report_running(&alpha.addr, "shop/db");
    // A report from a peer the replica is not placed on is recorded as rejected.
    let db = instances(&alpha.addr)
        .into_iter()
        .find(|i| i["path"] == "shop/db")
        .unwrap();
    let wrong = if db["peer"] == 1 { 2 } else { 1 };
    let stale = propose(
        &alpha.addr,
        &format!("peer:{wrong}/executor"),
        Command::WorkloadReport {
            peer: wrong,
            path: "shop/db".into(),
            replica: 0,
            generation: 1,
            status: monk_statemachine::InstanceStatus::Failed,
            message: "not mine".into(),
            addresses: Default::default(),
        },
    );
    assert!(!stale.is_accepted());
    ok(
        &alpha.addr,
        &["update", "--wait", "0", "shop/web", "--set", "port=9090"],
    );
    report_running(&alpha.addr, "shop/web");

    gamma.kill();
    wait_for(
        Duration::from_secs(30),
        || peer_status(&alpha.addr, "gamma") == Some(false),
        "gamma declared down",
    );
    gamma.restart();
    wait_for(
        Duration::from_secs(30),
        || peer_status(&alpha.addr, "gamma") == Some(true),
        "gamma up again",
    );
    ok(&alpha.addr, &["scale", "--wait", "0", "shop/web", "2"]);
    // No executor runs here (its reports are written by the test): do not wait for one.
    ok(&alpha.addr, &["stop", "--no-wait", "shop/db"]);
    settle_and_stop(alpha, beta, gamma)
}

#[test]
fn workload_scenario_replays_to_the_live_digest() {
    let root = tempfile::tempdir().unwrap();
    let (dirs, index, live_digest) = workload_scenario(root.path());
    let replayed = offline_ok(&[
        "replay",
        "--data-dir",
        dirs[0].to_str().unwrap(),
        "--to-index",
        &index.to_string(),
        "-o",
        "json",
    ]);
    let replayed: serde_json::Value = serde_json::from_str(&replayed).unwrap();
    assert_eq!(
        replayed["state_digest"].as_str(),
        Some(live_digest.as_str())
    );
    let web = &replayed["state"]["workloads"]["shop/web"];
    assert_eq!(web["generation"], 2, "{web}");
    assert_eq!(web["instances"].as_object().map(|o| o.len()), Some(2));
    assert_eq!(
        replayed["state"]["workloads"]["shop/db"]["desired"],
        "stopped"
    );
    if std::env::var_os("MONK_WRITE_WORKLOAD_FIXTURE").is_some() {
        let fixture = manifest_dir().join(WORKLOAD_FIXTURE);
        let _ = std::fs::remove_dir_all(&fixture);
        copy_data_dir(&dirs[0], &fixture.join("alpha"));
        copy_data_dir(&dirs[1], &fixture.join("beta"));
    }
}

/// Index of the first entry of `kind` in a fixture data dir.
fn first_index(dir: &str, kind: &str) -> u64 {
    let out = offline_ok(&["log", "--data-dir", dir, "--kind", kind, "-o", "json"]);
    let first: serde_json::Value =
        serde_json::from_str(out.lines().next().expect("an entry of that kind")).unwrap();
    first["index"].as_u64().unwrap()
}

#[test]
fn workload_fixture_matches_expectation() {
    let a = format!("{WORKLOAD_FIXTURE}/alpha");
    let b = format!("{WORKLOAD_FIXTURE}/beta");
    let down = first_index(&a, "peer-down");
    let mut text = transcript(&["replay", "--data-dir", &a]);
    text += &transcript(&[
        "replay",
        "--data-dir",
        &a,
        "--to-index",
        &(down - 1).to_string(),
    ]);
    text += &transcript(&["log", "--data-dir", &a, "--path", "shop/db"]);
    text += &transcript(&[
        "diff",
        "--data-dir",
        &a,
        &(down - 1).to_string(),
        &down.to_string(),
    ]);
    text += &transcript(&["diff", "--data-dir", &a, "0", "99999"]);
    text += &transcript(&["history", "--data-dir", &a, "shop/web"]);
    text += &transcript(&["verify", "--data-dir", &a, "--data-dir", &b]);
    text += &transcript(&["log", "--data-dir", &a, "--kind", "workload-report"]);
    check_expect("audit-workloads.txt", &text);
}
