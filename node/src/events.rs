//! `monk events`: the commands this peer applies, with their results, streamed as they
//! are applied. Every peer applies every committed entry, so any peer can serve the
//! stream, and it goes on across leader changes; a client that lost its peer resumes
//! from the next index on another.
//!
//! Events come from the bounded ring the state machine keeps
//! ([`monk_log::EVENTS_KEPT_MAX`]); the stream polls it every [`EVENTS_POLL`] rather
//! than holding a lock or a channel per client.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use monk_log::AppliedEvent;

use crate::node::Node;
use crate::pb::JsonReply;

/// How often a following stream looks for newly applied commands.
pub const EVENTS_POLL: Duration = Duration::from_millis(100);
/// Messages buffered per client before the stream waits for it.
pub const EVENTS_CHANNEL_CAPACITY: usize = 256;

/// A note in the stream (not an applied command): what the client should know.
#[derive(serde::Serialize)]
struct Note<'a> {
    note: &'a str,
    /// The first index this peer can still show.
    first_index: u64,
}

/// The events kept from `from` on, and the first index kept (if any).
fn since(node: &Node, from: u64) -> (Vec<AppliedEvent>, Option<u64>) {
    let shared = node.shared_state();
    let applied = shared.read().unwrap_or_else(|p| p.into_inner());
    let first = applied.events.front().map(|e| e.index);
    let events = applied
        .events
        .iter()
        .filter(|e| e.index >= from)
        .cloned()
        .collect();
    (events, first)
}

/// Streams events from `from` on into `tx` until the client goes away (or, without
/// `follow`, until it has everything kept so far).
pub async fn stream(
    node: Arc<Node>,
    from: u64,
    follow: bool,
    tx: mpsc::Sender<Result<JsonReply, tonic::Status>>,
) {
    let mut next = from;
    let (_, first) = since(&node, next);
    if let Some(first) = first.filter(|first| next < *first && next > 0) {
        let note = Note {
            note: "events before first_index are no longer kept in memory on this peer; read them with `monk log`",
            first_index: first,
        };
        if send(&tx, &note).await.is_err() {
            return;
        }
    }
    loop {
        let (events, _) = since(&node, next);
        for event in &events {
            if send(&tx, event).await.is_err() {
                return;
            }
            next = event.index + 1;
        }
        if !follow || node.is_shut_down() {
            return;
        }
        tokio::time::sleep(EVENTS_POLL).await;
    }
}

async fn send(
    tx: &mpsc::Sender<Result<JsonReply, tonic::Status>>,
    value: &impl serde::Serialize,
) -> Result<(), ()> {
    let json = serde_json::to_vec(value).map_err(|_| ())?;
    tx.send(Ok(JsonReply { json })).await.map_err(|_| ())
}
