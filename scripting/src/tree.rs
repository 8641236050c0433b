//! The ordered, position-free value tree: the canonical form in which MonkScript
//! definitions are stored in the cluster state ("exactly as written": keys keep
//! their order and spelling, scalars keep their type).
//!
//! A float keeps a canonical decimal text instead of an `f64` so that the tree is
//! `Eq`/`Ord` and its serialized bytes are the same on every peer.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// One value of a definition tree.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tree {
    Null,
    Bool(bool),
    Int(i64),
    /// Canonical text of a finite float (always contains `.` or `e`, or is `inf`/`nan`).
    Float(String),
    Str(String),
    Seq(Vec<Tree>),
    /// Keys in the order they were written; duplicate keys are rejected by the parser.
    Map(Vec<(String, Tree)>),
}

impl Tree {
    /// A float value in canonical text form.
    pub fn float(value: f64) -> Tree {
        Tree::Float(canonical_float(value))
    }

    /// The value under `key` when this is a map.
    pub fn get(&self, key: &str) -> Option<&Tree> {
        match self {
            Tree::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string when this is a string scalar.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Tree::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A short name of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Tree::Null => "null",
            Tree::Bool(_) => "bool",
            Tree::Int(_) => "int",
            Tree::Float(_) => "float",
            Tree::Str(_) => "string",
            Tree::Seq(_) => "list",
            Tree::Map(_) => "map",
        }
    }

    /// Scalar rendered as a map key (YAML allows non-string keys; MonkScript treats them as text).
    fn into_key(self) -> String {
        match self {
            Tree::Null => "null".to_string(),
            Tree::Bool(b) => b.to_string(),
            Tree::Int(i) => i.to_string(),
            Tree::Float(f) | Tree::Str(f) => f,
            other => format!("{other:?}"),
        }
    }
}

/// Rust's shortest round-trip text, with `.0` added to integral values so the
/// text still reads as a float.
pub fn canonical_float(value: f64) -> String {
    if !value.is_finite() {
        return if value.is_nan() {
            "nan".into()
        } else if value > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    let text = value.to_string();
    if text.contains(['.', 'e', 'E']) {
        text
    } else {
        format!("{text}.0")
    }
}

impl Serialize for Tree {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Tree::Null => serializer.serialize_unit(),
            Tree::Bool(b) => serializer.serialize_bool(*b),
            Tree::Int(i) => serializer.serialize_i64(*i),
            Tree::Float(text) => match text.parse::<f64>() {
                Ok(v) if v.is_finite() => serializer.serialize_f64(v),
                _ => serializer.serialize_str(text),
            },
            Tree::Str(s) => serializer.serialize_str(s),
            Tree::Seq(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Tree::Map(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

struct TreeVisitor;

impl<'de> Visitor<'de> for TreeVisitor {
    type Value = Tree;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML/JSON value")
    }
    fn visit_unit<E>(self) -> Result<Tree, E> {
        Ok(Tree::Null)
    }
    fn visit_none<E>(self) -> Result<Tree, E> {
        Ok(Tree::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Tree, D::Error> {
        Tree::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Tree, E> {
        Ok(Tree::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Tree, E> {
        Ok(Tree::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Tree, E> {
        Ok(i64::try_from(v)
            .map(Tree::Int)
            .unwrap_or_else(|_| Tree::Str(v.to_string())))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Tree, E> {
        Ok(i64::try_from(v)
            .map(Tree::Int)
            .unwrap_or_else(|_| Tree::Str(v.to_string())))
    }
    fn visit_u128<E>(self, v: u128) -> Result<Tree, E> {
        Ok(i64::try_from(v)
            .map(Tree::Int)
            .unwrap_or_else(|_| Tree::Str(v.to_string())))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Tree, E> {
        Ok(Tree::float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Tree, E> {
        Ok(Tree::Str(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Tree, E> {
        Ok(Tree::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tree, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element::<Tree>()? {
            items.push(item);
        }
        Ok(Tree::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tree, A::Error> {
        let mut entries: Vec<(String, Tree)> = Vec::new();
        while let Some((key, value)) = map.next_entry::<Tree, Tree>()? {
            let key = key.into_key();
            if entries.iter().any(|(k, _)| *k == key) {
                return Err(de::Error::custom(format!("duplicate key `{key}`")));
            }
            entries.push((key, value));
        }
        Ok(Tree::Map(entries))
    }
}

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Tree, D::Error> {
        d.deserialize_any(TreeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_keeps_order_and_types() {
        let text = r#"{"z":1,"a":[true,null,"x",1.5,2.0],"m":{"b":1,"a":2}}"#;
        let tree: Tree = serde_json::from_str(text).unwrap();
        let Tree::Map(entries) = &tree else {
            panic!("not a map")
        };
        assert_eq!(entries[0].0, "z");
        assert_eq!(
            tree.get("a").unwrap(),
            &Tree::Seq(vec![
                Tree::Bool(true),
                Tree::Null,
                Tree::Str("x".into()),
                Tree::Float("1.5".into()),
                Tree::Float("2.0".into())
            ])
        );
        assert_eq!(serde_json::to_string(&tree).unwrap(), text);
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let err = serde_json::from_str::<Tree>(r#"{"a":1,"a":2}"#).unwrap_err();
        assert!(err.to_string().contains("duplicate key `a`"), "{err}");
    }
}
