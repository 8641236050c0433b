//! `Session`: the Rust side of one invocation, shared by the native functions of the
//! globals and modules: the host, the files and modules given, the output written so
//! far, the clocks behind the time limits, and the typed error a native function raised.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rquickjs::{Ctx, Exception};
use serde_json::Value;

use crate::error::JsError;
use crate::host::Host;
use crate::limits::{Limits, JS_OUTPUT_LINES_MAX, JS_OUTPUT_LINE_BYTES_MAX};

/// Which time limit stopped the script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Breach {
    Compute,
    Wall,
}

pub(crate) struct Session {
    pub(crate) host: Arc<dyn Host>,
    pub(crate) files: BTreeMap<String, String>,
    pub(crate) modules: BTreeMap<String, String>,
    pub(crate) variables: RefCell<BTreeMap<String, Value>>,
    pub(crate) limits: Limits,
    output: RefCell<Vec<String>>,
    dropped_lines: Cell<usize>,
    started: Instant,
    /// Time spent in `sleep` and host calls, which does not count as computation.
    waited: Cell<Duration>,
    breach: Cell<Option<Breach>>,
    raised: RefCell<Option<JsError>>,
}

impl Session {
    pub(crate) fn new(
        host: Arc<dyn Host>,
        files: BTreeMap<String, String>,
        modules: BTreeMap<String, String>,
        variables: BTreeMap<String, Value>,
        limits: Limits,
    ) -> Self {
        Self {
            host,
            files,
            modules,
            variables: RefCell::new(variables),
            limits,
            output: RefCell::new(Vec::new()),
            dropped_lines: Cell::new(0),
            started: Instant::now(),
            waited: Cell::new(Duration::ZERO),
            breach: Cell::new(None),
            raised: RefCell::new(None),
        }
    }

    /// The interrupt handler's question: has a time limit passed? Once one has, the
    /// answer stays yes, so QuickJS keeps unwinding (its interrupt is uncatchable).
    pub(crate) fn out_of_time(&self) -> bool {
        if self.breach.get().is_some() {
            return true;
        }
        let elapsed = self.started.elapsed();
        let breach = if elapsed >= self.limits.wall {
            Some(Breach::Wall)
        } else if elapsed.saturating_sub(self.waited.get()) >= self.limits.compute {
            Some(Breach::Compute)
        } else {
            None
        };
        self.breach.set(breach);
        breach.is_some()
    }

    pub(crate) fn breach(&self) -> Option<Breach> {
        self.breach.get()
    }

    /// Wall-clock time left to this invocation.
    pub(crate) fn remaining(&self) -> Duration {
        self.limits.wall.saturating_sub(self.started.elapsed())
    }

    /// Runs `wait` (a host call or a sleep) without counting it as computation.
    pub(crate) fn waiting<T>(&self, wait: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let result = wait();
        self.waited.set(self.waited.get() + start.elapsed());
        result
    }

    /// `sleep(ms)`: sleeps, or, when that would pass the wall-clock limit, sleeps until
    /// the limit and throws (uncatchably, through the interrupt that follows).
    pub(crate) fn sleep<'js>(&self, ctx: &Ctx<'js>, ms: f64) -> rquickjs::Result<()> {
        let wanted = Duration::from_secs_f64((ms.max(0.0) / 1000.0).min(1e9));
        let remaining = self.remaining();
        if wanted < remaining {
            self.waiting(|| std::thread::sleep(wanted));
            return Ok(());
        }
        self.waiting(|| std::thread::sleep(remaining));
        self.breach.set(Some(Breach::Wall));
        Err(Exception::throw_internal(
            ctx,
            "sleep would pass the invocation's wall-clock limit",
        ))
    }

    /// Adds a line of output (bounded in count and length).
    pub(crate) fn emit(&self, mut line: String) {
        let mut output = self.output.borrow_mut();
        if output.len() >= JS_OUTPUT_LINES_MAX {
            self.dropped_lines.set(self.dropped_lines.get() + 1);
            return;
        }
        if line.len() > JS_OUTPUT_LINE_BYTES_MAX {
            let mut cut = JS_OUTPUT_LINE_BYTES_MAX;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
            line.push_str(" [line cut]");
        }
        self.host.output(&line);
        output.push(line);
    }

    /// The output, with a last line counting what was dropped.
    pub(crate) fn take_output(&self) -> Vec<String> {
        let mut output = self.output.take();
        let dropped = self.dropped_lines.get();
        if dropped > 0 {
            output.push(format!(
                "[{dropped} more lines dropped: at most {JS_OUTPUT_LINES_MAX} are kept]"
            ));
        }
        output
    }

    /// Throws `error`'s message as a JavaScript `Error` and remembers `error`, so that if
    /// the script does not catch it the invocation fails with this typed error.
    pub(crate) fn raise<'js>(&self, ctx: &Ctx<'js>, error: JsError) -> rquickjs::Error {
        let message = error.to_string();
        *self.raised.borrow_mut() = Some(error);
        Exception::throw_message(ctx, &message)
    }

    /// The raised typed error, if the uncaught exception carries its message.
    pub(crate) fn raised_matching(&self, message: &str) -> Option<JsError> {
        let raised = self.raised.borrow();
        raised
            .as_ref()
            .filter(|error| error.to_string() == message)
            .cloned()
    }
}
