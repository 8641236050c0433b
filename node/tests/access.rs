//! Every RPC of `node/proto/monk.proto`, called over real TLS on loopback by every kind
//! of caller: nobody, a viewer, an operator, an admin, a member peer, a peer of another
//! cluster, and a peer that left. Each call is allowed or refused exactly as the table
//! below (the roles of the trust issue) says; a client without TLS gets nothing.

use std::time::Duration;

use monk_node::pb::monk_service_client::MonkServiceClient;
use monk_node::pb::raft_service_client::RaftServiceClient;
use monk_node::pb::*;
use monk_node::trust::access::{credential_sha256, Rpc, AUTHORIZATION};
use monk_node::trust::credentials::new_credential;
use monk_node::trust::tls::Dialer;
use monk_node::MonkClient;
use monk_statemachine::{Command, Proposal, Role, FORMAT_VERSION};
use monk_testkit::inproc::grpc_cluster;
use tonic::Code;

/// Who calls, in the order of the table's columns.
const CALLERS: [&str; 7] = [
    "nobody", "viewer", "operator", "admin", "member", "foreign", "removed",
];

/// `A`: allowed, `-`: refused; one letter per caller in [`CALLERS`] order.
const TABLE: &[(Rpc, &str)] = &[
    (Rpc::AppendEntries, "----A--"),
    (Rpc::Vote, "----A--"),
    (Rpc::InstallSnapshot, "----A--"),
    (Rpc::Propose, "--AAA--"),
    (Rpc::Query, "-AAAA--"),
    // On the peer's own machine anyone may set the peer up (it is set up already, so
    // the call then fails for that reason, not for want of a right).
    (Rpc::ClusterNew, "A--A---"),
    (Rpc::IssueToken, "---A---"),
    (Rpc::ClusterJoin, "A--A---"),
    // The join token is the credential.
    (Rpc::AdmitPeer, "AAAAA--"),
    (Rpc::RemovePeer, "---AA--"),
    (Rpc::Heartbeat, "----A--"),
    (Rpc::Info, "AAAAA--"),
    (Rpc::Consensus, "-AAAA--"),
    (Rpc::ExportRaftData, "---A---"),
    (Rpc::ContainerLogs, "-AAAA--"),
    (Rpc::SetSecret, "---A---"),
    (Rpc::GetSecret, "---AA--"),
    (Rpc::ContainerExec, "--AAA--"),
    (Rpc::EntityDo, "--AAA--"),
    (Rpc::Events, "-AAAA--"),
    // Registry blobs travel between peers only.
    (Rpc::FetchBlob, "----A--"),
    // Operators build images (a peer without --registry-listen then refuses the build
    // itself, not the caller).
    (Rpc::BuildImage, "--AAA--"),
    // Last: allowed, it makes the target leave.
    (Rpc::Leave, "---A---"),
];

/// Whether an error is a refusal by the access rules or the TLS handshake (as
/// opposed to the call being let in and failing on its merits).
fn refused(status: &tonic::Status) -> bool {
    let m = status.message();
    match status.code() {
        Code::Unauthenticated => true,
        Code::PermissionDenied => m.contains("may not") || m.contains("has left the cluster"),
        _ => false,
    }
}

/// Calls `rpc` at `address` as `dialer` (with `credential`), returns whether it was let in.
async fn let_in(rpc: Rpc, address: &str, dialer: &Dialer, own_id: u64) -> Result<bool, String> {
    let channel = match dialer.channel(address, Duration::from_secs(5)).await {
        Ok(channel) => channel,
        // The handshake refused the caller's certificate.
        Err(_) => return Ok(false),
    };
    fn req<T>(dialer: &Dialer, message: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(message);
        r.set_timeout(Duration::from_secs(10));
        if let Some(c) = dialer.credential() {
            r.metadata_mut()
                .insert(AUTHORIZATION, format!("Bearer {c}").parse().unwrap());
        }
        r
    }
    let mut raft = RaftServiceClient::new(channel.clone());
    let mut api = MonkServiceClient::new(channel);
    let garbage = || RaftPayload {
        json: b"not a raft message".to_vec(),
    };
    let noop = Proposal {
        format_version: FORMAT_VERSION,
        proposed_at_ms: 0,
        actor: "forged-actor".into(),
        request_id: "access".into(),
        command: Command::Noop,
    };
    let result: Result<(), tonic::Status> = match rpc {
        Rpc::AppendEntries => raft.append_entries(req(dialer, garbage())).await.map(drop),
        Rpc::Vote => raft.vote(req(dialer, garbage())).await.map(drop),
        Rpc::InstallSnapshot => raft
            .install_snapshot(req(dialer, garbage()))
            .await
            .map(drop),
        Rpc::Propose => api
            .propose(req(
                dialer,
                ProposeRequest {
                    proposal_json: serde_json::to_vec(&noop).unwrap(),
                },
            ))
            .await
            .map(drop),
        Rpc::Query => api
            .query(req(
                dialer,
                QueryRequest {
                    what: "peers".into(),
                    arg: String::new(),
                    stale: true,
                },
            ))
            .await
            .map(drop),
        Rpc::ClusterNew => api
            .cluster_new(req(
                dialer,
                ClusterNewRequest {
                    name: "x".into(),
                    overlay: String::new(),
                    open_network: false,
                },
            ))
            .await
            .map(drop),
        Rpc::IssueToken => api
            .issue_token(req(dialer, TokenRequest { ttl_seconds: 60 }))
            .await
            .map(drop),
        Rpc::ClusterJoin => api
            .cluster_join(req(
                dialer,
                ClusterJoinRequest {
                    token: "not-a-token".into(),
                },
            ))
            .await
            .map(drop),
        Rpc::AdmitPeer => api
            .admit_peer(req(
                dialer,
                AdmitPeerRequest {
                    token_secret: "00".repeat(24),
                    name: "intruder".into(),
                    address: "127.0.0.1:1".into(),
                    ..Default::default()
                },
            ))
            .await
            .map(drop),
        Rpc::Leave => api.leave(req(dialer, Empty {})).await.map(drop),
        Rpc::RemovePeer => api
            .remove_peer(req(dialer, RemovePeerRequest { peer_id: 999 }))
            .await
            .map(drop),
        Rpc::Heartbeat => api
            .heartbeat(req(dialer, HeartbeatRequest { peer_id: own_id }))
            .await
            .map(drop),
        Rpc::Info => api.info(req(dialer, Empty {})).await.map(drop),
        Rpc::Consensus => api.consensus(req(dialer, Empty {})).await.map(drop),
        Rpc::ExportRaftData => api.export_raft_data(req(dialer, Empty {})).await.map(drop),
        Rpc::ContainerLogs => api
            .container_logs(req(
                dialer,
                LogsRequest {
                    path: "no/such".into(),
                    ..Default::default()
                },
            ))
            .await
            .map(drop),
        Rpc::SetSecret => api
            .set_secret(req(
                dialer,
                SecretRequest {
                    name: "access-test".into(),
                    value: "v".into(),
                    ..Default::default()
                },
            ))
            .await
            .map(drop),
        Rpc::GetSecret => api
            .get_secret(req(
                dialer,
                SecretRequest {
                    name: "access-test".into(),
                    ..Default::default()
                },
            ))
            .await
            .map(drop),
        Rpc::ContainerExec => api
            .container_exec(req(
                dialer,
                ExecRequest {
                    path: "no/such".into(),
                    command: vec!["true".into()],
                    ..Default::default()
                },
            ))
            .await
            .map(drop),
        Rpc::EntityDo => api
            .entity_do(req(
                dialer,
                DoRequest {
                    path: "no/such".into(),
                    verb: "backup".into(),
                    ..Default::default()
                },
            ))
            .await
            .map(drop),
        Rpc::Events => api
            .events(req(
                dialer,
                EventsRequest {
                    from_index: 0,
                    follow: false,
                },
            ))
            .await
            .map(drop),
        // A blob this peer does not hold: a member is told so (`NotFound`).
        Rpc::FetchBlob => api
            .fetch_blob(req(
                dialer,
                BlobRequest {
                    digest: format!("sha256:{}", "0".repeat(64)),
                },
            ))
            .await
            .map(drop),
        Rpc::BuildImage => api
            .build_image(req(
                dialer,
                tokio_stream::iter(vec![BuildChunk {
                    repository: "access/app".into(),
                    tag: "1".into(),
                    dockerfile: "Dockerfile".into(),
                    data: Vec::new(),
                }]),
            ))
            .await
            .map(drop),
    };
    match result {
        Ok(()) => Ok(true),
        Err(status) if refused(&status) => Ok(false),
        // Transport failures say nothing about the rules: report them.
        Err(status)
            if status.code() == Code::Unavailable && status.message().contains("transport") =>
        {
            Err(format!("{rpc:?}: {status}"))
        }
        Err(_) => Ok(true),
    }
}

/// A user with `role`, added through the admin: its dialer.
async fn user(admin: &mut MonkClient, ca_pem: &str, name: &str, role: Role) -> Dialer {
    let credential = new_credential().unwrap();
    let added = admin
        .propose(
            "ignored",
            Command::UserAdded {
                name: name.into(),
                role,
                token_sha256: credential_sha256(&credential),
            },
        )
        .await
        .unwrap();
    assert!(added.applied.is_accepted(), "{:?}", added.applied);
    Dialer::trusting(ca_pem, Some(credential)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_allows_exactly_the_callers_its_rule_names() {
    let names: Vec<&str> = TABLE.iter().map(|(rpc, _)| rpc.name()).collect();
    let mut all: Vec<&str> = Rpc::ALL.iter().map(|r| r.name()).collect();
    let mut listed = names.clone();
    all.sort();
    listed.sort();
    assert_eq!(listed, all, "the table lists every RPC once");

    let root = tempfile::tempdir().unwrap();
    let peers = grpc_cluster(root.path(), 4).await;
    let other_root = tempfile::tempdir().unwrap();
    let stranger = grpc_cluster(other_root.path(), 1).await;

    // Private material is readable by the peer's owner only.
    use std::os::unix::fs::PermissionsExt;
    for file in ["tls/peer.key", "tls/ca.key", "admin.credentials"] {
        let path = peers[0].node.config.data_dir.join(file);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
    }
    let ca_pem = peers[0].node.trust().ca_pem().unwrap();
    let mut admin = MonkClient::connect(&peers[0].address, &peers[0].admin)
        .await
        .unwrap();
    let viewer = user(&mut admin, &ca_pem, "vera", Role::Viewer).await;
    let operator = user(&mut admin, &ca_pem, "otto", Role::Operator).await;
    // The fourth peer leaves; its certificate stays valid for the CA but names a peer
    // the log says is gone.
    let removed = peers[3].node.trust().peer_dialer().unwrap();
    let removed_id = peers[3].node.peer_id().await.unwrap();
    peers[3].node.leave().await.unwrap();
    let target = &peers[1];
    // Wait until the target has applied the departure and the users.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let applied = {
            let shared = target.node.shared_state();
            let applied = shared.read().unwrap();
            let left = applied
                .state
                .peer(removed_id)
                .is_some_and(|p| !p.is_member());
            left && applied.state.users().len() == 3
        };
        if applied {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "target never caught up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let member = peers[2].node.trust().peer_dialer().unwrap();
    let member_id = peers[2].node.peer_id().await.unwrap();
    let foreign = stranger[0].node.trust().peer_dialer().unwrap();
    let nobody = Dialer::trusting(&ca_pem, None).unwrap();
    let callers: [(&Dialer, u64); 7] = [
        (&nobody, 1),
        (&viewer, 1),
        (&operator, 1),
        (&peers[0].admin, 1),
        (&member, member_id),
        (&foreign, 1),
        (&removed, removed_id),
    ];
    let mut wrong = Vec::new();
    for (rpc, expected) in TABLE {
        for (i, (dialer, own_id)) in callers.iter().enumerate() {
            let want = expected.as_bytes()[i] == b'A';
            let got = let_in(*rpc, &target.address, dialer, *own_id)
                .await
                .unwrap();
            if got != want {
                wrong.push(format!(
                    "{} by {}: {} (table says {})",
                    rpc.name(),
                    CALLERS[i],
                    if got { "allowed" } else { "refused" },
                    if want { "allowed" } else { "refused" }
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_tls_gets_nothing_and_actors_are_stamped_by_the_server() {
    let root = tempfile::tempdir().unwrap();
    let peers = grpc_cluster(root.path(), 1).await;
    let address = &peers[0].address;
    // Plain HTTP/2 (h2c), as a gRPC client without TLS speaks.
    let plain = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(3));
    let reached = match plain.connect().await {
        Err(_) => false,
        Ok(channel) => MonkServiceClient::new(channel).info(Empty {}).await.is_ok(),
    };
    assert!(!reached, "a plaintext client must not get an answer");

    // Whatever actor a user writes, the log records who it is.
    let mut admin = MonkClient::connect(address, &peers[0].admin).await.unwrap();
    let forged = Proposal {
        format_version: FORMAT_VERSION,
        proposed_at_ms: 1,
        actor: "peer:1".into(),
        request_id: "forged".into(),
        command: Command::Noop,
    };
    let outcome = admin.propose_raw(&forged).await.unwrap();
    let events = {
        let mut stream = admin.events(outcome.index, false).await.unwrap();
        let mut seen = Vec::new();
        while let Some(event) = stream.next().await.unwrap() {
            seen.push(event);
        }
        seen
    };
    let event = events
        .iter()
        .find(|e| e["index"] == outcome.index)
        .unwrap_or_else(|| panic!("no event at {}: {events:?}", outcome.index));
    assert_eq!(event["actor"], "admin", "{event}");
    // And the time is the receiving peer's, not the 1 ms the client wrote.
    assert!(
        event["time_ms"].as_u64().unwrap() > 1_700_000_000_000,
        "{event}"
    );
}
