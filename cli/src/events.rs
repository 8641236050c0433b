//! `monk events [-f] [--since INDEX|TIME] [--path P] [--kind K] [-o json]`: every
//! command the cluster applies, with its result, as it commits (executor reports too),
//! like `nomad event stream` or `kubectl get -w`. With `-f` it follows; when its peer
//! goes away it resumes from the next index on another peer of the cluster.

use std::time::{Duration, Instant};

use clap::Args;
use monk_node::MonkClient;
use serde_json::Value;

use crate::{connect, Failure, Outcome, Output, OutputArg};

/// How long `-f` keeps trying other peers after its peer stopped answering.
const RECONNECT_FOR: Duration = Duration::from_secs(30);
/// Pause between two rounds of reconnection attempts.
const RECONNECT_PAUSE: Duration = Duration::from_millis(300);

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Keep streaming new events (and resume on another peer if this one goes away).
    #[arg(short = 'f', long)]
    follow: bool,
    /// Start at this log index, or at this RFC 3339 time; default: what the peer keeps
    /// in memory (its last 10,000 commands) without -f, only new ones with -f.
    #[arg(long, value_name = "INDEX|TIME")]
    since: Option<String>,
    /// Only events touching this path (or a path under it).
    #[arg(long)]
    path: Option<String>,
    /// Only this command kind (`workload-run`, `workload-report`, `peer-down`, ...).
    #[arg(long)]
    kind: Option<String>,
    #[command(flatten)]
    out: OutputArg,
}

enum Since {
    Index(u64),
    TimeMs(u64),
}

fn parse_since(text: &str) -> Result<Since, Failure> {
    if let Ok(index) = text.parse::<u64>() {
        return Ok(Since::Index(index));
    }
    monk_audit::time::parse_rfc3339(text)
        .map(Since::TimeMs)
        .map_err(|e| {
            Failure::usage(format!(
                "--since {text:?}: not a log index or an RFC 3339 time ({e})"
            ))
        })
}

impl EventsArgs {
    fn wanted(&self, event: &Value, since: &Option<Since>) -> bool {
        if event.get("note").is_some() {
            return true;
        }
        if let Some(Since::TimeMs(t)) = since {
            if event["time_ms"].as_u64().unwrap_or(0) < *t {
                return false;
            }
        }
        if let Some(kind) = &self.kind {
            if event["kind"].as_str() != Some(kind.as_str()) {
                return false;
            }
        }
        if let Some(path) = &self.path {
            let under = |p: &str| p == path || p.starts_with(&format!("{path}/"));
            let paths = event["paths"].as_array().cloned().unwrap_or_default();
            if !paths.iter().filter_map(Value::as_str).any(under) {
                return false;
            }
        }
        true
    }
}

fn line(event: &Value, output: Output) -> String {
    if output == Output::Json {
        return event.to_string();
    }
    if let Some(note) = event["note"].as_str() {
        return format!("# {note} (first index {})", event["first_index"]);
    }
    let result = match event["result"]["result"].as_str() {
        Some("rejected") => {
            let reason = &event["result"]["reason"];
            format!("rejected: {}", rejection_text(reason))
        }
        Some(other) => other.to_string(),
        None => "?".into(),
    };
    format!(
        "{:>6}  {:<24}  {:<20}  {:<24}  {}  [{}]",
        event["index"],
        monk_audit::time::format_ms(event["time_ms"].as_u64().unwrap_or(0)),
        event["kind"].as_str().unwrap_or(""),
        event["actor"].as_str().unwrap_or(""),
        event["summary"].as_str().unwrap_or(""),
        result
    )
}

/// A rejection in the words the CLI uses everywhere (its `Display`), from its JSON.
fn rejection_text(reason: &Value) -> String {
    serde_json::from_value::<monk_statemachine::Rejection>(reason.clone())
        .map(|r| r.to_string())
        .unwrap_or_else(|_| reason.to_string())
}

/// Addresses to resume on: the one given first, then every peer the cluster knows.
async fn peer_addresses(client: &mut MonkClient, first: &str) -> Vec<String> {
    let mut addrs = vec![first.to_string()];
    if let Ok(peers) = client.peers(true).await {
        for p in peers {
            if !addrs.contains(&p.address) {
                addrs.push(p.address);
            }
        }
    }
    addrs
}

pub async fn run(addr: &str, args: EventsArgs) -> Outcome {
    let since = args.since.as_deref().map(parse_since).transpose()?;
    let mut client = connect(addr).await?;
    let mut next = match (&since, args.follow) {
        (Some(Since::Index(i)), _) => *i,
        (Some(Since::TimeMs(_)), _) | (None, false) => 0,
        (None, true) => {
            let view = client.consensus().await?;
            view.applied_index.map_or(0, |i| i + 1)
        }
    };
    let addrs = peer_addresses(&mut client, addr).await;
    if args.out.output == Output::Table {
        crate::output::out(&format!(
            "{:>6}  {:<24}  {:<20}  {:<24}  SUMMARY  [RESULT]\n",
            "INDEX", "TIME", "KIND", "ACTOR"
        ));
    }
    let mut lost_at: Option<Instant> = None;
    let mut current = 0usize;
    loop {
        let stream = match connect(&addrs[current]).await {
            Ok(mut c) => c.events(next, args.follow).await.map_err(Failure::from),
            Err(e) => Err(e),
        };
        let mut stream = match stream {
            Ok(s) => {
                lost_at = None;
                s
            }
            Err(e) => {
                if !args.follow || lost_at.is_some_and(|t| t.elapsed() > RECONNECT_FOR) {
                    return Err(e);
                }
                lost_at.get_or_insert_with(Instant::now);
                current = (current + 1) % addrs.len();
                tokio::time::sleep(RECONNECT_PAUSE).await;
                continue;
            }
        };
        loop {
            match stream.next().await {
                Ok(Some(event)) => {
                    if let Some(index) = event["index"].as_u64() {
                        next = index + 1;
                    }
                    if args.wanted(&event, &since) {
                        crate::output::out(&format!("{}\n", line(&event, args.out.output)));
                    }
                }
                Ok(None) if !args.follow => return Ok(String::new()),
                // The peer ended the stream or went away: resume on the next peer.
                Ok(None) | Err(_) => break,
            }
        }
        lost_at.get_or_insert_with(Instant::now);
        current = (current + 1) % addrs.len();
    }
}
