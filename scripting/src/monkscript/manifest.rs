//! MANIFEST files: the plain-text list of what a kit loads and ships (MONK-REFERENCE §5.9).
//!
//! One directive per line, `#` comments, space-separated values. [`parse`] reads one
//! MANIFEST into directives with positions; [`expand`] follows `DIRS`/`DIR` into nested
//! MANIFESTs and produces the load order: files in the order their `LOAD`/`FILES` lines
//! name them, a nested directory's files at the place its `DIRS` line stands, each file
//! once (its first mention wins).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::diagnostic::{did_you_mean, Diagnostic, Pos};

/// Deepest chain of nested MANIFESTs followed. Hub repos nest two levels; the bound stops
/// a symlink loop or a pathological tree.
pub const MANIFEST_DEPTH_MAX: usize = 16;

/// Largest MANIFEST read. Real ones are under 1 KiB.
pub const MANIFEST_BYTES_MAX: u64 = 1024 * 1024;

/// Every directive a MANIFEST may hold.
pub const DIRECTIVES: [&str; 19] = [
    "REPO",
    "LOAD",
    "DIRS",
    "DIR",
    "FILES",
    "RESOURCES",
    "BLOBS",
    "BLOBSIGNORE",
    "SECRET",
    "ENTRY",
    "ENV",
    "IMAGE",
    "DESCRIPTION",
    "TAGS",
    "HOSTING",
    "VERSION",
    "VERSION_HASH",
    "AUTHOR",
    "NAME",
];

/// One line of a MANIFEST.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directive {
    pub name: String,
    pub pos: Pos,
    /// Space-separated values with their positions.
    pub args: Vec<(String, Pos)>,
    /// The rest of the line after the directive, for free-text directives (`DESCRIPTION`).
    pub text: String,
}

/// An image to build: `IMAGE name:tag runnable1,runnable2 <context> <Dockerfile>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageBuild {
    pub image: String,
    pub runnables: Vec<String>,
    pub context: Option<String>,
    pub dockerfile: Option<String>,
}

/// What a MANIFEST tree says, flattened in load order.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub repo: Option<String>,
    /// YAML files to load, in order, each with the MANIFEST line that named it.
    pub load: Vec<(PathBuf, String, Pos)>,
    pub resources: Vec<PathBuf>,
    /// `BLOBS name:path` pairs.
    pub blobs: Vec<(String, PathBuf)>,
    pub blobs_ignore: Vec<String>,
    pub secrets: Vec<String>,
    /// `ENTRY [env:]ns/name`: (environment, path).
    pub entries: Vec<(Option<String>, String)>,
    pub environments: Vec<String>,
    pub images: Vec<ImageBuild>,
    /// Hub metadata lines (`DESCRIPTION`, `TAGS`, `HOSTING`, `VERSION`, `VERSION_HASH`, `AUTHOR`).
    pub metadata: Vec<(String, String)>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Reads the directives of one MANIFEST text. Unknown directives are errors.
pub fn parse(file: &str, text: &str) -> (Vec<Directive>, Vec<Diagnostic>) {
    let mut directives = Vec::new();
    let mut diagnostics = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let content = line.split('#').next().unwrap_or("");
        let mut words = words_with_columns(content);
        if words.is_empty() {
            continue;
        }
        let (name, col) = words.remove(0);
        let pos = Pos::new(line_no, col);
        if name.ends_with(':') {
            diagnostics.push(
                Diagnostic::error(file, pos, "manifest-syntax", "this MANIFEST holds YAML, not MANIFEST directives")
                    .with_hint("a MANIFEST lists directives such as `REPO name` and `LOAD a.yaml b.yaml`; move the YAML into a .yaml file"),
            );
            break;
        }
        if !DIRECTIVES.contains(&name.as_str()) {
            let hint = did_you_mean(&name.to_ascii_uppercase().replace('-', "_"), DIRECTIVES)
                .map(|d| format!("did you mean `{d}`?"))
                .unwrap_or_else(|| {
                    format!(
                        "a MANIFEST line starts with one of {}",
                        DIRECTIVES.join(", ")
                    )
                });
            diagnostics.push(
                Diagnostic::error(
                    file,
                    pos,
                    "manifest-directive",
                    format!("unknown MANIFEST directive `{name}`"),
                )
                .with_hint(hint),
            );
            continue;
        }
        let text = content.trim_start()[name.len()..].trim().to_string();
        let args = words
            .into_iter()
            .map(|(w, c)| (w, Pos::new(line_no, c)))
            .collect();
        directives.push(Directive {
            name,
            pos,
            args,
            text,
        });
    }
    (directives, diagnostics)
}

fn words_with_columns(line: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut start = 0;
    for (col, ch) in line.chars().enumerate() {
        if ch.is_whitespace() {
            if !current.is_empty() {
                out.push((std::mem::take(&mut current), start + 1));
            }
        } else {
            if current.is_empty() {
                start = col;
            }
            current.push(ch);
        }
    }
    if !current.is_empty() {
        out.push((current, start + 1));
    }
    out
}

/// Reads the MANIFEST at `path` and everything it names, recursively.
pub fn expand(path: &Path) -> Plan {
    let mut plan = Plan::default();
    let mut seen_manifests = BTreeSet::new();
    let mut seen_files = BTreeSet::new();
    expand_into(path, 0, &mut plan, &mut seen_manifests, &mut seen_files);
    plan
}

fn read_manifest(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read MANIFEST: {e}"))?;
    if meta.len() > MANIFEST_BYTES_MAX {
        return Err(format!(
            "MANIFEST is {} bytes, more than the limit of {MANIFEST_BYTES_MAX}",
            meta.len()
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read MANIFEST: {e}"))?;
    String::from_utf8(bytes).map_err(|_| "MANIFEST is not UTF-8 text".to_string())
}

fn expand_into(
    path: &Path,
    depth: usize,
    plan: &mut Plan,
    seen_manifests: &mut BTreeSet<PathBuf>,
    seen_files: &mut BTreeSet<PathBuf>,
) {
    let file = path.display().to_string();
    let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    if !seen_manifests.insert(canonical) {
        return;
    }
    let text = match read_manifest(path) {
        Ok(text) => text,
        Err(message) => {
            plan.diagnostics.push(Diagnostic::error(
                &file,
                Pos::new(1, 1),
                "missing-file",
                message,
            ));
            return;
        }
    };
    let dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
    let (directives, diagnostics) = parse(&file, &text);
    plan.diagnostics.extend(diagnostics);
    for directive in directives {
        let missing = |plan: &mut Plan, (arg, pos): &(String, Pos), what: &str| {
            plan.diagnostics.push(
                Diagnostic::error(
                    &file,
                    *pos,
                    "missing-file",
                    format!("{what} `{arg}` does not exist"),
                )
                .with_hint("paths in a MANIFEST are relative to the MANIFEST's directory"),
            );
        };
        match directive.name.as_str() {
            "REPO" => plan.repo = directive.args.first().map(|(a, _)| a.clone()),
            "LOAD" | "FILES" => {
                for arg in &directive.args {
                    let target = dir.join(&arg.0);
                    if !target.is_file() {
                        missing(plan, arg, "file");
                    } else if seen_files.insert(target.clone()) {
                        plan.load.push((target, file.clone(), arg.1));
                    }
                }
            }
            "DIRS" | "DIR" => {
                for arg in &directive.args {
                    let nested = dir.join(&arg.0).join("MANIFEST");
                    if depth + 1 >= MANIFEST_DEPTH_MAX {
                        plan.diagnostics.push(Diagnostic::error(
                            &file,
                            arg.1,
                            "too-deep",
                            format!("MANIFESTs nest more than {MANIFEST_DEPTH_MAX} levels"),
                        ));
                    } else if !nested.is_file() {
                        missing(plan, arg, "directory MANIFEST");
                    } else {
                        expand_into(&nested, depth + 1, plan, seen_manifests, seen_files);
                    }
                }
            }
            "RESOURCES" => {
                for arg in &directive.args {
                    let target = dir.join(&arg.0);
                    if !target.exists() {
                        missing(plan, arg, "resource");
                    }
                    plan.resources.push(target);
                }
            }
            "BLOBS" => {
                for (arg, pos) in &directive.args {
                    match arg.split_once(':') {
                        Some((name, blob_path)) if !name.is_empty() => {
                            plan.blobs.push((name.to_string(), dir.join(blob_path)))
                        }
                        _ => plan.diagnostics.push(
                            Diagnostic::error(
                                &file,
                                *pos,
                                "manifest-syntax",
                                format!("`{arg}` is not `name:path`"),
                            )
                            .with_hint("write `BLOBS name:relative/dir/`"),
                        ),
                    }
                }
            }
            "BLOBSIGNORE" => plan
                .blobs_ignore
                .extend(directive.args.iter().map(|(a, _)| a.clone())),
            "SECRET" => plan
                .secrets
                .extend(directive.args.iter().map(|(a, _)| a.clone())),
            "ENTRY" => {
                for (arg, _) in &directive.args {
                    let entry = match arg.split_once(':') {
                        Some((env, target)) => (Some(env.to_string()), target.to_string()),
                        None => (None, arg.clone()),
                    };
                    plan.entries.push(entry);
                }
            }
            "ENV" => plan
                .environments
                .extend(directive.args.iter().map(|(a, _)| a.clone())),
            "IMAGE" => {
                let args: Vec<&str> = directive.args.iter().map(|(a, _)| a.as_str()).collect();
                match args.as_slice() {
                    [image, runnables, rest @ ..] if rest.len() <= 2 => {
                        plan.images.push(ImageBuild {
                            image: image.to_string(),
                            runnables: runnables.split(',').map(str::to_string).collect(),
                            context: rest.first().map(|s| s.to_string()),
                            dockerfile: rest.get(1).map(|s| s.to_string()),
                        })
                    }
                    _ => plan.diagnostics.push(Diagnostic::error(
                        &file,
                        directive.pos,
                        "manifest-syntax",
                        "`IMAGE` takes `name:tag runnable[,runnable] [context] [Dockerfile]`",
                    )),
                }
            }
            _ => plan
                .metadata
                .push((directive.name.clone(), directive.text.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_directives_with_positions_and_comments() {
        let (directives, diagnostics) = parse(
            "MANIFEST",
            "# kit\nREPO x\nLOAD  a.yaml b.yaml # tail\nLAOD c.yaml\n",
        );
        assert_eq!(directives.len(), 2);
        assert_eq!(
            directives[1].args[1],
            ("b.yaml".to_string(), Pos::new(3, 14))
        );
        assert_eq!(diagnostics.len(), 1);
        assert_eq!(diagnostics[0].hint.as_deref(), Some("did you mean `LOAD`?"));
    }
}
