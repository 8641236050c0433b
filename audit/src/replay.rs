//! The state at an index or time ([`replay_to`]), the change between two points
//! ([`state_diff`]), and [`Stopped`]: where a replay that could not reach its target
//! ended, so a finding can still report everything before it.

use std::fmt;

use monk_log::replay::{Base, ReplayError, Replayer, Start, Target};
use monk_log::DataDirReader;
use monk_statemachine::{diff, State, StateDiff};

use crate::AuditError;

/// A replay stopped early at a corrupt entry, a gap, or an entry this build cannot
/// apply; the state holds everything up to `after_index`.
#[derive(Debug)]
pub struct Stopped {
    pub error: ReplayError,
    pub after_index: u64,
}

impl Stopped {
    pub(crate) fn at(error: ReplayError, state: &State) -> Stopped {
        Stopped {
            error,
            after_index: state.last_applied_index(),
        }
    }
}

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}; the output above covers everything up to index {}",
            self.error, self.after_index
        )
    }
}

/// A replay that ran to its target or stopped early.
pub struct Replayed<'r> {
    pub replayer: Replayer<'r>,
    pub stopped: Option<Stopped>,
}

impl Replayed<'_> {
    pub fn state(&self) -> &State {
        self.replayer.state()
    }

    /// The state the replay started from.
    pub fn base(&self) -> &Base {
        self.replayer.base()
    }
}

/// Replays to `target`, starting from the nearest usable state.
pub fn replay_to(reader: &DataDirReader, target: Target) -> Result<Replayed<'_>, AuditError> {
    let mut replayer = Replayer::open(reader, target, Start::Nearest)?;
    let stopped = replayer
        .run()
        .err()
        .map(|e| Stopped::at(e, replayer.state()));
    Ok(Replayed { replayer, stopped })
}

/// The state at two points and what changed between them.
pub struct StateChange {
    pub before: State,
    pub after: State,
    pub diff: StateDiff,
    /// The replay from `a` to `b` stopped early; `after` is where it got to.
    pub stopped: Option<Stopped>,
}

/// What changed between `a` and `b` (`a` not after `b`). A replay that cannot reach
/// `a` is an error; one that stops between `a` and `b` is reported in the result.
pub fn state_diff(reader: &DataDirReader, a: Target, b: Target) -> Result<StateChange, AuditError> {
    let Replayed {
        mut replayer,
        stopped,
    } = replay_to(reader, a)?;
    if let Some(stopped) = stopped {
        return Err(AuditError::Stopped(stopped));
    }
    let before = replayer.state().clone();
    replayer.retarget(b);
    let stopped = replayer
        .run()
        .err()
        .map(|e| Stopped::at(e, replayer.state()));
    let after = replayer.into_state();
    let diff = diff(&before, &after);
    Ok(StateChange {
        before,
        after,
        diff,
        stopped,
    })
}

/// The digest of the state replayed to exactly `index` (an error when the log ends
/// before it): what a live peer that applied `index` must hold.
pub fn digest_at(reader: &DataDirReader, index: u64) -> Result<String, AuditError> {
    let mut replayer = Replayer::open(reader, Target::Index(index), Start::Nearest)?;
    replayer.run()?;
    let state = replayer.state();
    if state.last_applied_index() != index {
        return Err(AuditError::LogEnds(index));
    }
    Ok(monk_statemachine::digest(state))
}
