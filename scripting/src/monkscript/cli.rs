//! The MonkScript commands as library functions: `monk lint`, `monk dump`, and the two
//! entry points the daemon uses to load definitions into the cluster and to resolve
//! them against what the cluster holds.
//!
//! Exit codes are stable: 0 when there is no error, 1 when there are errors (or, with
//! `strict`, warnings), 2 when the command itself cannot run (nothing to dump).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::cli_output::CommandOutput;
use crate::tree::Tree;

use super::build::{build_sites, BuildSite};
use super::diagnostic::{has_errors, sort_and_dedup, Diagnostic, Pos, Severity};
use super::load::Workspace;
use super::resolve::{self, ResolveError};

/// Exit code when no error was found.
pub const EXIT_OK: i32 = 0;
/// Exit code when the input has errors.
pub const EXIT_PROBLEMS: i32 = 1;
/// Exit code when the command could not do what was asked (e.g. unknown entity).
pub const EXIT_USAGE: i32 = 2;

/// An ArrowScript syntax checker: `Err((byte offset in the script, message))`.
pub type ScriptChecker<'a> = &'a dyn Fn(&str) -> Result<(), (usize, String)>;

/// The checker used until the ArrowScript parser is wired in: accepts everything.
pub fn accept_all_scripts(_script: &str) -> Result<(), (usize, String)> {
    Ok(())
}

/// Output format of `monk dump`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DumpFormat {
    Yaml,
    Json,
}

/// One definition ready to be proposed to the cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadedDefinition {
    /// `namespace/name`.
    pub path: String,
    /// `runnable`, `group`, `process-group`, `entity`, `module`, `service`, `abstract`,
    /// `entity-instance`, or `<ns/type> instance`.
    pub kind: String,
    /// The definition exactly as written (`<<<` embeds expanded, nothing removed).
    pub definition: Tree,
}

/// Every problem in `workspace`, with inheritance checked against its own definitions
/// (missing parents are errors) and every script run through `checker`.
fn lint_diagnostics(workspace: &Workspace, checker: ScriptChecker) -> Vec<Diagnostic> {
    let store = workspace.store();
    let mut diagnostics = workspace.diagnostics.clone();
    diagnostics.extend(workspace.duplicate_diagnostics());
    diagnostics.extend(workspace.inheritance_diagnostics(&store, true));
    let candidates: Vec<&str> = store.keys().map(String::as_str).collect();
    diagnostics.extend(super::references::reference_diagnostics(
        &workspace.sources,
        &|p| store.get(p),
        &candidates,
    ));
    diagnostics.extend(script_diagnostics(workspace, checker));
    diagnostics.extend(build_sites(workspace).1);
    sort_and_dedup(&mut diagnostics);
    diagnostics
}

/// Every script site of `workspace` run through `checker`, as `script-syntax` errors.
pub fn script_diagnostics(workspace: &Workspace, checker: ScriptChecker) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    for site in &workspace.scripts {
        if let Err((offset, message)) = checker(&site.script) {
            diagnostics.push(Diagnostic::error(
                &site.file,
                site.position_of(offset),
                "script-syntax",
                message,
            ));
        }
    }
    diagnostics
}

/// `monk lint PATH...` with the default (accept-all) script checker.
pub fn lint_command(paths: &[PathBuf], strict: bool, json: bool) -> CommandOutput {
    lint_command_with_checker(paths, strict, json, &arrow_syntax)
}

/// The real checker: the ArrowScript parser.
pub fn arrow_syntax(script: &str) -> Result<(), (usize, String)> {
    crate::arrow::parse(script)
        .map(|_| ())
        .map_err(|e| (e.offset, e.message))
}

/// `monk lint PATH...` with an ArrowScript checker.
pub fn lint_command_with_checker(
    paths: &[PathBuf],
    strict: bool,
    json: bool,
    checker: ScriptChecker,
) -> CommandOutput {
    let workspace = Workspace::load(paths);
    let mut diagnostics = lint_diagnostics(&workspace, checker);
    if strict {
        diagnostics
            .iter_mut()
            .for_each(|d| d.severity = Severity::Error);
    }
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    let stdout = if json {
        serde_json::to_string_pretty(&diagnostics).unwrap_or_else(|e| format!("[]\n{e}")) + "\n"
    } else {
        diagnostics.iter().map(|d| format!("{d}\n")).collect()
    };
    let definitions = workspace.definitions().count();
    let stderr = format!(
        "{} files, {definitions} definitions: {errors} errors, {warnings} warnings\n",
        workspace.files.len()
    );
    CommandOutput {
        stdout,
        stderr,
        exit_code: if errors > 0 { EXIT_PROBLEMS } else { EXIT_OK },
    }
}

/// `monk dump ENTITY-PATH --from PATH...`: the definition after inheritance.
pub fn dump_command(entity_path: &str, from: &[PathBuf], format: DumpFormat) -> CommandOutput {
    let workspace = Workspace::load(from);
    let mut errors: Vec<Diagnostic> = workspace
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .cloned()
        .collect();
    sort_and_dedup(&mut errors);
    let mut stderr: String = errors.iter().map(|d| format!("{d}\n")).collect();
    let store = workspace.store();
    let resolved = match resolve::resolve(entity_path, &|p| store.get(p)) {
        Ok(tree) => tree,
        Err(e) => {
            stderr.push_str(&format!("error: cannot dump `{entity_path}`: {e}\n"));
            return CommandOutput {
                stdout: String::new(),
                stderr,
                exit_code: EXIT_USAGE,
            };
        }
    };
    let rendered = match format {
        DumpFormat::Json => serde_json::to_string_pretty(&resolved)
            .map(|s| s + "\n")
            .map_err(|e| e.to_string()),
        DumpFormat::Yaml => serde_saphyr::to_string(&resolved).map_err(|e| e.to_string()),
    };
    match rendered {
        Ok(stdout) => CommandOutput {
            stdout,
            stderr,
            exit_code: if errors.is_empty() {
                EXIT_OK
            } else {
                EXIT_PROBLEMS
            },
        },
        Err(e) => CommandOutput {
            stdout: String::new(),
            stderr: format!("{stderr}error: cannot render: {e}\n"),
            exit_code: EXIT_USAGE,
        },
    }
}

/// Reads the named paths for `monk load`: every definition exactly as written, plus the
/// warnings. Errors (including inheritance cycles among the loaded files) mean nothing
/// should be proposed. Parents not among the files are not errors here: they may be in
/// the cluster already, and resolution happens at use time ([`resolve_stored`]).
pub fn load_definitions(
    paths: &[PathBuf],
) -> Result<(Vec<LoadedDefinition>, Vec<Diagnostic>), Vec<Diagnostic>> {
    load_definitions_and_builds(paths).map(|(definitions, _, warnings)| (definitions, warnings))
}

/// What [`load_definitions_and_builds`] reads: the definitions, the builds in them,
/// and the warnings.
pub type Loaded = (Vec<LoadedDefinition>, Vec<BuildSite>, Vec<Diagnostic>);

/// [`load_definitions`], and every container with `build:` in them (the CLI builds
/// those before it loads).
pub fn load_definitions_and_builds(paths: &[PathBuf]) -> Result<Loaded, Vec<Diagnostic>> {
    let workspace = Workspace::load(paths);
    let store = workspace.store();
    let mut diagnostics = workspace.diagnostics.clone();
    diagnostics.extend(workspace.duplicate_diagnostics());
    diagnostics.extend(workspace.inheritance_diagnostics(&store, false));
    let (builds, build_problems) = build_sites(&workspace);
    diagnostics.extend(build_problems);
    sort_and_dedup(&mut diagnostics);
    if has_errors(&diagnostics) {
        return Err(diagnostics);
    }
    let mut definitions: Vec<LoadedDefinition> = Vec::new();
    for (_, definition) in workspace.definitions() {
        let loaded = LoadedDefinition {
            path: definition.path.clone(),
            kind: definition.kind.name(),
            definition: definition.node.to_tree(),
        };
        match definitions.iter_mut().find(|d| d.path == loaded.path) {
            Some(slot) => *slot = loaded,
            None => definitions.push(loaded),
        }
    }
    Ok((definitions, builds, diagnostics))
}

/// Resolves the definition at `path` against the definitions the cluster holds (keyed
/// by `namespace/name`).
pub fn resolve_stored(
    path: &str,
    stored: &BTreeMap<String, Tree>,
) -> Result<Tree, Vec<Diagnostic>> {
    resolve::resolve(path, &|p| stored.get(p)).map_err(|e| {
        let code = match e {
            ResolveError::NotFound(_) => "not-found",
            ResolveError::MissingParent { .. } => "missing-parent",
            ResolveError::Cycle(_) => "inherit-cycle",
            ResolveError::TooDeep(_) | ResolveError::TooMuchWork(_) => "too-deep",
            ResolveError::BadInherits(_) => "wrong-type",
        };
        vec![Diagnostic::error(
            &format!("<state>/{}", path.trim_start_matches('/')),
            Pos::new(1, 1),
            code,
            e.to_string(),
        )]
    })
}

/// A JSON-friendly summary used by tests and the bench.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub files: usize,
    pub definitions: usize,
    pub errors: usize,
    pub warnings: usize,
}
