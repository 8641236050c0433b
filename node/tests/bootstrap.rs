//! `cluster new` interrupted by a crash: a peer whose identity and creation marker were
//! stored, but whose Raft never wrote anything, finishes the creation when it starts
//! again (instead of a data dir that refuses both `cluster new` and `join` forever);
//! and the checkpoint an export left when its process died is removed at start.

use monk_node::identity::{self, Identity};
use monk_node::keys::ClusterKey;
use monk_node::network::Network;
use monk_node::node::membership::PendingCreation;
use monk_node::trust::credentials::ADMIN_CREDENTIALS_FILE;
use monk_node::{Node, NodeConfig};

fn config(dir: &std::path::Path) -> NodeConfig {
    NodeConfig::new(dir.to_path_buf(), "127.0.0.1:1".into(), "solo".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_cluster_new_is_finished_at_the_next_start() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("solo");
    {
        // What `cluster new` writes before Raft does anything, then the crash.
        let node = Node::open(config(&dir), Network::Grpc).await.unwrap();
        ClusterKey::generate().unwrap().store(&dir).unwrap();
        node.trust().create_cluster("half", 1).unwrap();
        PendingCreation {
            cluster: "half".into(),
            overlay_range: monk_statemachine::overlay::default_range(),
            open_network: false,
        }
        .store(&dir)
        .unwrap();
        identity::store(
            &dir,
            &Identity {
                peer_id: 1,
                cluster_name: "half".into(),
            },
        )
        .unwrap();
        node.shutdown().await;
    }
    let node = Node::open(config(&dir), Network::Grpc).await.unwrap();
    let (cluster, admins) = {
        let shared = node.shared_state();
        let applied = shared.read().unwrap();
        (
            applied.state.cluster_name().map(String::from),
            applied.state.users().keys().cloned().collect::<Vec<_>>(),
        )
    };
    assert_eq!(cluster.as_deref(), Some("half"));
    assert_eq!(admins, ["admin"]);
    assert!(dir.join(ADMIN_CREDENTIALS_FILE).is_file());
    assert!(!dir.join("creating.json").exists(), "the marker is gone");
    // And it is a cluster now: creating another on it is refused.
    let again = node.cluster_new("other").await.unwrap_err();
    assert!(again.to_string().contains("already belongs"), "{again}");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_left_by_a_dead_process_is_removed_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let left = dir.path().join("export-4242-1700000000000");
    std::fs::create_dir_all(&left).unwrap();
    std::fs::write(left.join("000008.sst"), vec![0u8; 4096]).unwrap();
    let kept = dir.path().join("exported-notes");
    std::fs::create_dir_all(&kept).unwrap();
    let node = Node::open(config(dir.path()), Network::Grpc).await.unwrap();
    assert!(!left.exists(), "the leftover export is still there");
    assert!(
        kept.exists(),
        "a directory that is not an export was removed"
    );
    node.shutdown().await;
}
