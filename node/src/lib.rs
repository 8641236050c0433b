//! `monkd`, one peer of a monk cluster: Raft (openraft) over gRPC (tonic), the client
//! API, liveness and voter autopilot.
//!
//! - [`node`]: the peer itself, transport-agnostic.
//! - [`api`]: the typed client API: every [`api::Query`] and the [`api::ClientError`]s.
//! - [`admission`]: what a client's proposal gets before it enters the log (placement
//!   scripts evaluated, host ports listed).
//! - [`network`]: Raft transport (gRPC, or in-process for tests and simulation).
//! - [`server`]: gRPC services; [`client`]: the typed client `monk` uses;
//!   [`snapshot_stream`]: which snapshot chunks a follower accepts.
//! - [`daemon`]: process wiring (listen, serve, graceful shutdown).
//! - [`events`]: the applied commands, streamed as they are applied (`monk events`).
//! - [`facts`]: measures this peer's machine and reports it for `requirements`.
//! - [`hub`]: reads Hub sources and proposes their kits into the catalog
//!   (`monk hub add`, `monkd --hub-source`).
//! - [`executor`]: reconciles this peer's containers with the replicas placed on it.
//! - [`keys`]: the cluster key, sealing; [`secrets`]: set, get, and resolve for workloads.
//! - [`trust`]: the cluster CA and peer certificates, TLS on every connection, who may
//!   call what, user credentials.
//! - [`overlay`]: this peer's WireGuard key and advertised identity, and the pure
//!   planner of its interface.
//! - [`clock`]: the wall clock proposals are stamped with (simulated on a claimed thread).
//! - [`limits`]: every timing and limit, named.
//! - [`metrics`]: Prometheus metrics at `/metrics` (`monkd --metrics-listen`).

pub mod admission;
pub mod api;
pub mod client;
pub mod clock;
pub mod daemon;
pub mod entity;
pub mod events;
pub mod executor;
pub mod facts;
pub mod hub;
pub mod identity;
pub mod keys;
pub mod limits;
pub mod metrics;
pub mod network;
pub mod node;
pub mod overlay;
pub mod registry;
pub mod secrets;
pub mod server;
pub mod snapshot_stream;
pub mod storage;
pub mod token;
pub mod trust;
pub mod views;

/// Generated protobuf and gRPC code (`proto/monk.proto`).
pub mod pb {
    tonic::include_proto!("monk.v1");
}

pub use client::MonkClient;
pub use node::{Node, NodeConfig, NodeError};
