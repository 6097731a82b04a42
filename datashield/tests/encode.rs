//! The result encoders against R itself: every object of the corpus is built once in Rust and once
//! in R; our JSON must equal jsonlite's (under Opal/Rock's `toJSON` call with its `serializeJSON`
//! fallback) and our bytes must equal `serialize(x, NULL)`'s and unserialize to an identical object.

mod common;

use trellis_datashield::encode::{to_json, to_rds};
use trellis_datashield::value::{RObject, Vector, na_real};

struct Case {
    name: &'static str,
    rust: RObject,
    r: String,
}

fn case(name: &'static str, rust: RObject, r: impl Into<String>) -> Case {
    Case {
        name,
        rust,
        r: r.into(),
    }
}

fn strs(xs: &[&str]) -> Vec<String> {
    xs.iter().map(|s| (*s).to_owned()).collect()
}

fn chars(xs: &[Option<&str>]) -> RObject {
    RObject::new(Vector::Character(
        xs.iter().map(|s| s.map(str::to_owned)).collect(),
    ))
}

/// A double as an R hexadecimal literal, so R reads exactly the same bits.
fn r_hex(x: f64) -> String {
    if x == 0.0 {
        return if x.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let bits = x.to_bits();
    let sign = if bits >> 63 == 1 { "-" } else { "" };
    let exponent = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mantissa = bits & 0x000f_ffff_ffff_ffff;
    format!("{sign}0x1.{mantissa:013x}p{exponent}")
}

/// Doubles across magnitudes (normal numbers only), from a fixed xorshift sequence, plus short
/// decimals and integers as results usually hold: the number formats' stress test.
fn many_doubles() -> Vec<f64> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut out = Vec::new();
    for i in 0..300 {
        let r = next();
        let x = match i % 4 {
            0 => {
                let exponent = (r % 140) as i32 - 70;
                let mantissa = 1.0 + (next() >> 11) as f64 / (1u64 << 53) as f64;
                mantissa * 2f64.powi(exponent)
            }
            1 => (r % 2_000_000) as f64 / 1000.0,
            2 => (r % 10_000_000_000) as f64,
            _ => (r % 100_000) as f64 / 7.0,
        };
        out.push(if r & (1 << 40) != 0 { -x } else { x });
    }
    out.extend([
        1234567890123445.0,
        1234567890123455.0,
        0.5,
        2.5,
        1e-5,
        1.00000000000001e-5,
        2147483646.5,
        2147483647.0,
    ]);
    out
}

fn corpus() -> Vec<Case> {
    let doubles = many_doubles();
    let doubles_r = format!(
        "c({})",
        doubles
            .iter()
            .map(|x| r_hex(*x))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let data_frame = RObject::data_frame(
        [
            ("age", RObject::doubles(vec![30.0, na_real(), 45.5])),
            (
                "sex",
                RObject::factor(vec![Some(2), Some(1), None], strs(&["F", "M"])),
            ),
            ("name", chars(&[Some("a"), None, Some("c\"q")])),
            ("ok", RObject::logicals(vec![Some(true), None, Some(false)])),
            ("n", RObject::integers(vec![Some(1), None, Some(3)])),
        ],
        3,
    );
    let data_frame_r = r#"data.frame(age = c(30, NA, 45.5), sex = factor(c("M", "F", NA)), name = c("a", NA, "c\"q"), ok = c(TRUE, NA, FALSE), n = c(1L, NA, 3L))"#;
    let histogram = RObject::named_list([
        ("breaks", RObject::doubles(vec![0.0, 2.5, 5.0])),
        ("counts", RObject::integers(vec![Some(3), Some(7)])),
        ("density", RObject::doubles(vec![0.12, 0.28])),
        ("mids", RObject::doubles(vec![1.25, 3.75])),
        ("xname", RObject::string("xvect")),
        ("equidist", RObject::logical(true)),
    ])
    .with_attr("class", RObject::string("histogram"));
    let histogram_r = r#"structure(list(breaks = c(0, 2.5, 5), counts = c(3L, 7L), density = c(0.12, 0.28), mids = c(1.25, 3.75), xname = "xvect", equidist = TRUE), class = "histogram")"#;
    let table1 = RObject::integers(vec![Some(2), Some(1)])
        .with_attr("dim", RObject::integers(vec![Some(2)]))
        .with_attr(
            "dimnames",
            RObject::named_list([("", RObject::strings(["a", "b"]))]),
        )
        .with_attr("class", RObject::string("table"));
    let table2 = RObject::integers(vec![Some(1), Some(0), Some(1), Some(1)])
        .with_attr("dim", RObject::integers(vec![Some(2), Some(2)]))
        .with_attr(
            "dimnames",
            RObject::named_list([
                ("", RObject::strings(["1", "2"])),
                ("", RObject::strings(["x", "y"])),
            ]),
        )
        .with_attr("class", RObject::string("table"));
    let strings = [
        "plain",
        "quote\"",
        "back\\slash",
        "new\nline",
        "tab\there",
        "\r\u{8}\u{c}",
        "\u{1}\u{1f}\u{7f}",
        "</script>",
        "a/b",
        "é",
        "漢字",
        "😀",
        "",
    ];
    let strings_r = r#"c("plain", "quote\"", "back\\slash", "new\nline", "tab\there", "\r\b\f", "\x01\x1f\x7f", "</script>", "a/b", "\u00e9", "\u6f22\u5b57", "\U0001F600", "")"#;

    vec![
        case("null", RObject::null(), "NULL"),
        case("double scalar", RObject::double(1.0), "1"),
        case(
            "doubles",
            RObject::doubles(vec![1.5, -2.25, 0.1 + 0.2]),
            "c(1.5, -2.25, 0.1 + 0.2)",
        ),
        case(
            "special doubles",
            RObject::doubles(vec![
                na_real(),
                f64::NAN,
                f64::INFINITY,
                f64::NEG_INFINITY,
                -0.0,
                0.0,
            ]),
            "c(NA, NaN, Inf, -Inf, -0, 0)",
        ),
        case("NA_real_ alone", RObject::double(na_real()), "NA_real_"),
        case(
            "extreme doubles",
            RObject::doubles(vec![
                1e-300,
                1e300,
                1e15,
                1e16,
                123456789012345678.0,
                1.0 / 3.0,
                2.0 / 3.0,
                std::f64::consts::PI,
                1e-5,
                0.0001,
                100000.0,
                123456.7,
            ]),
            "c(1e-300, 1e300, 1e15, 1e16, 123456789012345678, 1/3, 2/3, pi, 1e-5, 0.0001, 100000, 123456.7)",
        ),
        case(
            "many doubles",
            RObject::doubles(doubles.clone()),
            doubles_r.clone(),
        ),
        case(
            "integers",
            RObject::integers(vec![
                Some(0),
                Some(-1),
                Some(i32::MAX),
                Some(-i32::MAX),
                None,
            ]),
            "c(0L, -1L, 2147483647L, -2147483647L, NA)",
        ),
        case("integer scalar", RObject::integer(42), "42L"),
        case("integer NA", RObject::integers(vec![None]), "NA_integer_"),
        case(
            "logicals",
            RObject::logicals(vec![Some(true), Some(false), None]),
            "c(TRUE, FALSE, NA)",
        ),
        case("logical scalar", RObject::logical(true), "TRUE"),
        case("logical NA", RObject::logicals(vec![None]), "NA"),
        case("strings", RObject::strings(strings), strings_r),
        case("string scalar", RObject::string("hello"), r#""hello""#),
        case("string NA", chars(&[Some("x"), None]), r#"c("x", NA)"#),
        case("empty double", RObject::doubles(vec![]), "numeric(0)"),
        case("empty integer", RObject::integers(vec![]), "integer(0)"),
        case(
            "empty character",
            RObject::strings(Vec::<String>::new()),
            "character(0)",
        ),
        case("empty logical", RObject::logicals(vec![]), "logical(0)"),
        case("empty list", RObject::list(vec![]), "list()"),
        case(
            "empty named list",
            RObject::list(vec![]).with_attr("names", RObject::strings(Vec::<String>::new())),
            "setNames(list(), character(0))",
        ),
        case(
            "named doubles",
            RObject::doubles(vec![1.0, 2.5]).with_attr("names", RObject::strings(["5%", "Mean"])),
            r#"c(`5%` = 1, Mean = 2.5)"#,
        ),
        case(
            "named list",
            RObject::named_list([
                ("a", RObject::double(1.0)),
                ("b", RObject::string("x")),
                ("c", RObject::logical(true)),
                ("d", RObject::null()),
                ("e", RObject::doubles(vec![1.0, 2.0])),
            ]),
            r#"list(a = 1, b = "x", c = TRUE, d = NULL, e = c(1, 2))"#,
        ),
        case(
            "unnamed list",
            RObject::list(vec![
                RObject::double(1.0),
                RObject::string("a"),
                RObject::null(),
                RObject::doubles(vec![1.0, 2.0]),
            ]),
            r#"list(1, "a", NULL, c(1, 2))"#,
        ),
        case(
            "nested lists",
            RObject::named_list([
                (
                    "a",
                    RObject::named_list([(
                        "b",
                        RObject::named_list([("c", RObject::integers(vec![Some(1), Some(2)]))]),
                    )]),
                ),
                ("d", RObject::list(vec![])),
                (
                    "e",
                    RObject::list(vec![RObject::list(vec![RObject::null()])]),
                ),
            ]),
            "list(a = list(b = list(c = c(1L, 2L))), d = list(), e = list(list(NULL)))",
        ),
        case(
            "partly named list",
            RObject::list(vec![
                RObject::double(1.0),
                RObject::double(2.0),
                RObject::double(3.0),
                RObject::double(4.0),
            ])
            .with_attr(
                "names",
                chars(&[Some("a"), Some(""), Some("a"), Some("a.1")]),
            ),
            r#"structure(list(1, 2, 3, 4), names = c("a", "", "a", "a.1"))"#,
        ),
        case(
            "odd names",
            RObject::named_list([
                ("a\"b", RObject::double(1.0)),
                ("é", RObject::double(2.0)),
                ("x/y", RObject::double(3.0)),
            ]),
            r#"setNames(list(1, 2, 3), c("a\"b", "\u00e9", "x/y"))"#,
        ),
        case(
            "NA and empty names",
            RObject::list(vec![
                RObject::double(1.0),
                RObject::double(2.0),
                RObject::double(3.0),
            ])
            .with_attr("names", chars(&[Some("a"), None, Some("")])),
            r#"structure(list(1, 2, 3), names = c("a", NA, ""))"#,
        ),
        case(
            "data frame shorter than its row names",
            RObject::named_list([("a", RObject::integers(vec![Some(1), Some(2)]))])
                .with_attr("class", RObject::string("data.frame"))
                .with_attr("row.names", RObject::integers(vec![None, Some(-3)])),
            r#"structure(list(a = c(1L, 2L)), class = "data.frame", row.names = c(NA, -3L))"#,
        ),
        case(
            "data frame with integer row names",
            RObject::named_list([("a", RObject::strings(["x", "y"]))])
                .with_attr("class", RObject::string("data.frame"))
                .with_attr("row.names", RObject::integers(vec![Some(4), Some(9)])),
            r#"structure(list(a = c("x", "y")), class = "data.frame", row.names = c(4L, 9L))"#,
        ),
        case(
            "list column and data frame column",
            RObject::named_list([
                (
                    "l",
                    RObject::named_list([
                        ("p", RObject::double(1.0)),
                        ("q", RObject::doubles(vec![2.0, 3.0])),
                    ]),
                ),
                (
                    "d",
                    RObject::data_frame([("z", RObject::logicals(vec![Some(true), None]))], 2),
                ),
            ])
            .with_attr("class", RObject::string("data.frame"))
            .with_attr("row.names", RObject::integers(vec![None, Some(-2)])),
            r#"structure(list(l = list(p = 1, q = c(2, 3)), d = data.frame(z = c(TRUE, NA))), class = "data.frame", row.names = c(NA, -2L))"#,
        ),
        case(
            "factor with NA",
            RObject::factor(vec![Some(2), Some(1), None, Some(2)], strs(&["a", "b"])),
            r#"factor(c("b", "a", NA, "b"))"#,
        ),
        case(
            "factor scalar",
            RObject::factor(vec![Some(1)], strs(&["x"])),
            r#"factor("x")"#,
        ),
        case(
            "ordered factor",
            RObject::integers(vec![Some(1), Some(2)])
                .with_attr("levels", RObject::strings(["lo", "hi"]))
                .with_attr("class", RObject::strings(["ordered", "factor"])),
            r#"factor(c("lo", "hi"), levels = c("lo", "hi"), ordered = TRUE)"#,
        ),
        case("data frame", data_frame.clone(), data_frame_r),
        case(
            "data frame with row names",
            RObject::named_list([("x", RObject::doubles(vec![1.0, 2.0]))])
                .with_attr("class", RObject::string("data.frame"))
                .with_attr("row.names", RObject::strings(["r1", "r2"])),
            r#"data.frame(x = c(1, 2), row.names = c("r1", "r2"))"#,
        ),
        case(
            "data frame with digit row names",
            RObject::named_list([("x", RObject::doubles(vec![1.0, 2.0]))])
                .with_attr("class", RObject::string("data.frame"))
                .with_attr("row.names", RObject::strings(["3", "7"])),
            r#"data.frame(x = c(1, 2), row.names = c("3", "7"))"#,
        ),
        case(
            "empty data frame",
            RObject::named_list([("a", RObject::doubles(vec![]))])
                .with_attr("class", RObject::string("data.frame"))
                .with_attr("row.names", RObject::integers(vec![])),
            "data.frame(a = numeric(0))",
        ),
        case(
            "data frame in a list",
            RObject::named_list([
                (
                    "df",
                    RObject::data_frame([("v", RObject::integers(vec![Some(5)]))], 1),
                ),
                ("n", RObject::integer(1)),
            ]),
            "list(df = data.frame(v = 5L), n = 1L)",
        ),
        case(
            "matrix",
            RObject::matrix(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.5], 2, 3),
            "matrix(c(1, 2, 3, 4, 5, 6.5), 2, 3)",
        ),
        case(
            "p x 1 matrix",
            RObject::matrix(vec![0.5, -1.25, 3.0], 3, 1),
            "matrix(c(0.5, -1.25, 3), 3, 1)",
        ),
        case(
            "1 x 1 matrix",
            RObject::matrix(vec![7.0], 1, 1),
            "matrix(7, 1, 1)",
        ),
        case(
            "matrix with dimnames",
            RObject::matrix(vec![1.0, 2.0, 3.0, na_real()], 2, 2).with_attr(
                "dimnames",
                RObject::list(vec![
                    RObject::strings(["a", "b"]),
                    RObject::strings(["x", "y"]),
                ]),
            ),
            r#"matrix(c(1, 2, 3, NA), 2, 2, dimnames = list(c("a", "b"), c("x", "y")))"#,
        ),
        case(
            "integer matrix",
            RObject::integers(vec![Some(1), None, Some(3), Some(4)])
                .with_attr("dim", RObject::integers(vec![Some(2), Some(2)])),
            "matrix(c(1L, NA, 3L, 4L), 2, 2)",
        ),
        case(
            "character matrix",
            chars(&[Some("a"), None, Some("c"), Some("d"), Some("e"), Some("f")])
                .with_attr("dim", RObject::integers(vec![Some(3), Some(2)])),
            r#"matrix(c("a", NA, "c", "d", "e", "f"), 3, 2)"#,
        ),
        case(
            "logical matrix",
            RObject::logicals(vec![Some(true), Some(false)])
                .with_attr("dim", RObject::integers(vec![Some(1), Some(2)])),
            "matrix(c(TRUE, FALSE), 1, 2)",
        ),
        case(
            "3-d array",
            RObject::doubles((1..=12).map(f64::from).collect())
                .with_attr("dim", RObject::integers(vec![Some(2), Some(3), Some(2)])),
            "array(c(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12), c(2L, 3L, 2L))",
        ),
        case("histogram", histogram.clone(), histogram_r),
        case("table", table1.clone(), r#"table(c("a", "b", "a"))"#),
        case(
            "2-d table",
            table2,
            r#"table(c(1, 1, 2), c("x", "y", "y"))"#,
        ),
        case(
            "family",
            RObject::named_list([
                ("family", RObject::string("binomial")),
                ("link", RObject::string("logit")),
            ])
            .with_attr("class", RObject::string("family")),
            r#"structure(list(family = "binomial", link = "logit"), class = "family")"#,
        ),
        case(
            "table inside a list",
            RObject::named_list([("ok", RObject::double(1.0)), ("t", table1)]),
            r#"list(ok = 1, t = table(c("a", "b", "a")))"#,
        ),
        case(
            "serializeJSON numbers",
            RObject::named_list([
                (
                    "v",
                    RObject::doubles(vec![
                        1.0 / 3.0,
                        2.0 / 3.0,
                        1e-6,
                        3e9,
                        -0.0,
                        0.0,
                        na_real(),
                        f64::NAN,
                        f64::INFINITY,
                        f64::NEG_INFINITY,
                        123_456_789.123_456_79,
                        0.000012345678,
                        1e-20,
                        1e20,
                        -5.5,
                        2147483646.5,
                        0.5,
                        0.125,
                        1.000000005,
                    ]),
                ),
                ("many", RObject::doubles(doubles)),
                ("i", RObject::integers(vec![Some(1), None])),
                ("s", chars(&[Some("a\n"), None])),
                ("l", RObject::logicals(vec![Some(true), None])),
                ("n", RObject::null()),
                ("df", data_frame),
                ("m", RObject::matrix(vec![1.0, 2.0], 1, 2)),
            ])
            .with_attr("class", RObject::string("histogram")),
            format!(
                r#"structure(list(v = c(1/3, 2/3, 1e-6, 3e9, -0, 0, NA, NaN, Inf, -Inf, 123456789.123456789, 0.000012345678, 1e-20, 1e20, -5.5, 2147483646.5, 0.5, 0.125, 1.000000005), many = {doubles_r}, i = c(1L, NA), s = c("a\n", NA), l = c(TRUE, NA), n = NULL, df = {data_frame_r}, m = matrix(c(1, 2), 1, 2)), class = "histogram")"#
            ),
        ),
        case(
            "AsIs scalar",
            RObject::double(1.0).with_attr("class", RObject::string("AsIs")),
            "I(1)",
        ),
        case(
            "extra class on a list",
            RObject::named_list([("a", RObject::double(1.0))])
                .with_attr("class", RObject::strings(["myresult", "list"])),
            r#"structure(list(a = 1), class = c("myresult", "list"))"#,
        ),
        case(
            "glm-like result",
            RObject::named_list([
                ("Nvalid", RObject::integer(4)),
                (
                    "coefficients",
                    RObject::matrix(vec![1.5, -0.25, 0.1, 0.05], 2, 2).with_attr(
                        "dimnames",
                        RObject::list(vec![
                            RObject::strings(["(Intercept)", "age"]),
                            RObject::strings(["Estimate", "Std. Error"]),
                        ]),
                    ),
                ),
                ("family", RObject::string("gaussian")),
            ]),
            r#"list(Nvalid = 4L, coefficients = matrix(c(1.5, -0.25, 0.1, 0.05), 2, 2, dimnames = list(c("(Intercept)", "age"), c("Estimate", "Std. Error"))), family = "gaussian")"#,
        ),
    ]
}

/// Runs a script too long for `Rscript -e` (R caps its length) by sourcing it from a file.
fn rscript_long(name: &str, script: &str) -> String {
    let path = common::scratch_file(name, script.as_bytes());
    common::rscript(&format!("source({:?})", path.display().to_string()))
}

fn r_list(cases: &[Case]) -> String {
    let items: Vec<String> = cases.iter().map(|c| format!("  {}", c.r)).collect();
    format!("xs <- list(\n{}\n)\n", items.join(",\n"))
}

#[test]
fn json_equals_jsonlite_with_opal_fallback() {
    let cases = corpus();
    assert!(cases.len() >= 30);
    let script = format!(
        "{}suppressPackageStartupMessages(library(jsonlite))\n\
         for (x in xs) cat(tryCatch(toJSON(x, auto_unbox = TRUE, null = 'null', na = 'null', digits = NA), error = function(e) serializeJSON(x)), '\\n', sep = '')\n",
        r_list(&cases)
    );
    let output = rscript_long("encode-json.R", &script);
    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(
        lines.len(),
        cases.len(),
        "R printed one line per case:\n{output}"
    );
    let mut failures = Vec::new();
    for (case, expected) in cases.iter().zip(&lines) {
        let ours = to_json(&case.rust);
        if ours != *expected {
            failures.push(format!(
                "{}:\n  R:    {expected}\n  ours: {ours}",
                case.name
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn rds_equals_r_serialize_and_unserializes_identical() {
    let cases = corpus();
    let paths: Vec<String> = cases
        .iter()
        .enumerate()
        .map(|(i, case)| {
            common::scratch_file(&format!("encode-{i}.rds"), &to_rds(&case.rust))
                .display()
                .to_string()
        })
        .collect();
    let paths_r = paths
        .iter()
        .map(|p| format!("{p:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let script = format!(
        "{}paths <- c({paths_r})\n\
         for (i in seq_along(xs)) {{\n\
           ours <- readBin(paths[i], 'raw', file.size(paths[i]))\n\
           cat(paste(serialize(xs[[i]], NULL), collapse = ''), identical(unserialize(ours), xs[[i]]), '\\n')\n\
         }}\n",
        r_list(&cases)
    );
    let output = rscript_long("encode-rds.R", &script);
    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(
        lines.len(),
        cases.len(),
        "R printed one line per case:\n{output}"
    );
    let mut failures = Vec::new();
    for (case, line) in cases.iter().zip(&lines) {
        let mut fields = line.split_whitespace();
        let expected = fields.next().unwrap_or_default();
        let identical = fields.next().unwrap_or_default();
        let ours: String = to_rds(&case.rust)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        // Bytes 6..10 (hex 12..20) name the writing R's version; ours names 4.2.2 whatever R runs here.
        let (ours_head, ours_rest) = ours.split_at(12.min(ours.len()));
        let same = expected.len() == ours.len()
            && expected.starts_with(ours_head)
            && expected.get(20..) == ours_rest.get(8..);
        if !same {
            failures.push(format!(
                "{}: bytes differ\n  R:    {expected}\n  ours: {ours}",
                case.name
            ));
        }
        if identical != "TRUE" {
            failures.push(format!(
                "{}: unserialize(ours) is not identical to R's object",
                case.name
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures over {} cases:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn rds_header_names_the_r_release_it_reproduces() {
    let version = common::rscript("cat(R.version$major, R.version$minor)");
    let bytes = to_rds(&RObject::null());
    let ours = format!("{} {}.{}", bytes[7], bytes[8], bytes[9]);
    assert_eq!(
        ours,
        version.trim(),
        "the header's writer version should be the oracle R's own"
    );
}
