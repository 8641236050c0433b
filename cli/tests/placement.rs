//! Placement through real `monkd` processes (no container engine: `--containers none`):
//! a script-valued `scale.value` evaluated by the peer that takes `monk run`, with the
//! value carried in the log so `monk replay` of a data dir places replicas exactly as
//! the cluster did; `monk cluster tag` moving and landing replicas at run time; pending
//! replicas that say why each peer refused them.

mod support;

use support::*;

fn peer(root: &std::path::Path, name: &str, tags: &str) -> Peer {
    Peer::start_with(root, name, &["--containers", "none", "--tags", tags])
}

/// `path#replica` → peer name (or `pending: why`), from `monk ps -o json`.
fn placement(addr: &str) -> Vec<String> {
    let ps = json(addr, &["ps", "-o", "json"]);
    ps.as_array()
        .expect("ps -o json is a list")
        .iter()
        .map(|i| {
            let at = match i["peer_name"].as_str() {
                Some(peer) => peer.to_string(),
                None => format!("pending: {}", i["pending"].as_str().unwrap_or("")),
            };
            format!("{}#{} {at}", i["path"].as_str().unwrap(), i["replica"])
        })
        .collect()
}

#[test]
fn script_valued_scale_and_affinity_are_evaluated_once_and_replayed_the_same() {
    let root = tempfile::tempdir().unwrap();
    let mut alpha = peer(root.path(), "alpha", "zone-eu");
    let mut beta = peer(root.path(), "beta", "zone-us");
    ok(&alpha.addr, &["cluster", "new", "--name", "place"]);
    let token = ok(&alpha.addr, &["cluster", "token"]).trim().to_string();
    ok(&beta.addr, &["cluster", "join", "--token", &token]);
    let file = root.path().join("app.yaml");
    std::fs::write(
        &file,
        "namespace: pt\napp:\n  defines: runnable\n  variables:\n    replicas:\n      type: int\n      value: 1\n    zone:\n      type: string\n      value: eu\n  scale:\n    value: <- $replicas 1 add\n  affinity:\n    tag: <- `zone-${zone}`\n  containers:\n    main:\n      image: busybox\n",
    )
    .unwrap();
    ok(&alpha.addr, &["load", file.to_str().unwrap()]);
    // Through the follower: it forwards the command to the leader unevaluated, the
    // leader evaluates `$replicas 1 add` with --set replicas=2 and the zone tag.
    ok(
        &beta.addr,
        &[
            "run",
            "pt/app",
            "--set",
            "replicas=2",
            "--set",
            "zone=us",
            "--wait",
            "0",
        ],
    );
    let live = placement(&alpha.addr);
    assert_eq!(live, ["pt/app#0 beta", "pt/app#1 beta", "pt/app#2 beta"]);
    let described = ok(&alpha.addr, &["describe", "pt/app"]);
    assert!(
        described.contains("scale.value   <- $replicas 1 add  → 3"),
        "{described}"
    );
    assert!(
        described.contains("affinity.tag  <- `zone-${zone}`  → zone-us"),
        "{described}"
    );
    // The value is in the log: replaying either peer's data dir offline gives the
    // same placement (the replay runs no script).
    for data in [&alpha.data_dir, &beta.data_dir] {
        // A follower may apply the run a moment after the leader answered.
        let replay_of = || ok_offline(&["replay", "--data-dir", data.to_str().unwrap()]);
        wait_for(
            std::time::Duration::from_secs(10),
            || replay_of().contains("pt/app#2"),
            "the run to reach this data dir",
        );
        let replay = replay_of();
        let line = replay
            .lines()
            .find(|l| l.contains("pt/app#0") && l.contains("pt/app#1"))
            .unwrap_or_else(|| panic!("no replica row in {replay}"));
        assert!(line.contains("beta"), "{line}");
        assert!(
            line.contains("pt/app#1") && line.contains("pt/app#2"),
            "{line}"
        );
    }
    let log = ok(&alpha.addr, &["log", "--kind", "workload-run"]);
    assert!(
        log.contains("run pt/app with replicas, zone (evaluated: pt/app 3 replicas, tag zone-us)"),
        "{log}"
    );

    // A scale script that gives a negative number is refused before it is proposed:
    // nothing enters the log.
    let bad = root.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "namespace: pt\nbad:\n  defines: runnable\n  scale:\n    value: <- 0 2 sub\n  containers:\n    main:\n      image: busybox\n",
    )
    .unwrap();
    ok(&alpha.addr, &["load", bad.to_str().unwrap()]);
    let refused = alpha.monk(&["run", "pt/bad", "--wait", "0"]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("pt/bad: scale.value: the script gave -2; it must be 0..=1000"),
        "{}",
        stderr(&refused)
    );
    // (Compared by entry, not by log length: autopilot may promote beta meanwhile.)
    let runs = ok(&alpha.addr, &["log", "--kind", "workload-run"]);
    assert!(!runs.contains("pt/bad"), "{runs}");

    // Peer tags at run time: alpha becomes zone-us too and takes nothing (no move
    // back), then beta leaves zone-us and its replicas move to alpha.
    let tagged = ok(&alpha.addr, &["cluster", "tag", "alpha", "+zone-us"]);
    assert!(
        tagged.contains("Peer alpha (1) tags: zone-eu,zone-us"),
        "{tagged}"
    );
    assert_eq!(placement(&alpha.addr), live);
    ok(&alpha.addr, &["cluster", "tag", "beta", "-zone-us"]);
    assert_eq!(
        placement(&beta.addr),
        ["pt/app#0 alpha", "pt/app#1 alpha", "pt/app#2 alpha"]
    );
    // A requirement no peer meets: pending, with each peer's reason.
    let needy = root.path().join("needy.yaml");
    std::fs::write(
        &needy,
        "namespace: pt\nneedy:\n  defines: runnable\n  requirements:\n    RAM: 999999999\n  containers:\n    main:\n      image: busybox\n",
    )
    .unwrap();
    ok(&alpha.addr, &["load", needy.to_str().unwrap()]);
    let waiting = alpha.monk(&["run", "pt/needy"]);
    assert!(!waiting.status.success());
    let why = stderr(&waiting);
    assert!(
        why.contains("pt/needy#0 pending: alpha: needs 999999999 MB, has "),
        "{why}"
    );
    assert!(why.contains("; beta: needs 999999999 MB, has "), "{why}");
    let bad_tag = alpha.monk(&["cluster", "tag", "beta", "gpu"]);
    assert!(!bad_tag.status.success());
    assert!(stderr(&bad_tag).contains("write +TAG to add a tag or -TAG to remove one"));
    alpha.terminate();
    beta.terminate();
}
