//! The power-loss filesystem keeps exactly what was synced: each test writes through a
//! real FUSE mount, pulls the power, and reads the backing directory and the remounted
//! filesystem. Needs root and `/dev/fuse`; without them each test says so and skips,
//! unless `MONK_REQUIRE_ROOT=1` (set by `.ci/run`) makes that a failure.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;

use monk_testkit::lossyfs::{LossyMount, PowerLoss};

fn mount(root: &Path, test: &str) -> Option<LossyMount> {
    LossyMount::mount_or_skip(&root.join("backing"), &root.join("mnt"), test)
}

/// Creates `name` under the mount with `bytes`, synced (data and its creation).
fn synced_file(m: &LossyMount, name: &str, bytes: &[u8]) {
    let mut f = File::create(m.path().join(name)).unwrap();
    f.write_all(bytes).unwrap();
    f.sync_all().unwrap();
}

fn power_cycle(m: &mut LossyMount) -> PowerLoss {
    let report = m.power_loss().unwrap();
    assert!(!m.is_mounted());
    m.remount().unwrap();
    report
}

#[test]
fn unsynced_writes_are_gone_after_a_power_loss() {
    let root = tempfile::tempdir().unwrap();
    let Some(mut m) = mount(root.path(), "lossyfs unsynced writes") else {
        return;
    };
    // A new file, written and never synced: gone.
    std::fs::write(m.path().join("new"), b"never synced").unwrap();
    // A synced (empty) file, then appended to without a sync: back to empty.
    synced_file(&m, "old", b"");
    let mut f = OpenOptions::new()
        .append(true)
        .open(m.path().join("old"))
        .unwrap();
    f.write_all(b"appended, not synced").unwrap();
    drop(f);
    // Until the power goes, readers see everything.
    assert_eq!(
        std::fs::read(m.path().join("new")).unwrap(),
        b"never synced"
    );
    assert_eq!(
        std::fs::read(m.path().join("old")).unwrap(),
        b"appended, not synced"
    );

    let report = power_cycle(&mut m);
    assert!(!m.backing().join("new").exists(), "{report:?}");
    assert!(!m.path().join("new").exists());
    assert_eq!(std::fs::read(m.backing().join("old")).unwrap(), b"");
    assert_eq!(std::fs::read(m.path().join("old")).unwrap(), b"");
    assert_eq!(report.creations_dropped, 1, "{report:?}");
    assert_eq!(report.bytes_cut, 20, "{report:?}");
}

#[test]
fn fsynced_writes_survive_a_power_loss() {
    let root = tempfile::tempdir().unwrap();
    let Some(mut m) = mount(root.path(), "lossyfs fsynced writes") else {
        return;
    };
    std::fs::create_dir(m.path().join("dir")).unwrap();
    synced_file(&m, "dir/kept", b"synced with fsync");
    let report = power_cycle(&mut m);
    // The file's fsync made its data and its creation durable, and its directory's.
    assert_eq!(
        std::fs::read(m.path().join("dir/kept")).unwrap(),
        b"synced with fsync"
    );
    assert_eq!(report, PowerLoss::default());
    // And once more: a second power loss takes nothing that survived the first.
    assert_eq!(power_cycle(&mut m), PowerLoss::default());
    assert_eq!(
        std::fs::read(m.backing().join("dir/kept")).unwrap(),
        b"synced with fsync"
    );
}

#[test]
fn an_fdatasynced_append_survives_and_what_follows_it_does_not() {
    let root = tempfile::tempdir().unwrap();
    let Some(mut m) = mount(root.path(), "lossyfs fdatasync") else {
        return;
    };
    synced_file(&m, "log", b"first;");
    let mut f = OpenOptions::new()
        .append(true)
        .open(m.path().join("log"))
        .unwrap();
    f.write_all(b"second;").unwrap();
    f.sync_data().unwrap();
    f.write_all(b"third, unsynced;").unwrap();
    drop(f);
    let report = power_cycle(&mut m);
    assert_eq!(
        std::fs::read(m.path().join("log")).unwrap(),
        b"first;second;"
    );
    assert_eq!(report.bytes_cut, 16, "{report:?}");
}

#[test]
fn an_unsynced_overwrite_of_synced_bytes_reverts_to_the_old_bytes() {
    let root = tempfile::tempdir().unwrap();
    let Some(mut m) = mount(root.path(), "lossyfs overwrite") else {
        return;
    };
    synced_file(&m, "data", &[b'a'; 64]);
    let f = OpenOptions::new()
        .write(true)
        .open(m.path().join("data"))
        .unwrap();
    f.write_all_at(&[b'b'; 16], 8).unwrap();
    // Overlapping a range already overwritten keeps the first old bytes, not the b's.
    f.write_all_at(&[b'c'; 16], 16).unwrap();
    // Past the synced end: cut off.
    f.write_all_at(&[b'd'; 8], 60).unwrap();
    // A truncation of synced bytes comes back too.
    f.set_len(40).unwrap();
    drop(f);
    let mut seen = vec![b'a'; 8];
    seen.extend([b'b'; 8]);
    seen.extend([b'c'; 16]);
    seen.extend([b'a'; 8]);
    assert_eq!(std::fs::read(m.path().join("data")).unwrap(), seen);

    let report = power_cycle(&mut m);
    assert_eq!(
        std::fs::read(m.path().join("data")).unwrap(),
        vec![b'a'; 64]
    );
    assert_eq!(report.files_reverted, 1, "{report:?}");
    // 8..32 overwritten, 40..64 cut (of which 60..64 overwritten earlier: saved once).
    assert_eq!(report.bytes_restored, 24 + 24, "{report:?}");
}

#[test]
fn a_directory_fsync_makes_creations_durable_but_not_their_data() {
    let root = tempfile::tempdir().unwrap();
    let Some(mut m) = mount(root.path(), "lossyfs directory fsync") else {
        return;
    };
    std::fs::create_dir(m.path().join("d")).unwrap();
    std::fs::write(m.path().join("d/named"), b"data never synced").unwrap();
    std::fs::write(m.path().join("d/renamed.tmp"), b"synced, then renamed").unwrap();
    File::open(m.path().join("d/renamed.tmp"))
        .unwrap()
        .sync_all()
        .unwrap();
    std::fs::rename(m.path().join("d/renamed.tmp"), m.path().join("d/renamed")).unwrap();
    // An fsync of the directory: its names are durable, and (its own fsync) its own.
    File::open(m.path().join("d")).unwrap().sync_all().unwrap();
    std::fs::write(
        m.path().join("d/late"),
        b"created after the directory fsync",
    )
    .unwrap();
    let report = power_cycle(&mut m);
    assert_eq!(std::fs::read(m.path().join("d/named")).unwrap(), b"");
    assert_eq!(
        std::fs::read(m.path().join("d/renamed")).unwrap(),
        b"synced, then renamed"
    );
    assert!(!m.path().join("d/late").exists(), "{report:?}");
    assert_eq!(report.creations_dropped, 1, "{report:?}");
}
