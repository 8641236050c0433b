//! Every `defines: runnable` in the real corpus (`../shared/corpus`), resolved through
//! its `inherits` chain, goes through `runnable_spec` with the stub host and no
//! overrides. The counts and every failing runnable with its errors are pinned in
//! `tests/expect/runtime-corpus.txt` (`UPDATE_EXPECT=1` rewrites it).
//!
//! Runnables whose only problems are required variables without a value are counted
//! apart: they are waiting for `monk run --set`, not broken.

use std::collections::BTreeMap;
use std::path::Path;

use monk_scripting::arrow::StubHost;
use monk_scripting::monkscript::cli::resolve_stored;
use monk_scripting::monkscript::load::Workspace;
use monk_scripting::monkscript::model::normalize_path;
use monk_scripting::monkscript::resolve::{namespace_of, with_group_variables};
use monk_scripting::monkscript::runtime::{runnable_spec, SpecError};
use monk_scripting::tree::Tree;

mod common;

fn is_missing_required(error: &SpecError) -> bool {
    error.message.starts_with("is required but has no value")
}

#[derive(Default)]
struct Tally {
    runnables: usize,
    ok: usize,
    containers: usize,
    files: usize,
    only_required: usize,
    unresolved: usize,
    failed: usize,
}

#[test]
fn corpus_runnables_become_container_specs() {
    let Some(root) = common::corpus_root("runtime_corpus") else {
        return;
    };
    let mut files = Vec::new();
    common::yaml_files(&root, &mut files);
    files.sort();
    assert!(
        files.len() > 1000,
        "corpus truncated at {}: {} YAML files",
        root.display(),
        files.len()
    );
    // The first definition of each path wins, as in the corpus lint test.
    let mut store: BTreeMap<String, Tree> = BTreeMap::new();
    for file in &files {
        for (path, tree) in Workspace::load(std::slice::from_ref(file)).store() {
            store.entry(path).or_insert(tree);
        }
    }
    let runnables: Vec<&String> = store
        .iter()
        .filter(|(_, tree)| tree.get("defines").and_then(Tree::as_str) == Some("runnable"))
        .map(|(path, _)| path)
        .collect();

    // A runnable that is a member of a group runs with the group's variables (the
    // first group in path order that lists it), as `monk run <group>` would.
    let mut groups: BTreeMap<String, &Tree> = BTreeMap::new();
    for (group_path, tree) in &store {
        let Some(Tree::Str(kind)) = tree.get("defines") else {
            continue;
        };
        if kind != "group" && kind != "process-group" {
            continue;
        }
        for key in ["members", "runnable-list"] {
            let Some(Tree::Seq(members)) = tree.get(key) else {
                continue;
            };
            for member in members.iter().filter_map(Tree::as_str) {
                let member = normalize_path(member.trim(), namespace_of(group_path));
                groups.entry(member).or_insert(tree);
            }
        }
    }

    let mut tally = Tally::default();
    let mut body = String::new();
    let overrides = BTreeMap::new();
    for path in runnables {
        tally.runnables += 1;
        let resolved = match resolve_stored(path, &store) {
            Ok(resolved) => resolved,
            Err(diagnostics) => {
                tally.unresolved += 1;
                let message = diagnostics.first().map(|d| d.message.clone());
                body.push_str(&format!(
                    "== {path}: unresolved: {}\n",
                    message.unwrap_or_default()
                ));
                continue;
            }
        };
        let resolved = match groups.get(path.as_str()) {
            Some(group) => with_group_variables(&resolved, group),
            None => resolved,
        };
        match runnable_spec(path, &resolved, &overrides, &mut StubHost) {
            Ok(spec) => {
                tally.ok += 1;
                tally.containers += spec.containers.len();
                tally.files += spec.containers.iter().map(|c| c.files.len()).sum::<usize>();
            }
            Err(errors) => {
                let only_required = errors.iter().all(is_missing_required);
                let kind = if only_required {
                    tally.only_required += 1;
                    "required variables without a value"
                } else {
                    tally.failed += 1;
                    "errors"
                };
                body.push_str(&format!("== {path}: {kind}\n"));
                for error in &errors {
                    body.push_str(&format!("  {error}\n"));
                }
            }
        }
    }
    let summary = format!(
        "runnables {}: ok {} ({} containers, {} files), only required variables missing {}, \
         other errors {}, unresolved inherits {}\n\n",
        tally.runnables,
        tally.ok,
        tally.containers,
        tally.files,
        tally.only_required,
        tally.failed,
        tally.unresolved
    );
    println!("{summary}");
    assert!(
        tally.ok > tally.failed,
        "most corpus runnables should build"
    );
    common::expect_file(
        Path::new("tests/expect/runtime-corpus.txt"),
        &(summary + &body),
    );
}
