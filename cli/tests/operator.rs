//! An operator's daily tools through the real `monk` binary, with real `monkd` peers
//! that run no containers (`--containers none`, so no Docker is needed): the exit
//! codes scripts rely on (one test per code), shell completions that bash can source,
//! `monk version`, waits that end at `--timeout` naming what they waited for, plain
//! progress lines when stderr is not a terminal, and `monk ps` filters.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::*;

fn code(o: &std::process::Output) -> Option<i32> {
    o.status.code()
}

fn quiet_peer(root: &std::path::Path, name: &str, tags: &str) -> Peer {
    match tags.is_empty() {
        true => Peer::start_with(root, name, &["--containers", "none"]),
        false => Peer::start_with(root, name, &["--containers", "none", "--tags", tags]),
    }
}

fn load(addr: &str, root: &std::path::Path, yaml: &str) {
    let file = root.join("defs.yaml");
    std::fs::write(&file, yaml).unwrap();
    ok(addr, &["load", file.to_str().unwrap()]);
}

const APPS: &str = r#"namespace: op
web:
  defines: runnable
  containers:
    main:
      image: busybox
db:
  defines: runnable
  containers:
    main:
      image: busybox
gpu:
  defines: runnable
  affinity:
    tag: gpu
  containers:
    main:
      image: busybox
"#;

/// Alpha creates the cluster `name`, beta (tagged `beta_tags`) joins it.
fn two_quiet_peers(
    root: &std::path::Path,
    name: &str,
    alpha_tags: &str,
    beta_tags: &str,
) -> (Peer, Peer) {
    let alpha = quiet_peer(root, "alpha", alpha_tags);
    let beta = quiet_peer(root, "beta", beta_tags);
    ok(&alpha.addr, &["cluster", "new", "--name", name]);
    let token = ok(&alpha.addr, &["cluster", "token"]).trim().to_string();
    ok(&beta.addr, &["cluster", "join", "--token", &token]);
    (alpha, beta)
}

#[test]
fn exit_code_3_when_no_peer_answers() {
    let o = monk("127.0.0.1:1", &["cluster", "info"]);
    assert_eq!(code(&o), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("cannot connect to 127.0.0.1:1"),
        "{}",
        stderr(&o)
    );
    // The same for a workload command and for an online audit command.
    assert_eq!(code(&monk("127.0.0.1:1", &["ps"])), Some(3));
    assert_eq!(code(&monk("127.0.0.1:1", &["log"])), Some(3));
}

#[test]
fn exit_code_3_when_the_peer_stops_answering_during_a_wait() {
    let root = tempfile::tempdir().unwrap();
    let mut alpha = quiet_peer(root.path(), "alpha", "");
    ok(&alpha.addr, &["cluster", "new", "--name", "gone"]);
    load(&alpha.addr, root.path(), APPS);
    let wait = Command::new(monk_bin())
        .args(["--addr", &alpha.addr, "run", "--timeout", "60", "op/web"])
        .env(
            "XDG_CONFIG_HOME",
            monk_testkit::process::config_home(&alpha.addr),
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    alpha.kill();
    let o = wait.wait_with_output().unwrap();
    assert_eq!(code(&o), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("monk: the peer stopped answering"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn exit_code_2_for_usage_errors() {
    // clap's own: an unknown flag, a bad --timeout, a bad --addr.
    assert_eq!(code(&monk("127.0.0.1:1", &["ps", "--bogus"])), Some(2));
    assert_eq!(
        code(&monk("127.0.0.1:1", &["run", "--timeout", "5x", "op/web"])),
        Some(2)
    );
    let o = monk("not an address", &["cluster", "info"]);
    assert_eq!(code(&o), Some(2), "{}", stderr(&o));
    assert_eq!(
        code(&monk("127.0.0.1:1", &["ps", "--status", "sleepy"])),
        Some(2)
    );
}

#[test]
fn exit_codes_0_1_and_2_from_a_peer_and_1_at_the_timeout() {
    let root = tempfile::tempdir().unwrap();
    let mut alpha = quiet_peer(root.path(), "alpha", "edge");
    // A peer in no cluster refuses: the operation failed (1), nothing to retry.
    assert_eq!(code(&alpha.monk(&["ps"])), Some(1));
    ok(&alpha.addr, &["cluster", "new", "--name", "codes"]);
    load(&alpha.addr, root.path(), APPS);
    assert_eq!(code(&alpha.monk(&["ps"])), Some(0));
    // Rejected by the cluster: 1, with the reason.
    let o = alpha.monk(&["run", "op/nope"]);
    assert_eq!(code(&o), Some(1), "{}", stderr(&o));
    // A --set that is not NAME=VALUE is a usage error, found before anything is sent.
    assert_eq!(code(&alpha.monk(&["run", "op/web", "--set", "x"])), Some(2));
    // No executor on this peer: the replica never reports, and the wait ends at
    // --timeout with what it waited for.
    let began = Instant::now();
    let o = alpha.monk(&["run", "--timeout", "2", "op/web"]);
    assert_eq!(code(&o), Some(1), "{}", stderr(&o));
    assert!(
        began.elapsed() < Duration::from_secs(20),
        "{:?}",
        began.elapsed()
    );
    assert!(
        stderr(&o).contains("monk: timed out after 2s waiting for op/web#0 on alpha (placed)"),
        "{}",
        stderr(&o)
    );
    // `--wait` is the older name of the same flag; 0 returns once committed.
    let o = alpha.monk(&["update", "--wait", "0", "op/web"]);
    assert_eq!(code(&o), Some(0), "{}", stderr(&o));
    alpha.terminate();
}

#[test]
fn exit_code_4_when_the_peer_answers_but_no_leader_does() {
    let root = tempfile::tempdir().unwrap();
    let (mut alpha, mut beta) = two_quiet_peers(root.path(), "quorum", "", "");
    wait_for(
        Duration::from_secs(40),
        || {
            let peers = json(&alpha.addr, &["cluster", "peers", "-o", "json"]);
            peers
                .as_array()
                .is_some_and(|a| a.len() == 2 && a.iter().all(|p| p["voter"] == true))
        },
        "two voters",
    );
    // Two voters, one gone: beta answers, but nobody can lead.
    alpha.kill();
    let o = beta.monk(&["ps"]);
    assert_eq!(code(&o), Some(4), "{}", stderr(&o));
    beta.terminate();
}

#[test]
fn progress_is_plain_lines_on_stderr_without_a_terminal_and_nothing_with_q() {
    let root = tempfile::tempdir().unwrap();
    let mut alpha = quiet_peer(root.path(), "alpha", "edge");
    ok(&alpha.addr, &["cluster", "new", "--name", "lines"]);
    load(&alpha.addr, root.path(), APPS);
    let o = alpha.monk(&["run", "--timeout", "1", "-o", "json", "op/web"]);
    assert_eq!(code(&o), Some(1));
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.trim_start().ends_with("s  op/web#0 on alpha: placed")),
        "one plain line per state change: {err}"
    );
    assert!(
        !err.contains('\u{1b}'),
        "no escape codes without a terminal: {err:?}"
    );
    assert!(
        stdout(&o).is_empty(),
        "progress never goes to stdout: {}",
        stdout(&o)
    );
    let o = alpha.monk(&["restart", "-q", "--timeout", "1", "op/web"]);
    assert_eq!(code(&o), Some(1));
    assert_eq!(
        stderr(&o).trim(),
        "monk: timed out after 1s waiting for op/web#0 on alpha (placed)",
        "-q leaves the reason only"
    );
    alpha.terminate();
}

#[test]
fn completions_are_scripts_bash_can_source() {
    for shell in ["bash", "zsh", "fish"] {
        let script = ok_offline(&["completions", shell]);
        assert!(script.contains("monk"), "{shell}: {script}");
        assert!(script.len() > 1_000, "{shell}: a real script, not a stub");
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("monk.bash");
    std::fs::write(&file, ok_offline(&["completions", "bash"])).unwrap();
    let o = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -e; source {}; complete -p monk",
            file.display()
        ))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("_monk"), "{}", stdout(&o));
    assert_eq!(code(&monk_offline(&["completions", "tcsh"])), Some(2));
}

#[test]
fn version_names_the_client_the_entry_format_and_the_peer() {
    let format = monk_statemachine::FORMAT_VERSION;
    let client = ok("127.0.0.1:1", &["version", "--client"]);
    assert_eq!(
        client,
        format!(
            "client  monk {} (entry format {format})\n",
            env!("CARGO_PKG_VERSION")
        )
    );
    // No peer: the client's side, then exit 3.
    let o = monk("127.0.0.1:1", &["version"]);
    assert_eq!(code(&o), Some(3));
    assert_eq!(stdout(&o), client);

    let root = tempfile::tempdir().unwrap();
    let mut alpha = quiet_peer(root.path(), "alpha", "");
    ok(&alpha.addr, &["cluster", "new", "--name", "versions"]);
    let text = ok(&alpha.addr, &["version"]);
    assert!(
        text.contains(&format!(
            "peer    monkd {} (entry format {format}) at {}: alpha in cluster versions",
            env!("CARGO_PKG_VERSION"),
            alpha.addr
        )),
        "{text}"
    );
    let v = json(&alpha.addr, &["version", "-o", "json"]);
    assert_eq!(v["client"]["format_version"], format);
    assert_eq!(v["peer"]["version"], env!("CARGO_PKG_VERSION"));
    let info = json(&alpha.addr, &["cluster", "info", "-o", "json"]);
    assert_eq!(info["format_version"], format);
    alpha.terminate();
}

/// `path#replica` of each row of `monk ps ARGS -o json`.
fn ps_rows(addr: &str, args: &[&str]) -> Vec<String> {
    let mut all = vec!["ps", "-o", "json"];
    all.extend_from_slice(args);
    json(addr, &all)
        .as_array()
        .expect("a list")
        .iter()
        .map(|i| format!("{}#{}", i["path"].as_str().unwrap(), i["replica"]))
        .collect()
}

#[test]
fn ps_filters_by_tag_and_status_and_hides_stopped_workloads_without_all() {
    let root = tempfile::tempdir().unwrap();
    let (mut alpha, mut beta) = two_quiet_peers(root.path(), "filters", "edge", "core");
    load(&alpha.addr, root.path(), APPS);
    ok(
        &alpha.addr,
        &["run", "--wait", "0", "--tag", "edge", "op/web"],
    );
    ok(
        &alpha.addr,
        &["run", "--wait", "0", "--tag", "core", "op/db"],
    );
    // Nobody has the gpu tag: pending, and `run` says why.
    let o = alpha.monk(&["run", "op/gpu"]);
    assert_eq!(code(&o), Some(1));
    assert!(stderr(&o).contains("op/gpu#0 pending"), "{}", stderr(&o));

    let everything = ["op/db#0", "op/gpu#0", "op/web#0"];
    assert_eq!(ps_rows(&alpha.addr, &[]), everything);
    assert_eq!(ps_rows(&alpha.addr, &["--tag", "edge"]), ["op/web#0"]);
    assert_eq!(ps_rows(&alpha.addr, &["--tag", "core"]), ["op/db#0"]);
    assert_eq!(ps_rows(&alpha.addr, &["--status", "pending"]), ["op/gpu#0"]);
    assert_eq!(
        ps_rows(&alpha.addr, &["--status", "starting", "--tag", "core"]),
        ["op/db#0"]
    );

    ok(&alpha.addr, &["stop", "op/db"]);
    assert_eq!(ps_rows(&alpha.addr, &[]), ["op/gpu#0", "op/web#0"]);
    assert_eq!(ps_rows(&alpha.addr, &["--all"]), everything);
    assert_eq!(ps_rows(&alpha.addr, &["-a", "--tag", "core"]), ["op/db#0"]);
    let table = ok(&alpha.addr, &["ps"]);
    assert!(
        table.contains("(1 replica(s) of stopped workloads not shown: --all shows them)"),
        "{table}"
    );
    alpha.terminate();
    beta.terminate();
}
