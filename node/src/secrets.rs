//! Secrets: set (sealed by the receiving peer, so only sealed bytes enter the log), read
//! back by an operator, and resolved for a workload by the executor, which enforces
//! `permitted-secrets`.
//!
//! Scope rules (Monk's): a secret scoped to a runnable's path is readable by that
//! runnable; a global secret only by runnables whose `permitted-secrets` map names it
//! (`permitted-secrets: {db-password: true}`).

use std::collections::BTreeMap;

use monk_scripting::tree::Tree;
use monk_statemachine::state::secret_key;
use monk_statemachine::{Applied, Command, Secret, SecretScope};

use crate::keys::{ClusterKey, SECRET_VALUE_BYTES_MAX};
use crate::node::{Node, NodeError, NodeResult};

fn no_key() -> NodeError {
    NodeError::FailedPrecondition(
        "this peer holds no cluster key (its data dir predates secrets, or it is not in a cluster); use a peer that has one".into(),
    )
}

fn key_of(node: &Node) -> NodeResult<ClusterKey> {
    node.cluster_key()?.ok_or_else(no_key)
}

/// `global` or the path a secret is scoped to.
pub fn scope_of(path: &str) -> SecretScope {
    match path.trim_start_matches('/') {
        "" => SecretScope::Global,
        p => SecretScope::Entity(p.to_string()),
    }
}

/// Seals `value` on this peer and commits it; returns the log index.
pub async fn set(
    node: &Node,
    actor: String,
    name: &str,
    scope: SecretScope,
    value: &str,
) -> NodeResult<u64> {
    if value.len() > SECRET_VALUE_BYTES_MAX {
        return Err(NodeError::InvalidArgument(format!(
            "secret {name} is {} bytes; at most {SECRET_VALUE_BYTES_MAX}",
            value.len()
        )));
    }
    let sealed = key_of(node)?.seal(&secret_key(name, &scope), value.as_bytes())?;
    let command = Command::SecretSet {
        name: name.to_string(),
        scope,
        sealed,
    };
    let outcome = node.propose(node.stamp(actor, command)).await?;
    match outcome.applied {
        Applied::Accepted { .. } => Ok(outcome.index),
        Applied::Rejected { reason } => Err(NodeError::InvalidArgument(reason.to_string())),
    }
}

/// Opens one stored secret.
fn open(key: &ClusterKey, secret: &Secret) -> Result<String, String> {
    let bytes = key
        .open(&secret_key(&secret.name, &secret.scope), &secret.sealed)
        .map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|_| format!("secret {} is not UTF-8 text", secret.name))
}

/// The value of a secret as this peer's state holds it (call after linearizing).
pub fn get(node: &Node, name: &str, scope: &SecretScope) -> NodeResult<String> {
    let key = key_of(node)?;
    let shared = node.shared_state();
    let guard = shared.read().unwrap_or_else(|p| p.into_inner());
    let secret = guard.state.secret(name, scope).ok_or_else(|| {
        NodeError::InvalidArgument(format!("no secret {name} ({})", scope_text(scope)))
    })?;
    open(&key, secret).map_err(NodeError::Internal)
}

fn scope_text(scope: &SecretScope) -> String {
    match scope {
        SecretScope::Global => "global".into(),
        SecretScope::Entity(p) => format!("scoped to {p}"),
    }
}

/// Whether `definition` lists `name` in `permitted-secrets` (`{name: true}`, or a list).
fn permitted(definition: &Tree, name: &str) -> bool {
    match definition.get("permitted-secrets") {
        Some(Tree::Map(entries)) => entries
            .iter()
            .any(|(k, v)| k == name && !matches!(v, Tree::Bool(false) | Tree::Null)),
        Some(Tree::Seq(items)) => items.iter().any(|i| i.as_str() == Some(name)),
        _ => false,
    }
}

/// Secrets as an executor sees them during one pass: the sealed values of the state and
/// this peer's key. Opening happens only for secrets a runnable asks for and may read.
pub struct WorkloadSecrets {
    pub sealed: BTreeMap<String, Secret>,
    pub key: Option<ClusterKey>,
}

impl WorkloadSecrets {
    /// The value of secret `name` for the runnable at `path` with `definition`.
    pub fn resolve(&self, path: &str, definition: &Tree, name: &str) -> Result<String, String> {
        let scoped = self
            .sealed
            .get(&secret_key(name, &SecretScope::Entity(path.to_string())));
        let secret = match scoped {
            Some(s) => s,
            None => {
                let global = self
                    .sealed
                    .get(&secret_key(name, &SecretScope::Global))
                    .ok_or_else(|| {
                        format!("no secret {name} (neither scoped to {path} nor global)")
                    })?;
                if !permitted(definition, name) {
                    return Err(format!(
                        "{path} may not read the global secret {name}: add `permitted-secrets: {{{name}: true}}`"
                    ));
                }
                global
            }
        };
        self.open(secret)
    }

    /// The value of the global secret `name` for the engine itself (a registry's
    /// password, `monk registry add`): no runnable reads it, so `permitted-secrets`
    /// does not apply.
    pub fn open_global(&self, name: &str) -> Result<String, String> {
        let secret = self
            .sealed
            .get(&secret_key(name, &SecretScope::Global))
            .ok_or_else(|| {
                format!("no global secret {name} (set it: `monk secrets add -g {name}=VALUE`)")
            })?;
        self.open(secret)
    }

    fn open(&self, secret: &Secret) -> Result<String, String> {
        let key = self.key.as_ref().ok_or_else(|| {
            "this peer holds no cluster key, so it cannot open secrets".to_string()
        })?;
        open(key, secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed(key: &ClusterKey, name: &str, scope: SecretScope, value: &str) -> (String, Secret) {
        let k = secret_key(name, &scope);
        let sealed = key.seal(&k, value.as_bytes()).unwrap();
        (
            k,
            Secret {
                name: name.into(),
                scope,
                sealed,
                set_at_index: 1,
            },
        )
    }

    #[test]
    fn scoped_secrets_are_readable_and_global_ones_need_permission() {
        let key = ClusterKey::generate().unwrap();
        let secrets = WorkloadSecrets {
            sealed: BTreeMap::from([
                sealed(&key, "db", SecretScope::Global, "global-pw"),
                sealed(&key, "api", SecretScope::Entity("ns/app".into()), "scoped"),
            ]),
            key: Some(key),
        };
        let plain = Tree::Map(vec![]);
        let allowed = Tree::Map(vec![(
            "permitted-secrets".into(),
            Tree::Map(vec![("db".into(), Tree::Bool(true))]),
        )]);
        assert_eq!(secrets.resolve("ns/app", &plain, "api").unwrap(), "scoped");
        let refused = secrets.resolve("ns/app", &plain, "db").unwrap_err();
        assert!(
            refused.contains("permitted-secrets: {db: true}"),
            "{refused}"
        );
        assert_eq!(
            secrets.resolve("ns/app", &allowed, "db").unwrap(),
            "global-pw"
        );
        assert!(secrets.resolve("ns/other", &plain, "api").is_err());
        let missing = secrets.resolve("ns/app", &allowed, "nope").unwrap_err();
        assert!(missing.contains("no secret nope"), "{missing}");
    }
}
