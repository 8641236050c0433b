//! The process drill: three real `monkd` processes, the leader SIGKILLed and
//! restarted, a follower SIGSTOPped and SIGCONTed, under continuous writes.

use monk_drills::limits::*;

#[test]
fn real_peers_survive_leader_kills_and_pauses() {
    let rounds = env_count(ROUNDS_ENV, DEFAULT_ROUNDS, ROUNDS_MAX);
    let report = monk_drills::process::run(rounds)
        .unwrap_or_else(|e| panic!("process drill did not recover: {e}"));
    println!(
        "process drill: {} rounds, {} leader kills, {} follower pauses: {}",
        report.rounds, report.kills, report.pauses, report.findings,
    );
    if let Some(failure) = report.findings.failure() {
        panic!("the process drill: {failure}");
    }
}
