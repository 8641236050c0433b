//! The `monk-drills` runner as a person or a script runs it: one seed, `-o json`, and
//! the last line of stdout is the summary with every field the faults issue names.

use std::process::Command;

#[test]
fn the_runner_prints_one_json_summary_on_its_last_line() {
    let o = Command::new(env!("CARGO_BIN_EXE_monk-drills"))
        .args(["sim", "--seeds", "1", "--first-seed", "7", "-o", "json"])
        .output()
        .expect("monk-drills runs");
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stdout}{stderr}");
    let last = stdout.lines().last().unwrap_or_default();
    let summary: serde_json::Value = serde_json::from_str(last).expect("JSON on the last line");
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
