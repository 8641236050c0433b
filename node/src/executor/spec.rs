//! From an assignment (a replica the state machine placed on this peer) to the
//! containers it wants: the runnable's spec evaluated with [`RunHost`] (the host
//! operators container fields may call at run time), mounted secrets as files, the
//! labels that let a restarted peer adopt what it finds, names and DNS aliases on the
//! peer's container network. The peer's admission policy ([`super::policy`]) is
//! checked here, so a refused replica fails before anything is created, and
//! `${monk-volume-path}` points at the peer's volume root unless the runnable says
//! otherwise. Pure apart from decrypting secrets with the key it is given and following
//! host paths' symlinks on this machine.

use std::collections::BTreeMap;

use monk_scripting::arrow::host::{Host, HostError, HostOp};
use monk_scripting::arrow::value::Value;
use monk_scripting::monkscript::runtime::{runnable_spec, ContainerSpec};
use monk_statemachine::view::Assignment;
use monk_statemachine::PeerId;
use sha2::{Digest, Sha256};

use super::plan::{ContainerKey, Wanted};
use super::policy::{self, AdmissionPolicy, VOLUME_PATH_VARIABLES};
use crate::secrets::WorkloadSecrets;

/// Label keys every managed container carries.
pub mod label {
    pub const CLUSTER: &str = "io.monk.cluster";
    pub const PEER: &str = "io.monk.peer";
    pub const WORKLOAD: &str = "io.monk.workload";
    pub const REPLICA: &str = "io.monk.replica";
    pub const CONTAINER: &str = "io.monk.container";
    pub const GENERATION: &str = "io.monk.generation";
    pub const SPEC: &str = "io.monk.spec";
}

/// Longest Docker container name we generate.
const CONTAINER_NAME_MAX: usize = 200;

/// Docker-safe container name: `monk-<cluster>-<peer>-<ns>-<name>-<replica>-<container>`.
pub fn container_name(cluster: &str, peer: PeerId, key: &ContainerKey) -> String {
    let raw = format!(
        "monk-{cluster}-{peer}-{}-{}-{}",
        key.path, key.replica, key.container
    );
    let mut name: String = raw
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '_' | '.' | '-' => c,
            _ => '-',
        })
        .collect();
    name.truncate(CONTAINER_NAME_MAX);
    name
}

/// The container network a peer's executor owns on its engine. Per peer, not per
/// cluster: Docker allows two networks with one name, so peers sharing an engine
/// would otherwise race to create duplicates.
pub fn network_name(cluster: &str, peer: PeerId) -> String {
    format!("monk-{cluster}-{peer}")
}

/// DNS-safe label: lowercase letters, digits and `-`.
fn dns_label(text: &str) -> String {
    let label: String = text
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    label.trim_matches('-').to_string()
}

/// The DNS name of a runnable on the container network: `hello/web` → `web.hello.monk`.
/// Every container of every replica carries it, so the engine's DNS answers with all
/// of them.
pub fn runnable_hostname(path: &str) -> String {
    let mut labels: Vec<String> = path.split('/').map(dns_label).collect();
    labels.reverse();
    labels.push("monk".into());
    labels.join(".")
}

/// The DNS name of one container of a runnable: `main.web.hello.monk`.
pub fn container_hostname(path: &str, container: &str) -> String {
    format!("{}.{}", dns_label(container), runnable_hostname(path))
}

/// Short hash of a container spec: a changed spec means a new container.
pub fn spec_hash(spec: &ContainerSpec) -> String {
    let json = serde_json::to_vec(spec).unwrap_or_default();
    hex::encode(&Sha256::digest(&json)[..8])
}

/// Host operators available to container fields at run time: names on the cluster's
/// container network, and secrets. Operators that need other parts of the node (ports
/// of other workloads, HTTP) are refused with a clear error for now.
pub(crate) struct RunHost<'a> {
    pub path: &'a str,
    pub definition: &'a monk_scripting::tree::Tree,
    /// `None` when placing (see `admission.rs`): placement never reads a secret, and
    /// `secret(name)` gives the placeholder `<secret name>`.
    pub secrets: Option<&'a WorkloadSecrets>,
    /// The other workloads the cluster runs (`connection-port`, `connection-ip`).
    pub cluster: &'a Cluster,
}

/// What container fields may read of the other workloads: each one's definition and
/// its containers' addresses, from the replicated state.
#[derive(Clone, Debug, Default)]
pub struct Cluster {
    pub definitions: BTreeMap<String, monk_scripting::tree::Tree>,
    pub addresses: BTreeMap<String, Vec<std::net::Ipv4Addr>>,
    /// Every entity instance the cluster runs (`entity`, `entity-state`): its
    /// resolved definition and saved state (JSON text), as the log holds them.
    pub entities: BTreeMap<String, (monk_scripting::tree::Tree, Option<String>)>,
}

impl Cluster {
    /// What the runnables `sources` (path, definition) may read of the others: the
    /// targets of their connections, each as it runs, or as loaded (inheritance
    /// resolved) when it does not run yet: a target's service port is a property of
    /// its definition, known before it runs.
    pub fn of<'a>(
        state: &monk_statemachine::State,
        sources: impl IntoIterator<Item = (&'a str, &'a monk_scripting::tree::Tree)>,
    ) -> Cluster {
        let mut cluster = Cluster::default();
        let lookup = |p: &str| state.definition(p);
        for (path, definition) in sources {
            for target in connection_targets(path, definition) {
                if cluster.definitions.contains_key(&target) {
                    continue;
                }
                let (definition, mut addresses) = match state.workloads().get(&target) {
                    Some(w) => (w.definition.clone(), w.addresses().collect::<Vec<_>>()),
                    None => match monk_scripting::monkscript::resolve::resolve(&target, &lookup) {
                        Ok(resolved) => (resolved, Vec::new()),
                        Err(_) => continue,
                    },
                };
                addresses.sort();
                cluster.addresses.insert(target.clone(), addresses);
                cluster.definitions.insert(target, definition);
            }
        }
        for w in state.workloads().values() {
            if let Some(life) = &w.entity {
                let saved = (w.definition.clone(), life.state.clone());
                cluster.entities.insert(w.path.clone(), saved);
            }
        }
        cluster
    }
}

/// A literal port, or `$var` / `<- $var` naming a variable of `definition` whose
/// value (or default) is a literal port.
fn port_of(
    value: &monk_scripting::tree::Tree,
    definition: &monk_scripting::tree::Tree,
) -> Option<i64> {
    use monk_scripting::tree::Tree;
    match value {
        Tree::Int(n) => Some(*n),
        Tree::Str(text) => {
            let text = text.trim();
            if let Ok(n) = text.parse() {
                return Some(n);
            }
            let name = text.trim_start_matches("<-").trim().strip_prefix('$')?;
            let variable = definition.get("variables")?.get(name)?;
            let value = match variable {
                Tree::Map(_) => variable.get("value").or_else(|| variable.get("default"))?,
                other => other,
            };
            match value {
                Tree::Str(s) if s.trim().starts_with('$') || s.trim().starts_with("<-") => None,
                other => port_of(other, definition),
            }
        }
        _ => None,
    }
}

impl RunHost<'_> {
    /// The entity instance `entity(path)`/`entity-state(path)` name: the path as
    /// given (relative to this runnable's namespace), which must be running.
    fn entity(
        &self,
        op: HostOp,
        path: &str,
    ) -> Result<&(monk_scripting::tree::Tree, Option<String>), HostError> {
        let namespace = self.path.rsplit_once('/').map_or("", |(ns, _)| ns);
        let path = monk_scripting::monkscript::model::normalize_path(path, namespace);
        if path.is_empty() {
            return Err(HostError::Failed(format!(
                "`{}` needs an entity path here ({} is not an entity)",
                op.name(),
                self.path
            )));
        }
        self.cluster.entities.get(&path).ok_or_else(|| {
            HostError::Failed(format!(
                "`{}`: no entity instance {path} runs (monk run {path} first)",
                op.name()
            ))
        })
    }

    /// `entity-state(path)`: the instance's saved state (`{}` before any verb saved
    /// one); `entity(path)`: its definition.
    fn entity_value(&self, op: HostOp, path: &str) -> Result<Value, HostError> {
        use monk_scripting::arrow::VALUE_NESTING_LEVELS_MAX;
        let (definition, saved) = self.entity(op, path)?;
        let value = match op {
            HostOp::EntityState => {
                Value::parse_json(saved.as_deref().unwrap_or("{}"), VALUE_NESTING_LEVELS_MAX)
            }
            _ => Value::from_tree(definition, VALUE_NESTING_LEVELS_MAX),
        };
        value.map_err(|e| HostError::Failed(format!("`{}` of {path}: {e}", op.name())))
    }

    /// The runnable a connection of this definition points at.
    fn connection_target(&self, name: &str) -> Result<String, HostError> {
        connection_target(self.path, self.definition, name).map_err(HostError::Failed)
    }

    /// `connection-port(name)`: the port of the service the connection names (or the
    /// target's only service).
    fn connection_port(&self, name: &str) -> Result<Value, HostError> {
        let target = self.connection_target(name)?;
        let failed =
            |why: String| HostError::Failed(format!("connection {name:?} ({target}): {why}"));
        let definition = self.cluster.definitions.get(&target).ok_or_else(|| {
            failed("the target is not running, so its services are unknown".into())
        })?;
        let wanted = self
            .definition
            .get("connections")
            .and_then(|c| c.get(name))
            .and_then(|c| c.get("service"))
            .and_then(|s| s.as_str());
        let services = match definition.get("services") {
            Some(monk_scripting::tree::Tree::Map(services)) => services,
            _ => return Err(failed("the target defines no services".into())),
        };
        let service =
            match (wanted, services.as_slice()) {
                (Some(wanted), _) => services
                    .iter()
                    .find(|(n, _)| n == wanted)
                    .map(|(_, s)| s)
                    .ok_or_else(|| failed(format!("the target has no service {wanted:?}")))?,
                (None, [(_, only)]) => only,
                (None, _) => return Err(failed(
                    "the target has several services and the connection names none (`service:`)"
                        .into(),
                )),
            };
        let port = service
            .get("port")
            .ok_or_else(|| failed("the service gives no port".into()))?;
        port_of(port, definition).map(Value::Int).ok_or_else(|| {
            failed(format!(
                "the service's port {port:?} is not a number monk can read before the target runs"
            ))
        })
    }

    /// `connection-ip(name)`: the first address of the target's running containers.
    fn connection_ip(&self, name: &str) -> Result<Value, HostError> {
        let target = self.connection_target(name)?;
        self.cluster
            .addresses
            .get(&target)
            .and_then(|a| a.first())
            .map(|ip| Value::str(&ip.to_string()))
            .ok_or_else(|| {
                HostError::Failed(format!(
                    "connection {name:?} ({target}): no running container has an address yet"
                ))
            })
    }
}

/// The runnable that connection `name` of `definition` (the runnable at `path`) points
/// at, as a full path.
pub fn connection_target(
    path: &str,
    definition: &monk_scripting::tree::Tree,
    name: &str,
) -> Result<String, String> {
    let connection = definition
        .get("connections")
        .and_then(|c| c.get(name))
        .ok_or_else(|| format!("{path} has no connection {name:?}"))?;
    let target = ["runnable", "target"]
        .iter()
        .find_map(|k| connection.get(k).and_then(|t| t.as_str()))
        .ok_or_else(|| format!("connection {name:?} names no runnable or target"))?;
    let namespace = path.rsplit_once('/').map_or("", |(ns, _)| ns);
    Ok(monk_scripting::monkscript::model::normalize_path(
        target, namespace,
    ))
}

/// The runnables every connection of `definition` points at (those it names well).
pub fn connection_targets(path: &str, definition: &monk_scripting::tree::Tree) -> Vec<String> {
    let Some(monk_scripting::tree::Tree::Map(connections)) = definition.get("connections") else {
        return Vec::new();
    };
    connections
        .iter()
        .filter_map(|(name, _)| connection_target(path, definition, name).ok())
        .collect()
}

impl Host for RunHost<'_> {
    fn call(&mut self, op: HostOp, args: &[Value]) -> Result<Value, HostError> {
        let arg = |i: usize| args.get(i).map(Value::to_text).unwrap_or_default();
        match op {
            HostOp::ConnectionHostname => Ok(Value::str(&runnable_hostname(
                &self.connection_target(&arg(0))?,
            ))),
            HostOp::ConnectionTarget => Ok(Value::str(&self.connection_target(&arg(0))?)),
            HostOp::ConnectionPort => self.connection_port(&arg(0)),
            HostOp::ConnectionIp => self.connection_ip(&arg(0)),
            HostOp::Secret => match self.secrets {
                Some(secrets) => secrets
                    .resolve(self.path, self.definition, &arg(0))
                    .map(|v| Value::str(&v))
                    .map_err(HostError::Failed),
                None => Ok(Value::str(&format!("<secret {}>", arg(0)))),
            },
            HostOp::GetHostname | HostOp::ContainerDomainName => {
                let runnable = match arg(0) {
                    r if r.is_empty() => self.path.to_string(),
                    r => r.trim_start_matches('/').to_string(),
                };
                Ok(Value::str(&match args.len() {
                    0 | 1 => runnable_hostname(&runnable),
                    _ => container_hostname(&runnable, &arg(1)),
                }))
            }
            // Not answered at run time yet (they need the overlay, other workloads'
            // ports, HTTP, entities or actions): refused with the operator's name.
            HostOp::Entity | HostOp::EntityState => self.entity_value(op, &arg(0)),
            HostOp::ConnectionDomainName
            | HostOp::ConnectionPublicIp
            | HostOp::ConnectionPublicPort
            | HostOp::ConnectionUser
            | HostOp::Connection
            | HostOp::ServicePort
            | HostOp::ServicePublicIp
            | HostOp::RunnablePeers
            | HostOp::RunnablePeersPublicIps
            | HostOp::ContainerName
            | HostOp::Exec
            | HostOp::IpAddressPublic
            | HostOp::PeerIpAddress
            | HostOp::DomainName
            | HostOp::GetResolverIp
            | HostOp::SslCertificate
            | HostOp::SslPrivateKey
            | HostOp::Provider
            | HostOp::HttpGet
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

/// No pull credentials, for passes and tests that set none.
pub static NO_REGISTRIES: BTreeMap<String, monk_statemachine::RegistryCredential> = BTreeMap::new();

/// Builds the wanted containers of one assignment under the default admission
/// policy, or why it cannot run.
pub fn wanted_of(
    cluster: &str,
    peer: PeerId,
    a: &Assignment,
    secrets: &WorkloadSecrets,
) -> Result<Vec<Wanted>, String> {
    let policy = AdmissionPolicy::default();
    let peer_name = peer.to_string();
    let others = Cluster::default();
    let world = World {
        ready: BTreeMap::new(),
        secrets,
        publish_ip: None,
        policy: &policy,
        peer_name: &peer_name,
        cluster: &others,
        subnet: None,
        registry_pull: None,
        registries: &NO_REGISTRIES,
    };
    spec_of(cluster, peer, a, &world).map(|(wanted, _)| wanted)
}

/// Permission bits of a secret mounted as a file: readable by any user of the
/// container (an image may run as non-root), like Docker's own secrets.
pub const MOUNTED_SECRET_MODE: u32 = 0o444;

/// `containers.NAME.mounted-secrets: {secret: {path: /run/secrets/x}}` as files.
/// `unmount-on` is not honoured yet: the file stays for the container's life.
fn mounted_secrets(
    a: &Assignment,
    container: &str,
    secrets: &WorkloadSecrets,
) -> Result<Vec<monk_scripting::monkscript::runtime::FileSpec>, String> {
    let Some(monk_scripting::tree::Tree::Map(mounts)) = a
        .definition
        .get("containers")
        .and_then(|c| c.get(container))
        .and_then(|c| c.get("mounted-secrets"))
    else {
        return Ok(Vec::new());
    };
    let mut files = Vec::new();
    for (name, mount) in mounts {
        let at = format!("containers.{container}.mounted-secrets.{name}");
        let path = mount
            .get("path")
            .and_then(|p| p.as_str())
            .filter(|p| p.starts_with('/'))
            .ok_or_else(|| format!("{at}: `path` must be an absolute path"))?;
        let value = secrets
            .resolve(&a.path, &a.definition, name)
            .map_err(|e| format!("{at}: {e}"))?;
        files.push(monk_scripting::monkscript::runtime::FileSpec {
            name: format!("secret-{name}"),
            path: path.to_string(),
            mode: MOUNTED_SECRET_MODE,
            contents: value.into_bytes(),
        });
    }
    Ok(files)
}

/// The wanted containers of one assignment and its final variable values.
pub(super) fn spec_of(
    cluster: &str,
    peer: PeerId,
    a: &Assignment,
    world: &World,
) -> Result<(Vec<Wanted>, BTreeMap<String, String>), String> {
    let secrets = world.secrets;
    let mut host = RunHost {
        path: &a.path,
        definition: &a.definition,
        secrets: Some(secrets),
        cluster: world.cluster,
    };
    let overrides = with_volume_root(a, &world.policy.volume_root.display().to_string());
    let spec = runnable_spec(&a.path, &a.definition, &overrides, &mut host).map_err(|errors| {
        errors
            .iter()
            .map(|e| format!("{}: {}", e.at, e.message))
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    if spec.containers.is_empty() {
        return Err("the runnable defines no containers".into());
    }
    policy::check_with(
        world.policy,
        &spec,
        world.peer_name,
        &policy::resolve_on_host,
    )
    .map_err(|r| r.to_string())?;
    let mut spec = spec;
    for c in &mut spec.containers {
        c.image = crate::registry::cluster_image(&c.image, world.registry_pull.as_deref())?;
        c.files.extend(mounted_secrets(a, &c.name, secrets)?);
        for port in c.ports.iter_mut().filter(|p| p.host_ip.is_none()) {
            port.host_ip.clone_from(&world.publish_ip);
        }
    }
    let variables = spec.variables.clone();
    let wanted = spec
        .containers
        .into_iter()
        .map(|c| {
            let key = ContainerKey {
                path: a.path.clone(),
                replica: a.replica,
                container: c.name.clone(),
            };
            let hash = spec_hash(&c);
            let mut labels: BTreeMap<String, String> = c.labels.iter().cloned().collect();
            for (k, v) in [
                (label::CLUSTER, cluster.to_string()),
                (label::PEER, peer.to_string()),
                (label::WORKLOAD, a.path.clone()),
                (label::REPLICA, a.replica.to_string()),
                (label::CONTAINER, c.name.clone()),
                (label::GENERATION, a.generation.to_string()),
                (label::SPEC, hash.clone()),
            ] {
                labels.insert(k.to_string(), v);
            }
            Wanted {
                name: container_name(cluster, peer, &key),
                network: network_name(cluster, peer),
                // On the overlay, the peer's DNS answers these names for replicas on
                // every peer; the engine's own aliases would answer only local ones.
                aliases: match world.subnet {
                    Some(_) => Vec::new(),
                    None => vec![
                        runnable_hostname(&a.path),
                        container_hostname(&a.path, &c.name),
                    ],
                },
                subnet: world.subnet,
                key,
                generation: a.generation,
                spec_hash: hash,
                spec: c,
                labels,
            }
        })
        .collect();
    Ok((wanted, variables))
}

/// The assignment's `--set` values, plus the builtin volume path variables pointing at
/// this peer's volume root where neither `--set` nor the runnable gives them a value.
fn with_volume_root(a: &Assignment, root: &str) -> BTreeMap<String, String> {
    let mut overrides = a.overrides.clone();
    let declared = |name: &str| {
        a.definition
            .get("variables")
            .and_then(|v| v.get(name))
            .is_some()
    };
    for name in VOLUME_PATH_VARIABLES {
        if !overrides.contains_key(*name) && !declared(name) {
            overrides.insert(name.to_string(), root.to_string());
        }
    }
    overrides
}

/// Reads a container's identity back from its labels.
pub fn key_of(labels: &BTreeMap<String, String>) -> (Option<ContainerKey>, u64, String) {
    let key = match (
        labels.get(label::WORKLOAD),
        labels.get(label::REPLICA).and_then(|r| r.parse().ok()),
        labels.get(label::CONTAINER),
    ) {
        (Some(path), Some(replica), Some(container)) => Some(ContainerKey {
            path: path.clone(),
            replica,
            container: container.clone(),
        }),
        _ => None,
    };
    let generation = labels
        .get(label::GENERATION)
        .and_then(|g| g.parse().ok())
        .unwrap_or(0);
    let hash = labels.get(label::SPEC).cloned().unwrap_or_default();
    (key, generation, hash)
}

/// What a pass needs to know beyond this peer's assignments: which workloads are ready
/// for their dependents, and the secrets.
pub struct World<'a> {
    pub ready: BTreeMap<String, bool>,
    pub secrets: &'a WorkloadSecrets,
    /// Host address that published ports without one bind to (`monkd --publish-ip`);
    /// `None` binds every address.
    pub publish_ip: Option<String>,
    /// What this peer admits (`monkd --allow-*`, `--volume-root`).
    pub policy: &'a AdmissionPolicy,
    /// This peer's name, for the refusals `monk run` and `monk ps` show.
    pub peer_name: &'a str,
    /// The other workloads, for `connection-port` and `connection-ip`.
    pub cluster: &'a Cluster,
    /// The container subnet the overlay gave this peer, when it takes part in the
    /// overlay: its container network uses it, and containers resolve names through
    /// the peer's DNS at the subnet's gateway.
    pub subnet: Option<monk_statemachine::Ipv4Net>,
    /// Where the engine pulls cluster images (`registry.monk/...`) from: this peer's
    /// registry (`crate::registry::pull_address`), if it serves one.
    pub registry_pull: Option<String>,
    /// Pull credentials for outside registries, by canonical host (`monk registry add`).
    pub registries: &'a BTreeMap<String, monk_statemachine::RegistryCredential>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use monk_scripting::tree::Tree;

    /// `entity-state(path)` reads the saved state the log holds; `entity(path)` the
    /// instance's definition; an instance that does not run is a clear error.
    #[test]
    fn entity_operators_read_the_replicated_instance() {
        let mut cluster = Cluster::default();
        let definition = Tree::Map(vec![("name".into(), Tree::Str("shop".into()))]);
        cluster.entities.insert(
            "cloud/db".into(),
            (definition.clone(), Some(r#"{"address":"10.9.0.7"}"#.into())),
        );
        cluster
            .entities
            .insert("cloud/fresh".into(), (definition.clone(), None));
        let runnable = Tree::Map(vec![]);
        let mut host = RunHost {
            path: "cloud/app",
            definition: &runnable,
            secrets: None,
            cluster: &cluster,
        };
        let state = host
            .call(HostOp::EntityState, &[Value::str("cloud/db")])
            .expect("runs");
        assert_eq!(state.to_json(), r#"{"address":"10.9.0.7"}"#);
        let fresh = host
            .call(HostOp::EntityState, &[Value::str("/cloud/fresh")])
            .expect("runs");
        assert_eq!(fresh.to_json(), "{}");
        let entity = host
            .call(HostOp::Entity, &[Value::str("./db")])
            .expect("runs");
        assert_eq!(entity.to_json(), r#"{"name":"shop"}"#);
        let missing = host.call(HostOp::EntityState, &[Value::str("cloud/none")]);
        assert!(
            matches!(&missing, Err(HostError::Failed(why)) if why.contains("no entity instance cloud/none runs")),
            "{missing:?}"
        );
        let bare = host.call(HostOp::EntityState, &[]);
        assert!(
            matches!(&bare, Err(HostError::Failed(why)) if why.contains("cloud/app is not an entity")),
            "{bare:?}"
        );
    }
}
