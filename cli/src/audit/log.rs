//! `monk log`: the entries of a data dir as a table or JSON lines, filtered.

use clap::Args;
use monk_audit::{list_entries, EntryFilter, EntryRow};

use super::text::result_text;
use super::{json_line, parse_time, DataDir, Report};
use crate::{table, Output, OutputArg};

#[derive(Args, Debug)]
pub struct LogArgs {
    #[command(flatten)]
    pub(super) dir: DataDir,
    /// First index to show.
    #[arg(long)]
    from: Option<u64>,
    /// Last index to show.
    #[arg(long)]
    to: Option<u64>,
    /// Only entries proposed at or after this RFC 3339 time.
    #[arg(long)]
    since: Option<String>,
    /// Only entries proposed at or before this RFC 3339 time.
    #[arg(long)]
    until: Option<String>,
    /// Only this command kind (`templates-loaded`, `peer-down`, `blank`, `membership`, ...).
    #[arg(long)]
    kind: Option<String>,
    /// Only entries touching this entity path (or a path under it).
    #[arg(long)]
    path: Option<String>,
    /// Only entries proposed by this actor.
    #[arg(long)]
    actor: Option<String>,
    #[command(flatten)]
    out: OutputArg,
}

const ENTRY_HEADER: [&str; 7] = [
    "INDEX", "TERM", "TIME", "ACTOR", "KIND", "SUMMARY", "RESULT",
];

/// An entry row's table cells, in [`ENTRY_HEADER`] order.
fn cells(row: &EntryRow) -> Vec<String> {
    let e = &row.entry;
    vec![
        e.index.to_string(),
        e.term.to_string(),
        e.time.clone().unwrap_or_else(|| "-".into()),
        e.actor.clone().unwrap_or_else(|| "-".into()),
        e.kind.clone(),
        e.summary.clone(),
        result_text(row.result.as_ref()),
    ]
}

pub(super) fn run(args: &LogArgs) -> Result<Report, String> {
    let filter = EntryFilter {
        from: args.from,
        to: args.to,
        since_ms: args.since.as_deref().map(parse_time).transpose()?,
        until_ms: args.until.as_deref().map(parse_time).transpose()?,
        kind: args.kind.clone(),
        path: args.path.clone(),
        actor: args.actor.clone(),
    };
    let reader = args.dir.open()?;
    let listing = list_entries(&reader, &filter).map_err(|e| e.to_string())?;
    let stdout = match args.out.output {
        Output::Json => listing.rows.iter().map(json_line).collect(),
        Output::Table => {
            let cells: Vec<Vec<String>> = listing.rows.iter().map(cells).collect();
            table::render(&ENTRY_HEADER, &cells)
        }
    };
    Ok(Report {
        stdout,
        problem: listing.stopped.map(|s| s.to_string()),
    })
}
