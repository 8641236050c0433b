//! YAML with positions: turns source text into [`Node`] trees where every value and
//! every map key carries its line and column.
//!
//! Built on the `granit-parser` event stream (the YAML 1.2 parser under
//! `serde-saphyr`), so key order is kept, duplicate keys are caught with the position of
//! the second one, anchors and aliases are expanded under a node budget, and nesting is
//! bounded. Plain scalars are typed with the YAML 1.2 core schema, except that integers
//! written with a leading zero (`0644`) stay text so a file mode keeps the digits the
//! user wrote. This module knows nothing about MonkScript.

use std::collections::HashMap;

use granit_parser::{Event, Options, Parser, ScalarStyle, Span};

use crate::tree::{canonical_float, Tree};

use super::diagnostic::Pos;

/// Largest file accepted. The largest real kit seen is 2.7 MB (a generated template);
/// anything far beyond that is almost certainly not a template and would only cost memory.
pub const FILE_BYTES_MAX: usize = 16 * 1024 * 1024;

/// Deepest nesting of collections. Real kits nest about 8 deep; 64 leaves room for
/// JSON-Schema blocks while keeping recursive walks far from the stack limit.
pub const NESTING_DEPTH_MAX: usize = 64;

/// Most nodes one file may expand to, counting alias expansions, so that a few
/// anchors referencing each other ("billion laughs") cannot exhaust memory.
pub const NODES_MAX: usize = 4_000_000;

/// Stand-in key for a collection used as a map key (already reported); never a real key.
const COMPLEX_KEY: &str = "\u{0}complex-key";

/// How a scalar was written; quoted and block scalars are never typed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Plain,
    Quoted,
    Block,
}

/// One YAML value with its position.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub value: Value,
}

/// The value of a [`Node`].
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    /// Canonical text of the float (see [`crate::tree::canonical_float`]).
    Float(String),
    Str(String, Style),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

/// One map entry: the key text, where the key is, and the value.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_pos: Pos,
    pub value: Node,
}

/// A problem found while reading YAML.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SyntaxError {
    pub pos: Pos,
    pub code: &'static str,
    pub message: String,
}

/// Documents of a file plus problems that did not stop reading (duplicate keys).
#[derive(Debug, Default)]
pub struct Parsed {
    pub documents: Vec<Node>,
    pub problems: Vec<SyntaxError>,
}

impl Node {
    pub fn new(pos: Pos, value: Value) -> Node {
        Node { pos, value }
    }

    /// The entries when this is a map.
    pub fn as_map(&self) -> Option<&[Entry]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The entry under `key` when this is a map.
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.as_map()?.iter().find(|e| e.key == key)
    }

    /// The value under `key` when this is a map.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|e| &e.value)
    }

    /// The text when this is a string scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s, _) => Some(s),
            _ => None,
        }
    }

    /// Any scalar rendered as text (`None` for null and collections).
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Bool(b) => Some(b.to_string()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) | Value::Str(f, _) => Some(f.clone()),
            _ => None,
        }
    }

    /// A short name of the value's type, for messages.
    pub fn type_name(&self) -> &'static str {
        match &self.value {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(..) => "string",
            Value::Seq(_) => "list",
            Value::Map(_) => "map",
        }
    }

    /// The position-free tree, exactly as written.
    pub fn to_tree(&self) -> Tree {
        match &self.value {
            Value::Null => Tree::Null,
            Value::Bool(b) => Tree::Bool(*b),
            Value::Int(i) => Tree::Int(*i),
            Value::Float(f) => Tree::Float(f.clone()),
            Value::Str(s, _) => Tree::Str(s.clone()),
            Value::Seq(items) => Tree::Seq(items.iter().map(Node::to_tree).collect()),
            Value::Map(entries) => Tree::Map(
                entries
                    .iter()
                    .map(|e| (e.key.clone(), e.value.to_tree()))
                    .collect(),
            ),
        }
    }

    /// Levels of collections in this subtree (a scalar is 0). Every node built is within
    /// [`NESTING_DEPTH_MAX`], so this recursion is bounded.
    fn depth(&self) -> usize {
        match &self.value {
            Value::Seq(items) => 1 + items.iter().map(Node::depth).max().unwrap_or(0),
            Value::Map(entries) => 1 + entries.iter().map(|e| e.value.depth()).max().unwrap_or(0),
            _ => 0,
        }
    }

    /// Number of nodes in this subtree, used for the alias budget.
    fn size(&self) -> usize {
        match &self.value {
            Value::Seq(items) => 1 + items.iter().map(Node::size).sum::<usize>(),
            Value::Map(entries) => 1 + entries.iter().map(|e| 1 + e.value.size()).sum::<usize>(),
            _ => 1,
        }
    }
}

fn pos_of(span: &Span) -> Pos {
    Pos::new(span.start.line(), span.start.col() + 1)
}

enum Frame {
    Seq {
        pos: Pos,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        pos: Pos,
        anchor: usize,
        entries: Vec<Entry>,
        key: Option<(String, Pos)>,
        /// Index of each key in `entries`, so duplicate detection stays linear.
        seen: HashMap<String, usize>,
    },
}

struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    documents: Vec<Node>,
    problems: Vec<SyntaxError>,
    nodes: usize,
}

impl Builder {
    fn count(&mut self, n: usize, pos: Pos) -> Result<(), SyntaxError> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > NODES_MAX {
            return Err(SyntaxError {
                pos,
                code: "too-large",
                message: format!(
                    "the document expands to more than {NODES_MAX} values (aliases included)"
                ),
            });
        }
        Ok(())
    }

    fn push_frame(&mut self, frame: Frame, pos: Pos) -> Result<(), SyntaxError> {
        if self.stack.len() >= NESTING_DEPTH_MAX {
            return Err(SyntaxError {
                pos,
                code: "too-deep",
                message: format!("values are nested more than {NESTING_DEPTH_MAX} levels deep"),
            });
        }
        self.stack.push(frame);
        Ok(())
    }

    fn finish(&mut self, node: Node, anchor: usize) {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.documents.push(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries, key, seen, ..
            }) => match key.take() {
                None => {
                    let text = match node.scalar_text() {
                        Some(text) => text,
                        None if node.value == Value::Null => "null".to_string(),
                        None => {
                            self.problems.push(SyntaxError {
                                pos: node.pos,
                                code: "complex-key",
                                message: format!(
                                    "a {} cannot be used as a map key",
                                    node.type_name()
                                ),
                            });
                            // Reported above; the entry is dropped when its value arrives.
                            COMPLEX_KEY.to_string()
                        }
                    };
                    *key = Some((text, node.pos));
                }
                Some((text, _)) if text == COMPLEX_KEY => {}
                Some((text, key_pos)) => {
                    if let Some(first) = seen.get(&text).and_then(|&i| entries.get(i)) {
                        self.problems.push(SyntaxError {
                            pos: key_pos,
                            code: "duplicate-key",
                            message: format!(
                                "duplicate key `{text}` (first written at line {}, column {}); the first one is kept",
                                first.key_pos.line, first.key_pos.col
                            ),
                        });
                    } else {
                        seen.insert(text.clone(), entries.len());
                        entries.push(Entry {
                            key: text,
                            key_pos,
                            value: node,
                        });
                    }
                }
            },
        }
    }
}

/// Parser options with our nesting limit.
fn options() -> Options {
    let mut options = Options::default();
    options.flow_nesting_limit = NESTING_DEPTH_MAX;
    options.block_nesting_limit = NESTING_DEPTH_MAX;
    options
}

/// Reads every document of a YAML text. A syntax error stops reading and is returned
/// as `Err` with its position; duplicate keys are collected in [`Parsed::problems`].
pub fn parse(text: &str) -> Result<Parsed, SyntaxError> {
    if text.len() > FILE_BYTES_MAX {
        return Err(SyntaxError {
            pos: Pos::new(1, 1),
            code: "too-large",
            message: format!(
                "file is {} bytes, more than the limit of {FILE_BYTES_MAX}",
                text.len()
            ),
        });
    }
    let mut builder = Builder {
        stack: Vec::new(),
        anchors: HashMap::new(),
        documents: Vec::new(),
        problems: Vec::new(),
        nodes: 0,
    };
    for next in Parser::new_from_str_with_options(text, options()) {
        let (event, span) = next.map_err(|e| SyntaxError {
            pos: Pos::new(e.marker().line(), e.marker().col() + 1),
            code: "yaml-syntax",
            message: format!("invalid YAML: {}", e.info()),
        })?;
        let pos = pos_of(&span);
        match event {
            Event::Scalar(value, style, anchor, tag) => {
                builder.count(1, pos)?;
                let tag_suffix = tag
                    .as_ref()
                    .filter(|t| t.is_yaml_core_schema())
                    .map(|t| t.suffix().to_string());
                let value = scalar_value(&value, style, tag_suffix.as_deref());
                builder.finish(Node::new(pos, value), anchor);
            }
            Event::SequenceStart(_, anchor, _) => {
                builder.count(1, pos)?;
                builder.push_frame(
                    Frame::Seq {
                        pos,
                        anchor,
                        items: Vec::new(),
                    },
                    pos,
                )?;
            }
            Event::MappingStart(_, anchor, _) => {
                builder.count(1, pos)?;
                builder.push_frame(
                    Frame::Map {
                        pos,
                        anchor,
                        entries: Vec::new(),
                        key: None,
                        seen: HashMap::new(),
                    },
                    pos,
                )?;
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq { pos, anchor, items }) = builder.stack.pop() {
                    builder.finish(Node::new(pos, Value::Seq(items)), anchor);
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map {
                    pos,
                    anchor,
                    entries,
                    ..
                }) = builder.stack.pop()
                {
                    builder.finish(Node::new(pos, Value::Map(entries)), anchor);
                }
            }
            Event::Alias(id) => {
                let Some(target) = builder.anchors.get(&id).cloned() else {
                    return Err(SyntaxError {
                        pos,
                        code: "yaml-syntax",
                        message: "alias to an unknown anchor".into(),
                    });
                };
                builder.count(target.size(), pos)?;
                // An alias pastes a whole subtree: it must not take nesting past the limit.
                if builder.stack.len() + target.depth() > NESTING_DEPTH_MAX {
                    return Err(SyntaxError {
                        pos,
                        code: "too-deep",
                        message: format!("values are nested more than {NESTING_DEPTH_MAX} levels deep (through aliases)"),
                    });
                }
                builder.finish(
                    Node {
                        pos,
                        value: target.value,
                    },
                    0,
                );
            }
            _ => {}
        }
    }
    Ok(Parsed {
        documents: builder.documents,
        problems: builder.problems,
    })
}

fn scalar_value(text: &str, style: ScalarStyle, tag: Option<&str>) -> Value {
    match (style, tag) {
        (_, Some("str")) => Value::Str(text.to_string(), Style::Quoted),
        (ScalarStyle::Plain, _) | (_, Some("int" | "float" | "bool" | "null")) => plain_value(text),
        (ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted, _) => {
            Value::Str(text.to_string(), Style::Quoted)
        }
        _ => Value::Str(text.to_string(), Style::Block),
    }
}

/// Types a plain scalar with the YAML 1.2 core schema.
pub fn plain_value(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(canonical_float(f64::INFINITY))
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(canonical_float(f64::NEG_INFINITY)),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(canonical_float(f64::NAN)),
        _ => {}
    }
    if let Some(int) = parse_int(text) {
        return Value::Int(int);
    }
    if is_core_float(text) {
        if let Ok(f) = text.parse::<f64>() {
            return Value::Float(canonical_float(f));
        }
    }
    Value::Str(text.to_string(), Style::Plain)
}

fn parse_int(text: &str) -> Option<i64> {
    if let Some(hex) = text.strip_prefix("0x") {
        return i64::from_str_radix(hex, 16)
            .ok()
            .filter(|_| !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()));
    }
    if let Some(oct) = text.strip_prefix("0o") {
        return i64::from_str_radix(oct, 8)
            .ok()
            .filter(|_| !oct.is_empty() && oct.bytes().all(|b| (b'0'..=b'7').contains(&b)));
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if digits.len() > 1 && digits.starts_with('0') {
        return None;
    }
    text.parse::<i64>().ok()
}

fn is_core_float(text: &str) -> bool {
    let body = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (whole, fraction) = match mantissa.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (mantissa, None),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = digits(whole)
        && fraction.is_none_or(digits)
        && !(whole.is_empty() && fraction.unwrap_or("").is_empty());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok && (fraction.is_some() || exponent.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_carry_positions() {
        let parsed =
            parse("namespace: x\napp:\n  defines: runnable\n  ports: [80, \"81\"]\n").unwrap();
        let root = &parsed.documents[0];
        let app = root.entry("app").unwrap();
        assert_eq!(app.key_pos, Pos::new(2, 1));
        let defines = app.value.entry("defines").unwrap();
        assert_eq!(
            (defines.key_pos, defines.value.pos),
            (Pos::new(3, 3), Pos::new(3, 12))
        );
        let ports = app.value.get("ports").unwrap().to_tree();
        assert_eq!(
            ports,
            Tree::Seq(vec![Tree::Int(80), Tree::Str("81".into())])
        );
    }

    #[test]
    fn core_schema_typing_keeps_leading_zero_text() {
        assert_eq!(plain_value("0644"), Value::Str("0644".into(), Style::Plain));
        assert_eq!(plain_value("-12"), Value::Int(-12));
        assert_eq!(plain_value("1.5"), Value::Float("1.5".into()));
        assert_eq!(plain_value("1e3"), Value::Float("1000.0".into()));
        assert_eq!(
            plain_value("8.0.1"),
            Value::Str("8.0.1".into(), Style::Plain)
        );
        assert_eq!(plain_value("yes"), Value::Str("yes".into(), Style::Plain));
        assert_eq!(plain_value("~"), Value::Null);
    }

    #[test]
    fn duplicate_keys_are_reported_with_both_positions() {
        let parsed = parse("a: 1\nb: 2\na: 3\n").unwrap();
        assert_eq!(parsed.problems.len(), 1);
        assert_eq!(parsed.problems[0].pos, Pos::new(3, 1));
        assert!(parsed.problems[0].message.contains("line 1, column 1"));
    }

    #[test]
    fn syntax_errors_have_positions() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(
            err.pos.line >= 1 && err.message.starts_with("invalid YAML"),
            "{err:?}"
        );
    }

    #[test]
    fn alias_bombs_hit_the_node_budget() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            text.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
        }
        assert_eq!(parse(&text).unwrap_err().code, "too-large");
    }

    #[test]
    fn wide_maps_and_long_lists_stay_fast() {
        let wide: String = (0..200_000).map(|i| format!("k{i}: {i}\n")).collect();
        let started = std::time::Instant::now();
        let parsed = parse(&wide).unwrap();
        let tree = parsed.documents[0].to_tree();
        let merged = crate::monkscript::resolve::merge(&tree, &tree);
        assert_eq!(merged, tree);
        assert!(
            started.elapsed().as_secs() < 20,
            "quadratic behaviour on wide maps"
        );
    }

    #[test]
    fn aliases_cannot_build_deep_trees() {
        let mut text = String::from("a0: &a0 [[[[[[[[[[x]]]]]]]]]]\n");
        for i in 1..40 {
            let p = i - 1;
            text.push_str(&format!("a{i}: &a{i} [[[[[[[[[[*a{p}]]]]]]]]]]\n"));
        }
        assert_eq!(parse(&text).unwrap_err().code, "too-deep");
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = "[".repeat(200) + &"]".repeat(200);
        assert!(parse(&text).is_err());
    }
}
