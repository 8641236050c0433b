//! The reconcile pass and the executor loop: read this peer's assignments, list what
//! the runtime holds, carry out [`plan`]'s actions, run readiness checks, and propose a
//! `workload-report` for each replica whose status changed.

use std::collections::BTreeMap;
use std::sync::Arc;

use monk_statemachine::pull_credentials::image_registry;
use monk_statemachine::view::{assignments, Assignment};
use monk_statemachine::{Command, Desired, InstanceStatus, PeerId};
use tracing::{info, warn};

use super::plan::{plan, replica_status, Action, Observed, RunState, Wanted};
use super::readiness::{self, Memo};
use super::runtime::PullAuth;
use super::spec::{spec_of, World};
use super::ContainerRuntime;
use crate::limits::{
    EXECUTOR_ACTION_TIMEOUT, EXECUTOR_PASS_GAP, EXECUTOR_REPORT_TIMEOUT, EXECUTOR_TICK,
    FENCE_CHECK_INTERVAL,
};
use crate::node::lease::{LeaseState, LEASE};
use crate::node::Node;
use crate::secrets::WorkloadSecrets;

/// The credential a pull of `image` logs in with: none when its registry has none set
/// (`monk registry add`); why not, naming the registry and the secret, when the
/// password secret cannot be opened.
fn pull_auth(image: &str, world: &World<'_>) -> Result<Option<PullAuth>, String> {
    let registry = image_registry(image);
    let Some(credential) = world.registries.get(&registry) else {
        return Ok(None);
    };
    let password = world
        .secrets
        .open_global(&credential.password_secret)
        .map_err(|why| {
            format!(
                "registry {registry} has a credential for {} but its password secret cannot be read: {why}",
                credential.username
            )
        })?;
    Ok(Some(PullAuth {
        registry,
        username: credential.username.clone(),
        password,
    }))
}

/// Runs (when due) the readiness check of a running replica; `ready`, or `running`
/// with the reason it is not ready yet.
async fn check_readiness<R: ContainerRuntime + ?Sized>(
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
        let outcome = readiness::evaluate_with_exec(
            runtime,
            &a.path,
            "readiness code",
            &check.code,
            variables,
            containers,
        )
        .await
        .map(|v| v.is_truthy());
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
pub async fn reconcile<R: ContainerRuntime + ?Sized>(
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
                runtime
                    .remove(id, *grace_secs)
                    .await
                    .map_err(|e| e.to_string())
            }
            Action::Start { id, name } => {
                info!(container = %name, "starting container");
                runtime.start(id).await.map_err(|e| e.to_string())
            }
            Action::Create(w) => {
                let replica = (w.key.path.clone(), w.key.replica);
                let login = pull_auth(&w.spec.image, world);
                let pulled = runtime
                    .ensure_image(&w.spec.image, &login)
                    .await
                    .map_err(|e| e.to_string());
                let created = match pulled {
                    Err(e) => Err(format!("image {}: {e}", w.spec.image)),
                    Ok(()) => {
                        info!(container = %w.name, image = %w.spec.image, "creating container");
                        runtime.create(w).await.map_err(|e| e.to_string())
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
        let addresses: BTreeMap<String, std::net::Ipv4Addr> = mine_o
            .iter()
            .filter(|o| o.state == RunState::Running && o.generation == a.generation)
            .filter_map(|o| {
                let key = o.key.as_ref()?;
                let ip = o.ip.as_deref()?.parse().ok()?;
                Some((key.container.clone(), ip))
            })
            .collect();
        let now = (a.generation, status, message.clone());
        if a.reported.as_ref() != Some(&now) || a.reported_addresses != addresses {
            pass.reports.push(Command::WorkloadReport {
                peer,
                path: a.path.clone(),
                replica: a.replica,
                generation: a.generation,
                status,
                message,
                addresses,
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
            addresses: BTreeMap::new(),
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

/// Kills (removes without a stop grace) every container of this peer's replicas that
/// the others may start elsewhere: all but those whose `recovery.when` keeps them on
/// a failed peer.
async fn fence<R: ContainerRuntime + ?Sized>(
    runtime: &R,
    cluster: &str,
    peer: PeerId,
    assigned: &[Assignment],
) {
    let Ok(observed) = runtime.list(cluster, peer).await else {
        return;
    };
    let stays = |path: &str| {
        assigned.iter().any(|a| {
            a.path == path && !monk_statemachine::schedule::moves_on_peer_failure(&a.definition)
        })
    };
    for o in observed
        .iter()
        .filter(|o| o.key.as_ref().is_some_and(|k| !stays(&k.path)))
    {
        if let Err(e) = runtime.remove(&o.id, 0).await {
            if !e.is_not_found() {
                warn!(container = %o.name, "executor: cannot kill a fenced container: {e}");
            }
        }
    }
}

/// Runs the `container-started` hooks of a replica that `report` says is up now and
/// was not up in this generation before (so a restarted peer that adopts running
/// containers runs none again).
fn started_hooks(node: &Arc<Node>, peer: PeerId, assigned: &[Assignment], report: &Command) {
    let Command::WorkloadReport {
        path,
        replica,
        generation,
        status: InstanceStatus::Running | InstanceStatus::Ready,
        ..
    } = report
    else {
        return;
    };
    let Some(a) = assigned
        .iter()
        .find(|a| a.path == *path && a.replica == *replica)
    else {
        return;
    };
    let was_up = a.reported.as_ref().is_some_and(|(g, s, _)| {
        g == generation && matches!(s, InstanceStatus::Running | InstanceStatus::Ready)
    });
    if !was_up {
        crate::entity::action::container_started(node, peer, path, *replica, &a.definition);
    }
}

/// Waits until the next pass: [`EXECUTOR_PASS_GAP`], then until an entry after
/// `applied_seen` is applied or the rest of [`EXECUTOR_TICK`] passed, whichever comes
/// first (a replica placed here by a `peer-down` starts at once, not a tick later).
async fn next_pass(node: &Node, applied_seen: u64) {
    tokio::time::sleep(EXECUTOR_PASS_GAP).await;
    let rest = EXECUTOR_TICK.saturating_sub(EXECUTOR_PASS_GAP);
    match node.raft().await {
        Some(raft) if applied_seen < u64::MAX => {
            // A timeout or a stopping Raft both just end the wait.
            let _ = raft
                .wait(Some(rest))
                .applied_index_at_least(Some(applied_seen + 1), "executor: new entries")
                .await;
        }
        _ => tokio::time::sleep(rest).await,
    }
}

/// Runs the executor for `node` until the node shuts down.
pub async fn run(node: Arc<Node>, runtime: Arc<dyn ContainerRuntime>) {
    tokio::spawn(fence_watchdog(node.clone(), runtime.clone()));
    let mut applied_seen = u64::MAX;
    let mut last_errors: Vec<String> = Vec::new();
    let mut ticks_since_pass = 0u32;
    let mut fenced = false;
    let mut memo = Memo::default();
    loop {
        if node.is_shut_down() {
            return;
        }
        next_pass(&node, applied_seen).await;
        let Some(peer) = node.peer_id().await else {
            continue;
        };
        let (cluster, assigned, applied, sealed, registries, ready, peer_name, subnet, others) = {
            let shared = node.shared_state();
            let guard = shared.read().unwrap_or_else(|p| p.into_inner());
            let state = &guard.state;
            let Some(cluster) = state.cluster_name().map(str::to_owned) else {
                continue;
            };
            let assigned = assignments(state, peer);
            let others = super::spec::Cluster::of(
                state,
                assigned.iter().map(|a| (a.path.as_str(), &a.definition)),
            );
            (
                cluster,
                assigned,
                state.last_applied_index(),
                state.secrets().clone(),
                state.registry_credentials().clone(),
                readiness::ready_workloads(state),
                state
                    .peer(peer)
                    .map_or_else(|| node.config.name.clone(), |p| p.name.clone()),
                crate::overlay::container_subnet(&node.config.overlay, state, peer),
                others,
            )
        };
        // The lease (`node/src/node/lease.rs`): cut off from a quorum, kill this
        // peer's replicas before the majority starts them elsewhere; not caught up
        // after a restart, touch nothing yet.
        // The kills themselves are the watchdog's ([`fence_watchdog`]); a fenced or
        // not yet caught-up peer only runs no pass.
        match node.lease_state().await {
            LeaseState::Current => {
                if fenced {
                    fenced = false;
                    applied_seen = u64::MAX;
                }
            }
            LeaseState::CatchingUp => continue,
            LeaseState::Fenced => {
                fenced = true;
                continue;
            }
        }
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
            policy: &node.config.admission,
            peer_name: &peer_name,
            cluster: &others,
            subnet,
            registry_pull: node
                .config
                .registry_listen
                .map(crate::registry::pull_address),
            registries: &registries,
        };
        let pass = match tokio::time::timeout(
            EXECUTOR_ACTION_TIMEOUT,
            reconcile(
                runtime.as_ref(),
                &cluster,
                peer,
                &assigned,
                &world,
                &mut memo,
            ),
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
        for report in &pass.reports {
            started_hooks(&node, peer, &assigned, report);
        }
        for report in pass.reports {
            let proposal = node.stamp(format!("peer:{peer}/executor"), report);
            // Bounded: a leader cut off from its quorum never commits it, and the next
            // pass reports the same again.
            match tokio::time::timeout(EXECUTOR_REPORT_TIMEOUT, node.propose(proposal)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => warn!("executor cannot report: {e}"),
                Err(_) => {
                    warn!("executor: a report was not committed within {EXECUTOR_REPORT_TIMEOUT:?}")
                }
            }
        }
    }
}

/// Kills this peer's replicas whenever its lease says fenced, checked every
/// [`FENCE_CHECK_INTERVAL`] whatever the executor's pass is doing: a pass may wait
/// on the engine for up to a minute (a pull across the partition) and its reports on
/// a quorum that is gone, and the fence must land within its margin regardless.
async fn fence_watchdog(node: Arc<Node>, runtime: Arc<dyn ContainerRuntime>) {
    let mut fenced = false;
    loop {
        tokio::time::sleep(FENCE_CHECK_INTERVAL).await;
        if node.is_shut_down() {
            return;
        }
        if node.lease_state().await != LeaseState::Fenced {
            if fenced {
                info!("executor: a quorum is heard again; reconciling");
                fenced = false;
            }
            continue;
        }
        let Some(peer) = node.peer_id().await else {
            continue;
        };
        let (cluster, assigned) = {
            let shared = node.shared_state();
            let guard = shared.read().unwrap_or_else(|p| p.into_inner());
            let Some(cluster) = guard.state.cluster_name().map(str::to_owned) else {
                continue;
            };
            (cluster, assignments(&guard.state, peer))
        };
        if !fenced {
            warn!("executor: no quorum heard for {LEASE:?}; killing this peer's replicas, which the others may start elsewhere");
            fenced = true;
        }
        fence(runtime.as_ref(), &cluster, peer, &assigned).await;
    }
}
