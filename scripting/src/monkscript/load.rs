//! Loading a set of paths the user named: YAML files, directories and MANIFESTs, in
//! MANIFEST load order, with `<<<` embeds read relative to the YAML file that names them.
//! Then the checks that need all files at once: definitions defined twice, and
//! inheritance chains (missing parents, cycles), reported at the `inherits:` that
//! causes them.
//!
//! This is the only module that reads files; it reads nothing but what it is given and
//! what those files name.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use crate::tree::Tree;

use super::diagnostic::{did_you_mean, Diagnostic, Pos};
use super::manifest;
use super::model::{normalize_path, Definition, SourceFile};
use super::resolve::{self, ResolveError};
use super::syntax::FILE_BYTES_MAX;
use super::syntax::{Node, Value};
use super::validate::{self, ScriptSite};

/// Most YAML files one load reads (directories are walked recursively). Far above any
/// real kit tree (the whole corpus is under 1,100 YAML files), it bounds a mistaken `/`.
pub const FILES_MAX: usize = 20_000;

/// Everything read from the named paths.
#[derive(Debug, Default)]
pub struct Workspace {
    /// MonkScript documents in load order.
    pub sources: Vec<SourceFile>,
    pub diagnostics: Vec<Diagnostic>,
    pub scripts: Vec<ScriptSite>,
    /// YAML files read, in load order.
    pub files: Vec<PathBuf>,
    /// The MANIFEST plans followed.
    pub manifests: Vec<manifest::Plan>,
    /// The files in `files`, for a linear "already read" check.
    seen: HashSet<PathBuf>,
}

/// Reads a text file under the size limit.
pub fn read_text(path: &Path) -> Result<String, String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    if meta.len() > FILE_BYTES_MAX as u64 {
        return Err(format!(
            "`{}` is {} bytes, more than the limit of {FILE_BYTES_MAX}",
            path.display(),
            meta.len()
        ));
    }
    let bytes =
        std::fs::read(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    String::from_utf8(bytes).map_err(|_| format!("`{}` is not UTF-8 text", path.display()))
}

fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

fn is_manifest(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()) == Some("MANIFEST")
}

impl Workspace {
    /// Loads the named paths in order.
    pub fn load(paths: &[PathBuf]) -> Workspace {
        let mut workspace = Workspace::default();
        for path in paths {
            workspace.load_path(path);
        }
        workspace
    }

    fn load_path(&mut self, path: &Path) {
        if path.is_dir() {
            let manifest = path.join("MANIFEST");
            if manifest.is_file() {
                return self.load_manifest(&manifest);
            }
            let mut files = Vec::new();
            collect_yaml(path, &mut files, 0);
            for file in files {
                if is_manifest(&file) {
                    self.load_manifest(&file);
                } else {
                    self.load_yaml(&file);
                }
            }
        } else if is_manifest(path) {
            self.load_manifest(path);
        } else if path.exists() {
            self.load_yaml(path);
        } else {
            let file = path.display().to_string();
            self.diagnostics.push(Diagnostic::error(
                &file,
                Pos::new(1, 1),
                "missing-file",
                format!("`{file}` does not exist"),
            ));
        }
    }

    fn load_manifest(&mut self, path: &Path) {
        let plan = manifest::expand(path);
        self.diagnostics.extend(plan.diagnostics.iter().cloned());
        for (file, _, _) in &plan.load {
            self.load_yaml(file);
        }
        self.manifests.push(plan);
    }

    /// Reads and checks one YAML file, unless it was read already.
    pub fn load_yaml(&mut self, path: &Path) {
        if !self.seen.insert(path.to_path_buf()) {
            return;
        }
        let file = path.display().to_string();
        if self.files.len() >= FILES_MAX {
            self.diagnostics.push(Diagnostic::error(
                &file,
                Pos::new(1, 1),
                "too-large",
                format!("more than {FILES_MAX} files named"),
            ));
            return;
        }
        self.files.push(path.to_path_buf());
        let text = match read_text(path) {
            Ok(text) => text,
            Err(message) => {
                self.diagnostics.push(Diagnostic::error(
                    &file,
                    Pos::new(1, 1),
                    "unreadable",
                    message,
                ));
                return;
            }
        };
        let dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
        let embed = move |target: &str| -> Result<String, String> {
            if target.is_empty() || Path::new(target).is_absolute() {
                return Err(format!("`<<< {target}` must name a relative path"));
            }
            let path = dir.join(target);
            if !path.is_file() {
                return Err(format!("`<<< {target}` names a file that does not exist"));
            }
            read_text(&path).map_err(|_| {
                format!("`<<< {target}` cannot be read as UTF-8 text under {FILE_BYTES_MAX} bytes")
            })
        };
        let checked = validate::check_source(&file, &text, Some(&embed));
        self.sources.extend(checked.files);
        self.diagnostics.extend(checked.diagnostics);
        self.scripts.extend(checked.scripts);
    }

    /// Every definition, in load order.
    pub fn definitions(&self) -> impl Iterator<Item = (&SourceFile, &Definition)> {
        self.sources
            .iter()
            .flat_map(|s| s.definitions.iter().map(move |d| (s, d)))
    }

    /// The definitions as trees by path; a later definition of the same path wins, as a
    /// later `monk load` shadows an earlier one.
    pub fn store(&self) -> BTreeMap<String, Tree> {
        self.definitions()
            .map(|(_, d)| (d.path.clone(), d.node.to_tree()))
            .collect()
    }

    /// Warnings for paths defined more than once.
    pub fn duplicate_diagnostics(&self) -> Vec<Diagnostic> {
        let mut first: BTreeMap<&str, (&str, Pos)> = BTreeMap::new();
        let mut out = Vec::new();
        for (source, definition) in self.definitions() {
            match first.get(definition.path.as_str()) {
                None => {
                    first.insert(&definition.path, (&source.file, definition.name_pos));
                }
                Some((file, pos)) => out.push(
                    Diagnostic::warning(
                        &source.file,
                        definition.name_pos,
                        "duplicate-definition",
                        format!(
                            "`{}` is defined again; this later definition wins",
                            definition.path
                        ),
                    )
                    .with_hint(format!("first defined at {file}:{}:{}", pos.line, pos.col)),
                ),
            }
        }
        out
    }

    /// Inheritance problems of every definition against `store`. Missing parents are
    /// reported only when `missing_parents_are_errors` (offline lint); when loading into a
    /// cluster the parent may already be there.
    pub fn inheritance_diagnostics(
        &self,
        store: &BTreeMap<String, Tree>,
        missing_parents_are_errors: bool,
    ) -> Vec<Diagnostic> {
        let candidates: Vec<&str> = store.keys().map(String::as_str).collect();
        inheritance_diagnostics(
            &self.sources,
            &|p| store.get(p),
            &candidates,
            missing_parents_are_errors,
        )
    }
}

/// Inheritance problems of the definitions in `sources`, looking parents up with
/// `lookup`; `candidates` are the known paths offered as "did you mean".
pub fn inheritance_diagnostics<'t>(
    sources: &[SourceFile],
    lookup: &dyn Fn(&str) -> Option<&'t Tree>,
    candidates: &[&str],
    missing_parents_are_errors: bool,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for source in sources {
        for definition in &source.definitions {
            nested_inheritance(
                source,
                definition,
                lookup,
                missing_parents_are_errors,
                &mut out,
            );
        }
    }
    for source in sources {
        for definition in &source.definitions {
            let Some(inherits) = &definition.inherits else {
                continue;
            };
            if validate::check_path(&inherits.written, true).is_err() {
                continue;
            }
            let at = |code, message: String| {
                Diagnostic::error(&source.file, inherits.pos, code, message)
            };
            match resolve::chain(&definition.path, lookup) {
                Ok(_) | Err(ResolveError::NotFound(_) | ResolveError::BadInherits(_) | ResolveError::TooMuchWork(_)) => {}
                Err(ResolveError::Cycle(cycle)) if cycle.contains(&definition.path) => out.push(
                    at("inherit-cycle", format!("inheritance cycle: {}", cycle.join(" -> "))).with_hint("break the cycle: a definition cannot inherit from itself or its descendants"),
                ),
                Err(ResolveError::Cycle(_)) => {}
                Err(ResolveError::MissingParent { child, parent }) if child == definition.path && missing_parents_are_errors => {
                    let (parent_ns, parent_name) = parent.rsplit_once('/').unwrap_or(("", parent.as_str()));
                    let related = candidates.iter().copied().filter(|c| {
                        let (ns, name) = c.rsplit_once('/').unwrap_or(("", c));
                        ns == parent_ns || name == parent_name
                    });
                    let hint = did_you_mean(&parent, related)
                        .map(|p| format!("did you mean `{p}`?"))
                        .unwrap_or_else(|| "load the file that defines it too (or check the spelling)".into());
                    out.push(at("missing-parent", format!("`{}` inherits from `{parent}`, which is not defined (written `{}`)", definition.path, inherits.written)).with_hint(hint));
                }
                Err(ResolveError::MissingParent { .. }) => {}
                Err(ResolveError::TooDeep(_)) => out.push(at("too-deep", format!("the inheritance chain of `{}` is longer than {}", definition.path, resolve::INHERITANCE_DEPTH_MAX))),
            }
        }
    }
    out
}

/// YAML files under `dir`, sorted; a sub-directory with its own MANIFEST is taken through
/// that MANIFEST instead (so application config YAML it does not load is not linted).
/// Problems of `inherits:` written inside sections, found by resolving the definition
/// fully once its own chain is sound; reported at the nested `inherits:`.
fn nested_inheritance<'t>(
    source: &SourceFile,
    definition: &Definition,
    lookup: &dyn Fn(&str) -> Option<&'t Tree>,
    missing_parents_are_errors: bool,
    out: &mut Vec<Diagnostic>,
) {
    if !has_nested_inherits(&definition.node, true)
        || resolve::chain(&definition.path, lookup).is_err()
    {
        return;
    }
    let (target, message, code) = match resolve::resolve(&definition.path, lookup) {
        Err(ResolveError::MissingParent { child, parent })
            if child == definition.path && missing_parents_are_errors =>
        {
            (
                parent.clone(),
                format!("nested `inherits` of `{child}` names `{parent}`, which is not defined"),
                "missing-parent",
            )
        }
        Err(e @ (ResolveError::TooDeep(_) | ResolveError::TooMuchWork(_))) => {
            (String::new(), format!("nested `inherits`: {e}"), "too-deep")
        }
        Err(ResolveError::Cycle(cycle)) if cycle.contains(&definition.path) => (
            cycle.first().cloned().unwrap_or_default(),
            format!(
                "inheritance cycle through a nested `inherits`: {}",
                cycle.join(" -> ")
            ),
            "inherit-cycle",
        ),
        _ => return,
    };
    let namespace = resolve::namespace_of(&definition.path);
    let pos = nested_inherits_pos(&definition.node, &target, namespace, true)
        .unwrap_or(definition.name_pos);
    out.push(Diagnostic::error(&source.file, pos, code, message));
}

fn has_nested_inherits(node: &Node, is_root: bool) -> bool {
    match &node.value {
        Value::Map(entries) => entries
            .iter()
            .any(|e| (!is_root && e.key == "inherits") || has_nested_inherits(&e.value, false)),
        Value::Seq(items) => items.iter().any(|i| has_nested_inherits(i, false)),
        _ => false,
    }
}

fn nested_inherits_pos(node: &Node, target: &str, namespace: &str, is_root: bool) -> Option<Pos> {
    match &node.value {
        Value::Map(entries) => entries.iter().find_map(|e| {
            let here = !is_root
                && e.key == "inherits"
                && e.value.as_str().is_some_and(|w| {
                    let written = normalize_path(w.trim(), namespace);
                    written == target || written.starts_with(&format!("{target}/"))
                });
            if here {
                Some(e.value.pos)
            } else {
                nested_inherits_pos(&e.value, target, namespace, false)
            }
        }),
        Value::Seq(items) => items
            .iter()
            .find_map(|i| nested_inherits_pos(i, target, namespace, false)),
        _ => None,
    }
}

fn collect_yaml(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    if depth > manifest::MANIFEST_DEPTH_MAX || out.len() >= FILES_MAX {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            if path.join("MANIFEST").is_file() {
                out.push(path.join("MANIFEST"));
            } else {
                collect_yaml(&path, out, depth + 1);
            }
        } else if is_yaml(&path) {
            out.push(path);
        }
    }
}
