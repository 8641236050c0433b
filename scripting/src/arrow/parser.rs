//! ArrowScript parser: tokens to a syntax tree of [`Node`]s with byte offsets.
//!
//! Grammar (a script is a sequence; values and operator calls run left to right):
//!
//! ```text
//! script   = ["<-"] seq
//! seq      = item* ["?" seq ":" seq]        cond ? a : b, branches run to the end of the seq
//! item     = literal | "$"var index* | name ["(" [seq ("," seq)* [","]] ")"]
//!          | "[" [seq ("," seq)* [","]] "]" | "{" [key ":" seq ("," ...)* [","]] "}"
//!          | "<-{" seq "}" | template
//! index    = "[" seq "]"                      directly after the variable, no space
//! key      = string | name | number | $var | template
//! ```
//!
//! Operator names are resolved against the operator table while parsing, so an
//! unknown operator is a parse error with its position (what a linter wants).
//! Every argument, array element, object value, index and `${...}` is a seq that
//! must leave exactly one value; that is checked when it runs.
//!
//! Inside `${...}` a leading bare name is a variable (`${db-host}`, JavaScript
//! style), unless it is called with parentheses (`${secret("x")}`).

use std::sync::Arc;

use super::lexer::{lex, TemplatePart, Token, TokenKind};
use super::ops::{self, OpSpec};
use super::value::{Func, List, Map, Value};
use super::{ParseError, SCRIPT_BYTES_MAX, SYNTAX_NESTING_LEVELS_MAX};

/// A parsed script: the source text and the top-level sequence.
#[derive(Clone, Debug)]
pub struct Script {
    source: Arc<str>,
    body: Block,
}

/// A sequence of nodes, run left to right on one stack.
pub type Block = Vec<Node>;

/// One element of a script, with the byte offset where it starts.
#[derive(Clone, Debug)]
pub struct Node {
    pub at: usize,
    pub kind: NodeKind,
}

#[derive(Clone, Debug)]
pub enum NodeKind {
    /// A literal, or an array/object literal made only of literals.
    Push(Value),
    Template(Vec<Part>),
    Var {
        name: Arc<str>,
        index: Vec<Block>,
    },
    Call {
        op: &'static OpSpec,
        args: Option<Vec<Block>>,
    },
    Array(Vec<Block>),
    Object(Vec<(Key, Block)>),
    Func(Arc<Func>),
    /// `? then : otherwise`: pops the condition pushed by the nodes before it.
    Cond {
        then: Block,
        otherwise: Block,
    },
}

#[derive(Clone, Debug)]
pub enum Part {
    Text(Arc<str>),
    Expr(Block),
}

#[derive(Clone, Debug)]
pub enum Key {
    Text(Arc<str>),
    Expr(Block),
}

impl Script {
    /// The text the script was parsed from (including any `<-`).
    pub fn source(&self) -> &str {
        &self.source
    }
    pub fn body(&self) -> &Block {
        &self.body
    }

    /// The variables read with `$name` or `${name}`, in order of first use,
    /// without duplicates. `var("x")` is dynamic and not listed. Lets a caller
    /// order variable resolution and find cycles before evaluating.
    pub fn variables(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        visit(&self.body, &mut |node| {
            if let NodeKind::Var { name, .. } = &node.kind {
                if !names.contains(&&**name) {
                    names.push(name);
                }
            }
        });
        names
    }

    /// Canonical names of the operators the script calls, in order of first
    /// use, without duplicates.
    pub fn operators(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = Vec::new();
        visit(&self.body, &mut |node| {
            if let NodeKind::Call { op, .. } = &node.kind {
                if !names.contains(&op.name) {
                    names.push(op.name);
                }
            }
        });
        names
    }

    /// Whether the script calls a host operator (so it cannot run offline).
    pub fn needs_host(&self) -> bool {
        self.operators()
            .iter()
            .any(|name| ops::lookup(name).is_some_and(OpSpec::is_host))
    }
}

/// Calls `f` on every node, nested ones included.
fn visit<'s>(block: &'s Block, f: &mut dyn FnMut(&'s Node)) {
    for node in block {
        f(node);
        match &node.kind {
            NodeKind::Push(_) => {}
            NodeKind::Template(parts) => {
                for part in parts {
                    if let Part::Expr(inner) = part {
                        visit(inner, f);
                    }
                }
            }
            NodeKind::Var { index, .. } => index.iter().for_each(|b| visit(b, f)),
            NodeKind::Call { args, .. } => args.iter().flatten().for_each(|b| visit(b, f)),
            NodeKind::Array(items) => items.iter().for_each(|b| visit(b, f)),
            NodeKind::Object(entries) => {
                for (key, value) in entries {
                    if let Key::Expr(inner) = key {
                        visit(inner, f);
                    }
                    visit(value, f);
                }
            }
            NodeKind::Func(func) => visit(&func.body, f),
            NodeKind::Cond { then, otherwise } => {
                visit(then, f);
                visit(otherwise, f);
            }
        }
    }
}

/// Whether a YAML scalar is an ArrowScript (`<-` after optional whitespace).
/// Fields that hold code (`checks.readiness.code`, `actions.*.code`,
/// `scale.value`) are scripts without the prefix; there a leading `<-` means
/// the script computes the code text, which is then run (per the MonkScript
/// reference), so the caller evaluates it first and parses the result.
pub fn has_arrow_prefix(text: &str) -> bool {
    let trimmed = text.trim_start();
    trimmed.starts_with("<-") && !trimmed.starts_with("<-{")
}

/// Parses one script, with or without the leading `<-` (checks, actions and
/// `scale.value` are written without it). `<-{` at the start is a function
/// literal, not a prefix.
pub fn parse(text: &str) -> Result<Script, ParseError> {
    if text.len() > SCRIPT_BYTES_MAX {
        return Err(ParseError::at(
            text,
            0,
            format!("script is longer than {SCRIPT_BYTES_MAX} bytes"),
        ));
    }
    let trimmed = text.trim_start();
    let mut start = text.len() - trimmed.len();
    if has_arrow_prefix(text) {
        start += 2;
    }
    let tokens = lex(text, start)?;
    let mut parser = Parser {
        src: text,
        tokens: &tokens,
        pos: 0,
        depth: 0,
    };
    let body = parser.seq()?;
    if let Some(token) = parser.peek() {
        return Err(parser.unexpected(token));
    }
    if body.is_empty() {
        return Err(ParseError::at(text, start, "empty script"));
    }
    Ok(Script {
        source: Arc::from(text),
        body,
    })
}

struct Parser<'a> {
    src: &'a str,
    tokens: &'a [Token],
    pos: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&'a Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<&'a Token> {
        let token = self.tokens.get(self.pos)?;
        self.pos += 1;
        Some(token)
    }

    fn error(&self, offset: usize, message: impl Into<String>) -> ParseError {
        ParseError::at(self.src, offset, message)
    }

    fn unexpected(&self, token: &Token) -> ParseError {
        self.error(token.start, format!("unexpected {}", token.kind.describe()))
    }

    /// Offset for "missing" errors: the next token, or the end of the tokens.
    fn here(&self) -> usize {
        self.peek().map_or_else(
            || self.tokens.last().map_or(self.src.len(), |t| t.end),
            |t| t.start,
        )
    }

    fn expect(
        &mut self,
        kind: &TokenKind,
        what: &str,
        opened_at: usize,
    ) -> Result<&'a Token, ParseError> {
        match self.peek() {
            Some(token) if &token.kind == kind => {
                self.pos += 1;
                Ok(token)
            }
            Some(token) => Err(self.error(
                token.start,
                format!("expected {what}, found {}", token.kind.describe()),
            )),
            None => Err(self.error(opened_at, format!("{what} is missing"))),
        }
    }

    fn enter(&mut self, at: usize) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > SYNTAX_NESTING_LEVELS_MAX {
            return Err(self.error(
                at,
                format!("script nests deeper than {SYNTAX_NESTING_LEVELS_MAX} levels"),
            ));
        }
        Ok(())
    }

    /// A sequence, up to a closing token, `,`, `:` or the end.
    fn seq(&mut self) -> Result<Block, ParseError> {
        self.enter(self.here())?;
        let mut nodes = Vec::new();
        while let Some(token) = self.peek() {
            match token.kind {
                TokenKind::RParen
                | TokenKind::RBracket
                | TokenKind::RBrace
                | TokenKind::Comma
                | TokenKind::Colon => break,
                TokenKind::Question => {
                    self.pos += 1;
                    if nodes.is_empty() {
                        return Err(self.error(token.start, "`?` needs a condition before it"));
                    }
                    let then = self.seq()?;
                    self.expect(&TokenKind::Colon, "`:` of `cond ? a : b`", token.start)?;
                    let otherwise = self.seq()?;
                    if then.is_empty() || otherwise.is_empty() {
                        return Err(
                            self.error(token.start, "both branches of `cond ? a : b` need a value")
                        );
                    }
                    nodes.push(Node {
                        at: token.start,
                        kind: NodeKind::Cond { then, otherwise },
                    });
                    break;
                }
                _ => nodes.push(self.item()?),
            }
        }
        self.depth -= 1;
        Ok(nodes)
    }

    /// A seq used as one value (argument, element, object value, index).
    fn value_seq(&mut self, opened_at: usize) -> Result<Block, ParseError> {
        let block = self.seq()?;
        if block.is_empty() {
            return Err(self.error(self.here().max(opened_at), "expected a value here"));
        }
        Ok(block)
    }

    /// `seq ("," seq)* [","]` up to `close`; the opening token is consumed.
    fn list(
        &mut self,
        close: &TokenKind,
        what: &str,
        opened_at: usize,
    ) -> Result<Vec<Block>, ParseError> {
        let mut items = Vec::new();
        loop {
            if self.peek().is_some_and(|t| &t.kind == close) {
                self.pos += 1;
                return Ok(items);
            }
            items.push(self.value_seq(opened_at)?);
            match self.next() {
                Some(t) if t.kind == TokenKind::Comma => {}
                Some(t) if &t.kind == close => return Ok(items),
                Some(t) => {
                    return Err(self.error(
                        t.start,
                        format!("expected `,` or {what}, found {}", t.kind.describe()),
                    ))
                }
                None => return Err(self.error(opened_at, format!("{what} is missing"))),
            }
        }
    }

    fn item(&mut self) -> Result<Node, ParseError> {
        let Some(token) = self.next() else {
            return Err(self.error(self.src.len(), "unexpected end of script"));
        };
        let at = token.start;
        let kind = match &token.kind {
            TokenKind::Int(i) => NodeKind::Push(Value::Int(*i)),
            TokenKind::BigInt(i) => NodeKind::Push(Value::BigInt(*i)),
            TokenKind::Float(f) => NodeKind::Push(Value::Float(*f)),
            TokenKind::Str(s) => NodeKind::Push(Value::str(s)),
            TokenKind::Template(parts) => self.template(parts, at)?,
            TokenKind::Var(name) => self.variable(name, token)?,
            TokenKind::Name(name) => match name.as_str() {
                "nil" | "null" => NodeKind::Push(Value::Nil),
                "true" => NodeKind::Push(Value::Bool(true)),
                "false" => NodeKind::Push(Value::Bool(false)),
                _ => self.call(name, token)?,
            },
            TokenKind::LBracket => {
                self.enter(at)?;
                let items = self.list(&TokenKind::RBracket, "`]`", at)?;
                self.depth -= 1;
                fold_array(items)
            }
            TokenKind::LBrace => self.object(at)?,
            TokenKind::FuncOpen => {
                let body = self.seq()?;
                let close = self.expect(&TokenKind::RBrace, "`}` closing `<-{`", at)?;
                let source = Arc::from(&self.src[at..close.end]);
                NodeKind::Func(Arc::new(Func { body, source }))
            }
            _ => return Err(self.unexpected(token)),
        };
        Ok(Node { at, kind })
    }

    fn variable(&mut self, name: &str, token: &Token) -> Result<NodeKind, ParseError> {
        let mut index = Vec::new();
        let mut end = token.end;
        while let Some(next) = self.peek() {
            if next.kind != TokenKind::LBracket || next.start != end {
                break;
            }
            self.pos += 1;
            let key = self.value_seq(next.start)?;
            end = self.expect(&TokenKind::RBracket, "`]`", next.start)?.end;
            index.push(key);
        }
        Ok(NodeKind::Var {
            name: Arc::from(name),
            index,
        })
    }

    fn call(&mut self, name: &str, token: &Token) -> Result<NodeKind, ParseError> {
        let Some(op) = ops::lookup(name) else {
            return Err(self.error(token.start, format!("unknown operator `{name}`")));
        };
        let args = match self.peek() {
            Some(open) if open.kind == TokenKind::LParen => {
                self.pos += 1;
                self.enter(open.start)?;
                let args = self.list(&TokenKind::RParen, "`)`", open.start)?;
                self.depth -= 1;
                if let Err(message) = op.check_arg_count(args.len()) {
                    return Err(self.error(token.start, message));
                }
                Some(args)
            }
            _ => None,
        };
        if op.needs_parens() && args.is_none() {
            return Err(self.error(
                token.start,
                format!("`{name}` needs its argument in parentheses: {name}(...)"),
            ));
        }
        Ok(NodeKind::Call { op, args })
    }

    fn object(&mut self, at: usize) -> Result<NodeKind, ParseError> {
        self.enter(at)?;
        let mut entries = Vec::new();
        loop {
            let Some(token) = self.next() else {
                return Err(self.error(at, "`}` closing the object is missing"));
            };
            let key = match &token.kind {
                TokenKind::RBrace
                    if entries.is_empty() || self.tokens[self.pos - 2].kind == TokenKind::Comma =>
                {
                    break
                }
                TokenKind::Str(s) | TokenKind::Name(s) => Key::Text(Arc::from(s.as_str())),
                TokenKind::Int(i) => Key::Text(Arc::from(i.to_string())),
                TokenKind::BigInt(i) => Key::Text(Arc::from(i.to_string())),
                TokenKind::Var(name) => {
                    let kind = self.variable(name, token)?;
                    Key::Expr(vec![Node {
                        at: token.start,
                        kind,
                    }])
                }
                TokenKind::Template(parts) => Key::Expr(vec![Node {
                    at: token.start,
                    kind: self.template(parts, token.start)?,
                }]),
                _ => {
                    return Err(self.error(
                        token.start,
                        format!("expected an object key, found {}", token.kind.describe()),
                    ))
                }
            };
            self.expect(&TokenKind::Colon, "`:` after the object key", token.start)?;
            let value = self.value_seq(token.start)?;
            entries.push((key, value));
            match self.next() {
                Some(t) if t.kind == TokenKind::Comma => {}
                Some(t) if t.kind == TokenKind::RBrace => break,
                Some(t) => {
                    return Err(self.error(
                        t.start,
                        format!("expected `,` or `}}`, found {}", t.kind.describe()),
                    ))
                }
                None => return Err(self.error(at, "`}` closing the object is missing")),
            }
        }
        self.depth -= 1;
        Ok(fold_object(entries))
    }

    fn template(&mut self, parts: &[TemplatePart], at: usize) -> Result<NodeKind, ParseError> {
        self.enter(at)?;
        let mut out = Vec::with_capacity(parts.len());
        for part in parts {
            match part {
                TemplatePart::Text(text) => out.push(Part::Text(Arc::from(text.as_str()))),
                TemplatePart::Expr(tokens, expr_at) => {
                    let mut inner = Parser {
                        src: self.src,
                        tokens,
                        pos: 0,
                        depth: self.depth,
                    };
                    let block = inner.interpolation(*expr_at)?;
                    out.push(Part::Expr(block));
                }
            }
        }
        self.depth -= 1;
        if let [Part::Text(text)] = out.as_slice() {
            return Ok(NodeKind::Push(Value::Str(text.clone())));
        }
        if out.is_empty() {
            return Ok(NodeKind::Push(Value::str("")));
        }
        Ok(NodeKind::Template(out))
    }

    /// The inside of `${...}`: a bare leading name is a variable.
    fn interpolation(&mut self, at: usize) -> Result<Block, ParseError> {
        let mut block = Vec::new();
        if let Some(first) = self.peek() {
            if let TokenKind::Name(name) = &first.kind {
                let called = self
                    .tokens
                    .get(1)
                    .is_some_and(|t| t.kind == TokenKind::LParen);
                if !called && !matches!(name.as_str(), "nil" | "null" | "true" | "false") {
                    self.pos += 1;
                    let kind = self.variable(name, first)?;
                    block.push(Node {
                        at: first.start,
                        kind,
                    });
                }
            }
        }
        block.extend(self.seq()?);
        if let Some(token) = self.peek() {
            return Err(self.unexpected(token));
        }
        if block.is_empty() {
            return Err(self.error(at, "empty `${}` in template"));
        }
        Ok(block)
    }
}

fn as_constant(block: &Block) -> Option<&Value> {
    match block.as_slice() {
        [Node {
            kind: NodeKind::Push(value),
            ..
        }] => Some(value),
        _ => None,
    }
}

/// An array literal of constants becomes one constant.
fn fold_array(items: Vec<Block>) -> NodeKind {
    if items.iter().all(|b| as_constant(b).is_some()) {
        let values = items.iter().filter_map(as_constant).cloned().collect();
        return NodeKind::Push(Value::Array(Arc::new(List::new(values))));
    }
    NodeKind::Array(items)
}

/// An object literal with text keys and constant values becomes one constant.
fn fold_object(entries: Vec<(Key, Block)>) -> NodeKind {
    let constant = entries
        .iter()
        .all(|(k, v)| matches!(k, Key::Text(_)) && as_constant(v).is_some());
    if constant {
        let mut map = Map::new();
        for (key, value) in &entries {
            if let (Key::Text(k), Some(v)) = (key, as_constant(value)) {
                map.insert(k.clone(), v.clone());
            }
        }
        return NodeKind::Push(Value::Object(Arc::new(map)));
    }
    NodeKind::Object(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(src: &str) -> String {
        let script = parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        script
            .body
            .iter()
            .map(describe)
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn describe(node: &Node) -> String {
        match &node.kind {
            NodeKind::Push(v) => v.to_literal(),
            NodeKind::Template(parts) => format!("tpl{}", parts.len()),
            NodeKind::Var { name, index } => format!("${name}{}", "[]".repeat(index.len())),
            NodeKind::Call { op, args } => match args {
                Some(a) => format!("{}/{}", op.name, a.len()),
                None => op.name.to_string(),
            },
            NodeKind::Array(items) => format!("arr{}", items.len()),
            NodeKind::Object(entries) => format!("obj{}", entries.len()),
            NodeKind::Func(f) => format!("fn{}", f.body.len()),
            NodeKind::Cond { then, otherwise } => format!("?{}:{}", then.len(), otherwise.len()),
        }
    }

    #[test]
    fn prefix_is_optional() {
        assert_eq!(shape("<- $port 1 add"), "$port 1 add");
        assert_eq!(shape("$port add(1)"), "$port add/1");
        assert_eq!(shape("  <-{ 1 add } callf"), "fn2 callf");
    }

    #[test]
    fn literals_fold() {
        assert_eq!(
            shape(r#"[1, "foo", []] {"a": 1, b: 2}"#),
            r#"[1, "foo", []] {"a": 1, "b": 2}"#
        );
        assert_eq!(shape("{$k: 4} [$x]"), "obj1 arr1");
    }

    #[test]
    fn ternary_branches_run_to_the_end() {
        assert_eq!(shape(r#"$debug ? "debug" : "info""#), "$debug ?1:1");
        assert_eq!(shape("$a ? $b ? 1 : 2 : 3"), "$a ?2:1");
        assert_eq!(shape("first([$a ? 1 : 2])"), "first/1");
    }

    #[test]
    fn interpolation_reads_bare_names_as_variables() {
        let script = parse(r#"`${db-host}:${args["port"]}/${secret("x") trim}`"#).unwrap();
        let NodeKind::Template(parts) = &script.body[0].kind else {
            panic!()
        };
        let names: Vec<String> = parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.to_string(),
                Part::Expr(b) => b.iter().map(describe).collect::<Vec<_>>().join(" "),
            })
            .collect();
        assert_eq!(
            names,
            vec!["$db-host", ":", "$args[]", "/", "secret/1 trim"]
        );
    }

    #[test]
    fn errors_have_positions() {
        let cases = [
            ("$a frobnicate", 4, "unknown operator `frobnicate`"),
            ("concat(1, , 2)", 11, "expected a value here"),
            ("1 )", 3, "unexpected `)`"),
            ("[1, 2", 1, "`]` is missing"),
            ("$a ? 1", 4, "`:` of `cond ? a : b` is missing"),
            ("<-", 3, "empty script"),
            (
                "add(1, 2, 3)",
                1,
                "`add` takes at most 2 arguments in parentheses, got 3",
            ),
            (
                "<- 1 <- 2",
                6,
                "`<-` may only start a script or a function block `<-{ ... }`",
            ),
        ];
        for (src, col, message) in cases {
            let err = parse(src).unwrap_err();
            assert_eq!((err.col, err.message.as_str()), (col, message), "{src}");
        }
    }

    #[test]
    fn lists_variables_and_operators() {
        let script =
            parse(r#"`${db-host}:${port}` $db-host [$args["x"] secret] map(<-{ $y concat })"#)
                .unwrap();
        assert_eq!(script.variables(), vec!["db-host", "port", "args", "y"]);
        assert_eq!(script.operators(), vec!["secret", "map", "concat"]);
        assert!(script.needs_host());
        assert!(!parse("$a 1 add").unwrap().needs_host());
        assert!(
            has_arrow_prefix("  <- 1") && !has_arrow_prefix("<-{ 1 }") && !has_arrow_prefix("1")
        );
    }

    #[test]
    fn scripts_can_be_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Script>();
        assert_send_sync::<Value>();
        let script = parse("$a 1 add").unwrap();
        let copy = script.clone();
        assert_eq!(
            std::thread::spawn(move || copy.source().len())
                .join()
                .unwrap(),
            script.source().len()
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "[".repeat(10_000);
        assert!(parse(&deep).unwrap_err().message.contains("nests deeper"));
        let deep_tpl = "`${".repeat(5_000);
        assert!(parse(&deep_tpl).is_err());
    }
}
