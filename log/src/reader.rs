//! A read-only view of a peer's Raft data dir, for replay and audit. Opening does not
//! take RocksDB's lock, so it is safe while `monkd` runs on the same dir and works on a
//! copy of a dead peer's dir. Corrupt entries are reported one by one (index and byte
//! offset) so everything before them stays usable.

use std::path::Path;

use rocksdb::{IteratorMode, Options, DB};

use crate::codec::{decode_entry, EntryError};
use crate::state_machine::read_snapshot;
use crate::store::{
    column_families, index_key, key_index, CF_LOGS, CF_META, KEY_COMMITTED, KEY_LAST_PURGED,
    KEY_VOTE,
};
use crate::{LogId, RaftEntry, SnapshotMeta};

pub struct DataDirReader {
    db: DB,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot open {path} read-only: {source}")]
    Open {
        path: String,
        source: rocksdb::Error,
    },
    #[error("reading {what}: {reason}")]
    Read { what: String, reason: String },
}

impl DataDirReader {
    /// Opens the RocksDB directory `raft_dir` (a data dir's `raft/`) read-only.
    pub fn open(raft_dir: &Path) -> Result<DataDirReader, ReadError> {
        let names: Vec<String> = column_families()
            .iter()
            .map(|c| c.name().to_string())
            .collect();
        let db = DB::open_cf_for_read_only(&Options::default(), raft_dir, names, false).map_err(
            |source| ReadError::Open {
                path: raft_dir.display().to_string(),
                source,
            },
        )?;
        Ok(DataDirReader { db })
    }

    fn meta<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, ReadError> {
        let cf = self.db.cf_handle(CF_META).ok_or_else(|| ReadError::Read {
            what: "meta".into(),
            reason: "no meta column family".into(),
        })?;
        let bytes = self.db.get_cf(cf, key).map_err(|e| ReadError::Read {
            what: String::from_utf8_lossy(key).into(),
            reason: e.to_string(),
        })?;
        bytes
            .map(|b| {
                serde_json::from_slice(&b).map_err(|e| ReadError::Read {
                    what: String::from_utf8_lossy(key).into(),
                    reason: e.to_string(),
                })
            })
            .transpose()
    }

    pub fn vote(&self) -> Result<Option<openraft::Vote<u64>>, ReadError> {
        self.meta(KEY_VOTE)
    }

    pub fn committed(&self) -> Result<Option<LogId>, ReadError> {
        Ok(self.meta::<Option<LogId>>(KEY_COMMITTED)?.flatten())
    }

    pub fn last_purged(&self) -> Result<Option<LogId>, ReadError> {
        self.meta(KEY_LAST_PURGED)
    }

    /// The stored snapshot's metadata and bytes, if any.
    pub fn snapshot(&self) -> Result<Option<(SnapshotMeta, Vec<u8>)>, ReadError> {
        read_snapshot(&self.db).map_err(|reason| ReadError::Read {
            what: "snapshot".into(),
            reason,
        })
    }

    /// Every stored entry in index order; a corrupt one is yielded as an error and the
    /// iteration goes on.
    pub fn entries(&self) -> impl Iterator<Item = Result<RaftEntry, EntryError>> + '_ {
        self.entries_from(0)
    }

    /// Indexes of the first and last stored entries, without decoding them.
    pub fn index_range(&self) -> Result<Option<(u64, u64)>, ReadError> {
        let cf = self
            .db
            .cf_handle(CF_LOGS)
            .expect("opened with every column family");
        let edge = |mode| -> Result<Option<u64>, ReadError> {
            match self.db.iterator_cf(cf, mode).next() {
                None => Ok(None),
                Some(Err(e)) => Err(ReadError::Read {
                    what: "log keys".into(),
                    reason: e.to_string(),
                }),
                Some(Ok((key, _))) => key_index(&key).map(Some).ok_or_else(|| ReadError::Read {
                    what: "log keys".into(),
                    reason: format!("bad key {key:?}"),
                }),
            }
        };
        Ok(edge(IteratorMode::Start)?.zip(edge(IteratorMode::End)?))
    }

    /// Stored entries from index `first` on, in index order; a corrupt one is yielded
    /// as an error and the iteration goes on.
    pub fn entries_from(
        &self,
        first: u64,
    ) -> impl Iterator<Item = Result<RaftEntry, EntryError>> + '_ {
        let cf = self
            .db
            .cf_handle(CF_LOGS)
            .expect("opened with every column family");
        let start = index_key(first);
        let mode = IteratorMode::From(&start, rocksdb::Direction::Forward);
        self.db.iterator_cf(cf, mode).map(|item| {
            let (key, value) = item.map_err(|e| EntryError {
                index: 0,
                offset: 0,
                reason: e.to_string(),
            })?;
            let index = key_index(&key).ok_or_else(|| EntryError {
                index: 0,
                offset: 0,
                reason: format!("bad key {key:?}"),
            })?;
            decode_entry(index, &value)
        })
    }
}
