//! Every operator's example produces its documented result, and the generated
//! reference page `docs/arrowscript.md` is up to date (`UPDATE_EXPECT=1`
//! rewrites it).

use monk_scripting::arrow::ops::OPS;
use monk_scripting::arrow::reference::{render, run_example};

#[test]
fn every_operator_example_gives_its_expected_result() {
    let mut failures = Vec::new();
    for op in OPS {
        let uses_op = std::iter::once(&op.name)
            .chain(op.aliases)
            .any(|name| op.example.contains(name));
        if !uses_op {
            failures.push(format!(
                "{}: example `{}` does not use the operator",
                op.name, op.example
            ));
        }
        let got = run_example(op.example);
        if got != op.expected {
            failures.push(format!(
                "{}: `{}` gave {got}, expected {}",
                op.name, op.example, op.expected
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} examples wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn reference_page_is_up_to_date() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/arrowscript.md");
    let page = render();
    // Stale when it differs: `UPDATE_EXPECT=1 cargo test --workspace --test
    // arrow_reference` regenerates it.
    expect_test::expect_file![path].assert_eq(&page);
}

/// Every operator, called with every argument count its table entry allows
/// (and without parentheses), on stacks of odd values, fails cleanly or
/// succeeds: the table's arity and the implementations agree.
#[test]
fn every_operator_survives_every_allowed_arity() {
    let fillers = [
        "nil",
        "1",
        "\"s\"",
        "[1]",
        "{\"a\": 1}",
        "<-{ 1 }",
        "true",
        "2.5",
        "3n",
    ];
    let mut panicked = Vec::new();
    for op in OPS {
        for filler in fillers {
            let spare = format!("{filler} ").repeat(5);
            let mut scripts = vec![format!("{spare}{}", op.name)];
            for count in 0..=5 {
                if op.check_arg_count(count).is_ok() {
                    let args = vec![filler; count].join(", ");
                    scripts.push(format!("{spare}{}({args})", op.name));
                    scripts.push(format!("{}({args})", op.name));
                }
            }
            for script in scripts {
                if std::panic::catch_unwind(|| run_example(&script)).is_err() {
                    panicked.push(script);
                }
            }
        }
    }
    assert!(
        panicked.is_empty(),
        "these scripts panicked:\n{}",
        panicked.join("\n")
    );
}
