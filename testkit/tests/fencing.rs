//! Split brain on the three-host bed (issue 13, executor fencing): a `replicas: 1`
//! workload runs on one host; that host is cut off the bridge (its engine, peer and
//! container keep running). Its peer, no longer heard by a quorum, kills the replica
//! when its lease ends; the majority declares it down and starts the replica on another
//! host only after that. Watching every engine's `docker ps` the whole time, two
//! running copies are never seen; after the cut heals exactly one copy runs. A
//! runnable with `recovery: {when: none}` on the same host is neither killed nor moved.
//!
//! Without a Docker engine or `ip netns` permission this prints why and passes
//! vacuously; `MONK_REQUIRE_DOCKER=1` makes that a failure.

use std::time::{Duration, Instant};

use monk_testkit::cli::{json, ok};
use monk_testkit::hosts::{HostBed, IMAGE};
use monk_testkit::process::wait_for;

/// How often every engine is asked what runs.
const POLL: Duration = Duration::from_millis(250);
/// How long the replica may take to run elsewhere after the cut.
const MOVE_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest overlap of two running copies the test tolerates: one poll (the fence
/// argument in `node/src/node/lease.rs` gives none at all).
const OVERLAP_MAX: Duration = Duration::from_millis(500);

/// The ids of the running containers of `path` on host `i` (empty when none runs).
fn ps(bed: &HostBed, cluster: &str, i: usize, path: &str) -> String {
    // An engine that does not answer in time (a loaded machine) says nothing about its
    // containers: ask again rather than read it as "none runs".
    let mut last = String::new();
    for _ in 0..PS_ATTEMPTS {
        let o = bed.hosts[i].docker(&[
            "ps",
            "-q",
            "--filter",
            &format!("label=io.monk.cluster={cluster}"),
            "--filter",
            &format!("label=io.monk.workload={path}"),
        ]);
        match o {
            Ok(o) if o.status.success() => {
                return String::from_utf8_lossy(&o.stdout).trim().to_string()
            }
            Ok(o) => last = String::from_utf8_lossy(&o.stderr).into_owned(),
            Err(e) => last = e,
        }
    }
    panic!("docker ps on host {i} failed {PS_ATTEMPTS} times: {last}")
}

/// How many times [`ps`] asks an engine before giving up.
const PS_ATTEMPTS: usize = 5;

/// The hosts whose engine runs a container of `path` now.
fn running(bed: &HostBed, cluster: &str, path: &str) -> Vec<usize> {
    (0..bed.hosts.len())
        .filter(|i| !ps(bed, cluster, *i, path).is_empty())
        .collect()
}

#[test]
fn a_cut_off_peer_kills_its_replica_before_the_majority_starts_another() {
    let root = tempfile::tempdir().unwrap();
    let Some(bed) = HostBed::start_or_skip(root.path(), 3) else {
        return;
    };
    let file = root.path().join("db.yaml");
    std::fs::write(
        &file,
        format!(
            r#"namespace: faults
db:
  defines: runnable
  containers:
    main:
      image: {IMAGE}
      bash: exec sleep 3600
      stop-grace-period: 10s
pinned:
  defines: runnable
  recovery:
    when: none
  containers:
    main:
      image: {IMAGE}
      bash: exec sleep 3600
      stop-grace-period: 1s
"#
        ),
    )
    .unwrap();
    let first = bed.hosts[0].addr.clone();
    ok(&first, &["load", file.to_str().unwrap()]);
    ok(&first, &["run", "faults/db"]);
    let path = "faults/db";
    let before = running(&bed, &bed.cluster, path);
    assert_eq!(before.len(), 1, "one copy before the cut: {before:?}");
    let cut = before[0];
    // Beside it, a runnable whose `recovery` keeps it on its peer when that fails.
    ok(
        &first,
        &["run", "faults/pinned", "--peer", &bed.hosts[cut].name],
    );
    assert_eq!(running(&bed, &bed.cluster, "faults/pinned"), vec![cut]);
    // Ask through a host that stays with the majority.
    let majority = bed.hosts[(cut + 1) % 3].addr.clone();

    bed.cut(cut).unwrap();
    let cut_at = Instant::now();
    let (mut overlap, mut fenced_at, mut moved_at) = (Duration::ZERO, None, None);
    let mut last = Instant::now();
    while cut_at.elapsed() < MOVE_TIMEOUT {
        let now = running(&bed, &bed.cluster, path);
        let elapsed = last.elapsed();
        last = Instant::now();
        if now.len() > 1 {
            overlap += elapsed;
        }
        if fenced_at.is_none() && !now.contains(&cut) {
            fenced_at = Some(cut_at.elapsed());
        }
        if moved_at.is_none() && now.iter().any(|h| *h != cut) {
            moved_at = Some(cut_at.elapsed());
        }
        if fenced_at.is_some()
            && moved_at.is_some_and(|m| cut_at.elapsed() > m + Duration::from_secs(3))
        {
            break;
        }
        std::thread::sleep(POLL);
    }
    eprintln!(
        "after the cut: the cut-off copy was gone at {fenced_at:?}, a copy ran elsewhere at {moved_at:?}, two copies ran together for {overlap:?}"
    );
    let fenced_at = fenced_at.expect("the cut-off peer never stopped its copy");
    let moved_at = moved_at.expect("the majority never started the replica elsewhere");
    assert!(
        fenced_at < moved_at,
        "fenced at {fenced_at:?}, moved at {moved_at:?}"
    );
    assert!(
        overlap <= OVERLAP_MAX,
        "two copies ran together for {overlap:?}"
    );
    let peers = json(&majority, &["cluster", "peers", "-o", "json"]);
    let cut_name = bed.hosts[cut].name.clone();
    assert!(
        peers
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == cut_name.as_str() && p["up"] == false),
        "{peers}"
    );

    // The pinned one was neither killed nor started elsewhere.
    assert_eq!(running(&bed, &bed.cluster, "faults/pinned"), vec![cut]);

    // Healed: exactly one copy, not on the host that was cut (the replica stays where
    // it moved), for several polls in a row.
    bed.heal(cut).unwrap();
    let healed = Instant::now();
    let mut steady = 0;
    while steady < 8 {
        assert!(
            healed.elapsed() < Duration::from_secs(60),
            "no single steady copy after healing: {:?}",
            running(&bed, &bed.cluster, path)
        );
        let now = running(&bed, &bed.cluster, path);
        assert!(now.len() <= 1, "two copies after healing: {now:?}");
        steady = if now.len() == 1 && now[0] != cut {
            steady + 1
        } else {
            0
        };
        std::thread::sleep(POLL);
    }
    assert_eq!(running(&bed, &bed.cluster, "faults/pinned"), vec![cut]);
}

/// The id of the running container of `path` on host `i`, if one runs.
fn container_on(bed: &HostBed, cluster: &str, i: usize, path: &str) -> Option<String> {
    Some(ps(bed, cluster, i, path)).filter(|id| !id.is_empty())
}

#[test]
fn a_leader_failure_does_not_fence_the_followers() {
    let root = tempfile::tempdir().unwrap();
    let Some(mut bed) = HostBed::start_or_skip(root.path(), 3) else {
        return;
    };
    let file = root.path().join("app.yaml");
    std::fs::write(
        &file,
        format!(
            "namespace: faults\napp:\n  defines: runnable\n  containers:\n    main:\n      image: {IMAGE}\n      bash: exec sleep 3600\n      stop-grace-period: 1s\napp2:\n  defines: runnable\n  inherits: ./app\n"
        ),
    )
    .unwrap();
    let second = bed.hosts[1].addr.clone();
    ok(&second, &["load", file.to_str().unwrap()]);
    let leader = bed.leader(1).expect("a leader");
    let follower = (leader + 1) % 3;
    let asked = bed.hosts[(leader + 2) % 3].addr.clone();
    ok(
        &asked,
        &["run", "faults/app", "--peer", &bed.hosts[follower].name],
    );
    let before = container_on(&bed, &bed.cluster, follower, "faults/app").expect("app runs");

    // The leader's monkd dies; the others elect a new one. The follower's replica is
    // never fenced: the same container runs throughout.
    bed.peers[leader].kill();
    keeps_running(&bed, follower, "faults/app", &before, "the leader died");
    let peers = json(&asked, &["cluster", "peers", "-o", "json"]);
    assert!(
        peers
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["role"] == "leader"),
        "no new leader: {peers}"
    );

    // The old leader comes back; then the new leader's host is cut off, so calls to
    // it hang instead of failing at once. A follower's heartbeat to it must give up in
    // time to renew its lease from the leader elected next: its replica runs on.
    bed.peers[leader].restart();
    let mut second_leader = None;
    wait_for(
        Duration::from_secs(20),
        || {
            second_leader = bed.leader(leader);
            second_leader.is_some()
        },
        "the restarted peer to know a leader",
    );
    let second_leader = second_leader.expect("a leader after the restart");
    // Dead for longer than the down timeout, it was declared down: wait until the
    // leader has heard it again.
    wait_for(
        Duration::from_secs(30),
        || {
            let peers = json(
                &bed.hosts[second_leader].addr,
                &["cluster", "peers", "-o", "json"],
            );
            peers
                .as_array()
                .is_some_and(|all| all.iter().all(|p| p["up"] == true))
        },
        "every peer to be up again",
    );
    let other = (second_leader + 1) % 3;
    let stays = bed.hosts[(second_leader + 2) % 3].addr.clone();
    ok(
        &stays,
        &["run", "faults/app2", "--peer", &bed.hosts[other].name],
    );
    let running_before = container_on(&bed, &bed.cluster, other, "faults/app2").expect("app2 runs");
    bed.cut(second_leader).unwrap();
    keeps_running(
        &bed,
        other,
        "faults/app2",
        &running_before,
        "the leader's host was cut off",
    );
    bed.heal(second_leader).unwrap();
}

/// How long a follower's replica is watched after its leader fails.
const WATCHED_FOR: Duration = Duration::from_secs(20);

/// Asserts that container `id` of `path` runs on host `i` throughout
/// [`WATCHED_FOR`], from now (just after `event`).
fn keeps_running(bed: &HostBed, i: usize, path: &str, id: &str, event: &str) {
    let since = Instant::now();
    while since.elapsed() < WATCHED_FOR {
        let now = container_on(bed, &bed.cluster, i, path);
        if now.as_deref() != Some(id) {
            let logs: String = (0..bed.peers.len())
                .map(|p| {
                    format!(
                        "\n--- log of {} ---\n{}",
                        bed.hosts[p].name,
                        last_lines(&bed.peers[p].log_text(), LOG_LINES_SHOWN)
                    )
                })
                .collect();
            panic!(
                "the follower's replica was stopped {:?} after {event}: {path} on host {i} is {now:?}, was {id}{logs}",
                since.elapsed()
            );
        }
        std::thread::sleep(POLL);
    }
}

/// How many of each peer's last log lines a failure shows.
const LOG_LINES_SHOWN: usize = 80;

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
