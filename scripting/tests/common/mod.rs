//! Shared helpers for the text-fixture tests: compare against an expected file, or
//! rewrite it when `UPDATE_EXPECT=1`.

use std::path::{Path, PathBuf};

/// Asserts that `actual` equals the file at `path` (relative to the crate), or writes it
/// when `UPDATE_EXPECT=1` is set.
#[allow(dead_code)]
pub fn expect_file(path: &Path, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    if std::env::var("UPDATE_EXPECT").is_ok_and(|v| v == "1") {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("create expect dir");
        }
        std::fs::write(&path, actual).expect("write expect file");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "missing expected output {}; run with UPDATE_EXPECT=1 to create it",
            path.display()
        )
    });
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "output differs from {} at line {}:\n  expected: {:?}\n  actual:   {:?}\nrun with UPDATE_EXPECT=1 to accept",
            path.display(),
            first + 1,
            expected.lines().nth(first),
            actual.lines().nth(first)
        );
    }
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
