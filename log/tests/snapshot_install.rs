//! A snapshot whose state is not at the index its metadata names is refused when a
//! leader installs it, before anything is stored: the peer keeps its state and still
//! opens afterwards (before, it was stored and the peer then refused to restart).

use std::io::Cursor;

use monk_log::{open_store, SnapshotMeta};
use monk_statemachine::{encode_snapshot, State};
use monk_testkit::datadir::log_id;
use openraft::storage::RaftStateMachine;
use openraft::StoredMembership;

fn meta(index: Option<u64>, id: &str) -> SnapshotMeta {
    SnapshotMeta {
        last_log_id: index.map(|i| log_id(1, i)),
        last_membership: StoredMembership::default(),
        snapshot_id: id.into(),
    }
}

#[test]
fn a_snapshot_at_another_index_than_it_says_is_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (_log, mut sm) = open_store(dir.path()).unwrap();
        // The empty state is at index 0; the metadata claims 5.
        let bytes = encode_snapshot(&State::default());
        let lying = sm
            .install_snapshot(
                &meta(Some(5), "lying"),
                Box::new(Cursor::new(bytes.clone())),
            )
            .await;
        let error = lying.unwrap_err().to_string();
        assert!(
            error.contains("says index 5 but its state is at 0"),
            "{error}"
        );
        assert!(
            sm.get_current_snapshot().await.unwrap().is_none(),
            "nothing stored"
        );
        // One that tells the truth installs.
        sm.install_snapshot(&meta(None, "true"), Box::new(Cursor::new(bytes)))
            .await
            .unwrap();
        assert!(sm.get_current_snapshot().await.unwrap().is_some());
    });
    // And the data dir still opens.
    open_store(dir.path()).unwrap();
}
