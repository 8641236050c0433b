//! Who may call what (pure). A request's [`Caller`] comes from its connection (a
//! client certificate the cluster CA issued names a member peer) or its bearer
//! credential (a user, whose role the log records); anything else is anonymous. Every
//! RPC has one [`Rule`] ([`rule`], an exhaustive match over [`Rpc`], whose names a
//! tidy test keeps equal to the proto's), and every command kind the roles that may
//! propose it ([`proposer_role`], exhaustive over `Command`).
//!
//! Peers are trusted with what peers do (Raft, heartbeats, forwarding a user's request
//! on, which the first peer already authorized); a peer that left or was removed is
//! refused, because its certificate names an id the log says is gone.

use monk_statemachine::{Command, PeerId, Role, State};
use sha2::{Digest, Sha256};

/// The metadata key a user's credential travels in (`Bearer <credential>`).
pub const AUTHORIZATION: &str = "authorization";
/// Prefix of a user credential.
pub const CREDENTIAL_PREFIX: &str = "mku_";

/// Who made a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// A member peer, by the certificate the cluster CA issued it.
    Peer(PeerId),
    /// A user, by its credential.
    User { name: String, role: Role },
    /// No certificate and no credential. `local`: from this machine (loopback, or the
    /// address it called).
    Anonymous { local: bool },
}

impl Caller {
    /// The actor recorded for what this caller proposes: the user's name, or
    /// `peer:<id>`.
    pub fn actor(&self) -> String {
        match self {
            Caller::Peer(id) => format!("peer:{id}"),
            Caller::User { name, .. } => name.clone(),
            Caller::Anonymous { .. } => "anonymous".into(),
        }
    }

    fn describe(&self) -> String {
        match self {
            Caller::Peer(id) => format!("peer {id}"),
            Caller::User { name, role } => format!("user {name} ({role})"),
            Caller::Anonymous { .. } => "an anonymous caller".into(),
        }
    }
}

/// Declares [`Rpc`] with its proto method names.
macro_rules! rpcs {
    ($($variant:ident,)*) => {
        /// Every RPC of `node/proto/monk.proto` (both services).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Rpc {
            $($variant,)*
        }

        impl Rpc {
            /// Every RPC, in proto order.
            pub const ALL: &'static [Rpc] = &[$(Rpc::$variant,)*];

            /// The method name as the proto writes it.
            pub fn name(self) -> &'static str {
                match self {
                    $(Rpc::$variant => stringify!($variant),)*
                }
            }
        }
    };
}

rpcs! {
    AppendEntries,
    Vote,
    InstallSnapshot,
    Propose,
    Query,
    ClusterNew,
    IssueToken,
    ClusterJoin,
    AdmitPeer,
    Leave,
    RemovePeer,
    Heartbeat,
    Info,
    Consensus,
    ExportRaftData,
    ContainerLogs,
    SetSecret,
    GetSecret,
    ContainerExec,
    EntityDo,
    Events,
    FetchBlob,
    BuildImage,
}

/// Who may make a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Member peers only.
    Peers,
    /// Users with at least this role, and member peers (which forward users' calls).
    Role(Role),
    /// Admins only: not even peers.
    AdminOnly,
    /// Anyone who reaches the port: the call carries its own proof (a join token) or
    /// tells nothing worth hiding (version and whether the peer has a cluster).
    Anyone,
    /// Setting up this very peer (`cluster new`, `cluster join`): anonymous callers on
    /// this machine (loopback, or the peer's own address), or an admin.
    Local,
}

/// The rule of `rpc`.
pub fn rule(rpc: Rpc) -> Rule {
    match rpc {
        Rpc::AppendEntries | Rpc::Vote | Rpc::InstallSnapshot | Rpc::Heartbeat | Rpc::FetchBlob => {
            Rule::Peers
        }
        Rpc::Query | Rpc::Consensus | Rpc::ContainerLogs | Rpc::Events => Rule::Role(Role::Viewer),
        // What may be proposed also depends on the command (see `proposer_role`).
        Rpc::Propose | Rpc::ContainerExec | Rpc::EntityDo | Rpc::BuildImage => {
            Rule::Role(Role::Operator)
        }
        // A follower forwards a secret read or a removal to the leader.
        Rpc::GetSecret | Rpc::RemovePeer => Rule::Role(Role::Admin),
        Rpc::SetSecret | Rpc::IssueToken | Rpc::Leave | Rpc::ExportRaftData => Rule::AdminOnly,
        Rpc::Info | Rpc::AdmitPeer => Rule::Anyone,
        Rpc::ClusterNew | Rpc::ClusterJoin => Rule::Local,
    }
}

/// The weakest role a user needs to propose `command` through `Propose`; `None` for
/// what only peers propose (membership, liveness, executor reports) or what has its
/// own call (a secret is sealed by `SetSecret`, a token made by `IssueToken`).
pub fn proposer_role(command: &Command) -> Option<Role> {
    match command {
        Command::Noop
        | Command::TemplatesLoaded { .. }
        | Command::TemplatesRemoved { .. }
        | Command::HubKitsPublished { .. }
        | Command::HubSourceSynced { .. }
        | Command::HubSourceRemoved { .. }
        | Command::WorkloadRun { .. }
        | Command::WorkloadUpdate { .. }
        | Command::WorkloadStop { .. }
        | Command::WorkloadPurge { .. }
        | Command::WorkloadScale { .. }
        | Command::WorkloadRestart { .. }
        | Command::ImageRemoved { .. } => Some(Role::Operator),
        Command::SecretRemoved { .. }
        // Registry credentials name secrets, which admins manage.
        | Command::RegistryCredentialSet { .. }
        | Command::RegistryCredentialRemoved { .. }
        | Command::JoinTokenRevoked { .. }
        | Command::PeerTagged { .. }
        | Command::UserAdded { .. }
        | Command::UserRemoved { .. } => Some(Role::Admin),
        Command::ClusterCreated { .. }
        | Command::JoinTokenIssued { .. }
        | Command::PeerJoined { .. }
        | Command::PeerLeft { .. }
        | Command::PeerDown { .. }
        | Command::PeerUp { .. }
        | Command::SecretSet { .. }
        | Command::WorkloadReport { .. }
        | Command::EntityVerbDone { .. }
        | Command::ActionDone { .. }
        | Command::PeerFactsReported { .. }
        | Command::PeerOverlayChanged { .. }
        // A peer's registry proposes what was pushed to it and what it fetched.
        | Command::ImagePushed { .. }
        | Command::BlobsHeld { .. } => None,
    }
}

/// Why a request is refused (mapped to `PermissionDenied`, or `Unauthenticated` for
/// a credential that is not valid).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    /// This peer cannot judge yet: it has not applied any user (a peer that just
    /// joined and is still catching up). Retry, or ask another peer.
    #[error("{0}")]
    NotCaughtUp(String),
}

/// SHA-256 (hex) of a user credential, as the log stores it.
pub fn credential_sha256(credential: &str) -> String {
    hex::encode(Sha256::digest(credential.as_bytes()))
}

/// Identifies the caller of a request that came over a connection whose client
/// certificate named `peer` (if any), from `remote_local` (loopback), with
/// `credential` (if any), judged against `state`.
pub fn identify(
    peer: Option<PeerId>,
    remote_local: bool,
    credential: Option<&str>,
    state: &State,
) -> Result<Caller, Denied> {
    if let Some(id) = peer {
        return match state.peer(id) {
            Some(p) if !p.is_member() => Err(Denied::Forbidden(format!(
                "peer {id} has left the cluster; its certificate is no longer accepted"
            ))),
            // A peer unknown to this state is one that joined after what this peer has
            // applied (a learner catching up hears from members it has not read of).
            _ => Ok(Caller::Peer(id)),
        };
    }
    match credential {
        None => Ok(Caller::Anonymous {
            local: remote_local,
        }),
        Some(credential) => match state.user_by_token(&credential_sha256(credential)) {
            Some((name, user)) => Ok(Caller::User {
                name: name.to_string(),
                role: user.role,
            }),
            None if state.users().is_empty() => Err(Denied::NotCaughtUp(
                "this peer knows no users yet (it is catching up with its cluster, or is in none); retry, or ask another peer".into(),
            )),
            None => Err(Denied::Unauthenticated(
                "the credential is not valid on this cluster (unknown or removed user, or another cluster's credential)".into(),
            )),
        },
    }
}

/// Whether `caller` may call `rpc`.
pub fn authorize(rpc: Rpc, caller: &Caller) -> Result<(), Denied> {
    let allowed = match (rule(rpc), caller) {
        (Rule::Anyone, _) => true,
        (Rule::Peers, Caller::Peer(_)) => true,
        (Rule::Role(_), Caller::Peer(_)) => true,
        (Rule::Role(need), Caller::User { role, .. }) => role >= &need,
        (Rule::AdminOnly, Caller::User { role, .. }) => *role == Role::Admin,
        (Rule::Local, Caller::Anonymous { local }) => *local,
        (Rule::Local, Caller::User { role, .. }) => *role == Role::Admin,
        _ => false,
    };
    if allowed {
        return Ok(());
    }
    let need = match rule(rpc) {
        Rule::Peers => "only member peers may call it".to_string(),
        Rule::Role(role) => format!("it needs the {role} role"),
        Rule::AdminOnly => "it needs the admin role".to_string(),
        Rule::Local => {
            "it is allowed only from this peer's own machine, or to an admin".to_string()
        }
        Rule::Anyone => String::new(),
    };
    let hint = match caller {
        Caller::Anonymous { .. } => {
            " (no credential was sent: pass --credentials FILE or set MONK_CREDENTIALS)"
        }
        _ => "",
    };
    Err(Denied::Forbidden(format!(
        "{} may not call {}: {need}{hint}",
        caller.describe(),
        rpc.name()
    )))
}

/// Whether `caller` may propose `command` (after [`authorize`] let it call `Propose`).
pub fn authorize_command(caller: &Caller, command: &Command) -> Result<(), Denied> {
    let allowed = match (caller, proposer_role(command)) {
        (Caller::Peer(_), _) => true,
        (Caller::User { role, .. }, Some(need)) => *role >= need,
        _ => false,
    };
    match allowed {
        true => Ok(()),
        false => Err(Denied::Forbidden(match proposer_role(command) {
            Some(need) => format!(
                "{} may not propose {}: it needs the {need} role",
                caller.describe(),
                command.kind()
            ),
            None => format!(
                "{} may not propose {}: only peers propose it",
                caller.describe(),
                command.kind()
            ),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_nest_and_peers_are_not_admins() {
        let user = |role| Caller::User {
            name: "u".into(),
            role,
        };
        assert!(authorize(Rpc::Query, &user(Role::Viewer)).is_ok());
        assert!(authorize(Rpc::Propose, &user(Role::Viewer)).is_err());
        assert!(authorize(Rpc::Propose, &user(Role::Operator)).is_ok());
        assert!(authorize(Rpc::GetSecret, &user(Role::Operator)).is_err());
        assert!(authorize(Rpc::GetSecret, &user(Role::Admin)).is_ok());
        assert!(authorize(Rpc::ExportRaftData, &Caller::Peer(2)).is_err());
        assert!(authorize(Rpc::AppendEntries, &user(Role::Admin)).is_err());
        assert!(authorize(Rpc::ClusterNew, &Caller::Anonymous { local: true }).is_ok());
        assert!(authorize(Rpc::ClusterNew, &Caller::Anonymous { local: false }).is_err());
        let e = authorize(Rpc::Query, &Caller::Anonymous { local: true }).unwrap_err();
        assert!(e.to_string().contains("no credential was sent"), "{e}");
        let stop = Command::WorkloadStop { path: "a/b".into() };
        assert!(authorize_command(&user(Role::Operator), &stop).is_ok());
        let down = Command::PeerDown {
            peer: 1,
            reason: "x".into(),
        };
        let e = authorize_command(&user(Role::Admin), &down).unwrap_err();
        assert!(e.to_string().contains("only peers propose it"), "{e}");
        assert!(authorize_command(&Caller::Peer(1), &down).is_ok());
    }
}
