//! `monk up` and `monk down` as a newcomer uses them: from nothing (no peer, an empty
//! data dir) `monk up examples/hello-stack.yaml` starts an embedded `monkd`, creates
//! the cluster, runs the stack on the real Docker engine and its published port
//! answers; `monk up` again after editing the port updates it; `monk down --all` leaves
//! no `monkd`, no container, no container network and no firewall chain. A file with a bad definition starts nothing.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use support::docker::*;
use support::*;

/// `monk --addr ADDR ARGS`, the binary under test.
fn monk_at(addr: &str, args: &[&str]) -> Output {
    Command::new(monk_bin())
        .args(["--addr", addr])
        .args(args)
        // Where `monk up` keeps the admin credential, kept out of the user's home.
        .env("XDG_CONFIG_HOME", monk_testkit::process::config_home(addr))
        .env_remove("MONK_CREDENTIALS")
        .output()
        .expect("run monk")
}

/// The example stack with its published host port changed from 8080 to `port`.
fn write_stack(file: &Path, port: u16) {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/hello-stack.yaml");
    let text = std::fs::read_to_string(example).expect("the example");
    assert!(text.contains("- 8080:8080"), "the example publishes 8080");
    std::fs::write(file, text.replace("- 8080:8080", &format!("- {port}:8080"))).unwrap();
}

/// Alive and not a zombie (the `monkd` that `monk up` started is reparented when
/// `monk` exits; whoever adopts it may reap it late).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let after = stat.rfind(')')?;
            stat[after + 1..].trim_start().chars().next()
        })
        .is_some_and(|state| state != 'Z')
}

#[test]
fn up_from_nothing_updates_after_an_edit_and_down_all_leaves_nothing_behind() {
    if !engine_present() {
        return;
    }
    build_image();
    let cluster = format!("up-{}", std::process::id());
    let _containers = Cleanup(cluster.clone());
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let _peer = KillEmbedded(root.path().join("data.pid"));
    let addr = format!("127.0.0.1:{}", free_port());
    let file = root.path().join("stack.yaml");
    let first = free_port();
    write_stack(&file, first);
    let up = [
        "up",
        file.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "--cluster",
        &cluster,
    ];

    let o = monk_at(&addr, &up);
    let out = succeeded(&o, "the first monk up");
    let progress = stderr(&o);
    assert!(progress.contains("Started monkd (pid "), "{progress}");
    assert!(
        progress.contains(&format!("Created cluster {cluster}")),
        "{progress}"
    );
    assert!(progress.contains("hello/stack: started"), "{progress}");
    assert!(out.starts_with("✔ Up: hello/stack in cluster"), "{out}");
    assert!(out.contains("hello/web#0 on "), "{out}");
    assert!(out.contains("hello/pinger#0 on "), "{out}");
    assert!(out.contains("main (monk-local/busybox:1)"), "{out}");
    assert!(out.contains(&format!("ports       {first}/tcp")), "{out}");
    assert!(
        out.contains(&format!("monk --addr {addr} exec hello/web -- sh")),
        "{out}"
    );
    let pid: u32 = std::fs::read_to_string(root.path().join("data.pid"))
        .expect("a pid file beside the data dir")
        .trim()
        .parse()
        .unwrap();
    assert!(running(pid));
    assert!(root.path().join("data.log").is_file());
    let body = http_get(first).unwrap_or_default();
    assert!(body.starts_with("hello from "), "{body:?}");

    // Edited, up again: the same peer, the workload updated onto the new port.
    let second = free_port();
    write_stack(&file, second);
    let o = monk_at(&addr, &up);
    let out = succeeded(&o, "the second monk up");
    assert!(!stderr(&o).contains("Started monkd"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("hello/stack: updated"),
        "{}",
        stderr(&o)
    );
    assert!(out.contains(&format!("ports       {second}/tcp")), "{out}");
    let body = http_get(second).unwrap_or_default();
    assert!(body.starts_with("hello from "), "{body:?}");
    wait_for(
        Duration::from_secs(15),
        || http_get(first).is_none(),
        "the old port to close",
    );

    let o = monk_at(
        &addr,
        &["down", "--all", "--data-dir", data.to_str().unwrap()],
    );
    let out = succeeded(&o, "monk down --all");
    assert!(
        out.contains("✔ Stopped and purged hello/pinger, hello/web (their containers are gone)"),
        "{out}"
    );
    assert!(
        out.contains(&format!("✔ Stopped the embedded monkd (pid {pid})")),
        "{out}"
    );
    assert!(!running(pid), "monkd {pid} still runs");
    assert!(!root.path().join("data.pid").exists());
    let (_, left) = containers(&cluster, true);
    assert_eq!(left.trim(), "", "containers left behind");
    let filter = format!("label=io.monk.cluster={cluster}");
    let (_, networks) = docker(&["network", "ls", "-q", "--filter", &filter]);
    assert_eq!(networks.trim(), "", "a container network left behind");
    // Nor the overlay's firewall and NAT chains (where iptables can be read: root).
    let chain = |table: &str, name: &str| {
        Command::new("iptables")
            .args(["-t", table, "-S", name])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let readable = Command::new("iptables")
        .args(["-S", "INPUT"])
        .output()
        .is_ok_and(|o| o.status.success());
    if readable {
        assert!(
            !chain("filter", "MONK-OVERLAY"),
            "the overlay's filter chain left behind"
        );
        assert!(
            !chain("nat", "MONK-OVERLAY-NAT"),
            "the overlay's NAT chain left behind"
        );
    }
}

#[test]
fn up_of_a_bad_file_says_where_and_starts_nothing() {
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("bad.yaml");
    std::fs::write(&file, "namespace: bad\nweb:\n  defines: runable\n").unwrap();
    let data = root.path().join("data");
    let addr = format!("127.0.0.1:{}", free_port());
    let o = monk_at(
        &addr,
        &[
            "up",
            file.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let reason = stderr(&o);
    assert!(
        reason.contains(&format!("{}:3:12: error:", file.display())),
        "{reason}"
    );
    assert!(reason.contains("nothing was loaded"), "{reason}");
    assert!(!data.exists(), "no data dir: no peer was started");
    assert_eq!(monk_at(&addr, &["cluster", "info"]).status.code(), Some(3));

    // Nothing named: a usage error, before any peer is asked.
    assert_eq!(monk_at(&addr, &["up"]).status.code(), Some(2));
    assert_eq!(monk_at(&addr, &["down"]).status.code(), Some(2));
}
