//! The condition language: lexer and parser.
//!
//! ```text
//! condition := or
//! or        := and ("or" and)*
//! and       := unary ("and" unary)*
//! unary     := "not" unary | primary
//! primary   := "(" or ")" | "true" | "false" | term [test]
//! term      := NAME [ "(" [arg ("," arg)*] ")" ]
//! test      := ("<" | "<=" | ">" | ">=" | "=" | "!=") (NUMBER | NAME)
//!            | ["not"] "in" "[" NAME ("," NAME)* "]"
//! ```
//!
//! Names are lower-case words joined by `-` (`spasticity-severity`). The parser only builds the
//! tree; what a name means (a fact, a derived fact, a built-in predicate) and whether the test
//! fits its type is checked when the rule set is compiled.
//!
//! A condition may nest at most [`MAX_NESTING`] levels (each `(` and each `not` is one), so that
//! no rule file, however written, can exhaust the stack of the parser or of anything that walks
//! the tree after it.

use std::fmt;
use std::ops::Range;

/// A name with its byte range in the condition text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Name {
    pub text: String,
    pub span: Range<usize>,
}

/// An argument of a call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg {
    Name(Name),
    Number(f64, Range<usize>),
}

impl Arg {
    pub fn span(&self) -> Range<usize> {
        match self {
            Arg::Name(n) => n.span.clone(),
            Arg::Number(_, s) => s.clone(),
        }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum CmpOp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl CmpOp {
    pub fn holds(self, a: f64, b: f64) -> bool {
        match self {
            CmpOp::Lt => a < b,
            CmpOp::Le => a <= b,
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b,
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
        }
    }

    /// Whether the comparison holds for every number of an interval (`Some(true)`), for none
    /// (`Some(false)`), or for some only (`None`).
    pub fn decides(self, i: &pathway_core::Interval, b: f64) -> Option<bool> {
        let not = |x: Option<bool>| x.map(|v| !v);
        match self {
            CmpOp::Lt => i.decides_lt(b),
            CmpOp::Le => i.decides_le(b),
            CmpOp::Gt => not(i.decides_le(b)),
            CmpOp::Ge => not(i.decides_lt(b)),
            CmpOp::Eq => i.decides_eq(b),
            CmpOp::Ne => not(i.decides_eq(b)),
        }
    }
}

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
        })
    }
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Number(f64),
    Name(Name),
}

/// A parsed condition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ast {
    Bool(bool),
    /// A name or call with no test: a boolean fact, derived fact or predicate.
    Term {
        name: Name,
        args: Option<Vec<Arg>>,
    },
    Compare {
        name: Name,
        args: Option<Vec<Arg>>,
        op: CmpOp,
        value: Value,
        value_span: Range<usize>,
    },
    In {
        name: Name,
        args: Option<Vec<Arg>>,
        negated: bool,
        values: Vec<Name>,
    },
    Not(Box<Ast>),
    And(Vec<Ast>),
    Or(Vec<Ast>),
}

/// A syntax error with its byte range in the condition text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub message: String,
    pub span: Range<usize>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Name(String),
    Number(f64),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Op(CmpOp),
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Name(n) => write!(f, "`{n}`"),
            Tok::Number(n) => write!(f, "number {n}"),
            Tok::LParen => f.write_str("`(`"),
            Tok::RParen => f.write_str("`)`"),
            Tok::LBracket => f.write_str("`[`"),
            Tok::RBracket => f.write_str("`]`"),
            Tok::Comma => f.write_str("`,`"),
            Tok::Op(op) => write!(f, "`{op}`"),
        }
    }
}

fn lex(src: &str) -> Result<Vec<(Tok, Range<usize>)>, SyntaxError> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = bytes.get(i) {
        let start = i;
        let single = |t: Tok| (t, start..start + 1);
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'(' => out.push(single(Tok::LParen)),
            b')' => out.push(single(Tok::RParen)),
            b'[' => out.push(single(Tok::LBracket)),
            b']' => out.push(single(Tok::RBracket)),
            b',' => out.push(single(Tok::Comma)),
            b'<' | b'>' | b'=' | b'!' => {
                let eq = bytes.get(i + 1) == Some(&b'=');
                let op = match (c, eq) {
                    (b'<', true) => CmpOp::Le,
                    (b'<', false) => CmpOp::Lt,
                    (b'>', true) => CmpOp::Ge,
                    (b'>', false) => CmpOp::Gt,
                    (b'!', true) => CmpOp::Ne,
                    (b'=', _) => CmpOp::Eq,
                    _ => {
                        return Err(SyntaxError {
                            message: "`!` must be followed by `=`; write `not` for negation".into(),
                            span: start..start + 1,
                        });
                    }
                };
                // `==` is accepted as `=`.
                let len = if eq { 2 } else { 1 };
                out.push((Tok::Op(op), start..start + len));
                i += len;
                continue;
            }
            b'0'..=b'9' | b'-' | b'.' => {
                let mut j = i + 1;
                while bytes
                    .get(j)
                    .is_some_and(|b| b.is_ascii_digit() || *b == b'.')
                {
                    j += 1;
                }
                let text = src.get(i..j).unwrap_or_default();
                let n: f64 = text.parse().map_err(|_| SyntaxError {
                    message: format!("`{text}` is not a number"),
                    span: i..j,
                })?;
                out.push((Tok::Number(n), i..j));
                i = j;
                continue;
            }
            b'a'..=b'z' | b'A'..=b'Z' => {
                let mut j = i + 1;
                while bytes
                    .get(j)
                    .is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
                {
                    j += 1;
                }
                let text = src.get(i..j).unwrap_or_default();
                out.push((Tok::Name(text.to_owned()), i..j));
                i = j;
                continue;
            }
            _ => {
                let ch = src.get(i..).and_then(|s| s.chars().next()).unwrap_or('?');
                return Err(SyntaxError {
                    message: format!("unexpected character `{ch}`"),
                    span: i..i + ch.len_utf8(),
                });
            }
        }
        i += 1;
    }
    Ok(out)
}

const KEYWORDS: [&str; 6] = ["and", "or", "not", "in", "true", "false"];

/// How deeply a condition may nest: each `(` and each `not` opens a level. Far above anything a
/// person writes (the shipped rule set nests 3 deep); what needs more belongs in derived facts.
pub(crate) const MAX_NESTING: usize = 64;

struct Parser {
    toks: Vec<(Tok, Range<usize>)>,
    pos: usize,
    end: usize,
    /// Levels open at the current token.
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }

    fn span_here(&self) -> Range<usize> {
        self.toks
            .get(self.pos)
            .map_or(self.end..self.end, |(_, s)| s.clone())
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Name(n)) if n == w)
    }

    fn bump(&mut self) -> Option<(Tok, Range<usize>)> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn error<T>(&self, expected: &str) -> Result<T, SyntaxError> {
        let found = self
            .peek()
            .map_or_else(|| "the end of the condition".to_owned(), Tok::to_string);
        Err(SyntaxError {
            message: format!("expected {expected}, found {found}"),
            span: self.span_here(),
        })
    }

    /// Opens a level for the token at the cursor (`(` or `not`), refusing past [`MAX_NESTING`].
    fn open(&mut self) -> Result<(), SyntaxError> {
        if self.depth >= MAX_NESTING {
            return Err(SyntaxError {
                message: format!(
                    "the condition nests more than {MAX_NESTING} levels deep (each `(` and `not` is a level); name parts of it as derived facts"
                ),
                span: self.span_here(),
            });
        }
        self.depth += 1;
        Ok(())
    }

    fn eat(&mut self, tok: &Tok, what: &str) -> Result<Range<usize>, SyntaxError> {
        if self.peek() == Some(tok) {
            Ok(self.bump().map(|(_, s)| s).unwrap_or_default())
        } else {
            self.error(what)
        }
    }

    fn or(&mut self) -> Result<Ast, SyntaxError> {
        let mut items = vec![self.and()?];
        while self.is_word("or") {
            self.bump();
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.pop().unwrap_or(Ast::Bool(false))
        } else {
            Ast::Or(items)
        })
    }

    fn and(&mut self) -> Result<Ast, SyntaxError> {
        let mut items = vec![self.unary()?];
        while self.is_word("and") {
            self.bump();
            items.push(self.unary()?);
        }
        Ok(if items.len() == 1 {
            items.pop().unwrap_or(Ast::Bool(true))
        } else {
            Ast::And(items)
        })
    }

    fn unary(&mut self) -> Result<Ast, SyntaxError> {
        if self.is_word("not") {
            self.open()?;
            self.bump();
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Ast::Not(Box::new(inner)));
        }
        self.primary()
    }

    fn name(&mut self, what: &str) -> Result<Name, SyntaxError> {
        match self.peek() {
            Some(Tok::Name(n)) if !KEYWORDS.contains(&n.as_str()) => {
                let (tok, span) = self.bump().unwrap_or((Tok::Comma, 0..0));
                let text = match tok {
                    Tok::Name(n) => n,
                    _ => String::new(),
                };
                Ok(Name { text, span })
            }
            _ => self.error(what),
        }
    }

    fn primary(&mut self) -> Result<Ast, SyntaxError> {
        match self.peek() {
            Some(Tok::LParen) => {
                self.open()?;
                self.bump();
                let inner = self.or()?;
                self.eat(&Tok::RParen, "`)`")?;
                self.depth -= 1;
                return Ok(inner);
            }
            Some(Tok::Name(n)) if n == "true" || n == "false" => {
                let b = n == "true";
                self.bump();
                return Ok(Ast::Bool(b));
            }
            _ => {}
        }
        let name = self.name("a fact or predicate name")?;
        let args = if self.peek() == Some(&Tok::LParen) {
            self.bump();
            let mut args = Vec::new();
            if self.peek() != Some(&Tok::RParen) {
                loop {
                    match self.peek() {
                        Some(Tok::Number(n)) => {
                            let n = *n;
                            let span = self.bump().map(|(_, s)| s).unwrap_or_default();
                            args.push(Arg::Number(n, span));
                        }
                        _ => args.push(Arg::Name(self.name("an argument")?)),
                    }
                    if self.peek() == Some(&Tok::Comma) {
                        self.bump();
                    } else {
                        break;
                    }
                }
            }
            self.eat(&Tok::RParen, "`,` or `)`")?;
            Some(args)
        } else {
            None
        };
        match self.peek() {
            Some(Tok::Op(op)) => {
                let op = *op;
                self.bump();
                let value_span = self.span_here();
                let value = match self.peek() {
                    Some(Tok::Number(n)) => {
                        let n = *n;
                        self.bump();
                        Value::Number(n)
                    }
                    _ => Value::Name(self.name("a number or a code after the comparison")?),
                };
                Ok(Ast::Compare {
                    name,
                    args,
                    op,
                    value,
                    value_span,
                })
            }
            Some(Tok::Name(w)) if w == "in" || w == "not" => {
                let negated = w == "not";
                if negated {
                    // `not` here must be `not in`; otherwise it is a stray keyword.
                    if !matches!(self.toks.get(self.pos + 1), Some((Tok::Name(n), _)) if n == "in")
                    {
                        return self.error("`and`, `or` or `)`");
                    }
                    self.bump();
                }
                self.bump();
                self.eat(&Tok::LBracket, "`[` after `in`")?;
                let mut values = vec![self.name("a code")?];
                while self.peek() == Some(&Tok::Comma) {
                    self.bump();
                    values.push(self.name("a code")?);
                }
                self.eat(&Tok::RBracket, "`,` or `]`")?;
                Ok(Ast::In {
                    name,
                    args,
                    negated,
                    values,
                })
            }
            _ => Ok(Ast::Term { name, args }),
        }
    }
}

/// Parses a condition.
pub(crate) fn parse(src: &str) -> Result<Ast, SyntaxError> {
    let toks = lex(src)?;
    if toks.is_empty() {
        return Err(SyntaxError {
            message: "the condition is empty; write `true` for a rule that always applies".into(),
            span: 0..src.len(),
        });
    }
    let mut p = Parser {
        toks,
        pos: 0,
        end: src.len(),
        depth: 0,
    };
    let ast = p.or()?;
    if p.pos < p.toks.len() {
        return p.error("`and`, `or` or the end of the condition");
    }
    Ok(ast)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(text: &str, a: usize) -> Name {
        Name {
            text: text.into(),
            span: a..a + text.len(),
        }
    }

    #[test]
    fn precedence_and_binds_tighter_than_or() {
        let ast = parse("a or b and not c").unwrap();
        let Ast::Or(items) = ast else {
            panic!("{ast:?}")
        };
        assert_eq!(items.len(), 2);
        assert!(matches!(&items[1], Ast::And(v) if v.len() == 2));
    }

    #[test]
    fn comparisons_memberships_and_calls() {
        assert_eq!(
            parse("egfr < 60").unwrap(),
            Ast::Compare {
                name: n("egfr", 0),
                args: None,
                op: CmpOp::Lt,
                value: Value::Number(60.0),
                value_span: 7..9
            }
        );
        let ast = parse("outcome(baclofen) not in [partial, ineffective]").unwrap();
        let Ast::In {
            name,
            args,
            negated,
            values,
        } = ast
        else {
            panic!()
        };
        assert_eq!(name.text, "outcome");
        assert_eq!(args, Some(vec![Arg::Name(n("baclofen", 8))]));
        assert!(negated);
        assert_eq!(values.len(), 2);
        assert_eq!(
            parse("controlled(2)").unwrap(),
            Ast::Term {
                name: n("controlled", 0),
                args: Some(vec![Arg::Number(2.0, 11..12)])
            }
        );
        assert!(matches!(
            parse("spasticity-distribution = focal").unwrap(),
            Ast::Compare {
                value: Value::Name(_),
                op: CmpOp::Eq,
                ..
            }
        ));
    }

    #[test]
    fn nesting_is_limited_with_the_first_level_too_deep_located() {
        let ok = format!("{}a{}", "(".repeat(MAX_NESTING), ")".repeat(MAX_NESTING));
        assert!(parse(&ok).is_ok());
        let nots = format!("{}a", "not ".repeat(MAX_NESTING));
        assert!(parse(&nots).is_ok());
        // Far deeper than any stack would take: refused at the first level too deep.
        let parens = format!("{}a{}", "(".repeat(5_000), ")".repeat(5_000));
        let e = parse(&parens).unwrap_err();
        assert_eq!(e.span, MAX_NESTING..MAX_NESTING + 1);
        assert!(
            e.message.contains("nests more than 64 levels"),
            "{}",
            e.message
        );
        let nots = format!("{}a", "not ".repeat(16_000));
        let e = parse(&nots).unwrap_err();
        assert_eq!(e.span, 4 * MAX_NESTING..4 * MAX_NESTING + 3);
        // Mixed: `not (` counts both.
        let mixed = format!("{}a{}", "not (".repeat(40), ")".repeat(40));
        let e = parse(&mixed).unwrap_err();
        assert_eq!(e.span.start, 5 * 32);
    }

    #[test]
    fn errors_point_at_the_offending_token() {
        let e = parse("egfr < ").unwrap_err();
        assert_eq!(e.span, 7..7);
        assert!(e.message.contains("found the end"), "{}", e.message);
        let e = parse("a and or b").unwrap_err();
        assert_eq!(e.span, 6..8);
        let e = parse("(a or b").unwrap_err();
        assert!(e.message.contains("`)`"));
        let e = parse("a & b").unwrap_err();
        assert_eq!(e.span, 2..3);
        let e = parse("a b").unwrap_err();
        assert_eq!(e.span, 2..3);
        assert!(parse("   ").is_err());
        assert!(parse("x in []").is_err());
    }

    #[test]
    fn keywords_are_not_names() {
        assert!(parse("and").is_err());
        assert_eq!(parse("true").unwrap(), Ast::Bool(true));
        assert_eq!(
            parse("not (false)").unwrap(),
            Ast::Not(Box::new(Ast::Bool(false)))
        );
    }
}
