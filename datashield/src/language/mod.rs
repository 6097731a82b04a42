//! DataSHIELD's call language (the v2 grammar of datashield4j, which Opal and Armadillo use):
//! the syntax tree, the parser, and the allow-list check that runs before anything is evaluated.

mod ast;

pub use ast::{Arg, BinaryOp, Expr, FormulaExpr, FormulaOp};
