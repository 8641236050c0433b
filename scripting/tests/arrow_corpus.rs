//! Every ArrowScript in the real corpus (`../shared/corpus`) parses, or fails
//! with a position: the counts and each failure are pinned in
//! `tests/expect/arrow-corpus.txt` (`UPDATE_EXPECT=1` rewrites it).
//!
//! Scripts are YAML strings starting with `<-`, plus `code` of actions and
//! readiness checks (written without `<-`; not in `defines: entity` types, whose
//! checks are JavaScript) and `scale.value`. Every script that parses is also
//! evaluated against the stub host with every variable set to a placeholder
//! string, to show evaluation never panics on real input.

use std::fmt::Write as _;

use monk_scripting::arrow::{eval, parse, StubHost, Value, Vars};
use monk_scripting::tree::Tree;

mod common;

const EXPECT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/expect/arrow-corpus.txt");

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Arrow,
    Code,
    Scale,
}

struct Found {
    file: String,
    path: String,
    text: String,
    kind: Kind,
}

fn walk(
    tree: &Tree,
    path: &mut Vec<String>,
    in_entity_type: bool,
    file: &str,
    out: &mut Vec<Found>,
) {
    let here = |path: &Vec<String>| path.join(".");
    match tree {
        Tree::Map(entries) => {
            for (key, value) in entries {
                path.push(key.clone());
                walk(value, path, in_entity_type, file, out);
                path.pop();
            }
        }
        Tree::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(i.to_string());
                walk(item, path, in_entity_type, file, out);
                path.pop();
            }
        }
        Tree::Str(text) => {
            let code_key = path.iter().rposition(|k| k == "code");
            let in_code = code_key.is_some_and(|i| {
                path.len() - i <= 2
                    && path[..i].iter().any(|k| {
                        matches!(
                            k.as_str(),
                            "actions" | "readiness" | "readyness" | "check" | "checks"
                        )
                    })
            });
            let is_scale = path.len() >= 2
                && path[path.len() - 1] == "value"
                && path[path.len() - 2] == "scale";
            let kind = if text.trim_start().starts_with("<-") {
                Kind::Arrow
            } else if in_code && !in_entity_type {
                Kind::Code
            } else if is_scale {
                Kind::Scale
            } else {
                return;
            };
            out.push(Found {
                file: file.to_string(),
                path: here(path),
                text: text.clone(),
                kind,
            });
        }
        _ => {}
    }
}

/// Every variable reads as a placeholder string.
struct AnyVars;

impl Vars for AnyVars {
    fn get(&self, name: &str) -> Option<Value> {
        Some(Value::str(&format!("<{name}>")))
    }
}

fn one_line(text: &str) -> String {
    let flat: String = text
        .trim()
        .chars()
        .map(|c| if c == '\n' { '⏎' } else { c })
        .collect();
    if flat.chars().count() > 140 {
        flat.chars().take(137).collect::<String>() + "..."
    } else {
        flat
    }
}

#[test]
fn corpus_scripts_parse_or_fail_with_a_position() {
    let Some(root) = common::corpus_root("arrow_corpus") else {
        return;
    };
    let root = root.as_path();
    let mut files = Vec::new();
    common::yaml_files(root, &mut files);
    files.sort();
    assert!(
        files.len() > 500,
        "only {} YAML files under {}",
        files.len(),
        root.display()
    );

    let mut found = Vec::new();
    let mut yaml_errors = Vec::new();
    for file in &files {
        let rel = file
            .strip_prefix(root)
            .unwrap_or(file)
            .display()
            .to_string();
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let docs: Vec<Tree> = match serde_saphyr::from_multiple(&text) {
            Ok(docs) => docs,
            Err(err) => {
                yaml_errors.push(format!(
                    "{rel}: {}",
                    one_line(&err.to_string())
                        .chars()
                        .take(100)
                        .collect::<String>()
                ));
                continue;
            }
        };
        for doc in &docs {
            let Tree::Map(defs) = doc else { continue };
            for (name, def) in defs {
                let entity_type = def.get("defines").and_then(Tree::as_str) == Some("entity");
                walk(def, &mut vec![name.clone()], entity_type, &rel, &mut found);
            }
        }
    }

    let mut parsed = 0;
    let mut failures = String::new();
    let mut evaluated_ok = 0;
    let mut eval_errors = std::collections::BTreeMap::<String, usize>::new();
    let mut op_uses = std::collections::BTreeMap::<&str, usize>::new();
    for script in &found {
        match parse(&script.text) {
            Ok(ast) => {
                parsed += 1;
                for op in ast.operators() {
                    *op_uses.entry(op).or_default() += 1;
                }
                match eval(&ast, &AnyVars, &mut StubHost) {
                    Ok(_) => evaluated_ok += 1,
                    Err(err) => {
                        let message: String = err.message.chars().take(60).collect();
                        *eval_errors.entry(message).or_default() += 1;
                    }
                }
            }
            Err(err) => {
                let _ = writeln!(
                    failures,
                    "{}: {}: line {}, col {}: {}\n    {}",
                    script.file,
                    script.path,
                    err.line,
                    err.col,
                    err.message,
                    one_line(&script.text)
                );
            }
        }
    }
    let count = |kind| found.iter().filter(|s| s.kind == kind).count();
    let mut report = String::new();
    let _ = writeln!(report, "# ArrowScript corpus results; regenerate with UPDATE_EXPECT=1 cargo test -p monk-scripting --test arrow_corpus");
    let _ = writeln!(report, "yaml files: {}", files.len());
    let _ = writeln!(
        report,
        "yaml files that do not parse (skipped): {}",
        yaml_errors.len()
    );
    let _ = writeln!(
        report,
        "scripts: {} (`<-` scalars {}, action/check code {}, scale.value {})",
        found.len(),
        count(Kind::Arrow),
        count(Kind::Code),
        count(Kind::Scale)
    );
    let _ = writeln!(report, "parsed: {parsed}");
    let _ = writeln!(report, "failed: {}", found.len() - parsed);
    let _ = writeln!(
        report,
        "evaluated with stub host and placeholder variables: ok {evaluated_ok}, error {}",
        parsed - evaluated_ok
    );
    let _ = writeln!(report, "\n## parse failures\n{failures}");
    let _ = writeln!(report, "## operators: scripts using each (table operators the corpus never uses are listed with 0)");
    for op in monk_scripting::arrow::ops::OPS {
        let _ = writeln!(
            report,
            "{:5} {}",
            op_uses.get(op.name).copied().unwrap_or(0),
            op.name
        );
    }
    let _ = writeln!(
        report,
        "\n## evaluation errors (first 60 characters, count)"
    );
    for (message, n) in &eval_errors {
        let _ = writeln!(report, "{n:5} {message}");
    }
    let _ = writeln!(report, "\n## yaml files that do not parse");
    for line in &yaml_errors {
        let _ = writeln!(report, "{line}");
    }

    expect_test::expect_file![EXPECT].assert_eq(&report);
}
