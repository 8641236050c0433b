//! Exit codes of `monk`: the one place that decides them. Every online command fails
//! with a [`Failure`] whose [`Kind`] names its code; the offline commands (`lint`,
//! `eval`, `dump --from`, the audit commands) already use the same numbers (0, 1, 2).
//! The table is a contract for scripts, listed in `docs/cli.md`; a code is never reused
//! for something else.

use std::process::ExitCode;

use monk_node::api::{ClientError, ErrorKind};

/// Why a command failed, which decides its exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The operation failed: the cluster rejected it, a replica failed, crash-looped or
    /// did not come up before the deadline, a name was not found. Exit 1.
    Failed,
    /// The command line is wrong: a flag's value, a `--set` pair, a file named on the
    /// command line that cannot be read. Exit 2, as clap exits for unknown flags.
    Usage,
    /// No peer answers at `--addr`: connection refused, no route, the connection
    /// dropped. Exit 3: start `monkd` or point `--addr` elsewhere.
    Unreachable,
    /// The peer answered but the cluster cannot serve the request now: no leader is
    /// known, the leader cannot be reached, the peer is in no cluster, a deadline
    /// passed inside the cluster. Exit 4: worth retrying.
    Unavailable,
}

impl Kind {
    /// The process exit code.
    pub const fn code(self) -> u8 {
        match self {
            Kind::Failed => 1,
            Kind::Usage => 2,
            Kind::Unreachable => 3,
            Kind::Unavailable => 4,
        }
    }
}

/// The table as `monk --help` ends with it, beside the kinds so they change together.
pub const HELP: &str = "Exit codes: 0 done, 1 the operation failed (rejected, a replica failed or \
crash-loops, timeout), 2 usage, 3 no peer answers, 4 the peer answered but the cluster \
cannot serve now (no leader). See docs/cli.md.";

/// A failure with a one-line reason and the kind that decides the exit code.
#[derive(Debug)]
pub struct Failure {
    pub kind: Kind,
    pub reason: String,
}

impl Failure {
    pub fn failed(reason: impl Into<String>) -> Failure {
        Failure {
            kind: Kind::Failed,
            reason: reason.into(),
        }
    }

    pub fn usage(reason: impl Into<String>) -> Failure {
        Failure {
            kind: Kind::Usage,
            reason: reason.into(),
        }
    }

    pub fn unreachable(reason: impl Into<String>) -> Failure {
        Failure {
            kind: Kind::Unreachable,
            reason: reason.into(),
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.kind.code())
    }
}

/// A failed call: no peer reached is [`Kind::Unreachable`]; a peer that cannot serve
/// now (no leader, no quorum) is [`Kind::Unavailable`]; anything the peer refused or
/// failed is [`Kind::Failed`].
impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Failure {
        match e.kind {
            ErrorKind::Unreachable => Failure {
                kind: Kind::Unreachable,
                reason: format!("the peer stopped answering: {}", e.message),
            },
            ErrorKind::Unavailable => Failure {
                kind: Kind::Unavailable,
                reason: e.message,
            },
            ErrorKind::Invalid
            | ErrorKind::Precondition
            | ErrorKind::Denied
            | ErrorKind::Internal => Failure {
                kind: Kind::Failed,
                reason: e.message,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_stable() {
        let codes = [
            Kind::Failed,
            Kind::Usage,
            Kind::Unreachable,
            Kind::Unavailable,
        ]
        .map(Kind::code);
        assert_eq!(codes, [1, 2, 3, 4]);
        for code in codes {
            assert!(
                HELP.contains(&format!(" {code} ")),
                "{code} missing from HELP"
            );
        }
    }

    #[test]
    fn each_kind_of_client_error_has_its_exit_code() {
        let error = |kind, message: &str| ClientError {
            kind,
            message: message.into(),
        };
        let no_leader = Failure::from(error(ErrorKind::Unavailable, "no leader is known yet"));
        assert_eq!(no_leader.kind, Kind::Unavailable);
        let gone = Failure::from(error(ErrorKind::Unreachable, "connection refused"));
        assert_eq!(gone.kind, Kind::Unreachable);
        assert!(gone.reason.starts_with("the peer stopped answering"));
        let rejected = Failure::from(error(ErrorKind::Denied, "bad token"));
        assert_eq!(rejected.kind, Kind::Failed);
    }
}
