//! Simulation drills on 3 and 5 in-process peers, on simulated time: seeded fault
//! schedules under concurrent writes, reads and register overwrites, then the history
//! check and the linearizability check of the reads. Each case prints its seed; a
//! failure prints the command that runs the same schedule again, and the same seed
//! gives the same trace.

use monk_drills::limits::*;
use monk_drills::register::ReadPath;
use monk_drills::schedule::{deposed_leader, first_seed};
use monk_drills::sim::{simulate, simulate_case, CaseReport};

/// Runs `MONK_DRILL_CASES` cases on a cluster of `peers`, failing on the first case
/// that breaks a property or does not recover.
fn drill(peers: usize, test: &str) {
    let cases = env_count(CASES_ENV, DEFAULT_CASES, CASES_MAX);
    let steps = env_count(STEPS_ENV, DEFAULT_STEPS_MAX, STEPS_MAX);
    let first = first_seed();
    for case in 0..u64::from(cases) {
        let seed = first.wrapping_add(case);
        let replay = format!(
            "{SEED_ENV}={seed} {CASES_ENV}=1 {STEPS_ENV}={steps} cargo test --workspace --test simulation {test}"
        );
        let report = match simulate_case(seed, peers, steps) {
            Ok(report) => report,
            Err(e) => {
                panic!("drill seed {seed} on {peers} peers did not recover: {e}\nreplay: {replay}")
            }
        };
        let schedule = print_case(&report);
        if let Some(failure) = report.findings.failure() {
            panic!("drill seed {seed} on {peers} peers: {failure}\nschedule: {schedule:?}\nreplay: {replay}");
        }
    }
}

/// Prints a case's report line; returns its schedule, one step per string.
fn print_case(report: &CaseReport) -> Vec<String> {
    let schedule: Vec<String> = report.schedule.iter().map(ToString::to_string).collect();
    println!(
        "drill seed {}, {} peers, {} fault steps [{}]: {}",
        report.seed,
        report.peers,
        report.schedule.len(),
        schedule.join(", "),
        report.findings,
    );
    schedule
}

#[test]
fn three_peers_keep_every_acknowledged_write() {
    drill(3, "three_peers");
}

#[test]
fn five_peers_keep_every_acknowledged_write() {
    drill(5, "five_peers");
}

/// One seed, one schedule: two runs of a seed give the same trace byte for byte
/// (faults at the same simulated times, every client operation with the same
/// outcome, the same leaders, the same final indexes); another seed differs.
#[test]
fn a_seed_replays_the_same_trace_byte_for_byte() {
    let seed = first_seed();
    let run = |seed: u64| {
        simulate_case(seed, 3, DEFAULT_STEPS_MAX)
            .unwrap_or_else(|e| panic!("seed {seed} did not recover: {e}"))
            .trace
            .join("\n")
    };
    let first = run(seed);
    let again = run(seed);
    assert!(
        first.lines().count() > 10,
        "a trace records the case:\n{first}"
    );
    if first != again {
        let at = first
            .lines()
            .zip(again.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(first.lines().count().min(again.lines().count()));
        let line = |t: &str| t.lines().nth(at).unwrap_or("(ended)").to_string();
        panic!(
            "seed {seed} gave two traces; first difference at line {at}:\n  {}\n  {}\nreplay: {SEED_ENV}={seed} cargo test --workspace --test simulation a_seed_replays",
            line(&first),
            line(&again)
        );
    }
    assert_ne!(
        run(seed.wrapping_add(1)),
        first,
        "another seed, another trace"
    );
}

/// Runs a scripted drill; fails if it does not recover or breaks a property.
async fn scripted(
    name: &str,
    drill: impl std::future::Future<Output = Result<monk_drills::history::Findings, String>>,
) {
    let findings = drill
        .await
        .unwrap_or_else(|e| panic!("the {name} drill did not recover: {e}"));
    println!("{name} drill: {findings}");
    if let Some(failure) = findings.failure() {
        panic!("the {name} drill: {failure}");
    }
}

/// A proposal whose entry was truncated on its proposer, while a copy elsewhere is
/// later committed, must not be applied a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_proposal_is_not_applied_twice() {
    scripted("truncated-write", monk_drills::scenario::truncated_write()).await;
}

/// A voter holding a replica falls silent: `peer-down`, its replicas rescheduled, the
/// learner swapped in, and `peer-up` once healed (heartbeats on the memory transport).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_voter_is_declared_down_rescheduled_and_replaced() {
    scripted("silent-voter", monk_drills::scenario::silent_voter()).await;
}

/// The linearizability checker can fail: with reads served from the chosen peer's
/// local state (no read-index round) while the leader is cut off long enough for
/// another to be elected, the drill must find a non-linearizable read within
/// `STALE_READ_SEEDS_MAX` seeds; the same seeds with read-index reads find none.
#[test]
fn reads_that_skip_the_read_index_are_caught_as_not_linearizable() {
    let first = first_seed();
    let run = |seed: u64, reads: ReadPath| {
        let replay =
            format!("{SEED_ENV}={seed} cargo test --workspace --test simulation reads_that_skip");
        let report = simulate(seed, 3, deposed_leader(seed, 3), reads).unwrap_or_else(|e| {
            panic!("seed {seed} ({reads:?}) did not recover: {e}\nreplay: {replay}")
        });
        print_case(&report);
        (report, replay)
    };
    let mut caught = None;
    for case in 0..STALE_READ_SEEDS_MAX {
        let (report, _) = run(first.wrapping_add(case), ReadPath::LocalStateForTests);
        let registers = report.findings.registers.as_ref();
        if registers.is_some_and(|r| r.report.is_violation()) {
            let failure = report.findings.failure().unwrap_or_default();
            println!("caught after {} seeds: {failure}", case + 1);
            caught = Some(case + 1);
            break;
        }
    }
    let Some(seeds) = caught else {
        panic!("reads without a read-index round passed the checker on {STALE_READ_SEEDS_MAX} seeds from {first}");
    };
    for case in 0..seeds {
        let (report, replay) = run(first.wrapping_add(case), ReadPath::ReadIndex);
        if let Some(failure) = report.findings.failure() {
            panic!(
                "with read-index reads, seed {}: {failure}\nreplay: {replay}",
                report.seed
            );
        }
    }
}
