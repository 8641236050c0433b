//! Arrays, objects, JSON and type conversions.
//!
//! `get-member`, `first` and `last` return `nil` for a missing key or element
//! and also when given `nil`, so chains over entity state that is not there yet
//! (`connection-target("db") entity-state get-member("port") default(5432)`)
//! fall through to their `default` instead of failing.

use std::sync::Arc;

use crate::arrow::value::{List, Map, Value};
use crate::arrow::{ARRAY_ITEMS_MAX, STRING_BYTES_MAX, VALUE_NESTING_LEVELS_MAX};

use super::{expected, limit, want_str, OpError};

/// The text of a value as `to-s` gives it, refusing results over the size limit.
pub fn to_text(value: &Value) -> Result<String, OpError> {
    match value {
        Value::Array(_) | Value::Object(_) => {
            value.to_json_bounded(STRING_BYTES_MAX).ok_or_else(|| {
                limit(format!(
                    "text form exceeds the {STRING_BYTES_MAX}-byte string limit"
                ))
            })
        }
        other => Ok(other.to_text()),
    }
}

/// `container[key]`: object member by string key, array element by integer
/// index (negative counts from the end); `nil` when missing or when the
/// container is `nil`.
pub fn member(container: &Value, key: &Value) -> Result<Value, OpError> {
    match (container, key) {
        (Value::Nil, _) => Ok(Value::Nil),
        (Value::Object(map), Value::Str(k)) => Ok(map.get(k).cloned().unwrap_or(Value::Nil)),
        (Value::Object(_), other) => Err(OpError::from(expected("a string key", other))),
        (Value::Array(list), Value::Int(i)) => {
            let len = list.len() as i64;
            let index = if *i < 0 { len + i } else { *i };
            Ok(usize::try_from(index)
                .ok()
                .and_then(|i| list.items().get(i))
                .cloned()
                .unwrap_or(Value::Nil))
        }
        (Value::Array(_), other) => Err(OpError::from(expected("an integer index", other))),
        (other, _) => Err(OpError::from(expected("an object or array", other))),
    }
}

pub fn get_member(args: &[Value]) -> Result<Value, OpError> {
    member(&args[0], &args[1])
}

pub fn first(args: &[Value]) -> Result<Value, OpError> {
    match &args[0] {
        Value::Nil => Ok(Value::Nil),
        Value::Array(list) => Ok(list.items().first().cloned().unwrap_or(Value::Nil)),
        other => Err(OpError::from(expected("an array", other))),
    }
}

pub fn last(args: &[Value]) -> Result<Value, OpError> {
    match &args[0] {
        Value::Nil => Ok(Value::Nil),
        Value::Array(list) => Ok(list.items().last().cloned().unwrap_or(Value::Nil)),
        other => Err(OpError::from(expected("an array", other))),
    }
}

pub fn array(_: &[Value]) -> Result<Value, OpError> {
    Ok(Value::array(Vec::new()))
}

pub fn object(_: &[Value]) -> Result<Value, OpError> {
    Ok(Value::Object(Arc::new(Map::new())))
}

pub fn constant(args: &[Value]) -> Result<Value, OpError> {
    Ok(args[0].clone())
}

/// `a x append`: a new array with `x` at the end.
pub fn append(args: &[Value]) -> Result<Value, OpError> {
    let Value::Array(list) = &args[0] else {
        return Err(OpError::from(expected("an array", &args[0])));
    };
    if list.len() >= ARRAY_ITEMS_MAX {
        return Err(OpError::from(format!(
            "array would exceed the {ARRAY_ITEMS_MAX}-element limit"
        )));
    }
    if args[1].depth() >= VALUE_NESTING_LEVELS_MAX {
        return Err(OpError::from(format!(
            "value would nest deeper than {VALUE_NESTING_LEVELS_MAX} levels"
        )));
    }
    let mut list: List = (**list).clone();
    list.push(args[1].clone());
    Ok(Value::Array(Arc::new(list)))
}

/// `ob key value assoc`: a new object with `key` set to `value`.
pub fn assoc(args: &[Value]) -> Result<Value, OpError> {
    let Value::Object(map) = &args[0] else {
        return Err(OpError::from(expected("an object", &args[0])));
    };
    let key = to_text(&args[1])?;
    if map.len() >= ARRAY_ITEMS_MAX {
        return Err(OpError::from(format!(
            "object would exceed the {ARRAY_ITEMS_MAX}-entry limit"
        )));
    }
    if args[2].depth() >= VALUE_NESTING_LEVELS_MAX {
        return Err(OpError::from(format!(
            "value would nest deeper than {VALUE_NESTING_LEVELS_MAX} levels"
        )));
    }
    let mut map: Map = (**map).clone();
    map.insert(Arc::from(key), args[2].clone());
    Ok(Value::Object(Arc::new(map)))
}

pub fn to_json(args: &[Value]) -> Result<Value, OpError> {
    if let Value::Func(_) = args[0] {
        return Err(OpError::from(expected("a JSON-compatible value", &args[0])));
    }
    args[0]
        .to_json_bounded(STRING_BYTES_MAX)
        .map(|text| Value::Str(Arc::from(text)))
        .ok_or_else(|| {
            limit(format!(
                "JSON text exceeds the {STRING_BYTES_MAX}-byte string limit"
            ))
        })
}

pub fn parse_json(args: &[Value]) -> Result<Value, OpError> {
    let text = want_str(&args[0], "a JSON string")?;
    Value::parse_json(text, VALUE_NESTING_LEVELS_MAX)
        .map_err(|e| OpError::from(format!("invalid JSON: {e}")))
}

pub fn to_string(args: &[Value]) -> Result<Value, OpError> {
    match &args[0] {
        Value::Str(_) => Ok(args[0].clone()),
        other => to_text(other).map(|t| Value::Str(Arc::from(t))),
    }
}

/// Integer text: decimal with optional sign, surrounding whitespace allowed.
fn parse_int_text(text: &str) -> Option<i128> {
    let t = text.trim();
    let t = t.strip_suffix('n').unwrap_or(t);
    t.parse::<i128>().ok()
}

fn float_to_int(f: f64, max: f64) -> Result<i128, OpError> {
    let t = f.trunc();
    if t.abs() >= max {
        return Err(OpError::from(format!("{f} is out of range")));
    }
    Ok(t as i128)
}

/// `to-int`: floats are truncated toward zero; strings must hold an integer or
/// a float; `true`/`false` are 1/0; `nil` is an error.
pub fn to_int(args: &[Value]) -> Result<Value, OpError> {
    let n: i128 = match &args[0] {
        Value::Int(i) => return Ok(Value::Int(*i)),
        Value::BigInt(i) => *i,
        Value::Float(f) => float_to_int(*f, 1.7e38)?,
        Value::Bool(b) => i128::from(*b),
        Value::Str(s) => match parse_int_text(s) {
            Some(n) => n,
            None => match s.trim().parse::<f64>() {
                Ok(f) if f.is_finite() => float_to_int(f, 1.7e38)?,
                _ => {
                    return Err(OpError::from(format!(
                        "cannot read {} as an integer",
                        args[0].describe()
                    )))
                }
            },
        },
        other => return Err(OpError::from(expected("a number, string or bool", other))),
    };
    i64::try_from(n)
        .map(Value::Int)
        .map_err(|_| OpError::from(format!("{n} does not fit an int; use `to-bi`")))
}

pub fn to_bigint(args: &[Value]) -> Result<Value, OpError> {
    let n = match &args[0] {
        Value::Int(i) => i128::from(*i),
        Value::BigInt(i) => *i,
        Value::Float(f) => float_to_int(*f, 1.7e38)?,
        Value::Bool(b) => i128::from(*b),
        Value::Str(s) => parse_int_text(s).ok_or_else(|| {
            OpError::from(format!("cannot read {} as a bigint", args[0].describe()))
        })?,
        other => return Err(OpError::from(expected("a number, string or bool", other))),
    };
    Ok(Value::BigInt(n))
}

pub fn to_float(args: &[Value]) -> Result<Value, OpError> {
    let f = match &args[0] {
        Value::Int(i) => *i as f64,
        Value::BigInt(i) => *i as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Str(s) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .ok_or_else(|| {
                OpError::from(format!("cannot read {} as a float", args[0].describe()))
            })?,
        other => return Err(OpError::from(expected("a number, string or bool", other))),
    };
    Ok(Value::Float(f))
}
