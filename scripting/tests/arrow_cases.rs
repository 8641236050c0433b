//! Text fixture for `monk eval`: the scripts in `tests/arrow/cases.arrow` and
//! their output (stdout, stderr with the caret, exit code) in
//! `tests/expect/arrow-cases.txt`. `UPDATE_EXPECT=1` rewrites the expectation.

use std::fmt::Write as _;

use monk_scripting::arrow::cli::eval_command;

const CASES: &str = include_str!("arrow/cases.arrow");
const EXPECT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/expect/arrow-cases.txt");

struct Case {
    vars: Vec<String>,
    script: String,
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    let mut vars = Vec::new();
    let mut script: Vec<&str> = Vec::new();
    for line in CASES.lines() {
        if line == "---" {
            out.push(Case {
                vars: std::mem::take(&mut vars),
                script: script.join("\n"),
            });
            script.clear();
        } else if let Some(var) = line.strip_prefix("--var ") {
            vars.push(var.to_string());
        } else if script.is_empty() && (line.starts_with('#') || line.is_empty()) {
            continue;
        } else {
            script.push(line);
        }
    }
    assert!(
        script.is_empty(),
        "the last case in cases.arrow is not ended by ---"
    );
    out
}

#[test]
fn eval_cases_match_their_expected_output() {
    let mut report = String::from(
        "# Output of tests/arrow/cases.arrow through `monk eval` (UPDATE_EXPECT=1 to regenerate)\n",
    );
    for case in cases() {
        let out = eval_command(&case.script, &case.vars, None);
        let _ = writeln!(
            report,
            "\n$ monk eval{}",
            case.vars
                .iter()
                .map(|v| format!(" --var {v}"))
                .collect::<String>()
        );
        for line in case.script.lines() {
            let _ = writeln!(report, "> {line}");
        }
        let _ = writeln!(report, "exit {}", out.exit_code);
        for line in out.stdout.lines() {
            let _ = writeln!(report, "stdout: {line}");
        }
        for line in out.stderr.lines() {
            let _ = writeln!(report, "stderr: {line}");
        }
    }
    expect_test::expect_file![EXPECT].assert_eq(&report);
}
