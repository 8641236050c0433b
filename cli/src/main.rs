//! `monk`: the command line of a monk cluster. A thin binary: parse flags, call the
//! typed client or the offline libraries, print a table or JSON, exit 0 on success and
//! non-zero with a one-line reason on failure.

mod audit;
mod build;
mod cluster;
mod containerize;
mod credentials;
mod dockerignore;
mod events;
mod exit;
mod hub;
mod images;
mod output;
mod progress;
mod registries;
mod secrets;
mod stop;
mod table;
mod up;
mod wait;
mod workloads;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use monk_node::views::{ConsensusView, InfoView, TemplateRow};
use monk_node::MonkClient;
use monk_scripting::monkscript::build::BuildSite;
use monk_scripting::monkscript::cli::{
    dump_command, lint_command, load_definitions_and_builds, DumpFormat,
};
use monk_scripting::monkscript::diagnostic::Severity;
use monk_scripting::tree::Tree;
use monk_statemachine::{Applied, Command, LoadedTemplate, FORMAT_VERSION};

use crate::exit::Failure;

/// Default peer address when neither `--addr` nor `MONK_ADDR` is given.
const DEFAULT_ADDR: &str = "127.0.0.1:44001";

#[derive(Parser, Debug)]
#[command(
    name = "monk",
    version,
    about = "Run and inspect a monk cluster",
    after_help = exit::HELP
)]
struct Cli {
    /// Peer to talk to: HOST:PORT, or unix:PATH for a peer's socket on this machine
    /// (default: the socket of a peer running here in monk up's data dir or
    /// /var/lib/monk, else 127.0.0.1:44001).
    #[arg(long, global = true, env = "MONK_ADDR", default_value_t = default_address(), hide_default_value = true, value_parser = peer_address)]
    addr: String,
    /// Credential file to authenticate with (default: the per-user store, see
    /// `monk user --help`).
    #[arg(long, global = true, env = "MONK_CREDENTIALS")]
    credentials: Option<PathBuf>,
    #[command(subcommand)]
    command: Top,
}

/// Where `monk` talks without `--addr` or `MONK_ADDR`: the Unix socket of a peer that
/// runs on this machine (monk up's data dir, then `/var/lib/monk`), when one answers;
/// else [`DEFAULT_ADDR`].
fn default_address() -> String {
    let candidates = [up::default_data_dir(), PathBuf::from("/var/lib/monk")];
    candidates
        .iter()
        .map(|dir| monk_node::trust::socket::path_in(dir))
        .find(|socket| std::os::unix::net::UnixStream::connect(socket).is_ok())
        .map_or_else(
            || DEFAULT_ADDR.to_string(),
            |socket| {
                format!(
                    "{}{}",
                    monk_node::trust::socket::ADDRESS_PREFIX,
                    socket.display()
                )
            },
        )
}

/// `--addr`: `HOST:PORT` (a name, an IPv4 address or a bracketed IPv6 one), checked
/// before anything is sent so a typo exits 2 (usage) rather than 3 (unreachable).
fn peer_address(text: &str) -> Result<String, String> {
    if let Some(path) = text.strip_prefix(monk_node::trust::socket::ADDRESS_PREFIX) {
        return match path.starts_with('/') {
            true => Ok(text.to_string()),
            false => Err(format!("{text:?}: expected unix:/absolute/path")),
        };
    }
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("{text:?}: expected HOST:PORT"))?;
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/') {
        return Err(format!(
            "{text:?}: expected HOST:PORT, e.g. 127.0.0.1:44001"
        ));
    }
    port.parse::<u16>()
        .map_err(|_| format!("{text:?}: the port must be a number from 0 to 65535"))?;
    Ok(text.to_string())
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Output {
    Table,
    Json,
}

#[derive(Args, Debug, Clone, Copy)]
struct OutputArg {
    /// Output format: table for people, json for scripts.
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    output: Output,
}

#[derive(Subcommand, Debug)]
enum Top {
    /// Create, join, leave and inspect the cluster.
    #[command(subcommand, visible_alias = "c")]
    Cluster(cluster::ClusterCmd),
    /// Consensus internals.
    #[command(subcommand, visible_alias = "s")]
    System(SystemCmd),
    /// Store MonkScript definitions in the cluster (does not start anything); builds
    /// the images of containers with `build:` first, as `monk build` does.
    Load {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print no build output.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Build the images of the containers with `build:` in MonkScript files (each
    /// context sent to a peer, built there and pushed into the cluster registry,
    /// tagged by the context's hash; an unchanged context is not rebuilt). Loads
    /// nothing: `monk load` and `monk up` build and load.
    Build(build::BuildArgs),
    /// List stored definitions: loaded ones (REPOSITORY `local`) and the Hub's that
    /// no loaded namespace shadows (REPOSITORY: their source).
    #[command(visible_alias = "ls")]
    List {
        #[command(flatten)]
        out: OutputArg,
        /// Read from this peer's local state instead of the leader's.
        #[arg(long)]
        stale: bool,
    },
    /// Evaluate one ArrowScript expression offline and print the result as JSON.
    Eval {
        /// A variable, NAME=VALUE; the value is read as a YAML scalar (8080 is an int).
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
        /// A YAML map of variables.
        #[arg(long)]
        vars_file: Option<PathBuf>,
        /// The script, with or without the leading `<-`.
        script: String,
    },
    /// Print an entity fully resolved (inheritance applied), from the cluster or,
    /// with --from, from local files.
    Dump {
        /// Entity path, `namespace/name`.
        path: String,
        /// Resolve from these files, directories or MANIFESTs instead of the cluster.
        #[arg(long, num_args = 1..)]
        from: Vec<PathBuf>,
        /// Output format.
        #[arg(short = 'o', long = "output", value_enum, default_value = "yaml")]
        output: DumpOutput,
        /// Show the definition exactly as stored, without resolving inheritance.
        #[arg(long)]
        raw: bool,
        #[arg(long)]
        stale: bool,
    },
    /// Set, list, read and remove secrets.
    #[command(subcommand)]
    Secrets(secrets::SecretsCmd),
    /// The Hub: a catalog of kits every peer holds (`run` and `inherits:` find its
    /// definitions without `monk load`; a loaded namespace shadows the Hub's).
    #[command(subcommand)]
    Hub(hub::HubCmd),
    /// The cluster registry's images (`monkd --registry-listen`): every tag with its
    /// digest, size and the peers holding its blobs; `images rm REPO:TAG`.
    Images(images::ImagesArgs),
    /// Credentials for pulling from outside registries (the password is a global
    /// secret): `registry add HOST --username U --password-secret NAME`, `list`, `rm`.
    #[command(subcommand)]
    Registry(registries::RegistryCmd),
    /// Add, list and remove users. A credential is found without flags:
    /// --credentials FILE, MONK_CREDENTIALS, the per-user store
    /// (~/.config/monk/credentials/, where `cluster new` and `up` keep the admin's),
    /// or admin.credentials in the data dir of the peer `monk up` starts.
    #[command(subcommand)]
    User(cluster::UserCmd),
    /// Every command the cluster applies, with its result, as it commits (-f follows).
    Events(events::EventsArgs),
    /// From files to running: start an embedded peer if none answers, create the
    /// cluster, load the files, run (or update) what they define, wait, show where it
    /// runs.
    Up(up::UpArgs),
    /// Stop and purge what the files define, waiting until the containers are gone;
    /// --all: every workload, then the embedded peer `monk up` started.
    Down(up::DownArgs),
    /// Run, update, stop, purge, scale and list workloads.
    #[command(flatten)]
    Workload(workloads::WorkloadCmd),
    /// Incident forensics on a data dir: log, replay, diff, history, verify, snapshot.
    #[command(flatten)]
    Audit(audit::AuditCmd),
    /// Print a shell completion script: `source <(monk completions bash)`.
    Completions {
        /// The shell: bash, zsh, fish (also elvish, powershell).
        shell: clap_complete::Shell,
    },
    /// This client's version and entry format version, and the addressed peer's
    /// (exit 3 after printing the client's when no peer answers).
    Version {
        /// Only this client's; ask no peer.
        #[arg(long)]
        client: bool,
        #[command(flatten)]
        out: OutputArg,
    },
    /// Find the services in a source tree (API servers, workers, scheduled tasks,
    /// static front ends, existing Containerfiles), write a Containerfile for each that
    /// has none and a MonkScript stack (monk.yaml). Offline; `--build` is not there yet.
    Containerize(containerize::ContainerizeArgs),
    /// Check MonkScript files, directories or MANIFESTs; exit 1 if there are errors.
    Lint {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Treat warnings as errors.
        #[arg(long)]
        strict: bool,
        #[command(flatten)]
        out: OutputArg,
    },
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum DumpOutput {
    Yaml,
    Json,
}

#[derive(Subcommand, Debug)]
enum SystemCmd {
    /// Raft state of the addressed peer: term, leader, indexes, digest, followers.
    Consensus {
        #[command(flatten)]
        out: OutputArg,
    },
    /// Every peer's WireGuard interface as that peer sees it: its overlay address,
    /// and each remote peer's endpoint, allowed IPs, last handshake and bytes.
    Overlay {
        #[command(flatten)]
        out: OutputArg,
    },
}

type Outcome = Result<String, Failure>;

fn actor() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    format!("cli:{user}@{host}")
}

fn json<T: serde::Serialize>(value: &T) -> Outcome {
    serde_json::to_string_pretty(value)
        .map(|s| s + "\n")
        .map_err(|e| Failure::failed(e.to_string()))
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

async fn connect(addr: &str) -> Result<MonkClient, Failure> {
    connect_with(addr, &credentials::dialer_for(addr)?).await
}

async fn connect_with(
    addr: &str,
    dialer: &monk_node::trust::tls::Dialer,
) -> Result<MonkClient, Failure> {
    MonkClient::connect(addr, dialer).await.map_err(|e| {
        Failure::unreachable(format!("{e} (is monkd running? set --addr or MONK_ADDR)"))
    })
}

/// `monk system overlay` for a person: a line per peer, a table of its remote peers.
fn overlay_text(rows: &[monk_node::views::OverlayRow]) -> String {
    let name_of = |id: &u64| {
        rows.iter()
            .find(|r| r.id == *id)
            .map_or_else(|| id.to_string(), |r| r.name.clone())
    };
    let mut text = String::new();
    for row in rows {
        let Some(status) = &row.status else {
            text.push_str(&format!(
                "peer {} {}: no answer: {}\n\n",
                row.id,
                row.name,
                row.error.as_deref().unwrap_or("unknown")
            ));
            continue;
        };
        if !status.enabled {
            text.push_str(&format!(
                "peer {} {}: takes no part in the overlay (monkd --no-overlay)\n\n",
                row.id, row.name
            ));
            continue;
        }
        text.push_str(&format!(
            "peer {} {}  interface {}  address {}  port {}  firewall rules {}\n",
            row.id,
            row.name,
            status
                .interface
                .as_deref()
                .unwrap_or("- (no remote peer yet)"),
            opt(row.overlay_address),
            opt(status.listen_port),
            status.firewall_rules
        ));
        if let Some(error) = &status.error {
            text.push_str(&format!("  error: {error}\n"));
        }
        let peers: Vec<Vec<String>> = status
            .peers
            .iter()
            .map(|(id, p)| {
                vec![
                    name_of(id),
                    p.endpoint.clone().unwrap_or_else(|| "-".into()),
                    p.allowed_ips
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(","),
                    p.handshake_age_secs
                        .map_or_else(|| "never".into(), |s| format!("{s}s ago")),
                    p.rx_bytes.to_string(),
                    p.tx_bytes.to_string(),
                ]
            })
            .collect();
        if !peers.is_empty() {
            text.push_str(&table::render(
                &["PEER", "ENDPOINT", "ALLOWED IPS", "HANDSHAKE", "RX", "TX"],
                &peers,
            ));
        }
        text.push('\n');
    }
    text
}

async fn run(cli: Cli) -> Outcome {
    match cli.command {
        Top::Cluster(cmd) => cluster::cluster(&cli.addr, cmd).await,
        Top::Workload(cmd) => workloads::run(&cli.addr, cmd).await,
        Top::Secrets(cmd) => secrets::run(&cli.addr, cmd).await,
        Top::Hub(cmd) => hub::run(&cli.addr, cmd).await,
        Top::Images(args) => images::run(&cli.addr, args).await,
        Top::Registry(cmd) => registries::run(&cli.addr, cmd).await,
        Top::Build(args) => build::run(&cli.addr, args).await,
        Top::User(cmd) => cluster::user(&cli.addr, cmd).await,
        Top::Events(args) => events::run(&cli.addr, args).await,
        Top::Up(args) => up::up(&cli.addr, args).await,
        Top::Down(args) => up::down(&cli.addr, args).await,
        Top::System(SystemCmd::Overlay { out }) => {
            let rows: Vec<monk_node::views::OverlayRow> = connect(&cli.addr)
                .await?
                .query(&monk_node::api::Query::Overlay, true)
                .await?;
            if out.output == Output::Json {
                return json(&rows);
            }
            Ok(overlay_text(&rows))
        }
        Top::System(SystemCmd::Consensus { out }) => {
            let view: ConsensusView = connect(&cli.addr).await?.consensus().await?;
            if out.output == Output::Json {
                return json(&view);
            }
            let mut text = format!(
                "peer {}  state {}  term {}  leader {}\nlast log {}  commit {}  applied {}  snapshot {}  purged {}\nstate digest {}\nvoters {:?}  learners {:?}\n",
                opt(view.id), view.state, view.term, opt(view.leader_id), opt(view.last_log_index), opt(view.commit_index), opt(view.applied_index), opt(view.snapshot_index), opt(view.purged_index), view.state_digest, view.voters, view.learners
            );
            if !view.followers.is_empty() {
                let rows: Vec<Vec<String>> = view
                    .followers
                    .iter()
                    .map(|f| vec![f.id.to_string(), opt(f.match_index), opt(f.lag)])
                    .collect();
                text.push_str(&table::render(&["FOLLOWER", "MATCH", "LAG"], &rows));
            }
            Ok(text)
        }
        Top::Load { files, quiet } => {
            let (mut templates, contexts) = read_for_loading(&files)?;
            let count = templates.len();
            let mut client = connect(&cli.addr).await?;
            build_into(&mut client, &mut templates, contexts, quiet).await?;
            let index = store_definitions(&mut client, templates).await?;
            Ok(format!(
                "Loaded {count} definition(s) from {} file(s) at index {index}\n",
                files.len()
            ))
        }
        Top::List { out, stale } => {
            let rows: Vec<TemplateRow> = connect(&cli.addr).await?.templates(stale).await?;
            if out.output == Output::Json {
                return json(&rows);
            }
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.path.clone(),
                        r.kind.clone(),
                        r.repository.clone(),
                        opt(r.version.as_ref()),
                        r.generation.to_string(),
                        r.loaded_at_index.to_string(),
                    ]
                })
                .collect();
            Ok(table::render(
                &[
                    "PATH",
                    "KIND",
                    "REPOSITORY",
                    "VERSION",
                    "GENERATION",
                    "LOADED AT",
                ],
                &cells,
            ))
        }
        Top::Eval { .. } => Err(Failure::failed("eval runs offline")),
        Top::Audit(_) => Err(Failure::failed("audit commands run offline")),
        Top::Dump {
            path,
            output,
            raw,
            stale,
            ..
        } => {
            let path = path.trim_start_matches('/').to_string();
            let mut client = connect(&cli.addr).await?;
            // Resolved by the peer: only the one definition travels.
            let definition = if raw {
                let stored: BTreeMap<String, Tree> = client.templates_all(stale).await?;
                stored
                    .get(&path)
                    .cloned()
                    .ok_or_else(|| Failure::failed(format!("no template at {path}")))?
            } else {
                client.resolved_template(&path, stale).await?
            };
            match output {
                DumpOutput::Json => json(&definition),
                DumpOutput::Yaml => {
                    serde_saphyr::to_string(&definition).map_err(|e| Failure::failed(e.to_string()))
                }
            }
        }
        Top::Lint { .. } => Err(Failure::failed("lint runs offline")),
        Top::Containerize(_) => Err(Failure::failed("containerize runs offline")),
        Top::Completions { .. } => Err(Failure::failed("completions run offline")),
        Top::Version { client, out } => version(&cli.addr, client, out.output).await,
    }
}

/// Reads and validates MonkScript files as `monk load` does, offline: every
/// diagnostic goes to stderr as `file:line:col`, and an error fails before anything
/// is sent.
fn read_definitions(files: &[PathBuf]) -> Result<Vec<LoadedTemplate>, Failure> {
    read_definitions_and_builds(files).map(|(templates, _)| templates)
}

/// [`read_definitions`], and the containers with `build:` (no `image:`) in them.
fn read_definitions_and_builds(
    files: &[PathBuf],
) -> Result<(Vec<LoadedTemplate>, Vec<BuildSite>), Failure> {
    let (definitions, builds, warnings) = match load_definitions_and_builds(files) {
        Ok(loaded) => loaded,
        Err(diagnostics) => {
            let errors = diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .count();
            for d in &diagnostics {
                eprintln!("{d}");
            }
            return Err(Failure::failed(format!(
                "{errors} error(s); nothing was loaded"
            )));
        }
    };
    for w in &warnings {
        eprintln!("{w}");
    }
    let templates = definitions
        .into_iter()
        .map(|d| LoadedTemplate {
            path: d.path,
            kind: d.kind,
            definition: d.definition,
        })
        .collect();
    Ok((templates, builds))
}

/// Reads the files (checked offline, every build context read) for `load` and `up`:
/// the templates and the contexts still to build.
fn read_for_loading(
    files: &[PathBuf],
) -> Result<(Vec<LoadedTemplate>, Vec<build::Context>), Failure> {
    let (templates, sites) = read_definitions_and_builds(files)?;
    Ok((templates, build::read_contexts(&sites)?))
}

/// Builds what `contexts` need (see `build.rs`) and writes the images into the
/// templates; then they can be loaded.
async fn build_into(
    client: &mut MonkClient,
    templates: &mut [LoadedTemplate],
    contexts: Vec<build::Context>,
    quiet: bool,
) -> Result<(), Failure> {
    let built = build::build_all(client, contexts, quiet).await?;
    build::resolve_images(templates, &built);
    Ok(())
}

/// Stores definitions in the cluster (one `templates-loaded` command); the index it
/// was committed at.
async fn store_definitions(
    client: &mut MonkClient,
    templates: Vec<LoadedTemplate>,
) -> Result<u64, Failure> {
    let outcome = client
        .propose(&actor(), Command::TemplatesLoaded { templates })
        .await?;
    match outcome.applied {
        Applied::Accepted { .. } => Ok(outcome.index),
        Applied::Rejected { reason } => Err(Failure::failed(format!("load rejected: {reason}"))),
    }
}

/// One side of `monk version`.
#[derive(serde::Serialize)]
struct VersionRow {
    version: String,
    format_version: u32,
}

/// `monk version`: the client's side always; the peer's when one answers (its
/// `cluster info` carries its build and entry format version).
async fn version(addr: &str, client_only: bool, output: Output) -> Outcome {
    let client = VersionRow {
        version: env!("CARGO_PKG_VERSION").to_string(),
        format_version: FORMAT_VERSION,
    };
    let peer: Option<Result<InfoView, Failure>> = match client_only {
        true => None,
        false => Some(match connect(addr).await {
            Ok(mut c) => c.info().await.map_err(Failure::from),
            Err(failure) => Err(failure),
        }),
    };
    let answered = match &peer {
        Some(Ok(info)) => Some(info),
        _ => None,
    };
    let text = match output {
        Output::Json => json(&serde_json::json!({
            "client": client,
            "peer": answered.map(|info| VersionRow {
                version: info.version.clone(),
                format_version: info.format_version,
            }),
        }))?,
        Output::Table => {
            let mut text = format!(
                "client  monk {} (entry format {})\n",
                client.version, client.format_version
            );
            if let Some(info) = answered {
                text.push_str(&version_peer_line(addr, info));
            }
            text
        }
    };
    match peer {
        Some(Err(failure)) => {
            output::out(&text);
            Err(failure)
        }
        _ => Ok(text),
    }
}

fn version_peer_line(addr: &str, info: &InfoView) -> String {
    let build = match info.version.is_empty() {
        true => "monkd of a build older than version reporting".to_string(),
        false => format!(
            "monkd {} (entry format {})",
            info.version, info.format_version
        ),
    };
    let mut line = format!(
        "peer    {build} at {addr}: {} in cluster {}\n",
        info.name,
        opt(info.cluster.as_ref())
    );
    if !info.version.is_empty() && info.format_version < FORMAT_VERSION {
        line.push_str(&format!(
            "note    this client writes entry format {FORMAT_VERSION}, which the peer (format {}) may refuse: use a monk of its build\n",
            info.format_version
        ));
    }
    line
}

/// Prints what an offline command produced and turns its exit code into ours.
fn finish(output: monk_scripting::cli_output::CommandOutput) -> ExitCode {
    output::out(&output.stdout);
    eprint!("{}", output.stderr);
    ExitCode::from(u8::try_from(output.exit_code).unwrap_or(1))
}

/// Commands that need no peer.
fn offline(command: &Top) -> Option<ExitCode> {
    match command {
        Top::Audit(cmd) => Some(audit::run(cmd)),
        Top::Containerize(args) => Some(containerize::run(args)),
        Top::Eval {
            vars,
            vars_file,
            script,
        } => {
            let file_text = match vars_file.as_ref().map(std::fs::read_to_string).transpose() {
                Ok(text) => text,
                Err(e) => {
                    eprintln!(
                        "monk: {}: {e}",
                        vars_file
                            .as_ref()
                            .map(|p| p.display().to_string())
                            .unwrap_or_default()
                    );
                    return Some(ExitCode::from(2));
                }
            };
            Some(finish(monk_scripting::arrow::cli::eval_command(
                script,
                vars,
                file_text.as_deref(),
            )))
        }
        Top::Completions { shell } => {
            // Into memory first: clap_complete panics when its writer fails (a closed
            // pipe), a write of ours ends quietly.
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "monk", &mut script);
            output::out(&String::from_utf8_lossy(&script));
            Some(ExitCode::SUCCESS)
        }
        Top::Lint { paths, strict, out } => Some(finish(lint_command(
            paths,
            *strict,
            out.output == Output::Json,
        ))),
        Top::Dump {
            path, from, output, ..
        } if !from.is_empty() => {
            let format = match output {
                DumpOutput::Yaml => DumpFormat::Yaml,
                DumpOutput::Json => DumpFormat::Json,
            };
            Some(finish(dump_command(path, from, format)))
        }
        _ => None,
    }
}

/// Online audit: fetch the peers' Raft data into a scratch dir that lives until the
/// command has run; `None` when the command needs nothing fetched.
fn fetch_audit_data(cli: &mut Cli) -> Result<Option<tempfile::TempDir>, Failure> {
    let Top::Audit(cmd) = &mut cli.command else {
        return Ok(None);
    };
    if !audit::needs_online(cmd) {
        return Ok(None);
    }
    let scratch = tempfile::tempdir()
        .map_err(|e| Failure::failed(format!("cannot create a scratch dir: {e}")))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::failed(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(audit::fetch_online(cmd, &cli.addr, scratch.path()))?;
    Ok(Some(scratch))
}

/// Prints the reason (every line of it: several replicas may each have one) and exits
/// with the code its kind decides (`exit.rs`).
fn fail(failure: Failure) -> ExitCode {
    eprintln!("monk: {}", failure.reason.trim_end());
    failure.exit_code()
}

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    credentials::set_explicit(cli.credentials.clone());
    let _scratch = match fetch_audit_data(&mut cli) {
        Ok(scratch) => scratch,
        Err(failure) => return fail(failure),
    };
    if let Some(code) = offline(&cli.command) {
        return code;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("monk: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(text) => {
            output::out(&text);
            ExitCode::SUCCESS
        }
        Err(failure) => fail(failure),
    }
}
