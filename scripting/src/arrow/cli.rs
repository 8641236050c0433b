//! `monk eval [--var NAME=VALUE]... [--vars-file FILE] 'SCRIPT'` as a library
//! function: evaluates one script offline and prints its value as JSON.
//!
//! `--var` values are YAML scalars (`8080` an int, `true` a bool, `nil` or `null`
//! nil, `"8080"` a string); `--vars-file` is the text of a YAML map, applied
//! first so that `--var` overrides it. Host operators fail (there is no cluster).
//! Exit codes: 0 success, 1 the script failed to parse or evaluate (message as
//! `col N: message` with the script and a caret under the column), 2 a bad
//! `--var` or vars file.

use crate::cli_output::CommandOutput;
use crate::tree::Tree;

use super::eval::{eval, VarMap};
use super::host::OfflineHost;
use super::parser::parse;
use super::value::Value;
use super::{line_col, VALUE_NESTING_LEVELS_MAX};

/// Runs `monk eval`. `vars` are the raw `NAME=VALUE` arguments in order.
pub fn eval_command(script: &str, vars: &[String], vars_file_yaml: Option<&str>) -> CommandOutput {
    let vars = match read_vars(vars, vars_file_yaml) {
        Ok(vars) => vars,
        Err(message) => {
            return CommandOutput {
                stdout: String::new(),
                stderr: format!("error: {message}\n"),
                exit_code: 2,
            }
        }
    };
    let parsed = match parse(script) {
        Ok(parsed) => parsed,
        Err(err) => return failure(script, err.offset, &err.message),
    };
    match eval(&parsed, &vars, &mut OfflineHost) {
        Ok(value) => CommandOutput {
            stdout: format!("{}\n", value.to_json()),
            stderr: String::new(),
            exit_code: 0,
        },
        Err(err) => failure(script, err.offset, &err.message),
    }
}

fn failure(script: &str, offset: usize, message: &str) -> CommandOutput {
    CommandOutput {
        stdout: String::new(),
        stderr: render_error(script, offset, message),
        exit_code: 1,
    }
}

/// `col N: message`, the script line, and a caret under column N. Multi-line
/// scripts say `line L, col N`.
pub fn render_error(script: &str, offset: usize, message: &str) -> String {
    let (line, col) = line_col(script, offset);
    let text = script.lines().nth(line - 1).unwrap_or("");
    let place = if script.contains('\n') {
        format!("line {line}, col {col}")
    } else {
        format!("col {col}")
    };
    let pad: String = text
        .chars()
        .take(col - 1)
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    format!("{place}: {message}\n  {text}\n  {pad}^\n")
}

/// Variables from the vars file, then each `--var` in order.
pub fn read_vars(vars: &[String], vars_file_yaml: Option<&str>) -> Result<VarMap, String> {
    let mut out = VarMap::new();
    if let Some(yaml) = vars_file_yaml {
        let tree: Tree = serde_saphyr::from_str(yaml).map_err(|e| format!("vars file: {e}"))?;
        match tree {
            Tree::Map(entries) => {
                for (name, value) in entries {
                    let value = Value::from_tree(&value, VALUE_NESTING_LEVELS_MAX)
                        .map_err(|e| format!("vars file, `{name}`: {e}"))?;
                    out.insert(name, value);
                }
            }
            Tree::Null => {}
            other => {
                return Err(format!(
                    "vars file must be a YAML map of variables, found a {}",
                    other.type_name()
                ))
            }
        }
    }
    for raw in vars {
        let Some((name, text)) = raw.split_once('=') else {
            return Err(format!("--var `{raw}` must look like NAME=VALUE"));
        };
        let name = name.trim();
        if name.is_empty() {
            return Err(format!("--var `{raw}` has an empty name"));
        }
        out.insert(
            name.to_string(),
            scalar(text).map_err(|e| format!("--var {name}: {e}"))?,
        );
    }
    Ok(out)
}

/// A `--var` value read as a YAML scalar; `nil` is nil too.
fn scalar(text: &str) -> Result<Value, String> {
    if text.trim() == "nil" {
        return Ok(Value::Nil);
    }
    let tree: Tree = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
    match tree {
        Tree::Seq(_) | Tree::Map(_) => {
            Err("a --var value must be a scalar; use --vars-file for lists and maps".to_string())
        }
        tree => Value::from_tree(&tree, VALUE_NESTING_LEVELS_MAX),
    }
}
