//! Proposer side: what the peer that receives `monk run`/`update` works out before it
//! proposes the command. Script-valued placement fields (`scale.value`, `affinity.tag`,
//! `affinity.name`) are evaluated and the host ports the containers publish are listed,
//! with the caller's ArrowScript host; the results travel in the command
//! ([`Evaluated`]), so [`crate::apply`] never runs a script and a replay of the log
//! places replicas exactly as the cluster did. Nothing here is called by `apply`.

use std::collections::BTreeMap;

use monk_scripting::arrow::Host;
use monk_scripting::monkscript::model::Kind;
use monk_scripting::monkscript::references::schema_violations;
use monk_scripting::monkscript::runtime::placement::placement_values;
use monk_scripting::monkscript::runtime::{runnable_spec, Protocol};
use monk_scripting::tree::Tree;

use crate::command::{Command, Evaluated, EvaluatedByPath, HostPort};
use crate::schedule::{self, REPLICAS_MAX};
use crate::state::State;
use crate::workload::Desired;

/// One runnable to evaluate: its path, definition as it will run, and the `--set`
/// values it will run with.
#[derive(Clone, Debug, PartialEq)]
pub struct ToEvaluate {
    pub path: String,
    pub definition: Tree,
    pub overrides: BTreeMap<String, String>,
}

/// A placement script failed: the proposal is refused before it enters the log.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct EvaluateError {
    pub path: String,
    pub message: String,
}

/// The runnables `command` would start or change, as the state stands; empty for other
/// commands, already-evaluated ones, and those `apply` will reject anyway (it says why).
pub fn to_evaluate(state: &State, command: &Command) -> Vec<ToEvaluate> {
    match command {
        Command::WorkloadRun {
            path,
            overrides,
            evaluated: None,
            ..
        } => schedule::expand(state, path, true)
            .unwrap_or_default()
            .into_iter()
            // Entity instances have no placement scripts and publish no ports.
            .filter(|e| e.entity.is_none())
            .filter(|e| {
                state
                    .workloads
                    .get(&e.path)
                    .is_none_or(|w| w.desired != Desired::Running)
            })
            .map(|e| ToEvaluate {
                overrides: schedule::overrides_for(&e.definition, overrides),
                path: e.path,
                definition: e.definition,
            })
            .collect(),
        Command::WorkloadUpdate {
            path,
            overrides,
            evaluated: None,
        } => schedule::targets(state, path)
            .unwrap_or_default()
            .iter()
            .filter_map(|p| schedule::updated_definition(state, p).ok())
            .filter(|e| e.entity.is_none())
            .map(|e| {
                let mut merged = state
                    .workloads
                    .get(&e.path)
                    .map(|w| w.overrides.clone())
                    .unwrap_or_default();
                merged.extend(schedule::overrides_for(&e.definition, overrides));
                ToEvaluate {
                    path: e.path,
                    definition: e.definition,
                    overrides: merged,
                }
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Evaluates one runnable's placement inputs with `host`.
pub fn evaluate_runnable(
    runnable: &ToEvaluate,
    host: &mut dyn Host,
) -> Result<Evaluated, EvaluateError> {
    let fail = |message: String| EvaluateError {
        path: runnable.path.clone(),
        message,
    };
    let values =
        placement_values(&runnable.definition, &runnable.overrides, host).map_err(|errors| {
            fail(
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
    let replicas = match values.scale {
        None => None,
        Some(n) if (0..=i64::from(REPLICAS_MAX)).contains(&n) => Some(n as u32),
        Some(n) => {
            return Err(fail(format!(
                "scale.value: the script gave {n}; it must be 0..={REPLICAS_MAX}"
            )))
        }
    };
    let mut evaluated = Evaluated {
        replicas,
        tag: values.tag,
        name: values.name,
        ..Evaluated::default()
    };
    match runnable_spec(
        &runnable.path,
        &runnable.definition,
        &runnable.overrides,
        host,
    ) {
        Ok(spec) => {
            let mut ports: Vec<HostPort> = spec
                .containers
                .iter()
                .flat_map(|c| &c.ports)
                .filter_map(|p| {
                    Some(HostPort {
                        port: p.host_port?,
                        protocol: protocol_name(p.protocol).into(),
                        ip: p.host_ip.clone(),
                    })
                })
                .collect();
            ports.sort();
            ports.dedup();
            evaluated.host_ports = ports;
        }
        Err(errors) => {
            evaluated.ports_error = Some(
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            );
        }
    }
    Ok(evaluated)
}

fn protocol_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Sctp => "sctp",
    }
}

/// Puts evaluated values into a run/update command (other commands are unchanged).
pub fn set_evaluated(command: &mut Command, values: EvaluatedByPath) {
    if let Command::WorkloadRun { evaluated, .. } | Command::WorkloadUpdate { evaluated, .. } =
        command
    {
        *evaluated = Some(values);
    }
}

/// [`to_evaluate`], [`evaluate_runnable`] with one host for every runnable, and
/// [`set_evaluated`]: what a proposer without per-runnable hosts (tests, tools) does.
pub fn evaluate_command(
    state: &State,
    command: &mut Command,
    host: &mut dyn Host,
) -> Result<(), EvaluateError> {
    if !matches!(
        command,
        Command::WorkloadRun {
            evaluated: None,
            ..
        } | Command::WorkloadUpdate {
            evaluated: None,
            ..
        }
    ) {
        return Ok(());
    }
    check_entity_schemas(state, command)?;
    let mut values = EvaluatedByPath::new();
    for runnable in to_evaluate(state, command) {
        values.insert(runnable.path.clone(), evaluate_runnable(&runnable, host)?);
    }
    set_evaluated(command, values);
    Ok(())
}

/// The entity instances a `run`/`update` would start or change, each checked against
/// its type's `schema` (required properties, declared types), so an instance that
/// breaks it is refused before anything is proposed. `monk lint` and `monk load`
/// report the same findings with their file positions.
fn check_entity_schemas(state: &State, command: &Command) -> Result<(), EvaluateError> {
    let expanded = match command {
        Command::WorkloadRun { path, .. } => {
            schedule::expand(state, path, true).unwrap_or_default()
        }
        Command::WorkloadUpdate { path, .. } => schedule::targets(state, path)
            .unwrap_or_default()
            .iter()
            .filter_map(|p| schedule::updated_definition(state, p).ok())
            .collect(),
        _ => Vec::new(),
    };
    for e in expanded {
        let Some(entity) = &e.entity else {
            continue;
        };
        let namespace = e.path.rsplit_once('/').map_or("", |(ns, _)| ns);
        let defines = e.definition.get("defines").and_then(Tree::as_str);
        let kind = Kind::from_defines(defines, namespace);
        let found = schema_violations(
            &e.path,
            &kind,
            &e.definition,
            &entity.path,
            &entity.definition,
        );
        if !found.is_empty() {
            let message = found
                .iter()
                .map(|v| match &v.hint {
                    Some(hint) => format!("{} ({hint})", v.message),
                    None => v.message.clone(),
                })
                .collect::<Vec<_>>()
                .join("; ");
            return Err(EvaluateError {
                path: e.path.clone(),
                message: format!("{message} (`monk lint` shows where)"),
            });
        }
    }
    Ok(())
}
