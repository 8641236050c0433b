//! The history of a drill and its checker. Clients record every write they send and
//! what came back (acknowledged at an index, definitely failed, or unknown); observers
//! record who claimed leadership in which term; at the end every peer contributes its
//! final state. [`check`] turns all of that into a list of [`Violation`]s: lost
//! acknowledged writes, writes applied twice or applied although they failed, peers
//! that disagree, replay that differs from live, two leaders in one term.
//!
//! Each write loads one template at a path no other write uses, so the final state
//! shows both whether a write is there and how often it was applied (a template loaded
//! twice has generation 2).
//!
//! Register clients also read and overwrite a few keys ([`crate::register`]); their
//! history goes to the [linearizability checker](crate::linearizability), whose
//! verdict [`Findings::with_registers`] adds.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use monk_audit::{Finding, Verification};
use monk_scripting::tree::Tree;
use monk_statemachine::{Command, LoadedTemplate, Proposal, State, FORMAT_VERSION};

use crate::linearizability::{Counterexample, Report, Verdict};

/// What the client learned about one write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Committed and applied at this index, and accepted by the state machine.
    Acknowledged { index: u64 },
    /// Committed but rejected by the state machine (never expected for unique paths).
    Rejected { index: u64, reason: String },
    /// Refused before it was sent to any leader: must not appear in any state.
    Failed { error: String },
    /// Sent, but the reply was lost or timed out: may or may not appear (once).
    Unknown { error: String },
}

/// One write: a template at a unique path, and what became of it.
#[derive(Clone, Debug)]
pub struct Write {
    pub path: String,
    pub outcome: Outcome,
}

/// The proposal of a drill write: one template at `path` (a minimal runnable, valid as
/// `monk load` would send it), with `request_id` = `path`.
pub fn write_proposal(path: &str) -> Proposal {
    load_proposal(path, path, Vec::new())
}

/// A proposal loading one minimal runnable at `path`, its definition carrying `extra`
/// fields besides `defines` and `containers`.
pub fn load_proposal(path: &str, request_id: &str, extra: Vec<(String, Tree)>) -> Proposal {
    let container = Tree::Map(vec![("image".into(), Tree::Str("busybox".into()))]);
    let mut fields = vec![
        ("defines".into(), Tree::Str("runnable".into())),
        (
            "containers".into(),
            Tree::Map(vec![("main".into(), container)]),
        ),
    ];
    fields.extend(extra);
    let definition = Tree::Map(fields);
    Proposal {
        format_version: FORMAT_VERSION,
        proposed_at_ms: 0,
        actor: "drill".into(),
        request_id: request_id.to_string(),
        command: Command::TemplatesLoaded {
            templates: vec![LoadedTemplate {
                path: path.to_string(),
                kind: "runnable".into(),
                definition,
            }],
        },
    }
}

/// The path of the `n`th write of client `client`.
pub fn write_path(client: usize, n: usize) -> String {
    format!("drill/c{client}-w{n}")
}

/// A peer's claim, sampled during the run: in `term`, `leader` leads (as seen by
/// `observer`, which may be the leader itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LeaderClaim {
    pub term: u64,
    pub leader: u64,
    pub observer: u64,
}

/// A drill template as a peer holds it at the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Held {
    pub generation: u64,
    pub loaded_at_index: u64,
}

/// One peer at the end of a drill, after every fault was healed.
#[derive(Clone, Debug)]
pub struct PeerFinal {
    pub name: String,
    pub applied_index: u64,
    pub digest: String,
    /// Drill templates (path under `drill/`) in its live state.
    pub held: BTreeMap<String, Held>,
    /// Digest of an offline replay of its data dir to `applied_index`, or why that
    /// replay failed.
    pub replay_digest: Result<String, String>,
}

impl PeerFinal {
    /// The drill templates of `state` (the live or a replayed one).
    pub fn held_in(state: &State) -> BTreeMap<String, Held> {
        state
            .templates()
            .iter()
            .filter(|(path, _)| path.starts_with("drill/"))
            .map(|(path, t)| {
                let held = Held {
                    generation: t.generation,
                    loaded_at_index: t.loaded_at_index,
                };
                (path.clone(), held)
            })
            .collect()
    }
}

/// A broken property, with enough detail to start debugging.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    LostAcknowledged {
        path: String,
        index: u64,
        peer: String,
    },
    AtWrongIndex {
        path: String,
        acknowledged: u64,
        held: u64,
        peer: String,
    },
    AppliedTwice {
        path: String,
        generation: u64,
        peer: String,
    },
    FailedButApplied {
        path: String,
        error: String,
        peer: String,
    },
    Rejected {
        path: String,
        reason: String,
    },
    Phantom {
        path: String,
        peer: String,
    },
    Diverged {
        a: String,
        b: String,
        detail: String,
    },
    ReplayDiffers {
        peer: String,
        live: String,
        replay: String,
    },
    ReplayFailed {
        peer: String,
        error: String,
    },
    /// The peers' data dirs could not be compared.
    VerifyFailed {
        error: String,
    },
    SplitBrain {
        term: u64,
        leaders: Vec<u64>,
    },
    /// The register reads and writes admit no linearization (see
    /// [`crate::linearizability`]).
    NotLinearizable(Box<Counterexample>),
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::LostAcknowledged { path, index, peer } => {
                write!(
                    f,
                    "lost acknowledged write {path} (index {index}) on {peer}"
                )
            }
            Violation::AtWrongIndex {
                path,
                acknowledged,
                held,
                peer,
            } => write!(
                f,
                "{path} acknowledged at index {acknowledged} but {peer} holds it from index {held}"
            ),
            Violation::AppliedTwice {
                path,
                generation,
                peer,
            } => {
                write!(f, "{path} applied {generation} times on {peer}")
            }
            Violation::FailedButApplied { path, error, peer } => {
                write!(f, "{path} failed ({error}) yet {peer} applied it")
            }
            Violation::Rejected { path, reason } => write!(f, "{path} rejected: {reason}"),
            Violation::Phantom { path, peer } => write!(f, "{peer} holds {path}, never written"),
            Violation::Diverged { a, b, detail } => write!(f, "{a} and {b} diverged: {detail}"),
            Violation::ReplayDiffers { peer, live, replay } => write!(
                f,
                "replay of {peer}'s data dir gives digest {replay}, live is {live}"
            ),
            Violation::ReplayFailed { peer, error } => {
                write!(f, "replay of {peer}'s data dir failed: {error}")
            }
            Violation::VerifyFailed { error } => {
                write!(f, "the peers' data dirs could not be verified: {error}")
            }
            Violation::SplitBrain { term, leaders } => {
                write!(f, "term {term} had leaders {leaders:?}")
            }
            Violation::NotLinearizable(found) => {
                write!(f, "the register history is not linearizable: {found}")
            }
        }
    }
}

/// Counts of a history, for the drill's report line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub sent: usize,
    pub acknowledged: usize,
    pub failed: usize,
    pub unknown: usize,
    /// Unknown writes that turned out applied.
    pub unknown_applied: usize,
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} writes sent, {} acknowledged, {} failed, {} unknown ({} of them applied)",
            self.sent, self.acknowledged, self.failed, self.unknown, self.unknown_applied
        )
    }
}

/// Tallies the history against the first peer's final state.
pub fn tally(writes: &[Write], peers: &[PeerFinal]) -> Tally {
    let mut t = Tally {
        sent: writes.len(),
        ..Tally::default()
    };
    for w in writes {
        match &w.outcome {
            Outcome::Acknowledged { .. } | Outcome::Rejected { .. } => t.acknowledged += 1,
            Outcome::Failed { .. } => t.failed += 1,
            Outcome::Unknown { .. } => {
                t.unknown += 1;
                if peers.first().is_some_and(|p| p.held.contains_key(&w.path)) {
                    t.unknown_applied += 1;
                }
            }
        }
    }
    t
}

/// Everything a drill found: counts for its report line and the violations.
#[derive(Debug)]
pub struct Findings {
    pub tally: Tally,
    /// Distinct (term, leader, observer) claims sampled.
    pub claims: usize,
    /// The leader seen in each term (the first, if several were claimed).
    pub leaders: BTreeMap<u64, u64>,
    pub applied_index: u64,
    pub violations: Vec<Violation>,
    /// The linearizability check of the register history, when register clients ran.
    pub registers: Option<RegisterCheck>,
}

/// The linearizability check of a drill's register history, and how long it took.
#[derive(Debug)]
pub struct RegisterCheck {
    pub report: Report,
    pub checked_in: Duration,
}

impl Findings {
    /// Checks the run and counts what it did. `logs` compares the peers' data dirs,
    /// in the order of `peers` (see [`crate::verify_data_dirs`]).
    pub fn of(
        writes: &[Write],
        peers: &[PeerFinal],
        claims: &[LeaderClaim],
        logs: &Result<Verification, String>,
    ) -> Findings {
        let mut violations = check(writes, peers, claims);
        violations.extend(check_logs(peers, logs));
        Findings {
            tally: tally(writes, peers),
            claims: claims.len(),
            leaders: claims.iter().rev().map(|c| (c.term, c.leader)).collect(),
            applied_index: peers.first().map_or(0, |p| p.applied_index),
            violations,
            registers: None,
        }
    }

    /// Adds the linearizability verdict on the register history (`report`, which took
    /// `checked_in` to reach); a refuted history is a violation.
    pub fn with_registers(mut self, report: Report, checked_in: Duration) -> Findings {
        if let Verdict::NotLinearizable(found) = &report.verdict {
            self.violations
                .push(Violation::NotLinearizable(found.clone()));
        }
        self.registers = Some(RegisterCheck { report, checked_in });
        self
    }

    /// Why the drill fails, one violation per line; `None` when it passes. A run that
    /// acknowledged nothing proves nothing, so it fails too.
    pub fn failure(&self) -> Option<String> {
        if self.tally.acknowledged == 0 {
            return Some("no write was acknowledged at all".into());
        }
        if self.registers.as_ref().is_some_and(|r| r.report.reads == 0) {
            return Some("register clients ran but no linearizable read was answered".into());
        }
        if self.violations.is_empty() {
            return None;
        }
        let lines: Vec<String> = self.violations.iter().map(|v| format!("  {v}")).collect();
        Some(format!(
            "{} violations:\n{}",
            self.violations.len(),
            lines.join("\n")
        ))
    }
}

impl fmt::Display for Findings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}; {} leader claims, leader by term {:?}; applied index {}",
            self.tally, self.claims, self.leaders, self.applied_index
        )?;
        if let Some(r) = &self.registers {
            write!(f, "; {} in {} ms", r.report, r.checked_in.as_millis())?;
        }
        Ok(())
    }
}

/// Every property a drill checks; empty when the run was safe.
pub fn check(writes: &[Write], peers: &[PeerFinal], claims: &[LeaderClaim]) -> Vec<Violation> {
    let mut out = Vec::new();
    check_writes(writes, peers, &mut out);
    check_agreement(peers, &mut out);
    check_leaders(claims, &mut out);
    out
}

fn check_writes(writes: &[Write], peers: &[PeerFinal], out: &mut Vec<Violation>) {
    let written: BTreeSet<&str> = writes.iter().map(|w| w.path.as_str()).collect();
    for peer in peers {
        for (path, held) in &peer.held {
            if !written.contains(path.as_str()) {
                out.push(Violation::Phantom {
                    path: path.clone(),
                    peer: peer.name.clone(),
                });
            }
            if held.generation != 1 {
                out.push(Violation::AppliedTwice {
                    path: path.clone(),
                    generation: held.generation,
                    peer: peer.name.clone(),
                });
            }
        }
        for w in writes {
            let held = peer.held.get(&w.path);
            match (&w.outcome, held) {
                (Outcome::Acknowledged { index }, None) => out.push(Violation::LostAcknowledged {
                    path: w.path.clone(),
                    index: *index,
                    peer: peer.name.clone(),
                }),
                (Outcome::Acknowledged { index }, Some(h)) if h.loaded_at_index != *index => out
                    .push(Violation::AtWrongIndex {
                        path: w.path.clone(),
                        acknowledged: *index,
                        held: h.loaded_at_index,
                        peer: peer.name.clone(),
                    }),
                (Outcome::Failed { error }, Some(_)) => out.push(Violation::FailedButApplied {
                    path: w.path.clone(),
                    error: error.clone(),
                    peer: peer.name.clone(),
                }),
                _ => {}
            }
        }
    }
    for w in writes {
        if let Outcome::Rejected { reason, .. } = &w.outcome {
            out.push(Violation::Rejected {
                path: w.path.clone(),
                reason: reason.clone(),
            });
        }
    }
}

fn check_agreement(peers: &[PeerFinal], out: &mut Vec<Violation>) {
    if let Some(first) = peers.first() {
        for other in &peers[1..] {
            if (first.applied_index, &first.digest) != (other.applied_index, &other.digest) {
                out.push(Violation::Diverged {
                    a: first.name.clone(),
                    b: other.name.clone(),
                    detail: format!(
                        "index {} digest {} vs index {} digest {}",
                        first.applied_index, first.digest, other.applied_index, other.digest
                    ),
                });
            }
        }
    }
    for peer in peers {
        match &peer.replay_digest {
            Ok(replay) if *replay != peer.digest => out.push(Violation::ReplayDiffers {
                peer: peer.name.clone(),
                live: peer.digest.clone(),
                replay: replay.clone(),
            }),
            Ok(_) => {}
            Err(error) => out.push(Violation::ReplayFailed {
                peer: peer.name.clone(),
                error: error.clone(),
            }),
        }
    }
}

/// Where the peers' stored logs or replayed states disagree, as `monk verify` finds
/// it: `logs` holds one finding per peer after the first, in the order of `peers`.
pub fn check_logs(peers: &[PeerFinal], logs: &Result<Verification, String>) -> Vec<Violation> {
    let verification = match logs {
        Ok(v) => v,
        Err(error) => {
            return vec![Violation::VerifyFailed {
                error: error.clone(),
            }]
        }
    };
    let Some((reference, others)) = peers.split_first() else {
        return Vec::new();
    };
    let detail = |finding: &Finding| {
        match finding {
        Finding::Consistent { .. } => None,
        Finding::EntryDiffers { index, .. } => {
            Some(format!("their stored logs differ at index {index}"))
        }
        Finding::StateDiffers {
            index,
            mine,
            theirs,
        } => Some(format!(
            "their logs agree but the replayed states differ after index {index}: digest {mine} vs {theirs}"
        )),
    }
    };
    verification
        .findings
        .iter()
        .zip(others)
        .filter_map(|(finding, other)| {
            detail(finding).map(|detail| Violation::Diverged {
                a: reference.name.clone(),
                b: other.name.clone(),
                detail,
            })
        })
        .collect()
}

fn check_leaders(claims: &[LeaderClaim], out: &mut Vec<Violation>) {
    let mut by_term: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
    for c in claims {
        by_term.entry(c.term).or_default().insert(c.leader);
    }
    for (term, leaders) in by_term {
        if leaders.len() > 1 {
            out.push(Violation::SplitBrain {
                term,
                leaders: leaders.into_iter().collect(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(name: &str, held: &[(&str, u64, u64)]) -> PeerFinal {
        PeerFinal {
            name: name.into(),
            applied_index: 9,
            digest: "d".into(),
            held: held
                .iter()
                .map(|(p, g, i)| {
                    let h = Held {
                        generation: *g,
                        loaded_at_index: *i,
                    };
                    (p.to_string(), h)
                })
                .collect(),
            replay_digest: Ok("d".into()),
        }
    }

    fn write(path: &str, outcome: Outcome) -> Write {
        Write {
            path: path.into(),
            outcome,
        }
    }

    #[test]
    fn a_safe_history_passes() {
        let writes = [
            write("drill/a", Outcome::Acknowledged { index: 5 }),
            write("drill/b", Outcome::Unknown { error: "x".into() }),
            write("drill/c", Outcome::Unknown { error: "x".into() }),
            write("drill/d", Outcome::Failed { error: "x".into() }),
        ];
        let peers = [
            peer("p1", &[("drill/a", 1, 5), ("drill/b", 1, 6)]),
            peer("p2", &[("drill/a", 1, 5), ("drill/b", 1, 6)]),
        ];
        let claims = [
            LeaderClaim {
                term: 1,
                leader: 1,
                observer: 1,
            },
            LeaderClaim {
                term: 1,
                leader: 1,
                observer: 2,
            },
            LeaderClaim {
                term: 2,
                leader: 2,
                observer: 1,
            },
        ];
        assert_eq!(check(&writes, &peers, &claims), vec![]);
        let t = tally(&writes, &peers);
        assert_eq!(
            (t.acknowledged, t.unknown, t.unknown_applied, t.failed),
            (1, 2, 1, 1)
        );
    }

    #[test]
    fn every_kind_of_unsafety_is_reported() {
        let writes = [
            write("drill/a", Outcome::Acknowledged { index: 5 }),
            write("drill/b", Outcome::Acknowledged { index: 6 }),
            write(
                "drill/c",
                Outcome::Failed {
                    error: "refused".into(),
                },
            ),
            write("drill/d", Outcome::Unknown { error: "x".into() }),
        ];
        let mut p2 = peer(
            "p2",
            &[("drill/b", 1, 7), ("drill/c", 1, 8), ("drill/d", 2, 9)],
        );
        p2.digest = "e".into();
        p2.replay_digest = Ok("f".into());
        let peers = [
            peer(
                "p1",
                &[("drill/a", 1, 5), ("drill/b", 1, 6), ("drill/z", 1, 3)],
            ),
            p2,
        ];
        let claims = [
            LeaderClaim {
                term: 3,
                leader: 1,
                observer: 1,
            },
            LeaderClaim {
                term: 3,
                leader: 2,
                observer: 2,
            },
        ];
        let found = check(&writes, &peers, &claims);
        let kinds: BTreeSet<&str> = found
            .iter()
            .map(|v| match v {
                Violation::LostAcknowledged { .. } => "lost",
                Violation::AtWrongIndex { .. } => "index",
                Violation::AppliedTwice { .. } => "twice",
                Violation::FailedButApplied { .. } => "failed",
                Violation::Rejected { .. } => "rejected",
                Violation::Phantom { .. } => "phantom",
                Violation::Diverged { .. } => "diverged",
                Violation::ReplayDiffers { .. } => "replay",
                Violation::ReplayFailed { .. } => "replay-failed",
                Violation::VerifyFailed { .. } => "verify-failed",
                Violation::SplitBrain { .. } => "split",
                Violation::NotLinearizable(_) => "linearizability",
            })
            .collect();
        let want = [
            "diverged", "failed", "index", "lost", "phantom", "replay", "split", "twice",
        ];
        assert_eq!(kinds, want.into_iter().collect(), "{found:#?}");
    }

    #[test]
    fn divergent_logs_found_by_verify_are_violations() {
        let peers = [peer("p1", &[]), peer("p2", &[]), peer("p3", &[])];
        let logs = Ok(Verification {
            findings: vec![
                Finding::Consistent {
                    up_to: 9,
                    digests_compared: 9,
                },
                Finding::StateDiffers {
                    index: 4,
                    mine: "d".into(),
                    theirs: "e".into(),
                },
            ],
        });
        let found = check_logs(&peers, &logs);
        assert!(
            matches!(found.as_slice(), [Violation::Diverged { a, b, .. }] if a == "p1" && b == "p3"),
            "{found:?}"
        );
        let failed = check_logs(&peers, &Err("no data dir".into()));
        assert!(matches!(
            failed.as_slice(),
            [Violation::VerifyFailed { .. }]
        ));
    }
}
