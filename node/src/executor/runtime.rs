//! The seam between the node and a container engine: what a runtime must offer the
//! executor (list, create, start, remove) and `monk logs`/`monk exec` (logs, exec), and
//! the typed [`RuntimeError`] every call returns. [`super::docker::DockerRuntime`]
//! implements it on the real engine; [`super::fake::FakeRuntime`] is a scriptable
//! stand-in for simulations and tests. The trait is object safe (`async_trait`), so the
//! node holds whichever runtime `monkd --containers` chose as `Arc<dyn ContainerRuntime>`.

use std::time::Duration;

use monk_statemachine::PeerId;

use super::plan::{Observed, Wanted};

/// Why a runtime call failed. The texts are what workload reports and `monk logs` show.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    /// No engine answers on the socket (missing, refused, not a container engine).
    #[error("cannot reach the container engine: {0}")]
    Unreachable(String),
    /// The engine gave no answer within the bound every call carries.
    #[error("{what}: no answer from the container engine within {after:?}")]
    Timeout { what: String, after: Duration },
    /// The engine answered with an error (`status` is its HTTP status, when it has one).
    #[error("{what}: {message}")]
    Engine {
        what: String,
        status: Option<u16>,
        message: String,
    },
    /// A command run in a container exited with a non-zero code.
    #[error("exec {command} exited with {code}")]
    ExecFailed { command: String, code: i64 },
}

impl RuntimeError {
    /// An engine error for `what` (no HTTP status).
    pub fn engine(what: impl Into<String>, message: impl Into<String>) -> RuntimeError {
        RuntimeError::Engine {
            what: what.into(),
            status: None,
            message: message.into(),
        }
    }

    /// True when the engine says the container (or other object) does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            RuntimeError::Engine {
                status: Some(404),
                ..
            }
        ) || matches!(self, RuntimeError::Engine { message, .. } if message.contains("No such container"))
    }

    /// True when the engine says the object already exists (two creates racing).
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            RuntimeError::Engine {
                status: Some(409),
                ..
            }
        ) || matches!(self, RuntimeError::Engine { message, .. } if message.contains("already exists"))
    }
}

pub type RuntimeResult<T> = Result<T, RuntimeError>;

/// The credential a pull would log in with (`None`: anonymous), or why it cannot be
/// opened.
pub type PullLogin = Result<Option<PullAuth>, String>;

/// What a pull logs in with (`monk registry add`): the registry's canonical host, the
/// user and the opened password. `Debug` leaves the password out.
#[derive(Clone, PartialEq, Eq)]
pub struct PullAuth {
    pub registry: String,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for PullAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullAuth")
            .field("registry", &self.registry)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// What a container runtime must offer the node. Every call is bounded by the runtime
/// (an engine that does not answer is a [`RuntimeError::Timeout`], never a hang).
#[async_trait::async_trait]
pub trait ContainerRuntime: Send + Sync + 'static {
    /// Every container labelled with this cluster and peer, running or not.
    async fn list(&self, cluster: &str, peer: PeerId) -> RuntimeResult<Vec<Observed>>;
    /// Makes sure the image is present (pulling it if the runtime can, logged in with
    /// `login`'s credential when the image's registry has one). An image already
    /// present needs no login: `login`'s error (a credential whose secret cannot be
    /// opened) fails only a pull.
    async fn ensure_image(&self, image: &str, login: &PullLogin) -> RuntimeResult<()>;
    /// Creates and starts a container; returns its id.
    async fn create(&self, wanted: &Wanted) -> RuntimeResult<String>;
    async fn start(&self, id: &str) -> RuntimeResult<()>;
    /// Stops within `grace_secs`, then removes; a container already gone is not an error.
    async fn remove(&self, id: &str, grace_secs: u64) -> RuntimeResult<()>;
    /// Runs a command in a running container: its exit code and its stdout and stderr
    /// interleaved (at most `logs::EXEC_OUTPUT_BYTES_MAX` bytes).
    async fn exec_output(&self, id: &str, command: Vec<String>) -> RuntimeResult<(i64, String)>;
    /// The last `tail` lines (after `since`, Unix seconds, when non-zero) a container
    /// wrote, as `(stream, "TIMESTAMP text")`.
    async fn logs(&self, id: &str, tail: u32, since: i64) -> RuntimeResult<Vec<(String, String)>>;
    /// Removes a container network this peer created; one already gone is not an
    /// error. A runtime without networks has nothing to remove.
    async fn remove_network(&self, _name: &str) -> RuntimeResult<()> {
        Ok(())
    }

    /// Builds the image `tag` from `context` (a tar) with the Dockerfile at
    /// `dockerfile` inside it, sending each line of the build's output to `progress`.
    /// A runtime that cannot build says so.
    async fn build_image(
        &self,
        _context: Vec<u8>,
        _dockerfile: &str,
        _tag: &str,
        _progress: &tokio::sync::mpsc::Sender<String>,
    ) -> RuntimeResult<()> {
        Err(RuntimeError::engine(
            "building an image",
            "this peer's container runtime cannot build images",
        ))
    }

    /// Pushes the image `reference` (`HOST:PORT/NAME:TAG`) to its registry, sending
    /// each step to `progress`; the pushed manifest's digest.
    async fn push_image(
        &self,
        _reference: &str,
        _progress: &tokio::sync::mpsc::Sender<String>,
    ) -> RuntimeResult<String> {
        Err(RuntimeError::engine(
            "pushing an image",
            "this peer's container runtime cannot push images",
        ))
    }

    /// Runs a command in a running container; `Ok(stdout)` when it exits 0.
    async fn exec(&self, id: &str, command: Vec<String>) -> RuntimeResult<String> {
        let shown = command.join(" ");
        match self.exec_output(id, command).await? {
            (0, out) => Ok(out),
            (code, _) => Err(RuntimeError::ExecFailed {
                command: shown,
                code,
            }),
        }
    }
}

/// The container runtime a node holds, for its executor and for `monk logs`/`monk exec`.
#[derive(Clone)]
pub enum Engine {
    /// `monkd --containers none`: this peer runs no containers (and reads none).
    Disabled,
    /// A runtime was chosen but does not answer yet: why (the executor keeps trying).
    Unreachable(RuntimeError),
    /// Connected.
    Ready(std::sync::Arc<dyn ContainerRuntime>),
}
