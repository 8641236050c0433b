//! `monkd --metrics-listen`: a scrape of `/metrics` parses as Prometheus text (with a
//! parser crate, as Prometheus would read it), and its counters move with what the
//! cluster does.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::*;

fn scrape(addr: &str) -> prometheus_parse::Scrape {
    let mut stream = TcpStream::connect(addr).expect("the metrics endpoint answers");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: monk\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    assert!(
        head.to_lowercase()
            .contains("content-type: application/openmetrics-text"),
        "{head}"
    );
    prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string())))
        .unwrap_or_else(|e| panic!("not Prometheus text ({e}):\n{body}"))
}

/// The value of the one sample named `name` whose labels include `labels`.
fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
}

#[test]
fn metrics_parse_and_count_what_the_cluster_does() {
    let root = tempfile::tempdir().unwrap();
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let mut peer = Peer::start_with(
        root.path(),
        "solo",
        &["--containers", "none", "--metrics-listen", &metrics_addr],
    );
    let before = scrape(&metrics_addr);
    assert_eq!(value(&before, "monk_raft_member", &[]), Some(0.0));
    ok(&peer.addr, &["cluster", "new", "--name", "metrics"]);
    let file = root.path().join("t.yaml");
    std::fs::write(
        &file,
        "namespace: m\napp:\n  defines: runnable\n  containers:\n    main:\n      image: busybox\n",
    )
    .unwrap();
    let loaded = |scrape: &prometheus_parse::Scrape| {
        value(
            scrape,
            "monk_proposals_total",
            &[("kind", "templates-loaded"), ("result", "accepted")],
        )
        .unwrap_or(0.0)
    };
    ok(&peer.addr, &["load", file.to_str().unwrap()]);
    let first = scrape(&metrics_addr);
    ok(&peer.addr, &["load", file.to_str().unwrap()]);
    ok(&peer.addr, &["load", file.to_str().unwrap()]);
    let later = scrape(&metrics_addr);
    assert_eq!(loaded(&first), 1.0);
    assert_eq!(
        loaded(&later),
        3.0,
        "the commit counter grows with proposals"
    );
    assert_eq!(value(&later, "monk_raft_member", &[]), Some(1.0));
    assert_eq!(value(&later, "monk_raft_is_leader", &[]), Some(1.0));
    assert!(value(&later, "monk_raft_term", &[]).unwrap() >= 1.0);
    let applied = value(&later, "monk_raft_applied_index", &[]).unwrap();
    assert!(applied >= 5.0, "applied index {applied}");
    assert_eq!(
        value(
            &later,
            "monk_applied_commands_total",
            &[("kind", "templates-loaded"), ("result", "accepted")]
        ),
        Some(3.0)
    );
    assert_eq!(value(&later, "monk_peers", &[("status", "up")]), Some(1.0));
    assert!(
        value(&later, "monk_raft_commit_seconds_count", &[]).unwrap() >= 3.0,
        "commit latency observed"
    );
    // A rejected command is counted as such, and gRPC requests by method and code.
    let rejected = peer.monk(&["stop", "m/nothing"]);
    assert!(!rejected.status.success());
    let last = scrape(&metrics_addr);
    assert_eq!(
        value(
            &last,
            "monk_proposals_total",
            &[("kind", "workload-stop"), ("result", "rejected")]
        ),
        Some(1.0)
    );
    let proposes = value(
        &last,
        "monk_grpc_requests_total",
        &[("method", "/monk.v1.MonkService/Propose"), ("code", "0")],
    )
    .unwrap();
    assert!(proposes >= 4.0, "{proposes}");
    peer.terminate();
}
