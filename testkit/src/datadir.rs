//! Writing data dirs for tests and benchmarks through the real storage code: entries
//! are appended by [`LogStore`] and applied by [`StateMachineStore`] exactly as a live
//! peer does, snapshots are built and the log purged the same way. No Raft and no
//! network: this is how a test gets a data dir with a snapshot and a compacted log
//! without committing 10,000 entries through `monkd`.

use std::collections::BTreeMap;
use std::path::Path;

use monk_statemachine::{Applied, Proposal, State};
use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::{CommittedLeaderId, EntryPayload, Membership, RaftSnapshotBuilder};

use monk_log::{open_store, LogId, LogStore, PeerNode, RaftEntry, StateMachineStore};

/// A Raft log id for entry `index` written in `term` by leader 1.
pub fn log_id(term: u64, index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

/// A normal entry carrying `proposal`.
pub fn normal(term: u64, index: u64, proposal: Proposal) -> RaftEntry {
    RaftEntry {
        log_id: log_id(term, index),
        payload: EntryPayload::Normal(proposal),
    }
}

/// The blank entry a new leader appends.
pub fn blank(term: u64, index: u64) -> RaftEntry {
    RaftEntry {
        log_id: log_id(term, index),
        payload: EntryPayload::Blank,
    }
}

/// A one-voter membership entry (peer 1), as `cluster new` writes at index 0.
pub fn membership(term: u64, index: u64) -> RaftEntry {
    let nodes = BTreeMap::from([(1, PeerNode::default())]);
    RaftEntry {
        log_id: log_id(term, index),
        payload: EntryPayload::Membership(Membership::from(nodes)),
    }
}

/// Why writing a test data dir failed.
#[derive(Debug, thiserror::Error)]
#[error("writing a test data dir: {0}")]
pub struct WriteError(String);

fn fail(e: impl std::fmt::Display) -> WriteError {
    WriteError(e.to_string())
}

/// A data dir being written by the live store code.
pub struct DataDirWriter {
    log: LogStore,
    sm: StateMachineStore,
    runtime: tokio::runtime::Runtime,
}

impl DataDirWriter {
    /// Creates (or opens) the RocksDB store in `raft_dir`.
    pub fn create(raft_dir: &Path) -> Result<DataDirWriter, WriteError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .map_err(fail)?;
        let (log, sm) = open_store(raft_dir).map_err(fail)?;
        Ok(DataDirWriter { log, sm, runtime })
    }

    /// Appends `entries` to the log (synced) without applying them.
    pub fn append(&mut self, entries: Vec<RaftEntry>) -> Result<(), WriteError> {
        self.runtime
            .block_on(self.log.blocking_append(entries))
            .map_err(fail)
    }

    /// Appends `entries` and applies them with the live state machine.
    pub fn append_and_apply(
        &mut self,
        entries: Vec<RaftEntry>,
    ) -> Result<Vec<Applied>, WriteError> {
        self.append(entries.clone())?;
        self.runtime.block_on(self.sm.apply(entries)).map_err(fail)
    }

    /// The live state machine's state.
    pub fn state(&self) -> State {
        self.sm.shared().read().expect("state lock").state.clone()
    }

    /// Builds and stores a snapshot of the applied state, as the live peer does.
    pub fn snapshot(&mut self) -> Result<(), WriteError> {
        self.runtime.block_on(async {
            let mut builder = self.sm.get_snapshot_builder().await;
            builder.build_snapshot().await.map(|_| ()).map_err(fail)
        })
    }

    /// Deletes log entries up to and including `index`, as compaction does.
    pub fn purge(&mut self, term: u64, index: u64) -> Result<(), WriteError> {
        self.runtime
            .block_on(self.log.purge(log_id(term, index)))
            .map_err(fail)
    }

    /// Records `index` as committed.
    pub fn commit(&mut self, term: u64, index: u64) -> Result<(), WriteError> {
        self.runtime
            .block_on(self.log.save_committed(Some(log_id(term, index))))
            .map_err(fail)
    }
}
