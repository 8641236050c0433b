//! `build:` in a container: the image is built from a context directory on the user's
//! machine instead of named. Two forms:
//!
//! ```yaml
//! build: ./app                 # the context, relative to the YAML file
//! dockerfile: Dockerfile.prod  # optional, beside it; inside the context
//! ```
//!
//! ```yaml
//! build:
//!   context: ./app
//!   containerfile: Containerfile   # or `dockerfile:`; default Containerfile, else Dockerfile
//! ```
//!
//! A container that also names an `image` runs that image: its `build` is not built.
//!
//! This module only reads where builds are ([`build_sites`]) and the name of the
//! image each becomes in the cluster registry ([`repository_of`]); the CLI walks the
//! context, hashes it, has a peer build it, and writes the resulting
//! `image: registry.monk/NAME` and `image-tag: HASH` into the definition it loads.

use super::diagnostic::{Diagnostic, Pos};
use super::load::Workspace;
use super::syntax::{Node, Value};

/// One container with `build:`: where it is written and what it says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildSite {
    /// The definition, `namespace/name`.
    pub path: String,
    /// The container's name in `containers:`.
    pub container: String,
    /// The YAML file and where its `build` key is.
    pub file: String,
    pub pos: Pos,
    /// The context directory as written (relative to the file's directory).
    pub context: String,
    /// The Dockerfile or Containerfile as written (relative to the context), if named.
    pub dockerfile: Option<String>,
}

impl BuildSite {
    /// `file:line:col` of the `build` key.
    pub fn at(&self) -> String {
        format!("{}:{}:{}", self.file, self.pos.line, self.pos.col)
    }
}

/// The scalar text of `node`, if it is a non-empty string.
fn text(node: &Node) -> Option<String> {
    node.as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

/// Every container with `build:` in the workspace's definitions, and the problems
/// with how they are written (a `build` that is neither a directory nor a map with
/// `context`, both `dockerfile` and `containerfile`).
pub fn build_sites(workspace: &Workspace) -> (Vec<BuildSite>, Vec<Diagnostic>) {
    let mut sites = Vec::new();
    let mut problems = Vec::new();
    for (source, definition) in workspace.definitions() {
        let Some(containers) = definition.node.get("containers").and_then(Node::as_map) else {
            continue;
        };
        for container in containers {
            // With an `image` too, the image is what runs (the build is made elsewhere).
            let Some(entry) = container.value.entry("build") else {
                continue;
            };
            if container.value.get("image").is_some() {
                continue;
            }
            let error =
                |message: String| Diagnostic::error(&source.file, entry.key_pos, "build", message);
            let at_container = container.value.get("dockerfile").and_then(text);
            let (context, dockerfile) = match &entry.value.value {
                Value::Str(..) => match text(&entry.value) {
                    Some(context) => (context, at_container),
                    None => {
                        problems.push(error("`build` names no context directory".into()));
                        continue;
                    }
                },
                Value::Map(_) => {
                    let Some(context) = entry.value.get("context").and_then(text) else {
                        problems.push(error(
                            "`build` needs `context: DIR` (the directory to build, relative to this file)"
                                .into(),
                        ));
                        continue;
                    };
                    let named = ["dockerfile", "containerfile"]
                        .iter()
                        .filter_map(|k| entry.value.get(k).and_then(text))
                        .collect::<Vec<_>>();
                    if named.len() > 1 {
                        problems.push(error(
                            "`build` names both `dockerfile` and `containerfile`; write one".into(),
                        ));
                        continue;
                    }
                    let unknown: Vec<&str> = entry
                        .value
                        .as_map()
                        .unwrap_or_default()
                        .iter()
                        .map(|e| e.key.as_str())
                        .filter(|k| !["context", "dockerfile", "containerfile"].contains(k))
                        .collect();
                    if !unknown.is_empty() {
                        problems.push(error(format!(
                            "`build` takes `context` and `dockerfile` or `containerfile`, not {}",
                            unknown.join(", ")
                        )));
                        continue;
                    }
                    (context, named.into_iter().next().or(at_container))
                }
                _ => {
                    problems.push(error(
                        "`build` is a context directory, or a map with `context` and `dockerfile`/`containerfile`"
                            .into(),
                    ));
                    continue;
                }
            };
            sites.push(BuildSite {
                path: definition.path.clone(),
                container: container.key.clone(),
                file: source.file.clone(),
                pos: entry.key_pos,
                context,
                dockerfile,
            });
        }
    }
    (sites, problems)
}

/// The repository in the cluster registry that the container `container` of the
/// definition `path` (`namespace/name`) is built into: `namespace/name/container`,
/// lowercased, with every run of characters a repository name cannot hold turned
/// into one `-` (`My_App/Web!` becomes `my_app/web`).
pub fn repository_of(path: &str, container: &str) -> String {
    let components: Vec<String> = path
        .split('/')
        .chain(std::iter::once(container))
        .map(component)
        .filter(|c| !c.is_empty())
        .collect();
    match components.is_empty() {
        true => "app".into(),
        false => components.join("/"),
    }
}

/// One path component of a repository name: `[a-z0-9]+` joined by single `.`, `_`,
/// `__` or `-` runs; anything else becomes `-`, and separators at the ends go.
fn component(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        let c = match c {
            'a'..='z' | '0'..='9' | '.' | '_' | '-' => c,
            _ => '-',
        };
        let separator = !c.is_ascii_alphanumeric();
        let last_separator = out
            .chars()
            .last()
            .is_some_and(|l| !l.is_ascii_alphanumeric());
        if separator && (out.is_empty() || last_separator) {
            continue;
        }
        out.push(c);
    }
    out.trim_end_matches(['.', '_', '-']).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sites(yaml: &str) -> (Vec<BuildSite>, Vec<Diagnostic>) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("app.yaml");
        std::fs::write(&file, yaml).unwrap();
        build_sites(&Workspace::load(&[file]))
    }

    #[test]
    fn both_forms_are_read_with_where_the_key_is() {
        let (found, problems) = sites(
            "namespace: demo\nweb:\n  defines: runnable\n  containers:\n    main:\n      build: ./app\n      dockerfile: Dockerfile.prod\n    side:\n      build:\n        context: side\n        containerfile: Containerfile\n    plain:\n      image: busybox\n      build: ./ignored\n",
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].path, "demo/web");
        assert_eq!(found[0].container, "main");
        assert_eq!(found[0].context, "./app");
        assert_eq!(found[0].dockerfile.as_deref(), Some("Dockerfile.prod"));
        assert_eq!(found[0].pos, Pos::new(6, 7));
        assert!(found[0].at().ends_with("app.yaml:6:7"), "{}", found[0].at());
        assert_eq!(found[1].context, "side");
        assert_eq!(found[1].dockerfile.as_deref(), Some("Containerfile"));
    }

    #[test]
    fn badly_written_builds_are_errors_at_the_key() {
        for (build, want) in [
            ("build: 3\n", "a context directory"),
            ("build:\n        dockerfile: D\n", "needs `context"),
            (
                "build:\n        context: .\n        dockerfile: D\n        containerfile: C\n",
                "both",
            ),
            ("build:\n        context: .\n        args: x\n", "not args"),
        ] {
            let (found, problems) = sites(&format!(
                "namespace: demo\nweb:\n  defines: runnable\n  containers:\n    main:\n      {build}"
            ));
            assert!(found.is_empty(), "{build}");
            assert_eq!(problems.len(), 1, "{build}: {problems:?}");
            assert!(problems[0].message.contains(want), "{:?}", problems[0]);
            assert_eq!((problems[0].line, problems[0].column), (6, 7));
        }
    }

    #[test]
    fn repository_names_are_valid_for_any_path() {
        assert_eq!(repository_of("demo/web", "main"), "demo/web/main");
        assert_eq!(repository_of("My_App/Web!", "Main"), "my_app/web/main");
        assert_eq!(repository_of("a--b/..c", "-x-"), "a-b/c/x");
        assert_eq!(repository_of("", ""), "app");
        for (path, container) in [("demo/web", "main"), ("My_App/Web!", "Main"), ("ä/ö", "ü")] {
            let name = repository_of(path, container);
            assert!(
                monk_statemachine_name_ok(&name),
                "{path} {container} -> {name}"
            );
        }
    }

    /// The distribution spec's name grammar, component by component.
    fn monk_statemachine_name_ok(name: &str) -> bool {
        name.split('/').all(|c| {
            !c.is_empty()
                && c.starts_with(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
                && c.ends_with(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
                && c.chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
        })
    }
}
