//! What a workload is made of, read from its resolved definition: a `run`/`update`
//! path expanded into runnables (groups into their members, with group variables), and
//! the literal placement fields of each (replicas, requests, requirements, constraints)
//! with what the proposer evaluated for the script-valued ones.

use std::collections::BTreeMap;

use monk_scripting::monkscript::model::normalize_path;
use monk_scripting::monkscript::resolve::{resolve, with_group_variables};
use monk_scripting::tree::Tree;

use super::{GROUP_DEPTH_MAX, OVERRIDES_MAX, REPLICAS_MAX};
use crate::apply::Rejection;
use crate::command::{Capacity, Evaluated};
use crate::state::State;
use crate::workload::{Constraints, Requirements};

/// One runnable a `run`/`update` resolves to.
pub(crate) struct Expanded {
    pub path: String,
    pub group: Option<String>,
    pub definition: Tree,
    /// Set for an entity instance: its type, resolved, and the modules it requires.
    pub entity: Option<EntityType>,
}

/// An entity instance's type as `run`/`update` resolve it.
pub(crate) struct EntityType {
    pub path: String,
    pub definition: Tree,
    pub modules: BTreeMap<String, String>,
}

fn defines(tree: &Tree) -> &str {
    tree.get("defines").and_then(Tree::as_str).unwrap_or("")
}

/// Resolves `path` against the stored templates; a group becomes its runnables (and,
/// when `entities` is set, its entity instances: entries before format 7 refused them).
pub(crate) fn expand(
    state: &State,
    path: &str,
    entities: bool,
) -> Result<Vec<Expanded>, Rejection> {
    let mut out = Vec::new();
    let walk = Walk { state, entities };
    walk.expand_into(path, None, None, 0, &mut out)?;
    Ok(out)
}

/// What every step of one expansion shares.
struct Walk<'a> {
    state: &'a State,
    entities: bool,
}

/// The type of an entity instance: `defines: ns/type` naming a `defines: entity`
/// template, or the older `defines: entity-instance` with `entity: ns/type`. `None`
/// when `resolved` is not an instance.
fn entity_type_of(state: &State, path: &str, resolved: &Tree) -> Option<String> {
    let namespace = path.rsplit_once('/').map_or("", |(ns, _)| ns);
    let named = match defines(resolved) {
        "entity-instance" => resolved.get("entity").and_then(Tree::as_str)?,
        other => other,
    };
    let type_path = normalize_path(named, namespace);
    let t = state.definition(&type_path)?;
    (defines(t) == "entity").then_some(type_path)
}

/// Most user modules one entity type brings along (its `requires`, transitively).
pub const ENTITY_MODULES_MAX: usize = 64;

/// Resolves an entity type and the sources of the user modules it requires
/// (`defines: module` templates with `source`; anything else, such as `cloud/aws`, is
/// left to the engine, which says it is not available).
fn entity_type(state: &State, instance: &str, type_path: &str) -> Result<EntityType, Rejection> {
    let lookup = |p: &str| state.definition(p);
    let definition = resolve(type_path, &lookup).map_err(|e| Rejection::Unresolvable {
        path: instance.into(),
        why: format!("its entity type {type_path}: {e}"),
    })?;
    let mut modules = BTreeMap::new();
    let mut queue = vec![type_path.to_string()];
    let mut seen = 0;
    while let Some(from) = queue.pop() {
        let tree = match from == type_path {
            true => Some(definition.clone()),
            false => resolve(&from, &lookup).ok(),
        };
        let namespace = from.rsplit_once('/').map_or("", |(ns, _)| ns);
        let requires = tree
            .as_ref()
            .and_then(|t| match t.get("requires") {
                Some(Tree::Seq(items)) => Some(items.clone()),
                _ => None,
            })
            .unwrap_or_default();
        for required in requires.iter().filter_map(Tree::as_str) {
            let module = normalize_path(required, namespace);
            if modules.contains_key(&module) {
                continue;
            }
            let Some(source) = resolve(&module, &lookup)
                .ok()
                .filter(|m| defines(m) == "module")
                .and_then(|m| m.get("source").and_then(Tree::as_str).map(String::from))
            else {
                continue;
            };
            seen += 1;
            if seen > ENTITY_MODULES_MAX {
                return Err(Rejection::Limit {
                    what: format!("modules required by {type_path}"),
                    max: ENTITY_MODULES_MAX,
                });
            }
            modules.insert(module.clone(), source);
            queue.push(module);
        }
    }
    Ok(EntityType {
        path: type_path.into(),
        definition,
        modules,
    })
}

impl Walk<'_> {
    fn expand_into(
        &self,
        path: &str,
        group: Option<(&str, &Tree)>,
        top_group: Option<&str>,
        depth: usize,
        out: &mut Vec<Expanded>,
    ) -> Result<(), Rejection> {
        let state = self.state;
        if state.definition(path).is_none() {
            return Err(Rejection::UnknownTemplate { path: path.into() });
        }
        let lookup = |p: &str| state.definition(p);
        let resolved = resolve(path, &lookup).map_err(|e| Rejection::Unresolvable {
            path: path.into(),
            why: e.to_string(),
        })?;
        let resolved = match group {
            Some((_, group_tree)) => with_group_variables(&resolved, group_tree),
            None => resolved,
        };
        match defines(&resolved) {
            "runnable" => {
                out.push(Expanded {
                    path: path.into(),
                    group: top_group.map(String::from),
                    definition: resolved,
                    entity: None,
                });
                Ok(())
            }
            "group" | "process-group" => {
                if depth >= GROUP_DEPTH_MAX {
                    return Err(Rejection::Unresolvable {
                        path: path.into(),
                        why: format!("groups nest deeper than {GROUP_DEPTH_MAX}"),
                    });
                }
                let namespace = path.rsplit_once('/').map_or("", |(ns, _)| ns);
                let members = ["members", "runnable-list"]
                    .iter()
                    .filter_map(|k| match resolved.get(k) {
                        Some(Tree::Seq(items)) => Some(items.clone()),
                        _ => None,
                    })
                    .flatten()
                    .filter_map(|m| m.as_str().map(|m| normalize_path(m, namespace)))
                    .collect::<Vec<_>>();
                let top = top_group.unwrap_or(path);
                for member in members {
                    if out.iter().any(|e| e.path == member) {
                        continue;
                    }
                    if member == path {
                        return Err(Rejection::Unresolvable {
                            path: path.into(),
                            why: "the group lists itself as a member".into(),
                        });
                    }
                    self.expand_into(&member, Some((path, &resolved)), Some(top), depth + 1, out)
                        .map_err(|e| match e {
                            Rejection::UnknownTemplate { path: missing } => {
                                Rejection::Unresolvable {
                                    path: path.into(),
                                    why: format!("member {missing} is not loaded"),
                                }
                            }
                            other => other,
                        })?;
                }
                Ok(())
            }
            other => match entity_type_of(state, path, &resolved).filter(|_| self.entities) {
                Some(type_path) => {
                    let entity = entity_type(state, path, &type_path)?;
                    out.push(Expanded {
                        path: path.into(),
                        group: top_group.map(String::from),
                        definition: resolved,
                        entity: Some(entity),
                    });
                    Ok(())
                }
                None => Err(Rejection::NotRunnable {
                    path: path.into(),
                    kind: if other.is_empty() {
                        "definition without `defines`".into()
                    } else {
                        other.to_string()
                    },
                }),
            },
        }
    }
}

/// Integer value of a literal scalar (`3` or `"3"`); ArrowScript and others are `None`.
fn literal_int(tree: Option<&Tree>) -> Option<i64> {
    match tree? {
        Tree::Int(n) => Some(*n),
        Tree::Str(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Replicas a definition asks for: `scale.value` (literal, or the number its script gave
/// the proposer), clamped to `scale.min/max`; else 1.
/// Whether the replicas of `definition` move to another peer when theirs fails:
/// `recovery.when` is `always` (the default), `node-failure` or a pressure kind; not
/// for `none` or `container-failure`. The executor of a peer cut off from a quorum
/// kills only replicas that move (see `monk_node`'s lease).
pub fn moves_on_peer_failure(definition: &Tree) -> bool {
    let when = definition
        .get("recovery")
        .and_then(|r| r.get("when"))
        .and_then(Tree::as_str)
        .map(|w| w.trim().to_ascii_lowercase());
    !matches!(when.as_deref(), Some("none" | "container-failure"))
}

pub(super) fn replicas_of(definition: &Tree, evaluated: Option<&Evaluated>) -> u32 {
    let scale = definition.get("scale");
    let value = evaluated
        .and_then(|e| e.replicas)
        .map(i64::from)
        .or_else(|| scale.and_then(|s| literal_int(s.get("value"))))
        .unwrap_or(1);
    let min = scale.and_then(|s| literal_int(s.get("min"))).unwrap_or(1);
    let max = scale
        .and_then(|s| literal_int(s.get("max")))
        .unwrap_or(i64::from(REPLICAS_MAX));
    value
        .clamp(min.max(0), max.max(min))
        .clamp(0, i64::from(REPLICAS_MAX)) as u32
}

/// What one replica asks for: the containers' literal `resources.requests` summed.
pub(super) fn requests_of(definition: &Tree) -> Capacity {
    let mut total = Capacity::default();
    if let Some(Tree::Map(containers)) = definition.get("containers") {
        for (_, container) in containers {
            let requests = container.get("resources").and_then(|r| r.get("requests"));
            let cpu = literal_int(requests.and_then(|r| r.get("cpu"))).unwrap_or(0);
            let memory = literal_int(requests.and_then(|r| r.get("memory"))).unwrap_or(0);
            total.cpu_millis = total.cpu_millis.saturating_add(cpu.max(0) as u64);
            total.memory_mb = total.memory_mb.saturating_add(memory.max(0) as u64);
        }
    }
    total
}

/// A literal number of cores (`"2.0"`, `2`, `0.5`) in millicores.
fn literal_millis(tree: Option<&Tree>) -> Option<u64> {
    let cores: f64 = match tree? {
        Tree::Int(n) => *n as f64,
        Tree::Str(s) | Tree::Float(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    (cores.is_finite() && cores > 0.0).then(|| (cores * 1000.0).round() as u64)
}

fn literal_bool(tree: Option<&Tree>) -> bool {
    match tree {
        Some(Tree::Bool(b)) => *b,
        Some(Tree::Str(s)) => s.trim().eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// `requirements: {CPU, RAM, GPU, disk}` (literal values; keys as the reference writes
/// them, lower case accepted).
pub(super) fn requirements_of(definition: &Tree) -> Requirements {
    let Some(r) = definition.get("requirements") else {
        return Requirements::default();
    };
    let field = |names: &[&str]| names.iter().find_map(|n| r.get(n));
    let positive = |t: Option<&Tree>| literal_int(t).map_or(0, |n| n.max(0) as u64);
    Requirements {
        cpu_millis: literal_millis(field(&["CPU", "cpu"])).unwrap_or(0),
        memory_mb: positive(field(&["RAM", "ram", "memory"])),
        gpu: literal_bool(field(&["GPU", "gpu"])),
        disk_gb: positive(field(&["disk", "DISK"])),
    }
}

pub(super) fn constraints_of(
    definition: &Tree,
    evaluated: Option<&Evaluated>,
    tag: Option<&String>,
    peer: Option<&String>,
) -> Constraints {
    let affinity = definition.get("affinity");
    let text = |key: &str| {
        affinity
            .and_then(|a| a.get(key))
            .and_then(Tree::as_str)
            .filter(|s| !s.is_empty() && !s.starts_with("<-"))
            .map(String::from)
    };
    let evaluated_tag = evaluated.and_then(|e| e.tag.clone());
    let evaluated_name = evaluated.and_then(|e| e.name.clone());
    let mut tags: Vec<String> = text("tag")
        .or(evaluated_tag)
        .into_iter()
        .chain(tag.cloned())
        .collect();
    tags.sort();
    tags.dedup();
    Constraints {
        tags,
        peer: peer.cloned().or_else(|| text("name")).or(evaluated_name),
        resident: literal_bool(affinity.and_then(|a| a.get("resident"))),
        ignore_pressure: literal_bool(affinity.and_then(|a| a.get("ignore-pressure"))),
    }
}

fn variable_names(definition: &Tree) -> impl Iterator<Item = &str> {
    match definition.get("variables") {
        Some(Tree::Map(vars)) => vars.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        _ => Vec::new(),
    }
    .into_iter()
}

pub(super) fn check_overrides(
    path: &str,
    expanded: &[Expanded],
    overrides: &BTreeMap<String, String>,
) -> Result<(), Rejection> {
    if overrides.len() > OVERRIDES_MAX {
        return Err(Rejection::Limit {
            what: "runtime variables".into(),
            max: OVERRIDES_MAX,
        });
    }
    for name in overrides.keys() {
        let known = expanded
            .iter()
            .any(|e| variable_names(&e.definition).any(|v| v == name));
        if !known {
            return Err(Rejection::UnknownVariable {
                path: path.into(),
                name: name.clone(),
            });
        }
    }
    Ok(())
}

/// The overrides that concern one runnable (those naming its variables).
pub(crate) fn overrides_for(
    definition: &Tree,
    overrides: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let names: Vec<&str> = variable_names(definition).collect();
    overrides
        .iter()
        .filter(|(k, _)| names.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}
