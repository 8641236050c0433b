//! The floor one writer cannot go below: a 4 KiB append plus `fdatasync` on the
//! filesystem the data dirs are on, timed in the same run as the clusters.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::load::percentile;

/// Bytes per append: a typical small log record rounded to a page.
const APPEND_BYTES: usize = 4096;

/// p50 and p99 of `samples` appends with `fdatasync` to a file in `dir` (removed after).
pub fn floor(dir: &Path, samples: usize) -> Result<(Duration, Duration)> {
    let path = dir.join("fsync-floor");
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("{}", path.display()))?;
    let block = [0x5au8; APPEND_BYTES];
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let started = Instant::now();
        file.write_all(&block)?;
        file.sync_data()?;
        times.push(started.elapsed());
    }
    drop(file);
    std::fs::remove_file(&path)?;
    times.sort_unstable();
    Ok((percentile(&times, 0.50), percentile(&times, 0.99)))
}
