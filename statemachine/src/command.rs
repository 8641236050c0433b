//! Commands: the only way cluster state changes. Kinds are only ever appended; an old
//! kind keeps its handler forever so old logs replay (invariant "replayable forever").
//!
//! Why one file of this size: `Command` is one enum, and its `kind`, `summary` and
//! `paths` are exhaustive matches over it kept beside it, so a new kind is written in
//! one place and the build points at every match that must name it.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use monk_scripting::tree::Tree;
use serde::{Deserialize, Serialize};

use crate::hub::{HubKit, HubKitRef};
use crate::overlay::{Ipv4Net, OverlayIdentity};

/// A peer's id in the cluster, assigned by the state machine when it joins (the peer
/// that creates the cluster is always 1).
pub type PeerId = u64;

/// What a user, an executor or the leader asks the cluster to do, with who asked and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// Entry format version; see [`crate::FORMAT_VERSION`].
    pub format_version: u32,
    /// Proposer's wall clock in milliseconds since the Unix epoch: display and audit only.
    pub proposed_at_ms: u64,
    /// Who proposed it: `cli:<user>@<host>`, `peer:<id>` for leader-driven liveness, ...
    pub actor: String,
    /// Client request id, so a retried request can be recognised in audit.
    pub request_id: String,
    pub command: Command,
}

/// Resources a peer offers to the scheduler.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Capacity {
    pub cpu_millis: u64,
    pub memory_mb: u64,
}

/// What a peer's machine has, as its `monkd` measured it (reported at start and when it
/// changes). Zero means "not reported"; `requirements` are checked against these.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct PeerFacts {
    /// CPU cores, in millicores (4 cores = 4000).
    pub cpu_millis: u64,
    /// Memory, in MB.
    pub memory_mb: u64,
    /// GPUs (from `nvidia-smi` where present).
    pub gpus: u32,
    /// Free disk on the filesystem of the peer's data dir, in GB.
    pub disk_free_gb: u64,
}

impl PeerFacts {
    pub fn is_unknown(&self) -> bool {
        *self == PeerFacts::default()
    }
}

/// A host port a replica publishes: a resource of the peer it runs on, so two replicas
/// that publish the same one are never placed on one peer.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct HostPort {
    pub port: u16,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    /// The host address it binds; `None` is every address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
}

impl HostPort {
    /// Whether two bindings cannot coexist on one host: same port and protocol, and an
    /// address in common (a wildcard address overlaps every address).
    pub fn conflicts_with(&self, other: &HostPort) -> bool {
        let wildcard = |ip: &Option<String>| {
            ip.as_deref()
                .is_none_or(|ip| matches!(ip, "0.0.0.0" | "::" | ""))
        };
        self.port == other.port
            && self.protocol == other.protocol
            && (wildcard(&self.ip) || wildcard(&other.ip) || self.ip == other.ip)
    }
}

impl std::fmt::Display for HostPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.ip {
            Some(ip) => write!(f, "{ip}:{}/{}", self.port, self.protocol),
            None => write!(f, "{}/{}", self.port, self.protocol),
        }
    }
}

/// What the peer that received a `run`/`update` evaluated for one runnable before
/// proposing it: the values of script-valued placement fields and the host ports its
/// containers publish. They travel in the command so `apply` never runs a script and a
/// replay places replicas exactly as the cluster did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evaluated {
    /// The number a script-valued `scale.value` gave (before `scale.min/max`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    /// The tag a script-valued `affinity.tag` gave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The peer name a script-valued `affinity.name` gave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Host ports the runnable's containers publish (`ports`, published services).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_ports: Vec<HostPort>,
    /// Why the ports could not be worked out (the executor will report the same).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports_error: Option<String>,
}

/// [`Evaluated`] values by runnable path (a group's members each have theirs).
pub type EvaluatedByPath = BTreeMap<String, Evaluated>;

/// One top-level MonkScript definition as written, keyed by `namespace/name`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadedTemplate {
    pub path: String,
    /// `runnable`, `group`, `entity`, `module`, `service`, `abstract`, or the entity type
    /// path of an entity instance.
    pub kind: String,
    pub definition: Tree,
}

/// Who may read a secret: every permitted runnable, or one runnable/entity path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "scope", content = "path")]
pub enum SecretScope {
    Global,
    Entity(String),
}

/// What a user may do, each role including the ones before it: a viewer reads (lists,
/// dumps, `ps`, `describe`, logs, events, audit without secrets); an operator also
/// runs, updates, scales, stops and execs; an admin also manages secrets, users, join
/// tokens, peers and raw data exports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl Role {
    /// Every role, weakest first.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// The role named `name` (`viewer`, `operator`, `admin`).
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every cluster mutation. Serialized with an explicit `kind` tag so logs stay readable
/// and an unknown kind from a newer build is reported by name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Command {
    /// Does nothing; used to commit a barrier and in benchmarks.
    Noop,
    /// The first peer makes itself a one-voter cluster; it becomes peer 1.
    ClusterCreated {
        name: String,
        first_peer_name: String,
        first_peer_address: String,
        tags: Vec<String>,
        capacity: Capacity,
        /// The first peer's machine, as it measured it; `None` in entries written
        /// before facts existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        facts: Option<PeerFacts>,
        /// Hex SHA-256 of the credential of the user `admin`, the one who created the
        /// cluster; `None` in entries written before users existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        admin_token_sha256: Option<String>,
        /// The cluster's overlay range (`monk cluster new --overlay`); `None` in entries
        /// written before the overlay existed, and then the default when `overlay` is set.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        overlay_range: Option<Ipv4Net>,
        /// The first peer's WireGuard public key and endpoint; `None` in entries written
        /// before the overlay existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        overlay: Option<OverlayIdentity>,
        /// `monk cluster new --open-network`: workloads reach each other without a
        /// declared connection (the overlay's firewall lets all of them through).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        open_network: bool,
    },
    /// A join token was issued; only its SHA-256 (hex) is stored, never the token.
    JoinTokenIssued {
        token_sha256: String,
        /// When the token stops admitting peers (the issuer's clock plus `--ttl`), in
        /// milliseconds since the Unix epoch; `None` in entries written before expiry.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_at_ms: Option<u64>,
    },
    /// `monk cluster token revoke`: the token admits no one any more.
    JoinTokenRevoked {
        token_sha256: String,
    },
    /// A peer presented a valid token and joins; the state machine assigns its id.
    PeerJoined {
        name: String,
        address: String,
        token_sha256: String,
        tags: Vec<String>,
        capacity: Capacity,
        /// The joiner's machine, as it measured it (see `cluster-created`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        facts: Option<PeerFacts>,
        /// The admitting leader's clock when it admitted the peer, checked against the
        /// token's expiry in `apply` (a value in the command, so every peer decides the
        /// same); `None` in entries written before expiry.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        admitted_at_ms: Option<u64>,
        /// The joiner's WireGuard public key and endpoint; `None` in entries written
        /// before the overlay existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        overlay: Option<OverlayIdentity>,
    },
    /// A peer left the cluster on purpose.
    PeerLeft {
        peer: PeerId,
    },
    /// The leader saw no heartbeat from the peer for too long.
    PeerDown {
        peer: PeerId,
        reason: String,
    },
    /// The peer is heard from again.
    PeerUp {
        peer: PeerId,
    },
    /// Definitions loaded by `monk load`, replacing earlier ones at the same paths.
    TemplatesLoaded {
        templates: Vec<LoadedTemplate>,
    },
    TemplatesRemoved {
        paths: Vec<String>,
    },
    /// A secret, sealed by the proposing peer; plaintext never enters the log.
    SecretSet {
        name: String,
        scope: SecretScope,
        sealed: Vec<u8>,
    },
    SecretRemoved {
        name: String,
        scope: SecretScope,
    },
    /// `monk run PATH`: start a runnable, or every runnable of a group. The state
    /// machine resolves the definition against the stored templates and places the
    /// replicas; `tag`/`peer` narrow the peers it may use.
    WorkloadRun {
        path: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tag: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peer: Option<String>,
        /// Runtime variables (`--set name=value`), by variable name.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        overrides: BTreeMap<String, String>,
        /// Filled in by the receiving peer; `None` in entries written before it existed
        /// (then only literal placement fields count and no host port is known).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        evaluated: Option<EvaluatedByPath>,
    },
    /// `monk update PATH`: take the definition as it is loaded now (and new overrides,
    /// merged over the old ones); a changed definition starts a new generation.
    WorkloadUpdate {
        path: String,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        overrides: BTreeMap<String, String>,
        /// As for `workload-run`; `None` keeps what the workload had.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        evaluated: Option<EvaluatedByPath>,
    },
    /// `monk stop PATH`: keep the workload and its placement, stop its containers.
    WorkloadStop {
        path: String,
    },
    /// `monk purge PATH`: forget the workload; executors remove its containers.
    WorkloadPurge {
        path: String,
    },
    /// `monk scale PATH N`: run N replicas of a runnable.
    WorkloadScale {
        path: String,
        replicas: u32,
    },
    /// `monk restart PATH`: a new generation with the same definition, so every
    /// container is replaced; a stopped workload runs again.
    WorkloadRestart {
        path: String,
    },
    /// An executor's observation of one replica on its peer.
    WorkloadReport {
        peer: PeerId,
        path: String,
        replica: u32,
        generation: u64,
        status: InstanceStatus,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        message: String,
        /// Each running container's address on the peer's container network, by
        /// container name: what the peers' DNS answers for the replica's names.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        addresses: BTreeMap<String, Ipv4Addr>,
    },
    /// `monk cluster tag PEER +t -u`: the peer's tags change; replicas that no longer
    /// fit move, pending ones may land.
    PeerTagged {
        peer: PeerId,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        add: Vec<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        remove: Vec<String>,
    },
    /// A peer measured its machine (at start, and when that changed).
    PeerFactsReported {
        peer: PeerId,
        facts: PeerFacts,
    },
    /// `monk user add NAME --role R`: a user and the SHA-256 (hex) of its credential;
    /// the credential itself never enters the log. Replaces a user of the same name
    /// (a new credential, or a new role).
    UserAdded {
        name: String,
        role: Role,
        token_sha256: String,
    },
    /// `monk user remove NAME`: the user's credential stops working on every peer.
    UserRemoved {
        name: String,
    },
    /// A peer's WireGuard public key or underlay endpoint changed (it proposes this at
    /// start when they differ from the state); in a cluster created before the overlay
    /// existed, the first one also sets the default range.
    PeerOverlayChanged {
        peer: PeerId,
        public_key: String,
        endpoint: String,
    },
    /// `monk hub add`, `monkd --hub-source`: kits of a Hub source enter the catalog
    /// (each replaces the source's kit of the same name). A sync proposes only kits
    /// whose digest changed, in commands of bounded size (`crate::hub`).
    HubKitsPublished {
        source: String,
        kits: Vec<HubKit>,
    },
    /// The end of a sync: the source's kits are exactly `kits` (each published
    /// before, with that digest; others are forgotten), read at `commit` where the
    /// source is a git repository.
    HubSourceSynced {
        source: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        commit: Option<String>,
        kits: Vec<HubKitRef>,
    },
    /// `monk hub rm`: the source and its kits leave the catalog (running workloads
    /// keep the definitions they were started with).
    HubSourceRemoved {
        source: String,
    },
    /// The entity executor of the peer hosting an entity instance finished the verb at
    /// the head of its `todo` (or a readiness check): the saved state it returned, or
    /// why it failed. Scripts never run in `apply`; this result is all the log keeps.
    EntityVerbDone {
        peer: PeerId,
        path: String,
        generation: u64,
        /// The instance's `step` when the verb started.
        step: u64,
        verb: String,
        /// The JSON text of the object the script returned, replacing the saved state;
        /// `None` keeps it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        state: Option<String>,
        /// Why the verb failed (naming the instance and verb); `None` is success.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// For a custom verb (`monk do`): the names of its arguments, never their
        /// values (which may be secret).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        args: Vec<String>,
    },
    /// The peer hosting a runnable's replica 0 ran one of its `actions` (`monk do`):
    /// which, with which argument names (never values), and whether it failed.
    ActionDone {
        peer: PeerId,
        path: String,
        action: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        args: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A manifest was pushed to `peer`'s registry (`crate::registry`), which holds
    /// every blob it names: `tag` now names it (none: pushed by digest, for an index).
    ImagePushed {
        repository: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tag: Option<String>,
        /// `sha256:` and the hex SHA-256 of `manifest`; `apply` recomputes it.
        digest: String,
        media_type: String,
        /// The manifest's bytes as pushed.
        manifest: String,
        /// The config and layers it names, as the proposer parsed them.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        blobs: Vec<crate::registry::BlobRef>,
        /// The manifests an image index names (each pushed before it).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        manifests: Vec<String>,
        peer: PeerId,
    },
    /// `monk images rm REPO:TAG`: the tag goes, and with it every manifest and blob
    /// record nothing else reaches (each peer then deletes those blobs).
    ImageRemoved {
        repository: String,
        tag: String,
    },
    /// `peer` fetched these blobs from another peer and holds them now.
    BlobsHeld {
        peer: PeerId,
        blobs: Vec<String>,
    },
    /// `monk registry add HOST`: pulls from `host` (canonical, see
    /// `crate::pull_credentials`) log in as `username` with the password held by the
    /// global secret `password_secret` (its name only: the password stays sealed).
    RegistryCredentialSet {
        host: String,
        username: String,
        password_secret: String,
    },
    /// `monk registry rm HOST`: pulls from `host` go without credentials again.
    RegistryCredentialRemoved {
        host: String,
    },
}

/// What an executor saw of one replica's containers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceStatus {
    /// Being created (image checked, containers created, not all running yet).
    Starting,
    /// Every container runs.
    Running,
    /// Stopped on purpose (`monk stop`).
    Stopped,
    /// A container exited on its own.
    Exited,
    /// The executor could not create or start it (missing image, bad spec...).
    Failed,
    /// Running and its readiness check passes.
    Ready,
}

impl InstanceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceStatus::Starting => "starting",
            InstanceStatus::Running => "running",
            InstanceStatus::Stopped => "stopped",
            InstanceStatus::Exited => "exited",
            InstanceStatus::Failed => "failed",
            InstanceStatus::Ready => "ready",
        }
    }
}

impl Command {
    /// The command's kind tag as it appears in the log (`peer-joined`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Command::Noop => "noop",
            Command::ClusterCreated { .. } => "cluster-created",
            Command::JoinTokenIssued { .. } => "join-token-issued",
            Command::JoinTokenRevoked { .. } => "join-token-revoked",
            Command::PeerJoined { .. } => "peer-joined",
            Command::PeerLeft { .. } => "peer-left",
            Command::PeerDown { .. } => "peer-down",
            Command::PeerUp { .. } => "peer-up",
            Command::TemplatesLoaded { .. } => "templates-loaded",
            Command::TemplatesRemoved { .. } => "templates-removed",
            Command::SecretSet { .. } => "secret-set",
            Command::SecretRemoved { .. } => "secret-removed",
            Command::WorkloadRun { .. } => "workload-run",
            Command::WorkloadUpdate { .. } => "workload-update",
            Command::WorkloadStop { .. } => "workload-stop",
            Command::WorkloadPurge { .. } => "workload-purge",
            Command::WorkloadScale { .. } => "workload-scale",
            Command::WorkloadReport { .. } => "workload-report",
            Command::WorkloadRestart { .. } => "workload-restart",
            Command::PeerTagged { .. } => "peer-tagged",
            Command::PeerFactsReported { .. } => "peer-facts-reported",
            Command::PeerOverlayChanged { .. } => "peer-overlay-changed",
            Command::UserAdded { .. } => "user-added",
            Command::UserRemoved { .. } => "user-removed",
            Command::HubKitsPublished { .. } => "hub-kits-published",
            Command::HubSourceSynced { .. } => "hub-source-synced",
            Command::HubSourceRemoved { .. } => "hub-source-removed",
            Command::EntityVerbDone { .. } => "entity-verb-done",
            Command::ActionDone { .. } => "action-done",
            Command::ImagePushed { .. } => "image-pushed",
            Command::ImageRemoved { .. } => "image-removed",
            Command::BlobsHeld { .. } => "blobs-held",
            Command::RegistryCredentialSet { .. } => "registry-credential-set",
            Command::RegistryCredentialRemoved { .. } => "registry-credential-removed",
        }
    }

    /// One line for humans; never contains secret material.
    pub fn summary(&self) -> String {
        match self {
            Command::Noop => "no-op".into(),
            Command::ClusterCreated {
                name,
                first_peer_name,
                first_peer_address,
                ..
            } => {
                format!("cluster {name:?} created by {first_peer_name} ({first_peer_address})")
            }
            Command::JoinTokenRevoked { token_sha256 } => {
                format!("join token {}… revoked", short(token_sha256))
            }
            Command::JoinTokenIssued { token_sha256, .. } => {
                format!("join token {}… issued", short(token_sha256))
            }
            Command::PeerJoined {
                name,
                address,
                tags,
                ..
            } => format!("peer {name} ({address}) joined, tags [{}]", tags.join(",")),
            Command::PeerLeft { peer } => format!("peer {peer} left"),
            Command::PeerDown { peer, reason } => format!("peer {peer} declared down: {reason}"),
            Command::PeerUp { peer } => format!("peer {peer} up again"),
            Command::TemplatesLoaded { templates } => {
                let paths: Vec<&str> = templates.iter().map(|t| t.path.as_str()).collect();
                format!("{} template(s) loaded: {}", templates.len(), elide(&paths))
            }
            Command::TemplatesRemoved { paths } => {
                let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
                format!("{} template(s) removed: {}", paths.len(), elide(&paths))
            }
            Command::SecretSet { name, scope, .. } => {
                format!("secret {name} set ({})", scope_text(scope))
            }
            Command::SecretRemoved { name, scope } => {
                format!("secret {name} removed ({})", scope_text(scope))
            }
            Command::WorkloadRun {
                path,
                tag,
                peer,
                overrides,
                evaluated,
            } => {
                let mut line = format!("run {path}");
                if let Some(tag) = tag {
                    line.push_str(&format!(" on tag {tag}"));
                }
                if let Some(peer) = peer {
                    line.push_str(&format!(" on peer {peer}"));
                }
                if !overrides.is_empty() {
                    let names: Vec<&str> = overrides.keys().map(String::as_str).collect();
                    line.push_str(&format!(" with {}", elide(&names)));
                }
                line.push_str(&evaluated_summary(evaluated.as_ref()));
                line
            }
            Command::WorkloadUpdate {
                path,
                overrides,
                evaluated,
            } => {
                let names: Vec<&str> = overrides.keys().map(String::as_str).collect();
                let line = match names.is_empty() {
                    true => format!("update {path}"),
                    false => format!("update {path} with {}", elide(&names)),
                };
                line + &evaluated_summary(evaluated.as_ref())
            }
            Command::WorkloadStop { path } => format!("stop {path}"),
            Command::WorkloadPurge { path } => format!("purge {path}"),
            Command::WorkloadScale { path, replicas } => format!("scale {path} to {replicas}"),
            Command::WorkloadRestart { path } => format!("restart {path}"),
            Command::WorkloadReport {
                peer,
                path,
                replica,
                generation,
                status,
                message,
                ..
            } => {
                let mut line = format!(
                    "peer {peer}: {path}#{replica} gen {generation} {}",
                    status.as_str()
                );
                if !message.is_empty() {
                    line.push_str(": ");
                    line.push_str(message);
                }
                line
            }
            Command::PeerTagged { peer, add, remove } => {
                let changes: Vec<String> = add
                    .iter()
                    .map(|t| format!("+{t}"))
                    .chain(remove.iter().map(|t| format!("-{t}")))
                    .collect();
                format!("peer {peer} tags {}", changes.join(" "))
            }
            Command::PeerFactsReported { peer, facts } => format!(
                "peer {peer} has {} mCPU, {} MB, {} GPU(s), {} GB disk free",
                facts.cpu_millis, facts.memory_mb, facts.gpus, facts.disk_free_gb
            ),
            Command::UserAdded { name, role, .. } => format!("user {name} added as {role}"),
            Command::UserRemoved { name } => format!("user {name} removed"),
            Command::PeerOverlayChanged {
                peer,
                public_key,
                endpoint,
            } => format!(
                "peer {peer} is on the overlay with key {}… at {endpoint}",
                short(public_key)
            ),
            Command::HubKitsPublished { source, kits } => {
                let names: Vec<&str> = kits.iter().map(|k| k.name.as_str()).collect();
                let definitions: usize = kits.iter().map(|k| k.templates.len()).sum();
                format!(
                    "hub {source}: {} kit(s) published ({definitions} definitions): {}",
                    kits.len(),
                    elide(&names)
                )
            }
            Command::HubSourceSynced {
                source,
                commit,
                kits,
            } => {
                let at = commit
                    .as_deref()
                    .map(|c| format!(" at {}", short(c)))
                    .unwrap_or_default();
                format!("hub {source} synced{at}: {} kit(s)", kits.len())
            }
            Command::HubSourceRemoved { source } => format!("hub {source} removed"),
            Command::EntityVerbDone {
                peer,
                path,
                generation,
                verb,
                state,
                error,
                args,
                ..
            } => {
                let verb = match args.is_empty() {
                    true => verb.clone(),
                    false => format!("{verb}({})", args.join(", ")),
                };
                let outcome = match (error, state) {
                    (Some(e), _) => format!("failed: {e}"),
                    (None, Some(s)) => format!("ok, state saved ({} bytes)", s.len()),
                    (None, None) => "ok, state kept".into(),
                };
                format!("peer {peer}: {path} gen {generation} {verb} {outcome}")
            }
            Command::ActionDone {
                peer,
                path,
                action,
                args,
                error,
            } => {
                let outcome = match error {
                    Some(e) => format!("failed: {e}"),
                    None => "ok".into(),
                };
                format!(
                    "peer {peer}: {path} action {action}({}) {outcome}",
                    args.join(", ")
                )
            }
            Command::ImagePushed {
                repository,
                tag,
                digest,
                blobs,
                peer,
                ..
            } => {
                let size: u64 = blobs.iter().map(|b| b.size).sum();
                let name = match tag {
                    Some(tag) => format!("{repository}:{tag}"),
                    None => repository.clone(),
                };
                format!(
                    "image {name} pushed to peer {peer}: {digest}, {} blob(s), {size} bytes",
                    blobs.len()
                )
            }
            Command::ImageRemoved { repository, tag } => {
                format!("image {repository}:{tag} removed")
            }
            Command::BlobsHeld { peer, blobs } => {
                let short: Vec<&str> = blobs
                    .iter()
                    .map(|d| short(d.trim_start_matches("sha256:")))
                    .collect();
                format!("peer {peer} holds blob(s) {}", elide(&short))
            }
            Command::RegistryCredentialSet {
                host,
                username,
                password_secret,
            } => format!(
                "registry {host}: pulls log in as {username} with the password in secret {password_secret}"
            ),
            Command::RegistryCredentialRemoved { host } => {
                format!("registry {host}: pulls go without credentials")
            }
        }
    }

    /// Entity paths this command names, for `monk history` and `monk log --path`. No
    /// wildcard arm: a new kind must say which paths it names (see also
    /// `monk_audit::reach`).
    pub fn paths(&self) -> Vec<&str> {
        match self {
            Command::TemplatesLoaded { templates } => {
                templates.iter().map(|t| t.path.as_str()).collect()
            }
            Command::TemplatesRemoved { paths } => paths.iter().map(String::as_str).collect(),
            Command::HubKitsPublished { kits, .. } => kits
                .iter()
                .flat_map(|k| k.templates.iter().map(|t| t.path.as_str()))
                .collect(),
            Command::SecretSet {
                scope: SecretScope::Entity(p),
                ..
            }
            | Command::SecretRemoved {
                scope: SecretScope::Entity(p),
                ..
            } => {
                vec![p.as_str()]
            }
            Command::WorkloadRun { path, .. }
            | Command::WorkloadUpdate { path, .. }
            | Command::WorkloadStop { path }
            | Command::WorkloadPurge { path }
            | Command::WorkloadScale { path, .. }
            | Command::WorkloadRestart { path }
            | Command::WorkloadReport { path, .. }
            | Command::EntityVerbDone { path, .. }
            | Command::ActionDone { path, .. } => vec![path.as_str()],
            Command::Noop
            | Command::ClusterCreated { .. }
            | Command::JoinTokenIssued { .. }
            | Command::JoinTokenRevoked { .. }
            | Command::PeerJoined { .. }
            | Command::PeerLeft { .. }
            | Command::PeerDown { .. }
            | Command::PeerUp { .. }
            | Command::SecretSet {
                scope: SecretScope::Global,
                ..
            }
            | Command::SecretRemoved {
                scope: SecretScope::Global,
                ..
            }
            | Command::PeerTagged { .. }
            | Command::PeerFactsReported { .. }
            | Command::UserAdded { .. }
            | Command::UserRemoved { .. }
            | Command::PeerOverlayChanged { .. }
            // Forgets kits by name; their paths are in the `hub-kits-published` before.
            | Command::HubSourceSynced { .. }
            | Command::HubSourceRemoved { .. }
            // Images are not entities: `monk log` shows them by their summary.
            | Command::ImagePushed { .. }
            | Command::ImageRemoved { .. }
            | Command::BlobsHeld { .. }
            // Registries are not entities either.
            | Command::RegistryCredentialSet { .. }
            | Command::RegistryCredentialRemoved { .. } => Vec::new(),
        }
    }
}

/// What the proposer evaluated, for a summary line: ` (evaluated: ns/web 3 replicas,
/// tag zone-us, host ports 18080/tcp)`; empty when nothing script-valued or published.
fn evaluated_summary(evaluated: Option<&EvaluatedByPath>) -> String {
    let parts: Vec<String> = evaluated
        .into_iter()
        .flatten()
        .filter_map(|(path, e)| {
            let mut facts = Vec::new();
            if let Some(n) = e.replicas {
                facts.push(format!("{n} replicas"));
            }
            if let Some(tag) = &e.tag {
                facts.push(format!("tag {tag}"));
            }
            if let Some(name) = &e.name {
                facts.push(format!("peer {name}"));
            }
            if !e.host_ports.is_empty() {
                let ports: Vec<String> = e.host_ports.iter().map(ToString::to_string).collect();
                facts.push(format!("host ports {}", ports.join(" ")));
            }
            (!facts.is_empty()).then(|| format!("{path} {}", facts.join(", ")))
        })
        .collect();
    match parts.is_empty() {
        true => String::new(),
        false => format!(" (evaluated: {})", parts.join("; ")),
    }
}

fn short(hex: &str) -> &str {
    hex.get(..12).unwrap_or(hex)
}

fn scope_text(scope: &SecretScope) -> String {
    match scope {
        SecretScope::Global => "global".into(),
        SecretScope::Entity(p) => format!("for {p}"),
    }
}

/// At most this many paths are listed in a summary line before eliding.
const SUMMARY_PATHS_MAX: usize = 4;

fn elide(paths: &[&str]) -> String {
    if paths.len() <= SUMMARY_PATHS_MAX {
        return paths.join(", ");
    }
    format!(
        "{}, … (+{})",
        paths[..SUMMARY_PATHS_MAX].join(", "),
        paths.len() - SUMMARY_PATHS_MAX
    )
}
