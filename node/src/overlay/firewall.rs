//! Declared connections only: the packet filter a peer keeps between workloads on the
//! overlay, and the source NAT its container network needs once Docker's is off.
//!
//! [`rules`] is pure: from the replicated state it computes, for this peer, which
//! container addresses may open connections to which (a runnable to the targets of its
//! `connections`, and a runnable's containers among themselves), and renders two
//! chains in `iptables-restore` form. [`apply`] loads them atomically (one restore per
//! table, chains replaced whole) and hooks them in front of Docker's rules
//! (`DOCKER-USER` and `POSTROUTING`). A cluster made with `--open-network` lets all
//! overlay traffic through. Traffic that is not between two overlay addresses
//! (published host ports, the internet) is left to Docker's own rules.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::process::Stdio;
use std::time::Duration;

use monk_statemachine::{Ipv4Net, PeerId, State};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::executor::spec::connection_targets;

/// The filter chain monkd owns (jumped to first from `DOCKER-USER`).
pub const FILTER_CHAIN: &str = "MONK-OVERLAY";
/// The NAT chain monkd owns (jumped to first from `POSTROUTING`).
pub const NAT_CHAIN: &str = "MONK-OVERLAY-NAT";
/// Bound on one `iptables` or `iptables-restore` run.
const IPTABLES_TIMEOUT: Duration = Duration::from_secs(10);

/// Both chains' rules, in `iptables-restore` form.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rules {
    pub filter: Vec<String>,
    pub nat: Vec<String>,
}

/// Which container addresses may open connections to which: `(from, to)` pairs.
pub fn permitted(state: &State) -> BTreeSet<(Ipv4Addr, Ipv4Addr)> {
    let addresses = |path: &str| -> Vec<Ipv4Addr> {
        state
            .workloads()
            .get(path)
            .into_iter()
            .flat_map(|w| w.instances.values())
            .filter_map(|i| i.observed.as_ref())
            .flat_map(|o| o.addresses.values().copied())
            .collect()
    };
    let mut pairs = BTreeSet::new();
    for (path, workload) in state.workloads() {
        let own = addresses(path);
        let mut reachable = own.clone();
        for target in connection_targets(path, &workload.definition) {
            reachable.extend(addresses(&target));
        }
        for from in &own {
            for to in &reachable {
                pairs.insert((*from, *to));
            }
        }
    }
    pairs
}

/// The chains for peer `me`; empty when the state gives it no container subnet.
pub fn rules(state: &State, me: PeerId) -> Rules {
    let (Some(range), Some(subnet)) = (
        state.overlay_range(),
        state
            .peer(me)
            .and_then(|p| p.overlay.as_ref())
            .map(|o| o.subnet),
    ) else {
        return Rules::default();
    };
    let mut filter = vec![format!(
        "-A {FILTER_CHAIN} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
    )];
    if state.open_network() {
        filter.push(format!("-A {FILTER_CHAIN} -s {range} -d {range} -j ACCEPT"));
    } else {
        let mine = |a: &Ipv4Addr| subnet.contains(*a);
        for (from, to) in permitted(state) {
            if mine(&from) || mine(&to) {
                filter.push(format!(
                    "-A {FILTER_CHAIN} -s {from}/32 -d {to}/32 -j ACCEPT"
                ));
            }
        }
        filter.push(format!("-A {FILTER_CHAIN} -s {range} -d {subnet} -j DROP"));
        filter.push(format!("-A {FILTER_CHAIN} -s {subnet} -d {range} -j DROP"));
    }
    let nat = vec![
        format!("-A {NAT_CHAIN} -s {subnet} -d {range} -j RETURN"),
        format!("-A {NAT_CHAIN} -s {subnet} -j MASQUERADE"),
    ];
    Rules { filter, nat }
}

/// The `iptables-restore --noflush` input that replaces `chain` in `table` whole.
pub fn restore_input(table: &str, chain: &str, rules: &[String]) -> String {
    let mut text = format!("*{table}\n:{chain} - [0:0]\n");
    for rule in rules {
        text.push_str(rule);
        text.push('\n');
    }
    text.push_str("COMMIT\n");
    text
}

/// Why the firewall could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {why}")]
pub struct FirewallError {
    what: String,
    why: String,
}

async fn run(program: &str, args: &[&str], input: Option<&str>) -> Result<(), FirewallError> {
    let what = format!("{program} {}", args.join(" "));
    let failed = |why: String| FirewallError {
        what: what.clone(),
        why,
    };
    let go = async {
        let mut child = Command::new(program)
            .args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| failed(e.to_string()))?;
        if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin
                .write_all(text.as_bytes())
                .await
                .map_err(|e| failed(e.to_string()))?;
        }
        let output = child
            .wait_with_output()
            .await
            .map_err(|e| failed(e.to_string()))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(failed(
                String::from_utf8_lossy(&output.stderr).trim().to_string(),
            ))
        }
    };
    tokio::time::timeout(IPTABLES_TIMEOUT, go)
        .await
        .map_err(|_| failed(format!("no answer within {IPTABLES_TIMEOUT:?}")))?
}

/// Makes sure `hook` in `table` jumps to `chain` first.
async fn hook(table: &str, hook: &str, chain: &str) -> Result<(), FirewallError> {
    let rule = ["-t", table, "-C", hook, "-j", chain];
    if run("iptables", &rule, None).await.is_ok() {
        return Ok(());
    }
    run(
        "iptables",
        &["-t", table, "-I", hook, "1", "-j", chain],
        None,
    )
    .await
}

/// Loads `rules` and hooks both chains in (filter from `DOCKER-USER`, or `FORWARD`
/// where Docker made no `DOCKER-USER`).
pub async fn apply(rules: &Rules) -> Result<(), FirewallError> {
    let filter = restore_input("filter", FILTER_CHAIN, &rules.filter);
    run("iptables-restore", &["--noflush"], Some(&filter)).await?;
    let nat = restore_input("nat", NAT_CHAIN, &rules.nat);
    run("iptables-restore", &["--noflush"], Some(&nat)).await?;
    let forward = match run(
        "iptables",
        &["-t", "filter", "-L", "DOCKER-USER", "-n"],
        None,
    )
    .await
    {
        Ok(()) => "DOCKER-USER",
        Err(_) => "FORWARD",
    };
    hook("filter", forward, FILTER_CHAIN).await?;
    hook("nat", "POSTROUTING", NAT_CHAIN).await
}

/// The range a container network uses, for Docker: `subnet` and its first address as
/// the gateway (where the peer's DNS answers).
pub fn gateway(subnet: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(subnet.base()) + 1)
}
