//! Test harness: real `monkd` processes on loopback ports with real data dirs, driven
//! by the real `monk` binary; all of it from `monk-testkit`, shared with the drills.

#![allow(dead_code, unused_imports)]

use std::path::PathBuf;

pub mod docker;

pub use monk_testkit::cli::{json, monk, monk_offline, ok, ok_offline, stderr, stdout};
pub use monk_testkit::process::{free_port, wait_for, Monkd as Peer};

pub fn monk_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_monk"))
}

/// Copies a directory tree of plain files (a fixture into a scratch dir).
pub fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        match entry.file_type().unwrap().is_dir() {
            true => copy_tree(&entry.path(), &target),
            false => {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }
}

/// The stdout of a `monk` run that must succeed; its status and output otherwise.
pub fn succeeded(o: &std::process::Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what} failed ({}):\n{}\n{}",
        o.status,
        stdout(o),
        stderr(o)
    );
    stdout(o)
}

/// SIGKILLs the embedded peer `monk up` started (its pid file, `DATA.pid`) if a test
/// fails before `monk down --all`.
pub struct KillEmbedded(pub PathBuf);

impl Drop for KillEmbedded {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.0) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", pid.trim()])
                .status();
        }
    }
}
