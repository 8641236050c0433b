//! The replicated cluster state. Every map is a `BTreeMap` so iteration order, the
//! snapshot bytes and therefore the digest are the same on every peer.

use std::collections::BTreeMap;

use monk_scripting::tree::Tree;
use serde::{Deserialize, Serialize};

use crate::command::{Capacity, PeerFacts, PeerId, SecretScope};
use crate::workload::Workload;

/// Whether a peer is part of the cluster and heard from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum PeerStatus {
    Up,
    Down { reason: String, since_index: u64 },
    Left { at_index: u64 },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    pub id: PeerId,
    pub name: String,
    pub address: String,
    pub tags: Vec<String>,
    pub capacity: Capacity,
    /// What its machine has, as last reported; left out of the JSON while unknown so
    /// states written before facts existed keep their digests.
    #[serde(default, skip_serializing_if = "PeerFacts::is_unknown")]
    pub facts: PeerFacts,
    pub status: PeerStatus,
    pub joined_at_index: u64,
}

impl Peer {
    pub fn is_member(&self) -> bool {
        !matches!(self.status, PeerStatus::Left { .. })
    }
    pub fn is_up(&self) -> bool {
        matches!(self.status, PeerStatus::Up)
    }
}

/// A stored definition; resolution (`inherits`) happens at use time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    pub path: String,
    pub kind: String,
    pub definition: Tree,
    /// Bumped each time the path is loaded again.
    pub generation: u64,
    pub loaded_at_index: u64,
}

/// A sealed secret. Only the node that holds the cluster key can open `sealed`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secret {
    pub name: String,
    pub scope: SecretScope,
    #[serde(with = "sealed_hex")]
    pub sealed: Vec<u8>,
    pub set_at_index: u64,
}

mod sealed_hex {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        hex::decode(text).map_err(serde::de::Error::custom)
    }
}

/// Key of a secret in [`State::secrets`]: `global/<name>` or `<entity path>/<name>`.
pub fn secret_key(name: &str, scope: &SecretScope) -> String {
    match scope {
        SecretScope::Global => format!("global:{name}"),
        SecretScope::Entity(path) => format!("{path}:{name}"),
    }
}

/// The whole replicated state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Index and term of the last entry applied (including Raft's own blank and
    /// membership entries).
    pub last_applied_index: u64,
    pub last_applied_term: u64,
    pub cluster_name: Option<String>,
    pub next_peer_id: PeerId,
    pub peers: BTreeMap<PeerId, Peer>,
    /// Hex SHA-256 of join tokens that were issued.
    pub join_tokens: BTreeMap<String, u64>,
    pub templates: BTreeMap<String, Template>,
    pub secrets: BTreeMap<String, Secret>,
    /// Running and stopped workloads by runnable path. Left out of the JSON (and so of
    /// the digest) while empty, so states written before workloads existed keep their
    /// digests.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub workloads: BTreeMap<String, Workload>,
}

/// A broken invariant: a bug, never a user error.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("state invariant broken: {0}")]
pub struct InvariantViolation(pub String);

impl State {
    /// Checks every structural invariant; run after every apply in debug builds and tests.
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        let fail = |m: String| Err(InvariantViolation(m));
        if self.cluster_name.is_none() && (!self.peers.is_empty() || self.next_peer_id != 0) {
            return fail("peers exist but the cluster was never created".into());
        }
        let mut names = BTreeMap::new();
        let mut addresses = BTreeMap::new();
        for (id, peer) in &self.peers {
            if *id != peer.id {
                return fail(format!("peer keyed {id} has id {}", peer.id));
            }
            if peer.id == 0 || peer.id >= self.next_peer_id {
                return fail(format!(
                    "peer id {} outside 1..{}",
                    peer.id, self.next_peer_id
                ));
            }
            if peer.joined_at_index > self.last_applied_index {
                return fail(format!("peer {} joined in the future", peer.id));
            }
            if peer.is_member() {
                if let Some(other) = names.insert(peer.name.as_str(), peer.id) {
                    return fail(format!(
                        "peers {other} and {} share the name {}",
                        peer.id, peer.name
                    ));
                }
                if let Some(other) = addresses.insert(peer.address.as_str(), peer.id) {
                    return fail(format!(
                        "peers {other} and {} share the address {}",
                        peer.id, peer.address
                    ));
                }
            }
        }
        for (path, template) in &self.templates {
            if *path != template.path {
                return fail(format!("template keyed {path} has path {}", template.path));
            }
            if template.generation == 0 || template.loaded_at_index > self.last_applied_index {
                return fail(format!(
                    "template {path} has generation {} loaded at {}",
                    template.generation, template.loaded_at_index
                ));
            }
        }
        for (key, secret) in &self.secrets {
            if *key != secret_key(&secret.name, &secret.scope) {
                return fail(format!("secret keyed {key} is {}", secret.name));
            }
        }
        for (path, workload) in &self.workloads {
            if *path != workload.path {
                return fail(format!("workload keyed {path} has path {}", workload.path));
            }
            if workload.generation == 0 {
                return fail(format!("workload {path} has generation 0"));
            }
            for (n, (replica, instance)) in workload.instances.iter().enumerate() {
                if *replica != instance.replica || *replica as usize != n {
                    return fail(format!("workload {path} replicas are not 0..{n}"));
                }
                if let Some(peer) = instance.peer {
                    if !self.peers.get(&peer).is_some_and(|p| p.is_up()) {
                        return fail(format!(
                            "{path}#{replica} is placed on peer {peer}, which is not an up member"
                        ));
                    }
                    if instance.pending.is_some() {
                        return fail(format!("{path}#{replica} is placed and pending"));
                    }
                }
                if let Some(seen) = &instance.observed {
                    if seen.generation > workload.generation {
                        return fail(format!("{path}#{replica} observed a future generation"));
                    }
                }
            }
        }
        Ok(())
    }

    /// Peers that are members (not left), in id order.
    pub fn members(&self) -> impl Iterator<Item = &Peer> {
        self.peers.values().filter(|p| p.is_member())
    }
}
