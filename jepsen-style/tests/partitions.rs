//! Real partitions between real processes on the three-host bed (issue 13 item 3):
//! three clients write and read one register through the real `monk` CLI (each on
//! its own host's peer, over TLS) while the bed is cut in two ways: a one-way
//! partition (host2 drops everything from host1, host1 still hears host2), then the
//! leader's host cut off the bridge, then a bridge partition (host1 and host3 lose
//! each other while host2 hears both). Healed, every host reads the register once more;
//! the whole history must be linearizable (`monk_drills::linearizability`), with
//! enough reads checked that the verdict means something.
//!
//! Without a Docker engine or `ip netns` permission this prints why and passes
//! vacuously; `MONK_REQUIRE_DOCKER=1` makes that a failure.

use std::process::Command;
use std::time::Duration;

use monk_drills::real::CliClients;
use monk_testkit::hosts::HostBed;

/// When each fault starts and ends, from the start of the clients.
const ONE_WAY: (Duration, Duration) = (Duration::from_secs(4), Duration::from_secs(12));
const LEADER_CUT: (Duration, Duration) = (Duration::from_secs(16), Duration::from_secs(26));
const BRIDGE: (Duration, Duration) = (Duration::from_secs(30), Duration::from_secs(38));
/// When the clients stop.
const RUN_FOR: Duration = Duration::from_secs(42);
/// Fewest linearizable reads that make the verdict mean something.
const READS_MIN: usize = 30;

/// Runs `iptables ARGS` in `netns`.
fn iptables(netns: &str, args: &[&str]) {
    let o = Command::new("ip")
        .args(["netns", "exec", netns, "iptables"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "iptables {args:?} in {netns}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn a_register_stays_linearizable_through_one_way_leader_and_bridge_partitions() {
    let root = tempfile::tempdir().unwrap();
    let Some(bed) = HostBed::start_or_skip(root.path(), 3) else {
        return;
    };
    let clients = CliClients::start(&bed, root.path()).unwrap();
    let start = clients.started;

    // One way: host2 hears nothing from host1; host1 still hears host2.
    let host1_ip = bed.hosts[0].ip.clone();
    std::thread::sleep(ONE_WAY.0.saturating_sub(start.elapsed()));
    iptables(
        &bed.hosts[1].netns,
        &["-I", "INPUT", "-s", &host1_ip, "-j", "DROP"],
    );
    std::thread::sleep(ONE_WAY.1.saturating_sub(start.elapsed()));
    iptables(
        &bed.hosts[1].netns,
        &["-D", "INPUT", "-s", &host1_ip, "-j", "DROP"],
    );

    // The leader's host cut off the bridge.
    std::thread::sleep(LEADER_CUT.0.saturating_sub(start.elapsed()));
    let cut = bed.leader(2).expect("a leader before the cut");
    let leader = bed.hosts[cut].name.clone();
    bed.cut(cut).unwrap();
    std::thread::sleep(LEADER_CUT.1.saturating_sub(start.elapsed()));
    bed.heal(cut).unwrap();

    // A bridge: host1 and host3 lose each other, host2 still hears both.
    let host3_ip = bed.hosts[2].ip.clone();
    std::thread::sleep(BRIDGE.0.saturating_sub(start.elapsed()));
    iptables(
        &bed.hosts[0].netns,
        &["-I", "INPUT", "-s", &host3_ip, "-j", "DROP"],
    );
    iptables(
        &bed.hosts[2].netns,
        &["-I", "INPUT", "-s", &host1_ip, "-j", "DROP"],
    );
    std::thread::sleep(BRIDGE.1.saturating_sub(start.elapsed()));
    iptables(
        &bed.hosts[0].netns,
        &["-D", "INPUT", "-s", &host3_ip, "-j", "DROP"],
    );
    iptables(
        &bed.hosts[2].netns,
        &["-D", "INPUT", "-s", &host1_ip, "-j", "DROP"],
    );

    std::thread::sleep(RUN_FOR.saturating_sub(start.elapsed()));
    // Healed: every host reads the register once more (retrying until it answers).
    let (history, _) = clients.finish(&bed).unwrap();
    let report = monk_drills::linearizability::check(&history);
    let failed = history
        .iter()
        .filter(|o| o.outcome != monk_drills::linearizability::Outcome::Ok)
        .count();
    eprintln!(
        "{} operations through the CLI ({failed} without an answer); cut {leader} after the one-way partition; {report}",
        history.len()
    );
    assert!(!report.is_violation(), "{report}\n{:?}", report.verdict);
    assert!(
        report.reads >= READS_MIN,
        "only {} reads checked: {report}",
        report.reads
    );
}
