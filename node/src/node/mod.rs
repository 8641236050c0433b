//! A peer: owns the Raft instance (once the peer is a member), the applied state, and
//! the leader-side background duties (liveness, voter autopilot). Transport-agnostic:
//! the gRPC server in [`crate::server`] and in-process tests call the same methods.
//!
//! This module holds the peer itself (opening, starting Raft, proposing); the rest of
//! `impl Node` lives beside it:
//! - [`membership`]: create, join, admit, leave, remove.
//! - [`queries`]: linearizable reads, state queries, `info`/`peers`/`consensus`, export.
//! - [`duties`]: heartbeats and the leader's liveness and autopilot reviews, around
//!   the pure [`decisions`] (`liveness_decisions`, `autopilot_change`).

pub mod decisions;
pub mod duties;
pub mod lease;
pub mod membership;
mod queries;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use openraft::error::{ClientWriteError, RaftError};
use openraft::{Config, Raft, RaftLogReader, ServerState, SnapshotPolicy};
use tokio::sync::RwLock;
use tracing::{info, warn};

use monk_log::{open_store, LogStore, SharedState, StateMachineStore, TypeConfig};
use monk_statemachine::{Capacity, Command, PeerId, Proposal, FORMAT_VERSION};

use crate::api::{ClientError, ErrorKind};
use crate::client::MonkClient;
use crate::executor::runtime::Engine;
use crate::identity::{self, Identity};
use crate::keys::ClusterKey;
use crate::limits::*;
use crate::network::Network;
use crate::trust::Trust;
use crate::views::ProposeOutcome;
use duties::LastSeen;

/// How a peer is started.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub data_dir: PathBuf,
    /// Address other peers and clients use to reach this peer.
    pub advertise: String,
    pub name: String,
    pub tags: Vec<String>,
    pub capacity: Capacity,
    /// Take a snapshot after this many applied entries (and compact the log behind it,
    /// keeping at most half as many entries, up to [`ENTRIES_KEPT_AFTER_SNAPSHOT`]).
    pub snapshot_after_entries: u64,
    /// Also take one once the log grew by this many bytes (`--snapshot-every-bytes`).
    pub snapshot_after_bytes: u64,
    /// Host address that published ports bind to when a runnable names none
    /// (`--publish-ip`); `None` binds every address.
    pub publish_ip: Option<String>,
    /// What workloads may ask of this peer's host (`--allow-*`, `--volume-root`).
    pub admission: crate::executor::AdmissionPolicy,
    /// Where this peer's WireGuard listens and is reached (`--wg-listen-port`,
    /// `--wg-endpoint`).
    pub overlay: crate::overlay::OverlayConfig,
    /// When new client writes are refused (`--quota-bytes`, `--free-bytes-min`).
    pub storage: crate::storage::StorageLimits,
    /// Hub sources this peer keeps current (`--hub-source`, `--hub-refresh`).
    pub hub: crate::hub::HubConfig,
    /// Where this peer serves the cluster registry (`--registry-listen`), if it does:
    /// the executor pulls `registry.monk/...` images from there.
    pub registry_listen: Option<std::net::SocketAddr>,
}

impl NodeConfig {
    /// A peer named `name` at `advertise` on `data_dir`, everything else as `monkd`'s
    /// defaults: no tags, no declared capacity, the default snapshot interval, published
    /// ports on every address, the default admission policy and overlay.
    pub fn new(data_dir: PathBuf, advertise: String, name: String) -> NodeConfig {
        NodeConfig {
            data_dir,
            advertise,
            name,
            tags: Vec::new(),
            capacity: Capacity::default(),
            snapshot_after_entries: SNAPSHOT_AFTER_ENTRIES,
            snapshot_after_bytes: crate::limits::SNAPSHOT_AFTER_BYTES,
            publish_ip: None,
            admission: crate::executor::AdmissionPolicy::default(),
            overlay: Default::default(),
            storage: Default::default(),
            hub: Default::default(),
            registry_listen: None,
        }
    }
}

/// See [`Node::member_ticks`].
pub struct MemberTicks {
    node: Arc<Node>,
    tick: tokio::time::Interval,
}

impl MemberTicks {
    /// Waits for the next tick at which this peer is a member and returns its id;
    /// `None` once the peer shuts down.
    pub async fn next(&mut self) -> Option<PeerId> {
        loop {
            self.tick.tick().await;
            if self.node.is_shut_down() {
                return None;
            }
            if let Some(id) = self.node.peer_id().await {
                return Some(id);
            }
        }
    }
}

/// A peer asking to join: what `peer-joined` records about it.
#[derive(Clone, Debug)]
pub struct Applicant {
    pub name: String,
    pub address: String,
    pub tags: Vec<String>,
    pub capacity: Capacity,
    /// Its measured machine (`None` from callers that measure nothing, e.g. tests).
    pub facts: Option<monk_statemachine::PeerFacts>,
    /// Its TLS public key, which the leader certifies (empty: no certificate, for
    /// in-memory peers that never dial).
    pub tls_public_key: Vec<u8>,
    /// Its WireGuard public key and endpoint (`None` from callers without one).
    pub overlay: Option<monk_statemachine::OverlayIdentity>,
}

/// Errors the API maps to status codes: the first five carry a message for a code;
/// the rest name what failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
    /// This peer has not created or joined a cluster.
    #[error(
        "this peer is not part of a cluster yet (run `monk cluster new` or `monk cluster join`)"
    )]
    NotMember,
    /// The join token given does not parse.
    #[error(transparent)]
    Token(#[from] crate::token::TokenError),
    /// The cluster key could not be made, read or stored, or a value does not open.
    #[error(transparent)]
    Key(#[from] crate::keys::KeyError),
    /// `node.json` could not be read, written or removed.
    #[error(transparent)]
    Identity(#[from] identity::IdentityError),
    /// The peer's TLS material could not be made, read or stored.
    #[error(transparent)]
    Trust(#[from] crate::trust::TrustError),
    /// The container engine failed or does not answer (`monk logs`, `monk exec`).
    #[error(transparent)]
    Runtime(#[from] crate::executor::runtime::RuntimeError),
}

pub type NodeResult<T> = Result<T, NodeError>;

fn internal(e: impl std::fmt::Display) -> NodeError {
    NodeError::Internal(e.to_string())
}

pub use crate::clock::now_ms;

/// Puts the wall-clock times a command carries on the clock of the peer about to append
/// it (the leader), so a peer whose clock is wrong cannot issue a token born expired
/// or admit a peer by its own time: a token's expiry keeps its lifetime (what the
/// issuer meant) from `now`, an admission happens `now`. Idempotent along a forward:
/// the lifetime is measured against the proposal's own stamp, which does not change.
pub fn on_this_clock(proposal: &mut Proposal, now: u64) {
    match &mut proposal.command {
        Command::JoinTokenIssued {
            expires_at_ms: Some(expires),
            ..
        } => {
            let lifetime = expires.saturating_sub(proposal.proposed_at_ms);
            *expires = now.saturating_add(lifetime);
        }
        Command::PeerJoined {
            admitted_at_ms: Some(admitted),
            ..
        } => *admitted = now,
        _ => {}
    }
}

struct Member {
    id: PeerId,
    raft: Raft<TypeConfig>,
}

pub struct Node {
    pub config: NodeConfig,
    network: Network,
    shared: SharedState,
    log: LogStore,
    /// The stores until the peer becomes a member and Raft takes them.
    unused_stores: Mutex<Option<(LogStore, StateMachineStore)>>,
    member: RwLock<Option<Member>>,
    /// Leader's record of when each peer was last heard from.
    last_seen: LastSeen,
    /// When this peer last became leader (liveness counts from there).
    leader_since: Mutex<Option<Instant>>,
    /// The last snapshot index seen and the log's appended bytes then (the size
    /// trigger in `duties.rs`).
    snapshot_mark: Mutex<(Option<u64>, u64)>,
    /// The executor's lease (`lease.rs`), renewed by answered heartbeats.
    lease: Mutex<lease::Lease>,
    /// When a quorum last acknowledged this peer as leader, as of the last metrics
    /// openraft published, and when those arrived (`duties.rs` watches them): a Raft
    /// core that stalls publishes none, so the acknowledgement ages instead of
    /// staying as fresh as the last published figure.
    quorum_ack: Mutex<Option<lease::QuorumAck>>,
    /// Serializes membership changes made by this peer.
    membership_lock: tokio::sync::Mutex<()>,
    /// Set by `shutdown`; background loops (executor) end when they see it.
    stopping: std::sync::atomic::AtomicBool,
    /// Held by the overlay executor for each pass, and by the shutdown that removes
    /// the overlay's chains, so no pass can put them back after they were removed.
    overlay_pass: tokio::sync::Mutex<()>,
    /// The container runtime (`monkd --containers`), once the daemon has one.
    engine: std::sync::RwLock<Engine>,
    /// This peer's TLS identity and the cluster CA.
    trust: Arc<Trust>,
    /// This peer's WireGuard key pair (`<data dir>/wireguard.key`).
    wireguard: crate::overlay::key::WireGuardKey,
    /// Connections to other members by address (see [`Node::peer_client`]).
    peer_clients: Mutex<std::collections::HashMap<String, MonkClient>>,
    /// Why new client writes are refused now (`storage.rs`), if they are.
    storage_alarm: std::sync::Mutex<Option<String>>,
    /// What the overlay executor last saw (`monk system overlay`).
    overlay_status: std::sync::Mutex<crate::overlay::executor::OverlayStatus>,
}

/// Removes the checkpoint directories an export left when the process died during it
/// (`export-<pid>-<ms>`, see `Node::export_raft_data`): each is a full copy of the log.
fn remove_leftover_exports(data_dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(data_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("export-") && entry.path().is_dir() {
            match std::fs::remove_dir_all(entry.path()) {
                Ok(()) => {
                    tracing::info!(dir = %entry.path().display(), "removed an export left by an earlier process")
                }
                Err(e) => {
                    tracing::warn!(dir = %entry.path().display(), "cannot remove a leftover export: {e}")
                }
            }
        }
    }
}

fn raft_config(cluster: &str, snapshot_after_entries: u64) -> NodeResult<Arc<Config>> {
    let snapshot_after_entries = snapshot_after_entries.max(1);
    let config = Config {
        cluster_name: cluster.to_string(),
        heartbeat_interval: RAFT_HEARTBEAT_INTERVAL_MS,
        election_timeout_min: RAFT_ELECTION_TIMEOUT_MIN_MS,
        election_timeout_max: RAFT_ELECTION_TIMEOUT_MAX_MS,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(snapshot_after_entries),
        max_in_snapshot_log_to_keep: ENTRIES_KEPT_AFTER_SNAPSHOT.min(snapshot_after_entries / 2),
        ..Default::default()
    };
    Ok(Arc::new(config.validate().map_err(internal)?))
}

impl Node {
    /// Opens the data dir (refusing a corrupt one) and, if this peer already belongs to
    /// a cluster, starts Raft with its stored id.
    pub async fn open(config: NodeConfig, network: Network) -> anyhow::Result<Arc<Node>> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            anyhow::anyhow!("cannot create data dir {}: {e}", config.data_dir.display())
        })?;
        remove_leftover_exports(&config.data_dir);
        let (log, sm) = open_store(&config.data_dir.join("raft"))?;
        let shared = sm.shared();
        let identity = identity::load(&config.data_dir)?;
        let trust = Trust::open(
            &config.data_dir,
            identity.as_ref().map(|i| i.cluster_name.as_str()),
        )?;
        let wireguard = crate::overlay::key::WireGuardKey::load_or_create(&config.data_dir)?;
        let node = Arc::new(Node {
            trust,
            peer_clients: Mutex::default(),
            overlay_status: Default::default(),
            storage_alarm: Default::default(),
            wireguard,
            config,
            network,
            shared,
            log: log.clone(),
            unused_stores: Mutex::new(Some((log, sm))),
            member: RwLock::new(None),
            last_seen: LastSeen::default(),
            leader_since: Mutex::new(None),
            lease: Mutex::new(lease::Lease::starting(Instant::now())),
            quorum_ack: Mutex::new(None),
            snapshot_mark: Mutex::new((None, 0)),
            membership_lock: tokio::sync::Mutex::new(()),
            stopping: std::sync::atomic::AtomicBool::new(false),
            overlay_pass: tokio::sync::Mutex::new(()),
            engine: std::sync::RwLock::new(Engine::Disabled),
        });
        if let Some(identity) = identity {
            match membership::PendingCreation::load(&node.config.data_dir)? {
                Some(pending) => {
                    warn!(cluster = %pending.cluster, "finishing a `cluster new` that a crash interrupted");
                    node.finish_creation(&identity, pending).await?;
                }
                None => {
                    info!(peer = identity.peer_id, cluster = %identity.cluster_name, "rejoining cluster from data dir");
                    node.start_raft(&identity).await?;
                }
            }
        }
        Ok(node)
    }

    async fn start_raft(self: &Arc<Self>, identity: &Identity) -> NodeResult<Raft<TypeConfig>> {
        let mut member = self.member.write().await;
        if let Some(m) = member.as_ref() {
            return Ok(m.raft.clone());
        }
        let (log, sm) = self
            .unused_stores
            .lock()
            .expect("stores lock")
            .take()
            .ok_or_else(|| {
                NodeError::FailedPrecondition(
                    "this peer left its cluster; restart monkd on a fresh data dir to join again"
                        .into(),
                )
            })?;
        let network = match &self.network {
            Network::Grpc | Network::GrpcWith(_) => Network::GrpcWith(self.trust.clone()),
            Network::Memory { router, .. } => Network::Memory {
                router: router.clone(),
                self_id: identity.peer_id,
            },
        };
        let raft = Raft::new(
            identity.peer_id,
            raft_config(&identity.cluster_name, self.config.snapshot_after_entries)?,
            network.clone(),
            log,
            sm,
        )
        .await
        .map_err(internal)?;
        if let Network::Memory { router, .. } = &network {
            router.register(identity.peer_id, raft.clone());
            router.register_heartbeats(identity.peer_id, self.last_seen.clone());
            router.register_client_api(
                &self.config.advertise,
                identity.peer_id,
                Arc::downgrade(self),
            );
        }
        *member = Some(Member {
            id: identity.peer_id,
            raft: raft.clone(),
        });
        drop(member);
        self.spawn_duties();
        Ok(raft)
    }

    /// This peer's TLS identity and the cluster CA.
    pub fn trust(&self) -> &Arc<Trust> {
        &self.trust
    }

    /// What this peer advertises for the overlay: its WireGuard public key and the
    /// endpoint its WireGuard is reached at.
    pub fn overlay_identity(&self) -> monk_statemachine::OverlayIdentity {
        monk_statemachine::OverlayIdentity {
            public_key: self.wireguard.public_base64(),
            endpoint: self.config.overlay.endpoint(&self.config.advertise),
        }
    }

    /// Answers a follower's heartbeat: this peer's applied index while it leads with a
    /// quorum acknowledgement fresher than [`lease::QUORUM_ACK_FRESH`]; refused
    /// otherwise, so a deposed leader on a minority renews no one's lease.
    pub async fn lease_grant(&self) -> NodeResult<u64> {
        let (_, raft) = self.require_raft().await?;
        let m = raft.metrics().borrow().clone();
        let voters = m.membership_config.membership().voter_ids().count();
        let fresh = self.quorum_acked_at(m.current_term).is_some_and(|at| {
            Instant::now().saturating_duration_since(at) <= lease::QUORUM_ACK_FRESH
        });
        if m.state != openraft::ServerState::Leader || (voters > 1 && !fresh) {
            return Err(NodeError::Unavailable(
                "not a leader a quorum acknowledges now".into(),
            ));
        }
        Ok(m.last_applied.map_or(0, |l| l.index))
    }

    /// Records what openraft's metrics, just received, say about this peer's quorum
    /// acknowledgement (`duties.rs`).
    pub(crate) fn note_quorum_ack(&self, term: u64, leader: bool, age_ms: Option<u64>) {
        let now = Instant::now();
        let ack = leader.then(|| lease::QuorumAck {
            term,
            at: age_ms.and_then(|ms| now.checked_sub(std::time::Duration::from_millis(ms))),
        });
        *self.quorum_ack.lock().unwrap_or_else(|p| p.into_inner()) = ack;
    }

    /// When a quorum last acknowledged this peer as the leader of `term`, if it did.
    fn quorum_acked_at(&self, term: u64) -> Option<Instant> {
        self.quorum_ack
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .filter(|a| a.term == term)
            .and_then(|a| a.at)
    }

    /// Whether this peer's executor may act now (`lease.rs`). Peers on the in-memory
    /// transport (simulations) and peers not yet members are always current.
    pub async fn lease_state(&self) -> lease::LeaseState {
        if matches!(self.network, Network::Memory { .. }) {
            return lease::LeaseState::Current;
        }
        let Some(raft) = self.raft().await else {
            return lease::LeaseState::Current;
        };
        let m = raft.metrics().borrow().clone();
        let applied = m.last_applied.map_or(0, |l| l.index);
        let mut lease = self.lease.lock().unwrap_or_else(|p| p.into_inner());
        if m.state == openraft::ServerState::Leader {
            let voters = m.membership_config.membership().voter_ids().count();
            let acked_at = self.quorum_acked_at(m.current_term);
            return lease.leader_state(Instant::now(), acked_at, voters, applied);
        }
        lease.state(Instant::now(), applied)
    }

    /// Why new client writes are refused now, if they are (`storage.rs`).
    pub fn storage_alarm(&self) -> Option<String> {
        self.storage_alarm
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn set_storage_alarm(&self, alarm: Option<String>) {
        *self.storage_alarm.lock().unwrap_or_else(|p| p.into_inner()) = alarm;
    }

    /// This peer's WireGuard private key, for its own interface.
    pub fn wireguard_private_key(&self) -> [u8; 32] {
        self.wireguard.private_bytes()
    }

    /// What the overlay executor last saw.
    pub fn overlay_status(&self) -> crate::overlay::executor::OverlayStatus {
        self.overlay_status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn set_overlay_status(&self, status: crate::overlay::executor::OverlayStatus) {
        *self
            .overlay_status
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = status;
    }

    /// A client of another member, dialing with this peer's certificate. One
    /// connection per address is kept and shared (a tonic channel multiplexes calls and
    /// reconnects by itself), so forwarding and heartbeats do not pay a TLS handshake
    /// each time.
    pub async fn peer_client(&self, address: &str) -> NodeResult<MonkClient> {
        let cached = self
            .peer_clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(address)
            .cloned();
        if let Some(client) = cached {
            return Ok(client);
        }
        if matches!(self.network, Network::Memory { .. }) {
            // In-process peers reach each other through the router only: no socket,
            // so a simulation on a paused clock never waits on real I/O.
            return Err(NodeError::Unavailable(format!(
                "cannot dial {address}: this peer is on the in-memory transport"
            )));
        }
        let dialer = self.trust.peer_dialer()?;
        let client = MonkClient::connect(address, &dialer)
            .await
            .map_err(NodeError::Unavailable)?;
        self.peer_clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(address.to_string(), client.clone());
        Ok(client)
    }

    /// This peer's Raft, once it is a member.
    pub async fn raft(&self) -> Option<Raft<TypeConfig>> {
        self.member.read().await.as_ref().map(|m| m.raft.clone())
    }

    pub async fn peer_id(&self) -> Option<PeerId> {
        self.member.read().await.as_ref().map(|m| m.id)
    }

    async fn require_raft(&self) -> NodeResult<(PeerId, Raft<TypeConfig>)> {
        let member = self.member.read().await;
        let m = member.as_ref().ok_or(NodeError::NotMember)?;
        Ok((m.id, m.raft.clone()))
    }

    pub fn shared_state(&self) -> SharedState {
        self.shared.clone()
    }

    /// The address of the current leader, if one is known and it is not this peer.
    async fn leader_address(&self) -> NodeResult<Option<String>> {
        let (id, raft) = self.require_raft().await?;
        let metrics = raft.metrics().borrow().clone();
        match metrics.current_leader {
            Some(leader) if leader == id => Ok(None),
            Some(leader) => Ok(metrics
                .membership_config
                .membership()
                .get_node(&leader)
                .map(|n| n.address.clone())),
            None => Err(NodeError::Unavailable(
                "no leader is known yet (election in progress?)".into(),
            )),
        }
    }

    // ---- writes -----------------------------------------------------------------

    /// Proposes a command through Raft; forwarded to the leader when this peer is not it.
    pub async fn propose(&self, mut proposal: Proposal) -> NodeResult<ProposeOutcome> {
        if proposal.format_version > FORMAT_VERSION {
            return Err(NodeError::InvalidArgument(format!("proposal format version {} is newer than this peer supports ({FORMAT_VERSION}); upgrade monkd", proposal.format_version)));
        }
        if proposal.proposed_at_ms == 0 {
            proposal.proposed_at_ms = now_ms();
        }
        on_this_clock(&mut proposal, now_ms());
        let (_, raft) = self.require_raft().await?;
        let deadline = Instant::now() + NO_LEADER_RETRY_FOR;
        loop {
            let before = raft.metrics().borrow().clone();
            // A candidate may become leader while the command waits and append it;
            // wait for the election to settle instead (see below why that matters).
            let write = match before.state {
                ServerState::Candidate => None,
                _ => Some(raft.client_write(proposal.clone()).await),
            };
            match write {
                None => {}
                Some(Ok(reply)) => {
                    return Ok(ProposeOutcome {
                        index: reply.log_id.index,
                        applied: reply.data,
                    })
                }
                // openraft also answers ForwardToLeader when a newer leader truncated
                // the entry this peer had appended as leader. A copy of it may survive
                // on another peer and commit there, so retrying or forwarding could
                // apply the command twice (the truncated-write drill in
                // `jepsen-style/` did). Only a peer that was a follower throughout,
                // in one term, cannot have appended it.
                Some(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))))
                    if before.state == ServerState::Leader
                        || raft.metrics().borrow().current_term != before.current_term =>
                {
                    return Err(NodeError::Unavailable(
                        "leadership changed while the command was pending; it may or may not have been applied".into(),
                    ));
                }
                Some(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward)))) => {
                    // A leader we cannot even connect to was never sent the command,
                    // so retrying is safe (it may be dead and an election under way).
                    // Once sent, a lost reply means the outcome is unknown: report
                    // that instead of retrying and maybe applying it twice.
                    if let Some(node) = forward.leader_node {
                        if let Some(reply) = self.forward(&node.address, &proposal).await {
                            return reply;
                        }
                    }
                }
                Some(Err(RaftError::APIError(e))) => {
                    return Err(NodeError::FailedPrecondition(e.to_string()))
                }
                Some(Err(RaftError::Fatal(e))) => {
                    return Err(NodeError::Internal(format!("raft stopped: {e}")))
                }
            }
            if Instant::now() >= deadline {
                return Err(NodeError::Unavailable(
                    "no leader elected in time; is a quorum of peers up?".into(),
                ));
            }
            tokio::time::sleep(NO_LEADER_RETRY_PAUSE).await;
        }
    }

    /// Sends `proposal` to the leader at `address`: its reply, or `None` when the
    /// leader cannot even be reached (so it never saw the command; safe to retry).
    fn forward<'a>(
        &'a self,
        address: &'a str,
        proposal: &'a Proposal,
    ) -> Pin<Box<dyn Future<Output = Option<NodeResult<ProposeOutcome>>> + Send + 'a>> {
        Box::pin(async move {
            match self.memory_peer(address).await {
                Some(Ok(leader)) => return Some(leader.propose(proposal.clone()).await),
                Some(Err(e)) => {
                    warn!(leader = %address, "cannot reach leader: {e}");
                    return None;
                }
                None => {}
            }
            match self.peer_client(address).await {
                Ok(mut client) => Some(
                    client
                        .propose_raw(proposal)
                        .await
                        .map_err(|e| forwarded_error(address, &e)),
                ),
                Err(e) => {
                    warn!(leader = %address, "cannot reach leader: {e}");
                    None
                }
            }
        })
    }

    /// On the in-memory transport, the peer that advertises `address` if this one can
    /// reach it (a partition cuts forwarded requests as it cuts Raft traffic); `None`
    /// on gRPC.
    async fn memory_peer(&self, address: &str) -> Option<NodeResult<Arc<Node>>> {
        let Network::Memory { router, .. } = &self.network else {
            return None;
        };
        let from = self.peer_id().await.unwrap_or_default();
        Some(router.client_api(from, address).ok_or_else(|| {
            NodeError::Unavailable(format!("cannot reach {address}: cut off or not running"))
        }))
    }

    /// A proposal of `command` by `actor`, stamped with this peer's clock.
    pub fn stamp(&self, actor: String, command: Command) -> Proposal {
        Proposal {
            format_version: FORMAT_VERSION,
            proposed_at_ms: now_ms(),
            actor,
            request_id: format!("{}-{}", self.config.name, now_ms()),
            command,
        }
    }

    /// Tells the background loops to end (the first step of a graceful shutdown);
    /// Raft still runs.
    pub fn begin_stopping(&self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// The overlay executor's pass lock (see the field).
    pub fn overlay_pass(&self) -> &tokio::sync::Mutex<()> {
        &self.overlay_pass
    }

    /// Stops Raft (graceful shutdown); the data dir stays as it is.
    pub async fn shutdown(&self) {
        self.begin_stopping();
        if let Some(m) = self.member.write().await.take() {
            if let Err(e) = m.raft.shutdown().await {
                warn!("raft shutdown: {e}");
            }
        }
    }

    /// Ticks every `period` (the first at once) while this peer runs, for a
    /// background duty that acts as a member (the facts and overlay reporters).
    pub fn member_ticks(self: &Arc<Self>, period: std::time::Duration) -> MemberTicks {
        MemberTicks {
            node: self.clone(),
            tick: tokio::time::interval(period),
        }
    }

    /// This peer's copy of the cluster key, if it has one.
    pub fn cluster_key(&self) -> NodeResult<Option<ClusterKey>> {
        Ok(ClusterKey::load(&self.config.data_dir)?)
    }

    /// The container runtime this peer holds.
    pub fn engine(&self) -> Engine {
        self.engine
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Sets the container runtime (the daemon, once it connects or fails to).
    pub fn set_engine(&self, engine: Engine) {
        *self.engine.write().unwrap_or_else(|p| p.into_inner()) = engine;
    }

    /// True once `shutdown` began.
    pub fn is_shut_down(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// For the in-memory tests: entries currently stored in this peer's log.
    pub async fn stored_entries(&self) -> NodeResult<usize> {
        let mut log = self.log.clone();
        Ok(log.try_get_log_entries(0..).await.map_err(internal)?.len())
    }

    /// For tests: wait until this peer has applied `index`.
    pub async fn wait_applied(&self, index: u64, timeout: Duration) -> NodeResult<()> {
        let (_, raft) = self.require_raft().await?;
        raft.wait(Some(timeout))
            .applied_index_at_least(Some(index), "applied")
            .await
            .map(|_| ())
            .map_err(internal)
    }
}

/// A forwarded proposal failed: the leader's own refusal keeps its kind; a transport
/// failure after sending means the outcome is unknown.
fn forwarded_error(leader: &str, e: &ClientError) -> NodeError {
    match e.kind {
        ErrorKind::Unavailable | ErrorKind::Unreachable => NodeError::Unavailable(format!(
            "forwarded to leader {leader} but got no answer ({}); the command may or may not have been applied",
            e.message
        )),
        _ => status_to_error(e),
    }
}

/// Maps the error of a call forwarded to another peer back to a node error.
pub fn status_to_error(e: &ClientError) -> NodeError {
    let message = e.message.clone();
    match e.kind {
        ErrorKind::Invalid => NodeError::InvalidArgument(message),
        ErrorKind::Precondition => NodeError::FailedPrecondition(message),
        ErrorKind::Denied => NodeError::PermissionDenied(message),
        ErrorKind::Unavailable | ErrorKind::Unreachable => NodeError::Unavailable(message),
        ErrorKind::Internal => NodeError::Internal(message),
    }
}
