//! On-disk layout of one log entry: a 4-byte little-endian CRC32 of the body, then the
//! body (JSON of the openraft entry). JSON keeps the log readable by hand during an
//! incident; the CRC catches bit rot and torn writes that still parse.

use monk_statemachine::{decode_proposal, FORMAT_VERSION};

use crate::RaftEntry;

const CRC_BYTES: usize = 4;

/// Why a stored entry cannot be used.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("log entry {index} is corrupt at byte {offset}: {reason}")]
pub struct EntryError {
    pub index: u64,
    /// Byte offset inside the stored value where the problem was found.
    pub offset: usize,
    pub reason: String,
}

pub fn encode_entry(entry: &RaftEntry) -> Vec<u8> {
    let body = serde_json::to_vec(entry).expect("entries serialize");
    let mut out = Vec::with_capacity(CRC_BYTES + body.len());
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// Decodes and checks the entry stored under `index`.
pub fn decode_entry(index: u64, bytes: &[u8]) -> Result<RaftEntry, EntryError> {
    let fail = |offset: usize, reason: String| EntryError {
        index,
        offset,
        reason,
    };
    if bytes.len() < CRC_BYTES {
        return Err(fail(
            bytes.len(),
            format!("truncated: {} bytes, no checksum", bytes.len()),
        ));
    }
    let stored = u32::from_le_bytes(bytes[..CRC_BYTES].try_into().expect("4 bytes"));
    let body = &bytes[CRC_BYTES..];
    let actual = crc32fast::hash(body);
    if stored != actual {
        return Err(fail(
            0,
            format!("checksum mismatch (stored {stored:08x}, computed {actual:08x})"),
        ));
    }
    let entry: RaftEntry = serde_json::from_slice(body).map_err(|e| {
        let offset = CRC_BYTES + json_offset(body, e.line(), e.column());
        fail(offset, explain(body, e))
    })?;
    if entry.log_id.index != index {
        return Err(fail(
            CRC_BYTES,
            format!(
                "stored under index {index} but says it is entry {}",
                entry.log_id.index
            ),
        ));
    }
    if let openraft::EntryPayload::Normal(p) = &entry.payload {
        if p.format_version > FORMAT_VERSION {
            return Err(fail(CRC_BYTES, format!("format version {} is newer than this build supports ({FORMAT_VERSION}); upgrade monk", p.format_version)));
        }
    }
    Ok(entry)
}

/// A precise reason: a proposal from a newer build is named as such.
fn explain(body: &[u8], err: serde_json::Error) -> String {
    let value: Result<serde_json::Value, _> = serde_json::from_slice(body);
    if let Ok(value) = value {
        if let Some(normal) = value.get("payload").and_then(|p| p.get("Normal")) {
            let bytes = serde_json::to_vec(normal).unwrap_or_default();
            if let Err(e) = decode_proposal(&bytes) {
                return e.to_string();
            }
        }
    }
    format!("does not decode: {err}")
}

fn json_offset(body: &[u8], line: usize, column: usize) -> usize {
    let mut offset = 0;
    for (i, l) in body.split(|b| *b == b'\n').enumerate() {
        if i + 1 == line {
            return offset + column.saturating_sub(1);
        }
        offset += l.len() + 1;
    }
    body.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use monk_statemachine::{Command, Proposal};
    use openraft::{CommittedLeaderId, EntryPayload, LogId};

    fn entry(index: u64) -> RaftEntry {
        RaftEntry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(Proposal {
                format_version: FORMAT_VERSION,
                proposed_at_ms: 1,
                actor: "t".into(),
                request_id: "r".into(),
                command: Command::Noop,
            }),
        }
    }

    #[test]
    fn round_trip() {
        let e = entry(5);
        assert_eq!(decode_entry(5, &encode_entry(&e)).unwrap(), e);
    }

    #[test]
    fn flipped_byte_is_caught_with_index() {
        let mut bytes = encode_entry(&entry(5));
        let last = bytes.len() - 2;
        bytes[last] ^= 1;
        let err = decode_entry(5, &bytes).unwrap_err();
        assert_eq!(err.index, 5);
        assert!(err.reason.contains("checksum"), "{err}");
    }

    #[test]
    fn misplaced_entry_is_caught() {
        let err = decode_entry(6, &encode_entry(&entry(5))).unwrap_err();
        assert!(err.reason.contains("says it is entry 5"), "{err}");
    }

    #[test]
    fn unknown_kind_from_newer_build_is_named() {
        let body = br#"{"log_id":{"leader_id":{"term":1,"node_id":1},"index":3},"payload":{"Normal":{"format_version":1,"proposed_at_ms":1,"actor":"a","request_id":"r","command":{"kind":"warp-drive"}}}}"#;
        let mut bytes = crc32fast::hash(body).to_le_bytes().to_vec();
        bytes.extend_from_slice(body);
        let err = decode_entry(3, &bytes).unwrap_err();
        assert!(
            err.reason.contains("unknown command kind `warp-drive`"),
            "{err}"
        );
    }
}
