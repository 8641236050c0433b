//! The ArrowScript reference page, generated from the operator table.
//!
//! `docs/arrowscript.md` is [`render`]'s output; a test runs every example and
//! fails when the committed page differs (regenerate with `UPDATE_EXPECT=1`).
//! Examples run with [`example_vars`] and the [`StubHost`].

use std::fmt::Write as _;
use std::sync::Arc;

use super::eval::{eval, VarMap};
use super::host::StubHost;
use super::ops::{OpSpec, OPS};
use super::parser::parse;
use super::value::Value;

/// Variables the examples can use.
pub fn example_vars() -> VarMap {
    let mut vars = VarMap::new();
    vars.insert("port".into(), Value::Int(8080));
    vars.insert("host".into(), Value::str("db.local"));
    vars.insert("flag".into(), Value::Bool(true));
    vars.insert("empty".into(), Value::str(""));
    vars.insert(
        "args".into(),
        Value::object(vec![(Arc::from("name"), Value::str("demo"))]),
    );
    vars
}

/// Runs a script as the examples do: the JSON of its value, or `error: ...`.
pub fn run_example(script: &str) -> String {
    let parsed = match parse(script) {
        Ok(parsed) => parsed,
        Err(err) => return format!("error: {err}"),
    };
    match eval(&parsed, &example_vars(), &mut StubHost) {
        Ok(value) => value.to_json(),
        Err(err) => format!("error: {}", err.message),
    }
}

fn names(op: &OpSpec) -> String {
    std::iter::once(op.name)
        .chain(op.aliases.iter().copied())
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The whole reference page.
pub fn render() -> String {
    let mut out = String::new();
    out.push_str(concat!(
        "# ArrowScript operator reference\n\n",
        "<!-- Generated from scripting/src/arrow/ops/table.rs by scripting/tests/arrow_reference.rs;\n",
        "     regenerate with UPDATE_EXPECT=1 cargo test -p monk-scripting --test arrow_reference. -->\n\n",
        "ArrowScript is MonkScript's embedded concatenative language: values and operator calls run\n",
        "left to right on a stack (`<- $port 1 add`). An operator takes its parenthesised arguments\n",
        "or, without parentheses, the same values from the stack: `concat(\"x\")` is `\"x\" concat`.\n",
        "Signatures read `(inputs) | name(params) | (results)`. Parameters come from the parentheses\n",
        "or, without them, from the stack; parentheses may also supply the inputs, so `1 2 add`,\n",
        "`1 add(2)` and `add(1, 2)` are the same. Operators with `...` parameters (`exec`, `act`,\n",
        "`concat-all`) take exactly the parenthesised arguments, or without parentheses every value\n",
        "above the last `mark` (the start of the expression counts as one). The value of a script is the\n",
        "top of the stack when it ends (`nil` if the stack is empty).\n\n",
        "Examples run with the variables `$port` = 8080, `$host` = \"db.local\", `$flag` = true,\n",
        "`$empty` = \"\" and `$args` = {\"name\": \"demo\"}. Operators marked *host* reach outside the\n",
        "script; their examples run against the stub host (`arrow::StubHost`), which answers with\n",
        "placeholders. Offline (`monk eval`) they fail with \"needs a running cluster\".\n\n",
        "Syntax: `nil` (or `null`), `true`/`false`, ints `0b11 0xff 0777 -1337`, bigints `123n`, floats `0.1 -0.4e2`,\n",
        "strings `\"...\"` `'...'`, templates `` `${name} ${f(\"x\") g}` `` (a bare name inside `${}` is a\n",
        "variable), arrays `[1, \"a\"]`, objects `{\"a\": 1, b: 2, $k: 3}`, functions `<-{ 1 add }`,\n",
        "variables `$name` and `$args[\"key\"]`, and `cond ? a : b` (the branches run to the end of\n",
        "the enclosing sequence; the condition is truthy unless `nil`, `false`, `\"\"` or zero).\n\n",
    ));
    let mut groups: Vec<&str> = Vec::new();
    for op in OPS {
        if !groups.contains(&op.group) {
            groups.push(op.group);
        }
    }
    for group in groups {
        let _ = writeln!(out, "## {group}\n");
        for op in OPS.iter().filter(|op| op.group == group) {
            let host = if op.is_host() { " *(host)*" } else { "" };
            let _ = writeln!(out, "### {}{host}\n", names(op));
            let _ = writeln!(out, "`{}`\n", op.signature);
            let _ = writeln!(out, "{}\n", op.doc);
            let _ = writeln!(out, "```\n{}\n=> {}\n```\n", op.example, op.expected);
        }
    }
    out
}
