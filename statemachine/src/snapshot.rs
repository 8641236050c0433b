//! The versioned snapshot codec and the state digest.
//!
//! Layout: `MONKSNAP` magic, format version (u32 LE), body length (u64 LE), the body
//! (canonical JSON of [`State`]: `BTreeMap`s everywhere, so the bytes are the same on
//! every peer), then the SHA-256 of the body. The digest shown by
//! `monk system consensus` is that SHA-256, so two peers agree exactly when their
//! snapshots would be byte-identical.

use sha2::{Digest, Sha256};

use crate::state::State;

/// The snapshot codec version this build writes and reads.
pub const SNAPSHOT_FORMAT: u32 = 1;
const MAGIC: &[u8; 8] = b"MONKSNAP";
const HEADER_BYTES: usize = 8 + 4 + 8;
const DIGEST_BYTES: usize = 32;

/// What a snapshot's header says, for `monk snapshot inspect`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotHeader {
    pub format: u32,
    pub body_bytes: u64,
    pub digest: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SnapshotError {
    #[error("not a monk snapshot (bad magic)")]
    BadMagic,
    #[error("snapshot format {found} is newer than this build supports ({supported})")]
    NewerFormat { found: u32, supported: u32 },
    #[error("snapshot truncated: {have} bytes, expected {want}")]
    Truncated { have: usize, want: usize },
    #[error("snapshot checksum mismatch: body hashes to {actual}, trailer says {stored}")]
    Checksum { stored: String, actual: String },
    #[error("snapshot body does not decode: {0}")]
    Body(String),
}

fn canonical_body(state: &State) -> Vec<u8> {
    // Serializing plain data with BTreeMaps cannot fail.
    serde_json::to_vec(state).expect("state serializes")
}

/// SHA-256 (hex) of the canonical state bytes.
pub fn digest(state: &State) -> String {
    hex::encode(Sha256::digest(canonical_body(state)))
}

pub fn encode_snapshot(state: &State) -> Vec<u8> {
    let body = canonical_body(state);
    let mut out = Vec::with_capacity(HEADER_BYTES + body.len() + DIGEST_BYTES);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&SNAPSHOT_FORMAT.to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&body);
    out.extend_from_slice(&Sha256::digest(&body));
    out
}

/// Reads and checks a snapshot's header and checksum without decoding the body.
pub fn inspect_snapshot(bytes: &[u8]) -> Result<(SnapshotHeader, &[u8]), SnapshotError> {
    if bytes.len() < HEADER_BYTES {
        return Err(if bytes.starts_with(&MAGIC[..bytes.len().min(8)]) {
            SnapshotError::Truncated {
                have: bytes.len(),
                want: HEADER_BYTES,
            }
        } else {
            SnapshotError::BadMagic
        });
    }
    if &bytes[..8] != MAGIC {
        return Err(SnapshotError::BadMagic);
    }
    let format = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if format > SNAPSHOT_FORMAT {
        return Err(SnapshotError::NewerFormat {
            found: format,
            supported: SNAPSHOT_FORMAT,
        });
    }
    let body_bytes = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
    let want = usize::try_from(body_bytes)
        .ok()
        .and_then(|b| b.checked_add(HEADER_BYTES + DIGEST_BYTES));
    let want = want.ok_or(SnapshotError::Truncated {
        have: bytes.len(),
        want: usize::MAX,
    })?;
    if bytes.len() != want {
        return Err(SnapshotError::Truncated {
            have: bytes.len(),
            want,
        });
    }
    let body = &bytes[HEADER_BYTES..want - DIGEST_BYTES];
    let stored = hex::encode(&bytes[want - DIGEST_BYTES..]);
    let actual = hex::encode(Sha256::digest(body));
    if stored != actual {
        return Err(SnapshotError::Checksum { stored, actual });
    }
    Ok((
        SnapshotHeader {
            format,
            body_bytes,
            digest: actual,
        },
        body,
    ))
}

pub fn decode_snapshot(bytes: &[u8]) -> Result<State, SnapshotError> {
    let (_, body) = inspect_snapshot(bytes)?;
    let state: State =
        serde_json::from_slice(body).map_err(|e| SnapshotError::Body(e.to_string()))?;
    state
        .check_invariants()
        .map_err(|e| SnapshotError::Body(e.to_string()))?;
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_digest_match() {
        let mut state = State {
            cluster_name: Some("c".into()),
            ..State::default()
        };
        state.last_applied_index = 7;
        let bytes = encode_snapshot(&state);
        assert_eq!(decode_snapshot(&bytes).unwrap(), state);
        assert_eq!(inspect_snapshot(&bytes).unwrap().0.digest, digest(&state));
    }

    #[test]
    fn corruption_is_detected() {
        let bytes = encode_snapshot(&State::default());
        let mut flipped = bytes.clone();
        let mid = HEADER_BYTES + 3;
        flipped[mid] ^= 0x20;
        assert!(matches!(
            decode_snapshot(&flipped),
            Err(SnapshotError::Checksum { .. })
        ));
        assert!(matches!(
            decode_snapshot(&bytes[..bytes.len() - 1]),
            Err(SnapshotError::Truncated { .. })
        ));
        assert_eq!(
            decode_snapshot(b"garbage!garbage!garbage!"),
            Err(SnapshotError::BadMagic)
        );
        let mut newer = bytes;
        newer[8] = 9;
        assert_eq!(
            decode_snapshot(&newer),
            Err(SnapshotError::NewerFormat {
                found: 9,
                supported: 1
            })
        );
    }
}
