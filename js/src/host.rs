//! `Host`: what a script reaches outside its sandbox, through the `secret` and `http`
//! modules. The node implements it per invocation (the instance's secret scope and
//! `permitted-secrets`, its HTTP client); tests implement it with fakes. `NoHost` denies
//! everything.

use std::collections::BTreeMap;
use std::time::Duration;

/// Why the host did not do what a script asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// Not allowed to this script (a secret outside its scope, network not permitted).
    /// For secrets this fails the invocation with `JsError::SecretDenied` unless the
    /// script catches it.
    #[error("{0}")]
    Denied(String),
    /// Nothing by that name (a secret never set).
    #[error("{0}")]
    NotFound(String),
    /// It was allowed but failed (connection refused, timeout, storage error).
    #[error("{0}")]
    Failed(String),
}

/// One HTTP request from a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// Upper-case method: `GET`, `POST`, `PUT`, `DELETE`, or what `http.do` was given.
    pub method: String,
    /// The URL as the script wrote it.
    pub url: String,
    /// Request headers, names as written.
    pub headers: BTreeMap<String, String>,
    /// The body, if any.
    pub body: Option<String>,
    /// How long the host may take: the script's `timeout` (or the default), never past
    /// the invocation's remaining wall-clock time.
    pub timeout: Duration,
}

/// The host's answer to an `HttpRequest`: any status, including 4xx and 5xx.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status line text, e.g. `200 OK`.
    pub status: String,
    /// Numeric status, e.g. `200`.
    pub status_code: u16,
    /// Response headers (a repeated header joined with `, `).
    pub headers: BTreeMap<String, String>,
    /// The body as text.
    pub body: String,
    /// `Content-Length` if the server sent one, else the body's length in bytes.
    pub content_length: u64,
}

/// The world a script may touch, one call at a time (calls block the script, as in Monk).
pub trait Host {
    /// `secret.get(name)`.
    fn secret_get(&self, name: &str) -> Result<String, HostError>;
    /// `secret.set(name, value)`.
    fn secret_set(&self, name: &str, value: &str) -> Result<(), HostError>;
    /// `secret.remove(name)`.
    fn secret_remove(&self, name: &str) -> Result<(), HostError>;
    /// `http.get/post/put/delete/do`. A transport failure is an `Err`; the script sees it
    /// in the response's `error` field rather than as an exception.
    fn http(&self, request: &HttpRequest) -> Result<HttpResponse, HostError>;

    /// Each `console.*` and `cli.output` line as it is written (for the peer's trace; it
    /// also sees the lines of an invocation that then fails, which `Outcome::output`
    /// cannot carry). Lines past `JS_OUTPUT_LINES_MAX` are not passed on.
    fn output(&self, line: &str) {
        let _ = line;
    }
}

/// A host that grants nothing: every secret and every request is denied. For pure
/// invocations (and tests that expect the denial).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHost;

impl Host for NoHost {
    fn secret_get(&self, name: &str) -> Result<String, HostError> {
        Err(HostError::Denied(format!(
            "no secrets here (asked for {name})"
        )))
    }
    fn secret_set(&self, name: &str, _value: &str) -> Result<(), HostError> {
        Err(HostError::Denied(format!(
            "no secrets here (setting {name})"
        )))
    }
    fn secret_remove(&self, name: &str) -> Result<(), HostError> {
        Err(HostError::Denied(format!(
            "no secrets here (removing {name})"
        )))
    }
    fn http(&self, request: &HttpRequest) -> Result<HttpResponse, HostError> {
        Err(HostError::Denied(format!(
            "no network here ({} {})",
            request.method, request.url
        )))
    }
}
