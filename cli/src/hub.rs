//! `monk hub add | rm | list | search | info`: the catalog of kits every peer holds.
//! `add` reads the source on this machine (as `monk load` reads files here: a bad kit
//! is reported before anything is sent), asks the peer what the catalog holds of it,
//! and proposes only the kits whose digest changed (`monk_node::hub::plan_sync`).

use std::time::Instant;

use clap::Subcommand;
use monk_node::hub::{plan_sync, Held, SyncPlan};
use monk_node::views::{HubKitRow, HubTemplateView};
use monk_statemachine::Applied;
use serde::Serialize;

use crate::{actor, connect, json, opt, table, Failure, Outcome, Output, OutputArg};

#[derive(Subcommand, Debug)]
pub enum HubCmd {
    /// Read a source of kits (a directory, or a git repository: a local path, a bare
    /// repository or a URL) and publish its MANIFESTs' kits into the catalog.
    Add {
        source: String,
        #[command(flatten)]
        out: OutputArg,
    },
    /// Remove a source and its kits from the catalog (running workloads keep the
    /// definitions they were started with).
    #[command(visible_alias = "remove")]
    Rm { source: String },
    /// Every kit of every source.
    #[command(visible_alias = "ls")]
    List {
        #[command(flatten)]
        out: OutputArg,
        #[arg(long)]
        stale: bool,
    },
    /// Definitions whose path, kit, repo, description or tags contain TEXT.
    Search {
        text: String,
        #[command(flatten)]
        out: OutputArg,
        #[arg(long)]
        stale: bool,
    },
    /// One Hub definition: its source, kit, version, commit, and the definition.
    Info {
        path: String,
        #[command(flatten)]
        out: OutputArg,
        #[arg(long)]
        stale: bool,
    },
}

pub async fn run(addr: &str, cmd: HubCmd) -> Outcome {
    match cmd {
        HubCmd::Add { source, out } => add(addr, &source, out.output).await,
        HubCmd::Rm { source } => remove(addr, &source).await,
        HubCmd::List { out, stale } => {
            let rows = connect(addr).await?.hub_kits(stale).await?;
            match out.output {
                Output::Json => json(&rows),
                Output::Table => Ok(kit_table(&rows)),
            }
        }
        HubCmd::Search { text, out, stale } => {
            let rows = connect(addr).await?.hub_kits(stale).await?;
            let found = search(&rows, &text);
            match out.output {
                Output::Json => json(&found),
                Output::Table => Ok(search_table(&found)),
            }
        }
        HubCmd::Info { path, out, stale } => {
            let path = path.trim_start_matches('/');
            let view = connect(addr).await?.hub_template(path, stale).await?;
            match out.output {
                Output::Json => json(&view),
                Output::Table => info_text(&view),
            }
        }
    }
}

/// What `monk hub add` did.
#[derive(Serialize)]
struct AddReport {
    source: String,
    commit: Option<String>,
    kits: usize,
    definitions: usize,
    #[serde(flatten)]
    plan: SyncPlan,
    commands: usize,
    /// Kits that did not load, with the first error of each.
    skipped: Vec<SkippedKit>,
    read_ms: u128,
    total_ms: u128,
}

#[derive(Serialize)]
struct SkippedKit {
    kit: String,
    error: String,
}

async fn add(addr: &str, spec: &str, output: Output) -> Outcome {
    let started = Instant::now();
    let read = monk_node::hub::read(spec).map_err(|e| Failure::failed(e.to_string()))?;
    let read_ms = started.elapsed().as_millis();
    let mut client = connect(addr).await?;
    let rows = client.hub_kits(false).await?;
    let mut plan = plan_sync(&read, &held(&rows, &read.source));
    let proposals = std::mem::take(&mut plan.commands);
    let commands = proposals.len();
    for command in proposals {
        let outcome = client.propose(&actor(), command).await?;
        if let Applied::Rejected { reason } = outcome.applied {
            return Err(Failure::failed(format!(
                "hub {}: rejected: {reason}",
                read.source
            )));
        }
    }
    let report = AddReport {
        definitions: read.kits.iter().map(|k| k.templates.len()).sum(),
        kits: read.kits.len(),
        source: read.source,
        commit: read.commit,
        plan,
        commands,
        skipped: read
            .skipped
            .into_iter()
            .map(|(kit, error)| SkippedKit { kit, error })
            .collect(),
        read_ms,
        total_ms: started.elapsed().as_millis(),
    };
    match output {
        Output::Json => json(&report),
        Output::Table => Ok(add_text(&report)),
    }
}

/// `monk hub rm SOURCE`: SOURCE as `hub list` shows it, or a local path to it (made
/// absolute, as `hub add` names a directory).
async fn remove(addr: &str, spec: &str) -> Outcome {
    let source = std::path::Path::new(spec)
        .canonicalize()
        .map_or_else(|_| spec.to_string(), |p| p.display().to_string());
    let command = monk_statemachine::Command::HubSourceRemoved {
        source: source.clone(),
    };
    let outcome = connect(addr).await?.propose(&actor(), command).await?;
    match outcome.applied {
        Applied::Accepted { .. } => {
            Ok(format!("hub {source} removed at index {}\n", outcome.index))
        }
        Applied::Rejected { reason } => Err(Failure::failed(format!("hub rm: {reason}"))),
    }
}

/// What the catalog holds of `source`, from `monk hub list`'s rows.
fn held(rows: &[HubKitRow], source: &str) -> Held {
    let mut held = Held::default();
    for row in rows.iter().filter(|r| r.source == source) {
        held.kits.insert(row.kit.clone(), row.digest.clone());
        held.commit.clone_from(&row.commit);
        held.synced = true;
    }
    held
}

fn add_text(r: &AddReport) -> String {
    let at = r
        .commit
        .as_deref()
        .map(|c| format!(" at {}", c.get(..12).unwrap_or(c)))
        .unwrap_or_default();
    let mut text = format!(
        "hub {}{at}: {} kit(s), {} definition(s) read in {} ms\n{} published, {} unchanged, {} removed: {} command(s), {} bytes, {} ms in all\n",
        r.source,
        r.kits,
        r.definitions,
        r.read_ms,
        r.plan.published,
        r.plan.unchanged,
        r.plan.removed,
        r.commands,
        r.plan.bytes,
        r.total_ms
    );
    if !r.skipped.is_empty() {
        text.push_str(&format!(
            "{} kit(s) skipped (they do not load):\n",
            r.skipped.len()
        ));
        for s in &r.skipped {
            text.push_str(&format!("  {}: {}\n", s.kit, s.error));
        }
    }
    text
}

fn kit_table(rows: &[HubKitRow]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.kit.clone(),
                opt(r.meta.repo.as_ref()),
                opt(r.meta.version.as_ref()),
                r.definitions.len().to_string(),
                r.source.clone(),
                opt(r.commit.as_deref().map(|c| c.get(..12).unwrap_or(c))),
            ]
        })
        .collect();
    table::render(
        &["KIT", "REPO", "VERSION", "DEFINITIONS", "SOURCE", "COMMIT"],
        &cells,
    )
}

/// One definition `monk hub search` found.
#[derive(Serialize)]
struct Found<'a> {
    path: &'a str,
    kind: &'a str,
    kit: &'a str,
    version: Option<&'a str>,
    source: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    shadowed: bool,
}

/// Definitions matching `text` (case-insensitive) in their path, or whose kit matches
/// it in its name, repo, description or tags.
fn search<'a>(rows: &'a [HubKitRow], text: &str) -> Vec<Found<'a>> {
    let needle = text.to_lowercase();
    let has = |s: &str| s.to_lowercase().contains(&needle);
    let mut found = Vec::new();
    for row in rows {
        let kit_matches = has(&row.kit)
            || row.meta.repo.as_deref().is_some_and(has)
            || row.meta.description.as_deref().is_some_and(has)
            || row.meta.tags.iter().any(|t| has(t));
        for d in row
            .definitions
            .iter()
            .filter(|d| kit_matches || has(&d.path))
        {
            found.push(Found {
                path: &d.path,
                kind: &d.kind,
                kit: &row.kit,
                version: row.meta.version.as_deref(),
                source: &row.source,
                shadowed: d.shadowed,
            });
        }
    }
    found.sort_by(|a, b| a.path.cmp(b.path));
    found
}

fn search_table(found: &[Found]) -> String {
    let cells: Vec<Vec<String>> = found
        .iter()
        .map(|f| {
            vec![
                f.path.to_string(),
                f.kind.to_string(),
                f.kit.to_string(),
                opt(f.version),
                f.source.to_string(),
                if f.shadowed { "shadowed" } else { "" }.to_string(),
            ]
        })
        .collect();
    table::render(
        &["PATH", "KIND", "KIT", "VERSION", "SOURCE", "NOTE"],
        &cells,
    )
}

fn info_text(v: &HubTemplateView) -> Outcome {
    let mut text = format!(
        "path         {}\nkind         {}\nsource       {}\nkit          {}\nrepo         {}\nversion      {}\ncommit       {}\ndigest       {}\n",
        v.path,
        v.kind,
        v.source,
        v.kit,
        opt(v.meta.repo.as_ref()),
        opt(v.meta.version.as_ref()),
        opt(v.commit.as_ref()),
        v.digest
    );
    if let Some(description) = &v.meta.description {
        text.push_str(&format!("description  {description}\n"));
    }
    if let Some(by) = &v.shadowed_by {
        text.push_str(&format!(
            "shadowed by  {by} (run and inheritance use that definition)\n"
        ));
    }
    let yaml =
        serde_saphyr::to_string(&v.definition).map_err(|e| Failure::failed(e.to_string()))?;
    text.push('\n');
    text.push_str(&yaml);
    Ok(text)
}
