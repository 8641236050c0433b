//! A real kit runs unchanged: the Neon project entity of monk-io/monk-entities (MonkEC:
//! TypeScript classes with decorators compiled by esbuild, `monkec/base` and
//! `monkec/http-client` as user modules) goes through create, start and purge against a
//! fake Neon API behind the `Host`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use monk_js::{
    Host, HostError, HttpRequest, HttpResponse, Invocation, InvocationContext, JsEngine,
    QuickJsEngine, Script,
};
use serde_json::{json, Value};

/// The real corpus: `$MONK_CORPUS`, else `shared/corpus` beside the repository. A clone
/// without it gets `None` and the test skips, saying why; with `MONK_REQUIRE_CORPUS=1`
/// (set by `.ci/run`) a missing corpus fails.
fn corpus_root(test: &str) -> Option<PathBuf> {
    let root = std::env::var_os("MONK_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus"))
        });
    if root.join("SOURCES.tsv").is_file() {
        return Some(root);
    }
    let reason = format!(
        "{test}: the MonkScript corpus is not at {} (set MONK_CORPUS=DIR to point at it)",
        root.display()
    );
    if std::env::var("MONK_REQUIRE_CORPUS").is_ok_and(|v| v == "1") {
        panic!("{reason}; MONK_REQUIRE_CORPUS=1 makes this a failure");
    }
    eprintln!("SKIPPED {reason}");
    None
}

fn kit_file(root: &std::path::Path, path: &str) -> String {
    let file = root.join("monk-io/monk-entities/dist").join(path);
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("corpus file {}: {e}", file.display()))
}

/// The Neon API as far as the project entity uses it.
#[derive(Default)]
struct FakeNeon {
    calls: Mutex<Vec<String>>,
}

impl Host for FakeNeon {
    fn secret_get(&self, name: &str) -> Result<String, HostError> {
        match name {
            "neon-api-key" => Ok("test-key".into()),
            other => Err(HostError::NotFound(other.into())),
        }
    }
    fn secret_set(&self, _: &str, _: &str) -> Result<(), HostError> {
        Err(HostError::Denied("read-only in this test".into()))
    }
    fn secret_remove(&self, _: &str) -> Result<(), HostError> {
        Err(HostError::Denied("read-only in this test".into()))
    }
    fn http(&self, request: &HttpRequest) -> Result<HttpResponse, HostError> {
        let path = request
            .url
            .trim_start_matches("https://console.neon.tech/api/v2");
        self.calls
            .lock()
            .expect("calls")
            .push(format!("{} {path}", request.method));
        if request.headers.get("Authorization").map(String::as_str) != Some("Bearer test-key") {
            return Ok(response(401, json!({"message": "no key"})));
        }
        let project = json!({"id": "p-1", "name": "shop", "status": "init", "region": "aws-eu-central-1", "created_at": "t0", "updated_at": "t1"});
        Ok(match (request.method.as_str(), path) {
            ("GET", "/projects") => response(200, json!({"projects": []})),
            ("POST", "/projects") => response(
                201,
                json!({"project": project, "operations": [{"id": "op-1"}]}),
            ),
            ("GET", "/projects/p-1/operations/op-1") => {
                response(200, json!({"operation": {"status": "finished"}}))
            }
            ("DELETE", "/projects/p-1") => response(200, json!({"project": project})),
            _ => response(404, json!({"message": "not found"})),
        })
    }
}

fn response(code: u16, body: Value) -> HttpResponse {
    let body = body.to_string();
    HttpResponse {
        status: format!("{code}"),
        status_code: code,
        headers: BTreeMap::new(),
        content_length: body.len() as u64,
        body,
    }
}

#[test]
fn the_neon_project_entity_runs_create_start_and_purge() {
    let Some(root) = corpus_root("the_neon_project_entity_runs_create_start_and_purge") else {
        return;
    };
    let kit = |path: &str| kit_file(&root, path);
    let script = Script::new(kit("neon/project-sync.js"))
        .with_module("monkec/base", kit("monkec/base.js"))
        .with_module("monkec/http-client", kit("monkec/http-client.js"))
        .with_module("neon/neon-base", kit("neon/neon-base.js"))
        .with_module("neon/common", kit("neon/common.js"));
    let host = Arc::new(FakeNeon::default());
    let engine = QuickJsEngine::default();
    let mut state: Option<Value> = None;
    let mut outputs = Vec::new();
    for action in ["create", "start", "purge"] {
        let invocation = Invocation {
            definition: json!({"secret_ref": "neon-api-key", "name": "shop", "region_id": "aws-eu-central-1", "pg_version": 16}),
            state: state.clone(),
            context: InvocationContext {
                action: action.into(),
                status: "running".into(),
                path: "shop/neon-project".into(),
                ..InvocationContext::default()
            },
            ..Invocation::default()
        };
        let shared: Arc<dyn Host> = host.clone();
        let outcome = engine
            .invoke(&script, &invocation, shared)
            .unwrap_or_else(|e| panic!("{action}: {e}"));
        if let Some(new) = outcome.state {
            state = Some(new);
        }
        outputs.push(outcome.output);
    }
    let state = state.expect("create saved a state");
    assert_eq!(state["id"], json!("p-1"));
    assert_eq!(state["operation_id"], json!("op-1"));
    assert_eq!(state["region"], json!("aws-eu-central-1"));
    assert_eq!(
        state["definition_hash"].as_str().map(str::len),
        Some(64),
        "MonkEC hashes the definition with crypto.sha256: {state}"
    );
    assert_eq!(
        *host.calls.lock().expect("calls"),
        [
            "GET /projects",
            "POST /projects",
            "GET /projects/p-1/operations/op-1",
            "DELETE /projects/p-1",
        ]
    );
    assert!(
        outputs[0]
            .iter()
            .any(|line| line.contains("Project creation operation ID: op-1")),
        "{:?}",
        outputs[0]
    );
    assert!(
        outputs[2]
            .iter()
            .any(|line| line == "Successfully deleted Project shop"),
        "{:?}",
        outputs[2]
    );
}

/// Every JavaScript file a corpus kit embeds (`<<< file.js` beside it in a YAML file)
/// compiles: lifecycle scripts (those defining `main`) as scripts, the rest as modules.
#[test]
fn every_embedded_javascript_file_of_the_corpus_compiles() {
    let Some(root) = corpus_root("every_embedded_javascript_file_of_the_corpus_compiles") else {
        return;
    };
    let mut yaml_files = Vec::new();
    walk(&root, &mut yaml_files);
    let engine = QuickJsEngine::default();
    let (mut scripts, mut modules, mut failures) = (0, 0, Vec::new());
    let mut seen = std::collections::BTreeSet::new();
    for yaml in yaml_files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
    {
        let Ok(text) = std::fs::read_to_string(yaml) else {
            continue;
        };
        for embedded in text.split("<<<").skip(1) {
            let name = embedded.split_whitespace().next().unwrap_or("");
            if !name.ends_with(".js") {
                continue;
            }
            let Some(path) = yaml.parent().map(|dir| dir.join(name)) else {
                continue;
            };
            let Ok(source) = std::fs::read_to_string(&path) else {
                continue;
            };
            if !seen.insert(path.clone()) {
                continue;
            }
            let script = if source.contains("function main") {
                scripts += 1;
                Script::new(source)
            } else {
                modules += 1;
                Script::new("function main() {}").with_module("m", source)
            };
            if let Err(error) = engine.check(&script) {
                failures.push(format!(
                    "{}: {error}",
                    path.strip_prefix(&root).unwrap_or(&path).display()
                ));
            }
        }
    }
    eprintln!("corpus: {scripts} lifecycle scripts and {modules} modules compiled");
    assert!(
        scripts > 100 && modules > 20,
        "too few files found: {scripts} scripts, {modules} modules"
    );
    assert!(
        failures.is_empty(),
        "{} files do not compile:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn walk(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}
