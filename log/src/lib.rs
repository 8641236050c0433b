//! openraft storage on RocksDB, and an offline reader of a peer's data dir.
//!
//! - [`codec`]: how one log entry is laid out on disk (CRC32 + JSON) and decoded with
//!   errors that name the index and byte offset.
//! - [`store`]: the [`LogStore`] (entries, vote, committed, last purged) and the RocksDB
//!   layout shared with the state machine.
//! - [`state_machine`]: [`StateMachineStore`], a thin adapter around
//!   `monk_statemachine::apply`, with snapshot build / install / restore.
//! - [`reader`]: [`DataDirReader`], a read-only view of a data dir (live or dead) for
//!   replay and audit.
//! - [`replay`]: [`replay::Replayer`], which rebuilds the state at any index or time
//!   from a data dir with the same apply function the live state machine uses.
//! - [`runtime`]: the async runtime openraft runs on (tokio with a seedable RNG, for
//!   simulations that replay one schedule per seed).

// openraft's storage traits fix `StorageError` (224 bytes) as the error type of every
// method; our helpers return the same type rather than box and convert it back.
#![allow(clippy::result_large_err)]

use std::io::Cursor;

use serde::{Deserialize, Serialize};

pub mod codec;
pub mod reader;
pub mod replay;
pub mod runtime;
pub mod state_machine;
pub mod store;

pub use reader::DataDirReader;
pub use state_machine::{
    AppliedEvent, AppliedState, ApplyStats, SharedState, StateMachineStore, EVENTS_KEPT_MAX,
};
pub use store::{open_store, LogStore, OpenError};

/// A peer as Raft membership knows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PeerNode {
    pub name: String,
    /// `host:port` of the peer's gRPC endpoint.
    pub address: String,
}

impl std::fmt::Display for PeerNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.name, self.address)
    }
}

openraft::declare_raft_types!(
    /// The Raft types of a monk cluster: proposals in, apply results out.
    pub TypeConfig:
        D = monk_statemachine::Proposal,
        R = monk_statemachine::Applied,
        NodeId = u64,
        Node = PeerNode,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = runtime::MonkRuntime,
);

/// A Raft log entry of this cluster.
pub type RaftEntry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<u64>;
pub type StorageError = openraft::StorageError<u64>;
pub type SnapshotMeta = openraft::SnapshotMeta<u64, PeerNode>;
pub type StoredMembership = openraft::StoredMembership<u64, PeerNode>;
