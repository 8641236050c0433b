//! The JSON shapes the client API returns and `monk -o json` prints. Field names are a
//! stable contract for scripts.

use serde::{Deserialize, Serialize};

/// `monk cluster info`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InfoView {
    /// This peer's id; `None` before it is part of a cluster.
    pub id: Option<u64>,
    pub name: String,
    pub address: String,
    pub cluster: Option<String>,
    pub leader_id: Option<u64>,
    pub leader_address: Option<String>,
}

/// One row of `monk cluster peers`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerRow {
    pub id: u64,
    pub name: String,
    pub address: String,
    /// `leader`, `follower`, `learner`, or `none` (a member the Raft config no longer has).
    pub role: String,
    pub voter: bool,
    pub up: bool,
    pub tags: Vec<String>,
    /// Milliseconds since the leader last heard from the peer (leader's view).
    pub last_contact_ms: Option<u64>,
}

/// One follower in `monk system consensus`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowerProgress {
    pub id: u64,
    pub match_index: Option<u64>,
    pub lag: Option<u64>,
}

/// `monk system consensus`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsensusView {
    pub id: Option<u64>,
    pub state: String,
    pub term: u64,
    pub leader_id: Option<u64>,
    pub last_log_index: Option<u64>,
    pub commit_index: Option<u64>,
    pub applied_index: Option<u64>,
    pub snapshot_index: Option<u64>,
    pub purged_index: Option<u64>,
    pub state_digest: String,
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
    pub followers: Vec<FollowerProgress>,
}

/// One row of `monk list`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateRow {
    pub path: String,
    pub kind: String,
    pub generation: u64,
    pub loaded_at_index: u64,
}

/// The reply to a proposal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposeOutcome {
    pub index: u64,
    pub applied: monk_statemachine::Applied,
}

/// What a joining peer learns when admitted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admission {
    pub peer_id: u64,
    pub cluster_name: String,
    /// The cluster key sealed to the joiner's one-time public key, and the admitting
    /// peer's ephemeral public key (empty when the joiner sent no key).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_ephemeral: Vec<u8>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sealed_cluster_key: Vec<u8>,
}

/// The `state` query: the whole state as it serializes, with every secret's sealed bytes
/// left out (`"sealed": ""`), so not even ciphertext leaves the peer.
pub fn state_without_sealed_bytes(
    state: &monk_statemachine::State,
) -> serde_json::Result<serde_json::Value> {
    let mut value = serde_json::to_value(state)?;
    let secrets = value
        .get_mut("secrets")
        .and_then(serde_json::Value::as_object_mut);
    for secret in secrets.into_iter().flat_map(|s| s.values_mut()) {
        if let Some(sealed) = secret.get_mut("sealed") {
            *sealed = serde_json::Value::String(String::new());
        }
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use monk_statemachine::{
        apply, Capacity, Command, Entry, Proposal, SecretScope, State, FORMAT_VERSION,
    };

    fn applied(commands: Vec<Command>) -> State {
        let mut state = State::default();
        for (i, command) in commands.into_iter().enumerate() {
            let entry = Entry {
                index: i as u64 + 1,
                term: 1,
                proposal: Proposal {
                    format_version: FORMAT_VERSION,
                    proposed_at_ms: 0,
                    actor: "test".into(),
                    request_id: String::new(),
                    command,
                },
            };
            apply(&mut state, &entry).expect("applies");
        }
        state
    }

    #[test]
    fn state_query_shows_everything_but_sealed_bytes() {
        let state = applied(vec![
            Command::ClusterCreated {
                name: "c".into(),
                first_peer_name: "p1".into(),
                first_peer_address: "a:1".into(),
                tags: vec![],
                capacity: Capacity::default(),
                facts: None,
            },
            Command::SecretSet {
                name: "db".into(),
                scope: SecretScope::Global,
                sealed: b"SEALED".to_vec(),
            },
        ]);
        let shown = super::state_without_sealed_bytes(&state).unwrap();
        assert_eq!(shown["secrets"]["global:db"]["sealed"], "");
        assert_eq!(shown["secrets"]["global:db"]["name"], "db");
        let mut full = serde_json::to_value(&state).unwrap();
        assert_ne!(full["secrets"]["global:db"]["sealed"], "");
        full["secrets"]["global:db"]["sealed"] = "".into();
        assert_eq!(shown, full);
    }
}
