//! The typed client API: every read a client can ask for ([`Query`]), and the errors a
//! call can end in ([`ClientError`]), so `monk` needs neither tonic nor openraft types.
//!
//! On the wire a query is the proto's `QueryRequest { what, arg }` (kept for
//! compatibility); [`Query::what`] and [`Query::parse`] are the only translation, and the
//! proto's comment lists [`Query::NAMES`] (a tidy test checks it).

use std::fmt;

/// A read, answered from the applied state (linearizable unless `stale`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Query {
    /// The cluster's peers with their Raft role: `Vec<PeerRow>`.
    Peers,
    /// Stored definitions, one row each: `Vec<TemplateRow>`.
    Templates,
    /// One stored definition as loaded: `Template`.
    Template { path: String },
    /// One definition with its `inherits` chain resolved on the peer: a `Tree`.
    ResolvedTemplate { path: String },
    /// Every stored definition by path: `BTreeMap<String, Tree>`.
    TemplatesAll,
    /// Peers and their projections: `ClusterView`.
    Cluster,
    /// Every replica of every workload: `Vec<InstanceView>`.
    Instances,
    /// One workload: `Workload`.
    Workload { path: String },
    /// Secret names and scopes (never values): `Vec<SecretName>`.
    Secrets,
    /// Users and their roles (never credentials): `Vec<UserRow>`.
    Users,
    /// Outstanding join tokens (their hashes, never the tokens): `Vec<JoinTokenRow>`.
    JoinTokens,
    /// The whole state with secrets by name only.
    State,
    /// Every member's overlay interface as that peer sees it (the answering peer asks
    /// the others): `Vec<OverlayRow>`.
    Overlay,
    /// This peer's overlay interface: `OverlayStatus`.
    OverlayLocal,
    /// The Hub catalog, kit by kit, without definitions: `Vec<HubKitRow>`.
    Hub,
    /// One Hub definition and where it comes from: `HubTemplateView`.
    HubTemplate { path: String },
    /// The cluster registry's tagged images: `Vec<ImageRow>`.
    Images,
    /// Pull credentials for outside registries: `Vec<RegistryRow>` (no passwords).
    Registries,
}

impl Query {
    /// Every query's wire name, in declaration order.
    pub const NAMES: &'static [&'static str] = &[
        "peers",
        "templates",
        "template",
        "resolved-template",
        "templates-all",
        "cluster",
        "instances",
        "workload",
        "secrets",
        "users",
        "join-tokens",
        "state",
        "overlay",
        "overlay-local",
        "hub",
        "hub-template",
        "images",
        "registries",
    ];

    /// The wire name (`QueryRequest.what`).
    pub fn what(&self) -> &'static str {
        match self {
            Query::Peers => "peers",
            Query::Templates => "templates",
            Query::Template { .. } => "template",
            Query::ResolvedTemplate { .. } => "resolved-template",
            Query::TemplatesAll => "templates-all",
            Query::Cluster => "cluster",
            Query::Instances => "instances",
            Query::Workload { .. } => "workload",
            Query::Secrets => "secrets",
            Query::Users => "users",
            Query::JoinTokens => "join-tokens",
            Query::State => "state",
            Query::Overlay => "overlay",
            Query::OverlayLocal => "overlay-local",
            Query::Hub => "hub",
            Query::HubTemplate { .. } => "hub-template",
            Query::Images => "images",
            Query::Registries => "registries",
        }
    }

    /// The argument (`QueryRequest.arg`): the path, where the query takes one.
    pub fn arg(&self) -> &str {
        match self {
            Query::Template { path }
            | Query::ResolvedTemplate { path }
            | Query::Workload { path }
            | Query::HubTemplate { path } => path,
            _ => "",
        }
    }

    /// The query a `QueryRequest` asks for.
    pub fn parse(what: &str, arg: &str) -> Result<Query, String> {
        let path = || arg.trim_start_matches('/').to_string();
        Ok(match what {
            "peers" => Query::Peers,
            "templates" => Query::Templates,
            "template" => Query::Template { path: path() },
            "resolved-template" => Query::ResolvedTemplate { path: path() },
            "templates-all" => Query::TemplatesAll,
            "cluster" => Query::Cluster,
            "instances" => Query::Instances,
            "workload" => Query::Workload { path: path() },
            "secrets" => Query::Secrets,
            "users" => Query::Users,
            "join-tokens" => Query::JoinTokens,
            "state" => Query::State,
            "overlay" => Query::Overlay,
            "overlay-local" => Query::OverlayLocal,
            "hub" => Query::Hub,
            "images" => Query::Images,
            "registries" => Query::Registries,
            "hub-template" => Query::HubTemplate { path: path() },
            other => {
                return Err(format!(
                    "unknown query {other:?} (known: {})",
                    Query::NAMES.join(", ")
                ))
            }
        })
    }
}

/// How a call failed, as a client needs to tell failures apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request was wrong (bad input, unknown path, refused before proposing).
    Invalid,
    /// The cluster is not in a state to do it (not a member, no cluster yet).
    Precondition,
    /// Not allowed (a bad join token).
    Denied,
    /// No peer answered: the call never reached one, or the connection dropped.
    Unreachable,
    /// The peer answered that it cannot serve now (no leader, no quorum): retrying
    /// later may work. The outcome of a write that got this may be unknown (the
    /// message says so).
    Unavailable,
    /// A bug or a broken peer.
    Internal,
}

/// A failed call: its kind and a one-line reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ClientError {
    pub kind: ErrorKind,
    pub message: String,
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl ClientError {
    pub fn unavailable(message: impl Into<String>) -> ClientError {
        ClientError {
            kind: ErrorKind::Unavailable,
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> ClientError {
        ClientError {
            kind: ErrorKind::Internal,
            message: message.into(),
        }
    }

    /// Whether the peer refused the request itself (as opposed to not answering).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Invalid | ErrorKind::Precondition | ErrorKind::Denied
        )
    }
}

impl From<tonic::Status> for ClientError {
    fn from(status: tonic::Status) -> ClientError {
        use tonic::Code;
        // A status with a transport error as its source was made by this client: the
        // request never reached a peer, or the connection broke.
        let from_transport = std::error::Error::source(&status).is_some();
        let kind = match status.code() {
            Code::Unavailable | Code::Unknown if from_transport => ErrorKind::Unreachable,
            Code::InvalidArgument | Code::NotFound | Code::AlreadyExists | Code::OutOfRange => {
                ErrorKind::Invalid
            }
            Code::FailedPrecondition | Code::Aborted | Code::ResourceExhausted => {
                ErrorKind::Precondition
            }
            Code::PermissionDenied | Code::Unauthenticated => ErrorKind::Denied,
            // `Unknown` is what a broken connection turns into: the peer's answer, if
            // any, was lost.
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown => {
                ErrorKind::Unavailable
            }
            _ => ErrorKind::Internal,
        };
        ClientError {
            kind,
            message: status.message().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_query_round_trips_through_the_wire_form() {
        let path = "ns/app".to_string();
        let all = [
            Query::Peers,
            Query::Templates,
            Query::Template { path: path.clone() },
            Query::ResolvedTemplate { path: path.clone() },
            Query::TemplatesAll,
            Query::Cluster,
            Query::Instances,
            Query::Workload { path: path.clone() },
            Query::Secrets,
            Query::Users,
            Query::JoinTokens,
            Query::State,
            Query::Overlay,
            Query::OverlayLocal,
            Query::Hub,
            Query::HubTemplate { path: path.clone() },
            Query::Images,
            Query::Registries,
        ];
        assert_eq!(all.len(), Query::NAMES.len());
        for (query, name) in all.iter().zip(Query::NAMES) {
            assert_eq!(query.what(), *name);
            assert_eq!(Query::parse(query.what(), query.arg()).as_ref(), Ok(query));
        }
        assert!(Query::parse("nope", "")
            .unwrap_err()
            .contains("known: peers, templates"));
    }
}
