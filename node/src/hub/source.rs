//! Reading a Hub source: a plain directory, or a git repository (a local work tree,
//! a bare repository, or a URL `git` can reach) cloned into a scratch directory by the
//! `git` program (no git library: one `git clone` and one `git rev-parse`). Every
//! directory with a MANIFEST is a kit, except one whose files a kit above it already
//! loads through `DIRS`; each kit is read as `monk load` reads a MANIFEST, and a kit
//! with errors is skipped with its first error rather than failing the whole source.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command as Process;

use monk_scripting::monkscript::cli::load_definitions;
use monk_scripting::monkscript::diagnostic::Severity;
use monk_scripting::monkscript::manifest;
use monk_scripting::tree::Tree;
use monk_statemachine::hub::{kit_digest, HubKit, KitMeta, HUB_KITS_PER_SOURCE_MAX};
use monk_statemachine::LoadedTemplate;

use super::HubError;

/// Deepest directory a kit's MANIFEST is looked for in (the corpus nests kits five
/// levels down: `owner/repo/dist/src/kit`); bounds a symlink loop.
pub const KIT_DEPTH_MAX: usize = 12;

/// Directories never searched for kits: version control and dependency trees.
const SKIPPED_DIRS: [&str; 3] = [".git", "node_modules", "vendor"];

/// What one read of a source gave.
#[derive(Debug)]
pub struct SourceRead {
    /// The source's name in the catalog: a local path made absolute, a URL as written.
    pub source: String,
    /// The commit read, where the source is a git repository.
    pub commit: Option<String>,
    pub kits: Vec<HubKit>,
    /// Kits that could not be read, with the first error of each.
    pub skipped: Skipped,
}

/// Reads `spec` (see the module docs).
pub fn read(spec: &str) -> Result<SourceRead, HubError> {
    let path = Path::new(spec);
    if path.is_dir() && !is_git_repository(path) {
        let root = path.canonicalize().map_err(|e| HubError::Read {
            source_name: spec.into(),
            why: e.to_string(),
        })?;
        let (kits, skipped) = read_kits(&root)?;
        return Ok(SourceRead {
            source: root.display().to_string(),
            commit: None,
            kits,
            skipped,
        });
    }
    let source = match path.exists() {
        true => path
            .canonicalize()
            .map_err(|e| HubError::Read {
                source_name: spec.into(),
                why: e.to_string(),
            })?
            .display()
            .to_string(),
        false if looks_remote(spec) => spec.to_string(),
        false => {
            return Err(HubError::Read {
                source_name: spec.into(),
                why: "no such directory, and not a git URL".into(),
            })
        }
    };
    let scratch = tempfile::tempdir().map_err(|e| HubError::Read {
        source_name: source.clone(),
        why: format!("cannot make a scratch directory: {e}"),
    })?;
    let checkout = scratch.path().join("checkout");
    git(
        &source,
        &[
            "clone",
            "--quiet",
            "--depth",
            "1",
            "--no-local",
            "--",
            &source,
        ],
        Some(&checkout),
    )?;
    let commit = git(
        &source,
        &["-C", &checkout.display().to_string(), "rev-parse", "HEAD"],
        None,
    )?;
    let (kits, skipped) = read_kits(&checkout)?;
    Ok(SourceRead {
        source,
        commit: Some(commit.trim().to_string()),
        kits,
        skipped,
    })
}

/// A work tree (`.git` inside) or a bare repository (`HEAD` and `objects/`).
fn is_git_repository(dir: &Path) -> bool {
    dir.join(".git").exists() || (dir.join("HEAD").is_file() && dir.join("objects").is_dir())
}

fn looks_remote(spec: &str) -> bool {
    spec.contains("://") || spec.starts_with("git@")
}

/// Runs `git args [target]`, its trimmed stdout, or why it failed.
fn git(source: &str, args: &[&str], target: Option<&Path>) -> Result<String, HubError> {
    let mut process = Process::new("git");
    process.args(args).env("GIT_TERMINAL_PROMPT", "0");
    if let Some(target) = target {
        process.arg(target);
    }
    let output = process.output().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => HubError::GitMissing {
            source_name: source.into(),
        },
        _ => HubError::Read {
            source_name: source.into(),
            why: format!("cannot run git: {e}"),
        },
    })?;
    if !output.status.success() {
        return Err(HubError::Git {
            source_name: source.into(),
            command: args.first().copied().unwrap_or("").to_string(),
            why: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Kits that could not be read: name and first error.
type Skipped = Vec<(String, String)>;

/// Every kit under `root`, and the kits skipped with their first error.
fn read_kits(root: &Path) -> Result<(Vec<HubKit>, Skipped), HubError> {
    let mut dirs = Vec::new();
    manifest_dirs(root, 0, &mut dirs);
    if dirs.len() > HUB_KITS_PER_SOURCE_MAX {
        return Err(HubError::Read {
            source_name: root.display().to_string(),
            why: format!(
                "{} MANIFESTs, more than the {HUB_KITS_PER_SOURCE_MAX} kits a source may hold",
                dirs.len()
            ),
        });
    }
    let mut claimed: BTreeSet<PathBuf> = BTreeSet::new();
    let mut kits = Vec::new();
    let mut skipped = Vec::new();
    for dir in dirs {
        let name = kit_name(root, &dir);
        let plan = manifest::expand(&dir.join("MANIFEST"));
        let files: Vec<PathBuf> = plan
            .load
            .iter()
            .map(|(f, _, _)| f.canonicalize().unwrap_or_else(|_| f.clone()))
            .collect();
        if !files.is_empty() && files.iter().all(|f| claimed.contains(f)) {
            // Loaded by a kit above through `DIRS`.
            continue;
        }
        claimed.extend(files);
        match read_kit(&dir, &plan) {
            Ok(kit) => kits.push(HubKit { name, ..kit }),
            Err(why) => skipped.push((name, why)),
        }
    }
    Ok((kits, skipped))
}

/// Directories under `dir` holding a MANIFEST, in path order (parents first).
fn manifest_dirs(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    if depth > KIT_DEPTH_MAX {
        return;
    }
    if dir.join("MANIFEST").is_file() {
        out.push(dir.to_path_buf());
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut children: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| !SKIPPED_DIRS.iter().any(|s| e.file_name() == *s))
        .map(|e| e.path())
        .collect();
    children.sort();
    for child in children {
        manifest_dirs(&child, depth + 1, out);
    }
}

/// `owner/repo` relative to the source's root; `.` for the root itself.
fn kit_name(root: &Path, dir: &Path) -> String {
    let relative = dir.strip_prefix(root).unwrap_or(dir).display().to_string();
    match relative.is_empty() {
        true => ".".into(),
        false => relative,
    }
}

/// One kit as `monk load DIR` reads it; its first error when it does not load.
fn read_kit(dir: &Path, plan: &manifest::Plan) -> Result<HubKit, String> {
    if let Some(error) = plan
        .diagnostics
        .iter()
        .find(|d| d.severity == Severity::Error)
    {
        return Err(error.to_string());
    }
    let (definitions, _warnings) = load_definitions(&[dir.to_path_buf()]).map_err(|diags| {
        diags
            .iter()
            .find(|d| d.severity == Severity::Error)
            .map_or_else(|| "does not load".to_string(), ToString::to_string)
    })?;
    let templates: Vec<LoadedTemplate> = definitions
        .into_iter()
        .map(|d| LoadedTemplate {
            path: d.path,
            kind: d.kind,
            definition: d.definition,
        })
        .collect();
    let metadata = |key: &str| {
        plan.metadata
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let version = metadata("VERSION").or_else(|| {
        templates
            .iter()
            .find_map(|t| t.definition.get("version").and_then(scalar_text))
    });
    let tags = metadata("TAGS")
        .map(|t| {
            t.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let meta = KitMeta {
        repo: plan.repo.clone(),
        version,
        description: metadata("DESCRIPTION"),
        tags,
    };
    Ok(HubKit {
        name: String::new(),
        digest: kit_digest(&meta, &templates),
        meta,
        templates,
    })
}

/// A scalar as text (`version: 1.2` is a float, `version: 3` an int).
fn scalar_text(tree: &Tree) -> Option<String> {
    match tree {
        Tree::Str(s) => Some(s.clone()),
        Tree::Int(i) => Some(i.to_string()),
        Tree::Float(f) => Some(f.clone()),
        _ => None,
    }
}
