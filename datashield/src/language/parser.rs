//! The parser of DataSHIELD's v2 grammar (datashield4j's `datashield-v2.jjt`, which Opal and
//! Armadillo use), written from the grammar:
//!
//! ```text
//! root      = exp [";"] EOF
//! exp       = IDENT "~" fterm                                  (a formula)
//!           | simpleExp [ ("/" | "!" | "=" | "%*%" | "+" | "-" | "*" | "^") exp ]
//! simpleExp = IDENT "(" [exp ("," exp)*] ")" | STRING | IDENT | NUMBER | RANGE | "(" exp ")"
//! fterm     = ("(" fterm ")" | IDENT | NUMBER) [ ("+" | "-" | "*" | "^" | ":" | "%in%") fterm ]
//! ```
//!
//! Two consequences of how Opal uses that grammar are kept, because they decide what a call
//! computes:
//! - Operators have no precedence and group to the right (`a*b+c` is `a*(b+c)`): Opal rewrites
//!   each operator node as `base::'op'(lhs, rhs)` in the tree's shape.
//! - Opal copies an identifier and a formula to R verbatim, so R's own reading of that text is
//!   what runs: the identifier `x-1` (one token here) is `x - 1` in R, and `y~a+b:c` groups by
//!   R's precedence. The tree therefore holds R's reading of those tokens, and text R would
//!   refuse (`a-`, `if`, `1x`) is refused here.
//!
//! Beyond the grammar: `=` is accepted only where Opal makes it a named argument (directly in a
//! call's argument list; anywhere else Opal would send R an assignment), and the limits below
//! bound the work and the recursion any input can cause.

use super::ast::{Arg, BinaryOp, Expr, FormulaExpr, FormulaOp};
use super::lexer::{Token, TokenKind, column, tokenize};
use crate::error::DsError;

/// The longest call text accepted, in bytes. Opal has no limit; real calls are well under 4 KiB
/// (the longest are glmDS2's coefficient strings and tableDS's pooled level lists).
pub const MAX_TEXT_BYTES: usize = 32_768;

/// The deepest syntax tree accepted: nested calls, parentheses, and each operator of a chain
/// (operators nest, `a+b+c` is `a+(b+c)`), and each `-` inside an identifier. Everything that
/// walks the tree recurses, so this bounds the stack any call can use.
pub const MAX_DEPTH: usize = 100;

/// The most arguments one call may have (dsBase's functions take at most about fifteen).
pub const MAX_ARGS: usize = 64;

/// Parses one call text into its syntax tree, or says where and why it is refused.
pub fn parse(text: &str) -> Result<Expr, DsError> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(DsError::Parse(format!(
            "the call is {} bytes long; at most {MAX_TEXT_BYTES} are accepted",
            text.len()
        )));
    }
    let tokens = tokenize(text)?;
    let mut parser = Parser {
        text,
        tokens,
        pos: 0,
    };
    let expr = parser.exp(1)?;
    if parser.peek() == &TokenKind::Semicolon {
        parser.pos += 1;
    }
    match parser.peek() {
        TokenKind::End => Ok(expr),
        _ => Err(parser.unexpected()),
    }
}

struct Parser<'t> {
    text: &'t str,
    tokens: Vec<Token>,
    pos: usize,
}

/// The tokens of a formula as R reads its text (see [`Parser::formula`]).
#[derive(Clone, Debug, PartialEq)]
enum FormulaToken {
    Name(String),
    Number(f64),
    Op(FormulaOp),
    LParen,
    RParen,
}

/// One piece of an identifier as R reads it: `D$x-1` is a name, a minus and a number.
#[derive(Clone, Debug, PartialEq)]
enum Piece {
    Name(String),
    Number { value: f64, integer: bool },
    Minus,
}

impl Parser<'_> {
    fn peek(&self) -> &TokenKind {
        self.peek_at(0)
    }

    fn peek_at(&self, ahead: usize) -> &TokenKind {
        // The last token is always End, so running past it yields End.
        self.tokens
            .get(self.pos + ahead)
            .or(self.tokens.last())
            .map_or(&TokenKind::End, |t| &t.kind)
    }

    fn offset(&self) -> usize {
        self.tokens
            .get(self.pos)
            .or(self.tokens.last())
            .map_or(self.text.len(), |t| t.offset)
    }

    fn advance(&mut self) -> TokenKind {
        let kind = self.peek().clone();
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        kind
    }

    fn error_here(&self, what: impl std::fmt::Display) -> DsError {
        DsError::Parse(format!(
            "{what} at column {}",
            column(self.text, self.offset())
        ))
    }

    fn unexpected(&self) -> DsError {
        self.error_here(format_args!("unexpected {}", self.peek().describe()))
    }

    fn too_deep(&self) -> DsError {
        self.error_here(format_args!(
            "the call nests more than {MAX_DEPTH} levels deep"
        ))
    }

    fn expect(&mut self, kind: TokenKind) -> Result<(), DsError> {
        if self.peek() == &kind {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn exp(&mut self, depth: usize) -> Result<Expr, DsError> {
        if depth > MAX_DEPTH {
            return Err(self.too_deep());
        }
        if matches!(self.peek(), TokenKind::Ident(_)) && self.peek_at(1) == &TokenKind::Tilde {
            return self.formula(depth);
        }
        let lhs = self.simple(depth)?;
        let op = match self.peek() {
            TokenKind::Op("/") => BinaryOp::Divide,
            TokenKind::Op("!") => BinaryOp::Not,
            TokenKind::Op("%*%") => BinaryOp::MatrixMultiply,
            TokenKind::Op("+") => BinaryOp::Add,
            TokenKind::Op("-") => BinaryOp::Subtract,
            TokenKind::Op("*") => BinaryOp::Multiply,
            TokenKind::Op("^") => BinaryOp::Power,
            TokenKind::Op("=") => {
                return Err(self.error_here(
                    "'=' is only allowed to name an argument of a call, as in f(x, k=3)",
                ));
            }
            _ => return Ok(lhs),
        };
        self.pos += 1;
        let rhs = self.exp(depth + 1)?;
        Ok(Expr::Binary {
            op,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
        })
    }

    fn simple(&mut self, depth: usize) -> Result<Expr, DsError> {
        let offset = self.offset();
        match self.peek().clone() {
            TokenKind::Ident(name) if self.peek_at(1) == &TokenKind::LParen => {
                self.pos += 2;
                self.call(name, depth)
            }
            TokenKind::Ident(text) => {
                self.pos += 1;
                self.identifier(&text, offset, depth)
            }
            TokenKind::Str(text) => {
                self.pos += 1;
                Ok(Expr::Str(text))
            }
            TokenKind::Number(text) => {
                self.pos += 1;
                let (value, integer) = self.number(&text, offset)?;
                Ok(Expr::Number { value, integer })
            }
            TokenKind::Range(from, to) => {
                self.pos += 1;
                let bound = |digits: &str| {
                    digits.parse::<i64>().map_err(|_| {
                        self.error_at(
                            offset,
                            format_args!("the range bound {digits} is too large"),
                        )
                    })
                };
                Ok(Expr::Range {
                    from: bound(&from)?,
                    to: bound(&to)?,
                })
            }
            TokenKind::LParen => {
                self.pos += 1;
                let inner = self.exp(depth + 1)?;
                self.expect(TokenKind::RParen)?;
                Ok(Expr::Paren(Box::new(inner)))
            }
            _ => Err(self.unexpected()),
        }
    }

    fn error_at(&self, offset: usize, what: impl std::fmt::Display) -> DsError {
        DsError::Parse(format!("{what} at column {}", column(self.text, offset)))
    }

    /// `name(` already consumed: the arguments and the closing parenthesis.
    fn call(&mut self, function: String, depth: usize) -> Result<Expr, DsError> {
        if depth + 1 > MAX_DEPTH {
            return Err(self.too_deep());
        }
        let mut args = Vec::new();
        if self.peek() == &TokenKind::RParen {
            self.pos += 1;
            return Ok(Expr::Call { function, args });
        }
        loop {
            if args.len() == MAX_ARGS {
                return Err(
                    self.error_here(format_args!("a call may have at most {MAX_ARGS} arguments"))
                );
            }
            args.push(self.arg(depth + 1)?);
            match self.advance() {
                TokenKind::Comma => {}
                TokenKind::RParen => return Ok(Expr::Call { function, args }),
                _ => {
                    self.pos -= 1;
                    return Err(self.unexpected());
                }
            }
        }
    }

    /// One argument: `name=exp` (Opal's named argument) or `exp`.
    fn arg(&mut self, depth: usize) -> Result<Arg, DsError> {
        if self.peek_at(1) == &TokenKind::Op("=") {
            let offset = self.offset();
            let name = match self.peek().clone() {
                TokenKind::Str(name) => name,
                TokenKind::Ident(name) if is_plain_name(&name) => name,
                TokenKind::Ident(name) => {
                    return Err(
                        self.error_at(offset, format_args!("'{name}' cannot name an argument"))
                    );
                }
                _ => return Err(self.error_at(offset, "only a name can name an argument")),
            };
            self.pos += 2;
            return Ok(Arg {
                name: Some(name),
                value: self.exp(depth)?,
            });
        }
        Ok(Arg {
            name: None,
            value: self.exp(depth)?,
        })
    }

    /// A NUMBER token: R's reading of it (a leading `-` is R's unary minus).
    fn number(&self, text: &str, offset: usize) -> Result<(f64, bool), DsError> {
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        match r_number(digits) {
            Some((end, value, integer)) if end == digits.len() => {
                Ok((if negative { -value } else { value }, integer))
            }
            _ => Err(self.error_at(offset, format_args!("'{text}' is not a number R can read"))),
        }
    }

    /// An identifier used as a value: R's reading of its text (see the module's comment).
    fn identifier(&self, text: &str, offset: usize, depth: usize) -> Result<Expr, DsError> {
        let pieces =
            r_pieces(text).map_err(|why| self.error_at(offset, format_args!("'{text}' {why}")))?;
        let mut pieces = pieces.into_iter().peekable();
        let mut expr = match pieces.next() {
            Some(Piece::Name(name)) => Expr::Symbol(name),
            _ => return Err(self.error_at(offset, format_args!("'{text}' is not a name"))),
        };
        let mut depth = depth;
        while let Some(piece) = pieces.next() {
            // Only `-` can join pieces (an identifier has no other operator).
            if piece != Piece::Minus {
                return Err(
                    self.error_at(offset, format_args!("'{text}' is not a name R can read"))
                );
            }
            depth += 1;
            if depth > MAX_DEPTH {
                return Err(self.too_deep());
            }
            // Further minuses are R's unary minus, which only a number may carry here.
            let mut negate = false;
            while pieces.peek() == Some(&Piece::Minus) {
                pieces.next();
                negate = !negate;
            }
            let rhs = match pieces.next() {
                Some(Piece::Number { value, integer }) => Expr::Number {
                    value: if negate { -value } else { value },
                    integer,
                },
                Some(Piece::Name(name)) if !negate => Expr::Symbol(name),
                Some(Piece::Name(_)) => {
                    return Err(self.error_at(
                        offset,
                        format_args!("'{text}': unary minus on a name is not supported"),
                    ));
                }
                _ => return Err(self.error_at(offset, format_args!("'{text}' ends with '-'"))),
            };
            expr = Expr::Binary {
                op: BinaryOp::Subtract,
                lhs: Box::new(expr),
                rhs: Box::new(rhs),
            };
        }
        Ok(expr)
    }

    /// `IDENT ~ fterm`. Opal sends the formula's tokens to R as one string, so R's grammar
    /// decides how it groups: the grammar's tokens are checked here, then read as R reads them.
    fn formula(&mut self, depth: usize) -> Result<Expr, DsError> {
        let offset = self.offset();
        let TokenKind::Ident(response) = self.advance() else {
            return Err(self.unexpected());
        };
        if !matches!(r_pieces(&response).as_deref(), Ok([Piece::Name(_)])) {
            return Err(self.error_at(
                offset,
                format_args!("the response of a formula must be one variable, not '{response}'"),
            ));
        }
        self.pos += 1; // the `~`
        let mut tokens = Vec::new();
        self.formula_term(depth + 1, &mut tokens)?;
        if tokens
            .iter()
            .filter(|t| matches!(t, FormulaToken::Op(_)))
            .count()
            > MAX_DEPTH
        {
            return Err(self.too_deep());
        }
        let mut reader = FormulaReader {
            tokens: &tokens,
            pos: 0,
        };
        let rhs = reader
            .sum(depth + 1)
            .map_err(|why| self.error_at(offset, format_args!("formula: {why}")))?;
        if reader.pos != tokens.len() {
            return Err(self.error_at(offset, "formula: R cannot read this formula"));
        }
        Ok(Expr::Formula { response, rhs })
    }

    /// `fterm` of the grammar, appending R's tokens for it.
    fn formula_term(&mut self, depth: usize, out: &mut Vec<FormulaToken>) -> Result<(), DsError> {
        loop {
            if depth > MAX_DEPTH {
                return Err(self.too_deep());
            }
            let offset = self.offset();
            match self.advance() {
                TokenKind::LParen => {
                    out.push(FormulaToken::LParen);
                    self.formula_term(depth + 1, out)?;
                    self.expect(TokenKind::RParen)?;
                    out.push(FormulaToken::RParen);
                }
                TokenKind::Ident(text) => {
                    let pieces = r_pieces(&text)
                        .map_err(|why| self.error_at(offset, format_args!("'{text}' {why}")))?;
                    for piece in pieces {
                        out.push(match piece {
                            Piece::Name(name) => FormulaToken::Name(name),
                            Piece::Number { value, .. } => FormulaToken::Number(value),
                            Piece::Minus => FormulaToken::Op(FormulaOp::Minus),
                        });
                    }
                }
                TokenKind::Number(text) => {
                    let (value, _) = self.number(&text, offset)?;
                    if text.starts_with('-') {
                        out.push(FormulaToken::Op(FormulaOp::Minus));
                    }
                    out.push(FormulaToken::Number(value.abs()));
                }
                _ => {
                    self.pos -= 1;
                    return Err(self.unexpected());
                }
            }
            let op = match self.peek() {
                TokenKind::Op("+") => FormulaOp::Plus,
                TokenKind::Op("-") => FormulaOp::Minus,
                TokenKind::Op("*") => FormulaOp::Times,
                TokenKind::Op("^") => FormulaOp::Power,
                TokenKind::Op(":") => FormulaOp::Colon,
                TokenKind::Op("%in%") => FormulaOp::In,
                _ => return Ok(()),
            };
            self.pos += 1;
            out.push(FormulaToken::Op(op));
        }
    }
}

/// R's reading of a formula's tokens, by R's precedence (highest last): `+ -`, `*`, `%in%`,
/// `:`, unary `-`, `^` (right to left).
struct FormulaReader<'a> {
    tokens: &'a [FormulaToken],
    pos: usize,
}

impl FormulaReader<'_> {
    fn peek(&self) -> Option<&FormulaToken> {
        self.tokens.get(self.pos)
    }

    fn next_op(&mut self, ops: &[FormulaOp]) -> Option<FormulaOp> {
        match self.peek().cloned() {
            Some(FormulaToken::Op(op)) if ops.contains(&op) => {
                self.pos += 1;
                Some(op)
            }
            _ => None,
        }
    }

    fn left(
        &mut self,
        depth: usize,
        ops: &[FormulaOp],
        operand: fn(&mut Self, usize) -> Result<FormulaExpr, String>,
    ) -> Result<FormulaExpr, String> {
        let mut lhs = operand(self, depth)?;
        while let Some(op) = self.next_op(ops) {
            let rhs = operand(self, depth)?;
            lhs = FormulaExpr::Op {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            };
        }
        Ok(lhs)
    }

    fn sum(&mut self, depth: usize) -> Result<FormulaExpr, String> {
        self.left(depth, &[FormulaOp::Plus, FormulaOp::Minus], Self::product)
    }

    fn product(&mut self, depth: usize) -> Result<FormulaExpr, String> {
        self.left(depth, &[FormulaOp::Times], Self::special)
    }

    fn special(&mut self, depth: usize) -> Result<FormulaExpr, String> {
        self.left(depth, &[FormulaOp::In], Self::colon)
    }

    fn colon(&mut self, depth: usize) -> Result<FormulaExpr, String> {
        self.left(depth, &[FormulaOp::Colon], Self::unary)
    }

    fn unary(&mut self, depth: usize) -> Result<FormulaExpr, String> {
        if depth > MAX_DEPTH {
            return Err(format!("nests more than {MAX_DEPTH} levels deep"));
        }
        if self.next_op(&[FormulaOp::Minus]).is_some() {
            // R's unary minus; the tree has no node for it, so only `-number` is accepted.
            return match self.unary(depth + 1)? {
                FormulaExpr::Number(value) => Ok(FormulaExpr::Number(-value)),
                _ => Err("unary minus is only supported on a number".into()),
            };
        }
        let base = self.primary(depth)?;
        if self.next_op(&[FormulaOp::Power]).is_some() {
            let exponent = self.unary(depth + 1)?;
            return Ok(FormulaExpr::Op {
                op: FormulaOp::Power,
                lhs: Box::new(base),
                rhs: Box::new(exponent),
            });
        }
        Ok(base)
    }

    fn primary(&mut self, depth: usize) -> Result<FormulaExpr, String> {
        let token = self.peek().cloned();
        self.pos += 1;
        match token {
            Some(FormulaToken::Name(name)) => Ok(FormulaExpr::Variable(name)),
            Some(FormulaToken::Number(value)) => Ok(FormulaExpr::Number(value)),
            Some(FormulaToken::LParen) => {
                let inner = self.sum(depth + 1)?;
                match self.peek() {
                    Some(FormulaToken::RParen) => {
                        self.pos += 1;
                        Ok(FormulaExpr::Paren(Box::new(inner)))
                    }
                    _ => Err("R cannot read this formula".into()),
                }
            }
            _ => Err("an operator lacks an operand".into()),
        }
    }
}

/// R's reserved words, which R refuses as names.
const RESERVED: &[&str] = &[
    "if", "else", "repeat", "while", "function", "for", "next", "break", "in",
];

/// An R name without `$`: what can name an argument.
fn is_plain_name(text: &str) -> bool {
    matches!(r_pieces(text).as_deref(), Ok([Piece::Name(name)]) if !name.contains('$'))
}

/// An R numeric literal at the start of `text`: `D+ [. D*] | . D+`, then `[eE][+-]?D+`, then
/// `L`. Returns its length, value and whether it is an integer. `nL` is an integer only when it
/// is whole and in range; otherwise R reads it as a double (and warns).
fn r_number(text: &str) -> Option<(usize, f64, bool)> {
    let bytes = text.as_bytes();
    let mut i = digits_from(bytes, 0);
    let whole = i > 0;
    if bytes.get(i) == Some(&b'.') {
        let after = digits_from(bytes, i + 1);
        if !whole && after == i + 1 {
            return None;
        }
        i = after;
    } else if !whole {
        return None;
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(bytes.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let end = digits_from(bytes, j);
        if end == j {
            return None;
        }
        i = end;
    }
    let value: f64 = text.get(..i)?.parse().ok()?;
    if bytes.get(i) == Some(&b'L') {
        let integer = value.fract() == 0.0 && value.abs() <= f64::from(i32::MAX);
        return Some((i + 1, value, integer));
    }
    Some((i, value, false))
}

fn digits_from(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    i
}

/// Splits an identifier's text as R's lexer would: names (with `$` paths), numbers and `-`.
fn r_pieces(text: &str) -> Result<Vec<Piece>, &'static str> {
    let bytes = text.as_bytes();
    let mut pieces = Vec::new();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let starts_number =
            b.is_ascii_digit() || (b == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit));
        if b == b'-' {
            pieces.push(Piece::Minus);
            i += 1;
        } else if starts_number {
            let (length, value, integer) =
                r_number(&text[i..]).ok_or("holds a number R cannot read")?;
            pieces.push(Piece::Number { value, integer });
            i += length;
        } else if b.is_ascii_alphabetic() || b == b'.' {
            let start = i;
            loop {
                let part_start = i;
                if !bytes
                    .get(i)
                    .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'.')
                {
                    return Err("is not a name R can read");
                }
                while bytes
                    .get(i)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_'))
                {
                    i += 1;
                }
                let part = &text[part_start..i];
                let dots = part.starts_with("..")
                    && part[2..].bytes().all(|c| c.is_ascii_digit() || c == b'.');
                if RESERVED.contains(&part) || dots {
                    return Err("uses a word R reserves");
                }
                if bytes.get(i) == Some(&b'$') {
                    i += 1;
                } else {
                    break;
                }
            }
            pieces.push(Piece::Name(text[start..i].to_owned()));
        } else {
            return Err("is not a name R can read");
        }
        // A name or number must be followed by `-` or the end.
        if !matches!(pieces.last(), Some(Piece::Minus)) && bytes.get(i).is_some_and(|c| *c != b'-')
        {
            return Err("is not a name R can read");
        }
    }
    Ok(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn sym(name: &str) -> Expr {
        Expr::Symbol(name.into())
    }

    fn num(value: f64) -> Expr {
        Expr::Number {
            value,
            integer: false,
        }
    }

    fn bin(op: BinaryOp, lhs: Expr, rhs: Expr) -> Expr {
        Expr::Binary {
            op,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
        }
    }

    fn call(function: &str, args: Vec<(Option<&str>, Expr)>) -> Expr {
        Expr::Call {
            function: function.into(),
            args: args
                .into_iter()
                .map(|(name, value)| Arg {
                    name: name.map(Into::into),
                    value,
                })
                .collect(),
        }
    }

    fn var(name: &str) -> FormulaExpr {
        FormulaExpr::Variable(name.into())
    }

    fn fop(op: FormulaOp, lhs: FormulaExpr, rhs: FormulaExpr) -> FormulaExpr {
        FormulaExpr::Op {
            op,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
        }
    }

    fn error(text: &str) -> String {
        match parse(text) {
            Ok(expr) => panic!("{text:?} was accepted as {expr:?}"),
            Err(DsError::Parse(message)) => message,
            Err(other) => panic!("{text:?} gave a non-parse error {other:?}"),
        }
    }

    /// datashield4j's own v2 test cases (`DataShieldExprTest`): the input and the R script
    /// Opal's rewrite makes of it (with `dsBase::` dropped, as no method mapping is applied here).
    #[test]
    fn datashield4j_accepted_cases_rewrite_as_opal_does() {
        let cases = [
            ("A", "A"),
            ("A$B$C.D", "A$B$C.D"),
            ("A ~ B", "A~B"),
            ("A()", "A()"),
            ("A + B", "base::'+'(A, B)"),
            ("A + B * C", "base::'+'(A, base::'*'(B, C))"),
            ("A() + B * C", "base::'+'(A(), base::'*'(B, C))"),
            ("A ~ B + (C * D)^4 : E %in% F", "A~B+(C*D)^4:E%in%F"),
            (
                "(A + B) * (C - D)",
                "base::'*'(base::'+'(A, B), base::'-'(C, D))",
            ),
            ("A(B)", "A(B)"),
            ("A(B())", "A(B())"),
            ("A(B, C)", "A(B, C)"),
            (
                "A(B, C(), D, E(F(G/H)), A + B * C())",
                "A(B, C(), D, E(F(base::'/'(G, H))), base::'+'(A, base::'*'(B, C())))",
            ),
            ("glm(A ~ B + C:D, poisson)", "glm(A~B+C:D, poisson)"),
            ("A(arg=x,another=y)", "A(arg = x, another = y)"),
            ("A('this')", "A('this')"),
            ("A(\"this\")", "A('this')"),
            ("A('123')", "A('123')"),
            ("A('this1_that.this-that1')", "A('this1_that.this-that1')"),
            ("A('1.2:1.3:-8.5')", "A('1.2:1.3:-8.5')"),
            ("A('1.2,1.3,-8.5')", "A('1.2,1.3,-8.5')"),
            ("A('1.2;1.3;-8.5')", "A('1.2;1.3;-8.5')"),
            ("A('D$abc')", "A('D$abc')"),
            // DSLite's testParse example.
            (
                "someregression(D$height ~ D$diameter + D$length)",
                "someregression(D$height~D$diameter+D$length)",
            ),
        ];
        for (text, script) in cases {
            let expr = parse(text).unwrap_or_else(|e| panic!("{text:?} refused: {e}"));
            assert_eq!(expr.to_string(), script, "{text:?}");
        }
    }

    /// Numbers from datashield4j's and DSLite's test cases, with the value R reads.
    #[test]
    fn numbers_of_both_test_corpora() {
        let cases = [
            ("1.0", 1.0, false),
            ("1.0e-03", 1.0e-3, false),
            ("1.0e+03", 1.0e3, false),
            ("1.0e3", 1.0e3, false),
            ("1.0E-03", 1.0e-3, false),
            ("1.0E+03", 1.0e3, false),
            ("1.0E3", 1.0e3, false),
            ("5L", 5.0, true),
            ("-0.43151402098822", -0.43151402098822, false),
            ("-1.0e-03", -1.0e-3, false),
            ("-1.0e+03", -1.0e3, false),
            ("-1.0E3", -1.0e3, false),
            ("3", 3.0, false),
            ("3.1", 3.1, false),
            ("3.1e4", 3.1e4, false),
            ("3.1E4", 3.1e4, false),
            ("-3.1e-4", -3.1e-4, false),
            ("3L", 3.0, true),
            (".5", 0.5, false),
            ("-2147483647L", -2147483647.0, true),
            // Out of R's integer range or not whole: R reads a double (and warns).
            ("2147483648L", 2147483648.0, false),
            ("1.5L", 1.5, false),
        ];
        for (text, value, integer) in cases {
            assert_eq!(parse(text), Ok(Expr::Number { value, integer }), "{text:?}");
        }
        // String forms stay strings.
        for text in ["'1.0e-03'", "\"-1.0E3\"", "'5L'", "'A'"] {
            assert_eq!(parse(text), Ok(Expr::Str(text[1..text.len() - 1].into())));
        }
    }

    #[test]
    fn datashield4j_refused_cases() {
        let cases = [
            "A('this(that)')",
            "A(\"this that\")",
            "A('this/that')",
            "A('this[that')",
            "A('this]that')",
            "A[2, 1]",
            "A[2, 1:2]",
            "A[,1]",
            "A[1,]",
            "A[,1:2]",
            "D[,func(D[,1])]",
            "A[]",
            "A[,]",
            "A[[1]]",
            "A(B[,2])",
            "A(B[,2], C)",
            "A('D[123]')",
            "A('this\\that')",
            "A('this*that')",
            "A('this=that')",
            "A('this<-that')",
            "A('this\")",
            "A(\"that')",
            // DSLite accepts a leading '+'; the v2 grammar has no unary '+'.
            "+3.1e+4",
            // DSLite's testParse example of a refused formula: no calls in a formula.
            "someregression(D$height ~ D$diameter + poly(D$length,3,raw=TRUE))",
        ];
        for text in cases {
            error(text);
        }
    }

    /// The calls the published Python clients send (datashield-base 0.1.1), as they format them.
    #[test]
    fn python_client_calls_parse() {
        for text in [
            "classDS('D')",
            "levelsDS(D$sex)",
            "table2DDS(D$sex, D$smoker)",
            "histogramDS1(D$age, method.indicator=1, k=3, noise=0.25)",
            "histogramDS2(D$age, num.breaks=10, min=-3.25, max=1e-05, method.indicator=1, k=3, noise=0.25)",
            "glmDS1(D$y ~ D$age + D$sex, 'binomial', NULL, NULL, NULL)",
            "glmDS1(y~age*sex-1, 'gaussian', 'w', 'o', 'D')",
            "glmDS2(D$y ~ D$age + D$sex, 'poisson', '-0.5,1.25e-05,3', NULL, NULL, 'D')",
        ] {
            assert!(
                matches!(parse(text), Ok(Expr::Call { .. })),
                "{text}: {:?}",
                parse(text)
            );
        }
    }

    #[test]
    fn quirks_of_the_grammar_and_of_r_reading_opals_rewrite() {
        // `-` inside an identifier: one token, which R reads as a subtraction.
        assert_eq!(
            parse("x-1"),
            Ok(bin(BinaryOp::Subtract, sym("x"), num(1.0)))
        );
        assert_eq!(
            parse("D$age-1"),
            Ok(bin(BinaryOp::Subtract, sym("D$age"), num(1.0)))
        );
        assert_eq!(
            parse("a-b-c"),
            Ok(bin(
                BinaryOp::Subtract,
                bin(BinaryOp::Subtract, sym("a"), sym("b")),
                sym("c")
            ))
        );
        assert_eq!(
            parse("x-1e-5"),
            Ok(bin(BinaryOp::Subtract, sym("x"), num(1e-5)))
        );
        assert_eq!(
            parse("x--2L"),
            Ok(bin(
                BinaryOp::Subtract,
                sym("x"),
                Expr::Number {
                    value: -2.0,
                    integer: true
                }
            ))
        );
        // Operators group to the right with no precedence, as Opal nests them.
        assert_eq!(
            parse("a - b + c"),
            Ok(bin(
                BinaryOp::Subtract,
                sym("a"),
                bin(BinaryOp::Add, sym("b"), sym("c"))
            ))
        );
        assert_eq!(
            parse("2 * 3 + 4").map(|e| e.to_string()),
            Ok("base::'*'(2, base::'+'(3, 4))".into())
        );
        // A negative number is one token, so `3-1` is two numbers in a row.
        assert_eq!(error("3-1"), "unexpected '-1' at column 2");
        assert_eq!(
            parse("3 - 1"),
            Ok(bin(BinaryOp::Subtract, num(3.0), num(1.0)))
        );
        assert_eq!(parse("1:10"), Ok(Expr::Range { from: 1, to: 10 }));
        assert_eq!(error("-1:10"), "unexpected ':' at column 3");
        assert_eq!(parse("(x)"), Ok(Expr::Paren(Box::new(sym("x")))));
        assert_eq!(parse("TRUE"), Ok(sym("TRUE")));
        assert_eq!(parse("f()"), Ok(call("f", vec![])));
        assert_eq!(
            parse("meanDS(x);"),
            Ok(call("meanDS", vec![(None, sym("x"))]))
        );
        assert_eq!(
            parse("f('k'=3, n = D$x * 2)"),
            Ok(call(
                "f",
                vec![
                    (Some("k"), num(3.0)),
                    (Some("n"), bin(BinaryOp::Multiply, sym("D$x"), num(2.0)))
                ]
            ))
        );
        assert_eq!(parse("a ! b"), Ok(bin(BinaryOp::Not, sym("a"), sym("b"))));
        assert_eq!(
            parse("a %*% b"),
            Ok(bin(BinaryOp::MatrixMultiply, sym("a"), sym("b")))
        );
        // Text R itself would refuse.
        assert_eq!(error("a-"), "'a-' ends with '-' at column 1");
        assert_eq!(error("f(if)"), "'if' uses a word R reserves at column 3");
        assert_eq!(error("x-1a"), "'x-1a' is not a name R can read at column 1");
        assert_eq!(
            error("x--y"),
            "'x--y': unary minus on a name is not supported at column 1"
        );
        assert_eq!(
            error("f(a-b=1)"),
            "'a-b' cannot name an argument at column 3"
        );
        assert_eq!(
            error("f(1=1)"),
            "only a name can name an argument at column 3"
        );
        assert_eq!(
            error("1L.5"),
            "'1L.5' is not a number R can read at column 1"
        );
    }

    #[test]
    fn formulas_group_as_r_reads_them() {
        let formula = |rhs| {
            Ok(Expr::Formula {
                response: "y".into(),
                rhs,
            })
        };
        assert_eq!(parse("y~x"), formula(var("x")));
        assert_eq!(
            parse("y ~ x - 1"),
            formula(fop(FormulaOp::Minus, var("x"), FormulaExpr::Number(1.0)))
        );
        // `x-1` is one identifier in the grammar and R reads it as x - 1.
        assert_eq!(
            parse("y~x-1"),
            formula(fop(FormulaOp::Minus, var("x"), FormulaExpr::Number(1.0)))
        );
        assert_eq!(
            parse("y~a+b:c*d"),
            formula(fop(
                FormulaOp::Plus,
                var("a"),
                fop(
                    FormulaOp::Times,
                    fop(FormulaOp::Colon, var("b"), var("c")),
                    var("d")
                )
            ))
        );
        assert_eq!(
            parse("y~a-b+c"),
            formula(fop(
                FormulaOp::Plus,
                fop(FormulaOp::Minus, var("a"), var("b")),
                var("c")
            ))
        );
        assert_eq!(
            parse("y~(a+b)^2"),
            formula(fop(
                FormulaOp::Power,
                FormulaExpr::Paren(Box::new(fop(FormulaOp::Plus, var("a"), var("b")))),
                FormulaExpr::Number(2.0)
            ))
        );
        assert_eq!(parse("y~-1"), formula(FormulaExpr::Number(-1.0)));
        assert_eq!(
            parse("y~x+-1"),
            formula(fop(FormulaOp::Plus, var("x"), FormulaExpr::Number(-1.0)))
        );
        assert_eq!(
            parse("y~a%in%b:c"),
            formula(fop(
                FormulaOp::In,
                var("a"),
                fop(FormulaOp::Colon, var("b"), var("c"))
            ))
        );
        assert_eq!(
            parse("glmDS1(formula = D$y~D$x, family='gaussian')"),
            Ok(call(
                "glmDS1",
                vec![
                    (
                        Some("formula"),
                        Expr::Formula {
                            response: "D$y".into(),
                            rhs: var("D$x")
                        }
                    ),
                    (Some("family"), Expr::Str("gaussian".into()))
                ]
            ))
        );
        assert_eq!(
            error("y-1~x"),
            "the response of a formula must be one variable, not 'y-1' at column 1"
        );
        assert_eq!(error("y~x/z"), "unexpected '/' at column 4");
        assert_eq!(error("y~1:2"), "unexpected '1:2' at column 3");
        assert_eq!(error("y~-x^2"), "unexpected '-' at column 3");
    }

    #[test]
    fn errors_say_where_and_what() {
        assert_eq!(error(""), "unexpected end of input at column 1");
        assert_eq!(error("meanDS(x"), "unexpected end of input at column 9");
        assert_eq!(error("meanDS(x))"), "unexpected ')' at column 10");
        assert_eq!(error("meanDS(x,)"), "unexpected ')' at column 10");
        assert_eq!(error("meanDS(,x)"), "unexpected ',' at column 8");
        assert_eq!(
            error("meanDS(x);meanDS(y)"),
            "unexpected 'meanDS' at column 11"
        );
        assert_eq!(
            error("meanDS(x)\nmeanDS(y)"),
            "unexpected 'meanDS' at column 11"
        );
        assert_eq!(
            error("x = meanDS(y)"),
            "'=' is only allowed to name an argument of a call, as in f(x, k=3) at column 3"
        );
        assert_eq!(
            error("f(a + b = c)"),
            "'=' is only allowed to name an argument of a call, as in f(x, k=3) at column 9"
        );
        assert_eq!(
            error("f(a = b = c)"),
            "'=' is only allowed to name an argument of a call, as in f(x, k=3) at column 9"
        );
        assert_eq!(error("base::system('ls')"), "unexpected ':' at column 5");
        assert_eq!(error("x <- 1"), "character '<' is not allowed at column 3");
        assert_eq!(
            error("`meanDS`(x)"),
            "character '`' is not allowed at column 1"
        );
        assert_eq!(
            error("meanDS(x) # mean"),
            "character '#' is not allowed at column 11"
        );
        assert_eq!(
            error("f(99999999999999999999:1)"),
            "the range bound 99999999999999999999 is too large at column 3"
        );
    }

    #[test]
    fn limits_bound_length_depth_and_arguments() {
        let long = format!("f('{}')", "a".repeat(MAX_TEXT_BYTES));
        assert!(error(&long).starts_with("the call is 32773 bytes long"));
        let nested = |n: usize| format!("{}x{}", "f(".repeat(n), ")".repeat(n));
        assert!(parse(&nested(MAX_DEPTH - 1)).is_ok());
        assert!(error(&nested(MAX_DEPTH + 1)).contains("nests more than 100 levels deep"));
        assert!(error(&nested(100_000 / 3)).starts_with("the call is"));
        assert!(error(&nested(10_000)).contains("nests more than"));
        let parens = |n: usize| format!("{}x{}", "(".repeat(n), ")".repeat(n));
        assert!(error(&parens(5_000)).contains("nests more than"));
        let chain = |n: usize| vec!["x"; n].join(" + ");
        assert!(parse(&chain(MAX_DEPTH - 1)).is_ok());
        assert!(error(&chain(5_000)).contains("nests more than"));
        assert!(error(&vec!["x"; 5_000].join("-")).contains("nests more than"));
        assert!(error(&format!("y~{}", vec!["x"; 5_000].join("+"))).contains("nests more than"));
        assert!(
            error(&format!("y~{}x{}", "(".repeat(5_000), ")".repeat(5_000)))
                .contains("nests more than")
        );
        let args = |n: usize| format!("f({})", vec!["x"; n].join(","));
        assert!(parse(&args(MAX_ARGS)).is_ok());
        assert_eq!(
            error(&args(MAX_ARGS + 1)),
            "a call may have at most 64 arguments at column 131"
        );
    }

    /// No input makes the parser panic or overflow: random bytes, and valid calls mutated by
    /// inserting, deleting and replacing characters drawn from the grammar's own alphabet.
    #[test]
    fn no_input_panics() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1954);
        let seeds = [
            "meanDS(D$age)",
            "glmDS2(D$y~D$x+D$z:D$w-1, family='binomial', beta.vect='0.1,0.2', k=3L)",
            "histogramDS1(D$x, method.indicator=1, k=3, noise=0.25)",
            "f(a - b + c * (d ^ 2) / e %*% g ! h, 1:10, -1.5e-3, 'x$y')",
            "y~(a+b)^2%in%c",
        ];
        let alphabet = b"abxyzDLe019$._-+*/^!=%:;,~()'\" \n[]`#<>{}\\";
        for round in 0..20_000 {
            let bytes: Vec<u8> = if round % 4 == 0 {
                let length = rng.random_range(0..40);
                (0..length).map(|_| rng.random()).collect()
            } else {
                let mut bytes = seeds[round % seeds.len()].as_bytes().to_vec();
                for _ in 0..rng.random_range(1..6) {
                    let at = rng.random_range(0..=bytes.len());
                    let c = alphabet[rng.random_range(0..alphabet.len())];
                    match rng.random_range(0..3) {
                        0 => bytes.insert(at, c),
                        1 if at < bytes.len() => {
                            bytes.remove(at);
                        }
                        _ if at < bytes.len() => bytes[at] = c,
                        _ => bytes.push(c),
                    }
                }
                bytes
            };
            let text = String::from_utf8_lossy(&bytes);
            if let Ok(expr) = parse(&text) {
                // What is accepted renders (walks the whole tree) without trouble.
                let _ = expr.to_string();
            }
        }
    }
}
