//! The one printable view of the state (invariant 7: secrets never in plaintext, and
//! not even their sealed bytes leave a peer in a query or an audit): every field of
//! [`State`] and of a [`StateDiff`], with secrets by name, scope and index only.
//!
//! Audit output goes through [`RedactedState`] and [`RedactedDiff`]; a peer's state
//! query should too. Both borrow and serialize directly (not through
//! `serde_json::Value`), so definitions keep their key order.

use std::collections::BTreeMap;

use monk_statemachine::{
    BlobHolders, HubSource, Ipv4Net, MapChange, Peer, PeerId, Repository, Role, Secret, SecretName,
    State, StateDiff, Template, User, Workload,
};
use serde::Serialize;

/// A [`State`] as it may be printed: every field, secrets by name only.
#[derive(Clone, Debug, Serialize)]
pub struct RedactedState<'a> {
    pub last_applied_index: u64,
    pub last_applied_term: u64,
    pub cluster_name: Option<&'a str>,
    pub next_peer_id: PeerId,
    pub peers: &'a BTreeMap<PeerId, Peer>,
    pub join_tokens: &'a BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub join_token_expiry: &'a BTreeMap<String, u64>,
    pub templates: &'a BTreeMap<String, Template>,
    pub secrets: BTreeMap<&'a str, SecretName>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub workloads: &'a BTreeMap<String, Workload>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub users: BTreeMap<&'a str, UserRole>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overlay_range: Option<Ipv4Net>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub hub: &'a BTreeMap<String, HubSource>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub images: &'a BTreeMap<String, Repository>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub blobs: &'a BTreeMap<String, BlobHolders>,
}

/// A user as it may be shown: its role and when it got it, never its credential's hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UserRole {
    pub role: Role,
    pub added_at_index: u64,
}

impl From<&User> for UserRole {
    fn from(user: &User) -> UserRole {
        UserRole {
            role: user.role,
            added_at_index: user.added_at_index,
        }
    }
}

impl<'a> RedactedState<'a> {
    pub fn of(state: &'a State) -> RedactedState<'a> {
        RedactedState {
            last_applied_index: state.last_applied_index(),
            last_applied_term: state.last_applied_term(),
            cluster_name: state.cluster_name(),
            next_peer_id: state.next_peer_id(),
            peers: state.peers(),
            join_tokens: state.join_tokens(),
            join_token_expiry: state.join_token_expiry(),
            templates: state.templates(),
            secrets: state
                .secrets()
                .iter()
                .map(|(k, s)| (k.as_str(), SecretName::from(s)))
                .collect(),
            workloads: state.workloads(),
            users: state
                .users()
                .iter()
                .map(|(k, u)| (k.as_str(), UserRole::from(u)))
                .collect(),
            overlay_range: state.overlay_range(),
            hub: state.hub(),
            images: state.images(),
            blobs: state.blobs(),
        }
    }
}

/// `(index, term)` of an applied entry.
type IndexTerm = (u64, u64);

/// A [`StateDiff`] as it may be printed: secrets by name only.
#[derive(Clone, Debug, Serialize)]
pub struct RedactedDiff<'a> {
    pub applied: &'a Option<(IndexTerm, IndexTerm)>,
    pub cluster_name: &'a Option<(Option<String>, Option<String>)>,
    pub next_peer_id: &'a Option<(PeerId, PeerId)>,
    pub peers: &'a [MapChange<PeerId, Peer>],
    pub join_tokens: &'a [MapChange<String, u64>],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub join_token_expiry: &'a [MapChange<String, u64>],
    pub templates: &'a [MapChange<String, Template>],
    pub secrets: Vec<MapChange<String, SecretName>>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub workloads: &'a [MapChange<String, Workload>],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub users: Vec<MapChange<String, UserRole>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overlay_range: &'a Option<(Option<Ipv4Net>, Option<Ipv4Net>)>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub hub: &'a [MapChange<String, HubSource>],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub images: &'a [MapChange<String, Repository>],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub blobs: &'a [MapChange<String, BlobHolders>],
}

/// A secret's change with its sealed bytes dropped.
pub fn secret_change(change: &MapChange<String, Secret>) -> MapChange<String, SecretName> {
    redact_change(change)
}

/// A map change with each value replaced by its printable form.
fn redact_change<V, P: for<'v> From<&'v V>>(change: &MapChange<String, V>) -> MapChange<String, P> {
    match change {
        MapChange::Added { key, after } => MapChange::Added {
            key: key.clone(),
            after: after.into(),
        },
        MapChange::Changed { key, before, after } => MapChange::Changed {
            key: key.clone(),
            before: before.into(),
            after: after.into(),
        },
        MapChange::Removed { key, before } => MapChange::Removed {
            key: key.clone(),
            before: before.into(),
        },
    }
}

impl<'a> RedactedDiff<'a> {
    pub fn of(d: &'a StateDiff) -> RedactedDiff<'a> {
        RedactedDiff {
            applied: &d.applied,
            cluster_name: &d.cluster_name,
            next_peer_id: &d.next_peer_id,
            peers: &d.peers,
            join_tokens: &d.join_tokens,
            join_token_expiry: &d.join_token_expiry,
            templates: &d.templates,
            secrets: d.secrets.iter().map(secret_change).collect(),
            workloads: &d.workloads,
            users: d.users.iter().map(redact_change).collect(),
            overlay_range: &d.overlay_range,
            hub: &d.hub,
            images: &d.images,
            blobs: &d.blobs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys<T: Serialize>(value: &T) -> Vec<String> {
        let value = serde_json::to_value(value).unwrap();
        value
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Every field of the state is shown (sealed bytes as names): a field added to
    /// `State` (workloads) must be added to `RedactedState` too.
    #[test]
    fn redacted_state_and_diff_cover_every_field() {
        let state = State::default();
        assert_eq!(keys(&state), keys(&RedactedState::of(&state)));
        let d = StateDiff::default();
        assert_eq!(keys(&d), keys(&RedactedDiff::of(&d)));
    }

    #[test]
    fn sealed_bytes_never_show() {
        use monk_statemachine::{apply, Capacity, Command, Entry, Proposal, SecretScope};
        let mut state = State::default();
        let created = Command::ClusterCreated {
            name: "c".into(),
            first_peer_name: "p1".into(),
            first_peer_address: "a:1".into(),
            tags: vec![],
            capacity: Capacity::default(),
            facts: None,
            admin_token_sha256: None,
            overlay_range: Some("10.211.0.0/16".parse().unwrap()),
            overlay: None,
            open_network: false,
        };
        let secret = Command::SecretSet {
            name: "db".into(),
            scope: SecretScope::Global,
            sealed: b"SEALEDBYTES".to_vec(),
        };
        for (index, command) in [(1, created), (3, secret)] {
            let proposal = Proposal {
                format_version: monk_statemachine::FORMAT_VERSION,
                proposed_at_ms: 0,
                actor: "test".into(),
                request_id: String::new(),
                command,
            };
            let entry = Entry {
                index,
                term: 1,
                proposal,
            };
            apply(&mut state, &entry).unwrap();
        }
        assert!(state.secret("db", &SecretScope::Global).is_some());
        let text = serde_json::to_string(&RedactedState::of(&state)).unwrap();
        assert!(text.contains("\"db\""), "{text}");
        assert!(!text.contains("sealed"), "{text}");
        assert!(!text.contains("5345414c45444259544553"), "{text}");
        // Fields left out while empty (the overlay range) show once set.
        assert_eq!(keys(&state), keys(&RedactedState::of(&state)));
    }
}
