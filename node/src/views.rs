//! The JSON shapes the client API returns and `monk -o json` prints. Field names are a
//! stable contract for scripts.

use serde::{Deserialize, Serialize};

/// `monk cluster info` (and the peer's half of `monk version`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InfoView {
    /// This peer's id; `None` before it is part of a cluster.
    pub id: Option<u64>,
    pub name: String,
    pub address: String,
    pub cluster: Option<String>,
    pub leader_id: Option<u64>,
    pub leader_address: Option<String>,
    /// The peer's build (`monkd`'s crate version); empty from a peer older than the
    /// field.
    #[serde(default)]
    pub version: String,
    /// The entry format version the peer proposes with; 0 from a peer older than the
    /// field.
    #[serde(default)]
    pub format_version: u32,
}

/// A view made by this build carries this build's version and entry format version,
/// whoever fills in the rest.
impl Default for InfoView {
    fn default() -> InfoView {
        InfoView {
            id: None,
            name: String::new(),
            address: String::new(),
            cluster: None,
            leader_id: None,
            leader_address: None,
            version: env!("CARGO_PKG_VERSION").to_string(),
            format_version: monk_statemachine::FORMAT_VERSION,
        }
    }
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
    /// Its address on the overlay; `None` in a cluster without an overlay range (and
    /// from peers of builds before the overlay).
    #[serde(default)]
    pub overlay_address: Option<std::net::Ipv4Addr>,
    /// Seconds since the answering peer's WireGuard last shook hands with this peer;
    /// `None`: never, or no tunnel to it (itself, or no overlay).
    #[serde(default)]
    pub handshake_age_secs: Option<u64>,
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

/// One row of `monk list`: a loaded definition, or a Hub one no loaded namespace hides.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateRow {
    pub path: String,
    pub kind: String,
    /// 0 for a Hub definition (a kit is replaced whole, not by generations).
    pub generation: u64,
    /// Where a Hub definition's kit was last published.
    pub loaded_at_index: u64,
    /// `local` (loaded with `monk load`) or the Hub source it comes from; `local` from
    /// a peer older than the Hub.
    #[serde(default = "local_repository")]
    pub repository: String,
    /// The Hub kit's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// What `monk list` shows for a definition loaded with `monk load`.
pub const LOCAL_REPOSITORY: &str = "local";

fn local_repository() -> String {
    LOCAL_REPOSITORY.into()
}

/// One kit of `monk hub list`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubKitRow {
    pub source: String,
    /// The source's commit at its last sync, where it is a git repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    pub kit: String,
    #[serde(flatten)]
    pub meta: monk_statemachine::KitMeta,
    pub digest: String,
    pub published_at_index: u64,
    /// Its definitions: path and kind, and whether a loaded namespace hides it.
    pub definitions: Vec<HubDefinitionRow>,
}

/// One definition of a Hub kit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubDefinitionRow {
    pub path: String,
    pub kind: String,
    /// A namespace loaded with `monk load` hides it (or another source holds the path
    /// first).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shadowed: bool,
}

/// `monk hub info PATH`: a Hub definition, where it comes from, and whether lookups
/// use it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubTemplateView {
    pub path: String,
    pub kind: String,
    pub source: String,
    pub kit: String,
    #[serde(flatten)]
    pub meta: monk_statemachine::KitMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    pub digest: String,
    /// What `run` and inheritance use at this path instead, when not this: `local`
    /// (a loaded namespace hides it) or another source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadowed_by: Option<String>,
    pub definition: monk_scripting::tree::Tree,
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
    /// The cluster CA (certificate and key) and the certificate the leader issued the
    /// joiner for its TLS public key; empty when it sent none. They travel only
    /// inside the TLS session the joiner verified against the token's fingerprint.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ca_pem: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ca_key_pem: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub peer_cert_pem: String,
    /// Index of the `peer-joined` entry: the joiner answers once it has applied it
    /// (so it knows the cluster's users); 0 from an older leader.
    #[serde(default)]
    pub joined_at_index: u64,
}

/// The answer to `cluster new`: the peer, and the credential of the user `admin`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClusterNewView {
    pub info: InfoView,
    pub credential: crate::trust::credentials::Credential,
}

/// An outstanding join token as `monk cluster tokens` shows it (its hash: the token
/// itself is never stored).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinTokenRow {
    pub sha256: String,
    pub issued_at_index: u64,
    /// Milliseconds since the Unix epoch; `None` for a token that never expires
    /// (issued before expiry existed).
    pub expires_at_ms: Option<u64>,
}

/// A user as `monk user list` shows it (never its credential).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRow {
    pub name: String,
    pub role: monk_statemachine::Role,
    pub added_at_index: u64,
}

/// One member's overlay interface, as `monk system overlay` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverlayRow {
    pub id: u64,
    pub name: String,
    /// The overlay address the state gives it.
    pub overlay_address: Option<std::net::Ipv4Addr>,
    /// What the peer itself reports; `None` when it did not answer (`error`).
    pub status: Option<crate::overlay::executor::OverlayStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
