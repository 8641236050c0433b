//! The sandbox holds: every breached limit, thrown error, syntax error and unavailable
//! module is a typed error with a clear message, and the engine keeps working after each.

use std::sync::Arc;
use std::time::{Duration, Instant};

use monk_js::{Invocation, JsEngine, JsError, Limits, NoHost, QuickJsEngine, Script};
use serde_json::json;

fn engine() -> QuickJsEngine {
    QuickJsEngine::new(Limits {
        compute: Duration::from_millis(300),
        wall: Duration::from_secs(2),
        ..Limits::default()
    })
}

fn invoke(engine: &QuickJsEngine, source: &str) -> Result<monk_js::Outcome, JsError> {
    engine.invoke(
        &Script::new(source),
        &Invocation::default(),
        Arc::new(NoHost),
    )
}

/// After any failure, the same engine still runs a script.
fn still_works(engine: &QuickJsEngine) {
    let outcome = invoke(engine, "function main() { return { ok: 1 + 1 }; }")
        .expect("engine works after a failure");
    assert_eq!(outcome.state, Some(json!({"ok": 2})));
}

#[test]
fn an_infinite_loop_is_stopped_by_the_compute_limit() {
    let engine = engine();
    let started = Instant::now();
    let error = invoke(&engine, "function main() { while (true) {} }").expect_err("loop stopped");
    assert_eq!(error, JsError::ComputeLimit { limit_ms: 300 });
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "stopped promptly: {:?}",
        started.elapsed()
    );
    assert_eq!(
        error.to_string(),
        "script ran for more than 300 ms of computation and was stopped"
    );
    still_works(&engine);
}

#[test]
fn a_loop_that_catches_everything_is_still_stopped() {
    let engine = engine();
    let error = invoke(
        &engine,
        "function main() { for (;;) { try { while (true) {} } catch (e) {} } }",
    )
    .expect_err("uncatchable");
    assert_eq!(error, JsError::ComputeLimit { limit_ms: 300 });
    still_works(&engine);
}

#[test]
fn sleeping_past_the_wall_clock_limit_fails() {
    let engine = engine();
    let started = Instant::now();
    let error = invoke(
        &engine,
        "function main() { try { sleep(60000); } catch (e) {} return {}; }",
    )
    .expect_err("wall limit");
    assert_eq!(error, JsError::WallLimit { limit_ms: 2000 });
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(4),
        "{took:?}"
    );
    still_works(&engine);
}

#[test]
fn sleeping_does_not_count_as_computation() {
    let engine = engine();
    let outcome = invoke(
        &engine,
        "function main() { sleep(400); return { slept: true }; }",
    )
    .expect("sleeps");
    assert_eq!(outcome.state, Some(json!({"slept": true})));
}

#[test]
fn a_one_gigabyte_allocation_hits_the_memory_limit() {
    let engine = engine();
    for source in [
        "function main() { const b = new ArrayBuffer(1024 * 1024 * 1024); return { n: b.byteLength }; }",
        // QuickJS caps one string below 2^30 characters, so two halves make the gigabyte.
        "function main() { const a = 'x'.repeat(512 * 1024 * 1024); const b = 'y'.repeat(512 * 1024 * 1024); return { n: a.length + b.length }; }",
        "function main() { const a = []; for (;;) a.push(new Array(1024 * 1024).fill(1)); }",
    ] {
        let error = invoke(&engine, source).expect_err(source);
        assert_eq!(
            error,
            JsError::MemoryLimit { limit_bytes: monk_js::limits::JS_MEMORY_BYTES_MAX },
            "{source}"
        );
        assert_eq!(error.to_string(), "script exceeded its memory limit of 67108864 bytes");
        still_works(&engine);
    }
}

#[test]
fn deep_recursion_hits_the_stack_limit() {
    let engine = engine();
    let error = invoke(
        &engine,
        "function f(n) { return f(n + 1) + 1; }\nfunction main() { f(0); }",
    )
    .expect_err("stack limit");
    assert_eq!(
        error,
        JsError::StackLimit {
            limit_bytes: monk_js::limits::JS_STACK_BYTES_MAX
        }
    );
    assert!(error.to_string().contains("recursion too deep"), "{error}");
    still_works(&engine);
}

#[test]
fn a_thrown_error_fails_with_its_message() {
    let engine = engine();
    let error = invoke(
        &engine,
        "function main() {\n  throw new Error(\"bucket name taken\");\n}",
    )
    .expect_err("thrown");
    let JsError::Thrown { message, at } = &error else {
        panic!("not Thrown: {error:?}");
    };
    assert_eq!(message, "bucket name taken");
    assert_eq!(at.as_deref(), Some("main (script:2:13)"));
    assert_eq!(
        error.to_string(),
        "script failed: bucket name taken (at main (script:2:13))"
    );

    let error = invoke(&engine, "function main() { throw 'plain text'; }").expect_err("thrown");
    assert_eq!(
        error,
        JsError::Thrown {
            message: "plain text".into(),
            at: None
        }
    );
    let error =
        invoke(&engine, "function main() { throw error('via error()'); }").expect_err("thrown");
    assert!(
        matches!(&error, JsError::Thrown { message, .. } if message == "via error()"),
        "{error:?}"
    );
    let error = invoke(&engine, "function main() { null.x; }").expect_err("type error");
    assert!(
        matches!(&error, JsError::Thrown { message, .. } if message.starts_with("TypeError: ")),
        "{error:?}"
    );
    still_works(&engine);
}

#[test]
fn a_syntax_error_names_line_and_column() {
    let engine = engine();
    let error = invoke(&engine, "function main() {\n  let x = ;\n}").expect_err("syntax");
    let JsError::Syntax {
        file, line, column, ..
    } = &error
    else {
        panic!("not Syntax: {error:?}");
    };
    assert_eq!((file.as_str(), *line, *column), ("script", 2, 11));
    assert!(
        error
            .to_string()
            .starts_with("syntax error in script at 2:11: "),
        "{error}"
    );
    let error = invoke(&engine, "function main() { return {; }").expect_err("syntax on line 1");
    assert!(
        matches!(
            error,
            JsError::Syntax {
                line: 1,
                column: 27,
                ..
            }
        ),
        "{error:?}"
    );
    still_works(&engine);
}

#[test]
fn a_json_parse_error_at_run_time_is_not_a_syntax_error() {
    let engine = engine();
    let error = invoke(&engine, "function main() { JSON.parse('{'); }").expect_err("thrown");
    assert!(
        matches!(&error, JsError::Thrown { message, .. } if message.starts_with("SyntaxError")),
        "{error:?}"
    );
}

#[test]
fn an_unknown_module_is_not_available() {
    let engine = engine();
    let error = invoke(
        &engine,
        "const aws = require('cloud/aws');\nfunction main() {}",
    )
    .expect_err("no aws");
    assert_eq!(
        error,
        JsError::ModuleNotAvailable {
            name: "cloud/aws".into()
        }
    );
    assert_eq!(
        error.to_string(),
        "module cloud/aws is not available (cloud provider modules are not part of this build)"
    );
    let error = invoke(&engine, "function main() { require('aws'); }").expect_err("no aws");
    assert!(
        error.to_string().starts_with("module aws is not available"),
        "{error}"
    );
    let error = invoke(&engine, "function main() { require('left-pad'); }").expect_err("unknown");
    assert_eq!(
        error.to_string(),
        "module left-pad is not available (not a built-in module, and no `defines: module` of that name is required)"
    );
    still_works(&engine);
}

#[test]
fn a_caught_unavailable_module_does_not_fail_the_script() {
    let engine = engine();
    let outcome = invoke(
        &engine,
        "function main() { try { require('blobs'); } catch (e) { return { said: e.message }; } }",
    )
    .expect("caught");
    assert_eq!(
        outcome.state,
        Some(
            json!({"said": "module blobs is not available (cloud provider modules are not part of this build)"})
        )
    );
}

#[test]
fn no_file_system_process_or_network_globals() {
    let engine = engine();
    let outcome = invoke(
        &engine,
        "function main() { return { t: [typeof std, typeof os, typeof process, typeof fetch, typeof XMLHttpRequest, typeof scriptArgs].join(',') }; }",
    )
    .expect("runs");
    assert_eq!(
        outcome.state,
        Some(json!({"t": "undefined,undefined,undefined,undefined,undefined,undefined"}))
    );
}

#[test]
fn a_script_without_main_says_so() {
    let engine = engine();
    assert_eq!(invoke(&engine, "var x = 1;"), Err(JsError::NoMain));
}

#[test]
fn limits_cannot_be_raised_above_their_ceilings() {
    let engine = QuickJsEngine::new(Limits {
        memory_bytes: usize::MAX,
        stack_bytes: usize::MAX,
        compute: Duration::from_secs(3600),
        wall: Duration::from_secs(36000),
    });
    assert_eq!(engine.limits(), Limits::default());
}

#[test]
fn check_compiles_without_running() {
    let engine = engine();
    let runs_forever = Script::new("while (true) {}\nfunction main() {}");
    assert_eq!(engine.check(&runs_forever), Ok(()));
    let broken =
        Script::new("function main() {}").with_module("ns/m", "exports.a = 1;\nexports.b = );");
    let error = engine.check(&broken).expect_err("syntax");
    assert!(
        matches!(&error, JsError::Syntax { file, line: 2, .. } if file == "module ns/m"),
        "{error:?}"
    );
}
