//! The container executor: makes the containers on this peer match the replicas the
//! state machine placed here, and reports what it sees back into the log.
//!
//! Level-triggered and idempotent (design invariant 4): every pass reads the
//! assignments (a projection of the replicated state) and the containers the runtime
//! holds, computes a plan with the pure [`plan`], carries it out, and proposes a
//! `workload-report` only for replicas whose observed status changed. Containers carry
//! labels naming the cluster, peer, workload, replica, container, generation and a hash
//! of their spec, so a restarted `monkd` adopts what it finds instead of duplicating
//! it, and recreates exactly the containers whose spec changed.
//!
//! `monk stop` removes a replica's containers (host paths and volumes stay), so an
//! exited container of a running workload always means its process ended on its own;
//! the runtime's restart policy (from `restart:`) decides whether it comes back.

pub mod docker;
pub mod fake;
pub mod logs;
pub mod readiness;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;

use monk_scripting::arrow::host::{Host, HostError};
use monk_scripting::arrow::value::Value;
use monk_scripting::monkscript::runtime::{runnable_spec, ContainerSpec};
use monk_statemachine::view::{assignments, Assignment};
use monk_statemachine::{Command, Desired, InstanceStatus, PeerId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use crate::limits::{EXECUTOR_ACTION_TIMEOUT, EXECUTOR_TICK};
use crate::node::Node;
use crate::secrets::WorkloadSecrets;
use readiness::Memo;

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

/// Which replica a container belongs to, and which of its containers it is.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ContainerKey {
    pub path: String,
    pub replica: u32,
    pub container: String,
}

/// A container as the runtime reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    pub id: String,
    pub name: String,
    pub key: Option<ContainerKey>,
    pub generation: u64,
    pub spec_hash: String,
    pub state: RunState,
    /// When the container was created (seconds since the Unix epoch).
    pub created_unix: i64,
    /// Its address on the peer's container network, when the runtime tells it.
    pub ip: Option<String>,
    /// When its process last started (seconds since the Unix epoch), if known; a
    /// container the engine restarts gets a new start time, not a new creation time.
    pub started_unix: Option<i64>,
    /// How often the engine restarted it (restart policy).
    pub restarts: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunState {
    Created,
    Running,
    /// Exited with this code (if the runtime told it).
    Exited(Option<i64>),
    /// Restarting, paused, being removed...
    Other(String),
}

/// A container this peer should have.
#[derive(Clone, Debug, PartialEq)]
pub struct Wanted {
    pub key: ContainerKey,
    pub name: String,
    pub generation: u64,
    pub spec_hash: String,
    pub spec: ContainerSpec,
    pub labels: BTreeMap<String, String>,
    /// The cluster's container network, and this container's DNS names on it.
    pub network: String,
    pub aliases: Vec<String>,
}

/// One step of a plan.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Create and start (the image is checked first).
    Create(Box<Wanted>),
    Start {
        id: String,
        name: String,
    },
    /// Stop within the grace period, then remove.
    Remove {
        id: String,
        name: String,
        grace_secs: u64,
    },
}

/// What a container runtime must offer the executor. Docker implements it for real;
/// [`fake::FakeRuntime`] is a scriptable stand-in for simulations.
pub trait ContainerRuntime: Send + Sync + 'static {
    /// Every container labelled with this cluster and peer, running or not.
    fn list(
        &self,
        cluster: &str,
        peer: PeerId,
    ) -> impl Future<Output = Result<Vec<Observed>, String>> + Send;
    /// Makes sure the image is present (pulling it if the runtime can).
    fn ensure_image(&self, image: &str) -> impl Future<Output = Result<(), String>> + Send;
    /// Creates and starts a container; returns its id.
    fn create(&self, wanted: &Wanted) -> impl Future<Output = Result<String, String>> + Send;
    fn start(&self, id: &str) -> impl Future<Output = Result<(), String>> + Send;
    fn remove(&self, id: &str, grace_secs: u64) -> impl Future<Output = Result<(), String>> + Send;
    /// Runs a command in a running container; `Ok(stdout)` when it exits 0.
    fn exec(
        &self,
        id: &str,
        command: Vec<String>,
    ) -> impl Future<Output = Result<String, String>> + Send;
}

/// A replica counts as running once all its containers have been up this long, so a
/// process that exits at once is reported as exited, not briefly as running.
pub const RUNNING_AFTER_SECS: i64 = 2;
/// Default grace period before a stopped container is killed.
pub const STOP_GRACE_DEFAULT_SECS: u64 = 10;
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

/// The pure planner: given what should exist and what does, the actions that make them
/// equal. Running it again on the result plans nothing (idempotence).
pub fn plan(wanted: &[Wanted], observed: &[Observed]) -> Vec<Action> {
    let mut actions = Vec::new();
    let mut kept: BTreeSet<&ContainerKey> = BTreeSet::new();
    let by_key: BTreeMap<&ContainerKey, &Wanted> = wanted.iter().map(|w| (&w.key, w)).collect();
    // Running containers first, so a duplicate keeps the one that runs.
    let mut observed: Vec<&Observed> = observed.iter().collect();
    observed.sort_by_key(|o| (!matches!(o.state, RunState::Running), o.id.clone()));
    for o in observed {
        let matching = o.key.as_ref().and_then(|k| by_key.get(k)).filter(|w| {
            w.generation == o.generation && w.spec_hash == o.spec_hash && w.name == o.name
        });
        match matching {
            Some(w) if kept.insert(&w.key) => {
                if o.state == RunState::Created {
                    actions.push(Action::Start {
                        id: o.id.clone(),
                        name: o.name.clone(),
                    });
                }
            }
            _ => actions.push(Action::Remove {
                id: o.id.clone(),
                name: o.name.clone(),
                grace_secs: o
                    .key
                    .as_ref()
                    .and_then(|k| by_key.get(k))
                    .and_then(|w| w.spec.stop_grace_secs)
                    .unwrap_or(STOP_GRACE_DEFAULT_SECS),
            }),
        }
    }
    // Removals go before creations so a renamed container frees its name first.
    actions.sort_by_key(|a| !matches!(a, Action::Remove { .. }));
    for w in wanted {
        if !kept.contains(&w.key) {
            actions.push(Action::Create(Box::new(w.clone())));
        }
    }
    actions
}

/// The status of one replica from its containers, or the reason it cannot run.
pub fn replica_status(
    desired: Desired,
    wanted: &[&Wanted],
    observed: &[&Observed],
    failure: Option<&str>,
    now_unix: i64,
) -> (InstanceStatus, String) {
    if let Some(why) = failure {
        return (InstanceStatus::Failed, why.to_string());
    }
    if desired == Desired::Stopped {
        return match observed.is_empty() {
            true => (InstanceStatus::Stopped, String::new()),
            false => (InstanceStatus::Starting, "stopping".into()),
        };
    }
    let current = |w: &Wanted| {
        observed.iter().copied().find(|o| {
            o.key.as_ref() == Some(&w.key)
                && o.generation == w.generation
                && o.spec_hash == w.spec_hash
        })
    };
    let mut all_running = !wanted.is_empty();
    let mut restarts = Vec::new();
    for w in wanted {
        let seen = current(w);
        if let Some(o) = seen.filter(|o| o.restarts > 0) {
            restarts.push(format!(
                "{} restarted {} times",
                w.key.container, o.restarts
            ));
        }
        match seen {
            Some(o) if o.state == RunState::Running => {
                let up_since = o.started_unix.unwrap_or(o.created_unix);
                if now_unix - up_since < RUNNING_AFTER_SECS {
                    all_running = false;
                }
            }
            Some(Observed {
                state: RunState::Exited(code),
                restarts: n,
                ..
            }) => {
                let code = code.map_or("an unknown code".into(), |c| c.to_string());
                let mut why = format!("container {} exited with code {code}", w.key.container);
                if *n > 0 {
                    why.push_str(&format!(" after {n} restarts"));
                }
                return (InstanceStatus::Exited, why);
            }
            _ => all_running = false,
        }
    }
    let message = restarts.join("; ");
    match all_running {
        true => (InstanceStatus::Running, message),
        false => (InstanceStatus::Starting, message),
    }
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
}

impl RunHost<'_> {
    /// The runnable a connection of this definition points at.
    fn connection_target(&self, name: &str) -> Result<String, HostError> {
        let connection = self
            .definition
            .get("connections")
            .and_then(|c| c.get(name))
            .ok_or_else(|| {
                HostError::Failed(format!("{} has no connection {name:?}", self.path))
            })?;
        let target = ["runnable", "target"]
            .iter()
            .find_map(|k| connection.get(k).and_then(|t| t.as_str()))
            .ok_or_else(|| {
                HostError::Failed(format!("connection {name:?} names no runnable or target"))
            })?;
        let namespace = self.path.rsplit_once('/').map_or("", |(ns, _)| ns);
        Ok(monk_scripting::monkscript::model::normalize_path(
            target, namespace,
        ))
    }
}

impl Host for RunHost<'_> {
    fn call(&mut self, op: &str, args: &[Value]) -> Result<Value, HostError> {
        let arg = |i: usize| args.get(i).map(Value::to_text).unwrap_or_default();
        match op {
            "connection-hostname" => Ok(Value::str(&runnable_hostname(
                &self.connection_target(&arg(0))?,
            ))),
            "connection-target" => Ok(Value::str(&self.connection_target(&arg(0))?)),
            "secret" => match self.secrets {
                Some(secrets) => secrets
                    .resolve(self.path, self.definition, &arg(0))
                    .map(|v| Value::str(&v))
                    .map_err(HostError::Failed),
                None => Ok(Value::str(&format!("<secret {}>", arg(0)))),
            },
            "get-hostname" | "container-domain-name" => {
                let runnable = match arg(0) {
                    r if r.is_empty() => self.path.to_string(),
                    r => r.trim_start_matches('/').to_string(),
                };
                Ok(Value::str(&match args.len() {
                    0 | 1 => runnable_hostname(&runnable),
                    _ => container_hostname(&runnable, &arg(1)),
                }))
            }
            _ => Err(HostError::Unsupported { op: op.to_string() }),
        }
    }
}

/// Builds the wanted containers of one assignment, or why it cannot run.
pub fn wanted_of(
    cluster: &str,
    peer: PeerId,
    a: &Assignment,
    secrets: &WorkloadSecrets,
) -> Result<Vec<Wanted>, String> {
    let world = World {
        ready: BTreeMap::new(),
        secrets,
        publish_ip: None,
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
fn spec_of(
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
    };
    let spec =
        runnable_spec(&a.path, &a.definition, &a.overrides, &mut host).map_err(|errors| {
            errors
                .iter()
                .map(|e| format!("{}: {}", e.at, e.message))
                .collect::<Vec<_>>()
                .join("; ")
        })?;
    if spec.containers.is_empty() {
        return Err("the runnable defines no containers".into());
    }
    let mut spec = spec;
    for c in &mut spec.containers {
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
                aliases: vec![
                    runnable_hostname(&a.path),
                    container_hostname(&a.path, &c.name),
                ],
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
}

/// Runs (when due) the readiness check of a running replica; `ready`, or `running`
/// with the reason it is not ready yet.
async fn check_readiness<R: ContainerRuntime>(
    runtime: &R,
    a: &Assignment,
    check: &readiness::Check,
    variables: &BTreeMap<String, String>,
    containers: &[&Observed],
    memo: &mut Memo,
) -> (InstanceStatus, String) {
    let key = (a.path.clone(), a.replica, a.generation);
    let now = std::time::Instant::now();
    let since = *memo.running_since.entry(key.clone()).or_insert(now);
    if now.duration_since(since) < check.initial_delay {
        return (
            InstanceStatus::Running,
            "readiness check not started yet".into(),
        );
    }
    let due = memo
        .last_check
        .get(&key)
        .is_none_or(|(at, _, _)| now.duration_since(*at) >= check.period);
    if due {
        let mut known = std::collections::HashMap::new();
        let mut outcome = Err("readiness check needs too many exec rounds".to_string());
        for _ in 0..readiness::CHECK_ROUNDS_MAX {
            let (result, calls) = readiness::evaluate(check, variables, &known);
            if calls.is_empty() {
                outcome = result.map(|r| r.unwrap_or(false));
                break;
            }
            for (container, command) in calls {
                let answer = if container == readiness::HTTP_GET {
                    // `localhost` in a check means the replica's own container.
                    let ip = containers.iter().find_map(|o| o.ip.clone());
                    let url = command.first().cloned().unwrap_or_default();
                    readiness::http_get(&url, ip.as_deref()).await
                } else {
                    match containers
                        .iter()
                        .find(|o| o.key.as_ref().is_some_and(|k| k.container == container))
                    {
                        Some(o) => runtime.exec(&o.id, command.clone()).await,
                        None => Err(format!("exec: no container {container:?} in {}", a.path)),
                    }
                };
                known.insert((container, command), answer);
            }
        }
        let (ready, why) = match outcome {
            Ok(true) => (true, String::new()),
            Ok(false) => (
                false,
                "not ready: the readiness check returned false".into(),
            ),
            Err(e) => (false, format!("not ready: {e}")),
        };
        memo.last_check.insert(key.clone(), (now, ready, why));
    }
    match memo.last_check.get(&key) {
        Some((_, true, _)) => (InstanceStatus::Ready, String::new()),
        Some((_, false, why)) => (InstanceStatus::Running, why.clone()),
        None => (InstanceStatus::Running, String::new()),
    }
}

/// One reconcile pass for a peer: what it did and the reports it would propose.
#[derive(Debug, Default)]
pub struct Pass {
    pub actions: usize,
    pub errors: Vec<String>,
    pub reports: Vec<Command>,
}

/// Runs one pass against `runtime` for the given assignments.
pub async fn reconcile<R: ContainerRuntime>(
    runtime: &R,
    cluster: &str,
    peer: PeerId,
    assigned: &[Assignment],
    world: &World<'_>,
    memo: &mut Memo,
) -> Pass {
    let mut pass = Pass::default();
    let observed = match runtime.list(cluster, peer).await {
        Ok(o) => o,
        Err(e) => {
            pass.errors.push(format!("cannot list containers: {e}"));
            return pass;
        }
    };
    let mut wanted = Vec::new();
    let mut variables: BTreeMap<(String, u32), BTreeMap<String, String>> = BTreeMap::new();
    let mut failures: BTreeMap<(String, u32), String> = BTreeMap::new();
    let mut waiting: BTreeMap<(String, u32), String> = BTreeMap::new();
    for a in assigned {
        if a.desired == Desired::Stopped {
            continue;
        }
        let replica = (a.path.clone(), a.replica);
        let memo_key = (a.path.clone(), a.replica, a.generation);
        let started = observed.iter().any(|o| {
            o.generation == a.generation
                && o.key
                    .as_ref()
                    .is_some_and(|k| k.path == a.path && k.replica == a.replica)
        });
        let (deps, timeout) = readiness::wait_for(&a.path, &a.definition);
        let unready: Vec<&String> = deps
            .iter()
            .filter(|d| !world.ready.get(*d).copied().unwrap_or(false))
            .collect();
        if !started && !unready.is_empty() {
            let since = *memo
                .waiting_since
                .entry(memo_key)
                .or_insert_with(std::time::Instant::now);
            let names: Vec<&str> = unready.iter().map(|d| d.as_str()).collect();
            if since.elapsed() > timeout {
                failures.insert(
                    replica,
                    format!(
                        "{} not ready after {}s (depends.wait-for)",
                        names.join(", "),
                        timeout.as_secs()
                    ),
                );
            } else {
                waiting.insert(replica, format!("waiting for {}", names.join(", ")));
            }
            continue;
        }
        match spec_of(cluster, peer, a, world) {
            Ok((w, vars)) => {
                wanted.extend(w);
                variables.insert(replica, vars);
            }
            Err(why) => {
                failures.insert(replica, why);
            }
        }
    }
    for action in plan(&wanted, &observed) {
        pass.actions += 1;
        let result = match &action {
            Action::Remove {
                id,
                name,
                grace_secs,
            } => {
                info!(container = %name, "removing container");
                runtime.remove(id, *grace_secs).await
            }
            Action::Start { id, name } => {
                info!(container = %name, "starting container");
                runtime.start(id).await
            }
            Action::Create(w) => {
                let replica = (w.key.path.clone(), w.key.replica);
                let created = match runtime.ensure_image(&w.spec.image).await {
                    Err(e) => Err(format!("image {}: {e}", w.spec.image)),
                    Ok(()) => {
                        info!(container = %w.name, image = %w.spec.image, "creating container");
                        runtime.create(w).await
                    }
                };
                match created {
                    Ok(_) => Ok(()),
                    Err(e) => {
                        failures.insert(replica, e.clone());
                        Err(e)
                    }
                }
            }
        };
        if let Err(e) = result {
            warn!("executor: {e}");
            pass.errors.push(e);
        }
    }
    // Observe again after acting, and report what changed.
    let observed = runtime.list(cluster, peer).await.unwrap_or_default();
    for a in assigned {
        let mine_w: Vec<&Wanted> = wanted
            .iter()
            .filter(|w| w.key.path == a.path && w.key.replica == a.replica)
            .collect();
        let mine_o: Vec<&Observed> = observed
            .iter()
            .filter(|o| {
                o.key
                    .as_ref()
                    .is_some_and(|k| k.path == a.path && k.replica == a.replica)
            })
            .collect();
        let replica = (a.path.clone(), a.replica);
        let failure = failures.get(&replica).map(String::as_str);
        let (mut status, mut message) =
            replica_status(a.desired, &mine_w, &mine_o, failure, now_unix());
        if let Some(why) = waiting.get(&replica) {
            (status, message) = (InstanceStatus::Starting, why.clone());
        }
        if status == InstanceStatus::Running {
            if let Some(check) = readiness::readiness_check(&a.definition) {
                let vars = variables.get(&replica).cloned().unwrap_or_default();
                (status, message) = check_readiness(runtime, a, &check, &vars, &mine_o, memo).await;
            }
        }
        let now = (a.generation, status, message.clone());
        if a.reported.as_ref() != Some(&now) {
            pass.reports.push(Command::WorkloadReport {
                peer,
                path: a.path.clone(),
                replica: a.replica,
                generation: a.generation,
                status,
                message,
            });
        }
    }
    pass
}

/// Without a container engine, every running replica placed on this peer is reported
/// `failed` with the reason (once per generation and reason).
pub async fn report_engine_missing(node: &Node, why: &str) {
    let Some(peer) = node.peer_id().await else {
        return;
    };
    let assigned = {
        let shared = node.shared_state();
        let guard = shared.read().unwrap_or_else(|p| p.into_inner());
        assignments(&guard.state, peer)
    };
    let message = format!("no container engine on this peer: {why}");
    for a in assigned.iter().filter(|a| a.desired == Desired::Running) {
        let now = (a.generation, InstanceStatus::Failed, message.clone());
        if a.reported.as_ref() == Some(&now) {
            continue;
        }
        let report = Command::WorkloadReport {
            peer,
            path: a.path.clone(),
            replica: a.replica,
            generation: a.generation,
            status: InstanceStatus::Failed,
            message: message.clone(),
        };
        if let Err(e) = node
            .propose(node.stamp(format!("peer:{peer}/executor"), report))
            .await
        {
            warn!("executor cannot report: {e}");
        }
    }
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Runs the executor for `node` until the node shuts down.
pub async fn run<R: ContainerRuntime>(node: Arc<Node>, runtime: R) {
    let mut applied_seen = u64::MAX;
    let mut last_errors: Vec<String> = Vec::new();
    let mut ticks_since_pass = 0u32;
    let mut memo = Memo::default();
    loop {
        if node.is_shut_down() {
            return;
        }
        tokio::time::sleep(EXECUTOR_TICK).await;
        let Some(peer) = node.peer_id().await else {
            continue;
        };
        let (cluster, assigned, applied, sealed, ready) = {
            let shared = node.shared_state();
            let guard = shared.read().unwrap_or_else(|p| p.into_inner());
            let state = &guard.state;
            let Some(cluster) = state.cluster_name.clone() else {
                continue;
            };
            (
                cluster,
                assignments(state, peer),
                state.last_applied_index,
                state.secrets.clone(),
                readiness::ready_workloads(state),
            )
        };
        // Re-check the world at least every few ticks even when the state is quiet,
        // to notice containers that exited or were removed behind our back.
        ticks_since_pass += 1;
        if applied == applied_seen && ticks_since_pass < 3 {
            continue;
        }
        ticks_since_pass = 0;
        applied_seen = applied;
        let secrets = WorkloadSecrets {
            sealed,
            key: node.cluster_key().unwrap_or_else(|e| {
                warn!("executor: cannot read the cluster key: {e}");
                None
            }),
        };
        let world = World {
            ready,
            secrets: &secrets,
            publish_ip: node.config.publish_ip.clone(),
        };
        let pass = match tokio::time::timeout(
            EXECUTOR_ACTION_TIMEOUT,
            reconcile(&runtime, &cluster, peer, &assigned, &world, &mut memo),
        )
        .await
        {
            Ok(pass) => pass,
            Err(_) => {
                warn!("executor pass took longer than {EXECUTOR_ACTION_TIMEOUT:?}; retrying");
                continue;
            }
        };
        if pass.errors != last_errors {
            for e in &pass.errors {
                warn!("executor: {e}");
            }
            last_errors = pass.errors.clone();
        }
        for report in pass.reports {
            let proposal = node.stamp(format!("peer:{peer}/executor"), report);
            if let Err(e) = node.propose(proposal).await {
                warn!("executor cannot report: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests;
