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

/// The R code Opal's rewrite (datashield4j's `RScriptGeneratorV2`) would send for this tree,
/// function names unmapped: each operator as `base::'op'(lhs, rhs)`, named arguments as
/// `name = value`, formulas and strings verbatim. For logs and tests.
impl std::fmt::Display for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expr::Symbol(name) => f.write_str(name),
            Expr::Str(text) => write!(f, "'{text}'"),
            Expr::Number { value, integer } => {
                write_number(f, *value)?;
                if *integer { f.write_str("L") } else { Ok(()) }
            }
            Expr::Range { from, to } => write!(f, "{from}:{to}"),
            Expr::Call { function, args } => {
                write!(f, "{function}(")?;
                for (i, arg) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    if let Some(name) = &arg.name {
                        write!(f, "{name} = ")?;
                    }
                    write!(f, "{}", arg.value)?;
                }
                f.write_str(")")
            }
            Expr::Binary { op, lhs, rhs } => write!(f, "base::'{}'({lhs}, {rhs})", op.symbol()),
            Expr::Paren(inner) => write!(f, "{inner}"),
            Expr::Formula { response, rhs } => write!(f, "{response}~{rhs}"),
        }
    }
}

impl std::fmt::Display for FormulaExpr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FormulaExpr::Variable(name) => f.write_str(name),
            FormulaExpr::Number(value) => write_number(f, *value),
            FormulaExpr::Paren(inner) => write!(f, "({inner})"),
            FormulaExpr::Op { op, lhs, rhs } => {
                let op = match op {
                    FormulaOp::Plus => "+",
                    FormulaOp::Minus => "-",
                    FormulaOp::Times => "*",
                    FormulaOp::Power => "^",
                    FormulaOp::Colon => ":",
                    FormulaOp::In => "%in%",
                };
                write!(f, "{lhs}{op}{rhs}")
            }
        }
    }
}

/// A number as R can read it back exactly (Rust's shortest round-trip digits).
fn write_number(f: &mut std::fmt::Formatter<'_>, value: f64) -> std::fmt::Result {
    if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e15 {
        write!(f, "{value:.0}")
    } else {
        write!(f, "{value:e}")
    }
}
