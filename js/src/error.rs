//! `JsError`: why an invocation produced no outcome. One variant per cause, so the node
//! can tell a script's own failure (`Thrown`, `Syntax`) from a breached limit or a denied
//! capability, and show the user a message that names the cause. The node adds the
//! instance and the verb.

use thiserror::Error;

/// Why an invocation failed. Messages are written for the person who wrote the script.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum JsError {
    /// The script (or a module it requires) does not parse.
    #[error("syntax error in {file} at {line}:{column}: {message}")]
    Syntax {
        /// `script` for the lifecycle script, `module <name>` for a required module.
        file: String,
        /// 1-based line.
        line: u32,
        /// 1-based column.
        column: u32,
        /// QuickJS's description.
        message: String,
    },
    /// The script threw (or a value it used failed), and nothing caught it.
    #[error("script failed: {message}{}", at.as_deref().map(|at| format!(" (at {at})")).unwrap_or_default())]
    Thrown {
        /// `String(thrown)`: an `Error`'s message, or the thrown value itself.
        message: String,
        /// `file:line:column` of the innermost frame, when QuickJS knows it.
        at: Option<String>,
    },
    /// The script's heap reached its limit.
    #[error("script exceeded its memory limit of {limit_bytes} bytes")]
    MemoryLimit {
        /// The limit the invocation ran with.
        limit_bytes: usize,
    },
    /// The script recursed past its stack limit.
    #[error("script exceeded its stack limit of {limit_bytes} bytes (recursion too deep)")]
    StackLimit {
        /// The limit the invocation ran with.
        limit_bytes: usize,
    },
    /// The script computed for longer than its limit (an endless loop, most likely).
    #[error("script ran for more than {limit_ms} ms of computation and was stopped")]
    ComputeLimit {
        /// The limit the invocation ran with, in milliseconds.
        limit_ms: u128,
    },
    /// The invocation, sleeps and host waits included, outlasted its wall-clock limit.
    #[error(
        "script took more than {limit_ms} ms in total (sleeps and HTTP included) and was stopped"
    )]
    WallLimit {
        /// The limit the invocation ran with, in milliseconds.
        limit_ms: u128,
    },
    /// `require` of a name that is neither a built-in module nor a given module.
    #[error("module {name} is not available{}", hint(name))]
    ModuleNotAvailable {
        /// The name the script asked for.
        name: String,
    },
    /// The host refused a secret (not permitted to this instance, or outside its scope).
    #[error("secret {name} is not permitted: {reason}")]
    SecretDenied {
        /// The secret's name.
        name: String,
        /// The host's reason.
        reason: String,
    },
    /// The script defines no `main` function.
    #[error("the script defines no function main(definition, state, context)")]
    NoMain,
    /// `main` returned something that is neither an object (the new state) nor nothing.
    #[error("main returned {found}: return an object to replace the state, or nothing to keep it")]
    BadReturn {
        /// What it returned, e.g. `a number`.
        found: String,
    },
    /// The state `main` returned is too large to save.
    #[error("the returned state is {bytes} bytes as JSON, more than the {limit_bytes} bytes a state may have")]
    StateTooLarge {
        /// Its size as JSON.
        bytes: usize,
        /// `JS_STATE_BYTES_MAX`.
        limit_bytes: usize,
    },
    /// The runtime could not be set up (QuickJS could not allocate a runtime or context,
    /// or an input could not be handed to it).
    #[error("the JavaScript engine failed: {0}")]
    Engine(String),
}

fn hint(name: &str) -> &'static str {
    if crate::modules::CLOUD_MODULES.contains(&name) {
        " (cloud provider modules are not part of this build)"
    } else {
        " (not a built-in module, and no `defines: module` of that name is required)"
    }
}
