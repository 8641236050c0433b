//! The MonkScript stack for the analysed components: one runnable per process (its
//! component's image; a second process of one image overrides the command), one per
//! backing service (a stock image), the environment variables the code reads (those
//! that carry another runnable's address get its `.monk` name), `connections` and
//! `depends` along those addresses, an HTTP readiness check per server and a command
//! check per backing service, and a group of them all. Written as text so it reads like
//! a file a person wrote (and `monk lint` checks it in the tests).

use std::fmt::Write;

use crate::analyse::{backing_url, name_of, Component, Process};
use crate::containerfile::main_process;
use crate::rules::{Backing, Role, BACKING};

/// How long a runnable waits for the ones it depends on, in seconds: a database's
/// first start (initdb) takes tens of seconds on a small machine.
const WAIT_FOR_SECS: u32 = 120;
/// Readiness check period and first delay, in seconds: a server answers within seconds
/// of starting, and `monk run` waits for the first success, so a short period keeps
/// that wait short without polling hard.
const READINESS_PERIOD_SECS: u32 = 5;
const READINESS_DELAY_SECS: u32 = 5;

/// The image a component's Containerfile builds: `NAMESPACE-COMPONENT`, tag `latest`.
pub fn image_of(namespace: &str, component: &Component) -> String {
    format!("{namespace}-{}", component.name)
}

/// A runnable to write: a process of a component, or a backing service.
enum Item<'a> {
    Process(&'a Component, &'a Process),
    Backing(&'static Backing),
}

/// The stack for `components` in `namespace` (already a valid name); `None` when no
/// component needs a container.
pub fn stack(namespace: &str, components: &[Component]) -> Option<String> {
    let mut items: Vec<Item> = BACKING
        .iter()
        .filter(|b| {
            components
                .iter()
                .any(|c| c.needs_container() && c.backing.contains(&b.name))
        })
        .map(Item::Backing)
        .collect();
    for c in components.iter().filter(|c| c.needs_container()) {
        for p in c.processes.iter().filter(|p| p.role != Role::StaticSite) {
            items.push(Item::Process(c, p));
        }
    }
    if items.is_empty() {
        return None;
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Written by `monk containerize`: build the images first (see its report), then\n# monk load THIS-FILE && monk run {namespace}/stack\nnamespace: {namespace}"
    );
    for item in &items {
        out.push('\n');
        match item {
            Item::Backing(b) => backing_runnable(&mut out, b),
            Item::Process(c, p) => process_runnable(&mut out, namespace, components, c, p),
        }
    }
    let _ = writeln!(out, "\nstack:\n  defines: group\n  members:");
    for item in &items {
        let name = match item {
            Item::Backing(b) => b.name.to_string(),
            Item::Process(_, p) => p.name.clone(),
        };
        let _ = writeln!(out, "    - {namespace}/{name}");
    }
    Some(out)
}

fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into())
}

fn backing_runnable(out: &mut String, b: &Backing) {
    let _ = writeln!(
        out,
        "{}:\n  defines: runnable\n  containers:\n    main:\n      image: {}\n      image-tag: {}",
        b.name,
        b.image,
        quoted(b.tag)
    );
    if !b.environment.is_empty() {
        let _ = writeln!(out, "      environment:");
        for (name, value) in b.environment {
            let _ = writeln!(out, "        - {}", quoted(&format!("{name}={value}")));
        }
    }
    let _ = writeln!(
        out,
        "  services:\n    {}:\n      container: main\n      port: {}\n      protocol: tcp",
        b.name, b.port
    );
    let check = match b.name {
        "redis" => "exec(\"main\", \"redis-cli\", \"ping\")",
        "postgres" => "exec(\"main\", \"pg_isready\", \"-U\", \"app\")",
        _ => "exec(\"main\", \"mongosh\", \"--quiet\", \"--eval\", \"db.adminCommand('ping').ok\")",
    };
    readiness(out, check);
}

fn readiness(out: &mut String, code: &str) {
    let _ = writeln!(
        out,
        "  checks:\n    readiness:\n      code: {code}\n      period: {READINESS_PERIOD_SECS}\n      initialDelay: {READINESS_DELAY_SECS}"
    );
}

/// A runnable another component's variable points at: `API_URL` names component `api`.
fn component_target<'c>(
    components: &'c [Component],
    own: &Component,
    variable: &str,
) -> Option<(&'c Component, &'c Process)> {
    let stem = variable
        .strip_suffix("_URL")
        .or_else(|| variable.strip_suffix("_HOST"))?;
    let wanted = name_of(stem);
    components
        .iter()
        .filter(|c| c.dir != own.dir && c.needs_container())
        .find(|c| c.name == wanted)
        .and_then(|c| {
            let main = c.processes.iter().find(|p| p.role == Role::ApiServer)?;
            Some((c, main))
        })
}

fn process_runnable(
    out: &mut String,
    namespace: &str,
    components: &[Component],
    c: &Component,
    p: &Process,
) {
    let _ = writeln!(
        out,
        "{}:\n  defines: runnable\n  metadata:\n    description: {}",
        p.name,
        quoted(&format!(
            "{} {} ({}{})",
            p.framework,
            p.role.as_str(),
            c.shown_dir().trim_start_matches("./"),
            p.evidence
        ))
    );
    let _ = writeln!(
        out,
        "  containers:\n    main:\n      image: {}\n      image-tag: latest",
        image_of(namespace, c)
    );
    let is_main = main_process(c).is_some_and(|m| m.name == p.name);
    if !is_main && !p.command.is_empty() {
        let argv: Vec<String> = p.command.iter().map(|w| quoted(w)).collect();
        let _ = writeln!(out, "      cmd: [{}]", argv.join(", "));
    }
    let port = c.port.filter(|_| p.role == Role::ApiServer);
    if let Some(port) = port {
        let _ = writeln!(
            out,
            "  services:\n    http:\n      container: main\n      port: {port}\n      protocol: tcp"
        );
    }
    // Connections: backing services the component uses, components its variables name.
    let mut targets: Vec<(String, String, String)> = c
        .backing
        .iter()
        .map(|b| (b.to_string(), format!("{namespace}/{b}"), b.to_string()))
        .collect();
    for variable in &c.env {
        if let Some((_, main)) = component_target(components, c, variable) {
            let target = (
                main.name.clone(),
                format!("{namespace}/{}", main.name),
                "http".into(),
            );
            if !targets.contains(&target) && main.name != p.name {
                targets.push(target);
            }
        }
    }
    if !targets.is_empty() {
        let _ = writeln!(out, "  connections:");
        for (name, runnable, service) in &targets {
            let _ = writeln!(
                out,
                "    {name}:\n      runnable: {runnable}\n      service: {service}"
            );
        }
        let _ = writeln!(out, "  depends:\n    wait-for:\n      runnables:");
        for (_, runnable, _) in &targets {
            let _ = writeln!(out, "        - {runnable}");
        }
        let _ = writeln!(out, "      timeout: {WAIT_FOR_SECS}");
    }
    if !c.env.is_empty() {
        let _ = writeln!(out, "  variables:");
        for variable in &c.env {
            let (ty, value) = variable_value(namespace, components, c, variable);
            let _ = writeln!(
                out,
                "    {}:\n      type: {ty}\n      value: {value}\n      env: {variable}",
                name_of(variable)
            );
        }
    }
    if let Some(port) = port {
        readiness(
            out,
            &format!(
                "http-get(\"http://localhost:{port}{}\") nil? not",
                c.health_path
            ),
        );
    }
}

/// A variable's type and value: the port, a backing service's or another component's
/// address on the overlay, else an empty string to fill in.
fn variable_value(
    namespace: &str,
    components: &[Component],
    c: &Component,
    variable: &str,
) -> (&'static str, String) {
    if variable == "PORT" {
        if let Some(port) = c.port {
            return ("int", port.to_string());
        }
    }
    if let Some(b) = BACKING
        .iter()
        .find(|b| c.backing.contains(&b.name) && b.variables.contains(&variable))
    {
        return ("string", quoted(&backing_url(b.name, namespace, variable)));
    }
    if let Some((target, main)) = component_target(components, c, variable) {
        let host = format!("{}.{namespace}.monk", main.name);
        let value = match (variable.ends_with("_HOST"), target.port) {
            (true, _) | (false, None) => host,
            (false, Some(port)) => format!("http://{host}:{port}"),
        };
        return ("string", quoted(&value));
    }
    ("string", quoted(""))
}
