//! Workloads and the deterministic scheduler: scenarios a platform engineer relies on
//! (spread, affinity, capacity, moves on peer loss, pending until a peer can take it,
//! stop/update/scale/purge, stale reports), and a property test that the scheduler's
//! rules hold after every command of random histories.

use std::collections::BTreeMap;

use monk_scripting::arrow::StubHost;
use monk_scripting::tree::Tree;
use monk_statemachine::evaluate::evaluate_command;
use monk_statemachine::schedule::choose_peer;
use monk_statemachine::view::instances;
use monk_statemachine::*;
use proptest::prelude::*;

/// A cluster under test: applies commands with increasing indexes.
struct Cluster {
    state: State,
    index: u64,
    /// The format version the entries are written with.
    version: u32,
}

impl Cluster {
    fn new(peers: &[(&str, &[&str], Capacity)]) -> Cluster {
        let mut c = Cluster {
            state: State::default(),
            index: 0,
            version: FORMAT_VERSION,
        };
        let (first, tags, capacity) = peers[0];
        c.ok(Command::ClusterCreated {
            name: "test".into(),
            first_peer_name: first.into(),
            first_peer_address: format!("{first}:1"),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            capacity,
            facts: None,
            admin_token_sha256: None,
            overlay_range: None,
            overlay: None,
            open_network: false,
        });
        for (name, tags, capacity) in &peers[1..] {
            // Tokens are single-use: one per joining peer.
            c.ok(Command::JoinTokenIssued {
                token_sha256: format!("t-{name}"),
                expires_at_ms: None,
            });
            c.ok(Command::PeerJoined {
                name: name.to_string(),
                address: format!("{name}:1"),
                token_sha256: format!("t-{name}"),
                tags: tags.iter().map(|t| t.to_string()).collect(),
                capacity: *capacity,
                facts: None,
                admitted_at_ms: None,
                overlay: None,
            });
        }
        c
    }

    fn apply(&mut self, mut command: Command) -> Applied {
        // As the receiving peer does: placement scripts and host ports evaluated.
        if evaluate_command(&self.state, &mut command, &mut StubHost).is_err() {
            return Applied::Rejected {
                reason: Rejection::Unresolvable {
                    path: "-".into(),
                    why: "evaluation failed".into(),
                },
            };
        }
        self.index += 1;
        let entry = Entry {
            index: self.index,
            term: 1,
            proposal: Proposal {
                format_version: self.version,
                proposed_at_ms: 0,
                actor: "test".into(),
                request_id: String::new(),
                command,
            },
        };
        let applied = apply(&mut self.state, &entry).expect("applies");
        self.state
            .check_invariants()
            .unwrap_or_else(|v| panic!("after entry {}: {v}", self.index));
        applied
    }

    fn ok(&mut self, command: Command) {
        let shown = format!("{command:?}");
        let applied = self.apply(command);
        assert!(applied.is_accepted(), "{shown} was {applied:?}");
    }

    fn rejected(&mut self, command: Command) -> Rejection {
        match self.apply(command) {
            Applied::Rejected { reason } => reason,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    fn load(&mut self, templates: &[(&str, &str)]) {
        let templates = templates
            .iter()
            .map(|(path, yaml)| LoadedTemplate {
                path: path.to_string(),
                kind: "runnable".into(),
                definition: yaml_tree(yaml),
            })
            .collect();
        self.ok(Command::TemplatesLoaded { templates });
    }

    /// `path#replica` → peer name (or `pending`).
    fn placement(&self) -> Vec<(String, String)> {
        instances(&self.state)
            .into_iter()
            .map(|i| {
                (
                    format!("{}#{}", i.path, i.replica),
                    i.peer_name.unwrap_or_else(|| "pending".into()),
                )
            })
            .collect()
    }

    fn peer_id(&self, name: &str) -> PeerId {
        self.state
            .peers()
            .values()
            .find(|p| p.name == name)
            .map(|p| p.id)
            .expect("peer exists")
    }
}

/// A small YAML subset → Tree through the real MonkScript parser's tree type.
fn yaml_tree(yaml: &str) -> Tree {
    let value: serde_json::Value = serde_saphyr::from_str(yaml).expect("test YAML parses");
    json_tree(&value)
}

fn json_tree(v: &serde_json::Value) -> Tree {
    match v {
        serde_json::Value::Null => Tree::Null,
        serde_json::Value::Bool(b) => Tree::Bool(*b),
        serde_json::Value::Number(n) => n
            .as_i64()
            .map(Tree::Int)
            .unwrap_or_else(|| Tree::float(n.as_f64().unwrap_or(0.0))),
        serde_json::Value::String(s) => Tree::Str(s.clone()),
        serde_json::Value::Array(items) => Tree::Seq(items.iter().map(json_tree).collect()),
        serde_json::Value::Object(map) => {
            Tree::Map(map.iter().map(|(k, v)| (k.clone(), json_tree(v))).collect())
        }
    }
}

fn run(path: &str) -> Command {
    Command::WorkloadRun {
        path: path.into(),
        tag: None,
        peer: None,
        overrides: BTreeMap::new(),
        evaluated: None,
    }
}

const NONE: Capacity = Capacity {
    cpu_millis: 0,
    memory_mb: 0,
};

const WEB: &str = "defines: runnable\nscale: {value: 3}\ncontainers: {web: {image: busybox}}\nvariables: {port: 80}\n";

fn three_peers() -> Cluster {
    Cluster::new(&[
        ("a", &["edge"], NONE),
        ("b", &[], NONE),
        ("c", &["edge"], NONE),
    ])
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn replicas_spread_over_peers_and_move_when_a_peer_goes_down() {
    let mut c = three_peers();
    c.load(&[("ns/web", WEB)]);
    c.ok(run("ns/web"));
    assert_eq!(
        c.placement(),
        pairs(&[("ns/web#0", "a"), ("ns/web#1", "b"), ("ns/web#2", "c")])
    );
    let b = c.peer_id("b");
    c.ok(Command::PeerDown {
        peer: b,
        reason: "silent".into(),
    });
    // The replica on b moves to the least loaded peer (a and c tie: lowest id wins).
    assert_eq!(
        c.placement(),
        pairs(&[("ns/web#0", "a"), ("ns/web#1", "a"), ("ns/web#2", "c")])
    );
    // It does not move back when b returns.
    c.ok(Command::PeerUp { peer: b });
    assert_eq!(c.placement()[1], ("ns/web#1".to_string(), "a".to_string()));
}

#[test]
fn affinity_and_run_flags_narrow_the_peers() {
    let mut c = three_peers();
    let edge = "defines: runnable\nscale: {value: 4}\naffinity: {tag: edge}\ncontainers: {x: {image: i}}\n";
    let pinned = "defines: runnable\ncontainers: {x: {image: i}}\naffinity: {name: b}\n";
    c.load(&[("ns/edge", edge), ("ns/pinned", pinned), ("ns/web", WEB)]);
    c.ok(run("ns/edge"));
    c.ok(run("ns/pinned"));
    c.ok(Command::WorkloadRun {
        path: "ns/web".into(),
        tag: None,
        peer: Some("c".into()),
        overrides: BTreeMap::new(),
        evaluated: None,
    });
    let placed: BTreeMap<String, String> = c.placement().into_iter().collect();
    for r in 0..4 {
        assert_ne!(
            placed[&format!("ns/edge#{r}")],
            "b",
            "edge replicas avoid b"
        );
    }
    assert_eq!(placed["ns/pinned#0"], "b");
    for r in 0..3 {
        assert_eq!(placed[&format!("ns/web#{r}")], "c");
    }
    // The pinned peer goes down: nothing else may take it, so it waits.
    let b = c.peer_id("b");
    c.ok(Command::PeerDown {
        peer: b,
        reason: "silent".into(),
    });
    let view = instances(&c.state);
    let pinned = view.iter().find(|i| i.path == "ns/pinned").expect("pinned");
    assert_eq!(pinned.peer, None);
    assert_eq!(
        pinned.pending.as_deref(),
        Some("a: pinned to peer b; c: pinned to peer b")
    );
    c.ok(Command::PeerUp { peer: b });
    let placed: BTreeMap<String, String> = c.placement().into_iter().collect();
    assert_eq!(placed["ns/pinned#0"], "b");
}

#[test]
fn capacity_is_respected_and_pending_replicas_wait_for_room() {
    let small = Capacity {
        cpu_millis: 1000,
        memory_mb: 1024,
    };
    let mut c = Cluster::new(&[("a", &[], small)]);
    let big = "defines: runnable\nscale: {value: 3}\ncontainers:\n  x: {image: i, resources: {requests: {cpu: 400, memory: 100}}}\n";
    c.load(&[("ns/big", big)]);
    c.ok(run("ns/big"));
    let view = instances(&c.state);
    assert_eq!(view[0].peer_name.as_deref(), Some("a"));
    assert_eq!(view[1].peer_name.as_deref(), Some("a"));
    assert_eq!(view[2].peer, None);
    assert!(
        view[2]
            .pending
            .as_deref()
            .unwrap()
            .contains("a: no room for 400 mCPU / 100 MB (free 200 mCPU / 824 MB)"),
        "{:?}",
        view[2].pending
    );
    // A new peer with room takes the pending replica.
    c.ok(Command::JoinTokenIssued {
        token_sha256: "t".into(),
        expires_at_ms: None,
    });
    c.ok(Command::PeerJoined {
        name: "b".into(),
        address: "b:1".into(),
        token_sha256: "t".into(),
        tags: vec![],
        capacity: small,
        facts: None,
        admitted_at_ms: None,
        overlay: None,
    });
    assert_eq!(
        c.placement(),
        pairs(&[("ns/big#0", "a"), ("ns/big#1", "a"), ("ns/big#2", "b")])
    );
}

#[test]
fn stop_update_scale_and_purge() {
    let mut c = three_peers();
    c.load(&[("ns/web", WEB)]);
    c.ok(run("ns/web"));
    assert_eq!(
        c.rejected(run("ns/web")),
        Rejection::AlreadyRunning {
            path: "ns/web".into()
        }
    );
    c.ok(Command::WorkloadStop {
        path: "ns/web".into(),
    });
    assert_eq!(c.state.workloads()["ns/web"].desired, Desired::Stopped);
    c.ok(run("ns/web"));
    assert_eq!(c.state.workloads()["ns/web"].desired, Desired::Running);

    // Loading a changed template does not touch the workload until `update`.
    c.load(&[("ns/web", &WEB.replace("busybox", "busybox:2"))]);
    assert_eq!(c.state.workloads()["ns/web"].generation, 1);
    c.ok(Command::WorkloadUpdate {
        path: "ns/web".into(),
        overrides: BTreeMap::new(),
        evaluated: None,
    });
    assert_eq!(c.state.workloads()["ns/web"].generation, 2);
    // An update that changes nothing keeps the generation.
    c.ok(Command::WorkloadUpdate {
        path: "ns/web".into(),
        overrides: BTreeMap::new(),
        evaluated: None,
    });
    assert_eq!(c.state.workloads()["ns/web"].generation, 2);
    let overrides = BTreeMap::from([("port".to_string(), "8080".to_string())]);
    c.ok(Command::WorkloadUpdate {
        path: "ns/web".into(),
        overrides: overrides.clone(),
        evaluated: None,
    });
    assert_eq!(c.state.workloads()["ns/web"].generation, 3);
    assert_eq!(c.state.workloads()["ns/web"].overrides, overrides);
    let unknown = BTreeMap::from([("nope".to_string(), "1".to_string())]);
    assert_eq!(
        c.rejected(Command::WorkloadUpdate {
            path: "ns/web".into(),
            overrides: unknown,
            evaluated: None,
        }),
        Rejection::UnknownVariable {
            path: "ns/web".into(),
            name: "nope".into()
        }
    );

    c.ok(Command::WorkloadScale {
        path: "ns/web".into(),
        replicas: 5,
    });
    assert_eq!(c.state.workloads()["ns/web"].replicas(), 5);
    c.ok(Command::WorkloadScale {
        path: "ns/web".into(),
        replicas: 1,
    });
    assert_eq!(c.placement(), pairs(&[("ns/web#0", "a")]));
    assert!(matches!(
        c.rejected(Command::WorkloadScale {
            path: "ns/web".into(),
            replicas: 100_000
        }),
        Rejection::Limit { .. }
    ));
    c.ok(Command::WorkloadPurge {
        path: "ns/web".into(),
    });
    assert!(c.state.workloads().is_empty());
    assert_eq!(
        c.rejected(Command::WorkloadStop {
            path: "ns/web".into()
        }),
        Rejection::UnknownWorkload {
            path: "ns/web".into()
        }
    );
}

#[test]
fn a_group_runs_its_members_with_the_group_variables() {
    let mut c = three_peers();
    let db = "defines: runnable\ncontainers: {db: {image: postgres}}\nvariables: {user: me}\n";
    let app = "defines: runnable\ncontainers: {app: {image: app}}\n";
    let stack =
        "defines: group\nmembers: [ns/db, ./app]\nvariables: {user: group-user, region: eu}\n";
    c.load(&[("ns/db", db), ("ns/app", app), ("ns/stack", stack)]);
    c.ok(run("ns/stack"));
    let db = &c.state.workloads()["ns/db"];
    assert_eq!(db.group.as_deref(), Some("ns/stack"));
    let vars = db.definition.get("variables").expect("variables");
    assert_eq!(
        vars.get("user"),
        Some(&Tree::Str("me".into())),
        "the member's own wins"
    );
    assert_eq!(vars.get("region"), Some(&Tree::Str("eu".into())));
    assert!(c.state.workloads().contains_key("ns/app"));
    // Stopping the group stops every member.
    c.ok(Command::WorkloadStop {
        path: "ns/stack".into(),
    });
    assert!(c
        .state
        .workloads()
        .values()
        .all(|w| w.desired == Desired::Stopped));
    // A group naming a member that is not loaded is refused as a whole.
    c.load(&[(
        "ns/broken",
        "defines: group\nmembers: [ns/db, ns/missing]\n",
    )]);
    assert_eq!(
        c.rejected(run("ns/broken")),
        Rejection::Unresolvable {
            path: "ns/broken".into(),
            why: "member ns/missing is not loaded".into()
        }
    );
    c.load(&[("ns/ent", "defines: entity\nschema: {}\n")]);
    assert!(matches!(
        c.rejected(run("ns/ent")),
        Rejection::NotRunnable { .. }
    ));
    assert!(matches!(
        c.rejected(run("ns/none")),
        Rejection::UnknownTemplate { .. }
    ));
}

#[test]
fn reports_are_kept_only_from_the_peer_that_holds_the_replica() {
    let mut c = three_peers();
    c.load(&[("ns/web", WEB)]);
    c.ok(run("ns/web"));
    let (a, b) = (c.peer_id("a"), c.peer_id("b"));
    let report = |peer, replica, generation| Command::WorkloadReport {
        peer,
        path: "ns/web".into(),
        replica,
        generation,
        status: InstanceStatus::Running,
        message: String::new(),
        addresses: Default::default(),
    };
    c.ok(report(a, 0, 1));
    assert_eq!(instances(&c.state)[0].status, Some(InstanceStatus::Running));
    assert!(matches!(
        c.rejected(report(b, 0, 1)),
        Rejection::StaleReport { .. }
    ));
    assert!(matches!(
        c.rejected(report(a, 0, 9)),
        Rejection::StaleReport { .. }
    ));
    assert!(matches!(
        c.rejected(report(a, 7, 1)),
        Rejection::StaleReport { .. }
    ));
    // A move forgets the observation: the new peer must report afresh.
    c.ok(Command::PeerDown {
        peer: a,
        reason: "silent".into(),
    });
    assert_eq!(instances(&c.state)[0].status, None);
}

// ---------------------------------------------------------------------------------------
// Property: the scheduler's rules hold after every command.

const DB_TYPE: &str = "defines: entity\nschema: {name: {type: string}}\nlifecycle: {create: 'function main() { return {id: 1}; }'}\n";
const DB: &str = "defines: ent/db-type\nname: shop\n";

/// An entity executor's result for the verb due on `path`, from the peer hosting it.
fn verb_done(
    c: &Cluster,
    path: &str,
    verb: &str,
    state: Option<&str>,
    error: Option<&str>,
) -> Command {
    let w = c.state.workload(path).expect("the instance runs");
    let life = w.entity.as_ref().expect("an entity instance");
    Command::EntityVerbDone {
        peer: w.instances[&0].peer.expect("placed"),
        path: path.into(),
        generation: w.generation,
        step: life.step,
        verb: verb.into(),
        state: state.map(String::from),
        error: error.map(String::from),
        args: Vec::new(),
    }
}

fn todo(c: &Cluster, path: &str) -> Vec<String> {
    c.state
        .workload(path)
        .and_then(|w| w.entity.clone())
        .map(|l| l.todo)
        .unwrap_or_default()
}

fn status(c: &Cluster, path: &str) -> Option<InstanceStatus> {
    instances(&c.state)
        .into_iter()
        .find(|i| i.path == path)
        .and_then(|i| i.status)
}

#[test]
fn an_entity_instance_runs_its_lifecycle_through_results_in_the_log() {
    let mut c = three_peers();
    c.load(&[("ent/db-type", DB_TYPE), ("ent/db", DB)]);
    c.ok(run("ent/db"));
    assert_eq!(c.placement(), pairs(&[("ent/db#0", "a")]));
    assert_eq!(todo(&c, "ent/db"), ["create", "start"]);
    // A result for another verb than the one due, or from another peer, is stale.
    let early = verb_done(&c, "ent/db", "start", None, None);
    assert!(matches!(c.rejected(early), Rejection::StaleReport { .. }));
    let mut elsewhere = verb_done(&c, "ent/db", "create", None, None);
    if let Command::EntityVerbDone { peer, .. } = &mut elsewhere {
        *peer = c.peer_id("b");
    }
    assert!(matches!(
        c.rejected(elsewhere),
        Rejection::StaleReport { .. }
    ));
    let create = verb_done(&c, "ent/db", "create", Some(r#"{"id":1}"#), None);
    c.ok(create.clone());
    // The same result twice is not applied twice.
    assert!(matches!(c.rejected(create), Rejection::StaleReport { .. }));
    assert_eq!(status(&c, "ent/db"), Some(InstanceStatus::Starting));
    c.ok(verb_done(&c, "ent/db", "start", None, None));
    assert_eq!(status(&c, "ent/db"), Some(InstanceStatus::Ready));
    let life = c
        .state
        .workload("ent/db")
        .and_then(|w| w.entity.clone())
        .expect("entity");
    assert_eq!(life.state.as_deref(), Some(r#"{"id":1}"#));
    assert!(life.created && life.todo.is_empty());
    // Running it again does nothing; updating a changed instance updates then starts.
    assert!(matches!(
        c.rejected(run("ent/db")),
        Rejection::AlreadyRunning { .. }
    ));
    c.load(&[("ent/db", "defines: ent/db-type\nname: shop2\n")]);
    c.ok(Command::WorkloadUpdate {
        path: "ent/db".into(),
        overrides: BTreeMap::new(),
        evaluated: None,
    });
    assert_eq!(todo(&c, "ent/db"), ["update", "start"]);
    c.ok(verb_done(&c, "ent/db", "update", Some(r#"{"id":2}"#), None));
    c.ok(verb_done(&c, "ent/db", "start", None, None));
    // Stop, then purge: the instance is forgotten only once its purge verb succeeded.
    c.ok(Command::WorkloadStop {
        path: "ent/db".into(),
    });
    assert_eq!(todo(&c, "ent/db"), ["stop"]);
    c.ok(verb_done(&c, "ent/db", "stop", None, None));
    assert_eq!(status(&c, "ent/db"), Some(InstanceStatus::Stopped));
    c.ok(Command::WorkloadPurge {
        path: "ent/db".into(),
    });
    assert_eq!(todo(&c, "ent/db"), ["purge"]);
    assert!(matches!(
        c.rejected(run("ent/db")),
        Rejection::BeingPurged { .. }
    ));
    c.ok(verb_done(
        &c,
        "ent/db",
        "purge",
        None,
        Some("ent/db purge: the API said no"),
    ));
    assert_eq!(status(&c, "ent/db"), Some(InstanceStatus::Failed));
    c.ok(Command::WorkloadPurge {
        path: "ent/db".into(),
    });
    c.ok(verb_done(&c, "ent/db", "purge", None, None));
    assert!(c.state.workload("ent/db").is_none());
}

#[test]
fn a_failed_verb_keeps_the_saved_state_and_run_retries_it() {
    let mut c = three_peers();
    c.load(&[("ent/db-type", DB_TYPE), ("ent/db", DB)]);
    c.ok(run("ent/db"));
    c.ok(verb_done(
        &c,
        "ent/db",
        "create",
        None,
        Some("ent/db create: boom"),
    ));
    assert_eq!(status(&c, "ent/db"), Some(InstanceStatus::Failed));
    assert!(todo(&c, "ent/db").is_empty());
    let life = c
        .state
        .workload("ent/db")
        .and_then(|w| w.entity.clone())
        .expect("entity");
    assert_eq!((life.state, life.created), (None, false));
    // A saved state that is not a JSON object is refused, whatever the verb.
    c.ok(run("ent/db"));
    assert_eq!(todo(&c, "ent/db"), ["create", "start"]);
    let bad = verb_done(&c, "ent/db", "create", Some("[1]"), None);
    assert!(matches!(c.rejected(bad), Rejection::StaleReport { .. }));
    // Stopping an instance never created queues nothing.
    c.ok(Command::WorkloadStop {
        path: "ent/db".into(),
    });
    assert!(todo(&c, "ent/db").is_empty());
    // Purging one never created forgets it at once.
    c.ok(Command::WorkloadPurge {
        path: "ent/db".into(),
    });
    assert!(c.state.workload("ent/db").is_none());
}

#[test]
fn a_readiness_check_follows_start_and_scale_is_refused() {
    let mut c = three_peers();
    let checked = format!("{DB_TYPE}checks: {{readiness: {{code: 'function main() {{}}', period: 1, attempts: 3}}}}\n");
    c.load(&[("ent/db-type", checked.as_str()), ("ent/db", DB)]);
    c.ok(run("ent/db"));
    c.ok(verb_done(&c, "ent/db", "create", None, None));
    c.ok(verb_done(&c, "ent/db", "start", None, None));
    assert_eq!(status(&c, "ent/db"), Some(InstanceStatus::Running));
    let w = c.state.workload("ent/db").expect("runs");
    let due = monk_statemachine::view::entity_assignments(
        &c.state,
        w.instances[&0].peer.expect("placed"),
    );
    assert_eq!(due[0].verb_due(), Some("check-readiness"));
    c.ok(verb_done(
        &c,
        "ent/db",
        "check-readiness",
        Some(r#"{"ready":true}"#),
        None,
    ));
    assert_eq!(status(&c, "ent/db"), Some(InstanceStatus::Ready));
    let rejected = c.rejected(Command::WorkloadScale {
        path: "ent/db".into(),
        replicas: 2,
    });
    assert!(matches!(rejected, Rejection::NotRunnable { .. }));
    // Entity instances are not container assignments.
    assert!(monk_statemachine::view::assignments(&c.state, c.peer_id("a")).is_empty());
}

#[test]
fn a_custom_verb_saves_state_and_records_only_argument_names() {
    let mut c = three_peers();
    let with_backup =
        "defines: entity\nlifecycle: {create: 'function main() { return {id: 1}; }', backup: ''}\n";
    c.load(&[("ent/db-type", with_backup), ("ent/db", DB)]);
    c.ok(run("ent/db"));
    let custom = |c: &Cluster, verb: &str, error: Option<&str>| {
        let mut done = verb_done(c, "ent/db", verb, Some(r#"{"backup":"b1"}"#), error);
        if let Command::EntityVerbDone { args, .. } = &mut done {
            *args = vec!["label".into()];
        }
        done
    };
    // Not before the instance is created, and only verbs its type declares.
    assert!(matches!(
        c.rejected(custom(&c, "backup", None)),
        Rejection::StaleReport { .. }
    ));
    c.ok(verb_done(&c, "ent/db", "create", Some(r#"{"id":1}"#), None));
    assert!(matches!(
        c.rejected(custom(&c, "restore", None)),
        Rejection::StaleReport { .. }
    ));
    c.ok(custom(&c, "backup", None));
    let life = c
        .state
        .workload("ent/db")
        .and_then(|w| w.entity.clone())
        .expect("entity");
    assert_eq!(life.state.as_deref(), Some(r#"{"backup":"b1"}"#));
    assert_eq!(
        life.last.as_ref().map(|l| l.args.clone()),
        Some(vec!["label".to_string()])
    );
    // The start queued before the action began is now stale; its rerun applies.
    assert_eq!(life.todo, ["start"]);
    // A failed action saves nothing and leaves the instance as it was.
    c.ok(verb_done(&c, "ent/db", "start", None, None));
    c.ok(custom(&c, "backup", Some("ent/db backup: disk full")));
    assert_eq!(status(&c, "ent/db"), Some(InstanceStatus::Ready));
}

#[test]
fn an_instance_that_breaks_its_schema_is_refused_before_it_is_proposed() {
    let mut c = three_peers();
    let ty = "defines: entity\nschema: {required: [name], name: {type: string}, size: {type: integer}}\n";
    c.load(&[
        ("ent/db-type", ty),
        ("ent/db", "defines: ent/db-type\nsize: big\n"),
    ]);
    let mut command = run("ent/db");
    let refused = evaluate_command(&c.state, &mut command, &mut StubHost).expect_err("refused");
    assert_eq!(refused.path, "ent/db");
    assert!(
        refused
            .message
            .contains("`ent/db` lacks `name`, which the schema of `ent/db-type` requires"),
        "{refused}"
    );
    assert!(
        refused
            .message
            .contains("`size` should be of type `integer`"),
        "{refused}"
    );
    c.load(&[("ent/db", "defines: ent/db-type\nname: shop\nsize: 3\n")]);
    let mut command = run("ent/db");
    assert_eq!(
        evaluate_command(&c.state, &mut command, &mut StubHost),
        Ok(())
    );
}

#[test]
fn entries_before_format_6_still_refuse_entity_instances() {
    let mut c = three_peers();
    c.load(&[("ent/db-type", DB_TYPE), ("ent/db", DB)]);
    c.version = 5;
    let refused = c.rejected(run("ent/db"));
    assert!(
        matches!(refused, Rejection::NotRunnable { ref kind, .. } if kind == "ent/db-type"),
        "{refused:?}"
    );
}

fn template_set() -> Vec<(&'static str, String)> {
    vec![
        ("ns/web", WEB.to_string()),
        (
            "ns/heavy",
            "defines: runnable\nscale: {value: 2}\ncontainers:\n  x: {image: i, resources: {requests: {cpu: 600, memory: 300}}}\n".into(),
        ),
        (
            "ns/big",
            "defines: runnable\nscale: {value: 3}\ncontainers:\n  x: {image: i, resources: {requests: {cpu: 500}}}\n".into(),
        ),
        (
            "ns/edge",
            "defines: runnable\naffinity: {tag: edge}\ncontainers: {x: {image: i}}\n".into(),
        ),
        (
            "ns/stack",
            "defines: group\nmembers: [ns/web, ns/edge]\n".into(),
        ),
        (
            "ns/port",
            "defines: runnable\nscale: {value: 2}\ncontainers:\n  x: {image: i, ports: ['18080:80']}\n".into(),
        ),
        (
            "ns/port-local",
            "defines: runnable\ncontainers:\n  x: {image: i, ports: ['127.0.0.1:18080:80', '9000:9000/udp']}\n".into(),
        ),
        (
            "ns/resident",
            "defines: runnable\naffinity: {resident: true}\ncontainers: {x: {image: i}}\n".into(),
        ),
        (
            "ns/needy",
            "defines: runnable\nrequirements: {CPU: 2, RAM: 1000, GPU: true}\ncontainers: {x: {image: i}}\n".into(),
        ),
    ]
}

fn workload_command() -> impl Strategy<Value = Command> {
    let path = prop_oneof![
        Just("ns/web".to_string()),
        Just("ns/heavy".to_string()),
        Just("ns/big".to_string()),
        Just("ns/edge".to_string()),
        Just("ns/stack".to_string()),
        Just("ns/port".to_string()),
        Just("ns/port-local".to_string()),
        Just("ns/resident".to_string()),
        Just("ns/needy".to_string())
    ];
    let tag = prop_oneof![Just("edge".to_string()), Just("gpu".to_string())];
    prop_oneof![
        path.clone().prop_map(|p| run(&p)),
        (path.clone(), prop_oneof![Just("edge"), Just("none")]).prop_map(|(path, tag)| {
            Command::WorkloadRun {
                path,
                tag: Some(tag.to_string()),
                peer: None,
                overrides: BTreeMap::new(),
                evaluated: None,
            }
        }),
        path.clone().prop_map(|path| Command::WorkloadStop { path }),
        path.clone()
            .prop_map(|path| Command::WorkloadPurge { path }),
        (path.clone(), 0u32..6)
            .prop_map(|(path, replicas)| Command::WorkloadScale { path, replicas }),
        (1u64..5).prop_map(|peer| Command::PeerDown {
            peer,
            reason: "x".into()
        }),
        (1u64..5).prop_map(|peer| Command::PeerUp { peer }),
        (1u64..5).prop_map(|peer| Command::PeerLeft { peer }),
        (1u64..5, tag.clone(), any::<bool>()).prop_map(|(peer, tag, add)| Command::PeerTagged {
            peer,
            add: if add { vec![tag.clone()] } else { vec![] },
            remove: if add { vec![] } else { vec![tag] },
        }),
        (1u64..5, 0u64..4, 0u32..2).prop_map(|(peer, cores, gpus)| Command::PeerFactsReported {
            peer,
            facts: PeerFacts {
                cpu_millis: cores * 1000,
                memory_mb: 4000,
                gpus,
                disk_free_gb: 100
            },
        }),
        (1u64..5, path, 0u32..4, 1u64..3).prop_map(|(peer, path, replica, generation)| {
            Command::WorkloadReport {
                peer,
                path,
                replica,
                generation,
                status: InstanceStatus::Running,
                message: String::new(),
                addresses: Default::default(),
            }
        }),
    ]
}

fn check_rules(state: &State) -> Result<(), String> {
    let mut used: BTreeMap<PeerId, Capacity> = BTreeMap::new();
    let mut ports: BTreeMap<PeerId, Vec<(HostPort, String)>> = BTreeMap::new();
    let mut replicas: BTreeMap<PeerId, Vec<(String, bool)>> = BTreeMap::new();
    for w in state.workloads().values() {
        for i in w.instances.values() {
            let me = format!("{}#{}", w.path, i.replica);
            match i.peer {
                Some(peer) => {
                    let p = &state.peers()[&peer];
                    if !w.constraints.tags.iter().all(|t| p.tags.contains(t)) {
                        return Err(format!("{me} on {} breaks tags", p.name));
                    }
                    if !w.requirements.is_none() && p.facts.is_unknown() {
                        return Err(format!("{me} on {} needs facts it never reported", p.name));
                    }
                    let u = used.entry(peer).or_default();
                    u.cpu_millis += w.requests.cpu_millis;
                    u.memory_mb += w.requests.memory_mb;
                    let held = ports.entry(peer).or_default();
                    for port in &w.host_ports {
                        if let Some((_, other)) = held.iter().find(|(p, _)| p.conflicts_with(port))
                        {
                            return Err(format!(
                                "{me} and {other} share host port {port} on peer {peer}"
                            ));
                        }
                    }
                    held.extend(w.host_ports.iter().map(|p| (p.clone(), me.clone())));
                    replicas
                        .entry(peer)
                        .or_default()
                        .push((me, w.constraints.resident));
                }
                None => {
                    if let Ok(peer) = choose_peer(state, w) {
                        return Err(format!(
                            "{me} is pending although peer {peer} could take it"
                        ));
                    }
                    if i.pending.as_deref().is_none_or(str::is_empty) {
                        return Err(format!("{me} is pending without a reason"));
                    }
                }
            }
        }
    }
    for (peer, held) in replicas {
        if held.len() > 1 && held.iter().any(|(_, resident)| *resident) {
            return Err(format!("peer {peer} shares a resident replica: {held:?}"));
        }
    }
    for (peer, u) in used {
        let cap = state.peers()[&peer].capacity;
        if (cap.cpu_millis > 0 && u.cpu_millis > cap.cpu_millis)
            || (cap.memory_mb > 0 && u.memory_mb > cap.memory_mb)
        {
            return Err(format!("peer {peer} over capacity: {u:?} > {cap:?}"));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn scheduler_rules_hold_after_every_command(
        commands in prop::collection::vec(workload_command(), 0..40),
    ) {
        let cap = Capacity { cpu_millis: 1000, memory_mb: 1000 };
        let roomy = Capacity { cpu_millis: 2000, memory_mb: 1000 };
        let mut c = Cluster::new(&[("a", &["edge"], cap), ("b", &[], roomy), ("c", &["edge"], cap), ("d", &[], cap)]);
        let templates: Vec<(&str, String)> = template_set();
        let refs: Vec<(&str, &str)> = templates.iter().map(|(p, y)| (*p, y.as_str())).collect();
        c.load(&refs);
        for command in commands {
            c.apply(command);
            prop_assert_eq!(check_rules(&c.state), Ok(()));
        }
    }
}

#[test]
fn a_failed_peer_keeps_the_replicas_whose_recovery_says_not_to_move() {
    const PINNED: &str =
        "defines: runnable\nrecovery: {when: none}\ncontainers: {db: {image: busybox}}\n";
    const CRASHY: &str = "defines: runnable\nrecovery: {when: container-failure}\ncontainers: {db: {image: busybox}}\n";
    const MOVES: &str =
        "defines: runnable\nrecovery: {when: node-failure}\ncontainers: {db: {image: busybox}}\n";
    for version in [FORMAT_VERSION, 4] {
        let mut c = three_peers();
        c.version = version;
        c.load(&[
            ("ns/pinned", PINNED),
            ("ns/crashy", CRASHY),
            ("ns/moves", MOVES),
        ]);
        let b = c.peer_id("b");
        for path in ["ns/pinned", "ns/crashy", "ns/moves"] {
            c.ok(Command::WorkloadRun {
                path: path.into(),
                tag: None,
                peer: Some("b".into()),
                overrides: BTreeMap::new(),
                evaluated: None,
            });
        }
        assert!(
            c.placement().iter().all(|(_, peer)| peer == "b"),
            "{:?}",
            c.placement()
        );
        c.ok(Command::PeerDown {
            peer: b,
            reason: "silent".into(),
        });
        let placement = c.placement();
        let on_b = |path: &str| {
            placement
                .iter()
                .any(|(r, p)| r.starts_with(path) && p == "b")
        };
        assert!(!on_b("ns/moves"), "format {version}: {placement:?}");
        // Format 5 leaves them on the failed peer; format 4 entries moved everything.
        assert_eq!(
            on_b("ns/pinned"),
            version >= 5,
            "format {version}: {placement:?}"
        );
        assert_eq!(
            on_b("ns/crashy"),
            version >= 5,
            "format {version}: {placement:?}"
        );
        // A peer that leaves on purpose takes none with it.
        c.ok(Command::PeerLeft { peer: b });
        assert!(
            c.placement().iter().all(|(_, p)| p != "b"),
            "{:?}",
            c.placement()
        );
    }
}

/// A Hub kit of runnables, each `(path, yaml)`, with its digest.
fn hub_kit(name: &str, templates: &[(&str, &str)]) -> HubKit {
    let templates: Vec<LoadedTemplate> = templates
        .iter()
        .map(|(path, yaml)| LoadedTemplate {
            path: path.to_string(),
            kind: "runnable".into(),
            definition: yaml_tree(yaml),
        })
        .collect();
    let meta = KitMeta {
        repo: Some(name.into()),
        version: Some("1.0".into()),
        ..KitMeta::default()
    };
    HubKit {
        name: name.into(),
        digest: monk_statemachine::hub::kit_digest(&meta, &templates),
        meta,
        templates,
    }
}

fn publish(source: &str, kits: Vec<HubKit>) -> Command {
    Command::HubKitsPublished {
        source: source.into(),
        kits,
    }
}

fn synced(source: &str, kits: &[&HubKit]) -> Command {
    Command::HubSourceSynced {
        source: source.into(),
        commit: Some("c0ffee".into()),
        kits: kits
            .iter()
            .map(|k| HubKitRef {
                name: k.name.clone(),
                digest: k.digest.clone(),
            })
            .collect(),
    }
}

const HUB_DB: &str = "defines: runnable\ncontainers: {db: {image: hub-db}}\n";
const HUB_APP: &str = "defines: runnable\ninherits: db/db\ncontainers: {db: {image: hub-app}}\n";

#[test]
fn run_resolves_hub_paths_across_kits_without_a_load() {
    let mut c = three_peers();
    let db = hub_kit("kits/db", &[("db/db", HUB_DB)]);
    let app = hub_kit("kits/app", &[("app/app", HUB_APP)]);
    c.ok(publish("corpus", vec![db.clone(), app.clone()]));
    c.ok(synced("corpus", &[&db, &app]));
    c.ok(run("app/app"));
    let w = c.state.workload("app/app").expect("runs");
    let image = w.definition.get("containers").and_then(|t| t.get("db"));
    assert_eq!(
        image.and_then(|t| t.get("image")).and_then(Tree::as_str),
        Some("hub-app")
    );
    assert_eq!(c.state.hub()["corpus"].commit.as_deref(), Some("c0ffee"));
}

#[test]
fn a_loaded_namespace_shadows_the_hubs() {
    let mut c = three_peers();
    let kit = hub_kit("kits/db", &[("db/db", HUB_DB), ("db/other", HUB_DB)]);
    c.ok(publish("corpus", vec![kit]));
    assert!(c.state.definition("db/other").is_some());
    c.load(&[(
        "db/db",
        "defines: runnable\ncontainers: {db: {image: mine}}\n",
    )]);
    // The loaded path wins, and the rest of the Hub's `db` namespace is hidden.
    let mine = c
        .state
        .definition("db/db")
        .and_then(|t| t.get("containers"));
    assert_eq!(
        mine.and_then(|t| t.get("db"))
            .and_then(|t| t.get("image"))
            .and_then(Tree::as_str),
        Some("mine")
    );
    assert!(c.state.definition("db/other").is_none());
    assert!(matches!(
        c.rejected(run("db/other")),
        Rejection::UnknownTemplate { .. }
    ));
}

#[test]
fn hub_kits_are_content_addressed_and_a_sync_forgets_what_it_does_not_name() {
    let mut c = three_peers();
    let mut forged = hub_kit("kits/db", &[("db/db", HUB_DB)]);
    forged.digest = "00".repeat(32);
    assert!(matches!(
        c.rejected(publish("corpus", vec![forged])),
        Rejection::HubDigestMismatch { .. }
    ));
    let db = hub_kit("kits/db", &[("db/db", HUB_DB)]);
    let app = hub_kit("kits/app", &[("app/app", HUB_APP)]);
    // A sync may only name kits published with that digest.
    assert!(matches!(
        c.rejected(synced("corpus", &[&db])),
        Rejection::UnknownHubKit { .. }
    ));
    c.ok(publish("corpus", vec![db.clone(), app.clone()]));
    c.ok(synced("corpus", &[&db]));
    assert!(c.state.definition("app/app").is_none());
    assert_eq!(c.state.hub()["corpus"].kits.len(), 1);
    // A path two kits define belongs to the one that published it first.
    let copy = hub_kit("kits/copy", &[("db/db", HUB_APP)]);
    c.ok(publish("corpus", vec![copy]));
    assert_eq!(c.state.hub()["corpus"].kits["kits/copy"].shadowed, 1);
    assert_eq!(c.state.hub()["corpus"].templates["db/db"].kit, "kits/db");
    // Removing the source forgets its kits; removing it again is refused.
    let removed = || Command::HubSourceRemoved {
        source: "corpus".into(),
    };
    c.ok(removed());
    assert!(c.state.hub().is_empty() && c.state.definition("db/db").is_none());
    assert!(matches!(
        c.rejected(removed()),
        Rejection::UnknownHubSource { .. }
    ));
}
