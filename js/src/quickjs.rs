//! `QuickJsEngine`, the `JsEngine` on QuickJS-NG (`rquickjs`): a fresh runtime and
//! context per invocation with the memory, stack and time limits applied, the globals and
//! modules installed, `main` called, and every way that can fail sorted into a `JsError`.
//! Nothing survives an invocation, so a script that broke a limit leaves nothing behind.

use std::rc::Rc;
use std::sync::Arc;

use rquickjs::context::EvalOptions;
use rquickjs::promise::PromiseState;
use rquickjs::{Context, Ctx, Function, Object, Runtime, Value};

use crate::convert;
use crate::engine::{Invocation, JsEngine, Outcome, Script};
use crate::error::JsError;
use crate::globals;
use crate::host::{Host, NoHost};
use crate::limits::{Limits, JS_STATE_BYTES_MAX};
use crate::session::{Breach, Session};

/// The name syntax errors and stack frames give the lifecycle script.
const SCRIPT_FILE: &str = "script";

/// The QuickJS engine. Holds only its limits: every invocation builds its own runtime.
#[derive(Debug, Clone, Default)]
pub struct QuickJsEngine {
    limits: Limits,
}

impl QuickJsEngine {
    /// An engine with `limits`, each capped at its ceiling (`Limits::clamped`).
    pub fn new(limits: Limits) -> Self {
        Self {
            limits: limits.clamped(),
        }
    }

    /// The limits invocations run with.
    pub fn limits(&self) -> Limits {
        self.limits
    }
}

impl JsEngine for QuickJsEngine {
    fn invoke(
        &self,
        script: &Script,
        invocation: &Invocation,
        host: Arc<dyn Host>,
    ) -> Result<Outcome, JsError> {
        let session = Rc::new(Session::new(
            host,
            invocation.files.clone(),
            script.modules.clone(),
            invocation.variables.clone(),
            self.limits,
        ));
        let (runtime, context) = sandbox(&session)?;
        let state = context.with(|ctx| run(&ctx, &session, script, invocation));
        let heap_bytes = u64::try_from(runtime.memory_usage().malloc_size).unwrap_or(0);
        drop(context);
        drop(runtime);
        Ok(Outcome {
            state: state?,
            output: session.take_output(),
            variables: session.variables.take(),
            heap_bytes,
        })
    }

    fn check(&self, script: &Script) -> Result<(), JsError> {
        check(script, self.limits)
    }
}

/// The wrapper around a lifecycle script: its top level runs inside a function, so that
/// compiling it (where only syntax errors can happen) is separate from running it.
const SCRIPT_PREFIX: &str = "(function () {";
const SCRIPT_SUFFIX: &str = "\n;return typeof main === \"function\" ? main : undefined;\n})";

/// The wrapper around a user module: CommonJS.
pub(crate) const MODULE_PREFIX: &str = "(function (module, exports, require) {";
pub(crate) const MODULE_SUFFIX: &str = "\n})";

/// Compiles a script and its modules in a sandbox of their own, running nothing.
fn check(script: &Script, limits: Limits) -> Result<(), JsError> {
    let session = Rc::new(Session::new(
        Arc::new(NoHost),
        Default::default(),
        Default::default(),
        Default::default(),
        limits,
    ));
    let (runtime, context) = sandbox(&session)?;
    let checked = context.with(|ctx| {
        compile(
            &ctx,
            &session,
            SCRIPT_FILE,
            SCRIPT_PREFIX,
            &script.source,
            SCRIPT_SUFFIX,
        )?;
        for (name, source) in &script.modules {
            let file = module_file(name);
            compile(&ctx, &session, &file, MODULE_PREFIX, source, MODULE_SUFFIX)?;
        }
        Ok(())
    });
    drop(context);
    drop(runtime);
    checked
}

/// The file name errors and stack frames give a user module.
pub(crate) fn module_file(name: &str) -> String {
    format!("module {name}")
}

/// A runtime with `session`'s limits and a context with every QuickJS intrinsic
/// (`Date`, `Map`, `JSON`, `RegExp`, `Promise`, ...). QuickJS itself offers no file,
/// network or process access (that lives in quickjs-libc, which rquickjs does not build).
pub(crate) fn sandbox(session: &Rc<Session>) -> Result<(Runtime, Context), JsError> {
    let engine = |e: rquickjs::Error| JsError::Engine(e.to_string());
    let runtime = Runtime::new().map_err(engine)?;
    runtime.set_memory_limit(session.limits.memory_bytes);
    runtime.set_max_stack_size(session.limits.stack_bytes);
    let clock = Rc::clone(session);
    runtime.set_interrupt_handler(Some(Box::new(move || clock.out_of_time())));
    let context = Context::full(&runtime).map_err(engine)?;
    Ok((runtime, context))
}

fn run<'js>(
    ctx: &Ctx<'js>,
    session: &Rc<Session>,
    script: &Script,
    invocation: &Invocation,
) -> Result<Option<serde_json::Value>, JsError> {
    globals::install(ctx, session).map_err(|e| failure(ctx, session, e))?;
    let body = compile(
        ctx,
        session,
        SCRIPT_FILE,
        SCRIPT_PREFIX,
        &script.source,
        SCRIPT_SUFFIX,
    )
    .map_err(|error| session.raised_matching(&error.to_string()).unwrap_or(error))?;
    let main: Value<'js> = body.call(()).map_err(|e| failure(ctx, session, e))?;
    let Some(main) = main.into_function() else {
        return Err(JsError::NoMain);
    };
    let arguments = (|| {
        let definition = convert::to_js(ctx, &invocation.definition)?;
        let state = match &invocation.state {
            Some(state) => convert::to_js(ctx, state)?,
            None => Object::new(ctx.clone())?.into_value(),
        };
        let context = serde_json::to_value(&invocation.context)
            .map_err(|e| rquickjs::Exception::throw_internal(ctx, &e.to_string()))?;
        Ok::<_, rquickjs::Error>((definition, state, convert::to_js(ctx, &context)?))
    })()
    .map_err(|e| failure(ctx, session, e))?;
    let returned: Value<'js> = main.call(arguments).map_err(|e| failure(ctx, session, e))?;
    let returned = settle(ctx, returned).map_err(|e| failure(ctx, session, e))?;
    // A script that caught the error of a breached limit (a `sleep` past the wall-clock
    // limit) still fails: QuickJS only interrupts code that keeps running.
    if let Some(breach) = session.breach() {
        return Err(breach_error(session, breach));
    }
    new_state(ctx, session, returned)
}

/// An `async main`'s result: runs QuickJS's job queue until the promise settles (the
/// time limits still apply). Any other value is returned as it is.
fn settle<'js>(ctx: &Ctx<'js>, value: Value<'js>) -> rquickjs::Result<Value<'js>> {
    let Some(promise) = value.as_promise().cloned() else {
        return Ok(value);
    };
    loop {
        match promise.state() {
            PromiseState::Pending => {
                if !ctx.execute_pending_job() {
                    return Err(rquickjs::Exception::throw_message(
                        ctx,
                        "main returned a promise that never settles",
                    ));
                }
            }
            PromiseState::Resolved | PromiseState::Rejected => {
                return promise.result::<Value<'js>>().unwrap_or_else(|| {
                    Err(rquickjs::Exception::throw_internal(
                        ctx,
                        "promise state changed",
                    ))
                })
            }
        }
    }
}

/// The state `main`'s return value asks for: `None` (keep) for `undefined` or `null`,
/// the object otherwise.
fn new_state<'js>(
    ctx: &Ctx<'js>,
    session: &Session,
    returned: Value<'js>,
) -> Result<Option<serde_json::Value>, JsError> {
    if returned.is_undefined() || returned.is_null() {
        return Ok(None);
    }
    let found = if returned.is_array() {
        Some("an array")
    } else if returned.is_function() {
        Some("a function")
    } else if !returned.is_object() {
        Some(match returned.type_name() {
            "bool" => "a boolean",
            "int" | "float" => "a number",
            "string" => "a string",
            "big_int" => "a bigint",
            "symbol" => "a symbol",
            _ => "a value that is not an object",
        })
    } else {
        None
    };
    if let Some(found) = found {
        return Err(JsError::BadReturn {
            found: found.to_string(),
        });
    }
    let json = ctx
        .json_stringify(returned)
        .and_then(|text| text.map(|t| t.to_string()).transpose())
        .map_err(|e| failure(ctx, session, e))?
        .unwrap_or_default();
    if json.len() > JS_STATE_BYTES_MAX {
        return Err(JsError::StateTooLarge {
            bytes: json.len(),
            limit_bytes: JS_STATE_BYTES_MAX,
        });
    }
    serde_json::from_str(&json)
        .map(Some)
        .map_err(|e| JsError::Engine(format!("the returned state is not valid JSON: {e}")))
}

/// Compiles `prefix + source + suffix` (a function expression) without running any of
/// it, so every error here is the source's syntax (or a limit). Positions are reported
/// in `source`'s own lines and columns.
pub(crate) fn compile<'js>(
    ctx: &Ctx<'js>,
    session: &Session,
    file: &str,
    prefix: &str,
    source: &str,
    suffix: &str,
) -> Result<Function<'js>, JsError> {
    let mut options = EvalOptions::default();
    options.global = true;
    options.strict = false;
    options.backtrace_barrier = true;
    options.filename = Some(file.to_string());
    let code = format!("{prefix}{source}{suffix}");
    let compiled: rquickjs::Result<Value<'js>> = ctx.eval_with_options(code, options);
    let value = match compiled {
        Ok(value) => value,
        Err(rquickjs::Error::Exception) => {
            let exception = ctx.catch();
            return Err(match limit_error(&exception, session) {
                Some(limit) => limit,
                None => syntax_error(&exception, file, prefix),
            });
        }
        Err(rquickjs::Error::Allocation) => {
            return Err(JsError::MemoryLimit {
                limit_bytes: session.limits.memory_bytes,
            })
        }
        Err(other) => return Err(JsError::Engine(other.to_string())),
    };
    value
        .into_function()
        .ok_or_else(|| JsError::Engine(format!("{file} did not compile to a function")))
}

fn syntax_error(exception: &Value<'_>, file: &str, prefix: &str) -> JsError {
    let (name, message) = name_and_message(exception);
    let position = exception
        .as_object()
        .and_then(|o| o.get::<_, Option<String>>("stack").ok().flatten())
        .and_then(|stack| first_position(&stack, file));
    match (name.as_str(), position) {
        ("SyntaxError", Some((line, column))) => JsError::Syntax {
            file: file.to_string(),
            line,
            // The prefix shares the source's first line.
            column: if line == 1 {
                column.saturating_sub(prefix.chars().count() as u32).max(1)
            } else {
                column
            },
            message,
        },
        _ => JsError::Thrown {
            message: format!("{name}: {message}"),
            at: None,
        },
    }
}

/// The `line:column` of the first stack frame in `file` (`at file:3:7` or
/// `at f (file:3:7)`).
fn first_position(stack: &str, file: &str) -> Option<(u32, u32)> {
    stack.lines().find_map(|frame| {
        let frame = frame.trim().trim_end_matches(')');
        let at = frame.rfind(&format!("{file}:"))?;
        let mut numbers = frame[at + file.len() + 1..].split(':');
        let line = numbers.next()?.parse().ok()?;
        let column = numbers.next()?.parse().ok()?;
        Some((line, column))
    })
}

fn breach_error(session: &Session, breach: Breach) -> JsError {
    match breach {
        Breach::Compute => JsError::ComputeLimit {
            limit_ms: session.limits.compute.as_millis(),
        },
        Breach::Wall => JsError::WallLimit {
            limit_ms: session.limits.wall.as_millis(),
        },
    }
}

/// The limit error an exception stands for: a time limit that interrupted the script,
/// or QuickJS's own out-of-memory or stack-overflow error.
fn limit_error(exception: &Value<'_>, session: &Session) -> Option<JsError> {
    let limits = &session.limits;
    if let Some(breach) = session.breach() {
        return Some(breach_error(session, breach));
    }
    let (name, message) = name_and_message(exception);
    match (name.as_str(), message.as_str()) {
        ("InternalError", "out of memory") => Some(JsError::MemoryLimit {
            limit_bytes: limits.memory_bytes,
        }),
        ("RangeError", "Maximum call stack size exceeded") => Some(JsError::StackLimit {
            limit_bytes: limits.stack_bytes,
        }),
        _ => None,
    }
}

fn name_and_message(exception: &Value<'_>) -> (String, String) {
    match exception.as_object() {
        Some(object) if exception.is_error() => (
            object
                .get::<_, Option<String>>("name")
                .ok()
                .flatten()
                .unwrap_or_else(|| String::from("Error")),
            object
                .get::<_, Option<String>>("message")
                .ok()
                .flatten()
                .unwrap_or_default(),
        ),
        _ => (String::new(), String::new()),
    }
}

/// The `JsError` for a failed call into JavaScript.
fn failure<'js>(ctx: &Ctx<'js>, session: &Session, error: rquickjs::Error) -> JsError {
    let exception = match error {
        rquickjs::Error::Exception => ctx.catch(),
        rquickjs::Error::Allocation => {
            return JsError::MemoryLimit {
                limit_bytes: session.limits.memory_bytes,
            }
        }
        other => return JsError::Engine(other.to_string()),
    };
    limit_error(&exception, session).unwrap_or_else(|| thrown(ctx, session, exception))
}

/// A thrown value as `JsError::Thrown`, or as the typed error a native function raised
/// with that message.
fn thrown<'js>(ctx: &Ctx<'js>, session: &Session, exception: Value<'js>) -> JsError {
    let (name, message) = name_and_message(&exception);
    if exception.is_error() {
        if let Some(raised) = session.raised_matching(&message) {
            return raised;
        }
        let at = exception
            .as_object()
            .and_then(|o| o.get::<_, Option<String>>("stack").ok().flatten())
            .and_then(|stack| {
                stack
                    .lines()
                    .map(str::trim)
                    .find(|line| line.starts_with("at "))
                    .map(|line| line.trim_start_matches("at ").to_string())
            });
        let message = if name == "Error" || name.is_empty() {
            message
        } else {
            format!("{name}: {message}")
        };
        return JsError::Thrown { message, at };
    }
    JsError::Thrown {
        message: convert::display(ctx, exception),
        at: None,
    }
}
