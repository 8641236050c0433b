//! Entity lifecycle semantics: what `main` receives, how its return value decides the
//! saved state, what it writes, and user modules (`defines: module`) through `require`.

use std::collections::BTreeMap;
use std::sync::Arc;

use monk_js::{
    Invocation, InvocationContext, JsEngine, JsError, NoHost, Outcome, QuickJsEngine, Script,
};
use serde_json::{json, Value};

fn run(script: &Script, state: Option<Value>) -> Result<Outcome, JsError> {
    let invocation = Invocation {
        definition: json!({"name": "orders", "size": 3, "tags": ["a", "b"]}),
        state,
        context: InvocationContext {
            action: "create".into(),
            status: "pending".into(),
            path: "shop/orders-db".into(),
            args: serde_json::Map::from_iter([("verbose".to_string(), json!("true"))]),
            metadata: json!({"version": "1.2.0"}),
        },
        ..Invocation::default()
    };
    QuickJsEngine::default().invoke(script, &invocation, Arc::new(NoHost))
}

#[test]
fn main_receives_definition_state_and_context() {
    let script = Script::new(
        r#"function main(definition, state, context) {
             return { definition, state, context };
           }"#,
    );
    let outcome = run(&script, Some(json!({"id": "db-1"}))).expect("runs");
    assert_eq!(
        outcome.state,
        Some(json!({
            "definition": {"name": "orders", "size": 3, "tags": ["a", "b"]},
            "state": {"id": "db-1"},
            "context": {
                "action": "create",
                "status": "pending",
                "path": "shop/orders-db",
                "args": {"verbose": "true"},
                "metadata": {"version": "1.2.0"}
            }
        }))
    );
}

#[test]
fn state_is_an_empty_object_before_the_first_save() {
    let script = Script::new("function main(def, state) { return { keys: Object.keys(state).length, spread: { ...state, a: 1 } }; }");
    let outcome = run(&script, None).expect("runs");
    assert_eq!(outcome.state, Some(json!({"keys": 0, "spread": {"a": 1}})));
}

#[test]
fn a_returned_object_replaces_the_state() {
    let script = Script::new("function main(def, state) { return { created: true }; }");
    let outcome = run(&script, Some(json!({"old": 1}))).expect("runs");
    assert_eq!(outcome.state, Some(json!({"created": true})));
}

#[test]
fn returning_nothing_or_null_keeps_the_state() {
    for body in ["", "return;", "return undefined;", "return null;"] {
        let script = Script::new(format!(
            "function main(def, state) {{ state.changed = true; {body} }}"
        ));
        let outcome = run(&script, Some(json!({"old": 1}))).expect(body);
        assert_eq!(outcome.state, None, "{body}");
    }
}

#[test]
fn returning_something_that_is_not_an_object_is_an_error() {
    for (body, found) in [
        ("return 1;", "a number"),
        ("return 'x';", "a string"),
        ("return true;", "a boolean"),
        ("return [1];", "an array"),
        ("return () => 1;", "a function"),
    ] {
        let script = Script::new(format!("function main() {{ {body} }}"));
        let error = run(&script, None).expect_err(body);
        assert_eq!(
            error,
            JsError::BadReturn {
                found: found.into()
            },
            "{body}"
        );
    }
    let error = run(&Script::new("function main() { return 1; }"), None).expect_err("number");
    assert_eq!(
        error.to_string(),
        "main returned a number: return an object to replace the state, or nothing to keep it"
    );
}

#[test]
fn an_async_main_is_awaited() {
    let script = Script::new(
        "async function main(def, state) { const v = await Promise.resolve(41); return { v: v + 1 }; }",
    );
    assert_eq!(
        run(&script, None).expect("settles").state,
        Some(json!({"v": 42}))
    );
    let script = Script::new("async function main() { throw new Error('async failure'); }");
    let error = run(&script, None).expect_err("rejects");
    assert!(
        matches!(&error, JsError::Thrown { message, .. } if message == "async failure"),
        "{error:?}"
    );
}

#[test]
fn a_state_too_large_to_save_is_refused() {
    let script = Script::new("function main() { return { blob: 'x'.repeat(2 * 1024 * 1024) }; }");
    let error = run(&script, None).expect_err("too large");
    assert!(matches!(error, JsError::StateTooLarge { .. }), "{error:?}");
}

#[test]
fn console_and_cli_output_are_collected_in_order() {
    let script = Script::new(
        r#"const cli = require("cli");
           function main(def) {
             console.log("Creating", def.name, 3, { a: 1 }, [1, 2], null, undefined, true);
             cli.output("bucket", def.name, "ready");
             console.error(new Error("careful"));
             const cyclic = {}; cyclic.self = cyclic;
             console.log(cyclic);
           }"#,
    );
    let outcome = run(&script, None).expect("runs");
    assert_eq!(
        outcome.output,
        [
            r#"Creating orders 3 {"a":1} [1,2] null undefined true"#,
            "bucket orders ready",
            "Error: careful",
            "[object Object]",
        ]
    );
}

#[test]
fn output_is_bounded() {
    let script = Script::new("function main() { for (let i = 0; i < 1500; i++) console.log('line ' + i); console.log('x'.repeat(10000)); }");
    let outcome = run(&script, None).expect("runs");
    assert_eq!(
        outcome.output.len(),
        monk_js::limits::JS_OUTPUT_LINES_MAX + 1
    );
    assert_eq!(
        outcome.output.last().map(String::as_str),
        Some("[501 more lines dropped: at most 1000 are kept]")
    );
}

#[test]
fn user_modules_load_through_require_once_each() {
    let script = Script::new(
        r#"const client = require("my-app/http-client");
           const again = require("my-app/http-client");
           function main() {
             return { same: client === again, loads: client.loads(), greeting: client.greet("monk") };
           }"#,
    )
    .with_module(
        "my-app/http-client",
        r#"let loads = 0;
           loads++;
           const words = require("my-app/words");
           module.exports = { loads: () => loads, greet: (n) => words.hello + ", " + n };"#,
    )
    .with_module("my-app/words", "exports.hello = 'hello';");
    let outcome = run(&script, None).expect("runs");
    assert_eq!(
        outcome.state,
        Some(json!({"same": true, "loads": 1, "greeting": "hello, monk"}))
    );
}

#[test]
fn a_syntax_error_in_a_module_names_the_module() {
    let script = Script::new("const m = require('ns/broken');\nfunction main() {}")
        .with_module("ns/broken", "module.exports = {\n  a: 1,\n  b: ,\n};");
    let error = run(&script, None).expect_err("syntax");
    let JsError::Syntax { file, line, .. } = &error else {
        panic!("not Syntax: {error:?}");
    };
    assert_eq!((file.as_str(), *line), ("module ns/broken", 3));
}

#[test]
fn a_require_cycle_sees_the_partial_exports() {
    let script = Script::new(
        "const a = require('ns/a');\nfunction main() { return { a: a.name, b: a.b }; }",
    )
    .with_module(
        "ns/a",
        "exports.name = 'a'; exports.b = require('ns/b').seen;",
    )
    .with_module("ns/b", "exports.seen = require('ns/a').name;");
    assert_eq!(
        run(&script, None).expect("runs").state,
        Some(json!({"a": "a", "b": "a"}))
    );
}

#[test]
fn vars_are_read_set_and_returned() {
    let invocation = Invocation {
        variables: BTreeMap::from([("region".to_string(), json!("eu-west-1"))]),
        ..Invocation::default()
    };
    let script = Script::new(
        r#"const vars = require("vars");
           function main() {
             vars.set("count", 2);
             return { region: vars.get("region"), has: vars.has("count"), missing: vars.get("nope") === undefined };
           }"#,
    );
    let outcome = QuickJsEngine::default()
        .invoke(&script, &invocation, Arc::new(NoHost))
        .expect("runs");
    assert_eq!(
        outcome.state,
        Some(json!({"region": "eu-west-1", "has": true, "missing": true}))
    );
    assert_eq!(outcome.variables.get("count"), Some(&json!(2)));
}

#[test]
fn fs_is_a_read_only_view_of_the_given_files() {
    let invocation = Invocation {
        files: BTreeMap::from([
            ("/app/config/a.json".to_string(), "{\"a\":1}".to_string()),
            ("/app/config/b.json".to_string(), "{}".to_string()),
        ]),
        ..Invocation::default()
    };
    let script = Script::new(
        r#"const fs = require("fs");
           function main() {
             let missing;
             try { fs.readFile("/etc/passwd"); } catch (e) { missing = e.message; }
             let zip;
             try { fs.zip("/app"); } catch (e) { zip = e.message; }
             return { ls: fs.ls("/app/config"), a: JSON.parse(fs.readFile("/app/config/a.json")).a, missing, zip };
           }"#,
    );
    let outcome = QuickJsEngine::default()
        .invoke(&script, &invocation, Arc::new(NoHost))
        .expect("runs");
    assert_eq!(
        outcome.state,
        Some(json!({
            "ls": ["a.json", "b.json"],
            "a": 1,
            "missing": "fs.readFile: no file /etc/passwd",
            "zip": "fs.zip is not available in this build"
        }))
    );
}

#[test]
fn pure_modules_and_globals() {
    let script = Script::new(
        r#"const crypto = require("crypto");
           const helpers = require("helpers");
           const parser = require("parser");
           function main() {
             let xml;
             try { parser.xmlquery("<a/>", "//a"); } catch (e) { xml = e.message; }
             const started = Date.now();
             sleep(20);
             return {
               sha: crypto.sha256("abc"),
               hmac: crypto.hmac("key", "The quick brown fox jumps over the lazy dog"),
               hex: crypto.hex("hi"),
               b64: crypto.base64("hi"),
               btoa: btoa("héllo"),
               atob: atob(btoa("héllo")),
               helpers: helpers.atob(helpers.btoa("x")),
               isError: helpers.error("e") instanceof Error,
               first: parser.jsonquery('{"items":[{"id":1},{"id":2}]}', "/items/id"),
               all: parser.jsonqueryAll({ items: [{ id: 1 }, { id: 2 }] }, "//id"),
               none: parser.jsonquery("{}", "/x"),
               xml,
               map: new Map([["k", 1]]).get("k"),
               math: Math.max(1, 2),
               slept: Date.now() - started >= 20,
             };
           }"#,
    );
    let outcome = run(&script, None).expect("runs");
    assert_eq!(
        outcome.state,
        Some(json!({
            "sha": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "hmac": "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8",
            "hex": "6869",
            "b64": "aGk=",
            "btoa": "aMOpbGxv",
            "atob": "héllo",
            "helpers": "x",
            "isError": true,
            "first": 1,
            "all": [1, 2],
            "none": null,
            "xml": "parser.xmlquery is not available in this build",
            "map": 1,
            "math": 2,
            "slept": true
        }))
    );
}
