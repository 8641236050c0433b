//! Reads: linearizable reads (read-index on the leader), queries answered from the
//! applied state, the `info`, `peers` and `consensus` views, forwarding a proposal that
//! entered no log, and exporting a checkpoint of the Raft data for `monk` audits.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;

use openraft::error::{CheckIsLeaderError, RaftError};
use openraft::storage::RaftLogStorage;
use openraft::ServerState;

use monk_statemachine::{snapshot::digest, Proposal};

use super::{forwarded_error, internal, now_ms, Node, NodeError, NodeResult};
use crate::api::Query;
use crate::identity;
use crate::limits::{EXPORT_BYTES_MAX, NO_LEADER_RETRY_FOR, NO_LEADER_RETRY_PAUSE};
use crate::views::*;
use tokio::time::Instant;

impl Node {
    /// Waits until this peer's state reflects everything committed before the call
    /// (read-index); on a follower the caller forwards the read to the leader instead.
    /// While no leader is known (a peer that just joined hears of it with the first
    /// heartbeat; an election may be under way), or the leader cannot yet confirm a
    /// quorum (voters just added), it waits, as `propose` does.
    pub async fn linearize(&self) -> NodeResult<Option<String>> {
        let (_, raft) = self.require_raft().await?;
        let deadline = Instant::now() + NO_LEADER_RETRY_FOR;
        loop {
            match raft.ensure_linearizable().await {
                Ok(_) => return Ok(None),
                Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
                    if let Some(node) = &f.leader_node {
                        return Ok(Some(node.address.clone()));
                    }
                    if Instant::now() >= deadline {
                        return Err(NodeError::Unavailable("no leader is known yet".into()));
                    }
                }
                // Right after a membership change (a learner promoted) the new voters
                // may not have acknowledged the leader yet: wait for them as well.
                Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(e)))
                    if Instant::now() < deadline =>
                {
                    tracing::debug!("read waits for a quorum: {e}");
                }
                Err(RaftError::APIError(e)) => return Err(NodeError::Unavailable(e.to_string())),
                Err(e) => return Err(internal(e)),
            }
            tokio::time::sleep(NO_LEADER_RETRY_PAUSE).await;
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
        let mut client = self
            .peer_client(leader)
            .await
            .map_err(|e| NodeError::Unavailable(format!("cannot reach leader {leader}: {e}")))?;
        client
            .propose_raw(proposal)
            .await
            .map_err(|e| forwarded_error(leader, &e))
    }

    /// Answers a query as the client API does: unless `stale`, after a read-index round,
    /// from the leader's state when this peer is not the leader (forwarded over gRPC,
    /// or through the in-memory router in simulations).
    pub fn query<'a>(
        &'a self,
        query: &'a Query,
        stale: bool,
    ) -> Pin<Box<dyn Future<Output = NodeResult<serde_json::Value>> + Send + 'a>> {
        Box::pin(async move {
            if !stale {
                if let Some(leader) = self.linearize().await? {
                    return match self.memory_peer(&leader).await {
                        Some(peer) => peer?.query(query, false).await,
                        None => self
                            .peer_client(&leader)
                            .await?
                            .query(query, false)
                            .await
                            .map_err(|e| super::status_to_error(&e)),
                    };
                }
            }
            match query {
                Query::Peers => serde_json::to_value(self.peers().await?).map_err(internal),
                Query::Overlay => serde_json::to_value(self.overlay_rows().await).map_err(internal),
                _ => self.query_local(query),
            }
        })
    }

    /// Answers a query from local state (after [`Node::linearize`] when not stale).
    /// `Query::Peers` needs Raft's view too and is answered by [`Node::peers`].
    pub fn query_local(&self, query: &Query) -> NodeResult<serde_json::Value> {
        let applied = self.shared.read().expect("state lock");
        let state = &applied.state;
        let value = match query {
            Query::Peers | Query::Overlay => {
                return Err(NodeError::InvalidArgument(format!(
                    "{}: ask the peer, not its local state",
                    query.what()
                )))
            }
            Query::OverlayLocal => serde_json::to_value(self.overlay_status()),
            Query::Templates => serde_json::to_value(crate::hub::catalog::template_rows(state)),
            Query::Hub => serde_json::to_value(crate::hub::catalog::kit_rows(state)),
            Query::Images => serde_json::to_value(state.image_rows()),
            Query::Registries => serde_json::to_value(state.registry_rows()),
            Query::HubTemplate { path } => match crate::hub::catalog::template_view(state, path) {
                Some(view) => serde_json::to_value(view),
                None => {
                    return Err(NodeError::InvalidArgument(format!(
                        "no hub definition at {path}"
                    )))
                }
            },
            Query::Template { path } => match state.templates().get(path) {
                Some(t) => serde_json::to_value(t),
                None => return Err(NodeError::InvalidArgument(format!("no template at {path}"))),
            },
            Query::ResolvedTemplate { path } => {
                let lookup = |p: &str| state.definition(p);
                let resolved = monk_scripting::monkscript::resolve::resolve(path, &lookup)
                    .map_err(|e| NodeError::InvalidArgument(format!("{path}: {e}")))?;
                serde_json::to_value(resolved)
            }
            // What lookups see: loaded definitions and the Hub's visible ones.
            Query::TemplatesAll => serde_json::to_value(
                crate::hub::catalog::template_rows(state)
                    .into_iter()
                    .filter_map(|row| {
                        let tree = state.definition(&row.path)?.clone();
                        Some((row.path, tree))
                    })
                    .collect::<BTreeMap<_, _>>(),
            ),
            Query::Cluster => serde_json::to_value(monk_statemachine::ClusterView::of(state)),
            Query::Instances => serde_json::to_value(monk_statemachine::view::instances(state)),
            Query::Workload { path } => match state.workloads().get(path) {
                Some(w) => serde_json::to_value(w),
                None => {
                    return Err(NodeError::InvalidArgument(format!(
                        "no workload {path} is running or stopped"
                    )))
                }
            },
            Query::Secrets => serde_json::to_value(
                state
                    .secrets()
                    .values()
                    .map(monk_statemachine::SecretName::from)
                    .collect::<Vec<_>>(),
            ),
            // The one redacted view of the state (secrets by name only), as `monk
            // replay` prints it.
            Query::Users => serde_json::to_value(
                state
                    .users()
                    .iter()
                    .map(|(name, u)| crate::views::UserRow {
                        name: name.clone(),
                        role: u.role,
                        added_at_index: u.added_at_index,
                    })
                    .collect::<Vec<_>>(),
            ),
            Query::JoinTokens => serde_json::to_value(
                state
                    .join_tokens()
                    .iter()
                    .map(|(hash, index)| crate::views::JoinTokenRow {
                        sha256: hash.clone(),
                        issued_at_index: *index,
                        expires_at_ms: state.join_token_expiry().get(hash).copied(),
                    })
                    .collect::<Vec<_>>(),
            ),
            Query::State => serde_json::to_value(monk_audit::RedactedState::of(state)),
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
                .cluster_name()
                .map(str::to_owned);
            if view.cluster.is_none() {
                view.cluster = identity::load(&self.config.data_dir)
                    .ok()
                    .flatten()
                    .map(|i| i.cluster_name);
            }
        }
        Ok(view)
    }

    /// Every member's overlay interface, each as that peer reports it (asked over
    /// the members' own connections, each bounded); a peer that does not answer gets
    /// a row with the error.
    pub async fn overlay_rows(&self) -> Vec<crate::views::OverlayRow> {
        let me = self.peer_id().await;
        let members: Vec<(u64, String, String, Option<std::net::Ipv4Addr>)> =
            self.with_state(|s| {
                s.members()
                    .map(|p| {
                        (
                            p.id,
                            p.name.clone(),
                            p.address.clone(),
                            p.overlay.as_ref().map(|o| o.address),
                        )
                    })
                    .collect()
            });
        let mut rows = Vec::new();
        for (id, name, address, overlay_address) in members {
            let status = if Some(id) == me {
                Ok(self.overlay_status())
            } else {
                let ask = async {
                    let mut client = self
                        .peer_client(&address)
                        .await
                        .map_err(|e| e.to_string())?;
                    client
                        .query(&Query::OverlayLocal, true)
                        .await
                        .map_err(|e| e.message.clone())
                };
                match tokio::time::timeout(crate::limits::PEER_QUERY_TIMEOUT, ask).await {
                    Ok(answer) => answer,
                    Err(_) => Err(format!(
                        "no answer within {:?}",
                        crate::limits::PEER_QUERY_TIMEOUT
                    )),
                }
            };
            rows.push(crate::views::OverlayRow {
                id,
                name,
                overlay_address,
                status: status.as_ref().ok().cloned(),
                error: status.err(),
            });
        }
        rows
    }

    pub async fn peers(&self) -> NodeResult<Vec<PeerRow>> {
        let (_, raft) = self.require_raft().await?;
        let metrics = raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership().clone();
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        let seen = self
            .last_seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let tunnel = self.overlay_status();
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
                    overlay_address: p.overlay.as_ref().map(|o| o.address),
                    handshake_age_secs: tunnel.peers.get(&p.id).and_then(|s| s.handshake_age_secs),
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
}
