//! `apply` throughput of simple commands on one core (target: over 1M commands/s), and
//! the cost of scheduling inside `apply`: placing a workload's replicas on a large
//! cluster, and moving every replica of a peer that is declared down.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use monk_statemachine::*;

const BATCH: u64 = 10_000;

fn entries(make: impl Fn(u64) -> Command) -> Vec<Entry> {
    (1..=BATCH)
        .map(|i| Entry {
            index: i + 1,
            term: 1,
            proposal: Proposal {
                format_version: FORMAT_VERSION,
                proposed_at_ms: i,
                actor: "bench".into(),
                request_id: String::new(),
                command: make(i),
            },
        })
        .collect()
}

fn base() -> State {
    let mut s = State::default();
    let created = Command::ClusterCreated {
        name: "b".into(),
        first_peer_name: "p".into(),
        first_peer_address: "a:1".into(),
        tags: vec![],
        capacity: Capacity::default(),
        facts: None,
        admin_token_sha256: None,
        overlay_range: None,
        overlay: None,
        open_network: false,
    };
    let e = Entry {
        index: 1,
        term: 1,
        proposal: Proposal {
            format_version: FORMAT_VERSION,
            proposed_at_ms: 0,
            actor: "bench".into(),
            request_id: String::new(),
            command: created,
        },
    };
    apply(&mut s, &e).expect("bootstrap applies");
    s
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("apply");
    group.throughput(Throughput::Elements(BATCH));
    for (name, log) in [
        ("noop", entries(|_| Command::Noop)),
        ("peer-up", entries(|_| Command::PeerUp { peer: 1 })),
        (
            "peer-down-rejected",
            entries(|_| Command::PeerDown {
                peer: 9,
                reason: "x".into(),
            }),
        ),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched(
                base,
                |mut state| {
                    for e in &log {
                        let _ = apply(&mut state, e);
                    }
                    state
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

/// Peers in the scheduling benches, and replicas of the workload placed on them.
const PEERS: u64 = 100;
const REPLICAS: i64 = 1_000;

fn entry(index: u64, command: Command) -> Entry {
    Entry {
        index,
        term: 1,
        proposal: Proposal {
            format_version: FORMAT_VERSION,
            proposed_at_ms: index,
            actor: "bench".into(),
            request_id: String::new(),
            command,
        },
    }
}

/// `base()` plus peers 2..=`peers` joined with `capacity`; the index of the last entry.
fn with_peers(peers: u64, capacity: Capacity) -> (State, u64) {
    let mut s = base();
    let mut index = 2;
    apply(
        &mut s,
        &entry(
            index,
            Command::JoinTokenIssued {
                token_sha256: "t".into(),
                expires_at_ms: None,
            },
        ),
    )
    .expect("applies");
    for p in 2..=peers {
        index += 1;
        let join = Command::PeerJoined {
            name: format!("p{p}"),
            address: format!("a:{p}"),
            token_sha256: "t".into(),
            tags: vec![],
            capacity,
            facts: None,
            admitted_at_ms: None,
            overlay: None,
        };
        apply(&mut s, &entry(index, join)).expect("applies");
    }
    (s, index)
}

/// A cluster of `PEERS` peers with a runnable of `REPLICAS` replicas loaded.
fn cluster() -> (State, u64) {
    use monk_scripting::tree::Tree;
    let (mut s, mut index) = with_peers(
        PEERS,
        Capacity {
            cpu_millis: 64_000,
            memory_mb: 0,
        },
    );
    let mut next = |s: &mut State, command: Command| {
        index += 1;
        apply(s, &entry(index, command)).expect("applies");
    };
    let definition = Tree::Map(vec![
        ("defines".into(), Tree::Str("runnable".into())),
        (
            "scale".into(),
            Tree::Map(vec![("value".into(), Tree::Int(REPLICAS))]),
        ),
        (
            "containers".into(),
            Tree::Map(vec![(
                "app".into(),
                Tree::Map(vec![("image".into(), Tree::Str("app".into()))]),
            )]),
        ),
    ]);
    next(
        &mut s,
        Command::TemplatesLoaded {
            templates: vec![LoadedTemplate {
                path: "ns/app".into(),
                kind: "runnable".into(),
                definition,
            }],
        },
    );
    (s, index)
}

fn schedule(c: &mut Criterion) {
    let mut group = c.benchmark_group("schedule");
    group.sample_size(10);
    let (loaded, index) = cluster();
    let run = entry(
        index + 1,
        Command::WorkloadRun {
            path: "ns/app".into(),
            tag: None,
            peer: None,
            overrides: Default::default(),
            evaluated: None,
        },
    );
    group.throughput(Throughput::Elements(REPLICAS as u64));
    group.bench_function("run-1000-replicas-on-100-peers", |b| {
        b.iter_batched(
            || loaded.clone(),
            |mut state| {
                apply(&mut state, &run).expect("applies");
                state
            },
            BatchSize::LargeInput,
        )
    });
    let mut running = loaded.clone();
    apply(&mut running, &run).expect("applies");
    let down = entry(
        index + 2,
        Command::PeerDown {
            peer: 2,
            reason: "bench".into(),
        },
    );
    group.throughput(Throughput::Elements(REPLICAS as u64 / PEERS));
    group.bench_function("peer-down-moves-its-10-replicas", |b| {
        b.iter_batched(
            || running.clone(),
            |mut state| {
                apply(&mut state, &down).expect("applies");
                state
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

/// Peers and replicas of the host-port placement bench (issue: 10,000 replicas with
/// host ports on 1,000 peers, against the same without ports).
const PORT_PEERS: u64 = 1_000;
const PORT_WORKLOADS: usize = 10;
const PORT_REPLICAS_EACH: i64 = 1_000;

/// 1,000 peers and a group of 10 runnables with 1,000 replicas each; with `ports`,
/// each runnable publishes its own host port, so every peer takes one replica of each.
fn port_cluster(ports: bool) -> (State, Entry) {
    use monk_scripting::tree::Tree;
    let (mut s, mut index) = with_peers(PORT_PEERS, Capacity::default());
    let mut next = |s: &mut State, command: Command| {
        index += 1;
        apply(s, &entry(index, command)).expect("applies");
    };
    let runnable = Tree::Map(vec![
        ("defines".into(), Tree::Str("runnable".into())),
        (
            "scale".into(),
            Tree::Map(vec![("value".into(), Tree::Int(PORT_REPLICAS_EACH))]),
        ),
        (
            "containers".into(),
            Tree::Map(vec![(
                "app".into(),
                Tree::Map(vec![("image".into(), Tree::Str("app".into()))]),
            )]),
        ),
    ]);
    let mut templates: Vec<LoadedTemplate> = (0..PORT_WORKLOADS)
        .map(|n| LoadedTemplate {
            path: format!("ns/app{n}"),
            kind: "runnable".into(),
            definition: runnable.clone(),
        })
        .collect();
    templates.push(LoadedTemplate {
        path: "ns/all".into(),
        kind: "group".into(),
        definition: Tree::Map(vec![
            ("defines".into(), Tree::Str("group".into())),
            (
                "members".into(),
                Tree::Seq(
                    templates
                        .iter()
                        .map(|t| Tree::Str(t.path.clone()))
                        .collect(),
                ),
            ),
        ]),
    });
    next(&mut s, Command::TemplatesLoaded { templates });
    let evaluated = (0..PORT_WORKLOADS)
        .map(|n| {
            let host_ports = match ports {
                true => vec![HostPort {
                    port: 18_000 + n as u16,
                    protocol: "tcp".into(),
                    ip: None,
                }],
                false => Vec::new(),
            };
            (
                format!("ns/app{n}"),
                Evaluated {
                    host_ports,
                    ..Evaluated::default()
                },
            )
        })
        .collect();
    let run = entry(
        index + 1,
        Command::WorkloadRun {
            path: "ns/all".into(),
            tag: None,
            peer: None,
            overrides: Default::default(),
            evaluated: Some(evaluated),
        },
    );
    (s, run)
}

fn host_ports(c: &mut Criterion) {
    let mut group = c.benchmark_group("host-ports");
    group.sample_size(10);
    group.throughput(Throughput::Elements(
        PORT_WORKLOADS as u64 * PORT_REPLICAS_EACH as u64,
    ));
    for (name, ports) in [
        ("10000-replicas-on-1000-peers-without-ports", false),
        ("10000-replicas-on-1000-peers-with-ports", true),
    ] {
        let (loaded, run) = port_cluster(ports);
        group.bench_function(name, |b| {
            b.iter_batched(
                || loaded.clone(),
                |mut state| {
                    apply(&mut state, &run).expect("applies");
                    debug_assert!(state
                        .workloads()
                        .values()
                        .all(|w| w.instances.values().all(|i| i.peer.is_some())));
                    state
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench, schedule, host_ports);
criterion_main!(benches);
