//! The data-management functions against base R doing the same thing (factor(), as.numeric(),
//! complete.cases(), row subsets), and each disclosure rule just inside and just outside.

mod common;

use common::Session;

use trellis_datashield::error::DsError;
use trellis_datashield::eval::{MethodKind, Symbols};
use trellis_datashield::functions::assign::rm_ds;
use trellis_datashield::functions::numeric::number_string;
use trellis_datashield::language::Expr;
use trellis_datashield::settings::{DisclosureSettings, PrivacyControlLevel};
use trellis_datashield::value::{RObject, Vector, is_na_real, na_real};

// ---- a session --------------------------------------------------------------------------------

fn s(text: &str) -> Expr {
    Expr::Str(text.into())
}

fn sym(text: &str) -> Expr {
    Expr::Symbol(text.into())
}

fn number(value: f64) -> Expr {
    Expr::Number {
        value,
        integer: false,
    }
}

// ---- a text dump, the same in Rust and R, to compare whole objects ------------------------------

const R_DUMP: &str = r#"
dv <- function(v) {
  cat("class:", class(v), "\n")
  if (is.factor(v)) cat("levels:", levels(v), "\n")
  cat("dim:", dim(v), "\n")
  cat("names:", names(v), "\n")
  cat("colnames:", colnames(v), "\n")
  vals <- if (is.factor(v)) as.character(v) else if (is.numeric(v)) sprintf("%.17g", as.vector(v)) else as.character(as.vector(v))
  vals[is.na(v)] <- "NA"
  cat("values:", vals, "\n")
}
dump <- function(x) {
  if (is.data.frame(x)) {
    cat("class:", class(x), "\n"); cat("names:", names(x), "\n"); cat("rownames:", rownames(x), "\n")
    for (n in names(x)) dv(x[[n]])
  } else dv(x)
}
"#;

fn line(key: &str, tokens: Vec<String>) -> String {
    let mut l = format!("{key}:");
    for t in tokens {
        l.push(' ');
        l.push_str(&t);
    }
    l.push_str(" \n");
    l
}

fn strs(x: Option<&RObject>) -> Vec<String> {
    x.map(|x| x.str_values().into_iter().map(str::to_owned).collect())
        .unwrap_or_default()
}

fn dump_vector(v: &RObject) -> String {
    let mut out = line("class", v.class());
    if v.is_factor() {
        out += &line("levels", strs(v.attr("levels")));
    }
    out += &line(
        "dim",
        v.dim()
            .unwrap_or_default()
            .iter()
            .map(|d| d.to_string())
            .collect(),
    );
    out += &line("names", strs(v.attr("names")));
    let colnames = match v.attr("dimnames").map(|d| &d.vector) {
        Some(Vector::List(parts)) if parts.len() == 2 => strs(Some(&parts[1])),
        _ => Vec::new(),
    };
    out += &line("colnames", colnames);
    let levels = v.levels();
    let values: Vec<String> = match &v.vector {
        Vector::Integer(codes) if v.is_factor() => codes
            .iter()
            .map(|c| {
                c.and_then(|c| levels.get(c as usize - 1))
                    .map_or("NA".into(), |l| (*l).to_owned())
            })
            .collect(),
        Vector::Integer(x) => x
            .iter()
            .map(|i| i.map_or("NA".into(), |i| i.to_string()))
            .collect(),
        Vector::Double(x) => x
            .iter()
            .map(|d| {
                if d.is_nan() {
                    "NA".into()
                } else {
                    format!("{d:?}")
                }
            })
            .collect(),
        Vector::Logical(x) => x
            .iter()
            .map(|b| {
                b.map_or(
                    "NA".into(),
                    |b| if b { "TRUE".into() } else { "FALSE".into() },
                )
            })
            .collect(),
        Vector::Character(x) => x
            .iter()
            .map(|c| c.clone().unwrap_or_else(|| "NA".into()))
            .collect(),
        _ => vec!["?".into()],
    };
    out + &line("values", values)
}

fn dump(x: &RObject) -> String {
    if !x.is_data_frame() {
        return dump_vector(x);
    }
    let n = x.nrow().unwrap_or(0);
    let rownames: Vec<String> = match x.attr("row.names").map(|r| &r.vector) {
        Some(Vector::Integer(v)) if v.len() == 2 && v[0].is_none() => {
            (1..=n).map(|i| i.to_string()).collect()
        }
        Some(Vector::Integer(v)) => v
            .iter()
            .map(|i| i.map_or("NA".into(), |i| i.to_string()))
            .collect(),
        Some(Vector::Character(v)) => v.iter().map(|c| c.clone().unwrap_or_default()).collect(),
        _ => Vec::new(),
    };
    let mut out = line("class", x.class())
        + &line("names", strs(x.attr("names")))
        + &line("rownames", rownames);
    if let Vector::List(columns) = &x.vector {
        for c in columns {
            out += &dump_vector(c);
        }
    }
    out
}

/// Compares dumps token by token; numbers (R's %.17g, our shortest form) as numbers.
fn assert_same(ours: &str, r: &str, what: &str) {
    let ours_lines: Vec<&str> = ours.lines().collect();
    let r_lines: Vec<&str> = r.lines().collect();
    assert_eq!(
        ours_lines.len(),
        r_lines.len(),
        "{what}: ours\n{ours}\nR\n{r}"
    );
    for (a, b) in ours_lines.iter().zip(&r_lines) {
        let (ta, tb): (Vec<&str>, Vec<&str>) = (
            a.split_whitespace().collect(),
            b.split_whitespace().collect(),
        );
        let same = ta.len() == tb.len()
            && ta.iter().zip(&tb).all(|(x, y)| {
                x == y || matches!((x.parse::<f64>(), y.parse::<f64>()), (Ok(p), Ok(q)) if p == q)
            });
        assert!(same, "{what}: ours `{a}`, R `{b}`\nours\n{ours}\nR\n{r}");
    }
}

fn r_dump(setup: &str, expr: &str) -> String {
    common::rscript(&format!("{R_DUMP}\n{setup}\ndump({expr})"))
}

// ---- data -------------------------------------------------------------------------------------

fn doubles_r(xs: &[Option<f64>]) -> (RObject, String) {
    let obj = RObject::doubles(xs.iter().map(|x| x.unwrap_or_else(na_real)).collect());
    let r = xs
        .iter()
        .map(|x| x.map_or("NA".into(), |v| format!("{v:?}")))
        .collect::<Vec<_>>()
        .join(",");
    (obj, format!("c({r})"))
}

fn strings_r(xs: &[Option<&str>]) -> (RObject, String) {
    let obj = RObject::new(Vector::Character(
        xs.iter().map(|x| x.map(str::to_owned)).collect(),
    ));
    let r = xs
        .iter()
        .map(|x| x.map_or("NA".into(), |v| format!("\"{v}\"")))
        .collect::<Vec<_>>()
        .join(",");
    (obj, format!("c({r})"))
}

fn factor_r(xs: &[Option<&str>], levels: &[&str]) -> (RObject, String) {
    let obj = RObject::factor(
        xs.iter()
            .map(|x| {
                x.and_then(|x| levels.iter().position(|l| *l == x))
                    .map(|i| i as i32 + 1)
            })
            .collect(),
        levels.iter().map(|l| (*l).to_owned()).collect(),
    );
    let (_, values) = strings_r(xs);
    let lv = levels
        .iter()
        .map(|l| format!("\"{l}\""))
        .collect::<Vec<_>>()
        .join(",");
    (obj, format!("factor({values}, levels=c({lv}))"))
}

/// Twelve rows: age (with NA), sex (factor with NA), group (character), score.
fn people() -> (RObject, String) {
    let (age, age_r) = doubles_r(&[
        Some(34.0),
        Some(51.0),
        None,
        Some(40.0),
        Some(29.0),
        Some(62.0),
        Some(40.0),
        Some(45.5),
        Some(40.0),
        None,
        Some(33.0),
        Some(55.0),
    ]);
    let sexes = [
        Some("F"),
        Some("M"),
        Some("M"),
        None,
        Some("F"),
        Some("M"),
        Some("F"),
        Some("F"),
        Some("M"),
        Some("F"),
        Some("M"),
        Some("M"),
    ];
    let (sex, sex_r) = factor_r(&sexes, &["F", "M"]);
    let (grp, grp_r) = strings_r(&[
        Some("b"),
        Some("a"),
        Some("c"),
        Some("a"),
        Some("B"),
        Some("b"),
        Some("a"),
        Some("c"),
        Some("a"),
        Some("b"),
        Some("c"),
        Some("a"),
    ]);
    let (score, score_r) = doubles_r(&(1..=12).map(|i| Some(i as f64 * 1.25)).collect::<Vec<_>>());
    let df = RObject::data_frame(
        [("age", age), ("sex", sex), ("grp", grp), ("score", score)],
        12,
    );
    (
        df,
        format!(
            "D <- data.frame(age={age_r}, sex={sex_r}, grp={grp_r}, score={score_r}, stringsAsFactors=FALSE)"
        ),
    )
}

// ---- R's number text ---------------------------------------------------------------------------

#[test]
fn numbers_become_text_as_r_as_character_writes_them() {
    let xs = [
        0.1 + 0.2,
        1e5,
        123456.0,
        1e-4,
        1e15,
        1e-20,
        123456789012.0,
        0.33 * 10.0,
        1.0 / 3.0,
        -2.5,
        1234567.0,
        2.0 / 3.0 * 1e-7,
        1e300,
        7.0,
    ];
    let r_in = xs
        .iter()
        .map(|x| format!("{x:?}"))
        .collect::<Vec<_>>()
        .join(",");
    let out = common::rscript(&format!("cat(as.character(c({r_in})), sep='\\n')"));
    let ours: Vec<String> = xs.iter().map(|x| number_string(*x)).collect();
    assert_eq!(ours, out.lines().collect::<Vec<_>>());
}

// ---- asFactorDS1 / asFactorDS2 ------------------------------------------------------------------

#[test]
fn as_factor_ds1_gives_rs_levels() {
    let (num, num_r) = doubles_r(&[
        Some(2.0),
        Some(10.0),
        Some(2.5),
        None,
        Some(2.0),
        Some(10.0),
        Some(1.0),
        Some(1.0),
        Some(2.5),
        Some(2.0),
        Some(2.0),
        Some(1.0),
        Some(1.0),
        Some(2.0),
    ]);
    let (chr, chr_r) = strings_r(&[
        Some("b"),
        Some("B"),
        Some("a"),
        Some("b"),
        None,
        Some("a"),
        Some("B"),
        Some("b"),
        Some("a"),
        Some("a"),
    ]);
    let (fac, fac_r) = factor_r(
        &[
            Some("x"),
            Some("z"),
            Some("x"),
            Some("z"),
            Some("x"),
            Some("z"),
            Some("z"),
            Some("x"),
            Some("x"),
            Some("z"),
        ],
        &["z", "y", "x"],
    );
    let session = Session::new(vec![("num", num), ("chr", chr), ("fac", fac)]);
    for (name, r) in [("num", num_r), ("chr", chr_r), ("fac", fac_r)] {
        let ours = session.aggregate("asFactorDS1", vec![s(name)]).unwrap();
        let expected = common::rscript(&format!("x <- {r}\ncat(levels(factor(x)), sep='\\n')"));
        assert_eq!(
            ours.str_values(),
            expected.lines().collect::<Vec<_>>(),
            "{name}"
        );
    }
}

#[test]
fn as_factor_ds1_refuses_too_many_levels_at_its_thresholds() {
    let settings = DisclosureSettings::default();
    // nfilter.levels.max = 40: 40 distinct values pass, 41 are refused (length 130 keeps the
    // density rule, 0.33 × 130 = 42.9, out of the way).
    for (distinct, refused) in [(40, false), (41, true)] {
        let (x, _) = doubles_r(
            &(0..130)
                .map(|i| Some((i % distinct) as f64))
                .collect::<Vec<_>>(),
        );
        let session = Session::new(vec![("x", x)]);
        let result = session.aggregate("asFactorDS1", vec![s("x")]);
        match (result, refused) {
            (Ok(levels), false) => assert_eq!(levels.len(), distinct),
            (Err(DsError::Disclosure { rule, message }), true) => {
                assert_eq!(rule, "nfilter.levels.max");
                let expected = common::rscript(&format!(
                    "cat(paste0(\"FAILED: this variable has too many levels and may be disclosive. It exceeds the max number of levels allowed by nfilter.levels.max: that is \",{},\". In this study this variable has \",{distinct},\" factor levels\"))",
                    settings.nfilter_levels_max
                ));
                assert_eq!(message, expected);
            }
            (other, _) => panic!("{distinct} levels: {other:?}"),
        }
    }
    // nfilter.levels.density = 0.33: length 10 allows 3.3 levels: 3 pass, 4 are refused.
    for (distinct, refused) in [(3, false), (4, true)] {
        let (x, _) = doubles_r(
            &(0..10)
                .map(|i| Some((i % distinct) as f64))
                .collect::<Vec<_>>(),
        );
        let session = Session::new(vec![("x", x)]);
        match (session.aggregate("asFactorDS1", vec![s("x")]), refused) {
            (Ok(levels), false) => assert_eq!(levels.len(), distinct),
            (Err(DsError::Disclosure { rule, message }), true) => {
                assert_eq!(rule, "nfilter.levels.density");
                let expected = common::rscript(&format!(
                    "d <- {}; cat(paste0(\"FAILED: this variable has too many levels and may be disclosive. The number of factor levels must not exceed \", (d*100), \"% of the length of the variable being converted to a factor. The max number of levels in this study is therefore \",d*10,\" but this variable has \",{distinct},\" factor levels\"))",
                    settings.nfilter_levels_density
                ));
                assert_eq!(message, expected);
            }
            (other, _) => panic!("{distinct} levels: {other:?}"),
        }
    }
}

#[test]
fn as_factor_ds2_is_factor_with_the_given_levels_or_the_dummy_matrix() {
    let (num, num_r) = doubles_r(&[
        Some(1.0),
        Some(2.0),
        Some(3.0),
        None,
        Some(2.0),
        Some(7.0),
        Some(1.0),
    ]);
    let (fac, fac_r) = factor_r(&[Some("b"), Some("a"), None, Some("b")], &["b", "a"]);
    let session = Session::new(vec![("num", num), ("fac", fac)]);

    let ours = session
        .assign(
            "asFactorDS2",
            vec![s("num"), s("1,2,3,4"), sym("FALSE"), number(1.0)],
        )
        .unwrap();
    let r = r_dump(
        &format!("x <- {num_r}"),
        "factor(x, levels=c('1','2','3','4'))",
    );
    assert_same(&dump(&ours), &r, "numeric to factor");

    let ours = session
        .assign(
            "asFactorDS2",
            vec![s("fac"), s("a,b,c"), sym("FALSE"), number(1.0)],
        )
        .unwrap();
    let r = r_dump(&format!("x <- {fac_r}"), "factor(x, levels=c('a','b','c'))");
    assert_same(&dump(&ours), &r, "factor relevelled");

    let dummy = "m <- sapply(c('1','2','3','4'), function(l) as.numeric(x == l)); colnames(m) <- paste0('DV', c('1','2','3','4'))";
    let ours = session
        .assign(
            "asFactorDS2",
            vec![s("num"), s("1,2,3,4"), sym("TRUE"), number(2.0)],
        )
        .unwrap();
    let r = r_dump(&format!("x <- {num_r}; {dummy}"), "m[, -2]");
    assert_same(&dump(&ours), &r, "dummy matrix without the baseline");

    let ours = session
        .assign(
            "asFactorDS2",
            vec![s("num"), s("1,2"), sym("TRUE"), number(1.0)],
        )
        .unwrap();
    let r = r_dump(
        &format!("x <- {num_r}; m <- sapply(c('1','2'), function(l) as.numeric(x == l))"),
        "m[, -1]",
    );
    assert_same(&dump(&ours), &r, "one dummy column drops to a vector");

    let err = session
        .assign(
            "asFactorDS2",
            vec![s("num"), s("1,2,1"), sym("FALSE"), number(1.0)],
        )
        .unwrap_err();
    assert_eq!(err.to_string(), "factor level [3] is duplicated");
}

// ---- asNumericDS --------------------------------------------------------------------------------

#[test]
fn as_numeric_ds_is_as_numeric_of_as_character() {
    let (fac, fac_r) = factor_r(
        &[Some("10"), Some("2.5"), Some("a"), None, Some("10")],
        &["2.5", "10", "a"],
    );
    let (num, num_r) = doubles_r(&[Some(0.1), Some(1e5), None, Some(-3.0)]);
    let (chr, chr_r) = strings_r(&[Some("1e3"), Some("x"), Some("7")]);
    let lgl = RObject::logicals(vec![Some(true), None, Some(false)]);
    let session = Session::new(vec![("fac", fac), ("num", num), ("chr", chr), ("lgl", lgl)]);
    for (name, r) in [
        ("fac", fac_r),
        ("num", num_r),
        ("chr", chr_r),
        ("lgl", "c(TRUE,NA,FALSE)".into()),
    ] {
        let ours = session.assign("asNumericDS", vec![s(name)]).unwrap();
        let expected = r_dump(
            &format!("x <- {r}"),
            "suppressWarnings(as.numeric(as.character(x)))",
        );
        assert_same(&dump(&ours), &expected, name);
    }
    // Not a string: dsBase answers with a message instead of a value.
    let ours = session.assign("asNumericDS", vec![sym("num")]).unwrap();
    assert_eq!(
        ours.element("studysideMessage").unwrap().str_values(),
        ["ERROR: x.name must be specified as a character string"]
    );
}

// ---- completeCasesDS ----------------------------------------------------------------------------

#[test]
fn complete_cases_ds_keeps_rs_complete_cases() {
    let (df, df_r) = people();
    let (v, v_r) = doubles_r(&[Some(1.0), None, Some(3.0), Some(f64::NAN), Some(5.0)]);
    let (f, f_r) = factor_r(&[Some("a"), None, Some("b")], &["a", "b", "c"]);
    let m = RObject::matrix(
        vec![
            1.0,
            na_real(),
            3.0,
            4.0,
            5.0,
            6.0,
            7.0,
            8.0,
            9.0,
            10.0,
            na_real(),
            12.0,
        ],
        4,
        3,
    )
    .with_attr(
        "dimnames",
        RObject::list(vec![RObject::null(), RObject::strings(["p", "q", "r"])]),
    );
    let m_r =
        "m <- matrix(c(1,NA,3,4,5,6,7,8,9,10,NA,12), 4, 3, dimnames=list(NULL, c('p','q','r')))";
    let session = Session::new(vec![("D", df), ("v", v), ("f", f), ("m", m)]);
    let cases = [
        ("D", df_r.clone(), "D[complete.cases(D), ]"),
        ("D$age", df_r.clone(), "D$age[complete.cases(D$age)]"),
        ("v", format!("v <- {v_r}"), "v[complete.cases(v)]"),
        ("f", format!("f <- {f_r}"), "f[complete.cases(f)]"),
        ("m", m_r.to_owned(), "m[complete.cases(m), ]"),
    ];
    for (name, setup, r_expr) in cases {
        let ours = session.assign("completeCasesDS", vec![s(name)]).unwrap();
        assert_same(&dump(&ours), &r_dump(&setup, r_expr), name);
    }
    let err = session
        .assign("completeCasesDS", vec![s("D:;v")])
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("FAILED: the object addressed by the x1.transmit argument")
    );
    let err = session
        .assign("completeCasesDS", vec![s("nothing")])
        .unwrap_err();
    assert_eq!(err.to_string(), "object 'nothing' not found");
}

// ---- dataFrameSubsetDS1 / dataFrameSubsetDS2 ----------------------------------------------------

fn subset_args(
    v1: &str,
    v2: &str,
    op: f64,
    keep_cols: Option<&str>,
    rm_cols: Option<&str>,
    keep_nas: bool,
) -> Vec<Expr> {
    vec![
        s("D"),
        s(v1),
        s(v2),
        number(op),
        keep_cols.map_or_else(|| sym("NULL"), s),
        rm_cols.map_or_else(|| sym("NULL"), s),
        sym(if keep_nas { "TRUE" } else { "FALSE" }),
    ]
}

#[test]
fn data_frame_subset_ds2_is_rs_row_subset_for_every_operator() {
    let (df, df_r) = people();
    let session = Session::new(vec![("D", df), ("lvl", RObject::string("M"))]);
    let ops = ["==", "!=", "<", "<=", ">", ">="];
    for (code, op) in ops.iter().enumerate() {
        for keep_nas in [false, true] {
            let ours = session
                .assign(
                    "dataFrameSubsetDS2",
                    subset_args("D$age", "40", code as f64 + 1.0, None, None, keep_nas),
                )
                .unwrap();
            let setup = format!(
                "{df_r}\nind <- (D$age {op} 40)*1; ind[is.na(ind)] <- {}",
                if keep_nas { 1 } else { 0 }
            );
            assert_same(
                &dump(&ours),
                &r_dump(&setup, "D[ind == 1, ]"),
                &format!("age {op} 40, keep.NAs={keep_nas}"),
            );
        }
    }
    // A vector compared element by element, a factor by its labels, "ONES" keeps everything.
    let ours = session
        .assign(
            "dataFrameSubsetDS2",
            subset_args("D$score", "D$age", 3.0, None, None, false),
        )
        .unwrap();
    let setup = format!("{df_r}\nind <- (D$score < D$age)*1; ind[is.na(ind)] <- 0");
    assert_same(
        &dump(&ours),
        &r_dump(&setup, "D[ind == 1, ]"),
        "score < age",
    );
    // A text operand can only be named (dsBase evaluates V2.name; the grammar has no quotes).
    let err = session
        .assign(
            "dataFrameSubsetDS2",
            subset_args("D$sex", "M", 2.0, None, None, false),
        )
        .unwrap_err();
    assert_eq!(err.to_string(), "object 'M' not found");
    let ours = session
        .assign(
            "dataFrameSubsetDS2",
            subset_args("D$sex", "lvl", 2.0, None, None, false),
        )
        .unwrap();
    let setup = format!("{df_r}\nlvl <- 'M'; ind <- (D$sex != lvl)*1; ind[is.na(ind)] <- 0");
    assert_same(&dump(&ours), &r_dump(&setup, "D[ind == 1, ]"), "sex != M");
    let ours = session
        .assign(
            "dataFrameSubsetDS2",
            subset_args("ONES", "ONES", 5.0, None, None, false),
        )
        .unwrap();
    assert_same(&dump(&ours), &r_dump(&df_r, "D[rep(TRUE, 12), ]"), "ONES");
    // Columns kept or removed.
    let ours = session
        .assign(
            "dataFrameSubsetDS2",
            subset_args("D$age", "40", 6.0, Some("4,1"), None, false),
        )
        .unwrap();
    let setup = format!("{df_r}\nind <- (D$age >= 40)*1; ind[is.na(ind)] <- 0");
    assert_same(
        &dump(&ours),
        &r_dump(&setup, "D[ind == 1, c(4,1)]"),
        "keep.cols",
    );
    let ours = session
        .assign(
            "dataFrameSubsetDS2",
            subset_args("D$age", "40", 6.0, None, Some("2,3"), false),
        )
        .unwrap();
    assert_same(
        &dump(&ours),
        &r_dump(&setup, "D[ind == 1, c(1,4)]"),
        "rm.cols",
    );
    let ours = session
        .assign(
            "dataFrameSubsetDS2",
            subset_args("D$age", "40", 6.0, Some("4"), None, false),
        )
        .unwrap();
    assert_same(
        &dump(&ours),
        &r_dump(&setup, "D[ind == 1, 4]"),
        "one column kept drops to a vector",
    );
    let err = session
        .assign(
            "dataFrameSubsetDS2",
            subset_args("D$age", "40", 6.0, Some("1"), Some("2"), false),
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "You can either specify keep.cols or rm.cols, not both"
    );
    let err = session
        .assign(
            "dataFrameSubsetDS2",
            subset_args("D$age", "40", 6.0, Some("1,x"), None, false),
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "FAILED: keep.cols argument contains non-numerics (disclosure risk)"
    );
    for bad in [0.0, 7.0] {
        let err = session
            .assign(
                "dataFrameSubsetDS2",
                subset_args("D$age", "40", bad, None, None, false),
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "FAILED: Boolean.operator must be: '==', '!=', '<', '<=', '>' or '>='"
        );
    }
}

#[test]
fn subsets_need_nfilter_subset_rows_and_small_differences_are_warned() {
    let (df, _) = people();
    let session = Session::new(vec![("D", df)]);
    // score = 1.25·i: score > 12.5 keeps 2 rows (refused), score > 11.25 keeps 3 (nfilter.subset = 3).
    for function in ["dataFrameSubsetDS1", "dataFrameSubsetDS2"] {
        let kind = if function.ends_with('1') {
            MethodKind::Aggregate
        } else {
            MethodKind::Assign
        };
        match session.run(
            kind,
            function,
            subset_args("D$score", "12.5", 5.0, None, None, false),
        ) {
            Err(DsError::Disclosure {
                rule: "nfilter.subset",
                message,
            }) => {
                assert_eq!(
                    message,
                    "Subset to be created is too small (<nfilter.subset)"
                )
            }
            other => panic!("{function}: {other:?}"),
        }
        assert!(
            session
                .run(
                    kind,
                    function,
                    subset_args("D$score", "11.25", 5.0, None, None, false)
                )
                .is_ok()
        );
    }
    // The difference from the whole frame: 2 rows fewer is warned, 3 rows fewer is not, 0 is not.
    let warned = session
        .aggregate(
            "dataFrameSubsetDS1",
            subset_args("D$score", "2.5", 5.0, None, None, false),
        )
        .unwrap();
    let Vector::List(lines) = &warned.vector else {
        panic!("a list of warnings")
    };
    assert_eq!(lines.len(), 10);
    assert!(lines[0].str_values()[0].starts_with("Warning: DataSHIELD monitors every session"));
    for v2 in ["3.75", "0"] {
        let fine = session
            .aggregate(
                "dataFrameSubsetDS1",
                subset_args("D$score", v2, 5.0, None, None, false),
            )
            .unwrap();
        assert_eq!(
            fine.str_values(),
            ["Subsetting undertaken without problems"],
            "score > {v2}"
        );
    }
}

#[test]
fn subset_names_are_limited_to_nfilter_string_and_avocado_blocks_subsets() {
    let (df, _) = people();
    let mut session = Session::new(vec![("D", df)]);
    // V2 written with leading zeros: 80 characters pass, 81 are refused (nfilter.string = 80).
    let v2 = |len: usize| format!("{}40", "0".repeat(len - 2));
    assert!(
        session
            .aggregate(
                "dataFrameSubsetDS1",
                subset_args("D$age", &v2(80), 5.0, None, None, false)
            )
            .is_ok()
    );
    match session.aggregate(
        "dataFrameSubsetDS1",
        subset_args("D$age", &v2(81), 5.0, None, None, false),
    ) {
        Err(DsError::Disclosure {
            rule: "nfilter.string",
            message,
        }) => {
            assert_eq!(
                message,
                "FAILED: V[ii].name argument > nfilter.string - please shorten"
            )
        }
        other => panic!("{other:?}"),
    }
    session.settings.privacy_control_level = PrivacyControlLevel::Avocado;
    let err = session
        .assign(
            "dataFrameSubsetDS2",
            subset_args("D$age", "40", 5.0, None, None, false),
        )
        .unwrap_err();
    assert_eq!(err.rule(), Some("datashield.privacyControlLevel"));
    assert!(err.to_string().starts_with("BLOCKED"));
}

// ---- rmDS -----------------------------------------------------------------------------------------

#[test]
fn rm_ds_removes_existing_objects_and_refuses_long_names() {
    let settings = DisclosureSettings::default();
    let mut symbols: Symbols = [
        ("x".to_owned(), RObject::double(1.0).into()),
        ("y".to_owned(), RObject::double(2.0).into()),
    ]
    .into();
    let answer = rm_ds(&mut symbols, &settings, "x");
    assert_eq!(
        answer.element("return.message").unwrap().str_values(),
        ["Object <x> successfully deleted"]
    );
    assert!(!symbols.contains_key("x") && symbols.contains_key("y"));
    let answer = rm_ds(&mut symbols, &settings, "x");
    assert_eq!(
        answer.element("return.message").unwrap().str_values(),
        ["Object to be deleted, i.e. <x> , does not exist so does not need deleting"]
    );
    // nfilter.stringShort = 20: a 20-character name is looked at, 21 characters are refused.
    let name20 = "a".repeat(20);
    symbols.insert(name20.clone(), RObject::double(0.0).into());
    let answer = rm_ds(&mut symbols, &settings, &name20);
    assert_eq!(
        answer.element("return.message").unwrap().str_values(),
        [format!("Object <{name20}> successfully deleted")]
    );
    let name21 = "a".repeat(21);
    symbols.insert(name21.clone(), RObject::double(0.0).into());
    let answer = rm_ds(&mut symbols, &settings, &name21);
    assert_eq!(
        answer.element("return.message").unwrap().str_values(),
        [
            "Disclosure risk, number of characters in x.name must not exceed nfilter.stringShort which is currently set at: 20"
        ]
    );
    assert!(symbols.contains_key(&name21));
    // The registered method answers refusals itself and leaves removal to the session.
    let session = Session::new(vec![("y", RObject::double(2.0))]);
    assert!(session.aggregate("rmDS", vec![s("nothing")]).is_ok());
    assert!(
        session
            .aggregate("rmDS", vec![s("y")])
            .unwrap_err()
            .to_string()
            .contains("session")
    );
}

#[test]
fn na_values_stay_distinct_from_nan_where_r_keeps_them() {
    // completeCasesDS drops NaN as R's complete.cases does; the rest of a vector is untouched.
    let session = Session::new(vec![(
        "v",
        RObject::doubles(vec![1.0, f64::NAN, na_real(), 4.0]),
    )]);
    let out = session.assign("completeCasesDS", vec![s("v")]).unwrap();
    let Vector::Double(values) = &out.vector else {
        panic!()
    };
    assert_eq!(values, &vec![1.0, 4.0]);
    assert!(!values.iter().any(|v| is_na_real(*v)));
}
