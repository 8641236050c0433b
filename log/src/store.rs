//! The RocksDB layout of a peer's Raft data, and the openraft [`RaftLogStorage`]
//! implementation.
//!
//! Column families: `logs` (big-endian index → [`codec`] entry), `meta` (`vote`,
//! `committed`, `last_purged`, JSON) and `sm` (`snapshot_meta`, `snapshot`: the latest
//! snapshot, written together in one batch). Every write that Raft relies on for safety
//! is synced to disk before it is acknowledged; each `WriteOptions` choice below says why.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader, StorageIOError, Vote};
use rocksdb::{
    ColumnFamilyDescriptor, Direction, IteratorMode, Options, WriteBatch, WriteOptions, DB,
};

use crate::codec::{decode_entry, encode_entry, EntryError};
use crate::state_machine::StateMachineStore;
use crate::{LogId, RaftEntry, StorageError, TypeConfig};

pub(crate) const CF_LOGS: &str = "logs";
pub(crate) const CF_META: &str = "meta";
pub(crate) const CF_SM: &str = "sm";
pub(crate) const KEY_VOTE: &[u8] = b"vote";
pub(crate) const KEY_COMMITTED: &[u8] = b"committed";
pub(crate) const KEY_LAST_PURGED: &[u8] = b"last_purged";
pub(crate) const KEY_SNAPSHOT_META: &[u8] = b"snapshot_meta";
pub(crate) const KEY_SNAPSHOT: &[u8] = b"snapshot";

/// Why a data dir cannot be opened. A corrupt entry or snapshot stops the peer: it
/// must not apply garbage.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot open RocksDB at {path}: {source}")]
    Db {
        path: String,
        source: rocksdb::Error,
    },
    #[error("{0}; refusing to start (move the data dir aside and re-join, or restore it)")]
    CorruptEntry(#[from] EntryError),
    #[error("the snapshot in {path} is unusable: {reason}; refusing to start")]
    CorruptSnapshot { path: String, reason: String },
    #[error("metadata key {key} in {path} is unreadable: {reason}")]
    CorruptMeta {
        path: String,
        key: String,
        reason: String,
    },
    #[error("log has a gap: entry {missing} is missing between {after} and the next stored entry")]
    Gap { after: u64, missing: u64 },
}

pub(crate) fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

pub(crate) fn key_index(key: &[u8]) -> Option<u64> {
    key.try_into().ok().map(u64::from_be_bytes)
}

fn db_options() -> Options {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    // Two cores on the machines we target: one flush and one compaction at a time.
    opts.set_max_background_jobs(2);
    // RocksDB's default (point-in-time recovery) stops replaying the write-ahead log at
    // the first damaged record and opens without everything after it: synced entries
    // and votes vanish, and the start-up check cannot see a missing suffix. Tolerate
    // only a torn last record (a write a crash cut short, never acknowledged); any
    // other damage fails the open, and the peer refuses to start, naming it.
    opts.set_wal_recovery_mode(rocksdb::DBRecoveryMode::TolerateCorruptedTailRecords);
    // And a whole synced write-ahead log file that went missing or shrank (a bad copy
    // of a data dir, a filesystem that lost it) fails the open too: the MANIFEST
    // records each closed WAL's number and size. Tail tolerance alone cannot see a
    // missing file, and AbsoluteConsistency would also refuse the torn last record a
    // crash leaves, which was never acknowledged.
    opts.set_track_and_verify_wals_in_manifest(true);
    opts
}

pub(crate) fn column_families() -> Vec<ColumnFamilyDescriptor> {
    [CF_LOGS, CF_META, CF_SM]
        .iter()
        .map(|n| ColumnFamilyDescriptor::new(*n, Options::default()))
        .collect()
}

/// Writes that must survive power loss before Raft is told they happened.
fn synced() -> WriteOptions {
    let mut w = WriteOptions::default();
    w.set_sync(true);
    w
}

/// Opens (creating if needed) the Raft store in `dir`, verifies every stored entry
/// and the snapshot, and returns the log store and the state machine restored from
/// the latest snapshot.
pub fn open_store(dir: &Path) -> Result<(LogStore, StateMachineStore), OpenError> {
    let path = dir.display().to_string();
    let db = DB::open_cf_descriptors(&db_options(), dir, column_families()).map_err(|source| {
        OpenError::Db {
            path: path.clone(),
            source,
        }
    })?;
    let db = Arc::new(db);
    let log = LogStore {
        db: db.clone(),
        appended: Arc::default(),
    };
    log.verify_all()?;
    let sm = StateMachineStore::restore(db, &path)?;
    Ok((log, sm))
}

/// The Raft log: entries, vote, committed index, last purged id.
#[derive(Clone)]
pub struct LogStore {
    pub(crate) db: Arc<DB>,
    /// Bytes of entries appended since the store was opened (for a snapshot trigger by
    /// size beside openraft's by count).
    appended: Arc<std::sync::atomic::AtomicU64>,
}

fn cf<'a>(db: &'a DB, name: &str) -> &'a rocksdb::ColumnFamily {
    db.cf_handle(name)
        .expect("column families are created at open")
}

impl LogStore {
    /// Bytes of entries this store appended since it was opened.
    pub fn appended_bytes(&self) -> u64 {
        self.appended.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Writes a consistent point-in-time copy of this peer's Raft data (log, vote,
    /// snapshot) to `dest`, which must not exist yet; files are hard-linked where
    /// possible, so this is cheap and safe while the peer runs.
    pub fn checkpoint(&self, dest: &Path) -> Result<(), rocksdb::Error> {
        rocksdb::checkpoint::Checkpoint::new(&self.db)?.create_checkpoint(dest)
    }

    fn logs(&self) -> &rocksdb::ColumnFamily {
        cf(&self.db, CF_LOGS)
    }
    fn meta(&self) -> &rocksdb::ColumnFamily {
        cf(&self.db, CF_META)
    }

    fn get_meta<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
    ) -> Result<Option<T>, StorageError> {
        let bytes = self
            .db
            .get_cf(self.meta(), key)
            .map_err(|e| StorageIOError::read(&e))?;
        bytes
            .map(|b| serde_json::from_slice(&b).map_err(|e| StorageIOError::read(&e).into()))
            .transpose()
    }

    /// Checks every stored entry: checksum, decoding, index, and no gaps.
    fn verify_all(&self) -> Result<(), OpenError> {
        let mut previous: Option<u64> = None;
        for item in self.db.iterator_cf(self.logs(), IteratorMode::Start) {
            let (key, value) = item.map_err(|source| OpenError::Db {
                path: "logs".into(),
                source,
            })?;
            let index = key_index(&key).ok_or_else(|| EntryError {
                index: 0,
                offset: 0,
                reason: format!("bad key {key:?}"),
            })?;
            decode_entry(index, &value)?;
            if let Some(prev) = previous {
                if index != prev + 1 {
                    return Err(OpenError::Gap {
                        after: prev,
                        missing: prev + 1,
                    });
                }
            }
            previous = Some(index);
        }
        Ok(())
    }

    fn last_entry_id(&self) -> Result<Option<LogId>, StorageError> {
        let mut iter = self.db.iterator_cf(self.logs(), IteratorMode::End);
        match iter.next() {
            None => Ok(None),
            Some(item) => {
                let (key, value) = item.map_err(|e| StorageIOError::read_logs(&e))?;
                let index = key_index(&key).unwrap_or(0);
                let entry = decode_entry(index, &value)
                    .map_err(|e| StorageIOError::read_log_at_index(index, &e))?;
                Ok(Some(entry.log_id))
            }
        }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<RaftEntry>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i + 1,
            Bound::Unbounded => 0,
        };
        let mut out = Vec::new();
        let from = index_key(start);
        for item in self
            .db
            .iterator_cf(self.logs(), IteratorMode::From(&from, Direction::Forward))
        {
            let (key, value) = item.map_err(|e| StorageIOError::read_logs(&e))?;
            let Some(index) = key_index(&key) else { break };
            if !range.contains(&index) {
                break;
            }
            out.push(
                decode_entry(index, &value)
                    .map_err(|e| StorageIOError::read_log_at_index(index, &e))?,
            );
        }
        Ok(out)
    }

    /// What replication sends after the entry at `start - 1`: only the run of entries
    /// that starts exactly at `start` and has no gap ([`contiguous_from`]); empty when
    /// the entry at `start` is gone. openraft sends whatever this returns as the
    /// entries following `prev = start - 1`, so a run that began later would land at
    /// the wrong place in the follower's log: a follower built with debug assertions
    /// panics on it (`assertion failed: x.get_log_id().index ==
    /// prev_log_id.next_index()`), a release build stores the entries after a hole
    /// and acknowledges the ones it lacks. It happened in the simulation (seed
    /// 1795997631529112585 on 5 peers): a replication task left over from a
    /// leadership the peer had lost read its range after the peer, a follower by then,
    /// purged part of it (openraft purges at once on a follower). An empty answer is
    /// sent as a heartbeat, and the next round finds the purge and sends a snapshot.
    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<RaftEntry>, StorageError> {
        let mut entries = self.try_get_log_entries(start..end).await?;
        let run = contiguous_from(start, &entries);
        if run < entries.len() {
            tracing::warn!(
                start,
                end,
                first = entries.first().map(|e| e.log_id.index),
                "log entries to replicate do not start at {start} or have a gap: sending the {run} that do"
            );
            entries.truncate(run);
        }
        Ok(entries)
    }
}

/// How many of `entries` form a run of consecutive indexes starting at `start`.
pub fn contiguous_from(start: u64, entries: &[RaftEntry]) -> usize {
    entries
        .iter()
        .zip(start..)
        .take_while(|(entry, index)| entry.log_id.index == *index)
        .count()
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id: Option<LogId> = self.get_meta(KEY_LAST_PURGED)?;
        let last_log_id = self.last_entry_id()?.or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError> {
        let bytes = serde_json::to_vec(vote).map_err(|e| StorageIOError::write_vote(&e))?;
        // Synced: a vote forgotten in a crash could let this peer vote twice in one term.
        self.db
            .put_cf_opt(self.meta(), KEY_VOTE, bytes, &synced())
            .map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError> {
        self.get_meta(KEY_VOTE)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        let bytes = serde_json::to_vec(&committed).map_err(|e| StorageIOError::write(&e))?;
        // Synced: openraft saves it before applying (and so before a client is answered),
        // and a leader restarted without losing its term (openraft 0.9 restores it at
        // start, with no new blank entry) serves linearizable reads at
        // max(its first entry of the term, this index). Were it lost in a power loss, that
        // leader would answer reads from a state without writes it had acknowledged
        // until the next commit (`cli/tests/power_loss.rs` caught it: all three peers
        // lost power, the entry was in every log, `monk list` did not show it).
        self.db
            .put_cf_opt(self.meta(), KEY_COMMITTED, bytes, &synced())
            .map_err(|e| StorageIOError::write(&e).into())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.get_meta::<Option<LogId>>(KEY_COMMITTED)?.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = RaftEntry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = WriteBatch::default();
        let mut bytes = 0u64;
        for entry in entries {
            let encoded = encode_entry(&entry);
            bytes += encoded.len() as u64;
            batch.put_cf(self.logs(), index_key(entry.log_id.index), encoded);
        }
        self.appended
            .fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
        // Synced: an appended entry may be counted toward a commit quorum as soon as we
        // report it flushed, so it must be on disk first ("acknowledged means durable").
        let result = self.db.write_opt(batch, &synced());
        let io_result = result
            .as_ref()
            .map(|_| ())
            .map_err(|e| std::io::Error::other(e.to_string()));
        callback.log_io_completed(io_result);
        result.map_err(|e| StorageIOError::write_logs(&e).into())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(self.logs(), index_key(log_id.index), index_key(u64::MAX));
        // Synced: conflicting entries from a deposed leader must not reappear after a
        // crash once newer entries have been accepted in their place.
        self.db
            .write_opt(batch, &synced())
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let bytes = serde_json::to_vec(&log_id).map_err(|e| StorageIOError::write_logs(&e))?;
        let mut batch = WriteBatch::default();
        batch.put_cf(self.meta(), KEY_LAST_PURGED, bytes);
        batch.delete_range_cf(self.logs(), index_key(0), index_key(log_id.index + 1));
        // Not synced: purged entries are already covered by a durable snapshot; if the
        // purge is lost in a crash they simply come back and are purged again.
        self.db
            .write(batch)
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }
}
