//! Whether one peer can take one more replica, and if not, the first rule it fails.
//!
//! The rules, checked in this order for each up member (the first that fails is the
//! peer's reason, shown in `monk ps`/`describe` while a replica is pending):
//! 1. constraints: every required tag, the required peer name or id;
//! 2. residency: a peer holding a resident replica takes nothing else, and a resident
//!    replica goes only to a peer that holds nothing;
//! 3. host ports: no port the replica publishes may be held on the peer already
//!    (same port and protocol on an overlapping address);
//! 4. requirements (`CPU`, `RAM`, `GPU`, `disk`) against the facts the peer reported,
//!    less what replicas already placed there reserved (unless `ignore-pressure`);
//! 5. declared capacity against the summed `resources.requests` (ditto).
//!
//! [`PeerLoad`] is what is placed on one peer; the scheduler keeps one per peer and
//! updates it as it places, so deciding costs one pass over the peers.

use std::fmt;

use crate::command::{Capacity, HostPort};
use crate::state::Peer;
use crate::workload::{Constraints, Requirements, Workload};

/// One replica, for naming who holds a port or a peer: `path#replica`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Holder<'a> {
    pub path: &'a str,
    pub replica: u32,
}

impl fmt::Display for Holder<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.path, self.replica)
    }
}

/// What the replicas placed on one peer take from it.
#[derive(Clone, Debug, Default)]
pub struct PeerLoad<'a> {
    /// Summed `resources.requests`.
    pub requests: Capacity,
    /// Summed `requirements`: millicores, MB, GPUs, GB.
    pub reserved_cpu_millis: u64,
    pub reserved_memory_mb: u64,
    pub reserved_gpus: u32,
    pub reserved_disk_gb: u64,
    /// Replicas of every workload.
    pub replicas: u64,
    /// Host ports held, with their holder.
    pub ports: Vec<(&'a HostPort, Holder<'a>)>,
    /// The resident replica on it, if any.
    pub resident: Option<Holder<'a>>,
}

impl<'a> PeerLoad<'a> {
    /// Counts one replica of `workload` as placed here.
    pub fn add(&mut self, workload: &'a Workload, replica: u32) {
        let holder = Holder {
            path: &workload.path,
            replica,
        };
        self.requests.cpu_millis = self
            .requests
            .cpu_millis
            .saturating_add(workload.requests.cpu_millis);
        self.requests.memory_mb = self
            .requests
            .memory_mb
            .saturating_add(workload.requests.memory_mb);
        let r = &workload.requirements;
        self.reserved_cpu_millis = self.reserved_cpu_millis.saturating_add(r.cpu_millis);
        self.reserved_memory_mb = self.reserved_memory_mb.saturating_add(r.memory_mb);
        self.reserved_gpus = self.reserved_gpus.saturating_add(u32::from(r.gpu));
        self.reserved_disk_gb = self.reserved_disk_gb.saturating_add(r.disk_gb);
        self.replicas += 1;
        self.ports
            .extend(workload.host_ports.iter().map(|p| (p, holder)));
        if workload.constraints.resident {
            self.resident = Some(holder);
        }
    }

    /// Stops counting one replica of `workload` here (it moves or goes away).
    pub fn remove(&mut self, workload: &Workload, replica: u32) {
        self.requests.cpu_millis = self
            .requests
            .cpu_millis
            .saturating_sub(workload.requests.cpu_millis);
        self.requests.memory_mb = self
            .requests
            .memory_mb
            .saturating_sub(workload.requests.memory_mb);
        let r = &workload.requirements;
        self.reserved_cpu_millis = self.reserved_cpu_millis.saturating_sub(r.cpu_millis);
        self.reserved_memory_mb = self.reserved_memory_mb.saturating_sub(r.memory_mb);
        self.reserved_gpus = self.reserved_gpus.saturating_sub(u32::from(r.gpu));
        self.reserved_disk_gb = self.reserved_disk_gb.saturating_sub(r.disk_gb);
        self.replicas = self.replicas.saturating_sub(1);
        let is_this = |h: &Holder| h.path == workload.path && h.replica == replica;
        self.ports.retain(|(_, h)| !is_this(h));
        if self.resident.as_ref().is_some_and(is_this) {
            self.resident = None;
        }
    }
}

/// Why a peer cannot take a replica.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal<'a> {
    MissingTag(&'a str),
    NotNamed(&'a str),
    HeldByResident(Holder<'a>),
    NotEmpty { replicas: u64 },
    PortTaken { port: &'a HostPort, by: Holder<'a> },
    NoFacts,
    Cpu { needs: u64, has: u64 },
    Memory { needs: u64, has: u64 },
    NoGpu { has: u32 },
    Disk { needs: u64, has: u64 },
    NoRoom { asked: Capacity, free: Capacity },
}

impl fmt::Display for Refusal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::MissingTag(tag) => write!(f, "missing tag {tag}"),
            Refusal::NotNamed(name) => write!(f, "pinned to peer {name}"),
            Refusal::HeldByResident(by) => write!(f, "reserved by resident {by}"),
            Refusal::NotEmpty { replicas } => {
                write!(f, "holds {replicas} replica(s), a resident needs it empty")
            }
            Refusal::PortTaken { port, by } => write!(f, "host port {port} taken by {by}"),
            Refusal::NoFacts => write!(f, "has not reported its resources"),
            Refusal::Cpu { needs, has } => write!(f, "needs {needs} mCPU, has {has}"),
            Refusal::Memory { needs, has } => write!(f, "needs {needs} MB, has {has}"),
            Refusal::NoGpu { has: 0 } => write!(f, "needs a GPU, has none"),
            Refusal::NoGpu { has } => write!(f, "needs a GPU, all {has} reserved"),
            Refusal::Disk { needs, has } => write!(f, "needs {needs} GB disk, has {has}"),
            Refusal::NoRoom { asked, free } => write!(
                f,
                "no room for {} mCPU / {} MB (free {} mCPU / {} MB)",
                asked.cpu_millis, asked.memory_mb, free.cpu_millis, free.memory_mb
            ),
        }
    }
}

/// Checks the rules of the module docs for one more replica of `workload` on `peer`.
pub fn check<'a>(
    peer: &'a Peer,
    load: &PeerLoad<'a>,
    workload: &'a Workload,
) -> Result<(), Refusal<'a>> {
    let c = &workload.constraints;
    check_constraints(peer, c)?;
    if let Some(by) = load.resident {
        return Err(Refusal::HeldByResident(by));
    }
    if c.resident && load.replicas > 0 {
        return Err(Refusal::NotEmpty {
            replicas: load.replicas,
        });
    }
    for wanted in &workload.host_ports {
        if let Some((port, by)) = load.ports.iter().find(|(p, _)| p.conflicts_with(wanted)) {
            return Err(Refusal::PortTaken { port, by: *by });
        }
    }
    let pressure = !c.ignore_pressure;
    check_requirements(peer, load, &workload.requirements, pressure)?;
    let used = if pressure {
        load.requests
    } else {
        Capacity::default()
    };
    if !fits(peer.capacity, used, workload.requests) {
        return Err(Refusal::NoRoom {
            asked: workload.requests,
            free: Capacity {
                cpu_millis: peer.capacity.cpu_millis.saturating_sub(used.cpu_millis),
                memory_mb: peer.capacity.memory_mb.saturating_sub(used.memory_mb),
            },
        });
    }
    Ok(())
}

/// Rule 1 alone: the peer's tags and name against the constraints.
pub fn check_constraints<'a>(peer: &Peer, c: &'a Constraints) -> Result<(), Refusal<'a>> {
    if let Some(tag) = c.tags.iter().find(|t| !peer.tags.contains(t)) {
        return Err(Refusal::MissingTag(tag));
    }
    if let Some(name) = c.peer.as_deref() {
        if name != peer.name && name != peer.id.to_string() {
            return Err(Refusal::NotNamed(name));
        }
    }
    Ok(())
}

fn check_requirements<'a>(
    peer: &Peer,
    load: &PeerLoad,
    needs: &Requirements,
    pressure: bool,
) -> Result<(), Refusal<'a>> {
    if needs.is_none() {
        return Ok(());
    }
    let facts = peer.facts;
    if facts.is_unknown() {
        return Err(Refusal::NoFacts);
    }
    let less = |total: u64, reserved: u64| match pressure {
        true => total.saturating_sub(reserved),
        false => total,
    };
    let cpu = less(facts.cpu_millis, load.reserved_cpu_millis);
    if needs.cpu_millis > cpu {
        return Err(Refusal::Cpu {
            needs: needs.cpu_millis,
            has: cpu,
        });
    }
    let memory = less(facts.memory_mb, load.reserved_memory_mb);
    if needs.memory_mb > memory {
        return Err(Refusal::Memory {
            needs: needs.memory_mb,
            has: memory,
        });
    }
    let gpus = match pressure {
        true => facts.gpus.saturating_sub(load.reserved_gpus),
        false => facts.gpus,
    };
    if needs.gpu && gpus == 0 {
        return Err(Refusal::NoGpu { has: facts.gpus });
    }
    let disk = less(facts.disk_free_gb, load.reserved_disk_gb);
    if needs.disk_gb > disk {
        return Err(Refusal::Disk {
            needs: needs.disk_gb,
            has: disk,
        });
    }
    Ok(())
}

/// Whether `asked` fits in what `capacity` has left after `used` (zero capacity means
/// the peer declared none: no limit).
pub fn fits(capacity: Capacity, used: Capacity, asked: Capacity) -> bool {
    let cpu_ok = capacity.cpu_millis == 0
        || used.cpu_millis.saturating_add(asked.cpu_millis) <= capacity.cpu_millis;
    let mem_ok = capacity.memory_mb == 0
        || used.memory_mb.saturating_add(asked.memory_mb) <= capacity.memory_mb;
    cpu_ok && mem_ok
}
