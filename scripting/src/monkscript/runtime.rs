//! From a resolved runnable to what a container engine runs: [`runnable_spec`] takes
//! a runnable definition with inheritance (and group variables) already applied, plus
//! the `monk run --set name=value` overrides, and produces a [`RunnableSpec`]: final
//! variable values, one [`ContainerSpec`] per container with image, command,
//! environment, ports, mounts, rendered files and limits, the services, and the summed
//! resource requests. It is pure: ArrowScript host operators (`secret`,
//! `connection-hostname`, …) go to the [`Host`] the caller passes; no I/O, no clock.
//!
//! Decisions (also in `docs/monkscript.md`, "From runnable to containers"):
//! - Variables are evaluated in dependency order (found from the `$names` each script
//!   reads); a cycle is one error naming every variable in it. `$kebab-name` and
//!   `$snake_name` both find a variable, whichever way it is declared. An unknown
//!   name is nil (kits read group variables with `default(...)` for standalone
//!   runs), and so is a variable's own name inside its value
//!   (`user: <- $user default("admin")` reads the hidden group variable).
//! - `bash: X` runs `X` with bash when the image has it, else `/bin/sh` (many images
//!   lack bash): entrypoint [`BASH_ENTRYPOINT`], cmd `[X]`. It replaces `entrypoint`
//!   and `cmd`; writing both is an error.
//! - The default restart policy is `unless-stopped`: Monk restarts crashed containers,
//!   and a container the node stopped itself stays stopped when the engine restarts.
//! - List entries (ports, environment, paths, labels) whose script yields nil, `false`
//!   or `""` are dropped (`<- $flag then("80:80")`); a script yielding a list adds
//!   each element.
//! - Environment: variables with `env:` first (in declaration order), then the
//!   container's `environment`; a later entry with the same name replaces the value
//!   and keeps the first position.
//!
//! Every problem is a [`SpecError`] with the field path (`containers.web.ports[1]`);
//! all problems are collected (up to [`SPEC_ERRORS_MAX`]), never a panic.
//!
//! Why one file of this size: every section reader is a method on the one evaluation
//! context `Run` (variables evaluated so far, fuel left, errors), and each reads the
//! sections before it (containers need variables, services need containers, files need
//! both). Field parsers (`parse.rs`), templates (`template.rs`) and placement inputs
//! (`placement.rs`) are already apart; splitting the section readers would only move
//! `Run`'s internals into `pub(super)` items.

pub mod parse;
pub mod placement;
pub mod template;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::arrow::{self, Host, Limits, Script, Value, Vars};
use crate::tree::Tree;

use super::model::VariableType;

/// Most containers one runnable may define; real kits have at most 6 (a pod).
pub const CONTAINERS_MAX: usize = 64;
/// Most variables one runnable may define; the largest corpus runnable has about 80.
pub const VARIABLES_MAX: usize = 1_024;
/// Most entries in one list-valued field (ports, paths, environment, labels, caps,
/// ulimits); real lists have under 40, and the bound caps the work per container.
pub const LIST_ITEMS_MAX: usize = 1_024;
/// Most services and most files one runnable may define.
pub const SERVICES_MAX: usize = 256;
/// Most files one runnable may write into its containers.
pub const FILES_MAX: usize = 256;
/// Largest rendered file: 4 MiB. Config files are under 20 KiB; the largest corpus
/// file is a 2.6 MiB blockchain spec written inline (`monk-io/templates/nuclei.yaml`).
pub const FILE_BYTES_MAX: usize = 4 << 20;
/// Largest total of all rendered files of a runnable: 16 MiB, so a spec sent over
/// the node's API stays bounded.
pub const TOTAL_FILE_BYTES_MAX: usize = 16 << 20;
/// Fuel for all ArrowScript a runnable runs (each script also has its own
/// [`arrow::FUEL_STEPS_MAX`]): ten worst-case scripts, thousands of real ones.
pub const RUNNABLE_FUEL_STEPS_MAX: u64 = 10 * arrow::FUEL_STEPS_MAX;
/// Errors collected before giving up; more would not help anyone read them.
pub const SPEC_ERRORS_MAX: usize = 100;
/// The default mode of a file written from `files` (MonkScript docs, config files).
pub const DEFAULT_FILE_MODE: u32 = 0o600;
/// Where `${monk-volume-path}` points unless the caller overrides it (the node
/// passes its real volume directory as an override).
pub const DEFAULT_MONK_VOLUME_PATH: &str = "/var/lib/monkd/volumes";
/// Builtin variables every runnable sees; an override of the same name replaces them.
/// `moncc-volume-path` is the name from Monk's earlier days, still used by old kits.
pub const BUILTIN_VARIABLES: &[(&str, &str)] = &[
    ("monk-volume-path", DEFAULT_MONK_VOLUME_PATH),
    ("moncc-volume-path", DEFAULT_MONK_VOLUME_PATH),
];
/// The entrypoint `bash: X` becomes; the command `X` is its `$1`.
pub const BASH_ENTRYPOINT: &[&str] = &[
    "/bin/sh",
    "-c",
    "if command -v bash >/dev/null 2>&1; then exec bash -c \"$1\"; else exec /bin/sh -c \"$1\"; fi",
    "bash",
];

/// A runnable ready to hand to a container engine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunnableSpec {
    /// The runnable's path (`namespace/name`) as given.
    pub path: String,
    /// Final text of every variable (nil is the empty string), builtins included.
    pub variables: BTreeMap<String, String>,
    /// Containers in the order written.
    pub containers: Vec<ContainerSpec>,
    /// Services in the order written.
    pub services: Vec<ServiceSpec>,
    /// `resources.requests` summed over the containers.
    pub requests: Requests,
}

/// Resource requests summed over containers (scheduling input).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requests {
    /// CPU in millicores (1000 = one core).
    pub cpu_millis: u64,
    /// Memory in MB (MiB).
    pub memory_mb: u64,
}

/// One container of a runnable.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// The key under `containers:`.
    pub name: String,
    /// Image reference with its tag (`image` + `image-tag`, default tag `latest`) or digest.
    pub image: String,
    /// Replaces the image's entrypoint when set.
    pub entrypoint: Option<Vec<String>>,
    /// Replaces the image's command when set.
    pub cmd: Option<Vec<String>>,
    /// Environment, no duplicate names, in a fixed order (see the module docs).
    pub env: Vec<(String, String)>,
    /// Published ports: `ports` then services with `publish`/`host-port`.
    pub ports: Vec<PortSpec>,
    /// Bind mounts from `paths`.
    pub mounts: Vec<MountSpec>,
    /// Files to write into the container before it starts.
    pub files: Vec<FileSpec>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub restart: RestartPolicy,
    /// Labels as written (`k=v` list or map), in order.
    pub labels: Vec<(String, String)>,
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// Memory limit (`memory`), in bytes.
    pub memory_bytes: Option<u64>,
    /// CPU quota (`cpuquota`), in microseconds per 100 ms period.
    pub cpu_quota: Option<i64>,
    /// `/dev/shm` size (`shm-size`), in bytes.
    pub shm_size_bytes: Option<u64>,
    pub ulimits: Vec<Ulimit>,
    /// Signal sent to stop the container (`SIGTERM` if `None`).
    pub stop_signal: Option<String>,
    /// Seconds between the stop signal and SIGKILL (`stop-grace-period`).
    pub stop_grace_secs: Option<u64>,
}

/// One published port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSpec {
    /// Host address to bind (all addresses if `None`).
    pub host_ip: Option<String>,
    /// Host port (the engine picks one if `None`).
    pub host_port: Option<u16>,
    pub container_port: u16,
    pub protocol: Protocol,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

/// A bind mount (`source:target[:options]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    /// Host path, named volume, or `blobs://name`.
    pub source: String,
    /// Absolute path inside the container.
    pub target: String,
    pub read_only: bool,
    /// Other options as written (`z`, `Z`, propagation modes).
    pub options: Vec<String>,
}

/// A file written into a container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSpec {
    /// The key under `files:`.
    pub name: String,
    /// Absolute path inside the container.
    pub path: String,
    /// Permission bits (`0o644`).
    pub mode: u32,
    /// Contents after template rendering (unless `raw: true`).
    pub contents: Vec<u8>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    No,
    Always,
    #[default]
    UnlessStopped,
    OnFailure {
        max_retries: Option<u32>,
    },
}

/// A resource limit (`ulimits: {nofile: {soft, hard}}`); `-1` is unlimited.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// A service the runnable exposes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSpec {
    /// The key under `services:`.
    pub name: String,
    /// The container serving it (the only container when not written).
    pub container: Option<String>,
    pub port: Option<u16>,
    pub protocol: ServiceProtocol,
    /// Whether the port is reachable from outside the cluster.
    pub publish: bool,
    pub host_port: Option<u16>,
    pub description: Option<String>,
    /// An address computed by the definition (entities), when written.
    pub address: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceProtocol {
    Tcp,
    Udp,
    /// Values shared along a connection, no network port.
    Custom,
}

/// A problem at a field path (`containers.web.ports[1]`, `variables.port`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{at}: {message}")]
pub struct SpecError {
    pub at: String,
    pub message: String,
}

/// Builds the spec of the resolved runnable at `path`. `overrides` replace variable
/// values (and builtins such as `monk-volume-path`); `host` answers host operators.
pub fn runnable_spec(
    path: &str,
    resolved: &Tree,
    overrides: &BTreeMap<String, String>,
    host: &mut dyn Host,
) -> Result<RunnableSpec, Vec<SpecError>> {
    let mut run = Run {
        vars: VarView::default(),
        host,
        errors: Vec::new(),
        fuel_left: RUNNABLE_FUEL_STEPS_MAX,
        file_bytes: 0,
    };
    if !matches!(resolved, Tree::Map(_)) {
        run.error(
            "",
            format!("a runnable must be a map, not {}", resolved.type_name()),
        );
        return Err(run.errors);
    }
    let declared = run.declare_variables(resolved.get("variables"), overrides);
    run.evaluate_variables(&declared);
    let variable_env = run.variable_env(&declared);
    let mut containers = run.containers(resolved.get("containers"), &variable_env);
    let services = run.services(resolved.get("services"), &mut containers);
    run.files(resolved.get("files"), &mut containers);
    let requests = run.requests(resolved.get("containers"));
    if !run.errors.is_empty() {
        return Err(run.errors);
    }
    Ok(RunnableSpec {
        path: path.to_string(),
        variables: run
            .vars
            .values
            .iter()
            .map(|(k, v)| (k.clone(), v.to_text()))
            .collect(),
        containers,
        services,
        requests,
    })
}

/// Variables as scripts see them: `$name` finds `name`, else its kebab/snake twin,
/// else nil. Kits read group variables that a runnable run on its own lacks and
/// rely on `default(...)` for that case (`$mysql_database_user default("db_user")`),
/// so an unknown name is nil rather than an error.
#[derive(Default)]
struct VarView {
    values: BTreeMap<String, Value>,
    /// Variables whose evaluation failed (already reported): scripts reading them
    /// are skipped instead of reporting the same problem again.
    failed: std::collections::BTreeSet<String>,
}

impl VarView {
    fn key<'a>(&'a self, name: &str) -> Option<&'a String> {
        if let Some((key, _)) = self.values.get_key_value(name) {
            return Some(key);
        }
        [name.replace('_', "-"), name.replace('-', "_")]
            .iter()
            .find_map(|alt| self.values.get_key_value(alt.as_str()).map(|(k, _)| k))
    }
}

impl Vars for VarView {
    fn get(&self, name: &str) -> Option<Value> {
        let value = self.key(name).and_then(|k| self.values.get(k));
        Some(value.cloned().unwrap_or(Value::Nil))
    }
}

/// A variable as declared, before evaluation.
struct Declared {
    name: String,
    ty: Option<VariableType>,
    /// The value to evaluate (an override replaces the written one).
    value: Tree,
    /// Whether `value` came from an override (then it is literal text, never a script).
    overridden: bool,
    required: bool,
    env: Option<Tree>,
}

/// The state of one `runnable_spec` call.
struct Run<'h> {
    vars: VarView,
    host: &'h mut dyn Host,
    errors: Vec<SpecError>,
    fuel_left: u64,
    file_bytes: usize,
}

fn at_index(at: &str, i: usize) -> String {
    format!("{at}[{i}]")
}

fn entries(tree: Option<&Tree>) -> &[(String, Tree)] {
    match tree {
        Some(Tree::Map(entries)) => entries,
        _ => &[],
    }
}

/// Entries of a named section without the old kits' `defines:` marker.
fn named(tree: Option<&Tree>) -> impl Iterator<Item = &(String, Tree)> {
    entries(tree).iter().filter(|(k, _)| k != "defines")
}

fn is_dropped(value: &Value) -> bool {
    match value {
        Value::Nil | Value::Bool(false) => true,
        Value::Str(s) => s.trim().is_empty(),
        _ => false,
    }
}

impl Run<'_> {
    fn error(&mut self, at: &str, message: impl Into<String>) {
        if self.errors.len() < SPEC_ERRORS_MAX {
            self.errors.push(SpecError {
                at: at.to_string(),
                message: message.into(),
            });
        }
    }

    /// Runs a parsed script against the variables evaluated so far; `None` (with
    /// nothing reported) when it reads a variable that already failed.
    fn run_script(&mut self, at: &str, script: &Script) -> Option<Value> {
        let reads_failed = script
            .variables()
            .iter()
            .any(|name| self.vars.failed.iter().any(|f| same_name(f, name)));
        if reads_failed {
            return None;
        }
        if self.fuel_left == 0 {
            self.error(
                at,
                format!("the runnable's scripts need more than {RUNNABLE_FUEL_STEPS_MAX} steps"),
            );
            return None;
        }
        let limits = Limits {
            fuel_steps: self.fuel_left.min(arrow::FUEL_STEPS_MAX),
            ..Limits::default()
        };
        let (result, used) = arrow::eval_metered(script, &self.vars, self.host, limits);
        self.fuel_left = self.fuel_left.saturating_sub(used);
        match result {
            Ok(value) => Some(value),
            Err(err) => {
                let (line, col) = arrow::line_col(script.source(), err.offset);
                let place = if line > 1 {
                    format!("line {line}, column {col}")
                } else {
                    format!("column {col}")
                };
                self.error(at, format!("ArrowScript error at {place}: {}", err.message));
                None
            }
        }
    }

    fn parse_script(&mut self, at: &str, text: &str) -> Option<Script> {
        match arrow::parse(text) {
            Ok(script) => Some(script),
            Err(err) => {
                self.error(
                    at,
                    format!(
                        "ArrowScript syntax error at line {}, column {}: {}",
                        err.line, err.col, err.message
                    ),
                );
                None
            }
        }
    }

    /// The value of a field: a script's result, or the literal.
    fn value(&mut self, at: &str, tree: &Tree) -> Option<Value> {
        match tree {
            Tree::Str(text) if arrow::has_arrow_prefix(text) => {
                let script = self.parse_script(at, text)?;
                self.run_script(at, &script)
            }
            _ => match Value::from_tree(tree, arrow::VALUE_NESTING_LEVELS_MAX) {
                Ok(value) => Some(value),
                Err(message) => {
                    self.error(at, message);
                    None
                }
            },
        }
    }

    /// A text field: `None` when absent, nil, or in error.
    fn text(&mut self, at: &str, tree: Option<&Tree>) -> Option<String> {
        match self.value(at, tree?)? {
            Value::Nil => None,
            value => Some(value.to_text()),
        }
    }

    /// A text field that must be present.
    fn required_text(&mut self, at: &str, tree: Option<&Tree>) -> Option<String> {
        if tree.is_none_or(|t| *t == Tree::Null) {
            self.error(at, "is required");
            return None;
        }
        let text = self.text(at, tree);
        if text.as_deref().is_some_and(|t| t.trim().is_empty()) {
            self.error(at, "is empty");
            return None;
        }
        text
    }

    /// A field parsed from its text by `parse`.
    fn parsed<T>(
        &mut self,
        at: &str,
        tree: Option<&Tree>,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        let text = self.text(at, tree)?;
        match parse(&text) {
            Ok(value) => Some(value),
            Err(message) => {
                self.error(at, message);
                None
            }
        }
    }

    fn bool(&mut self, at: &str, tree: Option<&Tree>) -> Option<bool> {
        match self.value(at, tree?)? {
            Value::Nil => None,
            Value::Bool(b) => Some(b),
            Value::Str(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Value::Str(s) if s.eq_ignore_ascii_case("false") || s.is_empty() => Some(false),
            other => {
                self.error(
                    at,
                    format!("expected true or false, got {}", other.describe()),
                );
                None
            }
        }
    }

    fn int(&mut self, at: &str, tree: Option<&Tree>) -> Option<i64> {
        match self.value(at, tree?)? {
            Value::Nil => None,
            Value::Int(i) => Some(i),
            Value::Str(s) if s.trim().parse::<i64>().is_ok() => s.trim().parse().ok(),
            other => {
                self.error(at, format!("expected an integer, got {}", other.describe()));
                None
            }
        }
    }

    /// The entries of a list field, each as text with its path; scripts yielding
    /// nil/false/"" are dropped, scripts yielding lists add every element.
    fn items(&mut self, at: &str, tree: Option<&Tree>) -> Vec<(String, String)> {
        let items: Vec<(String, &Tree)> = match tree {
            None | Some(Tree::Null) => return Vec::new(),
            Some(Tree::Seq(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| (at_index(at, i), item))
                .collect(),
            Some(other) => vec![(at.to_string(), other)],
        };
        let mut out = Vec::new();
        for (item_at, item) in items {
            let Some(value) = self.value(&item_at, item) else {
                continue;
            };
            let values = match value {
                Value::Array(list) => list.items().to_vec(),
                value => vec![value],
            };
            for value in values.iter().filter(|v| !is_dropped(v)) {
                if out.len() >= LIST_ITEMS_MAX {
                    self.error(at, format!("more than {LIST_ITEMS_MAX} entries"));
                    return out;
                }
                out.push((item_at.clone(), value.to_text()));
            }
        }
        out
    }

    /// `K=V` entries of a list (or a map `K: V`), for environment and labels.
    fn pairs(&mut self, at: &str, tree: Option<&Tree>) -> Vec<(String, String)> {
        if let Some(Tree::Map(map)) = tree {
            let mut out = Vec::new();
            for (key, value) in map.iter().take(LIST_ITEMS_MAX) {
                let key_at = format!("{at}.{key}");
                if let Some(value) = self.value(&key_at, value) {
                    out.push((key.clone(), value.to_text()));
                }
            }
            return out;
        }
        let mut out = Vec::new();
        for (item_at, text) in self.items(at, tree) {
            match parse::key_value(&text) {
                Ok(pair) => out.push(pair),
                Err(message) => self.error(&item_at, message),
            }
        }
        out
    }
}

/// Variables: declaration, override, dependency-ordered evaluation, type checks.
impl Run<'_> {
    fn declare_variables(
        &mut self,
        section: Option<&Tree>,
        overrides: &BTreeMap<String, String>,
    ) -> Vec<Declared> {
        let mut declared = Vec::new();
        for (name, tree) in named(section) {
            if declared.len() >= VARIABLES_MAX {
                self.error("variables", format!("more than {VARIABLES_MAX} variables"));
                break;
            }
            if let Some(variable) = self.declare(name, tree) {
                declared.push(variable);
            }
        }
        for (name, text) in overrides {
            let at = format!("variables.{name}");
            if let Some(variable) = declared.iter_mut().find(|d| d.name == *name) {
                variable.value = Tree::Str(text.clone());
                variable.overridden = true;
            } else if BUILTIN_VARIABLES.iter().any(|(builtin, _)| builtin == name) {
                self.vars.values.insert(name.clone(), Value::str(text));
            } else {
                self.error(&at, "is overridden but the runnable has no such variable");
            }
        }
        for (name, default) in BUILTIN_VARIABLES {
            let taken = declared.iter().any(|d| d.name == *name);
            if !taken && !self.vars.values.contains_key(*name) {
                self.vars
                    .values
                    .insert(name.to_string(), Value::str(default));
            }
        }
        declared
    }

    fn declare(&mut self, name: &str, tree: &Tree) -> Option<Declared> {
        let at = format!("variables.{name}");
        let long = matches!(tree, Tree::Map(entries) if entries.iter().any(|(k, _)| matches!(k.as_str(), "type" | "value" | "env" | "description" | "required")));
        if !long {
            return Some(Declared {
                name: name.to_string(),
                ty: inferred_type(tree),
                value: tree.clone(),
                overridden: false,
                required: false,
                env: None,
            });
        }
        let ty = match tree.get("type") {
            None | Some(Tree::Null) => None,
            Some(Tree::Str(written)) => match VariableType::parse(written.trim()) {
                Some(ty) => Some(ty),
                None => {
                    self.error(
                        &format!("{at}.type"),
                        format!(
                            "unknown type `{written}` (expected one of {})",
                            VariableType::NAMES.join(", ")
                        ),
                    );
                    return None;
                }
            },
            Some(other) => {
                self.error(
                    &format!("{at}.type"),
                    format!("a type cannot be {}", other.type_name()),
                );
                return None;
            }
        };
        let required = match tree.get("required") {
            None | Some(Tree::Null) | Some(Tree::Bool(false)) => false,
            Some(Tree::Bool(true)) => true,
            Some(Tree::Str(s)) if s == "true" || s == "false" => s == "true",
            Some(other) => {
                self.error(
                    &format!("{at}.required"),
                    format!("expected true or false, got {}", other.type_name()),
                );
                false
            }
        };
        Some(Declared {
            name: name.to_string(),
            ty,
            value: tree.get("value").cloned().unwrap_or(Tree::Null),
            overridden: false,
            required,
            env: tree.get("env").cloned(),
        })
    }

    /// Evaluates every declared variable, dependencies first.
    fn evaluate_variables(&mut self, declared: &[Declared]) {
        let index: BTreeMap<&str, usize> = declared
            .iter()
            .enumerate()
            .map(|(i, d)| (d.name.as_str(), i))
            .collect();
        let mut scripts: Vec<Option<Script>> = Vec::with_capacity(declared.len());
        for variable in declared {
            let script = match &variable.value {
                Tree::Str(text) if !variable.overridden && arrow::has_arrow_prefix(text) => {
                    let at = format!("variables.{}", variable.name);
                    self.parse_script(&at, text)
                }
                _ => None,
            };
            scripts.push(script);
        }
        let view = VarView {
            values: declared
                .iter()
                .map(|d| (d.name.clone(), Value::Nil))
                .collect(),
            failed: Default::default(),
        };
        // A variable reading its own name (`user: <- $user default("admin")`, or the
        // other spelling `airbyte-version: <- ${airbyte_version}`) reads the enclosing
        // scope, a group's variable, which a member's own declaration hides: nil here.
        // So it is not a dependency, and not a cycle.
        let dependencies: Vec<Vec<usize>> = scripts
            .iter()
            .enumerate()
            .map(|(own, script)| {
                script.as_ref().map_or_else(Vec::new, |script| {
                    script
                        .variables()
                        .into_iter()
                        .filter_map(|name| view.key(name).and_then(|k| index.get(k.as_str())))
                        .copied()
                        .filter(|dep| *dep != own)
                        .collect()
                })
            })
            .collect();
        let order = self.evaluation_order(declared, &dependencies);
        for (i, variable) in declared.iter().enumerate() {
            if !order.contains(&i) {
                self.vars.failed.insert(variable.name.clone());
            }
        }
        for i in order {
            self.evaluate_variable(&declared[i], scripts[i].as_ref());
        }
    }

    /// Variables in an order where each comes after those it reads; variables on a
    /// cycle are reported once per cycle and left out.
    fn evaluation_order(
        &mut self,
        declared: &[Declared],
        dependencies: &[Vec<usize>],
    ) -> Vec<usize> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Active,
            Done,
            Broken,
        }
        let mut marks = vec![Mark::New; declared.len()];
        let mut order = Vec::with_capacity(declared.len());
        for root in 0..declared.len() {
            if marks[root] != Mark::New {
                continue;
            }
            // Iterative depth-first search: (variable, next dependency to look at).
            let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
            marks[root] = Mark::Active;
            while let Some(&mut (node, ref mut next)) = stack.last_mut() {
                if let Some(&dep) = dependencies[node].get(*next) {
                    *next += 1;
                    match marks[dep] {
                        Mark::New => {
                            marks[dep] = Mark::Active;
                            stack.push((dep, 0));
                        }
                        Mark::Active => {
                            let start = stack.iter().position(|(n, _)| *n == dep).unwrap_or(0);
                            let mut names: Vec<&str> = stack[start..]
                                .iter()
                                .map(|(n, _)| declared[*n].name.as_str())
                                .collect();
                            names.push(&declared[dep].name);
                            self.error(
                                &format!("variables.{}", declared[dep].name),
                                format!(
                                    "variables depend on each other in a cycle: {}",
                                    names.join(" -> ")
                                ),
                            );
                            for (n, _) in &stack[start..] {
                                marks[*n] = Mark::Broken;
                            }
                        }
                        Mark::Done | Mark::Broken => {}
                    }
                    continue;
                }
                stack.pop();
                let broken = marks[node] == Mark::Broken
                    || dependencies[node].iter().any(|d| marks[*d] == Mark::Broken);
                if broken {
                    marks[node] = Mark::Broken;
                } else {
                    marks[node] = Mark::Done;
                    order.push(node);
                }
            }
        }
        order
    }

    fn evaluate_variable(&mut self, variable: &Declared, script: Option<&Script>) {
        if !self.evaluate_one(variable, script) {
            self.vars.failed.insert(variable.name.clone());
        }
    }

    /// Evaluates one variable into `self.vars`; false when it failed.
    fn evaluate_one(&mut self, variable: &Declared, script: Option<&Script>) -> bool {
        let at = format!("variables.{}", variable.name);
        let raw = match (script, &variable.value) {
            (Some(script), _) => match self.run_script(&at, script) {
                Some(value) => value,
                None => return false,
            },
            (None, Tree::Str(text)) if arrow::has_arrow_prefix(text) && !variable.overridden => {
                return false
            }
            (None, tree) => match Value::from_tree(tree, arrow::VALUE_NESTING_LEVELS_MAX) {
                Ok(value) => value,
                Err(message) => {
                    self.error(&at, message);
                    return false;
                }
            },
        };
        if variable.required && raw == Value::Nil {
            self.error(&at, "is required but has no value (set it with --set)");
            return false;
        }
        match convert(variable.ty, raw) {
            Ok(value) => {
                self.vars.values.insert(variable.name.clone(), value);
                true
            }
            Err(message) => {
                let from = if variable.overridden {
                    " (override)"
                } else {
                    ""
                };
                self.error(&at, format!("{message}{from}"));
                false
            }
        }
    }

    /// `(ENV_NAME, value)` of every variable with `env:`, in declaration order.
    fn variable_env(&mut self, declared: &[Declared]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for variable in declared {
            let Some(env) = &variable.env else { continue };
            let at = format!("variables.{}.env", variable.name);
            let Some(name) = self.text(&at, Some(env)) else {
                continue;
            };
            let name = name.trim().to_string();
            if name.is_empty() || name.contains(['=', ' ', '\t', '\n']) {
                self.error(&at, format!("`{name}` is not an environment variable name"));
                continue;
            }
            let value = self
                .vars
                .get(&variable.name)
                .map(|v| v.to_text())
                .unwrap_or_default();
            out.push((name, value));
        }
        out
    }
}

/// Whether two variable names are the same up to `-`/`_`.
fn same_name(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .all(|(x, y)| x == y || (x == b'-' || x == b'_') && (y == b'-' || y == b'_'))
}

/// The type a short-form literal implies (`port: 8080` is an int).
fn inferred_type(tree: &Tree) -> Option<VariableType> {
    match tree {
        Tree::Int(_) => Some(VariableType::Int),
        Tree::Float(_) => Some(VariableType::Float),
        Tree::Bool(_) => Some(VariableType::Bool),
        Tree::Str(text) if !arrow::has_arrow_prefix(text) => Some(VariableType::String),
        _ => None,
    }
}

/// Checks and converts a value to a declared type; nil is allowed for every type.
pub fn convert(ty: Option<VariableType>, value: Value) -> Result<Value, String> {
    let Some(ty) = ty else { return Ok(value) };
    let fail = |value: &Value| {
        Err(format!(
            "{} is not a valid {}",
            value.describe(),
            type_name(ty)
        ))
    };
    match (ty, &value) {
        (_, Value::Nil) => Ok(value),
        (VariableType::String, Value::Str(_)) => Ok(value),
        (VariableType::String, _) => Ok(Value::str(&value.to_text())),
        (VariableType::Int, Value::Int(_)) => Ok(value),
        (VariableType::Int, Value::BigInt(i)) => {
            i64::try_from(*i).map(Value::Int).or_else(|_| fail(&value))
        }
        (VariableType::Int, Value::Str(s)) => {
            s.trim().parse().map(Value::Int).or_else(|_| fail(&value))
        }
        (VariableType::Float, Value::Float(_)) => Ok(value),
        (VariableType::Float, Value::Int(i)) => Ok(Value::Float(*i as f64)),
        (VariableType::Float, Value::Str(s)) => match s.trim().parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Value::Float(f)),
            _ => fail(&value),
        },
        (VariableType::BigInt, Value::BigInt(_)) => Ok(value),
        (VariableType::BigInt, Value::Int(i)) => Ok(Value::BigInt(i128::from(*i))),
        (VariableType::BigInt, Value::Str(s)) => {
            let digits = s.trim();
            let digits = digits.strip_suffix('n').unwrap_or(digits);
            digits.parse().map(Value::BigInt).or_else(|_| fail(&value))
        }
        (VariableType::Bool, Value::Bool(_)) => Ok(value),
        (VariableType::Bool, Value::Str(s)) if s.trim().eq_ignore_ascii_case("true") => {
            Ok(Value::Bool(true))
        }
        (VariableType::Bool, Value::Str(s)) if s.trim().eq_ignore_ascii_case("false") => {
            Ok(Value::Bool(false))
        }
        _ => fail(&value),
    }
}

fn type_name(ty: VariableType) -> &'static str {
    match ty {
        VariableType::String => "string",
        VariableType::Int => "int",
        VariableType::Float => "float",
        VariableType::BigInt => "bigint",
        VariableType::Bool => "bool",
    }
}

/// Containers, services, files, requests.
impl Run<'_> {
    fn containers(
        &mut self,
        section: Option<&Tree>,
        variable_env: &[(String, String)],
    ) -> Vec<ContainerSpec> {
        let mut out = Vec::new();
        for (name, tree) in named(section) {
            if out.len() >= CONTAINERS_MAX {
                self.error(
                    "containers",
                    format!("more than {CONTAINERS_MAX} containers"),
                );
                break;
            }
            let at = format!("containers.{name}");
            if !matches!(tree, Tree::Map(_)) {
                self.error(
                    &at,
                    format!("a container must be a map, not {}", tree.type_name()),
                );
                continue;
            }
            out.push(self.container(&at, name, tree, variable_env));
        }
        if out.is_empty() && self.errors.is_empty() {
            self.error("containers", "a runnable needs at least one container");
        }
        out
    }

    fn container(
        &mut self,
        at: &str,
        name: &str,
        tree: &Tree,
        variable_env: &[(String, String)],
    ) -> ContainerSpec {
        let field = |key: &str| format!("{at}.{key}");
        let image = self.image(at, tree);
        let (entrypoint, cmd) = self.command(at, tree);
        let mut env = variable_env.to_vec();
        for (key, value) in self.pairs(&field("environment"), tree.get("environment")) {
            set_entry(&mut env, key, value);
        }
        let ports = self
            .items(&field("ports"), tree.get("ports"))
            .into_iter()
            .filter_map(|(item_at, text)| self.checked(&item_at, parse::port(&text)))
            .collect();
        let mounts = self
            .items(&field("paths"), tree.get("paths"))
            .into_iter()
            .filter_map(|(item_at, text)| self.checked(&item_at, parse::mount(&text)))
            .collect();
        let mut labels = Vec::new();
        for (key, value) in self.pairs(&field("labels"), tree.get("labels")) {
            set_entry(&mut labels, key, value);
        }
        ContainerSpec {
            name: name.to_string(),
            image,
            entrypoint,
            cmd,
            env,
            ports,
            mounts,
            files: Vec::new(),
            workdir: self.text(&field("workdir"), tree.get("workdir")),
            user: self.text(&field("user"), tree.get("user")),
            restart: self
                .parsed(&field("restart"), tree.get("restart"), parse::restart)
                .unwrap_or_default(),
            labels,
            privileged: self
                .bool(&field("privileged"), tree.get("privileged"))
                .unwrap_or(false),
            cap_add: self.words(&field("cap-add"), tree.get("cap-add")),
            cap_drop: self.words(&field("cap-drop"), tree.get("cap-drop")),
            memory_bytes: self.parsed(&field("memory"), tree.get("memory"), parse::bytes),
            cpu_quota: self.int(&field("cpuquota"), tree.get("cpuquota")),
            shm_size_bytes: self.parsed(&field("shm-size"), tree.get("shm-size"), parse::bytes),
            ulimits: self.ulimits(&field("ulimits"), tree.get("ulimits")),
            stop_signal: self.parsed(&field("stop-signal"), tree.get("stop-signal"), stop_signal),
            stop_grace_secs: self.parsed(
                &field("stop-grace-period"),
                tree.get("stop-grace-period"),
                parse::duration_secs,
            ),
        }
    }

    fn checked<T>(&mut self, at: &str, result: Result<T, String>) -> Option<T> {
        result.map_err(|message| self.error(at, message)).ok()
    }

    fn image(&mut self, at: &str, tree: &Tree) -> String {
        let image_at = format!("{at}.image");
        if tree.get("image").is_none() && tree.get("build").is_some() {
            self.error(
                &image_at,
                "this container is built from `build`, which was not built: `monk up`, \
                 `monk load` and `monk build` build it and set `image`",
            );
            return String::new();
        }
        let Some(image) = self.required_text(&image_at, tree.get("image")) else {
            return String::new();
        };
        let tag = self.text(&format!("{at}.image-tag"), tree.get("image-tag"));
        self.checked(&image_at, parse::image_reference(&image, tag.as_deref()))
            .unwrap_or_default()
    }

    /// `(entrypoint, cmd)` from `bash`, `entrypoint` and `cmd`/`command`.
    fn command(&mut self, at: &str, tree: &Tree) -> (Option<Vec<String>>, Option<Vec<String>>) {
        let cmd_key = match (tree.get("cmd"), tree.get("command")) {
            (Some(_), Some(_)) => {
                self.error(
                    &format!("{at}.command"),
                    "`cmd` and `command` are the same field; write one",
                );
                "cmd"
            }
            (None, Some(_)) => "command",
            _ => "cmd",
        };
        let entrypoint = self.argv(&format!("{at}.entrypoint"), tree.get("entrypoint"));
        let cmd = self.argv(&format!("{at}.{cmd_key}"), tree.get(cmd_key));
        let bash_at = format!("{at}.bash");
        let bash = self
            .text(&bash_at, tree.get("bash"))
            .filter(|script| !script.trim().is_empty());
        let Some(script) = bash else {
            return (entrypoint, cmd);
        };
        for (key, written) in [("entrypoint", &entrypoint), (cmd_key, &cmd)] {
            if written.is_some() {
                self.error(
                    &bash_at,
                    format!("`bash` replaces `{key}`; write only one of them"),
                );
            }
        }
        let entrypoint = BASH_ENTRYPOINT.iter().map(|s| s.to_string()).collect();
        (Some(entrypoint), Some(vec![script]))
    }

    /// A command as a string (split into shell words) or a list (one word each).
    fn argv(&mut self, at: &str, tree: Option<&Tree>) -> Option<Vec<String>> {
        match tree? {
            Tree::Null => None,
            Tree::Seq(items) => {
                let mut words = Vec::new();
                for (i, item) in items.iter().enumerate().take(parse::COMMAND_WORDS_MAX) {
                    if let Some(value) = self.value(&at_index(at, i), item) {
                        words.push(value.to_text());
                    }
                }
                Some(words)
            }
            scalar => {
                let value = self.value(at, scalar)?;
                match value {
                    Value::Nil => None,
                    Value::Array(list) => Some(list.items().iter().map(Value::to_text).collect()),
                    value => self
                        .checked(at, parse::shell_words(&value.to_text()))
                        .filter(|words| !words.is_empty()),
                }
            }
        }
    }

    /// A list of single words (capabilities).
    fn words(&mut self, at: &str, tree: Option<&Tree>) -> Vec<String> {
        let mut out = Vec::new();
        for (item_at, text) in self.items(at, tree) {
            let word = text.trim();
            if word.contains(char::is_whitespace) {
                self.error(&item_at, format!("`{word}` is not a single word"));
            } else {
                out.push(word.to_string());
            }
        }
        out
    }

    fn ulimits(&mut self, at: &str, tree: Option<&Tree>) -> Vec<Ulimit> {
        let mut out = Vec::new();
        for (name, limit) in named(tree).take(LIST_ITEMS_MAX) {
            let limit_at = format!("{at}.{name}");
            let (soft, hard) = match limit {
                Tree::Map(_) => {
                    let soft = self.int(&format!("{limit_at}.soft"), limit.get("soft"));
                    let hard = self.int(&format!("{limit_at}.hard"), limit.get("hard"));
                    (soft.or(hard), hard.or(soft))
                }
                scalar => {
                    let both = self.int(&limit_at, Some(scalar));
                    (both, both)
                }
            };
            let (Some(soft), Some(hard)) = (soft, hard) else {
                self.error(&limit_at, "needs a soft or hard limit");
                continue;
            };
            if hard != -1 && (soft == -1 || soft > hard) {
                self.error(
                    &limit_at,
                    format!("soft limit {soft} is above hard limit {hard}"),
                );
                continue;
            }
            out.push(Ulimit {
                name: name.clone(),
                soft,
                hard,
            });
        }
        out
    }

    fn services(
        &mut self,
        section: Option<&Tree>,
        containers: &mut [ContainerSpec],
    ) -> Vec<ServiceSpec> {
        let mut out = Vec::new();
        for (name, tree) in named(section) {
            if out.len() >= SERVICES_MAX {
                self.error("services", format!("more than {SERVICES_MAX} services"));
                break;
            }
            let at = format!("services.{name}");
            let field = |key: &str| format!("{at}.{key}");
            let port = self.parsed(&field("port"), tree.get("port"), parse::port_number);
            let host_port = self.parsed(
                &field("host-port"),
                tree.get("host-port"),
                parse::port_number,
            );
            let protocol = self
                .parsed(&field("protocol"), tree.get("protocol"), service_protocol)
                .unwrap_or(ServiceProtocol::Tcp);
            let publish = self
                .bool(&field("publish"), tree.get("publish"))
                .unwrap_or(false);
            let container =
                self.service_container(&field("container"), tree.get("container"), containers);
            let service = ServiceSpec {
                name: name.clone(),
                container,
                port,
                protocol,
                publish,
                host_port,
                description: self.text(&field("description"), tree.get("description")),
                address: self.text(&field("address"), tree.get("address")),
            };
            let port_written = tree.get("port").is_some_and(|p| *p != Tree::Null);
            self.publish(&at, &service, port_written, containers);
            out.push(service);
        }
        out
    }

    fn service_container(
        &mut self,
        at: &str,
        tree: Option<&Tree>,
        containers: &[ContainerSpec],
    ) -> Option<String> {
        match self.text(at, tree) {
            Some(name) if containers.iter().any(|c| c.name == name) => Some(name),
            Some(name) => {
                self.error(at, format!("no container named `{name}`"));
                None
            }
            None => match containers {
                [only] => Some(only.name.clone()),
                _ => None,
            },
        }
    }

    /// Adds the host port of a published service to its container.
    fn publish(
        &mut self,
        at: &str,
        service: &ServiceSpec,
        port_written: bool,
        containers: &mut [ContainerSpec],
    ) {
        let protocol = match service.protocol {
            ServiceProtocol::Custom => return,
            ServiceProtocol::Tcp => Protocol::Tcp,
            ServiceProtocol::Udp => Protocol::Udp,
        };
        if !service.publish && service.host_port.is_none() {
            return;
        }
        let Some(container_port) = service.port else {
            if !port_written {
                self.error(&format!("{at}.port"), "a published service needs a port");
            }
            return;
        };
        let Some(container) = containers
            .iter_mut()
            .find(|c| Some(&c.name) == service.container.as_ref())
        else {
            return self.error(
                &format!("{at}.container"),
                "a published service needs a container",
            );
        };
        let port = PortSpec {
            host_ip: None,
            host_port: Some(service.host_port.unwrap_or(container_port)),
            container_port,
            protocol,
        };
        let already = container.ports.iter().any(|p| {
            p.container_port == port.container_port
                && p.protocol == port.protocol
                && p.host_port == port.host_port
        });
        if !already {
            container.ports.push(port);
        }
    }

    fn files(&mut self, section: Option<&Tree>, containers: &mut [ContainerSpec]) {
        for (count, (name, tree)) in named(section).enumerate() {
            if count >= FILES_MAX {
                self.error("files", format!("more than {FILES_MAX} files"));
                break;
            }
            let at = format!("files.{name}");
            if let Some((container, file)) = self.file(&at, name, tree, containers) {
                containers[container].files.push(file);
            }
        }
    }

    fn file(
        &mut self,
        at: &str,
        name: &str,
        tree: &Tree,
        containers: &[ContainerSpec],
    ) -> Option<(usize, FileSpec)> {
        let field = |key: &str| format!("{at}.{key}");
        let container_at = field("container");
        let container = match self.text(&container_at, tree.get("container")) {
            Some(wanted) => match containers.iter().position(|c| c.name == wanted) {
                Some(i) => Some(i),
                None => {
                    self.error(&container_at, format!("no container named `{wanted}`"));
                    None
                }
            },
            None if containers.len() == 1 => Some(0),
            None => {
                self.error(
                    &container_at,
                    "is required when the runnable has several containers",
                );
                None
            }
        };
        let path = self.required_text(&field("path"), tree.get("path"));
        if let Some(path) = &path {
            if !path.starts_with('/') {
                self.error(&field("path"), format!("`{path}` is not an absolute path"));
            }
        }
        let mode_key = if tree.get("mode").is_some() {
            "mode"
        } else {
            "chmod"
        };
        let mode = match tree.get(mode_key) {
            None | Some(Tree::Null) => Some(DEFAULT_FILE_MODE),
            Some(written) => {
                let mode_at = field(mode_key);
                let value = match written {
                    Tree::Str(text) if arrow::has_arrow_prefix(text) => self
                        .value(&mode_at, written)
                        .map(|v| Tree::Str(v.to_text())),
                    other => Some(other.clone()),
                };
                value.and_then(|v| self.checked(&mode_at, parse::file_mode(&v)))
            }
        };
        let raw = self.bool(&field("raw"), tree.get("raw")).unwrap_or(false);
        let contents = self.contents(&field("contents"), tree.get("contents"), raw)?;
        let (container, path, mode) = (container?, path?, mode?);
        self.file_bytes += contents.len();
        if self.file_bytes > TOTAL_FILE_BYTES_MAX {
            self.error(
                at,
                format!("files of the runnable exceed {TOTAL_FILE_BYTES_MAX} bytes in total"),
            );
            return None;
        }
        let file = FileSpec {
            name: name.to_string(),
            path,
            mode,
            contents: contents.into_bytes(),
        };
        Some((container, file))
    }

    fn contents(&mut self, at: &str, tree: Option<&Tree>, raw: bool) -> Option<String> {
        let text = match tree {
            None | Some(Tree::Null) => String::new(),
            Some(Tree::Str(text)) if !arrow::has_arrow_prefix(text) && !raw => {
                match template::render(text, &self.vars, FILE_BYTES_MAX) {
                    Ok(rendered) => rendered,
                    Err(message) => {
                        self.error(at, message);
                        return None;
                    }
                }
            }
            Some(other) => self.text(at, Some(other)).unwrap_or_default(),
        };
        if text.len() > FILE_BYTES_MAX {
            self.error(at, format!("file is larger than {FILE_BYTES_MAX} bytes"));
            return None;
        }
        Some(text)
    }

    fn requests(&mut self, section: Option<&Tree>) -> Requests {
        let mut total = Requests::default();
        for (name, container) in named(section) {
            let Some(requests) = container.get("resources").and_then(|r| r.get("requests")) else {
                continue;
            };
            let at = format!("containers.{name}.resources.requests");
            for (key, parse, sum) in [
                (
                    "cpu",
                    parse::cpu_millis as fn(&Tree) -> Result<u64, String>,
                    &mut total.cpu_millis,
                ),
                ("memory", parse::memory_mb, &mut total.memory_mb),
            ] {
                let Some(written) = requests.get(key) else {
                    continue;
                };
                let key_at = format!("{at}.{key}");
                let value = match written {
                    Tree::Str(text) if arrow::has_arrow_prefix(text) => {
                        let Some(value) = self.value(&key_at, written) else {
                            continue;
                        };
                        Tree::Str(value.to_text())
                    }
                    other => other.clone(),
                };
                match parse(&value) {
                    Ok(n) => *sum = sum.saturating_add(n),
                    Err(message) => self.error(&key_at, message),
                }
            }
        }
        total
    }
}

/// Sets `key` in an ordered list of pairs: a new key goes last, an existing key keeps
/// its place and takes the new value.
fn set_entry(list: &mut Vec<(String, String)>, key: String, value: String) {
    match list.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None => list.push((key, value)),
    }
}

/// A stop signal: a name (`SIGTERM`, `TERM`, `SIGRTMIN+3`) or a number.
fn stop_signal(text: &str) -> Result<String, String> {
    let signal = text.trim();
    let valid = !signal.is_empty()
        && signal.len() <= 32
        && signal
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-');
    if !valid {
        return Err(format!("`{signal}` is not a signal name or number"));
    }
    Ok(signal.to_string())
}

fn service_protocol(text: &str) -> Result<ServiceProtocol, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "tcp" => Ok(ServiceProtocol::Tcp),
        "udp" => Ok(ServiceProtocol::Udp),
        "custom" => Ok(ServiceProtocol::Custom),
        other => Err(format!(
            "unknown protocol `{other}` (expected tcp, udp or custom)"
        )),
    }
}

#[cfg(test)]
mod tests;
