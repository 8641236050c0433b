//! What a follower accepts of a snapshot sent in chunks (pure). openraft writes each
//! chunk at whatever offset it names, so a chunk far past the end would grow the
//! buffer to that size; this admits a chunk only at offset 0 (a new stream) or exactly
//! where the current stream ended, and never past [`SNAPSHOT_BYTES_MAX`]. A refused
//! chunk is answered as openraft's own `SnapshotMismatch`, so a leader that lost its
//! place starts the stream again from 0.

use crate::limits::SNAPSHOT_BYTES_MAX;

/// Why a chunk is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChunkRefusal {
    #[error("snapshot chunk at offset {got}, expected {expected}")]
    OutOfOrder { expected: u64, got: u64 },
    #[error(
        "snapshot would grow past {SNAPSHOT_BYTES_MAX} bytes (chunk at {offset}, {len} bytes)"
    )]
    TooLarge { offset: u64, len: u64 },
}

impl ChunkRefusal {
    /// The offset the sender should resume from.
    pub fn expected(&self) -> u64 {
        match self {
            ChunkRefusal::OutOfOrder { expected, .. } => *expected,
            ChunkRefusal::TooLarge { .. } => 0,
        }
    }
}

/// The snapshot stream being received: its id and where its next chunk starts.
#[derive(Debug, Default)]
pub struct SnapshotStream {
    current: Option<(String, u64)>,
}

impl SnapshotStream {
    /// Admits (or refuses) a chunk of snapshot `id` at `offset` with `len` bytes;
    /// `done` ends the stream.
    pub fn admit(
        &mut self,
        id: &str,
        offset: u64,
        len: u64,
        done: bool,
    ) -> Result<(), ChunkRefusal> {
        let expected = match &self.current {
            Some((current, next)) if current == id => *next,
            _ => 0,
        };
        if offset != 0 && offset != expected {
            return Err(ChunkRefusal::OutOfOrder {
                expected,
                got: offset,
            });
        }
        let end = offset.saturating_add(len);
        if end > SNAPSHOT_BYTES_MAX {
            self.current = None;
            return Err(ChunkRefusal::TooLarge { offset, len });
        }
        self.current = (!done).then(|| (id.to_string(), end));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn chunks_are_taken_in_order_only() {
        let mut s = SnapshotStream::default();
        s.admit("a", 0, 10, false).unwrap();
        s.admit("a", 10, 10, false).unwrap();
        assert_eq!(
            s.admit("a", 30, 10, false),
            Err(ChunkRefusal::OutOfOrder {
                expected: 20,
                got: 30
            })
        );
        assert_eq!(
            s.admit("a", 5, 10, false),
            Err(ChunkRefusal::OutOfOrder {
                expected: 20,
                got: 5
            })
        );
        s.admit("a", 20, 1, true).unwrap();
        // Another snapshot starts at 0; a chunk of it in the middle is refused.
        assert!(s.admit("b", 7, 1, false).is_err());
        s.admit("b", 0, 1, false).unwrap();
        assert!(matches!(
            s.admit("b", 1, SNAPSHOT_BYTES_MAX, false),
            Err(ChunkRefusal::TooLarge { .. })
        ));
        assert!(s.admit("c", u64::MAX, 1, false).is_err());
    }

    proptest! {
        /// Whatever chunks arrive, the bytes admitted for one stream are contiguous
        /// from 0 and never pass the limit.
        #[test]
        fn admitted_bytes_are_contiguous_and_bounded(
            chunks in prop::collection::vec((0u8..3, 0u64..64, 0u64..32, any::<bool>()), 0..64)
        ) {
            let mut s = SnapshotStream::default();
            let mut ends: std::collections::BTreeMap<String, u64> = Default::default();
            for (id, offset, len, done) in chunks {
                let id = format!("s{id}");
                if s.admit(&id, offset, len, done).is_ok() {
                    let end = if offset == 0 { 0 } else { ends[&id] };
                    prop_assert_eq!(offset, end);
                    prop_assert!(offset + len <= SNAPSHOT_BYTES_MAX);
                    ends.retain(|_, _| false);
                    if !done {
                        ends.insert(id, offset + len);
                    }
                }
            }
        }
    }
}
