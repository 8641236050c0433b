//! ArrowScript: MonkScript's embedded concatenative language
//! (`<- $port 1 add`, `` <- `http://${host}:${port}` ``, `connection-hostname("db")`).
//!
//! [`parse`] turns a script into a [`Script`] (or a [`ParseError`] with line and
//! column); [`eval()`] runs it on a value stack against a set of variables and a
//! [`Host`] that supplies everything touching the world. The interpreter itself is
//! pure and deterministic: no clock, no randomness, no I/O. Every run is bounded
//! by the limits below, so a script can fail but never hang or crash the node.
//!
//! - [`lexer`], [`parser`]: text to tokens to a syntax tree, with byte offsets.
//! - [`value`]: the value type and its text, literal and JSON forms.
//! - [`mod@eval`]: the stack machine.
//! - [`ops`]: the operator table (name, aliases, signature, docs, example,
//!   implementation); `docs/arrowscript.md` is generated from it by [`mod@reference`].
//! - [`host`]: the [`Host`] trait, the offline host and a stub host for examples.
//! - [`cli`]: `monk eval`, as a library function.

pub mod cli;
pub mod eval;
pub mod host;
pub mod lexer;
pub mod ops;
pub mod parser;
pub mod reference;
pub mod value;

use thiserror::Error;

pub use eval::{eval, eval_metered, eval_with, EvalError, EvalErrorKind, Limits, VarMap, Vars};
pub use host::{Host, HostError, HostOp, OfflineHost, StubHost};
pub use parser::{has_arrow_prefix, parse, Script};
pub use value::Value;

/// Steps one evaluation may take (one per literal, variable and operator call,
/// plus one per element or [`FUEL_BYTES_PER_STEP`] bytes an operator produces).
/// The longest corpus script takes under 100 steps; 100k still lets `map` and
/// `filter` walk a few thousand elements and caps a run at a few milliseconds.
pub const FUEL_STEPS_MAX: u64 = 100_000;

/// Output bytes charged as one fuel step, so that building text costs fuel in
/// proportion to its size (1 MiB of output costs 4096 steps).
pub const FUEL_BYTES_PER_STEP: usize = 256;

/// Values visited by an equality test (`eq?`, `contains?` on arrays) per fuel
/// step. Comparing two JSON documents of a few thousand values costs a few
/// hundred steps; comparing huge shared structures runs out of fuel instead of
/// walking billions of values.
pub const COMPARE_VISITS_PER_STEP: u64 = 16;

/// Values on the stack at once. Real scripts keep under 20 (a `concat-all` of a
/// connection URL); 1024 leaves room for generated code while bounding memory.
pub const STACK_DEPTH_VALUES_MAX: usize = 1_024;

/// Largest string a script may build: 1 MiB, enough for a rendered config file
/// or an entity's JSON state, small enough to keep in the replicated state.
pub const STRING_BYTES_MAX: usize = 1 << 20;

/// Most elements in one array or entries in one object: 65,536, far above any
/// peer list or JSON document a kit reads, and bounded for memory.
pub const ARRAY_ITEMS_MAX: usize = 65_536;

/// Deepest nesting of arrays and objects in a value. Printing, comparing and
/// dropping values recurse, so this bounds native stack use; JSON from the
/// outside world rarely nests past 10.
pub const VALUE_NESTING_LEVELS_MAX: usize = 64;

/// Deepest nesting of evaluation: arguments inside arguments, function blocks
/// called from function blocks (`callf`, `map`, `filter`, `call`). Bounds the
/// interpreter's native recursion (a recursive `callf` stops here, not with a
/// stack overflow); corpus scripts nest at most 4 deep.
pub const EVAL_NESTING_LEVELS_MAX: usize = 128;

/// Deepest nesting of brackets, braces, parentheses and `${}` the parser
/// accepts; keeps the recursive-descent parser's native stack bounded.
pub const SYNTAX_NESTING_LEVELS_MAX: usize = 64;

/// Longest script text accepted: 256 KiB. The longest corpus script is about
/// 2 KiB; the bound keeps lexing and error rendering cheap.
pub const SCRIPT_BYTES_MAX: usize = 256 * 1024;

/// A script that does not parse: where (byte offset, 1-based line and column
/// counted in characters) and why.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("line {line}, col {col}: {message}")]
pub struct ParseError {
    pub offset: usize,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl ParseError {
    pub fn at(src: &str, offset: usize, message: impl Into<String>) -> ParseError {
        let (line, col) = line_col(src, offset);
        ParseError {
            offset,
            line,
            col,
            message: message.into(),
        }
    }
}

/// 1-based line and column (in characters) of a byte offset; offsets past the
/// end or inside a character are clamped.
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(src.len());
    while !src.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}
