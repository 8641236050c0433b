//! The Docker engine as a [`ContainerRuntime`], through bollard on the local socket
//! (`DOCKER_HOST` or `/var/run/docker.sock`). Every call is bounded by
//! [`CONTAINER_ENGINE_TIMEOUT`]; errors come back as
//! [`RuntimeError`]s naming the call and the container.

use std::collections::{BTreeMap, HashMap};

use bollard::auth::DockerCredentials;
use bollard::container::LogOutput;
use bollard::models::{
    ContainerCreateBody, ContainerSummaryStateEnum, EndpointSettings, HostConfig,
    HostConfigLogConfig, Ipam, IpamConfig, NetworkCreateRequest, NetworkingConfig, PortBinding,
    ResourcesUlimits, RestartPolicy as DockerRestart, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    BuildImageOptions, CreateContainerOptions, CreateImageOptions, ListContainersOptions,
    LogsOptions, PushImageOptions, RemoveContainerOptions, StopContainerOptions,
    UploadToContainerOptions,
};
use bollard::Docker;
use monk_scripting::monkscript::runtime::{ContainerSpec, Protocol, RestartPolicy};
use monk_statemachine::pull_credentials::{image_registry, DOCKER_HUB};
use monk_statemachine::PeerId;
use tokio_stream::StreamExt;

use super::runtime::{PullLogin, RuntimeError, RuntimeResult};
use super::{key_of, label, ContainerRuntime, Observed, RunState, Wanted};
use crate::limits::CONTAINER_ENGINE_TIMEOUT;

/// Most processes (and threads) one container may run: a fork bomb stops here instead
/// of exhausting the host's pid space (Linux's default `pid_max` is 32,768 on small
/// machines). Real services stay far below it: a JVM with large thread pools runs a
/// few hundred, a prefork web server a few dozen.
pub const CONTAINER_PIDS_MAX: i64 = 4_096;
/// Largest log file the engine keeps per container before rotating it: 10 MiB, the
/// size Docker's documentation suggests for `json-file` rotation.
pub const CONTAINER_LOG_FILE_BYTES_MAX: u64 = 10 << 20;
/// Log files kept per container (the current one and the rotated ones), so one
/// chatty container holds at most 30 MiB of the host's disk; `monk logs` reads across
/// them.
pub const CONTAINER_LOG_FILES_MAX: u32 = 3;

/// Longest one image build (or its push into the cluster registry) may take: a build
/// that compiles a large project runs for many minutes; half an hour bounds a build
/// step that hangs without cutting off real ones.
pub const IMAGE_BUILD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// Docker's `json-file` driver with rotation (Docker's default keeps every line forever).
fn log_config() -> HostConfigLogConfig {
    HostConfigLogConfig {
        typ: Some("json-file".into()),
        config: Some(HashMap::from([
            (
                "max-size".to_string(),
                CONTAINER_LOG_FILE_BYTES_MAX.to_string(),
            ),
            ("max-file".to_string(), CONTAINER_LOG_FILES_MAX.to_string()),
        ])),
    }
}

/// A connection to the local Docker engine.
#[derive(Clone)]
pub struct DockerRuntime {
    docker: Docker,
}

/// Runs one engine call within [`CONTAINER_ENGINE_TIMEOUT`]; `what` names it in the error.
async fn bounded<T>(
    what: &str,
    call: impl std::future::Future<Output = Result<T, bollard::errors::Error>>,
) -> RuntimeResult<T> {
    match tokio::time::timeout(CONTAINER_ENGINE_TIMEOUT, call).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(engine_error(what, e)),
        Err(_) => Err(RuntimeError::Timeout {
            what: what.to_string(),
            after: CONTAINER_ENGINE_TIMEOUT,
        }),
    }
}

/// The address Docker's own clients log in to for `registry` (Docker Hub's is its v1
/// index URL, as `docker login` writes it).
fn server_address(registry: &str) -> String {
    match registry {
        DOCKER_HUB => "https://index.docker.io/v1/".into(),
        other => other.into(),
    }
}

/// Whether an engine's pull error says the registry wants (other) credentials.
fn refused_login(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    [
        "unauthorized",
        "no basic auth credentials",
        "authentication required",
        "denied",
        "401",
    ]
    .iter()
    .any(|m| lower.contains(m))
}

/// A refused pull from a registry with no credential says how to set one.
fn with_login_hint(e: RuntimeError, registry: &str, has_credential: bool) -> RuntimeError {
    match e {
        RuntimeError::Engine { what, status, message } if !has_credential && refused_login(&message) => {
            RuntimeError::Engine {
                what,
                status,
                message: format!("{message} (to log in: `monk registry add {registry} --username USER --password-secret SECRET`)"),
            }
        }
        other => other,
    }
}

/// A bollard error as a [`RuntimeError`], keeping the engine's HTTP status.
fn engine_error(what: &str, e: bollard::errors::Error) -> RuntimeError {
    let status = match &e {
        bollard::errors::Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    };
    RuntimeError::Engine {
        what: what.to_string(),
        status,
        message: e.to_string(),
    }
}

impl DockerRuntime {
    /// Connects and pings the engine, so a missing engine is reported at start.
    /// `socket` is the engine's Unix socket (`monkd --moby-socket`: Docker or Podman);
    /// `None` means `DOCKER_HOST` or `/var/run/docker.sock`.
    pub async fn connect(socket: Option<&str>) -> RuntimeResult<DockerRuntime> {
        let docker = match socket {
            Some(socket) => Docker::connect_with_unix(
                socket,
                CONTAINER_ENGINE_TIMEOUT.as_secs(),
                bollard::API_DEFAULT_VERSION,
            ),
            None => Docker::connect_with_local_defaults(),
        }
        .map_err(|e| RuntimeError::Unreachable(e.to_string()))?;
        bounded("cannot reach the container engine", docker.ping()).await?;
        Ok(DockerRuntime { docker })
    }
}

/// `2026-11-22T05:26:27.123456789Z` → seconds since the Unix epoch (UTC only; Docker's
/// zero time `0001-01-01T00:00:00Z`, anything before 1970 and anything unreadable give
/// `None`).
fn rfc3339_unix(text: &str) -> Option<i64> {
    if !text.ends_with('Z') {
        return None;
    }
    let seconds = text.parse::<jiff::Timestamp>().ok()?.as_second();
    (seconds >= 0).then_some(seconds)
}

/// `Exited (1) 3 seconds ago` → `Some(1)`.
fn exit_code(status: &str) -> Option<i64> {
    let rest = status.strip_prefix("Exited (")?;
    rest.split(')').next()?.trim().parse().ok()
}

/// The Docker create body for a wanted container.
pub fn create_body(w: &Wanted) -> ContainerCreateBody {
    let spec: &ContainerSpec = &w.spec;
    let mut exposed = Vec::new();
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for p in &spec.ports {
        let protocol = match p.protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        };
        let key = format!("{}/{protocol}", p.container_port);
        exposed.push(key.clone());
        if let Some(host_port) = p.host_port {
            bindings
                .entry(key)
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: p.host_ip.clone(),
                    host_port: Some(host_port.to_string()),
                });
        }
    }
    let binds: Vec<String> = spec
        .mounts
        .iter()
        .map(|m| match m.read_only {
            true => format!("{}:{}:ro", m.source, m.target),
            false => format!("{}:{}", m.source, m.target),
        })
        .collect();
    let restart = match &spec.restart {
        RestartPolicy::No => DockerRestart {
            name: Some(RestartPolicyNameEnum::NO),
            maximum_retry_count: None,
        },
        RestartPolicy::Always => DockerRestart {
            name: Some(RestartPolicyNameEnum::ALWAYS),
            maximum_retry_count: None,
        },
        RestartPolicy::UnlessStopped => DockerRestart {
            name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
            maximum_retry_count: None,
        },
        RestartPolicy::OnFailure { max_retries } => DockerRestart {
            name: Some(RestartPolicyNameEnum::ON_FAILURE),
            maximum_retry_count: max_retries.map(i64::from),
        },
    };
    let ulimits = spec
        .ulimits
        .iter()
        .map(|u| ResourcesUlimits {
            name: Some(u.name.clone()),
            soft: Some(u.soft),
            hard: Some(u.hard),
        })
        .collect::<Vec<_>>();
    let host_config = HostConfig {
        // On the overlay, names resolve through the peer's DNS at the gateway (the
        // engine's resolver asks it for every name it does not know itself).
        dns: w
            .subnet
            .map(|s| vec![crate::overlay::firewall::gateway(s).to_string()]),
        binds: (!binds.is_empty()).then_some(binds),
        port_bindings: (!bindings.is_empty()).then_some(bindings),
        restart_policy: Some(restart),
        privileged: spec.privileged.then_some(true),
        cap_add: (!spec.cap_add.is_empty()).then(|| spec.cap_add.clone()),
        cap_drop: (!spec.cap_drop.is_empty()).then(|| spec.cap_drop.clone()),
        memory: spec.memory_bytes.map(|m| m as i64),
        cpu_quota: spec.cpu_quota,
        shm_size: spec.shm_size_bytes.map(|m| m as i64),
        ulimits: (!ulimits.is_empty()).then_some(ulimits),
        network_mode: Some(w.network.clone()),
        pids_limit: Some(CONTAINER_PIDS_MAX),
        log_config: Some(log_config()),
        // An init process as PID 1 forwards signals and reaps zombies, so a `bash:`
        // command (a shell as PID 1 ignores SIGTERM) stops at once instead of being
        // killed after the grace period.
        init: Some(true),
        ..Default::default()
    };
    let endpoint = EndpointSettings {
        aliases: Some(w.aliases.clone()),
        ..Default::default()
    };
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        entrypoint: spec.entrypoint.clone(),
        cmd: spec.cmd.clone(),
        env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        working_dir: spec.workdir.clone(),
        user: spec.user.clone(),
        labels: Some(w.labels.clone().into_iter().collect()),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        stop_signal: spec.stop_signal.clone(),
        stop_timeout: spec.stop_grace_secs.map(|s| s as i64),
        host_config: Some(host_config),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(w.network.clone(), endpoint)])),
        }),
        ..Default::default()
    }
}

/// A tar archive of the spec's files, for `upload_to_container` at `/`: owned by root,
/// with each file's mode, at mtime 0. Paths over 100 bytes use the ustar prefix or a
/// GNU long-name entry (the `tar` crate), which Docker reads.
fn files_tar(spec: &ContainerSpec) -> std::io::Result<Vec<u8>> {
    let mut archive = tar::Builder::new(Vec::new());
    for f in &spec.files {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(f.mode & 0o7777);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_size(f.contents.len() as u64);
        archive.append_data(
            &mut header,
            f.path.trim_start_matches('/'),
            f.contents.as_slice(),
        )?;
    }
    archive.into_inner()
}

impl DockerRuntime {
    /// Creates the peer's bridge network if it is missing. On the overlay it uses the
    /// peer's container subnet, with Docker's masquerading off (monkd's own NAT leaves
    /// overlay traffic unchanged, so other peers see container addresses); a network
    /// left from before the overlay, on another subnet, is replaced once it is empty.
    async fn ensure_network(&self, w: &Wanted) -> RuntimeResult<()> {
        let name = &w.network;
        if let Ok(existing) = self.docker.inspect_network(name, None).await {
            let Some(subnet) = w.subnet else {
                return Ok(());
            };
            let has = existing
                .ipam
                .and_then(|i| i.config)
                .unwrap_or_default()
                .iter()
                .any(|c| c.subnet.as_deref() == Some(subnet.to_string().as_str()));
            if has {
                return Ok(());
            }
            self.remove_network(name).await.map_err(|e| {
                RuntimeError::engine(
                    format!("network {name}"),
                    format!(
                        "it is not on this peer's overlay subnet {subnet} and cannot be replaced yet: {e}"
                    ),
                )
            })?;
        }
        let labels = [label::CLUSTER, label::PEER]
            .iter()
            .filter_map(|k| w.labels.get(*k).map(|v| (k.to_string(), v.clone())))
            .collect();
        let (ipam, options) = match w.subnet {
            Some(subnet) => (
                Some(Ipam {
                    config: Some(vec![IpamConfig {
                        subnet: Some(subnet.to_string()),
                        gateway: Some(crate::overlay::firewall::gateway(subnet).to_string()),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                Some(HashMap::from([(
                    "com.docker.network.bridge.enable_ip_masquerade".to_string(),
                    "false".to_string(),
                )])),
            ),
            None => (None, None),
        };
        let request = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".into()),
            labels: Some(labels),
            ipam,
            options,
            ..Default::default()
        };
        match bounded(
            &format!("creating network {name}"),
            self.docker.create_network(request),
        )
        .await
        {
            // Two creates racing: the other one won, which is what we wanted.
            Err(e) if e.is_conflict() => Ok(()),
            other => other.map(|_| ()),
        }
    }
}

#[async_trait::async_trait]
impl ContainerRuntime for DockerRuntime {
    async fn list(&self, cluster: &str, peer: PeerId) -> RuntimeResult<Vec<Observed>> {
        let filters = HashMap::from([(
            "label".to_string(),
            vec![
                format!("{}={cluster}", label::CLUSTER),
                format!("{}={peer}", label::PEER),
            ],
        )]);
        let options = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        let list = bounded(
            "listing containers",
            self.docker.list_containers(Some(options)),
        )
        .await?;
        let mut out = Vec::with_capacity(list.len());
        for c in list {
            let id = c.id.clone().unwrap_or_default();
            // The summary has neither the last start time nor the restart count.
            let (started_unix, restarts) = match self.docker.inspect_container(&id, None).await {
                Ok(i) => (
                    i.state
                        .and_then(|s| s.started_at)
                        .and_then(|t| rfc3339_unix(&t)),
                    i.restart_count.unwrap_or(0).max(0) as u64,
                ),
                Err(_) => (None, 0),
            };
            out.push((c, started_unix, restarts));
        }
        Ok(out
            .into_iter()
            .map(|(c, started_unix, restarts)| {
                let labels: BTreeMap<String, String> =
                    c.labels.unwrap_or_default().into_iter().collect();
                let (key, generation, spec_hash) = key_of(&labels);
                let status = c.status.unwrap_or_default();
                let state = match c.state {
                    Some(ContainerSummaryStateEnum::RUNNING) => RunState::Running,
                    Some(ContainerSummaryStateEnum::CREATED) => RunState::Created,
                    Some(ContainerSummaryStateEnum::EXITED | ContainerSummaryStateEnum::DEAD) => {
                        RunState::Exited(exit_code(&status))
                    }
                    other => RunState::Other(format!("{other:?}").to_lowercase()),
                };
                Observed {
                    id: c.id.unwrap_or_default(),
                    name: c
                        .names
                        .and_then(|n| n.into_iter().next())
                        .unwrap_or_default()
                        .trim_start_matches('/')
                        .to_string(),
                    key,
                    generation,
                    spec_hash,
                    state,
                    created_unix: c.created.unwrap_or(0),
                    ip: c
                        .network_settings
                        .and_then(|n| n.networks)
                        .and_then(|n| n.into_values().find_map(|e| e.ip_address))
                        .filter(|ip| !ip.is_empty()),
                    started_unix,
                    restarts,
                }
            })
            .collect())
    }

    async fn ensure_image(&self, image: &str, login: &PullLogin) -> RuntimeResult<()> {
        if self.docker.inspect_image(image).await.is_ok() {
            return Ok(());
        }
        let auth = match login {
            Ok(auth) => auth.as_ref(),
            Err(why) => {
                return Err(RuntimeError::engine(
                    "not present locally, and no pull without its login",
                    why.clone(),
                ))
            }
        };
        let options = CreateImageOptions {
            from_image: Some(image.to_string()),
            ..Default::default()
        };
        let credentials = auth.map(|a| DockerCredentials {
            username: Some(a.username.clone()),
            password: Some(a.password.clone()),
            serveraddress: Some(server_address(&a.registry)),
            ..Default::default()
        });
        let pull = async {
            let mut stream = self.docker.create_image(Some(options), None, credentials);
            while let Some(step) = stream.next().await {
                step?;
            }
            Ok::<(), bollard::errors::Error>(())
        };
        let registry = image_registry(image);
        let what = match auth {
            Some(a) => format!("not present locally; pulling it from registry {registry} as {} failed", a.username),
            None => format!("not present locally; pulling it from registry {registry} (no credential set) failed"),
        };
        bounded(&what, pull)
            .await
            .map_err(|e| with_login_hint(e, &registry, auth.is_some()))
    }

    async fn create(&self, w: &Wanted) -> RuntimeResult<String> {
        self.ensure_network(w).await?;
        let options = CreateContainerOptions {
            name: Some(w.name.clone()),
            ..Default::default()
        };
        let created = bounded(
            &format!("creating container {}", w.name),
            self.docker.create_container(Some(options), create_body(w)),
        )
        .await?;
        if !w.spec.files.is_empty() {
            let options = UploadToContainerOptions {
                path: "/".into(),
                ..Default::default()
            };
            let tar = match files_tar(&w.spec) {
                Ok(tar) => tar,
                Err(e) => {
                    let _ = self.remove(&created.id, 0).await;
                    return Err(RuntimeError::engine(
                        format!("writing files into {}", w.name),
                        e.to_string(),
                    ));
                }
            };
            let upload = self.docker.upload_to_container(
                &created.id,
                Some(options),
                bollard::body_full(tar.into()),
            );
            if let Err(e) = bounded(&format!("writing files into {}", w.name), upload).await {
                let _ = self.remove(&created.id, 0).await;
                return Err(e);
            }
        }
        if let Err(e) = self.start(&created.id).await {
            let _ = self.remove(&created.id, 0).await;
            return Err(RuntimeError::engine(
                format!("starting container {}", w.name),
                e.to_string(),
            ));
        }
        Ok(created.id)
    }

    async fn start(&self, id: &str) -> RuntimeResult<()> {
        bounded(
            &format!("starting {id}"),
            self.docker.start_container(id, None),
        )
        .await
    }

    async fn exec_output(&self, id: &str, command: Vec<String>) -> RuntimeResult<(i64, String)> {
        use bollard::exec::{StartExecOptions, StartExecResults};
        use bollard::models::ExecConfig;
        let shown = command.join(" ");
        let run = async {
            let config = ExecConfig {
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                cmd: Some(command),
                ..Default::default()
            };
            let created = self.docker.create_exec(id, config).await?;
            let mut out = String::new();
            let options = StartExecOptions {
                detach: false,
                ..Default::default()
            };
            if let StartExecResults::Attached { mut output, .. } =
                self.docker.start_exec(&created.id, Some(options)).await?
            {
                while let Some(chunk) = output.next().await {
                    let bytes = match chunk? {
                        LogOutput::StdOut { message }
                        | LogOutput::StdErr { message }
                        | LogOutput::Console { message } => message,
                        LogOutput::StdIn { .. } => continue,
                    };
                    if out.len() < super::logs::EXEC_OUTPUT_BYTES_MAX {
                        out.push_str(&String::from_utf8_lossy(&bytes));
                    }
                }
            }
            let code = self.docker.inspect_exec(&created.id).await?.exit_code;
            Ok::<_, bollard::errors::Error>((code.unwrap_or(-1), out))
        };
        bounded(&format!("exec {shown}"), run).await
    }

    async fn logs(&self, id: &str, tail: u32, since: i64) -> RuntimeResult<Vec<(String, String)>> {
        let options = LogsOptions {
            stdout: true,
            stderr: true,
            timestamps: true,
            tail: tail.to_string(),
            since: since.clamp(0, i64::from(i32::MAX)) as i32,
            ..Default::default()
        };
        let read = async {
            let mut lines = Vec::new();
            let mut stream = self.docker.logs(id, Some(options));
            while let Some(item) = stream.next().await {
                let (name, bytes) = match item? {
                    LogOutput::StdErr { message } => ("stderr", message),
                    LogOutput::StdOut { message } | LogOutput::Console { message } => {
                        ("stdout", message)
                    }
                    LogOutput::StdIn { .. } => continue,
                };
                let text = String::from_utf8_lossy(&bytes);
                for line in text.lines() {
                    lines.push((name.to_string(), line.to_string()));
                }
            }
            Ok::<_, bollard::errors::Error>(lines)
        };
        bounded(&format!("reading the logs of {id}"), read).await
    }

    async fn remove(&self, id: &str, grace_secs: u64) -> RuntimeResult<()> {
        let stop = StopContainerOptions {
            t: Some(grace_secs.min(i32::MAX as u64) as i32),
            ..Default::default()
        };
        // A container that already stopped answers "not modified"; removal decides.
        let _ = bounded(
            &format!("stopping {id}"),
            self.docker.stop_container(id, Some(stop)),
        )
        .await;
        let options = RemoveContainerOptions {
            force: true,
            ..Default::default()
        };
        match bounded(
            &format!("removing {id}"),
            self.docker.remove_container(id, Some(options)),
        )
        .await
        {
            Err(e) if e.is_not_found() => Ok(()),
            other => other,
        }
    }

    async fn build_image(
        &self,
        context: Vec<u8>,
        dockerfile: &str,
        tag: &str,
        progress: &tokio::sync::mpsc::Sender<String>,
    ) -> RuntimeResult<()> {
        let what = format!("building {tag}");
        let options = BuildImageOptions {
            dockerfile: dockerfile.to_string(),
            t: Some(tag.to_string()),
            rm: true,
            forcerm: true,
            ..Default::default()
        };
        let body = bollard::body_full(tonic::codegen::Bytes::from(context));
        let build = async {
            let mut stream = self.docker.build_image(options, None, Some(body));
            while let Some(step) = stream.next().await {
                let info = step.map_err(|e| engine_error(&what, e))?;
                if let Some(detail) = info.error_detail {
                    let message = detail.message.unwrap_or_default();
                    return Err(RuntimeError::engine(&what, message.trim_end().to_string()));
                }
                for line in info.stream.iter().chain(info.status.iter()) {
                    for line in line.lines().filter(|l| !l.trim().is_empty()) {
                        let _ = progress.send(line.to_string()).await;
                    }
                }
            }
            Ok(())
        };
        match tokio::time::timeout(IMAGE_BUILD_TIMEOUT, build).await {
            Ok(result) => result,
            Err(_) => Err(RuntimeError::Timeout {
                what,
                after: IMAGE_BUILD_TIMEOUT,
            }),
        }
    }

    async fn push_image(
        &self,
        reference: &str,
        progress: &tokio::sync::mpsc::Sender<String>,
    ) -> RuntimeResult<String> {
        let what = format!("pushing {reference}");
        let (name, tag) = match reference.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') => (name, tag),
            _ => (reference, "latest"),
        };
        let options = PushImageOptions {
            tag: Some(tag.to_string()),
            ..Default::default()
        };
        let push = async {
            let mut digest = None;
            let mut stream = self.docker.push_image(name, Some(options), None);
            while let Some(step) = stream.next().await {
                let info = step.map_err(|e| engine_error(&what, e))?;
                if let Some(detail) = info.error_detail {
                    return Err(RuntimeError::engine(
                        &what,
                        detail.message.unwrap_or_default(),
                    ));
                }
                // Per-layer byte counts and waits are left out: one line per step,
                // readable in a log.
                let waiting = matches!(info.status.as_deref(), Some("Preparing" | "Waiting"));
                if waiting || info.progress_detail.is_some_and(|p| p.current.is_some()) {
                    continue;
                }
                if let Some(status) = info.status {
                    if let Some(found) =
                        status.split_whitespace().find(|w| w.starts_with("sha256:"))
                    {
                        digest = Some(found.to_string());
                    }
                    let _ = progress.send(status).await;
                }
            }
            digest.ok_or_else(|| RuntimeError::engine(&what, "the engine reported no digest"))
        };
        match tokio::time::timeout(IMAGE_BUILD_TIMEOUT, push).await {
            Ok(result) => result,
            Err(_) => Err(RuntimeError::Timeout {
                what,
                after: IMAGE_BUILD_TIMEOUT,
            }),
        }
    }

    async fn remove_network(&self, name: &str) -> RuntimeResult<()> {
        match bounded(
            &format!("removing network {name}"),
            self.docker.remove_network(name),
        )
        .await
        {
            Err(e) if e.is_not_found() => Ok(()),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests;
