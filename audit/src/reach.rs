//! Which entities a command can touch, decided before it is applied: the entity paths
//! it names, whether it can move workloads it does not name, and which peer it
//! concerns. `monk history` replays only around entries that may touch its entity, so
//! a kind classified wrongly here is silently missing from an incident's history.
//!
//! [`reach`] is an exhaustive `match` over `Command` with no wildcard arm: a new
//! command kind does not compile until its audit behaviour is chosen here (and its
//! paths in `Command::paths`, also exhaustive).

use monk_statemachine::{Command, PeerId};

/// Which peer a command concerns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerReach {
    /// None in particular.
    None,
    /// This peer, named in the command.
    Named(PeerId),
    /// The peer the state machine assigns an id to when it applies the command (the
    /// id is only known from the result).
    Assigned,
}

/// What a command can touch (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reach<'c> {
    /// Entity paths the command names (`Command::paths`).
    pub paths: Vec<&'c str>,
    /// Whether it can place, move, stop or remove workloads it does not name: group
    /// commands, and peer changes that rerun placement.
    pub moves_workloads: bool,
    pub peer: PeerReach,
}

/// Classifies `command`; see the module docs.
pub fn reach(command: &Command) -> Reach<'_> {
    let (moves_workloads, peer) = match command {
        Command::Noop
        | Command::JoinTokenIssued { .. }
        | Command::JoinTokenRevoked { .. }
        | Command::TemplatesLoaded { .. }
        | Command::TemplatesRemoved { .. }
        | Command::SecretSet { .. }
        | Command::SecretRemoved { .. }
        | Command::UserAdded { .. }
        | Command::UserRemoved { .. }
        | Command::WorkloadScale { .. }
        // Workloads keep the definition they were started with: a new Hub kit moves
        // nothing until `monk update`.
        | Command::HubKitsPublished { .. }
        | Command::HubSourceSynced { .. }
        | Command::HubSourceRemoved { .. }
        // The registry's catalog moves no workload (a runnable pulls its image when
        // its container is created).
        | Command::ImagePushed { .. }
        | Command::ImageRemoved { .. }
        | Command::BlobsHeld { .. }
        // A credential is used when a container is next created; nothing moves.
        | Command::RegistryCredentialSet { .. }
        | Command::RegistryCredentialRemoved { .. }
        // A report names its peer, but only changes what the workload observed.
        | Command::WorkloadReport { .. }
        // An entity's result changes its saved state and status; entity instances ask
        // no resources, so even one forgotten after `purge` frees no room.
        | Command::EntityVerbDone { .. }
        // An action's record changes only what `describe` shows of the workload.
        | Command::ActionDone { .. } => (false, PeerReach::None),
        // A key or endpoint is no placement fact: nothing moves.
        Command::PeerOverlayChanged { peer, .. } => (false, PeerReach::Named(*peer)),
        // The first peer joins an empty cluster: no workload exists yet.
        Command::ClusterCreated { .. } => (false, PeerReach::Assigned),
        // A path may name a group: every runnable under it moves.
        Command::WorkloadRun { .. }
        | Command::WorkloadUpdate { .. }
        | Command::WorkloadStop { .. }
        | Command::WorkloadPurge { .. }
        | Command::WorkloadRestart { .. } => (true, PeerReach::None),
        // A new peer can take pending replicas.
        Command::PeerJoined { .. } => (true, PeerReach::Assigned),
        Command::PeerLeft { peer }
        | Command::PeerDown { peer, .. }
        | Command::PeerUp { peer }
        | Command::PeerTagged { peer, .. }
        | Command::PeerFactsReported { peer, .. } => (true, PeerReach::Named(*peer)),
    };
    Reach {
        paths: command.paths(),
        moves_workloads,
        peer,
    }
}
