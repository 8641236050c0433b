//! `monk containerize` through the real binary, on a copy of the monorepo fixture of
//! `containerize/tests/fixtures/`: it writes a Containerfile per component that needs
//! one and `monk.yaml`, which `monk lint --strict` accepts; a second run keeps the
//! existing `monk.yaml` unless `--force`, and then uses the Containerfiles it wrote as
//! is. (What it finds in each sample app is checked by `containerize/tests/matrix.rs`.)

mod support;

use std::path::Path;

use support::*;

#[test]
fn containerize_writes_containerfiles_and_a_stack_that_lints_clean() {
    let root = tempfile::tempdir().unwrap();
    let shop = root.path().join("shop");
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../containerize/tests/fixtures/monorepo");
    copy_tree(&fixture, &shop);
    let dir = shop.to_str().unwrap();

    let report = ok_offline(&["containerize", dir]);
    assert!(
        report.contains("3 component(s), namespace shop"),
        "{report}"
    );
    assert!(report.contains("static front end"), "{report}");
    for written in ["api/Containerfile", "worker/Containerfile", "monk.yaml"] {
        assert!(shop.join(written).is_file(), "{written} written:\n{report}");
    }
    assert!(!shop.join("web/Containerfile").exists(), "{report}");
    let stack = shop.join("monk.yaml");
    ok_offline(&["lint", "--strict", stack.to_str().unwrap()]);

    // monk.yaml is the user's now: not replaced without --force.
    let again = monk_offline(&["containerize", dir]);
    assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));
    let forced = ok_offline(&["containerize", dir, "--force", "-o", "json"]);
    let plan: serde_json::Value = serde_json::from_str(&forced).unwrap();
    let api = plan["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["dir"] == "api")
        .cloned()
        .unwrap();
    assert_eq!(api["container_file"], "Containerfile", "{api}");
    let files: Vec<&str> = plan["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["path"].as_str())
        .collect();
    assert_eq!(files, ["monk.yaml"], "{forced}");
}
