//! The boundary between ArrowScript and the world.
//!
//! Operators that read or change anything outside the script (`http-get`,
//! `exec`, `secret`, `entity-state`, `connection-*`, `get-hostname`,
//! `random-uuid`, `act`, `wait-for`, `metric`, persistent `set`...) are marked
//! `host` in the operator table; the evaluator hands them to a [`Host`] by
//! canonical name with their arguments in order. The node supplies a real host;
//! [`OfflineHost`] (used by `monk eval`) refuses them all with a clear error, and
//! [`StubHost`] answers with fixed placeholder values so examples and tests can
//! run host operators deterministically.

use thiserror::Error;

use super::value::Value;

/// Declares [`HostOp`]: one variant per host operator, with its canonical name.
macro_rules! host_ops {
    ($($variant:ident => $name:literal,)*) => {
        /// Every operator a [`Host`] answers: the operators marked `host` in the operator
        /// table (`ops/table.rs`) and persistent `set`. A test keeps this list and the
        /// table equal, so a new host operator does not compile until every host
        /// (`StubHost` here, the node's `RunHost` and `CheckHost`) says what it does
        /// with it: their matches have no catch-all arm.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum HostOp {
            $($variant,)*
        }

        impl HostOp {
            /// Every host operator, in table order.
            pub const ALL: &'static [HostOp] = &[$(HostOp::$variant,)*];

            /// The operator's canonical name (`connection-hostname`).
            pub fn name(self) -> &'static str {
                match self {
                    $(HostOp::$variant => $name,)*
                }
            }

            /// The host operator with this canonical name.
            pub fn from_name(name: &str) -> Option<HostOp> {
                match name {
                    $($name => Some(HostOp::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

host_ops! {
    ConnectionTarget => "connection-target",
    ConnectionHostname => "connection-hostname",
    ConnectionPort => "connection-port",
    ConnectionDomainName => "connection-domain-name",
    ConnectionIp => "connection-ip",
    ConnectionPublicIp => "connection-public-ip",
    ConnectionPublicPort => "connection-public-port",
    ConnectionUser => "connection-user",
    Connection => "connection",
    Entity => "entity",
    EntityState => "entity-state",
    ServicePort => "service-port",
    ServicePublicIp => "service-public-ip",
    RunnablePeers => "runnable-peers",
    RunnablePeersPublicIps => "runnable-peers-public-ips",
    GetHostname => "get-hostname",
    ContainerDomainName => "container-domain-name",
    ContainerName => "container-name",
    Exec => "exec",
    IpAddressPublic => "ip-address-public",
    PeerIpAddress => "peer-ip-address",
    DomainName => "domain-name",
    GetResolverIp => "get-resolver-ip",
    SslCertificate => "ssl-certificate",
    SslPrivateKey => "ssl-private-key",
    Provider => "provider",
    Secret => "secret",
    HttpGet => "http-get",
    HttpPost => "http-post",
    HttpGetService => "http-get-service",
    RpcCall => "rpc-call",
    Act => "act",
    WaitFor => "wait-for",
    RandomUuid => "random-uuid",
    Random => "random",
    Metric => "metric",
    Cpu => "cpu",
    Set => "set",
}

impl std::fmt::Display for HostOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Supplies host operators. `args` are the operator's inputs in stack order (deepest
/// first), i.e. the same order as written in `op(a, b)`.
pub trait Host {
    fn call(&mut self, op: HostOp, args: &[Value]) -> Result<Value, HostError>;
}

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum HostError {
    /// There is no cluster to ask (offline evaluation).
    #[error("`{op}` needs a running cluster; it cannot run offline")]
    Offline { op: String },
    /// The host does not implement this operator.
    #[error("`{op}` is not supported here")]
    Unsupported { op: String },
    /// The operation ran and failed (HTTP error, secret not permitted...).
    #[error("{0}")]
    Failed(String),
}

/// The host for offline evaluation: every host operator fails.
#[derive(Clone, Copy, Debug, Default)]
pub struct OfflineHost;

impl Host for OfflineHost {
    fn call(&mut self, op: HostOp, _args: &[Value]) -> Result<Value, HostError> {
        Err(HostError::Offline {
            op: op.name().to_string(),
        })
    }
}

/// A deterministic stand-in: answers each host operator with a placeholder
/// derived from its arguments (`connection-hostname("db")` is `"db.monk"`,
/// `secret("k")` is `"<secret k>"`). Used by the operator examples.
#[derive(Clone, Copy, Debug, Default)]
pub struct StubHost;

fn text(args: &[Value], i: usize) -> String {
    args.get(i).map(Value::to_text).unwrap_or_default()
}

impl Host for StubHost {
    fn call(&mut self, op: HostOp, args: &[Value]) -> Result<Value, HostError> {
        let obj = |pairs: &[(&str, Value)]| {
            Value::object(
                pairs
                    .iter()
                    .map(|(k, v)| (std::sync::Arc::from(*k), v.clone()))
                    .collect(),
            )
        };
        let value = match op {
            HostOp::ConnectionHostname | HostOp::ConnectionDomainName => {
                Value::str(&format!("{}.monk", text(args, 0)))
            }
            HostOp::GetHostname | HostOp::ContainerDomainName => Value::str(&format!(
                "{}.monk",
                args.iter()
                    .map(Value::to_text)
                    .collect::<Vec<_>>()
                    .join("-")
                    .replace('/', "-")
            )),
            HostOp::ContainerName => Value::str(&format!("runnable_{}", text(args, 0))),
            HostOp::ConnectionPort | HostOp::ConnectionPublicPort | HostOp::ServicePort => {
                Value::Int(5432)
            }
            HostOp::ConnectionIp
            | HostOp::ConnectionPublicIp
            | HostOp::PeerIpAddress
            | HostOp::IpAddressPublic
            | HostOp::ServicePublicIp
            | HostOp::GetResolverIp => Value::str("10.0.0.2"),
            HostOp::ConnectionTarget | HostOp::Connection | HostOp::ConnectionUser => {
                Value::str(&format!("ns/{}", text(args, 0)))
            }
            HostOp::Entity => obj(&[
                ("name", Value::str(&text(args, 0))),
                ("port", Value::Int(5432)),
            ]),
            HostOp::EntityState => obj(&[
                ("address", Value::str("10.0.0.2")),
                ("port", Value::Int(5432)),
            ]),
            HostOp::Secret => Value::str(&format!("<secret {}>", text(args, 0))),
            HostOp::HttpGet | HostOp::HttpPost => Value::str("ok"),
            HostOp::HttpGetService => {
                obj(&[("status", Value::Int(200)), ("body", Value::str("ok"))])
            }
            HostOp::Exec => Value::str("ok\n"),
            HostOp::DomainName => Value::str("node.example.com"),
            HostOp::RunnablePeers | HostOp::RunnablePeersPublicIps => {
                Value::array(vec![Value::str("10.0.0.2"), Value::str("10.0.0.3")])
            }
            HostOp::RandomUuid => Value::str("00000000-0000-4000-8000-000000000000"),
            HostOp::Random => args.first().cloned().unwrap_or(Value::Float(0.5)),
            HostOp::Metric => Value::Float(2.0),
            HostOp::Cpu => Value::Float(0.5),
            HostOp::Provider => obj(&[
                ("name", Value::str(&text(args, 0))),
                ("project", Value::str("my-project")),
            ]),
            HostOp::SslCertificate => Value::str("-----BEGIN CERTIFICATE-----"),
            HostOp::SslPrivateKey => Value::str("-----BEGIN PRIVATE KEY-----"),
            HostOp::Set => args.first().cloned().unwrap_or(Value::Nil),
            HostOp::Act | HostOp::WaitFor | HostOp::RpcCall => Value::Nil,
        };
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arrow::ops::host_operators;

    #[test]
    fn host_ops_are_the_host_operators_of_the_table() {
        let mut table: Vec<&str> = host_operators().map(|op| op.name).collect();
        // Persistent `set` is a machine operator that stores through the host.
        table.push("set");
        table.sort_unstable();
        let mut ours: Vec<&str> = HostOp::ALL.iter().map(|op| op.name()).collect();
        ours.sort_unstable();
        assert_eq!(ours, table, "HostOp and the operator table disagree");
        for op in HostOp::ALL {
            assert_eq!(HostOp::from_name(op.name()), Some(*op));
        }
    }

    #[test]
    fn the_stub_answers_every_host_operator() {
        for op in HostOp::ALL {
            assert!(StubHost.call(*op, &[]).is_ok(), "{op}");
            assert!(OfflineHost.call(*op, &[]).is_err(), "{op}");
        }
    }
}
