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
            return Err(DsError::Parse(format!(
                "an aggregate call must invoke a function, not be {}",
                describe(root)
            )));
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
                return Err(DsError::NoSuchMethod {
                    kind: kind.as_str(),
                    name: function.clone(),
                });
            }
            args.iter()
                .try_for_each(|arg| allowed(&arg.value, kind, methods))
        }
        Expr::Binary { lhs, rhs, .. } => {
            allowed(lhs, kind, methods)?;
            allowed(rhs, kind, methods)
        }
        Expr::Paren(inner) => allowed(inner, kind, methods),
        // A formula's terms are names and numbers only: the grammar has no calls in them.
        Expr::Symbol(_)
        | Expr::Str(_)
        | Expr::Number { .. }
        | Expr::Range { .. }
        | Expr::Formula { .. } => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::{Invocation, Method};
    use crate::language::parse;
    use crate::value::RObject;

    fn nothing(_: &Invocation<'_>) -> Result<RObject, DsError> {
        Ok(RObject::null())
    }

    fn table() -> MethodTable {
        let method = |name, kind| Method {
            name,
            kind,
            package: "test",
            builtin: nothing,
        };
        MethodTable::new([
            method("meanDS", MethodKind::Aggregate),
            method("classDS", MethodKind::Aggregate),
            method("asNumericDS", MethodKind::Assign),
            method("c", MethodKind::Assign),
        ])
    }

    fn checked(text: &str, kind: MethodKind) -> Result<(), DsError> {
        check(&parse(text)?, kind, &table())
    }

    fn no_such(kind: MethodKind, name: &str) -> Result<(), DsError> {
        Err(DsError::NoSuchMethod {
            kind: kind.as_str(),
            name: name.into(),
        })
    }

    #[test]
    fn allowed_calls_pass() {
        use MethodKind::*;
        for (text, kind) in [
            ("meanDS(D$age)", Aggregate),
            ("(meanDS(D$age))", Aggregate),
            ("meanDS(D$age * 2 - 1)", Aggregate),
            ("meanDS(x = classDS('D'))", Aggregate),
            ("D$age * 2", Assign),
            ("D$age-1", Assign),
            ("asNumericDS('D$x')", Assign),
            ("c(1, 2, asNumericDS(D$x))", Assign),
            ("D", Assign),
            ("y~x", Assign),
        ] {
            assert_eq!(checked(text, kind), Ok(()), "{text}");
        }
    }

    /// Every function name anywhere must be in the table of the call's kind: R's dangerous
    /// functions are refused by name, in any position.
    #[test]
    fn every_function_name_must_be_allowed() {
        use MethodKind::*;
        for (text, kind, name) in [
            ("meanDS(get('D'))", Aggregate, "get"),
            ("system('ls')", Aggregate, "system"),
            ("system('ls')", Assign, "system"),
            ("eval(parse(text='x'))", Aggregate, "eval"),
            ("meanDS(eval(parse(text='x')))", Aggregate, "eval"),
            ("do.call(meanDS, D)", Aggregate, "do.call"),
            ("assign('x', 1)", Assign, "assign"),
            ("meanDS(D$x + get(y))", Aggregate, "get"),
            ("meanDS(x=system('ls'))", Aggregate, "system"),
            ("meanDS(D$x - exp(1))", Aggregate, "exp"),
            ("D$x * Sys.getenv('HOME')", Assign, "Sys.getenv"),
            ("(1 + readRDS('f'))", Assign, "readRDS"),
            // A method of the other kind is not allowed either.
            ("meanDS(D)", Assign, "meanDS"),
            ("asNumericDS('D$x')", Aggregate, "asNumericDS"),
            ("meanDS(asNumericDS(D$x))", Aggregate, "asNumericDS"),
            // Names are matched exactly.
            ("MeanDS(D)", Aggregate, "MeanDS"),
            ("meanDS-x(D)", Aggregate, "meanDS-x"),
            ("D$meanDS(D)", Aggregate, "D$meanDS"),
        ] {
            assert_eq!(checked(text, kind), no_such(kind, name), "{text}");
        }
    }

    #[test]
    fn an_aggregate_call_must_be_one_function_call() {
        for (text, what) in [
            ("D$age", "a symbol"),
            ("'D'", "a string"),
            ("3", "a number"),
            ("1:3", "a number"),
            ("meanDS(D) + 1", "an operation"),
            ("1 + meanDS(D)", "an operation"),
            ("D$x-1", "an operation"),
            ("y~x", "a formula"),
        ] {
            assert_eq!(
                checked(text, MethodKind::Aggregate),
                Err(DsError::Parse(format!(
                    "an aggregate call must invoke a function, not be {what}"
                ))),
                "{text}"
            );
        }
    }

    /// Ways out of the grammar: each is refused by the parser before any name is looked up.
    #[test]
    fn escapes_are_refused_by_the_grammar() {
        for text in [
            "x <- meanDS(D)",
            "x = meanDS(D)",
            "meanDS(x <- D)",
            "`meanDS`(D)",
            "`system`('ls')",
            "D[1]",
            "D[[1]]",
            "D$x[D$y > 1]",
            "base::system('x')",
            "dsBase:::meanDS(D)",
            "meanDS(D); system('ls')",
            "meanDS(D)\nsystem('ls')",
            "meanDS(D)\r\nmeanDS(E)",
            "meanDS(D) # comment",
            "#meanDS(D)",
            "meanDS(\u{FF24})",
            "m\u{0435}anDS(D)",
            "meanDS\u{FF08}D\u{FF09}",
            "meanDS(D\u{200B})",
            "meanDS('a b')",
            "meanDS('a(b)')",
            "meanDS('a[1]')",
            "meanDS(\"x'); system('ls\")",
            "meanDS('')",
            "function(x) x",
            "meanDS(function(x) x)",
            "{meanDS(D)}",
            "meanDS(D) | system('ls')",
            "meanDS(D) && TRUE",
            "meanDS(D)@x",
            "meanDS(~x)",
            "meanDS(D$x %o% D$x)",
            "meanDS(D, ...)",
            "meanDS(if)",
            "meanDS(D\\x)",
            "meanDS(D)\0",
        ] {
            for kind in [MethodKind::Aggregate, MethodKind::Assign] {
                assert!(
                    matches!(checked(text, kind), Err(DsError::Parse(_))),
                    "{text:?} was not refused as a parse error"
                );
            }
        }
        let long = format!("meanDS('{}')", "a".repeat(40_000));
        assert!(matches!(
            checked(&long, MethodKind::Aggregate),
            Err(DsError::Parse(_))
        ));
        let deep = format!("{}D{}", "meanDS(".repeat(1_000), ")".repeat(1_000));
        assert!(matches!(
            checked(&deep, MethodKind::Aggregate),
            Err(DsError::Parse(_))
        ));
    }
}
