//! Shared helpers for the text-fixture tests: compare against an expected file (through
//! expect-test, which rewrites it when `UPDATE_EXPECT=1`), and find the corpus.

use std::path::{Path, PathBuf};

/// Asserts that `actual` equals the file at `path` (relative to the crate), or writes it
/// when `UPDATE_EXPECT=1` is set (expect-test's rule, the same for every expected file).
#[allow(dead_code)]
pub fn expect_file(path: &Path, actual: &str) {
    expect_test::expect_file![Path::new(env!("CARGO_MANIFEST_DIR")).join(path)].assert_eq(actual);
}

/// Every `.yaml`/`.yml` file under `dir`, recursively (unsorted).
#[allow(dead_code)]
pub fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

/// The real MonkScript corpus: `$MONK_CORPUS`, else `shared/corpus` beside the
/// repository. A clone without it gets `None` and the caller skips, with the reason
/// printed; with `MONK_REQUIRE_CORPUS=1` (set by `.ci/run`) a missing corpus fails.
#[allow(dead_code)]
pub fn corpus_root(test: &str) -> Option<PathBuf> {
    let root = std::env::var_os("MONK_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"));
    if root.join("SOURCES.tsv").is_file() {
        return Some(root);
    }
    let reason = format!(
        "{test}: the MonkScript corpus is not at {} (set MONK_CORPUS=DIR to point at it)",
        root.display()
    );
    if std::env::var("MONK_REQUIRE_CORPUS").is_ok_and(|v| v == "1") {
        panic!("{reason}; MONK_REQUIRE_CORPUS=1 makes this a failure");
    }
    eprintln!("SKIPPED {reason}");
    None
}
