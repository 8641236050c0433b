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
