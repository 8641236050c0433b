//! Names of workloads on the overlay, answered from the replicated state: every peer
//! holds the same table, so `web.hello.monk` resolves on any peer to the addresses of
//! every running container of `hello/web` wherever it runs, and `main.web.hello.monk`
//! to those of its container `main`. A replica's addresses come from its executor's
//! `workload-report`, so a moved replica's name follows as soon as its new containers
//! run. [`NameTable::build`] is pure; [`StateNames`] rebuilds it when the state moved
//! and answers the peer's DNS (`super::dns`).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use monk_statemachine::{InstanceStatus, State};

use super::dns::{Lookup, Names, ZONE};
use crate::executor::spec::{container_hostname, runnable_hostname};
use crate::Node;

/// Every name in the zone and its addresses (sorted, without duplicates).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NameTable {
    names: BTreeMap<String, Vec<Ipv4Addr>>,
}

impl NameTable {
    /// The table for `state`: the replicas of running workloads whose executors
    /// report them running.
    pub fn build(state: &State) -> NameTable {
        let mut names: BTreeMap<String, Vec<Ipv4Addr>> = BTreeMap::new();
        for (path, workload) in state.workloads() {
            // A stopped workload's name goes at once, before its containers do.
            if workload.desired != monk_statemachine::Desired::Running {
                continue;
            }
            for observation in workload.instances.values().filter_map(|i| {
                let o = i.observed.as_ref()?;
                let up = matches!(o.status, InstanceStatus::Running | InstanceStatus::Ready);
                (up && i.peer.is_some()).then_some(o)
            }) {
                for (container, address) in &observation.addresses {
                    names
                        .entry(runnable_hostname(path))
                        .or_default()
                        .push(*address);
                    names
                        .entry(container_hostname(path, container))
                        .or_default()
                        .push(*address);
                }
            }
        }
        for addresses in names.values_mut() {
            addresses.sort();
            addresses.dedup();
        }
        NameTable { names }
    }

    /// What the zone answers for `name` (any case, with or without the final dot).
    pub fn lookup(&self, name: &str) -> Lookup {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let ours = name == ZONE || name.ends_with(&format!(".{ZONE}"));
        if !ours {
            return Lookup::NotOurs;
        }
        match self.names.get(&name) {
            Some(addresses) => Lookup::Addresses(addresses.clone()),
            None => Lookup::NoSuchName,
        }
    }
}

/// The peer's DNS answers: the table of the state it has applied, rebuilt when that
/// moved on.
pub struct StateNames {
    node: Arc<Node>,
    cache: Mutex<(u64, Arc<NameTable>)>,
}

impl StateNames {
    pub fn new(node: Arc<Node>) -> StateNames {
        StateNames {
            node,
            cache: Mutex::new((u64::MAX, Arc::default())),
        }
    }

    fn table(&self) -> Arc<NameTable> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let cached = cache.0;
        if let Some(fresh) = self.node.with_state(|s| {
            let applied = s.last_applied_index();
            (applied != cached).then(|| (applied, Arc::new(NameTable::build(s))))
        }) {
            *cache = fresh;
        }
        cache.1.clone()
    }
}

impl Names for StateNames {
    fn lookup(&self, name: &str) -> Lookup {
        self.table().lookup(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::overlay::firewall::tests::running;
    use monk_statemachine::Command;

    fn addresses(list: &[&str]) -> Lookup {
        Lookup::Addresses(list.iter().map(|a| a.parse().unwrap()).collect())
    }

    #[test]
    fn names_answer_every_running_container_wherever_it_runs() {
        let mut log = running();
        let table = NameTable::build(&log.state);
        assert_eq!(table.lookup("web.ns.monk"), addresses(&["10.211.128.2"]));
        assert_eq!(
            table.lookup("Client.NS.monk."),
            addresses(&["10.211.129.2", "10.211.129.3"])
        );
        assert_eq!(
            table.lookup("side.client.ns.monk"),
            addresses(&["10.211.129.3"])
        );
        assert_eq!(table.lookup("db.ns.monk"), Lookup::NoSuchName);
        assert_eq!(table.lookup("monk"), Lookup::NoSuchName);
        assert_eq!(table.lookup("example.com"), Lookup::NotOurs);
        // A stopped replica leaves the table; a report of other addresses (a moved
        // or restarted replica) replaces them.
        log.ok(Command::WorkloadStop {
            path: "ns/stranger".into(),
        });
        log.ok(Command::WorkloadReport {
            peer: 1,
            path: "ns/web".into(),
            replica: 0,
            generation: 1,
            status: monk_statemachine::InstanceStatus::Running,
            message: String::new(),
            addresses: [("main".to_string(), "10.211.128.7".parse().unwrap())].into(),
        });
        let table = NameTable::build(&log.state);
        assert_eq!(table.lookup("web.ns.monk"), addresses(&["10.211.128.7"]));
        assert_eq!(table.lookup("stranger.ns.monk"), Lookup::NoSuchName);
    }
}
