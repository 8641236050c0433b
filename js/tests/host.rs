//! The `secret` and `http` modules reach the world only through the `Host`: a fake host
//! records every call and answers from a script of its own.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use monk_js::{
    Host, HostError, HttpRequest, HttpResponse, Invocation, JsEngine, JsError, Limits,
    QuickJsEngine, Script,
};
use serde_json::json;

#[derive(Default)]
struct FakeHost {
    secrets: Mutex<BTreeMap<String, String>>,
    calls: Mutex<Vec<String>>,
    requests: Mutex<Vec<HttpRequest>>,
}

impl FakeHost {
    fn calls(&self) -> Vec<String> {
        self.calls.lock().expect("calls").clone()
    }
    fn record(&self, call: String) {
        self.calls.lock().expect("calls").push(call);
    }
}

impl Host for FakeHost {
    fn secret_get(&self, name: &str) -> Result<String, HostError> {
        self.record(format!("secret_get {name}"));
        if name.starts_with("global-") {
            return Err(HostError::Denied("not in permitted-secrets".into()));
        }
        self.secrets
            .lock()
            .expect("secrets")
            .get(name)
            .cloned()
            .ok_or_else(|| HostError::NotFound(name.into()))
    }
    fn secret_set(&self, name: &str, value: &str) -> Result<(), HostError> {
        self.record(format!("secret_set {name}"));
        self.secrets
            .lock()
            .expect("secrets")
            .insert(name.into(), value.into());
        Ok(())
    }
    fn secret_remove(&self, name: &str) -> Result<(), HostError> {
        self.record(format!("secret_remove {name}"));
        self.secrets.lock().expect("secrets").remove(name);
        Ok(())
    }
    fn output(&self, line: &str) {
        self.record(format!("output {line}"));
    }
    fn http(&self, request: &HttpRequest) -> Result<HttpResponse, HostError> {
        self.record(format!("http {} {}", request.method, request.url));
        self.requests
            .lock()
            .expect("requests")
            .push(request.clone());
        if request.url.contains("unreachable") {
            return Err(HostError::Failed("connection refused".into()));
        }
        Ok(HttpResponse {
            status: "201 Created".into(),
            status_code: 201,
            headers: BTreeMap::from([("content-type".into(), "application/json".into())]),
            body: json!({"id": "db-7", "method": request.method}).to_string(),
            content_length: 31,
        })
    }
}

fn invoke(host: &Arc<FakeHost>, source: &str) -> Result<monk_js::Outcome, JsError> {
    let host: Arc<dyn Host> = host.clone();
    QuickJsEngine::default().invoke(&Script::new(source), &Invocation::default(), host)
}

#[test]
fn secrets_go_through_the_host() {
    let host = Arc::new(FakeHost::default());
    let outcome = invoke(
        &host,
        r#"const secret = require("secret");
           function main() {
             let before;
             try { secret.get("db-password"); } catch (e) { before = e.message; }
             const password = secret.randString(16);
             secret.set("db-password", password);
             const read = secret.get("db-password");
             secret.remove("db-password");
             return { before, same: read === password, length: password.length, alnum: /^[A-Za-z0-9]+$/.test(password) };
           }"#,
    )
    .expect("runs");
    assert_eq!(
        outcome.state,
        Some(
            json!({"before": "secret db-password not found", "same": true, "length": 16, "alnum": true})
        )
    );
    assert_eq!(
        host.calls(),
        [
            "secret_get db-password",
            "secret_set db-password",
            "secret_get db-password",
            "secret_remove db-password"
        ]
    );
    assert!(host.secrets.lock().expect("secrets").is_empty());
}

#[test]
fn a_forbidden_secret_fails_the_invocation_with_a_typed_error() {
    let host = Arc::new(FakeHost::default());
    let error = invoke(
        &host,
        "function main() { require('secret').get('global-api-key'); }",
    )
    .expect_err("denied");
    assert_eq!(
        error,
        JsError::SecretDenied {
            name: "global-api-key".into(),
            reason: "not in permitted-secrets".into()
        }
    );
    assert_eq!(
        error.to_string(),
        "secret global-api-key is not permitted: not in permitted-secrets"
    );
}

#[test]
fn http_calls_go_through_the_host_with_their_options() {
    let host = Arc::new(FakeHost::default());
    let outcome = invoke(
        &host,
        r#"const http = require("http");
           function main(def) {
             const created = http.post("https://api.example/dbs", {
               headers: { authorization: "Bearer t", "x-count": 2 },
               body: { name: "orders" },
               timeout: 5000,
             });
             const fetched = http.get("https://api.example/dbs/db-7");
             const patched = http.do("https://api.example/dbs/db-7", { method: "patch", body: "{}" });
             http.put("https://api.example/dbs/db-7", { body: "x" });
             http.delete("https://api.example/dbs/db-7");
             const failed = http.get("https://unreachable.example/");
             return {
               status: created.status,
               statusCode: created.statusCode,
               headers: created.headers,
               id: JSON.parse(created.body).id,
               contentLength: created.contentLength,
               error: created.error,
               fetchedMethod: JSON.parse(fetched.body).method,
               patchedMethod: JSON.parse(patched.body).method,
               failed,
             };
           }"#,
    )
    .expect("runs");
    assert_eq!(
        outcome.state,
        Some(json!({
            "status": "201 Created",
            "statusCode": 201,
            "headers": {"content-type": "application/json"},
            "id": "db-7",
            "contentLength": 31,
            "error": "",
            "fetchedMethod": "GET",
            "patchedMethod": "PATCH",
            "failed": {"status": "", "statusCode": 0, "headers": {}, "body": "", "contentLength": 0, "error": "connection refused"}
        }))
    );
    assert_eq!(
        host.calls(),
        [
            "http POST https://api.example/dbs",
            "http GET https://api.example/dbs/db-7",
            "http PATCH https://api.example/dbs/db-7",
            "http PUT https://api.example/dbs/db-7",
            "http DELETE https://api.example/dbs/db-7",
            "http GET https://unreachable.example/",
        ]
    );
    let requests = host.requests.lock().expect("requests");
    let post = &requests[0];
    assert_eq!(post.body.as_deref(), Some(r#"{"name":"orders"}"#));
    assert_eq!(
        post.headers,
        BTreeMap::from([
            ("authorization".into(), "Bearer t".into()),
            ("x-count".into(), "2".into())
        ])
    );
    assert_eq!(post.timeout, Duration::from_millis(5000));
    assert_eq!(
        requests[1].timeout,
        Duration::from_millis(monk_js::limits::JS_HTTP_TIMEOUT_DEFAULT_MS)
    );
}

#[test]
fn an_http_timeout_never_outlasts_the_invocation() {
    let host = Arc::new(FakeHost::default());
    let engine = QuickJsEngine::new(Limits {
        wall: Duration::from_secs(5),
        ..Limits::default()
    });
    let shared: Arc<dyn Host> = host.clone();
    engine
        .invoke(
            &Script::new("function main() { require('http').get('https://api.example/', { timeout: 60000 }); }"),
            &Invocation::default(),
            shared,
        )
        .expect("runs");
    let timeout = host.requests.lock().expect("requests")[0].timeout;
    assert!(
        timeout <= Duration::from_secs(5) && timeout > Duration::from_secs(4),
        "{timeout:?}"
    );
}

#[test]
fn the_no_host_denies_everything() {
    let error = QuickJsEngine::default()
        .invoke(
            &Script::new("function main() { return require('http').get('https://example.com/'); }"),
            &Invocation::default(),
            Arc::new(monk_js::NoHost),
        )
        .expect("http failures are values");
    assert_eq!(
        error
            .state
            .as_ref()
            .and_then(|s| s.get("error"))
            .and_then(|e| e.as_str()),
        Some("no network here (GET https://example.com/)")
    );
}

#[test]
fn output_lines_reach_the_host_as_they_are_written_even_when_the_script_then_fails() {
    let host = Arc::new(FakeHost::default());
    let error = invoke(
        &host,
        "function main() { console.log('calling API'); require('cli').output('step', 1); throw new Error('API said no'); }",
    )
    .expect_err("fails");
    assert!(
        matches!(&error, JsError::Thrown { message, .. } if message == "API said no"),
        "{error:?}"
    );
    assert_eq!(host.calls(), ["output calling API", "output step 1"]);
}
