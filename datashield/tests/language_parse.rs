//! The parser's reading of formulas against R's: Opal sends a formula's tokens to R as one
//! string, so the tree must group as R's own parser groups that string. Both sides are rendered
//! fully bracketed and compared. Also: whatever the parser accepts from random input, the
//! allow-list check and the evaluator handle without a panic.

mod common;

use rand::{Rng, SeedableRng};
use trellis_datashield::eval::{Env, MethodKind, MethodTable, Symbols};
use trellis_datashield::language::{Expr, FormulaExpr, FormulaOp, check, parse};
use trellis_datashield::settings::DisclosureSettings;
use trellis_datashield::value::{RObject, na_real};

fn bracketed(expr: &FormulaExpr) -> String {
    match expr {
        FormulaExpr::Variable(name) => name.clone(),
        FormulaExpr::Number(value) => format!("{value}"),
        FormulaExpr::Paren(inner) => format!("({})", bracketed(inner)),
        FormulaExpr::Op { op, lhs, rhs } => {
            let op = match op {
                FormulaOp::Plus => "+",
                FormulaOp::Minus => "-",
                FormulaOp::Times => "*",
                FormulaOp::Power => "^",
                FormulaOp::Colon => ":",
                FormulaOp::In => "%in%",
            };
            format!("[{}{op}{}]", bracketed(lhs), bracketed(rhs))
        }
    }
}

/// R's reading of a formula string, bracketed the same way (`D$x` and `-1` stay as written).
const R_BRACKETED: &str = r#"
b <- function(e) {
  if (is.call(e)) {
    op <- as.character(e[[1]])
    if (op == "$") return(paste0(b(e[[2]]), "$", b(e[[3]])))
    if (op == "(") return(paste0("(", b(e[[2]]), ")"))
    if (op == "-" && length(e) == 2 && is.numeric(e[[2]])) return(paste0("-", b(e[[2]])))
    if (op == "~") return(paste0(b(e[[2]]), "~", b(e[[3]])))
    return(paste0("[", b(e[[2]]), op, b(e[[3]]), "]"))
  }
  if (is.numeric(e)) return(format(e)) else return(as.character(e))
}
"#;

#[test]
fn formulas_group_as_r_parses_opals_string() {
    let formulas = [
        "y ~ x",
        "D$y ~ D$x + D$z",
        "y ~ a + b - c + d",
        "y ~ a - b - c",
        "y ~ a * b + c",
        "y ~ a + b * c",
        "y ~ a:b*c:d",
        "y ~ a*b:c",
        "y ~ a %in% b : c",
        "y ~ a:b %in% c",
        "y ~ a * b %in% c",
        "y ~ (a + b + c)^2",
        "y ~ (a + b)^2 - a:b",
        "y ~ a^2^3",
        "y ~ x - 1",
        "y ~ x-1",
        "y ~ x + -1",
        "y ~ -1 + x",
        "y ~ 0 + x",
        "y ~ x-y-z",
        "y ~ D$age-1 + D$sex",
        "y ~ a + (b - (c * d))",
        "y ~ x^-1",
        "y ~ -1:x",
        "A ~ B + (C * D)^4 : E %in% F",
    ];
    let mut script = String::from(R_BRACKETED);
    for text in formulas {
        script.push_str(&format!(
            "cat(b(parse(text = '{}')[[1]]), '\\n')\n",
            text.replace(' ', "")
        ));
    }
    let r = common::rscript(&script);
    let theirs: Vec<&str> = r.lines().map(str::trim).collect();
    assert_eq!(theirs.len(), formulas.len(), "R printed:\n{r}");
    for (text, theirs) in formulas.iter().zip(theirs) {
        let ours = match parse(text) {
            Ok(Expr::Formula { response, rhs }) => format!("{response}~{}", bracketed(&rhs)),
            other => panic!("{text}: {other:?}"),
        };
        assert_eq!(ours, theirs, "{text}");
    }
}

/// Random and mutated call texts: what parses is checked and evaluated without a panic.
#[test]
fn accepted_input_checks_and_evaluates_without_panic() {
    let mut symbols = Symbols::new();
    symbols.insert(
        "D".into(),
        RObject::data_frame(
            [
                ("x", RObject::doubles(vec![1.0, na_real(), f64::NAN])),
                ("n", RObject::integers(vec![Some(i32::MAX), None, Some(-3)])),
                (
                    "f",
                    RObject::factor(vec![Some(1), None, Some(2)], vec!["a".into(), "b".into()]),
                ),
            ],
            3,
        )
        .into(),
    );
    symbols.insert(
        "x".into(),
        RObject::matrix(vec![1.0, 2.0, 3.0, 4.0], 2, 2).into(),
    );
    let settings = DisclosureSettings::default();
    let methods = MethodTable::default();
    let env = Env {
        symbols: &symbols,
        settings: &settings,
        methods: &methods,
        kind: MethodKind::Assign,
        seed: 1,
    };
    let seeds = [
        "D$x-1 * D$n ^ 2L / (x + TRUE) - NA",
        "D$f + 1:3 - x ! D$x %*% x",
        "(D$n * 2147483647L) + -0.5e-3 / NULL",
        "f(D$x, k=3) + y~a+b:c",
    ];
    let alphabet = b"xnfDL019$.-+*/^!=%:;,~()' TRUENAlF";
    let mut rng = rand::rngs::StdRng::seed_from_u64(2026);
    let mut accepted = 0;
    for round in 0..20_000 {
        let mut bytes = seeds[round % seeds.len()].as_bytes().to_vec();
        for _ in 0..rng.random_range(1..5) {
            let at = rng.random_range(0..bytes.len());
            let c = alphabet[rng.random_range(0..alphabet.len())];
            match rng.random_range(0..3) {
                0 => bytes.insert(at, c),
                1 => {
                    bytes.remove(at);
                }
                _ => bytes[at] = c,
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(expr) = parse(&text) {
            accepted += 1;
            let _ = check(&expr, MethodKind::Aggregate, &methods);
            let _ = check(&expr, MethodKind::Assign, &methods);
            let _ = env.evaluate(&expr);
        }
    }
    // The mutations must reach the evaluator often enough to mean something.
    assert!(accepted > 1_000, "only {accepted} inputs parsed");
}
