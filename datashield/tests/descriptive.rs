//! dsBase's metadata, descriptive and table functions against R: each builtin is invoked through
//! the evaluator on a seeded data frame, and the result is compared, structure and values, with
//! what base R computes on the same data (the structure as dsBase returns it). Every disclosure
//! rule is tried just inside and just outside its threshold, at the default and a changed setting.

mod common;

use common::Session;
use trellis_datashield::error::DsError;
use trellis_datashield::language::{Arg, Expr};
use trellis_datashield::settings::{DisclosureSettings, PrivacyControlLevel};
use trellis_datashield::value::{RObject, Vector, is_na_real, na_real};

/// The symbols a test session starts with.
type Symbols = std::collections::BTreeMap<String, RObject>;

// ---------------------------------------------------------------------------------------------
// The data: ~200 rows from a seeded generator, as an R object here and as R source for the oracle.

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const ROWS: usize = 203;
const LEVELS: [&str; 4] = ["a", "b", "c", "d"];

struct Data {
    num: Vec<f64>,
    int: Vec<Option<i32>>,
    fac: Vec<Option<i32>>,
    lgl: Vec<Option<bool>>,
    bin: Vec<f64>,
    /// Large values with a fractional part (num·10⁶ + 0.1, computed alike in R): sums and means
    /// that plain double summation gets visibly wrong.
    big: Vec<f64>,
}

fn data() -> Data {
    let mut rng = Rng(20_261_129);
    let mut d = Data {
        num: vec![],
        int: vec![],
        fac: vec![],
        lgl: vec![],
        bin: vec![],
        big: vec![],
    };
    for _ in 0..ROWS {
        // Multiples of 1/1024 are written exactly in decimal, so R reads the very same doubles.
        let num = rng.below(4_000_000) as f64 / 1024.0 - 1000.0;
        d.num.push(if rng.below(10) == 0 { na_real() } else { num });
        let int = rng.below(100) as i32;
        d.int
            .push(if rng.below(12) == 0 { None } else { Some(int) });
        let fac = 1 + rng.below(4) as i32;
        d.fac
            .push(if rng.below(20) == 0 { None } else { Some(fac) });
        let lgl = rng.below(3) == 0;
        d.lgl
            .push(if rng.below(20) == 0 { None } else { Some(lgl) });
        d.bin.push(rng.below(2) as f64);
    }
    d.big = d
        .num
        .iter()
        .map(|x| {
            if is_na_real(*x) {
                na_real()
            } else {
                x * 1e6 + 0.1
            }
        })
        .collect();
    d
}

fn r_doubles(v: &[f64]) -> String {
    let items: Vec<String> = v
        .iter()
        .map(|x| {
            if is_na_real(*x) {
                "NA".into()
            } else {
                format!("{x:?}")
            }
        })
        .collect();
    format!("c({})", items.join(","))
}

fn r_integers(v: &[Option<i32>]) -> String {
    let items: Vec<String> = v
        .iter()
        .map(|x| x.map_or("NA".into(), |i| format!("{i}L")))
        .collect();
    format!("c({})", items.join(","))
}

fn r_logicals(v: &[Option<bool>]) -> String {
    let items: Vec<String> = v
        .iter()
        .map(|x| {
            x.map_or(
                "NA".into(),
                |b| if b { "TRUE".into() } else { "FALSE".into() },
            )
        })
        .collect();
    format!("c({})", items.join(","))
}

fn data_frame(d: &Data) -> RObject {
    RObject::data_frame(
        [
            ("num", RObject::doubles(d.num.clone())),
            ("int", RObject::integers(d.int.clone())),
            (
                "fac",
                RObject::factor(
                    d.fac.clone(),
                    LEVELS.iter().map(|s| s.to_string()).collect(),
                ),
            ),
            ("lgl", RObject::logicals(d.lgl.clone())),
            ("bin", RObject::doubles(d.bin.clone())),
            ("big", RObject::doubles(d.big.clone())),
        ],
        ROWS,
    )
}

/// R source defining `D` and `describe()`, which prints an object as [`describe`] does.
fn r_prelude(d: &Data) -> String {
    format!(
        r#"
D <- data.frame(num = {num}, int = {int}, fac = factor({fac}, levels = 1:4, labels = c("a","b","c","d")),
                lgl = {lgl}, bin = {bin})
D$big <- D$num * 1e6 + 0.1
describe <- function(x) {{
  out <- character()
  rec <- function(x) {{
    out <<- c(out, paste("<", typeof(x), length(x)))
    a <- attributes(x)
    for (nm in names(a)) {{ out <<- c(out, paste("@", nm)); rec(a[[nm]]) }}
    if (is.list(x)) {{ for (i in seq_along(x)) rec(x[[i]]) }}
    else if (is.double(x)) {{ for (v in x) out <<- c(out, if (is.nan(v)) "NaN" else if (is.na(v)) "NA" else sprintf("%.17g", v)) }}
    else if (is.integer(x) || is.logical(x)) {{ for (v in x) out <<- c(out, if (is.na(v)) "NA" else as.character(v)) }}
    else if (is.character(x)) {{ for (v in x) out <<- c(out, if (is.na(v)) "NA" else encodeString(v, quote = '"')) }}
    out <<- c(out, ">")
  }}
  rec(x)
  out
}}
show <- function(name, x) cat(paste0("=== ", name), describe(x), sep = "\n")
"#,
        num = r_doubles(&d.num),
        int = r_integers(&d.int),
        fac = r_integers(&d.fac),
        lgl = r_logicals(&d.lgl),
        bin = r_doubles(&d.bin),
    )
}

/// The same description of an object on our side (compact row names expanded, as R's
/// `attributes()` shows them).
fn describe(x: &RObject) -> Vec<String> {
    fn quote(s: &str) -> String {
        let escaped: String = s
            .chars()
            .flat_map(|c| match c {
                '"' => vec!['\\', '"'],
                '\\' => vec!['\\', '\\'],
                '\n' => vec!['\\', 'n'],
                c => vec![c],
            })
            .collect();
        format!("\"{escaped}\"")
    }
    fn rec(x: &RObject, out: &mut Vec<String>) {
        out.push(format!("< {} {}", x.vector.type_name(), x.len()));
        for (name, value) in &x.attributes {
            out.push(format!("@ {name}"));
            match (&**name, &value.vector) {
                ("row.names", Vector::Integer(v)) if v.len() == 2 && v[0].is_none() => {
                    let n = v[1].unwrap_or(0).abs();
                    rec(&RObject::integers((1..=n).map(Some).collect()), out);
                }
                _ => rec(value, out),
            }
        }
        match &x.vector {
            Vector::Null => {}
            Vector::List(items) => items.iter().for_each(|i| rec(i, out)),
            Vector::Double(v) => out.extend(v.iter().map(|d| {
                if is_na_real(*d) {
                    "NA".into()
                } else if d.is_nan() {
                    "NaN".into()
                } else {
                    format!("{d:e}")
                }
            })),
            Vector::Integer(v) => {
                out.extend(v.iter().map(|i| i.map_or("NA".into(), |i| i.to_string())))
            }
            Vector::Logical(v) => out.extend(v.iter().map(|b| {
                b.map_or(
                    "NA".into(),
                    |b| if b { "TRUE".into() } else { "FALSE".into() },
                )
            })),
            Vector::Character(v) => {
                out.extend(v.iter().map(|s| s.as_deref().map_or("NA".into(), quote)))
            }
        }
        out.push(">".into());
    }
    let mut out = Vec::new();
    rec(x, &mut out);
    out
}

/// Runs the R script and splits what `show()` printed into named sections.
fn r_sections(script: &str) -> std::collections::BTreeMap<String, Vec<String>> {
    // `Rscript -e` cuts long expressions short; the script goes through a file instead, one
    // per call (tests run in parallel), kept for reading when a comparison fails.
    static SCRIPTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = SCRIPTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = common::scratch_file(
        &format!("descriptive-{}-{n}.R", std::process::id()),
        script.as_bytes(),
    );
    let output = common::rscript(&format!("source('{}')", path.display()));
    let mut sections = std::collections::BTreeMap::new();
    let mut current: Option<(String, Vec<String>)> = None;
    for line in output.lines() {
        if let Some(name) = line.strip_prefix("=== ") {
            if let Some((n, v)) = current.take() {
                sections.insert(n, v);
            }
            current = Some((name.to_owned(), Vec::new()));
        } else if let Some((_, v)) = current.as_mut() {
            v.push(line.to_owned());
        }
    }
    if let Some((n, v)) = current {
        sections.insert(n, v);
    }
    sections
}

/// Structure exactly, numbers to 1e-12 relative (exactly when R's is an integer count).
fn assert_same(name: &str, ours: &[String], r: &[String]) {
    let context = || {
        format!(
            "{name}\n--- ours\n{}\n--- R\n{}",
            ours.join("\n"),
            r.join("\n")
        )
    };
    assert_eq!(ours.len(), r.len(), "{}", context());
    for (a, b) in ours.iter().zip(r) {
        if a == b {
            continue;
        }
        match (a.parse::<f64>(), b.parse::<f64>()) {
            (Ok(x), Ok(y)) => {
                let tolerance = 1e-12 * x.abs().max(y.abs());
                assert!(
                    (x - y).abs() <= tolerance,
                    "{a} vs R's {b} in {}",
                    context()
                );
            }
            _ => panic!("{a:?} vs R's {b:?} in {}", context()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Calling builtins.

fn s(text: &str) -> Arg {
    Arg {
        name: None,
        value: Expr::Str(text.to_owned()),
    }
}

fn sym(name: &str) -> Arg {
    Arg {
        name: None,
        value: Expr::Symbol(name.to_owned()),
    }
}

fn named(name: &str, value: Arg) -> Arg {
    Arg {
        name: Some(name.to_owned()),
        value: value.value,
    }
}

fn session() -> (Data, Session) {
    let d = data();
    let mut symbols = Symbols::new();
    symbols.insert("D".into(), data_frame(&d));
    symbols.insert(
        "M".into(),
        RObject::matrix(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3, 2).with_attr(
            "dimnames",
            RObject::list(vec![RObject::null(), RObject::strings(["p", "q"])]),
        ),
    );
    symbols.insert("allna".into(), RObject::doubles(vec![na_real(), f64::NAN]));
    symbols.insert(
        "L".into(),
        RObject::named_list([
            ("alpha", RObject::double(1.0)),
            ("beta", RObject::string("x")),
        ]),
    );
    (d, Session::from_symbols(symbols))
}

fn settings_tab(n: f64) -> DisclosureSettings {
    DisclosureSettings {
        nfilter_tab: n,
        ..Default::default()
    }
}

fn refusal(result: Result<RObject, DsError>) -> (String, String) {
    match result {
        Err(DsError::Disclosure { rule, message }) => (rule.to_owned(), message),
        other => panic!("expected a disclosure refusal, got {other:?}"),
    }
}

fn failure(result: Result<RObject, DsError>) -> String {
    match result {
        Err(DsError::Failed(message)) => message,
        other => panic!("expected a failure, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Against R.

/// A builtin's call and the R expression that must give the same object: (name, function,
/// arguments, R).
type Case = (&'static str, &'static str, Vec<Arg>, String);

/// Runs every case's R expression in one R session (after the data and `r_extra`) and compares
/// each with the builtin's result, structure and values.
fn assert_cases_match_r(d: &Data, session: &Session, r_extra: &str, cases: Vec<Case>) {
    let mut script = r_prelude(d);
    script.push_str(r_extra);
    for (name, _, _, r) in &cases {
        script.push_str(&format!("show('{name}', {r})\n"));
    }
    let expected = r_sections(&script);
    for (name, function, args, _) in cases {
        assert!(
            expected.contains_key(name),
            "R printed no {name}: {:?}",
            expected.keys().collect::<Vec<_>>()
        );
        let ours = describe(&session.ok(function, args));
        assert_same(name, &ours, &expected[name]);
    }
}

#[test]
fn metadata_functions_match_r() {
    let (d, session) = session();
    let cases: Vec<Case> = vec![
        ("class_df", "classDS", vec![s("D")], "class(D)".into()),
        ("class_num", "classDS", vec![s("D$num")], "class(D$num)".into()),
        ("dim_df", "dimDS", vec![s("D")], "dim(D)".into()),
        ("dim_vec", "dimDS", vec![s("D$num")], "dim(D$num)".into()),
        ("length_df", "lengthDS", vec![s("D")], "length(D)".into()),
        ("length_fac", "lengthDS", vec![s("D$fac")], "length(D$fac)".into()),
        ("colnames_df", "colnamesDS", vec![s("D")], "colnames(D)".into()),
        ("colnames_vec", "colnamesDS", vec![s("D$int")], "colnames(D$int)".into()),
        ("names_df", "namesDS", vec![s("D")], "names(D)".into()),
        ("names_list", "namesDS", vec![s("L")], "names(list(alpha = 1, beta = 'x'))".into()),
        ("numna_num", "numNaDS", vec![sym("D$num")], "length(which(is.na(D$num)))".into()),
        ("numna_fac", "numNaDS", vec![sym("D$fac")], "length(which(is.na(D$fac)))".into()),
        ("numna_df", "numNaDS", vec![sym("D")], "length(which(is.na(D)))".into()),
        ("isna_num", "isNaDS", vec![sym("D$num")], "all(is.na(D$num))".into()),
        (
            "levels_fac",
            "levelsDS",
            vec![sym("D$fac")],
            "list(Levels = levels(D$fac), ValidityMessage = 'VALID ANALYSIS')".into(),
        ),
        ("levels_by_name", "levelsDS", vec![s("D$fac")], "list(Levels = levels(D$fac), ValidityMessage = 'VALID ANALYSIS')".into()),
        ("valid_num", "isValidDS", vec![sym("D$num")], "TRUE".into()),
        ("dim_matrix", "dimDS", vec![s("M")], "dim(matrix(c(1, 2, 3, 4, 5, 6), 3, 2, dimnames = list(NULL, c('p', 'q'))))".into()),
        ("colnames_matrix", "colnamesDS", vec![s("M")], "colnames(matrix(c(1, 2, 3, 4, 5, 6), 3, 2, dimnames = list(NULL, c('p', 'q'))))".into()),
        ("class_matrix", "classDS", vec![s("M")], "class(matrix(c(1, 2, 3, 4, 5, 6), 3, 2, dimnames = list(NULL, c('p', 'q'))))".into()),
        ("length_matrix", "lengthDS", vec![s("M")], "length(matrix(c(1, 2, 3, 4, 5, 6), 3, 2, dimnames = list(NULL, c('p', 'q'))))".into()),
        ("isna_all", "isNaDS", vec![sym("allna")], "all(is.na(c(NA, NaN)))".into()),
        ("isna_df", "isNaDS", vec![sym("D")], "all(is.na(D))".into()),
        ("numna_all", "numNaDS", vec![sym("allna")], "length(which(is.na(c(NA, NaN))))".into()),
        (
            "levels_numeric",
            "levelsDS",
            vec![sym("D$num")],
            "list(Levels = levels(D$num), ValidityMessage = 'VALID ANALYSIS')".into(),
        ),
        (
            "exists_D",
            "testObjExistsDS",
            vec![s("D")],
            "list(test.obj.exists = TRUE, test.obj.class = class(D))".into(),
        ),
        (
            "exists_none",
            "testObjExistsDS",
            vec![s("nope")],
            "list(test.obj.exists = FALSE, test.obj.class = NULL)".into(),
        ),
        (
            "settings",
            "listDisclosureSettingsDS",
            vec![],
            "list(datashield.privacyControlLevel = 'banana', nfilter.tab = 3, nfilter.subset = 3, nfilter.glm = 0.33, nfilter.string = 80, nfilter.stringShort = 20, nfilter.kNN = 3, nfilter.levels.density = 0.33, nfilter.levels.max = 40, nfilter.noise = 0.25, nfilter.privacy.old = 5)".into(),
        ),
    ];
    assert_cases_match_r(&d, &session, "", cases);
}

#[test]
fn descriptive_statistics_match_r() {
    let (d, session) = session();
    let mean = |v: &str| {
        format!(
            "list(EstimatedMean = mean({v}, na.rm = TRUE), Nmissing = length(which(is.na({v}))), Nvalid = length({v}) - length(which(is.na({v}))), Ntotal = length({v}), ValidityMessage = 'VALID ANALYSIS')"
        )
    };
    let var = |v: &str| {
        format!(
            "list(Sum = sum({v}, na.rm = TRUE), SumOfSquares = sum({v}^2, na.rm = TRUE), Nmissing = length(which(is.na({v}))), Nvalid = length({v}) - length(which(is.na({v}))), Ntotal = length({v}), ValidityMessage = 'VALID ANALYSIS')"
        )
    };
    let quantile = |v: &str| {
        format!(
            "{{ q <- c(quantile({v}, c(0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95), na.rm = TRUE), mean({v}, na.rm = TRUE)); names(q) <- c('5%','10%','25%','50%','75%','90%','95%','Mean'); q }}"
        )
    };
    let cases: Vec<Case> = vec![
        ("mean_num", "meanDS", vec![sym("D$num")], mean("D$num")),
        ("mean_int", "meanDS", vec![sym("D$int")], mean("D$int")),
        ("mean_lgl", "meanDS", vec![sym("D$lgl")], mean("D$lgl")),
        // R's mean of a factor is NA (with a warning); so is meanDS's.
        ("mean_fac", "meanDS", vec![sym("D$fac")], format!("suppressWarnings({})", mean("D$fac"))),
        ("var_num", "varDS", vec![sym("D$num")], var("D$num")),
        ("var_int", "varDS", vec![sym("D$int")], var("D$int")),
        ("var_lgl", "varDS", vec![sym("D$lgl")], var("D$lgl")),
        ("mean_big", "meanDS", vec![sym("D$big")], mean("D$big")),
        ("var_big", "varDS", vec![sym("D$big")], var("D$big")),
        ("quantile_big", "quantileMeanDS", vec![sym("D$big")], quantile("D$big")),
        (
            "meansd_small_groups",
            "meanSdGpDS",
            vec![sym("D$num"), sym("D$int")],
            "{ ok <- complete.cases(D$num, D$int);
               list(Table_valid = FALSE, Nvalid = sum(ok), Nmissing = sum(!ok), Ntotal = length(ok),
                    Warning = 'At least one group has between 1 and 2 observations. Please change groups') }"
                .into(),
        ),
        (
            "meansd_big",
            "meanSdGpDS",
            vec![sym("D$big"), sym("D$fac")],
            "{ ok <- complete.cases(D$big, D$fac); g <- as.integer(D$fac)[ok]; x <- D$big[ok];
               list(Table_valid = TRUE, Mean_gp = tapply(x, g, mean), StDev_gp = sqrt(tapply(x, g, var)),
                    N_gp = table(group = as.integer(factor(g))), Nvalid = sum(ok), Nmissing = sum(!ok),
                    Ntotal = length(ok), Message = 'All tables valid') }"
                .into(),
        ),
        ("quantile_num", "quantileMeanDS", vec![sym("D$num")], quantile("D$num")),
        ("quantile_int", "quantileMeanDS", vec![sym("D$int")], quantile("D$int")),
        (
            "meansd",
            "meanSdGpDS",
            vec![sym("D$num"), sym("D$fac")],
            "{ ok <- complete.cases(D$num, D$fac); g <- as.integer(D$fac)[ok]; x <- D$num[ok];
               list(Table_valid = TRUE, Mean_gp = tapply(x, g, mean), StDev_gp = sqrt(tapply(x, g, var)),
                    N_gp = table(group = as.integer(factor(g))), Nvalid = sum(ok), Nmissing = sum(!ok),
                    Ntotal = length(ok), Message = 'All tables valid') }"
                .into(),
        ),
        (
            "meansd_int",
            "meanSdGpDS",
            vec![named("X", sym("D$int")), named("INDEX", sym("D$lgl"))],
            "{ ok <- complete.cases(D$int, D$lgl); g <- as.integer(D$lgl)[ok]; x <- D$int[ok];
               list(Table_valid = TRUE, Mean_gp = tapply(x, g, mean), StDev_gp = sqrt(tapply(x, g, var)),
                    N_gp = table(group = as.integer(factor(g))), Nvalid = sum(ok), Nmissing = sum(!ok),
                    Ntotal = length(ok), Message = 'All tables valid') }"
                .into(),
        ),
    ];
    assert_cases_match_r(&d, &session, "", cases);
}

#[test]
fn tables_match_r() {
    let (d, session) = session();
    let one = |v: &str| {
        format!(
            "{{ t <- table({v}); cc <- as.data.frame(t(as.numeric(t))); cc <- cbind(cc, sum(as.numeric(t))); colnames(cc) <- c(names(t), 'Total'); list(table = cc, message = 'valid Table') }}"
        )
    };
    let two = |x: &str, y: &str| {
        format!("{{ t <- table({x}, {y}); m <- unclass(t); m <- rbind(m, colSums(m)); m <- cbind(m, rowSums(m)); storage.mode(m) <- 'double';
            cc <- as.data.frame(unname(m)); colnames(cc) <- c(colnames(t), 'Total'); rownames(cc) <- c(rownames(t), 'Total');
            list(table = cc, message = 'valid Table') }}")
    };
    let withheld = |x: &str, y: &str| {
        format!("{{ t <- table({x}, {y}); m <- unclass(t); m <- rbind(m, colSums(m)); m <- cbind(m, rowSums(m)); storage.mode(m) <- 'double';
            m[seq_len(nrow(t)), seq_len(ncol(t))] <- NA;
            cc <- as.data.frame(unname(m)); colnames(cc) <- c(colnames(t), 'Total'); rownames(cc) <- c(rownames(t), 'Total');
            list(table = cc, message = 'invalid table - invalid counts present') }}")
    };
    let cases: Vec<Case> = vec![
        (
            "t2_withheld",
            "table2DDS",
            vec![sym("D$fac"), sym("D$int")],
            withheld("D$fac", "D$int"),
        ),
        ("t1_by_name", "table1DDS", vec![s("D$bin")], one("D$bin")),
        ("t1_fac", "table1DDS", vec![sym("D$fac")], one("D$fac")),
        ("t1_lgl", "table1DDS", vec![sym("D$lgl")], one("D$lgl")),
        ("t1_bin", "table1DDS", vec![sym("D$bin")], one("D$bin")),
        (
            "t2_fac_lgl",
            "table2DDS",
            vec![sym("D$fac"), sym("D$lgl")],
            two("D$fac", "D$lgl"),
        ),
        (
            "t2_lgl_bin",
            "table2DDS",
            vec![sym("D$lgl"), sym("D$bin")],
            two("D$lgl", "D$bin"),
        ),
    ];
    assert_cases_match_r(&d, &session, "", cases);
}

/// R code for corDS's list over the data frame `df` (casewise), and covDS's (casewise or
/// pairwise).
const R_COR_COV: &str = r#"
na_cols <- function(df) matrix(as.integer(colSums(is.na(df))), nrow = 1, dimnames = list(NULL, colnames(df)))
cor_like <- function(df) {
  cls <- colnames(df); n <- ncol(df); cc <- df[complete.cases(df), , drop = FALSE]; m <- as.matrix(cc)
  dn <- list(cls, cls)
  list(sums.of.products = matrix(crossprod(m), n, n, dimnames = dn),
       sums = matrix(colSums(m), n, n, dimnames = dn),
       complete.counts = matrix(nrow(cc), n, n, dimnames = dn),
       na.counts = list("Number of NAs in each column" = na_cols(df),
                        "Number of NAs casewise" = matrix(nrow(df) - nrow(cc), n, n, dimnames = dn)),
       sums.of.squares = matrix(colSums(m^2), n, n, dimnames = dn))
}
cov_like <- function(df, pairwise) {
  cls <- colnames(df); n <- ncol(df); dn <- list(cls, cls)
  if (!pairwise) {
    cc <- df[complete.cases(df), , drop = FALSE]; m <- as.matrix(cc)
    return(list(sums.of.products = matrix(crossprod(m), n, n, dimnames = dn),
                sums = matrix(colSums(m), n, 1, dimnames = list(cls, NULL)),
                complete.counts = matrix(nrow(cc), n, n, dimnames = dn),
                na.counts = list("Number of NAs in each column" = na_cols(df),
                                 "Number of NAs casewise" = matrix(nrow(df) - nrow(cc), 1, 1)),
                errorMessage = NA))
  }
  sp <- s <- matrix(0, n, n, dimnames = dn); cn <- nas <- matrix(0L, n, n, dimnames = dn)
  for (i in 1:n) for (j in 1:n) {
    ok <- complete.cases(df[, i], df[, j])
    sp[i, j] <- sum(df[ok, i] * df[ok, j]); s[i, j] <- sum(df[ok, i]); cn[i, j] <- sum(ok); nas[i, j] <- nrow(df) - sum(ok)
  }
  list(sums.of.products = sp, sums = s, complete.counts = cn,
       na.counts = list("Number of NAs in each column" = na_cols(df), "Number of NAs pairwise" = nas),
       errorMessage = NA)
}
binary_message <- "ERROR: at least one variable is binary with one category less than the filter threshold for table cell size"
cov_refused <- function(cls, pairwise, message) {
  n <- length(cls); dn <- list(cls, cls)
  second <- if (pairwise) matrix(NA, n, n, dimnames = dn) else matrix(NA, 1, 1)
  na.counts <- list(matrix(NA, 1, n, dimnames = list(NULL, cls)), second)
  names(na.counts) <- c("Number of NAs in each column", if (pairwise) "Number of NAs pairwise" else "Number of NAs casewise")
  list(sums.of.products = matrix(NA, n, n, dimnames = dn),
       sums = matrix(NA, n, if (pairwise) n else 1, dimnames = list(cls, NULL)),
       complete.counts = matrix(NA, n, n, dimnames = dn),
       na.counts = na.counts,
       errorMessage = message)
}
"#;

#[test]
fn correlation_and_covariance_sums_match_r() {
    let (d, mut session) = session();
    session.insert(
        "N",
        RObject::data_frame(
            [
                ("num", RObject::doubles(d.num.clone())),
                ("int", RObject::integers(d.int.clone())),
                ("bin", RObject::doubles(d.bin.clone())),
            ],
            ROWS,
        ),
    );
    let rare: Vec<f64> = (0..ROWS).map(|i| if i < 2 { 1.0 } else { 0.0 }).collect();
    session.insert(
        "B",
        RObject::data_frame(
            [
                ("num", RObject::doubles(d.num.clone())),
                ("rare", RObject::doubles(rare)),
            ],
            ROWS,
        ),
    );
    let b_df = "data.frame(num = D$num, rare = c(1, 1, rep(0, nrow(D) - 2)))";
    let n_df = "data.frame(num = D$num, int = D$int, bin = D$bin)";
    let cases: Vec<Case> = vec![
        (
            "cor_vectors",
            "corDS",
            vec![s("D$num"), s("D$int")],
            "cor_like(data.frame(x.val = D$num, y.val = D$int))".into(),
        ),
        ("cor_df", "corDS", vec![s("N")], format!("cor_like({n_df})")),
        (
            "cor_df_null_y",
            "corDS",
            vec![s("N"), s("NULL")],
            format!("cor_like({n_df})"),
        ),
        (
            "cor_symbols",
            "corDS",
            vec![sym("D$num"), sym("D$big")],
            "cor_like(data.frame(x.val = D$num, y.val = D$big))".into(),
        ),
        (
            "cor_df_vec",
            "corDS",
            vec![s("N"), s("D$lgl")],
            format!("cor_like(cbind({n_df}, y.val = as.numeric(D$lgl)))"),
        ),
        (
            "cov_case",
            "covDS",
            vec![s("N"), sym("NULL"), s("casewise.complete")],
            format!("cov_like({n_df}, FALSE)"),
        ),
        (
            "cov_pair",
            "covDS",
            vec![named("x", s("N")), named("use", s("pairwise.complete"))],
            format!("cov_like({n_df}, TRUE)"),
        ),
        (
            "cov_vectors_pair",
            "covDS",
            vec![s("D$num"), s("D$int"), s("pairwise.complete")],
            "cov_like(data.frame(x.val = D$num, y.val = D$int), TRUE)".into(),
        ),
        (
            "cov_refused_case",
            "covDS",
            vec![s("B"), sym("NULL"), s("casewise.complete")],
            format!("cov_refused(colnames({b_df}), FALSE, binary_message)"),
        ),
        (
            "cov_refused_pair",
            "covDS",
            vec![s("B"), sym("NULL"), s("pairwise.complete")],
            format!("cov_refused(colnames({b_df}), TRUE, binary_message)"),
        ),
    ];
    assert_cases_match_r(&d, &session, R_COR_COV, cases);
}

#[test]
fn errors_are_rs_own_messages() {
    let (d, session) = session();
    let script = format!(
        "{}\ncat(tryCatch(sum(D$fac), error = conditionMessage), tryCatch(sum(c('a')), error = conditionMessage), tryCatch(quantile(D$fac, 0.5), error = conditionMessage), sep = '\\n')\n",
        r_prelude(&d)
    );
    let path = common::scratch_file("descriptive-errors.R", script.as_bytes());
    let r = common::rscript(&format!("source('{}')", path.display()));
    let lines: Vec<&str> = r.lines().collect();
    assert_eq!(failure(session.call("varDS", vec![sym("D$fac")])), lines[0]);
    let mut with_chr = session.fork();
    with_chr.insert("S", RObject::strings(["a", "b", "c"]));
    assert_eq!(failure(with_chr.call("varDS", vec![sym("S")])), lines[1]);
    assert_eq!(
        failure(session.call("quantileMeanDS", vec![sym("D$fac")])),
        lines[2]
    );
    // A missing object, in R's words; a missing column; a missing argument.
    assert_eq!(
        failure(session.call("meanDS", vec![sym("nope")])),
        "object 'nope' not found"
    );
    assert_eq!(
        failure(session.call("lengthDS", vec![s("nope")])),
        "object 'nope' not found"
    );
    assert!(failure(session.call("meanDS", vec![sym("D$nope")])).contains("has no element 'nope'"));
    assert_eq!(
        failure(session.call("meanDS", vec![])),
        "meanDS: argument \"xvect\" is missing, with no default"
    );
    assert_eq!(
        failure(session.call("table2DDS", vec![sym("D$fac")])),
        "table2DDS: argument \"yvect\" is missing, with no default"
    );
    assert_eq!(
        failure(session.call("covDS", vec![s("D$num"), s("D$int")])),
        "covDS: argument \"use\" is missing, with no default"
    );
    // Wrong types.
    assert!(
        failure(session.call("meanDS", vec![sym("L")]))
            .starts_with("meanDS: the object must be a vector")
    );
    assert_eq!(
        failure(session.call("namesDS", vec![s("D$num")])),
        "The input object is not of class <list>numeric"
    );
    // dsBase pastes each class string onto its message.
    assert_eq!(
        failure(session.call("namesDS", vec![s("M")])),
        "The input object is not of class <list>matrixThe input object is not of class <list>array"
    );
    assert!(failure(session.call("corDS", vec![s("D")])).contains("must be numeric"));
    assert!(
        failure(session.call("covDS", vec![s("D$num"), s("D$int"), s("everything")]))
            .contains("use must be")
    );
    assert!(matches!(
        session.call("noSuchDS", vec![]),
        Err(DsError::NoSuchMethod { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// Disclosure rules, just inside and just outside each threshold.

fn vector_session(values: Vec<f64>) -> Session {
    let mut symbols = Symbols::new();
    symbols.insert("x".into(), RObject::doubles(values));
    Session::from_symbols(symbols)
}

/// `valid` values followed by `missing` NAs.
fn with_nas(valid: usize, missing: usize) -> Vec<f64> {
    (0..valid)
        .map(|i| i as f64 + 0.5)
        .chain(std::iter::repeat_n(na_real(), missing))
        .collect()
}

#[test]
fn mean_and_var_refuse_fewer_valid_values_than_nfilter_tab() {
    for (tab, settings) in [(3, DisclosureSettings::default()), (5, settings_tab(5.0))] {
        for function in ["meanDS", "varDS"] {
            let inside = vector_session(with_nas(tab, 4)).with(settings.clone());
            let result = inside.ok(function, vec![sym("x")]);
            assert_eq!(
                result.element("Nvalid").map(describe),
                Some(describe(&RObject::integer(tab as i32)))
            );
            let outside = vector_session(with_nas(tab - 1, 4)).with(settings.clone());
            assert_eq!(
                refusal(outside.call(function, vec![sym("x")])),
                (
                    "nfilter.tab".into(),
                    "FAILED: Nvalid less than nfilter.tab".into()
                )
            );
            // No valid value at all is not disclosive: R's mean of nothing, NaN.
            let empty = vector_session(with_nas(0, 4)).with(settings.clone());
            assert!(empty.call(function, vec![sym("x")]).is_ok());
        }
    }
    let empty = vector_session(with_nas(0, 4)).ok("meanDS", vec![sym("x")]);
    assert!(
        matches!(&empty.element("EstimatedMean").unwrap().vector, Vector::Double(v) if v[0].is_nan() && !is_na_real(v[0]))
    );
}

fn factor(counts: &[usize]) -> RObject {
    let codes = counts
        .iter()
        .enumerate()
        .flat_map(|(i, n)| std::iter::repeat_n(Some(i as i32 + 1), *n))
        .collect();
    RObject::factor(codes, (0..counts.len()).map(|i| format!("l{i}")).collect())
}

#[test]
fn is_valid_follows_dsbase_rule_for_vectors_factors_and_data_frames() {
    for (tab, settings) in [
        (3_usize, DisclosureSettings::default()),
        (5, settings_tab(5.0)),
    ] {
        let mut symbols = Symbols::new();
        symbols.insert("inside".into(), RObject::doubles(vec![1.0; tab]));
        symbols.insert("outside".into(), RObject::doubles(vec![1.0; tab - 1]));
        symbols.insert("empty".into(), RObject::doubles(vec![]));
        symbols.insert("ints".into(), RObject::integers(vec![Some(1); tab - 1]));
        symbols.insert("fac_inside".into(), factor(&[tab, 0, tab + 1]));
        symbols.insert("fac_outside".into(), factor(&[tab - 1, tab + 3]));
        symbols.insert(
            "df_inside".into(),
            RObject::data_frame([("a", RObject::doubles(vec![1.0; tab]))], tab),
        );
        symbols.insert(
            "df_outside".into(),
            RObject::data_frame([("a", RObject::doubles(vec![1.0; tab - 1]))], tab - 1),
        );
        symbols.insert("list".into(), RObject::list(vec![RObject::double(1.0); 10]));
        let session = Session::from_symbols(symbols).with(settings);
        for (name, expected) in [
            ("inside", true),
            ("outside", false),
            ("empty", true),
            ("ints", false),
            ("fac_inside", true),
            ("fac_outside", false),
            ("df_inside", true),
            ("df_outside", false),
            ("list", false),
        ] {
            let result = session.ok("isValidDS", vec![sym(name)]);
            assert_eq!(
                describe(&result),
                describe(&RObject::logical(expected)),
                "isValidDS({name}) at nfilter.tab {tab}"
            );
        }
        // quantileMeanDS answers a bare NA for what isValidDS refuses.
        let na = session.ok("quantileMeanDS", vec![sym("outside")]);
        assert_eq!(describe(&na), describe(&RObject::logicals(vec![None])));
        assert_eq!(session.ok("quantileMeanDS", vec![sym("inside")]).len(), 8);
    }
}

fn table1(counts: &[usize], settings: DisclosureSettings) -> Result<RObject, DsError> {
    let mut symbols = Symbols::new();
    symbols.insert("f".into(), factor(counts));
    Session::from_symbols(symbols)
        .with(settings)
        .call("table1DDS", vec![sym("f")])
}

fn cells(table: &RObject) -> Vec<Option<f64>> {
    let Vector::List(columns) = &table.element("table").unwrap().vector else {
        panic!("not a data frame")
    };
    columns
        .iter()
        .flat_map(|c| c.as_doubles().unwrap())
        .collect()
}

fn message(table: &RObject) -> String {
    table.element("message").unwrap().str_values()[0].to_owned()
}

#[test]
fn table1d_refuses_a_small_count() {
    for (tab, settings) in [
        (3_usize, DisclosureSettings::default()),
        (5, settings_tab(5.0)),
    ] {
        let inside = table1(&[tab, 0, tab + 2], settings.clone()).expect("a valid table");
        assert_eq!(message(&inside), "valid Table");
        let total = (2 * tab + 2) as f64;
        assert_eq!(
            cells(&inside),
            vec![
                Some(tab as f64),
                Some(0.0),
                Some(tab as f64 + 2.0),
                Some(total)
            ]
        );
        assert_eq!(
            refusal(table1(&[tab - 1, 0, tab + 2], settings)),
            (
                "nfilter.tab".into(),
                "invalid table - invalid counts present".into()
            )
        );
    }
}

#[test]
fn table2d_withholds_every_inner_cell_when_one_is_small() {
    for (tab, settings) in [
        (3_usize, DisclosureSettings::default()),
        (5, settings_tab(5.0)),
    ] {
        // A 2×2 table: cells (a,a)=tab or tab−1, (a,b)=tab, (b,a)=tab, (b,b)=0.
        let build = |corner: usize| {
            let mut x = Vec::new();
            let mut y = Vec::new();
            for (cx, cy, n) in [(1, 1, corner), (1, 2, tab), (2, 1, tab)] {
                x.extend(std::iter::repeat_n(Some(cx), n));
                y.extend(std::iter::repeat_n(Some(cy), n));
            }
            let mut symbols = Symbols::new();
            symbols.insert("x".into(), RObject::factor(x, vec!["a".into(), "b".into()]));
            symbols.insert("y".into(), RObject::factor(y, vec!["a".into(), "b".into()]));
            Session::from_symbols(symbols)
                .with(settings.clone())
                .ok("table2DDS", vec![sym("x"), sym("y")])
        };
        let t = tab as f64;
        let inside = build(tab);
        assert_eq!(message(&inside), "valid Table");
        // Column-major: column a (a, b, Total), column b, Total column.
        assert_eq!(
            cells(&inside),
            [t, t, 2.0 * t, t, 0.0, t, 2.0 * t, t, 3.0 * t]
                .map(Some)
                .to_vec()
        );
        let outside = build(tab - 1);
        assert_eq!(message(&outside), "invalid table - invalid counts present");
        assert_eq!(
            cells(&outside),
            vec![
                None,
                None,
                Some(2.0 * t - 1.0),
                None,
                None,
                Some(t),
                Some(2.0 * t - 1.0),
                Some(t),
                Some(3.0 * t - 1.0)
            ]
        );
    }
}

#[test]
fn levels_refused_beyond_density_and_outside_banana_and_permissive() {
    // 3 levels: 10 values give 3.3 ≥ 3 (allowed), 9 give 2.97 < 3 (refused).
    let session_for = |n: usize, settings: DisclosureSettings| {
        let mut symbols = Symbols::new();
        symbols.insert("f".into(), factor(&[n - 2, 1, 1]));
        Session::from_symbols(symbols).with(settings)
    };
    assert!(
        session_for(10, DisclosureSettings::default())
            .call("levelsDS", vec![sym("f")])
            .is_ok()
    );
    assert_eq!(
        refusal(session_for(9, DisclosureSettings::default()).call("levelsDS", vec![sym("f")])),
        (
            "nfilter.levels.density".into(),
            "FAILED: Result length less than nfilter.levels.density of input length.".into()
        )
    );
    // At density 0.5: 6 values allow 3 levels, 5 do not.
    let half = DisclosureSettings {
        nfilter_levels_density: 0.5,
        ..Default::default()
    };
    assert!(
        session_for(6, half.clone())
            .call("levelsDS", vec![sym("f")])
            .is_ok()
    );
    assert_eq!(
        refusal(session_for(5, half).call("levelsDS", vec![sym("f")])).0,
        "nfilter.levels.density"
    );
    for (level, allowed) in [
        (PrivacyControlLevel::Banana, true),
        (PrivacyControlLevel::Permissive, true),
        (PrivacyControlLevel::Avocado, false),
    ] {
        let settings = DisclosureSettings {
            privacy_control_level: level,
            ..Default::default()
        };
        let result = session_for(10, settings).call("levelsDS", vec![sym("f")]);
        if allowed {
            assert!(result.is_ok());
        } else {
            assert_eq!(
                refusal(result),
                (
                    "datashield.privacyControlLevel".into(),
                    "BLOCKED: The server is running in 'non-permissive' mode which has caused this method to be blocked"
                        .into()
                )
            );
        }
    }
}

#[test]
fn mean_sd_by_group_returns_only_counts_when_a_group_is_small() {
    for (tab, settings) in [
        (3_usize, DisclosureSettings::default()),
        (5, settings_tab(5.0)),
    ] {
        let build = |small: usize| {
            let mut symbols = Symbols::new();
            let f = factor(&[tab + 1, small]);
            let x: Vec<f64> = (0..f.len()).map(|i| i as f64 * 1.25).collect();
            symbols.insert("x".into(), RObject::doubles(x));
            symbols.insert("g".into(), f);
            Session::from_symbols(symbols)
                .with(settings.clone())
                .ok("meanSdGpDS", vec![sym("x"), sym("g")])
        };
        let inside = build(tab);
        assert_eq!(
            inside.names(),
            vec![
                "Table_valid",
                "Mean_gp",
                "StDev_gp",
                "N_gp",
                "Nvalid",
                "Nmissing",
                "Ntotal",
                "Message"
            ]
        );
        let outside = build(tab - 1);
        assert_eq!(
            outside.names(),
            vec!["Table_valid", "Nvalid", "Nmissing", "Ntotal", "Warning"]
        );
        assert_eq!(
            outside.element("Warning").unwrap().str_values(),
            vec![format!(
                "At least one group has between 1 and {} observations. Please change groups",
                tab - 1
            )]
        );
        assert_eq!(
            describe(outside.element("Table_valid").unwrap()),
            describe(&RObject::logical(false))
        );
    }
}

fn two_columns(rows: usize, binary_small: Option<usize>) -> Session {
    let a: Vec<f64> = (0..rows).map(|i| (i * i) as f64 * 0.5).collect();
    let b: Vec<f64> = match binary_small {
        Some(ones) => (0..rows)
            .map(|i| if i < ones { 1.0 } else { 0.0 })
            .collect(),
        None => (0..rows).map(|i| i as f64 + 3.0).collect(),
    };
    let mut symbols = Symbols::new();
    symbols.insert(
        "P".into(),
        RObject::data_frame(
            [("a", RObject::doubles(a)), ("b", RObject::doubles(b))],
            rows,
        ),
    );
    Session::from_symbols(symbols)
}

#[test]
fn cor_and_cov_refuse_saturation_and_small_binary_categories() {
    // nfilter.glm 0.33: two variables need 2 ≤ 0.33·rows, so 7 rows (2.31) pass, 6 (1.98) do not.
    assert!(two_columns(7, None).call("corDS", vec![s("P")]).is_ok());
    let (rule, text) = refusal(two_columns(6, None).call("corDS", vec![s("P")]));
    assert_eq!(rule, "nfilter.glm");
    assert!(text.starts_with(
        "ERROR: The ratio of the number of variables over the number of individual-level\n"
    ));
    // At nfilter.glm 0.5: 4 rows pass, 3 do not.
    let glm = DisclosureSettings {
        nfilter_glm: 0.5,
        ..Default::default()
    };
    assert!(
        two_columns(4, None)
            .with(glm.clone())
            .call("corDS", vec![s("P")])
            .is_ok()
    );
    assert_eq!(
        refusal(
            two_columns(3, None)
                .with(glm.clone())
                .call("corDS", vec![s("P")])
        )
        .0,
        "nfilter.glm"
    );
    let cov =
        |session: Session| session.ok("covDS", vec![s("P"), sym("NULL"), s("casewise.complete")]);
    let error_message = |r: &RObject| r.element("errorMessage").map(describe);
    assert_eq!(
        error_message(&cov(two_columns(4, None).with(glm.clone()))),
        Some(describe(&RObject::logicals(vec![None])))
    );
    let saturated = cov(two_columns(3, None).with(glm));
    assert!(
        saturated.element("errorMessage").unwrap().str_values()[0].starts_with("ERROR: The ratio")
    );
    assert_eq!(
        saturated
            .element("sums.of.products")
            .unwrap()
            .vector
            .type_name(),
        "logical"
    );

    // Binary columns: the rarer value needs nfilter.tab rows.
    for (tab, settings) in [
        (3_usize, DisclosureSettings::default()),
        (5, settings_tab(5.0)),
    ] {
        let rows = 20;
        assert!(
            two_columns(rows, Some(tab))
                .with(settings.clone())
                .call("corDS", vec![s("P")])
                .is_ok()
        );
        assert!(
            two_columns(rows, Some(rows - tab))
                .with(settings.clone())
                .call("corDS", vec![s("P")])
                .is_ok()
        );
        let (rule, text) = refusal(
            two_columns(rows, Some(tab - 1))
                .with(settings.clone())
                .call("corDS", vec![s("P")]),
        );
        assert_eq!(rule, "nfilter.tab");
        assert_eq!(
            text,
            "ERROR: at least one variable is binary with one category less than the filter threshold for table cell size"
        );
        let fine = cov(two_columns(rows, Some(tab)).with(settings.clone()));
        assert_eq!(
            error_message(&fine),
            Some(describe(&RObject::logicals(vec![None])))
        );
        let refused = two_columns(rows, Some(rows - tab + 1))
            .with(settings.clone())
            .ok("covDS", vec![s("P"), sym("NULL"), s("pairwise.complete")]);
        assert!(
            refused.element("errorMessage").unwrap().str_values()[0]
                .starts_with("ERROR: at least one variable is binary")
        );
        let sums = refused.element("sums").unwrap();
        assert_eq!(sums.dim(), Some(vec![2, 2]));
        assert!(matches!(&sums.vector, Vector::Logical(v) if v.iter().all(Option::is_none)));
    }
}

#[test]
fn disclosure_settings_report_the_profile_s_values() {
    let settings = DisclosureSettings {
        nfilter_tab: 5.0,
        nfilter_glm: 0.5,
        privacy_control_level: PrivacyControlLevel::Avocado,
        ..Default::default()
    };
    let listed = Session::from_symbols(Symbols::new())
        .with(settings)
        .ok("listDisclosureSettingsDS", vec![]);
    assert_eq!(
        listed.names(),
        vec![
            "datashield.privacyControlLevel",
            "nfilter.tab",
            "nfilter.subset",
            "nfilter.glm",
            "nfilter.string",
            "nfilter.stringShort",
            "nfilter.kNN",
            "nfilter.levels.density",
            "nfilter.levels.max",
            "nfilter.noise",
            "nfilter.privacy.old",
        ]
    );
    assert_eq!(
        listed
            .element("datashield.privacyControlLevel")
            .unwrap()
            .str_values(),
        vec!["avocado"]
    );
    assert_eq!(
        describe(listed.element("nfilter.tab").unwrap()),
        describe(&RObject::double(5.0))
    );
    assert_eq!(
        describe(listed.element("nfilter.glm").unwrap()),
        describe(&RObject::double(0.5))
    );
}
