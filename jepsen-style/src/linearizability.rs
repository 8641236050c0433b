//! The linearizability checker of the drills' register histories: pure, no I/O, no
//! clock. Clients read and write registers (one per key) and record every operation
//! with its invoke and complete times and its outcome; [`check`] decides whether some
//! total order of the operations, each taking effect at one instant between its
//! invoke and its complete, explains every value a read returned.
//!
//! The search is Wing & Gong's with Lowe's memoisation, as Porcupine does it: the
//! history is split by key (a register history is linearizable when each key's is),
//! then a depth-first search picks the next operation to linearize among those that
//! no unlinearized operation completed before, and remembers every (linearized set,
//! register value) it has seen so no configuration is explored twice. An operation
//! whose outcome is unknown (its reply was lost) may take effect at any time after its
//! invoke, or never; a failed one never did; a read that failed or timed out says
//! nothing; a `stale` read (served from a peer's local state on purpose) is counted
//! and not checked. The search is bounded by [`SEARCH_STATES_MAX`] per key: past it
//! the verdict is [`Verdict::Unknown`], never a hang.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

/// A register value. The drills write each value once, so a read names its write.
pub type Value = u64;

/// Most configurations (linearized set, value) the search explores for one key before
/// it gives up with [`Verdict::Unknown`]. A drill's key holds a few hundred operations
/// of three clients, so at most a handful overlap and the search needs about one
/// configuration per operation (the drills report theirs). Two hundred thousand leaves
/// a margin of hundreds while keeping a pathological key to about a second and its
/// memo (each configuration remembered with its children, a bit per operation) to
/// some hundred megabytes.
pub const SEARCH_STATES_MAX: usize = 200_000;
/// Linearized operations shown before the point where a refuted key got stuck.
pub const CONTEXT_OPS: usize = 4;

/// What a client asked of a register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Read the register; `seen` is what came back (`None`: the key was never
    /// written). Meaningful only when the outcome is [`Outcome::Ok`].
    Read { seen: Option<Value> },
    /// Set the register to `value`.
    Write { value: Value },
}

/// How an operation ended, as its client saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It took effect (a read returned `seen`).
    Ok,
    /// It definitely did not take effect (refused before any leader saw it).
    Fail,
    /// No answer: it may have taken effect at any time after its invoke, or never.
    Unknown,
}

/// One operation: its invoke event (client, key, op, time) and its complete event
/// (time, outcome). Times are microseconds on one monotonic clock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    pub client: usize,
    pub key: String,
    pub op: Op,
    /// Served from a peer's local state without a read-index round: recorded, never
    /// checked (such reads may legitimately be stale).
    pub stale: bool,
    pub invoked_us: u64,
    /// When the answer came, or when the client gave up waiting (outcome unknown).
    pub completed_us: u64,
    pub outcome: Outcome,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = |v: Option<Value>| v.map_or("nothing".to_string(), |v| v.to_string());
        match self.op {
            Op::Read { seen } if self.outcome == Outcome::Ok => {
                write!(f, "c{} read {} saw {}", self.client, self.key, value(seen))?
            }
            Op::Read { .. } => write!(f, "c{} read {}", self.client, self.key)?,
            Op::Write { value } => write!(f, "c{} write {} := {value}", self.client, self.key)?,
        }
        let ms = |us: u64| us as f64 / 1_000.0;
        write!(
            f,
            " [{:.3} ms .. {:.3} ms] {:?}",
            ms(self.invoked_us),
            ms(self.completed_us),
            self.outcome
        )
    }
}

/// Where a key's history stops being linearizable: the longest prefix the search
/// could linearize ends with `context` and leaves the register at `value`; none of
/// `stuck` (the operations that could go next) can.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counterexample {
    pub key: String,
    /// Operations of the key that the search had to order.
    pub operations: usize,
    /// How many of them the longest linearizable prefix holds.
    pub linearized: usize,
    /// The last (at most [`CONTEXT_OPS`]) operations of that prefix, in order.
    pub context: Vec<Operation>,
    pub value: Option<Value>,
    pub stuck: Vec<Operation>,
}

impl fmt::Display for Counterexample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = self.value.map_or("nothing".to_string(), |v| v.to_string());
        writeln!(
            f,
            "key {}: only {} of {} operations linearize; the longest prefix ends with",
            self.key, self.linearized, self.operations
        )?;
        for op in &self.context {
            writeln!(f, "    {op}")?;
        }
        writeln!(
            f,
            "  leaving {} = {value}; none of these can take effect next:",
            self.key
        )?;
        for op in &self.stuck {
            writeln!(f, "    {op}")?;
        }
        Ok(())
    }
}

/// The checker's answer for a whole history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Linearizable,
    /// At least one key is not linearizable; the first such key (by name) is shown.
    NotLinearizable(Box<Counterexample>),
    /// The search of `key` gave up after [`SEARCH_STATES_MAX`] configurations.
    Unknown {
        key: String,
    },
}

/// What [`check`] did and found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub verdict: Verdict,
    /// Keys whose history was searched.
    pub keys: usize,
    /// Operations the search had to order: ok reads, ok writes, unknown writes.
    pub checked: usize,
    /// Of those, reads.
    pub reads: usize,
    /// Stale reads, recorded and not checked.
    pub stale: usize,
    /// Operations that constrain nothing: failed ones, unanswered reads, unknown
    /// writes no read saw (they may as well never have happened).
    pub dropped: usize,
    /// Configurations explored, over every key.
    pub explored: usize,
    /// Keys that are not linearizable.
    pub refuted_keys: usize,
}

impl Report {
    pub fn is_violation(&self) -> bool {
        matches!(self.verdict, Verdict::NotLinearizable(_))
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = match &self.verdict {
            Verdict::Linearizable => "linearizable".to_string(),
            Verdict::NotLinearizable(_) => {
                format!("NOT linearizable on {} keys", self.refuted_keys)
            }
            Verdict::Unknown { key } => {
                format!("unknown (search of {key} gave up after {SEARCH_STATES_MAX} states)")
            }
        };
        write!(
            f,
            "{} register ops checked ({} reads) on {} keys ({} stale reads unchecked, {} dropped), {} states: {verdict}",
            self.checked, self.reads, self.keys, self.stale, self.dropped, self.explored
        )
    }
}

/// Checks `history` with the default bound [`SEARCH_STATES_MAX`].
pub fn check(history: &[Operation]) -> Report {
    check_bounded(history, SEARCH_STATES_MAX)
}

/// Checks `history`, exploring at most `states_max` configurations per key.
pub fn check_bounded(history: &[Operation], states_max: usize) -> Report {
    let mut report = Report {
        verdict: Verdict::Linearizable,
        keys: 0,
        checked: 0,
        reads: 0,
        stale: history.iter().filter(|o| o.stale).count(),
        dropped: 0,
        explored: 0,
        refuted_keys: 0,
    };
    let mut unknown = None;
    for (key, ops) in by_key(history) {
        let kept = relevant(&ops);
        report.dropped += ops.len() - kept.len();
        report.checked += kept.len();
        report.reads += kept
            .iter()
            .filter(|o| matches!(o.op, Op::Read { .. }))
            .count();
        report.keys += 1;
        let search = search(&kept, states_max);
        report.explored += search.explored;
        match search.end {
            End::Linearized => {}
            End::GaveUp => {
                unknown.get_or_insert(key);
            }
            End::Stuck(found) => {
                report.refuted_keys += 1;
                if report.refuted_keys == 1 {
                    report.verdict = Verdict::NotLinearizable(Box::new(found.into_counterexample(
                        key,
                        &kept,
                        search.operations,
                    )));
                }
            }
        }
    }
    if let (Verdict::Linearizable, Some(key)) = (&report.verdict, unknown) {
        report.verdict = Verdict::Unknown { key };
    }
    report
}

/// The checked (not stale) operations of each key, in invoke order.
fn by_key(history: &[Operation]) -> BTreeMap<String, Vec<&Operation>> {
    let mut keys: BTreeMap<String, Vec<&Operation>> = BTreeMap::new();
    for op in history.iter().filter(|o| !o.stale) {
        keys.entry(op.key.clone()).or_default().push(op);
    }
    keys
}

/// The operations that constrain a key's order. A failed operation never happened; a
/// read without an answer says nothing; an unknown write whose value no read returned
/// can be put after everything else (or nowhere) without changing any read, so it is
/// dropped too, which keeps the search narrow.
fn relevant<'a>(ops: &[&'a Operation]) -> Vec<&'a Operation> {
    let seen: HashSet<Value> = ops
        .iter()
        .filter(|o| o.outcome == Outcome::Ok)
        .filter_map(|o| match o.op {
            Op::Read { seen } => seen,
            Op::Write { .. } => None,
        })
        .collect();
    let mut kept: Vec<&Operation> = ops
        .iter()
        .copied()
        .filter(|o| match (o.op, o.outcome) {
            (_, Outcome::Fail) | (Op::Read { .. }, Outcome::Unknown) => false,
            (Op::Write { value }, Outcome::Unknown) => seen.contains(&value),
            (_, Outcome::Ok) => true,
        })
        .collect();
    kept.sort_by_key(|o| o.invoked_us);
    kept
}

/// An operation as the search sees it.
#[derive(Clone, Copy)]
struct Step {
    invoked: u64,
    /// `u64::MAX` for an unknown write: it can go after everything.
    completed: u64,
    op: Op,
}

/// The register after `op`, if `op` can take effect on `value`.
fn apply(value: Option<Value>, op: Op) -> Option<Option<Value>> {
    match op {
        Op::Write { value } => Some(Some(value)),
        Op::Read { seen } => (seen == value).then_some(value),
    }
}

/// A set of operations by index.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(len: usize) -> Bits {
        Bits(vec![0; len.div_ceil(64)])
    }
    fn has(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    fn with(&self, i: usize) -> Bits {
        let mut out = self.clone();
        out.0[i / 64] |= 1 << (i % 64);
        out
    }
}

/// One configuration the search reached: which operations are linearized, the
/// register's value, and how it got there (for the counterexample).
struct Node {
    done: Bits,
    count: usize,
    value: Option<Value>,
    parent: Option<usize>,
    via: Option<usize>,
}

enum End {
    Linearized,
    GaveUp,
    Stuck(Deepest),
}

/// The deepest configuration of a refuted search, to explain it.
struct Deepest {
    order: Vec<usize>,
    value: Option<Value>,
    stuck: Vec<usize>,
}

impl Deepest {
    fn into_counterexample(
        self,
        key: String,
        ops: &[&Operation],
        operations: usize,
    ) -> Counterexample {
        let skip = self.order.len().saturating_sub(CONTEXT_OPS);
        Counterexample {
            key,
            operations,
            linearized: self.order.len(),
            context: self.order[skip..].iter().map(|i| ops[*i].clone()).collect(),
            value: self.value,
            stuck: self.stuck.iter().map(|i| ops[*i].clone()).collect(),
        }
    }
}

struct Search {
    end: End,
    explored: usize,
    operations: usize,
}

/// The indices (in invoke order) of the operations that may be linearized next: no
/// other unlinearized operation completed before they were invoked. An operation
/// invoked at the very instant another completed counts as concurrent with it.
fn candidates(steps: &[Step], done: &Bits) -> Vec<usize> {
    let mut first_completion = u64::MAX;
    let mut out = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        if s.invoked > first_completion {
            break;
        }
        if done.has(i) {
            continue;
        }
        // Ops come in invoke order and complete after their invoke, so none later
        // can complete before an earlier one was invoked: the earlier ones stay.
        first_completion = first_completion.min(s.completed);
        out.push(i);
    }
    out
}

/// Depth-first search for a linearization of one key's operations (in invoke order).
fn search(ops: &[&Operation], states_max: usize) -> Search {
    let steps: Vec<Step> = ops
        .iter()
        .map(|o| Step {
            invoked: o.invoked_us,
            completed: match o.outcome {
                Outcome::Unknown => u64::MAX,
                _ => o.completed_us.max(o.invoked_us),
            },
            op: o.op,
        })
        .collect();
    let mut nodes = vec![Node {
        done: Bits::new(steps.len()),
        count: 0,
        value: None,
        parent: None,
        via: None,
    }];
    let mut seen: HashSet<(Bits, Option<Value>)> = HashSet::new();
    seen.insert((nodes[0].done.clone(), None));
    let mut stack = vec![0usize];
    let mut deepest = 0usize;
    let mut explored = 0usize;
    let finish = |end, explored| Search {
        end,
        explored,
        operations: steps.len(),
    };
    while let Some(at) = stack.pop() {
        if nodes[at].count == steps.len() {
            return finish(End::Linearized, explored);
        }
        explored += 1;
        if explored > states_max {
            return finish(End::GaveUp, explored);
        }
        if nodes[at].count > nodes[deepest].count {
            deepest = at;
        }
        let next = candidates(&steps, &nodes[at].done);
        // Pushed in reverse so the earliest-invoked candidate is tried first.
        for i in next.into_iter().rev() {
            let Some(value) = apply(nodes[at].value, steps[i].op) else {
                continue;
            };
            let done = nodes[at].done.with(i);
            if !seen.insert((done.clone(), value)) {
                continue;
            }
            nodes.push(Node {
                done,
                count: nodes[at].count + 1,
                value,
                parent: Some(at),
                via: Some(i),
            });
            stack.push(nodes.len() - 1);
        }
    }
    let mut order = Vec::new();
    let mut at = Some(deepest);
    while let Some(n) = at {
        order.extend(nodes[n].via);
        at = nodes[n].parent;
    }
    order.reverse();
    let stuck = candidates(&steps, &nodes[deepest].done);
    let found = Deepest {
        order,
        value: nodes[deepest].value,
        stuck,
    };
    finish(End::Stuck(found), explored)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn op(client: usize, op: Op, at: (u64, u64), outcome: Outcome) -> Operation {
        Operation {
            client,
            key: "k".into(),
            op,
            stale: false,
            invoked_us: at.0,
            completed_us: at.1,
            outcome,
        }
    }
    fn write(client: usize, value: Value, at: (u64, u64)) -> Operation {
        op(client, Op::Write { value }, at, Outcome::Ok)
    }
    fn read(client: usize, seen: Option<Value>, at: (u64, u64)) -> Operation {
        op(client, Op::Read { seen }, at, Outcome::Ok)
    }
    fn counterexample(report: &Report) -> &Counterexample {
        match &report.verdict {
            Verdict::NotLinearizable(c) => c,
            other => panic!("expected a violation, got {other:?}"),
        }
    }

    #[test]
    fn concurrent_writes_may_take_effect_in_either_order() {
        for last in [1, 2] {
            let history = [
                write(0, 1, (0, 10)),
                write(1, 2, (1, 9)),
                read(2, Some(last), (11, 12)),
                read(0, Some(last), (13, 14)),
            ];
            let report = check(&history);
            assert_eq!(report.verdict, Verdict::Linearizable, "last {last}");
            assert_eq!((report.checked, report.keys), (4, 1));
        }
    }

    #[test]
    fn a_read_overlapping_a_write_may_see_the_old_or_the_new_value() {
        for seen in [Some(1), Some(2)] {
            let history = [
                write(0, 1, (0, 5)),
                write(0, 2, (10, 20)),
                read(1, seen, (12, 15)),
            ];
            assert_eq!(check(&history).verdict, Verdict::Linearizable, "{seen:?}");
        }
        let before_any = [write(0, 1, (10, 20)), read(1, None, (5, 15))];
        assert_eq!(check(&before_any).verdict, Verdict::Linearizable);
    }

    #[test]
    fn two_overlapping_reads_cannot_see_the_new_value_then_the_old_one() {
        let history = [
            write(0, 1, (0, 5)),
            write(0, 2, (10, 40)),
            read(1, Some(2), (12, 15)),
            read(2, Some(1), (20, 25)),
        ];
        assert!(check(&history).is_violation());
    }

    #[test]
    fn a_stale_read_after_a_completed_write_is_refuted_and_named() {
        let history = [
            write(0, 1, (0, 5)),
            write(0, 2, (10, 20)),
            read(1, Some(1), (30, 35)),
            write(0, 3, (40, 45)),
        ];
        let report = check(&history);
        let found = counterexample(&report);
        assert_eq!(found.key, "k");
        assert_eq!((found.linearized, found.operations), (2, 4));
        assert_eq!(found.value, Some(2));
        assert_eq!(found.stuck, vec![history[2].clone()]);
        let text = found.to_string();
        assert!(
            text.contains("c1 read k saw 1 [0.030 ms .. 0.035 ms] Ok"),
            "{text}"
        );
        assert!(text.contains("leaving k = 2"), "{text}");
    }

    #[test]
    fn a_read_of_a_value_never_written_is_refuted() {
        let history = [write(0, 1, (0, 5)), read(1, Some(7), (2, 9))];
        let found = check(&history);
        assert!(found.is_violation());
        assert_eq!(counterexample(&found).stuck.len(), 1);
        let absent_after_write = [write(0, 1, (0, 5)), read(1, None, (6, 9))];
        assert!(check(&absent_after_write).is_violation());
    }

    #[test]
    fn an_unknown_write_may_take_effect_late_or_never() {
        let unknown = op(0, Op::Write { value: 1 }, (0, 3), Outcome::Unknown);
        // Took effect after a later completed write.
        let late = [
            unknown.clone(),
            write(1, 2, (5, 6)),
            read(2, Some(1), (7, 8)),
        ];
        assert_eq!(check(&late).verdict, Verdict::Linearizable);
        // Never took effect: nobody saw it, it is dropped.
        let never = [unknown.clone(), read(2, None, (7, 8))];
        let report = check(&never);
        assert_eq!(report.verdict, Verdict::Linearizable);
        assert_eq!((report.checked, report.dropped), (1, 1));
        // Once seen it stays in effect until another write.
        let undone = [
            unknown.clone(),
            read(1, Some(1), (4, 5)),
            read(2, None, (7, 8)),
        ];
        assert!(check(&undone).is_violation());
        // But it cannot take effect before it was invoked.
        let early = [
            read(1, Some(1), (0, 2)),
            op(0, Op::Write { value: 1 }, (5, 6), Outcome::Unknown),
        ];
        assert!(check(&early).is_violation());
    }

    #[test]
    fn failed_writes_unanswered_reads_and_stale_reads_are_not_checked() {
        let failed = op(0, Op::Write { value: 1 }, (0, 3), Outcome::Fail);
        let history = [
            failed,
            read(1, None, (4, 5)),
            op(1, Op::Read { seen: Some(9) }, (6, 7), Outcome::Unknown),
            Operation {
                stale: true,
                ..read(2, Some(8), (8, 9))
            },
        ];
        let report = check(&history);
        assert_eq!(report.verdict, Verdict::Linearizable);
        assert_eq!((report.checked, report.dropped, report.stale), (1, 2, 1));
        // A failed write whose value is read anyway is a violation.
        let seen_anyway = [history[0].clone(), read(1, Some(1), (4, 5))];
        assert!(check(&seen_anyway).is_violation());
    }

    #[test]
    fn keys_are_checked_apart_and_a_bad_key_is_not_hidden_by_a_good_one() {
        let on = |key: &str, o: Operation| Operation {
            key: key.into(),
            ..o
        };
        let history = [
            on("a", write(0, 1, (0, 5))),
            on("b", write(0, 2, (0, 5))),
            on("a", read(1, Some(1), (6, 7))),
            // Would be fine on one register; b never held 1.
            on("b", read(1, Some(1), (6, 7))),
        ];
        let report = check(&history);
        assert_eq!((report.keys, report.refuted_keys), (2, 1));
        assert_eq!(counterexample(&report).key, "b");
    }

    #[test]
    fn the_search_gives_up_at_its_bound_instead_of_hanging() {
        // Twelve concurrent writes and a read that sees none of them: refuting it means
        // trying every subset of the writes.
        let mut history: Vec<Operation> = (0..12).map(|v| write(v, v as u64, (0, 100))).collect();
        history.push(read(99, Some(999), (0, 100)));
        let report = check_bounded(&history, 50);
        assert_eq!(report.verdict, Verdict::Unknown { key: "k".into() });
        assert!(report.explored <= 51, "{}", report.explored);
        // Given room, it refutes the same history.
        assert!(check(&history).is_violation());
    }

    /// A sequential run of random reads and writes on a few keys, each operation
    /// given an instant to take effect and an interval around it; some writes lost
    /// or failed, some answers lost.
    fn sequential_history() -> impl Strategy<Value = Vec<Operation>> {
        let step = (0usize..3, 0u8..10, 1u64..50, 0u64..200, 0u64..200, 0u8..20);
        proptest::collection::vec(step, 1..60).prop_map(|steps| {
            let mut registers: BTreeMap<String, Option<Value>> = BTreeMap::new();
            let mut at = 0u64;
            let mut out = Vec::new();
            for (n, (key, kind, gap, before, after, fate)) in steps.into_iter().enumerate() {
                at += gap;
                let key = format!("k{key}");
                let current = registers.entry(key.clone()).or_default();
                let (op, outcome) = match (kind, fate) {
                    // A write refused before it took effect.
                    (0..=3, 0) => (Op::Write { value: n as u64 }, Outcome::Fail),
                    // A write lost before it took effect.
                    (0..=3, 1) => (Op::Write { value: n as u64 }, Outcome::Unknown),
                    (0..=3, _) => {
                        *current = Some(n as u64);
                        let outcome = if fate == 2 {
                            Outcome::Unknown
                        } else {
                            Outcome::Ok
                        };
                        (Op::Write { value: n as u64 }, outcome)
                    }
                    (_, 3) => (Op::Read { seen: None }, Outcome::Unknown),
                    _ => (Op::Read { seen: *current }, Outcome::Ok),
                };
                out.push(Operation {
                    client: n % 4,
                    key,
                    op,
                    stale: false,
                    invoked_us: at.saturating_sub(before),
                    completed_us: at + after,
                    outcome,
                });
            }
            out
        })
    }

    proptest! {
        #[test]
        fn every_history_of_a_sequential_run_is_linearizable(history in sequential_history()) {
            let report = check(&history);
            prop_assert_eq!(report.verdict, Verdict::Linearizable, "{:#?}", history);
        }

        #[test]
        fn a_read_of_a_value_never_written_is_always_refuted(
            history in sequential_history(),
            pick in any::<proptest::sample::Index>(),
        ) {
            let reads: Vec<usize> = history
                .iter()
                .enumerate()
                .filter(|(_, o)| matches!((o.op, o.outcome), (Op::Read { .. }, Outcome::Ok)))
                .map(|(i, _)| i)
                .collect();
            prop_assume!(!reads.is_empty());
            let mut history = history;
            let i = reads[pick.index(reads.len())];
            history[i].op = Op::Read { seen: Some(Value::MAX) };
            prop_assert!(check(&history).is_violation());
        }
    }
}
