//! Tidy checks in the rust-analyzer style: conventions that keep the code and its docs
//! honest, checked on every test run so they cannot drift.
//! - every module is in ARCHITECTURE.md's code map (by file or folder name);
//! - every module starts with a `//!` paragraph saying what it owns;
//! - no `unwrap()` in production code (outside `#[cfg(test)]` and the test crates);
//! - limits are named one way: `*_MAX`, never `MAX_*`;
//! - a source file over 800 lines says at its top why it is one piece;
//! - the proto documents exactly the queries the typed API has, and every RPC has an
//!   access rule.

use std::path::{Path, PathBuf};

/// Crates whose `src/` is production code.
const PRODUCTION_CRATES: &[&str] = &[
    "statemachine",
    "log",
    "audit",
    "node",
    "scripting",
    "cli",
    "js",
];
/// Crates whose `src/` must be documented and mapped but may unwrap (test code).
const TEST_CRATES: &[&str] = &["testkit", "jepsen-style", "benches"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `(shown path, path, text)` of every source file of `crates`.
fn sources(crates: &[&str]) -> Vec<(String, PathBuf, String)> {
    let mut out = Vec::new();
    for krate in crates {
        let dir = root().join(krate);
        let mut files = Vec::new();
        rust_files(&dir.join("src"), &mut files);
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file).expect("source readable");
            let inside = file.strip_prefix(&dir).unwrap_or(&file).display();
            out.push((format!("{krate}/{inside}"), file, text));
        }
    }
    out
}

fn all_crates() -> Vec<&'static str> {
    PRODUCTION_CRATES
        .iter()
        .chain(TEST_CRATES)
        .copied()
        .collect()
}

/// The part of a file that is not its `#[cfg(test)]` module(s): everything before the
/// first `#[cfg(test)]` line (test modules sit at the end by convention).
fn production_part(text: &str) -> &str {
    text.find("#[cfg(test)]").map_or(text, |at| &text[..at])
}

#[test]
fn every_module_is_in_the_code_map() {
    let map = std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let mut missing = Vec::new();
    for (shown, file, _) in sources(&all_crates()) {
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if matches!(name, "lib.rs" | "main.rs" | "mod.rs" | "tests.rs") {
            continue;
        }
        let stem = name.trim_end_matches(".rs");
        let named = map.contains(name) || map.contains(&format!("{stem}/"));
        let folder_named = file
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .is_some_and(|dir| dir != "src" && map.contains(&format!("{dir}/")));
        if !named && !folder_named {
            missing.push(shown);
        }
    }
    assert!(
        missing.is_empty(),
        "modules missing from ARCHITECTURE.md's code map:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_module_says_what_it_owns() {
    let undocumented: Vec<String> = sources(&all_crates())
        .into_iter()
        .filter(|(_, _, text)| {
            let first = text
                .lines()
                .find(|l| !l.trim().is_empty() && !l.starts_with("#!["))
                .unwrap_or("");
            !first.starts_with("//!")
        })
        .map(|(shown, _, _)| shown)
        .collect();
    assert!(
        undocumented.is_empty(),
        "modules without a `//!` paragraph at the top:\n{}",
        undocumented.join("\n")
    );
}

#[test]
fn production_code_does_not_unwrap() {
    let mut found = Vec::new();
    for (shown, _, text) in sources(PRODUCTION_CRATES) {
        if shown.ends_with("/tests.rs") {
            continue;
        }
        for (n, line) in production_part(&text).lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if code.contains(".unwrap()") {
                found.push(format!("{shown}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "unwrap() in production code (return a typed error, or `expect` an invariant with the reason):\n{}",
        found.join("\n")
    );
}

#[test]
fn limits_are_named_with_max_last() {
    let mut wrong = Vec::new();
    for (shown, _, text) in sources(&all_crates()) {
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_start();
            let line = line.strip_prefix("pub(crate) ").unwrap_or(line);
            let line = line.strip_prefix("pub ").unwrap_or(line);
            let Some(decl) = line.strip_prefix("const ") else {
                continue;
            };
            let name: String = decl
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            if name.starts_with("MAX_") {
                wrong.push(format!("{shown}:{}: {name}", n + 1));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "limits are named THING_UNIT_MAX (e.g. PATH_BYTES_MAX):\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_proto_documents_every_query_and_no_other() {
    let proto = std::fs::read_to_string(root().join("node/proto/monk.proto")).expect("proto");
    let line = proto
        .lines()
        .find_map(|l| l.trim().strip_prefix("// queries: "))
        .expect("QueryRequest documents its queries in a `// queries: ...` line");
    let documented: Vec<&str> = line.split(',').map(str::trim).collect();
    assert_eq!(
        documented,
        monk_node::api::Query::NAMES,
        "node/proto/monk.proto and monk_node::api::Query disagree"
    );
}

/// Every RPC has an access rule: `monk_node::trust::access::Rpc` names exactly the
/// proto's methods (and `rule` is an exhaustive match over it).
#[test]
fn every_rpc_of_the_proto_has_an_access_rule() {
    let proto = std::fs::read_to_string(root().join("node/proto/monk.proto")).expect("proto");
    let in_proto: Vec<&str> = proto
        .lines()
        .filter_map(|l| l.trim().strip_prefix("rpc "))
        .filter_map(|rest| rest.split('(').next())
        .collect();
    let ruled: Vec<&str> = monk_node::trust::access::Rpc::ALL
        .iter()
        .map(|r| r.name())
        .collect();
    assert_eq!(
        in_proto, ruled,
        "node/proto/monk.proto and monk_node::trust::access::Rpc disagree"
    );
}

/// Lines above which a source file must say why it is not split.
const FILE_LINES_MAX: usize = 800;

#[test]
fn long_files_say_why_they_are_one_piece() {
    let mut silent = Vec::new();
    for (shown, _, text) in sources(&all_crates()) {
        let lines = text.lines().count();
        let docs: String = text
            .lines()
            .take_while(|l| l.starts_with("//!"))
            .collect::<Vec<_>>()
            .join("\n");
        if lines > FILE_LINES_MAX && !docs.contains("Why one file of this size") {
            silent.push(format!("{shown}: {lines} lines"));
        }
    }
    assert!(
        silent.is_empty(),
        "files over {FILE_LINES_MAX} lines without a `//! Why one file of this size: ...` paragraph:\n{}",
        silent.join("\n")
    );
}
