//! Clusters of real peers inside one process: each `Node` serves gRPC on its own
//! loopback port with RocksDB (fsync on) in a temp dir, formed through the client API
//! exactly as `monk cluster new` and `join` do. For benchmarks and tests that need many
//! peers without process start-up costs.

use std::sync::Arc;
use std::time::Duration;

use monk_node::network::Network;
use monk_node::trust::tls::Dialer;
use monk_node::{daemon, MonkClient, Node, NodeConfig};

/// A running peer: its node, address, and the task serving it.
pub struct InProcessPeer {
    pub node: Arc<Node>,
    pub address: String,
    pub server: tokio::task::JoinHandle<()>,
    /// How a client reaches it as the cluster's admin.
    pub admin: Dialer,
}

/// Starts `count` peers on loopback in `root` and forms one cluster (peer 0 leads).
pub async fn grpc_cluster(root: &std::path::Path, count: usize) -> Vec<InProcessPeer> {
    let mut peers = Vec::new();
    let anonymous = Dialer::unverified(None).expect("TLS client");
    for i in 0..count {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let address = listener.local_addr().expect("local addr").to_string();
        let config = NodeConfig::new(root.join(format!("p{i}")), address.clone(), format!("p{i}"));
        let node = Node::open(config, Network::Grpc).await.expect("open peer");
        let served = node.clone();
        let server = tokio::spawn(async move {
            let _ = daemon::serve(served, listener, std::future::pending()).await;
        });
        peers.push(InProcessPeer {
            node,
            address,
            server,
            admin: anonymous.clone(),
        });
    }
    let created = MonkClient::connect(&peers[0].address, &anonymous)
        .await
        .expect("connect")
        .cluster_new("bench")
        .await
        .expect("cluster new");
    let admin = created.credential.dialer().expect("admin credential");
    let mut first = MonkClient::connect(&peers[0].address, &admin)
        .await
        .expect("connect as admin");
    for peer in &mut peers {
        peer.admin = admin.clone();
    }
    for peer in &peers[1..] {
        // Join tokens are single-use: one per joining peer.
        let token = first.issue_token().await.expect("token");
        MonkClient::connect(&peer.address, &anonymous)
            .await
            .expect("connect")
            .cluster_join(&token)
            .await
            .expect("join");
    }
    for _ in 0..300 {
        if peers[0]
            .node
            .consensus()
            .await
            .map(|c| c.voters.len() == count)
            .unwrap_or(false)
        {
            return peers;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("cluster did not reach {count} voters");
}

/// Forms one cluster of `nodes` already open in this process, on any transport: the
/// first creates it, issues a token and admits the others, which accept — what `monk
/// cluster new` and `monk cluster join` do, without the gRPC hop to the joiner.
pub async fn form_in_process(nodes: &[Arc<Node>], name: &str) -> Result<(), String> {
    let Some((first, others)) = nodes.split_first() else {
        return Err("no peers to form a cluster of".into());
    };
    first.cluster_new(name).await.map_err(|e| e.to_string())?;
    for peer in others {
        join_in_process(first, peer, name).await?;
    }
    Ok(())
}

/// `peer` joins the cluster `member` belongs to: `member` issues a single-use token
/// (labelled `<label>-formation`) and admits `peer`, which accepts.
pub async fn join_in_process(member: &Node, peer: &Arc<Node>, label: &str) -> Result<(), String> {
    let token = member
        .issue_token(format!("{label}-formation"))
        .await
        .map_err(|e| e.to_string())?;
    let token = monk_node::token::JoinToken::parse(&token).map_err(|e| e.to_string())?;
    let config = &peer.config;
    let applicant = monk_node::node::Applicant {
        name: config.name.clone(),
        address: config.advertise.clone(),
        tags: config.tags.clone(),
        capacity: config.capacity,
        facts: None,
        tls_public_key: peer.trust().public_key(),
        overlay: Some(peer.overlay_identity()),
    };
    let admission = member
        .admit_peer_with_key(&token.secret, applicant, &[])
        .await
        .map_err(|e| e.to_string())?;
    peer.accept_admission(admission)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}
