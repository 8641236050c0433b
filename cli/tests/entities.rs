//! Entity instances through real `monkd` processes (`--containers none`): the example
//! kit `examples/cloud-db/` manages a database through a fake "cloud API" this test
//! serves on loopback. `monk run` places the instance on one peer, whose entity
//! executor runs create, start and the readiness check (failing until the API says the
//! database is ready); `monk update`, `stop` and `purge` run theirs; every peer holds
//! the same saved state (equal digests). Sandbox failures (an endless loop, a throw)
//! fail the verb with an error naming instance and verb, save nothing, and leave the
//! peer running.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use support::*;

/// How long a lifecycle step may take to show in the state on a loaded machine.
const STEP_WAIT: Duration = Duration::from_secs(60);

/// Release of the fake API's `POST /databases` (closed: it holds the request until the
/// test opens it, so a peer can be killed while `create` waits on it).
#[derive(Default)]
struct Gate {
    closed: bool,
}

/// The fake cloud API's memory: every call as `METHOD /path`, the databases, and
/// whether they report `ready`.
#[derive(Default)]
struct Cloud {
    calls: Vec<String>,
    /// `POST /databases` requests that arrived (answered or not).
    creates_arrived: usize,
    databases: BTreeMap<String, Value>,
    ready: bool,
}

/// A tiny HTTP/1.1 server on 127.0.0.1 (one request per connection) answering the
/// calls the kit's scripts make.
struct FakeCloud {
    url: String,
    cloud: Arc<Mutex<Cloud>>,
    gate: Arc<Mutex<Gate>>,
}

impl FakeCloud {
    fn start() -> FakeCloud {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake API");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let cloud = Arc::new(Mutex::new(Cloud::default()));
        let gate = Arc::new(Mutex::new(Gate::default()));
        let (shared, held) = (cloud.clone(), gate.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (shared, held) = (shared.clone(), held.clone());
                std::thread::spawn(move || serve(stream, &shared, &held));
            }
        });
        FakeCloud { url, cloud, gate }
    }

    fn calls(&self) -> Vec<String> {
        self.cloud.lock().expect("cloud").calls.clone()
    }

    fn set_ready(&self) {
        self.cloud.lock().expect("cloud").ready = true;
    }
}

fn serve(stream: TcpStream, cloud: &Mutex<Cloud>, gate: &Mutex<Gate>) {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if (method, path) == ("POST", "/databases") {
        cloud.lock().expect("cloud").creates_arrived += 1;
        while gate.lock().expect("gate").closed {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let (code, answer) = answer(&mut cloud.lock().expect("cloud"), method, path, &body);
    let text = answer.to_string();
    let reply = format!(
        "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
    let _ = reader.get_mut().write_all(reply.as_bytes());
}

fn answer(cloud: &mut Cloud, method: &str, path: &str, body: &Value) -> (u16, Value) {
    cloud.calls.push(format!("{method} {path}"));
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        ("POST", ["databases"]) => {
            let id = format!("db-{}", cloud.databases.len() + 1);
            let db = json!({"id": id, "address": "10.9.0.7", "size": body["size"]});
            cloud.databases.insert(id, db.clone());
            (201, db)
        }
        ("GET", ["databases", id]) => {
            let status = if cloud.ready { "ready" } else { "provisioning" };
            match cloud.databases.get(*id) {
                Some(_) => (200, json!({"id": id, "status": status})),
                None => (404, json!({"error": "no such database"})),
            }
        }
        ("PUT", ["databases", id]) => match cloud.databases.get_mut(*id) {
            Some(db) => {
                db["size"] = body["size"].clone();
                (200, db.clone())
            }
            None => (404, json!({"error": "no such database"})),
        },
        ("POST", ["databases", _, "start" | "stop"]) => (200, json!({})),
        ("POST", ["databases", _, "backups"]) => (201, json!({"id": "bk-1"})),
        ("DELETE", ["databases", id]) => match cloud.databases.remove(*id) {
            Some(_) => (200, json!({})),
            None => (404, json!({"error": "no such database"})),
        },
        _ => (404, json!({"error": "unknown call"})),
    }
}

/// The example kit, copied next to the test with `api` pointing at `url`.
fn kit(dir: &Path, url: &str) -> String {
    let source = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/cloud-db"));
    for file in ["cloud-db.yaml", "create.js", "readiness.js"] {
        let text = std::fs::read_to_string(source.join(file)).expect("the example kit");
        let text = text.replace("http://127.0.0.1:8089", url);
        std::fs::write(dir.join(file), text).expect("write the kit");
    }
    dir.join("cloud-db.yaml").to_string_lossy().into_owned()
}

/// The instance's row of `monk ps -o json`, if it runs.
fn row(addr: &str, path: &str) -> Option<Value> {
    let ps = json(addr, &["ps", "--all", "-o", "json"]);
    ps.as_array()?.iter().find(|i| i["path"] == path).cloned()
}

fn status(addr: &str, path: &str) -> String {
    row(addr, path)
        .and_then(|r| r["status"].as_str().map(String::from))
        .unwrap_or_default()
}

/// The instance's entity record from `monk describe -o json`.
fn entity(addr: &str, path: &str) -> Value {
    json(addr, &["describe", path, "-o", "json"])["workload"]["entity"].clone()
}

fn saved_state(addr: &str, path: &str) -> Value {
    entity(addr, path)["state"]
        .as_str()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null)
}

fn wait_status(addr: &str, path: &str, want: &str) {
    wait_for(
        STEP_WAIT,
        || status(addr, path) == want,
        &format!("{path} to be {want}"),
    );
}

/// Waits until `path` failed, and checks its message starts with `why`.
fn fails_with(addr: &str, path: &str, why: &str) {
    wait_status(addr, path, "failed");
    let message = row(addr, path).unwrap()["message"].clone();
    assert!(message.as_str().unwrap().starts_with(why), "{message}");
}

/// A Docker engine for a test (`None`, having said why, when none answers), the
/// busybox image built, and a cluster name whose containers go when the test ends.
fn with_docker(tag: &str) -> Option<(String, support::docker::Cleanup)> {
    if !support::docker::engine_present() {
        return None;
    }
    support::docker::build_image();
    let cluster = format!("{tag}-{}", std::process::id());
    Some((cluster.clone(), support::docker::Cleanup(cluster)))
}

fn three_peers(root: &Path) -> [Peer; 3] {
    let peer = |name: &str| Peer::start_with(root, name, &["--containers", "none"]);
    let (alpha, beta, gamma) = (peer("alpha"), peer("beta"), peer("gamma"));
    ok(&alpha.addr, &["cluster", "new", "--name", "entities"]);
    for joiner in [&beta, &gamma] {
        let token = ok(&alpha.addr, &["cluster", "token"]).trim().to_string();
        ok(&joiner.addr, &["cluster", "join", "--token", &token]);
    }
    [alpha, beta, gamma]
}

/// Waits until every peer applied the same entries to the same state.
fn same_digest_everywhere(peers: &[Peer]) {
    wait_for(
        STEP_WAIT,
        || {
            let seen: Vec<Value> = peers
                .iter()
                .map(|p| json(&p.addr, &["system", "consensus", "-o", "json"]))
                .map(|c| json!([c["applied_index"], c["state_digest"]]))
                .collect();
            seen.windows(2).all(|w| w[0] == w[1])
        },
        "every peer to apply the same entries to the same state",
    );
}

#[test]
fn an_entity_kit_runs_its_lifecycle_against_a_cloud_api() {
    let root = tempfile::tempdir().unwrap();
    let api = FakeCloud::start();
    let peers = three_peers(root.path());
    let addr = peers[1].addr.clone();
    let file = kit(root.path(), &api.url);
    ok(&addr, &["load", &file]);

    // Run through a follower: create, then start, then the readiness check, which
    // fails while the API says the database is provisioning.
    ok(&addr, &["run", "cloud/shop-db", "--wait", "0"]);
    wait_for(
        STEP_WAIT,
        || {
            status(&addr, "cloud/shop-db") == "running"
                && api.calls().iter().any(|c| c == "GET /databases/db-1")
        },
        "the instance started and its readiness check ran",
    );
    let state = saved_state(&addr, "cloud/shop-db");
    assert_eq!(state["id"], "db-1", "{state}");
    assert_eq!(state["address"], "10.9.0.7", "{state}");
    assert_eq!(state["starts"], 1, "{state}");
    assert_eq!(status(&addr, "cloud/shop-db"), "running");
    api.set_ready();
    wait_status(&addr, "cloud/shop-db", "ready");
    let calls = api.calls();
    assert_eq!(
        calls[..2],
        ["POST /databases", "POST /databases/db-1/start"],
        "{calls:?}"
    );
    let described = ok(&addr, &["describe", "cloud/shop-db"]);
    assert!(
        described.contains("entity type   cloud/database  (created)"),
        "{described}"
    );
    assert!(
        described.contains("last verb     check-readiness ok"),
        "{described}"
    );

    // A custom verb through `monk do`, sent to a peer that does not host the instance
    // (it forwards it): its output reaches the user, its result and the names of its
    // arguments enter the log.
    let placed = row(&addr, "cloud/shop-db").unwrap();
    let (host, host_id) = (placed["peer_name"].clone(), placed["peer"].clone());
    let names = ["alpha", "beta", "gamma"];
    let other = names.iter().position(|n| *n != host).unwrap();
    let through = peers[other].addr.clone();
    assert_eq!(
        ok(&through, &["actions", "cloud/shop-db"]),
        "cloud/shop-db/backup\n"
    );
    let done = ok(&through, &["do", "cloud/shop-db/backup", "label=nightly"]);
    assert!(done.contains("backup bk-1 taken"), "{done}");
    assert!(done.contains(&format!("done on peer {host_id}")), "{done}");
    assert_eq!(saved_state(&addr, "cloud/shop-db")["lastBackup"], "bk-1");
    assert!(api
        .calls()
        .contains(&"POST /databases/db-1/backups".to_string()));
    let log = ok(&addr, &["log", "--kind", "entity-verb-done"]);
    assert!(log.contains("backup(label) ok"), "{log}");
    assert!(!log.contains("nightly"), "{log}");
    let unknown = peers[other].monk(&["do", "cloud/shop-db/restore"]);
    assert!(!unknown.status.success());
    assert!(
        stderr(&unknown).contains("has no action restore; it has: backup"),
        "{}",
        stderr(&unknown)
    );

    // Update: the changed instance is updated, then started again.
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("size: 10", "size: 20")).unwrap();
    ok(&addr, &["load", &file]);
    ok(&addr, &["update", "cloud/shop-db", "--wait", "0"]);
    wait_for(
        STEP_WAIT,
        || {
            let s = saved_state(&addr, "cloud/shop-db");
            s["size"] == 20 && s["starts"] == 2
        },
        "the update and the second start",
    );
    assert!(api.calls().contains(&"PUT /databases/db-1".to_string()));

    // Stop: its verb runs; every peer holds the same saved state.
    ok(&addr, &["stop", "cloud/shop-db"]);
    wait_status(&addr, "cloud/shop-db", "stopped");
    assert!(api
        .calls()
        .contains(&"POST /databases/db-1/stop".to_string()));
    same_digest_everywhere(&peers);
    for p in &peers {
        assert_eq!(saved_state(&p.addr, "cloud/shop-db")["size"], 20);
    }

    // Purge: the instance is forgotten once the API deleted the database.
    ok(&addr, &["purge", "cloud/shop-db"]);
    wait_for(
        STEP_WAIT,
        || row(&addr, "cloud/shop-db").is_none(),
        "the instance to be purged",
    );
    assert_eq!(
        api.calls().last().map(String::as_str),
        Some("DELETE /databases/db-1")
    );
    assert!(api.cloud.lock().unwrap().databases.is_empty());
    let log = ok(&addr, &["log", "--kind", "entity-verb-done"]);
    for verb in [
        "create",
        "start",
        "check-readiness",
        "update",
        "stop",
        "purge",
    ] {
        assert!(log.contains(&format!(" {verb} ok")), "{verb} in {log}");
    }
    same_digest_everywhere(&peers);
}

#[test]
fn sandbox_failures_name_the_instance_and_verb_and_save_nothing() {
    let root = tempfile::tempdir().unwrap();
    let peers = three_peers(root.path());
    let addr = peers[0].addr.clone();
    let file = root.path().join("bad.yaml");
    std::fs::write(
        &file,
        "namespace: bad\nlooping:\n  defines: entity\n  lifecycle:\n    create: |\n      function main() { while (true) {} }\nthrowing:\n  defines: entity\n  lifecycle:\n    create: |\n      function main() { throw new Error(\"no quota left\"); }\nloop:\n  defines: bad/looping\nthrow:\n  defines: bad/throwing\n",
    )
    .unwrap();
    ok(&addr, &["load", file.to_str().unwrap()]);
    ok(&addr, &["run", "bad/throw", "bad/loop", "--wait", "0"]);
    fails_with(
        &addr,
        "bad/throw",
        "bad/throw create: script failed: no quota left",
    );
    fails_with(
        &addr,
        "bad/loop",
        "bad/loop create: script ran for more than",
    );
    // Nothing saved, nothing marked created; every peer still answers and agrees.
    for path in ["bad/throw", "bad/loop"] {
        let e = entity(&addr, path);
        assert_eq!(
            (e["created"].clone(), e["state"].clone()),
            (json!(false), Value::Null)
        );
        assert!(e["todo"].is_null(), "{e}");
    }
    same_digest_everywhere(&peers);
    // A failed instance is tried again by the next `monk run`.
    ok(&addr, &["run", "bad/throw", "--wait", "0"]);
    wait_for(
        STEP_WAIT,
        || {
            // (Read through the online export of the peer's data dir; a failed read
            // is reported and read again.)
            let o = monk(&addr, &["log", "--kind", "entity-verb-done"]);
            if !o.status.success() {
                eprintln!("monk log: {:?}: {}", o.status, stderr(&o));
            }
            stdout(&o).matches("bad/throw gen 1 create failed").count() == 2
        },
        "the second attempt of bad/throw's create",
    );
}

/// A peer killed while `create` waits on the API: its result never committed, so after
/// the restart the verb is still due and runs again; it is saved exactly once.
#[test]
fn a_verb_cut_off_by_a_crash_runs_again_and_is_saved_once() {
    let root = tempfile::tempdir().unwrap();
    let api = FakeCloud::start();
    api.gate.lock().unwrap().closed = true;
    let mut peer = Peer::start_with(root.path(), "alpha", &["--containers", "none"]);
    ok(&peer.addr, &["cluster", "new", "--name", "crash"]);
    ok(&peer.addr, &["load", &kit(root.path(), &api.url)]);
    ok(&peer.addr, &["run", "cloud/shop-db", "--wait", "0"]);
    wait_for(
        STEP_WAIT,
        || api.cloud.lock().unwrap().creates_arrived == 1,
        "create to reach the API",
    );
    peer.kill();
    api.gate.lock().unwrap().closed = false;
    peer.restart();
    api.set_ready();
    wait_status(&peer.addr, "cloud/shop-db", "ready");
    assert_eq!(
        api.cloud.lock().unwrap().creates_arrived,
        2,
        "{:?}",
        api.calls()
    );
    let log = ok(&peer.addr, &["log", "--kind", "entity-verb-done"]);
    assert_eq!(
        log.matches("cloud/shop-db gen 1 create ok").count(),
        1,
        "{log}"
    );
    // The killed attempt's database exists at the API too (scripts' side effects are
    // their own: a create that may be retried should look for what it made).
    assert_eq!(saved_state(&peer.addr, "cloud/shop-db")["id"], "db-2");
}

/// A runnable's variable reads the instance's saved state with `entity-state(...)`:
/// its container gets the address `create` saved (real Docker engine).
#[test]
fn a_runnable_reads_an_entity_state_in_its_variables() {
    let Some((cluster, _cleanup)) = with_docker("ent") else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let api = FakeCloud::start();
    api.set_ready();
    let peer = Peer::start(root.path(), "alpha");
    ok(&peer.addr, &["cluster", "new", "--name", &cluster]);
    ok(&peer.addr, &["load", &kit(root.path(), &api.url)]);
    ok(&peer.addr, &["run", "cloud/shop-db", "--wait", "0"]);
    wait_status(&peer.addr, "cloud/shop-db", "ready");
    ok(&peer.addr, &["run", "cloud/shop-app"]);
    wait_for(
        STEP_WAIT,
        || ok(&peer.addr, &["logs", "cloud/shop-app"]).contains("db at 10.9.0.7"),
        "the container to print the address entity-state gave",
    );
    ok(&peer.addr, &["purge", "cloud/shop-app", "cloud/shop-db"]);
}

/// A runnable's action (`actions.note`, ArrowScript with typed arguments) runs
/// `exec(...)` in its container on the peer that holds it, invoked through a peer
/// that does not; its output comes back, the log records it without argument values;
/// a `container-started` hook runs its action when the container starts, and a
/// failing one shows in `monk describe` (real Docker engine).
#[test]
fn monk_do_runs_a_runnable_action_where_its_replica_runs() {
    let Some((cluster, _cleanup)) = with_docker("act") else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let alpha = Peer::start(root.path(), "alpha");
    let beta = Peer::start(root.path(), "beta");
    ok(&alpha.addr, &["cluster", "new", "--name", &cluster]);
    let token = ok(&alpha.addr, &["cluster", "token"]).trim().to_string();
    ok(&beta.addr, &["cluster", "join", "--token", &token]);
    let file = root.path().join("app.yaml");
    std::fs::write(
        &file,
        format!(
            r#"namespace: act
app:
  defines: runnable
  containers:
    main:
      image: {0}
      bash: exec sleep 3600
      hooks:
        container-started: mark
  actions:
    mark:
      code: exec("main", "sh", "-c", "mkdir -p /tmp && echo started > /tmp/hooked")
    note:
      description: writes a note into the container and reads it back
      arguments:
        text:
          type: string
        copies:
          type: int
          default: 2
      code: exec("main", "sh", "-c", `mkdir -p /tmp && echo ${{text}} x${{copies}} > /tmp/note && cat /tmp/note`)
broken:
  defines: runnable
  containers:
    main:
      image: {0}
      bash: exec sleep 3600
      hooks:
        container-started: fail
  actions:
    fail:
      code: exec("main", "false")
"#,
            support::docker::IMAGE
        ),
    )
    .unwrap();
    ok(&alpha.addr, &["load", file.to_str().unwrap()]);
    ok(&alpha.addr, &["run", "act/app", "--peer", "beta"]);
    // The `container-started` hook ran its action in the new container.
    wait_for(
        STEP_WAIT,
        || {
            stdout(&alpha.monk(&["exec", "act/app", "--", "cat", "/tmp/hooked"])).trim()
                == "started"
        },
        "the container-started hook to write its file",
    );
    // A failing hook is recorded and shown by describe; the replica keeps running.
    ok(&alpha.addr, &["run", "act/broken"]);
    wait_for(
        STEP_WAIT,
        || {
            ok(&alpha.addr, &["describe", "act/broken"]).contains(
                "last action   fail() failed: act/broken action fail: exec false exited with 1",
            )
        },
        "the failed hook to show in describe",
    );
    assert_eq!(status(&alpha.addr, "act/broken"), "running");
    assert_eq!(
        ok(&alpha.addr, &["actions", "act/app"]),
        "act/app/mark\nact/app/note\n"
    );
    let done = ok(&alpha.addr, &["do", "act/app/note", "text=s3cret-note"]);
    assert!(done.contains("s3cret-note x2"), "{done}");
    assert!(done.contains("done on peer 2"), "{done}");
    let note = ok(&alpha.addr, &["exec", "act/app", "--", "cat", "/tmp/note"]);
    assert_eq!(note.trim(), "s3cret-note x2");
    let log = ok(&alpha.addr, &["log", "--kind", "action-done"]);
    assert!(log.contains("act/app action note(text) ok"), "{log}");
    assert!(!log.contains("s3cret"), "{log}");
    let described = ok(&alpha.addr, &["describe", "act/app"]);
    assert!(
        described.contains("last action   note(text) ok"),
        "{described}"
    );
    for (args, why) in [
        (vec!["do", "act/app/note"], "argument text is required"),
        (
            vec!["do", "act/app/note", "text=a", "copies=many"],
            "argument copies=\"many\" is not a int",
        ),
        (
            vec!["do", "act/app/nope"],
            "act/app has no action nope; it has: mark, note",
        ),
    ] {
        let refused = alpha.monk(&args);
        assert!(!refused.status.success(), "{args:?}");
        assert!(
            stderr(&refused).contains(why),
            "{args:?}: {}",
            stderr(&refused)
        );
    }
    ok(&alpha.addr, &["purge", "act/app", "act/broken"]);
}
