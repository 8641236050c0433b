//! The replicated cluster state. Every map is a `BTreeMap` so iteration order, the
//! snapshot bytes and therefore the digest are the same on every peer.
//!
//! One writer (ARCHITECTURE.md, invariant 2): the fields of [`State`] are private to
//! this crate and other crates read them through accessors named after them
//! ([`State::peers`], [`State::workloads`], [`State::last_applied_index`], ...), which
//! return shared references or copies. Outside this crate a `State` comes only from
//! [`Default`] (the empty state before the first entry), from decoding a snapshot
//! ([`crate::decode_snapshot`], or deserializing the same JSON) or as a clone of one of
//! those; the only functions that change one through `&mut State` are [`crate::apply`]
//! and [`crate::advance`] (committed entries, in order) and [`crate::apply_diff`] (a
//! diff between two states, checked against what it was taken from; used to test
//! [`crate::diff`]). The `compile_fail` examples on [`State`] prove that code outside
//! the crate cannot write a field, build a `State` from fields, or take a `&mut` to a
//! map inside one. [`Peer`], [`Template`], [`Secret`] and [`Workload`] keep public
//! fields: they are values callers read, and the accessors hand them out behind `&`.

use std::collections::BTreeMap;

use monk_scripting::tree::Tree;
use serde::{Deserialize, Serialize};

use crate::command::{Capacity, PeerFacts, PeerId, SecretScope};
use crate::overlay::{Ipv4Net, PeerOverlay};
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
    /// Its overlay address, container subnet and WireGuard identity; left out of the
    /// JSON while the cluster has no overlay range, so older states keep their digests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlay: Option<PeerOverlay>,
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

/// The whole replicated state. Read it through the accessors; change it only with
/// [`crate::apply`] and [`crate::advance`] (see the module documentation).
///
/// ```
/// use monk_statemachine::State;
/// let state = State::default();
/// assert!(state.peers().is_empty() && state.peer(1).is_none());
/// assert_eq!((state.last_applied_index(), state.cluster_name()), (0, None));
/// ```
///
/// Code outside this crate cannot change a field, even on a `State` it owns:
///
/// ```compile_fail,E0616
/// let mut state = monk_statemachine::State::default();
/// let copy = monk_statemachine::State::default();
/// state.peers.extend(copy.peers().clone());
/// ```
///
/// ```compile_fail,E0616
/// let mut state = monk_statemachine::State::default();
/// state.last_applied_index = 7;
/// ```
///
/// nor build one from fields:
///
/// ```compile_fail,E0451
/// let state = monk_statemachine::State {
///     cluster_name: Some("c".into()),
///     ..Default::default()
/// };
/// ```
///
/// and what the accessors return is shared, so it cannot be written through:
///
/// ```compile_fail,E0596
/// let mut state = monk_statemachine::State::default();
/// state.peers().clear();
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Index and term of the last entry applied (including Raft's own blank and
    /// membership entries).
    pub(crate) last_applied_index: u64,
    pub(crate) last_applied_term: u64,
    pub(crate) cluster_name: Option<String>,
    pub(crate) next_peer_id: PeerId,
    pub(crate) peers: BTreeMap<PeerId, Peer>,
    /// Hex SHA-256 of join tokens that were issued.
    pub(crate) join_tokens: BTreeMap<String, u64>,
    /// When each expiring join token expires (ms since the Unix epoch), by hash. Left
    /// out of the JSON while empty, so states from before expiry keep their digests.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) join_token_expiry: BTreeMap<String, u64>,
    pub(crate) templates: BTreeMap<String, Template>,
    pub(crate) secrets: BTreeMap<String, Secret>,
    /// Running and stopped workloads by runnable path. Left out of the JSON (and so of
    /// the digest) while empty, so states written before workloads existed keep their
    /// digests.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) workloads: BTreeMap<String, Workload>,
    /// Users by name, with their role and the SHA-256 of their credential. Left out
    /// of the JSON while empty, so states from before users existed keep their digests.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) users: BTreeMap<String, User>,
    /// The overlay range peers get their addresses and container subnets from
    /// (`crate::overlay`). Left out of the JSON while unset, so states from before the
    /// overlay existed keep their digests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) overlay_range: Option<Ipv4Net>,
    /// `cluster-created`'s `open_network`: no firewall between workloads. Left out of
    /// the JSON while false, so older states keep their digests.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) open_network: bool,
    /// The Hub catalog by source (`crate::hub`). Left out of the JSON while empty, so
    /// states from before the Hub existed keep their digests.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) hub: BTreeMap<String, crate::hub::HubSource>,
    /// The cluster registry's repositories (`crate::registry`). Left out of the JSON
    /// while empty, so states from before the registry existed keep their digests.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) images: BTreeMap<String, crate::registry::Repository>,
    /// The registry's blobs some manifest names, with the peers holding them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) blobs: BTreeMap<String, crate::registry::BlobHolders>,
    /// Pull credentials for outside registries by canonical host
    /// (`crate::pull_credentials`). Left out of the JSON while empty, so older states
    /// keep their digests.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) registries: BTreeMap<String, crate::pull_credentials::RegistryCredential>,
}

/// A user who may call the API: `monk user add`, or `admin` from `cluster-created`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub role: crate::Role,
    /// Hex SHA-256 of the user's credential (the credential is never stored).
    pub token_sha256: String,
    /// Index of the entry that added it (or gave it its current credential).
    pub added_at_index: u64,
}

/// Read accessors, one per field, and lookups by key.
impl State {
    /// Index of the last entry applied (including Raft's own blank and membership
    /// entries); 0 before the first.
    pub fn last_applied_index(&self) -> u64 {
        self.last_applied_index
    }

    /// Term of the last entry applied; 0 before the first.
    pub fn last_applied_term(&self) -> u64 {
        self.last_applied_term
    }

    /// The cluster's name, once `cluster-created` is applied.
    pub fn cluster_name(&self) -> Option<&str> {
        self.cluster_name.as_deref()
    }

    /// The id the next peer to join will get.
    pub fn next_peer_id(&self) -> PeerId {
        self.next_peer_id
    }

    /// Every peer ever admitted, members and those that left, by id.
    pub fn peers(&self) -> &BTreeMap<PeerId, Peer> {
        &self.peers
    }

    /// Hex SHA-256 of each join token issued, with the index that issued it.
    pub fn join_tokens(&self) -> &BTreeMap<String, u64> {
        &self.join_tokens
    }

    /// When each expiring join token expires, by hash (ms since the Unix epoch).
    pub fn join_token_expiry(&self) -> &BTreeMap<String, u64> {
        &self.join_token_expiry
    }

    /// The overlay range, once `cluster-created` (or a first `peer-overlay-changed`)
    /// set it.
    pub fn overlay_range(&self) -> Option<Ipv4Net> {
        self.overlay_range
    }

    /// Whether workloads reach each other without a declared connection
    /// (`monk cluster new --open-network`).
    pub fn open_network(&self) -> bool {
        self.open_network
    }

    /// Users by name.
    pub fn users(&self) -> &BTreeMap<String, User> {
        &self.users
    }

    /// The user whose credential hashes to `token_sha256` (hex), with its name.
    pub fn user_by_token(&self, token_sha256: &str) -> Option<(&str, &User)> {
        self.users
            .iter()
            .find(|(_, u)| u.token_sha256 == token_sha256)
            .map(|(name, u)| (name.as_str(), u))
    }

    /// Stored definitions by path.
    pub fn templates(&self) -> &BTreeMap<String, Template> {
        &self.templates
    }

    /// Sealed secrets by [`secret_key`].
    pub fn secrets(&self) -> &BTreeMap<String, Secret> {
        &self.secrets
    }

    /// Running and stopped workloads by runnable path.
    pub fn workloads(&self) -> &BTreeMap<String, Workload> {
        &self.workloads
    }

    /// The peer with this id, member or not.
    pub fn peer(&self, id: PeerId) -> Option<&Peer> {
        self.peers.get(&id)
    }

    /// The definition stored at `path`.
    pub fn template(&self, path: &str) -> Option<&Template> {
        self.templates.get(path)
    }

    /// The secret `name` in `scope`.
    pub fn secret(&self, name: &str, scope: &SecretScope) -> Option<&Secret> {
        self.secrets.get(&secret_key(name, scope))
    }

    /// The workload of the runnable at `path`.
    pub fn workload(&self, path: &str) -> Option<&Workload> {
        self.workloads.get(path)
    }
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
            if let Some(life) = &workload.entity {
                if workload.instances.len() != 1 {
                    return fail(format!("entity instance {path} has other than one replica"));
                }
                let lifecycle = crate::schedule::entity::LIFECYCLE_VERBS;
                if let Some(verb) = life.todo.iter().find(|v| !lifecycle.contains(&v.as_str())) {
                    return fail(format!("entity instance {path} has {verb} queued"));
                }
                if life.created && life.todo.first().is_some_and(|v| v == "create") {
                    return fail(format!(
                        "entity instance {path} is created and queued to be"
                    ));
                }
            }
            for (n, (replica, instance)) in workload.instances.iter().enumerate() {
                if *replica != instance.replica || *replica as usize != n {
                    return fail(format!("workload {path} replicas are not 0..{n}"));
                }
                if let Some(peer) = instance.peer {
                    // A down member keeps the replicas whose `recovery` does not move
                    // them on a machine's failure.
                    let stays = !crate::schedule::moves_on_peer_failure(&workload.definition);
                    let placeable = |p: &Peer| p.is_up() || (stays && p.is_member());
                    if !self.peers.get(&peer).is_some_and(placeable) {
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
        if let Some(hash) = self
            .join_token_expiry
            .keys()
            .find(|h| !self.join_tokens.contains_key(*h))
        {
            return fail(format!(
                "join token {hash} has an expiry but was never issued"
            ));
        }
        let mut credentials = BTreeMap::new();
        for (name, user) in &self.users {
            if let Some(other) = credentials.insert(user.token_sha256.as_str(), name) {
                return fail(format!("users {other} and {name} share a credential"));
            }
            if user.added_at_index > self.last_applied_index {
                return fail(format!("user {name} was added in the future"));
            }
        }
        let admins = self.users.values().filter(|u| u.role == crate::Role::Admin);
        if !self.users.is_empty() && admins.count() == 0 {
            return fail("users exist but none is an admin".into());
        }
        self.check_hub().map_err(InvariantViolation)?;
        self.check_images().map_err(InvariantViolation)?;
        self.check_registry_credentials()
            .map_err(InvariantViolation)?;
        self.check_overlay()
    }

    /// With a range, every member has the address and subnet [`crate::overlay::allocate`]
    /// gives its id (so no two peers ever share one) and members' public keys differ;
    /// without one, no peer has an overlay.
    fn check_overlay(&self) -> Result<(), InvariantViolation> {
        let fail = |m: String| Err(InvariantViolation(m));
        let Some(range) = self.overlay_range else {
            return match self.peers.values().find(|p| p.overlay.is_some()) {
                Some(p) => fail(format!(
                    "peer {} has an overlay but the cluster no range",
                    p.id
                )),
                None => Ok(()),
            };
        };
        if let Err(why) = crate::overlay::check_range(range) {
            return fail(why);
        }
        let mut addresses = BTreeMap::new();
        let mut subnets = BTreeMap::new();
        let mut keys = BTreeMap::new();
        for peer in self.peers.values() {
            let Some(overlay) = &peer.overlay else {
                if peer.is_member() {
                    return fail(format!("member {} has no overlay address", peer.id));
                }
                continue;
            };
            if crate::overlay::allocate(range, peer.id) != Some((overlay.address, overlay.subnet)) {
                return fail(format!(
                    "peer {} has {} and {}, not what the rule gives it in {range}",
                    peer.id, overlay.address, overlay.subnet
                ));
            }
            if let Some(other) = addresses.insert(overlay.address, peer.id) {
                return fail(format!(
                    "peers {other} and {} share {}",
                    peer.id, overlay.address
                ));
            }
            if let Some(other) = subnets.insert(overlay.subnet, peer.id) {
                return fail(format!(
                    "peers {other} and {} share {}",
                    peer.id, overlay.subnet
                ));
            }
            let key = overlay.wireguard.as_ref().filter(|_| peer.is_member());
            if let Some(other) = key.and_then(|w| keys.insert(w.public_key.as_str(), peer.id)) {
                return fail(format!(
                    "members {other} and {} share a public key",
                    peer.id
                ));
            }
        }
        Ok(())
    }

    /// Peers that are members (not left), in id order.
    pub fn members(&self) -> impl Iterator<Item = &Peer> {
        self.peers.values().filter(|p| p.is_member())
    }
}
