//! What replication reads from the log: only the run of entries that starts exactly
//! where it asked (`LogStore::limited_get_log_entries`). openraft sends that run as
//! the entries following `start - 1`; a run that started later would land at the wrong
//! place in a follower's log (the simulation found it: a replication task of a lost
//! leadership read its range after the peer had purged part of it).

use monk_log::open_store;
use monk_testkit::datadir::{blank, log_id};
use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
use openraft::RaftLogReader;

fn indexes(entries: &[monk_log::RaftEntry]) -> Vec<u64> {
    entries.iter().map(|e| e.log_id.index).collect()
}

#[test]
fn replication_reads_only_the_run_that_starts_where_it_asked() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (mut log, _sm) = open_store(dir.path()).unwrap();
        log.blocking_append((1..=20).map(|i| blank(1, i)).collect::<Vec<_>>())
            .await
            .unwrap();
        assert_eq!(
            indexes(&log.limited_get_log_entries(7, 15).await.unwrap()),
            (7..15).collect::<Vec<_>>()
        );

        log.purge(log_id(1, 10)).await.unwrap();
        // Entries 7 to 10 are gone: nothing to send after 6, not 11.. in their place.
        assert!(log.limited_get_log_entries(7, 15).await.unwrap().is_empty());
        assert_eq!(
            indexes(&log.limited_get_log_entries(11, 15).await.unwrap()),
            vec![11, 12, 13, 14]
        );
        // The general reader still skips what was purged (openraft's storage suite
        // asks for that).
        assert_eq!(
            indexes(&log.try_get_log_entries(7..15).await.unwrap()),
            vec![11, 12, 13, 14]
        );
    });
}

#[test]
fn a_run_ends_at_the_first_gap() {
    let entries: Vec<_> = [5, 6, 7, 9, 10].into_iter().map(|i| blank(1, i)).collect();
    assert_eq!(monk_log::store::contiguous_from(5, &entries), 3);
    assert_eq!(monk_log::store::contiguous_from(4, &entries), 0);
    assert_eq!(monk_log::store::contiguous_from(5, &[]), 0);
}
