//! Pure: which JavaScript an entity verb runs and what `main` is given. A verb runs
//! `lifecycle.<verb>` when that is a non-empty script, else `lifecycle.sync` (Monk's
//! fallback for any verb, and for an empty `verb: ""` stub); a lifecycle verb with
//! neither does nothing and keeps the state. A readiness check runs
//! `checks.readiness.code`, or `sync` with the action `check-readiness`.

use std::time::Duration;

use monk_js::{Invocation, InvocationContext, Script};
use monk_scripting::tree::Tree;
use monk_statemachine::view::EntityAssignment;
use serde_json::Value;

/// `checks.readiness.initialDelay` when not given, in seconds: check at once.
pub const READINESS_INITIAL_DELAY_DEFAULT_SECS: u64 = 0;
/// `checks.readiness.period` when not given, in seconds (Monk's default).
pub const READINESS_PERIOD_DEFAULT_SECS: u64 = 15;
/// `checks.readiness.attempts` when not given (Monk's default).
pub const READINESS_ATTEMPTS_DEFAULT: u32 = 10;
/// Longest readiness period or initial delay honoured, in seconds: a day, so a typo
/// cannot park an instance for years.
pub const READINESS_SECS_MAX: u64 = 86_400;

/// Why there is nothing to run for a verb.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    #[error("{path}: the entity type {type_path} has no script for {verb} (no lifecycle.{verb} and no lifecycle.sync)")]
    NoScript {
        path: String,
        type_path: String,
        verb: String,
    },
}

/// A readiness check's timing (`checks.readiness`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    pub initial_delay: Duration,
    pub period: Duration,
    pub attempts: u32,
}

/// The readiness check an entity type declares, if any.
pub fn readiness_of(type_definition: &Tree) -> Option<Readiness> {
    let check = type_definition.get("checks")?.get("readiness")?;
    let secs = |key: &str, default: u64| {
        let n = match check.get(key) {
            Some(Tree::Int(n)) => u64::try_from(*n).unwrap_or(default),
            Some(Tree::Str(s)) => s.trim().parse().unwrap_or(default),
            _ => default,
        };
        Duration::from_secs(n.min(READINESS_SECS_MAX))
    };
    let attempts = match check.get("attempts") {
        Some(Tree::Int(n)) => u32::try_from(*n).unwrap_or(READINESS_ATTEMPTS_DEFAULT),
        _ => READINESS_ATTEMPTS_DEFAULT,
    };
    Some(Readiness {
        initial_delay: secs("initialDelay", READINESS_INITIAL_DELAY_DEFAULT_SECS),
        period: secs("period", READINESS_PERIOD_DEFAULT_SECS),
        attempts: attempts.max(1),
    })
}

fn non_empty(tree: Option<&Tree>) -> Option<&str> {
    tree.and_then(Tree::as_str).filter(|s| !s.trim().is_empty())
}

/// Whether the type declares `verb` (for custom verbs: a `lifecycle` key, possibly an
/// empty stub routed to `sync`).
pub fn declares(type_definition: &Tree, verb: &str) -> bool {
    type_definition
        .get("lifecycle")
        .and_then(|l| l.get(verb))
        .is_some()
}

/// The script `verb` runs; `Ok(None)` for a lifecycle verb with no script at all (it
/// succeeds and keeps the state).
pub fn script_for(a: &EntityAssignment, verb: &str) -> Result<Option<Script>, ScriptError> {
    let ty = &a.life.type_definition;
    let lifecycle = ty.get("lifecycle");
    let own = match verb {
        monk_statemachine::schedule::entity::CHECK_READINESS => non_empty(
            ty.get("checks")
                .and_then(|c| c.get("readiness"))
                .and_then(|r| r.get("code")),
        ),
        _ => non_empty(lifecycle.and_then(|l| l.get(verb))),
    };
    let source = own.or_else(|| non_empty(lifecycle.and_then(|l| l.get("sync"))));
    let lifecycle_verb = monk_statemachine::schedule::entity::LIFECYCLE_VERBS.contains(&verb);
    match source {
        Some(source) => {
            let mut script = Script::new(source);
            for (name, module) in &a.life.modules {
                script = script.with_module(name.clone(), module.clone());
            }
            Ok(Some(script))
        }
        None if lifecycle_verb => Ok(None),
        None => Err(ScriptError::NoScript {
            path: a.path.clone(),
            type_path: a.life.type_path.clone(),
            verb: verb.into(),
        }),
    }
}

/// The instance definition as `main`'s first argument: its fields without `defines`.
pub fn definition_json(definition: &Tree) -> Value {
    let value = serde_json::to_value(definition).unwrap_or(Value::Null);
    match value {
        Value::Object(mut map) => {
            map.remove("defines");
            Value::Object(map)
        }
        other => other,
    }
}

/// What `main(definition, state, context)` is given for `verb` on `a`.
pub fn invocation(
    a: &EntityAssignment,
    verb: &str,
    args: serde_json::Map<String, Value>,
) -> Invocation {
    let state = a
        .life
        .state
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok());
    let metadata = a
        .definition
        .get("metadata")
        .and_then(|m| serde_json::to_value(m).ok())
        .unwrap_or(Value::Null);
    Invocation {
        definition: definition_json(&a.definition),
        state,
        context: InvocationContext {
            action: verb.into(),
            status: a.status.map_or("new", |s| s.as_str()).into(),
            path: a.path.clone(),
            args,
            metadata,
        },
        files: Default::default(),
        variables: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use monk_statemachine::{Desired, EntityLife};

    fn assignment(lifecycle: Vec<(&str, &str)>) -> EntityAssignment {
        let lifecycle = Tree::Map(
            lifecycle
                .into_iter()
                .map(|(k, v)| (k.to_string(), Tree::Str(v.into())))
                .collect(),
        );
        EntityAssignment {
            path: "ns/db".into(),
            generation: 1,
            desired: Desired::Running,
            definition: Tree::Map(vec![
                ("defines".into(), Tree::Str("ns/db-type".into())),
                ("name".into(), Tree::Str("shop".into())),
            ]),
            life: EntityLife {
                type_path: "ns/db-type".into(),
                type_definition: Tree::Map(vec![("lifecycle".into(), lifecycle)]),
                modules: Default::default(),
                state: Some(r#"{"id":7}"#.into()),
                created: true,
                todo: vec![],
                step: 3,
                last: None,
            },
            status: None,
        }
    }

    #[test]
    fn a_verb_runs_its_own_script_else_sync_else_nothing() {
        let a = assignment(vec![("create", "c()"), ("sync", "s()"), ("hello", "")]);
        let source = |verb| script_for(&a, verb).map(|s| s.map(|s| s.source));
        assert_eq!(source("create"), Ok(Some("c()".into())));
        assert_eq!(source("start"), Ok(Some("s()".into())));
        assert_eq!(source("hello"), Ok(Some("s()".into())));
        assert!(declares(&a.life.type_definition, "hello"));
        let bare = assignment(vec![("create", "c()")]);
        assert_eq!(script_for(&bare, "stop"), Ok(None));
        assert!(matches!(
            script_for(&bare, "backup"),
            Err(ScriptError::NoScript { .. })
        ));
    }

    #[test]
    fn main_gets_the_fields_the_saved_state_and_the_context() {
        let a = assignment(vec![]);
        let inv = invocation(&a, "start", Default::default());
        assert_eq!(inv.definition, serde_json::json!({"name": "shop"}));
        assert_eq!(inv.state, Some(serde_json::json!({"id": 7})));
        assert_eq!(inv.context.action, "start");
        assert_eq!(inv.context.path, "ns/db");
    }

    #[test]
    fn readiness_timing_has_defaults_and_bounds() {
        let ty = |yaml: Tree| {
            Tree::Map(vec![(
                "checks".into(),
                Tree::Map(vec![("readiness".into(), yaml)]),
            )])
        };
        assert_eq!(readiness_of(&Tree::Map(vec![])), None);
        let given = readiness_of(&ty(Tree::Map(vec![
            ("period".into(), Tree::Int(2)),
            ("attempts".into(), Tree::Int(0)),
            ("initialDelay".into(), Tree::Int(i64::MAX)),
        ])))
        .expect("declared");
        assert_eq!(given.period, Duration::from_secs(2));
        assert_eq!(given.attempts, 1);
        assert_eq!(given.initial_delay, Duration::from_secs(READINESS_SECS_MAX));
    }
}
