//! `cluster new` interrupted by a crash: a peer whose identity and creation marker were
//! stored, but whose Raft never wrote anything, finishes the creation when it starts
//! again (instead of a data dir that refuses both `cluster new` and `join` forever).

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
