//! ArrowScript values: the JSON-like data a script pushes on its stack, plus
//! big integers and code blocks.
//!
//! Containers are reference counted (`Arc`) so pushing a variable or `dup` is
//! cheap, and they cache their nesting depth so that building a value never has
//! to walk it: the depth limit is what keeps printing, comparing and dropping a
//! value free of deep recursion.
//!
//! Text forms: [`Value::to_text`] is what `to-s` and string interpolation produce,
//! [`Value::to_literal`] is ArrowScript source that parses back to an equal value,
//! and [`Value::to_json`] / [`Value::parse_json`] convert to and from JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use crate::tree::Tree;

use super::parser::Block;

/// One ArrowScript value.
#[derive(Clone, Debug)]
pub enum Value {
    Nil,
    Bool(bool),
    Int(i64),
    /// `123n`. Backed by `i128`: the corpus never needs more than 64 bits, and 128
    /// bits covers the documented use (large counters, wei amounts) without a
    /// bignum dependency. Overflow is a clean error, never a wrap.
    BigInt(i128),
    /// Always finite: operators that would produce NaN or infinity fail instead.
    Float(f64),
    Str(Arc<str>),
    Array(Arc<List>),
    Object(Arc<Map>),
    Func(Arc<Func>),
}

/// Elements of an array value, with the cached nesting depth.
#[derive(Clone, Debug, Default)]
pub struct List {
    items: Vec<Value>,
    depth: usize,
}

/// Entries of an object value in insertion order, with the cached nesting depth.
/// Keys are unique; `insert` replaces in place.
#[derive(Clone, Debug)]
pub struct Map {
    entries: Vec<(Arc<str>, Value)>,
    /// Key positions, built once the map is large enough that scanning the
    /// entries would make building or reading it quadratic (a 1 MiB JSON
    /// document can hold 100k keys). A BTreeMap: deterministic, no hash seed.
    index: Option<BTreeMap<Arc<str>, usize>>,
    depth: usize,
}

/// Entries above which a [`Map`] keeps an index.
const MAP_INDEX_THRESHOLD: usize = 16;

/// A code block `<-{ ... }` with the source text it was written as.
#[derive(Debug)]
pub struct Func {
    pub body: Block,
    pub source: Arc<str>,
}

impl List {
    pub fn new(items: Vec<Value>) -> List {
        let depth = items.iter().map(Value::depth).max().map_or(1, |d| d + 1);
        List { items, depth }
    }
    pub fn items(&self) -> &[Value] {
        &self.items
    }
    pub fn into_items(self) -> Vec<Value> {
        self.items
    }
    pub fn push(&mut self, value: Value) {
        self.depth = self.depth.max(value.depth() + 1);
        self.items.push(value);
    }
    pub fn len(&self) -> usize {
        self.items.len()
    }
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

impl Default for Map {
    fn default() -> Map {
        Map::new()
    }
}

impl Map {
    pub fn new() -> Map {
        Map {
            entries: Vec::new(),
            index: None,
            depth: 1,
        }
    }

    fn position(&self, key: &str) -> Option<usize> {
        match &self.index {
            Some(index) => index.get(key).copied(),
            None => self.entries.iter().position(|(k, _)| &**k == key),
        }
    }
    pub fn entries(&self) -> &[(Arc<str>, Value)] {
        &self.entries
    }
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.position(key).map(|i| &self.entries[i].1)
    }
    pub fn insert(&mut self, key: Arc<str>, value: Value) {
        self.depth = self.depth.max(value.depth() + 1);
        if let Some(i) = self.position(&key) {
            self.entries[i].1 = value;
            return;
        }
        if let Some(index) = &mut self.index {
            index.insert(key.clone(), self.entries.len());
        }
        self.entries.push((key, value));
        if self.index.is_none() && self.entries.len() > MAP_INDEX_THRESHOLD {
            let index = self
                .entries
                .iter()
                .enumerate()
                .map(|(i, (k, _))| (k.clone(), i))
                .collect();
            self.index = Some(index);
        }
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Value {
    pub fn str(text: &str) -> Value {
        Value::Str(Arc::from(text))
    }
    pub fn array(items: Vec<Value>) -> Value {
        Value::Array(Arc::new(List::new(items)))
    }
    pub fn object(entries: Vec<(Arc<str>, Value)>) -> Value {
        let mut map = Map::new();
        for (k, v) in entries {
            map.insert(k, v);
        }
        Value::Object(Arc::new(map))
    }

    /// Name of the type as the reference page spells it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::BigInt(_) => "bigint",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
            Value::Func(_) => "function",
        }
    }

    /// Nesting depth: 0 for scalars, 1 for a flat container.
    pub fn depth(&self) -> usize {
        match self {
            Value::Array(list) => list.depth,
            Value::Object(map) => map.depth,
            _ => 0,
        }
    }

    /// Falsy values are `nil`, `false`, `""`, `0`, `0.0` and `0n`; everything else
    /// (including empty arrays and objects) is truthy. Used by the ternary, `then`,
    /// `or`, `filter` and readiness checks.
    pub fn is_truthy(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::BigInt(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::Array(_) | Value::Object(_) | Value::Func(_) => true,
        }
    }

    /// A short description for error messages: type and a clipped literal.
    pub fn describe(&self) -> String {
        let text = self.to_literal_clipped(40);
        match self {
            Value::Nil => "nil".to_string(),
            _ => format!("{} {}", self.type_name(), text),
        }
    }

    /// The text form used by `to-s`, `concat` and `${...}` interpolation: strings
    /// as they are, `nil` as the empty string (an unset optional variable renders
    /// as nothing), numbers in their literal form without the `n` of bigints,
    /// arrays and objects as JSON.
    pub fn to_text(&self) -> String {
        match self {
            Value::Nil => String::new(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::BigInt(i) => i.to_string(),
            Value::Float(f) => float_literal(*f),
            Value::Str(s) => s.to_string(),
            Value::Array(_) | Value::Object(_) => self
                .to_json_bounded(crate::arrow::STRING_BYTES_MAX)
                .unwrap_or_else(|| "[too long]".to_string()),
            Value::Func(f) => f.source.to_string(),
        }
    }

    /// ArrowScript source that evaluates to this value.
    pub fn to_literal(&self) -> String {
        let mut out = String::new();
        self.write_literal(&mut out, usize::MAX);
        out
    }

    /// Like [`Value::to_literal`], cut short (ending in `...`) past `limit` bytes.
    pub fn to_literal_clipped(&self, limit: usize) -> String {
        let mut out = String::new();
        if !self.write_literal(&mut out, limit) || out.len() > limit {
            let mut cut = limit.min(out.len());
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
            out.push_str("...");
        }
        out
    }

    /// Appends the text of this value in `syntax`; false once `out` is longer than
    /// `limit`. One walker for both the ArrowScript literal form and JSON.
    fn write_in(&self, syntax: &Syntax, out: &mut String, limit: usize) -> bool {
        match self {
            Value::Nil => out.push_str(syntax.nil),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::BigInt(i) => {
                let _ = write!(out, "{i}{}", syntax.bigint_suffix);
            }
            Value::Float(f) => out.push_str(&float_literal(*f)),
            Value::Str(s) => (syntax.string)(s, out),
            Value::Array(list) => {
                out.push('[');
                for (i, item) in list.items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(syntax.item_separator);
                    }
                    if !item.write_in(syntax, out, limit) {
                        return false;
                    }
                }
                out.push(']');
            }
            Value::Object(map) => {
                out.push('{');
                for (i, (k, v)) in map.entries.iter().enumerate() {
                    if i > 0 {
                        out.push_str(syntax.item_separator);
                    }
                    (syntax.string)(k, out);
                    out.push_str(syntax.key_separator);
                    if !v.write_in(syntax, out, limit) {
                        return false;
                    }
                }
                out.push('}');
            }
            Value::Func(f) if syntax.quote_functions => (syntax.string)(&f.source, out),
            Value::Func(f) => out.push_str(&f.source),
        }
        out.len() <= limit
    }

    fn write_literal(&self, out: &mut String, limit: usize) -> bool {
        self.write_in(&LITERAL_SYNTAX, out, limit)
    }

    /// Compact JSON text, keys in insertion order. Bigints are written as JSON
    /// numbers (JSON numbers have no size limit); a function becomes its source
    /// text as a string.
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        self.write_json(&mut out, usize::MAX);
        out
    }

    /// Like [`Value::to_json`], but gives up (returns `None`) as soon as the text
    /// grows past `limit` bytes.
    pub fn to_json_bounded(&self, limit: usize) -> Option<String> {
        let mut out = String::new();
        self.write_json(&mut out, limit).then_some(out)
    }

    fn write_json(&self, out: &mut String, limit: usize) -> bool {
        self.write_in(&JSON_SYNTAX, out, limit)
    }

    /// Parses JSON text, keeping the order of object keys. Integers that do not
    /// fit `i64` become bigints (up to 128 bits), other numbers floats. Fails on
    /// invalid JSON and on values nesting deeper than `max_depth`.
    pub fn parse_json(text: &str, max_depth: usize) -> Result<Value, String> {
        let value: Value = serde_json::from_str::<JsonValue>(text)
            .map_err(|e| e.to_string())?
            .0;
        if value.depth() > max_depth {
            return Err(format!("value nests deeper than {max_depth} levels"));
        }
        Ok(value)
    }

    /// Converts a definition tree value (variables from YAML).
    pub fn from_tree(tree: &Tree, max_depth: usize) -> Result<Value, String> {
        if max_depth == 0 {
            return Err("value nests too deeply".to_string());
        }
        Ok(match tree {
            Tree::Null => Value::Nil,
            Tree::Bool(b) => Value::Bool(*b),
            Tree::Int(i) => Value::Int(*i),
            Tree::Float(text) => match text.parse::<f64>() {
                Ok(f) if f.is_finite() => Value::Float(f),
                _ => Value::str(text),
            },
            Tree::Str(s) => Value::str(s),
            Tree::Seq(items) => Value::array(
                items
                    .iter()
                    .map(|v| Value::from_tree(v, max_depth - 1))
                    .collect::<Result<_, _>>()?,
            ),
            Tree::Map(entries) => {
                let mut map = Map::new();
                for (k, v) in entries {
                    map.insert(Arc::from(k.as_str()), Value::from_tree(v, max_depth - 1)?);
                }
                Value::Object(Arc::new(map))
            }
        })
    }

    /// Structural equality as `eq?` sees it: numbers compare by value across int,
    /// bigint and float; objects compare by keys regardless of order; functions
    /// are equal only to themselves. Unbounded in time for large shared
    /// structures; the evaluator uses [`Value::equals_within`].
    pub fn equals(&self, other: &Value) -> bool {
        use Value::*;
        match (self, other) {
            (Nil, Nil) => true,
            (Bool(a), Bool(b)) => a == b,
            (Str(a), Str(b)) => a == b,
            (Int(_) | BigInt(_) | Float(_), Int(_) | BigInt(_) | Float(_)) => {
                numeric_cmp(self, other) == Some(std::cmp::Ordering::Equal)
            }
            (Array(a), Array(b)) => {
                a.items.len() == b.items.len()
                    && a.items.iter().zip(&b.items).all(|(x, y)| x.equals(y))
            }
            (Object(a), Object(b)) => {
                a.entries.len() == b.entries.len()
                    && a.entries
                        .iter()
                        .all(|(k, v)| b.get(k).is_some_and(|w| v.equals(w)))
            }
            (Func(a), Func(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Value {
    /// [`Value::equals`] that visits at most `budget` values (decremented as it
    /// goes); `None` when the budget runs out. Shared containers compare equal
    /// without a walk, so comparing a value with itself is cheap, but two
    /// separately built copies of a large shared structure are walked in full:
    /// the evaluator charges fuel for the visits.
    pub fn equals_within(&self, other: &Value, budget: &mut u64) -> Option<bool> {
        use Value::*;
        *budget = budget.checked_sub(1)?;
        Some(match (self, other) {
            (Array(a), Array(b)) => {
                if Arc::ptr_eq(a, b) {
                    return Some(true);
                }
                if a.items.len() != b.items.len() {
                    return Some(false);
                }
                for (x, y) in a.items.iter().zip(&b.items) {
                    if !x.equals_within(y, budget)? {
                        return Some(false);
                    }
                }
                true
            }
            (Object(a), Object(b)) => {
                if Arc::ptr_eq(a, b) {
                    return Some(true);
                }
                if a.entries.len() != b.entries.len() {
                    return Some(false);
                }
                for (k, v) in &a.entries {
                    match b.get(k) {
                        Some(w) if v.equals_within(w, budget)? => {}
                        _ => return Some(false),
                    }
                }
                true
            }
            (Str(a), Str(b)) => {
                *budget = budget.checked_sub((a.len() / 64) as u64)?;
                a == b
            }
            _ => self.equals(other),
        })
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        self.equals(other)
    }
}

/// Orders two numbers of any numeric type; `None` when either is not a number.
pub fn numeric_cmp(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    use Value::*;
    match (a, b) {
        (Int(x), Int(y)) => Some(x.cmp(y)),
        (Int(x), BigInt(y)) => Some(i128::from(*x).cmp(y)),
        (BigInt(x), Int(y)) => Some(x.cmp(&i128::from(*y))),
        (BigInt(x), BigInt(y)) => Some(x.cmp(y)),
        (Float(x), Float(y)) => x.partial_cmp(y),
        (Float(x), Int(y)) => x.partial_cmp(&(*y as f64)),
        (Int(x), Float(y)) => (*x as f64).partial_cmp(y),
        (Float(x), BigInt(y)) => x.partial_cmp(&(*y as f64)),
        (BigInt(x), Float(y)) => (*x as f64).partial_cmp(y),
        _ => None,
    }
}

/// A float literal that reads back as a float: always has `.` or an exponent.
pub fn float_literal(value: f64) -> String {
    let text = format!("{value:?}");
    if text.contains(['.', 'e', 'E']) {
        text
    } else {
        format!("{text}.0")
    }
}

/// Writes `text` as a JSON string.
pub fn write_json_string(text: &str, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Deserializes any JSON/YAML value straight into a [`Value`], keeping key order.
struct JsonValue(Value);

impl<'de> serde::Deserialize<'de> for JsonValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<JsonValue, D::Error> {
        d.deserialize_any(JsonVisitor).map(JsonValue)
    }
}

struct JsonVisitor;

impl<'de> serde::de::Visitor<'de> for JsonVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Nil)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::BigInt(i128::from(v)), Value::Int))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        if v.is_finite() {
            Ok(Value::Float(v))
        } else {
            Err(E::custom("number out of range"))
        }
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::str(v))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(JsonValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some((key, JsonValue(value))) = access.next_entry::<String, JsonValue>()? {
            map.insert(Arc::from(key), value);
        }
        Ok(Value::Object(Arc::new(map)))
    }
}

/// Writes `text` as a double-quoted ArrowScript string literal.
pub fn write_quoted(text: &str, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// How [`Value::write_in`] spells the parts that differ between the ArrowScript
/// literal form and JSON.
struct Syntax {
    nil: &'static str,
    bigint_suffix: &'static str,
    item_separator: &'static str,
    key_separator: &'static str,
    string: fn(&str, &mut String),
    /// JSON has no functions: their source text becomes a string.
    quote_functions: bool,
}

const LITERAL_SYNTAX: Syntax = Syntax {
    nil: "nil",
    bigint_suffix: "n",
    item_separator: ", ",
    key_separator: ": ",
    string: write_quoted,
    quote_functions: false,
};
const JSON_SYNTAX: Syntax = Syntax {
    nil: "null",
    bigint_suffix: "",
    item_separator: ",",
    key_separator: ":",
    string: write_json_string,
    quote_functions: true,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_is_cached_through_construction() {
        let inner = Value::array(vec![Value::Int(1)]);
        let outer = Value::array(vec![inner.clone(), Value::Nil]);
        assert_eq!((inner.depth(), outer.depth()), (1, 2));
        let mut map = Map::new();
        map.insert(Arc::from("a"), outer);
        assert_eq!(Value::Object(Arc::new(map)).depth(), 3);
    }

    #[test]
    fn numbers_compare_across_types() {
        assert!(Value::Int(2).equals(&Value::Float(2.0)));
        assert!(Value::BigInt(7).equals(&Value::Int(7)));
        assert!(!Value::Int(2).equals(&Value::str("2")));
    }

    #[test]
    fn text_forms() {
        assert_eq!(Value::Nil.to_text(), "");
        assert_eq!(Value::Float(2.0).to_text(), "2.0");
        assert_eq!(Value::BigInt(5).to_literal(), "5n");
        assert_eq!(Value::str("a\"b\n").to_literal(), "\"a\\\"b\\n\"");
        let obj = Value::object(vec![(Arc::from("k"), Value::array(vec![Value::Int(1)]))]);
        assert_eq!(obj.to_text(), r#"{"k":[1]}"#);
        let parsed = Value::parse_json(
            r#"{"z":1,"a":[true,null,"x\n",1.5,18446744073709551615]}"#,
            8,
        )
        .unwrap();
        assert_eq!(
            parsed.to_json(),
            r#"{"z":1,"a":[true,null,"x\n",1.5,18446744073709551615]}"#
        );
    }
}
