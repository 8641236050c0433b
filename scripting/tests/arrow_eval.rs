//! Evaluation semantics, one script per case: literals, variables, templates,
//! the ternary, type rules, the calling convention, `if-error`, host operators
//! and the limits.

use std::sync::Arc;

use monk_scripting::arrow::{
    eval, eval_with, parse, EvalErrorKind, Limits, OfflineHost, StubHost, Value, VarMap,
    STRING_BYTES_MAX,
};

fn vars() -> VarMap {
    let mut vars = VarMap::new();
    vars.insert("port".into(), Value::Int(8080));
    vars.insert("host".into(), Value::str("db.local"));
    vars.insert("flag".into(), Value::Bool(true));
    vars.insert("off".into(), Value::Bool(false));
    vars.insert("empty".into(), Value::str(""));
    vars.insert("none".into(), Value::Nil);
    vars.insert("db_name".into(), Value::str("app"));
    vars.insert(
        "args".into(),
        Value::object(vec![
            (Arc::from("name"), Value::str("demo")),
            (
                Arc::from("list"),
                Value::array(vec![Value::Int(1), Value::Int(2)]),
            ),
        ]),
    );
    vars
}

/// The JSON of the script's value, or `col N: message`.
fn run(script: &str) -> String {
    let parsed = match parse(script) {
        Ok(parsed) => parsed,
        Err(err) => return format!("parse col {}: {}", err.col, err.message),
    };
    match eval(&parsed, &vars(), &mut StubHost) {
        Ok(value) => value.to_json(),
        Err(err) => format!(
            "col {}: {}",
            monk_scripting::arrow::line_col(script, err.offset).1,
            err.message
        ),
    }
}

fn check(cases: &[(&str, &str)]) {
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(script, want)| {
            let got = run(script);
            (got != *want).then(|| format!("{script}\n  got  {got}\n  want {want}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn literals() {
    check(&[
        ("nil", "null"),
        ("true false", "false"),
        ("0b11 0xff add 0777 add -1337 add", "-568"),
        (
            "123456789012345678901234567890n",
            "123456789012345678901234567890",
        ),
        ("0.1 -0.4e2 add", "-39.9"),
        (r#""a\tb" 'c\'d' `e` concat concat"#, r#""a\tbc'de""#),
        (r#"[1, "foo", [], {}]"#, r#"[1,"foo",[],{}]"#),
        (
            r#"{"a": 1, b: 2, $db_name: 4, 5: $port}"#,
            r#"{"a":1,"b":2,"app":4,"5":8080}"#,
        ),
        ("[$port, $port 1 add]", "[8080,8081]"),
        ("<-{ 1 add }", r#""<-{ 1 add }""#),
        ("[1, 2,]", "[1,2]"),
    ]);
}

#[test]
fn variables_and_templates() {
    check(&[
        ("$port", "8080"),
        ("$db_name", r#""app""#),
        (r#"$args["name"]"#, r#""demo""#),
        (r#"$args["list"][1] $args["list"][-1] add"#, "4"),
        (r#"$args["missing"]"#, "null"),
        ("`http://${host}:${port}/`", r#""http://db.local:8080/""#),
        (
            r#"`--name="${args["name"]}" $HOME {x} \${port}`"#,
            r#""--name=\"demo\" $HOME {x} ${port}""#,
        ),
        (
            r#"`${connection-target("db") entity-state get-member("address")}:${port 1 add}`"#,
            r#""10.0.0.2:8081""#,
        ),
        ("`${none}|${flag}|${1.5}|${2n}`", r#""|true|1.5|2""#),
        (
            r#"`{"k":"${secret("x")}"}` parse-json get-member("k")"#,
            r#""<secret x>""#,
        ),
        ("$nope", "col 1: variable `$nope` is not defined"),
        ("`a ${nope}`", "col 6: variable `$nope` is not defined"),
        (r#"var("port")"#, "8080"),
    ]);
}

#[test]
fn ternary_and_conditionals() {
    check(&[
        (r#"$flag ? "debug" : "info""#, r#""debug""#),
        (r#"$off ? "debug" : "info""#, r#""info""#),
        (r#"$off ? 1 : $flag ? 2 : 3"#, "2"),
        (r#"[$none ? 1 : 2, 3]"#, "[2,3]"),
        (r#"$flag then("80:80")"#, r#""80:80""#),
        (r#"$off then("80:80")"#, "null"),
        (r#"$empty not-eq?("") then("PMA_HOST") or("_")"#, r#""_""#),
        (r#"$off then(5) else(3)"#, "3"),
        (r#"$none default(3000)"#, "3000"),
        (r#"$empty default("monk")"#, r#""monk""#),
        (r#"0 default(1)"#, "0"),
        (r#"$flag not"#, "false"),
        (
            r#"$db_name not"#,
            r#"col 10: `not`: expected a bool, got string "app""#,
        ),
        ("? 1 : 2", "parse col 1: `?` needs a condition before it"),
    ]);
}

#[test]
fn numbers_follow_the_promotion_rules() {
    check(&[
        ("1 2 add", "3"),
        ("1 2.0 add", "3.0"),
        ("1 2n add", "3"),
        ("1 2 div", "0.5"),
        ("6 2 div", "3"),
        ("7n 2n div", "3.5"),
        ("1 0 div", "col 5: `div`: division by zero"),
        ("1.0 0 div", "col 7: `div`: division by zero"),
        (
            "9223372036854775807 1 add",
            "col 23: `add`: integer overflow; use bigints (`123n`) for larger numbers",
        ),
        ("9223372036854775807n 1 add", "9223372036854775808"),
        (
            "1e308 10 mult",
            "col 10: `mult`: float result is out of range",
        ),
        (
            r#"$port "1" add"#,
            r#"col 11: `add`: expected a number, got string "1""#,
        ),
        ("5 3 sub 2 mult", "4"),
        ("$port div(2)", "4040"),
        ("2 3 lt? 3 2 gt? and", "true"),
        (r#""b" "a" gt?"#, "true"),
        ("255 to-hex", r#""FF""#),
        ("-255n to-hex(true)", r#""-0xFF""#),
        ("1 1.0 eq? 1 1n eq? and", "true"),
        (r#"1 "1" eq?"#, "false"),
        (r#"{"a": 1, "b": [2]} {"b": [2], "a": 1} eq?"#, "true"),
    ]);
}

#[test]
fn calling_convention() {
    check(&[
        (r#""foo" "bar" concat"#, r#""foobar""#),
        (r#""foo" concat("bar")"#, r#""foobar""#),
        (r#"concat("foo", "bar")"#, r#""foobar""#),
        (r#"first([7, 8])"#, "7"),
        (r#""xy" split("") join("-") "z" concat"#, r#""x-yz""#),
        (r#""a,b" "," split"#, r#"["a","b"]"#),
        (
            r#""DB_PORT=" connection-port("db") concat"#,
            r#""DB_PORT=5432""#,
        ),
        (r#""a" "b" "c" "d" concat-all"#, r#""abcd""#),
        (r#""x" mark "a" "b" concat-all concat"#, r#""xab""#),
        (r#""z" concat("a" "b" concat-all)"#, r#""zab""#),
        (r#""a" concat(mark "b") "c" concat-all"#, r#""abc""#),
        (r#"$host ":" $port concat-all"#, r#""db.local:8080""#),
        (
            "concat",
            "col 1: `concat` needs 2 values on the stack, found 0",
        ),
        (
            "1 add()",
            "parse col 3: `add` needs at least 1 argument in parentheses, got 0",
        ),
        (
            "add(1)",
            "col 1: `add` needs 2 values on the stack, found 1",
        ),
        (
            r#"concat(1 2)"#,
            "col 8: argument 1 of `concat` must produce one value, it produced 2",
        ),
        ("1 dup add", "2"),
        ("$port default (80)", "8080"),
        ("const(1) const(2) add", "3"),
        (r#""add" [1, 2] call"#, "3"),
        (r#"1 "add" [2] call"#, "3"),
        (
            r#""nope" [] call"#,
            "col 11: `call`: unknown operator `nope`",
        ),
    ]);
}

#[test]
fn collections_json_and_types() {
    check(&[
        (r#"{"a": {"b": 1}} get-member("a") get-member("b")"#, "1"),
        (r#"{"a": 1} get-member("z")"#, "null"),
        (r#"nil get-member("z") default(5)"#, "5"),
        (
            r#""s" get-member("z")"#,
            r#"col 5: `get-member`: expected an object or array, got string "s""#,
        ),
        ("[] first", "null"),
        ("[1, 2, 3] last", "3"),
        ("[] 8 append 9 append", "[8,9]"),
        (r#"{} "foo" 6 assoc "foo" 7 assoc"#, r#"{"foo":7}"#),
        ("array object", "{}"),
        (r#"[1, 2] [3] concat"#, "[1,2,3]"),
        (
            r#"{"a": [1, 2.5, nil, true, "x\n"]} to-json"#,
            r#""{\"a\":[1,2.5,null,true,\"x\\n\"]}""#,
        ),
        (
            r#"`[1, {"b": 18446744073709551615}]` parse-json"#,
            "[1,{\"b\":18446744073709551615}]",
        ),
        (
            r#""{" parse-json"#,
            "col 5: `parse-json`: invalid JSON: EOF while parsing an object at line 1 column 1",
        ),
        (r#"" 42 " to-int "3.9" to-i add"#, "45"),
        ("-3.9 to-int", "-3"),
        (
            "1e30 to-int",
            "col 6: `to-int`: 1000000000000000019884624838656 does not fit an int; use `to-bi`",
        ),
        ("1e30 to-bi", "1000000000000000019884624838656"),
        (
            r#""x" to-int"#,
            r#"col 5: `to-int`: cannot read string "x" as an integer"#,
        ),
        ("true to-float", "1.0"),
        ("[1] to-s", r#""[1]""#),
        ("nil to-s", r#""""#),
        (
            r#""exec ok" contains?("ok") [1, 2] contains?(2) and {"k": 1} has?("k") and"#,
            "true",
        ),
        (r#"nil contains?("x")"#, "false"),
        (r#""a-b-c" replace("-", "+")"#, r#""a+b+c""#),
        (r#"" x " trim"#, r#""x""#),
    ]);
}

#[test]
fn functions_and_variables() {
    check(&[
        ("[1, 2, 3] map(<-{ 1 add })", "[2,3,4]"),
        ("1 <-{ 1 add } callf", "2"),
        ("[1, 5, 10] filter(<-{ 4 gt? })", "[5,10]"),
        ("[1, 2] map(<-{ dup mult }) map(<-{ to-s })", r#"["1","4"]"#),
        (
            "[[1, 2], [3]] map(<-{ map(<-{ 10 mult }) })",
            "[[10,20],[30]]",
        ),
        ("nil map(<-{ 1 add })", "[]"),
        (r#"5 set-tmp("x") $x add"#, "10"),
        (r#"5 set-tmp("port") $port"#, "5"),
        (
            r#"unset("port") $port"#,
            "col 15: variable `$port` was unset",
        ),
        (r#"9 set("foo") $foo mult"#, "81"),
        (
            "[1] map(2)",
            "col 5: `map`: expected a function `<-{ ... }`, got int 2",
        ),
    ]);
}

#[test]
fn if_error_replaces_a_failed_part() {
    check(&[
        (r#"$nope if-error("")"#, r#""""#),
        (r#"secret($nope) if-error("fallback")"#, r#""fallback""#),
        (r#"$port if-error(0)"#, "8080"),
        (r#"$nope 1 add if-error(7) 1 add"#, "8"),
        (r#"1 if-error(2) $nope if-error(3) add"#, "4"),
        (
            r#"$nope if-error($nope2)"#,
            "col 16: variable `$nope2` is not defined",
        ),
        (
            r#"if-error"#,
            "parse col 1: `if-error` needs its argument in parentheses: if-error(...)",
        ),
    ]);
}

#[test]
fn host_operators_reach_the_host() {
    check(&[
        (
            r#"connection-target("db") entity-state get-member("address")"#,
            r#""10.0.0.2""#,
        ),
        (
            r#"entity-state get-member("port") default(0) to-int"#,
            "5432",
        ),
        (r#""ns/x" entity-state("ns/db") get-member("port")"#, "5432"),
        (
            r#"connection-hostname("db") split(".monk") join("")"#,
            r#""db""#,
        ),
        (r#"exec("postgres", "pg_isready") "ok" contains?"#, "true"),
        ("act(\"a/b\", \"k\", 1)\nact(\"a/c\")\n42", "42"),
        (r#""c" "ls" exec"#, "\"ok\\n\""),
        (
            r#"get-hostname("ns/db", "pg") ".monk" concat"#,
            r#""ns-db-pg.monk.monk""#,
        ),
        (
            r#"http-get-service("ns/app", "api", "/health") get-member("status") 200 equal?"#,
            "true",
        ),
        (
            r#"exec("only-one")"#,
            "parse col 1: `exec` needs at least 2 arguments in parentheses, got 1",
        ),
    ]);
    let script = parse(r#"$port secret("db-password") concat"#).unwrap();
    let err = eval(&script, &vars(), &mut OfflineHost).unwrap_err();
    assert_eq!(err.offset, 6);
    assert_eq!(
        err.message,
        "`secret` needs a running cluster; it cannot run offline"
    );
    assert!(matches!(err.kind, EvalErrorKind::Host(_)));
}

#[test]
fn limits_stop_runaway_scripts_cleanly() {
    let limit = |script: &str, limits: Limits| {
        let parsed = parse(script).unwrap();
        let err = eval_with(&parsed, &vars(), &mut StubHost, limits).unwrap_err();
        assert_eq!(err.kind, EvalErrorKind::Limit, "{script}: {}", err.message);
        err.message
    };
    let small_fuel = Limits {
        fuel_steps: 10,
        ..Limits::default()
    };
    assert_eq!(
        limit("1 1 add 1 add 1 add 1 add 1 add", small_fuel),
        "out of fuel: the script took more than 10 steps"
    );
    let small_stack = Limits {
        max_stack_values: 3,
        ..Limits::default()
    };
    assert_eq!(
        limit("1 2 3 4", small_stack),
        "stack holds more than 3 values"
    );
    assert!(limit("<-{ dup callf } dup callf", Limits::default()).contains("nests deeper"));
    let doubling = format!("\"{}\" {}", "x".repeat(1024), "dup concat ".repeat(11));
    assert!(limit(&doubling, Limits::default()).contains(&format!("{STRING_BYTES_MAX}-byte")));
    let nesting = format!("[] {}", "dup append ".repeat(70));
    assert!(parse(&nesting).is_ok());
    let err = eval(&parse(&nesting).unwrap(), &vars(), &mut StubHost).unwrap_err();
    assert!(
        err.message.contains("nest deeper than 64"),
        "{}",
        err.message
    );
    let many = format!("\"{}\" split(\"\")", "x".repeat(70_000));
    let err = eval(&parse(&many).unwrap(), &vars(), &mut StubHost).unwrap_err();
    assert!(
        err.message.contains("more than 65536 pieces"),
        "{}",
        err.message
    );
    let fuel_map = "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\" split(\"\") map(<-{ [1,2,3,4,5,6,7,8] map(<-{ [1,2,3,4,5,6,7,8] map(<-{ [1,2,3,4,5,6,7,8,9,10] map(<-{ 1 add }) }) }) })";
    assert!(limit(fuel_map, Limits::default()).starts_with("out of fuel"));

    let list = |name: &str| format!("[{}]", vec![format!("${name}"); 200].join(", "));
    let ints = format!(
        "[{}]",
        (0..200)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let shared = format!(
        "{ints} set-tmp(\"a\") {ints} set-tmp(\"a2\") {} set-tmp(\"b\") {} set-tmp(\"b2\") {} {} eq?",
        list("a"),
        list("a2"),
        list("b"),
        list("b2")
    );
    assert!(limit(&shared, Limits::default()).starts_with("out of fuel"));
    let smaller = shared.replace(&format!("{} {} eq?", list("b"), list("b2")), "$b $b2 eq?");
    assert_eq!(
        eval(&parse(&smaller).unwrap(), &vars(), &mut StubHost)
            .unwrap()
            .to_json(),
        "true"
    );
}

#[test]
fn large_objects_stay_fast() {
    let entries: Vec<String> = (0..50_000).map(|i| format!("\"k{i}\": {i}")).collect();
    let mut vars = vars();
    vars.insert(
        "json".into(),
        Value::str(&format!("{{{}}}", entries.join(","))),
    );
    let script = parse(r#"$json parse-json get-member("k49999")"#).unwrap();
    let started = std::time::Instant::now();
    let value = eval(&script, &vars, &mut StubHost).unwrap();
    assert_eq!(value.to_json(), "49999");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}
