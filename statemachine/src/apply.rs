//! `apply`: the one writer of [`State`]. Deterministic: the same state and entry give
//! the same result and the same new state on every peer. A command that is invalid for
//! the current state is *rejected* (recorded in the result, state unchanged apart from
//! the applied index); only an entry this build cannot interpret is an error.
//!
//! Why one file of this size: `apply_command` is one exhaustive match over `Command`,
//! so a new kind does not compile until its rule is written here, next to the others;
//! scheduling and placement already live apart (`schedule/`, `placement.rs`), and half
//! the file is its unit tests.

use serde::{Deserialize, Serialize};

use crate::command::{Command, LoadedTemplate, PeerId, SecretScope};
use crate::entry::Entry;
use crate::hub;
use crate::overlay::{self, OverlayIdentity};
use crate::schedule;
use crate::state::{secret_key, Peer, PeerStatus, Secret, State, Template, User};
use crate::FORMAT_VERSION;

/// Most peers a cluster records (members and departed); keeps state bounded.
pub const PEERS_MAX: usize = 4096;
/// Most stored definitions; a hub mirror holds a few thousand.
pub const TEMPLATES_MAX: usize = 100_000;
use monk_scripting::monkscript::path::TemplatePath;
pub use monk_scripting::monkscript::path::PATH_BYTES_MAX;
/// Largest sealed secret, in bytes (secrets are credentials and keys, not files).
pub const SEALED_SECRET_BYTES_MAX: usize = 64 * 1024;
/// Most outstanding join tokens; older ones are forgotten first.
pub const JOIN_TOKENS_MAX: usize = 64;
/// Longest peer or cluster name, in bytes.
pub const NAME_BYTES_MAX: usize = 128;
/// Most tags one `peer-tagged` command adds and removes together.
pub const TAGS_PER_COMMAND_MAX: usize = 64;
/// Most users a cluster records.
pub const USERS_MAX: usize = 1024;
/// The user `cluster-created` makes for whoever created the cluster.
pub const ADMIN_USER: &str = "admin";

/// The result of applying one entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Applied {
    Accepted {
        /// The id assigned by `cluster-created` / `peer-joined`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peer_id: Option<PeerId>,
    },
    Rejected {
        reason: Rejection,
    },
}

impl Applied {
    const ACCEPTED: Applied = Applied::Accepted { peer_id: None };

    pub fn is_accepted(&self) -> bool {
        matches!(self, Applied::Accepted { .. })
    }
}

/// Why a command was refused; the same on every peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "rejection", rename_all = "kebab-case")]
pub enum Rejection {
    #[error("the cluster already exists")]
    ClusterExists,
    #[error("no cluster has been created yet")]
    NoCluster,
    #[error("invalid name {name:?}: {why}")]
    InvalidName { name: String, why: String },
    #[error("unknown peer {peer}")]
    UnknownPeer { peer: PeerId },
    #[error("peer {peer} has left the cluster")]
    PeerGone { peer: PeerId },
    #[error("the join token is not valid for this cluster")]
    BadJoinToken,
    #[error("the join token expired (at {expires_at_ms} ms since the Unix epoch); issue a new one with `monk cluster token`")]
    ExpiredJoinToken { expires_at_ms: u64 },
    #[error("peer {peer} already uses {what} {value:?}")]
    PeerConflict {
        peer: PeerId,
        what: String,
        value: String,
    },
    #[error("invalid path {path:?}: {why}")]
    InvalidPath { path: String, why: String },
    #[error("no template at {path}")]
    UnknownTemplate { path: String },
    #[error("no secret {name} ({scope})")]
    UnknownSecret { name: String, scope: String },
    #[error("limit reached: {what} (at most {max})")]
    Limit { what: String, max: usize },
    #[error("{path} cannot be resolved: {why}")]
    Unresolvable { path: String, why: String },
    #[error("{path} is a {kind}, not a runnable or group")]
    NotRunnable { path: String, kind: String },
    #[error("{path} is already running (use `monk update` to apply a changed definition)")]
    AlreadyRunning { path: String },
    #[error("no workload {path} is running or stopped")]
    UnknownWorkload { path: String },
    #[error("{path} has no variable {name}")]
    UnknownVariable { path: String, name: String },
    #[error("no user {name}")]
    UnknownUser { name: String },
    #[error("{name} is the last admin; add another admin first")]
    LastAdmin { name: String },
    #[error("the cluster has no admin yet: the first user, not {name}, must be an admin")]
    FirstUserNotAdmin { name: String },
    #[error("invalid overlay: {why}")]
    InvalidOverlay { why: String },
    #[error("hub kit {kit} of {hub}: its digest is {found}, its definitions hash to {computed}")]
    HubDigestMismatch {
        hub: String,
        kit: String,
        found: String,
        computed: String,
    },
    #[error("hub source {hub} has no kit {kit} with digest {digest}")]
    UnknownHubKit {
        hub: String,
        kit: String,
        digest: String,
    },
    #[error("no hub source {hub}")]
    UnknownHubSource { hub: String },
    #[error("{path} is being purged (its purge verb runs first)")]
    BeingPurged { path: String },
    #[error("invalid image: {why}")]
    InvalidImage { why: String },
    #[error("no image {image} in the cluster registry")]
    UnknownImage { image: String },
    #[error("invalid registry credential for {host:?}: {why}")]
    InvalidRegistryCredential { host: String, why: String },
    #[error("no credential for registry {host}")]
    UnknownRegistry { host: String },
    #[error("stale report for {path}#{replica}: {why}")]
    StaleReport {
        path: String,
        replica: u32,
        why: String,
    },
}

/// An entry this build cannot apply: the peer must stop rather than diverge.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ApplyError {
    #[error("entry {index} has format version {found}; this build applies up to {supported}")]
    NewerFormat {
        index: u64,
        found: u32,
        supported: u32,
    },
    #[error("entry {index} goes backwards (last applied {last})")]
    OutOfOrder { index: u64, last: u64 },
}

/// Apply one committed entry.
pub fn apply(state: &mut State, entry: &Entry) -> Result<Applied, ApplyError> {
    if entry.proposal.format_version > FORMAT_VERSION {
        return Err(ApplyError::NewerFormat {
            index: entry.index,
            found: entry.proposal.format_version,
            supported: FORMAT_VERSION,
        });
    }
    advance(state, entry.index, entry.term)?;
    let result = apply_command(
        state,
        entry.index,
        entry.proposal.format_version,
        &entry.proposal.command,
    );
    Ok(match result {
        Ok(applied) => applied,
        Err(reason) => Applied::Rejected { reason },
    })
}

/// Record that a Raft-internal entry (blank or membership) was applied.
pub fn advance(state: &mut State, index: u64, term: u64) -> Result<(), ApplyError> {
    if index <= state.last_applied_index && state.last_applied_index != 0 {
        return Err(ApplyError::OutOfOrder {
            index,
            last: state.last_applied_index,
        });
    }
    state.last_applied_index = index;
    state.last_applied_term = term;
    Ok(())
}

/// Applies one command; `version` is the entry's format version, for rules that changed
/// between formats (see [`crate::FORMAT_VERSION`]).
fn apply_command(
    state: &mut State,
    index: u64,
    version: u32,
    command: &Command,
) -> Result<Applied, Rejection> {
    match command {
        Command::Noop => Ok(Applied::ACCEPTED),
        Command::ClusterCreated {
            name,
            first_peer_name,
            first_peer_address,
            tags,
            capacity,
            facts,
            admin_token_sha256,
            overlay_range,
            overlay,
            open_network,
        } => {
            if state.cluster_name.is_some() {
                return Err(Rejection::ClusterExists);
            }
            check_name(name)?;
            check_name(first_peer_name)?;
            let range = match overlay {
                Some(_) => Some(overlay_range.unwrap_or_else(overlay::default_range)),
                None => *overlay_range,
            };
            if let Some(range) = range {
                overlay::check_range(range).map_err(|why| Rejection::InvalidOverlay { why })?;
            }
            if let Some(identity) = overlay {
                overlay::check_advertised(state, identity, None)?;
            }
            if let Some(token_sha256) = admin_token_sha256 {
                check_token_hash(token_sha256)?;
                state.users.insert(
                    ADMIN_USER.to_string(),
                    User {
                        role: crate::Role::Admin,
                        token_sha256: token_sha256.clone(),
                        added_at_index: index,
                    },
                );
            }
            state.cluster_name = Some(name.clone());
            state.open_network = *open_network;
            state.next_peer_id = 1;
            let peer = new_peer(
                state,
                index,
                first_peer_name,
                first_peer_address,
                tags,
                *capacity,
            );
            set_facts(state, peer, *facts);
            if let Some(range) = range {
                overlay::set_range(state, range);
            }
            if let Some(identity) = overlay {
                overlay::set_identity(state, peer, identity);
            }
            Ok(Applied::Accepted {
                peer_id: Some(peer),
            })
        }
        Command::JoinTokenIssued {
            token_sha256,
            expires_at_ms,
        } => {
            require_cluster(state)?;
            if state.join_tokens.len() >= JOIN_TOKENS_MAX {
                let oldest = state
                    .join_tokens
                    .iter()
                    .min_by_key(|(_, at)| **at)
                    .map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    state.join_tokens.remove(&oldest);
                    state.join_token_expiry.remove(&oldest);
                }
            }
            state.join_tokens.insert(token_sha256.clone(), index);
            if let Some(at) = expires_at_ms {
                state.join_token_expiry.insert(token_sha256.clone(), *at);
            }
            Ok(Applied::ACCEPTED)
        }
        Command::JoinTokenRevoked { token_sha256 } => {
            require_cluster(state)?;
            if state.join_tokens.remove(token_sha256).is_none() {
                return Err(Rejection::BadJoinToken);
            }
            state.join_token_expiry.remove(token_sha256);
            Ok(Applied::ACCEPTED)
        }
        Command::PeerJoined {
            name,
            address,
            token_sha256,
            tags,
            capacity,
            facts,
            admitted_at_ms,
            overlay,
        } => {
            require_cluster(state)?;
            if !state.join_tokens.contains_key(token_sha256) {
                return Err(Rejection::BadJoinToken);
            }
            let expiry = state.join_token_expiry.get(token_sha256);
            if let (Some(expires_at_ms), Some(at)) = (expiry, admitted_at_ms) {
                if at > expires_at_ms {
                    return Err(Rejection::ExpiredJoinToken {
                        expires_at_ms: *expires_at_ms,
                    });
                }
            }
            check_name(name)?;
            for peer in state.members() {
                if peer.name == *name {
                    return Err(Rejection::PeerConflict {
                        peer: peer.id,
                        what: "name".into(),
                        value: name.clone(),
                    });
                }
                if peer.address == *address {
                    return Err(Rejection::PeerConflict {
                        peer: peer.id,
                        what: "address".into(),
                        value: address.clone(),
                    });
                }
            }
            if state.peers.len() >= PEERS_MAX {
                return Err(Rejection::Limit {
                    what: "peers".into(),
                    max: PEERS_MAX,
                });
            }
            if let Some(identity) = overlay {
                overlay::check_advertised(state, identity, None)?;
            }
            let range = match (state.overlay_range, overlay) {
                (None, None) => None,
                _ => Some(overlay::range_for(state, Some(state.next_peer_id))?),
            };
            if version >= 3 {
                // Single-use: the token that admitted this peer admits no other.
                state.join_tokens.remove(token_sha256);
                state.join_token_expiry.remove(token_sha256);
            }
            let id = new_peer(state, index, name, address, tags, *capacity);
            set_facts(state, id, *facts);
            if let Some(range) = range {
                overlay::set_range(state, range);
            }
            if let Some(identity) = overlay {
                overlay::set_identity(state, id, identity);
            }
            schedule::place_all_pending(state, index);
            Ok(Applied::Accepted { peer_id: Some(id) })
        }
        Command::PeerLeft { peer: id } => {
            let peer = member_mut(state, *id)?;
            peer.status = PeerStatus::Left { at_index: index };
            schedule::peer_lost(state, index, *id, false);
            Ok(Applied::ACCEPTED)
        }
        Command::PeerDown { peer: id, reason } => {
            let peer = member_mut(state, *id)?;
            if peer.is_up() {
                peer.status = PeerStatus::Down {
                    reason: reason.clone(),
                    since_index: index,
                };
                // Format 5 honours `recovery.when`; older entries moved every replica.
                schedule::peer_lost(state, index, *id, version >= 5);
            }
            Ok(Applied::ACCEPTED)
        }
        Command::PeerUp { peer } => {
            let peer = member_mut(state, *peer)?;
            let was_up = peer.is_up();
            peer.status = PeerStatus::Up;
            if !was_up {
                schedule::place_all_pending(state, index);
            }
            Ok(Applied::ACCEPTED)
        }
        Command::TemplatesLoaded { templates } => {
            require_cluster(state)?;
            for t in templates {
                check_path(&t.path, version)?;
            }
            let new_paths = templates
                .iter()
                .filter(|t| !state.templates.contains_key(&t.path))
                .count();
            if state.templates.len() + new_paths > TEMPLATES_MAX {
                return Err(Rejection::Limit {
                    what: "templates".into(),
                    max: TEMPLATES_MAX,
                });
            }
            for LoadedTemplate {
                path,
                kind,
                definition,
            } in templates
            {
                let generation = state
                    .templates
                    .get(path)
                    .map_or(1, |old| old.generation + 1);
                state.templates.insert(
                    path.clone(),
                    Template {
                        path: path.clone(),
                        kind: kind.clone(),
                        definition: definition.clone(),
                        generation,
                        loaded_at_index: index,
                    },
                );
            }
            Ok(Applied::ACCEPTED)
        }
        Command::HubKitsPublished { source, kits } => {
            require_cluster(state)?;
            check_hub_source(state, source)?;
            for kit in kits {
                check_hub_kit(source, kit, version)?;
            }
            let held = state.hub.get(source);
            let kit_count = held.map_or(0, |s| s.kits.len())
                + kits
                    .iter()
                    .filter(|k| !held.is_some_and(|s| s.kits.contains_key(&k.name)))
                    .count();
            if kit_count > hub::HUB_KITS_PER_SOURCE_MAX {
                return Err(Rejection::Limit {
                    what: format!("kits in hub source {source}"),
                    max: hub::HUB_KITS_PER_SOURCE_MAX,
                });
            }
            let incoming: usize = kits.iter().map(|k| k.templates.len()).sum();
            if state.templates.len() + state.hub_template_count() + incoming > TEMPLATES_MAX {
                return Err(Rejection::Limit {
                    what: "templates (loaded and hub)".into(),
                    max: TEMPLATES_MAX,
                });
            }
            let entry = state.hub.entry(source.clone()).or_default();
            hub::publish(entry, index, kits);
            Ok(Applied::ACCEPTED)
        }
        Command::HubSourceSynced {
            source,
            commit,
            kits,
        } => {
            require_cluster(state)?;
            check_hub_source(state, source)?;
            if let Some(commit) = commit {
                check_hub_text("commit", commit, hub::HUB_NAME_BYTES_MAX)?;
            }
            let held = state.hub.get(source);
            for wanted in kits {
                let found = held.and_then(|s| s.kits.get(&wanted.name));
                if found.is_none_or(|k| k.digest != wanted.digest) {
                    return Err(Rejection::UnknownHubKit {
                        hub: source.clone(),
                        kit: wanted.name.clone(),
                        digest: wanted.digest.clone(),
                    });
                }
            }
            let entry = state.hub.entry(source.clone()).or_default();
            let gone: Vec<String> = entry
                .kits
                .keys()
                .filter(|name| !kits.iter().any(|k| &k.name == *name))
                .cloned()
                .collect();
            for name in gone {
                hub::remove_kit(entry, &name);
            }
            entry.commit = commit.clone();
            entry.synced_at_index = Some(index);
            Ok(Applied::ACCEPTED)
        }
        Command::HubSourceRemoved { source } => {
            if state.hub.remove(source).is_none() {
                return Err(Rejection::UnknownHubSource {
                    hub: source.clone(),
                });
            }
            Ok(Applied::ACCEPTED)
        }
        Command::TemplatesRemoved { paths } => {
            if let Some(missing) = paths.iter().find(|p| !state.templates.contains_key(*p)) {
                return Err(Rejection::UnknownTemplate {
                    path: missing.clone(),
                });
            }
            for path in paths {
                state.templates.remove(path);
            }
            Ok(Applied::ACCEPTED)
        }
        Command::SecretSet {
            name,
            scope,
            sealed,
        } => {
            require_cluster(state)?;
            check_secret_name(name)?;
            if let SecretScope::Entity(path) = scope {
                check_path(path, version)?;
            }
            if sealed.len() > SEALED_SECRET_BYTES_MAX {
                return Err(Rejection::Limit {
                    what: "sealed secret bytes".into(),
                    max: SEALED_SECRET_BYTES_MAX,
                });
            }
            let key = secret_key(name, scope);
            state.secrets.insert(
                key,
                Secret {
                    name: name.clone(),
                    scope: scope.clone(),
                    sealed: sealed.clone(),
                    set_at_index: index,
                },
            );
            Ok(Applied::ACCEPTED)
        }
        Command::SecretRemoved { name, scope } => {
            let key = secret_key(name, scope);
            if state.secrets.remove(&key).is_none() {
                let scope = match scope {
                    SecretScope::Global => "global".to_string(),
                    SecretScope::Entity(p) => p.clone(),
                };
                return Err(Rejection::UnknownSecret {
                    name: name.clone(),
                    scope,
                });
            }
            Ok(Applied::ACCEPTED)
        }
        Command::WorkloadRun {
            path,
            tag,
            peer,
            overrides,
            evaluated,
        } => {
            require_cluster(state)?;
            check_path(path, version)?;
            schedule::run(
                state,
                index,
                schedule::RunRequest {
                    path,
                    tag: tag.as_ref(),
                    peer: peer.as_ref(),
                    overrides,
                    evaluated: evaluated.as_ref(),
                    // Entries before format 7 refused entity instances.
                    entities: version >= 7,
                },
            )
        }
        Command::WorkloadUpdate {
            path,
            overrides,
            evaluated,
        } => schedule::update(state, index, path, overrides, evaluated.as_ref()),
        Command::WorkloadStop { path } => schedule::stop(state, index, path),
        Command::WorkloadPurge { path } => schedule::purge(state, index, path),
        Command::WorkloadRestart { path } => schedule::restart(state, index, path),
        Command::WorkloadScale { path, replicas } => schedule::scale(state, index, path, *replicas),
        Command::WorkloadReport {
            peer,
            path,
            replica,
            generation,
            status,
            message,
            addresses,
        } => schedule::report(
            state,
            index,
            schedule::Report {
                peer: *peer,
                path,
                replica: *replica,
                generation: *generation,
                status: *status,
                message,
                addresses,
            },
        ),
        Command::EntityVerbDone {
            peer,
            path,
            generation,
            step,
            verb,
            state: saved,
            error,
            args,
        } => schedule::verb_done(
            state,
            index,
            schedule::VerbDone {
                peer: *peer,
                path,
                generation: *generation,
                step: *step,
                verb,
                state: saved.as_ref(),
                error: error.as_ref(),
                args,
            },
        ),
        Command::ActionDone {
            peer,
            path,
            action,
            args,
            error,
        } => schedule::action_done(
            state,
            index,
            schedule::ActionDone {
                peer: *peer,
                path,
                action,
                args,
                error: error.as_ref(),
            },
        ),
        Command::ImagePushed {
            repository,
            tag,
            digest,
            media_type,
            manifest,
            blobs,
            manifests,
            peer,
        } => {
            require_cluster(state)?;
            member_mut(state, *peer)?;
            crate::registry::pushed(
                state,
                index,
                crate::registry::Pushed {
                    repository,
                    tag: tag.as_deref(),
                    digest,
                    media_type,
                    manifest,
                    blobs,
                    manifests,
                    peer: *peer,
                },
            )?;
            Ok(Applied::ACCEPTED)
        }
        Command::ImageRemoved { repository, tag } => {
            crate::registry::removed(state, repository, tag)?;
            Ok(Applied::ACCEPTED)
        }
        Command::BlobsHeld { peer, blobs } => {
            member_mut(state, *peer)?;
            crate::registry::held(state, *peer, blobs)?;
            Ok(Applied::ACCEPTED)
        }
        Command::RegistryCredentialSet {
            host,
            username,
            password_secret,
        } => {
            require_cluster(state)?;
            check_secret_name(password_secret)?;
            crate::pull_credentials::set(state, index, host, username, password_secret)?;
            Ok(Applied::ACCEPTED)
        }
        Command::RegistryCredentialRemoved { host } => {
            if state.registries.remove(host).is_none() {
                return Err(Rejection::UnknownRegistry { host: host.clone() });
            }
            Ok(Applied::ACCEPTED)
        }
        Command::PeerTagged { peer, add, remove } => {
            for tag in add.iter().chain(remove) {
                check_name(tag)?;
            }
            if add.len() + remove.len() > TAGS_PER_COMMAND_MAX {
                return Err(Rejection::Limit {
                    what: "tag changes in one command".into(),
                    max: TAGS_PER_COMMAND_MAX,
                });
            }
            let member = member_mut(state, *peer)?;
            member.tags.retain(|t| !remove.contains(t));
            for tag in add {
                if !member.tags.contains(tag) {
                    member.tags.push(tag.clone());
                }
            }
            member.tags.sort();
            schedule::peer_retagged(state, index, *peer);
            Ok(Applied::ACCEPTED)
        }
        Command::PeerFactsReported { peer, facts } => {
            let member = member_mut(state, *peer)?;
            if member.facts != *facts {
                member.facts = *facts;
                schedule::place_all_pending(state, index);
            }
            Ok(Applied::ACCEPTED)
        }
        Command::UserAdded {
            name,
            role,
            token_sha256,
        } => {
            require_cluster(state)?;
            check_name(name)?;
            check_token_hash(token_sha256)?;
            if let Some((other, _)) = state.user_by_token(token_sha256) {
                if other != name {
                    return Err(Rejection::InvalidName {
                        name: name.clone(),
                        why: format!("its credential is already the credential of {other}"),
                    });
                }
            }
            if !state.users.contains_key(name) && state.users.len() >= USERS_MAX {
                return Err(Rejection::Limit {
                    what: "users".into(),
                    max: USERS_MAX,
                });
            }
            let last_admin = state
                .users
                .get(name)
                .is_some_and(|u| u.role == crate::Role::Admin)
                && *role != crate::Role::Admin
                && admins(state) == 1;
            if last_admin {
                return Err(Rejection::LastAdmin { name: name.clone() });
            }
            if admins(state) == 0 && *role != crate::Role::Admin {
                return Err(Rejection::FirstUserNotAdmin { name: name.clone() });
            }
            state.users.insert(
                name.clone(),
                User {
                    role: *role,
                    token_sha256: token_sha256.clone(),
                    added_at_index: index,
                },
            );
            Ok(Applied::ACCEPTED)
        }
        Command::UserRemoved { name } => {
            let Some(user) = state.users.get(name) else {
                return Err(Rejection::UnknownUser { name: name.clone() });
            };
            if user.role == crate::Role::Admin && admins(state) == 1 {
                return Err(Rejection::LastAdmin { name: name.clone() });
            }
            state.users.remove(name);
            Ok(Applied::ACCEPTED)
        }
        Command::PeerOverlayChanged {
            peer,
            public_key,
            endpoint,
        } => {
            member_mut(state, *peer)?;
            let identity = OverlayIdentity {
                public_key: public_key.clone(),
                endpoint: endpoint.clone(),
            };
            overlay::check_advertised(state, &identity, Some(*peer))?;
            let range = overlay::range_for(state, None)?;
            overlay::set_range(state, range);
            overlay::set_identity(state, *peer, &identity);
            Ok(Applied::ACCEPTED)
        }
    }
}

/// How many users hold the admin role.
fn admins(state: &State) -> usize {
    state
        .users
        .values()
        .filter(|u| u.role == crate::Role::Admin)
        .count()
}

/// A credential hash is 64 lowercase hex digits.
fn check_token_hash(hash: &str) -> Result<(), Rejection> {
    let ok = hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    match ok {
        true => Ok(()),
        false => Err(Rejection::InvalidName {
            name: hash.to_string(),
            why: "a credential hash is 64 lowercase hex digits".into(),
        }),
    }
}

fn new_peer(
    state: &mut State,
    index: u64,
    name: &str,
    address: &str,
    tags: &[String],
    capacity: crate::Capacity,
) -> PeerId {
    let id = state.next_peer_id;
    state.next_peer_id += 1;
    let peer = Peer {
        id,
        name: name.to_string(),
        address: address.to_string(),
        tags: tags.to_vec(),
        capacity,
        facts: crate::command::PeerFacts::default(),
        status: PeerStatus::Up,
        joined_at_index: index,
        overlay: None,
    };
    state.peers.insert(id, peer);
    id
}

fn set_facts(state: &mut State, peer: PeerId, facts: Option<crate::command::PeerFacts>) {
    if let (Some(facts), Some(p)) = (facts, state.peers.get_mut(&peer)) {
        p.facts = facts;
    }
}

fn require_cluster(state: &State) -> Result<(), Rejection> {
    state
        .cluster_name
        .as_ref()
        .map(|_| ())
        .ok_or(Rejection::NoCluster)
}

fn member_mut(state: &mut State, id: PeerId) -> Result<&mut Peer, Rejection> {
    let peer = state
        .peers
        .get_mut(&id)
        .ok_or(Rejection::UnknownPeer { peer: id })?;
    if !peer.is_member() {
        return Err(Rejection::PeerGone { peer: id });
    }
    Ok(peer)
}

/// Peer and cluster names: 1..=128 bytes of letters, digits, `-`, `_`, `.`.
fn check_name(name: &str) -> Result<(), Rejection> {
    let why = if name.is_empty() {
        Some("must not be empty".to_string())
    } else if name.len() > NAME_BYTES_MAX {
        Some(format!("longer than {NAME_BYTES_MAX} bytes"))
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        Some("only letters, digits, '-', '_' and '.' are allowed".to_string())
    } else {
        None
    };
    why.map_or(Ok(()), |why| {
        Err(Rejection::InvalidName {
            name: name.to_string(),
            why,
        })
    })
}

/// A source may be named when it is followed already or there is room for one more.
fn check_hub_source(state: &State, source: &str) -> Result<(), Rejection> {
    check_hub_text("hub source", source, hub::HUB_SOURCE_BYTES_MAX)?;
    if !state.hub.contains_key(source) && state.hub.len() >= hub::HUB_SOURCES_MAX {
        return Err(Rejection::Limit {
            what: "hub sources".into(),
            max: hub::HUB_SOURCES_MAX,
        });
    }
    Ok(())
}

/// A kit's name and metadata are bounded, its paths valid, its digest its content's.
fn check_hub_kit(source: &str, kit: &hub::HubKit, version: u32) -> Result<(), Rejection> {
    check_hub_text("kit name", &kit.name, hub::HUB_NAME_BYTES_MAX)?;
    for (what, value) in [("repo", &kit.meta.repo), ("version", &kit.meta.version)] {
        if let Some(value) = value {
            check_hub_text(what, value, hub::HUB_NAME_BYTES_MAX)?;
        }
    }
    if let Some(description) = &kit.meta.description {
        if description.len() > hub::HUB_DESCRIPTION_BYTES_MAX {
            return Err(Rejection::Limit {
                what: format!("bytes of kit {}'s description", kit.name),
                max: hub::HUB_DESCRIPTION_BYTES_MAX,
            });
        }
    }
    for tag in &kit.meta.tags {
        check_hub_text("tag", tag, hub::HUB_NAME_BYTES_MAX)?;
    }
    for t in &kit.templates {
        check_path(&t.path, version)?;
    }
    let computed = hub::kit_digest(&kit.meta, &kit.templates);
    if computed != kit.digest {
        return Err(Rejection::HubDigestMismatch {
            hub: source.into(),
            kit: kit.name.clone(),
            found: kit.digest.clone(),
            computed,
        });
    }
    Ok(())
}

/// Not empty, no control characters, at most `max` bytes.
fn check_hub_text(what: &str, text: &str, max: usize) -> Result<(), Rejection> {
    let why = if text.is_empty() {
        "empty".to_string()
    } else if text.len() > max {
        format!("longer than {max} bytes")
    } else if text.chars().any(char::is_control) {
        "contains a control character".to_string()
    } else {
        return Ok(());
    };
    Err(Rejection::InvalidName {
        name: format!("{what} {}", text.chars().take(64).collect::<String>()),
        why,
    })
}

fn check_secret_name(name: &str) -> Result<(), Rejection> {
    check_name(name)
}

/// Stored template paths are absolute-free `namespace/name[/...]`: no empty, `.` or
/// `..` segments, no leading or trailing slash.
pub fn check_path(path: &str, format_version: u32) -> Result<(), Rejection> {
    if format_version >= 2 {
        return TemplatePath::parse(path)
            .map(|_| ())
            .map_err(|e| Rejection::InvalidPath {
                path: path.to_string(),
                why: e.to_string(),
            });
    }
    check_path_v1(path)
}

/// The path rule of format 1 entries, kept so old logs replay as they did.
fn check_path_v1(path: &str) -> Result<(), Rejection> {
    let invalid = |why: &str| {
        Err(Rejection::InvalidPath {
            path: path.to_string(),
            why: why.to_string(),
        })
    };
    if path.len() > PATH_BYTES_MAX {
        return invalid("too long");
    }
    let segments: Vec<&str> = path.split('/').collect();
    if segments.len() < 2 {
        return invalid("expected namespace/name");
    }
    if segments.iter().any(|s| s.is_empty()) {
        return invalid("empty segment (leading, trailing or double slash)");
    }
    if segments.iter().any(|s| *s == "." || *s == "..") {
        return invalid("'.' and '..' segments are not allowed");
    }
    if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return invalid("whitespace is not allowed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{Capacity, Proposal};
    use monk_scripting::tree::Tree;

    fn entry(index: u64, command: Command) -> Entry {
        Entry {
            index,
            term: 1,
            proposal: Proposal {
                format_version: FORMAT_VERSION,
                proposed_at_ms: index,
                actor: "test".into(),
                request_id: format!("r{index}"),
                command,
            },
        }
    }

    fn created() -> State {
        let mut s = State::default();
        let c = Command::ClusterCreated {
            name: "c".into(),
            first_peer_name: "p1".into(),
            first_peer_address: "127.0.0.1:1".into(),
            tags: vec![],
            capacity: Capacity::default(),
            facts: None,
            admin_token_sha256: None,
            overlay_range: None,
            overlay: None,
            open_network: false,
        };
        assert_eq!(
            apply(&mut s, &entry(1, c)).unwrap(),
            Applied::Accepted { peer_id: Some(1) }
        );
        s
    }

    fn pushed(tag: &str, body: &str, blobs: &[(&str, u64)]) -> Command {
        Command::ImagePushed {
            repository: "app".into(),
            tag: Some(tag.into()),
            digest: crate::registry::sha256_digest(body.as_bytes()),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            manifest: body.into(),
            blobs: blobs
                .iter()
                .map(|(b, size)| crate::registry::BlobRef {
                    digest: crate::registry::sha256_digest(b.as_bytes()),
                    size: *size,
                })
                .collect(),
            manifests: Vec::new(),
            peer: 1,
        }
    }

    /// Pull credentials: a non-canonical host (an alias of Docker Hub, a URL) or a user
    /// name HTTP Basic cannot carry is refused; a set replaces the host's credential;
    /// a removal of a host without one is refused.
    #[test]
    fn registry_credentials_are_checked_replaced_and_removed() {
        let mut s = created();
        let set = |host: &str, username: &str| Command::RegistryCredentialSet {
            host: host.into(),
            username: username.into(),
            password_secret: "pw".into(),
        };
        for (index, bad) in [
            (2, set("index.docker.io", "ci")),
            (3, set("https://ghcr.io", "ci")),
            (4, set("ghcr.io", "a:b")),
            (5, set("ghcr.io", "")),
        ] {
            let refused = apply(&mut s, &entry(index, bad)).unwrap();
            assert!(
                matches!(
                    &refused,
                    Applied::Rejected {
                        reason: Rejection::InvalidRegistryCredential { .. }
                    }
                ),
                "{refused:?}"
            );
        }
        assert!(s.registry_credentials().is_empty());
        assert!(apply(&mut s, &entry(6, set("docker.io", "ci")))
            .unwrap()
            .is_accepted());
        assert!(apply(&mut s, &entry(7, set("docker.io", "bot")))
            .unwrap()
            .is_accepted());
        let hub = &s.registry_credentials()["docker.io"];
        assert_eq!((hub.username.as_str(), hub.set_at_index), ("bot", 7));
        assert_eq!(
            s.credential_for_image("nginx:1")
                .map(|c| c.username.as_str()),
            Some("bot")
        );
        assert!(s.credential_for_image("ghcr.io/a/b").is_none());
        assert!(!s.registry_rows()[0].secret_set);
        let removed = Command::RegistryCredentialRemoved {
            host: "docker.io".into(),
        };
        assert!(apply(&mut s, &entry(8, removed.clone()))
            .unwrap()
            .is_accepted());
        let again = apply(&mut s, &entry(9, removed)).unwrap();
        assert!(
            matches!(
                &again,
                Applied::Rejected {
                    reason: Rejection::UnknownRegistry { .. }
                }
            ),
            "{again:?}"
        );
        s.check_invariants().unwrap();
    }

    /// The registry's catalog: a digest that is not the manifest's is refused, tags
    /// share blobs, a removal keeps what another tag names and drops the rest, a
    /// `blobs-held` adds holders of named blobs only.
    #[test]
    fn images_are_recorded_checked_and_pruned() {
        let mut s = created();
        let mut forged = pushed("1", "{\"a\":1}", &[("base", 10)]);
        if let Command::ImagePushed { digest, .. } = &mut forged {
            *digest = crate::registry::sha256_digest(b"other");
        }
        let refused = apply(&mut s, &entry(2, forged)).unwrap();
        assert!(
            matches!(&refused, Applied::Rejected { reason: Rejection::InvalidImage { why } } if why.contains("hashes to")),
            "{refused:?}"
        );
        assert!(s.images().is_empty());
        let ok =
            |s: &mut State, index, c| assert!(apply(s, &entry(index, c)).unwrap().is_accepted());
        ok(
            &mut s,
            3,
            pushed("1", "{\"a\":1}", &[("base", 10), ("one", 5)]),
        );
        ok(
            &mut s,
            4,
            pushed("2", "{\"a\":2}", &[("base", 10), ("two", 7)]),
        );
        assert_eq!(s.blobs().len(), 3);
        assert_eq!(s.image_rows().len(), 2);
        let digest = |b: &str| crate::registry::sha256_digest(b.as_bytes());
        let held = Command::BlobsHeld {
            peer: 1,
            blobs: vec![digest("base"), digest("unknown")],
        };
        ok(&mut s, 5, held);
        assert!(!s.blobs().contains_key(&digest("unknown")));
        let removed = Command::ImageRemoved {
            repository: "app".into(),
            tag: "1".into(),
        };
        ok(&mut s, 6, removed.clone());
        let mut want = vec![digest("base"), digest("two")];
        want.sort();
        let left: Vec<String> = s.blobs().keys().cloned().collect();
        assert_eq!(left, want, "the blob only tag 1 named is gone");
        assert_eq!(s.image_rows().len(), 1);
        assert!(matches!(
            apply(&mut s, &entry(7, removed)).unwrap(),
            Applied::Rejected {
                reason: Rejection::UnknownImage { .. }
            }
        ));
        s.check_invariants().unwrap();
    }

    #[test]
    fn join_needs_issued_token_and_assigns_next_id() {
        let mut s = created();
        let join = Command::PeerJoined {
            name: "p2".into(),
            address: "127.0.0.1:2".into(),
            token_sha256: "ab".into(),
            tags: vec![],
            capacity: Capacity::default(),
            facts: None,
            admitted_at_ms: None,
            overlay: None,
        };
        assert_eq!(
            apply(&mut s, &entry(2, join.clone())).unwrap(),
            Applied::Rejected {
                reason: Rejection::BadJoinToken
            }
        );
        apply(
            &mut s,
            &entry(
                3,
                Command::JoinTokenIssued {
                    token_sha256: "ab".into(),
                    expires_at_ms: None,
                },
            ),
        )
        .unwrap();
        assert_eq!(
            apply(&mut s, &entry(4, join.clone())).unwrap(),
            Applied::Accepted { peer_id: Some(2) }
        );
        // Single-use since format 3: the same token admits no one else.
        let again = apply(&mut s, &entry(5, join.clone())).unwrap();
        assert_eq!(
            again,
            Applied::Rejected {
                reason: Rejection::BadJoinToken
            }
        );
        assert!(s.join_tokens().is_empty());
        s.check_invariants().unwrap();
        // An entry written by format 2 left the token valid, and still does on replay.
        let mut old = created();
        let issued = Command::JoinTokenIssued {
            token_sha256: "ab".into(),
            expires_at_ms: None,
        };
        for (index, command) in [(3, issued), (4, join)] {
            let mut e = entry(index, command);
            e.proposal.format_version = 2;
            apply(&mut old, &e).unwrap();
        }
        assert!(old.join_tokens().contains_key("ab"));
    }

    #[test]
    fn an_expired_or_revoked_join_token_admits_no_one() {
        let mut s = created();
        let issue = |hash: &str, expires: u64| Command::JoinTokenIssued {
            token_sha256: hash.into(),
            expires_at_ms: Some(expires),
        };
        let join = |name: &str, hash: &str, at: u64| Command::PeerJoined {
            name: name.into(),
            address: format!("{name}:1"),
            token_sha256: hash.into(),
            tags: vec![],
            capacity: Capacity::default(),
            facts: None,
            admitted_at_ms: Some(at),
            overlay: None,
        };
        apply(&mut s, &entry(2, issue("a", 1_000))).unwrap();
        assert_eq!(
            apply(&mut s, &entry(3, join("late", "a", 1_001))).unwrap(),
            Applied::Rejected {
                reason: Rejection::ExpiredJoinToken {
                    expires_at_ms: 1_000
                }
            }
        );
        assert_eq!(
            apply(&mut s, &entry(4, join("early", "a", 999))).unwrap(),
            Applied::Accepted { peer_id: Some(2) }
        );
        assert!(s.join_token_expiry().is_empty(), "consumed with its expiry");
        apply(&mut s, &entry(5, issue("b", 5_000))).unwrap();
        let revoke = Command::JoinTokenRevoked {
            token_sha256: "b".into(),
        };
        assert_eq!(
            apply(&mut s, &entry(6, revoke.clone())).unwrap(),
            Applied::ACCEPTED
        );
        assert_eq!(
            apply(&mut s, &entry(7, join("c", "b", 10))).unwrap(),
            Applied::Rejected {
                reason: Rejection::BadJoinToken
            }
        );
        assert_eq!(
            apply(&mut s, &entry(8, revoke)).unwrap(),
            Applied::Rejected {
                reason: Rejection::BadJoinToken
            }
        );
        s.check_invariants().unwrap();
    }

    #[test]
    fn users_keep_an_admin_and_unique_credentials() {
        let mut s = created();
        let hash = |c: char| c.to_string().repeat(64);
        let add = |name: &str, role: crate::Role, c: char| Command::UserAdded {
            name: name.into(),
            role,
            token_sha256: hash(c),
        };
        let rejected = |s: &mut State, i: u64, c: Command| match apply(s, &entry(i, c)).unwrap() {
            Applied::Rejected { reason } => reason.to_string(),
            accepted => panic!("accepted: {accepted:?}"),
        };
        use crate::Role::*;
        assert!(rejected(&mut s, 2, add("ada", Operator, 'a')).contains("must be an admin"));
        assert_eq!(
            apply(&mut s, &entry(3, add("root", Admin, 'b'))).unwrap(),
            Applied::ACCEPTED
        );
        assert!(
            rejected(&mut s, 4, add("eve", Viewer, 'b')).contains("already the credential of root")
        );
        assert!(rejected(&mut s, 5, add("bad name", Viewer, 'c')).contains("invalid name"));
        assert!(rejected(&mut s, 6, add("x", Viewer, 'X')).contains("64 lowercase hex"));
        apply(&mut s, &entry(7, add("ada", Operator, 'a'))).unwrap();
        assert!(rejected(
            &mut s,
            8,
            Command::UserRemoved {
                name: "root".into()
            }
        )
        .contains("last admin"));
        assert!(rejected(&mut s, 9, add("root", Viewer, 'b')).contains("last admin"));
        let (name, user) = s.user_by_token(&hash('a')).unwrap();
        assert_eq!((name, user.role), ("ada", Operator));
        apply(
            &mut s,
            &entry(10, Command::UserRemoved { name: "ada".into() }),
        )
        .unwrap();
        assert!(s.user_by_token(&hash('a')).is_none());
        assert!(
            rejected(&mut s, 11, Command::UserRemoved { name: "ada".into() })
                .contains("no user ada")
        );
        s.check_invariants().unwrap();
    }

    #[test]
    fn templates_reload_bumps_generation_and_remove_unknown_is_rejected() {
        let mut s = created();
        let t = LoadedTemplate {
            path: "ns/a".into(),
            kind: "runnable".into(),
            definition: Tree::Null,
        };
        apply(
            &mut s,
            &entry(
                2,
                Command::TemplatesLoaded {
                    templates: vec![t.clone()],
                },
            ),
        )
        .unwrap();
        apply(
            &mut s,
            &entry(3, Command::TemplatesLoaded { templates: vec![t] }),
        )
        .unwrap();
        assert_eq!(s.templates["ns/a"].generation, 2);
        let r = apply(
            &mut s,
            &entry(
                4,
                Command::TemplatesRemoved {
                    paths: vec!["ns/a".into(), "ns/b".into()],
                },
            ),
        )
        .unwrap();
        assert_eq!(
            r,
            Applied::Rejected {
                reason: Rejection::UnknownTemplate {
                    path: "ns/b".into()
                }
            }
        );
        assert!(
            s.templates.contains_key("ns/a"),
            "a rejected removal removes nothing"
        );
        assert_eq!(s.last_applied_index, 4);
    }

    #[test]
    fn bad_paths_are_rejected() {
        for bad in ["a", "/a/b", "a/b/", "a//b", "a/./b", "a/../b", "a/b c"] {
            assert!(check_path(bad, 1).is_err(), "{bad}");
            assert!(check_path(bad, FORMAT_VERSION).is_err(), "{bad}");
        }
        check_path("ns/name/sub", 1).unwrap();
        check_path("ns/name/sub", FORMAT_VERSION).unwrap();
        // Format 1 entries keep the looser rule, so old logs replay as they did; the
        // linter's rule applies from format 2 on.
        assert!(check_path("ns/wéb@1", 1).is_ok());
        assert_eq!(
            check_path("ns/wéb@1", 2),
            Err(Rejection::InvalidPath {
                path: "ns/wéb@1".into(),
                why: "path segment `wéb@1` in `ns/wéb@1` has characters other than letters, digits, `.`, `_` and `-`".into()
            })
        );
    }

    #[test]
    fn newer_format_is_an_error_and_changes_nothing() {
        let mut s = created();
        let mut e = entry(2, Command::Noop);
        e.proposal.format_version = FORMAT_VERSION + 1;
        assert!(matches!(
            apply(&mut s, &e),
            Err(ApplyError::NewerFormat { index: 2, .. })
        ));
        assert_eq!(s.last_applied_index, 1);
    }
}
