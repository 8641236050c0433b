//! File contents templates: the subset of Go `text/template` that MonkScript kits use
//! in `files.*.contents` (unless `raw: true`).
//!
//! Supported, from the corpus: `{{ v "name" }}` and `{{ var "name" }}` (the variable's
//! text), `{{ if v "name" }} … {{ else if … }} … {{ else }} … {{ end }}` with an
//! optional `not` and parentheses in the condition, comments `{{/* … */}}`, and the
//! trim markers `{{-` / `-}}`. Truth follows Go: `false`, `0`, nil, the empty string
//! and empty collections are false. Anything else (`.Env`, `$x :=`, pipelines into
//! sprig functions) is an error naming the action, never silently copied through:
//! such files are meant to be `raw: true`.

use crate::arrow::{Value, Vars};

/// Deepest nesting of `if` blocks; corpus templates nest at most 2.
pub const IF_NESTING_LEVELS_MAX: usize = 32;

/// One `if` block being rendered.
struct Branch {
    /// Whether the block's surroundings are being rendered at all.
    outer_active: bool,
    /// Whether some branch of this block was already taken.
    taken: bool,
    /// Whether the current branch is being rendered.
    active: bool,
}

/// Renders `text`, reading variables from `vars`; output past `max_bytes` is an error.
pub fn render(text: &str, vars: &dyn Vars, max_bytes: usize) -> Result<String, String> {
    let mut out = String::new();
    let mut branches: Vec<Branch> = Vec::new();
    let mut rest = text;
    let mut trim_next = false;
    while !rest.is_empty() {
        let (literal, action) = match rest.find("{{") {
            Some(start) => (&rest[..start], Some(&rest[start + 2..])),
            None => (rest, None),
        };
        let mut literal = if trim_next {
            literal.trim_start()
        } else {
            literal
        };
        let Some(after_open) = action else {
            emit(&mut out, literal, &branches, max_bytes)?;
            break;
        };
        let Some(end) = after_open.find("}}") else {
            return Err("`{{` without a closing `}}`".to_string());
        };
        let mut body = &after_open[..end];
        if let Some(trimmed) = body.strip_prefix('-') {
            literal = literal.trim_end();
            body = trimmed;
        }
        trim_next = false;
        if let Some(trimmed) = body.strip_suffix('-') {
            trim_next = true;
            body = trimmed;
        }
        emit(&mut out, literal, &branches, max_bytes)?;
        action_in(body.trim(), vars, &mut branches, &mut out, max_bytes)?;
        rest = &after_open[end + 2..];
    }
    if !branches.is_empty() {
        return Err("`{{ if }}` without `{{ end }}`".to_string());
    }
    Ok(out)
}

fn active(branches: &[Branch]) -> bool {
    branches.last().is_none_or(|b| b.active)
}

fn emit(out: &mut String, text: &str, branches: &[Branch], max_bytes: usize) -> Result<(), String> {
    if !active(branches) {
        return Ok(());
    }
    if out.len() + text.len() > max_bytes {
        return Err(format!("rendered file exceeds {max_bytes} bytes"));
    }
    out.push_str(text);
    Ok(())
}

fn action_in(
    body: &str,
    vars: &dyn Vars,
    branches: &mut Vec<Branch>,
    out: &mut String,
    max_bytes: usize,
) -> Result<(), String> {
    if body.starts_with("/*") && body.ends_with("*/") {
        return Ok(());
    }
    if let Some(condition) = body.strip_prefix("if ") {
        if branches.len() >= IF_NESTING_LEVELS_MAX {
            return Err(format!(
                "`if` blocks nest deeper than {IF_NESTING_LEVELS_MAX}"
            ));
        }
        let outer_active = active(branches);
        let holds = outer_active && truth(condition, vars)?;
        branches.push(Branch {
            outer_active,
            taken: holds,
            active: holds,
        });
        return Ok(());
    }
    if body == "else" || body.starts_with("else if ") {
        let Some(branch) = branches.last_mut() else {
            return Err("`{{ else }}` outside `{{ if }}`".to_string());
        };
        let holds = match body.strip_prefix("else if ") {
            Some(condition) => branch.outer_active && !branch.taken && truth(condition, vars)?,
            None => branch.outer_active && !branch.taken,
        };
        branch.active = holds;
        branch.taken |= holds;
        return Ok(());
    }
    if body == "end" {
        return branches
            .pop()
            .map(|_| ())
            .ok_or_else(|| "`{{ end }}` without `{{ if }}`".to_string());
    }
    if !active(branches) {
        return Ok(());
    }
    let value = lookup(body, vars)?;
    emit(out, &value.to_text(), branches, max_bytes)
}

/// Go's truth of a condition: `v "x"`, `not COND`, `(COND)`.
fn truth(condition: &str, vars: &dyn Vars) -> Result<bool, String> {
    let condition = condition.trim();
    if let Some(inner) = condition.strip_prefix("not ") {
        return truth(inner, vars).map(|b| !b);
    }
    if let Some(inner) = condition
        .strip_prefix('(')
        .and_then(|c| c.strip_suffix(')'))
    {
        return truth(inner, vars);
    }
    let value = lookup(condition, vars)?;
    Ok(match &value {
        Value::Nil => false,
        Value::Bool(b) => *b,
        Value::Int(i) => *i != 0,
        Value::BigInt(i) => *i != 0,
        Value::Float(f) => *f != 0.0,
        Value::Str(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::Func(_) => true,
    })
}

/// `v "name"` or `var "name"`: the variable's value.
fn lookup(expr: &str, vars: &dyn Vars) -> Result<Value, String> {
    let unsupported = || format!("unsupported template action `{{{{ {expr} }}}}`");
    let argument = expr
        .strip_prefix("v ")
        .or_else(|| expr.strip_prefix("var "))
        .ok_or_else(unsupported)?
        .trim();
    let name = argument
        .strip_prefix('"')
        .and_then(|a| a.strip_suffix('"'))
        .filter(|n| !n.contains('"'))
        .ok_or_else(unsupported)?;
    vars.get(name)
        .ok_or_else(|| format!("template reads variable `{name}`, which is not defined"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arrow::VarMap;

    fn vars() -> VarMap {
        let mut vars = VarMap::new();
        vars.insert("host".into(), Value::str("db.local"));
        vars.insert("port".into(), Value::Int(5432));
        vars.insert("ssl".into(), Value::Bool(false));
        vars.insert("empty".into(), Value::str(""));
        vars
    }

    fn ok(text: &str) -> String {
        render(text, &vars(), 1 << 20).unwrap()
    }

    #[test]
    fn variables_and_conditions() {
        assert_eq!(ok("h={{ v \"host\" }}:{{var \"port\"}}"), "h=db.local:5432");
        assert_eq!(ok("{{ if v \"ssl\" }}tls{{ else }}plain{{ end }}"), "plain");
        assert_eq!(ok("{{ if not (v \"ssl\") }}plain{{ end }}"), "plain");
        assert_eq!(
            ok("{{ if v \"empty\" }}a{{ else if v \"port\" }}b{{ else }}c{{ end }}"),
            "b"
        );
        assert_eq!(
            ok("{{ if v \"ssl\" }}{{ if v \"port\" }}x{{ end }}{{ end }}y"),
            "y"
        );
        assert_eq!(ok("a  {{- v \"port\" -}}  b"), "a5432b");
        assert_eq!(ok("{{/* note */}}plain $x {x}"), "plain $x {x}");
    }

    #[test]
    fn unsupported_and_malformed_templates_fail_clearly() {
        let err = |text: &str| render(text, &vars(), 1 << 20).unwrap_err();
        assert!(err("{{ .Env.X }}").contains("unsupported template action"));
        assert!(err("{{ $x := v \"host\" }}").contains("unsupported"));
        assert!(err("{{ v \"nope\" }}").contains("`nope`, which is not defined"));
        assert!(err("{{ v \"host\"").contains("closing"));
        assert!(err("{{ if v \"ssl\" }}x").contains("without `{{ end }}`"));
        assert!(err("{{ end }}").contains("without `{{ if }}`"));
        assert!(err("{{ else }}").contains("outside"));
        assert!(render("{{ v \"host\" }}", &vars(), 4)
            .unwrap_err()
            .contains("exceeds"));
    }
}
