//! Membership: creating a cluster, issuing join tokens, joining (the joiner's side and
//! the leader's admission), leaving and removing a peer. Every change goes through the
//! log (`cluster-created`, `join-token-issued`, `peer-joined`, `peer-left`) and Raft's
//! configuration; changes made by this peer are serialized by its membership lock.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use openraft::storage::RaftLogStorage;
use openraft::{ChangeMembers, ServerState};
use tracing::{info, warn};

use monk_log::PeerNode;
use monk_statemachine::apply::ADMIN_USER;
use monk_statemachine::{overlay, Applied, Capacity, Command, Ipv4Net, PeerId, Role};

use super::{internal, status_to_error, Applicant, Node, NodeError, NodeResult};
use crate::client::MonkClient;
use crate::identity::{self, Identity};
use crate::keys::{ClusterKey, JoinKeys};
use crate::limits::{
    BOOTSTRAP_LEADER_WAIT, JOIN_CATCH_UP_WAIT, JOIN_TOKEN_TTL_DEFAULT, JOIN_TOKEN_TTL_MAX,
};
use crate::token::{secret_sha256, JoinToken};
use crate::trust::access::credential_sha256;
use crate::trust::credentials::{new_credential, Credential, ADMIN_CREDENTIALS_FILE};
use crate::trust::tls::Dialer;
use crate::views::{Admission, InfoView};

/// A `cluster new` under way, recorded in the data dir (`creating.json`) until its
/// `cluster-created` commits, so a crash in between is finished at the next start.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct PendingCreation {
    pub cluster: String,
    pub overlay_range: Ipv4Net,
    #[serde(default)]
    pub open_network: bool,
}

/// The marker's file name in the data dir.
const CREATING_FILE: &str = "creating.json";

impl PendingCreation {
    /// Records it in `data_dir` (before anything of it is written to Raft).
    pub fn store(&self, data_dir: &std::path::Path) -> NodeResult<()> {
        let text = serde_json::to_string(self).map_err(internal)?;
        crate::trust::write_file(&data_dir.join(CREATING_FILE), &text, false)?;
        Ok(())
    }

    /// The creation under way in `data_dir`, if one is.
    pub fn load(data_dir: &std::path::Path) -> NodeResult<Option<PendingCreation>> {
        let path = data_dir.join(CREATING_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| NodeError::Internal(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(NodeError::Internal(format!("{}: {e}", path.display()))),
        }
    }

    fn remove(data_dir: &std::path::Path) -> NodeResult<()> {
        match std::fs::remove_file(data_dir.join(CREATING_FILE)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(internal(e)),
        }
    }
}

impl Node {
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

    /// Makes this peer a one-voter cluster: a new cluster CA and this peer's
    /// certificate, the cluster key, and the user `admin`, whose credential is
    /// returned and written to `admin.credentials` in the data dir (mode 0600).
    pub async fn cluster_new(self: &Arc<Self>, name: &str) -> NodeResult<(InfoView, Credential)> {
        self.cluster_new_with(name, None, false).await
    }

    /// As [`Node::cluster_new`], with the overlay range peers get their addresses
    /// from (`None`: [`monk_statemachine::overlay::OVERLAY_RANGE_DEFAULT`]), and
    /// whether workloads reach each other without declared connections.
    pub async fn cluster_new_with(
        self: &Arc<Self>,
        name: &str,
        overlay_range: Option<Ipv4Net>,
        open_network: bool,
    ) -> NodeResult<(InfoView, Credential)> {
        let overlay_range = overlay_range.unwrap_or_else(overlay::default_range);
        overlay::check_range(overlay_range).map_err(NodeError::InvalidArgument)?;
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
        ClusterKey::generate().and_then(|key| key.store(&self.config.data_dir))?;
        self.trust.create_cluster(name, identity.peer_id)?;
        // From here a crash leaves a data dir that finishes the creation when monkd
        // starts again (see `Node::open`), rather than one that refuses both `cluster
        // new` and `join` forever: the marker says what was being created, and the
        // identity is stored before Raft writes anything.
        let pending = PendingCreation {
            cluster: name.to_string(),
            overlay_range,
            open_network,
        };
        pending.store(&self.config.data_dir)?;
        identity::store(&self.config.data_dir, &identity)?;
        self.finish_creation(&identity, pending).await
    }

    /// The rest of `cluster new` once the identity is stored: Raft initialized (unless
    /// a crash came after that), `cluster-created` committed with a new `admin`, the
    /// credential written, the marker removed. Run again after a crash, it finishes.
    pub(super) async fn finish_creation(
        self: &Arc<Self>,
        identity: &Identity,
        pending: PendingCreation,
    ) -> NodeResult<(InfoView, Credential)> {
        let name = pending.cluster.as_str();
        let credential = new_credential()?;
        let raft = self.start_raft(identity).await?;
        if !raft.is_initialized().await.map_err(internal)? {
            let me = PeerNode {
                name: self.config.name.clone(),
                address: self.config.advertise.clone(),
            };
            raft.initialize(BTreeMap::from([(1, me)]))
                .await
                .map_err(internal)?;
        }
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
            admin_token_sha256: Some(credential_sha256(&credential)),
            overlay_range: Some(pending.overlay_range),
            overlay: Some(self.overlay_identity()),
            open_network: pending.open_network,
        };
        let outcome = self
            .propose(self.stamp(format!("peer:{}", self.config.name), command))
            .await?;
        if let Applied::Rejected { reason } = outcome.applied {
            return Err(NodeError::FailedPrecondition(reason.to_string()));
        }
        let credential = Credential {
            cluster: name.to_string(),
            user: ADMIN_USER.to_string(),
            role: Role::Admin,
            credential,
            ca_pem: self.trust.ca_pem().unwrap_or_default(),
            peers: vec![self.config.advertise.clone()],
        };
        credential.store(&self.config.data_dir.join(ADMIN_CREDENTIALS_FILE))?;
        PendingCreation::remove(&self.config.data_dir)?;
        Ok((self.info().await?, credential))
    }

    /// Issues a single-use join token that expires after [`JOIN_TOKEN_TTL_DEFAULT`]
    /// (its hash goes through the log, so any peer can verify it).
    pub async fn issue_token(&self, actor: String) -> NodeResult<String> {
        self.issue_token_for(actor, JOIN_TOKEN_TTL_DEFAULT).await
    }

    /// [`Node::issue_token`] with its own time to live (at most [`JOIN_TOKEN_TTL_MAX`]).
    pub async fn issue_token_for(
        &self,
        actor: String,
        ttl: std::time::Duration,
    ) -> NodeResult<String> {
        if ttl.is_zero() || ttl > JOIN_TOKEN_TTL_MAX {
            return Err(NodeError::InvalidArgument(format!(
                "a join token lives between 1 second and {} days",
                JOIN_TOKEN_TTL_MAX.as_secs() / 86_400
            )));
        }
        let expires_at_ms = super::now_ms() + ttl.as_millis() as u64;
        let addresses: Vec<String> = {
            let applied = self.shared.read().expect("state lock");
            applied
                .state
                .members()
                .filter(|p| p.is_up())
                .map(|p| p.address.clone())
                .collect()
        };
        let fingerprint = self.trust.ca_fingerprint().ok_or(NodeError::NotMember)?;
        let token = JoinToken::new(fingerprint, addresses).map_err(internal)?;
        let outcome = self
            .propose(self.stamp(
                actor,
                Command::JoinTokenIssued {
                    token_sha256: secret_sha256(&token.secret),
                    expires_at_ms: Some(expires_at_ms),
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
        let token = JoinToken::parse(token)?;
        let keys = JoinKeys::generate()?;
        let applicant = Applicant {
            name: self.config.name.clone(),
            address: self.config.advertise.clone(),
            tags: self.config.tags.clone(),
            capacity: self.config.capacity,
            facts: Some(self.measure_facts().await),
            tls_public_key: self.trust.public_key(),
            overlay: Some(self.overlay_identity()),
        };
        // Only a peer whose certificate the CA the token names issued is believed.
        let dialer = Dialer::pinned(&token.ca_fingerprint).map_err(internal)?;
        let mut last_error = String::from("no peer address in token");
        for address in &token.addresses {
            let mut client = match MonkClient::connect(address, &dialer).await {
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
                Err(e) if e.is_refusal() => {
                    return Err(NodeError::PermissionDenied(format!(
                        "join refused by {address}: {}",
                        e.message
                    )));
                }
                Err(e) => last_error = format!("{address}: {}", e.message),
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
                    .map_err(|e| NodeError::PermissionDenied(e.to_string()))?;
                key.store(&self.config.data_dir)?;
            }
            Some(_) => {
                warn!("the admitting peer has no cluster key: secrets will not work on this peer")
            }
            None => {}
        }
        if !admission.peer_cert_pem.is_empty() {
            self.trust.install(
                &admission.cluster_name,
                &admission.ca_pem,
                &admission.ca_key_pem,
                &admission.peer_cert_pem,
            )?;
        }
        let identity = Identity {
            peer_id: admission.peer_id,
            cluster_name: admission.cluster_name,
        };
        identity::store(&self.config.data_dir, &identity)?;
        self.start_raft(&identity).await?;
        // Answer once this peer has the log up to its own admission: before that it
        // knows none of the cluster's users and would refuse every client.
        if admission.joined_at_index > 0 {
            if let Err(e) = self
                .wait_applied(admission.joined_at_index, JOIN_CATCH_UP_WAIT)
                .await
            {
                warn!("joined, but not caught up with the cluster yet: {e}");
            }
        }
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
            tls_public_key: Vec::new(),
            overlay: None,
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
            let mut client = self.peer_client(&leader).await?;
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
            if !applied.state.join_tokens().contains_key(&token_sha256) {
                return Err(NodeError::PermissionDenied(
                    "the join token is not valid for this cluster (unknown, used, or revoked)"
                        .into(),
                ));
            }
            if let Some(expired) = applied
                .state
                .join_token_expiry()
                .get(&token_sha256)
                .filter(|at| **at < super::now_ms())
            {
                return Err(NodeError::PermissionDenied(format!(
                    "the join token expired at {}; issue a new one with `monk cluster token`",
                    monk_audit::time::format_ms(*expired)
                )));
            }
            applied.state.cluster_name().unwrap_or_default().to_owned()
        };
        let _guard = self.membership_lock.lock().await;
        let name = applicant.name.clone();
        let address = applicant.address.clone();
        let tls_public_key = applicant.tls_public_key.clone();
        if !tls_public_key.is_empty() && tls_public_key.len() != crate::trust::pki::PUBLIC_KEY_BYTES
        {
            return Err(NodeError::InvalidArgument(format!(
                "the joining peer's TLS public key has {} bytes; a P-256 key has {}",
                tls_public_key.len(),
                crate::trust::pki::PUBLIC_KEY_BYTES
            )));
        }
        let command = Command::PeerJoined {
            name: applicant.name,
            address: applicant.address,
            token_sha256,
            tags: applicant.tags,
            capacity: applicant.capacity,
            facts: applicant.facts,
            admitted_at_ms: Some(super::now_ms()),
            overlay: applicant.overlay,
        };
        let outcome = self
            .propose(self.stamp(format!("peer:{name}"), command))
            .await?;
        let joined_at_index = outcome.index;
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
        self.heartbeat(peer_id);
        info!(peer = peer_id, %name, %address, "admitted peer as learner");
        let (key_ephemeral, sealed_cluster_key) =
            match (join_public_key.is_empty(), self.cluster_key()?) {
                (false, Some(key)) => key.seal_for(join_public_key)?,
                _ => (Vec::new(), Vec::new()),
            };
        let (ca_pem, ca_key_pem, peer_cert_pem) = match tls_public_key.is_empty() {
            true => Default::default(),
            false => {
                let (ca_pem, ca_key_pem) = self.trust.ca_for_joiner()?;
                let cert = self.trust.issue(peer_id, &tls_public_key)?;
                (ca_pem, ca_key_pem, cert)
            }
        };
        Ok(Admission {
            peer_id,
            cluster_name,
            key_ephemeral,
            sealed_cluster_key,
            ca_pem,
            ca_key_pem,
            peer_cert_pem,
            joined_at_index,
        })
    }

    /// This peer leaves its cluster: the leader removes it, then Raft stops here.
    pub async fn leave(&self) -> NodeResult<InfoView> {
        let (id, raft) = self.require_raft().await?;
        let info = self.info().await?;
        match self.leader_address().await? {
            Some(leader) => {
                let mut client = self.peer_client(&leader).await?;
                client
                    .remove_peer(id)
                    .await
                    .map_err(|s| status_to_error(&s))?;
            }
            None => self.remove_peer(id).await?,
        }
        raft.shutdown().await.map_err(internal)?;
        *self.member.write().await = None;
        identity::remove(&self.config.data_dir)?;
        Ok(info)
    }

    /// Leader side of a removal: out of the Raft configuration, then `peer-left`.
    pub async fn remove_peer(&self, peer: PeerId) -> NodeResult<()> {
        if let Some(leader) = self.leader_address().await? {
            let mut client = self.peer_client(&leader).await?;
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
}
