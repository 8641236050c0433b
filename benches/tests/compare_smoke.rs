//! The comparison harness in smoke mode (`compare --smoke`), so it cannot rot: both a
//! 3-member etcd and a 3-peer `monkd` take 200 writes at 1 and 4 clients and one leader
//! kill each, and every acknowledged write is read back. Its figures are printed, never
//! asserted. Where etcd is missing and cannot be installed (no apt-get) the harness
//! skips with a reason, unless `MONK_REQUIRE_ETCD=1` (CI sets it).

use std::process::Command;

#[test]
fn both_sides_answer_and_keep_every_acknowledged_write() {
    let output = Command::new(env!("CARGO_BIN_EXE_compare"))
        .arg("--smoke")
        .output()
        .expect("run the compare harness");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "compare --smoke failed ({}): {stderr}",
        output.status
    );
}
