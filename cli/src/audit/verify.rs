//! `monk verify`: several peers' data dirs compared with the first, a line per peer
//! for people or one JSON object; exit 1 when any diverges.

use std::path::PathBuf;

use clap::Args;
use monk_audit::verify::VERIFY_DIRS_MAX;
use monk_audit::{verify, EntrySide, Finding};
use serde_json::json;

use super::{json_line, open, to_value, Report};
use crate::{Output, OutputArg};

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Two or more peers' data dirs.
    #[arg(long = "data-dir", value_name = "DIR", num_args = 1)]
    pub(super) data_dirs: Vec<PathBuf>,
    /// A running peer (HOST:PORT) whose Raft data is fetched through the API and
    /// compared like a data dir; repeat, and mix with --data-dir.
    #[arg(long = "peer", value_name = "ADDR", num_args = 1)]
    pub(super) peers: Vec<String>,
    #[command(flatten)]
    out: OutputArg,
}

fn entry_line(entry: &EntrySide) -> String {
    match entry {
        EntrySide::Unreadable { unreadable } => format!("unreadable: {unreadable}"),
        EntrySide::Stored(e) => format!(
            "term {} {} by {} [{}] {}: {}",
            e.term,
            e.time.as_deref().unwrap_or("-"),
            e.actor.as_deref().unwrap_or("-"),
            e.request_id.as_deref().unwrap_or("-"),
            e.kind,
            e.summary
        ),
    }
}

fn finding_text(a: &str, b: &str, finding: &Finding) -> String {
    match finding {
        Finding::Consistent { up_to, digests_compared } => format!(
            "{a} and {b}: consistent up to {up_to} ({digests_compared} state digests compared)\n"
        ),
        Finding::EntryDiffers { index, mine, theirs } => format!(
            "{a} and {b}: first difference at index {index}\n  {a}: {}\n  {b}: {}\n",
            entry_line(mine),
            entry_line(theirs)
        ),
        Finding::StateDiffers { index, mine, theirs } => format!(
            "{a} and {b}: states differ after index {index} although their entries agree (the difference predates the logs both hold)\n  {a}: digest {mine}\n  {b}: digest {theirs}\n"
        ),
    }
}

pub(super) fn run(args: &VerifyArgs) -> Result<Report, String> {
    if args.data_dirs.len() < 2 {
        return Err("verify needs at least two --data-dir or --peer".into());
    }
    if args.data_dirs.len() > VERIFY_DIRS_MAX {
        return Err(format!(
            "verify compares at most {VERIFY_DIRS_MAX} data dirs at once"
        ));
    }
    let names: Vec<String> = args
        .data_dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    let readers = args
        .data_dirs
        .iter()
        .map(|d| open(d))
        .collect::<Result<Vec<_>, _>>()?;
    let peers: Vec<(&str, _)> = names.iter().map(String::as_str).zip(&readers).collect();
    let verification = verify(&peers, None).map_err(|e| e.to_string())?;
    let findings = &verification.findings;
    let stdout = match args.out.output {
        Output::Json => json_line(&json!({
            "consistent": verification.consistent(),
            "reference": names[0],
            "peers": findings
                .iter()
                .zip(&names[1..])
                .map(|(finding, name)| {
                    let mut v = to_value(finding);
                    if let Some(map) = v.as_object_mut() {
                        map.insert("data_dir".into(), json!(name));
                    }
                    v
                })
                .collect::<Vec<_>>(),
        })),
        Output::Table => findings
            .iter()
            .zip(&names[1..])
            .map(|(finding, b)| finding_text(&names[0], b, finding))
            .collect(),
    };
    Ok(Report {
        stdout,
        problem: (!verification.consistent()).then(|| "the data dirs diverge".to_string()),
    })
}
