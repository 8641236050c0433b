//! Finding and removing what beds made: the names every bed's things carry (its
//! suffix), the records in [`REGISTRY`] that tell a live or kept bed from a dead one,
//! the subnet claims, and the teardown shared by `Drop`, the sweep of dead runs and
//! `scripts/hosts down`. Each step goes on when an earlier one failed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::command::{ip, run};
use super::{COMMAND_TIMEOUT, KILL_TIMEOUT, RECORD_FILE, REGISTRY, SUBNETS};

/// What of the bed with `suffix` is still there: processes started under its dir,
/// namespaces, links, cgroups, firewall rules, records. Empty after a teardown.
pub fn leftovers(suffix: &str, dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let dir_text = dir.display().to_string();
    for (pid, cmdline) in processes() {
        if cmdline.contains(&dir_text) {
            found.push(format!("process {pid}: {cmdline}"));
        }
    }
    found.extend(
        netns_names()
            .into_iter()
            .filter(|n| suffix_of_netns(n) == Some(suffix))
            .map(|n| format!("namespace {n}")),
    );
    found.extend(
        link_names()
            .into_iter()
            .filter(|n| suffix_of_link(n) == Some(suffix))
            .map(|n| format!("link {n}")),
    );
    found.extend(
        cgroups()
            .into_iter()
            .filter(|c| suffix_of_cgroup(c) == Some(suffix))
            .map(|c| format!("cgroup {}", c.display())),
    );
    found.extend(
        forward_rules()
            .into_iter()
            .filter(|(s, _)| s == suffix)
            .map(|(_, rule)| format!("rule {rule}")),
    );
    if record_path(suffix).exists() {
        found.push(format!("record {}", record_path(suffix).display()));
    }
    found.extend(mounts_under(dir).into_iter().map(|m| format!("mount {m}")));
    found.extend(
        wireguard_sockets(dir)
            .into_iter()
            .filter(|p| p.exists())
            .map(|p| format!("WireGuard socket {}", p.display())),
    );
    found
}

/// The control sockets the bed's peers' userspace WireGuard would leave (the
/// interface name follows from each peer's data dir under `dir`). A peer's WireGuard
/// dies with it, but a SIGKILLed one cannot remove its socket.
fn wireguard_sockets(dir: &Path) -> Vec<PathBuf> {
    names_in(dir)
        .into_iter()
        .map(|name| dir.join(name))
        .filter(|p| p.is_dir())
        .map(|p| {
            monk_node::overlay::uapi::socket_path(&monk_node::overlay::wireguard::interface_name(
                &p,
            ))
        })
        .collect()
}

pub(super) fn record_path(suffix: &str) -> PathBuf {
    Path::new(REGISTRY).join(format!("{suffix}.json"))
}

/// Claims a free `10.213.K.0/24` for `suffix` (a file created only if absent, so two
/// beds starting at once never get the same one).
pub(super) fn claim_subnet(suffix: &str) -> Result<u8, String> {
    for k in SUBNETS {
        let claim = Path::new(REGISTRY).join(format!("subnet-{k}"));
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&claim);
        if let Ok(mut file) = created {
            std::io::Write::write_all(&mut file, suffix.as_bytes()).map_err(|e| e.to_string())?;
            return Ok(k);
        }
    }
    Err(format!(
        "every subnet 10.213.{SUBNETS:?}.0/24 is claimed in {REGISTRY}"
    ))
}

/// The start time of process `pid` (clock ticks since boot), which tells a living
/// owner from a later process that got the same id.
pub(super) fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// Whether the bed with `suffix` belongs to someone: kept, or its owner still runs.
fn owned(suffix: &str) -> bool {
    let Some(record) = std::fs::read(record_path(suffix))
        .ok()
        .and_then(|t| serde_json::from_slice::<Value>(&t).ok())
    else {
        return false;
    };
    if record["kept"] == true {
        return true;
    }
    let pid = record["owner_pid"]
        .as_u64()
        .and_then(|p| u32::try_from(p).ok());
    pid.is_some_and(|pid| {
        process_start(pid).is_some() && process_start(pid) == record["owner_start"].as_u64()
    })
}

/// Tears down every bed nobody owns any more: neither kept nor of a running owner.
pub fn sweep_dead() {
    let mut suffixes: Vec<String> = Vec::new();
    let registry = std::fs::read_dir(REGISTRY).into_iter().flatten().flatten();
    for entry in registry {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(s) = name.strip_suffix(".json").filter(|s| is_suffix(s)) {
            suffixes.push(s.to_string());
        } else if name.starts_with("subnet-") {
            suffixes.extend(
                std::fs::read_to_string(entry.path())
                    .ok()
                    .filter(|s| is_suffix(s)),
            );
        }
    }
    suffixes.extend(
        netns_names()
            .iter()
            .filter_map(|n| suffix_of_netns(n))
            .map(String::from),
    );
    suffixes.extend(
        link_names()
            .iter()
            .filter_map(|n| suffix_of_link(n))
            .map(String::from),
    );
    suffixes.extend(
        cgroups()
            .iter()
            .filter_map(|c| suffix_of_cgroup(c))
            .map(String::from),
    );
    suffixes.extend(forward_rules().into_iter().map(|(s, _)| s));
    suffixes.sort();
    suffixes.dedup();
    for suffix in suffixes.iter().filter(|s| !owned(s)) {
        let dir = std::fs::read(record_path(suffix))
            .ok()
            .and_then(|t| serde_json::from_slice::<Value>(&t).ok())
            .and_then(|r| r["dir"].as_str().map(PathBuf::from));
        tear_down(suffix, dir.as_deref());
        // What the dead run kept there (engines' images, data dirs) goes too: nobody
        // will drop it now. Only a dir that holds a bed's record.
        if let Some(dir) = dir.filter(|d| d.join(RECORD_FILE).exists()) {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Removes everything of the bed with `suffix`, whatever state it is in; each step
/// goes on when an earlier one failed.
pub(super) fn tear_down(suffix: &str, dir: Option<&Path>) {
    let namespaces: Vec<String> = netns_names()
        .into_iter()
        .filter(|n| suffix_of_netns(n) == Some(suffix))
        .collect();
    let mut killed: Vec<u32> = Vec::new();
    for netns in &namespaces {
        let pids = run(
            Command::new("ip").args(["netns", "pids", netns]),
            COMMAND_TIMEOUT,
        )
        .map(|o| crate::cli::stdout(&o))
        .unwrap_or_default();
        killed.extend(
            pids.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
    }
    let groups: Vec<PathBuf> = cgroups()
        .into_iter()
        .filter(|c| suffix_of_cgroup(c) == Some(suffix))
        .collect();
    for group in &groups {
        killed.extend(cgroup_pids(group));
    }
    // A process sits in one cgroup per v1 controller: once each.
    killed.sort_unstable();
    killed.dedup();
    if !killed.is_empty() {
        let _ = Command::new("kill")
            .arg("-KILL")
            .args(killed.iter().map(u32::to_string))
            .stderr(Stdio::null())
            .status();
    }
    let deadline = Instant::now() + KILL_TIMEOUT;
    while killed.iter().any(|p| process_start(*p).is_some()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for group in &groups {
        remove_cgroup(group);
    }
    if let Some(dir) = dir {
        for mount in mounts_under(dir) {
            let _ = run(Command::new("umount").args(["-l", &mount]), COMMAND_TIMEOUT);
        }
        for socket in wireguard_sockets(dir) {
            let _ = std::fs::remove_file(socket);
        }
    }
    for netns in &namespaces {
        let _ = ip(&["netns", "del", netns]);
    }
    for link in link_names()
        .iter()
        .filter(|n| suffix_of_link(n) == Some(suffix))
    {
        let _ = ip(&["link", "del", link]);
    }
    for (_, rule) in forward_rules().into_iter().filter(|(s, _)| s == suffix) {
        let args: Vec<&str> = rule.split_whitespace().skip(1).collect();
        let _ = run(
            Command::new("iptables").arg("-D").args(args),
            COMMAND_TIMEOUT,
        );
    }
    if let Ok(entries) = std::fs::read_dir(REGISTRY) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("subnet-")
                && std::fs::read_to_string(entry.path()).is_ok_and(|s| s == suffix)
            {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    let _ = std::fs::remove_file(record_path(suffix).with_extension("partial"));
    let _ = std::fs::remove_file(record_path(suffix));
}

/// `<pid>x<counter>`.
fn is_suffix(text: &str) -> bool {
    let Some((pid, counter)) = text.split_once('x') else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(pid) && digits(counter)
}

/// `monk-<suffix>-<host>` → suffix.
fn suffix_of_netns(name: &str) -> Option<&str> {
    let (suffix, _) = name.strip_prefix("monk-")?.split_once('-')?;
    is_suffix(suffix).then_some(suffix)
}

/// `mb<suffix>` or `mv<suffix>h<N>` → suffix.
fn suffix_of_link(name: &str) -> Option<&str> {
    let suffix = match name.strip_prefix("mb") {
        Some(rest) => rest,
        None => name.strip_prefix("mv")?.rsplit_once('h')?.0,
    };
    is_suffix(suffix).then_some(suffix)
}

/// `.../monk-<suffix>-<host>` → suffix.
fn suffix_of_cgroup(path: &Path) -> Option<&str> {
    suffix_of_netns(path.file_name()?.to_str()?)
}

/// The network namespaces `ip netns` made.
fn netns_names() -> Vec<String> {
    names_in(Path::new("/var/run/netns"))
}

/// The links of the root namespace (where this process runs).
fn link_names() -> Vec<String> {
    names_in(Path::new("/sys/class/net"))
}

fn names_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// The bed's cgroups: `monk-<suffix>-<host>` at the top of each cgroup v1 controller,
/// or of the v2 hierarchy.
fn cgroups() -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    let mut tops = vec![base.to_path_buf()];
    tops.extend(
        std::fs::read_dir(base)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("cgroup.procs").exists()),
    );
    tops.iter()
        .flat_map(|top| std::fs::read_dir(top).into_iter().flatten().flatten())
        .map(|e| e.path())
        .filter(|p| suffix_of_cgroup(p).is_some() && p.is_dir())
        .collect()
}

/// Every process in `group` and the groups below it.
fn cgroup_pids(group: &Path) -> Vec<u32> {
    let mut pids: Vec<u32> = std::fs::read_to_string(group.join("cgroup.procs"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    for entry in std::fs::read_dir(group).into_iter().flatten().flatten() {
        if entry.path().is_dir() {
            pids.extend(cgroup_pids(&entry.path()));
        }
    }
    pids
}

/// Removes `group` and the groups below it (children first), retrying while the
/// kernel still counts exiting processes in them.
fn remove_cgroup(group: &Path) {
    for entry in std::fs::read_dir(group).into_iter().flatten().flatten() {
        if entry.path().is_dir() {
            remove_cgroup(&entry.path());
        }
    }
    let deadline = Instant::now() + KILL_TIMEOUT;
    while std::fs::remove_dir(group).is_err() && group.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `(suffix, rule)` of the beds' rules in the root namespace's `FORWARD` chain.
fn forward_rules() -> Vec<(String, String)> {
    let Ok(out) = run(
        Command::new("iptables").args(["-S", "FORWARD"]),
        COMMAND_TIMEOUT,
    ) else {
        return Vec::new();
    };
    crate::cli::stdout(&out)
        .lines()
        .filter_map(|line| {
            let at = line.find("monk-hosts-")? + "monk-hosts-".len();
            let suffix = line[at..].split_whitespace().next()?;
            is_suffix(suffix).then(|| (suffix.to_string(), line.to_string()))
        })
        .collect()
}

/// `iptables ACTION FORWARD ...`: bridged traffic between the hosts of bed `suffix`
/// accepted.
pub(super) fn forward_rule(action: &str, suffix: &str) -> Vec<String> {
    let bridge = format!("mb{suffix}");
    [
        action,
        "FORWARD",
        "-i",
        &bridge,
        "-o",
        &bridge,
        "-m",
        "comment",
        "--comment",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("monk-hosts-{suffix}"), "-j".into(), "ACCEPT".into()])
    .collect()
}

/// With `br_netfilter` loaded and on, bridged frames cross iptables.
pub(super) fn bridged_traffic_filtered() -> bool {
    std::fs::read_to_string("/proc/sys/net/bridge/bridge-nf-call-iptables")
        .is_ok_and(|v| v.trim() == "1")
}

/// Mount points at or under `dir`, deepest first.
fn mounts_under(dir: &Path) -> Vec<String> {
    let dir = dir.display().to_string();
    let mut found: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&dir))
        .map(String::from)
        .collect();
    found.sort_by_key(|m| std::cmp::Reverse(m.len()));
    found.dedup();
    found
}

/// `(pid, command line)` of every process.
fn processes() -> Vec<(u32, String)> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let text = String::from_utf8_lossy(&raw).replace('\0', " ");
            (!text.is_empty()).then(|| (pid, text.trim().to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_suffix_and_nothing_else_matches() {
        assert_eq!(suffix_of_netns("monk-123x4-host1"), Some("123x4"));
        assert_eq!(suffix_of_netns("monk-probe-1"), None);
        assert_eq!(suffix_of_link("mb123x4"), Some("123x4"));
        assert_eq!(suffix_of_link("mv123x4h2"), Some("123x4"));
        assert_eq!(suffix_of_link("mvlan0"), None);
        assert_eq!(suffix_of_link("eth0"), None);
        assert_eq!(
            suffix_of_cgroup(Path::new("/sys/fs/cgroup/pids/monk-9x0-host3")),
            Some("9x0")
        );
        assert!(!is_suffix("x1") && !is_suffix("12x") && !is_suffix("1y2"));
        // The largest pid Linux hands out (`pid_max` at most 2^22) still fits a veth
        // name (15 bytes) for the first thousand beds of a process.
        assert_eq!(format!("mv{}x999h9", 1u32 << 22).len(), 15);
    }
}
