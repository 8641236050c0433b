//! `monk containerize [DIR]`, offline: analyse a source tree with `monk-containerize`,
//! print what was found per component, and write a Containerfile for each component
//! that needs one and has none, and `monk.yaml` (not over an existing one without
//! `--force`). `--dry-run` writes nothing and prints the files instead.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use monk_containerize::{plan, report, Plan, STACK_FILE};

use crate::exit::Failure;

#[derive(Args, Debug)]
pub struct ContainerizeArgs {
    /// The source tree (default: the current directory).
    dir: Option<PathBuf>,
    /// Write nothing; print the report and every file that would be written.
    #[arg(long)]
    dry_run: bool,
    /// Overwrite an existing monk.yaml.
    #[arg(long)]
    force: bool,
    /// `-o json`: the findings (components, processes, evidence, files) as JSON.
    #[command(flatten)]
    out: crate::OutputArg,
}

pub fn run(args: &ContainerizeArgs) -> ExitCode {
    match containerize(args) {
        Ok(text) => {
            crate::output::out(&text);
            ExitCode::SUCCESS
        }
        Err(failure) => crate::fail(failure),
    }
}

fn containerize(args: &ContainerizeArgs) -> Result<String, Failure> {
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    let absolute = dir
        .canonicalize()
        .map_err(|e| Failure::failed(format!("{}: {e}", dir.display())))?;
    let name = absolute
        .file_name()
        .map_or_else(|| "app".to_string(), |n| n.to_string_lossy().into_owned());
    let plan = plan(&absolute, &name).map_err(|e| Failure::failed(e.to_string()))?;
    if !args.dry_run {
        write_files(&absolute, &plan, args.force)?;
    }
    if args.out.output == crate::Output::Json {
        return serde_json::to_string_pretty(&plan)
            .map(|s| s + "\n")
            .map_err(|e| Failure::failed(e.to_string()));
    }
    let mut text = report::text(&plan, !args.dry_run);
    if args.dry_run {
        for file in &plan.files {
            text.push_str(&format!("\n=== {} ===\n{}", file.path, file.text));
        }
    }
    Ok(text)
}

/// Writes the plan's files under `root`; refuses to replace `monk.yaml` unless
/// `force` (a Containerfile is only planned where none exists).
fn write_files(root: &Path, plan: &Plan, force: bool) -> Result<(), Failure> {
    let stack = root.join(STACK_FILE);
    if !force && stack.exists() && plan.files.iter().any(|f| f.path == STACK_FILE) {
        return Err(Failure::failed(format!(
            "{} exists: pass --force to replace it, or --dry-run to see what would be written",
            stack.display()
        )));
    }
    for file in &plan.files {
        let path = root.join(&file.path);
        std::fs::write(&path, &file.text)
            .map_err(|e| Failure::failed(format!("cannot write {}: {e}", path.display())))?;
    }
    Ok(())
}
