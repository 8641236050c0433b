//! Typed differences between two [`State`]s, for `monk diff` and `monk history`.
//!
//! [`diff`] compares two states map by map; [`apply_diff`] replays a diff onto a state
//! and refuses it when the state is not the one the diff was taken from, so
//! `apply_diff(a, diff(a, b)) == b` is a checkable property. Sealed secret bytes are
//! part of the typed diff (so the property holds) but every human or JSON rendering
//! goes through [`SecretName`], which carries names only.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::command::{PeerId, SecretScope};
use crate::hub::HubSource;
use crate::overlay::Ipv4Net;
use crate::state::{Peer, Secret, State, Template, User};
use crate::workload::Workload;

/// One key of a map that differs between the two states.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "kebab-case")]
pub enum MapChange<K, V> {
    Added { key: K, after: V },
    Changed { key: K, before: V, after: V },
    Removed { key: K, before: V },
}

impl<K, V> MapChange<K, V> {
    pub fn key(&self) -> &K {
        match self {
            MapChange::Added { key, .. }
            | MapChange::Changed { key, .. }
            | MapChange::Removed { key, .. } => key,
        }
    }

    /// The value after the change, if the key still exists.
    pub fn after(&self) -> Option<&V> {
        match self {
            MapChange::Added { after, .. } | MapChange::Changed { after, .. } => Some(after),
            MapChange::Removed { .. } => None,
        }
    }

    /// The value before the change, if the key existed.
    pub fn before(&self) -> Option<&V> {
        match self {
            MapChange::Changed { before, .. } | MapChange::Removed { before, .. } => Some(before),
            MapChange::Added { .. } => None,
        }
    }
}

/// A scalar field that differs: `(before, after)`.
pub type FieldChange<T> = Option<(T, T)>;

/// Everything that differs between two states, each map in key order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateDiff {
    /// `(index, term)` of the last applied entry, before and after.
    pub applied: FieldChange<(u64, u64)>,
    pub cluster_name: FieldChange<Option<String>>,
    pub next_peer_id: FieldChange<PeerId>,
    pub peers: Vec<MapChange<PeerId, Peer>>,
    pub join_tokens: Vec<MapChange<String, u64>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub join_token_expiry: Vec<MapChange<String, u64>>,
    pub templates: Vec<MapChange<String, Template>>,
    pub secrets: Vec<MapChange<String, Secret>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workloads: Vec<MapChange<String, Workload>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<MapChange<String, User>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlay_range: FieldChange<Option<Ipv4Net>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hub: Vec<MapChange<String, HubSource>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<MapChange<String, crate::registry::Repository>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blobs: Vec<MapChange<String, crate::registry::BlobHolders>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub registries: Vec<MapChange<String, crate::RegistryCredential>>,
}

impl StateDiff {
    /// True when nothing but (possibly) the applied index moved.
    pub fn is_empty(&self) -> bool {
        self.cluster_name.is_none()
            && self.next_peer_id.is_none()
            && self.peers.is_empty()
            && self.join_tokens.is_empty()
            && self.join_token_expiry.is_empty()
            && self.templates.is_empty()
            && self.secrets.is_empty()
            && self.workloads.is_empty()
            && self.users.is_empty()
            && self.overlay_range.is_none()
            && self.hub.is_empty()
            && self.images.is_empty()
            && self.blobs.is_empty()
            && self.registries.is_empty()
    }
}

/// A secret as it may be shown: name and scope, never the sealed bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SecretName {
    pub name: String,
    pub scope: SecretScope,
    pub set_at_index: u64,
}

impl From<&Secret> for SecretName {
    fn from(secret: &Secret) -> SecretName {
        SecretName {
            name: secret.name.clone(),
            scope: secret.scope.clone(),
            set_at_index: secret.set_at_index,
        }
    }
}

/// Why a diff does not fit the state it is applied to.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("diff does not apply: {0}")]
pub struct DiffMismatch(pub String);

fn field<T: Clone + PartialEq>(a: &T, b: &T) -> FieldChange<T> {
    (a != b).then(|| (a.clone(), b.clone()))
}

fn map_changes<K: Ord + Clone, V: Clone + PartialEq>(
    a: &BTreeMap<K, V>,
    b: &BTreeMap<K, V>,
) -> Vec<MapChange<K, V>> {
    let mut out = Vec::new();
    for (key, before) in a {
        match b.get(key) {
            None => out.push(MapChange::Removed {
                key: key.clone(),
                before: before.clone(),
            }),
            Some(after) if after != before => out.push(MapChange::Changed {
                key: key.clone(),
                before: before.clone(),
                after: after.clone(),
            }),
            Some(_) => {}
        }
    }
    for (key, after) in b {
        if !a.contains_key(key) {
            out.push(MapChange::Added {
                key: key.clone(),
                after: after.clone(),
            });
        }
    }
    out.sort_by(|x, y| x.key().cmp(y.key()));
    out
}

/// What changed from `a` to `b`.
pub fn diff(a: &State, b: &State) -> StateDiff {
    StateDiff {
        applied: field(
            &(a.last_applied_index, a.last_applied_term),
            &(b.last_applied_index, b.last_applied_term),
        ),
        cluster_name: field(&a.cluster_name, &b.cluster_name),
        next_peer_id: field(&a.next_peer_id, &b.next_peer_id),
        peers: map_changes(&a.peers, &b.peers),
        join_tokens: map_changes(&a.join_tokens, &b.join_tokens),
        join_token_expiry: map_changes(&a.join_token_expiry, &b.join_token_expiry),
        templates: map_changes(&a.templates, &b.templates),
        secrets: map_changes(&a.secrets, &b.secrets),
        workloads: map_changes(&a.workloads, &b.workloads),
        users: map_changes(&a.users, &b.users),
        overlay_range: field(&a.overlay_range, &b.overlay_range),
        hub: map_changes(&a.hub, &b.hub),
        images: map_changes(&a.images, &b.images),
        blobs: map_changes(&a.blobs, &b.blobs),
        registries: map_changes(&a.registries, &b.registries),
    }
}

fn apply_field<T: Clone + PartialEq + std::fmt::Debug>(
    what: &str,
    target: &mut T,
    change: &FieldChange<T>,
) -> Result<(), DiffMismatch> {
    if let Some((before, after)) = change {
        if target != before {
            return Err(DiffMismatch(format!(
                "{what} is {target:?}, the diff expects {before:?}"
            )));
        }
        *target = after.clone();
    }
    Ok(())
}

fn apply_map<K: Ord + Clone + std::fmt::Debug, V: Clone + PartialEq>(
    what: &str,
    target: &mut BTreeMap<K, V>,
    changes: &[MapChange<K, V>],
) -> Result<(), DiffMismatch> {
    for change in changes {
        let key = change.key();
        if target.get(key) != change.before() {
            return Err(DiffMismatch(format!(
                "{what} {key:?} is not what the diff was taken from"
            )));
        }
        match change.after() {
            Some(after) => target.insert(key.clone(), after.clone()),
            None => target.remove(key),
        };
    }
    Ok(())
}

/// Applies `d` to `state`, checking each `before` value as it goes; on a mismatch the
/// state may be partly changed and must be discarded.
pub fn apply_diff(state: &mut State, d: &StateDiff) -> Result<(), DiffMismatch> {
    let mut applied = (state.last_applied_index, state.last_applied_term);
    apply_field("applied index", &mut applied, &d.applied)?;
    (state.last_applied_index, state.last_applied_term) = applied;
    apply_field("cluster name", &mut state.cluster_name, &d.cluster_name)?;
    apply_field("next peer id", &mut state.next_peer_id, &d.next_peer_id)?;
    apply_map("peer", &mut state.peers, &d.peers)?;
    apply_map("join token", &mut state.join_tokens, &d.join_tokens)?;
    apply_map(
        "join token expiry",
        &mut state.join_token_expiry,
        &d.join_token_expiry,
    )?;
    apply_map("template", &mut state.templates, &d.templates)?;
    apply_map("secret", &mut state.secrets, &d.secrets)?;
    apply_map("workload", &mut state.workloads, &d.workloads)?;
    apply_map("user", &mut state.users, &d.users)?;
    apply_field("overlay range", &mut state.overlay_range, &d.overlay_range)?;
    apply_map("hub source", &mut state.hub, &d.hub)?;
    apply_map("image repository", &mut state.images, &d.images)?;
    apply_map("blob", &mut state.blobs, &d.blobs)?;
    apply_map("registry credential", &mut state.registries, &d.registries)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::PeerStatus;

    fn peer(id: PeerId, status: PeerStatus) -> Peer {
        Peer {
            id,
            name: format!("p{id}"),
            address: format!("a:{id}"),
            tags: vec![],
            capacity: Default::default(),
            facts: Default::default(),
            status,
            joined_at_index: 1,
            overlay: None,
        }
    }

    #[test]
    fn changed_peer_is_one_change_and_round_trips() {
        let mut a = State {
            cluster_name: Some("c".into()),
            next_peer_id: 2,
            last_applied_index: 3,
            ..State::default()
        };
        a.peers.insert(1, peer(1, PeerStatus::Up));
        let mut b = a.clone();
        b.last_applied_index = 4;
        b.peers.insert(
            1,
            peer(
                1,
                PeerStatus::Down {
                    reason: "silent".into(),
                    since_index: 4,
                },
            ),
        );
        let d = diff(&a, &b);
        assert_eq!(d.peers.len(), 1);
        assert!(matches!(d.peers[0], MapChange::Changed { key: 1, .. }));
        assert!(!d.is_empty());
        let mut c = a.clone();
        apply_diff(&mut c, &d).unwrap();
        assert_eq!(c, b);
    }

    #[test]
    fn diff_from_another_state_is_refused() {
        let a = State::default();
        let b = State {
            cluster_name: Some("c".into()),
            ..State::default()
        };
        let mut other = State {
            cluster_name: Some("x".into()),
            ..State::default()
        };
        let err = apply_diff(&mut other, &diff(&a, &b)).unwrap_err();
        assert!(err.0.contains("cluster name"), "{err}");
    }
}
