//! The library on data dirs written by the live store code: verification finds the
//! first differing entry and stops at the bound it is given, and an entity's history
//! lists the entries that touched it.

use std::path::Path;

use monk_audit::{entity_history, verify, Entity, EntrySide, Finding, HistoryChange};
use monk_log::RaftEntry;
use monk_scripting::tree::Tree;
use monk_statemachine::{Capacity, Command, LoadedTemplate};
use monk_testkit::builders;
use monk_testkit::datadir::{blank, membership, DataDirWriter};

fn entry(index: u64, command: Command) -> RaftEntry {
    builders::entry(1, index, command)
}

fn load(index: u64, path: &str) -> RaftEntry {
    let templates = vec![LoadedTemplate {
        path: path.into(),
        kind: "runnable".into(),
        definition: Tree::Null,
    }];
    entry(index, Command::TemplatesLoaded { templates })
}

/// Membership at 0, a blank at 1, the cluster created at 2, then templates at `paths`
/// from index 3 on.
fn write(dir: &Path, paths: &[&str]) {
    let mut writer = DataDirWriter::create(dir).unwrap();
    let created = Command::ClusterCreated {
        name: "c".into(),
        first_peer_name: "p1".into(),
        first_peer_address: "127.0.0.1:1".into(),
        tags: Vec::new(),
        capacity: Capacity::default(),
        facts: None,
        admin_token_sha256: None,
        overlay_range: None,
        overlay: None,
        open_network: false,
    };
    let mut entries = vec![membership(1, 0), blank(1, 1), entry(2, created)];
    entries.extend(paths.iter().enumerate().map(|(i, p)| load(i as u64 + 3, p)));
    writer.append_and_apply(entries).unwrap();
}

#[test]
fn verify_finds_the_first_differing_entry_up_to_its_bound() {
    let root = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        root.path().join("a"),
        root.path().join("b"),
        root.path().join("c"),
    );
    write(&a, &["ns/a", "ns/b", "ns/c", "ns/d"]);
    // b holds one more entry (not yet committed everywhere): not compared.
    write(&b, &["ns/a", "ns/b", "ns/c", "ns/d", "ns/e"]);
    write(&c, &["ns/a", "ns/b", "ns/x", "ns/d"]);
    let (ra, rb, rc) = (
        monk_audit::open(&a).unwrap(),
        monk_audit::open(&b).unwrap(),
        monk_audit::open(&c).unwrap(),
    );

    let all = verify(&[("a", &ra), ("b", &rb), ("c", &rc)], None).unwrap();
    assert!(!all.consistent());
    assert_eq!(
        all.findings[0],
        Finding::Consistent {
            up_to: 6,
            digests_compared: 7
        }
    );
    let Finding::EntryDiffers {
        index,
        mine,
        theirs,
    } = &all.findings[1]
    else {
        panic!("{:?}", all.findings[1]);
    };
    assert_eq!(*index, 5);
    let summary = |side: &EntrySide| match side {
        EntrySide::Stored(e) => e.summary.clone(),
        EntrySide::Unreadable { unreadable } => unreadable.clone(),
    };
    assert!(summary(mine).contains("ns/c"), "{mine:?}");
    assert!(summary(theirs).contains("ns/x"), "{theirs:?}");

    let before = verify(&[("a", &ra), ("c", &rc)], Some(4)).unwrap();
    assert!(before.consistent(), "{before:?}");
}

#[test]
fn history_lists_the_entries_that_touched_a_path() {
    let root = tempfile::tempdir().unwrap();
    write(root.path(), &["ns/a", "ns/b", "ns/a"]);
    let reader = monk_audit::open(root.path()).unwrap();
    let found = entity_history(&reader, &Entity::Path("ns/a".into())).unwrap();
    assert!(found.stopped.is_none());
    let indexes: Vec<u64> = found.steps.iter().map(|s| s.row.entry.index).collect();
    assert_eq!(indexes, [3, 5]);
    assert!(found
        .steps
        .iter()
        .all(|s| matches!(s.change, HistoryChange::Applied { .. })));
}

#[test]
fn a_peer_entity_must_name_a_numeric_id() {
    assert_eq!(Entity::parse("peer/3").unwrap(), Entity::Peer(3));
    assert!(Entity::parse("peer/x").is_err());
    assert!(Entity::parse("").is_err());
}
