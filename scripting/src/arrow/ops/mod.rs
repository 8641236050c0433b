//! The operator table and the calling convention.
//!
//! Every operator is one [`OpSpec`] in [`table::OPS`]: its name and aliases, its
//! signature and documentation, one example with the expected result (checked by
//! a test and printed in `docs/arrowscript.md`), how it takes its inputs, and its
//! implementation.
//!
//! Calling convention. An operator has `inputs`, values it always takes from the
//! stack (the piped value: the string of `split`, the object of `get-member`),
//! and `params`, which come from the parentheses when present and otherwise from
//! the stack above the inputs. So `$s split(",")` and `$s "," split` are the same
//! call. Operators with a variable number of params (`exec`, `act`,
//! `concat-all`) take exactly the parenthesised arguments, or without
//! parentheses every value above the last `mark` (the start of the expression is
//! an implicit mark).

pub mod data;
pub mod logic;
pub mod machine;
pub mod math;
pub mod strings;
pub mod table;

use super::eval::{EvalError, Machine};
use super::value::Value;

pub use data::{member, to_text};
pub use table::OPS;

/// How many params an operator takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Params {
    /// Exactly this many.
    Exact(usize),
    /// Between min and max in parentheses; `min` from the stack without them.
    Optional(usize, usize),
    /// Up to max in parentheses; without them, as many as the stack holds, up to
    /// max (`entity-state` alone means "my own state", after a value it means
    /// "the state of that path").
    Greedy(usize),
    /// At least min in parentheses; without them, everything above the last mark.
    Variadic(usize),
}

/// What runs when the operator is called.
#[derive(Clone, Copy)]
pub enum Imp {
    /// A pure function of its inputs then params (in stack order).
    Pure(fn(&[Value]) -> Result<Value, OpError>),
    /// Needs the machine (stack shuffling, functions, variables); gets the base
    /// of its inputs on the stack and must leave its results there.
    Machine(fn(&mut Machine, usize, usize) -> Result<(), EvalError>),
    /// Touches the world: handed to the [`super::host::Host`].
    Host,
    /// `if-error`, handled by the evaluator's sequence loop.
    IfError,
}

impl std::fmt::Debug for Imp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Imp::Pure(_) => "Pure",
            Imp::Machine(_) => "Machine",
            Imp::Host => "Host",
            Imp::IfError => "IfError",
        })
    }
}

/// One operator.
#[derive(Debug)]
pub struct OpSpec {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    /// Section of the reference page.
    pub group: &'static str,
    /// `(inputs) | name(params) | (outputs)`, in the style of the Monk docs.
    pub signature: &'static str,
    /// What it does, including any behaviour chosen where the docs are unclear.
    pub doc: &'static str,
    pub example: &'static str,
    /// The example's result as `monk eval` prints it, or `error: <message>`.
    pub expected: &'static str,
    pub inputs: usize,
    pub params: Params,
    pub imp: Imp,
}

impl OpSpec {
    /// Whether a call with `count` parenthesised arguments is allowed. Beyond
    /// the params, arguments may also supply the inputs (`first([1, 2])` is
    /// `[1, 2] first`), except for variadic operators.
    pub fn check_arg_count(&self, count: usize) -> Result<(), String> {
        let (min, max) = match self.params {
            Params::Exact(n) => (n, Some(self.inputs + n)),
            Params::Optional(min, max) => (min, Some(self.inputs + max)),
            Params::Greedy(max) => (0, Some(self.inputs + max)),
            Params::Variadic(min) => (min, None),
        };
        let plural = |n: usize| if n == 1 { "argument" } else { "arguments" };
        if let Some(max) = max {
            if count > max {
                return Err(format!(
                    "`{}` takes at most {max} {} in parentheses, got {count}",
                    self.name,
                    plural(max)
                ));
            }
        }
        if count < min {
            return Err(format!(
                "`{}` needs at least {min} {} in parentheses, got {count}",
                self.name,
                plural(min)
            ));
        }
        Ok(())
    }

    /// How many values below `count` parenthesised arguments the call takes
    /// from the stack.
    pub fn stack_values_under_args(&self, count: usize) -> usize {
        let params = match self.params {
            Params::Exact(n) => n,
            Params::Optional(min, max) => count.clamp(min, max),
            Params::Greedy(max) => count.min(max),
            Params::Variadic(_) => return self.inputs,
        };
        (self.inputs + params).saturating_sub(count)
    }

    /// `if-error` only works with its fallback in parentheses.
    pub fn needs_parens(&self) -> bool {
        matches!(self.imp, Imp::IfError)
    }

    /// Whether the operator is handed to the host.
    pub fn is_host(&self) -> bool {
        matches!(self.imp, Imp::Host)
    }
}

/// The operators a [`super::host::Host`] must implement (by canonical name).
pub fn host_operators() -> impl Iterator<Item = &'static OpSpec> {
    OPS.iter().filter(|op| op.is_host())
}

/// Finds an operator by name or alias.
pub fn lookup(name: &str) -> Option<&'static OpSpec> {
    OPS.iter()
        .find(|op| op.name == name || op.aliases.contains(&name))
}

/// Why a pure operator failed: a mistake (type, value) or a size limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpError {
    pub message: String,
    pub limit: bool,
}

impl From<String> for OpError {
    fn from(message: String) -> OpError {
        OpError {
            message,
            limit: false,
        }
    }
}

impl From<&str> for OpError {
    fn from(message: &str) -> OpError {
        OpError {
            message: message.to_string(),
            limit: false,
        }
    }
}

/// A size-limit failure (never caught by `if-error`).
pub(crate) fn limit(message: String) -> OpError {
    OpError {
        message,
        limit: true,
    }
}

/// "expected X, got Y" for type errors.
pub(crate) fn expected(what: &str, got: &Value) -> String {
    format!("expected {what}, got {}", got.describe())
}

pub(crate) fn want_str<'v>(value: &'v Value, what: &str) -> Result<&'v str, OpError> {
    match value {
        Value::Str(s) => Ok(s),
        other => Err(expected(what, other).into()),
    }
}
