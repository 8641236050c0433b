//! Simulation drills on 3 and 5 in-process peers: seeded fault schedules under
//! concurrent writes, then the history check. Each case prints its seed; a failure
//! prints the command that draws the same schedule again.

use monk_drills::limits::*;
use monk_drills::schedule::first_seed;
use monk_drills::sim::run_case;

/// Runs `MONK_DRILL_CASES` cases on a cluster of `peers`, failing on the first case
/// that breaks a property or does not recover.
async fn drill(peers: usize, test: &str) {
    let cases = env_count(CASES_ENV, DEFAULT_CASES, CASES_MAX);
    let steps = env_count(STEPS_ENV, DEFAULT_STEPS_MAX, STEPS_MAX);
    let first = first_seed();
    for case in 0..u64::from(cases) {
        let seed = first.wrapping_add(case);
        let replay = format!(
            "{SEED_ENV}={seed} {CASES_ENV}=1 {STEPS_ENV}={steps} cargo test --workspace --test simulation {test}"
        );
        let report = match run_case(seed, peers, steps).await {
            Ok(report) => report,
            Err(e) => {
                panic!("drill seed {seed} on {peers} peers did not recover: {e}\nreplay: {replay}")
            }
        };
        let schedule: Vec<String> = report.schedule.iter().map(ToString::to_string).collect();
        println!(
            "drill seed {seed}, {peers} peers, {} fault steps [{}]: {}",
            report.schedule.len(),
            schedule.join(", "),
            report.findings,
        );
        if let Some(failure) = report.findings.failure() {
            panic!("drill seed {seed} on {peers} peers: {failure}\nschedule: {schedule:?}\nreplay: {replay}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_peers_keep_every_acknowledged_write() {
    drill(3, "three_peers").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_peers_keep_every_acknowledged_write() {
    drill(5, "five_peers").await;
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
