//! What each component of a source tree is: its runtime, the processes the rules in
//! [`crate::rules`] find (each with the evidence that matched), its port, health path,
//! the environment variables its code reads, and the backing services it talks to.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::rules::{
    runtime_row, Backing, Framework, Role, Runtime, BACKING, CONTAINER_FILES, CRON_FILES,
    FRAMEWORKS, HEALTH_DEPENDENCIES, RUNTIMES,
};
use crate::scan::{contains, manifest_matches, split, SourceTree};

/// One component: a directory with its own dependencies (or container file).
#[derive(Clone, Debug, Serialize)]
pub struct Component {
    /// Its directory relative to the root (`""` for the root itself).
    pub dir: String,
    /// Its name in the stack (the directory's, made a valid name).
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<Runtime>,
    pub processes: Vec<Process>,
    /// A Containerfile or Dockerfile it already has, used as is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The path its HTTP readiness check asks for.
    pub health_path: String,
    /// Environment variables its code reads.
    pub env: Vec<String>,
    /// Backing services (rows of [`BACKING`]) it talks to.
    pub backing: Vec<&'static str>,
    /// Cron schedule files found.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cron_files: Vec<String>,
    /// Files that declare its dependencies.
    pub manifests: Vec<String>,
    /// Lock files beside them (`npm ci` needs `package-lock.json`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lock_files: Vec<String>,
}

/// Lock files whose presence changes how dependencies are installed.
const LOCK_FILES: &[&str] = &["package-lock.json", "Gemfile.lock", "go.sum", "poetry.lock"];

impl Component {
    /// Whether it runs in a container (a static front end does not).
    pub fn needs_container(&self) -> bool {
        self.container_file.is_some() || self.processes.iter().any(|p| p.role != Role::StaticSite)
    }

    /// Its directory as shown to people: `./` for the root.
    pub fn shown_dir(&self) -> String {
        match self.dir.is_empty() {
            true => "./".into(),
            false => format!("{}/", self.dir),
        }
    }
}

/// One process a framework rule found.
#[derive(Clone, Debug, Serialize)]
pub struct Process {
    /// Its runnable's name.
    pub name: String,
    pub framework: &'static str,
    pub role: Role,
    /// The evidence that matched: a file (relative to the component) or `file:PATH`.
    pub evidence: String,
    /// How it starts; empty for a static site or an existing container file's own.
    pub command: Vec<String>,
}

/// Every component of `tree`, in directory order.
pub fn analyse(tree: &SourceTree, root_name: &str) -> Vec<Component> {
    let dirs = tree.component_dirs();
    dirs.iter()
        .map(|dir| component(tree, dir, &dirs, root_name))
        .collect()
}

/// The files of component `dir`: under it, not under a component nested in it; paths
/// relative to `dir`.
fn own_files<'t>(tree: &'t SourceTree, dir: &str, dirs: &[String]) -> Vec<(String, &'t str)> {
    tree.files
        .iter()
        .filter(|(path, _)| {
            let (parent, _) = split(path);
            contains(dir, parent)
                && !dirs
                    .iter()
                    .any(|d| d != dir && contains(dir, d) && contains(d, parent))
        })
        .filter_map(|(path, text)| {
            let rel = match dir.is_empty() {
                true => path.clone(),
                false => path[dir.len() + 1..].to_string(),
            };
            Some((rel, text.as_deref()?))
        })
        .collect()
}

fn component(tree: &SourceTree, dir: &str, dirs: &[String], root_name: &str) -> Component {
    let files = own_files(tree, dir, dirs);
    let exists = |rel: &str| files.iter().any(|(p, _)| p == rel);
    let manifests: Vec<String> = files
        .iter()
        .filter(|(p, _)| !p.contains('/'))
        .filter(|(p, _)| {
            RUNTIMES
                .iter()
                .flat_map(|r| r.manifests)
                .any(|m| manifest_matches(m, p))
        })
        .map(|(p, _)| p.clone())
        .collect();
    let runtime = RUNTIMES
        .iter()
        .find(|r| {
            r.manifests
                .iter()
                .any(|m| manifests.iter().any(|p| manifest_matches(m, p)))
        })
        .map(|r| r.runtime);
    let container_file = CONTAINER_FILES
        .iter()
        .find(|f| exists(f))
        .map(|f| f.to_string());
    // The root's processes are named by their role (`app`, `app-worker`): the
    // namespace already carries the project's name.
    let base = match split(dir) {
        (_, "") => "app".to_string(),
        (_, last) => name_of(last),
    };
    let mut matched: Vec<(&Framework, String, Option<String>)> = Vec::new();
    for framework in FRAMEWORKS {
        let runtime_fits = match framework.runtime {
            Runtime::Web => true,
            other => Some(other) == runtime,
        };
        if !runtime_fits || !declares(&files, framework) {
            continue;
        }
        if let Some((evidence, var)) = evidence(&files, framework) {
            matched.push((framework, evidence, var));
        }
    }
    if matched.iter().any(|(f, _, _)| f.role != Role::StaticSite) || container_file.is_some() {
        matched.retain(|(f, _, _)| f.role != Role::StaticSite);
    }
    // A scheduler in the server's own file runs inside that process.
    let server_files: Vec<String> = matched
        .iter()
        .filter(|(f, _, _)| f.role == Role::ApiServer)
        .map(|(_, e, _)| e.clone())
        .collect();
    matched.retain(|(f, e, _)| !(f.role == Role::Scheduler && server_files.contains(e)));
    let env = env_vars(&files, runtime);
    let backing = backing(&files, &env);
    let port = port(&files, &matched, container_file.as_deref());
    let health_path = health_path(&files, &manifests);
    let mut component = Component {
        dir: dir.to_string(),
        name: base.clone(),
        runtime,
        processes: Vec::new(),
        container_file,
        port,
        health_path,
        env,
        backing,
        cron_files: files
            .iter()
            .filter(|(p, _)| CRON_FILES.contains(&split(p).1) || p.ends_with(".cron"))
            .map(|(p, _)| p.clone())
            .collect(),
        manifests,
        lock_files: LOCK_FILES
            .iter()
            .filter(|f| exists(f))
            .map(|f| f.to_string())
            .collect(),
    };
    let django = files
        .iter()
        .find(|(p, _)| p.ends_with("/wsgi.py"))
        .map(|(p, _)| split(p).0.replace('/', "."))
        .unwrap_or_else(|| "app".into());
    let project = files
        .iter()
        .find(|(p, _)| p.ends_with(".csproj") && !p.contains('/'))
        .map(|(p, _)| p.trim_end_matches(".csproj").to_string())
        .unwrap_or_else(|| "app".into());
    for (framework, evidence, var) in matched {
        let name = process_name(&base, framework.role, &component.processes);
        let fill = |word: &str| -> String {
            word.replace("{file}", &evidence)
                .replace("{module}", &python_module(&evidence))
                .replace("{var}", var.as_deref().unwrap_or("app"))
                .replace(
                    "{port}",
                    &component.port.map(|p| p.to_string()).unwrap_or_default(),
                )
                .replace("{django}", &django)
                .replace("{redis-url}", &backing_url("redis", root_name, "_URL"))
                .replace("{project}", &project)
        };
        component.processes.push(Process {
            name,
            framework: framework.name,
            role: framework.role,
            command: framework.command.iter().map(|w| fill(w)).collect(),
            evidence,
        });
    }
    if component.processes.is_empty() && component.container_file.is_some() {
        component.processes.push(Process {
            name: base,
            framework: "existing container file",
            role: match component.port {
                Some(_) => Role::ApiServer,
                None => Role::Worker,
            },
            evidence: component.container_file.clone().unwrap_or_default(),
            command: Vec::new(),
        });
    }
    component
}

/// What a backing service's variable ending in `suffix` holds in stack `namespace`:
/// its URL, or its host name for `*_HOST`.
pub fn backing_url(name: &str, namespace: &str, variable: &str) -> String {
    let host = format!("{name}.{}.monk", name_of(namespace));
    let Some(b) = BACKING.iter().find(|b| b.name == name) else {
        return host;
    };
    match variable.ends_with("HOST") {
        true => host,
        false => b.url.replace("{host}", &host),
    }
}

/// A valid runnable name from a directory name: lowercase letters, digits and `-`.
pub fn name_of(text: &str) -> String {
    let mut name: String = text
        .chars()
        .map(|c| match c.is_ascii_alphanumeric() {
            true => c.to_ascii_lowercase(),
            false => '-',
        })
        .collect();
    while name.contains("--") {
        name = name.replace("--", "-");
    }
    let name = name.trim_matches('-').to_string();
    match name.chars().next() {
        Some(c) if c.is_ascii_alphabetic() => name,
        Some(_) => format!("app-{name}"),
        None => "app".into(),
    }
}

/// The component's name for its server, `NAME-worker`, `NAME-scheduler` for the others
/// (numbered when a role repeats).
fn process_name(base: &str, role: Role, taken: &[Process]) -> String {
    let suffix = match role {
        Role::ApiServer | Role::StaticSite => "",
        Role::Worker => "worker",
        Role::Scheduler => "scheduler",
    };
    let wanted = match suffix.is_empty() || base == suffix || base.ends_with(&format!("-{suffix}"))
    {
        true => base.to_string(),
        false => format!("{base}-{suffix}"),
    };
    let mut name = wanted.clone();
    let mut n = 2;
    while taken.iter().any(|p| p.name == name) {
        name = format!("{wanted}-{n}");
        n += 1;
    }
    name
}

/// `app/main.py` → `app.main`.
fn python_module(file: &str) -> String {
    file.trim_end_matches(".py").replace('/', ".")
}

/// Whether the component's manifests declare the framework's dependency.
fn declares(files: &[(String, &str)], framework: &Framework) -> bool {
    let Some(dependency) = framework.dependency else {
        return true;
    };
    let row = runtime_row(framework.runtime);
    files
        .iter()
        .filter(|(p, _)| !p.contains('/') && row.manifests.iter().any(|m| manifest_matches(m, p)))
        .any(|(path, text)| manifest_declares(path, text, dependency))
}

/// `package.json` by its dependency maps; other manifests by whole tokens
/// (`fastapi==0.110` and `gem "rails"` both hold the token).
fn manifest_declares(path: &str, text: &str, dependency: &str) -> bool {
    if path == "package.json" {
        let Ok(json) = serde_json::from_str::<serde_json::Value>(text) else {
            return false;
        };
        return ["dependencies", "devDependencies", "peerDependencies"]
            .iter()
            .any(|key| json[key].get(dependency).is_some());
    }
    tokens(text).any(|t| t.eq_ignore_ascii_case(dependency))
}

fn tokens(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .filter(|t| !t.is_empty())
}

/// The first evidence of `framework` (the file it is in, relative to the component,
/// or `file:PATH`), and the variable the matching line assigns (`api = FastAPI()`).
fn evidence(files: &[(String, &str)], framework: &Framework) -> Option<(String, Option<String>)> {
    let row = runtime_row(framework.runtime);
    for needle in framework.evidence {
        if let Some(path) = needle.strip_prefix("file:") {
            if files.iter().any(|(p, _)| p == path) {
                return Some((path.to_string(), None));
            }
            continue;
        }
        let found = files.iter().find_map(|(path, text)| {
            let ext = path.rsplit_once('.').map_or("", |(_, e)| e);
            if !row.sources.contains(&ext) {
                return None;
            }
            let line = text.lines().find(|l| l.contains(needle))?;
            Some((path.clone(), assigned_variable(line, needle)))
        });
        if found.is_some() {
            return found;
        }
    }
    None
}

/// `api = FastAPI(title=...)` → `api`.
fn assigned_variable(line: &str, needle: &str) -> Option<String> {
    let before = line.split(needle).next()?;
    let (left, _) = before.rsplit_once('=')?;
    let name = left.trim();
    let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then(|| name.to_string())
}

/// Environment variables the component's code reads, sorted.
fn env_vars(files: &[(String, &str)], runtime: Option<Runtime>) -> Vec<String> {
    let Some(runtime) = runtime else {
        return Vec::new();
    };
    let row = runtime_row(runtime);
    let mut names = BTreeSet::new();
    for (path, text) in files {
        let ext = path.rsplit_once('.').map_or("", |(_, e)| e);
        if !row.sources.contains(&ext) {
            continue;
        }
        for reader in row.env_readers {
            for (at, _) in text.match_indices(reader) {
                let rest = &text[at + reader.len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                let shouty = name.len() >= 2
                    && name.starts_with(|c: char| c.is_ascii_uppercase())
                    && !name.chars().any(|c| c.is_ascii_lowercase());
                if shouty {
                    names.insert(name);
                }
            }
        }
    }
    names.into_iter().collect()
}

/// Backing services the component's manifests or environment variables name.
fn backing(files: &[(String, &str)], env: &[String]) -> Vec<&'static str> {
    let manifests: Vec<&(String, &str)> = files
        .iter()
        .filter(|(p, _)| {
            !p.contains('/')
                && RUNTIMES
                    .iter()
                    .flat_map(|r| r.manifests)
                    .any(|m| manifest_matches(m, p))
        })
        .collect();
    BACKING
        .iter()
        .filter(|b: &&Backing| {
            let declared = b
                .dependencies
                .iter()
                .any(|d| manifests.iter().any(|(p, t)| manifest_declares(p, t, d)));
            declared || b.variables.iter().any(|v| env.iter().any(|e| e == v))
        })
        .map(|b| b.name)
        .collect()
}

/// The port: `EXPOSE` of an existing container file, else a number on a line of the
/// server's file (then any file) that mentions listening or a port, else the
/// framework's default.
fn port(
    files: &[(String, &str)],
    matched: &[(&Framework, String, Option<String>)],
    container_file: Option<&str>,
) -> Option<u16> {
    if let Some(text) = container_file.and_then(|f| files.iter().find(|(p, _)| p == f)) {
        let exposed = text.1.lines().find_map(|l| {
            let rest = l.trim().strip_prefix("EXPOSE")?;
            rest.split_whitespace()
                .next()?
                .split('/')
                .next()?
                .parse()
                .ok()
        });
        if exposed.is_some() {
            return exposed;
        }
    }
    let (server, server_file) = matched
        .iter()
        .find(|(f, _, _)| f.role == Role::ApiServer)
        .map(|(f, e, _)| (*f, e.as_str()))?;
    let in_file = |text: &str| -> Option<u16> {
        text.lines()
            .filter(|l| {
                let lower = l.to_ascii_lowercase();
                lower.contains("listen") || lower.contains("port")
            })
            .find_map(|l| {
                l.split(|c: char| !c.is_ascii_digit())
                    .filter_map(|n| n.parse::<u16>().ok())
                    .find(|n| *n >= 80 && n.to_string().len() >= 2)
            })
    };
    let first = files
        .iter()
        .find(|(p, _)| p == server_file)
        .and_then(|(_, t)| in_file(t));
    first
        .or_else(|| {
            files
                .iter()
                .filter(|(p, _)| p.ends_with(".properties") || p.ends_with("puma.rb"))
                .find_map(|(_, t)| in_file(t))
        })
        .or(server.default_port)
}

/// `/health`, `/healthz`, `/up` when the code names one, a health endpoint a declared
/// dependency serves ([`HEALTH_DEPENDENCIES`]), else `/`.
fn health_path(files: &[(String, &str)], manifests: &[String]) -> String {
    const PATHS: [&str; 3] = ["/healthz", "/health", "/up"];
    for path in PATHS {
        let quoted = [format!("\"{path}\""), format!("'{path}'")];
        if files
            .iter()
            .any(|(_, t)| quoted.iter().any(|q| t.contains(q.as_str())))
        {
            return path.to_string();
        }
    }
    let declared = |dependency: &str| {
        files
            .iter()
            .filter(|(p, _)| manifests.contains(p))
            .any(|(p, t)| manifest_declares(p, t, dependency))
    };
    HEALTH_DEPENDENCIES
        .iter()
        .find(|(dependency, _)| declared(dependency))
        .map_or_else(|| "/".into(), |(_, path)| path.to_string())
}
