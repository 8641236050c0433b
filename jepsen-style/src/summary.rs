//! The runner's report (issue 13 item 7): what many simulated cases did and found,
//! summed into one [`Summary`] that prints as a table for a person and as one JSON
//! object for a script. Pure: case reports in, a summary out.
//!
//! Fields a mode does not measure are `null` in the JSON, never a made-up zero: the
//! simulation runs no containers (`split_brain_seconds`) and times no recovery
//! (`recovery_ms_p50`, `recovery_ms_p99`); the bed's tests measure those
//! (`testkit/tests/fencing.rs`, `jepsen-style/tests/partitions.rs`).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::history::Violation;
use crate::schedule::Fault;
use crate::sim::CaseReport;

/// The sums over every case of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub runs: usize,
    /// Writes sent plus register operations recorded.
    pub operations: usize,
    pub acknowledged: usize,
    pub unknown: usize,
    pub lost: usize,
    pub duplicated: usize,
    pub linearizability_violations: usize,
    pub digest_divergences: usize,
    /// Terms in which some peer was seen leading.
    pub elections: usize,
    /// Fault steps injected, by kind.
    pub faults: BTreeMap<&'static str, usize>,
    /// Register operations the linearizability check ordered.
    pub reads_checked: usize,
    /// Cases that broke a property or did not recover: (seed, why).
    pub failures: Vec<(u64, String)>,
}

fn fault_kind(fault: &Fault) -> &'static str {
    match fault {
        Fault::Isolate(_) => "isolate",
        Fault::IsolateLeader => "isolate-leader",
        Fault::CutClients(_) => "cut-clients",
        Fault::Heal(_) | Fault::HealAll => "heal",
        Fault::Crash(_) => "crash",
        Fault::CrashLeader => "crash-leader",
        Fault::Restart(_) | Fault::RestartAll => "restart",
        Fault::Jitter { .. } => "jitter",
        Fault::Calm => "calm",
        Fault::Join => "join",
        Fault::Leave(_) => "leave",
    }
}

impl Summary {
    /// Adds one case that ran to its end.
    pub fn add(&mut self, report: &CaseReport) {
        self.runs += 1;
        let findings = &report.findings;
        let registers = findings.registers.as_ref().map(|r| &r.report);
        self.operations +=
            findings.tally.sent + registers.map_or(0, |r| r.checked + r.dropped + r.stale);
        self.acknowledged += findings.tally.acknowledged;
        self.unknown += findings.tally.unknown;
        self.elections += findings.leaders.len();
        self.reads_checked += registers.map_or(0, |r| r.reads);
        for step in &report.schedule {
            *self.faults.entry(fault_kind(&step.fault)).or_default() += 1;
        }
        for violation in &findings.violations {
            match violation {
                Violation::LostAcknowledged { .. } => self.lost += 1,
                Violation::AppliedTwice { .. } => self.duplicated += 1,
                Violation::NotLinearizable(_) => self.linearizability_violations += 1,
                Violation::Diverged { .. } | Violation::ReplayDiffers { .. } => {
                    self.digest_divergences += 1
                }
                _ => {}
            }
        }
        if let Some(why) = findings.failure() {
            self.failures.push((report.seed, why));
        }
    }

    /// Adds a case that did not recover (no report).
    pub fn add_unrecovered(&mut self, seed: u64, why: String) {
        self.runs += 1;
        self.failures
            .push((seed, format!("did not recover: {why}")));
    }

    /// The JSON object the runner prints last (`-o json`).
    pub fn to_json(&self) -> Value {
        json!({
            "runs": self.runs,
            "operations": self.operations,
            "acknowledged": self.acknowledged,
            "unknown": self.unknown,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "linearizability_violations": self.linearizability_violations,
            "digest_divergences": self.digest_divergences,
            "split_brain_seconds": Value::Null,
            "elections": self.elections,
            "recovery_ms_p50": Value::Null,
            "recovery_ms_p99": Value::Null,
            "reads_checked": self.reads_checked,
            "faults": self.faults,
            "failed_seeds": self.failures.iter().map(|(seed, _)| *seed).collect::<Vec<_>>(),
        })
    }

    /// The table for a person.
    pub fn to_table(&self) -> String {
        let faults: Vec<String> = self
            .faults
            .iter()
            .map(|(kind, n)| format!("{kind} {n}"))
            .collect();
        let mut text = format!(
            "runs {}  operations {}  acknowledged {}  unknown {}\n\
             lost {}  duplicated {}  linearizability violations {}  digest divergences {}\n\
             elections {}  reads checked {}  faults: {}\n",
            self.runs,
            self.operations,
            self.acknowledged,
            self.unknown,
            self.lost,
            self.duplicated,
            self.linearizability_violations,
            self.digest_divergences,
            self.elections,
            self.reads_checked,
            faults.join(", ")
        );
        for (seed, why) in &self.failures {
            text.push_str(&format!("FAILED seed {seed}: {why}\n"));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_has_every_field_and_nulls_for_what_the_mode_does_not_measure() {
        let mut summary = Summary::default();
        summary.add_unrecovered(42, "no leader".into());
        let json = summary.to_json();
        for field in [
            "runs",
            "operations",
            "acknowledged",
            "unknown",
            "lost",
            "duplicated",
            "linearizability_violations",
            "digest_divergences",
            "split_brain_seconds",
            "elections",
            "recovery_ms_p50",
            "recovery_ms_p99",
        ] {
            assert!(json.get(field).is_some(), "{field} missing: {json}");
        }
        assert_eq!(json["runs"], 1);
        assert!(json["split_brain_seconds"].is_null());
        assert_eq!(json["failed_seeds"], serde_json::json!([42]));
        assert!(summary
            .to_table()
            .contains("FAILED seed 42: did not recover: no leader"));
    }
}
