//! What an entity's scripts reach outside the sandbox on this peer (`monk_js::Host`):
//! the instance's secrets (its own scope, and global ones only when
//! `permitted-secrets` names them; `secret.set`/`remove` commit a sealed secret scoped
//! to the instance), plain-HTTP requests through hyper's client, and `console.log`
//! lines into the peer's trace. Scripts run on a blocking thread; the host's async
//! work runs on the node's runtime through its handle.

use std::collections::BTreeMap;
use std::sync::Arc;

use http_body_util::BodyExt;
use monk_js::{Host, HostError, HttpRequest, HttpResponse};
use monk_scripting::tree::Tree;
use monk_statemachine::{Command, SecretScope};
use tracing::info;

use crate::node::Node;
use crate::secrets::WorkloadSecrets;

/// Largest response body a script receives, in bytes: API answers, not downloads.
pub const ENTITY_HTTP_BODY_BYTES_MAX: usize = 8 * 1024 * 1024;

/// One invocation's view of the world.
pub struct EntityHost {
    pub node: Arc<Node>,
    pub runtime: tokio::runtime::Handle,
    /// The instance's path: its secret scope and the name in its trace lines.
    pub path: String,
    /// The verb, for the trace lines.
    pub verb: String,
    /// Where `permitted-secrets` is read: the instance, then its type.
    pub permits: Vec<Tree>,
    pub secrets: WorkloadSecrets,
    /// The `console.*` and `cli.output` lines written so far (the engine passes on at
    /// most `JS_OUTPUT_LINES_MAX`), for `monk do`, including those of a script that
    /// then fails.
    pub lines: std::sync::Mutex<Vec<String>>,
}

impl EntityHost {
    fn actor(&self) -> String {
        format!("entity:{}/{}", self.path, self.verb)
    }
}

impl Host for EntityHost {
    fn secret_get(&self, name: &str) -> Result<String, HostError> {
        let mut last = String::new();
        for permits in &self.permits {
            match self.secrets.resolve(&self.path, permits, name) {
                Ok(value) => return Ok(value),
                Err(why) => last = why,
            }
        }
        match last.starts_with("no secret") {
            true => Err(HostError::NotFound(last)),
            false => Err(HostError::Denied(last)),
        }
    }

    fn secret_set(&self, name: &str, value: &str) -> Result<(), HostError> {
        let scope = SecretScope::Entity(self.path.clone());
        self.runtime
            .block_on(crate::secrets::set(
                &self.node,
                self.actor(),
                name,
                scope,
                value,
            ))
            .map(|_| ())
            .map_err(|e| HostError::Failed(e.to_string()))
    }

    fn secret_remove(&self, name: &str) -> Result<(), HostError> {
        let command = Command::SecretRemoved {
            name: name.into(),
            scope: SecretScope::Entity(self.path.clone()),
        };
        let proposal = self.node.stamp(self.actor(), command);
        self.runtime
            .block_on(self.node.propose(proposal))
            .map_err(|e| HostError::Failed(e.to_string()))
            .and_then(|outcome| match outcome.applied {
                monk_statemachine::Applied::Accepted { .. } => Ok(()),
                monk_statemachine::Applied::Rejected { reason } => {
                    Err(HostError::NotFound(reason.to_string()))
                }
            })
    }

    fn http(&self, request: &HttpRequest) -> Result<HttpResponse, HostError> {
        self.runtime
            .block_on(tokio::time::timeout(request.timeout, exchange(request)))
            .map_err(|_| {
                HostError::Failed(format!(
                    "{} {}: no answer in {:?}",
                    request.method, request.url, request.timeout
                ))
            })
            .and_then(|r| r)
    }

    fn output(&self, line: &str) {
        info!(instance = %self.path, verb = %self.verb, "entity: {line}");
        self.lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(line.to_string());
    }
}

/// `(host, port, path and query)` of an `http://` URL.
fn split_url(url: &str) -> Result<(String, u16, String), HostError> {
    let bad = |why: &str| HostError::Failed(format!("{url}: {why}"));
    let rest = match url.strip_prefix("http://") {
        Some(rest) => rest,
        None if url.starts_with("https://") => {
            return Err(bad(
                "https is not supported by this peer yet (plain http only)",
            ))
        }
        None => return Err(bad("not an http:// URL")),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().map_err(|_| bad("bad port"))?),
        None => (authority, 80),
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    Ok((host.trim_matches(['[', ']']).to_string(), port, path.into()))
}

async fn exchange(request: &HttpRequest) -> Result<HttpResponse, HostError> {
    let (host, port, path) = split_url(&request.url)?;
    let failed = |e: &dyn std::fmt::Display| {
        HostError::Failed(format!("{} {}: {e}", request.method, request.url))
    };
    let method = hyper::Method::from_bytes(request.method.as_bytes()).map_err(|e| failed(&e))?;
    let mut builder = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, format!("{host}:{port}"))
        .header(hyper::header::USER_AGENT, "monkd-entity");
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let body = request.body.clone().unwrap_or_default();
    let hyper_request = builder
        .body(http_body_util::Full::new(hyper::body::Bytes::from(body)))
        .map_err(|e| failed(&e))?;
    let (mut sender, driver) = crate::executor::readiness::http1_connect((host.as_str(), port))
        .await
        .map_err(|e| failed(&e))?;
    let answer = async {
        let response = sender
            .send_request(hyper_request)
            .await
            .map_err(|e| failed(&e))?;
        let status = response.status();
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in response.headers() {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            headers
                .entry(name.as_str().to_string())
                .and_modify(|v| {
                    v.push_str(", ");
                    v.push_str(&value);
                })
                .or_insert(value);
        }
        let content_length = headers
            .get("content-length")
            .and_then(|v| v.parse::<u64>().ok());
        let mut bytes = Vec::new();
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.map_err(|e| failed(&e))?.into_data() {
                if bytes.len() + data.len() > ENTITY_HTTP_BODY_BYTES_MAX {
                    return Err(failed(&format!(
                        "the response body is larger than {ENTITY_HTTP_BODY_BYTES_MAX} bytes"
                    )));
                }
                bytes.extend_from_slice(&data);
            }
        }
        let body = String::from_utf8_lossy(&bytes).into_owned();
        Ok(HttpResponse {
            status: format!(
                "{} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            )
            .trim_end()
            .to_string(),
            status_code: status.as_u16(),
            headers,
            content_length: content_length.unwrap_or(body.len() as u64),
            body,
        })
    }
    .await;
    driver.abort();
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_host_port_and_path() {
        let split = |u: &str| split_url(u).map_err(|e| e.to_string());
        assert_eq!(
            split("http://127.0.0.1:8080/v1/db?x=1"),
            Ok(("127.0.0.1".into(), 8080, "/v1/db?x=1".into()))
        );
        assert_eq!(split("http://api"), Ok(("api".into(), 80, "/".into())));
        assert!(split("https://api").is_err_and(|e| e.contains("plain http only")));
        assert!(split("ftp://x").is_err());
        assert!(split("http://:80/").is_err());
    }
}
