//! Raft transport behind openraft's network traits. [`Network::Grpc`] talks to peers
//! over tonic, on TLS with the peer's own certificate (`crate::trust`);
//! [`Network::Memory`] calls peers' `Raft` handles in the same process, so several
//! peers run the very same node code in one test or simulation, with injected faults.
//! The in-memory router also carries heartbeats and forwarded proposals (cut by the
//! same partitions), so a simulation needs no socket and can run on a paused clock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::Raft;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::transport::Channel;

use monk_log::{PeerNode, TypeConfig};

use crate::limits::GRPC_MESSAGE_BYTES_MAX;
use crate::node::duties::LastSeen;
use crate::node::Node;
use crate::pb::raft_service_client::RaftServiceClient;
use crate::pb::RaftPayload;
use crate::trust::Trust;

/// Peers reachable in-process, by id (the memory transport's "network").
#[derive(Clone, Default)]
pub struct MemoryRouter {
    peers: Arc<Mutex<HashMap<u64, Raft<TypeConfig>>>>,
    /// Peers whose traffic is dropped (both directions), for partition tests.
    cut: Arc<Mutex<std::collections::HashSet<u64>>>,
    /// (from, to) links that drop AppendEntries but still carry votes, for drills
    /// that need a leader elected by peers its entries never reach.
    appends_dropped: Arc<Mutex<std::collections::HashSet<(u64, u64)>>>,
    /// Each peer's record of heartbeats received, so liveness works in-process too.
    heartbeats: Arc<Mutex<HashMap<u64, LastSeen>>>,
    /// Each peer (id, node) by its advertised address: where a follower forwards a
    /// proposal.
    client_apis: Arc<Mutex<HashMap<String, ClientApi>>>,
    /// Delays and duplicates on every link, for simulations (none by default).
    link_faults: Arc<Mutex<Option<LinkFaults>>>,
}

/// The next draw of a splitmix64 sequence whose state is `state`: small, fast, and
/// good enough to spread delays and pick faults (simulations and drills).
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A peer's id and the peer itself, as the router knows it (weakly: a crashed peer is
/// dropped).
type ClientApi = (u64, Weak<Node>);

/// Message faults on every in-memory link: each Raft request and each reply waits a
/// delay drawn up to `delay_max` (so messages overtake each other), and a request is
/// delivered a second time, after a delay of its own, `duplicate_per_mille` times in
/// a thousand (its second reply is dropped). Draws come from a generator seeded by
/// the caller, so a simulation on one thread replays the same delays.
#[derive(Clone, Debug)]
pub struct LinkFaults {
    pub delay_max: std::time::Duration,
    pub duplicate_per_mille: u32,
    /// The state of the draws (splitmix64).
    pub draws: u64,
}

impl LinkFaults {
    fn next(&mut self) -> u64 {
        splitmix64(&mut self.draws)
    }

    fn delay(&mut self) -> std::time::Duration {
        let max = self.delay_max.as_micros() as u64;
        std::time::Duration::from_micros(self.next() % max.saturating_add(1))
    }
}

impl MemoryRouter {
    pub fn register(&self, id: u64, raft: Raft<TypeConfig>) {
        self.peers.lock().expect("router lock").insert(id, raft);
    }
    /// Where heartbeats to `id` arrive (its leader-side liveness record).
    pub fn register_heartbeats(&self, id: u64, last_seen: LastSeen) {
        self.heartbeats
            .lock()
            .expect("router lock")
            .insert(id, last_seen);
    }
    /// Where proposals forwarded to `address` (the peer `id`) arrive.
    pub fn register_client_api(&self, address: &str, id: u64, node: Weak<Node>) {
        self.client_apis
            .lock()
            .expect("router lock")
            .insert(address.to_string(), (id, node));
    }
    /// The running peer that advertises `address`, if the peer `from` can reach it (a
    /// partition cuts forwarded proposals as it cuts Raft traffic).
    pub fn client_api(&self, from: u64, address: &str) -> Option<Arc<Node>> {
        let (to, node) = self
            .client_apis
            .lock()
            .expect("router lock")
            .get(address)
            .cloned()?;
        let cut = self.cut.lock().expect("router lock");
        if cut.contains(&from) || cut.contains(&to) {
            return None;
        }
        drop(cut);
        node.upgrade().filter(|node| !node.is_shut_down())
    }
    /// Delivers a heartbeat from `from` to `to`, unless a partition cuts either.
    pub fn heartbeat(&self, from: u64, to: u64) {
        if self.target(from, to).is_none() {
            return;
        }
        let sink = self
            .heartbeats
            .lock()
            .expect("router lock")
            .get(&to)
            .cloned();
        if let Some(sink) = sink {
            sink.lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(from, tokio::time::Instant::now());
        }
    }
    /// Sets (or, with `None`, clears) the message faults on every link.
    pub fn set_link_faults(&self, faults: Option<LinkFaults>) {
        *self.link_faults.lock().expect("router lock") = faults;
    }
    /// A delay for the next message on some link, if links are delayed.
    async fn link_delay(&self) {
        let delay = self
            .link_faults
            .lock()
            .expect("router lock")
            .as_mut()
            .map(LinkFaults::delay);
        if let Some(delay) = delay.filter(|d| !d.is_zero()) {
            tokio::time::sleep(delay).await;
        }
    }
    /// Whether the next request is delivered twice.
    fn duplicate(&self) -> bool {
        self.link_faults
            .lock()
            .expect("router lock")
            .as_mut()
            .is_some_and(|f| f.next() % 1000 < u64::from(f.duplicate_per_mille))
    }
    /// Delivers one request over the link `from` -> `to`: the delays and duplicates of
    /// [`LinkFaults`] around `call`, the request's delivery to the target's Raft.
    async fn deliver<Req, Resp, Fut>(
        &self,
        request: Req,
        call: impl Fn(Raft<TypeConfig>, Req) -> Fut,
        raft: Raft<TypeConfig>,
    ) -> Resp
    where
        Req: Clone + Send + 'static,
        Fut: std::future::Future<Output = Resp> + Send + 'static,
        Resp: Send + 'static,
    {
        self.link_delay().await;
        if self.duplicate() {
            let again = call(raft.clone(), request.clone());
            let router = self.clone();
            tokio::spawn(async move {
                router.link_delay().await;
                let _ = again.await;
            });
        }
        let reply = call(raft, request).await;
        self.link_delay().await;
        reply
    }
    pub fn isolate(&self, id: u64, isolated: bool) {
        let mut cut = self.cut.lock().expect("router lock");
        if isolated {
            cut.insert(id);
        } else {
            cut.remove(&id);
        }
    }
    /// Drops (or restores) AppendEntries from `from` to `to`; votes still pass.
    pub fn drop_appends(&self, from: u64, to: u64, dropped: bool) {
        let mut links = self.appends_dropped.lock().expect("router lock");
        if dropped {
            links.insert((from, to));
        } else {
            links.remove(&(from, to));
        }
    }
    fn appends_reach(&self, from: u64, to: u64) -> bool {
        !self
            .appends_dropped
            .lock()
            .expect("router lock")
            .contains(&(from, to))
    }
    fn target(&self, from: u64, to: u64) -> Option<Raft<TypeConfig>> {
        let cut = self.cut.lock().expect("router lock");
        if cut.contains(&from) || cut.contains(&to) {
            return None;
        }
        self.peers.lock().expect("router lock").get(&to).cloned()
    }
}

/// The transport a peer uses.
#[derive(Clone)]
pub enum Network {
    /// gRPC over TLS; the peer dials with its own certificate once it has one.
    Grpc,
    /// What [`Network::Grpc`] becomes when Raft starts: dialing with this material.
    GrpcWith(Arc<Trust>),
    Memory {
        router: MemoryRouter,
        self_id: u64,
    },
}

pub enum Connection {
    Grpc {
        target: u64,
        address: String,
        trust: Option<Arc<Trust>>,
        client: Option<RaftServiceClient<Channel>>,
    },
    Memory {
        router: MemoryRouter,
        from: u64,
        target: u64,
    },
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: u64, node: &PeerNode) -> Connection {
        let trust = match self {
            Network::GrpcWith(trust) => Some(trust.clone()),
            _ => None,
        };
        match self {
            Network::Grpc | Network::GrpcWith(_) => Connection::Grpc {
                target,
                address: node.address.clone(),
                trust,
                client: None,
            },
            Network::Memory { router, self_id } => Connection::Memory {
                router: router.clone(),
                from: *self_id,
                target,
            },
        }
    }
}

/// Why an AppendEntries request must not be sent, if it must not: its entries do not
/// follow `prev_log_id`, or one belongs to a term after the sender's vote. openraft
/// builds both from what the log store returns when the replication task reads it;
/// a task left over from a leadership this peer lost may read after the log changed
/// under it (purged: `LogStore::limited_get_log_entries` answers nothing then;
/// truncated and refilled by the next leader: the entries carry that newer term), and
/// a follower still in the old term would accept them at the wrong place.
pub fn malformed_append(rpc: &AppendEntriesRequest<TypeConfig>) -> Option<String> {
    let term = rpc.vote.leader_id().term;
    let first = rpc.prev_log_id.map_or(0, |p| p.index + 1);
    for (expected, entry) in (first..).zip(&rpc.entries) {
        if entry.log_id.index != expected {
            return Some(format!(
                "not sending entry {} as the one after {:?}",
                entry.log_id, rpc.prev_log_id
            ));
        }
        if entry.log_id.leader_id.term > term {
            return Some(format!(
                "not sending entry {} under the vote of term {term}",
                entry.log_id
            ));
        }
    }
    None
}

type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<u64, PeerNode, RaftError<u64, E>>>;

/// The entries to try after a batch of `entries` was too large: half, at least one.
pub fn smaller_batch(entries: u64) -> u64 {
    (entries / 2).max(1)
}

impl Connection {
    /// One Raft RPC over gRPC; `entries` is how many log entries the request carries
    /// (for the smaller-batch hint when it is too large).
    async fn grpc_call<
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    >(
        &mut self,
        method: &'static str,
        request: &Req,
        entries: u64,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<u64, PeerNode, RaftError<u64, E>>> {
        let Connection::Grpc {
            target,
            address,
            trust,
            client,
        } = self
        else {
            unreachable!("grpc_call on a memory connection")
        };
        if client.is_none() {
            let unreachable =
                |e: String| RPCError::Unreachable(Unreachable::new(&std::io::Error::other(e)));
            let dialer = trust
                .as_ref()
                .ok_or_else(|| unreachable("no TLS material to dial peers with".into()))?
                .peer_dialer()
                .map_err(|e| unreachable(e.to_string()))?;
            let channel = dialer
                .channel(address, crate::limits::RPC_TIMEOUT)
                .await
                .map_err(unreachable)?;
            *client = Some(
                RaftServiceClient::new(channel)
                    .max_decoding_message_size(GRPC_MESSAGE_BYTES_MAX)
                    .max_encoding_message_size(GRPC_MESSAGE_BYTES_MAX),
            );
        }
        let grpc = client.as_mut().expect("connected above");
        let json =
            serde_json::to_vec(request).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let mut req = tonic::Request::new(RaftPayload { json });
        req.set_timeout(option.hard_ttl());
        let reply = match method {
            "append" => grpc.append_entries(req).await,
            "vote" => grpc.vote(req).await,
            _ => grpc.install_snapshot(req).await,
        };
        let reply = match reply {
            Ok(r) => r.into_inner(),
            // Too big for one gRPC message (either end's limit): openraft sends fewer
            // entries next time instead of retrying the same batch forever.
            Err(status) if status.code() == tonic::Code::OutOfRange && method == "append" => {
                return Err(RPCError::PayloadTooLarge(
                    PayloadTooLarge::new_entries_hint(smaller_batch(entries)),
                ));
            }
            Err(status) => {
                *client = None;
                return Err(RPCError::Unreachable(Unreachable::new(
                    &std::io::Error::other(format!("{}: {}", address, status.message())),
                )));
            }
        };
        let result: Result<Resp, RaftError<u64, E>> = serde_json::from_slice(&reply.json)
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(*target, e)))
    }

    // openraft's network traits fix this error type; boxing it here would only move
    // the conversion.
    #[allow(clippy::result_large_err)]
    fn memory_target<E: std::error::Error>(
        &self,
    ) -> Result<Raft<TypeConfig>, RPCError<u64, PeerNode, RaftError<u64, E>>> {
        let Connection::Memory {
            router,
            from,
            target,
        } = self
        else {
            unreachable!("memory_target on a grpc connection")
        };
        router.target(*from, *target).ok_or_else(|| {
            RPCError::Unreachable(Unreachable::new(&std::io::Error::other(format!(
                "peer {target} unreachable"
            ))))
        })
    }

    fn remote<E: std::error::Error>(
        &self,
        e: RaftError<u64, E>,
    ) -> RPCError<u64, PeerNode, RaftError<u64, E>> {
        let target = match self {
            Connection::Grpc { target, .. } | Connection::Memory { target, .. } => *target,
        };
        RPCError::RemoteError(RemoteError::new(target, e))
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<u64>> {
        if let Some(why) = malformed_append(&rpc) {
            return Err(RPCError::Unreachable(Unreachable::new(
                &std::io::Error::other(why),
            )));
        }
        match self {
            Connection::Grpc { .. } => {
                let entries = rpc.entries.len() as u64;
                self.grpc_call("append", &rpc, entries, &option).await
            }
            Connection::Memory {
                router,
                from,
                target,
            } if !router.appends_reach(*from, *target) => {
                Err(RPCError::Unreachable(Unreachable::new(
                    &std::io::Error::other(format!("appends to peer {target} dropped")),
                )))
            }
            Connection::Memory { router, .. } => {
                let router = router.clone();
                let raft = self.memory_target()?;
                let call =
                    |raft: Raft<TypeConfig>, rpc| async move { raft.append_entries(rpc).await };
                router
                    .deliver(rpc, call, raft)
                    .await
                    .map_err(|e| self.remote(e))
            }
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<u64>, InstallSnapshotError> {
        match self {
            Connection::Grpc { .. } => self.grpc_call("snapshot", &rpc, 0, &option).await,
            Connection::Memory { .. } => {
                let raft = self.memory_target()?;
                raft.install_snapshot(rpc).await.map_err(|e| self.remote(e))
            }
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<u64>> {
        match self {
            Connection::Grpc { .. } => self.grpc_call("vote", &rpc, 0, &option).await,
            Connection::Memory { router, .. } => {
                let router = router.clone();
                let raft = self.memory_target()?;
                let call = |raft: Raft<TypeConfig>, rpc| async move { raft.vote(rpc).await };
                router
                    .deliver(rpc, call, raft)
                    .await
                    .map_err(|e| self.remote(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, Vote};

    fn entry(term: u64, index: u64) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(term, 1), index),
            payload: EntryPayload::Blank,
        }
    }

    fn request(
        term: u64,
        prev: Option<(u64, u64)>,
        entries: &[(u64, u64)],
    ) -> AppendEntriesRequest<TypeConfig> {
        AppendEntriesRequest {
            vote: Vote::new_committed(term, 1),
            prev_log_id: prev.map(|(t, i)| LogId::new(CommittedLeaderId::new(t, 1), i)),
            entries: entries.iter().map(|(t, i)| entry(*t, *i)).collect(),
            leader_commit: None,
        }
    }

    #[test]
    fn only_entries_that_follow_prev_in_the_senders_terms_are_sent() {
        assert_eq!(
            malformed_append(&request(2, Some((1, 6)), &[(1, 7), (2, 8)])),
            None
        );
        assert_eq!(malformed_append(&request(2, None, &[(1, 0), (1, 1)])), None);
        assert_eq!(malformed_append(&request(2, Some((1, 6)), &[])), None);
        // A purged range read as what follows: 111 is not the entry after 106.
        let gap = malformed_append(&request(2, Some((1, 106)), &[(1, 111)]));
        assert!(gap.is_some_and(|why| why.contains("after")));
        // A hole inside the batch.
        assert!(malformed_append(&request(2, Some((1, 6)), &[(1, 7), (1, 9)])).is_some());
        // The next leader's entries under a stale vote.
        let newer = malformed_append(&request(2, Some((1, 6)), &[(3, 7)]));
        assert!(newer.is_some_and(|why| why.contains("term 2")));
    }
}
