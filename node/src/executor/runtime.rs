//! The seam between the executor and a container engine: what a runtime must offer.
//! [`super::docker::DockerRuntime`] implements it on the real engine;
//! [`super::fake::FakeRuntime`] is a scriptable stand-in for simulations and tests.

use std::future::Future;

use monk_statemachine::PeerId;

use super::plan::{Observed, Wanted};

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
