//! The `monk-drills` runner as a person or a script runs it: one seed, `-o json`, and
//! the last line of stdout is the summary with every field the faults issue names.

use std::process::Command;

/// Runs `monk-drills ARGS`, which must succeed; its JSON summary (the last line of
/// stdout) and its stderr.
fn drills(args: &[&str]) -> (serde_json::Value, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_monk-drills"))
        .args(args)
        .output()
        .expect("monk-drills runs");
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{stdout}{stderr}");
    let last = stdout.lines().last().unwrap_or_default();
    let summary = serde_json::from_str(last).expect("JSON on the last line");
    (summary, stderr)
}

#[test]
fn the_runner_prints_one_json_summary_on_its_last_line() {
    let (summary, stderr) = drills(&["sim", "--seeds", "1", "--first-seed", "7", "-o", "json"]);
    assert_eq!(summary["runs"], 1, "{summary}");
    assert!(
        summary["acknowledged"].as_u64().unwrap_or(0) > 0,
        "{summary}"
    );
    for zero in [
        "lost",
        "duplicated",
        "linearizability_violations",
        "digest_divergences",
    ] {
        assert_eq!(summary[zero], 0, "{zero}: {summary}");
    }
    assert!(stderr.contains("seed 7 ("), "{stderr}");
}

/// `monk-drills real` on the three-host bed for a short run with every kind of fault
/// but power loss (which needs the peers' data dirs on lossy mounts): it answers with one JSON line, the register history checked and linearizable, and
/// the hosts agreeing at the end. Skipped (loudly) where no bed can run, unless
/// `MONK_REQUIRE_DOCKER=1`.
#[test]
fn the_real_runner_breaks_the_bed_and_reports_one_json_line() {
    // Seed 39 draws disk-full first, then kill, skew and partition.
    real_run("39", "partition,kill,pause,skew,disk-full", "disk-full");
}

/// The same with power losses (a peer SIGKILLed and what it had not synced dropped)
/// and partitions.
#[test]
fn the_real_runner_drops_unsynced_writes_of_a_peer_and_loses_nothing() {
    // Seed 5 draws power-loss first, then partitions.
    real_run("5", "power-loss,partition", "power-loss");
}

/// Runs `monk-drills real` for 40 s with `seed` and `faults`; asserts a sound summary
/// in which `expected` was injected at least once.
fn real_run(seed: &str, faults: &str, expected: &str) {
    if !monk_testkit::hosts::usable() {
        return;
    }
    let (summary, _) = drills(&[
        "real",
        "--hosts",
        "3",
        "--duration",
        "40",
        "--seed",
        seed,
        "--faults",
        faults,
        "-o",
        "json",
    ]);
    assert_eq!(summary["mode"], "real", "{summary}");
    assert_eq!(summary["linearizability_violations"], 0, "{summary}");
    assert_eq!(summary["digest_divergences"], 0, "{summary}");
    assert!(
        summary["reads_checked"].as_u64().unwrap_or(0) > 0,
        "{summary}"
    );
    let injected: u64 = summary["faults"]
        .as_object()
        .map(|f| f.values().filter_map(|v| v.as_u64()).sum())
        .unwrap_or(0);
    assert!(injected >= 2, "{summary}");
    assert!(
        summary["faults"][expected].as_u64().unwrap_or(0) >= 1,
        "{summary}"
    );
}
