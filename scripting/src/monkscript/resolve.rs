//! **Part of the replicated state machine.** `apply` calls [`resolve`] for `monk run`
//! and `monk update` (`statemachine/src/schedule/definition.rs`), and a workload keeps
//! the definition as resolved then. Changing a merge rule here therefore changes what an
//! old log replays to: bump `monk_statemachine::FORMAT_VERSION`, keep the old rule for
//! entries of older formats (pass the entry's version down), and add a block to the
//! scheduler fixtures that pins both (ARCHITECTURE.md, "Adding a new command").
//!
//! Inheritance on [`Tree`] values: the merge rules of the MonkScript reference and the
//! walk up an `inherits` chain. Both the offline path (`monk lint`, `monk dump`) and the
//! online path (resolving against what the cluster state holds) use these functions, so
//! they agree by construction.
//!
//! Rules (reference, "The inherits Property" and "Override Syntax"):
//! - scalars of the child win (a child `null` is a value too, and wins);
//! - lists are combined, parent items first, duplicates removed;
//! - maps deep-merge recursively, child values winning on shared keys;
//! - `key[override]` on `connections`, `depends` and `affinity` replaces the inherited
//!   section, and `key[override]: null` removes it;
//! - single inheritance, chains of any length (bounded by [`INHERITANCE_DEPTH_MAX`]),
//!   across namespaces, `./name` relative to the namespace of the definition that wrote it.
//!
//! MONK-REFERENCE §5.2 reports that real monkd merges overridden lists *by index*; we
//! follow the reference (combine, dedupe) as the issue asks.
//!
//! The resolved tree has no `inherits` key and no `[override]` suffixes, so resolving a
//! resolved definition again changes nothing.

use std::collections::{HashMap, HashSet};

use crate::tree::Tree;

use super::model::normalize_path;

/// Longest `inherits` chain followed. Real kits chain at most 5 deep
/// (`latest → v2 → v1 → common`); the bound keeps a corrupt state from costing much.
pub const INHERITANCE_DEPTH_MAX: usize = 64;

/// Most definitions one resolution may resolve, nested `inherits` included. Real kits
/// need a handful; the bound stops a crafted state from fanning out exponentially
/// (each nested reference resolves its target afresh).
pub const NESTED_RESOLUTIONS_MAX: usize = 1_000;

/// Bookkeeping of one resolution: the definitions being expanded, and how many were resolved.
#[derive(Default)]
struct Walk {
    stack: Vec<String>,
    resolutions: usize,
}

/// The suffix that makes a section replace, rather than merge with, the inherited one.
pub const OVERRIDE_SUFFIX: &str = "[override]";

/// Why a definition could not be resolved.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("`{0}` is not defined")]
    NotFound(String),
    #[error("`{child}` inherits from `{parent}`, which is not defined")]
    MissingParent { child: String, parent: String },
    #[error("inheritance cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    #[error("inheritance chain from `{0}` is longer than {INHERITANCE_DEPTH_MAX}")]
    TooDeep(String),
    #[error("resolving `{0}` needs more than {NESTED_RESOLUTIONS_MAX} nested resolutions")]
    TooMuchWork(String),
    #[error("`{0}` has an `inherits` that is not a path")]
    BadInherits(String),
}

/// The namespace part of `ns/name` (everything before the last `/`).
pub fn namespace_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(ns, _)| ns)
}

/// The normalised parent path of the definition at `path`, if it inherits.
pub fn parent_of(path: &str, definition: &Tree) -> Result<Option<String>, ResolveError> {
    match definition.get("inherits") {
        None | Some(Tree::Null) => Ok(None),
        Some(Tree::Str(written)) => Ok(Some(normalize_path(written.trim(), namespace_of(path)))),
        Some(_) => Err(ResolveError::BadInherits(path.to_string())),
    }
}

/// The chain from `path` up to its root ancestor, `path` first.
pub fn chain<'a>(
    path: &str,
    lookup: &dyn Fn(&str) -> Option<&'a Tree>,
) -> Result<Vec<(String, &'a Tree)>, ResolveError> {
    let start = path.trim_start_matches('/').to_string();
    let Some(first) = lookup(&start) else {
        return Err(ResolveError::NotFound(start));
    };
    let mut chain = vec![(start, first)];
    loop {
        let (current, tree) = chain
            .last()
            .map(|(p, t)| (p.clone(), *t))
            .ok_or_else(|| ResolveError::NotFound(path.to_string()))?;
        let Some(parent) = parent_of(&current, tree)? else {
            return Ok(chain);
        };
        if let Some(index) = chain.iter().position(|(p, _)| *p == parent) {
            return Err(ResolveError::Cycle(canonical_cycle(
                chain[index..].iter().map(|(p, _)| p.clone()).collect(),
            )));
        }
        if chain.len() >= INHERITANCE_DEPTH_MAX {
            return Err(ResolveError::TooDeep(chain[0].0.clone()));
        }
        let Some(parent_tree) = lookup(&parent) else {
            return Err(ResolveError::MissingParent {
                child: current,
                parent,
            });
        };
        chain.push((parent, parent_tree));
    }
}

/// Rotates a cycle so it starts at its smallest path and closes on itself, so that every
/// member reports the same text.
fn canonical_cycle(mut members: Vec<String>) -> Vec<String> {
    if let Some(min) = members
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.cmp(b.1))
        .map(|(i, _)| i)
    {
        members.rotate_left(min);
    }
    if let Some(first) = members.first().cloned() {
        members.push(first);
    }
    members
}

/// Resolves the definition at `path` against the definitions `lookup` finds.
pub fn resolve<'a>(
    path: &str,
    lookup: &dyn Fn(&str) -> Option<&'a Tree>,
) -> Result<Tree, ResolveError> {
    let mut visiting = Walk::default();
    resolve_nested(path.trim_start_matches('/'), lookup, &mut visiting)
}

/// Resolves `path` (its `inherits` chain, then every `inherits` nested inside it),
/// with `visiting` holding the definitions whose nested references are being expanded.
fn resolve_nested<'a>(
    path: &str,
    lookup: &dyn Fn(&str) -> Option<&'a Tree>,
    visiting: &mut Walk,
) -> Result<Tree, ResolveError> {
    if visiting.stack.len() >= INHERITANCE_DEPTH_MAX {
        return Err(ResolveError::TooDeep(path.to_string()));
    }
    visiting.resolutions += 1;
    if visiting.resolutions > NESTED_RESOLUTIONS_MAX {
        return Err(ResolveError::TooMuchWork(path.to_string()));
    }
    let top = resolve_chain(path, lookup)?;
    visiting.stack.push(path.to_string());
    let expanded = expand_nested(&top, path, namespace_of(path), lookup, visiting, true);
    visiting.stack.pop();
    expanded.map(defines_first)
}

/// Folds the `inherits` chain of `path` from its root down.
fn resolve_chain<'a>(
    path: &str,
    lookup: &dyn Fn(&str) -> Option<&'a Tree>,
) -> Result<Tree, ResolveError> {
    let chain = chain(path, lookup)?;
    let mut resolved: Option<Tree> = None;
    for (_, definition) in chain.iter().rev() {
        let own = without_inherits(definition);
        resolved = Some(match resolved {
            None => normalize_overrides(&own),
            Some(parent) => merge(&parent, &own),
        });
    }
    resolved.ok_or_else(|| ResolveError::NotFound(path.to_string()))
}

/// Expands `inherits:` written inside a definition ("`inherits` can be used freely in any
/// place", MONK-REFERENCE §5.2; e.g. `variables: {inherits: ./group-variables}`): the
/// target (a definition, or a path into one such as `ns/app/containers/web`) is
/// resolved, its `defines:` marker dropped, and the map merged over it.
fn expand_nested<'a>(
    tree: &Tree,
    owner: &str,
    namespace: &str,
    lookup: &dyn Fn(&str) -> Option<&'a Tree>,
    visiting: &mut Walk,
    is_root: bool,
) -> Result<Tree, ResolveError> {
    match tree {
        Tree::Map(entries) => {
            let mut expanded = Vec::with_capacity(entries.len());
            for (key, value) in entries {
                if !is_root && key == "inherits" {
                    continue;
                }
                expanded.push((
                    key.clone(),
                    expand_nested(value, owner, namespace, lookup, visiting, false)?,
                ));
            }
            let expanded = Tree::Map(expanded);
            let target = match (is_root, tree.get("inherits")) {
                (false, Some(Tree::Str(written))) => normalize_path(written.trim(), namespace),
                _ => return Ok(expanded),
            };
            let base = resolve_path(&target, owner, lookup, visiting)?;
            Ok(merge(&without_key(&base, "defines"), &expanded))
        }
        Tree::Seq(items) => items
            .iter()
            .map(|item| expand_nested(item, owner, namespace, lookup, visiting, false))
            .collect::<Result<Vec<_>, _>>()
            .map(Tree::Seq),
        other => Ok(other.clone()),
    }
}

/// Resolves a path that names a definition, or a value inside one
/// (`ns/name/section/key…`, the longest defined prefix wins).
fn resolve_path<'a>(
    target: &str,
    owner: &str,
    lookup: &dyn Fn(&str) -> Option<&'a Tree>,
    visiting: &mut Walk,
) -> Result<Tree, ResolveError> {
    let segments: Vec<&str> = target.split('/').collect();
    for split in (2..=segments.len()).rev() {
        let definition = segments[..split].join("/");
        if lookup(&definition).is_none() {
            continue;
        }
        if let Some(index) = visiting.stack.iter().position(|p| *p == definition) {
            return Err(ResolveError::Cycle(canonical_cycle(
                visiting.stack[index..].to_vec(),
            )));
        }
        let mut value = resolve_nested(&definition, lookup, visiting)?;
        for segment in &segments[split..] {
            value = match value.get(segment) {
                Some(inner) => inner.clone(),
                None => {
                    return Err(ResolveError::MissingParent {
                        child: owner.to_string(),
                        parent: target.to_string(),
                    })
                }
            };
        }
        return Ok(value);
    }
    Err(ResolveError::MissingParent {
        child: owner.to_string(),
        parent: target.to_string(),
    })
}

fn without_key(tree: &Tree, key: &str) -> Tree {
    match tree {
        Tree::Map(entries) => {
            Tree::Map(entries.iter().filter(|(k, _)| k != key).cloned().collect())
        }
        other => other.clone(),
    }
}

/// Puts `defines` first, where template authors write it (merging appends the child's
/// keys after the parent's).
fn defines_first(tree: Tree) -> Tree {
    match tree {
        Tree::Map(mut entries) => {
            if let Some(index) = entries.iter().position(|(k, _)| k == "defines") {
                let entry = entries.remove(index);
                entries.insert(0, entry);
            }
            Tree::Map(entries)
        }
        other => other,
    }
}

fn without_inherits(definition: &Tree) -> Tree {
    match definition {
        Tree::Map(entries) => Tree::Map(
            entries
                .iter()
                .filter(|(k, _)| k != "inherits")
                .cloned()
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Splits `key[override]` into `(key, true)`.
fn override_key(key: &str) -> (&str, bool) {
    match key.strip_suffix(OVERRIDE_SUFFIX) {
        Some(base) => (base, true),
        None => (key, false),
    }
}

/// Rewrites `key[override]: v` as `key: v` (dropping it when `v` is null), at every level.
pub fn normalize_overrides(tree: &Tree) -> Tree {
    match tree {
        Tree::Map(entries) => {
            let overridden: HashSet<&str> = entries
                .iter()
                .filter_map(|(k, _)| k.strip_suffix(OVERRIDE_SUFFIX))
                .collect();
            let mut out: Vec<(String, Tree)> = Vec::with_capacity(entries.len());
            for (key, value) in entries {
                let (base, is_override) = override_key(key);
                if !is_override && overridden.contains(base) {
                    continue;
                }
                if is_override && *value == Tree::Null {
                    continue;
                }
                out.push((base.to_string(), normalize_overrides(value)));
            }
            Tree::Map(out)
        }
        Tree::Seq(items) => Tree::Seq(items.iter().map(normalize_overrides).collect()),
        other => other.clone(),
    }
}

/// Merges `child` over `parent` with the reference's rules.
pub fn merge(parent: &Tree, child: &Tree) -> Tree {
    match (parent, child) {
        (Tree::Map(parent_entries), Tree::Map(child_entries)) => {
            merge_maps(parent_entries, child_entries)
        }
        (Tree::Seq(parent_items), Tree::Seq(child_items)) => {
            // A hash set keeps this linear: kits can hold long lists (e.g. generated configs).
            let mut seen: HashSet<Tree> =
                HashSet::with_capacity(parent_items.len() + child_items.len());
            let mut out: Vec<Tree> = Vec::with_capacity(parent_items.len() + child_items.len());
            for item in parent_items
                .iter()
                .chain(child_items.iter())
                .map(normalize_overrides)
            {
                if seen.insert(item.clone()) {
                    out.push(item);
                }
            }
            Tree::Seq(out)
        }
        _ => normalize_overrides(child),
    }
}

fn merge_maps(parent: &[(String, Tree)], child: &[(String, Tree)]) -> Tree {
    // Indexes keep this linear in the number of keys; an override wins over a plain key.
    let mut child_by_base: HashMap<&str, (bool, &Tree)> = HashMap::with_capacity(child.len());
    for (key, value) in child {
        let (base, is_override) = override_key(key);
        match child_by_base.get(base) {
            Some((true, _)) => {}
            _ => {
                child_by_base.insert(base, (is_override, value));
            }
        }
    }
    let parent_keys: HashSet<&str> = parent.iter().map(|(k, _)| k.as_str()).collect();
    let mut out: Vec<(String, Tree)> = Vec::with_capacity(parent.len() + child.len());
    for (key, parent_value) in parent {
        match child_by_base.get(key.as_str()) {
            None => out.push((key.clone(), parent_value.clone())),
            Some((true, Tree::Null)) => {}
            Some((true, value)) => out.push((key.clone(), normalize_overrides(value))),
            Some((false, value)) => out.push((key.clone(), merge(parent_value, value))),
        }
    }
    let mut emitted: HashSet<&str> = HashSet::new();
    for (key, _) in child {
        let (base, _) = override_key(key);
        if parent_keys.contains(base) || !emitted.insert(base) {
            continue;
        }
        match child_by_base.get(base) {
            Some((true, Tree::Null)) | None => {}
            Some((_, value)) => out.push((base.to_string(), normalize_overrides(value))),
        }
    }
    Tree::Map(out)
}

/// A group member as it runs: the group's variables are visible to the member unless
/// the member defines a variable of the same name.
pub fn with_group_variables(member: &Tree, group: &Tree) -> Tree {
    let Some(Tree::Map(group_vars)) = group.get("variables") else {
        return member.clone();
    };
    let Tree::Map(entries) = member else {
        return member.clone();
    };
    let mut entries = entries.clone();
    match entries.iter_mut().find(|(k, _)| k == "variables") {
        Some((_, Tree::Map(own))) => {
            for (name, value) in group_vars {
                if name != "defines" && !own.iter().any(|(k, _)| k == name) {
                    own.push((name.clone(), value.clone()));
                }
            }
        }
        Some((_, slot)) => {
            *slot = Tree::Map(
                group_vars
                    .iter()
                    .filter(|(k, _)| k != "defines")
                    .cloned()
                    .collect(),
            )
        }
        None => entries.push((
            "variables".into(),
            Tree::Map(
                group_vars
                    .iter()
                    .filter(|(k, _)| k != "defines")
                    .cloned()
                    .collect(),
            ),
        )),
    }
    Tree::Map(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn yaml(text: &str) -> Tree {
        crate::monkscript::syntax::parse(text)
            .unwrap()
            .documents
            .remove(0)
            .to_tree()
    }

    #[test]
    fn merge_rules() {
        let parent =
            yaml("a: 1\nl: [x, y]\nm: {p: 1, q: {r: 1}}\nconnections: {db: {target: a/b}}\n");
        let child = yaml(
            "a: 2\nl: [y, z]\nm: {q: {s: 2}}\nconnections[override]: {cache: {target: a/c}}\n",
        );
        let merged = merge(&parent, &child);
        assert_eq!(merged, yaml("a: 2\nl: [x, y, z]\nm: {p: 1, q: {r: 1, s: 2}}\nconnections: {cache: {target: a/c}}\n"));
    }

    #[test]
    fn override_null_removes() {
        let merged = merge(
            &yaml("depends: {wait-for: {runnables: [a/b]}}\nx: 1\n"),
            &yaml("depends[override]: null\n"),
        );
        assert_eq!(merged, yaml("x: 1\n"));
    }

    #[test]
    fn chains_relative_paths_and_cycles() {
        let mut store = BTreeMap::new();
        store.insert("a/base".to_string(), yaml("v: 1\n"));
        store.insert("a/mid".to_string(), yaml("inherits: ./base\nw: 2\n"));
        store.insert("b/top".to_string(), yaml("inherits: /a/mid\nx: 3\n"));
        store.insert("c/one".to_string(), yaml("inherits: c/two\n"));
        store.insert("c/two".to_string(), yaml("inherits: ./one\n"));
        let lookup = |p: &str| store.get(p);
        assert_eq!(
            resolve("b/top", &lookup).unwrap(),
            yaml("v: 1\nw: 2\nx: 3\n")
        );
        assert_eq!(
            resolve("c/two", &lookup).unwrap_err(),
            ResolveError::Cycle(vec!["c/one".into(), "c/two".into(), "c/one".into()])
        );
    }

    #[test]
    fn nested_fan_out_is_bounded() {
        // Each level references the next one 4 times: 4^20 resolutions without a bound.
        let mut store = BTreeMap::new();
        for level in 0..20 {
            let refs: String = (0..4)
                .map(|i| format!("r{i}: {{inherits: f/l{}}}\n", level + 1))
                .collect();
            store.insert(format!("f/l{level}"), yaml(&refs));
        }
        store.insert("f/l20".to_string(), yaml("x: 1\n"));
        let lookup = |p: &str| store.get(p);
        assert!(matches!(
            resolve("f/l0", &lookup),
            Err(ResolveError::TooMuchWork(_))
        ));
    }

    #[test]
    fn group_variables_fill_in_but_do_not_replace() {
        let member = yaml("variables: {port: 1}\n");
        let group = yaml("variables: {port: 2, host: h}\n");
        assert_eq!(
            with_group_variables(&member, &group),
            yaml("variables: {port: 1, host: h}\n")
        );
    }
}
