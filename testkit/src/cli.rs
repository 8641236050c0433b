//! The real `monk` binary, run against a peer or offline, as a user would.

use std::process::{Command, Output};

use crate::process::{binary_or_panic, config_home};

/// Runs `monk --addr ADDR ARGS`, with its credentials kept in the peer's root (see
/// [`config_home`]), as a user's are in their home.
pub fn monk(addr: &str, args: &[&str]) -> Output {
    Command::new(binary_or_panic("monk"))
        .arg("--addr")
        .arg(addr)
        .args(args)
        .env("XDG_CONFIG_HOME", config_home(addr))
        .env_remove("MONK_CREDENTIALS")
        .output()
        .expect("run monk")
}

/// Runs `monk --addr ADDR ARGS` with no credential at all (anonymous, trusting any
/// peer): whether a peer answers, before or whatever cluster it is in.
pub fn monk_anonymous(addr: &str, args: &[&str]) -> Output {
    Command::new(binary_or_panic("monk"))
        .arg("--addr")
        .arg(addr)
        .args(args)
        .env("XDG_CONFIG_HOME", config_home("").join("anonymous"))
        .env("HOME", config_home("").join("anonymous"))
        .env_remove("MONK_CREDENTIALS")
        .output()
        .expect("run monk")
}

/// Runs `monk ARGS` without a peer (lint, eval, the offline audit commands).
pub fn monk_offline(args: &[&str]) -> Output {
    Command::new(binary_or_panic("monk"))
        .args(args)
        .env("XDG_CONFIG_HOME", config_home(""))
        .output()
        .expect("run monk")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `monk` against `addr`, asserting success, and returns stdout.
pub fn ok(addr: &str, args: &[&str]) -> String {
    let o = monk(addr, args);
    assert!(
        o.status.success(),
        "monk {args:?} via {addr} failed: {}",
        stderr(&o)
    );
    stdout(&o)
}

/// [`ok`] offline.
pub fn ok_offline(args: &[&str]) -> String {
    let o = monk_offline(args);
    assert!(o.status.success(), "monk {args:?} failed: {}", stderr(&o));
    stdout(&o)
}

/// [`ok`], parsed as one JSON value.
pub fn json(addr: &str, args: &[&str]) -> serde_json::Value {
    let text = ok(addr, args);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("monk {args:?}: not JSON ({e}): {text}"))
}
