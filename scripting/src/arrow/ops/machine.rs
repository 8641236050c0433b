//! Operators that work on the machine rather than on values alone: stack
//! shuffling (`dup`, `mark`), functions (`callf`, `map`, `filter`, `call`) and
//! variables (`var`, `set`, `set-tmp`, `unset`).
//!
//! Each gets the machine, the stack index where its inputs start and the script
//! offset for errors, and leaves its results on the stack.

use std::sync::Arc;

use crate::arrow::eval::{EvalError, Machine};
use crate::arrow::value::Value;
use crate::arrow::{ARRAY_ITEMS_MAX, COMPARE_VISITS_PER_STEP};

use super::{expected, lookup};

fn script_err(at: usize, op: &str, message: String) -> EvalError {
    EvalError::script(at, format!("`{op}`: {message}"))
}

fn take(machine: &mut Machine, base: usize) -> Vec<Value> {
    machine.stack.split_off(base)
}

fn name_arg(value: &Value, op: &str, at: usize) -> Result<Arc<str>, EvalError> {
    match value {
        Value::Str(s) => Ok(s.clone()),
        other => Err(script_err(
            at,
            op,
            expected("a variable name string", other),
        )),
    }
}

pub fn dup(m: &mut Machine, base: usize, at: usize) -> Result<(), EvalError> {
    let value = m.stack[base].clone();
    m.push(value, at)
}

pub fn mark(m: &mut Machine, _base: usize, _at: usize) -> Result<(), EvalError> {
    m.mark();
    Ok(())
}

pub fn var(m: &mut Machine, base: usize, at: usize) -> Result<(), EvalError> {
    let args = take(m, base);
    let name = name_arg(&args[0], "var", at)?;
    let value = m.var(&name, at)?;
    m.push(value, at)
}

/// `value set-tmp(name)`: a variable for the rest of this run; leaves the value.
pub fn set_tmp(m: &mut Machine, base: usize, at: usize) -> Result<(), EvalError> {
    let mut args = take(m, base);
    let name = name_arg(&args[1], "set-tmp", at)?;
    let value = args.swap_remove(0);
    m.set_tmp(name, Some(value.clone()));
    m.push(value, at)
}

/// `unset(name)`: forgets a `set-tmp` variable (and hides a script variable of
/// that name for the rest of the run).
pub fn unset(m: &mut Machine, base: usize, at: usize) -> Result<(), EvalError> {
    let args = take(m, base);
    let name = name_arg(&args[0], "unset", at)?;
    m.set_tmp(name, None);
    Ok(())
}

/// `value set(name)`: persists through the host, then reads back in this run.
pub fn set(m: &mut Machine, base: usize, at: usize) -> Result<(), EvalError> {
    let name = name_arg(&m.stack[base + 1], "set", at)?;
    let value = m.stack[base].clone();
    m.call_host("set", base, at)?;
    m.stack.truncate(base);
    m.set_tmp(name, Some(value.clone()));
    m.push(value, at)
}

fn func_arg(
    value: &Value,
    op: &str,
    at: usize,
) -> Result<Arc<crate::arrow::value::Func>, EvalError> {
    match value {
        Value::Func(f) => Ok(f.clone()),
        other => Err(script_err(
            at,
            op,
            expected("a function `<-{ ... }`", other),
        )),
    }
}

/// `<-{ ... } callf`: runs the function right here, on this stack.
pub fn callf(m: &mut Machine, base: usize, at: usize) -> Result<(), EvalError> {
    let args = take(m, base);
    let func = func_arg(&args[0], "callf", at)?;
    m.run(&func.body)
}

fn array_and_func(
    m: &mut Machine,
    base: usize,
    op: &str,
    at: usize,
) -> Result<(Vec<Value>, Arc<crate::arrow::value::Func>), EvalError> {
    let args = take(m, base);
    let func = func_arg(&args[1], op, at)?;
    match &args[0] {
        Value::Array(list) => Ok((list.items().to_vec(), func)),
        Value::Nil => Ok((Vec::new(), func)),
        other => Err(script_err(at, op, expected("an array", other))),
    }
}

/// `array map(f)`: `f` applied to each element on a fresh stack; the top value
/// it leaves is the new element.
pub fn map(m: &mut Machine, base: usize, at: usize) -> Result<(), EvalError> {
    let (items, func) = array_and_func(m, base, "map", at)?;
    let mut out = Vec::with_capacity(items.len());
    for item in &items {
        m.charge(1, at)?;
        out.push(m.apply(&func.body, std::slice::from_ref(item), at)?);
    }
    m.push(Value::array(out), at)
}

/// `array filter(f)`: the elements for which `f` leaves a truthy value.
pub fn filter(m: &mut Machine, base: usize, at: usize) -> Result<(), EvalError> {
    let (items, func) = array_and_func(m, base, "filter", at)?;
    let mut out = Vec::new();
    for item in items {
        m.charge(1, at)?;
        if m.apply(&func.body, std::slice::from_ref(&item), at)?
            .is_truthy()
        {
            out.push(item);
        }
    }
    m.push(Value::array(out), at)
}

/// `"op-name" [args] call`: calls an operator by name with the array's elements
/// as its arguments, as if they were written in parentheses.
pub fn call(m: &mut Machine, base: usize, at: usize) -> Result<(), EvalError> {
    let args = take(m, base);
    let name = match &args[0] {
        Value::Str(s) => s.clone(),
        other => return Err(script_err(at, "call", expected("an operator name", other))),
    };
    let Some(op) = lookup(&name) else {
        return Err(script_err(at, "call", format!("unknown operator `{name}`")));
    };
    let values = match &args[1] {
        Value::Array(list) => list.items().to_vec(),
        other => {
            return Err(script_err(
                at,
                "call",
                expected("an array of arguments", other),
            ))
        }
    };
    if values.len() > ARRAY_ITEMS_MAX {
        return Err(script_err(at, "call", "too many arguments".to_string()));
    }
    op.check_arg_count(values.len())
        .map_err(|message| EvalError::script(at, message))?;
    if matches!(op.imp, super::Imp::IfError) {
        return Err(script_err(
            at,
            "call",
            "`if-error` cannot be called by name".to_string(),
        ));
    }
    let height = m.stack.len();
    let under = op.stack_values_under_args(values.len());
    if m.available() < under {
        return Err(script_err(
            at,
            "call",
            format!("`{}` needs {under} more value(s) on the stack", op.name),
        ));
    }
    for value in values {
        m.push(value, at)?;
    }
    m.invoke(op, height - under, at)
}

/// Structural equality paid for with fuel: one step per
/// [`COMPARE_VISITS_PER_STEP`] values visited.
fn equal(m: &mut Machine, a: &Value, b: &Value, at: usize) -> Result<bool, EvalError> {
    let start = m.fuel_left().saturating_mul(COMPARE_VISITS_PER_STEP);
    let mut budget = start;
    let result = a.equals_within(b, &mut budget);
    m.charge((start - budget) / COMPARE_VISITS_PER_STEP, at)?;
    match result {
        Some(equal) => Ok(equal),
        None => m.charge(m.fuel_left() + 1, at).map(|()| false),
    }
}

fn two(m: &mut Machine, base: usize) -> (Value, Value) {
    let b = m.stack.pop().unwrap_or(Value::Nil);
    let a = m.stack.pop().unwrap_or(Value::Nil);
    m.stack.truncate(base);
    (a, b)
}

/// `a b eq?` (also `equal?`, `cmp`).
pub fn eq(m: &mut Machine, base: usize, at: usize) -> Result<(), EvalError> {
    let (a, b) = two(m, base);
    let result = equal(m, &a, &b, at)?;
    m.push(Value::Bool(result), at)
}

/// `a b not-eq?`.
pub fn not_eq(m: &mut Machine, base: usize, at: usize) -> Result<(), EvalError> {
    let (a, b) = two(m, base);
    let result = equal(m, &a, &b, at)?;
    m.push(Value::Bool(!result), at)
}

/// `haystack needle contains?`: substring of a string, element of an array, key
/// of an object. A `nil` haystack contains nothing (a failed `http-get` gives
/// `nil`, and a readiness check should then read "not ready", not fail).
pub fn contains(m: &mut Machine, base: usize, at: usize) -> Result<(), EvalError> {
    let (haystack, needle) = two(m, base);
    let fail = |what: &str, got: &Value| script_err(at, "contains?", expected(what, got));
    let found = match &haystack {
        Value::Nil => false,
        Value::Str(s) => match &needle {
            Value::Str(n) => s.contains(&**n),
            other => return Err(fail("a string to look for", other)),
        },
        Value::Array(list) => {
            let mut found = false;
            for item in list.items() {
                if equal(m, item, &needle, at)? {
                    found = true;
                    break;
                }
            }
            found
        }
        Value::Object(map) => match &needle {
            Value::Str(key) => map.get(key).is_some(),
            other => return Err(fail("a string key", other)),
        },
        other => return Err(fail("a string, array or object", other)),
    };
    m.push(Value::Bool(found), at)
}
