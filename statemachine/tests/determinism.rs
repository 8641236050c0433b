//! Property tests for invariant 1 (determinism) and invariant 5-style checks: the same
//! random command sequence gives the same digest on two state machines; a snapshot at
//! a random index plus the rest of the log equals the full replay; invariants hold
//! after every apply.

use monk_scripting::tree::Tree;
use monk_statemachine::*;
use proptest::prelude::*;

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("p1".to_string()),
        Just("p2".to_string()),
        Just("p3".to_string()),
        Just("bad name".to_string()),
        Just(String::new())
    ]
}

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("ns/a".to_string()),
        Just("ns/b".to_string()),
        Just("other/c/d".to_string()),
        Just("ns/e".to_string()),
        Just("/bad".to_string()),
        Just("x".to_string())
    ]
}

fn tree() -> impl Strategy<Value = Tree> {
    let leaf = prop_oneof![
        Just(Tree::Null),
        any::<bool>().prop_map(Tree::Bool),
        any::<i64>().prop_map(Tree::Int),
        "[a-z]{0,6}".prop_map(Tree::Str)
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Tree::Seq),
            prop::collection::vec(("[a-z]{1,4}", inner), 0..4).prop_map(|mut kv| {
                kv.sort_by(|a, b| a.0.cmp(&b.0));
                kv.dedup_by(|a, b| a.0 == b.0);
                Tree::Map(kv)
            }),
        ]
    })
}

fn scope() -> impl Strategy<Value = SecretScope> {
    prop_oneof![
        Just(SecretScope::Global),
        path().prop_map(SecretScope::Entity)
    ]
}

/// No range (an old log), the default, one that holds 8 peers, one `apply` refuses.
fn overlay_range() -> impl Strategy<Value = Option<Ipv4Net>> {
    prop_oneof![
        Just(None),
        Just(Some("10.211.0.0/16".parse().unwrap())),
        Just(Some("10.16.0.0/20".parse().unwrap())),
        Just(Some("10.16.0.0/24".parse().unwrap())),
    ]
}

/// A few keys (so some collide), one malformed; a few endpoints, one malformed.
fn identity() -> impl Strategy<Value = OverlayIdentity> {
    let key = prop_oneof![
        Just(format!("{}=", "A".repeat(43))),
        Just(format!("{}E=", "B".repeat(42))),
        Just(format!("{}Q=", "c".repeat(42))),
        Just("not-a-key".to_string()),
    ];
    let endpoint = prop_oneof![
        Just("192.0.2.1:51820".to_string()),
        Just("host-b:51821".to_string()),
        Just("no-port".to_string()),
    ];
    (key, endpoint).prop_map(|(public_key, endpoint)| OverlayIdentity {
        public_key,
        endpoint,
    })
}

fn command() -> impl Strategy<Value = Command> {
    let token = prop_oneof![Just("t1".to_string()), Just("t2".to_string())];
    prop_oneof![
        Just(Command::Noop),
        (
            name(),
            name(),
            overlay_range(),
            prop::option::of(identity())
        )
            .prop_map(|(n, p, overlay_range, overlay)| Command::ClusterCreated {
                name: n,
                first_peer_name: p,
                first_peer_address: "127.0.0.1:1".into(),
                tags: vec!["a".into()],
                capacity: Capacity::default(),
                facts: None,
                admin_token_sha256: Some("0".repeat(64)),
                overlay_range,
                overlay,
                open_network: false,
            }),
        (token.clone(), prop::option::of(100u64..200)).prop_map(|(t, expires)| {
            Command::JoinTokenIssued {
                token_sha256: t,
                expires_at_ms: expires,
            }
        }),
        token
            .clone()
            .prop_map(|t| Command::JoinTokenRevoked { token_sha256: t }),
        (
            name(),
            1u16..4,
            token,
            any::<bool>(),
            prop::option::of(50u64..250),
            prop::option::of(identity())
        )
            .prop_map(|(n, port, t, measured, admitted, overlay)| {
                Command::PeerJoined {
                    name: n,
                    address: format!("127.0.0.1:{port}"),
                    token_sha256: t,
                    tags: vec![],
                    capacity: Capacity {
                        cpu_millis: 1000,
                        memory_mb: 512,
                    },
                    facts: measured.then_some(PeerFacts {
                        cpu_millis: 4000,
                        memory_mb: 2048,
                        gpus: 1,
                        disk_free_gb: 20,
                    }),
                    admitted_at_ms: admitted,
                    overlay,
                }
            }),
        (0u64..5).prop_map(|peer| Command::PeerLeft { peer }),
        (0u64..5, "[a-z ]{0,8}").prop_map(|(peer, reason)| Command::PeerDown { peer, reason }),
        (0u64..5).prop_map(|peer| Command::PeerUp { peer }),
        prop::collection::vec((path(), tree()), 0..3).prop_map(|ts| Command::TemplatesLoaded {
            templates: ts
                .into_iter()
                .map(|(path, definition)| LoadedTemplate {
                    path,
                    kind: "runnable".into(),
                    definition
                })
                .collect()
        }),
        prop::collection::vec(path(), 0..3).prop_map(|paths| Command::TemplatesRemoved { paths }),
        (name(), scope(), prop::collection::vec(any::<u8>(), 0..8)).prop_map(
            |(name, scope, sealed)| Command::SecretSet {
                name,
                scope,
                sealed
            }
        ),
        (name(), scope()).prop_map(|(name, scope)| Command::SecretRemoved { name, scope }),
        Just(Command::TemplatesLoaded {
            templates: runnable_templates()
        }),
        workload_command(),
        hub_command(),
    ]
}

/// Hub kits published and sources synced: two sources, kits that may share paths with
/// each other and with loaded templates, digests right or (sometimes) forged, syncs
/// that may name kits never published.
fn hub_command() -> impl Strategy<Value = Command> {
    let source = || prop_oneof![Just("hub-a".to_string()), Just("hub-b".to_string())];
    prop_oneof![
        source().prop_map(|source| Command::HubSourceRemoved { source }),
        (source(), prop::collection::vec(hub_kit(), 0..3))
            .prop_map(|(source, kits)| Command::HubKitsPublished { source, kits }),
        (source(), prop::collection::vec(hub_kit(), 0..2)).prop_map(|(source, kits)| {
            Command::HubSourceSynced {
                source,
                commit: None,
                kits: kits
                    .into_iter()
                    .map(|k| HubKitRef {
                        name: k.name,
                        digest: k.digest,
                    })
                    .collect(),
            }
        }),
    ]
}

/// Runnables and a group the workload commands below can start.
fn runnable_templates() -> Vec<LoadedTemplate> {
    let runnable = |replicas: i64, cpu: i64| {
        Tree::Map(vec![
            ("defines".into(), Tree::Str("runnable".into())),
            (
                "scale".into(),
                Tree::Map(vec![("value".into(), Tree::Int(replicas))]),
            ),
            (
                "variables".into(),
                Tree::Map(vec![("port".into(), Tree::Int(80))]),
            ),
            (
                "containers".into(),
                Tree::Map(vec![(
                    "app".into(),
                    Tree::Map(vec![
                        ("image".into(), Tree::Str("busybox".into())),
                        (
                            "resources".into(),
                            Tree::Map(vec![(
                                "requests".into(),
                                Tree::Map(vec![("cpu".into(), Tree::Int(cpu))]),
                            )]),
                        ),
                    ]),
                )]),
            ),
        ])
    };
    let group = Tree::Map(vec![
        ("defines".into(), Tree::Str("group".into())),
        (
            "members".into(),
            Tree::Seq(vec![Tree::Str("ns/a".into()), Tree::Str("ns/b".into())]),
        ),
    ]);
    let entity_type = Tree::Map(vec![
        ("defines".into(), Tree::Str("entity".into())),
        (
            "checks".into(),
            Tree::Map(vec![("readiness".into(), Tree::Map(vec![]))]),
        ),
    ]);
    let instance = Tree::Map(vec![("defines".into(), Tree::Str("ns/e-type".into()))]);
    [
        ("ns/a", runnable(2, 300)),
        ("ns/b", runnable(3, 0)),
        ("other/c/d", group),
        ("ns/e-type", entity_type),
        ("ns/e", instance),
    ]
    .into_iter()
    .map(|(path, definition)| LoadedTemplate {
        path: path.into(),
        kind: "runnable".into(),
        definition,
    })
    .collect()
}

fn workload_command() -> impl Strategy<Value = Command> {
    let overrides = prop_oneof![
        Just(std::collections::BTreeMap::new()),
        Just(std::collections::BTreeMap::from([(
            "port".to_string(),
            "81".to_string()
        )])),
        Just(std::collections::BTreeMap::from([(
            "nope".to_string(),
            "1".to_string()
        )])),
    ];
    let status = prop_oneof![
        Just(InstanceStatus::Running),
        Just(InstanceStatus::Failed),
        Just(InstanceStatus::Stopped)
    ];
    // What a receiving peer may have evaluated: a scale, a tag, a host port.
    let evaluated = prop::option::of(
        (
            path(),
            prop::option::of(0u32..4),
            prop::option::of(Just("a".to_string())),
            prop::option::of(18080u16..18082),
        )
            .prop_map(|(path, replicas, tag, port)| {
                let host_ports = port
                    .map(|port| HostPort {
                        port,
                        protocol: "tcp".into(),
                        ip: None,
                    })
                    .into_iter()
                    .collect();
                std::collections::BTreeMap::from([(
                    path,
                    Evaluated {
                        replicas,
                        tag,
                        host_ports,
                        ..Evaluated::default()
                    },
                )])
            }),
    );
    prop_oneof![
        (
            path(),
            prop::option::of(Just("a".to_string())),
            overrides.clone(),
            evaluated,
        )
            .prop_map(|(path, tag, overrides, evaluated)| Command::WorkloadRun {
                path,
                tag,
                peer: None,
                overrides,
                evaluated,
            }),
        (
            0u64..5,
            prop::option::of(Just("a".to_string())),
            any::<bool>()
        )
            .prop_map(|(peer, tag, add)| Command::PeerTagged {
                peer,
                add: if add {
                    tag.clone().into_iter().collect()
                } else {
                    vec![]
                },
                remove: if add {
                    vec![]
                } else {
                    tag.into_iter().collect()
                },
            }),
        (
            prop_oneof![Just("ada"), Just("admin"), Just("bad name")],
            0usize..3,
            0u8..3
        )
            .prop_map(|(name, role, token)| Command::UserAdded {
                name: name.to_string(),
                role: Role::ALL[role],
                token_sha256: format!("{token:x}").repeat(64),
            }),
        prop_oneof![Just("ada"), Just("admin")].prop_map(|name| Command::UserRemoved {
            name: name.to_string()
        }),
        (0u64..5, identity()).prop_map(|(peer, id)| Command::PeerOverlayChanged {
            peer,
            public_key: id.public_key,
            endpoint: id.endpoint,
        }),
        (0u64..5, 0u64..3).prop_map(|(peer, gpus)| Command::PeerFactsReported {
            peer,
            facts: PeerFacts {
                cpu_millis: 2000,
                memory_mb: 1000,
                gpus: gpus as u32,
                disk_free_gb: 10
            },
        }),
        (path(), overrides).prop_map(|(path, overrides)| Command::WorkloadUpdate {
            path,
            overrides,
            evaluated: None,
        }),
        path().prop_map(|path| Command::WorkloadStop { path }),
        path().prop_map(|path| Command::WorkloadPurge { path }),
        path().prop_map(|path| Command::WorkloadRestart { path }),
        (
            0u64..5,
            path(),
            (1u64..3, 0u64..6),
            prop_oneof![
                Just("create"),
                Just("start"),
                Just("update"),
                Just("stop"),
                Just("purge"),
                Just("check-readiness")
            ],
            prop_oneof![Just(None), Just(Some("{\"n\":1}")), Just(Some("[]"))],
            prop::option::of(Just("failed")),
        )
            .prop_map(|(peer, path, (generation, step), verb, state, error)| {
                Command::EntityVerbDone {
                    peer,
                    path,
                    generation,
                    step,
                    verb: verb.into(),
                    state: state.map(String::from),
                    error: error.map(String::from),
                    args: Vec::new(),
                }
            }),
        (path(), 0u32..5).prop_map(|(path, replicas)| Command::WorkloadScale { path, replicas }),
        (0u64..5, path(), prop::option::of(Just("failed"))).prop_map(|(peer, path, error)| {
            Command::ActionDone {
                peer,
                path,
                action: "backup".into(),
                args: vec!["label".into()],
                error: error.map(String::from),
            }
        }),
        (0u64..5, 0usize..3, prop::option::of(0usize..2))
            .prop_map(|(peer, manifest, tag)| image_pushed(peer, manifest, tag)),
        (0usize..2).prop_map(|tag| Command::ImageRemoved {
            repository: "app".into(),
            tag: IMAGE_TAGS[tag].into(),
        }),
        (0u64..5, 0usize..4).prop_map(|(peer, blob)| Command::BlobsHeld {
            peer,
            blobs: vec![blob_digest(blob)],
        }),
        // Canonical hosts, an alias (rejected: not canonical) and a bad user name.
        (
            prop::sample::select(vec![
                "ghcr.io",
                "docker.io",
                "index.docker.io",
                "127.0.0.1:5000"
            ]),
            prop::sample::select(vec!["ci", "a:b"]),
            name(),
        )
            .prop_map(
                |(host, username, password_secret)| Command::RegistryCredentialSet {
                    host: host.into(),
                    username: username.into(),
                    password_secret,
                }
            ),
        prop::sample::select(vec!["ghcr.io", "docker.io"])
            .prop_map(|host| { Command::RegistryCredentialRemoved { host: host.into() } }),
        (0u64..5, path(), 0u32..4, 0u64..3, status).prop_map(
            |(peer, path, replica, generation, status)| Command::WorkloadReport {
                peer,
                path,
                replica,
                generation,
                status,
                message: "m".into(),
                addresses: Default::default(),
            }
        ),
    ]
}

fn entries(commands: Vec<Command>) -> Vec<Entry> {
    commands
        .into_iter()
        .enumerate()
        .map(|(i, command)| Entry {
            index: i as u64 + 1,
            term: 1 + i as u64 / 7,
            proposal: Proposal {
                format_version: FORMAT_VERSION,
                proposed_at_ms: 1_000 + i as u64,
                actor: "proptest".into(),
                request_id: format!("r{i}"),
                command,
            },
        })
        .collect()
}

fn replay(state: &mut State, entries: &[Entry]) -> Vec<Applied> {
    entries
        .iter()
        .map(|e| {
            let applied = apply(state, e).expect("current-format entries apply");
            state
                .check_invariants()
                .unwrap_or_else(|v| panic!("after entry {}: {v}", e.index));
            applied
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn same_commands_same_digest(commands in prop::collection::vec(command(), 0..60)) {
        let log = entries(commands);
        let (mut a, mut b) = (State::default(), State::default());
        let results_a = replay(&mut a, &log);
        let results_b = replay(&mut b, &log);
        prop_assert_eq!(results_a, results_b);
        prop_assert_eq!(digest(&a), digest(&b));
        prop_assert_eq!(encode_snapshot(&a), encode_snapshot(&b));
    }

    #[test]
    fn snapshot_then_rest_equals_full_replay(commands in prop::collection::vec(command(), 1..60), cut in any::<prop::sample::Index>()) {
        let log = entries(commands);
        let cut = cut.index(log.len() + 1);
        let mut full = State::default();
        replay(&mut full, &log);
        let mut head = State::default();
        replay(&mut head, &log[..cut]);
        let mut restored = decode_snapshot(&encode_snapshot(&head)).expect("own snapshot decodes");
        replay(&mut restored, &log[cut..]);
        prop_assert_eq!(digest(&restored), digest(&full));
        prop_assert_eq!(restored, full);
    }
}

#[test]
fn digest_changes_when_state_changes() {
    let log = entries(vec![Command::ClusterCreated {
        name: "c".into(),
        first_peer_name: "p1".into(),
        first_peer_address: "a:1".into(),
        tags: vec![],
        capacity: Capacity::default(),
        facts: None,
        admin_token_sha256: None,
        overlay_range: None,
        overlay: None,
        open_network: false,
    }]);
    let mut s = State::default();
    let before = digest(&s);
    replay(&mut s, &log);
    assert_ne!(before, digest(&s));
}

/// A kit of up to two definitions, its digest right or (sometimes) forged.
fn hub_kit() -> impl Strategy<Value = HubKit> {
    let name = prop_oneof![Just("k1".to_string()), Just("k2".to_string())];
    (
        name,
        prop::collection::vec((path(), tree()), 0..3),
        any::<bool>(),
    )
        .prop_map(|(name, ts, forged)| {
            let templates: Vec<LoadedTemplate> = ts
                .into_iter()
                .map(|(path, definition)| LoadedTemplate {
                    path,
                    kind: "runnable".into(),
                    definition,
                })
                .collect();
            let digest = match forged {
                true => "00".repeat(32),
                false => monk_statemachine::hub::kit_digest(&KitMeta::default(), &templates),
            };
            HubKit {
                name,
                meta: KitMeta::default(),
                digest,
                templates,
            }
        })
}

/// Tags the registry commands of the strategy use.
const IMAGE_TAGS: [&str; 2] = ["1", "latest"];

fn blob_digest(n: usize) -> String {
    monk_statemachine::registry::sha256_digest(format!("blob {n}").as_bytes())
}

/// `image-pushed` of one of three manifests (naming overlapping blobs) to `peer`.
fn image_pushed(peer: u64, manifest: usize, tag: Option<usize>) -> Command {
    let blobs: Vec<monk_statemachine::BlobRef> = (manifest..manifest + 2)
        .map(|n| monk_statemachine::BlobRef {
            digest: blob_digest(n),
            size: 100 + n as u64,
        })
        .collect();
    let body = format!("{{\"layers\":{manifest}}}");
    Command::ImagePushed {
        repository: "app".into(),
        tag: tag.map(|t| IMAGE_TAGS[t].to_string()),
        digest: monk_statemachine::registry::sha256_digest(body.as_bytes()),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        manifest: body,
        blobs,
        manifests: Vec::new(),
        peer,
    }
}
