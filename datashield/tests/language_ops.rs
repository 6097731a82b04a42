//! R's binary arithmetic against R itself: every pair of a set of operands (NA, NaN, infinities,
//! integer overflow, recycling, names, matrices, custom attributes, empty vectors) under each of
//! `+ - * / ^`, compared bit for bit (doubles as their IEEE bits, so NA and NaN stay apart),
//! with the result's type, attribute order and values, or R's error.

mod common;

use trellis_datashield::language::ops::binary;
use trellis_datashield::language::{BinaryOp, parse};
use trellis_datashield::value::{RObject, Vector, na_real};

/// An operand, built both here and as R code.
struct Operand {
    object: RObject,
    r: String,
}

fn doubles(xs: &[f64]) -> Operand {
    let bytes: Vec<String> = xs
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .map(|b| format!("0x{b:02x}"))
        .collect();
    let r = format!(
        "readBin(as.raw(c({})), 'double', {}, endian='little')",
        bytes.join(","),
        xs.len()
    );
    let r = if xs.is_empty() {
        "numeric(0)".to_owned()
    } else {
        r
    };
    Operand {
        object: RObject::doubles(xs.to_vec()),
        r,
    }
}

fn integers(xs: &[Option<i32>]) -> Operand {
    let items: Vec<String> = xs
        .iter()
        .map(|x| x.map_or("NA".to_owned(), |x| format!("{x}L")))
        .collect();
    Operand {
        object: RObject::integers(xs.to_vec()),
        r: format!("as.integer(c({}))", items.join(",")),
    }
}

fn logicals(xs: &[Option<bool>]) -> Operand {
    let items: Vec<&str> = xs
        .iter()
        .map(|x| x.map_or("NA", |x| if x { "TRUE" } else { "FALSE" }))
        .collect();
    Operand {
        object: RObject::logicals(xs.to_vec()),
        r: format!("as.logical(c({}))", items.join(",")),
    }
}

fn r_strings(xs: &[&str]) -> String {
    format!(
        "c({})",
        xs.iter()
            .map(|x| format!("'{x}'"))
            .collect::<Vec<_>>()
            .join(",")
    )
}

fn with_names(mut operand: Operand, names: &[&str]) -> Operand {
    operand
        .object
        .set_attr("names", RObject::strings(names.iter().copied()));
    operand.r = format!("structure({}, names={})", operand.r, r_strings(names));
    operand
}

fn with_dim(mut operand: Operand, dim: &[i32], dimnames: Option<(&[&str], &[&str])>) -> Operand {
    operand.object.set_attr(
        "dim",
        RObject::integers(dim.iter().map(|d| Some(*d)).collect()),
    );
    let dims = dim
        .iter()
        .map(|d| format!("{d}L"))
        .collect::<Vec<_>>()
        .join(",");
    operand.r = format!("structure({}, dim=c({dims}))", operand.r);
    if let Some((rows, columns)) = dimnames {
        operand.object.set_attr(
            "dimnames",
            RObject::list(vec![
                RObject::strings(rows.iter().copied()),
                RObject::strings(columns.iter().copied()),
            ]),
        );
        operand.r = format!(
            "structure({}, dimnames=list({}, {}))",
            operand.r,
            r_strings(rows),
            r_strings(columns)
        );
    }
    operand
}

fn with_attr(mut operand: Operand, name: &str, value: &str) -> Operand {
    operand.object.set_attr(name, RObject::string(value));
    operand.r = format!("structure({}, {name}='{value}')", operand.r);
    operand
}

fn operands() -> Vec<Operand> {
    let nan = f64::NAN;
    vec![
        doubles(&[
            1.5,
            -0.0,
            na_real(),
            nan,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e308,
            3.0,
            0.1,
            2.0,
        ]),
        doubles(&[0.0, nan, na_real(), 2.0, -3.0]),
        doubles(&[-2.5, 0.5, 1.0, -1.0, 1e-300, 7.0, -8.0]),
        doubles(&[]),
        integers(&[
            Some(1),
            None,
            Some(2_147_483_647),
            Some(-2_147_483_647),
            Some(0),
            Some(7),
            Some(-3),
        ]),
        integers(&[Some(1), Some(2_147_483_647), None]),
        integers(&[
            Some(-2),
            Some(0),
            Some(46_341),
            None,
            Some(1),
            Some(-1),
            Some(3),
            Some(2),
            Some(5),
            Some(-7),
        ]),
        logicals(&[Some(true), None, Some(false)]),
        with_names(doubles(&[1.0, 2.0, na_real()]), &["a", "b", "c"]),
        with_names(integers(&[Some(4), Some(5), Some(6)]), &["u", "v", "w"]),
        with_dim(
            integers(&[Some(1), Some(2), Some(3), Some(4), Some(5), Some(6)]),
            &[2, 3],
            None,
        ),
        with_dim(
            doubles(&[0.5, -1.0, 2.0, 4.0, nan, 8.0]),
            &[2, 3],
            Some((&["r1", "r2"], &["a", "b", "c"])),
        ),
        with_dim(doubles(&[2.0]), &[1, 1], None),
        with_attr(
            with_attr(doubles(&[3.0, -3.0, 0.0]), "foo", "x"),
            "class",
            "myclass",
        ),
        with_attr(
            integers(&[Some(2), Some(3), Some(4), Some(5), Some(6)]),
            "units",
            "cm",
        ),
        doubles(&[2.0]),
        integers(&[Some(0)]),
        Operand {
            object: RObject::null(),
            r: "NULL".into(),
        },
        Operand {
            object: RObject::string("a"),
            r: "'a'".into(),
        },
    ]
}

const OPS: [(BinaryOp, &str); 5] = [
    (BinaryOp::Add, "+"),
    (BinaryOp::Subtract, "-"),
    (BinaryOp::Multiply, "*"),
    (BinaryOp::Divide, "/"),
    (BinaryOp::Power, "^"),
];

/// The line R prints for a result (see `SHOW` below).
fn show(result: &Result<RObject, trellis_datashield::error::DsError>) -> String {
    let object = match result {
        Ok(object) => object,
        Err(error) => return format!("ERROR{error}"),
    };
    let values = match &object.vector {
        Vector::Double(v) => v
            .iter()
            .map(|x| format!("{:016x}", x.to_bits()))
            .collect::<Vec<_>>()
            .join(","),
        Vector::Integer(v) => v
            .iter()
            .map(|x| x.map_or("NA".into(), |x| x.to_string()))
            .collect::<Vec<_>>()
            .join(","),
        other => format!("unexpected {}", other.type_name()),
    };
    let attributes: Vec<String> = object
        .attributes
        .iter()
        .map(|(name, value)| {
            let text = match &value.vector {
                Vector::Character(v) => v
                    .iter()
                    .map(|s| s.clone().unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join(","),
                Vector::Integer(v) => v
                    .iter()
                    .map(|x| x.map_or("NA".into(), |x| x.to_string()))
                    .collect::<Vec<_>>()
                    .join(","),
                Vector::List(items) => items
                    .iter()
                    .flat_map(|item| item.str_values())
                    .collect::<Vec<_>>()
                    .join(","),
                other => format!("unexpected {}", other.type_name()),
            };
            format!("{name}={text}")
        })
        .collect();
    format!(
        "{} {} [{}]",
        object.vector.type_name(),
        values,
        attributes.join(";")
    )
}

const SHOW: &str = r#"
show <- function(expr) {
  r <- tryCatch(suppressWarnings(expr), error = function(e) e)
  if (inherits(r, "error")) return(cat("ERROR", conditionMessage(r), "\n", sep = ""))
  if (is.double(r)) {
    bytes <- as.character(writeBin(as.vector(r), raw(), endian = "big"))
    v <- if (length(r) == 0) "" else paste(apply(matrix(bytes, nrow = 8), 2, paste, collapse = ""), collapse = ",")
  } else {
    v <- paste(ifelse(is.na(r), "NA", as.character(as.vector(r))), collapse = ",")
  }
  a <- attributes(r)
  at <- vapply(names(a), function(n) paste0(n, "=", paste(unlist(a[[n]]), collapse = ",")), "")
  cat(typeof(r), " ", v, " [", paste(at, collapse = ";"), "]\n", sep = "")
}
"#;

#[test]
fn arithmetic_matches_r_bit_for_bit() {
    let operands = operands();
    let mut script = String::from(SHOW);
    for (i, operand) in operands.iter().enumerate() {
        script.push_str(&format!("x{i} <- {}\n", operand.r));
    }
    let mut ours = Vec::new();
    for (i, x) in operands.iter().enumerate() {
        for (j, y) in operands.iter().enumerate() {
            for (op, symbol) in OPS {
                script.push_str(&format!("show(x{i} {symbol} x{j})\n"));
                ours.push((
                    format!("x{i} {symbol} x{j}"),
                    show(&binary(op, &x.object, &y.object)),
                ));
            }
        }
    }
    // Too long for `Rscript -e`: R sources it from a file.
    let path = common::scratch_file("language_ops.R", script.as_bytes());
    let r = common::rscript(&format!("source('{}')", path.display()));
    let theirs: Vec<&str> = r.lines().collect();
    assert_eq!(theirs.len(), ours.len(), "R printed:\n{r}");
    let mismatches: Vec<String> = ours
        .iter()
        .zip(&theirs)
        .filter(|((_, ours), theirs)| ours.trim() != theirs.trim())
        .map(|((call, ours), theirs)| format!("{call}\n  ours: {ours}\n  R:    {theirs}"))
        .collect();
    assert!(
        mismatches.is_empty(),
        "{} of {} differ from R:\n{}",
        mismatches.len(),
        ours.len(),
        mismatches.join("\n")
    );
}

#[test]
fn factors_strings_and_unsupported_operators_are_refused_with_rs_words() {
    let factor = RObject::factor(vec![Some(1), Some(2)], vec!["a".into(), "b".into()]);
    let one = RObject::double(1.0);
    let message = |op, x: &RObject, y: &RObject| {
        binary(op, x, y)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    assert_eq!(
        message(BinaryOp::Add, &factor, &one),
        "'+' not meaningful for factors"
    );
    assert_eq!(
        message(BinaryOp::Power, &one, &factor),
        "'^' not meaningful for factors"
    );
    assert_eq!(
        message(BinaryOp::Multiply, &RObject::string("a"), &one),
        "non-numeric argument to binary operator"
    );
    assert_eq!(
        message(BinaryOp::Add, &one, &RObject::list(vec![one.clone()])),
        "non-numeric argument to binary operator"
    );
    let frame = RObject::data_frame([("x", one.clone())], 1);
    assert_eq!(
        message(BinaryOp::Add, &frame, &one),
        "arithmetic on a data frame is not supported"
    );
    assert_eq!(
        message(BinaryOp::Not, &one, &one),
        "2 arguments passed to '!' which requires 1"
    );
    assert_eq!(
        message(BinaryOp::MatrixMultiply, &one, &one),
        "matrix multiplication (%*%) is not supported by this server"
    );
    // R's own messages, from R.
    let r = common::rscript(
        "for (e in list(quote(factor('a') + 1), quote('a' * 1), quote(base::'!'(TRUE, FALSE)))) \
         cat(tryCatch(withCallingHandlers(eval(e), warning = function(w) stop(conditionMessage(w))), \
         error = function(e) conditionMessage(e)), '\\n')",
    );
    let r: Vec<String> = r
        .lines()
        .map(|line| line.trim().replace(['\u{2018}', '\u{2019}'], "'"))
        .collect();
    assert_eq!(
        r,
        vec![
            "'+' not meaningful for factors",
            "non-numeric argument to binary operator",
            "2 arguments passed to '!' which requires 1"
        ]
    );
}

/// Parsed and evaluated through the session: operators nest as Opal nests them, identifiers with
/// `-` subtract, and R's constants are known.
#[test]
fn expressions_evaluate_as_opal_runs_them_in_r() {
    use trellis_datashield::eval::{Env, MethodKind, MethodTable, Symbols};
    use trellis_datashield::settings::DisclosureSettings;
    let mut symbols = Symbols::new();
    symbols.insert(
        "D".into(),
        RObject::data_frame(
            [
                ("age", RObject::doubles(vec![30.0, 41.5, na_real()])),
                ("n", RObject::integers(vec![Some(1), Some(2), None])),
            ],
            3,
        )
        .into(),
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
    let eval = |text: &str| {
        let expr = parse(text).map_err(|e| e.to_string())?;
        env.evaluate(&expr)
            .map(|v| show(&Ok(v)))
            .map_err(|e| e.to_string())
    };
    // Opal's rewrites, run in R with the same data.
    let cases = [
        "D$age-1",
        "D$age - 1",
        "D$age * 2 + 1",
        "(D$age * 2) + 1",
        "D$n - D$n-1",
        "D$n*2L",
        "D$n/2L",
        "D$age ^ 0.5",
        "1:3 * TRUE",
        "D$n + NA",
        "2 - -1",
        "-2147483647L - 1L",
        "NULL + 1",
    ];
    let rewrite = |text: &str| parse(text).map(|e| e.to_string()).unwrap_or_default();
    let mut script = String::from(SHOW);
    script.push_str("D <- data.frame(age = c(30, 41.5, NA), n = c(1L, 2L, NA))\n");
    for text in cases {
        script.push_str(&format!("show({})\n", rewrite(text)));
    }
    let r = common::rscript(&script);
    for (text, theirs) in cases.iter().zip(r.lines()) {
        assert_eq!(
            eval(text).as_deref().map(str::trim),
            Ok(theirs.trim()),
            "{text} (R ran {})",
            rewrite(text)
        );
    }
    assert_eq!(r.lines().count(), cases.len());
    assert_eq!(eval("TRUE"), Ok(show(&Ok(RObject::logical(true)))));
    assert_eq!(eval("FALSE").map(|s| s.starts_with("logical")), Ok(true));
    assert_eq!(eval("NULL"), Ok("NULL unexpected NULL []".into()));
    assert_eq!(eval("T"), Err("object 'T' not found".into()));
    assert_eq!(
        eval("D$age + 'a'"),
        Err("non-numeric argument to binary operator".into())
    );
    assert_eq!(
        eval("TRUE$x"),
        Err("$ operator is invalid for atomic vectors".into())
    );
}
