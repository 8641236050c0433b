//! `apply` throughput of simple commands on one core (target: over 1M commands/s).

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

criterion_group!(benches, bench);
criterion_main!(benches);
