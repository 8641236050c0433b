//! The Hub with real `monkd` peers: `monk hub add` of the kits in
//! `tests/fixtures/hub/` (a directory, and the same kits as a git repository that a
//! peer started with `--hub-source` follows), `monk run` of a Hub kit that inherits
//! another kit (it runs where Docker answers; a kit naming a missing image fails only
//! on the image), a loaded namespace shadowing the Hub's, the catalog after a restart,
//! in `monk replay` and `monk history`; and `monk hub add` of the real corpus.

mod support;

#[path = "../../scripting/tests/common/mod.rs"]
#[allow(dead_code)]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::docker::{build_image, engine_present, Cleanup};
use support::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hub")
}

fn kits(addr: &str) -> Vec<serde_json::Value> {
    json(addr, &["hub", "list", "-o", "json"])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn kit_names(addr: &str) -> Vec<String> {
    kits(addr)
        .iter()
        .filter_map(|k| k["kit"].as_str().map(String::from))
        .collect()
}

/// `monk list -o json` row of `path`, if listed.
fn listed(addr: &str, path: &str) -> Option<serde_json::Value> {
    let rows = json(addr, &["list", "-o", "json"]);
    rows.as_array()?.iter().find(|r| r["path"] == path).cloned()
}

#[test]
fn hub_kits_resolve_run_shadow_and_survive_restart_and_replay() {
    let root = tempfile::tempdir().unwrap();
    let cluster = format!("hub-{}", std::process::id());
    let _cleanup = Cleanup(cluster.clone());
    let mut peer = Peer::start(root.path(), "alpha");
    ok(&peer.addr, &["cluster", "new", "--name", &cluster]);
    let source = fixtures().canonicalize().unwrap();
    let source_name = source.to_str().unwrap();

    let added = json(&peer.addr, &["hub", "add", source_name, "-o", "json"]);
    assert_eq!(added["source"], source_name, "{added}");
    // hub-suite/part is loaded by hub-suite through DIRS: no kit of its own.
    assert_eq!(added["kits"], 4, "{added}");
    assert_eq!(added["published"], 4, "{added}");
    let skipped = added["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{added}");
    assert_eq!(skipped[0]["kit"], "hub-broken", "{added}");
    assert_eq!(
        kit_names(&peer.addr),
        ["hub-app", "hub-db", "hub-missing", "hub-suite"]
    );

    // `monk list` shows where each definition comes from; `hub info` and `search` too.
    let app = listed(&peer.addr, "hubapp/app").expect("hubapp/app is listed");
    assert_eq!(app["repository"], source_name, "{app}");
    assert!(listed(&peer.addr, "hubsuite/part").is_some());
    let info = json(&peer.addr, &["hub", "info", "hubdb/db", "-o", "json"]);
    assert_eq!(
        (&info["kit"], &info["version"], &info["repo"]),
        (&"hub-db".into(), &"1.2.0".into(), &"hub-db".into()),
        "{info}"
    );
    let found = json(&peer.addr, &["hub", "search", "database", "-o", "json"]);
    let paths: Vec<&str> = found
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["path"].as_str())
        .collect();
    assert_eq!(paths, ["hubdb/db", "hubdb/other"]);

    // Inheritance resolves across kits without `monk load`.
    let dumped = json(&peer.addr, &["dump", "hubapp/app", "-o", "json"]);
    assert_eq!(
        dumped["variables"]["greeting"]["value"], "from-hub-app",
        "{dumped}"
    );
    assert_eq!(
        dumped["containers"]["main"]["image"], "monk-local/busybox:1",
        "{dumped}"
    );
    if engine_present() {
        build_image();
        ok(&peer.addr, &["run", "hubapp/app", "--timeout", "2m"]);
        let ps = json(&peer.addr, &["ps", "-o", "json"]);
        assert_eq!(ps[0]["path"], "hubapp/app", "{ps}");
        assert_eq!(ps[0]["status"], "running", "{ps}");
        let logs = ok(&peer.addr, &["logs", "hubapp/app"]);
        assert!(logs.contains("db says from-hub-app"), "{logs}");
        ok(&peer.addr, &["purge", "hubapp/app"]);
        // The kit naming a missing image resolves, and fails on the image only.
        let failed = peer.monk(&["run", "hubmissing/app", "--timeout", "2m"]);
        let reason = String::from_utf8_lossy(&failed.stderr);
        assert!(!failed.status.success(), "{reason}");
        assert!(reason.contains("monk-local/no-such-image:1"), "{reason}");
        ok(&peer.addr, &["purge", "hubmissing/app"]);
    }

    // A loaded namespace shadows the Hub's: its path wins, the Hub's others are hidden.
    let local = root.path().join("local.yaml");
    std::fs::write(
        &local,
        "namespace: hubdb\n\ndb:\n  defines: runnable\n  containers:\n    main:\n      image: local/db:2\n",
    )
    .unwrap();
    ok(&peer.addr, &["load", local.to_str().unwrap()]);
    assert_eq!(
        listed(&peer.addr, "hubdb/db").map(|r| r["repository"].clone()),
        Some("local".into())
    );
    assert!(listed(&peer.addr, "hubdb/other").is_none());
    let info = json(&peer.addr, &["hub", "info", "hubdb/other", "-o", "json"]);
    assert_eq!(info["shadowed_by"], "local", "{info}");
    let dumped = json(&peer.addr, &["dump", "hubapp/app", "-o", "json"]);
    assert_eq!(
        dumped["containers"]["main"]["image"], "local/db:2",
        "{dumped}"
    );
    let refused = peer.monk(&["run", "hubdb/other"]);
    assert!(!refused.status.success());

    // Adding the same source again proposes nothing.
    let again = json(&peer.addr, &["hub", "add", source_name, "-o", "json"]);
    assert_eq!(
        (&again["published"], &again["commands"]),
        (&0.into(), &0.into())
    );

    // The catalog survives a restart, replays to the live digest, shows in history.
    let before = kits(&peer.addr);
    peer.terminate();
    peer.restart();
    assert_eq!(kits(&peer.addr), before);
    let consensus = json(&peer.addr, &["system", "consensus", "-o", "json"]);
    let applied = consensus["applied_index"].to_string();
    let replayed = json(
        &peer.addr,
        &["replay", "--to-index", &applied, "-o", "json"],
    );
    assert_eq!(
        replayed["state_digest"], consensus["state_digest"],
        "{replayed}"
    );
    assert!(
        replayed["state"]["hub"][source_name]["kits"]["hub-app"].is_object(),
        "{replayed}"
    );
    let history = ok(&peer.addr, &["history", "hubapp/app"]);
    assert!(history.contains("4 kit(s) published"), "{history}");

    // Removed, the source's kits are gone; the loaded namespace stays.
    ok(&peer.addr, &["hub", "rm", source_name]);
    assert!(kits(&peer.addr).is_empty());
    assert!(listed(&peer.addr, "hubapp/app").is_none());
    assert!(listed(&peer.addr, "hubdb/db").is_some());
    assert!(!peer.monk(&["hub", "rm", source_name]).status.success());
}

/// `git` on PATH, or a printed reason to skip.
fn git_present() -> bool {
    let found = Command::new("git").arg("--version").output().is_ok();
    if !found {
        eprintln!("SKIPPED: no `git` on PATH (a git Hub source needs it)");
    }
    found
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_peer_with_hub_source_follows_a_git_repository() {
    if !git_present() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let repo = root.path().join("kits");
    copy_tree(&fixtures(), &repo);
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "kits"]);
    let first = git(&repo, &["rev-parse", "HEAD"]);
    let repo_name = repo.canonicalize().unwrap().display().to_string();

    let flags = ["--hub-source", &repo_name, "--hub-refresh", "1s"];
    let peer = Peer::start_with(root.path(), "alpha", &flags);
    ok(&peer.addr, &["cluster", "new", "--name", "hubgit"]);
    let commit_of = |addr: &str| -> Option<String> {
        kits(addr)
            .first()
            .and_then(|k| k["commit"].as_str().map(String::from))
    };
    wait_for(
        Duration::from_secs(60),
        || commit_of(&peer.addr).as_deref() == Some(first.as_str()),
        "the peer to publish the repository's kits at its commit",
    );
    assert_eq!(
        kit_names(&peer.addr),
        ["hub-app", "hub-db", "hub-missing", "hub-suite"]
    );

    // A new commit that bumps a version and removes a kit is followed.
    let manifest = repo.join("hub-db/MANIFEST");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace("VERSION 1.2.0", "VERSION 1.3.0")).unwrap();
    std::fs::remove_dir_all(repo.join("hub-missing")).unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "db 1.3.0"]);
    let second = git(&repo, &["rev-parse", "HEAD"]);
    wait_for(
        Duration::from_secs(60),
        || commit_of(&peer.addr).as_deref() == Some(second.as_str()),
        "the peer to follow the new commit",
    );
    assert_eq!(kit_names(&peer.addr), ["hub-app", "hub-db", "hub-suite"]);
    let info = json(&peer.addr, &["hub", "info", "hubdb/db", "-o", "json"]);
    assert_eq!(info["version"], "1.3.0", "{info}");

    // `monk hub add` of a repository that is not there names git's reason.
    let missing = peer.monk(&["hub", "add", "file:///nonexistent/kits.git"]);
    let reason = String::from_utf8_lossy(&missing.stderr);
    assert!(!missing.status.success());
    assert!(reason.contains("git clone failed"), "{reason}");
}

#[test]
fn hub_add_of_the_corpus() {
    let Some(corpus) = common::corpus_root("hub_add_of_the_corpus") else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let peer = Peer::start(root.path(), "alpha");
    ok(&peer.addr, &["cluster", "new", "--name", "hubcorpus"]);
    let before = json(&peer.addr, &["system", "consensus", "-o", "json"]);
    let added = json(
        &peer.addr,
        &["hub", "add", corpus.to_str().unwrap(), "-o", "json"],
    );
    let kits_read = added["kits"].as_u64().unwrap();
    let skipped = added["skipped"].as_array().unwrap().len() as u64;
    eprintln!(
        "corpus: {kits_read} kits, {} definitions, {skipped} kits skipped, {} commands, {} bytes, read in {} ms, {} ms in all",
        added["definitions"], added["commands"], added["bytes"], added["read_ms"], added["total_ms"]
    );
    assert!(kits_read >= 200, "{added}");
    assert!(skipped < kits_read / 4, "{added}");
    assert_eq!(added["published"], kits_read, "{added}");
    let after = json(&peer.addr, &["system", "consensus", "-o", "json"]);
    let entries =
        after["last_log_index"].as_u64().unwrap() - before["last_log_index"].as_u64().unwrap();
    assert_eq!(entries, added["commands"].as_u64().unwrap());
    // A real kit that inherits across kits resolves from the catalog.
    let rows = json(&peer.addr, &["list", "-o", "json"]);
    let hub_rows = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["repository"] != "local")
        .count();
    assert!(hub_rows >= 500, "{hub_rows} hub definitions listed");
    let again = json(
        &peer.addr,
        &["hub", "add", corpus.to_str().unwrap(), "-o", "json"],
    );
    assert_eq!(again["commands"], 0, "{again}");
}
