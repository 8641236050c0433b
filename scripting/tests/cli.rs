//! The library entry points the `monk` binary and the daemon call: `load_definitions`,
//! `resolve_stored`, and lint with a pluggable ArrowScript checker.

use std::collections::BTreeMap;
use std::path::PathBuf;

use monk_scripting::monkscript::cli::{
    dump_command, lint_command_with_checker, load_definitions, resolve_stored, DumpFormat,
};
use monk_scripting::tree::Tree;

fn yaml(text: &str) -> Tree {
    serde_saphyr::from_str::<Tree>(text).expect("valid YAML")
}

#[test]
fn load_definitions_returns_definitions_as_written_even_when_parents_live_in_the_cluster() {
    let (definitions, warnings) =
        load_definitions(&[PathBuf::from("tests/fixtures/load/kit.yaml")]).expect("loads");
    assert!(warnings.is_empty(), "{warnings:?}");
    let summary: Vec<(String, String)> = definitions
        .iter()
        .map(|d| (d.path.clone(), d.kind.clone()))
        .collect();
    assert_eq!(
        summary,
        [
            ("shop/web".to_string(), "runnable".to_string()),
            ("shop/stack".to_string(), "group".to_string()),
            (
                "shop/bucket".to_string(),
                "hub/bucket-type instance".to_string()
            ),
        ]
    );
    assert_eq!(
        definitions[0].definition.get("inherits"),
        Some(&Tree::Str("hub/nginx".into()))
    );
    assert_eq!(
        definitions[0].definition.get("variables"),
        Some(&yaml("port: <- 8000 80 add\n"))
    );
}

#[test]
fn load_definitions_refuses_files_with_errors() {
    let errors = load_definitions(&[PathBuf::from("tests/fixtures/lint/naming.yaml")])
        .expect_err("naming errors");
    assert!(
        errors.iter().any(|d| d.code == "naming" && d.is_error()),
        "{errors:?}"
    );
}

#[test]
fn resolve_stored_merges_against_the_cluster_state() {
    let (definitions, _) =
        load_definitions(&[PathBuf::from("tests/fixtures/load/kit.yaml")]).expect("loads");
    let mut stored: BTreeMap<String, Tree> = definitions
        .into_iter()
        .map(|d| (d.path, d.definition))
        .collect();
    assert_eq!(
        resolve_stored("shop/web", &stored).expect_err("parent not stored yet")[0].code,
        "missing-parent"
    );
    stored.insert(
        "hub/nginx".into(),
        yaml("defines: runnable\ncontainers:\n  web:\n    image: nginx\n    image-tag: latest\n"),
    );
    let resolved = resolve_stored("/shop/web", &stored).expect("resolves");
    assert_eq!(
        resolved.get("containers"),
        Some(&yaml("web:\n  image: nginx\n  image-tag: \"1.25\"\n"))
    );
    assert!(resolved.get("inherits").is_none());
}

#[test]
fn lint_runs_the_script_checker_on_every_script_site_with_positions() {
    let seen = std::cell::RefCell::new(Vec::new());
    let checker = |script: &str| -> Result<(), (usize, String)> {
        seen.borrow_mut().push(script.to_string());
        match script.find("add") {
            Some(offset) => Err((offset, "`add` is not allowed in this test".into())),
            None => Ok(()),
        }
    };
    let output = lint_command_with_checker(
        &[PathBuf::from("tests/fixtures/load/kit.yaml")],
        false,
        false,
        &checker,
    );
    assert_eq!(output.exit_code, 1);
    assert_eq!(
        *seen.borrow(),
        [
            " 8000 80 add".to_string(),
            "http-get(\"http://localhost\") nil? not".to_string()
        ]
    );
    // `    port: <- 8000 80 add`: the script starts after `<-` at column 13; `add` is 9 bytes in.
    // The parent `hub/nginx` is not among the files, so offline lint also reports it.
    assert!(
        output
            .stdout
            .contains("tests/fixtures/load/kit.yaml:6:22: error: `add` is not allowed"),
        "{}",
        output.stdout
    );
}

#[test]
fn dump_prints_json_and_refuses_unknown_paths() {
    let from = [PathBuf::from("tests/fixtures/resolve/maps-deep-merge.yaml")];
    let output = dump_command("r/child", &from, DumpFormat::Json);
    assert_eq!(output.exit_code, 0, "{}", output.stderr);
    let value: serde_json::Value = serde_json::from_str(&output.stdout).expect("json");
    assert_eq!(value["variables"]["port"]["value"], 8080);
    assert_eq!(value["variables"]["port"]["env"], "PORT");
    let missing = dump_command("r/nothing", &from, DumpFormat::Yaml);
    assert_eq!(missing.exit_code, 2);
    assert!(
        missing.stderr.contains("`r/nothing` is not defined"),
        "{}",
        missing.stderr
    );
}

#[test]
fn resolution_does_not_depend_on_load_order() {
    let dir = PathBuf::from("tests/fixtures/manifest/nested");
    let files = [
        dir.join("stack.yaml"),
        dir.join("sub/sub.yaml"),
        dir.join("sub/deeper/deep.yaml"),
        dir.join("base.yaml"),
    ];
    let forward = dump_command("nested/app", &files, DumpFormat::Json);
    let mut reversed_files = files.clone();
    reversed_files.reverse();
    let reversed = dump_command("nested/app", &reversed_files, DumpFormat::Json);
    assert_eq!(forward.exit_code, 0, "{}", forward.stderr);
    assert_eq!(forward, reversed);
    assert!(
        forward.stdout.contains("\"from\": \"deep\""),
        "{}",
        forward.stdout
    );
}
