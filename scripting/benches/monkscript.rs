//! Parse + validate + resolve the whole corpus (`../shared/corpus`): files per second.

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use monk_scripting::monkscript::cli::lint_command;

fn corpus_files() -> Vec<PathBuf> {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus"));
    let mut files = Vec::new();
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn corpus(c: &mut Criterion) {
    let files = corpus_files();
    assert!(
        !files.is_empty(),
        "corpus missing: expected ../shared/corpus beside the repository"
    );
    let mut group = c.benchmark_group("monkscript");
    group.sample_size(10);
    group.throughput(Throughput::Elements(files.len() as u64));
    group.bench_function("lint whole corpus (parse + validate + resolve)", |b| {
        b.iter(|| lint_command(&files, false, false))
    });
    group.finish();
}

criterion_group!(benches, corpus);
criterion_main!(benches);
