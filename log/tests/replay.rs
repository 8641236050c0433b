//! Offline replay equals the live state machine: random logs are written and applied by
//! the real store code (`monk_testkit::datadir`), sometimes snapshotted and compacted, and
//! replaying the data dir to every reachable index gives exactly the state the live
//! state machine had after applying that index. Indexes the compaction made
//! unreachable are refused with the range that is possible.

use monk_log::replay::{Base, ReplayError, Replayer, Start, Target};
use monk_log::{DataDirReader, RaftEntry};
use monk_statemachine::{Capacity, Command, State};
use monk_testkit::builders::entry;
use monk_testkit::datadir::{blank, membership, DataDirWriter};
use proptest::prelude::*;

fn command() -> impl Strategy<Value = Command> {
    let path = prop_oneof![Just("ns/a"), Just("ns/b"), Just("bad path")].prop_map(String::from);
    let peer_name = prop_oneof![Just("p1"), Just("p2"), Just("p3")].prop_map(String::from);
    prop_oneof![
        Just(Command::Noop),
        Just(Command::JoinTokenIssued {
            token_sha256: "t".into(),
            expires_at_ms: None,
        }),
        (peer_name, 1u16..4).prop_map(|(name, port)| Command::PeerJoined {
            name,
            address: format!("h:{port}"),
            token_sha256: "t".into(),
            tags: vec![],
            capacity: Capacity::default(),
            facts: None,
            admitted_at_ms: None,
            overlay: None,
        }),
        (1u64..4).prop_map(|peer| Command::PeerDown {
            peer,
            reason: "silent".into()
        }),
        (1u64..4).prop_map(|peer| Command::PeerUp { peer }),
        (path.clone(), 0i64..3).prop_map(|(path, v)| Command::TemplatesLoaded {
            templates: vec![monk_statemachine::LoadedTemplate {
                path,
                kind: "runnable".into(),
                definition: monk_scripting::tree::Tree::Map(vec![(
                    "port".into(),
                    monk_scripting::tree::Tree::Int(v)
                )]),
            }],
        }),
        path.prop_map(|p| Command::TemplatesRemoved { paths: vec![p] }),
    ]
}

/// One step of the written log: a command, or a new leader's blank entry.
#[derive(Clone, Debug)]
enum Step {
    Propose(Box<Command>),
    NewLeader,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![9 => command().prop_map(|c| Step::Propose(Box::new(c))), 1 => Just(Step::NewLeader)]
}

/// The entries a `cluster new` and `steps` produce, from index 0.
fn log_of(steps: &[Step]) -> Vec<RaftEntry> {
    let created = Command::ClusterCreated {
        name: "c".into(),
        first_peer_name: "p0".into(),
        first_peer_address: "h:0".into(),
        tags: vec![],
        capacity: Capacity::default(),
        facts: None,
        admin_token_sha256: None,
        overlay_range: None,
        overlay: None,
        open_network: false,
    };
    let mut entries = vec![membership(0, 0), blank(1, 1), entry(1, 2, created)];
    let mut term = 1;
    for step in steps {
        let index = entries.len() as u64;
        entries.push(match step {
            Step::Propose(c) => entry(term, index, (**c).clone()),
            Step::NewLeader => {
                term += 1;
                blank(term, index)
            }
        });
    }
    entries
}

/// Writes `entries` with the live store, snapshotting after `snapshot_at` and purging
/// up to `purge_to`; returns the live state after every index.
fn write(
    dir: &std::path::Path,
    entries: &[RaftEntry],
    snapshot_at: Option<usize>,
    purge_to: Option<usize>,
) -> Vec<State> {
    let mut writer = DataDirWriter::create(dir).unwrap();
    let mut states = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        writer.append_and_apply(vec![entry.clone()]).unwrap();
        states.push(writer.state());
        if snapshot_at == Some(i) {
            writer.snapshot().unwrap();
            if let Some(p) = purge_to {
                writer
                    .purge(entries[p].log_id.leader_id.term, p as u64)
                    .unwrap();
            }
        }
    }
    states
}

fn replay_to(reader: &DataDirReader, index: u64) -> Result<State, ReplayError> {
    let mut r = Replayer::open(reader, Target::Index(index), Start::Nearest)?;
    r.run()?;
    Ok(r.into_state())
}

proptest! {
    // Each case creates a RocksDB store on disk: keep the count modest.
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn replay_to_every_index_equals_the_live_state(
        steps in prop::collection::vec(step(), 1..40),
        cut in any::<prop::sample::Index>(),
        purge in any::<prop::sample::Index>(),
        compact in any::<bool>(),
    ) {
        let entries = log_of(&steps);
        let snapshot_at = compact.then(|| cut.index(entries.len()));
        let purge_to = snapshot_at.map(|s| purge.index(s + 1));
        let dir = tempfile::tempdir().unwrap();
        let live = write(dir.path(), &entries, snapshot_at, purge_to);
        let reader = DataDirReader::open(dir.path()).unwrap();
        let first_reachable = match purge_to {
            Some(_) => snapshot_at.unwrap(),
            None => 0,
        };
        for (index, expected) in live.iter().enumerate() {
            let replayed = replay_to(&reader, index as u64);
            if index < first_reachable {
                let err = replayed.expect_err("purged indexes cannot be rebuilt");
                prop_assert!(err.to_string().contains(&format!("{first_reachable}..={}", entries.len() - 1)), "{}", err);
                continue;
            }
            let replayed = replayed.unwrap();
            prop_assert_eq!(&replayed, expected, "at index {}", index);
        }
        // Replay to a time stops after the last entry proposed at or before it.
        let last = entries.len() as u64 - 1;
        let mut r = Replayer::open(&reader, Target::TimeMs(1_000 * last), Start::Nearest).unwrap();
        r.run().unwrap();
        prop_assert_eq!(r.state(), &live[last as usize]);
    }
}

#[test]
fn earliest_start_recomputes_every_result_when_the_log_is_complete() {
    let steps: Vec<Step> = (0..5)
        .map(|_| Step::Propose(Box::new(Command::Noop)))
        .collect();
    let entries = log_of(&steps);
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &entries, Some(4), None);
    let reader = DataDirReader::open(dir.path()).unwrap();
    let mut r = Replayer::open(&reader, Target::End, Start::Earliest).unwrap();
    assert_eq!(r.base(), &Base::Empty);
    let mut results = 0;
    while let Some(entry) = r.next_entry() {
        let (_, result) = r.apply(entry.unwrap()).unwrap();
        assert!(result.is_some());
        results += 1;
    }
    assert_eq!(results, entries.len());
    let nearest = Replayer::open(&reader, Target::End, Start::Nearest).unwrap();
    assert!(matches!(nearest.base(), Base::Snapshot { index: 4, .. }));
}

#[test]
fn a_time_before_the_compacted_snapshot_is_refused() {
    let steps: Vec<Step> = (0..20)
        .map(|_| Step::Propose(Box::new(Command::Noop)))
        .collect();
    let entries = log_of(&steps);
    let dir = tempfile::tempdir().unwrap();
    // Snapshot after entry 15, log purged through 15: no stored entry tells the
    // snapshot's time, the first one after it (16, proposed at 16 s) does.
    write(dir.path(), &entries, Some(15), Some(15));
    let reader = DataDirReader::open(dir.path()).unwrap();
    let err = Replayer::open(&reader, Target::TimeMs(10_000), Start::Nearest)
        .err()
        .expect("10 s is before the snapshot");
    assert!(err.to_string().contains("15..=22"), "{err}");
    let mut r = Replayer::open(&reader, Target::TimeMs(17_000), Start::Nearest).unwrap();
    r.run().unwrap();
    assert_eq!(r.state().last_applied_index(), 17);
}
