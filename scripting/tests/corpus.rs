//! The real corpus (`../shared/corpus`) as one test: every file is read; each YAML file
//! either loads cleanly or its problems have real positions and readable messages; the
//! outcome per file is kept in `tests/expect/corpus.txt` (regenerate with `UPDATE_EXPECT=1`).
//!
//! YAML files are checked one by one; inheritance is resolved against the whole corpus
//! (a file's own definitions first), since kits inherit from other kits.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use monk_scripting::monkscript::cli::{arrow_syntax, script_diagnostics};
use monk_scripting::monkscript::diagnostic::{sort_and_dedup, Diagnostic};
use monk_scripting::monkscript::load::{inheritance_diagnostics, read_text, Workspace};
use monk_scripting::monkscript::manifest;
use monk_scripting::monkscript::references::reference_diagnostics;
use monk_scripting::tree::Tree;

mod common;

fn all_files(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)
            .expect("corpus directory readable")
            .flatten()
        {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().and_then(|n| n.to_str()) != Some("SOURCES.tsv") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

/// Corpus paths that `SOURCES.tsv` marks as resources (files embedded with `<<<` or
/// shipped by `RESOURCES`): YAML among them is application config, not MonkScript.
fn resource_paths(root: &Path) -> std::collections::BTreeSet<PathBuf> {
    let index = std::fs::read_to_string(root.join("SOURCES.tsv")).expect("SOURCES.tsv readable");
    index
        .lines()
        .skip(1)
        .filter_map(|line| {
            let columns: Vec<&str> = line.split('\t').collect();
            (columns.len() >= 7 && columns[6] == "resource")
                .then(|| root.join(columns[0]).join(columns[2]))
        })
        .collect()
}

#[derive(Default)]
struct Tally {
    files: usize,
    yaml: usize,
    manifests: usize,
    resources: usize,
    clean: usize,
    warnings_only: usize,
    with_errors: usize,
    errors: usize,
    warnings: usize,
}

#[test]
fn whole_corpus_loads_or_fails_with_positioned_errors() {
    let Some(root) = common::corpus_root("corpus") else {
        return;
    };
    let prefix = format!("{}/", root.display());
    let files = all_files(&root);
    let resources = resource_paths(&root);
    let is_template = |p: &Path| is_yaml(p) && !resources.contains(p);
    let yaml: Vec<PathBuf> = files.iter().filter(|p| is_template(p)).cloned().collect();

    // Every YAML file checked on its own (one workspace per file keeps per-file diagnostics).
    let workspaces: Vec<(PathBuf, Workspace)> = yaml
        .iter()
        .map(|p| (p.clone(), Workspace::load(std::slice::from_ref(p))))
        .collect();
    let mut global: BTreeMap<String, Tree> = BTreeMap::new();
    for (_, ws) in &workspaces {
        for (path, tree) in ws.store() {
            global.entry(path).or_insert(tree);
        }
    }
    let candidates: Vec<&str> = global.keys().map(String::as_str).collect();
    let script_sites: usize = workspaces.iter().map(|(_, ws)| ws.scripts.len()).sum();

    let mut per_file: BTreeMap<PathBuf, Vec<Diagnostic>> = BTreeMap::new();
    for (path, ws) in &workspaces {
        let own = ws.store();
        let lookup = |p: &str| own.get(p).or_else(|| global.get(p));
        let mut diagnostics = ws.diagnostics.clone();
        diagnostics.extend(ws.duplicate_diagnostics());
        diagnostics.extend(inheritance_diagnostics(
            &ws.sources,
            &lookup,
            &candidates,
            true,
        ));
        diagnostics.extend(reference_diagnostics(&ws.sources, &lookup, &candidates));
        diagnostics.extend(script_diagnostics(ws, &arrow_syntax));
        per_file.insert(path.clone(), diagnostics);
    }

    let mut tally = Tally::default();
    let mut body = String::new();
    for path in &files {
        tally.files += 1;
        let relative = path.display().to_string().replace(&prefix, "");
        let diagnostics = if is_template(path) {
            tally.yaml += 1;
            per_file.remove(path).unwrap_or_default()
        } else if path.file_name().and_then(|n| n.to_str()) == Some("MANIFEST") {
            tally.manifests += 1;
            let file = path.display().to_string();
            manifest::expand(path)
                .diagnostics
                .into_iter()
                .filter(|d| d.file == file)
                .collect()
        } else {
            tally.resources += 1;
            let outcome = match read_text(path) {
                Ok(_) => "resource".to_string(),
                Err(_) => "resource (not UTF-8 text, shipped as bytes)".to_string(),
            };
            body.push_str(&format!("== {relative}: {outcome}\n"));
            continue;
        };
        let mut diagnostics: Vec<Diagnostic> = diagnostics
            .into_iter()
            .map(|mut d| {
                d.file = d.file.replace(&prefix, "");
                d
            })
            .collect();
        sort_and_dedup(&mut diagnostics);
        for d in &diagnostics {
            assert!(
                d.line >= 1 && d.column >= 1,
                "diagnostic without a real position: {d}"
            );
            assert!(
                d.message.len() >= 10,
                "message too short to help anyone: {d}"
            );
        }
        let errors = diagnostics.iter().filter(|d| d.is_error()).count();
        let warnings = diagnostics.len() - errors;
        tally.errors += errors;
        tally.warnings += warnings;
        let outcome = match (errors, warnings) {
            (0, 0) => {
                tally.clean += 1;
                "clean".to_string()
            }
            (0, w) => {
                tally.warnings_only += 1;
                format!("{w} warnings")
            }
            (e, w) => {
                tally.with_errors += 1;
                format!("{e} errors, {w} warnings")
            }
        };
        body.push_str(&format!("== {relative}: {outcome}\n"));
        for d in &diagnostics {
            body.push_str(&format!("{d}\n"));
        }
    }
    let checked = tally.yaml + tally.manifests;
    let summary = format!(
        "files {}: yaml {}, manifests {}, resources {}\nyaml+manifests {checked}: clean {}, warnings only {}, with errors {}\ndiagnostics: {} errors, {} warnings\nArrowScript sites: {script_sites}\n\n",
        tally.files, tally.yaml, tally.manifests, tally.resources, tally.clean, tally.warnings_only, tally.with_errors, tally.errors, tally.warnings
    );
    println!("{summary}");
    assert!(
        tally.files > 1000,
        "corpus looks truncated: {} files",
        tally.files
    );
    common::expect_file(Path::new("tests/expect/corpus.txt"), &(summary + &body));
}
