//! Offline replay of a peer's data dir: rebuild the state at any index or time from
//! the stored snapshot and log, with the same [`apply_raft_entry`] the live cluster
//! runs.
//!
//! A [`Replayer`] picks its starting state (the stored snapshot when the target is at
//! or after it, the empty state when the log still starts at index 1), then hands out
//! entries one at a time ([`Replayer::next_entry`]) and applies them on request
//! ([`Replayer::apply`]), so callers can look at the state before and after each entry.
//! A corrupt entry or a gap stops the replay with an error naming the index; the state
//! built up to the entry before it stays usable.

use std::iter::Peekable;
use std::path::{Path, PathBuf};

use monk_statemachine::{decode_snapshot, Applied, ApplyError, State};
use openraft::EntryPayload;

use crate::codec::EntryError;
use crate::reader::{DataDirReader, ReadError};
use crate::state_machine::apply_raft_entry;
use crate::{RaftEntry, SnapshotMeta};

/// Where a replay stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// After the last stored entry.
    End,
    /// After the entry with this index.
    Index(u64),
    /// After the last entry proposed at or before this time (ms since the Unix epoch).
    /// Raft's own blank and membership entries carry no time and count as part of the
    /// entries before them.
    TimeMs(u64),
}

/// Which starting state a replay prefers when both are possible.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// The stored snapshot when it is at or before the target: fastest.
    Nearest,
    /// The empty state when the log still starts at index 1, so that every stored
    /// entry gets its apply result recomputed (`monk log`).
    Earliest,
}

/// The state a replay started from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Base {
    Empty,
    Snapshot {
        index: u64,
        term: u64,
        digest: String,
    },
}

impl Base {
    /// Whether the starting state already includes the entry at `index`.
    pub fn includes(&self, index: u64) -> bool {
        match self {
            Base::Empty => false,
            Base::Snapshot { index: last, .. } => index <= *last,
        }
    }

    /// The index of the last entry the starting state includes (0 for the empty state).
    pub fn index(&self) -> u64 {
        match self {
            Base::Empty => 0,
            Base::Snapshot { index, .. } => *index,
        }
    }
}

/// Why a replay could not start or had to stop early.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Corrupt(#[from] EntryError),
    #[error("the stored snapshot is unusable: {0}")]
    Snapshot(String),
    #[error("log has a gap: the entry after {after} is {next}")]
    Gap { after: u64, next: u64 },
    #[error("cannot rebuild the state at {wanted}: {why}")]
    OutOfRange { wanted: String, why: String },
    #[error("entry {index} cannot be applied: {source}")]
    Apply { index: u64, source: ApplyError },
    #[error("the state after entry {index} breaks an invariant: {reason}")]
    Invariant { index: u64, reason: String },
}

/// What a data dir holds, in index terms, to explain which targets are possible.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extent {
    /// First and last stored log index.
    pub log: Option<(u64, u64)>,
    /// Whether the log still holds every entry from the first one on (openraft writes
    /// the first membership entry at index 0; nothing was ever purged).
    pub complete: bool,
    /// The stored snapshot's last included index.
    pub snapshot: Option<u64>,
}

impl Extent {
    /// The indexes a replay can stop at, as `first..=last`.
    pub fn replayable(&self) -> Option<(u64, u64)> {
        let last = self.log.map(|(_, l)| l).max(self.snapshot)?;
        let first = match (self.complete, self.snapshot) {
            (true, _) => 0,
            (false, Some(s)) => s,
            (false, None) => return None,
        };
        (first <= last).then_some((first, last))
    }

    fn describe(&self) -> String {
        match self.replayable() {
            Some((first, last)) => format!("this data dir can be replayed to indexes {first}..={last}"),
            None => "this data dir holds no replayable state (no snapshot and the log does not start at 1)".into(),
        }
    }
}

/// A data dir path as given by a user: the peer's data dir (holding `raft/`) or the
/// `raft/` directory itself.
pub fn raft_dir(path: &Path) -> PathBuf {
    let inner = path.join("raft");
    if inner.is_dir() {
        inner
    } else {
        path.to_path_buf()
    }
}

/// The stored snapshot, decoded and checked against its metadata.
pub fn stored_snapshot(
    reader: &DataDirReader,
) -> Result<Option<(SnapshotMeta, State)>, ReplayError> {
    let Some((meta, bytes)) = reader.snapshot()? else {
        return Ok(None);
    };
    let state = decode_snapshot(&bytes).map_err(|e| ReplayError::Snapshot(e.to_string()))?;
    let meta_index = meta.last_log_id.map_or(0, |l| l.index);
    if state.last_applied_index() != meta_index {
        return Err(ReplayError::Snapshot(format!(
            "metadata says index {meta_index} but its state is at {}",
            state.last_applied_index()
        )));
    }
    Ok(Some((meta, state)))
}

type Entries<'r> = Box<dyn Iterator<Item = Result<RaftEntry, EntryError>> + 'r>;

/// Rebuilds the state entry by entry; see the module docs.
pub struct Replayer<'r> {
    entries: Peekable<Entries<'r>>,
    state: State,
    base: Base,
    target: Target,
    extent: Extent,
    /// Index of the last entry handed out, for gap detection.
    last_seen: Option<u64>,
    stopped: bool,
    /// The last state known to keep every invariant, and the entries applied since;
    /// see [`INVARIANT_CHECK_ENTRIES`].
    checked: Checkpoint,
}

/// Invariants are checked every this many applied entries and where the replay ends,
/// not after every entry: `check_invariants` walks the whole state, which after every
/// entry would double the time to replay a long log. When a check fails, the entries
/// since the last good check are applied again one by one to name the first entry after
/// which the state broke, so the answer is as exact as checking every entry.
pub const INVARIANT_CHECK_ENTRIES: usize = 1024;

#[derive(Default)]
struct Checkpoint {
    /// `None` until the first applied entry.
    state: Option<State>,
    since: Vec<RaftEntry>,
}

/// Whether the state at `index` (a snapshot's) is from at or before time `t`: judged by
/// the last proposal stored at or before `index`, or, when compaction removed those,
/// by the first proposal after it (a later proposal at or before `t` proves it).
fn at_or_before(reader: &DataDirReader, index: u64, t: u64) -> Result<bool, ReplayError> {
    let mut last = None;
    for entry in reader.entries() {
        let entry = entry?;
        if let EntryPayload::Normal(p) = &entry.payload {
            if entry.log_id.index > index {
                return Ok(last.unwrap_or(p.proposed_at_ms) <= t);
            }
            last = Some(p.proposed_at_ms);
        }
    }
    Ok(last.is_none_or(|at| at <= t))
}

impl<'r> Replayer<'r> {
    /// Chooses the starting state for `target` and positions the log after it.
    pub fn open(
        reader: &'r DataDirReader,
        target: Target,
        start: Start,
    ) -> Result<Replayer<'r>, ReplayError> {
        let log = reader.index_range()?;
        let purged = reader.last_purged()?.is_some();
        let extent = Extent {
            log,
            complete: matches!(log, Some((0, _))) || (matches!(log, Some((1, _))) && !purged),
            snapshot: reader
                .snapshot()?
                .map(|(m, _)| m.last_log_id.map_or(0, |l| l.index)),
        };
        let log_complete = extent.complete;
        let out_of_range = |wanted: String| ReplayError::OutOfRange {
            wanted,
            why: extent.describe(),
        };
        let snapshot = match stored_snapshot(reader) {
            Ok(s) => s,
            // A damaged snapshot does not matter when the whole log is there.
            Err(_) if log_complete => None,
            Err(e) => return Err(e),
        };
        let snapshot_fits = match (&snapshot, target) {
            (None, _) => false,
            (Some(_), Target::End) => true,
            (Some((_, s)), Target::Index(n)) => s.last_applied_index() <= n,
            (Some((_, s)), Target::TimeMs(t)) => at_or_before(reader, s.last_applied_index(), t)?,
        };
        let use_snapshot = snapshot_fits && !(start == Start::Earliest && log_complete);
        let (state, base) = match snapshot {
            Some((meta, state)) if use_snapshot => {
                let base = Base::Snapshot {
                    index: state.last_applied_index(),
                    term: meta.last_log_id.map_or(0, |l| l.leader_id.term),
                    digest: monk_statemachine::digest(&state),
                };
                (state, base)
            }
            _ if log_complete || extent == Extent::default() => (State::default(), Base::Empty),
            _ => {
                let wanted = match target {
                    Target::End => "the end of the log".to_string(),
                    Target::Index(n) => format!("index {n}"),
                    Target::TimeMs(t) => format!("time {t} ms"),
                };
                return Err(out_of_range(wanted));
            }
        };
        if let Target::Index(n) = target {
            if n < base.index() {
                return Err(out_of_range(format!("index {n}")));
            }
        }
        let first = match (start, &base) {
            (Start::Earliest, _) => 0,
            (Start::Nearest, base) => base.index() + 1,
        };
        let entries: Entries<'r> = Box::new(reader.entries_from(first));
        Ok(Replayer {
            entries: entries.peekable(),
            state,
            base,
            target,
            extent,
            last_seen: None,
            stopped: false,
            checked: Checkpoint::default(),
        })
    }

    pub fn base(&self) -> &Base {
        &self.base
    }

    pub fn extent(&self) -> &Extent {
        &self.extent
    }

    /// The state after every entry applied so far.
    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn into_state(self) -> State {
        self.state
    }

    /// Moves the stop point further on, to continue a replay that reached its target
    /// (e.g. from A to B for a diff). A target before the current state stops at once.
    pub fn retarget(&mut self, target: Target) {
        self.target = target;
        self.stopped = false;
    }

    fn past_target(target: Target, base_index: u64, entry: &RaftEntry) -> bool {
        match target {
            Target::End => false,
            Target::Index(n) => entry.log_id.index > n,
            Target::TimeMs(t) => match &entry.payload {
                EntryPayload::Normal(p) => entry.log_id.index > base_index && p.proposed_at_ms > t,
                _ => false,
            },
        }
    }

    /// The next stored entry before the target, or `None` at the target or the end of
    /// the log. Entries the starting state already includes are handed out too (with
    /// [`Start::Earliest`] and a snapshot base); [`Replayer::apply`] skips them.
    pub fn next_entry(&mut self) -> Option<Result<RaftEntry, ReplayError>> {
        if self.stopped {
            return None;
        }
        let (target, base_index) = (self.target, self.base.index());
        let Some(next) = self.entries.peek() else {
            return self.check_at_end();
        };
        let stop = match next {
            Ok(entry) => Self::past_target(target, base_index, entry),
            Err(_) => false,
        };
        if stop {
            self.stopped = true;
            return self.check_at_end();
        }
        let item = self.entries.next()?;
        let result = item.map_err(ReplayError::from).and_then(|entry| {
            let index = entry.log_id.index;
            let after = self.last_seen.unwrap_or(self.base.index());
            let in_order = match self.last_seen {
                Some(last) => index == last + 1,
                None => index <= after + 1,
            };
            if in_order {
                Ok(entry)
            } else {
                Err(ReplayError::Gap { after, next: index })
            }
        });
        match &result {
            Ok(entry) => self.last_seen = Some(entry.log_id.index),
            Err(_) => self.stopped = true,
        }
        Some(result)
    }

    /// Applies `entry` (from [`Replayer::next_entry`]) and returns it with its result;
    /// `None` when the starting state already includes it (no result can be
    /// recomputed for it).
    pub fn apply(&mut self, entry: RaftEntry) -> Result<(RaftEntry, Option<Applied>), ReplayError> {
        let index = entry.log_id.index;
        if self.base.includes(index) {
            return Ok((entry, None));
        }
        if self.checked.state.is_none() {
            self.checked.state = Some(self.state.clone());
        }
        self.checked.since.push(entry.clone());
        let (entry, result) = apply_raft_entry(&mut self.state, entry);
        let applied = result.map_err(|source| {
            self.stopped = true;
            ReplayError::Apply { index, source }
        })?;
        if self.checked.since.len() >= INVARIANT_CHECK_ENTRIES {
            self.check_invariants()?;
        }
        Ok((entry, Some(applied)))
    }

    /// Where the replay ends (target or end of log): the invariants of the state reached.
    fn check_at_end(&mut self) -> Option<Result<RaftEntry, ReplayError>> {
        self.check_invariants().err().map(Err)
    }

    /// Checks the invariants of the state reached (in every build, not only debug ones:
    /// replay is how an incident is investigated, and a state that breaks an invariant
    /// must not be reported as if it were sound). On a failure, names the first entry
    /// after which the state broke.
    fn check_invariants(&mut self) -> Result<(), ReplayError> {
        if self.checked.since.is_empty() || self.state.check_invariants().is_ok() {
            self.checked = Checkpoint {
                state: Some(self.state.clone()),
                since: Vec::new(),
            };
            return Ok(());
        }
        self.stopped = true;
        let mut state = self.checked.state.take().unwrap_or_default();
        for entry in std::mem::take(&mut self.checked.since) {
            let index = entry.log_id.index;
            // These entries applied before, so they apply again the same way.
            let _ = apply_raft_entry(&mut state, entry);
            if let Err(v) = state.check_invariants() {
                return Err(ReplayError::Invariant {
                    index,
                    reason: v.to_string(),
                });
            }
        }
        Err(ReplayError::Invariant {
            index: self.last_seen.unwrap_or(0),
            reason: "the state breaks an invariant".into(),
        })
    }

    /// Applies every entry up to the target. `Err` carries what stopped the replay
    /// early; the state then holds everything before it.
    pub fn run(&mut self) -> Result<(), ReplayError> {
        while let Some(entry) = self.next_entry() {
            self.apply(entry?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extent_explains_what_is_possible() {
        let full = Extent {
            log: Some((0, 50)),
            complete: true,
            snapshot: Some(40),
        };
        assert_eq!(full.replayable(), Some((0, 50)));
        let compacted = Extent {
            log: Some((31, 50)),
            complete: false,
            snapshot: Some(40),
        };
        assert_eq!(compacted.replayable(), Some((40, 50)));
        assert!(compacted.describe().contains("40..=50"));
        let broken = Extent {
            log: Some((31, 50)),
            complete: false,
            snapshot: None,
        };
        assert_eq!(broken.replayable(), None);
    }

    #[test]
    fn a_broken_invariant_names_the_entry_after_which_it_broke() {
        let e = ReplayError::Invariant {
            index: 42,
            reason: "state invariant broken: peer 3 joined in the future".into(),
        };
        assert_eq!(
            e.to_string(),
            "the state after entry 42 breaks an invariant: state invariant broken: peer 3 joined in the future"
        );
    }
}
