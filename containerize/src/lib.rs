//! `monk containerize [DIR]`: find the services in a source tree and say, per
//! component, what was found and on what evidence (API servers, workers, scheduled
//! tasks, static front ends, existing Containerfiles); write a Containerfile for each
//! component that needs a container and has none, and one MonkScript file with a
//! group of runnables for the whole tree.
//!
//! - [`rules`]: the detection table, one row per framework; the only place that names one.
//! - [`scan`]: reading the tree and finding its components.
//! - [`analyse`]: what each component is (processes, port, health path, environment,
//!   backing services).
//! - [`containerfile`]: the Containerfile templates, per runtime.
//! - [`monkscript`]: the MonkScript stack.
//! - [`report`]: what `monk containerize` prints.
//!
//! Pure apart from [`scan`], which reads the tree; writing the files is the caller's.
//! Not yet: `--build` (build each image, boot it, check it answers); the report says
//! how to build them by hand.

pub mod analyse;
pub mod containerfile;
pub mod monkscript;
pub mod report;
pub mod rules;
pub mod scan;

use std::path::Path;

use serde::Serialize;

pub use analyse::Component;

/// Why a tree could not be analysed.
#[derive(Debug, thiserror::Error)]
pub enum ContainerizeError {
    #[error("{0} is not a directory")]
    NotADirectory(String),
    #[error("cannot read {path}: {why}")]
    Read { path: String, why: String },
    #[error("more than {0} files: point monk containerize at one project's directory")]
    TooManyFiles(usize),
}

/// A file `monk containerize` writes, relative to the analysed directory.
#[derive(Clone, Debug, Serialize)]
pub struct GeneratedFile {
    pub path: String,
    pub text: String,
}

/// Everything found and to be written.
#[derive(Debug, Serialize)]
pub struct Plan {
    /// The stack's namespace (the directory's name, made valid).
    pub namespace: String,
    pub components: Vec<Component>,
    pub files: Vec<GeneratedFile>,
}

/// The file the MonkScript stack is written to, relative to the analysed directory.
pub const STACK_FILE: &str = "monk.yaml";

/// Analyses the tree at `root`; `name` is used for the namespace (the directory's own
/// name when the caller has it).
pub fn plan(root: &Path, name: &str) -> Result<Plan, ContainerizeError> {
    let tree = scan::SourceTree::read(root)?;
    let namespace = analyse::name_of(name);
    let components = analyse::analyse(&tree, &namespace);
    let mut files = Vec::new();
    for component in &components {
        if let Some(text) = containerfile::containerfile(component) {
            let path = match component.dir.is_empty() {
                true => "Containerfile".to_string(),
                false => format!("{}/Containerfile", component.dir),
            };
            files.push(GeneratedFile { path, text });
        }
    }
    if let Some(text) = monkscript::stack(&namespace, &components) {
        files.push(GeneratedFile {
            path: STACK_FILE.into(),
            text,
        });
    }
    Ok(Plan {
        namespace,
        components,
        files,
    })
}
