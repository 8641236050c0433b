//! Data-driven tests: every input under `tests/fixtures/` sits beside its expected
//! output (`<name>.expected`), regenerated with `UPDATE_EXPECT=1`.
//!
//! - `lint/*.yaml`: `monk lint FILE` output and exit code (one rule per file).
//! - `resolve/*.yaml`: `monk dump` of every definition that inherits, and every group
//!   member with the group's variables.
//! - `manifest/<case>/MANIFEST`: the load plan, then `monk lint` of the directory.

use std::path::{Path, PathBuf};

use monk_scripting::monkscript::cli::{dump_command, lint_command, DumpFormat};
use monk_scripting::monkscript::load::Workspace;
use monk_scripting::monkscript::manifest;
use monk_scripting::monkscript::model::normalize_path;
use monk_scripting::monkscript::resolve::{resolve, with_group_variables};
use monk_scripting::tree::Tree;

mod common;

fn inputs(dir: &str, wanted: impl Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("fixture dir {dir}: {e}"))
        .flatten()
        .map(|e| e.path())
        .filter(|p| wanted(p))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no fixtures in {dir}");
    paths
}

fn is_yaml(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()) == Some("yaml")
}

fn expected_path(input: &Path, suffix: &str) -> PathBuf {
    let mut name = input
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    name.push_str(suffix);
    input.with_file_name(name)
}

/// Whether `inherits` appears anywhere in the definition (top level or nested).
fn mentions_inherits(tree: &Tree) -> bool {
    match tree {
        Tree::Map(entries) => entries
            .iter()
            .any(|(k, v)| k == "inherits" || mentions_inherits(v)),
        Tree::Seq(items) => items.iter().any(mentions_inherits),
        _ => false,
    }
}

#[test]
fn lint_fixtures() {
    for input in inputs("tests/fixtures/lint", is_yaml) {
        let output = lint_command(std::slice::from_ref(&input), false, false);
        let text = format!(
            "exit: {}\n{}{}",
            output.exit_code, output.stdout, output.stderr
        );
        common::expect_file(&expected_path(&input, ".expected"), &text);
    }
}

#[test]
fn lint_json_and_strict() {
    let input = PathBuf::from("tests/fixtures/lint/arrow-mistakes.yaml");
    let json = lint_command(std::slice::from_ref(&input), false, true);
    assert_eq!(json.exit_code, 0, "warnings only");
    let parsed: serde_json::Value =
        serde_json::from_str(&json.stdout).expect("lint --json prints JSON");
    let first = &parsed[0];
    for key in ["file", "line", "column", "severity", "code", "message"] {
        assert!(
            first.get(key).is_some(),
            "JSON diagnostic lacks `{key}`: {first}"
        );
    }
    common::expect_file(
        Path::new("tests/fixtures/lint/arrow-mistakes.yaml.json.expected"),
        &json.stdout,
    );
    let strict = lint_command(&[input], true, false);
    assert_eq!(strict.exit_code, 1, "strict turns warnings into errors");
    assert!(strict.stdout.contains(": error: "), "{}", strict.stdout);
}

#[test]
fn resolve_fixtures() {
    for input in inputs("tests/fixtures/resolve", is_yaml) {
        let workspace = Workspace::load(std::slice::from_ref(&input));
        assert!(
            workspace.diagnostics.iter().all(|d| !d.is_error()),
            "fixture {} must be valid: {:?}",
            input.display(),
            workspace.diagnostics
        );
        let store = workspace.store();
        let mut text = String::new();
        for (_, definition) in workspace.definitions() {
            if mentions_inherits(&definition.node.to_tree()) {
                let dumped = dump_command(
                    &definition.path,
                    std::slice::from_ref(&input),
                    DumpFormat::Yaml,
                );
                text.push_str(&format!(
                    "--- dump {} (exit {})\n{}{}",
                    definition.path, dumped.exit_code, dumped.stdout, dumped.stderr
                ));
            }
            if definition.kind.is_group() {
                let group = resolve(&definition.path, &|p| store.get(p)).expect("group resolves");
                let namespace = definition.path.rsplit_once('/').map_or("", |(ns, _)| ns);
                let members = match group.get("members") {
                    Some(Tree::Seq(items)) => items.clone(),
                    _ => Vec::new(),
                };
                for written in members.iter().filter_map(Tree::as_str) {
                    let path = normalize_path(written, namespace);
                    let resolved = resolve(&path, &|p| store.get(p)).expect("member resolves");
                    let merged = with_group_variables(&resolved, &group);
                    text.push_str(&format!(
                        "--- member {path} of {}\n{}",
                        definition.path,
                        serde_saphyr::to_string(&merged).expect("yaml")
                    ));
                }
            }
        }
        common::expect_file(&expected_path(&input, ".expected"), &text);
    }
}

#[test]
fn manifest_fixtures() {
    for case in inputs("tests/fixtures/manifest", |p| p.is_dir()) {
        if !case.join("MANIFEST").is_file() {
            // A directory without a MANIFEST: walked, sub-directories with a MANIFEST taken through it.
            let mut text = String::from("no MANIFEST: directory walk\n");
            let lint = lint_command(std::slice::from_ref(&case), false, false);
            text.push_str(&format!(
                "--- lint {} (exit {})\n{}{}",
                case.display(),
                lint.exit_code,
                lint.stdout,
                lint.stderr
            ));
            let workspace = Workspace::load(std::slice::from_ref(&case));
            for file in &workspace.files {
                text.push_str(&format!("loaded {}\n", file.display()));
            }
            common::expect_file(&case.with_extension("expected"), &text);
            continue;
        }
        let plan = manifest::expand(&case.join("MANIFEST"));
        let mut text = format!("repo: {:?}\nload order:\n", plan.repo);
        for (file, from, pos) in &plan.load {
            text.push_str(&format!(
                "  {} (from {from}:{}:{})\n",
                file.display(),
                pos.line,
                pos.col
            ));
        }
        text.push_str(&format!(
            "resources: {:?}\nblobs: {:?}\nsecrets: {:?}\nentries: {:?}\nenvironments: {:?}\nimages: {:?}\nmetadata: {:?}\n",
            plan.resources, plan.blobs, plan.secrets, plan.entries, plan.environments, plan.images, plan.metadata
        ));
        let lint = lint_command(std::slice::from_ref(&case), false, false);
        text.push_str(&format!(
            "--- lint {} (exit {})\n{}{}",
            case.display(),
            lint.exit_code,
            lint.stdout,
            lint.stderr
        ));
        let workspace = Workspace::load(std::slice::from_ref(&case));
        for (_, definition) in workspace
            .definitions()
            .filter(|(_, d)| d.inherits.is_some())
        {
            let dumped = dump_command(
                &definition.path,
                std::slice::from_ref(&case),
                DumpFormat::Json,
            );
            text.push_str(&format!(
                "--- dump {} (exit {})\n{}{}",
                definition.path, dumped.exit_code, dumped.stdout, dumped.stderr
            ));
        }
        common::expect_file(&case.with_extension("expected"), &text);
    }
}
