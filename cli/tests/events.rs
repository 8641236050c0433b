//! `monk events -f`: a run, the executors' reports and a stop arrive in log order, with
//! their results, and the stream carries on, from the next index on another peer, after
//! the peer it was reading from (the leader) is killed.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::*;

fn kinds(lines: &[serde_json::Value]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|e| e["kind"].as_str().map(String::from))
        .collect()
}

#[test]
fn events_follow_the_log_in_order_across_a_leader_kill() {
    let root = tempfile::tempdir().unwrap();
    // An engine that is not there: each executor reports its replicas failed, which is
    // an executor report in the log without needing Docker.
    let flags = ["--moby-socket", "/nonexistent/monk-test-docker.sock"];
    let mut alpha = Peer::start_with(root.path(), "alpha", &flags);
    let beta = Peer::start_with(root.path(), "beta", &flags);
    let gamma = Peer::start_with(root.path(), "gamma", &flags);
    ok(&alpha.addr, &["cluster", "new", "--name", "events"]);
    for p in [&beta, &gamma] {
        let token = ok(&alpha.addr, &["cluster", "token"]).trim().to_string();
        ok(&p.addr, &["cluster", "join", "--token", &token]);
    }
    let mut follower = Command::new(monk_bin())
        .args(["--addr", &alpha.addr, "events", "-f", "-o", "json"])
        .env(
            "XDG_CONFIG_HOME",
            monk_testkit::process::config_home(&alpha.addr),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let seen: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let reader = {
        let seen = seen.clone();
        let stdout = follower.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let event = serde_json::from_str(&line).expect("one JSON object per line");
                seen.lock().unwrap().push(event);
            }
        })
    };
    let file = root.path().join("app.yaml");
    std::fs::write(&file, "namespace: ev\napp:\n  defines: runnable\n  containers:\n    main:\n      image: busybox\n").unwrap();
    ok(&alpha.addr, &["load", file.to_str().unwrap()]);
    ok(&alpha.addr, &["run", "ev/app", "--wait", "0"]);
    let has = |kind: &str| kinds(&seen.lock().unwrap()).iter().any(|k| k == kind);
    wait_for(
        Duration::from_secs(30),
        || has("workload-report"),
        "an executor report",
    );
    ok(&alpha.addr, &["stop", "ev/app"]);
    wait_for(Duration::from_secs(10), || has("workload-stop"), "the stop");

    // Kill the peer the stream reads from; it resumes on another one.
    alpha.kill();
    let second = root.path().join("second.yaml");
    std::fs::write(&second, "namespace: ev2\nthing:\n  defines: runnable\n  containers:\n    main:\n      image: busybox\n").unwrap();
    wait_for(
        Duration::from_secs(30),
        || {
            beta.monk(&["load", second.to_str().unwrap()])
                .status
                .success()
        },
        "a new leader to take a load",
    );
    let loaded_after = || {
        seen.lock().unwrap().iter().any(|e| {
            e["summary"]
                .as_str()
                .is_some_and(|s| s.contains("ev2/thing"))
        })
    };
    wait_for(
        Duration::from_secs(40),
        loaded_after,
        "the load after the kill",
    );
    let _ = follower.kill();
    let _ = follower.wait();
    let _ = reader.join();

    let events = seen.lock().unwrap().clone();
    let indexes: Vec<u64> = events.iter().filter_map(|e| e["index"].as_u64()).collect();
    assert!(
        indexes.windows(2).all(|w| w[0] < w[1]),
        "indexes in order, none twice: {indexes:?}"
    );
    let order = kinds(&events);
    let at = |kind: &str| order.iter().position(|k| k == kind).unwrap_or(usize::MAX);
    assert!(at("workload-run") < at("workload-report"), "{order:?}");
    assert!(at("workload-report") < at("workload-stop"), "{order:?}");
    let report = events
        .iter()
        .find(|e| e["kind"] == "workload-report")
        .unwrap();
    assert!(
        report["summary"].as_str().unwrap().contains("ev/app#0"),
        "{report}"
    );
    assert_eq!(report["result"]["result"], "accepted");
    let last = events.last().unwrap();
    assert!(
        last["summary"].as_str().unwrap().contains("ev2/thing"),
        "{last}"
    );
    // Nothing secret travels: events carry a summary, never the command's body.
    assert!(events.iter().all(|e| e.get("command").is_none()));
}

#[test]
fn events_without_follow_list_what_the_peer_keeps_with_filters() {
    let root = tempfile::tempdir().unwrap();
    let mut peer = Peer::start_with(root.path(), "solo", &["--containers", "none"]);
    ok(&peer.addr, &["cluster", "new", "--name", "ev"]);
    let file = root.path().join("t.yaml");
    std::fs::write(&file, "namespace: ev\nt:\n  defines: runnable\n").unwrap();
    ok(&peer.addr, &["load", file.to_str().unwrap()]);
    let refused = peer.monk(&["stop", "ev/none"]);
    assert!(!refused.status.success());
    let all = ok(&peer.addr, &["events"]);
    assert!(all.contains("cluster-created"), "{all}");
    assert!(all.contains("templates-loaded"), "{all}");
    assert!(
        all.contains("[rejected: no workload ev/none is running or stopped]"),
        "{all}"
    );
    let only = ok(
        &peer.addr,
        &["events", "--kind", "templates-loaded", "-o", "json"],
    );
    assert_eq!(only.lines().count(), 1, "{only}");
    let by_path = ok(&peer.addr, &["events", "--path", "ev", "-o", "json"]);
    assert_eq!(by_path.lines().count(), 2, "{by_path}");
    let later = ok(&peer.addr, &["events", "--since", "3", "-o", "json"]);
    assert!(later.lines().all(|l| {
        let e: serde_json::Value = serde_json::from_str(l).unwrap();
        e["index"].as_u64().unwrap() >= 3
    }));
    let bad = peer.monk(&["events", "--since", "yesterday"]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("not a log index or an RFC 3339 time"));
    peer.terminate();
}
