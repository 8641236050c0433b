//! The overlay's keys and addresses end to end with real `monkd` processes: each peer
//! makes its WireGuard key at first start (`wireguard.key`, 0600) and keeps it across
//! restarts; the state holds its public key and endpoint (never the private key) and
//! the address `apply` gave it from `monk cluster new --overlay`; a restart with a new
//! `--wg-endpoint` is advertised with `peer-overlay-changed`; a range `apply` would
//! refuse is refused by `monk cluster new` before anything is made.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use monk_node::api::Query;
use monk_node::overlay::key::{WireGuardKey, WIREGUARD_KEY_FILE};
use support::*;

fn state(addr: &str) -> serde_json::Value {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut client = monk_testkit::process::admin_client(addr).await.unwrap();
        client.query(&Query::State, false).await.unwrap()
    })
}

fn wireguard(state: &serde_json::Value, peer: u64) -> serde_json::Value {
    state["peers"][peer.to_string()]["overlay"].clone()
}

#[test]
fn peers_keep_their_wireguard_keys_and_the_state_holds_the_public_halves() {
    let root = tempfile::tempdir().unwrap();
    let mut alpha = Peer::start_with(root.path(), "alpha", &["--wg-listen-port", "51999"]);
    let beta = Peer::start(root.path(), "beta");
    ok(
        &alpha.addr,
        &[
            "cluster",
            "new",
            "--name",
            "ov",
            "--overlay",
            "10.99.0.0/16",
        ],
    );
    let token = ok(&alpha.addr, &["cluster", "token"]).trim().to_string();
    ok(&beta.addr, &["cluster", "join", "--token", &token]);

    let key_file = alpha.data_dir.join(WIREGUARD_KEY_FILE);
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let private = std::fs::read_to_string(&key_file).unwrap();
    let alpha_key = WireGuardKey::load(&alpha.data_dir).unwrap().unwrap();
    let beta_key = WireGuardKey::load(&beta.data_dir).unwrap().unwrap();
    assert_ne!(alpha_key.public_base64(), beta_key.public_base64());

    let held = state(&alpha.addr);
    assert_eq!(held["overlay_range"], "10.99.0.0/16");
    let one = wireguard(&held, 1);
    assert_eq!(one["address"], "10.99.0.1");
    assert_eq!(one["subnet"], "10.99.128.0/24");
    assert_eq!(one["wireguard"]["public_key"], alpha_key.public_base64());
    assert_eq!(one["wireguard"]["endpoint"], "127.0.0.1:51999");
    let two = wireguard(&held, 2);
    assert_eq!(two["address"], "10.99.0.2");
    assert_eq!(two["subnet"], "10.99.129.0/24");
    assert_eq!(two["wireguard"]["public_key"], beta_key.public_base64());
    assert_eq!(two["wireguard"]["endpoint"], "127.0.0.1:51820");
    assert!(!held.to_string().contains(private.trim()));

    let table = ok(&beta.addr, &["cluster", "peers"]);
    assert!(table.contains("OVERLAY"), "{table}");
    assert!(
        table.contains("10.99.0.1") && table.contains("10.99.0.2"),
        "{table}"
    );

    // Restarted with another endpoint: same key, and the new endpoint reaches the log.
    alpha.terminate();
    alpha.extra_args = vec!["--wg-endpoint".into(), "192.0.2.10:51000".into()];
    alpha.restart();
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), private);
    wait_for(
        Duration::from_secs(30),
        || wireguard(&state(&beta.addr), 1)["wireguard"]["endpoint"] == "192.0.2.10:51000",
        "alpha's new endpoint in the state",
    );
    let one = wireguard(&state(&beta.addr), 1);
    assert_eq!(one["wireguard"]["public_key"], alpha_key.public_base64());
    assert_eq!(one["address"], "10.99.0.1");
    let log = ok(&beta.addr, &["log", "--kind", "peer-overlay-changed"]);
    assert!(log.contains("192.0.2.10:51000"), "{log}");
}

#[test]
fn a_bad_overlay_range_is_refused_before_the_cluster_exists() {
    let root = tempfile::tempdir().unwrap();
    let alpha = Peer::start(root.path(), "alpha");
    for range in ["10.99.0.1/16", "10.99.0.0/24", "nonsense"] {
        let o = alpha.monk(&["cluster", "new", "--overlay", range]);
        assert_eq!(o.status.code(), Some(2), "{range}: {}", stderr(&o));
    }
    ok(&alpha.addr, &["cluster", "new"]);
    assert_eq!(state(&alpha.addr)["overlay_range"], "10.211.0.0/16");
}
