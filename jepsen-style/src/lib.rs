//! Drills (`jepsen-style/` in the design): break a cluster on purpose and prove it
//! loses nothing.
//!
//! - [`sim`]: whole clusters in one process over the in-memory transport, faults drawn
//!   by proptest from a seed ([`schedule`]).
//! - [`scenario`]: scripted fault sequences a random schedule rarely hits.
//! - [`process`]: real `monkd` processes on loopback, SIGKILLed and SIGSTOPped.
//! - [`history`]: what clients saw, and the checker of the properties every drill
//!   must keep: no lost acknowledged write, no write applied twice, one digest on
//!   every peer and in every replay, at most one leader per term.
//! - [`limits`]: every bound and timing, and the environment variables for bigger runs.

use std::future::Future;
use std::path::Path;

use monk_log::replay::{raft_dir, Replayer, Start, Target};
use monk_log::DataDirReader;
use monk_node::views::ProposeOutcome;
use monk_statemachine::Applied;

use history::Outcome;
use limits::WRITE_TIMEOUT;

pub mod history;
pub mod limits;
pub mod process;
pub mod scenario;
pub mod schedule;
pub mod sim;

/// The digest of an offline replay of the data dir `data_dir` up to `index`, with the
/// same code `monk replay` uses (it opens read-only, so the peer may still run).
pub fn replayed_digest(data_dir: &Path, index: u64) -> Result<String, String> {
    let reader = DataDirReader::open(&raft_dir(data_dir)).map_err(|e| e.to_string())?;
    let mut replayer =
        Replayer::open(&reader, Target::Index(index), Start::Nearest).map_err(|e| e.to_string())?;
    replayer.run().map_err(|e| e.to_string())?;
    let state = replayer.state();
    if state.last_applied_index != index {
        return Err(format!(
            "the log ends at index {} before the applied index {index}",
            state.last_applied_index
        ));
    }
    Ok(monk_statemachine::digest(state))
}

/// What a write's `reply` tells its client, waiting at most [`WRITE_TIMEOUT`] (then the
/// outcome is unknown: the command may still commit). `error` classifies a refusal.
pub async fn outcome_of<E>(
    reply: impl Future<Output = Result<ProposeOutcome, E>>,
    error: impl FnOnce(E) -> Outcome,
) -> Outcome {
    match tokio::time::timeout(WRITE_TIMEOUT, reply).await {
        Err(_) => Outcome::Unknown {
            error: format!("no answer in {WRITE_TIMEOUT:?}"),
        },
        Ok(Err(e)) => error(e),
        Ok(Ok(o)) => match o.applied {
            Applied::Accepted { .. } => Outcome::Acknowledged { index: o.index },
            Applied::Rejected { reason } => Outcome::Rejected {
                index: o.index,
                reason: reason.to_string(),
            },
        },
    }
}
