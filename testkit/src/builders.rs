//! Proposals and log entries for tests and benchmarks, built one way: format version
//! of this build, a proposer time of one second per index (so times in expected
//! output are stable and ordered), actor `test`, and a request id unique per index.

use monk_log::RaftEntry;
use monk_statemachine::{Command, Proposal, FORMAT_VERSION};

use crate::datadir::normal;

/// The actor every built proposal carries.
pub const TEST_ACTOR: &str = "test";

/// The proposal a client would have sent as entry `index`.
pub fn proposal(index: u64, command: Command) -> Proposal {
    Proposal {
        format_version: FORMAT_VERSION,
        proposed_at_ms: 1_000 * index,
        actor: TEST_ACTOR.into(),
        request_id: format!("r{index}"),
        command,
    }
}

/// A normal entry at `index` in `term` carrying [`proposal`]`(index, command)`.
pub fn entry(term: u64, index: u64, command: Command) -> RaftEntry {
    normal(term, index, proposal(index, command))
}
