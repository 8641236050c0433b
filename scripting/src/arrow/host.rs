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

/// Supplies host operators. `op` is the operator's canonical name (aliases are
/// resolved first); `args` are its inputs in stack order (deepest first), i.e.
/// the same order as written in `op(a, b)`.
pub trait Host {
    fn call(&mut self, op: &str, args: &[Value]) -> Result<Value, HostError>;
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
    fn call(&mut self, op: &str, _args: &[Value]) -> Result<Value, HostError> {
        Err(HostError::Offline { op: op.to_string() })
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
    fn call(&mut self, op: &str, args: &[Value]) -> Result<Value, HostError> {
        let obj = |pairs: &[(&str, Value)]| {
            Value::object(
                pairs
                    .iter()
                    .map(|(k, v)| (std::sync::Arc::from(*k), v.clone()))
                    .collect(),
            )
        };
        let value = match op {
            "connection-hostname" | "connection-domain-name" => {
                Value::str(&format!("{}.monk", text(args, 0)))
            }
            "get-hostname" | "container-domain-name" => Value::str(&format!(
                "{}.monk",
                args.iter()
                    .map(Value::to_text)
                    .collect::<Vec<_>>()
                    .join("-")
                    .replace('/', "-")
            )),
            "container-name" => Value::str(&format!("runnable_{}", text(args, 0))),
            "connection-port" | "connection-public-port" | "service-port" => Value::Int(5432),
            "connection-ip"
            | "connection-public-ip"
            | "peer-ip-address"
            | "ip-address-public"
            | "service-public-ip"
            | "get-resolver-ip" => Value::str("10.0.0.2"),
            "connection-target" | "connection" | "connection-user" => {
                Value::str(&format!("ns/{}", text(args, 0)))
            }
            "entity" => obj(&[
                ("name", Value::str(&text(args, 0))),
                ("port", Value::Int(5432)),
            ]),
            "entity-state" => obj(&[
                ("address", Value::str("10.0.0.2")),
                ("port", Value::Int(5432)),
            ]),
            "secret" => Value::str(&format!("<secret {}>", text(args, 0))),
            "http-get" | "http-post" => Value::str("ok"),
            "http-get-service" => obj(&[("status", Value::Int(200)), ("body", Value::str("ok"))]),
            "exec" => Value::str("ok\n"),
            "domain-name" => Value::str("node.example.com"),
            "runnable-peers" | "runnable-peers-public-ips" => {
                Value::array(vec![Value::str("10.0.0.2"), Value::str("10.0.0.3")])
            }
            "random-uuid" => Value::str("00000000-0000-4000-8000-000000000000"),
            "random" => args.first().cloned().unwrap_or(Value::Float(0.5)),
            "metric" => Value::Float(2.0),
            "cpu" => Value::Float(0.5),
            "provider" => obj(&[
                ("name", Value::str(&text(args, 0))),
                ("project", Value::str("my-project")),
            ]),
            "ssl-certificate" => Value::str("-----BEGIN CERTIFICATE-----"),
            "ssl-private-key" => Value::str("-----BEGIN PRIVATE KEY-----"),
            "set" => args.first().cloned().unwrap_or(Value::Nil),
            "act" | "wait-for" | "rpc-call" => Value::Nil,
            _ => return Err(HostError::Unsupported { op: op.to_string() }),
        };
        Ok(value)
    }
}
