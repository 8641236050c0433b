//! End to end with real processes: a 3-peer cluster formed with the CLI survives the
//! SIGKILL of its leader, loses no acknowledged write, and a restarted peer catches up
//! to the same applied index and state digest as the others.

mod support;

use std::time::Duration;

use support::*;

fn write_template(dir: &std::path::Path, file: &str, namespace: &str, names: &[&str]) -> String {
    let mut text = format!("namespace: {namespace}\n");
    for name in names {
        text.push_str(&format!("{name}:\n  defines: runnable\n  containers:\n    main:\n      image: busybox\n  variables:\n    port: 8080\n"));
    }
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

fn leader_of(addr: &str) -> Option<u64> {
    let o = monk(addr, &["cluster", "info", "-o", "json"]);
    if !o.status.success() {
        return None;
    }
    serde_json::from_str::<serde_json::Value>(&stdout(&o)).ok()?["leader_id"].as_u64()
}

fn list_paths(addr: &str, stale: bool) -> Vec<String> {
    let mut args = vec!["list", "-o", "json"];
    if stale {
        args.push("--stale");
    }
    let o = monk(addr, &args);
    if !o.status.success() {
        return Vec::new();
    }
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap_or_default();
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t["path"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn three_peers_survive_leader_kill_and_converge() {
    let root = tempfile::tempdir().unwrap();
    let mut peers = [
        Peer::start(root.path(), "alpha"),
        Peer::start(root.path(), "beta"),
        Peer::start(root.path(), "gamma"),
    ];

    let created = ok(&peers[0].addr, &["cluster", "new", "--name", "drill"]);
    assert!(created.contains("created"), "{created}");
    let mut used = None;
    for peer in &peers[1..] {
        let token = ok(&peers[0].addr, &["cluster", "token"]).trim().to_string();
        assert!(token.starts_with("mk2_"), "{token}");
        let joined = ok(&peer.addr, &["cluster", "join", "--token", &token]);
        assert!(joined.contains("Joined cluster drill"), "{joined}");
        used = Some(token);
    }
    // A token admits one peer: used again, it is refused, with the reason.
    let fourth = Peer::start(root.path(), "delta");
    let again = fourth.monk(&["cluster", "join", "--token", &used.unwrap()]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("join token is not valid"),
        "{}",
        stderr(&again)
    );
    drop(fourth);

    wait_for(
        Duration::from_secs(40),
        || {
            let o = monk(&peers[0].addr, &["cluster", "peers", "-o", "json"]);
            let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap_or_default();
            v.as_array().is_some_and(|a| {
                a.len() == 3 && a.iter().all(|p| p["voter"] == true && p["up"] == true)
            })
        },
        "three up voters",
    );
    let table = ok(&peers[2].addr, &["cluster", "peers"]);
    assert!(
        table.contains("leader") && table.contains("follower"),
        "{table}"
    );

    let leader = leader_of(&peers[0].addr).expect("a leader");
    let follower = peers
        .iter()
        .find(|p| {
            leader_of(&p.addr).is_some()
                && p.monk(&["cluster", "info", "-o", "json"]).status.success()
                && json(&p.addr, &["cluster", "info", "-o", "json"])["id"].as_u64() != Some(leader)
        })
        .unwrap();
    let first = write_template(root.path(), "first.yaml", "shop", &["web", "db"]);
    let loaded = ok(&follower.addr, &["load", &first]);
    assert!(loaded.contains("Loaded 2 definition(s)"), "{loaded}");

    let leader_index = peers
        .iter()
        .position(|p| {
            json(&p.addr, &["cluster", "info", "-o", "json"])["id"].as_u64() == Some(leader)
        })
        .unwrap();
    peers[leader_index].kill();
    let survivors: Vec<String> = peers
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != leader_index)
        .map(|(_, p)| p.addr.clone())
        .collect();
    wait_for(
        Duration::from_secs(30),
        || {
            survivors
                .iter()
                .any(|a| leader_of(a).is_some_and(|l| l != leader))
        },
        "a new leader",
    );

    let second = write_template(root.path(), "second.yaml", "shop", &["cache"]);
    let mut loaded_again = false;
    wait_for(
        Duration::from_secs(30),
        || {
            loaded_again = monk(&survivors[0], &["load", &second]).status.success();
            loaded_again
        },
        "a load through a survivor",
    );
    let expected = vec![
        "shop/cache".to_string(),
        "shop/db".to_string(),
        "shop/web".to_string(),
    ];
    assert_eq!(list_paths(&survivors[1], false), expected);

    let killed_id = leader;
    let peer_up = |addr: &str, id: u64| -> Option<bool> {
        let o = monk(addr, &["cluster", "peers", "-o", "json"]);
        let v: serde_json::Value = serde_json::from_str(&stdout(&o)).ok()?;
        v.as_array()?
            .iter()
            .find(|p| p["id"].as_u64() == Some(id))
            .and_then(|p| p["up"].as_bool())
    };
    wait_for(
        Duration::from_secs(30),
        || peer_up(&survivors[0], killed_id) == Some(false),
        "the killed peer to be declared down",
    );

    peers[leader_index].restart();
    wait_for(
        Duration::from_secs(30),
        || peer_up(&survivors[1], killed_id) == Some(true),
        "the restarted peer to be up again",
    );
    let restarted = peers[leader_index].addr.clone();
    wait_for(
        Duration::from_secs(40),
        || list_paths(&restarted, true) == expected,
        "the restarted peer to catch up",
    );
    let dump = ok(&restarted, &["dump", "shop/web", "--stale"]);
    assert!(dump.contains("busybox"), "{dump}");

    let mut last = Vec::new();
    wait_for(
        Duration::from_secs(40),
        || {
            last = peers
                .iter()
                .map(|p| {
                    let v = json(&p.addr, &["system", "consensus", "-o", "json"]);
                    (
                        v["applied_index"].as_u64(),
                        v["state_digest"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect();
            last.iter().all(|x| x == &last[0]) && last[0].0.is_some()
        },
        "equal applied index and digest on all three",
    );
    let human = ok(&peers[1].addr, &["system", "consensus"]);
    assert!(human.contains(&last[0].1), "{human}");

    // Online audit: the same commands as on a data dir, fed by the peers through the API.
    let online_log = ok(&peers[2].addr, &["log", "--kind", "templates-loaded"]);
    assert!(
        online_log.contains("shop/web") && online_log.contains("shop/cache"),
        "{online_log}"
    );
    let replayed = json(&peers[1].addr, &["replay", "-o", "json"]);
    assert!(
        replayed["applied_index"].as_u64() >= last[1].0,
        "{replayed}"
    );
    let addrs: Vec<&str> = peers.iter().map(|p| p.addr.as_str()).collect();
    let verified = ok(
        &peers[0].addr,
        &[
            "verify", "--peer", addrs[0], "--peer", addrs[1], "--peer", addrs[2],
        ],
    );
    assert!(verified.contains("consistent up to"), "{verified}");

    let current = leader_of(&peers[0].addr).expect("a leader");
    let leaving = peers
        .iter()
        .find(|p| json(&p.addr, &["cluster", "info", "-o", "json"])["id"].as_u64() != Some(current))
        .unwrap();
    let left = ok(&leaving.addr, &["cluster", "leave"]);
    assert!(left.contains("left cluster drill"), "{left}");
    let staying = peers.iter().find(|p| p.addr != leaving.addr).unwrap();
    wait_for(
        Duration::from_secs(20),
        || {
            let v = json(&staying.addr, &["cluster", "peers", "-o", "json"]);
            v.as_array().is_some_and(|a| a.len() == 2)
        },
        "two members after a leave",
    );
    let o = leaving.monk(&["list"]);
    assert!(
        !o.status.success() && stderr(&o).contains("not part of a cluster"),
        "{}",
        stderr(&o)
    );
    let o = leaving.monk(&["cluster", "new", "--name", "again"]);
    assert!(
        !o.status.success() && stderr(&o).contains("fresh --data-dir"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn wrong_token_and_newer_commands_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let first = Peer::start(root.path(), "one");
    let other = Peer::start(root.path(), "two");
    ok(&first.addr, &["cluster", "new", "--name", "solo"]);

    let real = ok(&first.addr, &["cluster", "token"]);
    let fingerprint = real.trim().split('@').nth(1).unwrap().to_string();
    let forged = format!("mk2_{}@{fingerprint}@{}", "ab".repeat(24), first.addr);
    let o = other.monk(&["cluster", "join", "--token", &forged]);
    assert!(!o.status.success(), "a forged token must not join");
    assert!(
        stderr(&o).contains("join token is not valid"),
        "{}",
        stderr(&o)
    );
    let o = other.monk(&["cluster", "join", "--token", "not-a-token"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("not a monk join token"),
        "{}",
        stderr(&o)
    );

    // A token that outlived its --ttl is refused with the reason.
    let short = ok(&first.addr, &["cluster", "token", "--ttl", "1s"]);
    std::thread::sleep(Duration::from_millis(1_500));
    let o = other.monk(&["cluster", "join", "--token", short.trim()]);
    assert!(!o.status.success(), "an expired token must not join");
    assert!(stderr(&o).contains("join token expired"), "{}", stderr(&o));
    // A revoked one too; `tokens` lists what is outstanding.
    let listed = json(&first.addr, &["cluster", "tokens", "-o", "json"]);
    let outstanding = listed.as_array().unwrap().len();
    assert!(outstanding >= 2, "{listed}");
    let hash = listed[0]["sha256"].as_str().unwrap()[..12].to_string();
    assert!(listed[0]["expires_at_ms"].as_u64().is_some(), "{listed}");
    ok(&first.addr, &["cluster", "token", "revoke", &hash]);
    let after = json(&first.addr, &["cluster", "tokens", "-o", "json"]);
    assert_eq!(after.as_array().unwrap().len(), outstanding - 1, "{after}");
    // A wrong fingerprint: the joiner refuses the peer it reaches.
    let good = ok(&first.addr, &["cluster", "token"]);
    let parts: Vec<&str> = good.trim().split('@').collect();
    let wrong_ca = format!("{}@{}@{}", parts[0], "0".repeat(64), parts[2]);
    let o = other.monk(&["cluster", "join", "--token", &wrong_ca]);
    assert!(
        !o.status.success(),
        "a peer of another CA must not be joined"
    );
    assert!(
        stderr(&o).contains("not from the cluster CA the join token names"),
        "{}",
        stderr(&o)
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut client = monk_testkit::process::admin_client(&first.addr).await.unwrap();
        let newer = br#"{"format_version":99,"proposed_at_ms":0,"actor":"t","request_id":"r","command":{"kind":"noop"}}"#.to_vec();
        let err = client.propose_bytes(newer).await.unwrap_err();
        assert_eq!(err.kind, monk_node::api::ErrorKind::Invalid);
        assert!(err.message.contains("format version 99 is newer"), "{}", err.message);
        let unknown = br#"{"format_version":1,"proposed_at_ms":0,"actor":"t","request_id":"r","command":{"kind":"teleport"}}"#.to_vec();
        let err = client.propose_bytes(unknown).await.unwrap_err();
        assert!(err.message.contains("unknown command kind `teleport`"), "{}", err.message);
    });
    let broken = root.path().join("broken.yaml");
    std::fs::write(&broken, "namespace: shop\nweb:\n  defines: runnable\nstack:\n  defines: group\n  containers:\n    x:\n      image: y\n").unwrap();
    let o = first.monk(&["load", broken.to_str().unwrap()]);
    assert!(
        !o.status.success(),
        "a definition with errors is not loaded"
    );
    assert!(
        stderr(&o).contains("broken.yaml:6:3: error:") && stderr(&o).contains("nothing was loaded"),
        "{}",
        stderr(&o)
    );
    let o = first.monk(&["load", "/nonexistent.yaml"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("/nonexistent.yaml"), "{}", stderr(&o));
    assert_eq!(
        list_paths(&first.addr, false),
        Vec::<String>::new(),
        "nothing stored after failures"
    );
}

#[test]
fn a_token_issued_on_a_peer_whose_clock_is_two_hours_slow_still_admits() {
    let root = tempfile::tempdir().unwrap();
    let first = Peer::start(root.path(), "one");
    ok(&first.addr, &["cluster", "new", "--name", "skew"]);
    // The second peer's wall clock runs two hours behind (the test-only offset).
    let mut slow = Peer::new(root.path(), "slow", &[]).unwrap();
    slow.env
        .push(("MONK_TEST_CLOCK_OFFSET_MS".into(), "-7200000".into()));
    slow.restart();
    let token = ok(&first.addr, &["cluster", "token"]);
    ok(&slow.addr, &["cluster", "join", "--token", token.trim()]);
    wait_for(
        Duration::from_secs(20),
        || leader_of(&slow.addr).is_some(),
        "the slow peer to see the leader",
    );
    // A one-hour token issued through the slow peer: on its clock it expires an hour
    // before the leader's now; the leader puts it on its own clock.
    let issued = ok(&slow.addr, &["cluster", "token", "--ttl", "1h"]);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let listed = json(&first.addr, &["cluster", "tokens", "-o", "json"]);
    let expires = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["expires_at_ms"].as_u64())
        .max()
        .unwrap();
    assert!(
        expires > now_ms + 50 * 60 * 1000 && expires < now_ms + 70 * 60 * 1000,
        "the token expires at {expires}, now is {now_ms}: not an hour from the leader's now"
    );
    let third = Peer::start(root.path(), "three");
    let joined = third.monk(&["cluster", "join", "--token", issued.trim()]);
    assert!(joined.status.success(), "{}", stderr(&joined));
}
