//! `monk up` and `monk down`: from YAML to running in one command, as `docker compose
//! up` is. `up` starts an embedded single peer when none answers at `--addr` (a
//! detached `monkd` child on a data dir of the user's, its log and pid file beside
//! it; serving the cluster registry on a free loopback port when the files have
//! containers to build), creates the cluster if the peer is in none, builds and loads
//! the files as `monk load` does, runs (or, when already running, updates) what they define and waits as `monk
//! run` does, then prints what runs where. `down` stops what the files define, waits
//! until every replica reports `stopped` (its containers are gone), purges it, and with
//! `--all` also stops the embedded peer `up` started (never another `monkd`).

use std::collections::BTreeSet;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use clap::Args;
use monk_node::MonkClient;
use monk_scripting::tree::Tree;
use monk_statemachine::view::InstanceView;
use monk_statemachine::{Applied, Command, LoadedTemplate, Rejection, Workload};

use crate::stop::wait_stopped;
use crate::wait::replica_label;
use crate::workloads::{propose, replicas_of, state_text, wait_running, WaitArgs};
use crate::{actor, json, read_definitions, store_definitions, Failure, Outcome, Output};

/// How long a `monkd` that `up` started may take to answer: opening RocksDB and
/// starting Raft take about a second; thirty leave room for a slow disk or a loaded
/// machine without hanging a script for good.
const PEER_START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long `down --all` waits for a SIGTERMed `monkd` to exit: its graceful shutdown
/// drains in-flight requests and flushes RocksDB, a few seconds at most.
const PEER_STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Pause between two looks while waiting for a peer or for replicas to stop.
const POLL_INTERVAL: Duration = Duration::from_millis(300);

/// Lines of the embedded peer's log quoted when it exits at start.
const LOG_TAIL_LINES: usize = 10;

/// `monk up`.
#[derive(Args, Debug)]
pub struct UpArgs {
    /// MonkScript files, directories or MANIFESTs, checked and loaded as `monk load`
    /// does.
    files: Vec<PathBuf>,
    /// Run this runnable or group (default: the group when the files define exactly
    /// one, else every runnable they define).
    #[arg(long, value_name = "PATH")]
    run: Option<String>,
    /// Data dir of the embedded peer started when none answers at --addr (default:
    /// $XDG_DATA_HOME/monk, else ~/.local/share/monk); its log and pid file are
    /// beside it (DIR.log, DIR.pid).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Name of the cluster created when the peer is in none.
    #[arg(long, value_name = "NAME", default_value = "monk")]
    cluster: String,
    #[command(flatten)]
    wait: WaitArgs,
}

/// `monk down`.
#[derive(Args, Debug)]
pub struct DownArgs {
    /// The files `monk up` was given: their runnables and groups are stopped and
    /// purged.
    files: Vec<PathBuf>,
    /// Every workload of the cluster, then the embedded peer `monk up` started.
    #[arg(long)]
    all: bool,
    /// Return once stop and purge are committed, without waiting for the containers
    /// to be gone.
    #[arg(long, conflicts_with = "all")]
    no_wait: bool,
    /// Data dir of the embedded peer (as given to `monk up`).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

/// What `up` runs: `--run PATH`, else the one group the files define, else every
/// runnable they define.
fn targets(run: Option<&str>, templates: &[LoadedTemplate]) -> Result<Vec<String>, Failure> {
    if let Some(path) = run {
        return Ok(vec![path.trim_start_matches('/').to_string()]);
    }
    let of_kind = |kind: &str| -> Vec<String> {
        templates
            .iter()
            .filter(|t| t.kind == kind)
            .map(|t| t.path.clone())
            .collect()
    };
    let groups = of_kind("group");
    if groups.len() == 1 {
        return Ok(groups);
    }
    let runnables = of_kind("runnable");
    if runnables.is_empty() {
        return Err(Failure::failed(
            "the files define no runnable (and not exactly one group): nothing to run; \
             name one with --run PATH",
        ));
    }
    Ok(runnables)
}

/// The embedded peer's files: its data dir, and beside it its log and pid file.
struct Embedded {
    data_dir: PathBuf,
}

/// Alive and a `monkd` (a pid file may outlive its process, and the pid be reused).
/// Reads `/proc`: a zombie, already exited, counts as gone.
fn is_running_monkd(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
        return false;
    };
    let name = &stat[open + 1..close];
    let state = stat[close + 1..].trim_start().chars().next();
    name == "monkd" && state != Some('Z')
}

/// The data dir `monk up` gives the embedded peer without `--data-dir`.
pub fn default_data_dir() -> PathBuf {
    Embedded::at(None)
        .map(|e| e.data_dir)
        .unwrap_or_else(|_| PathBuf::from(".monk/data"))
}

impl Embedded {
    /// `--data-dir`, else `$XDG_DATA_HOME/monk`, else `~/.local/share/monk`.
    fn at(data_dir: Option<&Path>) -> Result<Embedded, Failure> {
        if let Some(dir) = data_dir {
            return Ok(Embedded {
                data_dir: dir.to_path_buf(),
            });
        }
        let xdg = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute());
        let home = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share"));
        xdg.or(home)
            .map(|base| Embedded {
                data_dir: base.join("monk"),
            })
            .ok_or_else(|| Failure::usage("neither XDG_DATA_HOME nor HOME is set: give --data-dir"))
    }

    fn beside(&self, extension: &str) -> PathBuf {
        let mut name = self.data_dir.clone().into_os_string();
        name.push(extension);
        PathBuf::from(name)
    }

    fn log(&self) -> PathBuf {
        self.beside(".log")
    }

    fn pid_file(&self) -> PathBuf {
        self.beside(".pid")
    }

    /// The pid of the `monkd` that `up` started on this data dir, if it still runs.
    fn running_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.pid_file()).ok()?;
        let pid: u32 = text.trim().parse().ok()?;
        is_running_monkd(pid).then_some(pid)
    }

    /// Starts a detached `monkd` (its own process group, so a Ctrl-C of `monk` does
    /// not reach it) listening on `addr`, writes its pid file, and waits until it
    /// answers.
    /// With `registry`, the peer also serves the cluster registry on a free loopback
    /// port (`--registry-listen`), so images built from `build:` can be pushed there.
    async fn start(&self, addr: &str, registry: bool) -> Result<(u32, MonkClient), Failure> {
        let listen: SocketAddr = addr
            .to_socket_addrs()
            .ok()
            .and_then(|mut all| all.next())
            .ok_or_else(|| Failure::usage(format!("--addr {addr}: cannot listen there")))?;
        let monkd = monkd_binary()?;
        let cannot = |what: &Path, e: std::io::Error| {
            Failure::failed(format!("cannot start monkd: {}: {e}", what.display()))
        };
        std::fs::create_dir_all(&self.data_dir).map_err(|e| cannot(&self.data_dir, e))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
            .map_err(|e| cannot(&self.log(), e))?;
        let mut command = Process::new(&monkd);
        if registry {
            let free = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| {
                    Failure::failed(format!("cannot find a free port for the registry: {e}"))
                })?;
            command.args(["--registry-listen", &free.to_string()]);
        }
        let mut child = command
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--listen", &listen.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()
            .map_err(|e| cannot(&monkd, e))?;
        let pid = child.id();
        std::fs::write(self.pid_file(), format!("{pid}\n"))
            .map_err(|e| cannot(&self.pid_file(), e))?;
        let began = Instant::now();
        loop {
            if let Some(client) = answering(addr).await {
                return Ok((pid, client));
            }
            if let Ok(Some(status)) = child.try_wait() {
                let _ = std::fs::remove_file(self.pid_file());
                return Err(Failure::failed(format!(
                    "monkd exited at start ({status}); the end of {}:\n{}",
                    self.log().display(),
                    log_tail(&self.log())
                )));
            }
            if began.elapsed() >= PEER_START_TIMEOUT {
                return Err(Failure::failed(format!(
                    "monkd (pid {pid}) did not answer at {addr} within {}s; see {}",
                    PEER_START_TIMEOUT.as_secs(),
                    self.log().display()
                )));
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// SIGTERMs the embedded `monkd` and waits until it exits; `None` when none runs.
    async fn stop(&self) -> Result<Option<u32>, Failure> {
        let Some(pid) = self.running_pid() else {
            let _ = std::fs::remove_file(self.pid_file());
            return Ok(None);
        };
        let sent = Process::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .map_err(|e| Failure::failed(format!("cannot run kill: {e}")))?;
        if !sent.success() && is_running_monkd(pid) {
            return Err(Failure::failed(format!("kill -TERM {pid} failed ({sent})")));
        }
        let began = Instant::now();
        while is_running_monkd(pid) {
            if began.elapsed() >= PEER_STOP_TIMEOUT {
                return Err(Failure::failed(format!(
                    "monkd (pid {pid}) still runs {}s after SIGTERM; see {}",
                    PEER_STOP_TIMEOUT.as_secs(),
                    self.log().display()
                )));
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        let _ = std::fs::remove_file(self.pid_file());
        Ok(Some(pid))
    }
}

fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}

/// `monkd` next to the running `monk` (both are built and installed together).
fn monkd_binary() -> Result<PathBuf, Failure> {
    let exe = std::env::current_exe()
        .map_err(|e| Failure::failed(format!("cannot find the monk executable: {e}")))?;
    let monkd = exe.with_file_name("monkd");
    match monkd.is_file() {
        true => Ok(monkd),
        false => Err(Failure::failed(format!(
            "no peer answers and there is no {} to start one: install monkd beside monk, or start a peer and point --addr at it",
            monkd.display()
        ))),
    }
}

/// A client of the peer at `addr` when one answers.
/// With the credential `monk` finds for it; else anonymously (a fresh peer, or one
/// whose cluster the stored credential is not for: its calls then say why).
async fn answering(addr: &str) -> Option<MonkClient> {
    if let Ok(mut client) = crate::connect(addr).await {
        if client.info().await.is_ok() {
            return Some(client);
        }
    }
    let anonymous = crate::credentials::anonymous().ok()?;
    let mut client = crate::connect_with(addr, &anonymous).await.ok()?;
    client.info().await.ok()?;
    Some(client)
}

/// A progress note on stderr (stdout carries only the result), unless `-q`.
pub fn note(quiet: bool, text: &str) {
    if !quiet {
        eprintln!("{text}");
    }
}

/// Runs `path`, or updates it when it already runs (a stopped one, or a group member
/// the files added, is started again by a `run` after the update).
async fn run_or_update(client: &mut MonkClient, path: &str) -> Result<&'static str, Failure> {
    if replicas_of(client, &[path.to_string()]).await?.is_empty() {
        propose(client, run_command(path)).await?;
        return Ok("started");
    }
    propose(
        client,
        Command::WorkloadUpdate {
            path: path.to_string(),
            overrides: Default::default(),
            evaluated: None,
        },
    )
    .await?;
    let outcome = client.propose(&actor(), run_command(path)).await?;
    match outcome.applied {
        Applied::Accepted { .. } => Ok("updated and started"),
        Applied::Rejected {
            reason: Rejection::AlreadyRunning { .. },
        } => Ok("updated"),
        Applied::Rejected { reason } => Err(Failure::failed(format!("run {path}: {reason}"))),
    }
}

fn run_command(path: &str) -> Command {
    Command::WorkloadRun {
        path: path.to_string(),
        tag: None,
        peer: None,
        overrides: Default::default(),
        evaluated: None,
    }
}

pub async fn up(addr: &str, args: UpArgs) -> Outcome {
    if args.files.is_empty() && args.run.is_none() {
        return Err(Failure::usage(
            "name the files to run (monk up stack.yaml), or --run PATH",
        ));
    }
    let quiet = args.wait.quiet;
    // Checked before anything starts: a bad file starts no peer and proposes nothing.
    let (mut templates, contexts) = match args.files.is_empty() {
        true => (Vec::new(), Vec::new()),
        false => crate::read_for_loading(&args.files)?,
    };
    let targets = targets(args.run.as_deref(), &templates)?;
    let embedded = Embedded::at(args.data_dir.as_deref())?;
    let mut client = match answering(addr).await {
        Some(client) => client,
        None => {
            if let Some(pid) = embedded.running_pid() {
                return Err(Failure::unreachable(format!(
                    "the embedded monkd (pid {pid}) of {} runs but does not answer at {addr}: \
                     use its address, or stop it with monk down --all --data-dir {}",
                    embedded.data_dir.display(),
                    embedded.data_dir.display()
                )));
            }
            let (pid, client) = embedded.start(addr, !contexts.is_empty()).await?;
            note(
                quiet,
                &format!(
                    "Started monkd (pid {pid}) at {addr}: data in {}, log in {}",
                    embedded.data_dir.display(),
                    embedded.log().display()
                ),
            );
            client
        }
    };
    let info = client.info().await?;
    if info.cluster.is_none() {
        let created = client.cluster_new(&args.cluster).await?;
        let kept = crate::credentials::remember(&created.credential)?;
        let dialer = created
            .credential
            .dialer()
            .map_err(|e| Failure::failed(e.to_string()))?;
        client = crate::connect_with(addr, &dialer).await?;
        let info = created.info;
        note(
            quiet,
            &format!(
                "Created cluster {} with peer {} at {addr}{}",
                info.cluster.as_deref().unwrap_or(&args.cluster),
                info.name,
                kept.map(|p| format!("; the admin credential is in {}", p.display()))
                    .unwrap_or_default()
            ),
        );
    }
    crate::build_into(&mut client, &mut templates, contexts, quiet).await?;
    if !templates.is_empty() {
        let count = templates.len();
        let index = store_definitions(&mut client, templates).await?;
        note(
            quiet,
            &format!("Loaded {count} definition(s) at index {index}"),
        );
    }
    for path in &targets {
        let done = run_or_update(&mut client, path).await?;
        note(quiet, &format!("{path}: {done}"));
    }
    let replicas = wait_running(&mut client, &targets, &args.wait).await?;
    if args.wait.out.output == Output::Json {
        return json(&replicas);
    }
    let info = client.info().await?;
    let mut text = format!(
        "✔ Up: {} in cluster {} (peer {} at {addr})\n",
        targets.join(", "),
        info.cluster.as_deref().unwrap_or("-"),
        info.name
    );
    let (table, front) = where_it_runs(&mut client, &replicas).await?;
    text.push_str(&table);
    if let Some(path) = front {
        text.push_str(&hints(addr, &args, &path));
    }
    Ok(text)
}

/// `image:tag` of a container definition.
fn image_of(container: &Tree) -> String {
    let text = |key: &str| match container.get(key) {
        Some(Tree::Str(s)) => Some(s.clone()),
        Some(Tree::Int(n)) => Some(n.to_string()),
        Some(Tree::Float(f)) => Some(f.clone()),
        _ => None,
    };
    match (text("image"), text("image-tag")) {
        (Some(image), Some(tag)) => format!("{image}:{tag}"),
        (Some(image), None) => image,
        (None, _) => "-".into(),
    }
}

/// Per replica: its peer and status, its containers with their images, the host
/// ports it publishes; and the workload the hints are about (the first that publishes
/// a port, else the first).
async fn where_it_runs(
    client: &mut MonkClient,
    replicas: &[InstanceView],
) -> Result<(String, Option<String>), Failure> {
    let mut text = String::new();
    let mut front: Option<(bool, String)> = None;
    let mut workload: Option<Workload> = None;
    for i in replicas {
        if workload.as_ref().is_none_or(|w| w.path != i.path) {
            workload = Some(client.workload(&i.path).await?);
        }
        let Some(w) = &workload else { continue };
        let publishes = !w.host_ports.is_empty();
        if front.as_ref().is_none_or(|(had, _)| publishes && !had) {
            front = Some((publishes, w.path.clone()));
        }
        text.push_str(&format!("{}: {}\n", replica_label(i), state_text(i)));
        let containers: Vec<String> = match w.definition.get("containers") {
            Some(Tree::Map(entries)) => entries
                .iter()
                .map(|(name, c)| format!("{name} ({})", image_of(c)))
                .collect(),
            _ => Vec::new(),
        };
        if !containers.is_empty() {
            text.push_str(&format!("   containers  {}\n", containers.join(", ")));
        }
        if !w.host_ports.is_empty() {
            let ports: Vec<String> = w.host_ports.iter().map(ToString::to_string).collect();
            text.push_str(&format!("   ports       {}\n", ports.join(" ")));
        }
    }
    Ok((text, front.map(|(_, path)| path)))
}

/// What to type next about `path`, with the same `--addr`, files and data dir.
fn hints(addr: &str, args: &UpArgs, path: &str) -> String {
    let monk = match addr == crate::DEFAULT_ADDR {
        true => "monk".to_string(),
        false => format!("monk --addr {addr}"),
    };
    let mut down = format!("{monk} down");
    for file in &args.files {
        down.push_str(&format!(" {}", file.display()));
    }
    if args.files.is_empty() {
        down.push_str(" --all");
    }
    if let Some(dir) = &args.data_dir {
        down.push_str(&format!(" --data-dir {}", dir.display()));
    }
    let lines = [
        (
            format!("{monk} logs {path}"),
            "its containers' output (-f follows)",
        ),
        (
            format!("{monk} exec {path} -- sh"),
            "a shell in its replica 0",
        ),
        (
            down,
            "stop and remove it all (--all: also the embedded peer)",
        ),
    ];
    let width = lines
        .iter()
        .map(|(c, _)| c.chars().count())
        .max()
        .unwrap_or(0);
    let mut text = String::from("\n");
    for (command, what) in lines {
        text.push_str(&format!("  {command:<width$}  # {what}\n"));
    }
    text
}

pub async fn down(addr: &str, args: DownArgs) -> Outcome {
    if args.files.is_empty() && !args.all {
        return Err(Failure::usage(
            "name the files monk up was given, or --all for every workload and the embedded peer",
        ));
    }
    let templates = match args.files.is_empty() {
        true => Vec::new(),
        false => read_definitions(&args.files)?,
    };
    let embedded = Embedded::at(args.data_dir.as_deref())?;
    let mut text = match answering(addr).await {
        Some(mut client) => take_down(&mut client, &templates, &args).await?,
        None if args.all => format!("No peer answers at {addr}: no workload to stop\n"),
        None => {
            return Err(Failure::unreachable(format!(
                "no peer answers at {addr} (is monkd running? set --addr or MONK_ADDR)"
            )))
        }
    };
    if args.all {
        text.push_str(&match embedded.stop().await? {
            Some(pid) => format!(
                "✔ Stopped the embedded monkd (pid {pid}); its data stays in {}\n",
                embedded.data_dir.display()
            ),
            None => format!(
                "No embedded monkd of {} runs (monk down stops only one that monk up started)\n",
                embedded.data_dir.display()
            ),
        });
    }
    Ok(text)
}

/// Stops the workloads the files define (every one with `--all`), waits until their
/// replicas report `stopped`, then purges them.
async fn take_down(
    client: &mut MonkClient,
    templates: &[LoadedTemplate],
    args: &DownArgs,
) -> Outcome {
    let defined: BTreeSet<&str> = templates.iter().map(|t| t.path.as_str()).collect();
    let all: Vec<InstanceView> = client.instances(false).await?;
    let paths: Vec<String> = all
        .iter()
        .filter(|i| {
            args.all
                || defined.contains(i.path.as_str())
                || i.group.as_deref().is_some_and(|g| defined.contains(g))
        })
        .map(|i| i.path.clone())
        .collect::<BTreeSet<String>>()
        .into_iter()
        .collect();
    if paths.is_empty() {
        return Ok("Nothing to stop: none of it runs\n".into());
    }
    for path in &paths {
        propose(client, Command::WorkloadStop { path: path.clone() }).await?;
    }
    if !args.no_wait {
        wait_stopped(client, &paths).await?;
    }
    for path in &paths {
        propose(client, Command::WorkloadPurge { path: path.clone() }).await?;
    }
    let gone = match args.no_wait {
        true => "their containers are being removed",
        false => "their containers are gone",
    };
    Ok(format!(
        "✔ Stopped and purged {} ({gone})\n",
        paths.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(path: &str, kind: &str) -> LoadedTemplate {
        LoadedTemplate {
            path: path.into(),
            kind: kind.into(),
            definition: Tree::Null,
        }
    }

    #[test]
    fn up_runs_the_one_group_else_every_runnable_else_what_run_names() {
        let stack = [
            template("hello/common", "abstract"),
            template("hello/web", "runnable"),
            template("hello/pinger", "runnable"),
            template("hello/stack", "group"),
        ];
        assert_eq!(targets(None, &stack).unwrap(), vec!["hello/stack"]);
        assert_eq!(
            targets(Some("/hello/web"), &stack).unwrap(),
            vec!["hello/web"]
        );
        let two_groups = [
            template("a/web", "runnable"),
            template("a/one", "group"),
            template("a/two", "group"),
        ];
        assert_eq!(targets(None, &two_groups).unwrap(), vec!["a/web"]);
        assert!(targets(None, &[template("a/base", "abstract")]).is_err());
    }

    #[test]
    fn images_read_with_their_tag() {
        let c = Tree::Map(vec![
            ("image".into(), Tree::Str("busybox".into())),
            ("image-tag".into(), Tree::Int(1)),
        ]);
        assert_eq!(image_of(&c), "busybox:1");
        assert_eq!(image_of(&Tree::Null), "-");
    }

    #[test]
    fn only_a_live_monkd_counts() {
        assert!(
            !is_running_monkd(std::process::id()),
            "the test is not monkd"
        );
        assert!(!is_running_monkd(u32::MAX));
    }
}
