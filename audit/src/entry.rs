//! One log entry as the audit shows it: index, term, time, actor, request id, kind,
//! summary and the entity paths it names, with the apply result recomputed offline.
//! No secret material ever appears (a command's summary never holds any), and Raft's
//! own entries (blank, membership) are described in words, so callers need no
//! openraft type.

use monk_log::RaftEntry;
use monk_statemachine::Applied;
use openraft::EntryPayload;
use serde::Serialize;

use crate::time::format_ms;

/// What the log holds at one index, without its apply result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoredEntry {
    pub index: u64,
    pub term: u64,
    /// When the proposer stamped it; `None` for Raft's blank and membership entries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_ms: Option<u64>,
    /// `time_ms` as RFC 3339 text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The command kind (`peer-joined`, ...), or `blank` / `membership`.
    pub kind: String,
    pub summary: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
}

/// One log entry with its apply result, as `monk log` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EntryRow {
    #[serde(flatten)]
    pub entry: StoredEntry,
    /// `None`: the entry is included in the snapshot the replay started from, so its
    /// result cannot be recomputed.
    pub result: Option<Applied>,
}

impl EntryRow {
    pub fn of(entry: &RaftEntry, result: Option<Applied>) -> EntryRow {
        EntryRow {
            entry: StoredEntry::of(entry),
            result,
        }
    }
}

fn membership_summary(m: &openraft::Membership<u64, monk_log::PeerNode>) -> String {
    let ids = |ids: &mut dyn Iterator<Item = u64>| -> String {
        ids.map(|v| v.to_string()).collect::<Vec<_>>().join(",")
    };
    let configs: Vec<String> = m
        .get_joint_config()
        .iter()
        .map(|c| format!("[{}]", ids(&mut c.iter().copied())))
        .collect();
    let (what, voters) = match configs.as_slice() {
        [single] => ("voters", single.clone()),
        joint => ("joint voters", joint.join(" + ")),
    };
    format!(
        "membership: {what} {voters} learners [{}]",
        ids(&mut m.learner_ids())
    )
}

impl StoredEntry {
    pub fn of(entry: &RaftEntry) -> StoredEntry {
        let (index, term) = (entry.log_id.index, entry.log_id.leader_id.term);
        let mut row = StoredEntry {
            index,
            term,
            time_ms: None,
            time: None,
            actor: None,
            request_id: None,
            kind: String::new(),
            summary: String::new(),
            paths: Vec::new(),
        };
        match &entry.payload {
            EntryPayload::Blank => {
                row.kind = "blank".into();
                row.summary = format!("leader {} took term {term}", entry.log_id.leader_id.node_id);
            }
            EntryPayload::Membership(m) => {
                row.kind = "membership".into();
                row.summary = membership_summary(m);
            }
            EntryPayload::Normal(p) => {
                row.time_ms = Some(p.proposed_at_ms);
                row.time = Some(format_ms(p.proposed_at_ms));
                row.actor = Some(p.actor.clone());
                row.request_id = Some(p.request_id.clone());
                row.kind = p.command.kind().into();
                row.summary = p.command.summary();
                row.paths = p.command.paths().into_iter().map(String::from).collect();
            }
        }
        row
    }
}
