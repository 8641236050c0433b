//! Raft transport behind openraft's network traits. [`Network::Grpc`] talks to peers
//! over tonic, on TLS with the peer's own certificate (`crate::trust`); [`Network::Memory`] calls peers' `Raft` handles in the same process, so
//! several peers run the very same node code in one test (and, later, under a
//! simulated network with injected faults).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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
                .insert(from, std::time::Instant::now());
        }
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
            Connection::Memory { .. } => {
                let raft = self.memory_target()?;
                raft.append_entries(rpc).await.map_err(|e| self.remote(e))
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
            Connection::Memory { .. } => {
                let raft = self.memory_target()?;
                raft.vote(rpc).await.map_err(|e| self.remote(e))
            }
        }
    }
}
