//! Validation of one MonkScript file: reads the YAML, builds the [`SourceFile`] model
//! and reports every problem at once (naming, paths, sections not allowed for the kind,
//! wrong types, unknown keys with "did you mean", ArrowScript written without `<-`,
//! backtick strings wrapped in quotes, deprecated spellings). It also collects every
//! ArrowScript site so a script checker can be run over them.
//!
//! Nothing here looks at other files: inheritance is checked in [`super::resolve`].
//!
//! Why one file of this size: it is one walk over one document, with every check a
//! method of the walker that carries the file, the namespace and the diagnostics; the
//! rules it checks against live apart in [`super::schema`] and [`super::path`].

use super::diagnostic::{did_you_mean, Diagnostic, Pos};
use super::model::{is_long_form, Kind, SourceFile, VariableType, VARIABLE_KEYS};
use super::path::{check_written, Relative};
use super::schema::{
    allowed_sections, allows_custom_fields, NameRule, Schema, Ty, BUILTIN_KINDS, COMMON_KEYS,
    OVERRIDABLE, SECTIONS,
};
use super::syntax::{self, Node, Style, Value};

/// Where an ArrowScript is written, and its source (without the `<-`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptSite {
    pub file: String,
    /// Position of the first character of the script text.
    pub pos: Pos,
    /// True when the script is on one line of the YAML source at `pos`, so an offset into
    /// it is a column offset; false for block and multi-line scalars.
    pub single_line: bool,
    pub script: String,
}

impl ScriptSite {
    /// The source position of a byte offset into [`ScriptSite::script`].
    pub fn position_of(&self, offset: usize) -> Pos {
        let offset = offset.min(self.script.len());
        let before = self.script.get(..offset).unwrap_or(&self.script);
        if self.single_line {
            return Pos::new(self.pos.line, self.pos.col + before.chars().count());
        }
        let newlines = before.matches('\n').count();
        let column = before
            .rsplit('\n')
            .next()
            .map_or(0, |line| line.chars().count());
        if newlines == 0 {
            Pos::new(self.pos.line, self.pos.col + column)
        } else {
            Pos::new(self.pos.line + newlines, column + 1)
        }
    }
}

/// The outcome of checking one file.
#[derive(Debug, Default)]
pub struct Checked {
    pub files: Vec<SourceFile>,
    pub diagnostics: Vec<Diagnostic>,
    pub scripts: Vec<ScriptSite>,
}

/// Top-level keys that are not definitions: the namespace, and the `sops:` block of a
/// SOPS-encrypted file (MONK-REFERENCE §5.1), which `monk load` decrypts.
pub const NOT_DEFINITIONS: [&str; 2] = ["namespace", "sops"];

/// True for kebab-case identifiers: lowercase letters and digits, single hyphens between.
pub fn is_kebab(name: &str) -> bool {
    !name.is_empty()
        && name.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// A name that works as a path segment even though it is not kebab-case: ASCII letters,
/// digits, `.`, `_` and `-`. Real kits name versions `v1.0.0` (the documented versioning
/// convention) and official entity packages use camelCase and snake_case names, so such
/// names load with a warning; anything else (spaces, `∏`, ...) is an error.
pub fn is_path_safe(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The first segment of `path` that is usable but not kebab-case, for a warning.
pub fn non_kebab_segment(path: &str) -> Option<&str> {
    let body = path
        .strip_prefix("./")
        .unwrap_or(path)
        .trim_start_matches('/');
    body.split('/').find(|s| !is_kebab(s))
}

fn is_snake(name: &str) -> bool {
    name.contains('_')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn kebab_of(name: &str) -> String {
    let mut out = String::new();
    let mut previous: Option<char> = None;
    for c in name.chars() {
        // A hyphen where camelCase turns upper (`dbHost` → `db-host`), not inside a run of
        // capitals (`HTTP_PORT` → `http-port`).
        if c.is_ascii_uppercase()
            && previous.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit())
        {
            out.push('-');
        }
        match c {
            '_' | '.' | ' ' | '-' if !out.is_empty() && !out.ends_with('-') => out.push('-'),
            '_' | '.' | ' ' | '-' => {}
            c => out.push(c.to_ascii_lowercase()),
        }
        previous = Some(c);
    }
    out.trim_end_matches('-').to_string()
}

/// Checks a namespace path against the reference's rules ([`super::path`], the rule the
/// state machine applies too). `allow_relative` is false for `namespace:` values, which
/// are never relative.
pub fn check_path(path: &str, allow_relative: bool) -> Result<(), String> {
    let relative = match allow_relative {
        true => Relative::Allowed,
        false => Relative::Forbidden,
    };
    check_written(path, relative).map_err(|e| e.to_string())
}

/// Whether `name` is an ArrowScript operator (or alias) in the operator table, the one
/// list the evaluator, the hosts and this heuristic share.
fn is_arrow_operator(name: &str) -> bool {
    crate::arrow::ops::lookup(name).is_some()
}

/// A value that reads as an ArrowScript but has no `<-`, so it would be taken literally.
pub fn looks_like_arrow(text: &str) -> bool {
    let text = text.trim();
    if text.starts_with("<-") {
        return false;
    }
    let first = text.split_whitespace().next().unwrap_or("");
    let call = first.split('(').next().unwrap_or("");
    if first.contains('(') && is_arrow_operator(call) && text.ends_with(')') {
        return true;
    }
    if let Some(rest) = first.strip_prefix('$') {
        let is_var = !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        let then = text[first.len()..].trim_start();
        let op = then.split(['(', ' ']).next().unwrap_or("");
        return is_var && (then.is_empty() || is_arrow_operator(op));
    }
    false
}

/// "a runnable", "an entity".
pub fn with_article(word: &str) -> String {
    let article = if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {word}")
}

fn is_template_literal(text: &str) -> bool {
    let t = text.trim();
    t.len() >= 2 && t.starts_with('`') && t.ends_with('`') && t.contains("${")
}

fn is_script(node: &Node) -> bool {
    node.as_str()
        .is_some_and(|s| s.trim_start().starts_with("<-"))
}

fn is_numeric_text(text: &str, integer: bool) -> bool {
    let t = text.trim();
    if integer {
        t.parse::<i64>().is_ok() || t.parse::<u64>().is_ok()
    } else {
        t.parse::<f64>().is_ok()
    }
}

/// Reads an embedded file named by a `<<< relative/path` scalar, or says why it cannot.
pub type EmbedReader<'a> = &'a dyn Fn(&str) -> Result<String, String>;

/// Parses and validates one file's text. `file` is the name used in diagnostics.
/// `<<<` embeds are left as written.
pub fn check_text(file: &str, text: &str) -> Checked {
    check_source(file, text, None)
}

/// Replaces every `<<< path` scalar with the embedded file's contents.
fn expand_embeds(
    node: &mut Node,
    file: &str,
    embed: EmbedReader,
    diagnostics: &mut Vec<Diagnostic>,
) {
    match &mut node.value {
        Value::Seq(items) => items
            .iter_mut()
            .for_each(|i| expand_embeds(i, file, embed, diagnostics)),
        Value::Map(entries) => entries
            .iter_mut()
            .for_each(|e| expand_embeds(&mut e.value, file, embed, diagnostics)),
        Value::Str(text, style) => {
            let Some(target) = text.trim().strip_prefix("<<<") else {
                return;
            };
            match embed(target.trim()) {
                Ok(contents) => {
                    *text = contents;
                    *style = Style::Block;
                }
                Err(message) => diagnostics.push(
                    Diagnostic::error(file, node.pos, "missing-file", message)
                        .with_hint("`<<<` paths are relative to the YAML file"),
                ),
            }
        }
        _ => {}
    }
}

/// A hint for the YAML parser's most common messages, in the user's terms.
fn yaml_hint(message: &str) -> &'static str {
    if message.contains("mapping values are not allowed") {
        "a `: ` inside an unquoted value starts a new key; put the value in quotes"
    } else if message.contains("simple key expected") {
        "this line is not `key: value`: a `:` is missing, or the indentation is off"
    } else if message.contains("did not find expected key") {
        "the indentation is inconsistent here, or text follows a closing quote"
    } else if message.contains("trailing content after") {
        "text follows the closing quote; quote the whole value"
    } else if message.contains("indentation") {
        "indent the continuation lines of a quoted value more than its key"
    } else {
        "fix the YAML syntax at this position (indentation, quotes, `:` followed by a space)"
    }
}

/// Parses and validates one file's text, expanding `<<<` embeds with `embed` when given.
pub fn check_source(file: &str, text: &str, embed: Option<EmbedReader>) -> Checked {
    let mut checked = Checked::default();
    let parsed = match syntax::parse(text) {
        Ok(parsed) => parsed,
        Err(e) => {
            let hint = match e.code {
                "yaml-syntax" => yaml_hint(&e.message),
                "too-deep" | "too-large" => "split the file or reduce its nesting",
                _ => "",
            };
            let mut d = Diagnostic::error(file, e.pos, e.code, e.message);
            if !hint.is_empty() {
                d = d.with_hint(hint);
            }
            checked.diagnostics.push(d);
            return checked;
        }
    };
    for problem in &parsed.problems {
        checked.diagnostics.push(Diagnostic::error(
            file,
            problem.pos,
            problem.code,
            problem.message.clone(),
        ));
    }
    if parsed.documents.iter().all(|d| d.value == Value::Null) {
        checked.diagnostics.push(Diagnostic::warning(
            file,
            Pos::new(1, 1),
            "empty-file",
            "the file defines nothing",
        ));
        return checked;
    }
    let mut documents = parsed.documents;
    if let Some(embed) = embed {
        documents
            .iter_mut()
            .for_each(|d| expand_embeds(d, file, embed, &mut checked.diagnostics));
    }
    for document in &documents {
        if document.value == Value::Null {
            continue;
        }
        let mut walker = Walker {
            file,
            namespace: String::new(),
            diagnostics: &mut checked.diagnostics,
            scripts: &mut checked.scripts,
        };
        if let Some(source) = walker.document(document) {
            checked.files.push(source);
        }
    }
    checked
}

struct Walker<'a> {
    file: &'a str,
    namespace: String,
    diagnostics: &'a mut Vec<Diagnostic>,
    scripts: &'a mut Vec<ScriptSite>,
}

impl Walker<'_> {
    fn error(
        &mut self,
        pos: Pos,
        code: &'static str,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        let mut d = Diagnostic::error(self.file, pos, code, message);
        d.hint = hint;
        self.diagnostics.push(d);
    }

    fn warning(
        &mut self,
        pos: Pos,
        code: &'static str,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        let mut d = Diagnostic::warning(self.file, pos, code, message);
        d.hint = hint;
        self.diagnostics.push(d);
    }

    fn document(&mut self, root: &Node) -> Option<SourceFile> {
        let Some(entries) = root.as_map() else {
            self.error(
                root.pos,
                "not-a-template",
                format!(
                    "a MonkScript document is a map, this one is a {}",
                    root.type_name()
                ),
                Some(
                    "start the file with `namespace: my-namespace` followed by definitions".into(),
                ),
            );
            return None;
        };
        if let Some(sops) = entries.iter().find(|e| e.key == "sops") {
            self.warning(
                sops.key_pos,
                "sops-encrypted",
                "this file is SOPS-encrypted, so its values cannot be checked and it is skipped",
                Some("decrypt it first (`sops -d`) to lint or load it".into()),
            );
            return None;
        }
        let Some(namespace) = entries.iter().find(|e| e.key == "namespace") else {
            self.error(
                root.pos,
                "missing-namespace",
                "the document has no `namespace:`",
                Some("every MonkScript file begins with `namespace: my-namespace`".into()),
            );
            return None;
        };
        match namespace.value.scalar_text() {
            Some(text) => {
                if let Err(problem) = check_path(&text, false) {
                    self.error(
                        namespace.value.pos,
                        "path-syntax",
                        format!("invalid namespace: {problem}"),
                        Some("namespaces are kebab-case segments separated by `/`".into()),
                    );
                } else if let Some(segment) = non_kebab_segment(&text) {
                    self.warning(
                        namespace.value.pos,
                        "naming",
                        format!("namespace segment `{segment}` is not kebab-case"),
                        Some(format!(
                            "the reference asks for kebab-case, e.g. `{}`",
                            kebab_of(segment)
                        )),
                    );
                }
                self.namespace = text.trim_start_matches('/').to_string();
            }
            None => {
                self.error(
                    namespace.value.pos,
                    "wrong-type",
                    format!(
                        "`namespace` must be text, found a {}",
                        namespace.value.type_name()
                    ),
                    None,
                );
                return None;
            }
        }
        for entry in entries
            .iter()
            .filter(|e| !NOT_DEFINITIONS.contains(&e.key.as_str()))
        {
            if !matches!(entry.value.value, Value::Map(_)) {
                self.error(
                    entry.key_pos,
                    "not-a-definition",
                    format!(
                        "top-level `{}` is a {}, but a definition must be a map",
                        entry.key,
                        entry.value.type_name()
                    ),
                    Some("indent the definition's keys under its name".into()),
                );
                continue;
            }
            if !is_path_safe(&entry.key) {
                self.error(
                    entry.key_pos,
                    "naming",
                    format!("definition name `{}` cannot be a path segment", entry.key),
                    Some(format!(
                        "use lowercase letters, digits and hyphens, e.g. `{}`",
                        kebab_of(&entry.key)
                    )),
                );
            } else if !is_kebab(&entry.key) {
                self.warning(
                    entry.key_pos,
                    "naming",
                    format!("definition name `{}` is not kebab-case", entry.key),
                    Some(format!(
                        "the reference asks for kebab-case, e.g. `{}`",
                        kebab_of(&entry.key)
                    )),
                );
            }
            self.definition(&entry.value);
        }
        SourceFile::from_document(self.file, root)
    }

    fn definition(&mut self, node: &Node) {
        let defines = node.get("defines");
        let kind = match defines {
            None => Kind::Abstract,
            Some(d) => match d.as_str() {
                Some(text) => Kind::from_defines(Some(text), &self.namespace),
                None => {
                    self.error(
                        d.pos,
                        "wrong-type",
                        format!("`defines` must be text, found a {}", d.type_name()),
                        None,
                    );
                    Kind::Unknown(String::new())
                }
            },
        };
        if let Some(d) = defines {
            self.kind_checks(&kind, d, node);
        }
        if let Some(inherits) = node.get("inherits") {
            self.path_value(inherits, "inherits");
        }
        if let Kind::Fragment(section) = &kind {
            if let Some(ty) = SECTIONS.field(section) {
                self.value(node, ty, section, &kind);
            }
            return;
        }
        let Some(entries) = node.as_map() else { return };
        let allowed = allowed_sections(&kind);
        for entry in entries {
            if COMMON_KEYS.contains(&entry.key.as_str()) {
                continue;
            }
            let base = self.section_key(&entry.key, entry.key_pos);
            let base = if base == "readyness" {
                self.warning(
                    entry.key_pos,
                    "deprecated",
                    "`readyness` is a deprecated spelling",
                    Some("write `readiness`".into()),
                );
                "readiness"
            } else {
                base
            };
            let known = SECTIONS.field(base);
            let permitted = allowed.is_none_or(|list| list.contains(&base));
            match (known, permitted) {
                (Some(ty), true) => self.value(&entry.value, ty, base, &kind),
                (Some(_), false) if allows_custom_fields(&kind) => {
                    self.generic(&entry.value, false)
                }
                (Some(_), false) => {
                    let list = allowed.unwrap_or(&[]).join(", ");
                    self.error(
                        entry.key_pos,
                        "section-not-allowed",
                        format!("`{base}` is not allowed in {}", with_article(&kind.name())),
                        Some(format!(
                            "{} may contain: {list}",
                            with_article(&kind.name())
                        )),
                    );
                }
                (None, _) if allows_custom_fields(&kind) => self.generic(&entry.value, false),
                (None, _) => {
                    let candidates: Vec<&str> = match allowed {
                        Some(list) => list.to_vec(),
                        None => SECTIONS.keys().collect(),
                    };
                    let hint = did_you_mean(base, candidates.iter().copied().chain(COMMON_KEYS))
                        .map(|s| format!("did you mean `{s}`?"));
                    // An abstract base may be a fragment of anything (a container, a set of
                    // variables, used through a nested `inherits`), so there only a likely
                    // typo of a section name is reported.
                    if kind == Kind::Abstract && hint.is_none() {
                        self.generic(&entry.value, false);
                        continue;
                    }
                    self.warning(
                        entry.key_pos,
                        "unknown-key",
                        format!("unknown key `{base}` in {}", with_article(&kind.name())),
                        hint,
                    );
                    self.generic(&entry.value, false);
                }
            }
        }
        if kind == Kind::EntityInstance && node.get("entity").is_none() {
            self.error(
                node.pos,
                "missing-key",
                "an `entity-instance` needs `entity: namespace/type`",
                None,
            );
        }
    }

    /// Strips and checks an `[override]` suffix; returns the section name.
    fn section_key<'k>(&mut self, key: &'k str, pos: Pos) -> &'k str {
        let Some(open) = key.find('[') else {
            return key;
        };
        let (base, modifier) = (&key[..open], &key[open..]);
        if modifier != "[override]" {
            self.error(
                pos,
                "bad-modifier",
                format!("unknown modifier `{modifier}` on `{base}`"),
                Some("the only modifier is `[override]`".into()),
            );
        } else if !OVERRIDABLE.contains(&base) {
            self.error(
                pos,
                "bad-override",
                format!("`[override]` is not available on `{base}`"),
                Some(format!("`[override]` works on {}", OVERRIDABLE.join(", "))),
            );
        }
        base
    }

    fn kind_checks(&mut self, kind: &Kind, defines: &Node, node: &Node) {
        match kind {
            Kind::Unknown(text) if !text.is_empty() => {
                let hint = did_you_mean(text, BUILTIN_KINDS)
                    .map(|s| format!("did you mean `{s}`?"))
                    .unwrap_or_else(|| {
                        "an entity instance names its type as `namespace/type`".into()
                    });
                self.error(
                    defines.pos,
                    "unknown-kind",
                    format!("`defines: {text}` names no known kind"),
                    Some(hint),
                );
            }
            Kind::Instance(_) => self.path_value(defines, "defines"),
            Kind::ProcessGroup => self.warning(
                defines.pos,
                "deprecated",
                "`process-group` is deprecated",
                Some("write `defines: group` and `members:` instead of `runnable-list:`".into()),
            ),
            Kind::EntityInstance => self.warning(
                defines.pos,
                "deprecated",
                "`entity-instance` is the older instance form",
                Some("write `defines: namespace/type` with the fields directly".into()),
            ),
            Kind::Group if node.get("runnable-list").is_some() => self.warning(
                defines.pos,
                "deprecated",
                "`runnable-list` is deprecated",
                Some("write `members:`".into()),
            ),
            _ => {}
        }
    }

    fn path_value(&mut self, node: &Node, what: &str) {
        let Some(text) = node.as_str() else {
            if node.value != Value::Null {
                self.error(
                    node.pos,
                    "wrong-type",
                    format!("`{what}` must be a path, found a {}", node.type_name()),
                    None,
                );
            }
            return;
        };
        if text.trim_start().starts_with("<-") {
            self.script_site(node, text);
            return;
        }
        let own_prefix = format!("{}/", self.namespace);
        let checked = match text.trim_start_matches('/').strip_prefix(&own_prefix) {
            // The namespace itself was checked (and reported) once, at `namespace:`.
            Some(rest) if !self.namespace.is_empty() => check_path(rest, true),
            _ => check_path(text, true),
        };
        if let Err(problem) = checked {
            self.error(
                node.pos,
                "path-syntax",
                format!("invalid path in `{what}`: {problem}"),
                Some(
                    "paths are `namespace/name`, `./name` or `/namespace/name`, kebab-case".into(),
                ),
            );
        }
    }

    fn script_site(&mut self, node: &Node, text: &str) {
        let (script, skipped) = match text.trim_start().strip_prefix("<-") {
            Some(rest) => (rest, text.len() - rest.len()),
            None => (text, 0),
        };
        let single_line =
            !text.contains('\n') && !matches!(node.value, Value::Str(_, Style::Block));
        let (pos, single_line) = match &node.value {
            Value::Str(_, Style::Plain) if single_line => (
                Pos::new(
                    node.pos.line,
                    node.pos.col + text[..skipped].chars().count(),
                ),
                true,
            ),
            Value::Str(_, Style::Quoted) if single_line => (
                Pos::new(
                    node.pos.line,
                    node.pos.col + 1 + text[..skipped].chars().count(),
                ),
                true,
            ),
            _ => (node.pos, false),
        };
        self.scripts.push(ScriptSite {
            file: self.file.to_string(),
            pos,
            single_line,
            script: script.to_string(),
        });
    }

    /// Checks a scalar in an ordinary position: scripts are recorded, missing arrows and
    /// quoted template strings are warned about.
    fn scalar(&mut self, node: &Node, arrow_context: bool) {
        let Value::Str(text, style) = &node.value else {
            return;
        };
        if text.trim_start().starts_with("<-") {
            let body = text.trim_start()[2..].trim();
            if (body.starts_with("'`") && body.ends_with("`'"))
                || (body.starts_with("\"`") && body.ends_with("`\""))
            {
                self.warning(
                    node.pos,
                    "quoted-backtick",
                    "a backtick template is wrapped in quotes, so `${…}` is not interpolated",
                    Some("remove the quotes around the backticks".into()),
                );
            }
            self.script_site(node, text);
            return;
        }
        if !arrow_context || *style == Style::Block {
            return;
        }
        if is_template_literal(text) {
            self.warning(
                node.pos,
                "quoted-backtick",
                "a backtick template string without `<-` is taken literally",
                Some(format!("write `<- {}` (without the quotes)", text.trim())),
            );
        } else if looks_like_arrow(text) {
            self.warning(
                node.pos,
                "missing-arrow",
                "this value looks like ArrowScript but has no `<-`, so it is taken literally",
                Some(format!("write `<- {}`", text.trim())),
            );
        }
    }

    /// Walks a value of no particular type, still checking its scalars.
    fn generic(&mut self, node: &Node, arrow_context: bool) {
        match &node.value {
            Value::Seq(items) => items.iter().for_each(|i| self.generic(i, arrow_context)),
            Value::Map(entries) => {
                for e in entries {
                    if e.key == "readyness" {
                        self.warning(
                            e.key_pos,
                            "deprecated",
                            "`readyness` is a deprecated spelling",
                            Some("write `readiness`".into()),
                        );
                    }
                    self.generic(&e.value, arrow_context);
                }
            }
            _ => self.scalar(node, arrow_context),
        }
    }

    fn wrong_type(&mut self, node: &Node, expected: &str, at: &str) {
        self.error(
            node.pos,
            "wrong-type",
            format!("`{at}` must be {expected}, found a {}", node.type_name()),
            None,
        );
    }

    fn value(&mut self, node: &Node, ty: &Ty, at: &str, kind: &Kind) {
        if matches!(node.value, Value::Null) {
            return;
        }
        if is_script(node) && !matches!(ty, Ty::Script) {
            self.scalar(node, true);
            return;
        }
        if matches!(ty, Ty::Int | Ty::Number | Ty::Bool | Ty::Path)
            && node.as_str().is_some_and(looks_like_arrow)
        {
            self.scalar(node, true);
            return;
        }
        match ty {
            Ty::Any => self.generic(node, false),
            Ty::Text => match &node.value {
                Value::Seq(_) | Value::Map(_) => self.wrong_type(node, "a single value", at),
                _ => self.scalar(
                    node,
                    !at.ends_with("description")
                        && !at.ends_with("contents")
                        && !at.ends_with("bash"),
                ),
            },
            Ty::Int | Ty::Number => {
                let integer = matches!(ty, Ty::Int);
                match &node.value {
                    Value::Int(_) => {}
                    Value::Float(_) if !integer => {}
                    Value::Str(s, _) if is_numeric_text(s, integer) || s.contains("${") => {}
                    Value::Str(s, _)
                        if integer
                            && s.trim_end_matches(|c: char| c.is_ascii_alphabetic())
                                .parse::<u64>()
                                .is_ok() => {}
                    _ => self.wrong_type(node, if integer { "an integer" } else { "a number" }, at),
                }
            }
            Ty::Bool => match &node.value {
                Value::Bool(_) => {}
                Value::Str(s, _) if matches!(s.trim(), "true" | "false") => {}
                _ => self.wrong_type(node, "true or false", at),
            },
            Ty::Script => match &node.value {
                Value::Str(text, _) => {
                    let in_entity = matches!(
                        kind,
                        Kind::EntityType | Kind::Instance(_) | Kind::EntityInstance
                    );
                    // Entity checks are JavaScript; so is a base shared with entity types.
                    let javascript = text.contains("function main(");
                    if !in_entity && !javascript && !text.trim().is_empty() {
                        self.script_site(node, text);
                    }
                }
                Value::Int(_) | Value::Float(_) | Value::Bool(_) => {}
                Value::Seq(items) => items.iter().for_each(|i| self.value(i, ty, at, kind)),
                _ => self.wrong_type(node, "ArrowScript code", at),
            },
            Ty::TextList => match &node.value {
                Value::Seq(items) => {
                    for item in items {
                        match &item.value {
                            Value::Seq(_) | Value::Map(_) => {
                                self.wrong_type(item, "a single value", at)
                            }
                            _ => self.scalar(item, true),
                        }
                    }
                }
                _ => self.wrong_type(node, "a list", at),
            },
            Ty::Path => self.path_value(node, at),
            Ty::PathList => match &node.value {
                Value::Seq(items) => items.iter().for_each(|i| self.path_value(i, at)),
                _ => self.wrong_type(node, "a list of paths", at),
            },
            Ty::Map => match &node.value {
                Value::Map(_) => self.generic(node, false),
                _ => self.wrong_type(node, "a map", at),
            },
            Ty::BoolMap => self.bool_map(node, at),
            Ty::Struct(schema) => self.structure(node, schema, at, kind),
            Ty::StructOrList(schema) => match &node.value {
                Value::Seq(items) => items
                    .iter()
                    .for_each(|i| self.structure(i, schema, at, kind)),
                _ => self.structure(node, schema, at, kind),
            },
            Ty::Named(inner, rule) => self.named(node, inner, *rule, at, kind),
            Ty::Variables => self.variables(node, at),
        }
    }

    fn bool_map(&mut self, node: &Node, at: &str) {
        let Some(entries) = node.as_map() else {
            return self.wrong_type(node, "a map of names to true/false", at);
        };
        for e in entries.iter().filter(|e| e.key != "defines") {
            match &e.value.value {
                Value::Bool(_) | Value::Null => {}
                Value::Str(s, _)
                    if matches!(s.trim(), "true" | "false") || s.trim_start().starts_with("<-") => {
                }
                _ => self.wrong_type(&e.value, "true or false", &format!("{at}.{}", e.key)),
            }
        }
    }

    fn structure(&mut self, node: &Node, schema: &Schema, at: &str, kind: &Kind) {
        let Some(entries) = node.as_map() else {
            return self.wrong_type(node, &format!("a {} map", schema.name), at);
        };
        for e in entries {
            let key = match e.key.as_str() {
                "defines" => continue,
                "inherits" => {
                    self.path_value(&e.value, "inherits");
                    continue;
                }
                "readyness" => {
                    self.warning(
                        e.key_pos,
                        "deprecated",
                        "`readyness` is a deprecated spelling",
                        Some("write `readiness`".into()),
                    );
                    "readiness"
                }
                key => key,
            };
            let nested = format!("{at}.{key}");
            match schema.field(key) {
                Some(ty) => self.value(&e.value, ty, &nested, kind),
                None if schema.open => self.generic(&e.value, false),
                None => {
                    let hint =
                        did_you_mean(key, schema.keys()).map(|s| format!("did you mean `{s}`?"));
                    self.warning(
                        e.key_pos,
                        "unknown-key",
                        format!("unknown key `{key}` in {} `{at}`", schema.name),
                        hint,
                    );
                    self.generic(&e.value, false);
                }
            }
        }
    }

    fn named(&mut self, node: &Node, inner: &Ty, rule: NameRule, at: &str, kind: &Kind) {
        let Some(entries) = node.as_map() else {
            return self.wrong_type(node, "a map of names", at);
        };
        for e in entries.iter().filter(|e| e.key != "defines") {
            if e.key == "readyness" {
                self.warning(
                    e.key_pos,
                    "deprecated",
                    "`readyness` is a deprecated spelling",
                    Some("write `readiness`".into()),
                );
            }
            self.name_rule(&e.key, e.key_pos, rule, at);
            self.value(&e.value, inner, &format!("{at}.{}", e.key), kind);
        }
    }

    fn name_rule(&mut self, name: &str, pos: Pos, rule: NameRule, at: &str) {
        let ok = match rule {
            NameRule::Free => true,
            NameRule::Kebab => is_kebab(name),
            NameRule::FileName => {
                !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            }
        };
        if ok {
            return;
        }
        let (message, hint) = match rule {
            NameRule::FileName => (
                format!("file name `{name}` may only contain letters, digits, `.`, `_` and `-`"),
                None,
            ),
            _ if is_snake(name) => (
                format!("`{name}` in `{at}` is snake_case"),
                Some(format!(
                    "MonkScript identifiers are kebab-case: `{}`",
                    kebab_of(name)
                )),
            ),
            _ => (
                format!("`{name}` in `{at}` is not kebab-case"),
                Some(format!("write `{}`", kebab_of(name))),
            ),
        };
        self.warning(pos, "naming", message, hint);
    }

    fn variables(&mut self, node: &Node, at: &str) {
        let Some(entries) = node.as_map() else {
            return self.wrong_type(node, "a map of variables", at);
        };
        for e in entries.iter().filter(|e| e.key != "defines") {
            self.name_rule(&e.key, e.key_pos, NameRule::Kebab, at);
            match &e.value.value {
                Value::Map(fields) if is_long_form(&e.value) => {
                    for f in fields {
                        match f.key.as_str() {
                            "type" => self.variable_type(&f.value),
                            "value" | "default" => self.generic(&f.value, true),
                            "env" | "description" | "ask" | "check-min" | "check-max"
                            | "defines" => self.generic(&f.value, false),
                            "required" => self.value(
                                &f.value,
                                &Ty::Bool,
                                &format!("{at}.{}.required", e.key),
                                &Kind::Abstract,
                            ),
                            other => {
                                let hint = did_you_mean(other, VARIABLE_KEYS)
                                    .map(|s| format!("did you mean `{s}`?"));
                                self.warning(
                                    f.key_pos,
                                    "unknown-key",
                                    format!("unknown key `{other}` in variable `{}`", e.key),
                                    hint,
                                );
                            }
                        }
                    }
                    self.variable_value(&e.key, &e.value);
                }
                _ => self.generic(&e.value, true),
            }
        }
    }

    fn variable_type(&mut self, node: &Node) {
        let Some(name) = node.as_str() else {
            return self.wrong_type(node, "a type name", "type");
        };
        if VariableType::parse(name).is_none() {
            let hint = did_you_mean(name, VariableType::NAMES).map_or_else(
                || format!("use one of {}", VariableType::NAMES.join(", ")),
                |s| format!("did you mean `{s}`?"),
            );
            self.error(
                node.pos,
                "unknown-type",
                format!("unknown variable type `{name}`"),
                Some(hint),
            );
        }
    }

    fn variable_value(&mut self, name: &str, node: &Node) {
        let Some(ty) = node
            .get("type")
            .and_then(Node::as_str)
            .and_then(VariableType::parse)
        else {
            return;
        };
        let Some(value) = node.get("value") else {
            return;
        };
        if is_script(value) || value.value == Value::Null {
            return;
        }
        let fits = match (ty, &value.value) {
            (VariableType::String, Value::Seq(_) | Value::Map(_)) => false,
            (VariableType::String, _) => true,
            (VariableType::Int | VariableType::BigInt, Value::Int(_)) => true,
            (VariableType::Int | VariableType::BigInt, Value::Str(s, _)) => {
                is_numeric_text(s.trim_end_matches('n'), true) || s.contains("${")
            }
            (VariableType::Float, Value::Int(_) | Value::Float(_)) => true,
            (VariableType::Float, Value::Str(s, _)) => is_numeric_text(s, false),
            (VariableType::Bool, Value::Bool(_)) => true,
            (VariableType::Bool, Value::Str(s, _)) => matches!(s.trim(), "true" | "false"),
            _ => false,
        };
        if !fits {
            let type_name = VariableType::NAMES[ty as usize];
            self.error(
                value.pos,
                "wrong-type",
                format!(
                    "variable `{name}` is declared `{type_name}` but its value is a {}",
                    value.type_name()
                ),
                Some(format!(
                    "give {} value, or change `type`",
                    with_article(type_name)
                )),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kebab_and_paths() {
        assert!(
            is_kebab("my-app-2") && !is_kebab("my_app") && !is_kebab("MyApp") && !is_kebab("a--b")
        );
        assert!(
            check_path("ns/app", true).is_ok()
                && check_path("./app", true).is_ok()
                && check_path("/ns/app", true).is_ok()
        );
        assert!(
            check_path("ns/app/", true).is_err()
                && check_path("ns/./app", true).is_err()
                && check_path("./app", false).is_err()
        );
    }

    #[test]
    fn kebab_suggestions() {
        assert_eq!(kebab_of("HTTP_PORT"), "http-port");
        assert_eq!(kebab_of("dbHost"), "db-host");
        assert_eq!(kebab_of("MyApp"), "my-app");
        assert_eq!(kebab_of("v1.0.0"), "v1-0-0");
        assert_eq!(kebab_of("a__b_"), "a-b");
    }

    #[test]
    fn arrow_heuristic() {
        assert!(looks_like_arrow("connection-hostname(\"db\")"));
        assert!(looks_like_arrow("$port default(80)"));
        assert!(!looks_like_arrow("<- connection-hostname(\"db\")"));
        assert!(!looks_like_arrow("echo hello"));
    }

    #[test]
    fn script_positions_map_offsets() {
        let checked = check_text(
            "f.yaml",
            "namespace: n\na:\n  defines: runnable\n  variables:\n    x: <- 1 2 add\n",
        );
        let site = &checked.scripts[0];
        assert_eq!(site.script, " 1 2 add");
        assert_eq!(site.position_of(1), Pos::new(5, 11));
    }
}
