//! The entries of a data dir with their apply results recomputed offline, filtered by
//! index, time, kind, entity path and actor (`monk log`).

use monk_log::replay::{Replayer, Start, Target};
use monk_log::{DataDirReader, RaftEntry};

use crate::entry::EntryRow;
use crate::replay::Stopped;
use crate::AuditError;

/// Which entries to list; every field that is set must match.
#[derive(Clone, Debug, Default)]
pub struct EntryFilter {
    /// First index to list.
    pub from: Option<u64>,
    /// Last index to list.
    pub to: Option<u64>,
    /// Proposed at or after this time (ms since the Unix epoch). Raft's own entries
    /// carry no time and count as proposed with the proposal before them.
    pub since_ms: Option<u64>,
    /// Proposed at or before this time.
    pub until_ms: Option<u64>,
    /// This command kind (`templates-loaded`, `blank`, `membership`, ...).
    pub kind: Option<String>,
    /// Naming this entity path or a path under it.
    pub path: Option<String>,
    /// Proposed by this actor.
    pub actor: Option<String>,
}

/// Whether `path` is `filter` or lies under it.
pub fn path_matches(filter: &str, path: &str) -> bool {
    path == filter
        || path
            .strip_prefix(filter)
            .is_some_and(|rest| rest.starts_with('/') || filter.ends_with('/'))
}

impl EntryFilter {
    /// `time` is the row's time, or that of the last proposal before it.
    fn keeps(&self, row: &EntryRow, time: Option<u64>) -> bool {
        let e = &row.entry;
        self.from.is_none_or(|f| e.index >= f)
            && self.since_ms.is_none_or(|s| time.is_some_and(|t| t >= s))
            && self.until_ms.is_none_or(|u| time.is_none_or(|t| t <= u))
            && self.kind.as_ref().is_none_or(|k| *k == e.kind)
            && self
                .actor
                .as_ref()
                .is_none_or(|a| e.actor.as_ref() == Some(a))
            && self
                .path
                .as_ref()
                .is_none_or(|p| e.paths.iter().any(|q| path_matches(p, q)))
    }
}

/// The listed entries, and where the listing stopped early if it did.
#[derive(Debug)]
pub struct Listing {
    pub rows: Vec<EntryRow>,
    pub stopped: Option<Stopped>,
}

/// Lists the entries `filter` keeps, oldest first.
pub fn list_entries(reader: &DataDirReader, filter: &EntryFilter) -> Result<Listing, AuditError> {
    // Listing never needs a state before the snapshot: entries inside it are shown
    // without a result, so the replay runs to the end and the loop stops at `to`.
    let mut replayer = Replayer::open(reader, Target::End, Start::Earliest)?;
    let mut rows = Vec::new();
    let mut last_time = None;
    let mut stopped = None;
    while let Some(next) = replayer.next_entry() {
        let past_to = |e: &RaftEntry| filter.to.is_some_and(|to| e.log_id.index > to);
        if next.as_ref().is_ok_and(past_to) {
            break;
        }
        let (entry, result) = match next.and_then(|entry| replayer.apply(entry)) {
            Ok(pair) => pair,
            Err(e) => {
                stopped = Some(Stopped::at(e, replayer.state()));
                break;
            }
        };
        let row = EntryRow::of(&entry, result);
        last_time = row.entry.time_ms.or(last_time);
        if filter.keeps(&row, last_time) {
            rows.push(row);
        }
    }
    Ok(Listing { rows, stopped })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_filter_matches_children() {
        assert!(path_matches("ns", "ns/web"));
        assert!(path_matches("ns/web", "ns/web"));
        assert!(!path_matches("ns", "nsx/web"));
    }
}
