//! The etcd side: Debian's `etcd-server` found or installed, a 3-member cluster of it on
//! loopback (default settings, so fsync on), and its writer: 64-byte puts through etcd's
//! own gRPC API (the client generated from `proto/etcd.proto` on the workspace's tonic).
//! Members are SIGKILLed when the [`EtcdCluster`] drops, even on an error path.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tonic::transport::{Channel, Endpoint};

use crate::load::Writer;
use crate::side::Side;

pub mod pb {
    tonic::include_proto!("etcdserverpb");
}

use pb::kv_client::KvClient;
use pb::maintenance_client::MaintenanceClient;

/// Where Debian's `etcd-server` puts the binary.
const DEBIAN_ETCD: &str = "/usr/bin/etcd";
/// The Debian package that has it.
const ETCD_PACKAGE: &str = "etcd-server";
/// Set to `1` (CI does) to fail instead of skipping where etcd cannot be had.
pub const REQUIRE_ETCD_VAR: &str = "MONK_REQUIRE_ETCD";
/// Members of the cluster, as on our side.
pub const MEMBERS: usize = 3;
/// How long a started cluster may take to elect a leader.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Deadline of one put or status call: far above any healthy latency, so only a stuck
/// cluster hits it.
pub const RPC_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause between two looks while waiting.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// The value every put writes: 64 bytes, the size the issue compares.
pub const VALUE_BYTES: usize = 64;

/// The `etcd` binary: on PATH or where Debian puts it, else installed with apt-get.
/// `Ok(None)`: no apt-get on this machine and [`REQUIRE_ETCD_VAR`] unset (skip).
pub fn locate_or_install() -> Result<Option<PathBuf>> {
    if let Some(found) = locate() {
        return Ok(Some(found));
    }
    let required = std::env::var(REQUIRE_ETCD_VAR).is_ok_and(|v| v == "1");
    if !succeeds(Command::new("apt-get").arg("--version")) {
        if required {
            bail!("etcd is not installed and there is no apt-get to install Debian's {ETCD_PACKAGE} ({REQUIRE_ETCD_VAR}=1)");
        }
        eprintln!("compare: skipped: etcd is not installed and there is no apt-get to install Debian's {ETCD_PACKAGE}; install etcd 3.4 by hand (set {REQUIRE_ETCD_VAR}=1 to fail instead)");
        return Ok(None);
    }
    install()?;
    locate().map(Some).with_context(|| {
        format!("apt-get installed {ETCD_PACKAGE} but there is still no {DEBIAN_ETCD}")
    })
}

fn locate() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("etcd"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| Some(PathBuf::from(DEBIAN_ETCD)).filter(|p| p.is_file()))
}

fn succeeds(command: &mut Command) -> bool {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn install() -> Result<()> {
    eprintln!("compare: installing Debian's {ETCD_PACKAGE} with apt-get: the side-by-side comparison runs a 3-member etcd next to monkd");
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    let sudo: &[&str] = if root {
        &[]
    } else if succeeds(Command::new("sudo").args(["-n", "true"])) {
        &["sudo", "-n"]
    } else {
        bail!("installing {ETCD_PACKAGE} needs root; run: sudo apt-get install -y {ETCD_PACKAGE}");
    };
    for args in [
        &["apt-get", "update", "-qq"][..],
        &[
            "apt-get",
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            ETCD_PACKAGE,
        ],
    ] {
        let argv: Vec<&str> = sudo.iter().chain(args).copied().collect();
        let status = Command::new(argv[0])
            .args(&argv[1..])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .status()
            .with_context(|| format!("running {}", argv.join(" ")))?;
        if !status.success() {
            bail!("`{}` failed: {status}", argv.join(" "));
        }
    }
    Ok(())
}

/// `etcd 3.4.23`, from `etcd --version`'s first line.
pub fn version(binary: &Path) -> String {
    Command::new(binary)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|text| {
            let first = text.lines().next()?;
            Some(format!(
                "etcd {}",
                first.trim_start_matches("etcd Version:").trim()
            ))
        })
        .unwrap_or_else(|| "etcd (version unknown)".into())
}

/// One member: its process (while it runs) and how to start it again.
struct Member {
    command: Vec<String>,
    log: PathBuf,
    client_url: String,
    child: Option<Child>,
}

impl Member {
    fn spawn(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("{}", self.log.display()))?;
        let child = Command::new(&self.command[0])
            .args(&self.command[1..])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.command[0]))?;
        self.child = Some(child);
        Ok(())
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A 3-member etcd on loopback, data dirs under one root.
pub struct EtcdCluster {
    members: Vec<Member>,
}

impl EtcdCluster {
    /// Starts the members and waits for a leader.
    pub async fn start(binary: &Path, root: &Path) -> Result<EtcdCluster> {
        std::fs::create_dir_all(root)?;
        let ports: Vec<(u16, u16)> = (0..MEMBERS)
            .map(|_| {
                (
                    monk_testkit::process::free_port(),
                    monk_testkit::process::free_port(),
                )
            })
            .collect();
        let initial: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("e{i}=http://127.0.0.1:{peer}"))
            .collect();
        let token = format!("monk-compare-{}", std::process::id());
        let members = ports
            .iter()
            .enumerate()
            .map(|(i, (client, peer))| {
                let client_url = format!("http://127.0.0.1:{client}");
                let peer_url = format!("http://127.0.0.1:{peer}");
                let data_dir = root.join(format!("e{i}"));
                let command = [
                    binary.to_string_lossy().as_ref(),
                    "--name",
                    &format!("e{i}"),
                    "--data-dir",
                    &data_dir.to_string_lossy(),
                    "--listen-client-urls",
                    &client_url,
                    "--advertise-client-urls",
                    &client_url,
                    "--listen-peer-urls",
                    &peer_url,
                    "--initial-advertise-peer-urls",
                    &peer_url,
                    "--initial-cluster",
                    &initial.join(","),
                    "--initial-cluster-token",
                    &token,
                    "--initial-cluster-state",
                    "new",
                    "--logger",
                    "zap",
                ]
                .map(str::to_string)
                .to_vec();
                Member {
                    command,
                    log: root.join(format!("e{i}.log")),
                    client_url,
                    child: None,
                }
            })
            .collect();
        let mut cluster = EtcdCluster { members };
        for member in &mut cluster.members {
            member.spawn()?;
        }
        cluster.leader(START_TIMEOUT).await?;
        Ok(cluster)
    }

    /// The client URL of member `slot`.
    pub fn url(&self, slot: usize) -> &str {
        &self.members[slot].client_url
    }
}

impl Side for EtcdCluster {
    type Writer = EtcdWriter;
    const NAME: &'static str = "etcd";

    /// The members still running.
    fn running(&self) -> Vec<usize> {
        (0..self.members.len())
            .filter(|&i| self.members[i].child.is_some())
            .collect()
    }

    /// SIGKILL of member `slot`.
    fn kill(&mut self, slot: usize) {
        self.members[slot].kill();
    }

    /// Starts member `slot` again on its data dir.
    fn restart(&mut self, slot: usize) -> Result<()> {
        self.members[slot].spawn()
    }

    /// The slot of the member that leads (as it says itself), waiting up to `limit`.
    async fn leader(&self, limit: Duration) -> Result<usize> {
        let deadline = Instant::now() + limit;
        loop {
            for slot in self.running() {
                if let Ok(status) = status(self.url(slot)).await {
                    let me = status.header.map(|h| h.member_id);
                    if status.leader != 0 && me == Some(status.leader) {
                        return Ok(slot);
                    }
                }
            }
            if Instant::now() >= deadline {
                bail!("etcd elected no leader within {limit:?} (logs next to its data dirs)");
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Whether member `slot` answers and knows a leader.
    async fn rejoined(&self, slot: usize) -> bool {
        status(self.url(slot)).await.is_ok_and(|s| s.leader != 0)
    }

    /// A writer connected to member `slot`, putting under `prefix`.
    async fn writer(&self, slot: usize, prefix: &str) -> Result<EtcdWriter> {
        Ok(EtcdWriter {
            kv: KvClient::new(channel(self.url(slot)).await?),
            prefix: prefix.to_string(),
            value: vec![b'v'; VALUE_BYTES],
        })
    }

    /// Reads back every key under `prefix` through member `slot` (a linearizable range)
    /// and fails unless each acknowledged ticket's key is there.
    async fn check_present(&self, slot: usize, prefix: &str, acked: &[u64]) -> Result<()> {
        let mut kv = KvClient::new(channel(self.url(slot)).await?)
            .max_decoding_message_size(RANGE_REPLY_BYTES_MAX);
        let mut range_end = prefix.as_bytes().to_vec();
        if let Some(last) = range_end.last_mut() {
            *last += 1;
        }
        let reply = kv
            .range(RangeRequest {
                key: prefix.as_bytes().to_vec(),
                range_end,
                keys_only: true,
                ..RangeRequest::default()
            })
            .await
            .context("etcd range")?
            .into_inner();
        let present: BTreeSet<Vec<u8>> = reply.kvs.into_iter().map(|kv| kv.key).collect();
        let missing: Vec<u64> = acked
            .iter()
            .copied()
            .filter(|t| !present.contains(key(prefix, *t).as_bytes()))
            .collect();
        if !missing.is_empty() {
            bail!(
                "etcd lost {} of {} acknowledged puts under {prefix} (first: ticket {})",
                missing.len(),
                acked.len(),
                missing[0]
            );
        }
        Ok(())
    }
}

use pb::RangeRequest;

/// The largest range reply the check reads: keys only, 20-odd bytes each, so room for
/// about a million acknowledged puts per round.
const RANGE_REPLY_BYTES_MAX: usize = 64 << 20;

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for member in &mut self.members {
            member.kill();
        }
    }
}

/// A plaintext HTTP/2 channel to `url` (etcd's default: no TLS on loopback) with
/// `TCP_NODELAY`, as every etcd client has.
async fn channel(url: &str) -> Result<Channel> {
    Endpoint::from_shared(url.to_string())?
        .tcp_nodelay(true)
        .connect_timeout(RPC_TIMEOUT)
        .timeout(RPC_TIMEOUT)
        .connect()
        .await
        .with_context(|| format!("connecting to etcd at {url}"))
}

async fn status(url: &str) -> Result<pb::StatusResponse> {
    let mut client = MaintenanceClient::new(channel(url).await?);
    Ok(client.status(pb::StatusRequest {}).await?.into_inner())
}

fn key(prefix: &str, ticket: u64) -> String {
    format!("{prefix}{ticket:010}")
}

/// One client: 64-byte puts of distinct keys on one connection.
#[derive(Clone)]
pub struct EtcdWriter {
    kv: KvClient<Channel>,
    prefix: String,
    value: Vec<u8>,
}

impl Writer for EtcdWriter {
    async fn write(&mut self, ticket: u64) -> Result<u64, String> {
        let request = pb::PutRequest {
            key: key(&self.prefix, ticket).into_bytes(),
            value: self.value.clone(),
        };
        self.kv
            .put(request)
            .await
            .map(|_| ticket)
            .map_err(|s| format!("etcd put: {}: {}", s.code(), s.message()))
    }
}
