//! Tidy check (rust-analyzer style): every `Command` kind is classified in the audit
//! tables. `monk_audit::reach` and `Command::paths` are exhaustive matches, so the
//! compiler refuses a new kind until its audit behaviour is chosen; this test pins
//! what was chosen for each kind (read it as the table of record) and fails when a
//! kind exists in `statemachine/src/command.rs` without a sample here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use monk_audit::{reach, PeerReach};
use monk_scripting::tree::Tree;
use monk_statemachine::{
    Capacity, Command, HubKit, HubKitRef, InstanceStatus, LoadedTemplate, PeerFacts, SecretScope,
};

/// One command of every kind, naming path `ns/web` and peer 7 where it can.
fn samples() -> Vec<Command> {
    let path = || "ns/web".to_string();
    vec![
        Command::Noop,
        Command::ClusterCreated {
            name: "c".into(),
            first_peer_name: "a".into(),
            first_peer_address: "127.0.0.1:1".into(),
            tags: Vec::new(),
            capacity: Capacity::default(),
            facts: None,
            admin_token_sha256: None,
            overlay_range: None,
            overlay: None,
            open_network: false,
        },
        Command::JoinTokenIssued {
            token_sha256: "00".into(),
            expires_at_ms: None,
        },
        Command::PeerJoined {
            name: "b".into(),
            address: "127.0.0.1:2".into(),
            token_sha256: "00".into(),
            tags: Vec::new(),
            capacity: Capacity::default(),
            facts: None,
            admitted_at_ms: None,
            overlay: None,
        },
        Command::PeerLeft { peer: 7 },
        Command::PeerDown {
            peer: 7,
            reason: "silent".into(),
        },
        Command::PeerUp { peer: 7 },
        Command::TemplatesLoaded {
            templates: vec![LoadedTemplate {
                path: path(),
                kind: "runnable".into(),
                definition: Tree::Null,
            }],
        },
        Command::TemplatesRemoved {
            paths: vec![path()],
        },
        Command::SecretSet {
            name: "db".into(),
            scope: SecretScope::Entity(path()),
            sealed: Vec::new(),
        },
        Command::SecretRemoved {
            name: "db".into(),
            scope: SecretScope::Global,
        },
        Command::WorkloadRun {
            path: path(),
            tag: None,
            peer: None,
            overrides: BTreeMap::new(),
            evaluated: None,
        },
        Command::WorkloadUpdate {
            path: path(),
            overrides: BTreeMap::new(),
            evaluated: None,
        },
        Command::WorkloadStop { path: path() },
        Command::WorkloadPurge { path: path() },
        Command::WorkloadScale {
            path: path(),
            replicas: 2,
        },
        Command::WorkloadRestart { path: path() },
        Command::WorkloadReport {
            peer: 7,
            path: path(),
            replica: 0,
            generation: 1,
            status: InstanceStatus::Running,
            message: String::new(),
            addresses: Default::default(),
        },
        Command::EntityVerbDone {
            peer: 7,
            path: path(),
            generation: 1,
            step: 1,
            verb: "create".into(),
            state: Some("{}".into()),
            error: None,
            args: vec!["label".into()],
        },
        Command::ActionDone {
            peer: 7,
            path: path(),
            action: "backup".into(),
            args: vec!["label".into()],
            error: None,
        },
        Command::ImagePushed {
            repository: "app".into(),
            tag: Some("1".into()),
            digest: "sha256:00".into(),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            manifest: "{}".into(),
            blobs: Vec::new(),
            manifests: Vec::new(),
            peer: 7,
        },
        Command::ImageRemoved {
            repository: "app".into(),
            tag: "1".into(),
        },
        Command::BlobsHeld {
            peer: 7,
            blobs: vec!["sha256:00".into()],
        },
        Command::RegistryCredentialSet {
            host: "ghcr.io".into(),
            username: "ci".into(),
            password_secret: "ghcr-token".into(),
        },
        Command::RegistryCredentialRemoved {
            host: "ghcr.io".into(),
        },
        Command::PeerTagged {
            peer: 7,
            add: vec!["gpu".into()],
            remove: Vec::new(),
        },
        Command::PeerFactsReported {
            peer: 7,
            facts: PeerFacts::default(),
        },
        Command::UserAdded {
            name: "ada".into(),
            role: monk_statemachine::Role::Operator,
            token_sha256: "ab".repeat(32),
        },
        Command::UserRemoved { name: "ada".into() },
        Command::PeerOverlayChanged {
            peer: 7,
            public_key: format!("{}=", "A".repeat(43)),
            endpoint: "192.0.2.7:51820".into(),
        },
        Command::JoinTokenRevoked {
            token_sha256: "t".into(),
        },
        Command::HubKitsPublished {
            source: "kits".into(),
            kits: vec![HubKit {
                name: "web".into(),
                meta: Default::default(),
                digest: "00".into(),
                templates: vec![LoadedTemplate {
                    path: path(),
                    kind: "runnable".into(),
                    definition: Tree::Null,
                }],
            }],
        },
        Command::HubSourceSynced {
            source: "kits".into(),
            commit: None,
            kits: vec![HubKitRef {
                name: "web".into(),
                digest: "00".into(),
            }],
        },
        Command::HubSourceRemoved {
            source: "kits".into(),
        },
    ]
}

/// The kinds `Command::kind` names, read from its source.
fn kinds_in_source() -> BTreeSet<String> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../statemachine/src/command.rs");
    let text = std::fs::read_to_string(&file).expect("read command.rs");
    let body = text
        .split("pub fn kind(&self)")
        .nth(1)
        .and_then(|rest| rest.split("pub fn summary").next())
        .expect("Command::kind in command.rs");
    body.lines()
        .filter_map(|line| line.split("=> \"").nth(1))
        .filter_map(|rest| rest.split('"').next())
        .map(String::from)
        .collect()
}

#[test]
fn every_command_kind_has_a_sample() {
    let sampled: BTreeSet<String> = samples().iter().map(|c| c.kind().to_string()).collect();
    assert_eq!(sampled, kinds_in_source());
}

#[test]
fn every_command_kind_is_classified_for_history() {
    // kind → (names ns/web, moves workloads it does not name, peer it concerns)
    let named = PeerReach::Named(7);
    let table: BTreeMap<&str, (bool, bool, PeerReach)> = [
        ("noop", (false, false, PeerReach::None)),
        ("cluster-created", (false, false, PeerReach::Assigned)),
        ("join-token-issued", (false, false, PeerReach::None)),
        ("peer-joined", (false, true, PeerReach::Assigned)),
        ("peer-left", (false, true, named)),
        ("peer-down", (false, true, named)),
        ("peer-up", (false, true, named)),
        ("templates-loaded", (true, false, PeerReach::None)),
        ("templates-removed", (true, false, PeerReach::None)),
        ("secret-set", (true, false, PeerReach::None)),
        ("secret-removed", (false, false, PeerReach::None)),
        ("workload-run", (true, true, PeerReach::None)),
        ("workload-update", (true, true, PeerReach::None)),
        ("workload-stop", (true, true, PeerReach::None)),
        ("workload-purge", (true, true, PeerReach::None)),
        ("workload-scale", (true, false, PeerReach::None)),
        ("workload-restart", (true, true, PeerReach::None)),
        ("workload-report", (true, false, PeerReach::None)),
        ("entity-verb-done", (true, false, PeerReach::None)),
        ("action-done", (true, false, PeerReach::None)),
        ("peer-tagged", (false, true, named)),
        ("peer-facts-reported", (false, true, named)),
        ("user-added", (false, false, PeerReach::None)),
        ("user-removed", (false, false, PeerReach::None)),
        ("join-token-revoked", (false, false, PeerReach::None)),
        ("peer-overlay-changed", (false, false, named)),
        ("hub-kits-published", (true, false, PeerReach::None)),
        ("hub-source-synced", (false, false, PeerReach::None)),
        ("hub-source-removed", (false, false, PeerReach::None)),
        ("image-pushed", (false, false, PeerReach::None)),
        ("image-removed", (false, false, PeerReach::None)),
        ("blobs-held", (false, false, PeerReach::None)),
        ("registry-credential-set", (false, false, PeerReach::None)),
        (
            "registry-credential-removed",
            (false, false, PeerReach::None),
        ),
    ]
    .into_iter()
    .collect();
    for command in samples() {
        let r = reach(&command);
        let found = (r.paths.contains(&"ns/web"), r.moves_workloads, r.peer);
        assert_eq!(
            table.get(command.kind()),
            Some(&found),
            "{} is classified as {found:?}",
            command.kind()
        );
    }
    assert_eq!(table.len(), samples().len());
}

/// ARCHITECTURE.md's checklist for a new command points at the classification.
#[test]
fn the_new_command_checklist_names_the_audit_classification() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ARCHITECTURE.md");
    let text = std::fs::read_to_string(&file).expect("read ARCHITECTURE.md");
    assert!(text.contains("audit/src/reach.rs"), "ARCHITECTURE.md");
}
