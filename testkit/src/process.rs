//! `monkd` processes for tests and drills: each on a loopback port of its own with a data
//! dir that outlives it (so it can be restarted on it), its stderr in `<data dir>.log`.
//! Every wait is bounded; a process is SIGKILLed when its [`Monkd`] drops.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::cli::{monk, monk_anonymous};

/// How long a started `monkd` may take to answer `monk cluster info`.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a SIGTERMed `monkd` may take to shut down cleanly.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(15);
/// Pause between two looks in [`wait_for`].
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// A binary of the workspace (`monk`, `monkd`) next to the running test or drill
/// (`target/<profile>/`), as `cargo test --workspace` and `cargo build --workspace
/// --bins` leave it.
pub fn binary(name: &str) -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    exe.ancestors()
        .skip(1)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "no {name} binary near {}: run `cargo build --workspace --bins` (or `cargo test --workspace`) first",
                exe.display()
            )
        })
}

/// [`binary`] or a panic saying how to build it.
pub fn binary_or_panic(name: &str) -> PathBuf {
    binary(name).unwrap_or_else(|e| panic!("{e}"))
}

/// The root dir of each peer started here, by address: `monk` run against a peer keeps
/// its credentials in that root (`<root>/.config`), so tests running side by side in
/// one process never see each other's clusters, and none touches the user's home.
static ROOTS: Mutex<BTreeMap<String, PathBuf>> = Mutex::new(BTreeMap::new());
/// The data dir of each peer started here, by address.
static DATA_DIRS: Mutex<BTreeMap<String, PathBuf>> = Mutex::new(BTreeMap::new());

/// `XDG_CONFIG_HOME` for `monk` run against `addr`: the peer's root's `.config`, or for
/// an address started elsewhere a scratch dir of this process.
pub fn config_home(addr: &str) -> PathBuf {
    let roots = ROOTS.lock().unwrap_or_else(|p| p.into_inner());
    match roots.get(addr) {
        Some(root) => root.join(".config"),
        None => std::env::temp_dir().join(format!("monk-test-config-{}", std::process::id())),
    }
}

/// Makes `monk` against `addr` keep its credentials under `root` (see [`config_home`]).
pub fn register_root(addr: &str, root: &Path) {
    ROOTS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(addr.to_string(), root.to_path_buf());
}

/// The credential `monk` would use with the peer at `addr` (the one `cluster new`
/// kept in its root's store: the file listing `addr`, else the only one).
pub fn credential_for(addr: &str) -> Result<monk_node::trust::credentials::Credential, String> {
    use monk_node::trust::credentials::Credential;
    let dir = config_home(addr).join("monk").join("credentials");
    let found: Vec<Credential> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .filter_map(|e| Credential::load(&e.path()).ok())
        .collect();
    let listed = found.iter().find(|c| c.peers.iter().any(|p| p == addr));
    match (listed, found.as_slice()) {
        (Some(c), _) | (None, [c]) => Ok(c.clone()),
        _ => Err(format!("no credential for {addr} in {}", dir.display())),
    }
}

/// A client of the peer at `addr` with [`credential_for`]`(addr)`.
pub async fn admin_client(addr: &str) -> Result<monk_node::MonkClient, String> {
    let dialer = credential_for(addr)?.dialer().map_err(|e| e.to_string())?;
    monk_node::MonkClient::connect(addr, &dialer).await
}

/// A client of the peer at `addr` that calls as that peer itself, with the certificate
/// in its data dir (as anyone with that machine's root could): for tests that must send
/// what only peers send (executor reports, a chosen actor, raw sealed secrets).
pub async fn peer_client(addr: &str) -> Result<monk_node::MonkClient, String> {
    let data_dir = DATA_DIRS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(addr)
        .cloned()
        .ok_or_else(|| format!("no peer started here at {addr}"))?;
    let identity = monk_node::identity::load(&data_dir)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{}: not in a cluster", data_dir.display()))?;
    let trust = monk_node::trust::Trust::open(&data_dir, Some(&identity.cluster_name))
        .map_err(|e| e.to_string())?;
    let dialer = trust.peer_dialer().map_err(|e| e.to_string())?;
    monk_node::MonkClient::connect(addr, &dialer).await
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral loopback port")
}

/// Waits until `condition` holds, looking every [`POLL_INTERVAL`]; panics naming `what`
/// after `limit`.
pub fn wait_for(limit: Duration, mut condition: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(POLL_INTERVAL);
    }
}

fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status();
}

/// One `monkd` process on a loopback address and a data dir that outlives it.
pub struct Monkd {
    pub name: String,
    pub data_dir: PathBuf,
    pub addr: String,
    /// Extra `monkd` flags used on every (re)start.
    pub extra_args: Vec<String>,
    /// What `monkd` is started through (e.g. `nsenter --net=/var/run/netns/NAME`, for a
    /// peer in a network namespace); empty: directly.
    pub launcher: Vec<String>,
    /// Extra environment for every (re)start (e.g. the test clock offset).
    pub env: Vec<(String, String)>,
    bin: PathBuf,
    child: Option<Child>,
}

impl Monkd {
    /// A peer named `name` with its data dir under `root`; not started yet. Peers on
    /// loopback share the machine's network namespace with every other test, so they
    /// take no part in the overlay (`--no-overlay`); the three-host bed's do.
    pub fn new(root: &Path, name: &str, extra: &[&str]) -> Result<Monkd, String> {
        let mut args = vec!["--no-overlay"];
        args.extend_from_slice(extra);
        Monkd::at(
            root,
            name,
            &format!("127.0.0.1:{}", free_port()),
            &[],
            &args,
        )
    }

    /// A peer named `name` listening on `addr`, started through `launcher` (see
    /// [`Monkd::launcher`]), with its data dir under `root`; not started yet.
    pub fn at(
        root: &Path,
        name: &str,
        addr: &str,
        launcher: &[&str],
        extra: &[&str],
    ) -> Result<Monkd, String> {
        let addr = addr.to_string();
        register_root(&addr, root);
        DATA_DIRS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(addr.clone(), root.join(name));
        Ok(Monkd {
            name: name.into(),
            data_dir: root.join(name),
            addr,
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
            launcher: launcher.iter().map(|s| s.to_string()).collect(),
            env: Vec::new(),
            bin: binary("monkd")?,
            child: None,
        })
    }

    /// Starts a peer and waits until it answers.
    pub fn start(root: &Path, name: &str) -> Monkd {
        Monkd::start_with(root, name, &[])
    }

    /// Starts a peer with extra `monkd` flags (kept for restarts) and waits until it
    /// answers.
    pub fn start_with(root: &Path, name: &str, extra: &[&str]) -> Monkd {
        let mut peer = Monkd::new(root, name, extra).unwrap_or_else(|e| panic!("{e}"));
        peer.restart();
        peer
    }

    fn command(&self) -> Result<Command, String> {
        let data_dir = self.data_dir.to_str().ok_or("a non-UTF-8 data dir")?;
        let mut command = match self.launcher.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                // Its own process group: a bed kept for a person outlives the terminal
                // that started it.
                c.args(args).arg(&self.bin).process_group(0);
                c
            }
            None => Command::new(&self.bin),
        };
        command
            .args(["--data-dir", data_dir, "--listen", &self.addr])
            .args(["--name", &self.name])
            .args(&self.extra_args)
            .env("MONK_LOG", "info,openraft=warn")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        Ok(command)
    }

    /// Starts `monkd` on this peer's data dir and address (again, after a kill),
    /// without waiting for it.
    pub fn spawn(&mut self) -> Result<(), String> {
        std::fs::create_dir_all(&self.data_dir).map_err(|e| e.to_string())?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data_dir.with_extension("log"))
            .map_err(|e| e.to_string())?;
        let child = self
            .command()?
            .stderr(log)
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", self.bin.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// Starts (again) on the same data dir and address and waits until it answers.
    pub fn restart(&mut self) {
        self.spawn().unwrap_or_else(|e| panic!("{e}"));
        wait_for(
            START_TIMEOUT,
            || {
                monk_anonymous(&self.addr, &["cluster", "info"])
                    .status
                    .success()
            },
            &format!("{} to answer", self.name),
        );
    }

    /// Waits up to `limit` for the process to exit on its own; its exit status, or
    /// `None` while it still runs.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            let child = self.child.as_mut()?;
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Lets the process run on after this value drops (a test bed kept for a person).
    pub fn detach(&mut self) {
        self.child = None;
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM; the graceful shutdown must end with exit status 0 within
    /// [`SHUTDOWN_TIMEOUT`].
    pub fn terminate(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        signal(child.id(), "TERM");
        let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                assert!(
                    status.success(),
                    "{} did not shut down cleanly on SIGTERM: {status}",
                    self.name
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("{} ignored SIGTERM for {SHUTDOWN_TIMEOUT:?}", self.name);
    }

    /// SIGSTOP: the process stays, frozen (a paused VM, a long GC).
    pub fn pause(&self) {
        if let Some(pid) = self.pid() {
            signal(pid, "STOP");
        }
    }

    /// SIGCONT after [`Monkd::pause`].
    pub fn resume(&self) {
        if let Some(pid) = self.pid() {
            signal(pid, "CONT");
        }
    }

    /// Runs `monk` against this peer.
    pub fn monk(&self, args: &[&str]) -> std::process::Output {
        monk(&self.addr, args)
    }

    /// What `monkd` wrote to stderr, over every start.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.data_dir.with_extension("log")).unwrap_or_default()
    }

    /// Starts `monkd` on this peer's data dir expecting it to refuse to start (a
    /// corrupt log, a newer format); its exit status and stderr.
    pub fn start_expecting_refusal(&self) -> (ExitStatus, String) {
        let mut child = self
            .command()
            .and_then(|mut c| {
                c.stderr(Stdio::piped())
                    .spawn()
                    .map_err(|e| format!("spawn monkd: {e}"))
            })
            .unwrap_or_else(|e| panic!("{e}"));
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                if let Some(stderr) = child.stderr.as_mut() {
                    let _ = std::io::Read::read_to_string(stderr, &mut err);
                }
                return (status, err);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("monkd kept running on {}", self.data_dir.display());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Monkd {
    fn drop(&mut self) {
        self.kill();
    }
}
