//! What a peer does with Raft traffic that no honest leader sends: snapshot chunks out
//! of order (which would otherwise grow the receive buffer to any offset) and a batch
//! too large for one message. The peer keeps running and the cluster's digests stay
//! equal. And definitions sent straight to `Propose` meet the rules of `monk load`.

use std::time::{Duration, Instant};

use monk_node::pb::raft_service_client::RaftServiceClient;
use monk_node::pb::RaftPayload;
use monk_node::MonkClient;
use monk_statemachine::Command;
use monk_testkit::inproc::{grpc_cluster, InProcessPeer};
use openraft::raft::{InstallSnapshotRequest, InstallSnapshotResponse};
use openraft::{SnapshotMeta, StoredMembership, Vote};

type SnapshotResult = Result<
    InstallSnapshotResponse<u64>,
    openraft::error::RaftError<u64, openraft::error::InstallSnapshotError>,
>;

async fn digests_agree(peers: &[InProcessPeer]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut seen = Vec::new();
        for p in peers {
            let c = p.node.consensus().await.unwrap();
            seen.push((c.applied_index, c.state_digest));
        }
        if seen.windows(2).all(|w| w[0] == w[1]) {
            return;
        }
        assert!(Instant::now() < deadline, "digests differ: {seen:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_and_oversized_snapshot_chunks_are_refused_and_nothing_breaks() {
    let root = tempfile::tempdir().unwrap();
    let peers = grpc_cluster(root.path(), 2).await;
    let follower = &peers[1];
    // Sent as the leader itself would be (its own certificate), with its vote.
    let dialer = peers[0].node.trust().peer_dialer().unwrap();
    let channel = dialer
        .channel(&follower.address, Duration::from_secs(5))
        .await
        .unwrap();
    let mut raft = RaftServiceClient::new(channel)
        .max_encoding_message_size(256 * 1024 * 1024)
        .max_decoding_message_size(256 * 1024 * 1024);
    let term = peers[0].node.consensus().await.unwrap().term;
    let chunk = |offset: u64, data: Vec<u8>| InstallSnapshotRequest::<monk_log::TypeConfig> {
        vote: Vote::new_committed(term, 1),
        meta: SnapshotMeta {
            last_log_id: None,
            last_membership: StoredMembership::default(),
            snapshot_id: "forged".into(),
        },
        offset,
        data,
        done: false,
    };

    // A chunk a terabyte in: refused as a mismatch, nothing written.
    let far = chunk(1 << 40, vec![7; 16]);
    let reply = raft
        .install_snapshot(RaftPayload {
            json: serde_json::to_vec(&far).unwrap(),
        })
        .await
        .unwrap()
        .into_inner();
    let result: SnapshotResult = serde_json::from_slice(&reply.json).unwrap();
    let error = result.unwrap_err().to_string();
    assert!(error.contains("mismatch"), "{error}");

    // A chunk larger than a gRPC message may be (40 MiB is 80 MiB of JSON): refused
    // by the transport.
    let huge = chunk(0, vec![0; 40 * 1024 * 1024]);
    let status = raft
        .install_snapshot(RaftPayload {
            json: serde_json::to_vec(&huge).unwrap(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::OutOfRange, "{status}");

    // The follower still serves, the cluster still commits, and both agree.
    let mut admin = MonkClient::connect(&follower.address, &follower.admin)
        .await
        .unwrap();
    let written = admin.propose("ignored", Command::Noop).await.unwrap();
    assert!(written.applied.is_accepted());
    digests_agree(&peers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn definitions_sent_around_monk_load_meet_the_same_rules() {
    use monk_scripting::tree::Tree;
    use monk_statemachine::LoadedTemplate;
    let root = tempfile::tempdir().unwrap();
    let peers = grpc_cluster(root.path(), 1).await;
    let mut admin = MonkClient::connect(&peers[0].address, &peers[0].admin)
        .await
        .unwrap();
    let runnable = |containers: Tree| {
        Tree::Map(vec![
            ("defines".into(), Tree::Str("runnable".into())),
            ("containers".into(), containers),
        ])
    };
    let load = |path: &str, kind: &str, definition: Tree| Command::TemplatesLoaded {
        templates: vec![LoadedTemplate {
            path: path.into(),
            kind: kind.into(),
            definition,
        }],
    };
    let good = runnable(Tree::Map(vec![(
        "main".into(),
        Tree::Map(vec![("image".into(), Tree::Str("busybox".into()))]),
    )]));
    let accepted = admin
        .propose("x", load("ns/web", "runnable", good.clone()))
        .await;
    assert!(accepted.unwrap().applied.is_accepted());
    for (what, command) in [
        (
            "a section of the wrong type",
            load("ns/web", "runnable", runnable(Tree::Int(3))),
        ),
        (
            "a kind the definition does not have",
            load("ns/web", "group", good.clone()),
        ),
        (
            "a name monk load refuses",
            load("ns/Web Server", "runnable", good.clone()),
        ),
    ] {
        let refused = admin.propose("x", command).await.unwrap_err();
        assert_eq!(refused.kind, monk_node::api::ErrorKind::Invalid, "{what}");
        assert!(
            refused
                .message
                .contains("error(s) in the proposed definitions"),
            "{what}: {}",
            refused.message
        );
    }
}
