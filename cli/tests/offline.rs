//! Offline commands through the real `monk` binary: no peer needed.

mod support;

use std::process::Command;

fn monk(args: &[&str]) -> std::process::Output {
    Command::new(support::monk_bin())
        .args(args)
        .env_remove("MONK_ADDR")
        .output()
        .unwrap()
}

#[test]
fn eval_prints_json_and_typed_vars() {
    let o = monk(&["eval", "--var", "port=8080", "<- $port 1 add"]);
    assert!(o.status.success(), "{}", support::stderr(&o));
    assert_eq!(support::stdout(&o).trim(), "8081");
    let o = monk(&[
        "eval",
        "--var",
        "host=db",
        "--var",
        "port=\"5432\"",
        "`postgres://${host}:${port}`",
    ]);
    assert_eq!(support::stdout(&o).trim(), "\"postgres://db:5432\"");
}

#[test]
fn eval_error_has_column_and_caret_and_exit_1() {
    let o = monk(&["eval", "<- 1 \"a\" add"]);
    assert_eq!(o.status.code(), Some(1));
    let err = support::stderr(&o);
    assert!(err.contains("col "), "{err}");
    assert!(err.contains('^'), "{err}");
    let o = monk(&["eval", "<- secret(\"x\")"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        support::stderr(&o).contains("needs a running cluster"),
        "{}",
        support::stderr(&o)
    );
}
