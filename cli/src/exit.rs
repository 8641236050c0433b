//! Exit codes of `monk`: the one place that decides them. Every online command fails
//! with a [`Failure`] whose [`Kind`] names its code; the offline commands (`lint`,
//! `eval`, `dump --from`, the audit commands) already use the same numbers (0, 1, 2).
//! The table is a contract for scripts, listed in `docs/cli.md`; a code is never reused
//! for something else.

use std::process::ExitCode;

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

/// A gRPC status: `Unavailable` made by the client's own transport (the call never
/// reached a peer, or the connection dropped) is [`Kind::Unreachable`]; `Unavailable`
/// or `DeadlineExceeded` sent by a peer is [`Kind::Unavailable`]; anything else the
/// peer refused is [`Kind::Failed`].
impl From<tonic::Status> for Failure {
    fn from(s: tonic::Status) -> Failure {
        let from_transport = std::error::Error::source(&s).is_some();
        let kind = match s.code() {
            tonic::Code::Unavailable if from_transport => Kind::Unreachable,
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => Kind::Unavailable,
            _ => Kind::Failed,
        };
        let reason = match kind {
            Kind::Unreachable => format!("the peer stopped answering: {}", s.message()),
            _ => s.message().to_string(),
        };
        Failure { kind, reason }
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
    fn a_status_sent_by_a_peer_is_not_unreachable() {
        let no_leader = Failure::from(tonic::Status::unavailable("no leader is known yet"));
        assert_eq!(no_leader.kind, Kind::Unavailable);
        let rejected = Failure::from(tonic::Status::invalid_argument("bad token"));
        assert_eq!(rejected.kind, Kind::Failed);
    }
}
