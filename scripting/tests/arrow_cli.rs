//! `monk eval` through its library function: output, exit codes, variable
//! parsing and error rendering.

use monk_scripting::arrow::cli::eval_command;
use monk_scripting::cli_output::CommandOutput;

fn run(script: &str, vars: &[&str], file: Option<&str>) -> CommandOutput {
    let vars: Vec<String> = vars.iter().map(|v| v.to_string()).collect();
    eval_command(script, &vars, file)
}

fn ok(stdout: &str) -> CommandOutput {
    CommandOutput {
        stdout: format!("{stdout}\n"),
        stderr: String::new(),
        exit_code: 0,
    }
}

fn failed(stderr: &str, exit_code: i32) -> CommandOutput {
    CommandOutput {
        stdout: String::new(),
        stderr: stderr.to_string(),
        exit_code,
    }
}

#[test]
fn evaluates_with_or_without_the_arrow() {
    assert_eq!(run("<- $port 1 add", &["port=8080"], None), ok("8081"));
    assert_eq!(run("$port 1 add", &["port=8080"], None), ok("8081"));
    assert_eq!(
        run(
            "  <- `http://${host}:${port}`",
            &["host=db", "port=5432"],
            None
        ),
        ok(r#""http://db:5432""#)
    );
    assert_eq!(
        run(r#"{"a": [1, 2.5, nil]}"#, &[], None),
        ok(r#"{"a":[1,2.5,null]}"#)
    );
    assert_eq!(run("123n 1 add", &[], None), ok("124"));
}

#[test]
fn var_values_are_yaml_scalars() {
    let shown = |value: &str| run("[$v, $v nil? ]", &[&format!("v={value}")], None).stdout;
    assert_eq!(shown("8080"), "[8080,false]\n");
    assert_eq!(shown("\"8080\""), "[\"8080\",false]\n");
    assert_eq!(shown("true"), "[true,false]\n");
    assert_eq!(shown("nil"), "[null,true]\n");
    assert_eq!(shown("null"), "[null,true]\n");
    assert_eq!(shown(""), "[null,true]\n");
    assert_eq!(shown("1.5"), "[1.5,false]\n");
    assert_eq!(shown("hello world"), "[\"hello world\",false]\n");
    assert_eq!(shown("a=b"), "[\"a=b\",false]\n");
}

#[test]
fn vars_file_is_a_yaml_map_and_var_overrides_it() {
    let file = "port: 80\nhost: web\ntags: [a, b]\ndb: {name: app}\n";
    assert_eq!(run("`${host}:${port}`", &[], Some(file)), ok(r#""web:80""#));
    assert_eq!(
        run("`${host}:${port}`", &["port=81"], Some(file)),
        ok(r#""web:81""#)
    );
    assert_eq!(
        run(
            r#"$tags join("+") $db get-member("name") concat"#,
            &[],
            Some(file)
        ),
        ok(r#""a+bapp""#)
    );
    assert_eq!(run("1", &[], Some("")), ok("1"));
}

#[test]
fn bad_variables_are_usage_errors() {
    assert_eq!(
        run("1", &["port"], None),
        failed("error: --var `port` must look like NAME=VALUE\n", 2)
    );
    assert_eq!(
        run("1", &["=3"], None),
        failed("error: --var `=3` has an empty name\n", 2)
    );
    assert_eq!(
        run("1", &["v=[1, 2]"], None),
        failed(
            "error: --var v: a --var value must be a scalar; use --vars-file for lists and maps\n",
            2
        )
    );
    assert_eq!(
        run("1", &[], Some("- 1\n- 2\n")),
        failed(
            "error: vars file must be a YAML map of variables, found a list\n",
            2
        )
    );
    let broken = run("1", &[], Some("a: [1\n"));
    assert_eq!(broken.exit_code, 2);
    assert!(
        broken.stderr.starts_with("error: vars file: "),
        "{}",
        broken.stderr
    );
}

#[test]
fn parse_errors_point_at_the_column() {
    assert_eq!(
        run("<- $port frobnicate", &[], None),
        failed(
            "col 10: unknown operator `frobnicate`\n  <- $port frobnicate\n           ^\n",
            1
        )
    );
    assert_eq!(
        run(r#"<- "open"#, &[], None),
        failed(
            "col 4: string is never closed with \"\n  <- \"open\n     ^\n",
            1
        )
    );
}

#[test]
fn evaluation_errors_point_at_the_operator() {
    assert_eq!(
        run(r#"<- $port "x" add"#, &["port=8080"], None),
        failed("col 14: `add`: expected a number, got string \"x\"\n  <- $port \"x\" add\n               ^\n", 1)
    );
    assert_eq!(
        run("<- $missing", &[], None),
        failed(
            "col 4: variable `$missing` is not defined\n  <- $missing\n     ^\n",
            1
        )
    );
    assert_eq!(
        run("act(\"a/b\")\n  1 add", &[], None),
        failed("line 1, col 1: `act` needs a running cluster; it cannot run offline\n  act(\"a/b\")\n  ^\n", 1)
    );
    assert_eq!(
        run("1\n\t2 frob", &[], None),
        failed(
            "line 2, col 4: unknown operator `frob`\n  \t2 frob\n  \t  ^\n",
            1
        )
    );
}

#[test]
fn host_operators_fail_offline_with_a_clear_message() {
    let out = run(
        r#"<- connection-hostname("db") ":" $port concat-all"#,
        &["port=1"],
        None,
    );
    assert_eq!(out.exit_code, 1);
    assert_eq!(
        out.stderr.lines().next(),
        Some("col 4: `connection-hostname` needs a running cluster; it cannot run offline")
    );
    assert_eq!(
        run(r#"secret("x") if-error("none")"#, &[], None),
        ok(r#""none""#)
    );
}

#[test]
fn deeply_nested_vars_files_are_refused_not_a_crash() {
    let deep = format!("a: {}1{}\n", "[".repeat(500), "]".repeat(500));
    let out = run("1", &[], Some(&deep));
    assert_eq!(out.exit_code, 2, "{out:?}");
    let nested_ok = format!("a: {}1{}\n", "[".repeat(10), "]".repeat(10));
    assert_eq!(
        run("$a first first", &[], Some(&nested_ok)),
        ok("[[[[[[[[1]]]]]]]]")
    );
}
