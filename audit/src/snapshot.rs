//! What a snapshot holds (`monk snapshot inspect`): index, term, format, sizes,
//! digest, and the count and size of each kind of state, from a snapshot file or
//! the snapshot stored in a data dir. Counts and sizes only: no value is shown.

use std::path::Path;

use monk_statemachine::{inspect_snapshot, SnapshotHeader, State};
use serde_json::Value;

use crate::AuditError;

/// The parts of the state a snapshot is sized by, in the order they are shown.
const STATE_KINDS: [&str; 5] = ["peers", "join_tokens", "templates", "secrets", "workloads"];

/// How much of one kind of state a snapshot holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KindSize {
    pub kind: &'static str,
    pub count: usize,
    /// Bytes of its JSON encoding.
    pub bytes: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotReport {
    pub index: u64,
    pub term: u64,
    pub header: SnapshotHeader,
    pub size_bytes: usize,
    /// The stored snapshot's id; `None` for a snapshot file.
    pub snapshot_id: Option<String>,
    pub kinds: Vec<KindSize>,
}

/// Inspects a snapshot file, or the snapshot stored in the data dir `path`.
pub fn inspect(path: &Path) -> Result<SnapshotReport, AuditError> {
    let fail = |reason: String| AuditError::Snapshot {
        path: path.display().to_string(),
        reason,
    };
    let (bytes, meta) = if path.is_dir() {
        let (meta, bytes) = crate::open(path)?
            .snapshot()?
            .ok_or_else(|| fail("the data dir holds no snapshot".into()))?;
        (bytes, Some(meta))
    } else {
        let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
        (bytes, None)
    };
    let (header, body) = inspect_snapshot(&bytes).map_err(|e| fail(e.to_string()))?;
    let undecodable = |e: serde_json::Error| fail(format!("snapshot body does not decode: {e}"));
    let value: Value = serde_json::from_slice(body).map_err(undecodable)?;
    let state: State = serde_json::from_value(value.clone()).map_err(undecodable)?;
    let last_log_id = meta.as_ref().and_then(|m| m.last_log_id);
    let kinds = STATE_KINDS
        .iter()
        .map(|kind| {
            let part = value.get(*kind).cloned().unwrap_or(Value::Null);
            KindSize {
                kind,
                count: part.as_object().map_or(0, |o| o.len()),
                bytes: serde_json::to_vec(&part).map_or(0, |b| b.len()),
            }
        })
        .collect();
    Ok(SnapshotReport {
        index: last_log_id.map_or(state.last_applied_index(), |l| l.index),
        term: last_log_id.map_or(state.last_applied_term(), |l| l.leader_id.term),
        header,
        size_bytes: bytes.len(),
        snapshot_id: meta.map(|m| m.snapshot_id),
        kinds,
    })
}
