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
            .flat_map(|w| w.addresses())
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
            // A container's traffic to itself never crosses the firewall.
            for to in reachable.iter().filter(|to| *to != from) {
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

/// Unhooks and deletes both chains (a peer that stops with no container left); what
/// is already gone is no error.
pub async fn remove() {
    for (table, hook, chain) in [
        ("filter", "DOCKER-USER", FILTER_CHAIN),
        ("filter", "FORWARD", FILTER_CHAIN),
        ("nat", "POSTROUTING", NAT_CHAIN),
    ] {
        let _ = run("iptables", &["-t", table, "-D", hook, "-j", chain], None).await;
    }
    for (table, chain) in [("filter", FILTER_CHAIN), ("nat", NAT_CHAIN)] {
        let _ = run("iptables", &["-t", table, "-F", chain], None).await;
        let _ = run("iptables", &["-t", table, "-X", chain], None).await;
    }
}

/// The range a container network uses, for Docker: `subnet` and its first address as
/// the gateway (where the peer's DNS answers).
pub fn gateway(subnet: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(subnet.base()) + 1)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::overlay::plan::tests::Log;
    use monk_statemachine::{Command, InstanceStatus, LoadedTemplate};

    fn tree(yaml: &str) -> monk_scripting::tree::Tree {
        monk_scripting::monkscript::syntax::parse(yaml)
            .expect("test YAML parses")
            .documents
            .remove(0)
            .to_tree()
    }

    const WEB: &str =
        "defines: runnable\naffinity: {name: p1}\ncontainers: {main: {image: busybox}}\n";
    const CLIENT: &str = "defines: runnable\naffinity: {name: p2}\nconnections: {web: {runnable: ./web}}\ncontainers: {main: {image: busybox}, side: {image: busybox}}\n";
    const STRANGER: &str =
        "defines: runnable\naffinity: {name: p3}\ncontainers: {main: {image: busybox}}\n";

    /// Three peers running `ns/web` on p1, `ns/client` (two containers, a connection
    /// to web) on p2 and `ns/stranger` on p3, each reporting its addresses.
    pub(crate) fn running() -> Log {
        let mut log = Log::cluster(3);
        let templates = [
            ("ns/web", WEB),
            ("ns/client", CLIENT),
            ("ns/stranger", STRANGER),
        ]
        .iter()
        .map(|(path, yaml)| LoadedTemplate {
            path: path.to_string(),
            kind: "runnable".into(),
            definition: tree(yaml),
        })
        .collect();
        log.ok(Command::TemplatesLoaded { templates });
        type Report<'a> = (&'a str, u64, &'a [(&'a str, &'a str)]);
        let addresses: [Report; 3] = [
            ("ns/web", 1, &[("main", "10.211.128.2")]),
            (
                "ns/client",
                2,
                &[("main", "10.211.129.2"), ("side", "10.211.129.3")],
            ),
            ("ns/stranger", 3, &[("main", "10.211.130.2")]),
        ];
        for (path, peer, containers) in addresses {
            log.ok(Command::WorkloadRun {
                path: path.into(),
                tag: None,
                peer: None,
                overrides: Default::default(),
                evaluated: None,
            });
            log.ok(Command::WorkloadReport {
                peer,
                path: path.into(),
                replica: 0,
                generation: 1,
                status: InstanceStatus::Running,
                message: String::new(),
                addresses: containers
                    .iter()
                    .map(|(c, a)| (c.to_string(), a.parse().unwrap()))
                    .collect(),
            });
        }
        log
    }

    fn ip(text: &str) -> Ipv4Addr {
        text.parse().unwrap()
    }

    #[test]
    fn only_declared_connections_and_a_runnables_own_containers_are_permitted() {
        let log = running();
        let pairs = permitted(&log.state);
        let (web, client, side, stranger) = (
            ip("10.211.128.2"),
            ip("10.211.129.2"),
            ip("10.211.129.3"),
            ip("10.211.130.2"),
        );
        for pair in [(client, web), (side, web), (client, side), (side, client)] {
            assert!(pairs.contains(&pair), "{pair:?} not permitted: {pairs:?}");
        }
        for pair in [
            (web, client),
            (stranger, web),
            (web, stranger),
            (stranger, client),
        ] {
            assert!(!pairs.contains(&pair), "{pair:?} permitted: {pairs:?}");
        }
    }

    #[test]
    fn each_peer_loads_the_rules_that_touch_its_subnet_then_drops_the_rest() {
        let log = running();
        let on_web = rules(&log.state, 1);
        assert_eq!(
            on_web.filter,
            vec![
                "-A MONK-OVERLAY -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
                "-A MONK-OVERLAY -s 10.211.129.2/32 -d 10.211.128.2/32 -j ACCEPT",
                "-A MONK-OVERLAY -s 10.211.129.3/32 -d 10.211.128.2/32 -j ACCEPT",
                "-A MONK-OVERLAY -s 10.211.0.0/16 -d 10.211.128.0/24 -j DROP",
                "-A MONK-OVERLAY -s 10.211.128.0/24 -d 10.211.0.0/16 -j DROP",
            ]
        );
        assert_eq!(
            on_web.nat,
            vec![
                "-A MONK-OVERLAY-NAT -s 10.211.128.0/24 -d 10.211.0.0/16 -j RETURN",
                "-A MONK-OVERLAY-NAT -s 10.211.128.0/24 -j MASQUERADE",
            ]
        );
        // The stranger's peer permits nothing to or from its container.
        let on_stranger = rules(&log.state, 3);
        assert!(!on_stranger
            .filter
            .iter()
            .any(|r| r.contains("10.211.130.2")));
        assert!(on_stranger.filter.last().unwrap().ends_with("-j DROP"));
        // A peer the state gives no subnet gets no rules.
        assert_eq!(rules(&log.state, 9), Rules::default());
        assert_eq!(
            restore_input("filter", FILTER_CHAIN, &on_web.filter[..1]),
            "*filter\n:MONK-OVERLAY - [0:0]\n-A MONK-OVERLAY -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\nCOMMIT\n"
        );
        assert_eq!(
            gateway("10.211.128.0/24".parse().unwrap()),
            ip("10.211.128.1")
        );
    }
}
