//! DataSHIELD's call language (the v2 grammar of datashield4j, which Opal and Armadillo use):
//! the syntax tree, the parser, and the allow-list check that runs before anything is evaluated.

mod ast;

pub use ast::{Arg, BinaryOp, Expr, FormulaExpr, FormulaOp};

// TEMPORARY placeholders until the parser lands (replaced by language/{parser,validate}.rs).
pub fn parse(_text: &str) -> Result<Expr, crate::error::DsError> { unimplemented!() }
pub fn check(_e: &Expr, _k: crate::eval::MethodKind, _m: &crate::eval::MethodTable) -> Result<(), crate::error::DsError> { unimplemented!() }
