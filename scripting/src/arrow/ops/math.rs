//! Arithmetic and comparison.
//!
//! Promotion: int with int stays int; with a bigint the result is a bigint; with
//! a float it is a float. Integer overflow is an error (the message suggests
//! bigints), never a wrap. `div` of two integers gives an integer when the
//! division is exact and a float otherwise (`1 2 div` is `0.5`, `6 2 div` is `3`),
//! so a computed replica count stays an integer. Non-finite floats are errors.

use std::cmp::Ordering;

use crate::arrow::value::{numeric_cmp, Value};

use super::{expected, OpError};

#[derive(Clone, Copy)]
enum Arith {
    Add,
    Sub,
    Mult,
    Div,
}

fn is_number(v: &Value) -> bool {
    matches!(v, Value::Int(_) | Value::BigInt(_) | Value::Float(_))
}

fn as_f64(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::BigInt(i) => *i as f64,
        Value::Float(f) => *f,
        _ => 0.0,
    }
}

fn as_i128(v: &Value) -> i128 {
    match v {
        Value::Int(i) => i128::from(*i),
        Value::BigInt(i) => *i,
        _ => 0,
    }
}

fn float(value: f64) -> Result<Value, OpError> {
    if value.is_finite() {
        Ok(Value::Float(value))
    } else {
        Err(OpError::from("float result is out of range".to_string()))
    }
}

fn arith(args: &[Value], op: Arith) -> Result<Value, OpError> {
    let (a, b) = (&args[0], &args[1]);
    for v in [a, b] {
        if !is_number(v) {
            return Err(OpError::from(expected("a number", v)));
        }
    }
    if matches!(a, Value::Float(_)) || matches!(b, Value::Float(_)) {
        let (x, y) = (as_f64(a), as_f64(b));
        return match op {
            Arith::Add => float(x + y),
            Arith::Sub => float(x - y),
            Arith::Mult => float(x * y),
            Arith::Div if y == 0.0 => Err(OpError::from("division by zero".to_string())),
            Arith::Div => float(x / y),
        };
    }
    if let (Value::Int(x), Value::Int(y)) = (a, b) {
        let (x, y) = (*x, *y);
        let result = match op {
            Arith::Add => x.checked_add(y),
            Arith::Sub => x.checked_sub(y),
            Arith::Mult => x.checked_mul(y),
            Arith::Div if y == 0 => return Err(OpError::from("division by zero".to_string())),
            Arith::Div if x.checked_rem(y) == Some(0) => x.checked_div(y),
            Arith::Div => return float(x as f64 / y as f64),
        };
        return result.map(Value::Int).ok_or_else(|| {
            OpError::from("integer overflow; use bigints (`123n`) for larger numbers")
        });
    }
    let (x, y) = (as_i128(a), as_i128(b));
    let result = match op {
        Arith::Add => x.checked_add(y),
        Arith::Sub => x.checked_sub(y),
        Arith::Mult => x.checked_mul(y),
        Arith::Div if y == 0 => return Err(OpError::from("division by zero".to_string())),
        Arith::Div if x.checked_rem(y) == Some(0) => x.checked_div(y),
        Arith::Div => return float(x as f64 / y as f64),
    };
    result
        .map(Value::BigInt)
        .ok_or_else(|| OpError::from("bigint overflow: the result does not fit 128 bits"))
}

pub fn add(args: &[Value]) -> Result<Value, OpError> {
    arith(args, Arith::Add)
}
pub fn sub(args: &[Value]) -> Result<Value, OpError> {
    arith(args, Arith::Sub)
}
pub fn mult(args: &[Value]) -> Result<Value, OpError> {
    arith(args, Arith::Mult)
}
pub fn div(args: &[Value]) -> Result<Value, OpError> {
    arith(args, Arith::Div)
}

/// Orders numbers with numbers and strings with strings; anything else is a
/// type error.
fn order(args: &[Value]) -> Result<Ordering, OpError> {
    let (a, b) = (&args[0], &args[1]);
    if let (Value::Str(x), Value::Str(y)) = (a, b) {
        return Ok(x.cmp(y));
    }
    if !is_number(a) {
        return Err(OpError::from(expected("a number or string", a)));
    }
    if !is_number(b) {
        return Err(OpError::from(expected("a number", b)));
    }
    numeric_cmp(a, b).ok_or_else(|| OpError::from("cannot compare these numbers"))
}

pub fn gt(args: &[Value]) -> Result<Value, OpError> {
    order(args).map(|o| Value::Bool(o == Ordering::Greater))
}
pub fn lt(args: &[Value]) -> Result<Value, OpError> {
    order(args).map(|o| Value::Bool(o == Ordering::Less))
}
pub fn ge(args: &[Value]) -> Result<Value, OpError> {
    order(args).map(|o| Value::Bool(o != Ordering::Less))
}
pub fn le(args: &[Value]) -> Result<Value, OpError> {
    order(args).map(|o| Value::Bool(o != Ordering::Greater))
}

/// `x to-hex(prefix?)`: upper-case hex digits, `0x` after the sign when
/// `prefix` is true.
pub fn to_hex(args: &[Value]) -> Result<Value, OpError> {
    let n = match &args[0] {
        Value::Int(i) => i128::from(*i),
        Value::BigInt(i) => *i,
        other => return Err(OpError::from(expected("an integer", other))),
    };
    let prefix = match args.get(1) {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(OpError::from(expected("a bool prefix flag", other))),
    };
    let sign = if n < 0 { "-" } else { "" };
    let digits = format!("{:X}", n.unsigned_abs());
    Ok(Value::str(&format!(
        "{sign}{}{digits}",
        if prefix { "0x" } else { "" }
    )))
}
