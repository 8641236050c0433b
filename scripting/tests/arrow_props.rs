//! Property tests: arithmetic laws, printing and re-parsing values, no panics
//! on any input, and fuel bounding every run.

use std::sync::Arc;

use monk_scripting::arrow::{
    eval, eval_metered, eval_with, parse, Limits, OfflineHost, StubHost, Value, VarMap,
};
use proptest::prelude::*;

fn vars() -> VarMap {
    let mut vars = VarMap::new();
    vars.insert("port".into(), Value::Int(8080));
    vars.insert("s".into(), Value::str("a,b"));
    vars.insert(
        "args".into(),
        Value::object(vec![(Arc::from("name"), Value::str("demo"))]),
    );
    vars
}

fn run(script: &str) -> Result<Value, String> {
    let parsed = parse(script).map_err(|e| e.to_string())?;
    eval(&parsed, &vars(), &mut StubHost).map_err(|e| e.message)
}

/// Type and JSON text: equal only if the values are identical, 2 and 2.0 differ.
fn exact(value: &Result<Value, String>) -> Result<(String, &'static str), String> {
    value.clone().map(|v| (v.to_json(), v.type_name()))
}

fn int() -> impl Strategy<Value = i64> {
    prop_oneof![-1000i64..1000, any::<i64>()]
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Nil),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        any::<i128>().prop_map(Value::BigInt),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::Float),
        any::<String>().prop_map(|s| Value::str(&s)),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::array),
            prop::collection::vec((any::<String>(), inner), 0..6).prop_map(
                |entries| Value::object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (Arc::from(k), v))
                        .collect()
                )
            ),
        ]
    })
}

/// Bigints within i64..=u64 come back from JSON exactly; larger ones become
/// floats (documented on `parse-json`).
fn json_exact(v: &Value) -> bool {
    match v {
        Value::BigInt(i) => *i >= i128::from(i64::MIN) && *i <= i128::from(u64::MAX),
        Value::Array(list) => list.items().iter().all(json_exact),
        Value::Object(map) => map.entries().iter().all(|(_, v)| json_exact(v)),
        _ => true,
    }
}

const WORDS: &[&str] = &[
    "1",
    "-2",
    "2.5",
    "3n",
    "0x1f",
    "\"a\"",
    "'b,c'",
    "`x${port}y`",
    "`${args[\"name\"]}`",
    "$port",
    "$s",
    "$args",
    "$nope",
    "nil",
    "true",
    "false",
    "[",
    "]",
    "{",
    "}",
    "(",
    ")",
    ",",
    ":",
    "?",
    "<-{",
    "dup",
    "callf",
    "map",
    "filter",
    "add",
    "sub",
    "mult",
    "div",
    "concat",
    "concat-all",
    "mark",
    "split(\",\")",
    "join(\"-\")",
    "if-error(0)",
    "get-member(\"name\")",
    "call",
    "\"add\"",
    "to-json",
    "parse-json",
    "first",
    "last",
    "append",
    "assoc",
    "secret(\"x\")",
    "default(1)",
    "then(2)",
    "else(3)",
    "or(4)",
    "not",
    "eq?",
    "contains?",
    "to-s",
    "to-int",
    "to-bi",
    "to-f",
    "set-tmp(\"t\")",
    "$t",
    "unset(\"t\")",
    "var(\"port\")",
    "entity-state",
    "exec(\"c\", \"ls\")",
    "map(<-{ dup concat })",
    "<-{ dup callf } dup callf",
    "array",
    "object",
    "const([1, [2]])",
    "trim",
    "replace(\"a\", \"bb\")",
    "to-hex(true)",
];

fn script_from_words() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(WORDS), 0..40).prop_map(|words| words.join(" "))
}

fn nasty_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[$`{}\\[\\]()\"'\\\\<\\-?:, 0-9xnbe.a-z_!]{0,60}",
    ]
}

proptest! {
    #[test]
    fn addition_and_multiplication_commute(a in int(), b in int()) {
        prop_assert_eq!(exact(&run(&format!("{a} {b} add"))), exact(&run(&format!("{b} {a} add"))));
        prop_assert_eq!(exact(&run(&format!("{a} {b} mult"))), exact(&run(&format!("{b} {a} mult"))));
        prop_assert_eq!(exact(&run(&format!("{a}n {b}n add"))), exact(&run(&format!("{b} {a}n add"))));
    }

    #[test]
    fn addition_associates_when_it_does_not_overflow(a in -1_000_000i64..1_000_000, b in int(), c in -1_000_000i64..1_000_000) {
        let left = run(&format!("{a} {b} add {c} add"));
        let right = run(&format!("{a} {b} {c} add add"));
        if left.is_ok() && right.is_ok() {
            prop_assert_eq!(exact(&left), exact(&right));
        }
        prop_assert_eq!(exact(&run(&format!("{a}n {b}n add {c}n add"))), exact(&run(&format!("{a}n {b}n {c}n add add"))));
    }

    #[test]
    fn identities_hold(a in int(), b in -1_000_000i64..1_000_000) {
        prop_assert_eq!(exact(&run(&format!("{a} 0 add"))), Ok((a.to_string(), "int")));
        prop_assert_eq!(exact(&run(&format!("{a} 1 mult"))), Ok((a.to_string(), "int")));
        prop_assert_eq!(exact(&run(&format!("{a} 1 div"))), Ok((a.to_string(), "int")));
        if let Ok(v) = run(&format!("{a} {b} sub {b} add")) {
            prop_assert_eq!(v.to_json(), a.to_string());
        }
        if b != 0 {
            let q = run(&format!("{a} {b} mult {b} div"));
            if let Ok(v) = q {
                prop_assert_eq!(v.to_json(), a.to_string());
            }
        }
    }

    #[test]
    fn printed_values_parse_back_to_the_same_value(v in value()) {
        let literal = v.to_literal();
        let back = run(&literal);
        prop_assert_eq!(exact(&back), exact(&Ok(v)), "literal: {}", literal);
    }

    #[test]
    fn json_text_round_trips(v in value().prop_filter("bigints JSON keeps exact", json_exact)) {
        let json = v.to_json();
        let back = Value::parse_json(&json, 64);
        prop_assert_eq!(back.map(|b| b.to_json()), Ok(json));
    }

    #[test]
    fn any_text_parses_or_fails_cleanly(text in nasty_text()) {
        match parse(&text) {
            Ok(script) => {
                let limits = Limits { fuel_steps: 2_000, ..Limits::default() };
                if let Err(err) = eval_with(&script, &vars(), &mut OfflineHost, limits) {
                    prop_assert!(err.offset <= text.len(), "{}: offset {}", text, err.offset);
                    prop_assert!(!err.message.is_empty());
                }
            }
            Err(err) => {
                prop_assert!(err.offset <= text.len());
                prop_assert!(err.col >= 1 && err.line >= 1);
                prop_assert!(!err.message.is_empty());
            }
        }
    }

    #[test]
    fn random_scripts_run_within_their_fuel(text in script_from_words()) {
        let Ok(script) = parse(&text) else { return Ok(()) };
        for fuel in [5u64, 300, 100_000] {
            let limits = Limits { fuel_steps: fuel, ..Limits::default() };
            let started = std::time::Instant::now();
            let (result, used) = eval_metered(&script, &vars(), &mut StubHost, limits);
            prop_assert!(used <= fuel, "{}: used {} of {}", text, used, fuel);
            prop_assert!(started.elapsed() < std::time::Duration::from_secs(5), "{}: took {:?}", text, started.elapsed());
            if let Err(err) = &result {
                prop_assert!(err.offset <= text.len(), "{}: offset {}", text, err.offset);
            }
        }
    }
}
