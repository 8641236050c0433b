//! Cross-reference checks on resolved definitions: names that must point at something
//! the definition (after inheritance) or the loaded files define.
//!
//! - `services.*.container` and `files.*.container` name a container of the runnable;
//! - container `hooks.*` name an action of the runnable;
//! - `connections.*.target|runnable`, `depends.wait-for.runnables`, group `members`
//!   name a definition, and a connection's `service` is one the target offers;
//! - an entity instance has the properties its type's `schema` requires, of the declared
//!   types (code `schema`).
//!
//! All are warnings: a target may live in a hub package that was not loaded, so a path
//! is only reported when its namespace is one of the loaded namespaces (a likely typo).
//! Scripts (`<- …`) are never checked. Positions are those in the definition that wrote
//! the reference; a reference inherited from a parent is reported at the definition name.

use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

use crate::tree::Tree;

use super::diagnostic::{did_you_mean, Diagnostic, Pos};
use super::model::{normalize_path, Definition, Kind, SourceFile};
use super::resolve::{namespace_of, resolve};
use super::syntax::{Node, Value};

/// The position of the value at `keys` inside `node` (of the list item equal to `item`,
/// when given), if the definition wrote it itself.
fn written_item_at(node: &Node, keys: &[&str], item: Option<&str>) -> Option<Pos> {
    let mut current = node;
    for key in keys {
        current = current
            .get(key)
            .or_else(|| current.get(&format!("{key}[override]")))?;
    }
    match (&current.value, item) {
        (Value::Seq(items), Some(text)) => items
            .iter()
            .find(|i| i.as_str() == Some(text))
            .map(|i| i.pos),
        (Value::Seq(_), None) | (_, _) => Some(current.pos),
    }
}

fn names(tree: Option<&Tree>) -> Vec<&str> {
    match tree {
        Some(Tree::Map(entries)) => entries
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| *k != "defines")
            .collect(),
        _ => Vec::new(),
    }
}

fn entries(tree: Option<&Tree>) -> Vec<(&str, &Tree)> {
    match tree {
        Some(Tree::Map(entries)) => entries
            .iter()
            .filter(|(k, _)| k != "defines")
            .map(|(k, v)| (k.as_str(), v))
            .collect(),
        _ => Vec::new(),
    }
}

/// A literal (non-script) text value.
fn literal(tree: Option<&Tree>) -> Option<&str> {
    tree.and_then(Tree::as_str)
        .filter(|s| !s.trim_start().starts_with("<-"))
}

struct Checker<'a, 't> {
    lookup: &'a dyn Fn(&str) -> Option<&'t Tree>,
    candidates: &'a [&'a str],
    namespaces: BTreeSet<&'a str>,
    cache: HashMap<String, Option<Rc<Tree>>>,
    out: Vec<Diagnostic>,
}

impl Checker<'_, '_> {
    /// The resolved definition at `path`, resolved once per check run (connection
    /// targets and entity types are shared by many definitions).
    fn resolved(&mut self, path: &str) -> Option<Rc<Tree>> {
        if let Some(cached) = self.cache.get(path) {
            return cached.clone();
        }
        let resolved = resolve(path, self.lookup).ok().map(Rc::new);
        self.cache.insert(path.to_string(), resolved.clone());
        resolved
    }

    fn warn(
        &mut self,
        file: &str,
        definition: &Definition,
        keys: &[&str],
        message: String,
        hint: Option<String>,
    ) {
        self.warn_item(file, definition, keys, None, message, hint);
    }

    /// Like `warn`, at the list item equal to `item` when the value at `keys` is a list.
    fn warn_item(
        &mut self,
        file: &str,
        definition: &Definition,
        keys: &[&str],
        item: Option<&str>,
        message: String,
        hint: Option<String>,
    ) {
        let pos = written_item_at(&definition.node, keys, item).unwrap_or(definition.name_pos);
        let mut d = Diagnostic::warning(file, pos, "unknown-reference", message);
        d.hint = hint;
        self.out.push(d);
    }

    /// Whether a path to `target` can be judged: its namespace was loaded.
    fn judged(&self, target: &str) -> bool {
        self.namespaces.contains(namespace_of(target))
    }

    fn check_path(
        &mut self,
        file: &str,
        definition: &Definition,
        keys: &[&str],
        written: &str,
        what: &str,
    ) {
        let target = normalize_path(written.trim(), namespace_of(&definition.path));
        if (self.lookup)(&target).is_some() || !self.judged(&target) {
            return;
        }
        let hint = did_you_mean(
            &target,
            self.candidates
                .iter()
                .copied()
                .filter(|k| namespace_of(k) == namespace_of(&target)),
        )
        .map(|p| format!("did you mean `{p}`?"));
        self.warn_item(
            file,
            definition,
            keys,
            Some(written),
            format!("{what} names `{target}`, which is not defined (written `{written}`)"),
            hint,
        );
    }

    fn runnable(&mut self, file: &str, definition: &Definition, resolved: &Tree) {
        let containers = names(resolved.get("containers"));
        let actions = names(resolved.get("actions"));
        for section in ["services", "files"] {
            for (name, value) in entries(resolved.get(section)) {
                let Some(container) = literal(value.get("container")) else {
                    continue;
                };
                if !containers.is_empty() && !containers.contains(&container) {
                    let hint = did_you_mean(container, containers.iter().copied())
                        .map(|c| format!("did you mean `{c}`?"));
                    let message = format!("{} `{name}` names container `{container}`, which this runnable does not define", section.trim_end_matches('s'));
                    self.warn(
                        file,
                        definition,
                        &[section, name, "container"],
                        message,
                        hint,
                    );
                }
            }
        }
        for (container, value) in entries(resolved.get("containers")) {
            for (hook, action) in entries(value.get("hooks")) {
                let Some(action) = literal(Some(action)) else {
                    continue;
                };
                if !actions.contains(&action) {
                    let hint = did_you_mean(action, actions.iter().copied())
                        .map(|a| format!("did you mean `{a}`?"));
                    let message = format!("hook `{hook}` of container `{container}` names action `{action}`, which this runnable does not define");
                    self.warn(
                        file,
                        definition,
                        &["containers", container, "hooks", hook],
                        message,
                        hint,
                    );
                }
            }
        }
        self.connections(file, definition, resolved);
        self.depends(file, definition, resolved);
    }

    fn connections(&mut self, file: &str, definition: &Definition, resolved: &Tree) {
        for (name, value) in entries(resolved.get("connections")) {
            let (key, written) =
                match (literal(value.get("target")), literal(value.get("runnable"))) {
                    (Some(t), _) => ("target", t),
                    (None, Some(r)) => ("runnable", r),
                    _ => continue,
                };
            self.check_path(
                file,
                definition,
                &["connections", name, key],
                written,
                &format!("connection `{name}`"),
            );
            let target = normalize_path(written.trim(), namespace_of(&definition.path));
            let Some(service) = literal(value.get("service")) else {
                continue;
            };
            let Some(target_tree) = self.resolved(&target) else {
                continue;
            };
            let offered = names(target_tree.get("services"));
            if !offered.is_empty() && !offered.contains(&service) {
                let hint = did_you_mean(service, offered.iter().copied())
                    .map(|s| format!("did you mean `{s}`?"));
                let message = format!("connection `{name}` asks for service `{service}`, which `{target}` does not offer");
                self.warn(
                    file,
                    definition,
                    &["connections", name, "service"],
                    message,
                    hint,
                );
            }
        }
    }

    fn depends(&mut self, file: &str, definition: &Definition, resolved: &Tree) {
        let blocks: Vec<&Tree> = match resolved.get("depends") {
            Some(Tree::Seq(items)) => items.iter().collect(),
            Some(map @ Tree::Map(_)) => vec![map],
            _ => Vec::new(),
        };
        for block in blocks {
            let Some(Tree::Seq(runnables)) = block.get("wait-for").and_then(|w| w.get("runnables"))
            else {
                continue;
            };
            for written in runnables.iter().filter_map(|r| literal(Some(r))) {
                self.check_path(
                    file,
                    definition,
                    &["depends", "wait-for", "runnables"],
                    written,
                    "`depends` entry",
                );
            }
        }
    }

    fn group(&mut self, file: &str, definition: &Definition, resolved: &Tree) {
        for key in ["members", "runnable-list"] {
            let Some(Tree::Seq(members)) = resolved.get(key) else {
                continue;
            };
            for written in members.iter().filter_map(|m| literal(Some(m))) {
                self.check_path(file, definition, &[key], written, "member");
            }
        }
    }
}

/// The properties and required names of an entity type's `schema` (properties written
/// directly under `schema`, or JSON-Schema style under `schema.properties`).
fn schema_of(entity_type: &Tree) -> (Vec<(&str, &Tree)>, Vec<&str>) {
    let Some(schema) = entity_type.get("schema") else {
        return (Vec::new(), Vec::new());
    };
    let required: Vec<&str> = match schema.get("required") {
        Some(Tree::Seq(items)) => items.iter().filter_map(Tree::as_str).collect(),
        _ => Vec::new(),
    };
    let properties = match schema.get("properties") {
        Some(props @ Tree::Map(_)) => entries(Some(props)),
        _ => entries(Some(schema))
            .into_iter()
            .filter(|(k, v)| !matches!(*k, "required" | "type") && matches!(v, Tree::Map(_)))
            .collect(),
    };
    (properties, required)
}

/// Whether `value` fits a JSON-Schema `type` name (scripts always fit: they run later).
fn fits_schema_type(value: &Tree, ty: &str) -> bool {
    if let Tree::Str(s) = value {
        if s.trim_start().starts_with("<-") {
            return true;
        }
    }
    match ty {
        "string" => matches!(value, Tree::Str(_)),
        "integer" => matches!(value, Tree::Int(_)),
        "number" => matches!(value, Tree::Int(_) | Tree::Float(_)),
        "boolean" => matches!(value, Tree::Bool(_)),
        "array" => matches!(value, Tree::Seq(_)),
        "object" => matches!(value, Tree::Map(_)),
        _ => true,
    }
}

/// One way an entity instance breaks its type's `schema`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaViolation {
    /// The instance's property it is about (`None`: the instance as a whole, such as
    /// a required property it lacks).
    pub key: Option<String>,
    pub message: String,
    pub hint: Option<String>,
}

/// An entity instance (`resolved`, of `kind`) against its type's schema: required
/// properties present, property values of the declared type, and likely typos of
/// property names. Scripts (`<- …`) always fit: they run later.
pub fn schema_violations(
    instance_path: &str,
    kind: &Kind,
    resolved: &Tree,
    type_path: &str,
    entity_type: &Tree,
) -> Vec<SchemaViolation> {
    let (properties, required) = schema_of(entity_type);
    let mut out = Vec::new();
    for name in &required {
        let has_default = properties
            .iter()
            .any(|(p, spec)| p == name && spec.get("default").is_some());
        // The older `entity-instance` form passes the fields as variables.
        let in_variables = resolved
            .get("variables")
            .and_then(|v| v.get(name))
            .is_some();
        if resolved.get(name).is_none() && !in_variables && !has_default {
            out.push(SchemaViolation {
                key: None,
                message: format!(
                    "`{instance_path}` lacks `{name}`, which the schema of `{type_path}` requires"
                ),
                hint: Some(format!("add `{name}: …` to the instance")),
            });
        }
    }
    let known_sections = super::schema::allowed_sections(kind).unwrap_or(&[]);
    for (key, value) in entries(Some(resolved)) {
        if key == "inherits" || known_sections.contains(&key) {
            continue;
        }
        match properties.iter().find(|(p, _)| *p == key) {
            Some((_, spec)) => {
                let Some(ty) = spec.get("type").and_then(Tree::as_str) else {
                    continue;
                };
                if !fits_schema_type(value, ty) {
                    out.push(SchemaViolation {
                        key: Some(key.into()),
                        message: format!(
                            "`{key}` should be of type `{ty}` (schema of `{type_path}`), found a {}",
                            value.type_name()
                        ),
                        hint: None,
                    });
                }
            }
            None => {
                if let Some(close) = did_you_mean(key, properties.iter().map(|(p, _)| *p)) {
                    out.push(SchemaViolation {
                        key: Some(key.into()),
                        message: format!("`{key}` is not a property of `{type_path}`"),
                        hint: Some(format!("did you mean `{close}`?")),
                    });
                }
            }
        }
    }
    out
}

impl Checker<'_, '_> {
    /// An entity instance against its type's schema ([`schema_violations`]), each
    /// reported where the definition wrote the property.
    fn instance(&mut self, file: &str, definition: &Definition, type_path: &str, resolved: &Tree) {
        let Some(entity_type) = self.resolved(type_path) else {
            return;
        };
        let found = schema_violations(
            &definition.path,
            &definition.kind,
            resolved,
            type_path,
            &entity_type,
        );
        for v in found {
            let keys: Vec<&str> = v.key.as_deref().into_iter().collect();
            self.warn_code(file, definition, &keys, "schema", v.message, v.hint);
        }
    }

    fn warn_code(
        &mut self,
        file: &str,
        definition: &Definition,
        keys: &[&str],
        code: &'static str,
        message: String,
        hint: Option<String>,
    ) {
        let pos = if keys.is_empty() {
            definition.name_pos
        } else {
            written_item_at(&definition.node, keys, None).unwrap_or(definition.name_pos)
        };
        let mut d = Diagnostic::warning(file, pos, code, message);
        d.hint = hint;
        self.out.push(d);
    }
}

/// Reference warnings for every runnable and group in `sources`, resolved with `lookup`;
/// `candidates` are the known paths offered as "did you mean".
pub fn reference_diagnostics<'t>(
    sources: &[SourceFile],
    lookup: &dyn Fn(&str) -> Option<&'t Tree>,
    candidates: &[&str],
) -> Vec<Diagnostic> {
    let mut checker = Checker {
        lookup,
        candidates,
        namespaces: sources.iter().map(|s| s.namespace.as_str()).collect(),
        cache: HashMap::new(),
        out: Vec::new(),
    };
    for source in sources {
        for definition in &source.definitions {
            let type_path = match &definition.kind {
                Kind::Instance(ty) => Some(ty.clone()),
                Kind::EntityInstance => definition
                    .node
                    .get("entity")
                    .and_then(Node::as_str)
                    .map(|t| normalize_path(t.trim(), namespace_of(&definition.path))),
                _ => None,
            };
            let checked = definition.kind == Kind::Runnable
                || definition.kind.is_group()
                || type_path.is_some();
            if !checked {
                continue;
            }
            let Some(resolved) = checker.resolved(&definition.path) else {
                continue;
            };
            match (&definition.kind, type_path) {
                (Kind::Runnable, _) => checker.runnable(&source.file, definition, &resolved),
                (_, Some(ty)) => checker.instance(&source.file, definition, &ty, &resolved),
                _ => checker.group(&source.file, definition, &resolved),
            }
        }
    }
    checker.out
}
