//! The placement inputs of a runnable that may be scripts (`scale.value`,
//! `affinity.tag`, `affinity.name`), evaluated against its variables and `--set`
//! values. The peer that receives `monk run`/`update` evaluates them once and puts the
//! results in the command, so the state machine never runs a script and a replay places
//! replicas exactly as the cluster did.

use std::collections::BTreeMap;

use crate::arrow::Host;
use crate::tree::Tree;

use super::{Run, SpecError, RUNNABLE_FUEL_STEPS_MAX};

/// Script-valued placement fields and the values they gave; literal fields are `None`
/// (the state machine reads those from the definition itself).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlacementValues {
    /// What a script-valued `scale.value` gave.
    pub scale: Option<i64>,
    /// What a script-valued `affinity.tag` gave (`None` also when it gave nil).
    pub tag: Option<String>,
    /// What a script-valued `affinity.name` gave.
    pub name: Option<String>,
}

fn is_script(tree: Option<&Tree>) -> bool {
    tree.and_then(Tree::as_str)
        .is_some_and(crate::arrow::has_arrow_prefix)
}

/// Evaluates the script-valued placement fields of the resolved runnable `resolved`.
/// Errors name the field (`scale.value: ArrowScript error at column 3: ...`).
pub fn placement_values(
    resolved: &Tree,
    overrides: &BTreeMap<String, String>,
    host: &mut dyn Host,
) -> Result<PlacementValues, Vec<SpecError>> {
    let scale = resolved.get("scale").and_then(|s| s.get("value"));
    let affinity = resolved.get("affinity");
    let tag = affinity.and_then(|a| a.get("tag"));
    let name = affinity.and_then(|a| a.get("name"));
    if !is_script(scale) && !is_script(tag) && !is_script(name) {
        return Ok(PlacementValues::default());
    }
    let mut run = Run {
        vars: Default::default(),
        host,
        errors: Vec::new(),
        fuel_left: RUNNABLE_FUEL_STEPS_MAX,
        file_bytes: 0,
    };
    let declared = run.declare_variables(resolved.get("variables"), overrides);
    run.evaluate_variables(&declared);
    // A variable that failed matters only when a placement script comes out empty
    // (a script reading a failed variable is skipped without a report of its own).
    let variable_errors = std::mem::take(&mut run.errors);
    let mut values = PlacementValues::default();
    let mut empty = false;
    if is_script(scale) {
        values.scale = run.int("scale.value", scale);
        empty |= values.scale.is_none();
    }
    if is_script(tag) {
        values.tag = run.text("affinity.tag", tag).filter(|t| !t.is_empty());
        empty |= values.tag.is_none();
    }
    if is_script(name) {
        values.name = run.text("affinity.name", name).filter(|t| !t.is_empty());
        empty |= values.name.is_none();
    }
    if empty && run.errors.is_empty() {
        run.errors.extend(variable_errors);
    }
    if is_script(scale) && values.scale.is_none() && run.errors.is_empty() {
        run.error("scale.value", "the script gave nil; it must give a number");
    }
    match run.errors.is_empty() {
        true => Ok(values),
        false => Err(run.errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arrow::StubHost;

    fn tree(yaml: &str) -> Tree {
        crate::monkscript::syntax::parse(yaml)
            .expect("test YAML parses")
            .documents
            .remove(0)
            .to_tree()
    }

    #[test]
    fn a_script_valued_scale_reads_variables_and_overrides() {
        let def = tree(
            "variables: {replicas: {type: int, value: 2}}\nscale: {value: <- $replicas 1 add}\n",
        );
        let values = placement_values(&def, &BTreeMap::new(), &mut StubHost).unwrap();
        assert_eq!(values.scale, Some(3));
        let set = BTreeMap::from([("replicas".to_string(), "5".to_string())]);
        let values = placement_values(&def, &set, &mut StubHost).unwrap();
        assert_eq!(values.scale, Some(6));
    }

    #[test]
    fn literal_fields_are_left_to_the_state_machine() {
        let def = tree("scale: {value: 3}\naffinity: {tag: edge}\n");
        let values = placement_values(&def, &BTreeMap::new(), &mut StubHost).unwrap();
        assert_eq!(values, PlacementValues::default());
    }

    #[test]
    fn a_script_valued_affinity_gives_its_text() {
        let def = tree(
            "variables: {zone: {type: string, value: eu}}\naffinity:\n  tag: <- `zone-${zone}`\n",
        );
        let values = placement_values(&def, &BTreeMap::new(), &mut StubHost).unwrap();
        assert_eq!(values.tag.as_deref(), Some("zone-eu"));
    }

    #[test]
    fn a_broken_scale_script_is_an_error_naming_the_field() {
        let def = tree("scale: {value: <- \"x\" 1 add}\n");
        let errors = placement_values(&def, &BTreeMap::new(), &mut StubHost).unwrap_err();
        assert_eq!(errors[0].at, "scale.value", "{errors:?}");
    }
}
