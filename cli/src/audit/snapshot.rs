//! `monk snapshot inspect`: what a snapshot file or a data dir's stored snapshot holds.

use std::path::PathBuf;

use clap::Subcommand;
use monk_audit::inspect;
use serde_json::json;

use super::{json_line, Report};
use crate::{table, Output, OutputArg};

#[derive(Subcommand, Debug)]
pub enum SnapshotCmd {
    /// Index, term, format, size and size per kind of state of a snapshot file or of
    /// the snapshot stored in a data dir.
    Inspect {
        #[arg(value_name = "FILE-OR-DIR")]
        path: PathBuf,
        #[command(flatten)]
        out: OutputArg,
    },
}

pub(super) fn run(cmd: &SnapshotCmd) -> Result<Report, String> {
    let SnapshotCmd::Inspect { path, out } = cmd;
    let report = inspect(path).map_err(|e| e.to_string())?;
    let header = &report.header;
    let stdout = match out.output {
        Output::Json => json_line(&json!({
            "index": report.index,
            "term": report.term,
            "format": header.format,
            "size_bytes": report.size_bytes,
            "body_bytes": header.body_bytes,
            "digest": header.digest,
            "snapshot_id": report.snapshot_id,
            "kinds": report.kinds.iter().map(|k| json!({"kind": k.kind, "count": k.count, "bytes": k.bytes})).collect::<Vec<_>>(),
        })),
        Output::Table => {
            let mut text = format!(
                "index     {}\nterm      {}\nformat    {}\nsize      {} bytes (body {})\ndigest    {}\n",
                report.index,
                report.term,
                header.format,
                report.size_bytes,
                header.body_bytes,
                header.digest
            );
            let rows: Vec<Vec<String>> = report
                .kinds
                .iter()
                .map(|k| vec![k.kind.to_string(), k.count.to_string(), k.bytes.to_string()])
                .collect();
            text.push_str(&table::render(&["KIND", "COUNT", "BYTES"], &rows));
            text
        }
    };
    Ok(Report {
        stdout,
        problem: None,
    })
}
