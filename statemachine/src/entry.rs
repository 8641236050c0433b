//! Committed log entries as the state machine sees them, and the versioned decoding of
//! proposals: a proposal from a newer build, or of a kind this build does not know, is
//! refused with a clear error rather than guessed at.

use serde::{Deserialize, Serialize};

use crate::command::Proposal;
use crate::FORMAT_VERSION;

/// A committed entry: the Raft position plus the proposal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub index: u64,
    pub term: u64,
    pub proposal: Proposal,
}

/// Why bytes could not be read as a proposal.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("entry format version {found} is newer than this build supports ({supported}); upgrade monk")]
    NewerFormat { found: u32, supported: u32 },
    #[error("unknown command kind `{kind}` (written by a newer build?); upgrade monk")]
    UnknownCommand { kind: String },
    #[error("malformed proposal: {0}")]
    Malformed(String),
}

#[derive(Deserialize)]
struct Envelope {
    format_version: u32,
    command: Option<KindOnly>,
}

#[derive(Deserialize)]
struct KindOnly {
    kind: Option<String>,
}

/// Decode a JSON proposal, checking its format version before anything else.
pub fn decode_proposal(bytes: &[u8]) -> Result<Proposal, DecodeError> {
    let envelope: Envelope =
        serde_json::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if envelope.format_version > FORMAT_VERSION {
        return Err(DecodeError::NewerFormat {
            found: envelope.format_version,
            supported: FORMAT_VERSION,
        });
    }
    serde_json::from_slice(bytes).map_err(|e| {
        let message = e.to_string();
        match envelope.command.and_then(|c| c.kind) {
            Some(kind) if message.contains("unknown variant") => {
                DecodeError::UnknownCommand { kind }
            }
            _ => DecodeError::Malformed(message),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Command;

    #[test]
    fn current_proposal_round_trips() {
        let p = Proposal {
            format_version: FORMAT_VERSION,
            proposed_at_ms: 5,
            actor: "cli:a".into(),
            request_id: "r1".into(),
            command: Command::PeerUp { peer: 3 },
        };
        let bytes = serde_json::to_vec(&p).unwrap();
        assert_eq!(decode_proposal(&bytes).unwrap(), p);
    }

    #[test]
    fn newer_format_is_refused_by_version() {
        let text = r#"{"format_version":99,"proposed_at_ms":1,"actor":"x","request_id":"r","command":{"kind":"peer-up","peer":1}}"#;
        assert_eq!(
            decode_proposal(text.as_bytes()),
            Err(DecodeError::NewerFormat {
                found: 99,
                supported: FORMAT_VERSION
            })
        );
    }

    #[test]
    fn unknown_kind_is_named() {
        let text = r#"{"format_version":1,"proposed_at_ms":1,"actor":"x","request_id":"r","command":{"kind":"teleport","to":"mars"}}"#;
        let err = decode_proposal(text.as_bytes()).unwrap_err();
        assert_eq!(
            err,
            DecodeError::UnknownCommand {
                kind: "teleport".into()
            }
        );
        assert!(err.to_string().contains("unknown command kind `teleport`"));
    }
}
