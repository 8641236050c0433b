//! The peer's Unix socket (`<data dir>/monkd.sock`, mode 0600): `monk` on the same
//! machine talks to it without TLS or a credential and is an admin there (like
//! `docker.sock`); without `--addr` it uses the socket of a peer in monk up's data dir
//! first; a relative socket path is a usage error; the socket goes with the peer.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use support::*;

/// `monk ARGS` with `home` as the user's home and no credential anywhere.
fn monk_home(home: &Path, args: &[&str]) -> Output {
    Command::new(monk_bin())
        .args(args)
        .env("HOME", home)
        .env_remove("XDG_DATA_HOME")
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env_remove("MONK_ADDR")
        .env_remove("MONK_CREDENTIALS")
        .output()
        .expect("run monk")
}

#[test]
fn monk_on_the_same_machine_uses_the_peers_socket_as_an_admin() {
    let home = tempfile::tempdir().unwrap();
    // The peer's data dir is where `monk up` would put it: ~/.local/share/monk.
    let share = home.path().join(".local/share");
    std::fs::create_dir_all(&share).unwrap();
    let mut peer = Peer::start_with(&share, "monk", &["--containers", "none"]);
    let socket = share.join("monk").join("monkd.sock");
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the socket is open to others");
    let addr = format!("unix:{}", socket.display());

    // No credential at all: over the socket the caller is this machine's admin.
    let created = monk_home(
        home.path(),
        &["--addr", &addr, "cluster", "new", "--name", "sock"],
    );
    assert!(created.status.success(), "{}", stderr(&created));
    let file = home.path().join("app.yaml");
    std::fs::write(
        &file,
        "namespace: app\nweb:\n  defines: runnable\n  containers:\n    main:\n      image: busybox\n",
    )
    .unwrap();
    let loaded = monk_home(
        home.path(),
        &["--addr", &addr, "load", file.to_str().unwrap()],
    );
    assert!(loaded.status.success(), "{}", stderr(&loaded));
    let out = home.path().join("viewer.credentials");
    let added = monk_home(
        home.path(),
        &[
            "--addr",
            &addr,
            "user",
            "add",
            "ci",
            "--role",
            "viewer",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(added.status.success(), "{}", stderr(&added));

    // Without --addr, monk finds the socket of the peer in monk up's data dir.
    let listed = monk_home(home.path(), &["list", "-o", "json"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let rows: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(rows[0]["path"], "app/web", "{rows}");
    // Over TCP without a credential the same call is refused: the socket is the key.
    // (`cluster new` kept the admin credential under ~/.config and in the data dir
    // monk up uses: another user's home finds neither.)
    let tcp = Command::new(monk_bin())
        .args(["--addr", &peer.addr, "list"])
        .env("HOME", home.path().join("elsewhere"))
        .env("XDG_CONFIG_HOME", home.path().join("elsewhere"))
        .env_remove("MONK_CREDENTIALS")
        .output()
        .unwrap();
    assert!(!tcp.status.success());
    assert!(stderr(&tcp).contains("anonymous"), "{}", stderr(&tcp));
    // What the socket's caller proposed is stamped with its uid.
    let events = monk_home(
        home.path(),
        &["events", "--kind", "templates-loaded", "-o", "json"],
    );
    assert!(
        stdout(&events).contains("local:uid"),
        "{}{}",
        stdout(&events),
        stderr(&events)
    );

    let relative = monk_home(home.path(), &["--addr", "unix:monkd.sock", "list"]);
    assert_eq!(relative.status.code(), Some(2), "{}", stderr(&relative));

    peer.terminate();
    assert!(!socket.exists(), "the socket outlived its peer");
    // With no peer, monk falls back to TCP and says no peer answers.
    let gone = monk_home(home.path(), &["list"]);
    assert_eq!(gone.status.code(), Some(3), "{}", stderr(&gone));
}

#[test]
fn a_data_dir_too_long_for_a_socket_still_serves_tcp_and_says_why() {
    let root = tempfile::tempdir().unwrap();
    let long = root.path().join("d".repeat(110));
    std::fs::create_dir_all(&long).unwrap();
    let mut peer = Peer::start_with(&long, "p", &["--containers", "none"]);
    let info = monk_testkit::cli::monk_anonymous(&peer.addr, &["cluster", "info"]);
    assert!(info.status.success(), "{}", stderr(&info));
    assert!(
        peer.log_text().contains("no Unix socket for local clients"),
        "{}",
        peer.log_text()
    );
    peer.terminate();
}
