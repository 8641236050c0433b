//! The three-host test bed (`monk_testkit::hosts`): three namespaces, three engines,
//! three peers in one cluster formed through the CLI; a runnable pinned to one host
//! runs in that host's engine only; after the bed drops nothing of it remains; a bed
//! that fails half-way removes what it made; and the bed of a test process SIGKILLed
//! (no `Drop` runs), container included, is swept by the next start.
//!
//! Without a Docker engine or `ip netns` permission these tests print why and pass
//! vacuously; `MONK_REQUIRE_DOCKER=1` makes that a failure.

use std::time::Instant;

use monk_testkit::cli::{json, ok};
use monk_testkit::hosts::{leftovers, usable, HostBed, IMAGE};

fn docker_out(bed: &HostBed, host: usize, args: &[&str]) -> String {
    let out = bed.hosts[host].docker(args).expect("docker runs");
    assert!(
        out.status.success(),
        "docker {args:?} on {}: {}",
        bed.hosts[host].name,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Held while a test starts a bed (each start sweeps dead beds) and while a test
/// looks at a bed it made dead on purpose, which a sweep would remove under it.
static SWEEPS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn sweeps() -> std::sync::MutexGuard<'static, ()> {
    SWEEPS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether process `pid` runs (a zombie waiting for init to reap it does not).
fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| Some(stat[stat.rfind(')')? + 1..].trim_start().starts_with('Z')))
        .is_some_and(|zombie| !zombie)
}

#[test]
fn three_hosts_form_a_cluster_each_on_its_own_engine_and_leave_nothing_behind() {
    let root = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let Some(bed) = ({
        let _sweeps = sweeps();
        HostBed::start_or_skip(root.path(), 3)
    }) else {
        return;
    };
    eprintln!("HostBed::start(3 hosts) took {:?}", started.elapsed());
    let first = bed.hosts[0].addr.clone();

    // Three up peers, named and addressed as the bed says.
    let peers = json(&first, &["cluster", "peers", "-o", "json"]);
    let peers = peers.as_array().expect("an array of peers");
    assert_eq!(peers.len(), 3, "{peers:?}");
    for host in &bed.hosts {
        let peer = peers
            .iter()
            .find(|p| p["name"] == host.name.as_str())
            .unwrap_or_else(|| panic!("no peer {} in {peers:?}", host.name));
        assert_eq!(peer["up"], true, "{peer}");
        assert_eq!(peer["address"], host.addr.as_str(), "{peer}");
        // Each answers from the root namespace at its own address.
        let info = json(&host.addr, &["cluster", "info", "-o", "json"]);
        assert_eq!(info["cluster"], bed.cluster.as_str(), "{info}");
    }

    // Three engines, each its own dockerd with the test image.
    let ids: Vec<String> = (0..3)
        .map(|i| docker_out(&bed, i, &["info", "--format", "{{.ID}}"]))
        .collect();
    assert!(
        ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2],
        "{ids:?}"
    );
    for i in 0..3 {
        assert!(!docker_out(&bed, i, &["image", "ls", "-q", IMAGE]).is_empty());
    }

    // A runnable pinned to host2 runs in host2's engine and nowhere else.
    let file = root.path().join("pinned.yaml");
    std::fs::write(
        &file,
        format!(
            r#"namespace: bed
pinned:
  defines: runnable
  affinity:
    name: host2
  containers:
    app:
      image: {IMAGE}
      bash: exec sleep 600
      stop-grace-period: 1s
"#
        ),
    )
    .unwrap();
    ok(&first, &["load", file.to_str().unwrap()]);
    let out = ok(&first, &["run", "bed/pinned"]);
    assert!(out.contains("#0 on host2: running"), "{out}");
    let label = format!("label=io.monk.cluster={}", bed.cluster);
    let running: Vec<String> = (0..3)
        .map(|i| docker_out(&bed, i, &["ps", "-q", "--filter", &label]))
        .collect();
    assert!(
        running[0].is_empty() && running[2].is_empty(),
        "{running:?}"
    );
    assert_eq!(running[1].lines().count(), 1, "{running:?}");

    // Dropped, the bed leaves no process, namespace, link, cgroup, rule or record.
    let (suffix, dir, pids) = (bed.suffix.clone(), bed.dir.clone(), bed.pids());
    assert_eq!(pids.len(), 6, "three engines and three peers: {pids:?}");
    let stopped = Instant::now();
    drop(bed);
    eprintln!("dropping the bed took {:?}", stopped.elapsed());
    assert_eq!(leftovers(&suffix, &dir), Vec::<String>::new());
    for pid in pids {
        assert!(!alive(&pid.to_string()), "process {pid} outlived the bed");
    }
}

/// A bed whose owner died without dropping it (SIGKILL, an abort) is torn down by the
/// next start: its record names a dead owner.
#[test]
fn a_dead_owners_bed_is_swept_by_the_next_start() {
    let root = tempfile::tempdir().unwrap();
    let _sweeps = sweeps();
    let Some(bed) = HostBed::start_or_skip(&root.path().join("dead"), 1) else {
        return;
    };
    let (suffix, dir) = (bed.suffix.clone(), bed.dir.clone());
    // Pretend the owner died: the record names a process that is gone.
    let record_path =
        std::path::Path::new(monk_testkit::hosts::REGISTRY).join(format!("{suffix}.json"));
    let mut record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&record_path).unwrap()).unwrap();
    record["owner_start"] = serde_json::json!(0);
    std::fs::write(&record_path, record.to_string()).unwrap();
    std::mem::forget(bed);
    assert!(!leftovers(&suffix, &dir).is_empty());

    let next = HostBed::start(&root.path().join("next"), 1).expect("a second bed starts");
    assert_eq!(leftovers(&suffix, &dir), Vec::<String>::new());
    drop(next);
}

/// A bed that fails half-way (here: a dir too deep for the engines' Unix sockets, found
/// after the namespaces and the bridge exist) removes what it made before it returns.
#[test]
fn a_bed_that_fails_to_start_leaves_nothing_behind() {
    if !usable() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let deep = root.path().join("d".repeat(100));
    let _sweeps = sweeps();
    let error = match HostBed::start(&deep, 2) {
        Ok(_) => panic!("a bed under {} started", deep.display()),
        Err(e) => e,
    };
    assert!(error.contains("too deep"), "{error}");
    let suffix = error
        .strip_prefix("bed ")
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_else(|| panic!("the error names no bed: {error}"));
    assert_eq!(leftovers(suffix, &deep), Vec::<String>::new());
}

/// A test process SIGKILLed with a bed up (no `Drop` runs) leaves engines, peers, a
/// container, namespaces and links; the next sweep (every `HostBed::start` runs one)
/// removes all of it, the container's process and the dead bed's dir included.
#[test]
fn a_sigkilled_owner_leaves_nothing_after_the_sweep() {
    if !usable() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    // `monk-hosts hold`: a process that owns a bed (a container on it) until killed.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_monk-hosts"))
        .args(["hold", "--hosts", "2", "--dir"])
        .arg(root.path().join("bed"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line);
        let _ = tx.send(line);
    });
    let said = rx
        .recv_timeout(std::time::Duration::from_secs(90))
        .unwrap_or_else(|_| panic!("the holding process's bed did not start"));
    assert!(
        !said.trim().is_empty(),
        "the holding process ended before its bed was up"
    );
    let mut said = said.trim().split(' ');
    let (suffix, dir, container_pid) = (
        said.next().unwrap().to_string(),
        std::path::PathBuf::from(said.next().unwrap()),
        said.next().unwrap().to_string(),
    );
    let _sweeps = sweeps();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        alive(&container_pid),
        "the container runs on after its owner"
    );
    assert!(!leftovers(&suffix, &dir).is_empty());

    monk_testkit::hosts::sweep_dead();
    assert_eq!(leftovers(&suffix, &dir), Vec::<String>::new());
    assert!(
        !alive(&container_pid),
        "the container's process outlived the sweep"
    );
    assert!(!dir.exists(), "the dead bed's dir is removed");
}
