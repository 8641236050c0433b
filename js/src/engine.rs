//! The engine seam: `JsEngine`, what one invocation gets (`Script`, `Invocation` with its
//! `InvocationContext`) and what it gives back (`Outcome`). Shaped for entity lifecycles:
//! the script defines `main(definition, state, context)`; a returned object replaces the
//! saved state, returning nothing keeps it, a `throw` fails the verb with its message.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::error::JsError;
use crate::host::Host;

/// Code to run: the lifecycle script and the user modules (`defines: module`) it may
/// `require` by name (`ns/module`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Script {
    /// JavaScript defining `function main(definition, state, context)`.
    pub source: String,
    /// `require` name → CommonJS source (`module.exports = ...`).
    pub modules: BTreeMap<String, String>,
}

impl Script {
    /// A script with no user modules.
    pub fn new(source: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            modules: BTreeMap::new(),
        }
    }

    /// This script, with a user module `require(name)` loads.
    pub fn with_module(mut self, name: impl Into<String>, source: impl Into<String>) -> Self {
        self.modules.insert(name.into(), source.into());
        self
    }
}

/// The third argument of `main`, as Monk passes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct InvocationContext {
    /// The verb: `create`, `start`, `update`, `stop`, `purge`, `check-readiness`,
    /// `check-liveness`, or a custom action.
    pub action: String,
    /// The instance's status when the verb started (e.g. `running`).
    pub status: String,
    /// The instance's path, `ns/name`.
    pub path: String,
    /// Arguments of `monk do ns/name/verb k=v ...`.
    pub args: serde_json::Map<String, Value>,
    /// The instance's `metadata` block.
    pub metadata: Value,
}

/// Everything one invocation reads besides its code.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Invocation {
    /// The resolved instance definition (first argument of `main`).
    pub definition: Value,
    /// The saved state; `None` before the first verb saved one (`main` then sees `{}`).
    pub state: Option<Value>,
    /// The third argument of `main`.
    pub context: InvocationContext,
    /// What the `fs` module shows: the instance's `files`, path → contents.
    pub files: BTreeMap<String, String>,
    /// What the `vars` module starts with (`get`/`has`; `set` changes it for the rest of
    /// the invocation and the result comes back in `Outcome::variables`).
    pub variables: BTreeMap<String, Value>,
}

/// What a successful invocation gives back.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// `Some`: the object `main` returned, which replaces the saved state. `None`: `main`
    /// returned nothing (or `null`), so the saved state is kept.
    pub state: Option<Value>,
    /// `console.*` and `cli.output` lines, in the order they were written.
    pub output: Vec<String>,
    /// The `vars` module's variables after the invocation.
    pub variables: BTreeMap<String, Value>,
    /// Heap the invocation's runtime held when `main` returned (QuickJS's `malloc_size`:
    /// the context, its intrinsics and globals, the compiled script and its data).
    pub heap_bytes: u64,
}

/// Runs lifecycle scripts. Each call is independent: a fresh runtime and context, limits
/// applied, nothing kept between calls. Calls block (HTTP and `sleep` included), so an
/// async caller runs them on a blocking thread.
pub trait JsEngine {
    /// Runs `script`'s `main(definition, state, context)` for `invocation`, reaching the
    /// world only through `host`.
    fn invoke(
        &self,
        script: &Script,
        invocation: &Invocation,
        host: Arc<dyn Host>,
    ) -> Result<Outcome, JsError>;

    /// Compiles `script` and each of its modules without running anything: the syntax
    /// check a definition's scripts can get before anything is proposed.
    fn check(&self, script: &Script) -> Result<(), JsError>;
}
