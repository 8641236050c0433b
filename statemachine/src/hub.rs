//! The Hub: a catalog of kits every peer holds, as Monk's daemons "know the contents
//! of the Hub at all times". A *source* (a directory or a git repository, named as the
//! user wrote it) holds *kits* (one per MANIFEST tree), each a set of definitions.
//!
//! What the log carries, and why: the kits' definitions as parsed trees (the shape
//! `templates-loaded` carries), not the YAML text. `run` and `update` resolve
//! definitions inside `apply`, so parsing YAML there would make the parser part of the
//! replicated rules (a parser fix would need a format bump and the old parser kept);
//! parsed once by the proposer, as `monk load` does, a bad file is reported to the user
//! who added the source, never recorded. Kits are content-addressed: each carries
//! [`kit_digest`] of its metadata and definitions, which `apply` recomputes, so a refresh proposes
//! only the kits whose digest changed and then one small `hub-source-synced` naming
//! every kit by digest. A publishing proposal stays under a size bound (the proposer
//! splits the kits; see `monk_node::hub`).
//!
//! Lookup ([`State::definition`]): a path loaded with `monk load` wins; a namespace that
//! holds any loaded definition hides the Hub's whole namespace (Monk: "your namespace
//! will shadow the existing one"); else the first source, in name order, that holds the
//! path. Within one source a path belongs to the kit that published it first.

use std::collections::BTreeMap;

use monk_scripting::tree::Tree;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::command::LoadedTemplate;
use crate::state::State;

/// Longest source name (a path or repository location), in bytes: real paths and URLs
/// are far shorter, and every peer keeps the name in its state.
pub const HUB_SOURCE_BYTES_MAX: usize = 1024;
/// Longest kit name or metadata value (repo, version, one tag), in bytes: a kit's name
/// is its directory in the source, metadata values are single words.
pub const HUB_NAME_BYTES_MAX: usize = 256;
/// Longest kit description, in bytes: a MANIFEST `DESCRIPTION` is one line, shown in
/// `monk hub info`; longer is not a description.
pub const HUB_DESCRIPTION_BYTES_MAX: usize = 4096;
/// Most kits one source holds: the whole corpus of real kits has 356 MANIFESTs, so
/// this bounds a mistaken `/` without getting near a real catalog.
pub const HUB_KITS_PER_SOURCE_MAX: usize = 10_000;
/// Most sources a cluster follows (each one is read and compared on every refresh).
pub const HUB_SOURCES_MAX: usize = 64;

/// What a kit says about itself (its MANIFEST's Hub lines).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KitMeta {
    /// The MANIFEST's `REPO`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    /// The MANIFEST's `VERSION`, else the first `version:` of its definitions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// One kit as a `hub-kits-published` command carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubKit {
    /// Where its MANIFEST sits in the source (`monk-io/monk-redis`), `.` at the root.
    pub name: String,
    #[serde(flatten)]
    pub meta: KitMeta,
    /// [`kit_digest`] of `meta` and `templates`.
    pub digest: String,
    pub templates: Vec<LoadedTemplate>,
}

/// A kit named by its digest, in `hub-source-synced`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubKitRef {
    pub name: String,
    pub digest: String,
}

/// Hex SHA-256 of a kit's metadata and definitions in their JSON form (definitions in
/// the order they were read in, keys as written): the kit's content address, so a new
/// `VERSION` line is a new kit as much as a changed definition is.
pub fn kit_digest(meta: &KitMeta, templates: &[LoadedTemplate]) -> String {
    // Serializing owned trees and strings cannot fail; an empty digest would only make
    // `apply` reject the kit.
    let bytes = serde_json::to_vec(&(meta, templates)).unwrap_or_default();
    hex::encode(Sha256::digest(bytes))
}

/// A source as the state holds it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubSource {
    /// The commit of the last sync, where the source is a git repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Index of the last `hub-source-synced`; `None` while a first sync is under way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced_at_index: Option<u64>,
    pub kits: BTreeMap<String, HubKitInfo>,
    /// Definitions by path, each owned by one kit.
    pub templates: BTreeMap<String, HubTemplate>,
}

/// A kit's metadata and the paths it holds in its source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubKitInfo {
    #[serde(flatten)]
    pub meta: KitMeta,
    pub digest: String,
    /// The paths this kit holds (a path another kit of the source published first is
    /// not among them).
    pub paths: Vec<String>,
    /// How many of its definitions another kit of the source held first.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub shadowed: usize,
    pub published_at_index: u64,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// One Hub definition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubTemplate {
    pub kit: String,
    pub kind: String,
    pub definition: Tree,
}

/// Where a definition that [`State::definition`] finds comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin<'a> {
    /// Loaded with `monk load`.
    Local,
    /// From a Hub source's kit.
    Hub { source: &'a str, kit: &'a str },
}

impl State {
    /// Hub sources by name.
    pub fn hub(&self) -> &BTreeMap<String, HubSource> {
        &self.hub
    }

    /// The definition `run`, `update`, inheritance and `dump` use for `path`: see the
    /// module docs for the order.
    pub fn definition(&self, path: &str) -> Option<&Tree> {
        self.definition_with_origin(path).map(|(tree, _, _)| tree)
    }

    /// [`State::definition`] with its kind and origin.
    pub fn definition_with_origin(&self, path: &str) -> Option<(&Tree, &str, Origin<'_>)> {
        if let Some(t) = self.templates.get(path) {
            return Some((&t.definition, t.kind.as_str(), Origin::Local));
        }
        let (source, template) = self.hub_template(path)?;
        Some((
            &template.definition,
            template.kind.as_str(),
            Origin::Hub {
                source,
                kit: template.kit.as_str(),
            },
        ))
    }

    /// The Hub definition at `path` that lookups use, unless a loaded namespace hides it.
    pub fn hub_template(&self, path: &str) -> Option<(&str, &HubTemplate)> {
        if self.namespace_is_local(path) {
            return None;
        }
        self.hub
            .iter()
            .find_map(|(name, source)| source.templates.get(path).map(|t| (name.as_str(), t)))
    }

    /// Whether `monk load` stored anything in `path`'s namespace (which then hides the
    /// Hub's definitions in it).
    pub fn namespace_is_local(&self, path: &str) -> bool {
        let Some((namespace, _)) = path.split_once('/') else {
            return false;
        };
        let prefix = format!("{namespace}/");
        self.templates
            .range(prefix.clone()..)
            .next()
            .is_some_and(|(p, _)| p.starts_with(&prefix))
    }

    /// Every Hub definition across sources.
    pub(crate) fn hub_template_count(&self) -> usize {
        self.hub.values().map(|s| s.templates.len()).sum()
    }

    /// Each kit's paths are its templates, and every template's kit lists it.
    pub(crate) fn check_hub(&self) -> Result<(), String> {
        for (name, source) in &self.hub {
            let mut listed = std::collections::BTreeSet::new();
            for (kit_name, kit) in &source.kits {
                if kit.published_at_index > self.last_applied_index {
                    return Err(format!("hub kit {name}:{kit_name} published in the future"));
                }
                for path in &kit.paths {
                    if source.templates.get(path).map(|t| t.kit.as_str()) != Some(kit_name) {
                        return Err(format!(
                            "hub kit {name}:{kit_name} lists {path}, not its own"
                        ));
                    }
                    if !listed.insert(path.as_str()) {
                        return Err(format!("hub kit {name}:{kit_name} lists {path} twice"));
                    }
                }
            }
            if listed.len() != source.templates.len() {
                return Err(format!(
                    "hub source {name} holds {} definitions, its kits list {}",
                    source.templates.len(),
                    listed.len()
                ));
            }
        }
        Ok(())
    }
}

/// `hub-kits-published` on `source`: each kit replaces the kit of the same name.
pub(crate) fn publish(source: &mut HubSource, index: u64, kits: &[HubKit]) {
    for kit in kits {
        remove_kit(source, &kit.name);
        let mut paths = Vec::new();
        let mut shadowed = 0;
        for t in &kit.templates {
            if source.templates.contains_key(&t.path) {
                // Held by another kit, or defined twice in this one: the first wins.
                shadowed += 1;
                continue;
            }
            source.templates.insert(
                t.path.clone(),
                HubTemplate {
                    kit: kit.name.clone(),
                    kind: t.kind.clone(),
                    definition: t.definition.clone(),
                },
            );
            paths.push(t.path.clone());
        }
        source.kits.insert(
            kit.name.clone(),
            HubKitInfo {
                meta: kit.meta.clone(),
                digest: kit.digest.clone(),
                paths,
                shadowed,
                published_at_index: index,
            },
        );
    }
}

/// Forgets a kit and the definitions it holds.
pub(crate) fn remove_kit(source: &mut HubSource, name: &str) {
    if let Some(old) = source.kits.remove(name) {
        for path in old.paths {
            source.templates.remove(&path);
        }
    }
}
