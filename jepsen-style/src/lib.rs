//! Drills (`jepsen-style/` in the design): break a cluster on purpose and prove it
//! loses nothing.
//!
//! - [`sim`]: whole clusters in one process over the in-memory transport on simulated
//!   time, faults drawn by proptest from a seed ([`schedule`]).
//! - [`scenario`]: scripted fault sequences a random schedule rarely hits.
//! - [`process`]: real `monkd` processes on loopback, SIGKILLed and SIGSTOPped.
//! - [`real`]: the three-host bed under seeded partitions, kills, pauses and clock
//!   skew, with register clients on the real `monk` CLI (`monk-drills real`).
//! - [`history`]: what clients saw, and the checker of the properties every drill
//!   must keep: no lost acknowledged write, no write applied twice, one digest on
//!   every peer and in every replay, the same stored log on every peer
//!   (`monk_audit::verify`, as `monk verify`), at most one leader per term.
//! - [`register`]: register clients that read and overwrite a few keys through the
//!   client API, and [`linearizability`], the checker of their history (a
//!   Wing–Gong/Porcupine search per key, bounded).
//! - [`limits`]: every bound and timing, and the environment variables for bigger runs.

use std::future::Future;
use std::path::{Path, PathBuf};

use monk_audit::Verification;
use monk_node::views::ProposeOutcome;
use monk_statemachine::Applied;

use history::Outcome;
use limits::WRITE_TIMEOUT;

pub mod history;
pub mod limits;
pub mod linearizability;
pub mod process;
pub mod real;
pub mod register;
pub mod scenario;
pub mod schedule;
pub mod sim;
pub mod summary;

/// The digest of an offline replay of the data dir `data_dir` up to `index`, with the
/// same code `monk replay` uses (it opens read-only, so the peer may still run).
pub fn replayed_digest(data_dir: &Path, index: u64) -> Result<String, String> {
    let reader = monk_audit::open(data_dir).map_err(|e| e.to_string())?;
    monk_audit::replay::digest_at(&reader, index).map_err(|e| e.to_string())
}

/// Every peer's data dir (`(name, dir)`, the first is the reference) compared up to
/// `index` with the same code `monk verify` uses: the stored entries at each common
/// index, then the replayed state digests.
pub fn verify_data_dirs(dirs: &[(String, PathBuf)], index: u64) -> Result<Verification, String> {
    let readers = dirs
        .iter()
        .map(|(_, dir)| monk_audit::open(dir))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let peers: Vec<(&str, &monk_audit::DataDirReader)> = dirs
        .iter()
        .map(|(name, _)| name.as_str())
        .zip(&readers)
        .collect();
    monk_audit::verify(&peers, Some(index)).map_err(|e| e.to_string())
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
