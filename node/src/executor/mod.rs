//! The container executor: makes the containers on this peer match the replicas the
//! state machine placed here, and reports what it sees back into the log.
//!
//! Level-triggered and idempotent (design invariant 4): every pass reads the
//! assignments (a projection of the replicated state) and the containers the runtime
//! holds, computes a plan with the pure [`plan()`], carries it out, and proposes a
//! `workload-report` only for replicas whose observed status changed. Containers carry
//! labels naming the cluster, peer, workload, replica, container, generation and a hash
//! of their spec, so a restarted `monkd` adopts what it finds instead of duplicating
//! it, and recreates exactly the containers whose spec changed.
//!
//! `monk stop` removes a replica's containers (host paths and volumes stay), so an
//! exited container of a running workload always means its process ended on its own;
//! the runtime's restart policy (from `restart:`) decides whether it comes back.
//!
//! - [`plan`]: the pure planner and replica status (wanted + observed in, actions out).
//! - [`spec`]: assignment → wanted containers (labels, names, [`RunHost`]).
//! - [`reconcile`]: one pass against a runtime, and the loop that runs it.
//! - [`runtime`]: the [`ContainerRuntime`] seam; [`docker`] and [`fake`] implement it.
//! - [`policy`]: the peer's admission policy (privileged, capabilities, host paths),
//!   checked by [`spec`] before anything is created.
//! - [`readiness`]: readiness checks and `depends.wait-for`; [`logs`]: `monk logs`/`exec`.

pub mod docker;
pub mod fake;
pub mod logs;
pub mod plan;
pub mod policy;
pub mod readiness;
pub mod reconcile;
pub mod runtime;
pub mod spec;

pub use plan::{
    plan, replica_status, Action, ContainerKey, Observed, RunState, Wanted, RUNNING_AFTER_SECS,
    STOP_GRACE_DEFAULT_SECS,
};
pub use policy::{AdmissionPolicy, PolicyRefusal};
pub use reconcile::{reconcile, report_engine_missing, run, Pass};
pub use runtime::ContainerRuntime;
pub(crate) use spec::RunHost;
pub use spec::{
    container_hostname, container_name, key_of, label, network_name, runnable_hostname, spec_hash,
    wanted_of, World, MOUNTED_SECRET_MODE,
};

#[cfg(test)]
mod tests;
