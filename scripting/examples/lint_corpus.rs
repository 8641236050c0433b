//! Lints every MonkScript file under a directory once (default: `../shared/corpus`) and
//! prints the time taken and the summary; run under `/usr/bin/time -v` for peak memory.

use std::path::PathBuf;
use std::time::Instant;

use monk_scripting::monkscript::cli::lint_command;

#[path = "../tests/common/mod.rs"]
mod common;

fn main() {
    let root = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus"))
        });
    let mut files = Vec::new();
    common::yaml_files(&root, &mut files);
    files.sort();
    let start = Instant::now();
    let output = lint_command(&files, false, false);
    let elapsed = start.elapsed();
    eprint!("{}", output.stderr);
    eprintln!(
        "{} YAML files in {:.3} s ({:.0} files/s)",
        files.len(),
        elapsed.as_secs_f64(),
        files.len() as f64 / elapsed.as_secs_f64()
    );
}
