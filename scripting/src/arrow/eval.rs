//! The ArrowScript stack machine.
//!
//! Nodes run left to right on one value stack. A literal or variable pushes a
//! value; an operator call first pushes its parenthesised arguments (each must
//! produce exactly one value) and then takes its inputs from the top of the stack,
//! so `concat("x")` is `"x" concat`. The value of a script is the top of the stack
//! when it ends (`nil` if empty).
//!
//! Sub-expressions (arguments, array elements, object values, indexes and
//! `${...}`) run with a floor: they see only the values they push themselves.
//! `mark` pushes a mark; `concat-all` and operators without a fixed number of
//! inputs take everything above the last mark, and the floor acts as one.
//!
//! `if-error(x)`: when a node fails, the evaluator looks for the next `if-error`
//! in the same sequence; if there is one, the stack goes back to where it was
//! after the previous `if-error` (or the start of the sequence), `x` is pushed and
//! evaluation continues after it. Limit errors (fuel, sizes, nesting) are never
//! caught.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use thiserror::Error;

use super::host::{Host, HostError, HostOp};
use super::ops::{Imp, OpSpec, Params};
use super::parser::{Block, Key, Node, NodeKind, Part, Script};
use super::value::{Map, Value};
use super::{
    ARRAY_ITEMS_MAX, EVAL_NESTING_LEVELS_MAX, FUEL_BYTES_PER_STEP, FUEL_STEPS_MAX,
    STACK_DEPTH_VALUES_MAX, STRING_BYTES_MAX, VALUE_NESTING_LEVELS_MAX,
};

/// Budgets for one evaluation. `Default` uses the crate constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub fuel_steps: u64,
    pub max_stack_values: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            fuel_steps: FUEL_STEPS_MAX,
            max_stack_values: STACK_DEPTH_VALUES_MAX,
        }
    }
}

/// Read access to the variables a script can see (`$name`, `var("name")`).
pub trait Vars {
    fn get(&self, name: &str) -> Option<Value>;
}

/// The usual variable set: an ordered map.
pub type VarMap = BTreeMap<String, Value>;

impl Vars for BTreeMap<String, Value> {
    fn get(&self, name: &str) -> Option<Value> {
        BTreeMap::get(self, name).cloned()
    }
}

impl Vars for HashMap<String, Value> {
    fn get(&self, name: &str) -> Option<Value> {
        HashMap::get(self, name).cloned()
    }
}

/// Why an evaluation stopped, and where (byte offset into the script text).
#[derive(Clone, Debug, PartialEq, Error)]
#[error("{message}")]
pub struct EvalError {
    pub offset: usize,
    pub kind: EvalErrorKind,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EvalErrorKind {
    /// Wrong types, missing variables, too few values...: a mistake in the script
    /// or its inputs. `if-error` catches these.
    Script,
    /// A host operator failed (or there is no host). `if-error` catches these.
    Host(HostError),
    /// A budget ran out. Never caught.
    Limit,
}

impl EvalError {
    pub fn script(offset: usize, message: impl Into<String>) -> EvalError {
        EvalError {
            offset,
            kind: EvalErrorKind::Script,
            message: message.into(),
        }
    }
    pub fn limit(offset: usize, message: impl Into<String>) -> EvalError {
        EvalError {
            offset,
            kind: EvalErrorKind::Limit,
            message: message.into(),
        }
    }
}

/// Where a one-value sub-expression sits, for error messages.
#[derive(Clone, Copy, Debug)]
pub enum Slot {
    /// Argument number (from 0) of an operator.
    Argument(usize, &'static str),
    Index,
    Interpolation,
    Element,
    Key,
    Value,
}

impl Slot {
    fn describe(self) -> String {
        match self {
            Slot::Argument(i, op) => format!("argument {} of `{op}`", i + 1),
            Slot::Index => "an index".to_string(),
            Slot::Interpolation => "`${...}`".to_string(),
            Slot::Element => "an array element".to_string(),
            Slot::Key => "an object key".to_string(),
            Slot::Value => "an object value".to_string(),
        }
    }
}

/// Evaluates a script with the default limits.
pub fn eval(script: &Script, vars: &dyn Vars, host: &mut dyn Host) -> Result<Value, EvalError> {
    eval_with(script, vars, host, Limits::default())
}

/// Evaluates a script with explicit limits and also reports the fuel steps it
/// used (for metrics, and to show that a run never exceeds its budget).
pub fn eval_metered(
    script: &Script,
    vars: &dyn Vars,
    host: &mut dyn Host,
    limits: Limits,
) -> (Result<Value, EvalError>, u64) {
    let mut machine = Machine::new(vars, host, limits);
    let result = machine
        .run(script.body())
        .map(|()| machine.stack.pop().unwrap_or(Value::Nil));
    (result, limits.fuel_steps - machine.fuel)
}

/// Evaluates a script with explicit limits.
pub fn eval_with(
    script: &Script,
    vars: &dyn Vars,
    host: &mut dyn Host,
    limits: Limits,
) -> Result<Value, EvalError> {
    eval_metered(script, vars, host, limits).0
}

/// Evaluation state. Operators implemented on the machine (`dup`, `map`, ...)
/// get `&mut Machine`.
pub struct Machine<'a> {
    pub(crate) stack: Vec<Value>,
    marks: Vec<usize>,
    floor: usize,
    fuel: u64,
    limits: Limits,
    nesting: usize,
    vars: &'a dyn Vars,
    /// `set-tmp` variables: `None` marks an `unset`.
    tmp: BTreeMap<Arc<str>, Option<Value>>,
    host: &'a mut dyn Host,
}

impl<'a> Machine<'a> {
    fn new(vars: &'a dyn Vars, host: &'a mut dyn Host, limits: Limits) -> Machine<'a> {
        Machine {
            stack: Vec::with_capacity(8),
            marks: Vec::new(),
            floor: 0,
            fuel: limits.fuel_steps,
            limits,
            nesting: 0,
            vars,
            tmp: BTreeMap::new(),
            host,
        }
    }

    /// Charges `steps` of fuel.
    pub fn charge(&mut self, steps: u64, at: usize) -> Result<(), EvalError> {
        match self.fuel.checked_sub(steps) {
            Some(left) => {
                self.fuel = left;
                Ok(())
            }
            None => {
                self.fuel = 0;
                Err(EvalError::limit(
                    at,
                    format!(
                        "out of fuel: the script took more than {} steps",
                        self.limits.fuel_steps
                    ),
                ))
            }
        }
    }

    /// Fuel left in this run.
    pub fn fuel_left(&self) -> u64 {
        self.fuel
    }

    /// Checks the size limits of a value about to be pushed, and charges fuel
    /// for its size.
    pub fn check_value(&mut self, value: &Value, at: usize) -> Result<(), EvalError> {
        match value {
            Value::Str(s) => {
                if s.len() > STRING_BYTES_MAX {
                    return Err(EvalError::limit(
                        at,
                        format!(
                            "string of {} bytes exceeds the {STRING_BYTES_MAX}-byte limit",
                            s.len()
                        ),
                    ));
                }
                self.charge((s.len() / FUEL_BYTES_PER_STEP) as u64, at)
            }
            Value::Array(list) => self.check_container(list.len(), value.depth(), at),
            Value::Object(map) => self.check_container(map.len(), value.depth(), at),
            _ => Ok(()),
        }
    }

    fn check_container(&mut self, len: usize, depth: usize, at: usize) -> Result<(), EvalError> {
        if len > ARRAY_ITEMS_MAX {
            return Err(EvalError::limit(
                at,
                format!("{len} elements exceed the {ARRAY_ITEMS_MAX}-element limit"),
            ));
        }
        if depth > VALUE_NESTING_LEVELS_MAX {
            return Err(EvalError::limit(
                at,
                format!("value nests deeper than {VALUE_NESTING_LEVELS_MAX} levels"),
            ));
        }
        Ok(())
    }

    /// Pushes a value after checking limits.
    pub fn push(&mut self, value: Value, at: usize) -> Result<(), EvalError> {
        if self.stack.len() >= self.limits.max_stack_values {
            return Err(EvalError::limit(
                at,
                format!(
                    "stack holds more than {} values",
                    self.limits.max_stack_values
                ),
            ));
        }
        self.check_value(&value, at)?;
        self.stack.push(value);
        Ok(())
    }

    /// Values the current expression may consume.
    pub fn available(&self) -> usize {
        self.stack.len() - self.floor
    }

    /// The base of the values above the last mark (or the floor); drops that mark.
    pub fn take_mark(&mut self) -> usize {
        while let Some(&mark) = self.marks.last() {
            self.marks.pop();
            if mark >= self.floor && mark <= self.stack.len() {
                return mark;
            }
        }
        self.floor
    }

    pub fn mark(&mut self) {
        self.marks.push(self.stack.len());
    }

    /// Looks a variable up: `set-tmp` values first, then the script's variables.
    pub fn var(&self, name: &str, at: usize) -> Result<Value, EvalError> {
        if let Some(value) = self.tmp.get(name) {
            return value
                .clone()
                .ok_or_else(|| EvalError::script(at, format!("variable `${name}` was unset")));
        }
        self.vars
            .get(name)
            .ok_or_else(|| EvalError::script(at, format!("variable `${name}` is not defined")))
    }

    pub fn set_tmp(&mut self, name: Arc<str>, value: Option<Value>) {
        self.tmp.insert(name, value);
    }

    pub fn call_host(&mut self, op: &str, base: usize, at: usize) -> Result<Value, EvalError> {
        let Some(host_op) = HostOp::from_name(op) else {
            return Err(EvalError::script(
                at,
                format!("`{op}` is marked host in the operator table but is not a HostOp"),
            ));
        };
        let result = self.host.call(host_op, &self.stack[base..]);
        result.map_err(|err| EvalError {
            offset: at,
            message: err.to_string(),
            kind: EvalErrorKind::Host(err),
        })
    }

    fn enter(&mut self, at: usize) -> Result<(), EvalError> {
        self.nesting += 1;
        if self.nesting > EVAL_NESTING_LEVELS_MAX {
            return Err(EvalError::limit(
                at,
                format!("evaluation nests deeper than {EVAL_NESTING_LEVELS_MAX} levels"),
            ));
        }
        Ok(())
    }

    /// Runs a block on the current stack (function bodies, ternary branches).
    pub fn run(&mut self, block: &Block) -> Result<(), EvalError> {
        let at = block.first().map_or(0, |n| n.at);
        self.enter(at)?;
        let result = self.run_nodes(block);
        self.nesting -= 1;
        result
    }

    /// Runs a block that must produce exactly one value, seeing only its own
    /// values, and returns that value.
    pub fn run_value(&mut self, block: &Block, what: Slot) -> Result<Value, EvalError> {
        let at = block.first().map_or(0, |n| n.at);
        let saved_floor = self.floor;
        let saved_marks = self.marks.len();
        let height = self.stack.len();
        self.floor = height;
        let result = self.run(block);
        self.floor = saved_floor;
        self.marks.truncate(saved_marks);
        result?;
        let produced = self.stack.len() - height;
        if produced != 1 {
            self.stack.truncate(height);
            return Err(EvalError::script(
                at,
                format!(
                    "{} must produce one value, it produced {produced}",
                    what.describe()
                ),
            ));
        }
        Ok(self.stack.pop().unwrap_or(Value::Nil))
    }

    /// Runs a function value on a fresh stack holding `inputs`, returning the top
    /// value it leaves (`nil` if none).
    pub fn apply(&mut self, body: &Block, inputs: &[Value], at: usize) -> Result<Value, EvalError> {
        let saved_floor = self.floor;
        let saved_marks = self.marks.len();
        let height = self.stack.len();
        self.floor = height;
        let mut result = Ok(());
        for value in inputs {
            result = self.push(value.clone(), at);
            if result.is_err() {
                break;
            }
        }
        if result.is_ok() {
            result = self.run(body);
        }
        let top = if self.stack.len() > height {
            self.stack.pop()
        } else {
            None
        };
        self.stack.truncate(height);
        self.floor = saved_floor;
        self.marks.truncate(saved_marks);
        result.map(|()| top.unwrap_or(Value::Nil))
    }

    fn run_nodes(&mut self, block: &Block) -> Result<(), EvalError> {
        let mut i = 0;
        let mut guard_height = self.stack.len();
        while i < block.len() {
            let node = &block[i];
            match self.step(node) {
                Ok(()) => {
                    if is_if_error(node) {
                        guard_height = self.stack.len();
                    }
                    i += 1;
                }
                Err(err) if err.kind != EvalErrorKind::Limit => {
                    let Some(j) = (i + 1..block.len()).find(|&j| is_if_error(&block[j])) else {
                        return Err(err);
                    };
                    let height = guard_height.max(self.floor);
                    self.stack.truncate(height);
                    self.marks.retain(|&mark| mark <= height);
                    let NodeKind::Call {
                        args: Some(args), ..
                    } = &block[j].kind
                    else {
                        return Err(err);
                    };
                    let fallback = self.run_value(&args[0], Slot::Argument(0, "if-error"))?;
                    self.push(fallback, block[j].at)?;
                    guard_height = self.stack.len();
                    i = j + 1;
                }
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    fn step(&mut self, node: &Node) -> Result<(), EvalError> {
        let at = node.at;
        self.charge(1, at)?;
        match &node.kind {
            NodeKind::Push(value) => {
                if self.stack.len() >= self.limits.max_stack_values {
                    return Err(EvalError::limit(
                        at,
                        format!(
                            "stack holds more than {} values",
                            self.limits.max_stack_values
                        ),
                    ));
                }
                self.stack.push(value.clone());
                Ok(())
            }
            NodeKind::Var { name, index } => {
                let mut value = self.var(name, at)?;
                for key in index {
                    let key = self.run_value(key, Slot::Index)?;
                    value = super::ops::member(&value, &key)
                        .map_err(|e| EvalError::script(at, e.message))?;
                }
                self.push(value, at)
            }
            NodeKind::Call { op, args } => self.call(op, args.as_deref(), at),
            NodeKind::Template(parts) => {
                let mut text = String::new();
                for part in parts {
                    match part {
                        Part::Text(t) => text.push_str(t),
                        Part::Expr(block) => {
                            let value = self.run_value(block, Slot::Interpolation)?;
                            let piece = super::ops::to_text(&value)
                                .map_err(|e| EvalError::limit(at, e.message))?;
                            text.push_str(&piece);
                        }
                    }
                    if text.len() > STRING_BYTES_MAX {
                        return Err(EvalError::limit(
                            at,
                            format!("template exceeds the {STRING_BYTES_MAX}-byte limit"),
                        ));
                    }
                }
                self.push(Value::Str(Arc::from(text)), at)
            }
            NodeKind::Array(items) => {
                let mut values = Vec::with_capacity(items.len());
                for item in items {
                    values.push(self.run_value(item, Slot::Element)?);
                }
                self.push(Value::array(values), at)
            }
            NodeKind::Object(entries) => {
                let mut map = Map::new();
                for (key, value) in entries {
                    let key: Arc<str> = match key {
                        Key::Text(t) => t.clone(),
                        Key::Expr(block) => {
                            let k = self.run_value(block, Slot::Key)?;
                            Arc::from(
                                super::ops::to_text(&k)
                                    .map_err(|e| EvalError::limit(at, e.message))?,
                            )
                        }
                    };
                    let value = self.run_value(value, Slot::Value)?;
                    map.insert(key, value);
                }
                self.push(Value::Object(Arc::new(map)), at)
            }
            NodeKind::Func(func) => self.push(Value::Func(func.clone()), at),
            NodeKind::Cond { then, otherwise } => {
                if self.available() == 0 {
                    return Err(EvalError::script(
                        at,
                        "`?` needs a condition value before it",
                    ));
                }
                let cond = self.stack.pop().unwrap_or(Value::Nil);
                self.run(if cond.is_truthy() { then } else { otherwise })
            }
        }
    }

    /// Calls an operator: pushes the parenthesised arguments, works out where
    /// its inputs start on the stack, runs it.
    pub fn call(
        &mut self,
        op: &'static OpSpec,
        args: Option<&[Block]>,
        at: usize,
    ) -> Result<(), EvalError> {
        if matches!(op.imp, Imp::IfError) {
            return Ok(());
        }
        let base = match args {
            Some(args) => {
                let height = self.stack.len();
                for (i, arg) in args.iter().enumerate() {
                    let value = self.run_value(arg, Slot::Argument(i, op.name))?;
                    self.push(value, at)?;
                }
                let under = op.stack_values_under_args(args.len());
                if height - self.floor < under {
                    return Err(self.underflow(
                        op,
                        under + args.len(),
                        height - self.floor + args.len(),
                        at,
                    ));
                }
                height - under
            }
            None => self.stack_base(op, at)?,
        };
        self.invoke(op, base, at)
    }

    /// Calls an operator with values already on the stack from `base` up
    /// (used by `call`).
    pub fn invoke(&mut self, op: &'static OpSpec, base: usize, at: usize) -> Result<(), EvalError> {
        // Operators scan their inputs (search, split, copy, look up), so a large
        // input costs fuel in proportion to its size, not just one step.
        let weight: usize = self.stack[base..]
            .iter()
            .map(|v| match v {
                Value::Str(s) => s.len() / FUEL_BYTES_PER_STEP,
                Value::Array(list) => list.len(),
                Value::Object(map) => map.len(),
                _ => 0,
            })
            .sum();
        if weight > 0 {
            self.charge(weight as u64, at)?;
        }
        match op.imp {
            Imp::Pure(f) => {
                let value = f(&self.stack[base..]).map_err(|e| {
                    let message = format!("`{}`: {}", op.name, e.message);
                    if e.limit {
                        EvalError::limit(at, message)
                    } else {
                        EvalError::script(at, message)
                    }
                })?;
                self.stack.truncate(base);
                self.push(value, at)
            }
            Imp::Machine(f) => f(self, base, at),
            Imp::Host => {
                let value = self.call_host(op.name, base, at)?;
                self.stack.truncate(base);
                self.push(value, at)
            }
            Imp::IfError => Ok(()),
        }
    }

    /// Where the inputs of a call without parentheses start.
    fn stack_base(&mut self, op: &'static OpSpec, at: usize) -> Result<usize, EvalError> {
        let available = self.available();
        let wanted = match op.params {
            Params::Exact(n) | Params::Optional(n, _) => op.inputs + n,
            Params::Greedy(max) => op.inputs + max.min(available.saturating_sub(op.inputs)),
            Params::Variadic(min) => {
                let base = self.take_mark();
                let count = self.stack.len() - base;
                if count < op.inputs + min {
                    return Err(self.underflow(op, op.inputs + min, count, at));
                }
                return Ok(base);
            }
        };
        if available < wanted {
            return Err(self.underflow(op, wanted, available, at));
        }
        Ok(self.stack.len() - wanted)
    }

    fn underflow(&self, op: &OpSpec, wanted: usize, found: usize, at: usize) -> EvalError {
        let plural = if wanted == 1 { "value" } else { "values" };
        EvalError::script(
            at,
            format!(
                "`{}` needs {wanted} {plural} on the stack, found {found}",
                op.name
            ),
        )
    }
}

fn is_if_error(node: &Node) -> bool {
    matches!(&node.kind, NodeKind::Call { op, .. } if matches!(op.imp, Imp::IfError))
}
