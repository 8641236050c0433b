//! The validation a peer runs on definitions that reach it in a proposal, so that what
//! enters the log passed the same rules as `monk load` whoever sent it: each
//! namespace's definitions are written back as one MonkScript file and checked with
//! [`check_text`] (naming, paths, sections allowed for the kind, types, unknown keys,
//! ArrowScript written without `<-`...), and each proposed path and kind must be what
//! the definition itself says. A corpus test checks that every file `monk load` accepts
//! passes this check too.

use std::collections::BTreeMap;

use super::diagnostic::{Diagnostic, Severity};
use super::validate::check_text;
use crate::tree::Tree;

/// One proposed definition: its path, its declared kind and the definition.
pub struct Proposed<'a> {
    pub path: &'a str,
    pub kind: &'a str,
    pub definition: &'a Tree,
}

/// Every error in `proposed` (warnings are `monk load`'s to show, not reasons to
/// refuse). The file named in a diagnostic is `proposal:<namespace>`.
pub fn check_proposed(proposed: &[Proposed<'_>]) -> Vec<Diagnostic> {
    let mut by_namespace: BTreeMap<&str, Vec<&Proposed<'_>>> = BTreeMap::new();
    let mut errors = Vec::new();
    for p in proposed {
        // Namespaces may hold slashes (`namespace: elk/base`): the name is the last
        // segment.
        match p.path.rsplit_once('/') {
            Some((namespace, _)) if !namespace.is_empty() => {
                by_namespace.entry(namespace).or_default().push(p)
            }
            _ => errors.push(error(
                "proposal",
                format!("{:?} is not a namespace/name path", p.path),
            )),
        }
    }
    for (namespace, group) in by_namespace {
        let file = format!("proposal:{namespace}");
        let mut entries = vec![("namespace".to_string(), Tree::Str(namespace.to_string()))];
        for p in &group {
            let name = &p.path[namespace.len() + 1..];
            entries.push((name.to_string(), p.definition.clone()));
        }
        let text = match serde_saphyr::to_string(&Tree::Map(entries)) {
            Ok(text) => text,
            Err(e) => {
                errors.push(error(&file, format!("cannot be written as YAML: {e}")));
                continue;
            }
        };
        let checked = check_text(&file, &text);
        errors.extend(
            checked
                .diagnostics
                .into_iter()
                .filter(|d| d.severity == Severity::Error),
        );
        let found: BTreeMap<&str, String> = checked
            .files
            .iter()
            .flat_map(|f| &f.definitions)
            .map(|d| (d.path.as_str(), d.kind.name()))
            .collect();
        for p in group {
            match found.get(p.path) {
                Some(kind) if kind == p.kind => {}
                Some(kind) => errors.push(error(
                    &file,
                    format!(
                        "{} is proposed as a {} but defines a {kind}",
                        p.path, p.kind
                    ),
                )),
                None => errors.push(error(
                    &file,
                    format!("{} is not a definition (reserved or invalid name)", p.path),
                )),
            }
        }
    }
    errors
}

fn error(file: &str, message: String) -> Diagnostic {
    Diagnostic {
        file: file.to_string(),
        line: 0,
        column: 0,
        severity: Severity::Error,
        code: "proposal",
        message,
        hint: None,
    }
}
