//! The transport seam: three peers in one process, the very same node code as
//! `monkd`, over the in-memory Raft transport. Form a cluster, write through the
//! leader, and check every peer applies the same entries to the same digest.

use std::sync::Arc;
use std::time::{Duration, Instant};

use monk_node::network::{MemoryRouter, Network};
use monk_node::{Node, NodeConfig};
use monk_statemachine::{Applied, Capacity, Command, Proposal, FORMAT_VERSION};

fn config(dir: &std::path::Path, name: &str) -> NodeConfig {
    NodeConfig {
        tags: vec!["mem".into()],
        ..NodeConfig::new(dir.join(name), format!("mem-{name}:1"), name.into())
    }
}

/// Opens one peer per name, all on the same in-memory network.
async fn open_peers(
    dir: &std::path::Path,
    router: &MemoryRouter,
    names: &[&str],
) -> Vec<Arc<Node>> {
    let mut nodes = Vec::new();
    for name in names {
        let network = Network::Memory {
            router: router.clone(),
            self_id: 0,
        };
        nodes.push(Node::open(config(dir, name), network).await.unwrap());
    }
    nodes
}

async fn form_cluster(nodes: &[Arc<Node>], name: &str) {
    monk_testkit::inproc::form_in_process(nodes, name)
        .await
        .expect("the cluster forms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_peers_in_one_process_agree() {
    let dir = tempfile::tempdir().unwrap();
    let router = MemoryRouter::default();
    let nodes = open_peers(dir.path(), &router, &["a", "b", "c"]).await;
    form_cluster(&nodes, "mem").await;
    let (a, b, c) = (nodes[0].clone(), nodes[1].clone(), nodes[2].clone());
    assert!(
        a.admit_peer("00", "x", "mem-x:1", vec![], Capacity::default())
            .await
            .is_err(),
        "a wrong token is refused"
    );

    let mut last = 0;
    for i in 0..20 {
        let command = Command::JoinTokenIssued {
            token_sha256: format!("{i:02x}"),
            expires_at_ms: None,
        };
        let proposal = Proposal {
            format_version: FORMAT_VERSION,
            proposed_at_ms: 0,
            actor: "test".into(),
            request_id: format!("r{i}"),
            command,
        };
        let outcome = a.propose(proposal).await.unwrap();
        assert_eq!(outcome.applied, Applied::Accepted { peer_id: None });
        last = outcome.index;
    }

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let view = a.consensus().await.unwrap();
        if view.voters.len() == 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "autopilot did not promote the learners: {view:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut digests = Vec::new();
    for node in [&a, &b, &c] {
        node.wait_applied(last, Duration::from_secs(20))
            .await
            .unwrap();
        let view = node.consensus().await.unwrap();
        digests.push((view.applied_index, view.state_digest));
    }
    // Membership changes may have been applied after `last`; compare at a common point.
    let deadline = Instant::now() + Duration::from_secs(20);
    while digests.iter().any(|d| d != &digests[0]) {
        assert!(Instant::now() < deadline, "peers disagree: {digests:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        digests.clear();
        for node in [&a, &b, &c] {
            let view = node.consensus().await.unwrap();
            digests.push((view.applied_index, view.state_digest));
        }
    }
    let cluster = a.query_local(&monk_node::api::Query::Cluster).unwrap();
    assert_eq!(cluster["peers"].as_array().unwrap().len(), 3, "{cluster}");
    for node in [&a, &b, &c] {
        node.shutdown().await;
    }
}

/// Six peers: five become voters, the sixth stays a learner; when a voter is declared
/// down, autopilot promotes the learner in its place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learner_replaces_a_voter_declared_down() {
    let dir = tempfile::tempdir().unwrap();
    let router = MemoryRouter::default();
    let nodes = open_peers(dir.path(), &router, &["a", "b", "c", "d", "e", "f"]).await;
    form_cluster(&nodes, "six").await;
    let leader = nodes[0].clone();
    let wait_voters = |want: Vec<u64>| {
        let leader = leader.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(40);
            loop {
                let view = leader.consensus().await.unwrap();
                if view.voters == want {
                    return view;
                }
                assert!(
                    Instant::now() < deadline,
                    "voters never became {want:?}: {view:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let view = wait_voters(vec![1, 2, 3, 4, 5]).await;
    assert_eq!(
        view.learners,
        vec![6],
        "the sixth peer stays a learner: {view:?}"
    );

    router.isolate(2, true);
    let down = Proposal {
        format_version: FORMAT_VERSION,
        proposed_at_ms: 0,
        actor: "test".into(),
        request_id: "down".into(),
        command: Command::PeerDown {
            peer: 2,
            reason: "test".into(),
        },
    };
    assert!(leader.propose(down).await.unwrap().applied.is_accepted());
    let view = wait_voters(vec![1, 3, 4, 5, 6]).await;
    assert!(
        view.learners.contains(&2),
        "the down voter is kept as a learner: {view:?}"
    );
    for node in &nodes {
        node.shutdown().await;
    }
}
