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

#[test]
fn lint_reports_positions_json_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "namespace: shop\nstack:\n  defines: group\n  containers:\n    web:\n      image: nginx\n  members:\n    - shop/web\nweb:\n  defines: runnable\n  variables:\n    port: <- $x 1 add(\n").unwrap();
    let o = monk(&["lint", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", support::stdout(&o));
    let text = format!("{}{}", support::stdout(&o), support::stderr(&o));
    assert!(
        text.contains("bad.yaml:4:3: error:"),
        "a group with containers is reported at the key: {text}"
    );
    assert!(
        text.contains("bad.yaml:12:"),
        "the broken script is reported on its line: {text}"
    );
    let o = monk(&["lint", "-o", "json", bad.to_str().unwrap()]);
    let list: serde_json::Value =
        serde_json::from_str(&support::stdout(&o)).expect("lint -o json is JSON");
    let first = &list.as_array().expect("a list of diagnostics")[0];
    for key in ["file", "line", "column", "severity", "code", "message"] {
        assert!(first.get(key).is_some(), "diagnostic lacks {key}: {first}");
    }
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, "namespace: shop\nbase:\n  containers:\n    web:\n      image: nginx\n      ports:\n        - 80\nweb:\n  defines: runnable\n  inherits: ./base\n  containers:\n    web:\n      image-tag: \"1.25\"\n").unwrap();
    let o = monk(&["lint", good.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        support::stdout(&o),
        support::stderr(&o)
    );
    let o = monk(&[
        "dump",
        "shop/web",
        "--from",
        good.to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert!(o.status.success(), "{}", support::stderr(&o));
    let resolved: serde_json::Value = serde_json::from_str(&support::stdout(&o)).unwrap();
    assert_eq!(
        resolved["containers"]["web"]["image"], "nginx",
        "inherited from ./base: {resolved}"
    );
    assert_eq!(resolved["containers"]["web"]["image-tag"], "1.25");
}

/// Output into a pipe whose reader left (`monk completions bash | head -1`) ends the
/// command quietly with status 0, as `ls | head` does, instead of a "failed printing
/// to stdout" panic (or, were SIGPIPE's default restored, death by the signal).
#[test]
fn a_closed_pipe_ends_monk_quietly() {
    use std::process::Stdio;
    let mut child = Command::new(support::monk_bin())
        .args(["completions", "bash"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    let err = support::stderr(&o);
    assert!(!err.contains("panicked"), "{err}");
    assert!(o.status.success(), "{:?} {err}", o.status);
    assert!(err.is_empty(), "{err}");
}
