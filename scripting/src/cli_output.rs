//! The result of a CLI command run as a library function: what it prints and its exit
//! code. The `monk` binary writes these out; tests compare them.

/// What a command prints and how it exits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommandOutput {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: i32,
}
