//! The allow-list check that runs on a parsed call before anything is evaluated, as Opal's
//! datashield4j does: an aggregate call must be exactly one function call at its root
//! (`FirstNodeInvokesFunctionValidator`), and every function named anywhere in the call must be
//! in the profile's table for the call's kind (else Opal answers 404, "no such method").
//!
//! Nothing else can reach R's functions: the grammar has no backticks, `[`, `::`, `<-`, `$`
//! calls or strings that could hold code, so `get`, `eval`, `system`, `do.call`, `assign` and
//! the like are refused here by name, being in no table.

use super::ast::Expr;
use crate::error::DsError;
use crate::eval::{MethodKind, MethodTable};

/// Checks a parsed call against the profile's methods for `kind`.
pub fn check(expr: &Expr, kind: MethodKind, methods: &MethodTable) -> Result<(), DsError> {
    if kind == MethodKind::Aggregate {
        // Opal's grammar makes no node for parentheses, so `(f(x))` is still a call at the root.
        let mut root = expr;
        while let Expr::Paren(inner) = root {
            root = inner;
        }
        if !matches!(root, Expr::Call { .. }) {
            return Err(DsError::Parse(format!("an aggregate call must invoke a function, not be {}", describe(root))));
        }
    }
    allowed(expr, kind, methods)
}

fn describe(expr: &Expr) -> &'static str {
    match expr {
        Expr::Symbol(_) => "a symbol",
        Expr::Str(_) => "a string",
        Expr::Number { .. } | Expr::Range { .. } => "a number",
        Expr::Binary { .. } => "an operation",
        Expr::Formula { .. } => "a formula",
        Expr::Call { .. } | Expr::Paren(_) => "a call",
    }
}

/// Every function named in `expr` is in the table (the parser bounds the recursion's depth).
fn allowed(expr: &Expr, kind: MethodKind, methods: &MethodTable) -> Result<(), DsError> {
    match expr {
        Expr::Call { function, args } => {
            if methods.get(kind, function).is_none() {
                return Err(DsError::NoSuchMethod { kind: kind.as_str(), name: function.clone() });
            }
            args.iter().try_for_each(|arg| allowed(&arg.value, kind, methods))
        }
        Expr::Binary { lhs, rhs, .. } => {
            allowed(lhs, kind, methods)?;
            allowed(rhs, kind, methods)
        }
        Expr::Paren(inner) => allowed(inner, kind, methods),
        // A formula's terms are names and numbers only: the grammar has no calls in them.
        Expr::Symbol(_) | Expr::Str(_) | Expr::Number { .. } | Expr::Range { .. } | Expr::Formula { .. } => Ok(()),
    }
}
