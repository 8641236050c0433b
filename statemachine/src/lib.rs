//! The pure, deterministic cluster state machine.
//!
//! Every cluster mutation is a [`Command`] carried in a [`Proposal`] (who, when, which
//! request) and committed to the Raft log as an [`Entry`] (plus index and term). Every
//! peer feeds committed entries, in order, to [`apply`], which changes [`State`] and
//! returns an [`Applied`] result: accepted, or rejected with a deterministic reason.
//!
//! Deliberately absent from this crate and its dependency tree: tokio, clocks,
//! randomness, file and network I/O. Time is the proposer's timestamp inside the entry
//! and is used for display and audit only, never for a decision. CI fails if
//! `cargo tree -p monk-statemachine` shows tokio.

pub mod apply;
pub mod command;
pub mod diff;
pub mod entry;
pub mod evaluate;
pub mod hub;
pub mod overlay;
pub mod placement;
pub mod pull_credentials;
pub mod registry;
pub mod schedule;
pub mod snapshot;
pub mod state;
pub mod view;
pub mod workload;

pub use apply::{advance, apply, Applied, ApplyError, Rejection};
pub use command::{
    Capacity, Command, Evaluated, EvaluatedByPath, HostPort, InstanceStatus, LoadedTemplate,
    PeerFacts, PeerId, Proposal, Role, SecretScope,
};
pub use diff::{apply_diff, diff, DiffMismatch, MapChange, SecretName, StateDiff};
pub use entry::{decode_proposal, DecodeError, Entry};
pub use hub::{HubKit, HubKitInfo, HubKitRef, HubSource, HubTemplate, KitMeta, Origin};
pub use overlay::{Ipv4Net, OverlayIdentity, PeerOverlay};
pub use pull_credentials::{RegistryCredential, RegistryRow};
pub use registry::{BlobHolders, BlobRef, ImageRow, Manifest, Repository};
pub use snapshot::{
    decode_snapshot, digest, encode_snapshot, inspect_snapshot, SnapshotError, SnapshotHeader,
};
pub use state::{InvariantViolation, Peer, PeerStatus, Secret, State, Template, User};
pub use view::{ClusterView, NodeView};
pub use workload::{
    Constraints, Desired, EntityLife, Instance, Requirements, VerbResult, Workload,
};

/// The entry format this build writes and the newest it can apply. Older formats are
/// applied forever (append-only evolution); a newer one stops the peer with a clear
/// error instead of being guessed at. A change to how an existing command is *applied*
/// (a validation rule, a MonkScript merge rule in `resolve`) bumps it, and `apply` keeps
/// the old behaviour for entries of older formats, so an old log replays to the state it
/// had:
/// - 1: the first release.
/// - 2: template paths are checked with [`monk_scripting::monkscript::path`] (the
///   linter's rule: letters, digits, `.`, `_`, `-`); format 1 entries keep the looser
///   rule (no whitespace, no empty, `.` or `..` segments).
/// - 3: a join token is single-use: `peer-joined` consumes it (format 1 and 2 entries
///   leave it valid, as they did).
/// - 4: `cluster-created` and `peer-joined` may carry the overlay range and the peer's
///   WireGuard identity, and `peer-overlay-changed` exists. Older entries carry neither
///   and apply as before; a build of format 3 would silently drop the new fields, so it
///   must refuse these entries instead.
/// - 5: `workload-report` may carry container addresses and `cluster-created`
///   `open_network` (a format 4 build would drop them); `peer-down` leaves in place the
///   replicas whose `recovery.when` is `none` or `container-failure` (format 4 entries
///   move every replica, as they did).
/// - 6: `hub-kits-published`, `hub-source-synced` and `hub-source-removed` exist (a format 5 build would
///   refuse them as unknown kinds; the version says why), and `run`, `update` and
///   inheritance find Hub definitions where no loaded one is. Older logs hold no Hub
///   kits, so they apply as before.
/// - 7: `workload-run` runs entity instances (entries of format 6 and before refused
///   them, and still do on replay), and `entity-verb-done` and `action-done` exist.
/// - 8: the cluster registry's `image-pushed`, `image-removed` and `blobs-held` exist
///   (a format 7 build would refuse them as unknown kinds). Older logs hold no images,
///   so they apply as before.
/// - 9: `registry-credential-set` and `registry-credential-removed` exist (pull
///   credentials for outside registries; a format 8 build would refuse them as unknown
///   kinds). Older logs hold no credentials, so they apply as before.
pub const FORMAT_VERSION: u32 = 9;
