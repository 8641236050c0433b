//! Workloads: runnables the cluster was asked to run, each split into replicas
//! ("instances") placed on peers by the deterministic scheduler (`schedule.rs`).
//!
//! A workload keeps the definition *as resolved when it was started or updated*: loading
//! a changed template does not touch running workloads until `monk update` (Monk's
//! semantics). Every change that executors must act on (new definition, new overrides)
//! bumps the workload's `generation`; containers carry it in a label, so an executor
//! recreates exactly the containers of an older generation.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use monk_scripting::tree::Tree;
use serde::{Deserialize, Serialize};

use crate::command::{Capacity, Evaluated, HostPort, InstanceStatus, PeerId};

/// Whether the user wants the workload's containers running.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Desired {
    Running,
    Stopped,
}

impl Desired {
    pub fn as_str(self) -> &'static str {
        match self {
            Desired::Running => "running",
            Desired::Stopped => "stopped",
        }
    }
}

/// Where a workload may run: its `affinity` plus `monk run --tag/--peer`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Constraints {
    /// Only peers carrying every one of these tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Only the peer with this name or id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// `affinity.resident`: the replica has its peer to itself.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resident: bool,
    /// `affinity.ignore-pressure`: what is already placed on a peer does not count
    /// against its capacity or facts.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ignore_pressure: bool,
}

/// What one replica needs from a machine (`requirements`), checked against the facts
/// its peer reported. Zero means "no requirement".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirements {
    /// `CPU`, in millicores.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cpu_millis: u64,
    /// `RAM`, in MB.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub memory_mb: u64,
    /// `GPU: true`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gpu: bool,
    /// `disk`, in GB.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub disk_gb: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Requirements {
    pub fn is_none(&self) -> bool {
        *self == Requirements::default()
    }
}

/// The last observation an executor reported for an instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    pub generation: u64,
    pub status: InstanceStatus,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    pub at_index: u64,
    /// Each running container's address on its peer's container network, by
    /// container name (`workload-report`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub addresses: BTreeMap<String, Ipv4Addr>,
}

/// One replica of a workload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub replica: u32,
    /// The peer it is placed on; `None` while no peer can take it.
    pub peer: Option<PeerId>,
    /// Why it is not placed (when `peer` is `None`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<String>,
    pub placed_at_index: u64,
    /// Cleared when the instance moves to another peer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<Observation>,
}

/// A runnable the cluster runs (or keeps stopped).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workload {
    /// The runnable's template path.
    pub path: String,
    /// The group it was started through, if any (`monk stop GROUP` reaches it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The definition resolved (inheritance, group variables) at run/update time.
    pub definition: Tree,
    /// Runtime variables given with `--set`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub overrides: BTreeMap<String, String>,
    pub generation: u64,
    pub desired: Desired,
    pub constraints: Constraints,
    /// Resources one replica asks for (sum of its containers' `resources.requests`).
    pub requests: Capacity,
    /// What one replica needs from its peer's machine.
    #[serde(default, skip_serializing_if = "Requirements::is_none")]
    pub requirements: Requirements,
    /// Host ports every replica publishes (from the proposer's evaluation).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_ports: Vec<HostPort>,
    /// What the proposing peer evaluated for it at the last run/update, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluated: Option<Evaluated>,
    pub instances: BTreeMap<u32, Instance>,
    pub started_at_index: u64,
    pub changed_at_index: u64,
    /// Set when the workload is an entity instance (issue 14): its lifecycle, run by
    /// the entity executor of the peer its one replica is placed on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<EntityLife>,
    /// The last of its `actions` run with `monk do` (`action-done`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_action: Option<VerbResult>,
}

/// An entity instance's lifecycle as the log knows it: the type it was run with, the
/// state its scripts saved, and the verbs still to run for the last intent. Scripts run
/// in the hosting peer's entity executor; only their results (`entity-verb-done`)
/// change this, so every peer holds the same saved state and no verb is half-saved: a
/// verb whose result never committed is still at the head of `todo` and runs again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityLife {
    /// The entity type's path (`ns/type`).
    pub type_path: String,
    /// The type resolved at run/update time: `lifecycle` scripts, `checks`, `schema`.
    pub type_definition: Tree,
    /// The JavaScript sources of the user modules the type `requires`, by path.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub modules: BTreeMap<String, String>,
    /// The saved state, as the JSON text of the object the last verb returned;
    /// `None` before any verb returned one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Whether `create` succeeded (then `run` starts it instead of creating it).
    pub created: bool,
    /// Lifecycle verbs still to run for the last `run`/`update`/`stop`/`purge`, in
    /// order; the executor runs the first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub todo: Vec<String>,
    /// Bumped whenever the head of `todo` changes: a result names the step it
    /// finished, so a late or repeated result cannot be applied twice.
    pub step: u64,
    /// The last verb that finished (or failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<VerbResult>,
}

impl EntityLife {
    /// Whether the type declares a readiness check (`checks.readiness`).
    pub fn has_readiness_check(&self) -> bool {
        self.type_definition
            .get("checks")
            .and_then(|c| c.get("readiness"))
            .is_some()
    }
}

/// How a lifecycle verb ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerbResult {
    pub verb: String,
    /// The names of the arguments a custom verb was given (`monk do ... k=v`); never
    /// their values, which may be secret.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// `None`: it succeeded; else why it failed, as the executor reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub at_index: u64,
}

impl Workload {
    /// The addresses its executors reported for its replicas' running containers.
    pub fn addresses(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.instances
            .values()
            .filter_map(|i| i.observed.as_ref())
            .flat_map(|o| o.addresses.values().copied())
    }

    /// How many replicas it runs.
    pub fn replicas(&self) -> u32 {
        self.instances.len() as u32
    }
}
