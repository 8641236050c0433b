//! A peer: owns the Raft instance (once the peer is a member), the applied state, and
//! the leader-side background duties (liveness, voter autopilot). Transport-agnostic:
//! the gRPC server in [`crate::server`] and in-process tests call the same methods.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use openraft::storage::RaftLogStorage;
use openraft::{ChangeMembers, Config, Raft, RaftLogReader, ServerState, SnapshotPolicy};
use tokio::sync::RwLock;
use tracing::{info, warn};

use monk_log::{open_store, LogStore, PeerNode, SharedState, StateMachineStore, TypeConfig};
use monk_statemachine::{
    snapshot::digest, Applied, Capacity, Command, PeerId, Proposal, FORMAT_VERSION,
};

use crate::client::MonkClient;
use crate::executor::runtime::Engine;
use crate::identity::{self, Identity};
use crate::keys::{ClusterKey, JoinKeys};
use crate::limits::*;
use crate::network::Network;
use crate::token::{secret_sha256, JoinToken};
use crate::views::*;

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
    /// Host address that published ports bind to when a runnable names none
    /// (`--publish-ip`); `None` binds every address.
    pub publish_ip: Option<String>,
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
}

/// Errors the API maps to status codes.
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
    /// The container engine failed or does not answer (`monk logs`, `monk exec`).
    #[error(transparent)]
    Runtime(#[from] crate::executor::runtime::RuntimeError),
}

pub type NodeResult<T> = Result<T, NodeError>;

fn internal(e: impl std::fmt::Display) -> NodeError {
    NodeError::Internal(e.to_string())
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
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
    last_seen: Mutex<HashMap<PeerId, Instant>>,
    /// When this peer last became leader (liveness counts from there).
    leader_since: Mutex<Option<Instant>>,
    /// Serializes membership changes made by this peer.
    membership_lock: tokio::sync::Mutex<()>,
    /// Set by `shutdown`; background loops (executor) end when they see it.
    stopping: std::sync::atomic::AtomicBool,
    /// The container runtime (`monkd --containers`), once the daemon has one.
    engine: std::sync::RwLock<Engine>,
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
        let (log, sm) = open_store(&config.data_dir.join("raft"))?;
        let shared = sm.shared();
        let identity = identity::load(&config.data_dir).map_err(anyhow::Error::msg)?;
        let node = Arc::new(Node {
            config,
            network,
            shared,
            log: log.clone(),
            unused_stores: Mutex::new(Some((log, sm))),
            member: RwLock::new(None),
            last_seen: Mutex::new(HashMap::new()),
            leader_since: Mutex::new(None),
            membership_lock: tokio::sync::Mutex::new(()),
            stopping: std::sync::atomic::AtomicBool::new(false),
            engine: std::sync::RwLock::new(Engine::Disabled),
        });
        if let Some(identity) = identity {
            info!(peer = identity.peer_id, cluster = %identity.cluster_name, "rejoining cluster from data dir");
            node.start_raft(&identity).await?;
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
            Network::Grpc => Network::Grpc,
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
        }
        *member = Some(Member {
            id: identity.peer_id,
            raft: raft.clone(),
        });
        drop(member);
        self.spawn_duties();
        Ok(raft)
    }

    /// Refuses to create or join a cluster unless this data dir is unused: a peer that
    /// already belongs to a cluster, or whose dir holds the log of a cluster it left,
    /// must not mix two histories in one log.
    async fn require_fresh(&self) -> NodeResult<()> {
        if self.member.read().await.is_some() {
            return Err(NodeError::FailedPrecondition(
                "this peer already belongs to a cluster".into(),
            ));
        }
        let mut log = self.log.clone();
        let history = log
            .get_log_state()
            .await
            .map_err(internal)?
            .last_log_id
            .is_some()
            || log.read_vote().await.map_err(internal)?.is_some();
        if history {
            return Err(NodeError::FailedPrecondition(format!(
                "the data dir {} holds the Raft log of an earlier cluster membership; start monkd with a fresh --data-dir to create or join a cluster",
                self.config.data_dir.display()
            )));
        }
        Ok(())
    }

    pub async fn raft(&self) -> Option<Raft<TypeConfig>> {
        self.member.read().await.as_ref().map(|m| m.raft.clone())
    }

    pub async fn peer_id(&self) -> Option<PeerId> {
        self.member.read().await.as_ref().map(|m| m.id)
    }

    async fn require_raft(&self) -> NodeResult<(PeerId, Raft<TypeConfig>)> {
        let member = self.member.read().await;
        let m = member.as_ref().ok_or_else(|| NodeError::FailedPrecondition("this peer is not part of a cluster yet (run `monk cluster new` or `monk cluster join`)".into()))?;
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
                        match MonkClient::connect(&node.address).await {
                            Ok(mut client) => {
                                return client
                                    .propose_raw(&proposal)
                                    .await
                                    .map_err(|e| forwarded_error(&node.address, &e));
                            }
                            Err(e) => warn!(leader = %node.address, "cannot reach leader: {e}"),
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

    /// Makes this peer a one-voter cluster.
    pub async fn cluster_new(self: &Arc<Self>, name: &str) -> NodeResult<InfoView> {
        self.require_fresh().await?;
        if name.is_empty() {
            return Err(NodeError::InvalidArgument(
                "cluster name must not be empty".into(),
            ));
        }
        let identity = Identity {
            peer_id: 1,
            cluster_name: name.to_string(),
        };
        ClusterKey::generate()
            .and_then(|key| key.store(&self.config.data_dir))
            .map_err(NodeError::Internal)?;
        let raft = self.start_raft(&identity).await?;
        let me = PeerNode {
            name: self.config.name.clone(),
            address: self.config.advertise.clone(),
        };
        raft.initialize(BTreeMap::from([(1, me)]))
            .await
            .map_err(internal)?;
        raft.wait(Some(BOOTSTRAP_LEADER_WAIT))
            .state(ServerState::Leader, "bootstrap leader")
            .await
            .map_err(internal)?;
        let command = Command::ClusterCreated {
            name: name.to_string(),
            first_peer_name: self.config.name.clone(),
            first_peer_address: self.config.advertise.clone(),
            tags: self.config.tags.clone(),
            capacity: self.config.capacity,
            facts: Some(self.measure_facts().await),
        };
        let outcome = self
            .propose(self.stamp(format!("peer:{}", self.config.name), command))
            .await?;
        if let Applied::Rejected { reason } = outcome.applied {
            return Err(NodeError::FailedPrecondition(reason.to_string()));
        }
        identity::store(&self.config.data_dir, &identity).map_err(internal)?;
        self.info().await
    }

    /// Issues a join token (its hash goes through the log, so any peer can verify it).
    pub async fn issue_token(&self, actor: String) -> NodeResult<String> {
        let addresses: Vec<String> = {
            let applied = self.shared.read().expect("state lock");
            applied
                .state
                .members()
                .filter(|p| p.is_up())
                .map(|p| p.address.clone())
                .collect()
        };
        let token = JoinToken::new(addresses).map_err(internal)?;
        let outcome = self
            .propose(self.stamp(
                actor,
                Command::JoinTokenIssued {
                    token_sha256: secret_sha256(&token.secret),
                },
            ))
            .await?;
        if let Applied::Rejected { reason } = outcome.applied {
            return Err(NodeError::FailedPrecondition(reason.to_string()));
        }
        Ok(token.encode())
    }

    /// This peer joins the cluster named by `token`.
    pub async fn cluster_join(self: &Arc<Self>, token: &str) -> NodeResult<InfoView> {
        self.require_fresh().await?;
        let token = JoinToken::parse(token).map_err(NodeError::InvalidArgument)?;
        let keys = JoinKeys::generate().map_err(NodeError::Internal)?;
        let applicant = Applicant {
            name: self.config.name.clone(),
            address: self.config.advertise.clone(),
            tags: self.config.tags.clone(),
            capacity: self.config.capacity,
            facts: Some(self.measure_facts().await),
        };
        let mut last_error = String::from("no peer address in token");
        for address in &token.addresses {
            let mut client = match MonkClient::connect(address).await {
                Ok(c) => c,
                Err(e) => {
                    last_error = format!("{address}: {e}");
                    continue;
                }
            };
            match client
                .admit_peer(&token.secret, &applicant, &keys.public())
                .await
            {
                Ok(admission) => {
                    return self
                        .accept_admission_with_keys(admission, Some(&keys))
                        .await
                }
                Err(e)
                    if e.code() == tonic::Code::PermissionDenied
                        || e.code() == tonic::Code::InvalidArgument
                        || e.code() == tonic::Code::FailedPrecondition =>
                {
                    return Err(NodeError::PermissionDenied(format!(
                        "join refused by {address}: {}",
                        e.message()
                    )));
                }
                Err(e) => last_error = format!("{address}: {}", e.message()),
            }
        }
        Err(NodeError::Unavailable(format!(
            "could not reach the cluster: {last_error}"
        )))
    }

    /// Joining side, once admitted: remember the id and start Raft as a learner.
    pub async fn accept_admission(self: &Arc<Self>, admission: Admission) -> NodeResult<InfoView> {
        self.accept_admission_with_keys(admission, None).await
    }

    /// As [`Node::accept_admission`], storing the cluster key sealed to `keys`.
    pub async fn accept_admission_with_keys(
        self: &Arc<Self>,
        admission: Admission,
        keys: Option<&JoinKeys>,
    ) -> NodeResult<InfoView> {
        match keys {
            Some(keys) if !admission.sealed_cluster_key.is_empty() => {
                let key = keys
                    .receive(&admission.key_ephemeral, &admission.sealed_cluster_key)
                    .map_err(NodeError::PermissionDenied)?;
                key.store(&self.config.data_dir)
                    .map_err(NodeError::Internal)?;
            }
            Some(_) => {
                warn!("the admitting peer has no cluster key: secrets will not work on this peer")
            }
            None => {}
        }
        let identity = Identity {
            peer_id: admission.peer_id,
            cluster_name: admission.cluster_name,
        };
        identity::store(&self.config.data_dir, &identity).map_err(internal)?;
        self.start_raft(&identity).await?;
        self.info().await
    }

    /// Leader side of a join: checks the token, records the peer, adds it as learner.
    pub async fn admit_peer(
        &self,
        secret: &str,
        name: &str,
        address: &str,
        tags: Vec<String>,
        capacity: Capacity,
    ) -> NodeResult<Admission> {
        let applicant = Applicant {
            name: name.to_string(),
            address: address.to_string(),
            tags,
            capacity,
            facts: None,
        };
        self.admit_peer_with_key(secret, applicant, &[]).await
    }

    /// This peer's machine as [`crate::facts::measure`] sees it (off the async threads:
    /// it may run `nvidia-smi`).
    async fn measure_facts(&self) -> monk_statemachine::PeerFacts {
        let dir = self.config.data_dir.clone();
        tokio::task::spawn_blocking(move || crate::facts::measure(&dir))
            .await
            .unwrap_or_default()
    }

    /// As [`Node::admit_peer`]; with the joiner's public key, the admission carries
    /// the cluster key sealed to it.
    pub async fn admit_peer_with_key(
        &self,
        secret: &str,
        applicant: Applicant,
        join_public_key: &[u8],
    ) -> NodeResult<Admission> {
        if let Some(leader) = self.leader_address().await? {
            let mut client = MonkClient::connect(&leader)
                .await
                .map_err(|e| NodeError::Unavailable(e.to_string()))?;
            return client
                .admit_peer(secret, &applicant, join_public_key)
                .await
                .map_err(|s| status_to_error(&s));
        }
        let (_, raft) = self.require_raft().await?;
        raft.ensure_linearizable()
            .await
            .map_err(|e| NodeError::Unavailable(e.to_string()))?;
        let token_sha256 = secret_sha256(secret);
        let cluster_name = {
            let applied = self.shared.read().expect("state lock");
            if !applied.state.join_tokens.contains_key(&token_sha256) {
                return Err(NodeError::PermissionDenied(
                    "the join token is not valid for this cluster".into(),
                ));
            }
            applied.state.cluster_name.clone().unwrap_or_default()
        };
        let _guard = self.membership_lock.lock().await;
        let name = applicant.name.clone();
        let address = applicant.address.clone();
        let command = Command::PeerJoined {
            name: applicant.name,
            address: applicant.address,
            token_sha256,
            tags: applicant.tags,
            capacity: applicant.capacity,
            facts: applicant.facts,
        };
        let outcome = self
            .propose(self.stamp(format!("peer:{name}"), command))
            .await?;
        let peer_id = match outcome.applied {
            Applied::Accepted { peer_id: Some(id) } => id,
            Applied::Accepted { peer_id: None } => {
                return Err(NodeError::Internal("join accepted without an id".into()))
            }
            Applied::Rejected { reason } => {
                return Err(NodeError::PermissionDenied(reason.to_string()))
            }
        };
        raft.add_learner(
            peer_id,
            PeerNode {
                name: name.to_string(),
                address: address.to_string(),
            },
            false,
        )
        .await
        .map_err(internal)?;
        self.last_seen
            .lock()
            .expect("liveness lock")
            .insert(peer_id, Instant::now());
        info!(peer = peer_id, %name, %address, "admitted peer as learner");
        let (key_ephemeral, sealed_cluster_key) =
            match (join_public_key.is_empty(), self.cluster_key()?) {
                (false, Some(key)) => key.seal_for(join_public_key).map_err(NodeError::Internal)?,
                _ => (Vec::new(), Vec::new()),
            };
        Ok(Admission {
            peer_id,
            cluster_name,
            key_ephemeral,
            sealed_cluster_key,
        })
    }

    /// This peer leaves its cluster: the leader removes it, then Raft stops here.
    pub async fn leave(&self) -> NodeResult<InfoView> {
        let (id, raft) = self.require_raft().await?;
        let info = self.info().await?;
        match self.leader_address().await? {
            Some(leader) => {
                let mut client = MonkClient::connect(&leader)
                    .await
                    .map_err(|e| NodeError::Unavailable(e.to_string()))?;
                client
                    .remove_peer(id)
                    .await
                    .map_err(|s| status_to_error(&s))?;
            }
            None => self.remove_peer(id).await?,
        }
        raft.shutdown().await.map_err(internal)?;
        *self.member.write().await = None;
        identity::remove(&self.config.data_dir).map_err(internal)?;
        Ok(info)
    }

    /// Leader side of a removal: out of the Raft configuration, then `peer-left`.
    pub async fn remove_peer(&self, peer: PeerId) -> NodeResult<()> {
        if let Some(leader) = self.leader_address().await? {
            let mut client = MonkClient::connect(&leader)
                .await
                .map_err(|e| NodeError::Unavailable(e.to_string()))?;
            return client
                .remove_peer(peer)
                .await
                .map_err(|s| status_to_error(&s));
        }
        let (_, raft) = self.require_raft().await?;
        let _guard = self.membership_lock.lock().await;
        let membership = raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .clone();
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        if voters.contains(&peer) {
            if voters.len() == 1 {
                return Err(NodeError::FailedPrecondition(
                    "the last voter cannot leave; the cluster would be gone".into(),
                ));
            }
            raft.change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([peer])), false)
                .await
                .map_err(internal)?;
        } else if membership.get_node(&peer).is_some() {
            raft.change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([peer])), false)
                .await
                .map_err(internal)?;
        }
        let outcome = self
            .propose(self.stamp(format!("peer:{peer}"), Command::PeerLeft { peer }))
            .await?;
        if let Applied::Rejected { reason } = outcome.applied {
            return Err(NodeError::FailedPrecondition(reason.to_string()));
        }
        Ok(())
    }

    pub fn heartbeat(&self, peer: PeerId) {
        self.last_seen
            .lock()
            .expect("liveness lock")
            .insert(peer, Instant::now());
    }

    // ---- reads ------------------------------------------------------------------

    /// Waits until this peer's state reflects everything committed before the call
    /// (read-index); on a follower the caller forwards the read to the leader instead.
    pub async fn linearize(&self) -> NodeResult<Option<String>> {
        let (_, raft) = self.require_raft().await?;
        match raft.ensure_linearizable().await {
            Ok(_) => Ok(None),
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
                match &f.leader_node {
                    Some(node) => Ok(Some(node.address.clone())),
                    None => Err(NodeError::Unavailable("no leader is known yet".into())),
                }
            }
            Err(RaftError::APIError(e)) => Err(NodeError::Unavailable(e.to_string())),
            Err(e) => Err(internal(e)),
        }
    }

    /// Runs `f` on this peer's applied state (after [`Node::linearize`] for a current one).
    pub fn with_state<T>(&self, f: impl FnOnce(&monk_statemachine::State) -> T) -> T {
        let applied = self.shared.read().expect("state lock");
        f(&applied.state)
    }

    /// Sends a proposal that has entered no log to the leader, which proposes it.
    pub async fn forward_unproposed(
        &self,
        leader: &str,
        proposal: &Proposal,
    ) -> NodeResult<ProposeOutcome> {
        let mut client = MonkClient::connect(leader)
            .await
            .map_err(|e| NodeError::Unavailable(format!("cannot reach leader {leader}: {e}")))?;
        client
            .propose_raw(proposal)
            .await
            .map_err(|e| forwarded_error(leader, &e))
    }

    /// Answers a query from local state (after [`Node::linearize`] when not stale).
    pub fn query_local(&self, what: &str, arg: &str) -> NodeResult<serde_json::Value> {
        let applied = self.shared.read().expect("state lock");
        let state = &applied.state;
        let value = match what {
            "templates" => serde_json::to_value(
                state
                    .templates
                    .values()
                    .map(|t| TemplateRow {
                        path: t.path.clone(),
                        kind: t.kind.clone(),
                        generation: t.generation,
                        loaded_at_index: t.loaded_at_index,
                    })
                    .collect::<Vec<_>>(),
            ),
            "template" => match state.templates.get(arg.trim_start_matches('/')) {
                Some(t) => serde_json::to_value(t),
                None => return Err(NodeError::InvalidArgument(format!("no template at {arg}"))),
            },
            "templates-all" => serde_json::to_value(
                state
                    .templates
                    .iter()
                    .map(|(k, t)| (k.clone(), t.definition.clone()))
                    .collect::<BTreeMap<_, _>>(),
            ),
            "cluster" => serde_json::to_value(monk_statemachine::ClusterView::of(state)),
            "instances" => serde_json::to_value(monk_statemachine::view::instances(state)),
            "workload" => match state.workloads.get(arg.trim_start_matches('/')) {
                Some(w) => serde_json::to_value(w),
                None => {
                    return Err(NodeError::InvalidArgument(format!(
                        "no workload {arg} is running or stopped"
                    )))
                }
            },
            "secrets" => serde_json::to_value(
                state
                    .secrets
                    .values()
                    .map(monk_statemachine::SecretName::from)
                    .collect::<Vec<_>>(),
            ),
            "state" => {
                let mut redacted = state.clone();
                for secret in redacted.secrets.values_mut() {
                    secret.sealed.clear();
                }
                serde_json::to_value(redacted)
            }
            other => {
                return Err(NodeError::InvalidArgument(format!(
                    "unknown query {other:?}"
                )))
            }
        };
        value.map_err(internal)
    }

    pub async fn info(&self) -> NodeResult<InfoView> {
        let mut view = InfoView {
            name: self.config.name.clone(),
            address: self.config.advertise.clone(),
            ..InfoView::default()
        };
        if let Some(raft) = self.raft().await {
            let metrics = raft.metrics().borrow().clone();
            view.id = Some(metrics.id);
            view.leader_id = metrics.current_leader;
            view.leader_address = metrics.current_leader.and_then(|l| {
                metrics
                    .membership_config
                    .membership()
                    .get_node(&l)
                    .map(|n| n.address.clone())
            });
            view.cluster = self
                .shared
                .read()
                .expect("state lock")
                .state
                .cluster_name
                .clone();
            if view.cluster.is_none() {
                view.cluster = identity::load(&self.config.data_dir)
                    .ok()
                    .flatten()
                    .map(|i| i.cluster_name);
            }
        }
        Ok(view)
    }

    pub async fn peers(&self) -> NodeResult<Vec<PeerRow>> {
        let (_, raft) = self.require_raft().await?;
        let metrics = raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership().clone();
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        let seen = self.last_seen.lock().expect("liveness lock").clone();
        let applied = self.shared.read().expect("state lock");
        Ok(applied
            .state
            .members()
            .map(|p| {
                let role = if metrics.current_leader == Some(p.id) {
                    "leader"
                } else if voters.contains(&p.id) {
                    "follower"
                } else if membership.get_node(&p.id).is_some() {
                    "learner"
                } else {
                    "none"
                };
                let last_contact_ms = if Some(p.id) == metrics.current_leader && metrics.id == p.id
                {
                    Some(0)
                } else {
                    seen.get(&p.id).map(|t| t.elapsed().as_millis() as u64)
                };
                PeerRow {
                    id: p.id,
                    name: p.name.clone(),
                    address: p.address.clone(),
                    role: role.into(),
                    voter: voters.contains(&p.id),
                    up: p.is_up(),
                    tags: p.tags.clone(),
                    last_contact_ms,
                }
            })
            .collect())
    }

    pub async fn consensus(&self) -> NodeResult<ConsensusView> {
        let (_, raft) = self.require_raft().await?;
        let metrics = raft.metrics().borrow().clone();
        let mut log = self.log.clone();
        let commit_index = log
            .read_committed()
            .await
            .map_err(internal)?
            .map(|l| l.index);
        let (applied_index, state_digest) = {
            let applied = self.shared.read().expect("state lock");
            (
                applied.last_applied.map(|l| l.index),
                digest(&applied.state),
            )
        };
        let membership = metrics.membership_config.membership();
        let last = metrics.last_log_index;
        let followers = metrics
            .replication
            .as_ref()
            .map(|r| {
                r.iter()
                    .filter(|(id, _)| **id != metrics.id)
                    .map(|(id, matched)| {
                        let match_index = matched.map(|m| m.index);
                        FollowerProgress {
                            id: *id,
                            match_index,
                            lag: last.map(|l| l.saturating_sub(match_index.unwrap_or(0))),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(ConsensusView {
            id: Some(metrics.id),
            state: format!("{:?}", metrics.state).to_lowercase(),
            term: metrics.current_term,
            leader_id: metrics.current_leader,
            last_log_index: last,
            commit_index: commit_index.max(if metrics.state == ServerState::Leader {
                applied_index
            } else {
                None
            }),
            applied_index,
            snapshot_index: metrics.snapshot.map(|l| l.index),
            purged_index: metrics.purged.map(|l| l.index),
            state_digest,
            voters: membership.voter_ids().collect(),
            learners: membership.learner_ids().collect(),
            followers,
        })
    }

    // ---- background duties ------------------------------------------------------

    fn spawn_duties(self: &Arc<Self>) {
        let node = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PEER_HEARTBEAT_INTERVAL.min(AUTOPILOT_INTERVAL));
            loop {
                tick.tick().await;
                let Some(node) = node.upgrade() else { return };
                let Some((id, raft)) = node
                    .member
                    .read()
                    .await
                    .as_ref()
                    .map(|m| (m.id, m.raft.clone()))
                else {
                    return;
                };
                let metrics = raft.metrics().borrow().clone();
                if metrics.state == ServerState::Leader {
                    node.leader_duties(id, &raft).await;
                } else {
                    *node.leader_since.lock().expect("leader lock") = None;
                    node.send_heartbeat(id, &metrics).await;
                }
            }
        });
    }

    async fn send_heartbeat(&self, id: PeerId, metrics: &openraft::RaftMetrics<u64, PeerNode>) {
        let Network::Grpc = self.network else { return };
        let Some(leader) = metrics
            .current_leader
            .and_then(|l| metrics.membership_config.membership().get_node(&l).cloned())
        else {
            return;
        };
        match MonkClient::connect(&leader.address).await {
            Ok(mut client) => {
                if let Err(e) = client.heartbeat(id).await {
                    warn!(leader = %leader.address, "heartbeat failed: {}", e.message());
                }
            }
            Err(e) => warn!(leader = %leader.address, "heartbeat connect failed: {e}"),
        }
    }

    /// Liveness (PeerDown / PeerUp) and voter autopilot; runs on the leader only.
    async fn leader_duties(&self, id: PeerId, raft: &Raft<TypeConfig>) {
        let since = *self
            .leader_since
            .lock()
            .expect("leader lock")
            .get_or_insert_with(Instant::now);
        let (members, status): (Vec<PeerId>, HashMap<PeerId, bool>) = {
            let applied = self.shared.read().expect("state lock");
            let members: Vec<PeerId> = applied.state.members().map(|p| p.id).collect();
            let status = applied.state.members().map(|p| (p.id, p.is_up())).collect();
            (members, status)
        };
        let in_memory = matches!(self.network, Network::Memory { .. });
        for peer in members.iter().copied().filter(|p| *p != id) {
            if in_memory {
                break;
            }
            let last = self
                .last_seen
                .lock()
                .expect("liveness lock")
                .get(&peer)
                .copied();
            let heard = last.map_or(since, |t| t.max(since));
            let silent_for = heard.elapsed();
            let up = status.get(&peer).copied().unwrap_or(true);
            let command = if up && silent_for > PEER_DOWN_AFTER {
                Some(Command::PeerDown {
                    peer,
                    reason: format!("no heartbeat for {}s", silent_for.as_secs()),
                })
            } else if !up && last.is_some_and(|t| t.elapsed() < PEER_HEARTBEAT_INTERVAL * 3) {
                Some(Command::PeerUp { peer })
            } else {
                None
            };
            if let Some(command) = command {
                info!(peer, kind = command.kind(), "liveness change");
                if let Err(e) = self
                    .propose(self.stamp(format!("peer:{id}"), command))
                    .await
                {
                    warn!("liveness proposal failed: {e}");
                }
            }
        }
        self.autopilot(raft, &status).await;
    }

    /// Keeps up to [`VOTERS_MAX`] healthy voters: promotes caught-up learners, and
    /// swaps a voter that is declared down for a healthy learner.
    async fn autopilot(&self, raft: &Raft<TypeConfig>, up: &HashMap<PeerId, bool>) {
        let Ok(_guard) = self.membership_lock.try_lock() else {
            return;
        };
        let metrics = raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership().clone();
        if membership.get_joint_config().len() > 1 {
            return;
        }
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        let last = metrics.last_log_index.unwrap_or(0);
        let caught_up = |id: &u64| {
            metrics
                .replication
                .as_ref()
                .and_then(|r| r.get(id).copied().flatten())
                .is_some_and(|m| last.saturating_sub(m.index) <= LEARNER_CAUGHT_UP_ENTRIES)
        };
        let healthy_learners: Vec<u64> = membership
            .learner_ids()
            .filter(|id| up.get(id).copied().unwrap_or(false) && caught_up(id))
            .collect();
        let Some(candidate) = healthy_learners.first().copied() else {
            return;
        };
        let down_voter = voters.iter().copied().find(|v| up.get(v) == Some(&false));
        let change = if voters.len() < VOTERS_MAX {
            Some(ChangeMembers::AddVoterIds(BTreeSet::from([candidate])))
        } else {
            down_voter.map(|down| {
                let mut next = voters.clone();
                next.remove(&down);
                next.insert(candidate);
                ChangeMembers::ReplaceAllVoters(next)
            })
        };
        if let Some(change) = change {
            info!(?change, "autopilot changes voters");
            if let Err(e) = raft.change_membership(change, true).await {
                warn!("autopilot membership change failed: {e}");
            }
        }
    }

    /// A consistent copy of this peer's Raft data: (file name, contents) pairs of a
    /// RocksDB checkpoint, which `DataDirReader` opens like any data dir.
    pub fn export_raft_data(&self) -> NodeResult<Vec<(String, Vec<u8>)>> {
        let dest = self
            .config
            .data_dir
            .join(format!("export-{}-{}", std::process::id(), now_ms()));
        let result = self.read_checkpoint(&dest);
        let _ = std::fs::remove_dir_all(&dest);
        result
    }

    fn read_checkpoint(&self, dest: &std::path::Path) -> NodeResult<Vec<(String, Vec<u8>)>> {
        self.log.checkpoint(dest).map_err(internal)?;
        let mut files = Vec::new();
        let mut total = 0usize;
        for entry in std::fs::read_dir(dest).map_err(internal)? {
            let entry = entry.map_err(internal)?;
            let contents = std::fs::read(entry.path()).map_err(internal)?;
            total += contents.len();
            if total > EXPORT_BYTES_MAX {
                return Err(NodeError::FailedPrecondition(format!(
                    "this peer's Raft data exceeds {} MiB; copy its data dir and use --data-dir instead",
                    EXPORT_BYTES_MAX / (1024 * 1024)
                )));
            }
            files.push((entry.file_name().to_string_lossy().into_owned(), contents));
        }
        Ok(files)
    }

    /// Stops Raft (graceful shutdown); the data dir stays as it is.
    pub async fn shutdown(&self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(m) = self.member.write().await.take() {
            if let Err(e) = m.raft.shutdown().await {
                warn!("raft shutdown: {e}");
            }
        }
    }

    /// This peer's copy of the cluster key, if it has one.
    pub fn cluster_key(&self) -> NodeResult<Option<ClusterKey>> {
        ClusterKey::load(&self.config.data_dir).map_err(NodeError::Internal)
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

/// A forwarded proposal failed: the leader's own refusal keeps its code; a transport
/// failure after sending means the outcome is unknown.
fn forwarded_error(leader: &str, status: &tonic::Status) -> NodeError {
    match status.code() {
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Unknown => NodeError::Unavailable(format!(
            "forwarded to leader {leader} but got no answer ({}); the command may or may not have been applied",
            status.message()
        )),
        _ => status_to_error(status),
    }
}

/// Maps a gRPC status from a forwarded call back to a node error.
pub fn status_to_error(status: &tonic::Status) -> NodeError {
    let message = status.message().to_string();
    match status.code() {
        tonic::Code::InvalidArgument => NodeError::InvalidArgument(message),
        tonic::Code::FailedPrecondition => NodeError::FailedPrecondition(message),
        tonic::Code::PermissionDenied => NodeError::PermissionDenied(message),
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => NodeError::Unavailable(message),
        _ => NodeError::Internal(message),
    }
}
