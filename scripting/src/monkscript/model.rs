//! The typed model of a MonkScript file: its namespace and its top-level definitions,
//! each with a [`Kind`], its `inherits` parent, and its sections kept as positioned
//! [`Node`]s. Variables, the most used section, get a typed view ([`Variable`]).
//!
//! Which sections and keys each kind accepts, and their types, lives in
//! [`super::schema`]; this module only classifies. Paths are normalised here:
//! `/ns/name` and `ns/name` name the same definition, `./name` is relative to the
//! namespace of the file that wrote it.

use std::fmt;

use super::diagnostic::Pos;
use super::syntax::{Node, Value};

/// What a top-level definition is, from its `defines:` value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Runnable,
    Group,
    /// The deprecated spelling of a group (`runnable-list` instead of `members`).
    ProcessGroup,
    /// An entity type (`defines: entity`).
    EntityType,
    /// An instance of an entity type (`defines: ns/type`), the type path normalised.
    Instance(String),
    /// The older instance form: `defines: entity-instance` + `entity: ns/type`.
    EntityInstance,
    Module,
    Service,
    /// No `defines:`: a base that others inherit from (or a deprecated fragment).
    Abstract,
    /// An old-style fragment marked with a section name (`defines: variables`), holding
    /// the contents of that section.
    Fragment(String),
    /// A `defines:` value that names nothing known; reported by validation.
    Unknown(String),
}

impl Kind {
    /// Classifies a `defines:` value (absent means abstract).
    pub fn from_defines(defines: Option<&str>, namespace: &str) -> Kind {
        match defines {
            None => Kind::Abstract,
            Some("runnable") => Kind::Runnable,
            Some("group") => Kind::Group,
            Some("process-group") => Kind::ProcessGroup,
            Some("entity") => Kind::EntityType,
            Some("entity-instance") => Kind::EntityInstance,
            Some("module") => Kind::Module,
            Some("service") => Kind::Service,
            Some(other) if other.contains('/') => Kind::Instance(normalize_path(other, namespace)),
            Some(section) if super::schema::SECTIONS.field(section).is_some() => {
                Kind::Fragment(section.to_string())
            }
            Some(other) => Kind::Unknown(other.to_string()),
        }
    }

    /// The kind name used in [`super::cli::LoadedDefinition::kind`].
    pub fn name(&self) -> String {
        match self {
            Kind::Runnable => "runnable".into(),
            Kind::Group => "group".into(),
            Kind::ProcessGroup => "process-group".into(),
            Kind::EntityType => "entity".into(),
            Kind::Instance(ty) => format!("{ty} instance"),
            Kind::EntityInstance => "entity-instance".into(),
            Kind::Module => "module".into(),
            Kind::Service => "service".into(),
            Kind::Abstract => "abstract".into(),
            Kind::Fragment(section) => format!("{section} fragment"),
            Kind::Unknown(other) => other.clone(),
        }
    }

    pub fn is_group(&self) -> bool {
        matches!(self, Kind::Group | Kind::ProcessGroup)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// One top-level definition of a file.
#[derive(Clone, Debug)]
pub struct Definition {
    /// `namespace/name`, without a leading slash.
    pub path: String,
    pub name: String,
    pub name_pos: Pos,
    pub kind: Kind,
    /// The parent path as written, its normalised form, and where it was written.
    pub inherits: Option<Inherits>,
    /// The whole definition as written.
    pub node: Node,
}

/// An `inherits:` reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inherits {
    pub written: String,
    pub path: String,
    pub pos: Pos,
}

/// One MonkScript document: a namespace and its definitions, in file order.
#[derive(Clone, Debug)]
pub struct SourceFile {
    pub file: String,
    pub namespace: String,
    pub namespace_pos: Pos,
    pub definitions: Vec<Definition>,
}

/// Strips a leading `/` and resolves `./` against `namespace`.
pub fn normalize_path(path: &str, namespace: &str) -> String {
    if let Some(rest) = path.strip_prefix("./") {
        let namespace = namespace.trim_start_matches('/');
        return if namespace.is_empty() {
            rest.to_string()
        } else {
            format!("{namespace}/{rest}")
        };
    }
    path.trim_start_matches('/').to_string()
}

impl SourceFile {
    /// Builds the model of one parsed document. Returns `None` when the document is not a
    /// map with a `namespace:`; validation reports why.
    pub fn from_document(file: &str, root: &Node) -> Option<SourceFile> {
        let entries = root.as_map()?;
        let namespace_entry = entries.iter().find(|e| e.key == "namespace")?;
        let namespace = namespace_entry
            .value
            .scalar_text()?
            .trim_start_matches('/')
            .to_string();
        let definitions = entries
            .iter()
            .filter(|e| {
                !super::validate::NOT_DEFINITIONS.contains(&e.key.as_str())
                    && matches!(e.value.value, Value::Map(_))
            })
            .map(|e| {
                let defines = e.value.get("defines").and_then(Node::as_str);
                let inherits = e.value.get("inherits").and_then(|n| {
                    n.as_str().map(|written| Inherits {
                        written: written.to_string(),
                        path: normalize_path(written, &namespace),
                        pos: n.pos,
                    })
                });
                Definition {
                    path: format!("{namespace}/{}", e.key),
                    name: e.key.clone(),
                    name_pos: e.key_pos,
                    kind: Kind::from_defines(defines, &namespace),
                    inherits,
                    node: e.value.clone(),
                }
            })
            .collect();
        Some(SourceFile {
            file: file.to_string(),
            namespace,
            namespace_pos: namespace_entry.value.pos,
            definitions,
        })
    }
}

/// A variable's declared type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VariableType {
    String,
    Int,
    Float,
    BigInt,
    Bool,
}

impl VariableType {
    pub const NAMES: [&'static str; 5] = ["string", "int", "float", "bigint", "bool"];

    pub fn parse(name: &str) -> Option<VariableType> {
        Some(match name {
            "string" => VariableType::String,
            "int" => VariableType::Int,
            "float" => VariableType::Float,
            "bigint" => VariableType::BigInt,
            "bool" => VariableType::Bool,
            _ => return None,
        })
    }
}

/// A variable in either form: `name: value` (short) or `name: {type, value, env, …}` (long).
#[derive(Clone, Debug)]
pub struct Variable<'a> {
    pub name: &'a str,
    pub name_pos: Pos,
    /// Declared type (long form only; `None` when absent or unknown).
    pub ty: Option<VariableType>,
    pub value: Option<&'a Node>,
    pub env: Option<&'a Node>,
    pub description: Option<&'a Node>,
    pub required: Option<&'a Node>,
    /// True when written in the long (map) form.
    pub long_form: bool,
}

/// The keys of a long-form variable.
pub const VARIABLE_KEYS: [&str; 9] = [
    "type",
    "value",
    "env",
    "description",
    "required",
    "ask",
    "check-min",
    "check-max",
    "default",
];

/// A map-valued variable is in long form when it has at least one long-form key; otherwise
/// the map is the (short-form) value, e.g. a JSON policy document.
pub fn is_long_form(node: &Node) -> bool {
    node.as_map().is_some_and(|entries| {
        entries
            .iter()
            .any(|e| VARIABLE_KEYS.contains(&e.key.as_str()) && e.key != "default")
    })
}

impl<'a> Variable<'a> {
    /// The variables of a `variables:` section, in order (the ignored `defines:` key skipped).
    pub fn all(section: &'a Node) -> Vec<Variable<'a>> {
        let Some(entries) = section.as_map() else {
            return Vec::new();
        };
        entries
            .iter()
            .filter(|e| e.key != "defines")
            .map(|e| match &e.value.value {
                Value::Map(_) if is_long_form(&e.value) => Variable {
                    name: &e.key,
                    name_pos: e.key_pos,
                    ty: e
                        .value
                        .get("type")
                        .and_then(Node::as_str)
                        .and_then(VariableType::parse),
                    value: e.value.get("value"),
                    env: e.value.get("env"),
                    description: e.value.get("description"),
                    required: e.value.get("required"),
                    long_form: true,
                },
                _ => Variable {
                    name: &e.key,
                    name_pos: e.key_pos,
                    ty: None,
                    value: Some(&e.value),
                    env: None,
                    description: None,
                    required: None,
                    long_form: false,
                },
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monkscript::syntax::parse;

    #[test]
    fn classifies_kinds_and_normalises_paths() {
        let text = "namespace: /shop\nbase:\n  image: x\nweb:\n  defines: runnable\n  inherits: ./base\ndb:\n  defines: /aws-rds/instance\n";
        let doc = &parse(text).unwrap().documents[0];
        let file = SourceFile::from_document("f.yaml", doc).unwrap();
        assert_eq!(file.namespace, "shop");
        let kinds: Vec<String> = file.definitions.iter().map(|d| d.kind.name()).collect();
        assert_eq!(kinds, ["abstract", "runnable", "aws-rds/instance instance"]);
        assert_eq!(
            file.definitions[1].inherits.as_ref().unwrap().path,
            "shop/base"
        );
    }

    #[test]
    fn variables_short_and_long_form() {
        let doc = &parse("a: 1\nb:\n  type: int\n  value: 2\n  env: B\n")
            .unwrap()
            .documents[0];
        let vars = Variable::all(doc);
        assert!(!vars[0].long_form && vars[1].long_form);
        assert_eq!(vars[1].ty, Some(VariableType::Int));
        assert_eq!(vars[1].env.and_then(Node::as_str), Some("B"));
    }
}
