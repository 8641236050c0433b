//! The result of a CLI command implemented as a library function: what to print
//! on stdout and stderr and the process exit code. The `monk` binary writes
//! these out; tests assert on them directly.

/// Output of one command run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommandOutput {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: i32,
}
