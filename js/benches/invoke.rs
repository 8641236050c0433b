//! Invocations per second on one thread (each one a fresh QuickJS runtime and context,
//! as the entity executor will run them), and the heap one invocation's context holds,
//! printed before the timings:
//! - `trivial`: `main` returns a constant object;
//! - `lifecycle`: a typical hand-written verb (require, console.log, state spread);
//! - `monkec-neon`: the Neon project entity of monk-io/monk-entities (`create` against a
//!   fake API; about 30 KB of MonkEC JavaScript compiled per invocation), when the corpus
//!   is beside the repository.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use monk_js::{
    Host, HostError, HttpRequest, HttpResponse, Invocation, InvocationContext, JsEngine, NoHost,
    QuickJsEngine, Script,
};
use serde_json::json;

const TRIVIAL: &str = "function main(definition, state, context) { return { ok: true }; }";

const LIFECYCLE: &str = r#"
const cli = require("cli");
function main(definition, state, context) {
  console.log("Starting", definition.name, "for", context.path);
  cli.output("started " + definition.name);
  return { ...state, started: Date.now(), size: definition.size * 2, tags: definition.tags.map((t) => t.toUpperCase()) };
}
"#;

/// Answers the Neon calls of a `create` with fixed bodies.
struct FakeNeon;

impl Host for FakeNeon {
    fn secret_get(&self, _: &str) -> Result<String, HostError> {
        Ok("bench-key".into())
    }
    fn secret_set(&self, _: &str, _: &str) -> Result<(), HostError> {
        Ok(())
    }
    fn secret_remove(&self, _: &str) -> Result<(), HostError> {
        Ok(())
    }
    fn http(&self, request: &HttpRequest) -> Result<HttpResponse, HostError> {
        let body = if request.method == "POST" {
            json!({"project": {"id": "p-1", "name": "shop", "status": "init", "region": "r", "created_at": "t0", "updated_at": "t1"}, "operations": [{"id": "op-1"}]})
        } else {
            json!({"projects": []})
        }
        .to_string();
        Ok(HttpResponse {
            status: "200".into(),
            status_code: 200,
            headers: BTreeMap::new(),
            content_length: body.len() as u64,
            body,
        })
    }
}

fn neon_script() -> Option<Script> {
    let root = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/corpus/monk-io/monk-entities/dist"
    ));
    let read = |path: &str| std::fs::read_to_string(root.join(path)).ok();
    Some(
        Script::new(read("neon/project-sync.js")?)
            .with_module("monkec/base", read("monkec/base.js")?)
            .with_module("monkec/http-client", read("monkec/http-client.js")?)
            .with_module("neon/neon-base", read("neon/neon-base.js")?)
            .with_module("neon/common", read("neon/common.js")?),
    )
}

fn invocation() -> Invocation {
    Invocation {
        definition: json!({"name": "orders", "size": 3, "tags": ["a", "b"], "secret_ref": "neon-api-key", "region_id": "r", "pg_version": 16}),
        state: Some(json!({"id": "db-1"})),
        context: InvocationContext {
            action: "create".into(),
            status: "pending".into(),
            path: "shop/orders".into(),
            ..InvocationContext::default()
        },
        ..Invocation::default()
    }
}

fn invoke(c: &mut Criterion) {
    let engine = QuickJsEngine::default();
    let invocation = invocation();
    let mut cases: Vec<(&str, Script, Arc<dyn Host>)> = vec![
        ("trivial", Script::new(TRIVIAL), Arc::new(NoHost)),
        ("lifecycle", Script::new(LIFECYCLE), Arc::new(NoHost)),
    ];
    match neon_script() {
        Some(script) => cases.push(("monkec-neon", script, Arc::new(FakeNeon))),
        None => eprintln!("monkec-neon skipped: ../shared/corpus is not beside the repository"),
    }
    for (name, script, host) in &cases {
        let outcome = engine
            .invoke(script, &invocation, Arc::clone(host))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        eprintln!(
            "memory per context ({name}): {} KiB of QuickJS heap when main returned",
            outcome.heap_bytes / 1024
        );
    }
    let mut group = c.benchmark_group("invoke");
    group.throughput(Throughput::Elements(1));
    for (name, script, host) in &cases {
        group.bench_function(*name, |b| {
            b.iter(|| {
                engine
                    .invoke(black_box(script), black_box(&invocation), Arc::clone(host))
                    .map(|outcome| outcome.state)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, invoke);
criterion_main!(benches);
