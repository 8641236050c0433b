//! The openraft state machine: a thin adapter around `monk_statemachine::apply`.
//!
//! The state lives in memory behind [`SharedState`] (the node reads projections from
//! it). Durability comes from the log plus snapshots: the latest snapshot, with the
//! last applied log id and the membership it includes, is written in one synced batch,
//! and at start the state is restored from it; openraft then re-applies the committed
//! entries after it.

use std::io::Cursor;
use std::sync::{Arc, RwLock};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder, StorageIOError};
use rocksdb::{WriteBatch, WriteOptions, DB};

use monk_statemachine::{
    advance, apply, decode_snapshot, encode_snapshot, Applied, ApplyError, Entry, State,
};

use crate::store::{OpenError, CF_SM, KEY_SNAPSHOT, KEY_SNAPSHOT_META};
use crate::{LogId, RaftEntry, SnapshotMeta, StorageError, StoredMembership, TypeConfig};

/// What the node needs to see of the applied state.
#[derive(Debug, Default, Clone)]
pub struct AppliedState {
    pub state: State,
    pub last_applied: Option<LogId>,
    pub membership: StoredMembership,
    /// What this peer applied since it started, for its metrics (not replicated).
    pub stats: ApplyStats,
    /// The last [`EVENTS_KEPT_MAX`] commands applied here with their results, for
    /// `monk events` (not replicated; refilled as entries are applied after a restart).
    pub events: std::collections::VecDeque<AppliedEvent>,
}

/// Applied commands kept in memory for `monk events` (a few MB at most); older ones are
/// read with `monk log`.
pub const EVENTS_KEPT_MAX: usize = 10_000;

/// One applied command as `monk events` shows it: never the command's body (which may
/// hold sealed secrets), only its kind, summary and paths.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AppliedEvent {
    pub index: u64,
    pub term: u64,
    /// The proposer's clock, in milliseconds since the Unix epoch.
    pub time_ms: u64,
    pub actor: String,
    pub request_id: String,
    pub kind: String,
    pub summary: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    pub result: Applied,
}

impl AppliedState {
    fn record_event(&mut self, entry: &RaftEntry, result: &Applied) {
        let EntryPayload::Normal(p) = &entry.payload else {
            return;
        };
        if self.events.len() >= EVENTS_KEPT_MAX {
            self.events.pop_front();
        }
        self.events.push_back(AppliedEvent {
            index: entry.log_id.index,
            term: entry.log_id.leader_id.term,
            time_ms: p.proposed_at_ms,
            actor: p.actor.clone(),
            request_id: p.request_id.clone(),
            kind: p.command.kind().to_string(),
            summary: p.command.summary(),
            paths: p.command.paths().into_iter().map(String::from).collect(),
            result: result.clone(),
        });
    }
}

/// Counts of what this peer's state machine did since it started.
#[derive(Debug, Default, Clone)]
pub struct ApplyStats {
    /// Commands applied, by kind and whether they were accepted.
    pub commands: std::collections::BTreeMap<(&'static str, bool), u64>,
    /// Time spent applying them, in seconds.
    pub apply_seconds_sum: f64,
    /// Snapshots built by this peer.
    pub snapshots_built: u64,
}

impl ApplyStats {
    fn record(&mut self, kind: &'static str, accepted: bool, seconds: f64) {
        *self.commands.entry((kind, accepted)).or_default() += 1;
        self.apply_seconds_sum += seconds;
    }
}

/// The applied state, shared between the Raft task and readers.
pub type SharedState = Arc<RwLock<AppliedState>>;

pub struct StateMachineStore {
    db: Arc<DB>,
    shared: SharedState,
}

/// Whether a snapshot's state is at the index its metadata names: one that is not is
/// refused when installed (it would be stored, and the peer would then refuse to
/// restart on it) and when opened.
fn snapshot_matches(state: &State, meta: &SnapshotMeta) -> Result<(), String> {
    let said = meta.last_log_id.map_or(0, |l| l.index);
    match state.last_applied_index() == said {
        true => Ok(()),
        false => Err(format!(
            "snapshot says index {said} but its state is at {}",
            state.last_applied_index()
        )),
    }
}

impl StateMachineStore {
    /// Restores the state from the latest snapshot in `db` (empty if there is none).
    pub(crate) fn restore(db: Arc<DB>, path: &str) -> Result<StateMachineStore, OpenError> {
        let mut applied = AppliedState::default();
        if let Some((meta, bytes)) =
            read_snapshot(&db).map_err(|reason| OpenError::CorruptSnapshot {
                path: path.into(),
                reason,
            })?
        {
            let state = decode_snapshot(&bytes).map_err(|e| OpenError::CorruptSnapshot {
                path: path.into(),
                reason: e.to_string(),
            })?;
            snapshot_matches(&state, &meta).map_err(|reason| OpenError::CorruptSnapshot {
                path: path.into(),
                reason,
            })?;
            applied = AppliedState {
                state,
                last_applied: meta.last_log_id,
                membership: meta.last_membership,
                stats: ApplyStats::default(),
                events: Default::default(),
            };
        }
        Ok(StateMachineStore {
            db,
            shared: Arc::new(RwLock::new(applied)),
        })
    }

    /// A handle for readers (API, projections).
    pub fn shared(&self) -> SharedState {
        self.shared.clone()
    }
}

/// Applies one Raft entry to `state` the way every peer does: Raft's own blank and
/// membership entries only advance the applied index; a normal entry goes through
/// `monk_statemachine::apply`. Offline replay (`crate::replay`) calls this same function,
/// so an audit recomputes exactly what the live cluster computed. The entry is handed
/// back (moved, not copied) for callers that still need it.
pub fn apply_raft_entry(
    state: &mut State,
    entry: RaftEntry,
) -> (RaftEntry, Result<Applied, ApplyError>) {
    let log_id = entry.log_id;
    match entry.payload {
        EntryPayload::Normal(proposal) => {
            let entry = Entry {
                index: log_id.index,
                term: log_id.leader_id.term,
                proposal,
            };
            let result = apply(state, &entry);
            let payload = EntryPayload::Normal(entry.proposal);
            (RaftEntry { log_id, payload }, result)
        }
        payload => {
            let result = advance(state, log_id.index, log_id.leader_id.term)
                .map(|()| Applied::Accepted { peer_id: None });
            (RaftEntry { log_id, payload }, result)
        }
    }
}

/// Reads the stored snapshot; `Err` carries a reason for a corrupt one.
pub(crate) fn read_snapshot(db: &DB) -> Result<Option<(SnapshotMeta, Vec<u8>)>, String> {
    let cf = db.cf_handle(CF_SM).ok_or("missing column family sm")?;
    let meta = db
        .get_cf(cf, KEY_SNAPSHOT_META)
        .map_err(|e| e.to_string())?;
    let data = db.get_cf(cf, KEY_SNAPSHOT).map_err(|e| e.to_string())?;
    match (meta, data) {
        (None, None) => Ok(None),
        (Some(meta), Some(data)) => {
            let meta: SnapshotMeta = serde_json::from_slice(&meta)
                .map_err(|e| format!("snapshot metadata does not decode: {e}"))?;
            Ok(Some((meta, data)))
        }
        _ => Err("snapshot metadata and data are not both present".into()),
    }
}

fn write_snapshot(db: &DB, meta: &SnapshotMeta, data: &[u8]) -> Result<(), StorageError> {
    let cf = db
        .cf_handle(CF_SM)
        .expect("column families are created at open");
    let meta_bytes = serde_json::to_vec(meta)
        .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
    let mut batch = WriteBatch::default();
    batch.put_cf(cf, KEY_SNAPSHOT_META, meta_bytes);
    batch.put_cf(cf, KEY_SNAPSHOT, data);
    let mut opts = WriteOptions::default();
    // Synced: once a snapshot is stored, openraft may purge the log entries it covers;
    // losing the snapshot in a crash would then lose those entries.
    opts.set_sync(true);
    db.write_opt(batch, &opts)
        .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e).into())
}

/// Builds snapshots from a copy-free read of the shared state.
pub struct SnapshotBuilder {
    db: Arc<DB>,
    shared: SharedState,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let (data, meta) = {
            let applied = self.shared.read().expect("state lock");
            let last = applied.last_applied;
            let snapshot_id = match last {
                Some(l) => format!("{}-{}-{}", l.leader_id.term, l.leader_id.node_id, l.index),
                None => "empty".to_string(),
            };
            (
                encode_snapshot(&applied.state),
                SnapshotMeta {
                    last_log_id: last,
                    last_membership: applied.membership.clone(),
                    snapshot_id,
                },
            )
        };
        write_snapshot(&self.db, &meta, &data)?;
        self.shared
            .write()
            .expect("state lock")
            .stats
            .snapshots_built += 1;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let applied = self.shared.read().expect("state lock");
        Ok((applied.last_applied, applied.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Applied>, StorageError>
    where
        I: IntoIterator<Item = RaftEntry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut applied = self.shared.write().expect("state lock");
        let mut results = Vec::new();
        for entry in entries {
            let log_id = entry.log_id;
            let kind = match &entry.payload {
                EntryPayload::Normal(p) => Some(p.command.kind()),
                _ => None,
            };
            let started = std::time::Instant::now();
            let (entry, result) = apply_raft_entry(&mut applied.state, entry);
            let result = result.map_err(|e| StorageIOError::apply(log_id, &e))?;
            if let Some(kind) = kind {
                let seconds = started.elapsed().as_secs_f64();
                applied.stats.record(kind, result.is_accepted(), seconds);
                applied.record_event(&entry, &result);
            }
            if let EntryPayload::Membership(membership) = entry.payload {
                applied.membership = StoredMembership::new(Some(log_id), membership);
            }
            if cfg!(debug_assertions) {
                applied
                    .state
                    .check_invariants()
                    .map_err(|e| StorageIOError::apply(log_id, &e))?;
            }
            applied.last_applied = Some(log_id);
            results.push(result);
        }
        Ok(results)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            db: self.db.clone(),
            shared: self.shared.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let state = decode_snapshot(&data)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        snapshot_matches(&state, meta).map_err(|reason| {
            StorageIOError::read_snapshot(Some(meta.signature()), &std::io::Error::other(reason))
        })?;
        write_snapshot(&self.db, meta, &data)?;
        let mut applied = self.shared.write().expect("state lock");
        let stats = std::mem::take(&mut applied.stats);
        *applied = AppliedState {
            state,
            last_applied: meta.last_log_id,
            membership: meta.last_membership.clone(),
            stats,
            // A snapshot replaces the state wholesale: events before it are not known
            // here any more (a client resuming before it is told where they start).
            events: Default::default(),
        };
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let stored = read_snapshot(&self.db)
            .map_err(|e| StorageIOError::read_snapshot(None, &std::io::Error::other(e)))?;
        Ok(stored.map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}
