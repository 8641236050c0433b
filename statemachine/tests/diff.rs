//! Property: the typed state diff is exact. For two states A (after a prefix of a
//! random log) and B (after a longer prefix), `apply_diff(A, diff(A, B)) == B`, the
//! diff is empty exactly when the states are equal (apart from the applied index),
//! and a diff does not apply to a state it was not taken from.

use monk_scripting::tree::Tree;
use monk_statemachine::*;
use proptest::prelude::*;

fn command() -> impl Strategy<Value = Command> {
    let path = prop_oneof![Just("ns/a"), Just("ns/b"), Just("x/y/z")].prop_map(String::from);
    let name = prop_oneof![Just("p1"), Just("p2"), Just("p3")].prop_map(String::from);
    let scope = prop_oneof![
        Just(SecretScope::Global),
        path.clone().prop_map(SecretScope::Entity)
    ];
    prop_oneof![
        Just(Command::JoinTokenIssued {
            token_sha256: "t".into(),
            expires_at_ms: None,
        }),
        (name.clone(), 1u16..4).prop_map(|(name, port)| Command::PeerJoined {
            name,
            address: format!("h:{port}"),
            token_sha256: "t".into(),
            tags: vec![],
            capacity: Capacity::default(),
            facts: None,
            admitted_at_ms: None,
            overlay: None,
        }),
        (1u64..4).prop_map(|peer| Command::PeerLeft { peer }),
        (1u64..4).prop_map(|peer| Command::PeerDown {
            peer,
            reason: "silent".into()
        }),
        (1u64..4).prop_map(|peer| Command::PeerUp { peer }),
        (path.clone(), 0i64..3).prop_map(|(path, v)| Command::TemplatesLoaded {
            templates: vec![LoadedTemplate {
                path,
                kind: "runnable".into(),
                definition: Tree::Map(vec![("port".into(), Tree::Int(v))]),
            }],
        }),
        path.clone()
            .prop_map(|p| Command::TemplatesRemoved { paths: vec![p] }),
        (
            name.clone(),
            scope.clone(),
            prop::collection::vec(any::<u8>(), 0..4)
        )
            .prop_map(|(name, scope, sealed)| Command::SecretSet {
                name,
                scope,
                sealed
            }),
        (name, scope).prop_map(|(name, scope)| Command::SecretRemoved { name, scope }),
        (path.clone(), 1i64..4).prop_map(|(path, replicas)| Command::TemplatesLoaded {
            templates: vec![LoadedTemplate {
                path,
                kind: "runnable".into(),
                definition: Tree::Map(vec![
                    ("defines".into(), Tree::Str("runnable".into())),
                    (
                        "scale".into(),
                        Tree::Map(vec![("value".into(), Tree::Int(replicas))]),
                    ),
                ]),
            }],
        }),
        path.clone().prop_map(|path| Command::WorkloadRun {
            path,
            tag: None,
            peer: None,
            overrides: Default::default(),
            evaluated: None,
        }),
        (path.clone(), 0u32..4)
            .prop_map(|(path, replicas)| Command::WorkloadScale { path, replicas }),
        path.clone().prop_map(|path| Command::WorkloadStop { path }),
        path.clone()
            .prop_map(|path| Command::WorkloadPurge { path }),
        (1u64..4, path, 0u32..3).prop_map(|(peer, path, replica)| Command::WorkloadReport {
            peer,
            path,
            replica,
            generation: 1,
            status: InstanceStatus::Running,
            message: String::new(),
            addresses: Default::default(),
        }),
    ]
}

fn states(commands: Vec<Command>) -> Vec<State> {
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
    let mut state = State::default();
    let mut out = vec![state.clone()];
    for (i, command) in std::iter::once(created).chain(commands).enumerate() {
        let entry = Entry {
            index: i as u64 + 1,
            term: 1,
            proposal: Proposal {
                format_version: FORMAT_VERSION,
                proposed_at_ms: i as u64,
                actor: "proptest".into(),
                request_id: format!("r{i}"),
                command,
            },
        };
        apply(&mut state, &entry).expect("current-format entries apply");
        out.push(state.clone());
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn diff_applied_to_a_gives_b(
        commands in prop::collection::vec(command(), 0..40),
        x in any::<prop::sample::Index>(),
        y in any::<prop::sample::Index>(),
    ) {
        let all = states(commands);
        let (i, j) = (x.index(all.len()), y.index(all.len()));
        let (a, b) = (&all[i.min(j)], &all[i.max(j)]);
        let d = diff(a, b);
        let mut rebuilt = a.clone();
        apply_diff(&mut rebuilt, &d).expect("a diff applies to the state it was taken from");
        prop_assert_eq!(&rebuilt, b);
        let mut a_moved = a.clone();
        if b.last_applied_index() > a.last_applied_index() {
            advance(&mut a_moved, b.last_applied_index(), b.last_applied_term())
                .expect("b was applied after a");
        }
        prop_assert_eq!(d.is_empty(), &a_moved == b);
        // Backwards works too: diff(B, A) applied to B gives A.
        let mut back = b.clone();
        apply_diff(&mut back, &diff(b, a)).expect("reverse diff applies");
        prop_assert_eq!(&back, a);
        // A non-empty diff does not fit the state it leads to.
        if !d.is_empty() {
            let mut wrong = b.clone();
            prop_assert!(apply_diff(&mut wrong, &d).is_err());
        }
    }
}
