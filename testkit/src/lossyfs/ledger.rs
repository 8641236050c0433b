//! What a power loss would undo, kept while the filesystem runs: per file, its size at
//! its last sync and the bytes it had there before unsynced writes overwrote them, and
//! the creations no sync has made durable yet. Pure bookkeeping on node numbers; the
//! filesystem ([`super::fs`]) reads the old bytes and carries out [`Ledger::undo`].
//!
//! The backing directory always holds what readers see (every write, synced or not);
//! the ledger holds the difference to the durable image. Appends cost nothing but a
//! size; only overwrites of synced bytes keep their old bytes, bounded by
//! [`UNSYNCED_SAVED_BYTES_MAX`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;

/// Old bytes of synced data that unsynced writes overwrote (or a truncation cut),
/// kept to put back at a power loss, over all files. A write that would keep more is
/// "written back" instead, as a kernel writes back dirty pages when memory is short:
/// that file's current content becomes durable, and [`Ledger::writebacks`] counts it.
pub const UNSYNCED_SAVED_BYTES_MAX: u64 = 256 << 20;

/// What one file would go back to.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Unsynced {
    /// Its size at its last sync (or when the ledger first saw it change).
    durable_size: u64,
    /// Its bytes at the last sync where unsynced writes changed them: offset → bytes,
    /// ranges disjoint, all below `durable_size`.
    saved: BTreeMap<u64, Vec<u8>>,
}

impl Unsynced {
    fn saved_bytes(&self) -> u64 {
        self.saved.values().map(|b| b.len() as u64).sum()
    }
}

/// What [`Ledger::undo`] asks the filesystem to do to the backing directory, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undo {
    /// Nodes created and never made durable: remove them (and what is under them).
    pub remove: Vec<u64>,
    /// Files to cut back to `size` and give back their saved bytes.
    pub restore: Vec<Restore>,
}

/// One file's durable image: its size and the saved ranges to write back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restore {
    pub node: u64,
    pub size: u64,
    pub saved: Vec<(u64, Vec<u8>)>,
}

/// The unsynced changes of one mount.
#[derive(Debug, Default)]
pub struct Ledger {
    files: HashMap<u64, Unsynced>,
    /// Nodes created through the mount that no sync made durable yet.
    created: HashSet<u64>,
    saved_bytes: u64,
    writebacks: u64,
}

impl Ledger {
    /// Starts tracking `node` before its first unsynced change, whose size on the
    /// backing directory is `size_now` (durable, since nothing unsynced touched it).
    pub fn track(&mut self, node: u64, size_now: u64) {
        self.files.entry(node).or_insert_with(|| Unsynced {
            durable_size: size_now,
            saved: BTreeMap::new(),
        });
    }

    /// Whether `node` has unsynced changes.
    pub fn is_tracked(&self, node: u64) -> bool {
        self.files.contains_key(&node)
    }

    /// The parts of `range` of a tracked `node` whose durable bytes are still on the
    /// backing directory (below the durable size, not saved yet): what to read and
    /// [`Ledger::save`] before overwriting or cutting `range`.
    pub fn to_save(&self, node: u64, range: Range<u64>) -> Vec<Range<u64>> {
        let Some(file) = self.files.get(&node) else {
            return Vec::new();
        };
        let end = range.end.min(file.durable_size);
        let mut out = Vec::new();
        let mut at = range.start;
        // Saved ranges that could overlap [at, end): the last one starting before `at`
        // and every one starting inside.
        let first = file.saved.range(..at).next_back().map(|(k, _)| *k);
        let starts = first
            .into_iter()
            .chain(file.saved.range(at..end).map(|(k, _)| *k));
        for start in starts {
            let stop = start + file.saved[&start].len() as u64;
            if stop <= at {
                continue;
            }
            if start > at {
                out.push(at..start.min(end));
            }
            at = at.max(stop);
            if at >= end {
                break;
            }
        }
        if at < end {
            out.push(at..end);
        }
        out
    }

    /// Whether saving `bytes` more stays within [`UNSYNCED_SAVED_BYTES_MAX`].
    pub fn has_room(&self, bytes: u64) -> bool {
        self.saved_bytes.saturating_add(bytes) <= UNSYNCED_SAVED_BYTES_MAX
    }

    /// Keeps `bytes`, the durable content of a tracked `node` at `offset` (a range
    /// [`Ledger::to_save`] returned).
    pub fn save(&mut self, node: u64, offset: u64, bytes: Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        if let Some(file) = self.files.get_mut(&node) {
            self.saved_bytes += bytes.len() as u64;
            file.saved.insert(offset, bytes);
        }
    }

    /// A created node (file, directory, symlink): gone at a power loss until a sync
    /// makes it durable. A created file's durable size is 0.
    pub fn created(&mut self, node: u64) {
        self.created.insert(node);
    }

    /// Whether `node` was created and no sync made it durable yet.
    pub fn is_unsynced_creation(&self, node: u64) -> bool {
        self.created.contains(&node)
    }

    /// `node`'s creation is durable (its own fsync, or its directory's).
    pub fn creation_durable(&mut self, node: u64) {
        self.created.remove(&node);
    }

    /// `node`'s data and size as they are now are durable (fsync, fdatasync).
    pub fn data_durable(&mut self, node: u64) {
        if let Some(file) = self.files.remove(&node) {
            self.saved_bytes -= file.saved_bytes();
        }
    }

    /// As [`Ledger::data_durable`], because keeping more saved bytes was over the limit.
    pub fn write_back(&mut self, node: u64) {
        self.data_durable(node);
        self.writebacks += 1;
    }

    /// `node` is gone for good (its last name unlinked or replaced): nothing to undo.
    pub fn forget(&mut self, node: u64) {
        self.data_durable(node);
        self.created.remove(&node);
    }

    /// How many files were written back for want of room.
    pub fn writebacks(&self) -> u64 {
        self.writebacks
    }

    /// Old bytes kept now, over all files.
    pub fn saved_bytes(&self) -> u64 {
        self.saved_bytes
    }

    /// Everything a power loss undoes, emptying the ledger.
    pub fn undo(&mut self) -> Undo {
        let mut remove: Vec<u64> = self.created.drain().collect();
        remove.sort_unstable();
        let mut restore: Vec<Restore> = self
            .files
            .drain()
            .filter(|(node, _)| !remove.contains(node))
            .map(|(node, file)| Restore {
                node,
                size: file.durable_size,
                saved: file.saved.into_iter().collect(),
            })
            .collect();
        restore.sort_by_key(|r| r.node);
        self.saved_bytes = 0;
        Undo { remove, restore }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_durable_bytes_not_saved_yet_are_asked_for() {
        let mut l = Ledger::default();
        l.track(7, 100);
        assert_eq!(l.to_save(7, 10..20), vec![10..20]);
        l.save(7, 10, vec![0; 10]);
        assert_eq!(l.to_save(7, 5..25), vec![5..10, 20..25]);
        assert_eq!(l.to_save(7, 12..18), Vec::<Range<u64>>::new());
        // Beyond the durable size nothing is durable: appends save nothing.
        assert_eq!(l.to_save(7, 95..200), vec![95..100]);
        assert_eq!(l.to_save(7, 100..200), Vec::<Range<u64>>::new());
        l.save(7, 30, vec![0; 5]);
        assert_eq!(l.to_save(7, 0..40), vec![0..10, 20..30, 35..40]);
        assert_eq!(l.saved_bytes(), 15);
        // An untracked node asks for nothing (it is tracked before it changes).
        assert!(l.to_save(8, 0..10).is_empty());
    }

    #[test]
    fn a_sync_clears_a_file_and_undo_lists_the_rest() {
        let mut l = Ledger::default();
        l.track(1, 10);
        l.save(1, 0, vec![1, 2]);
        l.track(2, 0);
        l.created(2);
        l.track(3, 5);
        l.created(4);
        l.creation_durable(4);
        l.data_durable(3);
        assert_eq!(l.saved_bytes(), 2);
        let undo = l.undo();
        assert_eq!(undo.remove, vec![2]);
        assert_eq!(
            undo.restore,
            vec![Restore {
                node: 1,
                size: 10,
                saved: vec![(0, vec![1, 2])]
            }]
        );
        assert_eq!(l.saved_bytes(), 0);
        assert_eq!(l.undo().restore, vec![]);
    }

    #[test]
    fn the_first_size_seen_is_the_durable_one() {
        let mut l = Ledger::default();
        l.track(1, 10);
        l.track(1, 50);
        assert_eq!(l.undo().restore[0].size, 10);
    }
}
