//! Workload commands: `monk run`, `update`, `stop`, `purge`, `scale`, `ps`.
//!
//! Each is one command in the log (the state machine resolves, places and records);
//! `run`, `update`, `restart` and `scale` then follow the replicas, showing their
//! progress on stderr (`progress.rs`), until every one reports running at the new
//! generation, or one fails, crash-loops or cannot be placed, or `--timeout` passes
//! (when to stop is decided in `wait.rs`).
//!
//! Why one file of this size: every command here is the same shape (parse the target,
//! propose one command, follow the replicas), and entity instances and `monk do` joined
//! them with their own verbs; splitting by command would scatter that shared shape. The
//! next addition should move `do`/`actions` into their own module.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand, ValueEnum};
use monk_node::executor::logs::LogLine;
use monk_node::pb::{ExecRequest, LogsRequest};
use monk_node::MonkClient;
use monk_statemachine::view::InstanceView;
use monk_statemachine::{Applied, Command, Desired, Workload};

use crate::progress::{Mode, Progress};
use crate::stop::wait_stopped;
use crate::wait::{parse_timeout, Verdict, Watch, WAIT_TIMEOUT_DEFAULT};
use crate::{actor, connect, json, table, Failure, Outcome, Output, OutputArg};

/// How often `logs -f` asks for new lines.
const FOLLOW_POLL: Duration = Duration::from_secs(1);

fn log_text(lines: &[LogLine], output: Output) -> String {
    let mut text = String::new();
    for l in lines {
        match output {
            Output::Json => {
                text.push_str(&serde_json::to_string(l).unwrap_or_default());
                text.push('\n');
            }
            Output::Table => text.push_str(&format!(
                "#{} {} | {}{}\n",
                l.replica,
                l.container,
                if l.stream == "stderr" {
                    "(stderr) "
                } else {
                    ""
                },
                l.text
            )),
        }
    }
    text
}

/// Prints the lines; with `follow`, keeps asking for lines newer than the newest seen
/// per container (the engine stamps each line to the nanosecond).
async fn logs(
    client: &mut MonkClient,
    mut req: LogsRequest,
    follow: bool,
    output: Output,
) -> Outcome {
    let lines = client.container_logs(req.clone()).await?;
    if !follow {
        return Ok(log_text(&lines, output));
    }
    let mut newest: BTreeMap<(u32, String), String> = BTreeMap::new();
    let mut batch = lines;
    loop {
        let fresh: Vec<LogLine> = batch
            .into_iter()
            .filter(|l| {
                newest
                    .get(&(l.replica, l.container.clone()))
                    .is_none_or(|t| l.time > *t)
            })
            .collect();
        for l in &fresh {
            let slot = newest.entry((l.replica, l.container.clone())).or_default();
            if l.time > *slot {
                *slot = l.time.clone();
            }
        }
        crate::output::out(&log_text(&fresh, output));
        tokio::time::sleep(FOLLOW_POLL).await;
        req.since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64 - 5);
        batch = client.container_logs(req.clone()).await?;
    }
}

/// How often `run` asks for the replicas' status while it waits.
const WAIT_POLL: Duration = Duration::from_millis(300);

/// How `run`, `update`, `restart` and `scale` wait, and what they print.
#[derive(Args, Debug, Clone)]
pub struct WaitArgs {
    /// How long to wait for every replica to run: seconds (90) or 90s, 5m, 1h; 0
    /// returns once the command is committed. `--wait SECS` is the older name.
    #[arg(
        long = "timeout",
        visible_alias = "wait",
        value_name = "DURATION",
        default_value = WAIT_TIMEOUT_DEFAULT,
        value_parser = parse_timeout
    )]
    pub(crate) timeout: Duration,
    /// Show no progress while waiting (errors still go to stderr).
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
    #[command(flatten)]
    pub(crate) out: OutputArg,
}

/// `monk ps --status`: the STATUS column's words.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum StatusFilter {
    Pending,
    Starting,
    Updating,
    Running,
    Ready,
    Stopped,
    Exited,
    Failed,
}

impl StatusFilter {
    fn matches(self, i: &InstanceView) -> bool {
        self.to_possible_value()
            .is_some_and(|v| v.get_name() == state_text(i))
    }
}

#[derive(Args, Debug, Clone)]
pub struct VarArgs {
    /// A runtime variable, NAME=VALUE (repeatable).
    #[arg(short = 's', long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
    /// A YAML map of runtime variables (NAME: VALUE).
    #[arg(long = "variables-file", visible_alias = "vf", value_name = "FILE")]
    variables_file: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum WorkloadCmd {
    /// Start a runnable or a group: the cluster places its replicas on peers.
    Run {
        #[arg(required = true)]
        paths: Vec<String>,
        /// Only peers with this tag.
        #[arg(short = 't', long)]
        tag: Option<String>,
        /// Only this peer (name or id).
        #[arg(short = 'p', long)]
        peer: Option<String>,
        #[command(flatten)]
        vars: VarArgs,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Apply the definition as loaded now (and new variables) to a running workload.
    Update {
        #[arg(required = true)]
        paths: Vec<String>,
        #[command(flatten)]
        vars: VarArgs,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Replace every container of a workload (a new generation, same definition).
    Restart {
        #[arg(required = true)]
        paths: Vec<String>,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Stop a workload's containers and wait until they are gone; it keeps its
    /// placement and can be run again.
    Stop {
        #[arg(required = true)]
        paths: Vec<String>,
        /// Return once the stop is recorded, without waiting for the containers.
        #[arg(long)]
        no_wait: bool,
    },
    /// Stop a workload, wait until its containers are gone, and forget it.
    Purge {
        #[arg(required = true)]
        paths: Vec<String>,
        /// Forget it at once; its containers are removed in the background.
        #[arg(long)]
        no_wait: bool,
    },
    /// Run N replicas of a runnable.
    Scale {
        path: String,
        replicas: u32,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Recent output of a workload's containers, from whichever peers run them.
    Logs {
        path: String,
        /// Only this replica.
        #[arg(short = 'r', long)]
        replica: Option<u32>,
        /// Only this container of the runnable.
        #[arg(short = 'c', long)]
        container: Option<String>,
        /// Lines per container.
        #[arg(short = 'l', long = "last", default_value_t = 100)]
        last: u32,
        /// Keep printing new lines (Ctrl-C to stop).
        #[arg(short = 'f', long)]
        follow: bool,
        #[command(flatten)]
        out: OutputArg,
    },
    /// One workload in full: generation, constraints, requests, variables set at run
    /// time, and where each replica is and how it is.
    Describe {
        path: String,
        #[command(flatten)]
        out: OutputArg,
    },
    /// Run a command in a replica's container (on whichever peer holds it); exits with
    /// the command's exit code.
    Exec {
        path: String,
        /// The replica (default 0).
        #[arg(short = 'r', long, default_value_t = 0)]
        replica: u32,
        /// The container of the runnable (default: its first).
        #[arg(short = 'c', long)]
        container: Option<String>,
        /// The command and its arguments, after `--`.
        #[arg(required = true, last = true)]
        command: Vec<String>,
    },
    /// Run a runnable's action or an entity instance's custom verb on the peer hosting
    /// it: `monk do ns/name/action k=v ...`; prints its output, exits 1 if it failed.
    Do {
        /// `ns/name/verb`: the instance's path and the verb.
        target: String,
        /// Arguments, `name=value` (the script reads them as `context.args`).
        args: Vec<String>,
    },
    /// The actions of a running runnable, or the custom verbs of a running entity
    /// instance, for `monk do`.
    Actions {
        path: String,
        #[command(flatten)]
        out: OutputArg,
    },
    /// Replicas of every workload: where they run and how they are. Replicas of
    /// stopped workloads only with --all.
    Ps {
        /// Only replicas on this peer (name or id).
        #[arg(short = 'p', long)]
        peer: Option<String>,
        /// Also the replicas of stopped workloads (`monk stop`).
        #[arg(short = 'a', long)]
        all: bool,
        /// Only replicas on peers with this tag.
        #[arg(short = 't', long)]
        tag: Option<String>,
        /// Only replicas in this status (the STATUS column).
        #[arg(short = 's', long, value_enum)]
        status: Option<StatusFilter>,
        #[command(flatten)]
        out: OutputArg,
        /// Read from this peer's local state instead of the leader's.
        #[arg(long)]
        stale: bool,
    },
}

/// `NAME=VALUE` flags and a YAML file, merged (flags win).
fn overrides(vars: &VarArgs) -> Result<BTreeMap<String, String>, Failure> {
    let mut out = BTreeMap::new();
    if let Some(file) = &vars.variables_file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| Failure::usage(format!("{}: {e}", file.display())))?;
        let map: BTreeMap<String, serde_json::Value> = serde_saphyr::from_str(&text)
            .map_err(|e| Failure::usage(format!("{}: {e}", file.display())))?;
        for (name, value) in map {
            let text = match value {
                serde_json::Value::String(s) => s,
                serde_json::Value::Null => String::new(),
                serde_json::Value::Array(_) | serde_json::Value::Object(_) => {
                    return Err(Failure::usage(format!(
                        "{}: variable {name} must be a scalar",
                        file.display()
                    )))
                }
                other => other.to_string(),
            };
            out.insert(name, text);
        }
    }
    for pair in &vars.set {
        let (name, value) = pair
            .split_once('=')
            .filter(|(n, _)| !n.trim().is_empty())
            .ok_or_else(|| Failure::usage(format!("--set {pair:?}: expected NAME=VALUE")))?;
        out.insert(name.trim().to_string(), value.to_string());
    }
    Ok(out)
}

pub(crate) async fn propose(client: &mut MonkClient, command: Command) -> Result<u64, Failure> {
    let what = command.summary();
    let outcome = client.propose(&actor(), command).await?;
    match outcome.applied {
        Applied::Accepted { .. } => Ok(outcome.index),
        Applied::Rejected { reason } => Err(Failure::failed(format!("{what}: {reason}"))),
    }
}

fn belongs(i: &InstanceView, path: &str) -> bool {
    i.path == path || i.group.as_deref() == Some(path)
}

/// The replicas of `paths` (a group's path names its members' replicas).
pub(crate) async fn replicas_of(
    client: &mut MonkClient,
    paths: &[String],
) -> Result<Vec<InstanceView>, Failure> {
    let all: Vec<InstanceView> = client.instances(false).await?;
    Ok(all
        .into_iter()
        .filter(|i| paths.iter().any(|p| belongs(i, p)))
        .collect())
}

/// Waits until every replica of `paths` runs (or is ready) at its current generation,
/// dependencies started first by their executors, showing progress as it goes; gives
/// up when `Watch` says so (a replica failed, crash-loops or cannot be placed, or the
/// timeout passed). With a zero timeout, returns the replicas as they are.
pub(crate) async fn wait_running(
    client: &mut MonkClient,
    paths: &[String],
    wait: &WaitArgs,
) -> Result<Vec<InstanceView>, Failure> {
    if wait.timeout.is_zero() {
        return replicas_of(client, paths).await;
    }
    let mut progress = Progress::new(Mode::choose(wait.quiet));
    let result = follow(client, paths, wait.timeout, &mut progress).await;
    progress.finish(result.is_ok());
    result
}

async fn follow(
    client: &mut MonkClient,
    paths: &[String],
    timeout: Duration,
    progress: &mut Progress,
) -> Result<Vec<InstanceView>, Failure> {
    let began = Instant::now();
    let mut watch = Watch::default();
    loop {
        let mine = replicas_of(client, paths).await?;
        let elapsed = began.elapsed();
        progress.show(&mine, elapsed);
        match watch.judge(&mine, elapsed, timeout) {
            Verdict::Done => return Ok(mine),
            Verdict::GiveUp(reason) => return Err(Failure::failed(reason)),
            Verdict::Waiting => {
                tokio::time::sleep(WAIT_POLL.min(timeout.saturating_sub(elapsed))).await
            }
        }
    }
}

/// What `monk ps` keeps: `--all`, `--peer`, `--tag` (the ids of the peers with the
/// tag) and `--status`, all of which must hold.
struct PsFilter {
    peer: Option<String>,
    all: bool,
    tagged: Option<BTreeSet<u64>>,
    status: Option<StatusFilter>,
}

impl PsFilter {
    /// Replicas of stopped workloads show only with `--all`.
    fn shows_stopped(&self, i: &InstanceView) -> bool {
        self.all || i.desired != Desired::Stopped
    }

    /// `--peer`, `--tag` and `--status`.
    fn matches(&self, i: &InstanceView) -> bool {
        let on_peer = self.peer.as_ref().is_none_or(|p| {
            i.peer_name.as_ref() == Some(p) || i.peer.map(|id| id.to_string()).as_ref() == Some(p)
        });
        let tagged = self
            .tagged
            .as_ref()
            .is_none_or(|ids| i.peer.is_some_and(|id| ids.contains(&id)));
        let status = self.status.is_none_or(|s| s.matches(i));
        on_peer && tagged && status
    }

    fn keeps(&self, i: &InstanceView) -> bool {
        self.shows_stopped(i) && self.matches(i)
    }

    /// Matches the other filters, shown only with `--all`.
    fn hides(&self, i: &InstanceView) -> bool {
        !self.shows_stopped(i) && self.matches(i)
    }
}

pub(crate) fn state_text(i: &InstanceView) -> &'static str {
    match (i.status, i.observed_generation == Some(i.generation)) {
        (Some(s), true) => s.as_str(),
        (Some(_), false) => "updating",
        (None, _) if i.peer.is_none() => "pending",
        (None, _) => "starting",
    }
}

fn describe_text(w: &Workload, replicas: &[InstanceView]) -> String {
    let mut text = format!(
        "{}  generation {}  desired {}{}\n",
        w.path,
        w.generation,
        w.desired.as_str(),
        w.group
            .as_ref()
            .map_or(String::new(), |g| format!("  (group {g})"))
    );
    let tags = match w.constraints.tags.is_empty() {
        true => "-".to_string(),
        false => w.constraints.tags.join(","),
    };
    let mut flags = Vec::new();
    if w.constraints.resident {
        flags.push("  resident");
    }
    if w.constraints.ignore_pressure {
        flags.push("  ignore-pressure");
    }
    text.push_str(&format!(
        "constraints   tags {tags}  peer {}{}\n",
        w.constraints.peer.as_deref().unwrap_or("-"),
        flags.concat()
    ));
    text.push_str(&format!(
        "requests      {} mCPU / {} MB per replica\n",
        w.requests.cpu_millis, w.requests.memory_mb
    ));
    let r = &w.requirements;
    if !r.is_none() {
        text.push_str(&format!(
            "requirements  {} mCPU, {} MB, GPU {}, {} GB disk\n",
            r.cpu_millis,
            r.memory_mb,
            if r.gpu { "yes" } else { "no" },
            r.disk_gb
        ));
    }
    if !w.host_ports.is_empty() {
        let ports: Vec<String> = w.host_ports.iter().map(ToString::to_string).collect();
        text.push_str(&format!("host ports    {}\n", ports.join(" ")));
    }
    for line in evaluated_lines(w) {
        text.push_str(&line);
        text.push('\n');
    }
    let vars: Vec<String> = w
        .overrides
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    text.push_str(&format!(
        "set at run    {}\n",
        if vars.is_empty() {
            "-".to_string()
        } else {
            vars.join(" ")
        }
    ));
    text.push_str(&format!(
        "started at    index {}, last changed at index {}\n",
        w.started_at_index, w.changed_at_index
    ));
    if let Some(life) = &w.entity {
        text.push_str(&entity_text(life));
    }
    if let Some(last) = &w.last_action {
        text.push_str(&format!(
            "last action   {}({}) {} (index {})\n",
            last.verb,
            last.args.join(", "),
            last.error
                .as_deref()
                .map_or("ok".to_string(), |e| format!("failed: {e}")),
            last.at_index
        ));
    }
    text.push('\n');
    let rows: Vec<Vec<String>> = replicas
        .iter()
        .map(|i| {
            vec![
                format!("#{}", i.replica),
                i.peer_name.clone().unwrap_or_else(|| "-".into()),
                state_text(i).into(),
                i.observed_generation.map_or("-".into(), |g| g.to_string()),
                i.pending.clone().unwrap_or_else(|| i.message.clone()),
            ]
        })
        .collect();
    text.push_str(&table::render(
        &["REPLICA", "PEER", "STATUS", "REPORTED GEN", "MESSAGE"],
        &rows,
    ));
    text
}

/// An entity instance's lifecycle for `monk describe`: its type, the verbs queued, the
/// last verb's outcome and the saved state (which holds no secret values: scripts keep
/// those in the secret store).
fn entity_text(life: &monk_statemachine::EntityLife) -> String {
    let mut text = format!(
        "entity type   {}  ({})\n",
        life.type_path,
        if life.created {
            "created"
        } else {
            "not created"
        }
    );
    if !life.todo.is_empty() {
        text.push_str(&format!("queued        {}\n", life.todo.join(", ")));
    }
    if let Some(last) = &life.last {
        let outcome = match &last.error {
            Some(e) => format!("failed: {e}"),
            None => "ok".into(),
        };
        text.push_str(&format!(
            "last verb     {} {outcome} (index {})\n",
            last.verb, last.at_index
        ));
    }
    text.push_str(&format!(
        "saved state   {}\n",
        life.state.as_deref().unwrap_or("-")
    ));
    text
}

/// `monk do ns/name/verb k=v ...`: the verb's output, and exit 1 when it failed.
async fn entity_do(client: &mut MonkClient, target: &str, args: &[String]) -> Outcome {
    let target = target.trim_start_matches('/');
    let Some((path, verb)) = target.rsplit_once('/') else {
        return Err(Failure::usage(format!("{target:?}: expected ns/name/verb")));
    };
    let mut named = std::collections::HashMap::new();
    for arg in args {
        let Some((name, value)) = arg.split_once('=') else {
            return Err(Failure::usage(format!("{arg:?}: expected name=value")));
        };
        named.insert(name.to_string(), value.to_string());
    }
    let req = monk_node::pb::DoRequest {
        path: path.to_string(),
        verb: verb.to_string(),
        args: named,
        local_only: false,
    };
    let out = client.entity_do(req).await?;
    let mut text: String = out.output.iter().map(|l| format!("{l}\n")).collect();
    match out.error {
        Some(e) => {
            crate::output::out(&text);
            Err(Failure::failed(format!("{e} (on peer {})", out.peer)))
        }
        None => {
            text.push_str(&format!("✔ {path} {verb} done on peer {}\n", out.peer));
            Ok(text)
        }
    }
}

/// `scale.value` and affinity fields that are scripts, with the value each had when the
/// workload was last run or updated.
fn evaluated_lines(w: &Workload) -> Vec<String> {
    let Some(ev) = &w.evaluated else {
        return Vec::new();
    };
    let script = |section: &str, key: &str| {
        w.definition
            .get(section)
            .and_then(|s| s.get(key))
            .and_then(|t| t.as_str())
            .map(str::trim)
            .map(String::from)
    };
    let mut lines = Vec::new();
    let mut show = |label: &str, section: &str, key: &str, value: Option<String>| {
        if let (Some(script), Some(value)) = (script(section, key), value) {
            lines.push(format!("{label:<14}{script}  → {value}"));
        }
    };
    show(
        "scale.value",
        "scale",
        "value",
        ev.replicas.map(|n| n.to_string()),
    );
    show("affinity.tag", "affinity", "tag", ev.tag.clone());
    show("affinity.name", "affinity", "name", ev.name.clone());
    if let Some(why) = &ev.ports_error {
        lines.push(format!("host ports    unknown: {why}"));
    }
    lines
}

fn tree(instances: &[InstanceView]) -> String {
    let mut out = String::new();
    let mut last = "";
    for i in instances {
        if i.path != last {
            out.push_str(&format!("🔩 {} (generation {})\n", i.path, i.generation));
            last = &i.path;
        }
        out.push_str(&format!(
            "   #{} on {}: {}\n",
            i.replica,
            i.peer_name.as_deref().unwrap_or("no peer"),
            state_text(i)
        ));
    }
    out
}

/// Proposes one command per path (`make` builds it), then, with `wait`, follows the
/// replicas; `done` names what happened (`Started`, `Stopped`, ...).
/// Paths as written, without a leading `/`.
fn trimmed(paths: &[String]) -> Vec<String> {
    paths
        .iter()
        .map(|p| p.trim_start_matches('/').to_string())
        .collect()
}

async fn each_path(
    client: &mut MonkClient,
    paths: &[String],
    done: &str,
    wait: Option<&WaitArgs>,
    make: impl Fn(String) -> Command,
) -> Outcome {
    let paths: Vec<String> = paths
        .iter()
        .map(|p| p.trim_start_matches('/').to_string())
        .collect();
    for path in &paths {
        propose(client, make(path.clone())).await?;
    }
    let headline = format!("✔ {done} {}\n", paths.join(", "));
    match wait {
        Some(wait) => waited(client, &paths, wait, headline).await,
        None => Ok(headline),
    }
}

/// Waits for the replicas, then prints them: the headline and a tree for people, the
/// replicas as JSON with `-o json`.
async fn waited(
    client: &mut MonkClient,
    paths: &[String],
    wait: &WaitArgs,
    headline: String,
) -> Outcome {
    let replicas = wait_running(client, paths, wait).await?;
    match wait.out.output {
        Output::Json => json(&replicas),
        Output::Table => Ok(headline + &tree(&replicas)),
    }
}

pub async fn run(addr: &str, cmd: WorkloadCmd) -> Outcome {
    let mut client = connect(addr).await?;
    match cmd {
        WorkloadCmd::Run {
            paths,
            tag,
            peer,
            vars,
            wait,
        } => {
            let overrides = overrides(&vars)?;
            each_path(&mut client, &paths, "Started", Some(&wait), |path| {
                Command::WorkloadRun {
                    path,
                    tag: tag.clone(),
                    peer: peer.clone(),
                    overrides: overrides.clone(),
                    evaluated: None,
                }
            })
            .await
        }
        WorkloadCmd::Update { paths, vars, wait } => {
            let overrides = overrides(&vars)?;
            each_path(&mut client, &paths, "Updated", Some(&wait), |path| {
                Command::WorkloadUpdate {
                    path,
                    overrides: overrides.clone(),
                    evaluated: None,
                }
            })
            .await
        }
        WorkloadCmd::Restart { paths, wait } => {
            each_path(&mut client, &paths, "Restarted", Some(&wait), |path| {
                Command::WorkloadRestart { path }
            })
            .await
        }
        WorkloadCmd::Stop { paths, no_wait } => {
            let done = each_path(&mut client, &paths, "Stopped", None, |path| {
                Command::WorkloadStop { path }
            })
            .await?;
            if !no_wait {
                wait_stopped(&mut client, &trimmed(&paths)).await?;
            }
            Ok(done)
        }
        WorkloadCmd::Purge { paths, no_wait } => {
            // As `docker compose down`: the containers are gone before it returns, so
            // a peer stopped right after leaves nothing behind.
            if !no_wait {
                let running: Vec<String> = {
                    let replicas = replicas_of(&mut client, &trimmed(&paths)).await?;
                    trimmed(&paths)
                        .into_iter()
                        .filter(|p| {
                            replicas.iter().any(|i| {
                                (i.path == *p || i.group.as_deref() == Some(p.as_str()))
                                    && i.desired != Desired::Stopped
                            })
                        })
                        .collect()
                };
                for path in &running {
                    propose(&mut client, Command::WorkloadStop { path: path.clone() }).await?;
                }
                wait_stopped(&mut client, &trimmed(&paths)).await?;
            }
            each_path(&mut client, &paths, "Purged", None, |path| {
                Command::WorkloadPurge { path }
            })
            .await
        }
        WorkloadCmd::Scale {
            path,
            replicas,
            wait,
        } => {
            let path = path.trim_start_matches('/').to_string();
            propose(
                &mut client,
                Command::WorkloadScale {
                    path: path.clone(),
                    replicas,
                },
            )
            .await?;
            let headline = format!("✔ Scaled {path} to {replicas}\n");
            waited(&mut client, std::slice::from_ref(&path), &wait, headline).await
        }
        WorkloadCmd::Logs {
            path,
            replica,
            container,
            last,
            follow,
            out,
        } => {
            let req = LogsRequest {
                path: path.trim_start_matches('/').to_string(),
                has_replica: replica.is_some(),
                replica: replica.unwrap_or(0),
                container: container.unwrap_or_default(),
                tail: last,
                since: 0,
                local_only: false,
            };
            logs(&mut client, req, follow, out.output).await
        }
        WorkloadCmd::Exec {
            path,
            replica,
            container,
            command,
        } => {
            let req = ExecRequest {
                path: path.trim_start_matches('/').to_string(),
                replica,
                container: container.unwrap_or_default(),
                command,
                local_only: false,
            };
            let out = client.container_exec(req).await?;
            crate::output::out(&out.stdout);
            if out.exit_code != 0 {
                return Err(Failure::failed(format!(
                    "the command exited with {} (in {} on peer {})",
                    out.exit_code, out.container, out.peer
                )));
            }
            Ok(String::new())
        }
        WorkloadCmd::Do { target, args } => entity_do(&mut client, &target, &args).await,
        WorkloadCmd::Actions { path, out } => {
            let path = path.trim_start_matches('/').to_string();
            let workload: Workload = client.workload(&path).await?;
            let verbs = match &workload.entity {
                Some(life) => monk_node::entity::action::custom_verbs(&life.type_definition),
                None => monk_node::entity::action::runnable_actions(&workload.definition),
            };
            if out.output == Output::Json {
                return json(&verbs);
            }
            Ok(verbs.iter().map(|v| format!("{path}/{v}\n")).collect())
        }
        WorkloadCmd::Describe { path, out } => {
            let path = path.trim_start_matches('/').to_string();
            let workload: Workload = client.workload(&path).await?;
            let all: Vec<InstanceView> = client.instances(false).await?;
            let replicas: Vec<InstanceView> = all.into_iter().filter(|i| i.path == path).collect();
            if out.output == Output::Json {
                return json(&serde_json::json!({ "workload": workload, "replicas": replicas }));
            }
            Ok(describe_text(&workload, &replicas))
        }
        WorkloadCmd::Ps {
            peer,
            all,
            tag,
            status,
            out,
            stale,
        } => {
            let instances: Vec<InstanceView> = client.instances(stale).await?;
            let tagged: Option<BTreeSet<u64>> = match &tag {
                Some(tag) => Some(
                    client
                        .peers(stale)
                        .await?
                        .into_iter()
                        .filter(|p| p.tags.contains(tag))
                        .map(|p| p.id)
                        .collect(),
                ),
                None => None,
            };
            let filter = PsFilter {
                peer,
                all,
                tagged,
                status,
            };
            let hidden = instances.iter().filter(|i| filter.hides(i)).count();
            let rows: Vec<InstanceView> =
                instances.into_iter().filter(|i| filter.keeps(i)).collect();
            if out.output == Output::Json {
                return json(&rows);
            }
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|i| {
                    vec![
                        i.path.clone(),
                        i.replica.to_string(),
                        i.peer_name.clone().unwrap_or_else(|| "-".into()),
                        i.desired.as_str().into(),
                        state_text(i).into(),
                        i.generation.to_string(),
                        table::join_or_dash(i.addresses.values()),
                        i.pending.clone().unwrap_or_else(|| i.message.clone()),
                    ]
                })
                .collect();
            let mut text = table::render(
                &[
                    "WORKLOAD", "REPLICA", "PEER", "DESIRED", "STATUS", "GEN", "ADDRESS", "MESSAGE",
                ],
                &cells,
            );
            if hidden > 0 {
                text.push_str(&format!(
                    "({hidden} replica(s) of stopped workloads not shown: --all shows them)\n"
                ));
            }
            Ok(text)
        }
    }
}
