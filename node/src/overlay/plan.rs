//! The pure overlay planner: which remote peers this peer's WireGuard interface should
//! have ([`Desired`], a function of the replicated state and this peer's id), what the
//! interface reports ([`Observed`]), and the [`Action`]s that make the second equal the
//! first (add a peer, change its endpoint or allowed IPs, remove it). No I/O; the
//! property tests below show that carrying out a plan and planning again gives nothing,
//! that any observed interface converges to the desired one, and that only peers the
//! interface listed or the state wants are ever touched.
//!
//! Who is desired: every *member* other than this peer that advertised a key, up or
//! down. A down peer stays configured (it may only be cut off, and WireGuard keeps no
//! session with a silent peer, so keeping it costs nothing and spares churn on every
//! flap); a peer that left is removed. Endpoints are compared as text: a runtime that
//! resolves a `host:port` endpoint to an address reports it as the desired text.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use monk_statemachine::{Ipv4Net, PeerId, State};

/// A remote peer as the interface should have it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemotePeer {
    /// Which peer of the cluster it is (for messages; WireGuard knows only the key).
    pub peer: PeerId,
    pub endpoint: String,
    /// Its overlay address (/32) and its container subnet, in order.
    pub allowed_ips: Vec<Ipv4Net>,
}

/// What this peer's interface should be: its own address in the range, and the remote
/// peers by public key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Desired {
    /// This peer's overlay address and the cluster's range (the interface's address
    /// and route); `None` while the state gives it none.
    pub address: Option<(Ipv4Addr, Ipv4Net)>,
    pub peers: BTreeMap<String, RemotePeer>,
}

/// A peer as the interface reports it (handshakes and byte counts do not matter here).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedPeer {
    pub endpoint: Option<String>,
    pub allowed_ips: Vec<Ipv4Net>,
}

/// What the interface reports: its peers by public key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    pub peers: BTreeMap<String, ObservedPeer>,
}

/// One change to the interface; each names one peer by public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Add {
        public_key: String,
        endpoint: String,
        allowed_ips: Vec<Ipv4Net>,
    },
    /// Only what differs is `Some`.
    Update {
        public_key: String,
        endpoint: Option<String>,
        allowed_ips: Option<Vec<Ipv4Net>>,
    },
    Remove {
        public_key: String,
    },
}

impl Action {
    pub fn public_key(&self) -> &str {
        match self {
            Action::Add { public_key, .. }
            | Action::Update { public_key, .. }
            | Action::Remove { public_key } => public_key,
        }
    }
}

/// The interface `me` should have in `state` (the rule in the module documentation).
pub fn desired(state: &State, me: PeerId) -> Desired {
    let address = state
        .peer(me)
        .and_then(|p| p.overlay.as_ref())
        .zip(state.overlay_range())
        .map(|(overlay, range)| (overlay.address, range));
    let peers = state
        .members()
        .filter(|p| p.id != me)
        .filter_map(|p| {
            let overlay = p.overlay.as_ref()?;
            let wireguard = overlay.wireguard.as_ref()?;
            let host = Ipv4Net::new(overlay.address, 32).ok()?;
            let remote = RemotePeer {
                peer: p.id,
                endpoint: wireguard.endpoint.clone(),
                allowed_ips: vec![host, overlay.subnet],
            };
            Some((wireguard.public_key.clone(), remote))
        })
        .collect();
    Desired { address, peers }
}

/// The actions that turn `observed` into `desired`, removals first, each peer once.
pub fn plan(desired: &Desired, observed: &Observed) -> Vec<Action> {
    let removals = observed
        .peers
        .keys()
        .filter(|key| !desired.peers.contains_key(*key))
        .map(|key| Action::Remove {
            public_key: key.clone(),
        });
    let changes = desired.peers.iter().filter_map(|(key, want)| {
        let Some(seen) = observed.peers.get(key) else {
            return Some(Action::Add {
                public_key: key.clone(),
                endpoint: want.endpoint.clone(),
                allowed_ips: want.allowed_ips.clone(),
            });
        };
        let endpoint =
            (seen.endpoint.as_ref() != Some(&want.endpoint)).then(|| want.endpoint.clone());
        let allowed_ips = (seen.allowed_ips != want.allowed_ips).then(|| want.allowed_ips.clone());
        (endpoint.is_some() || allowed_ips.is_some()).then(|| Action::Update {
            public_key: key.clone(),
            endpoint,
            allowed_ips,
        })
    });
    removals.chain(changes).collect()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use monk_statemachine::{apply, Applied, Capacity, Command, Entry, OverlayIdentity, Proposal};
    use proptest::prelude::*;

    fn net(text: &str) -> Ipv4Net {
        text.parse().unwrap()
    }

    fn key(n: u8) -> String {
        format!("{}A=", char::from(b'a' + n).to_string().repeat(42))
    }

    fn remote() -> impl Strategy<Value = RemotePeer> {
        let endpoint = prop_oneof![Just("192.0.2.1:51820"), Just("192.0.2.2:51820")];
        let ips = prop::collection::vec(
            prop_oneof![
                Just(net("10.211.0.2/32")),
                Just(net("10.211.0.3/32")),
                Just(net("10.211.129.0/24")),
            ],
            0..3,
        );
        (1u64..5, endpoint, ips).prop_map(|(peer, endpoint, allowed_ips)| RemotePeer {
            peer,
            endpoint: endpoint.to_string(),
            allowed_ips,
        })
    }

    fn desired_strategy() -> impl Strategy<Value = Desired> {
        prop::collection::btree_map((0u8..6).prop_map(key), remote(), 0..5).prop_map(|peers| {
            Desired {
                address: None,
                peers,
            }
        })
    }

    fn observed_strategy() -> impl Strategy<Value = Observed> {
        let peer = (prop::option::of(remote()), any::<bool>()).prop_map(|(r, no_endpoint)| {
            let r = r.unwrap_or(RemotePeer {
                peer: 0,
                endpoint: "198.51.100.9:1".into(),
                allowed_ips: vec![],
            });
            ObservedPeer {
                endpoint: (!no_endpoint).then_some(r.endpoint),
                allowed_ips: r.allowed_ips,
            }
        });
        prop::collection::btree_map((0u8..6).prop_map(key), peer, 0..5)
            .prop_map(|peers| Observed { peers })
    }

    /// What the interface reports after `actions`, as a runtime would carry them out.
    fn carry_out(observed: &Observed, actions: &[Action]) -> Observed {
        let mut after = observed.clone();
        for action in actions {
            match action {
                Action::Add {
                    public_key,
                    endpoint,
                    allowed_ips,
                } => {
                    let fresh = ObservedPeer {
                        endpoint: Some(endpoint.clone()),
                        allowed_ips: allowed_ips.clone(),
                    };
                    assert!(after.peers.insert(public_key.clone(), fresh).is_none());
                }
                Action::Update {
                    public_key,
                    endpoint,
                    allowed_ips,
                } => {
                    let seen = after
                        .peers
                        .get_mut(public_key)
                        .expect("updates a listed peer");
                    if let Some(endpoint) = endpoint {
                        seen.endpoint = Some(endpoint.clone());
                    }
                    if let Some(allowed_ips) = allowed_ips {
                        seen.allowed_ips = allowed_ips.clone();
                    }
                }
                Action::Remove { public_key } => {
                    assert!(after.peers.remove(public_key).is_some());
                }
            }
        }
        after
    }

    fn as_observed(desired: &Desired) -> Observed {
        let peers = desired
            .peers
            .iter()
            .map(|(key, want)| {
                let seen = ObservedPeer {
                    endpoint: Some(want.endpoint.clone()),
                    allowed_ips: want.allowed_ips.clone(),
                };
                (key.clone(), seen)
            })
            .collect();
        Observed { peers }
    }

    proptest! {
        #[test]
        fn a_second_plan_is_empty(desired in desired_strategy(), observed in observed_strategy()) {
            let after = carry_out(&observed, &plan(&desired, &observed));
            prop_assert_eq!(plan(&desired, &after), vec![]);
        }

        #[test]
        fn any_observed_interface_converges_to_the_desired_one(
            desired in desired_strategy(),
            observed in observed_strategy(),
        ) {
            let after = carry_out(&observed, &plan(&desired, &observed));
            prop_assert_eq!(after, as_observed(&desired));
        }

        #[test]
        fn only_listed_or_wanted_peers_are_touched_once_and_right_ones_never(
            desired in desired_strategy(),
            observed in observed_strategy(),
        ) {
            let actions = plan(&desired, &observed);
            let mut seen = std::collections::BTreeSet::new();
            for action in &actions {
                let key = action.public_key();
                prop_assert!(seen.insert(key.to_string()), "{} touched twice", key);
                match action {
                    Action::Add { .. } => prop_assert!(!observed.peers.contains_key(key)),
                    Action::Update { .. } | Action::Remove { .. } => {
                        prop_assert!(observed.peers.contains_key(key))
                    }
                }
                if let Action::Remove { .. } = action {
                    prop_assert!(!desired.peers.contains_key(key));
                }
            }
            for (key, right) in as_observed(&desired).peers {
                if observed.peers.get(&key) == Some(&right) {
                    prop_assert!(!seen.contains(&key), "{} was right and touched", key);
                }
            }
        }
    }

    /// A state built by applying commands (tests of this module and `overlay`).
    pub(crate) struct Log {
        pub(crate) state: State,
        index: u64,
    }

    impl Log {
        /// A cluster whose first peer advertised `identity(1)`, joined by 2..=`last`.
        pub(crate) fn cluster(last: u8) -> Log {
            let mut log = Log {
                state: State::default(),
                index: 0,
            };
            log.ok(Command::ClusterCreated {
                name: "c".into(),
                first_peer_name: "p1".into(),
                first_peer_address: "h1:44001".into(),
                tags: vec![],
                capacity: Capacity::default(),
                facts: None,
                admin_token_sha256: None,
                overlay_range: None,
                overlay: Some(identity(1)),
                open_network: false,
            });
            for n in 2..=last {
                log.join(n);
            }
            log
        }

        pub(crate) fn ok(&mut self, command: Command) {
            self.index += 1;
            let entry = Entry {
                index: self.index,
                term: 1,
                proposal: Proposal {
                    format_version: monk_statemachine::FORMAT_VERSION,
                    proposed_at_ms: 0,
                    actor: "test".into(),
                    request_id: String::new(),
                    command,
                },
            };
            let applied = apply(&mut self.state, &entry).unwrap();
            assert!(matches!(applied, Applied::Accepted { .. }), "{applied:?}");
        }

        fn join(&mut self, n: u8) {
            let token = format!("{:064x}", self.index + 1);
            self.ok(Command::JoinTokenIssued {
                token_sha256: token.clone(),
                expires_at_ms: None,
            });
            self.ok(Command::PeerJoined {
                name: format!("p{n}"),
                address: format!("h{n}:44001"),
                token_sha256: token,
                tags: vec![],
                capacity: Capacity::default(),
                facts: None,
                admitted_at_ms: None,
                overlay: Some(identity(n)),
            });
        }
    }

    pub(crate) fn identity(n: u8) -> OverlayIdentity {
        OverlayIdentity {
            public_key: key(n),
            endpoint: format!("192.0.2.{n}:51820"),
        }
    }

    #[test]
    fn desired_has_every_other_member_up_or_down_and_no_one_who_left() {
        let mut log = Log::cluster(4);
        log.ok(Command::PeerDown {
            peer: 3,
            reason: "silent".into(),
        });
        log.ok(Command::PeerLeft { peer: 4 });
        let d = desired(&log.state, 1);
        assert_eq!(
            d.address,
            Some(("10.211.0.1".parse().unwrap(), net("10.211.0.0/16")))
        );
        let keys: Vec<&String> = d.peers.keys().collect();
        assert_eq!(keys, vec![&key(2), &key(3)]);
        assert_eq!(
            d.peers[&key(2)],
            RemotePeer {
                peer: 2,
                endpoint: "192.0.2.2:51820".into(),
                allowed_ips: vec![net("10.211.0.2/32"), net("10.211.129.0/24")],
            }
        );
        // The interface still lists the peer that left: it is removed, nothing else.
        let mut observed = as_observed(&d);
        let gone = ObservedPeer {
            endpoint: Some("192.0.2.4:51820".into()),
            allowed_ips: vec![net("10.211.0.4/32"), net("10.211.131.0/24")],
        };
        observed.peers.insert(key(4), gone);
        assert_eq!(
            plan(&d, &observed),
            vec![Action::Remove { public_key: key(4) }]
        );
    }

    #[test]
    fn a_cluster_without_an_overlay_wants_nothing() {
        assert_eq!(desired(&State::default(), 1), Desired::default());
    }
}
