//! ArrowScript lexer: turns script text into tokens that carry byte offsets.
//!
//! Literals are decoded here (numbers in all bases, bigints, floats, the two plain
//! string quotes with their escapes). A backtick template is lexed into text parts
//! and `${...}` parts, each holding the tokens of the embedded expression, so the
//! parser can treat an interpolation like any other expression.
//!
//! Names: an operator name starts with a letter or `_` and continues with
//! letters, digits, `-`, `_`, `?` and `!` (`contains?`, `nil?`). A variable is `$`
//! followed by a letter or `_`, then letters, digits, `-`, `_` or any other
//! non-ASCII character except whitespace (kebab and snake case both work).

use super::ParseError;
use super::SYNTAX_NESTING_LEVELS_MAX;

/// One token and the byte range it covers in the script.
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    pub kind: TokenKind,
    pub start: usize,
    pub end: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TokenKind {
    Int(i64),
    BigInt(i128),
    Float(f64),
    Str(String),
    Template(Vec<TemplatePart>),
    /// `$name`, without the `$`.
    Var(String),
    Name(String),
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    /// `<-{`, the start of a function block.
    FuncOpen,
    Comma,
    Colon,
    Question,
}

/// A piece of a backtick template.
#[derive(Clone, Debug, PartialEq)]
pub enum TemplatePart {
    Text(String),
    /// `${...}`: the tokens inside and the byte offset of the `$`.
    Expr(Vec<Token>, usize),
}

impl TokenKind {
    /// How the token reads in error messages.
    pub fn describe(&self) -> String {
        match self {
            TokenKind::Int(i) => format!("number {i}"),
            TokenKind::BigInt(i) => format!("number {i}n"),
            TokenKind::Float(f) => format!("number {f}"),
            TokenKind::Str(_) => "a string".to_string(),
            TokenKind::Template(_) => "a template string".to_string(),
            TokenKind::Var(v) => format!("`${v}`"),
            TokenKind::Name(n) => format!("`{n}`"),
            TokenKind::LParen => "`(`".to_string(),
            TokenKind::RParen => "`)`".to_string(),
            TokenKind::LBracket => "`[`".to_string(),
            TokenKind::RBracket => "`]`".to_string(),
            TokenKind::LBrace => "`{`".to_string(),
            TokenKind::RBrace => "`}`".to_string(),
            TokenKind::FuncOpen => "`<-{`".to_string(),
            TokenKind::Comma => "`,`".to_string(),
            TokenKind::Colon => "`:`".to_string(),
            TokenKind::Question => "`?`".to_string(),
        }
    }
}

/// Lexes a whole script body starting at byte `start` of `src`.
pub fn lex(src: &str, start: usize) -> Result<Vec<Token>, ParseError> {
    let mut lexer = Lexer { src, pos: start };
    lexer.tokens(None, 0)
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

fn is_name_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '-' | '_' | '?' | '!')
}

fn is_var_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '-' | '_') || (!c.is_ascii() && !c.is_whitespace())
}

impl<'a> Lexer<'a> {
    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn peek_at(&self, ahead: usize) -> Option<char> {
        self.src[self.pos..].chars().nth(ahead)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn error(&self, offset: usize, message: impl Into<String>) -> ParseError {
        ParseError::at(self.src, offset, message)
    }

    /// Lexes tokens until the end of input, or, inside `${`, until the `}` that
    /// closes it (`close_at` holds the offset of the `$` for error messages).
    fn tokens(
        &mut self,
        close_at: Option<usize>,
        nesting: usize,
    ) -> Result<Vec<Token>, ParseError> {
        if nesting > SYNTAX_NESTING_LEVELS_MAX {
            return Err(self.error(self.pos, "templates nest too deeply"));
        }
        let mut tokens = Vec::new();
        let mut braces = 0usize;
        loop {
            while self.peek().is_some_and(char::is_whitespace) {
                self.bump();
            }
            let start = self.pos;
            let Some(c) = self.peek() else {
                return match close_at {
                    Some(at) => Err(self.error(at, "`${` is never closed with `}`")),
                    None => Ok(tokens),
                };
            };
            let kind = match c {
                '(' => self.single(TokenKind::LParen),
                ')' => self.single(TokenKind::RParen),
                '[' => self.single(TokenKind::LBracket),
                ']' => self.single(TokenKind::RBracket),
                '{' => {
                    braces += 1;
                    self.single(TokenKind::LBrace)
                }
                '}' => {
                    if close_at.is_some() && braces == 0 {
                        self.bump();
                        return Ok(tokens);
                    }
                    braces = braces.saturating_sub(1);
                    self.single(TokenKind::RBrace)
                }
                ',' => self.single(TokenKind::Comma),
                ':' => self.single(TokenKind::Colon),
                '?' => self.single(TokenKind::Question),
                '<' if self.src[self.pos..].starts_with("<-{") => {
                    self.pos += 3;
                    braces += 1;
                    TokenKind::FuncOpen
                }
                '<' if self.src[self.pos..].starts_with("<-") => {
                    return Err(self.error(
                        start,
                        "`<-` may only start a script or a function block `<-{ ... }`",
                    ));
                }
                '"' | '\'' => {
                    self.bump();
                    TokenKind::Str(self.quoted(c, start)?)
                }
                '`' => {
                    self.bump();
                    TokenKind::Template(self.template(start, nesting)?)
                }
                '$' => {
                    self.bump();
                    if !self.peek().is_some_and(is_name_start) {
                        return Err(self.error(
                            start,
                            "`$` must be followed by a variable name, e.g. `$port`",
                        ));
                    }
                    let name_start = self.pos;
                    while self.peek().is_some_and(is_var_char) {
                        self.bump();
                    }
                    TokenKind::Var(self.src[name_start..self.pos].to_string())
                }
                '-' if self.peek_at(1).is_some_and(|d| d.is_ascii_digit()) => self.number()?,
                c if c.is_ascii_digit() => self.number()?,
                c if is_name_start(c) => {
                    while self.peek().is_some_and(is_name_char) {
                        self.bump();
                    }
                    TokenKind::Name(self.src[start..self.pos].to_string())
                }
                other => return Err(self.error(start, format!("unexpected character `{other}`"))),
            };
            tokens.push(Token {
                kind,
                start,
                end: self.pos,
            });
        }
    }

    fn single(&mut self, kind: TokenKind) -> TokenKind {
        self.bump();
        kind
    }

    fn number(&mut self) -> Result<TokenKind, ParseError> {
        let start = self.pos;
        let negative = self.peek() == Some('-');
        if negative {
            self.bump();
        }
        let digits_start = self.pos;
        let rest = &self.src[digits_start..];
        let radix = if rest.starts_with("0x") || rest.starts_with("0X") {
            16
        } else if rest.starts_with("0b") || rest.starts_with("0B") {
            2
        } else if rest.starts_with("0o") || rest.starts_with("0O") {
            8
        } else {
            10
        };
        let mut is_float = false;
        let digits: String;
        if radix != 10 {
            self.pos += 2;
            let from = self.pos;
            while self
                .peek()
                .is_some_and(|c| c.is_ascii_alphanumeric() && c != 'n')
            {
                self.bump();
            }
            digits = self.src[from..self.pos].to_string();
            if digits.is_empty() {
                return Err(self.error(start, "number prefix without digits"));
            }
        } else {
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.bump();
            }
            if self.peek() == Some('.') && self.peek_at(1).is_some_and(|c| c.is_ascii_digit()) {
                is_float = true;
                self.bump();
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.bump();
                }
            }
            if matches!(self.peek(), Some('e' | 'E')) {
                let save = self.pos;
                self.bump();
                if matches!(self.peek(), Some('+' | '-')) {
                    self.bump();
                }
                if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    is_float = true;
                    while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                        self.bump();
                    }
                } else {
                    self.pos = save;
                }
            }
            digits = self.src[digits_start..self.pos].to_string();
        }
        let big = !is_float && self.peek() == Some('n');
        if big {
            self.bump();
        }
        if self
            .peek()
            .is_some_and(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '$' | '-'))
        {
            while self
                .peek()
                .is_some_and(|c| !c.is_whitespace() && !"()[]{},:?".contains(c))
            {
                self.bump();
            }
            return Err(self.error(
                start,
                format!("invalid number `{}`", &self.src[start..self.pos]),
            ));
        }
        if is_float {
            let text = &self.src[start..self.pos];
            return match text.parse::<f64>() {
                Ok(f) if f.is_finite() => Ok(TokenKind::Float(f)),
                _ => Err(self.error(start, format!("float `{text}` is out of range"))),
            };
        }
        // A leading 0 followed by more digits is octal, as in `0777`.
        let (radix, digits) = if radix == 10 && digits.len() > 1 && digits.starts_with('0') {
            (8, digits[1..].to_string())
        } else {
            (radix, digits)
        };
        let magnitude = u128::from_str_radix(&digits, radix).map_err(|_| {
            let what = match radix {
                2 => "binary",
                8 => "octal",
                16 => "hex",
                _ => "decimal",
            };
            self.error(
                start,
                format!("invalid {what} number `{}`", &self.src[start..self.pos]),
            )
        });
        let magnitude = magnitude?;
        let value = if negative {
            0i128.checked_sub_unsigned(magnitude)
        } else {
            i128::try_from(magnitude).ok()
        };
        let text = &self.src[start..self.pos];
        let Some(value) = value else {
            return Err(self.error(start, format!("number `{text}` does not fit 128 bits")));
        };
        if big {
            return Ok(TokenKind::BigInt(value));
        }
        match i64::try_from(value) {
            Ok(v) => Ok(TokenKind::Int(v)),
            Err(_) => Err(self.error(
                start,
                format!("number `{text}` does not fit 64 bits; write `{text}n` for a bigint"),
            )),
        }
    }

    /// Reads one escape after a backslash (the backslash is consumed).
    fn escape(&mut self, backslash_at: usize) -> Result<char, ParseError> {
        let Some(c) = self.bump() else {
            return Err(self.error(backslash_at, "unfinished escape at end of script"));
        };
        Ok(match c {
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            '0' => '\0',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'v' => '\u{b}',
            '\\' | '"' | '\'' | '`' | '$' | '/' => c,
            'x' => {
                let hex: String = (0..2).filter_map(|_| self.bump()).collect();
                u8::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|b| b.is_ascii())
                    .map(char::from)
                    .ok_or_else(|| {
                        self.error(backslash_at, "`\\x` needs two hex digits below 80")
                    })?
            }
            'u' => {
                let code = if self.peek() == Some('{') {
                    self.bump();
                    let from = self.pos;
                    while self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                        self.bump();
                    }
                    let hex = self.src[from..self.pos].to_string();
                    if self.bump() != Some('}') {
                        return Err(self.error(backslash_at, "`\\u{` needs hex digits and `}`"));
                    }
                    hex
                } else {
                    (0..4).filter_map(|_| self.bump()).collect()
                };
                u32::from_str_radix(&code, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or_else(|| self.error(backslash_at, "invalid `\\u` escape"))?
            }
            other => {
                return Err(self.error(
                    backslash_at,
                    format!("unknown escape `\\{other}` (write `\\\\` for a backslash)"),
                ))
            }
        })
    }

    fn quoted(&mut self, quote: char, start: usize) -> Result<String, ParseError> {
        let mut text = String::new();
        loop {
            let at = self.pos;
            match self.bump() {
                None => {
                    return Err(self.error(start, format!("string is never closed with {quote}")))
                }
                Some(c) if c == quote => return Ok(text),
                Some('\\') => text.push(self.escape(at)?),
                Some(c) => text.push(c),
            }
        }
    }

    fn template(&mut self, start: usize, nesting: usize) -> Result<Vec<TemplatePart>, ParseError> {
        let mut parts = Vec::new();
        let mut text = String::new();
        loop {
            let at = self.pos;
            match self.bump() {
                None => return Err(self.error(start, "template string is never closed with `")),
                Some('`') => break,
                Some('\\') => text.push(self.escape(at)?),
                Some('$') if self.peek() == Some('{') => {
                    self.bump();
                    if !text.is_empty() {
                        parts.push(TemplatePart::Text(std::mem::take(&mut text)));
                    }
                    let tokens = self.tokens(Some(at), nesting + 1)?;
                    if tokens.is_empty() {
                        return Err(self.error(at, "empty `${}` in template"));
                    }
                    parts.push(TemplatePart::Expr(tokens, at));
                }
                Some(c) => text.push(c),
            }
        }
        if !text.is_empty() {
            parts.push(TemplatePart::Text(text));
        }
        Ok(parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<TokenKind> {
        lex(src, 0).unwrap().into_iter().map(|t| t.kind).collect()
    }

    #[test]
    fn numbers_in_every_base() {
        use TokenKind::*;
        assert_eq!(
            kinds("0b11 0xff 0777 -1337 0 123n 0.1 -0.4e2 1e3 -0x10"),
            vec![
                Int(3),
                Int(255),
                Int(511),
                Int(-1337),
                Int(0),
                BigInt(123),
                Float(0.1),
                Float(-40.0),
                Float(1000.0),
                Int(-16)
            ]
        );
    }

    #[test]
    fn bad_numbers_fail_with_position() {
        let err = lex("1 08", 0).unwrap_err();
        assert_eq!(
            (err.col, err.message.as_str()),
            (3, "invalid octal number `08`")
        );
        assert!(lex("99999999999999999999", 0)
            .unwrap_err()
            .message
            .contains("write `99999999999999999999n`"));
        assert!(lex("3000abc", 0)
            .unwrap_err()
            .message
            .contains("invalid number"));
    }

    #[test]
    fn names_vars_and_punctuation() {
        use TokenKind::*;
        assert_eq!(
            kinds("$db_host $a-b nil? contains?(\"x\") ? : <-{ }"),
            vec![
                Var("db_host".into()),
                Var("a-b".into()),
                Name("nil?".into()),
                Name("contains?".into()),
                LParen,
                Str("x".into()),
                RParen,
                Question,
                Colon,
                FuncOpen,
                RBrace
            ]
        );
    }

    #[test]
    fn templates_hold_expression_tokens() {
        let tokens = kinds("`a ${b} ${f(\"}\")} \\${c}`");
        let [TokenKind::Template(parts)] = tokens.as_slice() else {
            panic!("{tokens:?}")
        };
        assert_eq!(parts.len(), 5);
        assert_eq!(parts[4], TemplatePart::Text(" ${c}".into()));
        let TemplatePart::Expr(inner, at) = &parts[3] else {
            panic!()
        };
        assert_eq!(*at, 8);
        assert_eq!(inner.len(), 4);
    }

    #[test]
    fn unclosed_things_point_at_their_start() {
        assert_eq!(lex("1 \"abc", 0).unwrap_err().col, 3);
        assert_eq!(lex("`a ${b", 0).unwrap_err().col, 4);
        assert_eq!(
            lex("'\\q'", 0).unwrap_err().message,
            "unknown escape `\\q` (write `\\\\` for a backslash)"
        );
    }
}
