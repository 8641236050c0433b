//! The Hub's proposing side: read a source (`source.rs`), compare its kits with what
//! the catalog holds, and turn the difference into commands of bounded size
//! ([`plan_sync`], pure); `monk hub add` proposes them through the client and a peer
//! started with `--hub-source` through itself, every `--hub-refresh`
//! ([`run_refresher`]). What the log carries and why: `monk_statemachine::hub`.

pub mod catalog;
pub mod source;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use monk_statemachine::hub::{HubKit, HubKitRef};
use monk_statemachine::Command;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::node::Node;
pub use source::{read, SourceRead};

/// Largest `hub-kits-published` a sync proposes, in bytes of JSON: every peer appends
/// and fsyncs each entry, and a follower catching up receives entries in batches, so
/// entries of at most 1 MiB keep one append short and a batch far below the 64 MiB
/// gRPC message limit. A kit bigger than this is proposed in a command of its own;
/// one beyond the 16 MiB client proposal limit is refused by the peer, naming its size.
pub const HUB_PROPOSAL_BYTES_MAX: usize = 1024 * 1024;

/// How often `--hub-source` sources are read again unless `--hub-refresh` says
/// otherwise: Monk's daemon refreshed its templates every 30 minutes.
pub const HUB_REFRESH_DEFAULT: Duration = Duration::from_secs(30 * 60);

/// Why a source could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("hub source {source_name}: {why}")]
    Read { source_name: String, why: String },
    #[error("hub source {source_name} is a git repository, and `git` is not installed on this machine (install git, or add a plain directory of kits)")]
    GitMissing { source_name: String },
    #[error("hub source {source_name}: git {command} failed: {why}")]
    Git {
        source_name: String,
        command: String,
        why: String,
    },
}

/// The sources a peer keeps current (`monkd --hub-source`, `--hub-refresh`).
#[derive(Clone, Debug)]
pub struct HubConfig {
    pub sources: Vec<String>,
    pub refresh: Duration,
}

impl Default for HubConfig {
    fn default() -> HubConfig {
        HubConfig {
            sources: Vec::new(),
            refresh: HUB_REFRESH_DEFAULT,
        }
    }
}

/// What the catalog holds of one source, as far as a sync needs it.
#[derive(Clone, Debug, Default)]
pub struct Held {
    /// Kit name → digest.
    pub kits: BTreeMap<String, String>,
    pub commit: Option<String>,
    /// Whether a sync of it ever completed.
    pub synced: bool,
}

impl Held {
    /// What `state` holds of `source`.
    pub fn of(state: &monk_statemachine::State, source: &str) -> Held {
        state
            .hub()
            .get(source)
            .map_or_else(Held::default, |s| Held {
                kits: s
                    .kits
                    .iter()
                    .map(|(name, kit)| (name.clone(), kit.digest.clone()))
                    .collect(),
                commit: s.commit.clone(),
                synced: s.synced_at_index.is_some(),
            })
    }
}

/// What a sync proposes and counts, for the report.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SyncPlan {
    #[serde(skip)]
    pub commands: Vec<Command>,
    /// Kits whose digest is new or changed.
    pub published: usize,
    pub unchanged: usize,
    /// Kits the catalog holds that the source no longer has.
    pub removed: usize,
    /// Bytes of JSON the publishing commands carry.
    pub bytes: usize,
}

/// The commands that make the catalog hold `read` (see the module docs): kits whose
/// digest differs, packed into commands of at most [`HUB_PROPOSAL_BYTES_MAX`], then one
/// `hub-source-synced`; nothing when the catalog already matches.
pub fn plan_sync(read: &SourceRead, held: &Held) -> SyncPlan {
    let mut plan = SyncPlan::default();
    let changed: Vec<&HubKit> = read
        .kits
        .iter()
        .filter(|k| held.kits.get(&k.name) != Some(&k.digest))
        .collect();
    plan.published = changed.len();
    plan.unchanged = read.kits.len() - changed.len();
    plan.removed = held
        .kits
        .keys()
        .filter(|name| !read.kits.iter().any(|k| &k.name == *name))
        .count();
    let current = held.synced && held.commit == read.commit;
    if changed.is_empty() && plan.removed == 0 && current {
        return plan;
    }
    let mut batch: Vec<HubKit> = Vec::new();
    let mut batch_bytes = 0;
    for kit in changed {
        let bytes = serde_json::to_vec(kit).map_or(0, |b| b.len());
        if !batch.is_empty() && batch_bytes + bytes > HUB_PROPOSAL_BYTES_MAX {
            plan.commands
                .push(publish(read, std::mem::take(&mut batch)));
            batch_bytes = 0;
        }
        batch.push(kit.clone());
        batch_bytes += bytes;
        plan.bytes += bytes;
    }
    if !batch.is_empty() {
        plan.commands.push(publish(read, batch));
    }
    plan.commands.push(Command::HubSourceSynced {
        source: read.source.clone(),
        commit: read.commit.clone(),
        kits: read
            .kits
            .iter()
            .map(|k| HubKitRef {
                name: k.name.clone(),
                digest: k.digest.clone(),
            })
            .collect(),
    });
    plan
}

fn publish(read: &SourceRead, kits: Vec<HubKit>) -> Command {
    Command::HubKitsPublished {
        source: read.source.clone(),
        kits,
    }
}

/// `monkd --hub-source`: while this peer is a member, reads each source every
/// `--hub-refresh` (the first time as soon as it is one) and proposes what changed.
pub async fn run_refresher(node: Arc<Node>, config: HubConfig) {
    if config.sources.is_empty() {
        return;
    }
    let mut ticks = node.member_ticks(config.refresh);
    while let Some(id) = ticks.next().await {
        for spec in &config.sources {
            let spec_owned = spec.clone();
            let read = match tokio::task::spawn_blocking(move || read(&spec_owned)).await {
                Ok(Ok(read)) => read,
                Ok(Err(e)) => {
                    warn!("{e}");
                    continue;
                }
                Err(e) => {
                    warn!(source = %spec, "reading the hub source stopped: {e}");
                    continue;
                }
            };
            let held = node.with_state(|s| Held::of(s, &read.source));
            let plan = plan_sync(&read, &held);
            let proposed = plan.commands.len();
            for command in plan.commands {
                let proposal = node.stamp(format!("peer:{id}"), command);
                match node.propose(proposal).await {
                    Ok(outcome) if outcome.applied.is_accepted() => {}
                    Ok(outcome) => {
                        warn!(source = %read.source, "hub sync refused: {:?}", outcome.applied);
                        break;
                    }
                    Err(e) => {
                        warn!(source = %read.source, "hub sync could not propose: {e}");
                        break;
                    }
                }
            }
            if proposed > 0 {
                info!(
                    source = %read.source,
                    published = plan.published,
                    removed = plan.removed,
                    skipped = read.skipped.len(),
                    "hub source synced"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use monk_statemachine::hub::kit_digest;
    use monk_statemachine::LoadedTemplate;

    fn kit(name: &str, image: &str) -> HubKit {
        let templates = vec![LoadedTemplate {
            path: format!("{name}/main"),
            kind: "runnable".into(),
            definition: monk_scripting::tree::Tree::Str(image.into()),
        }];
        HubKit {
            name: name.into(),
            meta: Default::default(),
            digest: kit_digest(&Default::default(), &templates),
            templates,
        }
    }

    fn read_of(kits: Vec<HubKit>) -> SourceRead {
        SourceRead {
            source: "/kits".into(),
            commit: Some("abc".into()),
            kits,
            skipped: vec![],
        }
    }

    #[test]
    fn a_sync_publishes_only_changed_kits_and_nothing_when_current() {
        let read = read_of(vec![kit("a", "x"), kit("b", "y")]);
        let first = plan_sync(&read, &Held::default());
        assert_eq!((first.published, first.commands.len()), (2, 2));
        let held = Held {
            kits: read
                .kits
                .iter()
                .map(|k| (k.name.clone(), k.digest.clone()))
                .collect(),
            commit: read.commit.clone(),
            synced: true,
        };
        assert!(plan_sync(&read, &held).commands.is_empty());
        let changed = read_of(vec![kit("a", "x2")]);
        let second = plan_sync(&changed, &held);
        assert_eq!(
            (second.published, second.unchanged, second.removed),
            (1, 0, 1)
        );
        assert!(matches!(
            &second.commands[..],
            [Command::HubKitsPublished { kits, .. }, Command::HubSourceSynced { .. }] if kits.len() == 1
        ));
    }

    #[test]
    fn publishing_commands_stay_under_the_size_bound() {
        let big = "z".repeat(HUB_PROPOSAL_BYTES_MAX / 3);
        let kits: Vec<HubKit> = (0..7).map(|i| kit(&format!("k{i}"), &big)).collect();
        let plan = plan_sync(&read_of(kits), &Held::default());
        let publishing = &plan.commands[..plan.commands.len() - 1];
        assert!(publishing.len() >= 3, "{} commands", publishing.len());
        for command in publishing {
            let bytes = serde_json::to_vec(command).map_or(0, |b| b.len());
            assert!(bytes <= HUB_PROPOSAL_BYTES_MAX + 1024, "{bytes} bytes");
        }
    }
}
