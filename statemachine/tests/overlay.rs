//! Overlay addressing (`monk_statemachine::overlay`): each peer's overlay address and
//! container subnet are allocated by `apply` from the cluster's range, never shared by
//! two peers, past or present, and never reused after a peer leaves; identities are
//! checked; old logs (no overlay fields) leave the state without an overlay.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use monk_statemachine::*;
use proptest::prelude::*;

struct Log {
    state: State,
    index: u64,
}

impl Log {
    fn new() -> Log {
        Log {
            state: State::default(),
            index: 0,
        }
    }

    fn apply(&mut self, command: Command) -> Applied {
        self.index += 1;
        let entry = Entry {
            index: self.index,
            term: 1,
            proposal: Proposal {
                format_version: FORMAT_VERSION,
                proposed_at_ms: self.index,
                actor: "test".into(),
                request_id: format!("r{}", self.index),
                command,
            },
        };
        let applied = apply(&mut self.state, &entry).unwrap();
        self.state.check_invariants().unwrap();
        applied
    }

    fn ok(&mut self, command: Command) -> Option<PeerId> {
        match self.apply(command) {
            Applied::Accepted { peer_id } => peer_id,
            Applied::Rejected { reason } => panic!("rejected: {reason}"),
        }
    }

    /// Issues a token and joins peer `name` with `key`; the new peer's id.
    fn join(&mut self, name: &str, key: Option<u8>) -> Applied {
        let token = format!("{:064x}", self.index + 1);
        self.ok(Command::JoinTokenIssued {
            token_sha256: token.clone(),
            expires_at_ms: None,
        });
        self.apply(Command::PeerJoined {
            name: name.into(),
            address: format!("{name}:44001"),
            token_sha256: token,
            tags: vec![],
            capacity: Capacity::default(),
            facts: None,
            admitted_at_ms: None,
            overlay: key.map(identity),
        })
    }

    fn overlay(&self, peer: PeerId) -> (Ipv4Addr, Ipv4Net) {
        let overlay = self.state.peer(peer).unwrap().overlay.as_ref().unwrap();
        (overlay.address, overlay.subnet)
    }
}

/// A valid public key, different for each `n` below 26.
fn key(n: u8) -> String {
    format!("{}{}=", char::from(b'a' + n).to_string().repeat(42), 'A')
}

fn identity(n: u8) -> OverlayIdentity {
    OverlayIdentity {
        public_key: key(n),
        endpoint: format!("192.0.2.{n}:51820"),
    }
}

fn created(range: Option<&str>, first: Option<u8>) -> Command {
    Command::ClusterCreated {
        name: "c".into(),
        first_peer_name: "p1".into(),
        first_peer_address: "p1:44001".into(),
        tags: vec![],
        capacity: Capacity::default(),
        facts: None,
        admin_token_sha256: None,
        overlay_range: range.map(|r| r.parse().unwrap()),
        overlay: first.map(identity),
        open_network: false,
    }
}

fn net(text: &str) -> Ipv4Net {
    text.parse().unwrap()
}

#[test]
fn peers_get_the_rules_addresses_and_keep_them_after_others_leave() {
    let mut log = Log::new();
    log.ok(created(Some("10.211.0.0/16"), Some(0)));
    assert_eq!(log.state.overlay_range(), Some(net("10.211.0.0/16")));
    assert_eq!(
        log.overlay(1),
        ("10.211.0.1".parse().unwrap(), net("10.211.128.0/24"))
    );
    for (n, name) in ["p2", "p3", "p4"].into_iter().enumerate() {
        assert!(log.join(name, Some(n as u8 + 1)).is_accepted());
    }
    assert_eq!(
        log.overlay(3),
        ("10.211.0.3".parse().unwrap(), net("10.211.130.0/24"))
    );
    log.ok(Command::PeerLeft { peer: 2 });
    log.ok(Command::PeerLeft { peer: 3 });
    // The left peers keep their allocation in the state; the newcomers get new ones.
    assert_eq!(
        log.join("p5", Some(5)),
        Applied::Accepted { peer_id: Some(5) }
    );
    assert_eq!(
        log.join("p2", Some(6)),
        Applied::Accepted { peer_id: Some(6) }
    );
    assert_eq!(
        log.overlay(6),
        ("10.211.0.6".parse().unwrap(), net("10.211.133.0/24"))
    );
    assert_eq!(
        log.overlay(2),
        ("10.211.0.2".parse().unwrap(), net("10.211.129.0/24"))
    );
    let wireguard = |p: PeerId| {
        let peer = log.state.peer(p).unwrap();
        peer.overlay.as_ref().unwrap().wireguard.clone()
    };
    assert_eq!(wireguard(6), Some(identity(6)));
}

#[test]
fn the_default_range_applies_when_only_an_identity_is_given() {
    let mut log = Log::new();
    log.ok(created(None, Some(0)));
    assert_eq!(log.state.overlay_range(), Some(net("10.211.0.0/16")));
}

#[test]
fn a_full_range_refuses_the_next_join_and_ids_are_not_spent() {
    let mut log = Log::new();
    log.ok(created(Some("10.16.0.0/20"), Some(0)));
    for n in 1..8u8 {
        assert!(log.join(&format!("q{n}"), Some(n)).is_accepted());
    }
    assert_eq!(
        log.overlay(8),
        ("10.16.0.8".parse().unwrap(), net("10.16.15.0/24"))
    );
    log.ok(Command::PeerLeft { peer: 4 });
    let refused = log.join("q9", Some(9));
    assert!(
        matches!(
            &refused,
            Applied::Rejected {
                reason: Rejection::Limit { max: 8, .. }
            }
        ),
        "{refused:?}"
    );
    assert_eq!(log.state.next_peer_id(), 9);
}

#[test]
fn bad_ranges_and_identities_are_refused_before_anything_changes() {
    let mut log = Log::new();
    let small = log.apply(created(Some("10.16.0.0/24"), Some(0)));
    assert!(matches!(
        small,
        Applied::Rejected {
            reason: Rejection::InvalidOverlay { .. }
        }
    ));
    assert_eq!(log.state.cluster_name(), None);
    log.ok(created(Some("10.16.0.0/16"), Some(0)));
    let copied_key = log.join("p2", Some(0));
    assert!(
        matches!(
            &copied_key,
            Applied::Rejected {
                reason: Rejection::PeerConflict { peer: 1, .. }
            }
        ),
        "{copied_key:?}"
    );
    let bad = Command::PeerOverlayChanged {
        peer: 1,
        public_key: "nope".into(),
        endpoint: "h:1".into(),
    };
    assert!(!log.apply(bad).is_accepted());
    let unknown = Command::PeerOverlayChanged {
        peer: 7,
        public_key: key(7),
        endpoint: "h:1".into(),
    };
    assert!(!log.apply(unknown).is_accepted());
    assert_eq!(
        log.state
            .peer(1)
            .unwrap()
            .overlay
            .as_ref()
            .unwrap()
            .wireguard,
        Some(identity(0))
    );
}

#[test]
fn a_changed_key_or_endpoint_replaces_the_old_one() {
    let mut log = Log::new();
    log.ok(created(None, Some(0)));
    log.ok(Command::PeerOverlayChanged {
        peer: 1,
        public_key: key(3),
        endpoint: "198.51.100.7:51999".into(),
    });
    let overlay = log.state.peer(1).unwrap().overlay.clone().unwrap();
    assert_eq!(overlay.wireguard.unwrap().endpoint, "198.51.100.7:51999");
    assert_eq!(overlay.address, "10.211.0.1".parse::<Ipv4Addr>().unwrap());
}

#[test]
fn an_old_cluster_gets_the_default_range_from_its_first_advertised_identity() {
    let mut log = Log::new();
    log.ok(created(None, None));
    assert!(log.join("p2", None).is_accepted());
    assert!(log.join("p3", None).is_accepted());
    log.ok(Command::PeerLeft { peer: 2 });
    assert_eq!(log.state.overlay_range(), None);
    assert!(log.state.peers().values().all(|p| p.overlay.is_none()));
    log.ok(Command::PeerOverlayChanged {
        peer: 3,
        public_key: key(3),
        endpoint: "h3:51820".into(),
    });
    assert_eq!(log.state.overlay_range(), Some(net("10.211.0.0/16")));
    // Every member is placed; the left peer 2 is not, and its address stays unused.
    assert_eq!(log.overlay(1).0, "10.211.0.1".parse::<Ipv4Addr>().unwrap());
    assert_eq!(log.overlay(3).0, "10.211.0.3".parse::<Ipv4Addr>().unwrap());
    assert!(log.state.peer(2).unwrap().overlay.is_none());
    let peer1 = log.state.peer(1).unwrap().overlay.clone().unwrap();
    assert_eq!(peer1.wireguard, None);
    assert!(log.join("p4", Some(4)).is_accepted());
    assert_eq!(log.overlay(4).0, "10.211.0.4".parse::<Ipv4Addr>().unwrap());
}

#[test]
fn states_without_an_overlay_serialize_as_before() {
    let mut log = Log::new();
    log.ok(created(None, None));
    let json = serde_json::to_string(&log.state).unwrap();
    assert!(!json.contains("overlay"), "{json}");
}

/// One step of a membership history.
#[derive(Clone, Debug)]
enum Step {
    Join { key: u8 },
    Leave { peer: PeerId },
    Advertise { peer: PeerId, key: u8 },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0u8..20).prop_map(|key| Step::Join { key }),
        2 => (1u64..40).prop_map(|peer| Step::Leave { peer }),
        1 => (1u64..40, 0u8..20).prop_map(|(peer, key)| Step::Advertise { peer, key }),
    ]
}

proptest! {
    /// Over random histories of joins, departures and key changes (in a range that
    /// fills up, with and without an overlay from the start), no address or subnet is
    /// ever held by two peers: every allocation seen in any state is remembered, and
    /// a later state may never give it to another peer.
    #[test]
    fn no_two_peers_ever_share_an_address_or_subnet(
        from_start in any::<bool>(),
        steps in prop::collection::vec(step(), 1..60),
    ) {
        let mut log = Log::new();
        match from_start {
            true => log.ok(created(Some("10.16.0.0/19"), Some(0))),
            false => log.ok(created(None, None)),
        };
        let mut addresses: BTreeMap<Ipv4Addr, PeerId> = BTreeMap::new();
        let mut subnets: BTreeMap<Ipv4Net, PeerId> = BTreeMap::new();
        for (n, step) in steps.into_iter().enumerate() {
            match step {
                Step::Join { key } => {
                    let name = format!("j{n}");
                    log.join(&name, (from_start || key % 2 == 0).then_some(key));
                }
                Step::Leave { peer } => {
                    log.apply(Command::PeerLeft { peer });
                }
                Step::Advertise { peer, key } => {
                    log.apply(Command::PeerOverlayChanged {
                        peer,
                        public_key: self::key(key),
                        endpoint: format!("h{peer}:51820"),
                    });
                }
            }
            for peer in log.state.peers().values() {
                let Some(overlay) = &peer.overlay else { continue };
                let first = *addresses.entry(overlay.address).or_insert(peer.id);
                prop_assert_eq!(first, peer.id, "{} given to two peers", overlay.address);
                let first = *subnets.entry(overlay.subnet).or_insert(peer.id);
                prop_assert_eq!(first, peer.id, "{} given to two peers", overlay.subnet);
                let range = log.state.overlay_range().unwrap();
                prop_assert!(range.contains(overlay.address));
                prop_assert!(range.contains(overlay.subnet.base()));
            }
        }
    }
}
