//! What `monk containerize` prints: per component what was found and on what evidence,
//! what is written, and how to build and run the result.

use std::fmt::Write;

use crate::monkscript::image_of;
use crate::rules::{Role, BACKING};
use crate::{Plan, STACK_FILE};

/// The report for `plan`; `written` says whether the files were written or only shown.
pub fn text(plan: &Plan, written: bool) -> String {
    let verb = if written { "wrote" } else { "would write" };
    let mut out = format!(
        "{} component(s), namespace {}\n",
        plan.components.len(),
        plan.namespace
    );
    for c in &plan.components {
        let runtime = c
            .runtime
            .map(|r| {
                format!(
                    " ({})",
                    serde_json::to_string(&r)
                        .unwrap_or_default()
                        .trim_matches('"')
                )
            })
            .unwrap_or_default();
        let _ = writeln!(out, "\n{}{runtime}", c.shown_dir());
        if !c.needs_container() {
            let evidence: Vec<&str> = c.processes.iter().map(|p| p.evidence.as_str()).collect();
            let _ = writeln!(
                out,
                "  static front end ({}): no container; serve it from any static host or CDN",
                evidence.join(", ")
            );
            continue;
        }
        if c.processes.is_empty() {
            let _ = writeln!(out, "  nothing recognised: no container");
            continue;
        }
        for p in &c.processes {
            let mut line = format!(
                "  {:<16} {}: {} ({})",
                p.name,
                p.role.as_str(),
                p.framework,
                p.evidence
            );
            if p.role == Role::ApiServer {
                if let Some(port) = c.port {
                    let _ = write!(line, ", port {port}, readiness GET {}", c.health_path);
                }
            }
            let _ = writeln!(out, "{line}");
        }
        for cron in &c.cron_files {
            let _ = writeln!(
                out,
                "  scheduled tasks: cron file {cron} (not generated: run it from a runnable with a cron daemon, or as Celery beat / node-cron)"
            );
        }
        if !c.env.is_empty() {
            let _ = writeln!(out, "  environment: {}", c.env.join(", "));
        }
        if !c.backing.is_empty() {
            let names: Vec<String> = c
                .backing
                .iter()
                .filter_map(|b| BACKING.iter().find(|r| r.name == *b))
                .map(|b| format!("{} ({}:{})", b.name, b.image, b.tag))
                .collect();
            let _ = writeln!(out, "  talks to: {}", names.join(", "));
        }
        match &c.container_file {
            Some(file) => {
                let _ = writeln!(out, "  {file}: used as is");
            }
            None => {
                let file = plan.files.iter().find(|f| {
                    f.path.ends_with("Containerfile")
                        && f.path
                            .trim_end_matches("Containerfile")
                            .trim_end_matches('/')
                            == c.dir
                });
                match file {
                    Some(f) => {
                        let _ = writeln!(out, "  Containerfile: {verb} {}", f.path);
                    }
                    None => {
                        let _ =
                            writeln!(out, "  Containerfile: none (no template for this runtime)");
                    }
                }
            }
        }
    }
    match plan.files.iter().find(|f| f.path == STACK_FILE) {
        None => {
            let _ = writeln!(out, "\nMonkScript: none (nothing needs a container)");
        }
        Some(_) => {
            let _ = writeln!(
                out,
                "\nMonkScript: {verb} {STACK_FILE} (group {}/stack)",
                plan.namespace
            );
            let _ = writeln!(out, "\nBuild the images, then run the stack:");
            for c in plan.components.iter().filter(|c| c.needs_container()) {
                let dir = if c.dir.is_empty() {
                    "."
                } else {
                    c.dir.as_str()
                };
                let file = match &c.container_file {
                    Some(f) => format!(" -f {dir}/{f}"),
                    None => format!(" -f {dir}/Containerfile"),
                };
                let _ = writeln!(
                    out,
                    "  docker build -t {}:latest{file} {dir}",
                    image_of(&plan.namespace, c)
                );
            }
            let _ = writeln!(
                out,
                "  monk load {STACK_FILE} && monk run {}/stack\n(`monk containerize --build` is not there yet.)",
                plan.namespace
            );
        }
    }
    out
}
