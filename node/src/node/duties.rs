//! The background duties every member runs once Raft starts: a follower heartbeats
//! the leader (over gRPC, or through the in-memory router, so simulations drill
//! liveness too); the leader reviews liveness and voter membership. The decisions are
//! the pure functions of [`super::decisions`]; this module reads the clock, the state
//! and Raft's metrics, and proposes or changes membership.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::time::Instant;

use openraft::{ChangeMembers, Raft, ServerState};
use tracing::{info, warn};

use monk_log::{PeerNode, TypeConfig};
use monk_statemachine::PeerId;

use super::decisions::{
    autopilot_change, liveness_decisions, MemberStatus, VoterChange, VoterView,
};
use super::Node;
use crate::limits::{
    AUTOPILOT_INTERVAL, HEARTBEAT_TIMEOUT, PEER_HEARTBEAT_INTERVAL, QUORUM_ACK_WATCH_RETRY,
};
use crate::network::Network;

/// When each peer's last heartbeat arrived (the leader's liveness input). Shared with
/// the in-memory router, which delivers heartbeats into it.
pub type LastSeen = Arc<Mutex<BTreeMap<PeerId, Instant>>>;

impl Node {
    pub(super) fn spawn_duties(self: &Arc<Self>) {
        self.spawn_quorum_ack_watch();
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
                node.snapshot_by_size(&raft, &metrics).await;
                if metrics.state == ServerState::Leader {
                    node.leader_duties(id, &raft).await;
                } else {
                    *node.leader_since.lock().unwrap_or_else(|p| p.into_inner()) = None;
                    node.send_heartbeat(id, &metrics).await;
                }
            }
        });
    }

    /// Follows openraft's metrics as they are published (every turn of the Raft core)
    /// and records this peer's quorum acknowledgement with the time it arrived
    /// ([`Node::note_quorum_ack`]): the lease then ages when the core stalls (a disk
    /// that does not answer an fsync) instead of trusting the last figure forever.
    fn spawn_quorum_ack_watch(self: &Arc<Self>) {
        let node = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let raft = {
                    let Some(node) = node.upgrade() else { return };
                    if node.is_shut_down() {
                        return;
                    }
                    node.raft().await
                };
                let Some(raft) = raft else {
                    tokio::time::sleep(QUORUM_ACK_WATCH_RETRY).await;
                    continue;
                };
                let mut metrics = raft.metrics();
                loop {
                    // Bounded, so a shut-down node is noticed even while Raft is silent.
                    match tokio::time::timeout(QUORUM_ACK_WATCH_RETRY, metrics.changed()).await {
                        Ok(Ok(())) => {
                            let Some(node) = node.upgrade() else { return };
                            let m = metrics.borrow_and_update().clone();
                            node.note_quorum_ack(
                                m.current_term,
                                m.state == ServerState::Leader,
                                m.millis_since_quorum_ack,
                            );
                        }
                        // This Raft stopped: pause (it answers at once from now on),
                        // then look for the peer's Raft again.
                        Ok(Err(_)) => {
                            tokio::time::sleep(QUORUM_ACK_WATCH_RETRY).await;
                            break;
                        }
                        Err(_) => {}
                    }
                    let Some(node) = node.upgrade() else { return };
                    if node.is_shut_down() {
                        return;
                    }
                }
            }
        });
    }

    /// Takes a snapshot once the log grew by `snapshot_after_bytes` since the last
    /// one (openraft's own policy counts entries only).
    async fn snapshot_by_size(
        &self,
        raft: &Raft<TypeConfig>,
        metrics: &openraft::RaftMetrics<u64, PeerNode>,
    ) {
        let appended = self.log.appended_bytes();
        let snapshot = metrics.snapshot.map(|l| l.index);
        let grown = {
            let mut mark = self.snapshot_mark.lock().unwrap_or_else(|p| p.into_inner());
            if mark.0 != snapshot {
                *mark = (snapshot, appended);
                return;
            }
            let grown = appended.saturating_sub(mark.1);
            if grown < self.config.snapshot_after_bytes {
                return;
            }
            mark.1 = appended;
            grown
        };
        tracing::info!(
            grown,
            "the log grew past --snapshot-every-bytes since the last snapshot: taking one"
        );
        if let Err(e) = raft.trigger().snapshot().await {
            warn!("cannot trigger a snapshot: {e}");
        }
    }

    async fn send_heartbeat(&self, id: PeerId, metrics: &openraft::RaftMetrics<u64, PeerNode>) {
        let Some(leader_id) = metrics.current_leader else {
            return;
        };
        if let Network::Memory { router, .. } = &self.network {
            router.heartbeat(id, leader_id);
            return;
        }
        let Some(leader) = metrics
            .membership_config
            .membership()
            .get_node(&leader_id)
            .cloned()
        else {
            return;
        };
        let sent_at = Instant::now();
        // Bounded: a leader cut off mid-call would otherwise hold this loop for the
        // whole RPC deadline, and no renewal from the leader elected meanwhile could
        // reach the lease before it ran out.
        let answer = tokio::time::timeout(HEARTBEAT_TIMEOUT, async {
            let mut client = self
                .peer_client(&leader.address)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            client.heartbeat(id).await.map_err(|e| e.message)
        })
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {HEARTBEAT_TIMEOUT:?}")));
        match answer {
            Ok(applied) => self
                .lease
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .renew(sent_at, applied),
            Err(e) => warn!(leader = %leader.address, "heartbeat failed: {e}"),
        }
    }

    /// Records a heartbeat from `peer` (the leader's side).
    pub fn heartbeat(&self, peer: PeerId) {
        self.last_seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(peer, Instant::now());
    }

    /// Liveness (`peer-down` / `peer-up`) and voter autopilot; runs on the leader only.
    async fn leader_duties(&self, id: PeerId, raft: &Raft<TypeConfig>) {
        let now = Instant::now();
        let since = *self
            .leader_since
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(now);
        let members: Vec<MemberStatus> = self.with_state(|state| {
            state
                .members()
                .map(|p| MemberStatus {
                    id: p.id,
                    up: p.is_up(),
                })
                .collect()
        });
        let last_seen = self
            .last_seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for command in liveness_decisions(id, &members, &last_seen, since, now) {
            info!(
                kind = command.kind(),
                "liveness change: {}",
                command.summary()
            );
            if let Err(e) = self
                .propose(self.stamp(format!("peer:{id}"), command))
                .await
            {
                warn!("liveness proposal failed: {e}");
            }
        }
        let up = members.iter().map(|m| (m.id, m.up)).collect();
        self.autopilot(raft, up).await;
    }

    /// Carries out [`autopilot_change`] on Raft's current voters and learners.
    async fn autopilot(&self, raft: &Raft<TypeConfig>, up: BTreeMap<PeerId, bool>) {
        let Ok(_guard) = self.membership_lock.try_lock() else {
            return;
        };
        let metrics = raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership().clone();
        let view = VoterView {
            voters: membership.voter_ids().collect(),
            learners: membership.learner_ids().collect(),
            joint: membership.get_joint_config().len() > 1,
            last_log_index: metrics.last_log_index.unwrap_or(0),
            matched: metrics
                .replication
                .as_ref()
                .map(|r| {
                    r.iter()
                        .filter_map(|(id, m)| m.map(|m| (*id, m.index)))
                        .collect()
                })
                .unwrap_or_default(),
            up,
        };
        let change = match autopilot_change(&view) {
            None => return,
            Some(VoterChange::Promote(learner)) => ChangeMembers::AddVoterIds([learner].into()),
            Some(VoterChange::Swap { down, learner }) => {
                let mut next = view.voters.clone();
                next.remove(&down);
                next.insert(learner);
                ChangeMembers::ReplaceAllVoters(next)
            }
        };
        info!(?change, "autopilot changes voters");
        if let Err(e) = raft.change_membership(change, true).await {
            warn!("autopilot membership change failed: {e}");
        }
    }
}
