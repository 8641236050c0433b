//! Whether several peers' data dirs agree (`monk verify`, and the drills' checker):
//! the first index where two stored logs hold different entries
//! ([`first_divergence`]), then, when the entries agree, the state digests replayed at
//! each common index ([`verify`]).

use monk_log::replay::{Replayer, Start, Target};
use monk_log::{DataDirReader, RaftEntry};
use monk_statemachine::digest;
use serde::Serialize;

use crate::entry::StoredEntry;
use crate::AuditError;

/// Below this many common entries digests are compared at every index; above it,
/// every `DIGEST_STRIDE_ENTRIES` entries and at both ends (a digest serializes the
/// whole state, so one per entry on a million-entry log would take minutes).
pub const DIGEST_EVERY_INDEX_ENTRIES_MAX: u64 = 20_000;
pub const DIGEST_STRIDE_ENTRIES: u64 = 1_000;
/// Most data dirs compared at once (each holds an open RocksDB).
pub const VERIFY_DIRS_MAX: usize = 16;

/// One peer's entry at an index where two logs differ.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum EntrySide {
    Stored(StoredEntry),
    /// Corrupt, or missing (a gap in the log).
    Unreadable {
        unreadable: String,
    },
}

/// The first index where two logs hold different entries, with both entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    pub index: u64,
    pub mine: EntrySide,
    pub theirs: EntrySide,
}

/// How one peer compares with the reference peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "finding", rename_all = "kebab-case")]
pub enum Finding {
    /// All compared entries and digests agree.
    Consistent { up_to: u64, digests_compared: u64 },
    /// The entries at `index` differ (or one of them is unreadable).
    EntryDiffers {
        index: u64,
        mine: Box<EntrySide>,
        theirs: Box<EntrySide>,
    },
    /// The entries agree but the states do not: the difference predates the stored logs.
    StateDiffers {
        index: u64,
        mine: String,
        theirs: String,
    },
}

/// Every peer compared with the first (the reference).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verification {
    /// One per peer after the reference, in the order given.
    pub findings: Vec<Finding>,
}

impl Verification {
    pub fn consistent(&self) -> bool {
        self.findings
            .iter()
            .all(|f| matches!(f, Finding::Consistent { .. }))
    }
}

fn side(entry: &Result<RaftEntry, String>) -> EntrySide {
    match entry {
        Ok(e) => EntrySide::Stored(StoredEntry::of(e)),
        Err(reason) => EntrySide::Unreadable {
            unreadable: reason.clone(),
        },
    }
}

/// The first index where the two stored logs disagree, looking only at indexes both
/// hold up to `up_to` (all of them when `None`), and the last index compared.
pub fn first_divergence(
    a: &DataDirReader,
    b: &DataDirReader,
    up_to: Option<u64>,
) -> Result<(Option<Divergence>, Option<u64>), AuditError> {
    let (Some((fa, la)), Some((fb, lb))) = (a.index_range()?, b.index_range()?) else {
        return Ok((None, None));
    };
    let (first, last) = (fa.max(fb), la.min(lb).min(up_to.unwrap_or(u64::MAX)));
    if first > last {
        return Ok((None, None));
    }
    let keyed = |item: Option<Result<RaftEntry, monk_log::codec::EntryError>>| {
        item.map(|r| match r {
            Ok(e) => (e.log_id.index, Ok(e)),
            Err(e) => (e.index, Err(e.to_string())),
        })
    };
    let mut ia = a.entries_from(first);
    let mut ib = b.entries_from(first);
    let mut next_a = keyed(ia.next());
    let mut next_b = keyed(ib.next());
    for index in first..=last {
        let take = |next: &mut Option<(u64, Result<RaftEntry, String>)>| match next {
            Some((i, _)) if *i == index => next.take().map(|(_, e)| e),
            _ => None,
        };
        let missing = || Err::<RaftEntry, String>("missing (gap in the log)".into());
        let ea = take(&mut next_a).unwrap_or_else(missing);
        let eb = take(&mut next_b).unwrap_or_else(missing);
        let same = matches!((&ea, &eb), (Ok(x), Ok(y)) if x == y);
        if !same {
            let divergence = Divergence {
                index,
                mine: side(&ea),
                theirs: side(&eb),
            };
            return Ok((Some(divergence), Some(last)));
        }
        if next_a.is_none() {
            next_a = keyed(ia.next());
        }
        if next_b.is_none() {
            next_b = keyed(ib.next());
        }
    }
    Ok((None, Some(last)))
}

/// Applies entries until the replayer's state includes `index` (or it runs out).
fn advance_to(r: &mut Replayer<'_>, index: u64) -> Result<(), AuditError> {
    while r.state().last_applied_index() < index {
        match r.next_entry() {
            None => return Err(AuditError::LogEnds(index)),
            Some(entry) => {
                r.apply(entry?)?;
            }
        }
    }
    Ok(())
}

/// Compares peer `b` with the reference `a` up to `up_to` (every index both hold
/// when `None`). Names are for errors.
pub fn verify_pair(
    (name_a, a): (&str, &DataDirReader),
    (name_b, b): (&str, &DataDirReader),
    up_to: Option<u64>,
) -> Result<Finding, AuditError> {
    let (divergence, last_common) = first_divergence(a, b, up_to)?;
    if let Some(Divergence {
        index,
        mine,
        theirs,
    }) = divergence
    {
        return Ok(Finding::EntryDiffers {
            index,
            mine: Box::new(mine),
            theirs: Box::new(theirs),
        });
    }
    let up_to = last_common.unwrap_or(0);
    // The earliest state each peer can rebuild: the empty state when its log is
    // complete, else its snapshot. Digests are comparable from the later of the two.
    let open = |name: &str, reader| {
        Replayer::open(reader, Target::End, Start::Earliest)
            .map_err(|e| AuditError::from(e).of_peer(name))
    };
    let (mut ra, mut rb) = (open(name_a, a)?, open(name_b, b)?);
    let first = ra.base().index().max(rb.base().index());
    if first > up_to {
        return Ok(Finding::Consistent {
            up_to,
            digests_compared: 0,
        });
    }
    ra.retarget(Target::Index(up_to));
    rb.retarget(Target::Index(up_to));
    let every_index = up_to.saturating_sub(first) <= DIGEST_EVERY_INDEX_ENTRIES_MAX;
    let mut compared = 0;
    for index in first..=up_to {
        advance_to(&mut ra, index).map_err(|e| e.of_peer(name_a))?;
        advance_to(&mut rb, index).map_err(|e| e.of_peer(name_b))?;
        if every_index || index == first || index == up_to || index % DIGEST_STRIDE_ENTRIES == 0 {
            let (da, db) = (digest(ra.state()), digest(rb.state()));
            compared += 1;
            if da != db {
                return Ok(Finding::StateDiffers {
                    index,
                    mine: da,
                    theirs: db,
                });
            }
        }
    }
    Ok(Finding::Consistent {
        up_to,
        digests_compared: compared,
    })
}

/// Compares every peer with the first, `(name, reader)` each, up to `up_to` (every
/// index both hold when `None`: the drills pass the applied index, beyond which a log
/// may still hold entries that were never committed).
pub fn verify(
    peers: &[(&str, &DataDirReader)],
    up_to: Option<u64>,
) -> Result<Verification, AuditError> {
    let Some((reference, others)) = peers.split_first() else {
        return Ok(Verification {
            findings: Vec::new(),
        });
    };
    let findings = others
        .iter()
        .map(|other| verify_pair(*reference, *other, up_to))
        .collect::<Result<_, _>>()?;
    Ok(Verification { findings })
}
