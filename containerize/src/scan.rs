//! Reading a source tree: its files (text read up to a size bound), skipping
//! dependency and build output directories, and the directories that are components:
//! one that holds a runtime's dependency manifest or a Containerfile/Dockerfile, or an
//! `index.html` outside every other component.

use std::collections::BTreeMap;
use std::path::Path;

use crate::rules::{CONTAINER_FILES, RUNTIMES};
use crate::ContainerizeError;

/// Most files looked at: far above a real service's tree, it bounds a mistaken `/`.
pub const FILES_MAX: usize = 20_000;
/// Largest file read, in bytes: bigger ones are generated bundles or data, not code
/// whose imports tell anything.
pub const FILE_BYTES_MAX: u64 = 512 * 1024;
/// Deepest directory looked into (a symlink loop or a vendored tree ends here).
pub const DEPTH_MAX: usize = 16;

/// Directories never read: dependencies, build output, version control, caches.
const SKIPPED_DIRS: &[&str] = &[
    ".git",
    "node_modules",
    "vendor",
    "target",
    "dist",
    "build",
    "__pycache__",
    ".venv",
    "venv",
    "bin",
    "obj",
    ".gradle",
    "tmp",
    "log",
];

/// A source tree, its files by path relative to the root (`/`-separated).
#[derive(Debug, Default)]
pub struct SourceTree {
    /// Text of each file read; `None` when too big or not UTF-8.
    pub files: BTreeMap<String, Option<String>>,
}

impl SourceTree {
    /// Reads the tree under `root`.
    pub fn read(root: &Path) -> Result<SourceTree, ContainerizeError> {
        if !root.is_dir() {
            return Err(ContainerizeError::NotADirectory(root.display().to_string()));
        }
        let mut tree = SourceTree::default();
        tree.walk(root, "", 0)?;
        Ok(tree)
    }

    fn walk(&mut self, dir: &Path, prefix: &str, depth: usize) -> Result<(), ContainerizeError> {
        if depth > DEPTH_MAX {
            return Ok(());
        }
        let entries = std::fs::read_dir(dir).map_err(|e| ContainerizeError::Read {
            path: dir.display().to_string(),
            why: e.to_string(),
        })?;
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = format!("{prefix}{name}");
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                if !SKIPPED_DIRS.contains(&name.as_str()) {
                    self.walk(&entry.path(), &format!("{rel}/"), depth + 1)?;
                }
                continue;
            }
            if !kind.is_file() {
                continue;
            }
            if self.files.len() >= FILES_MAX {
                return Err(ContainerizeError::TooManyFiles(FILES_MAX));
            }
            let text = match entry.metadata() {
                Ok(m) if m.len() <= FILE_BYTES_MAX => std::fs::read_to_string(entry.path()).ok(),
                _ => None,
            };
            self.files.insert(rel, text);
        }
        Ok(())
    }

    /// The text of the file at `path`, when read.
    pub fn text(&self, path: &str) -> Option<&str> {
        self.files.get(path).and_then(|t| t.as_deref())
    }

    pub fn exists(&self, path: &str) -> bool {
        self.files.contains_key(path)
    }

    /// Directories that are components, `""` for the root, parents first.
    pub fn component_dirs(&self) -> Vec<String> {
        let mut marked: Vec<String> = Vec::new();
        for path in self.files.keys() {
            let (dir, name) = split(path);
            if is_marker(name) && !marked.iter().any(|d| d == dir) {
                marked.push(dir.to_string());
            }
        }
        for path in self.files.keys() {
            let (dir, name) = split(path);
            let inside = marked.iter().any(|d| contains(d, dir));
            if name == "index.html" && !inside {
                marked.push(dir.to_string());
            }
        }
        marked.sort();
        marked
    }
}

/// `a/b/c.txt` → (`a/b`, `c.txt`); a root file has the directory `""`.
pub fn split(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}

/// Whether directory `outer` is `inner` or one of its ancestors.
pub fn contains(outer: &str, inner: &str) -> bool {
    outer.is_empty() || inner == outer || inner.starts_with(&format!("{outer}/"))
}

/// A runtime's dependency manifest or a container file.
fn is_marker(name: &str) -> bool {
    CONTAINER_FILES.contains(&name)
        || RUNTIMES
            .iter()
            .flat_map(|r| r.manifests)
            .any(|m| manifest_matches(m, name))
}

/// `*.csproj` matches any name with that extension; other manifests by name.
pub fn manifest_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_prefix('*') {
        Some(suffix) => name.ends_with(suffix) && name.len() > suffix.len(),
        None => pattern == name,
    }
}
