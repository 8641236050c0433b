//! Incident forensics on a peer's data dir, offline and read-only: the algorithms
//! behind `monk log`, `replay`, `diff`, `history`, `verify` and `snapshot inspect`,
//! returning typed findings that the CLI renders and the drills check.
//!
//! - [`entry`]: one log entry as a row ([`EntryRow`]), with no secret material and no
//!   openraft type showing.
//! - [`reach`]: which entities a command can touch, an exhaustive match over
//!   `Command` (a new kind does not compile until its audit behaviour is chosen).
//! - [`listing`]: the entries of a data dir with their recomputed results, filtered.
//! - [`replay`]: the state at an index or time, and the point a replay stopped at.
//! - [`history`]: every entry that touched one entity, with its value before and after.
//! - [`verify`]: the first index where two logs differ, and digests compared at each
//!   common index ([`Verification`]).
//! - [`snapshot`]: what a snapshot file or a stored snapshot holds.
//! - [`redact`]: the one printable view of a `State` and a `StateDiff`: secrets by
//!   name only (invariant 7).
//! - [`time`]: RFC 3339 text to and from milliseconds since the Unix epoch.
//!
//! Every function rebuilds state with `monk_log::replay::Replayer`, which applies
//! entries with the same function the live state machine uses. A corrupt entry stops a
//! listing with its index, and everything before it stays in the finding
//! ([`Stopped`]).

use std::path::Path;

pub mod entry;
pub mod history;
pub mod listing;
pub mod reach;
pub mod redact;
pub mod replay;
pub mod snapshot;
pub mod time;
pub mod verify;

pub use entry::{EntryRow, StoredEntry};
pub use history::{entity_history, Entity, EntityValue, History, HistoryChange, HistoryStep};
pub use listing::{list_entries, EntryFilter, Listing};
pub use monk_log::replay::{Base, Target};
pub use monk_log::DataDirReader;
pub use reach::{reach, PeerReach, Reach};
pub use redact::{RedactedDiff, RedactedState};
pub use replay::{replay_to, state_diff, Replayed, StateChange, Stopped};
pub use snapshot::{inspect, SnapshotReport};
pub use verify::{first_divergence, verify, Divergence, EntrySide, Finding, Verification};

use monk_log::reader::ReadError;
use monk_log::replay::{raft_dir, ReplayError};

/// Why an audit could not run (a replay that stops part way is a [`Stopped`] inside
/// the finding instead, so what came before it is still reported).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("{0}: no such data dir")]
    NoDataDir(String),
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Replay(#[from] ReplayError),
    #[error("{0}")]
    Stopped(Stopped),
    #[error("log ends before index {0}")]
    LogEnds(u64),
    #[error("{peer}: {source}")]
    Peer {
        peer: String,
        source: Box<AuditError>,
    },
    #[error("{path}: {reason}")]
    Snapshot { path: String, reason: String },
    #[error("{0:?}: a peer is named peer/ID with a numeric id")]
    BadPeerEntity(String),
    #[error("the entity path is empty")]
    EmptyEntity,
}

impl AuditError {
    /// Names the peer (data dir) an error came from.
    fn of_peer(self, peer: &str) -> AuditError {
        AuditError::Peer {
            peer: peer.to_string(),
            source: Box::new(self),
        }
    }
}

/// Opens a data dir (a peer's, or its `raft/` directory) read-only.
pub fn open(dir: &Path) -> Result<DataDirReader, AuditError> {
    if !dir.exists() {
        return Err(AuditError::NoDataDir(dir.display().to_string()));
    }
    Ok(DataDirReader::open(&raft_dir(dir))?)
}
