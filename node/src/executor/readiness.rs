//! Readiness checks (`checks.readiness.code`, ArrowScript) and `depends.wait-for`.
//!
//! A replica whose runnable has a readiness check is reported `ready` once the check
//! returns a truthy value; until then it stays `running` with the reason. Checks run
//! at most every `period` seconds (after `initialDelay`), per replica.
//!
//! ArrowScript hosts are synchronous and `exec` is a Docker call, so a check runs in
//! rounds: evaluate with the results known so far; every `exec` not known yet is
//! collected instead of answered; run those (asynchronously); evaluate again. Scripts
//! are deterministic given their inputs, so this ends after as many rounds as the
//! script has distinct `exec` calls (at most [`CHECK_ROUNDS_MAX`]).
//!
//! `depends.wait-for.runnables` holds a replica back (no container is created) until
//! every replica of each named workload is ready (or running, when it has no check),
//! or fails it after `timeout` seconds.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use monk_scripting::arrow::eval;
use monk_scripting::arrow::host::{Host, HostError, HostOp};
use monk_scripting::arrow::parser::parse;
use monk_scripting::arrow::value::Value;
use monk_scripting::tree::Tree;
use monk_statemachine::view::instances;
use monk_statemachine::{InstanceStatus, State};

/// Seconds between checks when `period` is not given.
pub const CHECK_PERIOD_DEFAULT_SECS: u64 = 5;
/// Rounds of `exec` answering one check may take.
pub const CHECK_ROUNDS_MAX: usize = 4;
/// Longest output of one `exec` a check sees, in bytes.
pub const EXEC_OUTPUT_BYTES_MAX: usize = 64 * 1024;
/// Seconds `depends.wait-for` waits when no `timeout` is given.
pub const WAIT_FOR_TIMEOUT_DEFAULT_SECS: u64 = 300;

fn int_of(tree: Option<&Tree>) -> Option<u64> {
    match tree? {
        Tree::Int(n) => u64::try_from(*n).ok(),
        Tree::Str(s) => s.trim().trim_end_matches('s').parse().ok(),
        _ => None,
    }
}

/// A runnable's readiness check, if it has a non-empty one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub code: String,
    pub period: Duration,
    pub initial_delay: Duration,
}

pub fn readiness_check(definition: &Tree) -> Option<Check> {
    let check = definition
        .get("checks")
        .and_then(|c| c.get("readiness").or_else(|| c.get("readyness")))
        .or_else(|| definition.get("readiness"))?;
    let code = check.get("code")?.as_str()?.trim();
    let code = code.strip_prefix("<-").unwrap_or(code).trim();
    if code.is_empty() {
        return None;
    }
    Some(Check {
        code: code.to_string(),
        period: Duration::from_secs(
            int_of(check.get("period"))
                .unwrap_or(CHECK_PERIOD_DEFAULT_SECS)
                .max(1),
        ),
        initial_delay: Duration::from_secs(int_of(check.get("initialDelay")).unwrap_or(0)),
    })
}

/// The runnables a definition waits for, and how long.
pub fn wait_for(path: &str, definition: &Tree) -> (Vec<String>, Duration) {
    let Some(wait) = definition.get("depends").and_then(|d| d.get("wait-for")) else {
        return (Vec::new(), Duration::ZERO);
    };
    let namespace = path.rsplit_once('/').map_or("", |(ns, _)| ns);
    let runnables = match wait.get("runnables") {
        Some(Tree::Seq(items)) => items
            .iter()
            .filter_map(Tree::as_str)
            .map(|p| monk_scripting::monkscript::model::normalize_path(p, namespace))
            .collect(),
        _ => Vec::new(),
    };
    let timeout = int_of(wait.get("timeout")).unwrap_or(WAIT_FOR_TIMEOUT_DEFAULT_SECS);
    (runnables, Duration::from_secs(timeout))
}

/// For each workload: whether every replica is ready for its dependents (reported
/// `ready`, or `running` when it has no check, at its current generation).
pub fn ready_workloads(state: &State) -> BTreeMap<String, bool> {
    let mut out: BTreeMap<String, bool> = BTreeMap::new();
    for i in instances(state) {
        let checked = state
            .workloads()
            .get(&i.path)
            .is_some_and(|w| readiness_check(&w.definition).is_some());
        let current = i.observed_generation == Some(i.generation);
        let ok = current
            && match i.status {
                Some(InstanceStatus::Ready) => true,
                Some(InstanceStatus::Running) => !checked,
                _ => false,
            };
        let entry = out.entry(i.path.clone()).or_insert(true);
        *entry = *entry && ok;
    }
    out
}

/// The pseudo-container name under which a check's `http-get` calls are collected.
pub const HTTP_GET: &str = "@http-get";
/// Longest a check's HTTP request may take.
pub const HTTP_GET_TIMEOUT: Duration = Duration::from_secs(5);

/// `http://host[:port]/path` → (host, port, path).
fn split_url(url: &str) -> Result<(String, u16, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("http-get {url}: only http:// URLs are supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse()
                .map_err(|_| format!("http-get {url}: bad port {p:?}"))?,
        ),
        None => (authority, 80),
    };
    if host.is_empty() {
        return Err(format!("http-get {url}: no host"));
    }
    Ok((host.to_string(), port, path.to_string()))
}

/// An HTTP/1.1 GET for readiness checks (hyper's client: chunked and close-delimited
/// bodies, keep-alive answered correctly): the body when the status is 2xx, at most
/// [`EXEC_OUTPUT_BYTES_MAX`] bytes of it. `localhost` is the replica's container
/// (`container_ip`) when the runtime gave one. Bounded by [`HTTP_GET_TIMEOUT`].
pub async fn http_get(url: &str, container_ip: Option<&str>) -> Result<String, String> {
    let (host, port, path) = split_url(url)?;
    let target = match (host.as_str(), container_ip) {
        ("localhost" | "127.0.0.1" | "0.0.0.0", Some(ip)) => ip.to_string(),
        _ => host.clone(),
    };
    let failed = |e: &dyn std::fmt::Display| format!("http-get {url}: {e}");
    let authority = match port {
        80 => host.clone(),
        _ => format!("{host}:{port}"),
    };
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::USER_AGENT, "monkd")
        .body(http_body_util::Empty::<hyper::body::Bytes>::new())
        .map_err(|e| failed(&e))?;
    let mut driver = None;
    let exchange = async {
        let stream = tokio::net::TcpStream::connect((target.as_str(), port))
            .await
            .map_err(|e| failed(&e))?;
        let io = hyper_util::rt::TokioIo::new(stream);
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| failed(&e))?;
        driver = Some(tokio::spawn(connection));
        let response = sender.send_request(request).await.map_err(|e| failed(&e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("http-get {url}: status {}", status.as_u16()));
        }
        read_body(response.into_body(), EXEC_OUTPUT_BYTES_MAX)
            .await
            .map_err(|e| failed(&e))
    };
    let result = tokio::time::timeout(HTTP_GET_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("http-get {url}: no answer in {HTTP_GET_TIMEOUT:?}"))
        .and_then(|r| r);
    // The connection task ends with the exchange, answered or not.
    if let Some(driver) = driver {
        driver.abort();
    }
    result
}

/// The first `limit` bytes of a response body, as text.
async fn read_body(mut body: hyper::body::Incoming, limit: usize) -> Result<String, hyper::Error> {
    use http_body_util::BodyExt;
    let mut bytes = Vec::new();
    while bytes.len() < limit {
        let Some(frame) = body.frame().await else {
            break;
        };
        if let Ok(data) = frame?.into_data() {
            let room = limit - bytes.len();
            bytes.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// What a pending `exec` asks for: container name in the runnable, then the command.
pub type ExecCall = (String, Vec<String>);

/// The host a check runs against: `exec` answers come from `known`, missing ones are
/// recorded in `wanted`; other host operators are refused.
struct CheckHost<'a> {
    known: &'a HashMap<ExecCall, Result<String, String>>,
    wanted: Vec<ExecCall>,
}

impl Host for CheckHost<'_> {
    fn call(&mut self, op: HostOp, args: &[Value]) -> Result<Value, HostError> {
        match op {
            HostOp::HttpGet => self.http_get(args),
            HostOp::Exec => self.exec(args),
            // A check reads its replica only: everything else is refused by name.
            HostOp::ConnectionTarget
            | HostOp::ConnectionHostname
            | HostOp::ConnectionPort
            | HostOp::ConnectionDomainName
            | HostOp::ConnectionIp
            | HostOp::ConnectionPublicIp
            | HostOp::ConnectionPublicPort
            | HostOp::ConnectionUser
            | HostOp::Connection
            | HostOp::Entity
            | HostOp::EntityState
            | HostOp::ServicePort
            | HostOp::ServicePublicIp
            | HostOp::RunnablePeers
            | HostOp::RunnablePeersPublicIps
            | HostOp::GetHostname
            | HostOp::ContainerDomainName
            | HostOp::ContainerName
            | HostOp::IpAddressPublic
            | HostOp::PeerIpAddress
            | HostOp::DomainName
            | HostOp::GetResolverIp
            | HostOp::SslCertificate
            | HostOp::SslPrivateKey
            | HostOp::Provider
            | HostOp::Secret
            | HostOp::HttpPost
            | HostOp::HttpGetService
            | HostOp::RpcCall
            | HostOp::Act
            | HostOp::WaitFor
            | HostOp::RandomUuid
            | HostOp::Random
            | HostOp::Metric
            | HostOp::Cpu
            | HostOp::Set => Err(HostError::Unsupported {
                op: op.name().to_string(),
            }),
        }
    }
}

impl CheckHost<'_> {
    /// Monk's `http-get` gives the body, or nil when the request fails.
    fn http_get(&mut self, args: &[Value]) -> Result<Value, HostError> {
        let url = args.first().map(Value::to_text).unwrap_or_default();
        let call = (HTTP_GET.to_string(), vec![url]);
        match self.known.get(&call) {
            Some(Ok(body)) => Ok(Value::str(body)),
            Some(Err(_)) => Ok(Value::Nil),
            None => {
                self.wanted.push(call);
                Err(HostError::Failed("(answer pending)".into()))
            }
        }
    }

    fn exec(&mut self, args: &[Value]) -> Result<Value, HostError> {
        let texts: Vec<String> = args.iter().map(Value::to_text).collect();
        let Some((container, command)) = texts.split_first() else {
            return Err(HostError::Failed(
                "exec needs a container and a command".into(),
            ));
        };
        let call = (container.clone(), command.to_vec());
        match self.known.get(&call) {
            Some(Ok(out)) => Ok(Value::str(out)),
            Some(Err(e)) => Err(HostError::Failed(e.clone())),
            None => {
                self.wanted.push(call);
                Err(HostError::Failed("(answer pending)".into()))
            }
        }
    }
}

/// One evaluation round: `Ok(Some(ready))` when decided, `Ok(None)` when `exec`
/// answers are missing (listed in the second value), `Err` for a broken script.
pub fn evaluate(
    check: &Check,
    variables: &BTreeMap<String, String>,
    known: &HashMap<ExecCall, Result<String, String>>,
) -> (Result<Option<bool>, String>, Vec<ExecCall>) {
    let script = match parse(&check.code) {
        Ok(s) => s,
        Err(e) => {
            return (
                Err(format!("readiness code does not parse: {e}")),
                Vec::new(),
            )
        }
    };
    let mut vars: BTreeMap<String, Value> = BTreeMap::new();
    for (name, value) in variables {
        vars.insert(name.clone(), Value::str(value));
        vars.insert(name.replace('-', "_"), Value::str(value));
    }
    let mut host = CheckHost {
        known,
        wanted: Vec::new(),
    };
    let result = eval(&script, &vars, &mut host);
    if !host.wanted.is_empty() {
        return (Ok(None), host.wanted);
    }
    match result {
        Ok(value) => (Ok(Some(value.is_truthy())), Vec::new()),
        Err(e) => (Err(e.to_string()), Vec::new()),
    }
}

/// When each replica's check last ran, and when each replica started waiting for its
/// dependencies (executor memory; lost on restart, which only delays a check).
#[derive(Debug, Default)]
pub struct Memo {
    pub last_check: HashMap<(String, u32, u64), (Instant, bool, String)>,
    pub waiting_since: HashMap<(String, u32, u64), Instant>,
    pub running_since: HashMap<(String, u32, u64), Instant>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_host_port_and_path() {
        assert_eq!(
            split_url("http://localhost:8080/health").unwrap(),
            ("localhost".into(), 8080, "/health".into())
        );
        assert_eq!(
            split_url("http://db").unwrap(),
            ("db".into(), 80, "/".into())
        );
        assert!(split_url("https://x/")
            .unwrap_err()
            .contains("only http://"));
        assert!(split_url("http://x:port/")
            .unwrap_err()
            .contains("bad port"));
    }

    #[tokio::test]
    async fn http_get_returns_the_body_of_a_2xx_and_fails_otherwise() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            for reply in [
                "HTTP/1.0 200 OK\r\n\r\nhealthy",
                "HTTP/1.0 503 Busy\r\n\r\nno",
            ] {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 256];
                let _ = s.read(&mut buf).await;
                s.write_all(reply.as_bytes()).await.unwrap();
            }
        });
        let url = format!("http://localhost:{port}/health");
        assert_eq!(http_get(&url, Some("127.0.0.1")).await.unwrap(), "healthy");
        assert!(http_get(&url, None)
            .await
            .unwrap_err()
            .contains("status 503"));
        let closed = format!("http://127.0.0.1:{}/", port);
        assert!(http_get(&closed, None).await.is_err());
    }

    /// The hand-written HTTP/1.0 client returned a chunked body with its chunk sizes
    /// (`5\r\nhello...`) instead of the body.
    #[tokio::test]
    async fn http_get_decodes_a_chunked_body() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 256];
            let _ = s.read(&mut buf).await;
            let reply = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
            s.write_all(reply.as_bytes()).await.unwrap();
            // Keep the connection open (keep-alive): the body ends at the last chunk.
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        });
        let url = format!("http://127.0.0.1:{port}/health");
        assert_eq!(http_get(&url, None).await.unwrap(), "hello world");
    }
}
