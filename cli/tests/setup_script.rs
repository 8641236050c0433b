//! `scripts/setup`, which the two README commands and CI call to install the system
//! packages the build needs: its detection and its refusals, with stand-ins for
//! `dpkg-query`, `id`, `sudo` and `cargo` first on PATH (nothing is installed here).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn script(name: &str) -> PathBuf {
    Path::new(ROOT).join("scripts").join(name)
}

/// A directory of stand-in commands (`name` → shell body).
fn stand_ins(commands: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in commands {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir
}

/// Runs `scripts/setup ARGS` with PATH = the stand-ins, then (unless `only`) the usual
/// PATH.
fn setup(bin: &Path, only: bool, args: &[&str]) -> Output {
    let path = match only {
        true => bin.display().to_string(),
        false => format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
    };
    Command::new("/bin/bash")
        .arg(script("setup"))
        .args(args)
        .env("PATH", path)
        .output()
        .expect("bash runs")
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

const MISSING: (&str, &str) = ("dpkg-query", "echo 'unknown ok not-installed'");
const PRESENT: (&str, &str) = ("dpkg-query", "printf 'install ok installed'");
const CARGO: (&str, &str) = ("cargo", "exit 0");

#[test]
fn missing_packages_are_named_with_the_reason() {
    let bin = stand_ins(&[MISSING, CARGO]);
    let out = setup(bin.path(), false, &["--check"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    for (pkg, why) in [
        ("libclang-dev", "bindgen"),
        ("protobuf-compiler", "protoc"),
        ("busybox-static", "busybox"),
        ("tcpdump", "plaintext"),
    ] {
        let line = said
            .lines()
            .find(|l| l.trim_start().starts_with(pkg))
            .unwrap_or_else(|| panic!("{pkg} not named: {said}"));
        assert!(line.contains(why), "{line}");
    }
}

#[test]
fn nothing_to_do_when_everything_is_installed() {
    let bin = stand_ins(&[PRESENT, CARGO]);
    let out = setup(bin.path(), false, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(text(&out), "");
}

#[test]
fn without_root_or_sudo_it_says_what_to_run() {
    let bin = stand_ins(&[MISSING, CARGO, ("id", "echo 1000"), ("sudo", "exit 1")]);
    let out = setup(bin.path(), false, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(
            "installing needs root; run: sudo apt-get install -y libclang-dev protobuf-compiler busybox-static tcpdump"
        ),
        "{}",
        text(&out)
    );
}

#[test]
fn without_apt_get_or_cargo_it_says_so() {
    let bin = stand_ins(&[MISSING, CARGO, ("id", "echo 0")]);
    let out = setup(bin.path(), true, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("no apt-get on this machine"),
        "{}",
        text(&out)
    );
    let bin = stand_ins(&[MISSING]);
    let out = setup(bin.path(), true, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("cargo is not on PATH"),
        "{}",
        text(&out)
    );
}

#[test]
fn both_readme_commands_and_ci_call_it() {
    for file in ["scripts/up", "scripts/test", ".ci/run"] {
        let body = std::fs::read_to_string(Path::new(ROOT).join(file)).unwrap();
        assert!(
            body.lines().any(|l| l.trim() == "./scripts/setup"),
            "{file} does not call ./scripts/setup"
        );
    }
}
