//! Booleans, equality and nil handling.
//!
//! `and`, `xor` and `not` are strict: they want booleans, as documented. `or` is
//! documented as boolean OR but the corpus uses it as a fallback
//! (`... then("PMA_HOST") or("_")`), so `a or(b)` is `a` when `a` is truthy and
//! `b` otherwise, which is boolean OR on booleans. Truthiness: `nil`, `false`,
//! `""` and zero are falsy, everything else truthy.

use crate::arrow::value::Value;

use super::{expected, OpError};

fn want_bool(value: &Value) -> Result<bool, OpError> {
    match value {
        Value::Bool(b) => Ok(*b),
        other => Err(OpError::from(expected("a bool", other))),
    }
}

pub fn and(args: &[Value]) -> Result<Value, OpError> {
    Ok(Value::Bool(want_bool(&args[0])? && want_bool(&args[1])?))
}

pub fn xor(args: &[Value]) -> Result<Value, OpError> {
    Ok(Value::Bool(want_bool(&args[0])? != want_bool(&args[1])?))
}

pub fn not(args: &[Value]) -> Result<Value, OpError> {
    Ok(Value::Bool(!want_bool(&args[0])?))
}

pub fn or(args: &[Value]) -> Result<Value, OpError> {
    Ok(if args[0].is_truthy() {
        args[0].clone()
    } else {
        args[1].clone()
    })
}

pub fn is_nil(args: &[Value]) -> Result<Value, OpError> {
    Ok(Value::Bool(matches!(args[0], Value::Nil)))
}

/// `cond then(x)`: `x` when `cond` is truthy, otherwise `nil` (list entries that
/// evaluate to `nil`, like optional ports, are dropped by the caller).
pub fn then(args: &[Value]) -> Result<Value, OpError> {
    Ok(if args[0].is_truthy() {
        args[1].clone()
    } else {
        Value::Nil
    })
}

/// `v else(y)`: `y` when `v` is `nil`, otherwise `v`; pairs with `then`.
pub fn otherwise(args: &[Value]) -> Result<Value, OpError> {
    Ok(if matches!(args[0], Value::Nil) {
        args[1].clone()
    } else {
        args[0].clone()
    })
}

/// `v default(x)`: `x` when `v` is `nil` or the empty string (an unset or
/// blank variable), otherwise `v`. `0` and `false` are kept: they are values.
pub fn default(args: &[Value]) -> Result<Value, OpError> {
    let missing = match &args[0] {
        Value::Nil => true,
        Value::Str(s) => s.is_empty(),
        _ => false,
    };
    Ok(if missing {
        args[1].clone()
    } else {
        args[0].clone()
    })
}
