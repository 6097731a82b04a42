//! The syntax tree of one DataSHIELD call.

/// An expression of the v2 grammar.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// An identifier; it may contain `$` (`D$age` is one symbol in this grammar), `.`, `_`, `-`.
    Symbol(String),
    /// A quoted string (the grammar allows only letters, digits and `_ . + - ; : , $`).
    Str(String),
    /// A number literal; `integer` when written with an `L` suffix.
    Number { value: f64, integer: bool },
    /// `from:to` with integer bounds.
    Range { from: i64, to: i64 },
    /// `f(args)`.
    Call { function: String, args: Vec<Arg> },
    /// `lhs op rhs` (R's `base::'op'(lhs, rhs)`).
    Binary {
        op: BinaryOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    /// `(expr)`.
    Paren(Box<Expr>),
    /// `response ~ terms`.
    Formula { response: String, rhs: FormulaExpr },
}

/// One argument of a call, named (`k=3`) or positional.
#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    pub name: Option<String>,
    pub value: Expr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Subtract,
    Multiply,
    Divide,
    Power,
    MatrixMultiply,
    Not,
}

impl BinaryOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Subtract => "-",
            BinaryOp::Multiply => "*",
            BinaryOp::Divide => "/",
            BinaryOp::Power => "^",
            BinaryOp::MatrixMultiply => "%*%",
            BinaryOp::Not => "!",
        }
    }
}

/// The right-hand side of a formula, left-associative as R parses it.
#[derive(Clone, Debug, PartialEq)]
pub enum FormulaExpr {
    Variable(String),
    Number(f64),
    Paren(Box<FormulaExpr>),
    Op {
        op: FormulaOp,
        lhs: Box<FormulaExpr>,
        rhs: Box<FormulaExpr>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormulaOp {
    Plus,
    Minus,
    Times,
    Power,
    Colon,
    In,
}
