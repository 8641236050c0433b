//! The pure planner: what should exist (`Wanted`) and what does (`Observed`) in, the
//! actions that make them equal out; and the status a replica reports from what its
//! containers are doing. No I/O, no clock (the caller passes the time), so it is tested
//! by properties (see the tests below): a second plan after carrying out the first is
//! empty, any observed state converges to the wanted set, and nothing outside the
//! observed list (another cluster's or peer's containers) is ever touched.

use std::collections::{BTreeMap, BTreeSet};

use monk_scripting::monkscript::runtime::ContainerSpec;
use monk_statemachine::{Desired, InstanceStatus};
use serde::{Deserialize, Serialize};

/// Which replica a container belongs to, and which of its containers it is.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ContainerKey {
    pub path: String,
    pub replica: u32,
    pub container: String,
}

/// A container as the runtime reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    pub id: String,
    pub name: String,
    pub key: Option<ContainerKey>,
    pub generation: u64,
    pub spec_hash: String,
    pub state: RunState,
    /// When the container was created (seconds since the Unix epoch).
    pub created_unix: i64,
    /// Its address on the peer's container network, when the runtime tells it.
    pub ip: Option<String>,
    /// When its process last started (seconds since the Unix epoch), if known; a
    /// container the engine restarts gets a new start time, not a new creation time.
    pub started_unix: Option<i64>,
    /// How often the engine restarted it (restart policy).
    pub restarts: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunState {
    Created,
    Running,
    /// Exited with this code (if the runtime told it).
    Exited(Option<i64>),
    /// Restarting, paused, being removed...
    Other(String),
}

/// A container this peer should have.
#[derive(Clone, Debug, PartialEq)]
pub struct Wanted {
    pub key: ContainerKey,
    pub name: String,
    pub generation: u64,
    pub spec_hash: String,
    pub spec: ContainerSpec,
    pub labels: BTreeMap<String, String>,
    /// The cluster's container network, and this container's DNS names on it.
    pub network: String,
    pub aliases: Vec<String>,
    /// The network's subnet (its first address is the gateway and the containers'
    /// resolver), when the overlay gives this peer one; `None`: the engine picks.
    pub subnet: Option<monk_statemachine::Ipv4Net>,
}

/// One step of a plan.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Create and start (the image is checked first).
    Create(Box<Wanted>),
    Start {
        id: String,
        name: String,
    },
    /// Stop within the grace period, then remove.
    Remove {
        id: String,
        name: String,
        grace_secs: u64,
    },
}

/// A replica counts as running once all its containers have been up this long, so a
/// process that exits at once is reported as exited, not briefly as running.
pub const RUNNING_AFTER_SECS: i64 = 2;
/// Default grace period before a stopped container is killed.
pub const STOP_GRACE_DEFAULT_SECS: u64 = 10;

/// The pure planner: given what should exist and what does, the actions that make them
/// equal. Running it again on the result plans nothing (idempotence).
pub fn plan(wanted: &[Wanted], observed: &[Observed]) -> Vec<Action> {
    let mut actions = Vec::new();
    let mut kept: BTreeSet<&ContainerKey> = BTreeSet::new();
    let by_key: BTreeMap<&ContainerKey, &Wanted> = wanted.iter().map(|w| (&w.key, w)).collect();
    // Running containers first, so a duplicate keeps the one that runs.
    let mut observed: Vec<&Observed> = observed.iter().collect();
    observed.sort_by_key(|o| (!matches!(o.state, RunState::Running), o.id.clone()));
    for o in observed {
        let matching = o.key.as_ref().and_then(|k| by_key.get(k)).filter(|w| {
            w.generation == o.generation && w.spec_hash == o.spec_hash && w.name == o.name
        });
        match matching {
            Some(w) if kept.insert(&w.key) => {
                if o.state == RunState::Created {
                    actions.push(Action::Start {
                        id: o.id.clone(),
                        name: o.name.clone(),
                    });
                }
            }
            _ => actions.push(Action::Remove {
                id: o.id.clone(),
                name: o.name.clone(),
                grace_secs: o
                    .key
                    .as_ref()
                    .and_then(|k| by_key.get(k))
                    .and_then(|w| w.spec.stop_grace_secs)
                    .unwrap_or(STOP_GRACE_DEFAULT_SECS),
            }),
        }
    }
    // Removals go before creations so a renamed container frees its name first.
    actions.sort_by_key(|a| !matches!(a, Action::Remove { .. }));
    for w in wanted {
        if !kept.contains(&w.key) {
            actions.push(Action::Create(Box::new(w.clone())));
        }
    }
    actions
}

/// The status of one replica from its containers, or the reason it cannot run.
pub fn replica_status(
    desired: Desired,
    wanted: &[&Wanted],
    observed: &[&Observed],
    failure: Option<&str>,
    now_unix: i64,
) -> (InstanceStatus, String) {
    if let Some(why) = failure {
        return (InstanceStatus::Failed, why.to_string());
    }
    if desired == Desired::Stopped {
        return match observed.is_empty() {
            true => (InstanceStatus::Stopped, String::new()),
            false => (InstanceStatus::Starting, "stopping".into()),
        };
    }
    let current = |w: &Wanted| {
        observed.iter().copied().find(|o| {
            o.key.as_ref() == Some(&w.key)
                && o.generation == w.generation
                && o.spec_hash == w.spec_hash
        })
    };
    let mut all_running = !wanted.is_empty();
    let mut restarts = Vec::new();
    for w in wanted {
        let seen = current(w);
        if let Some(o) = seen.filter(|o| o.restarts > 0) {
            restarts.push(format!(
                "{} restarted {} times",
                w.key.container, o.restarts
            ));
        }
        match seen {
            Some(o) if o.state == RunState::Running => {
                let up_since = o.started_unix.unwrap_or(o.created_unix);
                if now_unix - up_since < RUNNING_AFTER_SECS {
                    all_running = false;
                }
            }
            Some(Observed {
                state: RunState::Exited(code),
                restarts: n,
                ..
            }) => {
                let code = code.map_or("an unknown code".into(), |c| c.to_string());
                let mut why = format!("container {} exited with code {code}", w.key.container);
                if *n > 0 {
                    why.push_str(&format!(" after {n} restarts"));
                }
                return (InstanceStatus::Exited, why);
            }
            _ => all_running = false,
        }
    }
    let message = restarts.join("; ");
    match all_running {
        true => (InstanceStatus::Running, message),
        false => (InstanceStatus::Starting, message),
    }
}

#[cfg(test)]
mod tests {
    //! Properties of [`plan`] over random observed states (strays, duplicates, old
    //! generations, changed specs, renamed, created-but-not-started and exited
    //! containers) against random wanted sets.

    use super::*;
    use proptest::prelude::*;

    /// A small key space, so observed and wanted containers often collide.
    fn key() -> impl Strategy<Value = ContainerKey> {
        (
            prop::sample::select(vec!["ns/a", "ns/b"]),
            0u32..3,
            prop::sample::select(vec!["app", "side"]),
        )
            .prop_map(|(path, replica, container)| ContainerKey {
                path: path.into(),
                replica,
                container: container.into(),
            })
    }

    fn name_of(key: &ContainerKey) -> String {
        format!("monk-c1-1-{}-{}-{}", key.path, key.replica, key.container)
    }

    fn wanted() -> impl Strategy<Value = Vec<Wanted>> {
        prop::collection::btree_map(key(), (1u64..3, 0u8..2), 0..8).prop_map(|keys| {
            keys.into_iter()
                .map(|(key, (generation, hash))| Wanted {
                    name: name_of(&key),
                    generation,
                    spec_hash: format!("h{hash}"),
                    spec: ContainerSpec::default(),
                    labels: BTreeMap::new(),
                    network: "monk-c1-1".into(),
                    aliases: Vec::new(),
                    key,
                    subnet: None,
                })
                .collect()
        })
    }

    fn run_state() -> impl Strategy<Value = RunState> {
        prop_oneof![
            Just(RunState::Created),
            Just(RunState::Running),
            Just(RunState::Exited(Some(1))),
            Just(RunState::Other("paused".into())),
        ]
    }

    /// Containers the runtime lists: a few without labels (key `None`), some renamed.
    fn observed() -> impl Strategy<Value = Vec<Observed>> {
        prop::collection::vec(
            (
                prop::option::weighted(0.9, key()),
                1u64..3,
                0u8..2,
                any::<bool>(),
                run_state(),
            ),
            0..10,
        )
        .prop_map(|containers| {
            containers
                .into_iter()
                .enumerate()
                .map(|(i, (key, generation, hash, renamed, state))| Observed {
                    id: format!("id{i}"),
                    name: match (&key, renamed) {
                        (Some(k), false) => name_of(k),
                        _ => format!("other-{i}"),
                    },
                    key,
                    generation,
                    spec_hash: format!("h{hash}"),
                    state,
                    created_unix: 0,
                    ip: None,
                    started_unix: None,
                    restarts: 0,
                })
                .collect()
        })
    }

    /// What a runtime does with the actions, in order (creations get fresh ids).
    fn carry_out(observed: &[Observed], actions: &[Action]) -> Vec<Observed> {
        let mut now = observed.to_vec();
        for (i, action) in actions.iter().enumerate() {
            match action {
                Action::Remove { id, .. } => now.retain(|o| &o.id != id),
                Action::Start { id, .. } => {
                    for o in now.iter_mut().filter(|o| &o.id == id) {
                        o.state = RunState::Running;
                    }
                }
                Action::Create(w) => now.push(Observed {
                    id: format!("new{i}"),
                    name: w.name.clone(),
                    key: Some(w.key.clone()),
                    generation: w.generation,
                    spec_hash: w.spec_hash.clone(),
                    state: RunState::Running,
                    created_unix: 0,
                    ip: None,
                    started_unix: None,
                    restarts: 0,
                }),
            }
        }
        now
    }

    /// (key, generation, spec hash, name) of a container: what makes it current.
    fn identity_of(o: &Observed) -> Option<(ContainerKey, u64, String, String)> {
        Some((
            o.key.clone()?,
            o.generation,
            o.spec_hash.clone(),
            o.name.clone(),
        ))
    }

    proptest! {
        /// Carrying out a plan and planning again yields nothing (idempotence).
        #[test]
        fn a_second_plan_is_empty(wanted in wanted(), observed in observed()) {
            let after = carry_out(&observed, &plan(&wanted, &observed));
            prop_assert_eq!(plan(&wanted, &after), Vec::new());
        }

        /// From any observed state, one plan leaves exactly the wanted containers, each
        /// once, none left created-but-not-started.
        #[test]
        fn any_observed_state_converges_to_the_wanted_set(
            wanted in wanted(),
            observed in observed(),
        ) {
            let after = carry_out(&observed, &plan(&wanted, &observed));
            let mut have: Vec<_> = after.iter().map(identity_of).collect();
            have.sort();
            let mut want: Vec<_> = wanted
                .iter()
                .map(|w| Some((w.key.clone(), w.generation, w.spec_hash.clone(), w.name.clone())))
                .collect();
            want.sort();
            prop_assert_eq!(have, want);
            prop_assert!(after.iter().all(|o| o.state != RunState::Created));
        }

        /// Actions name only containers the runtime listed for this cluster and peer, so
        /// another cluster's or peer's containers on the same engine are never touched;
        /// and every removal comes before any creation (a renamed container frees its
        /// name first).
        #[test]
        fn only_listed_containers_are_touched(
            wanted in wanted(),
            observed in observed(),
            foreign in observed(),
        ) {
            let listed: BTreeSet<&str> = observed.iter().map(|o| o.id.as_str()).collect();
            let actions = plan(&wanted, &observed);
            for action in &actions {
                if let Action::Remove { id, .. } | Action::Start { id, .. } = action {
                    prop_assert!(listed.contains(id.as_str()), "{id} was not listed");
                }
            }
            let foreign: Vec<Observed> = foreign
                .into_iter()
                .map(|o| Observed { id: format!("foreign-{}", o.id), ..o })
                .collect();
            let mut engine = observed.clone();
            engine.extend(foreign.iter().cloned());
            let after = carry_out(&engine, &actions);
            for f in &foreign {
                prop_assert!(after.contains(f), "{} was touched", f.id);
            }
            let first_create = actions.iter().position(|a| matches!(a, Action::Create(_)));
            let last_remove = actions.iter().rposition(|a| matches!(a, Action::Remove { .. }));
            if let (Some(create), Some(remove)) = (first_create, last_remove) {
                prop_assert!(remove < create);
            }
        }
    }
}
