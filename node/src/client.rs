//! A typed client of the MonkService API, used by `monk` and by peers forwarding to
//! the leader. Every call has a deadline ([`RPC_TIMEOUT`]).

use std::collections::BTreeMap;
use std::path::Path;

use monk_scripting::tree::Tree;
use monk_statemachine::view::InstanceView;
use monk_statemachine::{Command, Proposal, Workload, FORMAT_VERSION};
use serde::de::DeserializeOwned;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

use crate::api::{ClientError, Query};
use crate::limits::{GRPC_MESSAGE_BYTES_MAX, RPC_TIMEOUT};
use crate::node::Applicant;
use crate::pb::monk_service_client::MonkServiceClient;
use crate::pb::{
    AdmitPeerRequest, ClusterJoinRequest, ClusterNewRequest, Empty, EventsRequest,
    HeartbeatRequest, ProposeRequest, QueryRequest, RemovePeerRequest, SecretRequest,
};
use crate::trust::access::AUTHORIZATION;
use crate::trust::tls::Dialer;
use crate::views::*;

#[derive(Clone)]
pub struct MonkClient {
    inner: MonkServiceClient<Channel>,
    /// `Bearer <credential>`, sent with every request when the dialer has one.
    authorization: Option<MetadataValue<tonic::metadata::Ascii>>,
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ClientError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ClientError::internal(format!("undecodable reply: {e}")))
}

/// `<kind>-<pid>-<random>`: unique per proposal, readable in `monk log`.
fn request_id(kind: &str) -> String {
    let mut bytes = [0u8; 6];
    let random = match getrandom::getrandom(&mut bytes) {
        Ok(()) => hex::encode(bytes),
        Err(_) => format!("{:x}", crate::node::now_ms()),
    };
    format!("{kind}-{}-{random}", std::process::id())
}

/// The reply to [`MonkClient::events`].
pub struct EventStream {
    inner: tonic::Streaming<crate::pb::JsonReply>,
}

impl EventStream {
    /// The next event (or note), `None` when the peer ended the stream.
    pub async fn next(&mut self) -> Result<Option<serde_json::Value>, ClientError> {
        match self.inner.message().await? {
            Some(reply) => decode(&reply.json).map(Some),
            None => Ok(None),
        }
    }
}

impl MonkClient {
    /// Connects to `address` over TLS as `dialer` says (whom to trust, which
    /// certificate or credential to show).
    /// `address` is `HOST:PORT` (TLS, as `dialer` says) or `unix:PATH`, a peer's
    /// Unix socket on this machine (`crate::trust::socket`).
    pub async fn connect(address: &str, dialer: &Dialer) -> Result<MonkClient, String> {
        let channel = match address.strip_prefix(crate::trust::socket::ADDRESS_PREFIX) {
            Some(path) => crate::trust::socket::channel(Path::new(path), RPC_TIMEOUT).await?,
            None => dialer.channel(address, RPC_TIMEOUT).await?,
        };
        let inner = MonkServiceClient::new(channel)
            .max_decoding_message_size(GRPC_MESSAGE_BYTES_MAX)
            .max_encoding_message_size(GRPC_MESSAGE_BYTES_MAX);
        let authorization = match dialer.credential() {
            Some(credential) => Some(
                format!("Bearer {credential}")
                    .parse()
                    .map_err(|_| "the credential holds characters a header cannot".to_string())?,
            ),
            None => None,
        };
        Ok(MonkClient {
            inner,
            authorization,
        })
    }

    /// A request with the deadline and the credential.
    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut req = self.without_deadline(message);
        req.set_timeout(RPC_TIMEOUT);
        req
    }

    /// A request with the credential and no deadline (streams).
    fn without_deadline<T>(&self, message: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(message);
        if let Some(value) = &self.authorization {
            req.metadata_mut().insert(AUTHORIZATION, value.clone());
        }
        req
    }

    pub async fn propose_raw(
        &mut self,
        proposal: &Proposal,
    ) -> Result<ProposeOutcome, ClientError> {
        let proposal_json =
            serde_json::to_vec(proposal).map_err(|e| ClientError::internal(e.to_string()))?;
        self.propose_bytes(proposal_json).await
    }

    /// Sends proposal JSON as is (tests use it to send what a newer build would).
    pub async fn propose_bytes(
        &mut self,
        proposal_json: Vec<u8>,
    ) -> Result<ProposeOutcome, ClientError> {
        let reply = self
            .inner
            .propose(self.request(ProposeRequest { proposal_json }))
            .await?
            .into_inner();
        Ok(ProposeOutcome {
            index: reply.index,
            applied: decode(&reply.applied_json)?,
        })
    }

    /// Asks `query`; `T` is the type its documentation names (the typed methods below
    /// fix it). Linearizable unless `stale`.
    pub async fn query<T: DeserializeOwned>(
        &mut self,
        query: &Query,
        stale: bool,
    ) -> Result<T, ClientError> {
        let reply = self
            .inner
            .query(self.request(QueryRequest {
                what: query.what().into(),
                arg: query.arg().into(),
                stale,
            }))
            .await?
            .into_inner();
        decode(&reply.json)
    }

    pub async fn templates(&mut self, stale: bool) -> Result<Vec<TemplateRow>, ClientError> {
        self.query(&Query::Templates, stale).await
    }

    /// Every stored definition by path, as loaded.
    pub async fn templates_all(
        &mut self,
        stale: bool,
    ) -> Result<BTreeMap<String, Tree>, ClientError> {
        self.query(&Query::TemplatesAll, stale).await
    }

    /// One definition with its `inherits` chain resolved by the peer.
    pub async fn resolved_template(
        &mut self,
        path: &str,
        stale: bool,
    ) -> Result<Tree, ClientError> {
        let query = Query::ResolvedTemplate { path: path.into() };
        self.query(&query, stale).await
    }

    /// The Hub catalog, kit by kit (`monk hub list`, `search`, and a sync's starting
    /// point).
    pub async fn hub_kits(&mut self, stale: bool) -> Result<Vec<HubKitRow>, ClientError> {
        self.query(&Query::Hub, stale).await
    }

    /// The cluster registry's tagged images (`monk images`).
    pub async fn images(
        &mut self,
        stale: bool,
    ) -> Result<Vec<monk_statemachine::ImageRow>, ClientError> {
        self.query(&Query::Images, stale).await
    }

    /// Pull credentials for outside registries (`monk registry list`).
    pub async fn registries(
        &mut self,
        stale: bool,
    ) -> Result<Vec<monk_statemachine::RegistryRow>, ClientError> {
        self.query(&Query::Registries, stale).await
    }

    /// One Hub definition and where it comes from (`monk hub info`).
    pub async fn hub_template(
        &mut self,
        path: &str,
        stale: bool,
    ) -> Result<HubTemplateView, ClientError> {
        let query = Query::HubTemplate { path: path.into() };
        self.query(&query, stale).await
    }

    pub async fn instances(&mut self, stale: bool) -> Result<Vec<InstanceView>, ClientError> {
        self.query(&Query::Instances, stale).await
    }

    pub async fn workload(&mut self, path: &str) -> Result<Workload, ClientError> {
        let query = Query::Workload { path: path.into() };
        self.query(&query, false).await
    }

    pub async fn secret_names(&mut self) -> Result<serde_json::Value, ClientError> {
        self.query(&Query::Secrets, false).await
    }

    /// Proposes `command` as `actor`: fills in the entry format version and a request
    /// id unique to this call (so `monk stop a b c` sends three distinguishable
    /// proposals); the receiving peer stamps the time.
    pub async fn propose(
        &mut self,
        actor: &str,
        command: Command,
    ) -> Result<ProposeOutcome, ClientError> {
        let proposal = Proposal {
            format_version: FORMAT_VERSION,
            // 0: the receiving peer stamps its clock (`Node::propose`).
            proposed_at_ms: 0,
            actor: actor.to_string(),
            request_id: request_id(command.kind()),
            command,
        };
        self.propose_raw(&proposal).await
    }

    /// Creates the cluster on a fresh peer; the reply carries the admin's credential.
    pub async fn cluster_new(&mut self, name: &str) -> Result<ClusterNewView, ClientError> {
        self.cluster_new_with(name, None, false).await
    }

    /// As [`MonkClient::cluster_new`], with the overlay range (`None`: the default).
    pub async fn cluster_new_with(
        &mut self,
        name: &str,
        overlay: Option<&str>,
        open_network: bool,
    ) -> Result<ClusterNewView, ClientError> {
        let request = ClusterNewRequest {
            name: name.into(),
            overlay: overlay.unwrap_or_default().into(),
            open_network,
        };
        decode(
            &self
                .inner
                .cluster_new(self.request(request))
                .await?
                .into_inner()
                .json,
        )
    }

    /// A single-use join token living the peer's default time (an hour).
    pub async fn issue_token(&mut self) -> Result<String, ClientError> {
        self.issue_token_for(None).await
    }

    /// A single-use join token living `ttl` (`None`: the peer's default).
    pub async fn issue_token_for(
        &mut self,
        ttl: Option<std::time::Duration>,
    ) -> Result<String, ClientError> {
        let ttl_seconds = ttl.map_or(0, |t| t.as_secs().max(1));
        Ok(self
            .inner
            .issue_token(self.request(crate::pb::TokenRequest { ttl_seconds }))
            .await?
            .into_inner()
            .token)
    }

    pub async fn cluster_join(&mut self, token: &str) -> Result<InfoView, ClientError> {
        decode(
            &self
                .inner
                .cluster_join(self.request(ClusterJoinRequest {
                    token: token.into(),
                }))
                .await?
                .into_inner()
                .json,
        )
    }

    pub async fn admit_peer(
        &mut self,
        secret: &str,
        applicant: &Applicant,
        join_public_key: &[u8],
    ) -> Result<Admission, ClientError> {
        let facts = applicant.facts.unwrap_or_default();
        let overlay = applicant.overlay.as_ref();
        let req = AdmitPeerRequest {
            token_secret: secret.into(),
            name: applicant.name.clone(),
            address: applicant.address.clone(),
            tags: applicant.tags.clone(),
            cpu_millis: applicant.capacity.cpu_millis,
            memory_mb: applicant.capacity.memory_mb,
            join_public_key: join_public_key.to_vec(),
            has_facts: applicant.facts.is_some(),
            facts_cpu_millis: facts.cpu_millis,
            facts_memory_mb: facts.memory_mb,
            facts_gpus: facts.gpus,
            facts_disk_free_gb: facts.disk_free_gb,
            tls_public_key: applicant.tls_public_key.clone(),
            wg_public_key: overlay.map(|o| o.public_key.clone()).unwrap_or_default(),
            wg_endpoint: overlay.map(|o| o.endpoint.clone()).unwrap_or_default(),
        };
        decode(
            &self
                .inner
                .admit_peer(self.request(req))
                .await?
                .into_inner()
                .json,
        )
    }

    pub async fn leave(&mut self) -> Result<InfoView, ClientError> {
        decode(
            &self
                .inner
                .leave(self.request(Empty {}))
                .await?
                .into_inner()
                .json,
        )
    }

    pub async fn remove_peer(&mut self, peer_id: u64) -> Result<(), ClientError> {
        self.inner
            .remove_peer(self.request(RemovePeerRequest { peer_id }))
            .await?;
        Ok(())
    }

    /// Heartbeats the leader as peer `peer_id`; the leader's applied index when it
    /// answers (only while a quorum acknowledges it).
    pub async fn heartbeat(&mut self, peer_id: u64) -> Result<u64, ClientError> {
        Ok(self
            .inner
            .heartbeat(self.request(HeartbeatRequest { peer_id }))
            .await?
            .into_inner()
            .applied_index)
    }

    /// Applied commands from `from_index` on (and new ones with `follow`), as JSON
    /// objects. No deadline: a following stream lasts as long as the client reads it.
    /// A registry blob this peer holds, as a stream of chunks (peers only).
    pub async fn fetch_blob(
        &mut self,
        digest: &str,
    ) -> Result<tonic::Streaming<crate::pb::BlobChunk>, ClientError> {
        Ok(self
            .inner
            .fetch_blob(self.without_deadline(crate::pb::BlobRequest {
                digest: digest.to_string(),
            }))
            .await?
            .into_inner())
    }

    /// Sends a build context (`context`, a tar) to be built and pushed into the cluster
    /// registry as `repository:tag`; the stream of the build's output, ending with an
    /// event that carries the pushed digest (or an error status).
    pub async fn build_image(
        &mut self,
        repository: &str,
        tag: &str,
        dockerfile: &str,
        context: Vec<u8>,
    ) -> Result<tonic::Streaming<crate::pb::BuildEvent>, ClientError> {
        let mut chunks: Vec<crate::pb::BuildChunk> = context
            .chunks(crate::registry::build::BUILD_CHUNK_BYTES)
            .map(|data| crate::pb::BuildChunk {
                data: data.to_vec(),
                ..Default::default()
            })
            .collect();
        if chunks.is_empty() {
            chunks.push(crate::pb::BuildChunk::default());
        }
        if let Some(first) = chunks.first_mut() {
            first.repository = repository.to_string();
            first.tag = tag.to_string();
            first.dockerfile = dockerfile.to_string();
        }
        Ok(self
            .inner
            .build_image(self.without_deadline(tokio_stream::iter(chunks)))
            .await?
            .into_inner())
    }

    pub async fn events(
        &mut self,
        from_index: u64,
        follow: bool,
    ) -> Result<EventStream, ClientError> {
        let inner = self
            .inner
            .events(self.without_deadline(EventsRequest { from_index, follow }))
            .await?
            .into_inner();
        Ok(EventStream { inner })
    }

    pub async fn info(&mut self) -> Result<InfoView, ClientError> {
        decode(
            &self
                .inner
                .info(self.request(Empty {}))
                .await?
                .into_inner()
                .json,
        )
    }

    pub async fn consensus(&mut self) -> Result<ConsensusView, ClientError> {
        decode(
            &self
                .inner
                .consensus(self.request(Empty {}))
                .await?
                .into_inner()
                .json,
        )
    }

    /// Runs a command in a workload replica's container, wherever it runs.
    pub async fn container_exec(
        &mut self,
        req: crate::pb::ExecRequest,
    ) -> Result<crate::executor::logs::ExecOutput, ClientError> {
        decode(
            &self
                .inner
                .container_exec(self.request(req))
                .await?
                .into_inner()
                .json,
        )
    }

    /// Runs an entity instance's custom verb, wherever the instance runs.
    pub async fn entity_do(
        &mut self,
        req: crate::pb::DoRequest,
    ) -> Result<crate::entity::action::DoOutput, ClientError> {
        decode(
            &self
                .inner
                .entity_do(self.request(req))
                .await?
                .into_inner()
                .json,
        )
    }

    /// Seals and commits a secret through the addressed peer; returns the log index.
    pub async fn set_secret(
        &mut self,
        name: &str,
        scope: &str,
        value: &str,
        actor: &str,
    ) -> Result<u64, ClientError> {
        let req = SecretRequest {
            name: name.into(),
            scope: scope.into(),
            value: value.into(),
            actor: actor.into(),
        };
        let reply: serde_json::Value = decode(
            &self
                .inner
                .set_secret(self.request(req))
                .await?
                .into_inner()
                .json,
        )?;
        Ok(reply["index"].as_u64().unwrap_or(0))
    }

    /// Opens a secret (`scope` empty: global).
    pub async fn get_secret(&mut self, name: &str, scope: &str) -> Result<String, ClientError> {
        let req = SecretRequest {
            name: name.into(),
            scope: scope.into(),
            value: String::new(),
            actor: String::new(),
        };
        decode(
            &self
                .inner
                .get_secret(self.request(req))
                .await?
                .into_inner()
                .json,
        )
    }

    /// Recent output of a workload's containers, wherever its replicas run.
    pub async fn container_logs(
        &mut self,
        req: crate::pb::LogsRequest,
    ) -> Result<Vec<crate::executor::logs::LogLine>, ClientError> {
        decode(
            &self
                .inner
                .container_logs(self.request(req))
                .await?
                .into_inner()
                .json,
        )
    }

    /// The same, answered by the addressed peer's own engine only (forwarding).
    pub async fn container_logs_local(
        &mut self,
        mut req: crate::pb::LogsRequest,
    ) -> Result<Vec<crate::executor::logs::LogLine>, ClientError> {
        req.local_only = true;
        self.container_logs(req).await
    }

    /// Downloads a consistent copy of the peer's Raft data into `dest` (created).
    pub async fn export_raft_data(&mut self, dest: &std::path::Path) -> Result<(), ClientError> {
        let data = self
            .inner
            .export_raft_data(self.request(Empty {}))
            .await?
            .into_inner();
        std::fs::create_dir_all(dest)
            .map_err(|e| ClientError::internal(format!("{}: {e}", dest.display())))?;
        for file in data.files {
            let name = std::path::Path::new(&file.name);
            let plain = name.components().count() == 1 && name.file_name().is_some();
            if !plain {
                return Err(ClientError::internal(format!(
                    "refusing exported file name {:?}",
                    file.name
                )));
            }
            std::fs::write(dest.join(name), &file.contents)
                .map_err(|e| ClientError::internal(format!("{}: {e}", dest.display())))?;
        }
        Ok(())
    }

    pub async fn peers(&mut self, stale: bool) -> Result<Vec<PeerRow>, ClientError> {
        self.query(&Query::Peers, stale).await
    }

    /// Outstanding join tokens (hashes only).
    pub async fn join_tokens(&mut self) -> Result<Vec<JoinTokenRow>, ClientError> {
        self.query(&Query::JoinTokens, false).await
    }

    /// The cluster's users and their roles.
    pub async fn users(&mut self) -> Result<Vec<UserRow>, ClientError> {
        self.query(&Query::Users, false).await
    }
}
