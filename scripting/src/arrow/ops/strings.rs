//! String operators.
//!
//! `concat` and `concat-all` accept numbers and booleans as well as strings and
//! convert them with `to-s`: the corpus builds URLs like
//! `` `DB_PORT=` connection-port("db") concat `` where the port is an int, and
//! refusing them would break real kits. `nil` converts to the empty string.
//! Arrays, objects and functions are refused. Every operator checks the size of
//! its result before building it.

use std::sync::Arc;

use crate::arrow::value::{List, Value};
use crate::arrow::{ARRAY_ITEMS_MAX, STRING_BYTES_MAX};

use super::{expected, limit, want_str, OpError};

fn too_long(len: usize) -> String {
    format!("result of {len} bytes exceeds the {STRING_BYTES_MAX}-byte string limit")
}

/// Text of a scalar for concatenation.
fn piece(value: &Value) -> Result<std::borrow::Cow<'_, str>, OpError> {
    match value {
        Value::Str(s) => Ok(std::borrow::Cow::Borrowed(s)),
        Value::Array(_) | Value::Object(_) | Value::Func(_) => Err(OpError::from(expected(
            "a string, number, bool or nil",
            value,
        ))),
        other => Ok(std::borrow::Cow::Owned(other.to_text())),
    }
}

fn join_pieces(values: &[Value], sep: &str) -> Result<Value, OpError> {
    let pieces = values.iter().map(piece).collect::<Result<Vec<_>, _>>()?;
    let len =
        pieces.iter().map(|p| p.len()).sum::<usize>() + sep.len() * pieces.len().saturating_sub(1);
    if len > STRING_BYTES_MAX {
        return Err(limit(too_long(len)));
    }
    Ok(Value::Str(Arc::from(pieces.join(sep))))
}

/// `a b concat`: `a` then `b`; two arrays concatenate as arrays.
pub fn concat(args: &[Value]) -> Result<Value, OpError> {
    if let (Value::Array(a), Value::Array(b)) = (&args[0], &args[1]) {
        let len = a.len() + b.len();
        if len > ARRAY_ITEMS_MAX {
            return Err(OpError::from(format!(
                "{len} elements exceed the {ARRAY_ITEMS_MAX}-element limit"
            )));
        }
        let items = a.items().iter().chain(b.items()).cloned().collect();
        return Ok(Value::Array(Arc::new(List::new(items))));
    }
    join_pieces(args, "")
}

pub fn concat_all(args: &[Value]) -> Result<Value, OpError> {
    join_pieces(args, "")
}

pub fn trim(args: &[Value]) -> Result<Value, OpError> {
    Ok(Value::str(want_str(&args[0], "a string")?.trim()))
}

/// `s split(sep)`: the pieces of `s` between occurrences of `sep`; an empty
/// separator splits into characters.
pub fn split(args: &[Value]) -> Result<Value, OpError> {
    let text = want_str(&args[0], "a string")?;
    let sep = want_str(&args[1], "a string separator")?;
    let parts: Vec<Value> = if sep.is_empty() {
        text.chars()
            .map(|c| Value::str(c.encode_utf8(&mut [0; 4])))
            .take(ARRAY_ITEMS_MAX + 1)
            .collect()
    } else {
        text.split(sep)
            .map(Value::str)
            .take(ARRAY_ITEMS_MAX + 1)
            .collect()
    };
    if parts.len() > ARRAY_ITEMS_MAX {
        return Err(limit(format!("more than {ARRAY_ITEMS_MAX} pieces")));
    }
    Ok(Value::array(parts))
}

/// `a join(sep)`: the elements' text with `sep` between them.
pub fn join(args: &[Value]) -> Result<Value, OpError> {
    let Value::Array(list) = &args[0] else {
        return Err(OpError::from(expected("an array", &args[0])));
    };
    let sep = want_str(&args[1], "a string separator")?;
    join_pieces(list.items(), sep)
}

/// `s replace(old, new)`: every occurrence of `old` replaced by `new`.
pub fn replace(args: &[Value]) -> Result<Value, OpError> {
    let text = want_str(&args[0], "a string")?;
    let old = want_str(&args[1], "a string to replace")?;
    let new = want_str(&args[2], "a replacement string")?;
    if old.is_empty() {
        return Err(OpError::from("the string to replace is empty".to_string()));
    }
    let count = text.matches(old).count();
    let len = (text.len() - count * old.len()).saturating_add(count.saturating_mul(new.len()));
    if len > STRING_BYTES_MAX {
        return Err(limit(too_long(len)));
    }
    Ok(Value::Str(Arc::from(text.replace(old, new))))
}
