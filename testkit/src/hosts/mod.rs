//! A bed of hosts on one machine, for every multi-peer test (and, through
//! `scripts/hosts`, for a person): each host is a network namespace joined to a bridge
//! in the root namespace by a veth pair, with its own `dockerd` (its own data root,
//! exec root, socket, engine ID and cgroup parent; the local busybox image loaded) and
//! its own `monkd` (`--moby-socket` on that engine, listening on the host's address),
//! and the cluster formed through the CLI the way a person would: `cluster new` and
//! `cluster join` run inside the peer's namespace against its own address (setting up a
//! peer is allowed only from its own machine), `cluster token` from the root namespace
//! with the stored admin credential. The bridge holds `10.213.K.1/24` in the root
//! namespace (K claimed per bed in [`REGISTRY`], so beds side by side never share a
//! subnet), host N is `10.213.K.(N+1)`, its peer listens on [`PEER_PORT`] there.
//!
//! Everything the bed makes carries its suffix (`<pid>x<counter>`): the namespaces
//! `monk-<suffix>-hostN`, the bridge `mb<suffix>`, the veths `mv<suffix>hN`, the cgroups
//! `monk-<suffix>-hostN`, a `FORWARD` accept rule commented `monk-hosts-<suffix>` (with
//! `br_netfilter`, bridged traffic crosses the root namespace's `FORWARD` chain, whose
//! policy Docker sets to drop). A record in [`REGISTRY`] is written before anything is
//! made and removed last. [`HostBed`]'s `Drop` tears it all down (processes killed by
//! namespace and by cgroup, mounts under its dir unmounted, links, rules, namespaces,
//! record); [`HostBed::start`] first tears down what dead runs left (a record whose
//! owner process is gone, or a named thing with no record), so a SIGKILLed test costs
//! nothing later. A bed [`HostBed::keep`]s is left alone until [`tear_down_dir`].

mod cleanup;
mod command;

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use std::os::unix::process::CommandExt;

use serde_json::{json, Value};

use crate::process::{binary, config_home, Monkd, POLL_INTERVAL};

use cleanup::{
    bridged_traffic_filtered, claim_subnet, forward_rule, process_start, record_path, tear_down,
};
pub use cleanup::{leftovers, sweep_dead};
pub use command::run;
use command::{ip, ok, succeeded, wait_child};

/// At most this many hosts: the host number is one digit of a veth's name, which Linux
/// limits to 15 bytes.
pub const HOSTS_MAX: usize = 9;
/// The image every engine of the bed holds (built by `scripts/busybox-image`).
pub const IMAGE: &str = "monk-local/busybox:1";
/// Where the beds' records live (one JSON file per bed, and the subnet claims).
pub const REGISTRY: &str = "/run/monk-hosts";
/// The port every peer listens on, at its host's address.
pub const PEER_PORT: u16 = 44001;
/// How long a `dockerd` may take to answer (it takes about half a second).
pub const ENGINE_START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long any one command the bed runs may take (`ip`, `docker load`, `monk`).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the formed cluster may take to show every peer up.
pub const FORM_TIMEOUT: Duration = Duration::from_secs(30);
/// How long killed processes may take to be gone before the teardown goes on anyway.
pub const KILL_TIMEOUT: Duration = Duration::from_secs(10);
/// The third byte of a bed's underlay subnet `10.213.K.0/24` (claimed in [`REGISTRY`]).
const SUBNETS: RangeInclusive<u8> = 1..=250;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// One host of the bed.
#[derive(Clone, Debug)]
pub struct Host {
    /// The peer's name (`host1`, ...).
    pub name: String,
    /// The network namespace (`/var/run/netns/<netns>`).
    pub netns: String,
    /// The host's address on the bridge.
    pub ip: String,
    /// The peer's API address, reachable from the root namespace.
    pub addr: String,
    /// `unix://` + the host's Docker socket.
    pub docker_host: String,
}

impl Host {
    /// `nsenter --net=...`: runs what follows inside this host's network namespace.
    pub fn launcher(&self) -> Vec<String> {
        vec![
            "nsenter".into(),
            format!("--net=/var/run/netns/{}", self.netns),
        ]
    }

    /// Whether one ping from this host's namespace reaches `address` within 3 s.
    pub fn ping(&self, address: &str) -> bool {
        run(
            Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &self.netns,
                    "busybox",
                    "ping",
                    "-c",
                    "1",
                    "-W",
                    "3",
                ])
                .arg(address),
            COMMAND_TIMEOUT,
        )
        .is_ok_and(|o| o.status.success())
    }

    /// Runs `docker ARGS` against this host's engine.
    pub fn docker(&self, args: &[&str]) -> Result<Output, String> {
        run(
            Command::new("docker")
                .args(["-H", &self.docker_host])
                .args(args),
            COMMAND_TIMEOUT,
        )
    }

    /// Runs `monk --addr <this peer> ARGS` inside this host's namespace (as on the
    /// peer's own machine), with the bed's credentials.
    pub fn monk_local(&self, args: &[&str]) -> Result<Output, String> {
        let launcher = self.launcher();
        let mut command = Command::new(&launcher[0]);
        command
            .args(&launcher[1..])
            .arg(binary("monk")?)
            .args(["--addr", &self.addr])
            .args(args)
            .env("XDG_CONFIG_HOME", config_home(&self.addr))
            .env_remove("MONK_CREDENTIALS");
        run(&mut command, COMMAND_TIMEOUT)
    }

    fn json(&self) -> Value {
        json!({
            "name": self.name,
            "netns": self.netns,
            "addr": self.addr,
            "docker_host": self.docker_host,
        })
    }
}

/// A running bed: hosts, their engines and peers, one formed cluster.
pub struct HostBed {
    pub hosts: Vec<Host>,
    /// The peers, in host order (restart, kill, pause them as any [`Monkd`]).
    pub peers: Vec<Monkd>,
    pub cluster: String,
    /// What every name of this bed carries.
    pub suffix: String,
    /// The bridge in the root namespace.
    pub bridge: String,
    /// Where data dirs, engines and logs live.
    pub dir: PathBuf,
    subnet: Option<u8>,
    engines: Vec<Child>,
    kept: bool,
}

impl HostBed {
    /// Starts `n` hosts under `root` (data dirs, engines, logs) and forms their cluster;
    /// first tears down what dead runs of the bed left. On an error, whatever was made
    /// is torn down.
    pub fn start(root: &Path, n: usize) -> Result<HostBed, String> {
        if n == 0 || n > HOSTS_MAX {
            return Err(format!("a bed has 1 to {HOSTS_MAX} hosts, not {n}"));
        }
        sweep_dead();
        std::fs::create_dir_all(root).map_err(|e| format!("{}: {e}", root.display()))?;
        let dir = std::fs::canonicalize(root).map_err(|e| e.to_string())?;
        std::fs::create_dir_all(REGISTRY).map_err(|e| format!("{REGISTRY}: {e}"))?;
        let suffix = format!(
            "{}x{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut bed = HostBed {
            hosts: Vec::new(),
            peers: Vec::new(),
            cluster: format!("hosts-{suffix}"),
            bridge: format!("mb{suffix}"),
            suffix,
            dir,
            subnet: None,
            engines: Vec::new(),
            kept: false,
        };
        // The record first: from here on a sweep knows whose things these are, and an
        // error drops `bed`, which tears down whatever was made.
        match bed.bring_up(n) {
            Ok(()) => Ok(bed),
            Err(e) => Err(format!("bed {}: {e}", bed.suffix)),
        }
    }

    fn bring_up(&mut self, n: usize) -> Result<(), String> {
        self.write_record()?;
        self.subnet = Some(claim_subnet(&self.suffix)?);
        self.write_record()?;
        self.make_network(n)?;
        self.start_engines()?;
        // The image goes into the engines while the peers start and form (it is needed
        // only when a test runs something): a second off a three-host start.
        let (dir, hosts) = (self.dir.clone(), self.hosts.clone());
        std::thread::scope(|scope| {
            let loading = scope.spawn(|| load_image(&dir, &hosts));
            let formed = self.start_peers().and_then(|()| self.form_cluster());
            let loaded = loading
                .join()
                .unwrap_or_else(|_| Err("loading the image panicked".into()));
            formed.and(loaded)
        })?;
        self.write_record()
    }

    /// [`HostBed::start`], or `None` when [`usable`] says no bed can run here. A bed
    /// that could run but fails to start is a panic.
    pub fn start_or_skip(root: &Path, n: usize) -> Option<HostBed> {
        if !usable() {
            return None;
        }
        Some(HostBed::start(root, n).unwrap_or_else(|e| panic!("the host bed: {e}")))
    }

    /// The host named `name`.
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// The index of the host whose peer leads, as the peer at `ask` (an index) sees it.
    pub fn leader(&self, ask: usize) -> Option<usize> {
        let out = crate::cli::monk(
            &self.hosts.get(ask)?.addr,
            &["cluster", "peers", "-o", "json"],
        );
        let peers: Value = serde_json::from_slice(&out.stdout).ok()?;
        let name = peers.as_array()?.iter().find(|p| p["role"] == "leader")?["name"]
            .as_str()?
            .to_string();
        self.hosts.iter().position(|h| h.name == name)
    }

    /// Cuts host `i` (0-based) off the bridge: its link in the root namespace goes
    /// down, so nothing reaches it and it reaches nothing, while its engine, peer and
    /// containers keep running (a partition, not a crash).
    pub fn cut(&self, i: usize) -> Result<(), String> {
        ip(&[
            "link",
            "set",
            &format!("mv{}h{}", self.suffix, i + 1),
            "down",
        ])
        .map(|_| ())
    }

    /// Joins host `i` to the bridge again after [`HostBed::cut`].
    pub fn heal(&self, i: usize) -> Result<(), String> {
        ip(&["link", "set", &format!("mv{}h{}", self.suffix, i + 1), "up"]).map(|_| ())
    }

    /// The process ids of the engines (`dockerd`) and peers (`monkd`) started.
    pub fn pids(&self) -> Vec<u32> {
        self.engines
            .iter()
            .map(Child::id)
            .chain(self.peers.iter().filter_map(Monkd::pid))
            .collect()
    }

    /// What `up` prints: `{"hosts": [{"name", "netns", "addr", "docker_host"}],
    /// "cluster", "credentials"}`.
    pub fn describe(&self) -> Value {
        let credentials = self
            .hosts
            .first()
            .and_then(|h| credential_file(&h.addr))
            .map(|p| p.display().to_string());
        json!({
            "hosts": self.hosts.iter().map(Host::json).collect::<Vec<_>>(),
            "cluster": self.cluster,
            "credentials": credentials,
        })
    }

    /// Leaves everything running after this process exits (for a person); only
    /// [`tear_down_dir`] on [`HostBed::dir`] removes it.
    pub fn keep(mut self) -> Result<Value, String> {
        self.kept = true;
        self.write_record()?;
        for peer in &mut self.peers {
            peer.detach();
        }
        self.engines.clear();
        Ok(self.describe())
    }

    fn record(&self) -> Value {
        json!({
            "suffix": self.suffix,
            "owner_pid": std::process::id(),
            "owner_start": process_start(std::process::id()),
            "kept": self.kept,
            "dir": self.dir.display().to_string(),
            "subnet": self.subnet,
            "bed": self.describe(),
        })
    }

    fn write_record(&self) -> Result<(), String> {
        let text = self.record().to_string();
        for path in [record_path(&self.suffix), self.dir.join(RECORD_FILE)] {
            // Whole or not at all: a sweep in another process that read half a record
            // would take a live bed for a dead one.
            let partial = path.with_extension("partial");
            std::fs::write(&partial, &text)
                .and_then(|()| std::fs::rename(&partial, &path))
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(())
    }

    fn make_network(&mut self, n: usize) -> Result<(), String> {
        let subnet = self.subnet.ok_or("no subnet claimed")?;
        let (s, bridge) = (self.suffix.clone(), self.bridge.clone());
        ip(&["link", "add", &bridge, "type", "bridge"])?;
        ip(&[
            "addr",
            "add",
            &format!("10.213.{subnet}.1/24"),
            "dev",
            &bridge,
        ])?;
        ip(&["link", "set", &bridge, "up"])?;
        if bridged_traffic_filtered() {
            ok(Command::new("iptables").args(forward_rule("-I", &s)))?;
        }
        for i in 1..=n {
            let name = format!("host{i}");
            let netns = format!("monk-{s}-{name}");
            let veth = format!("mv{s}h{i}");
            let host_ip = format!("10.213.{subnet}.{}", i + 1);
            ip(&["netns", "add", &netns])?;
            ip(&[
                "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &netns,
            ])?;
            ip(&["link", "set", &veth, "master", &bridge, "up"])?;
            ip(&[
                "-n",
                &netns,
                "addr",
                "add",
                &format!("{host_ip}/24"),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &netns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &netns, "link", "set", "lo", "up"])?;
            let socket = self.engine_dir(&name).join("docker.sock");
            self.hosts.push(Host {
                addr: format!("{host_ip}:{PEER_PORT}"),
                docker_host: format!("unix://{}", socket.display()),
                ip: host_ip,
                netns,
                name,
            });
        }
        Ok(())
    }

    fn engine_dir(&self, host: &str) -> PathBuf {
        self.dir.join(format!("{host}.docker"))
    }

    fn start_engines(&mut self) -> Result<(), String> {
        for host in self.hosts.clone() {
            let dir = self.engine_dir(&host.name);
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            // containerd's socket under the exec root is the longest path a Unix socket
            // of the engine gets; Linux allows 107 bytes.
            let longest = dir.join("x/containerd/containerd.sock.ttrpc");
            if longest.as_os_str().len() > 107 {
                return Err(format!(
                    "{} is too deep for the engine's Unix sockets; use a shorter dir",
                    self.dir.display()
                ));
            }
            // vfs: any filesystem under the data root works, and the image is 2 MB.
            // Its own key gives the engine its own ID; its own cgroup parent lets the
            // teardown find its containers' processes.
            let config = json!({
                "storage-driver": "vfs",
                "cgroup-parent": format!("/monk-{}-{}", self.suffix, host.name),
                "deprecated-key-path": dir.join("key.json"),
                "shutdown-timeout": 2,
                "log-driver": "json-file",
            });
            let config_file = dir.join("daemon.json");
            std::fs::write(&config_file, config.to_string()).map_err(|e| e.to_string())?;
            let log = std::fs::File::create(dir.join("dockerd.log")).map_err(|e| e.to_string())?;
            let log_err = log.try_clone().map_err(|e| e.to_string())?;
            let launcher = host.launcher();
            let child = Command::new(&launcher[0])
                .args(&launcher[1..])
                .arg("dockerd")
                .arg("--config-file")
                .arg(&config_file)
                .arg("--data-root")
                .arg(dir.join("data"))
                .arg("--exec-root")
                .arg(dir.join("x"))
                .args(["-H", &host.docker_host])
                .arg("--pidfile")
                .arg(dir.join("docker.pid"))
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log_err)
                .process_group(0)
                .spawn()
                .map_err(|e| format!("start dockerd in {}: {e}", host.netns))?;
            self.engines.push(child);
        }
        for (i, host) in self.hosts.clone().iter().enumerate() {
            let deadline = Instant::now() + ENGINE_START_TIMEOUT;
            loop {
                if host.docker(&["version"]).is_ok_and(|o| o.status.success()) {
                    break;
                }
                let exited = self.engines[i].try_wait().ok().flatten();
                if exited.is_some() || Instant::now() > deadline {
                    let log = self.engine_dir(&host.name).join("dockerd.log");
                    return Err(format!(
                        "dockerd of {} did not answer ({}); its log:\n{}",
                        host.name,
                        exited.map_or("timed out".into(), |s| s.to_string()),
                        tail(&log)
                    ));
                }
                std::thread::sleep(POLL_INTERVAL / 4);
            }
        }
        Ok(())
    }

    fn start_peers(&mut self) -> Result<(), String> {
        for host in &self.hosts {
            let launcher = host.launcher();
            let launcher: Vec<&str> = launcher.iter().map(String::as_str).collect();
            let socket = host.docker_host.trim_start_matches("unix://");
            let mut peer = Monkd::at(
                &self.dir,
                &host.name,
                &host.addr,
                &launcher,
                &["--moby-socket", socket],
            )?;
            peer.spawn()?;
            self.peers.push(peer);
        }
        for peer in &self.peers {
            let deadline = Instant::now() + crate::process::START_TIMEOUT;
            while !monk_at(&peer.addr, &["cluster", "info"]).is_ok_and(|o| o.status.success()) {
                if Instant::now() > deadline {
                    return Err(format!(
                        "monkd {} did not answer at {}; its log:\n{}",
                        peer.name,
                        peer.addr,
                        tail(&peer.data_dir.with_extension("log"))
                    ));
                }
                std::thread::sleep(POLL_INTERVAL / 2);
            }
        }
        Ok(())
    }

    fn form_cluster(&self) -> Result<(), String> {
        let (first, others) = self.hosts.split_first().ok_or("no hosts")?;
        succeeded(first.monk_local(&["cluster", "new", "--name", &self.cluster])?)?;
        for host in others {
            let token = succeeded(monk_at(&first.addr, &["cluster", "token"])?)?;
            succeeded(host.monk_local(&["cluster", "join", "--token", token.trim()])?)?;
        }
        let deadline = Instant::now() + FORM_TIMEOUT;
        loop {
            let peers = monk_at(&first.addr, &["cluster", "peers", "-o", "json"])
                .ok()
                .filter(|o| o.status.success())
                .and_then(|o| serde_json::from_slice::<Value>(&o.stdout).ok());
            let up = peers
                .as_ref()
                .and_then(Value::as_array)
                .map_or(0, |a| a.iter().filter(|p| p["up"] == true).count());
            if up == self.hosts.len() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "after {FORM_TIMEOUT:?} the cluster shows {up} of {} peers up: {peers:?}",
                    self.hosts.len()
                ));
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }
}

impl Drop for HostBed {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        for peer in &mut self.peers {
            peer.kill();
        }
        for engine in &mut self.engines {
            let _ = engine.kill();
            let _ = engine.wait();
        }
        tear_down(&self.suffix, Some(&self.dir));
    }
}

/// Loads [`IMAGE`] (built in the machine's engine if missing) into every host's engine.
fn load_image(dir: &Path, hosts: &[Host]) -> Result<(), String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/busybox-image");
    ok(Command::new("bash").arg(script).arg(IMAGE))?;
    let tar = dir.join("image.tar");
    ok(Command::new("docker")
        .args(["save", "-o"])
        .arg(&tar)
        .arg(IMAGE))?;
    let loads: Vec<(String, Child)> = hosts
        .iter()
        .map(|h| {
            Command::new("docker")
                .args(["-H", &h.docker_host, "load", "-q", "-i"])
                .arg(&tar)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map(|c| (h.name.clone(), c))
                .map_err(|e| format!("docker load: {e}"))
        })
        .collect::<Result<_, _>>()?;
    for (name, child) in loads {
        let status = wait_child(child, COMMAND_TIMEOUT)?;
        if !status.success() {
            return Err(format!("loading {IMAGE} into {name}'s engine: {status}"));
        }
    }
    Ok(())
}

/// The record a bed keeps in its own dir (what `scripts/hosts down` reads).
pub const RECORD_FILE: &str = "bed.json";

/// The description ([`HostBed::describe`]) of the kept bed in `dir`, if one is up.
pub fn kept_in(dir: &Path) -> Option<Value> {
    let record: Value = serde_json::from_slice(&std::fs::read(dir.join(RECORD_FILE)).ok()?).ok()?;
    let suffix = record["suffix"].as_str()?;
    // After a reboot the record outlives the namespaces: that bed is gone.
    let netns = record["bed"]["hosts"][0]["netns"].as_str()?;
    let alive = record_path(suffix).exists() && Path::new("/var/run/netns").join(netns).exists();
    alive.then(|| record["bed"].clone())
}

/// Tears down the bed recorded in `dir` (kept or not) and removes `dir`; `false` when
/// `dir` holds no bed.
pub fn tear_down_dir(dir: &Path) -> Result<bool, String> {
    let Ok(text) = std::fs::read(dir.join(RECORD_FILE)) else {
        return Ok(false);
    };
    let dir = &std::fs::canonicalize(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let record: Value = serde_json::from_slice(&text).map_err(|e| e.to_string())?;
    let suffix = record["suffix"]
        .as_str()
        .ok_or("a bed record without a suffix")?;
    tear_down(suffix, Some(dir));
    std::fs::remove_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(true)
}

/// Whether a bed can run here; if not, prints why (no Docker engine, no `dockerd`, no
/// permission for `ip netns`), or with `MONK_REQUIRE_DOCKER=1` panics with it: CI
/// cannot go green by skipping.
pub fn usable() -> bool {
    let Some(reason) = unavailable() else {
        return true;
    };
    if std::env::var("MONK_REQUIRE_DOCKER").is_ok_and(|v| v == "1") {
        panic!("{reason}; MONK_REQUIRE_DOCKER=1 makes this a failure");
    }
    eprintln!("SKIPPED: {reason}");
    false
}

/// Why no bed can run on this machine, if so.
/// (Found once per process: tests starting beds side by side ask together.)
pub fn unavailable() -> Option<String> {
    static FOUND: OnceLock<Option<String>> = OnceLock::new();
    FOUND.get_or_init(find_unavailable).clone()
}

fn find_unavailable() -> Option<String> {
    let engine = run(
        Command::new("docker").args(["version", "--format", "{{.Server.Version}}"]),
        COMMAND_TIMEOUT,
    );
    if !engine.as_ref().is_ok_and(|o| o.status.success()) {
        let text = engine.map_or_else(|e| e, |o| crate::cli::stderr(&o));
        return Some(format!(
            "no Docker engine answers (`docker version`: {})",
            text.trim()
        ));
    }
    if !run(Command::new("dockerd").arg("--version"), COMMAND_TIMEOUT)
        .is_ok_and(|o| o.status.success())
    {
        return Some("no dockerd binary to start the hosts' engines".into());
    }
    let probe = format!("monk-probe-{}", std::process::id());
    if let Err(e) = ip(&["netns", "add", &probe]) {
        return Some(format!("no permission for `ip netns` ({e})"));
    }
    let _ = ip(&["netns", "del", &probe]);
    None
}

fn credential_file(addr: &str) -> Option<PathBuf> {
    let dir = config_home(addr).join("monk").join("credentials");
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
}

/// The last lines of a log file, for an error message.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// `monk --addr ADDR ARGS` from the root namespace with the bed's credentials.
fn monk_at(addr: &str, args: &[&str]) -> Result<Output, String> {
    run(
        Command::new(binary("monk")?)
            .args(["--addr", addr])
            .args(args)
            .env("XDG_CONFIG_HOME", config_home(addr))
            .env_remove("MONK_CREDENTIALS"),
        COMMAND_TIMEOUT,
    )
}
