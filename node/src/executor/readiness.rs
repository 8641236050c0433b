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
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
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

/// `http://host[:port]/path` → (host, port, path); an IPv6 host is written in
/// brackets (`http://[fd00::2]:8080/`) and comes back without them.
fn split_url(url: &str) -> Result<(String, u16, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("http-get {url}: only http:// URLs are supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| format!("http-get {url}: unclosed `[`"))?;
            (host, after.strip_prefix(':'))
        }
        None => match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    let port = match port {
        Some(p) => p
            .parse()
            .map_err(|_| format!("http-get {url}: bad port {p:?}"))?,
        None => 80,
    };
    if host.is_empty() {
        return Err(format!("http-get {url}: no host"));
    }
    Ok((host.to_string(), port, path.to_string()))
}

/// Cloud metadata services outside the link-local ranges: Alibaba Cloud's
/// `100.100.100.200` and AWS's IPv6 `fd00:ec2::254` (the IPv4 ones, AWS/GCP/Azure
/// `169.254.169.254`, are link-local).
const METADATA_ADDRESSES: &[IpAddr] = &[
    IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)),
];

/// Whether a check may not connect to `ip` even though a name or the script asks:
/// loopback and unspecified addresses (from inside the replica's network they would
/// be the replica itself, from `monkd` they are the host), link-local addresses
/// (`169.254.0.0/16`, `fe80::/10`: the cloud metadata service) and other metadata
/// addresses. IPv4-mapped IPv6 forms count as their IPv4 address.
pub fn forbidden_target(ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    let special = match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_unspecified() || v4.is_link_local(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.is_unspecified() || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    };
    special || METADATA_ADDRESSES.contains(&ip)
}

/// Where a readiness `http-get` to `host` connects, as if from inside the replica's
/// network: `localhost` (or a loopback or unspecified address) is the replica's own
/// container at `container_ip`, the address its engine gave it; any other host is
/// the first of its addresses (`resolved`, or the host itself when it is an address)
/// that is not [`forbidden_target`]. Pure.
pub fn http_get_target(
    host: &str,
    container_ip: Option<IpAddr>,
    resolved: &[IpAddr],
) -> Result<IpAddr, String> {
    let literal = host.parse::<IpAddr>().ok();
    let own = host.eq_ignore_ascii_case("localhost")
        || literal.is_some_and(|ip| ip.to_canonical().is_loopback() || ip.is_unspecified());
    if own {
        return container_ip
            .ok_or_else(|| "the replica has no address on its network yet".to_string());
    }
    let addresses = match literal {
        Some(ip) => vec![ip],
        None => resolved.to_vec(),
    };
    addresses
        .iter()
        .copied()
        .find(|ip| !forbidden_target(*ip))
        .ok_or_else(|| match addresses.first() {
            Some(ip) => format!(
                "{host} is {ip}, which a readiness check may not reach (loopback, link-local \
                 or metadata address; `localhost` is the replica itself)"
            ),
            None => format!("{host} has no address"),
        })
}

/// Resolves `host` on the peer (a name only; an address is returned as it is).
async fn resolve(host: &str, port: u16) -> Result<Vec<IpAddr>, String> {
    if host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok() {
        return Ok(Vec::new());
    }
    let found = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?;
    Ok(found.map(|a| a.ip()).collect())
}

/// An HTTP/1.1 GET for readiness checks (hyper's client: chunked and close-delimited
/// bodies, keep-alive answered correctly): the body when the status is 2xx, at most
/// [`EXEC_OUTPUT_BYTES_MAX`] bytes of it. It connects where [`http_get_target`] says
/// (`localhost` is the replica's container at `container_ip`, the engine's address
/// for it), never to the peer's loopback or a metadata address. Bounded by
/// [`HTTP_GET_TIMEOUT`], name resolution included.
pub async fn http_get(url: &str, container_ip: Option<&str>) -> Result<String, String> {
    let (host, port, path) = split_url(url)?;
    let failed = |e: &dyn std::fmt::Display| format!("http-get {url}: {e}");
    let authority = match (port, host.contains(':')) {
        (80, false) => host.clone(),
        (80, true) => format!("[{host}]"),
        (_, false) => format!("{host}:{port}"),
        (_, true) => format!("[{host}]:{port}"),
    };
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::USER_AGENT, "monkd")
        .body(http_body_util::Empty::<hyper::body::Bytes>::new())
        .map_err(|e| failed(&e))?;
    let mut driver = None;
    let container_ip = container_ip.and_then(|ip| ip.parse::<IpAddr>().ok());
    let exchange = async {
        let resolved = resolve(&host, port).await.map_err(|e| failed(&e))?;
        let target = http_get_target(&host, container_ip, &resolved).map_err(|e| failed(&e))?;
        let (mut sender, connection) = http1_connect((target, port))
            .await
            .map_err(|e| failed(&e))?;
        driver = Some(connection);
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

/// A new HTTP/1.1 client connection to `target`: its sender, and the task driving
/// the connection (abort it once the exchange is over).
pub(crate) async fn http1_connect<B>(
    target: impl tokio::net::ToSocketAddrs,
) -> Result<
    (
        hyper::client::conn::http1::SendRequest<B>,
        tokio::task::JoinHandle<Result<(), hyper::Error>>,
    ),
    String,
>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = tokio::net::TcpStream::connect(target)
        .await
        .map_err(|e| e.to_string())?;
    let io = hyper_util::rt::TokioIo::new(stream);
    let (sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    Ok((sender, tokio::spawn(connection)))
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
    let (result, calls) = evaluate_code("readiness code", &check.code, variables, known);
    (result.map(|v| v.map(|v| v.is_truthy())), calls)
}

/// One evaluation round of `code` (a readiness check or an action): `Ok(Some(value))`
/// when decided, `Ok(None)` when `exec` answers are missing (listed in the second
/// value), `Err` for a broken script.
pub fn evaluate_code(
    what: &str,
    code: &str,
    variables: &BTreeMap<String, String>,
    known: &HashMap<ExecCall, Result<String, String>>,
) -> (Result<Option<Value>, String>, Vec<ExecCall>) {
    let code = code.trim();
    let code = code.strip_prefix("<-").unwrap_or(code).trim();
    let script = match parse(code) {
        Ok(s) => s,
        Err(e) => return (Err(format!("{what} does not parse: {e}")), Vec::new()),
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
        Ok(value) => (Ok(Some(value)), Vec::new()),
        Err(e) => (Err(e.to_string()), Vec::new()),
    }
}

/// Evaluates `code` against one replica's containers (`containers`, of `path`),
/// running the `exec` calls it makes in them and `http-get` as seen from the replica,
/// round after round, until it decides (at most [`CHECK_ROUNDS_MAX`] rounds).
pub async fn evaluate_with_exec<R: crate::executor::ContainerRuntime + ?Sized>(
    runtime: &R,
    path: &str,
    what: &str,
    code: &str,
    variables: &BTreeMap<String, String>,
    containers: &[&crate::executor::Observed],
) -> Result<Value, String> {
    let mut known = HashMap::new();
    for _ in 0..CHECK_ROUNDS_MAX {
        let (result, calls) = evaluate_code(what, code, variables, &known);
        if calls.is_empty() {
            return result.map(|v| v.unwrap_or(Value::Nil));
        }
        for (container, command) in calls {
            let answer = if container == HTTP_GET {
                // `localhost` means the replica's own container.
                let ip = containers.iter().find_map(|o| o.ip.clone());
                let url = command.first().cloned().unwrap_or_default();
                http_get(&url, ip.as_deref()).await
            } else {
                match containers
                    .iter()
                    .find(|o| o.key.as_ref().is_some_and(|k| k.container == container))
                {
                    Some(o) => runtime
                        .exec(&o.id, command.clone())
                        .await
                        .map_err(|e| e.to_string()),
                    None => Err(format!("exec: no container {container:?} in {path}")),
                }
            };
            known.insert((container, command), answer);
        }
    }
    Err(format!(
        "{what} needs more than {CHECK_ROUNDS_MAX} rounds of exec"
    ))
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
    use proptest::prelude::*;

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
        // An IPv6 host is bracketed.
        let split = ["http://[fd00::2]:8080/x", "http://[::1]"].map(|u| split_url(u).unwrap());
        assert_eq!(
            split,
            [
                ("fd00::2".into(), 8080, "/x".into()),
                ("::1".into(), 80, "/".into())
            ]
        );
        assert!(split_url("http://[::1/").unwrap_err().contains("unclosed"));
    }

    /// A check ran from `monkd`'s own network: `localhost` without a container address
    /// was the host's loopback, and any URL reached the cloud metadata service.
    #[tokio::test]
    async fn http_get_never_reaches_the_peers_loopback_or_metadata() {
        let (port, server) = serve(&["HTTP/1.0 200 OK\r\n\r\nhost secret"]).await;
        for (url, why) in [
            (
                format!("http://localhost:{port}/"),
                "no address on its network",
            ),
            (
                format!("http://127.0.0.1:{port}/"),
                "no address on its network",
            ),
            (
                format!("http://0.0.0.0:{port}/"),
                "no address on its network",
            ),
            (format!("http://[::1]:{port}/"), "no address on its network"),
            (
                "http://169.254.169.254/latest/meta-data/".into(),
                "may not reach",
            ),
            ("http://[fe80::1]/".into(), "may not reach"),
            ("http://[::ffff:169.254.169.254]/".into(), "may not reach"),
            ("http://100.100.100.200/".into(), "may not reach"),
        ] {
            let err = http_get(&url, None).await.unwrap_err();
            assert!(err.contains(why), "{url}: {err}");
        }
        // A name is resolved on the peer and judged by its addresses.
        let metadata = IpAddr::from([169, 254, 169, 254]);
        let err = http_get_target("metadata.google.internal", None, &[metadata]).unwrap_err();
        assert!(err.contains("may not reach"), "{err}");
        let lan = IpAddr::from([10, 0, 0, 7]);
        assert_eq!(http_get_target("db", None, &[metadata, lan]), Ok(lan));
        assert!(!server.is_finished(), "something connected to the host");
        server.abort();
    }

    fn any_ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(IpAddr::from),
            any::<[u16; 8]>().prop_map(IpAddr::from),
            Just(IpAddr::from([127, 0, 0, 1])),
            Just(IpAddr::from([169, 254, 169, 254])),
            Just(IpAddr::from([0, 0, 0, 0])),
            Just("::1".parse().unwrap()),
            Just("::ffff:127.0.0.1".parse().unwrap()),
            Just("fe80::1".parse().unwrap()),
        ]
    }

    proptest! {
        /// Whatever the script asks and names resolve to, a check connects to the
        /// replica's own address or to an address that is neither loopback,
        /// unspecified, link-local nor metadata; `localhost` is only ever the replica.
        #[test]
        fn http_get_targets_are_the_replica_or_not_forbidden(
            host in prop_oneof![
                Just("localhost".to_string()),
                "[a-z]{1,8}(\\.[a-z]{1,5})?",
                any_ip().prop_map(|ip| ip.to_string()),
            ],
            container_ip in proptest::option::of(any_ip()),
            resolved in proptest::collection::vec(any_ip(), 0..4),
        ) {
            if let Ok(ip) = http_get_target(&host, container_ip, &resolved) {
                prop_assert!(Some(ip) == container_ip || !forbidden_target(ip));
                if host == "localhost" {
                    prop_assert_eq!(Some(ip), container_ip);
                }
            }
        }
    }

    /// A server on the host's loopback answering one connection per reply, in order.
    async fn serve(replies: &'static [&'static str]) -> (u16, tokio::task::JoinHandle<()>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            for reply in replies {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 256];
                let _ = s.read(&mut buf).await;
                s.write_all(reply.as_bytes()).await.unwrap();
            }
        });
        (port, server)
    }

    #[tokio::test]
    async fn http_get_returns_the_body_of_a_2xx_and_fails_otherwise() {
        let (port, _server) = serve(&[
            "HTTP/1.0 200 OK\r\n\r\nhealthy",
            "HTTP/1.0 503 Busy\r\n\r\nno",
        ])
        .await;
        let url = format!("http://localhost:{port}/health");
        assert_eq!(http_get(&url, Some("127.0.0.1")).await.unwrap(), "healthy");
        assert!(http_get(&url, Some("127.0.0.1"))
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
        assert_eq!(
            http_get(&url, Some("127.0.0.1")).await.unwrap(),
            "hello world"
        );
    }
}
