//! `monk-js`: the JavaScript engine behind entity lifecycles (issue 14). A `JsEngine`
//! runs a script's `main(definition, state, context)` in a fresh sandbox per invocation
//! (`QuickJsEngine`, on QuickJS-NG: the `v8` crate cannot be built here) under named
//! limits (`limits`), with Monk's globals and built-in modules. The world outside is
//! reached only through a `Host` the caller supplies (secrets, HTTP). The state machine
//! never links this crate: scripts have side effects and run in an executor, and only
//! their results enter the log.

mod convert;
mod engine;
mod error;
mod globals;
mod host;
pub mod limits;
mod modules;
mod quickjs;
mod session;

pub use engine::{Invocation, InvocationContext, JsEngine, Outcome, Script};
pub use error::JsError;
pub use host::{Host, HostError, HttpRequest, HttpResponse, NoHost};
pub use limits::Limits;
pub use modules::{BUILTIN_MODULES, CLOUD_MODULES};
pub use quickjs::QuickJsEngine;
