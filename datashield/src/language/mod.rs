//! DataSHIELD's call language (the v2 grammar of datashield4j, which Opal and Armadillo use):
//! the syntax tree, the parser, and the allow-list check that runs before anything is evaluated.

mod ast;
mod lexer;
pub mod ops;
mod parser;
mod validate;

pub use ast::{Arg, BinaryOp, Expr, FormulaExpr, FormulaOp};
pub use parser::{MAX_ARGS, MAX_DEPTH, MAX_TEXT_BYTES, parse};
pub use validate::check;
