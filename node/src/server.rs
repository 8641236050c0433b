//! The gRPC services of a peer: Raft RPCs from other peers and the client API. Thin:
//! identify and authorize the caller (`crate::trust::access`: every handler starts with
//! [`guard`] and its [`Rpc`]), decode, call [`Node`], encode; errors become status codes
//! with a one-line reason. What a user proposes is stamped here with who (the
//! authenticated user, never what the client wrote) and when.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use monk_statemachine::{decode_proposal, Capacity, PeerFacts};

use crate::api::Query;
use crate::limits::PROPOSAL_BYTES_MAX;
use crate::node::{status_to_error, Applicant, Node, NodeError};
use crate::pb::monk_service_server::MonkService;
use crate::pb::raft_service_server::RaftService;
use crate::pb::*;
use crate::trust::access::{self, Caller, Denied, Rpc, AUTHORIZATION};
use crate::trust::tls::ConnInfo;

impl From<NodeError> for Status {
    fn from(e: NodeError) -> Status {
        match e {
            NodeError::InvalidArgument(m) => Status::invalid_argument(m),
            NodeError::FailedPrecondition(m) => Status::failed_precondition(m),
            NodeError::PermissionDenied(m) => Status::permission_denied(m),
            NodeError::Unavailable(m) => Status::unavailable(m),
            NodeError::Internal(m) => Status::internal(m),
            NodeError::NotMember => Status::failed_precondition(e.to_string()),
            NodeError::Token(e) => Status::invalid_argument(e.to_string()),
            NodeError::Key(e) => Status::internal(e.to_string()),
            NodeError::Identity(e) => Status::internal(e.to_string()),
            NodeError::Trust(e) => Status::internal(e.to_string()),
            NodeError::Runtime(e) => Status::unavailable(e.to_string()),
        }
    }
}

impl From<Denied> for Status {
    fn from(e: Denied) -> Status {
        match e {
            Denied::Unauthenticated(m) => Status::unauthenticated(m),
            Denied::Forbidden(m) => Status::permission_denied(m),
            Denied::NotCaughtUp(m) => Status::unavailable(m),
        }
    }
}

/// Who called, and whether they may call `rpc`: from the connection's client
/// certificate, else the `authorization: Bearer <credential>` metadata, judged
/// against this peer's applied state.
pub fn guard<T>(node: &Node, request: &Request<T>, rpc: Rpc) -> Result<Caller, Status> {
    let conn = request.extensions().get::<ConnInfo>();
    // On the peer's Unix socket: whoever could open it is this machine's admin.
    if let Some(uid) = conn.and_then(|c| c.socket_uid) {
        let caller = Caller::User {
            name: format!("local:uid{uid}"),
            role: monk_statemachine::Role::Admin,
        };
        access::authorize(rpc, &caller)?;
        return Ok(caller);
    }
    let local = conn.is_some_and(ConnInfo::from_this_machine);
    let credential = request
        .metadata()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).trim());
    let caller = {
        let shared = node.shared_state();
        let applied = shared
            .read()
            .map_err(|_| Status::internal("state lock poisoned"))?;
        access::identify(conn.and_then(|c| c.peer), local, credential, &applied.state)?
    };
    access::authorize(rpc, &caller)?;
    Ok(caller)
}

/// Refuses definitions `monk load` would refuse (see `monkscript::stored`), loaded or
/// published into the Hub (kit by kit: two kits of a source may define one path).
fn check_definitions(command: &monk_statemachine::Command) -> Result<(), Status> {
    use monk_statemachine::Command;
    let errors: Vec<_> = match command {
        Command::TemplatesLoaded { templates } => check_templates(templates),
        Command::HubKitsPublished { kits, .. } => kits
            .iter()
            .flat_map(|k| check_templates(&k.templates))
            .collect(),
        _ => return Ok(()),
    };
    if errors.is_empty() {
        return Ok(());
    }
    let shown: Vec<String> = errors
        .iter()
        .take(DEFINITION_ERRORS_SHOWN_MAX)
        .map(|d| d.to_string())
        .collect();
    Err(Status::invalid_argument(format!(
        "refused: {} error(s) in the proposed definitions:\n{}",
        errors.len(),
        shown.join("\n")
    )))
}

fn check_templates(
    templates: &[monk_statemachine::LoadedTemplate],
) -> Vec<monk_scripting::monkscript::diagnostic::Diagnostic> {
    use monk_scripting::monkscript::stored::{check_proposed, Proposed};
    let proposed: Vec<Proposed<'_>> = templates
        .iter()
        .map(|t| Proposed {
            path: &t.path,
            kind: &t.kind,
            definition: &t.definition,
        })
        .collect();
    check_proposed(&proposed)
}

/// Errors quoted when proposed definitions are refused.
const DEFINITION_ERRORS_SHOWN_MAX: usize = 10;

fn json_reply<T: serde::Serialize>(value: &T) -> Result<Response<JsonReply>, Status> {
    serde_json::to_vec(value)
        .map(|json| Response::new(JsonReply { json }))
        .map_err(|e| Status::internal(e.to_string()))
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Status> {
    serde_json::from_slice(bytes)
        .map_err(|e| Status::invalid_argument(format!("undecodable raft message: {e}")))
}

/// Raft RPCs between peers.
pub struct RaftApi {
    pub node: Arc<Node>,
    /// Where the snapshot being received stands (chunks are taken in order only).
    pub snapshot: std::sync::Mutex<crate::snapshot_stream::SnapshotStream>,
}

impl RaftApi {
    pub fn new(node: Arc<Node>) -> RaftApi {
        RaftApi {
            node,
            snapshot: Default::default(),
        }
    }
}

impl RaftApi {
    /// Decodes the request, hands it to this peer's Raft, and encodes Raft's whole
    /// result (success or Raft error) for the caller's transport to unpack.
    async fn relay<Req, Res, F, Fut>(
        &self,
        rpc: Rpc,
        request: Request<RaftPayload>,
        call: F,
    ) -> Result<Response<RaftPayload>, Status>
    where
        Req: serde::de::DeserializeOwned,
        Res: serde::Serialize,
        F: FnOnce(openraft::Raft<monk_log::TypeConfig>, Req) -> Fut,
        Fut: std::future::Future<Output = Res>,
    {
        guard(&self.node, &request, rpc)?;
        let raft = self
            .node
            .raft()
            .await
            .ok_or_else(|| Status::unavailable("raft not started on this peer"))?;
        let result = call(raft, decode(&request.into_inner().json)?).await;
        let json = serde_json::to_vec(&result).map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(RaftPayload { json }))
    }
}

#[tonic::async_trait]
impl RaftService for RaftApi {
    async fn append_entries(
        &self,
        request: Request<RaftPayload>,
    ) -> Result<Response<RaftPayload>, Status> {
        self.relay(Rpc::AppendEntries, request, |raft, req| async move {
            raft.append_entries(req).await
        })
        .await
    }

    async fn vote(&self, request: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        self.relay(Rpc::Vote, request, |raft, req| async move {
            raft.vote(req).await
        })
        .await
    }

    async fn install_snapshot(
        &self,
        request: Request<RaftPayload>,
    ) -> Result<Response<RaftPayload>, Status> {
        guard(&self.node, &request, Rpc::InstallSnapshot)?;
        let chunk: openraft::raft::InstallSnapshotRequest<monk_log::TypeConfig> =
            decode(&request.get_ref().json)?;
        let admitted = self
            .snapshot
            .lock()
            .map_err(|_| Status::internal("snapshot stream lock poisoned"))?
            .admit(
                &chunk.meta.snapshot_id,
                chunk.offset,
                chunk.data.len() as u64,
                chunk.done,
            );
        if let Err(refusal) = admitted {
            tracing::warn!(snapshot = %chunk.meta.snapshot_id, "refused a snapshot chunk: {refusal}");
            let segment = |offset| openraft::SnapshotSegmentId {
                id: chunk.meta.snapshot_id.clone(),
                offset,
            };
            let mismatch: Result<
                openraft::raft::InstallSnapshotResponse<u64>,
                openraft::error::RaftError<u64, openraft::error::InstallSnapshotError>,
            > = Err(openraft::error::RaftError::APIError(
                openraft::error::InstallSnapshotError::SnapshotMismatch(
                    openraft::error::SnapshotMismatch {
                        expect: segment(refusal.expected()),
                        got: segment(chunk.offset),
                    },
                ),
            ));
            let json =
                serde_json::to_vec(&mismatch).map_err(|e| Status::internal(e.to_string()))?;
            return Ok(Response::new(RaftPayload { json }));
        }
        self.relay(Rpc::InstallSnapshot, request, |raft, req| async move {
            raft.install_snapshot(req).await
        })
        .await
    }
}

/// The client API.
pub struct ClientApi {
    pub node: Arc<Node>,
    pub metrics: crate::metrics::Metrics,
}

#[tonic::async_trait]
impl MonkService for ClientApi {
    async fn propose(
        &self,
        request: Request<ProposeRequest>,
    ) -> Result<Response<ProposeReply>, Status> {
        let caller = guard(&self.node, &request, Rpc::Propose)?;
        let bytes = request.into_inner().proposal_json;
        if bytes.len() > PROPOSAL_BYTES_MAX {
            return Err(Status::invalid_argument(format!(
                "proposal of {} bytes exceeds the limit of {PROPOSAL_BYTES_MAX}",
                bytes.len()
            )));
        }
        let mut proposal = decode_proposal(&bytes)
            .map_err(|e| Status::invalid_argument(format!("refused: {e}")))?;
        access::authorize_command(&caller, &proposal.command)?;
        if !matches!(caller, Caller::Peer(_)) {
            // The same rules as `monk load`, whoever sent it (a peer forwarding a
            // proposal checked it when it received it).
            check_definitions(&proposal.command)?;
            // Who and when are this peer's to say; a forwarding peer passes on what
            // the first peer stamped.
            proposal.actor = caller.actor();
            proposal.proposed_at_ms = crate::node::now_ms();
        }
        if let Some(why) = self.node.storage_alarm() {
            if !crate::storage::allowed_in_alarm(&proposal.command) {
                return Err(Status::resource_exhausted(format!(
                    "storage alarm on peer {}: {why}; {} is refused until there is room (stop, purge and removals still work)",
                    self.node.config.name,
                    proposal.command.kind()
                )));
            }
        }
        let kind = proposal.command.kind();
        let started = std::time::Instant::now();
        let outcome = crate::admission::admit_and_propose(&self.node, proposal).await;
        let result = match &outcome {
            Ok(o) if o.applied.is_accepted() => "accepted",
            Ok(_) => "rejected",
            Err(_) => "error",
        };
        self.metrics
            .proposal(kind, result, started.elapsed().as_secs_f64());
        let outcome = outcome?;
        let applied_json =
            serde_json::to_vec(&outcome.applied).map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(ProposeReply {
            index: outcome.index,
            applied_json,
        }))
    }

    async fn query(&self, request: Request<QueryRequest>) -> Result<Response<JsonReply>, Status> {
        guard(&self.node, &request, Rpc::Query)?;
        let q = request.into_inner();
        let query = Query::parse(&q.what, &q.arg).map_err(Status::invalid_argument)?;
        json_reply(&self.node.query(&query, q.stale).await?)
    }

    async fn cluster_new(
        &self,
        request: Request<ClusterNewRequest>,
    ) -> Result<Response<JsonReply>, Status> {
        guard(&self.node, &request, Rpc::ClusterNew)?;
        let request = request.into_inner();
        let overlay = match request.overlay.as_str() {
            "" => None,
            text => Some(
                text.parse()
                    .map_err(|e: String| Status::invalid_argument(format!("--overlay: {e}")))?,
            ),
        };
        let (info, credential) = self
            .node
            .cluster_new_with(&request.name, overlay, request.open_network)
            .await?;
        json_reply(&crate::views::ClusterNewView { info, credential })
    }

    async fn issue_token(
        &self,
        request: Request<TokenRequest>,
    ) -> Result<Response<TokenReply>, Status> {
        let caller = guard(&self.node, &request, Rpc::IssueToken)?;
        let ttl = match request.into_inner().ttl_seconds {
            0 => crate::limits::JOIN_TOKEN_TTL_DEFAULT,
            seconds => std::time::Duration::from_secs(seconds),
        };
        let token = self.node.issue_token_for(caller.actor(), ttl).await?;
        Ok(Response::new(TokenReply { token }))
    }

    async fn cluster_join(
        &self,
        request: Request<ClusterJoinRequest>,
    ) -> Result<Response<JsonReply>, Status> {
        guard(&self.node, &request, Rpc::ClusterJoin)?;
        json_reply(&self.node.cluster_join(&request.into_inner().token).await?)
    }

    async fn admit_peer(
        &self,
        request: Request<AdmitPeerRequest>,
    ) -> Result<Response<JsonReply>, Status> {
        guard(&self.node, &request, Rpc::AdmitPeer)?;
        let r = request.into_inner();
        let applicant = Applicant {
            name: r.name,
            address: r.address,
            tags: r.tags,
            capacity: Capacity {
                cpu_millis: r.cpu_millis,
                memory_mb: r.memory_mb,
            },
            facts: r.has_facts.then_some(PeerFacts {
                cpu_millis: r.facts_cpu_millis,
                memory_mb: r.facts_memory_mb,
                gpus: r.facts_gpus,
                disk_free_gb: r.facts_disk_free_gb,
            }),
            tls_public_key: r.tls_public_key,
            overlay: (!r.wg_public_key.is_empty()).then(|| monk_statemachine::OverlayIdentity {
                public_key: r.wg_public_key.clone(),
                endpoint: r.wg_endpoint.clone(),
            }),
        };
        json_reply(
            &self
                .node
                .admit_peer_with_key(&r.token_secret, applicant, &r.join_public_key)
                .await?,
        )
    }

    async fn leave(&self, request: Request<Empty>) -> Result<Response<JsonReply>, Status> {
        guard(&self.node, &request, Rpc::Leave)?;
        json_reply(&self.node.leave().await?)
    }

    async fn remove_peer(
        &self,
        request: Request<RemovePeerRequest>,
    ) -> Result<Response<JsonReply>, Status> {
        guard(&self.node, &request, Rpc::RemovePeer)?;
        self.node.remove_peer(request.into_inner().peer_id).await?;
        json_reply(&serde_json::json!({}))
    }

    async fn heartbeat(
        &self,
        request: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatReply>, Status> {
        let caller = guard(&self.node, &request, Rpc::Heartbeat)?;
        let peer_id = request.into_inner().peer_id;
        if caller != Caller::Peer(peer_id) {
            return Err(Status::permission_denied(format!(
                "{} may not heartbeat for peer {peer_id}",
                caller.actor()
            )));
        }
        self.node.heartbeat(peer_id);
        let applied_index = self.node.lease_grant().await?;
        Ok(Response::new(HeartbeatReply { applied_index }))
    }

    async fn info(&self, request: Request<Empty>) -> Result<Response<JsonReply>, Status> {
        guard(&self.node, &request, Rpc::Info)?;
        json_reply(&self.node.info().await?)
    }

    async fn consensus(&self, request: Request<Empty>) -> Result<Response<JsonReply>, Status> {
        guard(&self.node, &request, Rpc::Consensus)?;
        json_reply(&self.node.consensus().await?)
    }

    async fn export_raft_data(
        &self,
        request: Request<Empty>,
    ) -> Result<Response<RaftData>, Status> {
        guard(&self.node, &request, Rpc::ExportRaftData)?;
        let files = self
            .node
            .export_raft_data()?
            .into_iter()
            .map(|(name, contents)| DataFile { name, contents })
            .collect();
        Ok(Response::new(RaftData { files }))
    }

    async fn set_secret(
        &self,
        request: Request<SecretRequest>,
    ) -> Result<Response<JsonReply>, Status> {
        let caller = guard(&self.node, &request, Rpc::SetSecret)?;
        let r = request.into_inner();
        let scope = crate::secrets::scope_of(&r.scope);
        let index =
            crate::secrets::set(&self.node, caller.actor(), &r.name, scope, &r.value).await?;
        json_reply(&serde_json::json!({ "index": index }))
    }

    async fn get_secret(
        &self,
        request: Request<SecretRequest>,
    ) -> Result<Response<JsonReply>, Status> {
        guard(&self.node, &request, Rpc::GetSecret)?;
        let r = request.into_inner();
        if let Some(leader) = self.node.linearize().await? {
            let mut client = self.node.peer_client(&leader).await?;
            let value = client
                .get_secret(&r.name, &r.scope)
                .await
                .map_err(|s| Status::from(status_to_error(&s)))?;
            return json_reply(&value);
        }
        let scope = crate::secrets::scope_of(&r.scope);
        json_reply(&crate::secrets::get(&self.node, &r.name, &scope)?)
    }

    type EventsStream = tokio_stream::wrappers::ReceiverStream<Result<JsonReply, Status>>;

    async fn events(
        &self,
        request: Request<EventsRequest>,
    ) -> Result<Response<Self::EventsStream>, Status> {
        guard(&self.node, &request, Rpc::Events)?;
        let req = request.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(crate::events::EVENTS_CHANNEL_CAPACITY);
        tokio::spawn(crate::events::stream(
            self.node.clone(),
            req.from_index,
            req.follow,
            tx,
        ));
        Ok(Response::new(tokio_stream::wrappers::ReceiverStream::new(
            rx,
        )))
    }

    type FetchBlobStream = tokio_stream::wrappers::ReceiverStream<Result<BlobChunk, Status>>;

    async fn fetch_blob(
        &self,
        request: Request<BlobRequest>,
    ) -> Result<Response<Self::FetchBlobStream>, Status> {
        guard(&self.node, &request, Rpc::FetchBlob)?;
        let store = crate::registry::store::BlobStore::at(&self.node.config.data_dir);
        let rx = crate::registry::fetch::serve_blob(&store, request.into_inner())?;
        Ok(Response::new(tokio_stream::wrappers::ReceiverStream::new(
            rx,
        )))
    }

    type BuildImageStream = tokio_stream::wrappers::ReceiverStream<Result<BuildEvent, Status>>;

    async fn build_image(
        &self,
        request: Request<tonic::Streaming<BuildChunk>>,
    ) -> Result<Response<Self::BuildImageStream>, Status> {
        guard(&self.node, &request, Rpc::BuildImage)?;
        let rx = crate::registry::build::serve(self.node.clone(), request.into_inner()).await?;
        Ok(Response::new(tokio_stream::wrappers::ReceiverStream::new(
            rx,
        )))
    }

    async fn container_exec(
        &self,
        request: Request<ExecRequest>,
    ) -> Result<Response<JsonReply>, Status> {
        let caller = guard(&self.node, &request, Rpc::ContainerExec)?;
        let req = request.into_inner();
        if req.local_only && !matches!(caller, Caller::Peer(_)) {
            return Err(Status::permission_denied(
                "only peers forward an exec to the replica's holder",
            ));
        }
        json_reply(&crate::executor::logs::exec(&self.node, req).await?)
    }

    async fn entity_do(&self, request: Request<DoRequest>) -> Result<Response<JsonReply>, Status> {
        let caller = guard(&self.node, &request, Rpc::EntityDo)?;
        let req = request.into_inner();
        if req.local_only && !matches!(caller, Caller::Peer(_)) {
            return Err(Status::permission_denied(
                "only peers forward an action to the instance's host",
            ));
        }
        json_reply(&crate::entity::action::run(&self.node, req).await?)
    }

    async fn container_logs(
        &self,
        request: Request<LogsRequest>,
    ) -> Result<Response<JsonReply>, Status> {
        guard(&self.node, &request, Rpc::ContainerLogs)?;
        let req = request.into_inner();
        let lines = match req.local_only {
            true => crate::executor::logs::own_logs(&self.node, req).await?,
            false => crate::executor::logs::workload_logs(&self.node, req).await?,
        };
        json_reply(&lines)
    }
}
