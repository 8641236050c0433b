//! The limits of one invocation: named ceilings with their units, and `Limits`, the
//! values an engine runs with (the ceilings by default; tests and callers may only lower
//! them, never raise them).

use std::time::Duration;

/// Heap of one invocation's runtime. Lifecycle scripts build API requests and parse API
/// responses; 64 MiB holds a response far larger than any cloud API page, and a peer runs
/// only a few scripts at a time.
pub const JS_MEMORY_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Native stack QuickJS may use for JavaScript frames (deep recursion stops here with a
/// `StackLimit` error instead of overflowing the thread's stack). The calling thread needs
/// this much free stack and some more: tokio's blocking threads and the test harness's
/// threads have 2 MiB.
pub const JS_STACK_BYTES_MAX: usize = 512 * 1024;

/// Time spent running JavaScript, not counting `sleep` and waits on the host (HTTP,
/// secrets). An infinite loop stops here; real lifecycle code needs milliseconds.
/// Measured on the wall clock (elapsed minus those waits), not as CPU time, so on a
/// loaded machine a script gets less CPU than this.
pub const JS_COMPUTE_MS_MAX: u64 = 10_000;

/// Wall-clock time of one invocation, `sleep` and HTTP included. Real kits poll a cloud
/// API with `sleep(30000)` until a resource is ready; ten minutes is the longest such wait
/// worth holding a verb for (the executor retries or reports after that).
pub const JS_WALL_MS_MAX: u64 = 600_000;

/// Lines of output (`console.log`, `cli.output`) kept per invocation; more are dropped
/// and one last line says how many. The output travels to the CLI and into the log.
pub const JS_OUTPUT_LINES_MAX: usize = 1_000;

/// Bytes of one output line; longer lines are cut with a marker.
pub const JS_OUTPUT_LINE_BYTES_MAX: usize = 4 * 1024;

/// Bytes of the saved state `main` returns, as JSON. It enters the Raft log with every
/// verb, so it is bounded well below the proposal limit (16 MiB).
pub const JS_STATE_BYTES_MAX: usize = 1024 * 1024;

/// Nesting of `require` calls (a module requiring a module ...): a cycle or runaway chain
/// stops here with a clear error.
pub const JS_REQUIRE_DEPTH_MAX: usize = 32;

/// Length `secret.randString` accepts.
pub const JS_RAND_STRING_CHARS_MAX: usize = 4_096;

/// Timeout of one HTTP request when the script gives none (`timeout` in milliseconds).
/// A script's own `timeout` is kept, but never past the invocation's wall-clock limit.
pub const JS_HTTP_TIMEOUT_DEFAULT_MS: u64 = 30_000;

/// What one invocation may use. `Default` is the ceilings above; `Limits::clamped`
/// lowers nothing and raises nothing above them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Heap bytes (`JS_MEMORY_BYTES_MAX`).
    pub memory_bytes: usize,
    /// Native stack bytes for JavaScript frames (`JS_STACK_BYTES_MAX`).
    pub stack_bytes: usize,
    /// Time running JavaScript (`JS_COMPUTE_MS_MAX`).
    pub compute: Duration,
    /// Wall-clock time, sleeps and host waits included (`JS_WALL_MS_MAX`).
    pub wall: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: JS_MEMORY_BYTES_MAX,
            stack_bytes: JS_STACK_BYTES_MAX,
            compute: Duration::from_millis(JS_COMPUTE_MS_MAX),
            wall: Duration::from_millis(JS_WALL_MS_MAX),
        }
    }
}

impl Limits {
    /// These limits, each capped at its ceiling.
    pub fn clamped(self) -> Self {
        let ceiling = Self::default();
        Self {
            memory_bytes: self.memory_bytes.min(ceiling.memory_bytes),
            stack_bytes: self.stack_bytes.min(ceiling.stack_bytes),
            compute: self.compute.min(ceiling.compute),
            wall: self.wall.min(ceiling.wall),
        }
    }
}
