//! R's random numbers, `rangeDS`, `histogramDS1/2` and `tableDS` against R itself: the same
//! data and seed in both, R computing what dsBase computes (set.seed, runif, rnorm, seq, hist,
//! table, with dsBase's rules restated in the R script).

mod common;

use common::Session;
use std::collections::BTreeMap;

use trellis_datashield::functions::rng::RRng;
use trellis_datashield::language::{Arg, Expr};
use trellis_datashield::value::{RObject, Vector};

/// A small deterministic generator for test data (splitmix64), independent of the code tested.
struct TestData(u64);

impl TestData {
    fn next_unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Roughly normal values (sum of uniforms), scaled.
    fn normalish(&mut self, n: usize, mean: f64, sd: f64) -> Vec<f64> {
        (0..n)
            .map(|_| mean + sd * ((0..12).map(|_| self.next_unit()).sum::<f64>() - 6.0))
            .collect()
    }
}

/// A double as an exact R literal (C99 hexadecimal), so R reads the very same bits.
fn r_literal(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    let bits = x.to_bits();
    let sign = if bits >> 63 == 1 { "-" } else { "" };
    let exponent = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mantissa = bits & ((1u64 << 52) - 1);
    format!("{sign}0x1.{mantissa:013x}p{exponent}")
}

fn r_vector(xs: &[f64]) -> String {
    format!(
        "c({})",
        xs.iter()
            .map(|x| r_literal(*x))
            .collect::<Vec<_>>()
            .join(",")
    )
}

/// Lines of `key v1 v2 …` printed by R into a map. The script goes through a file, as long data
/// would overflow Rscript's limit on `-e` text.
fn r_lines(script: &str) -> BTreeMap<String, Vec<String>> {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    script.hash(&mut hasher);
    let path = common::scratch_file(
        &format!("histogram-{:016x}.R", hasher.finish()),
        script.as_bytes(),
    );
    common::rscript(&format!("source('{}')", path.display()))
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let key = words.next()?.to_owned();
            Some((key, words.map(str::to_owned).collect()))
        })
        .collect()
}

fn doubles(words: &[String]) -> Vec<f64> {
    words
        .iter()
        .map(|w| {
            w.parse::<f64>()
                .unwrap_or_else(|_| panic!("R printed a number, got {w}"))
        })
        .collect()
}

/// R's `sprintf('%.17g')` of a whole vector on one line, after a key.
const PUT: &str = "put <- function(key, v) cat(key, sprintf('%.17g', v), '\\n');";

fn num(x: f64) -> Expr {
    Expr::Number {
        value: x,
        integer: false,
    }
}

fn positional(value: Expr) -> Arg {
    Arg { name: None, value }
}

fn named(name: &str, value: Expr) -> Arg {
    Arg {
        name: Some(name.to_owned()),
        value,
    }
}

fn call(function: &str, args: Vec<Arg>) -> Expr {
    Expr::Call {
        function: function.to_owned(),
        args,
    }
}

fn double_values(x: &RObject) -> Vec<f64> {
    match &x.vector {
        Vector::Double(v) => v.clone(),
        Vector::Integer(v) => v.iter().map(|i| f64::from(i.expect("no NA"))).collect(),
        other => panic!("expected numbers, got {other:?}"),
    }
}

fn assert_bits(ours: &[f64], r: &[f64], what: &str) {
    assert_eq!(ours.len(), r.len(), "{what}: lengths");
    for (i, (a, b)) in ours.iter().zip(r).enumerate() {
        assert!(
            a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
            "{what}[{i}]: ours {a:e}, R {b:e}"
        );
    }
}

fn assert_close(ours: &[f64], r: &[f64], what: &str) {
    assert_eq!(ours.len(), r.len(), "{what}: lengths");
    for (i, (a, b)) in ours.iter().zip(r).enumerate() {
        let scale = a.abs().max(b.abs()).max(f64::MIN_POSITIVE);
        assert!(
            a == b || (a - b).abs() / scale < 1e-12,
            "{what}[{i}]: ours {a:e}, R {b:e}"
        );
    }
}

const SEEDS: [i32; 5] = [1, 42, -7, i32::MAX, 123_456_789];

#[test]
fn runif_and_rnorm_equal_r_bit_for_bit() {
    let mut script = String::from(PUT);
    for seed in SEEDS {
        script.push_str(&format!(
            "set.seed({seed}L); put('u{seed}', runif(1000)); set.seed({seed}L); put('n{seed}', rnorm(1000)); \
             set.seed({seed}L); put('m{seed}', rnorm(5, 10, 3)); put('v{seed}', runif(3, -2, 5));"
        ));
    }
    let r = r_lines(&script);
    for seed in SEEDS {
        let mut rng = RRng::set_seed(seed);
        let uniforms: Vec<f64> = (0..1000).map(|_| rng.runif(0.0, 1.0)).collect();
        assert_bits(
            &uniforms,
            &doubles(&r[&format!("u{seed}")]),
            &format!("runif, seed {seed}"),
        );
        let mut rng = RRng::set_seed(seed);
        let normals: Vec<f64> = (0..1000).map(|_| rng.rnorm(0.0, 1.0)).collect();
        assert_bits(
            &normals,
            &doubles(&r[&format!("n{seed}")]),
            &format!("rnorm, seed {seed}"),
        );
        // Continuing one stream across calls with other parameters.
        let mut rng = RRng::set_seed(seed);
        let mixed: Vec<f64> = (0..5).map(|_| rng.rnorm(10.0, 3.0)).collect();
        assert_bits(
            &mixed,
            &doubles(&r[&format!("m{seed}")]),
            &format!("rnorm(5, 10, 3), seed {seed}"),
        );
        let then: Vec<f64> = (0..3).map(|_| rng.runif(-2.0, 5.0)).collect();
        assert_bits(
            &then,
            &doubles(&r[&format!("v{seed}")]),
            &format!("runif after rnorm, seed {seed}"),
        );
    }
}

fn x_session(x: Vec<f64>, seed: i32) -> Session {
    Session::new(vec![("x", RObject::doubles(x))]).seeded(seed)
}

fn hist1(method: f64, noise: f64) -> Expr {
    hist1_k(method, 3.0, noise)
}

fn hist1_k(method: f64, k: f64, noise: f64) -> Expr {
    call(
        "histogramDS1",
        vec![
            positional(Expr::Symbol("x".into())),
            named("method.indicator", num(method)),
            named("k", num(k)),
            named("noise", num(noise)),
        ],
    )
}

fn hist2(num_breaks: f64, min: f64, max: f64, method: f64, noise: f64) -> Expr {
    call(
        "histogramDS2",
        vec![
            positional(Expr::Symbol("x".into())),
            named("num.breaks", num(num_breaks)),
            named("min", num(min)),
            named("max", num(max)),
            named("method.indicator", num(method)),
            named("k", num(3.0)),
            named("noise", num(noise)),
        ],
    )
}

#[test]
fn range_ds_and_histogram_ds1_widen_the_range_as_r_does() {
    let mut data = TestData(7);
    // Positive, negative and mixed ranges take different widening factors.
    let cases = [
        data.normalish(40, 50.0, 10.0),
        data.normalish(40, -50.0, 10.0),
        data.normalish(40, 0.0, 10.0),
    ];
    for (i, values) in cases.iter().enumerate() {
        let seed = SEEDS[i];
        let mut with_na = values.clone();
        with_na.push(trellis_datashield::value::na_real());
        let session = x_session(with_na.clone(), seed);
        let range = session
            .eval(&call("rangeDS", vec![positional(Expr::Symbol("x".into()))]))
            .expect("rangeDS");
        let hist_range = session.eval(&hist1(1.0, 0.25)).expect("histogramDS1");
        let r = r_lines(&format!(
            "{PUT} xvect <- c({}, NA); set.seed({seed}L); rr <- c(min(xvect, na.rm=TRUE), max(xvect, na.rm=TRUE)); \
             a <- runif(1, 0.95, 1); b <- runif(1, 1, 1.05); put('range', c(rr[1]*a, rr[2]*b)); \
             set.seed({seed}L); lo <- if (rr[1] < 0) rr[1]*runif(1, 1.01, 1.05) else rr[1]*runif(1, 0.95, 0.99); \
             hi <- if (rr[2] < 0) rr[2]*runif(1, 0.95, 0.99) else rr[2]*runif(1, 1.01, 1.05); put('hist', c(lo, hi))",
            r_vector(values)
                .trim_start_matches("c(")
                .trim_end_matches(')')
        ));
        assert_bits(&double_values(&range), &doubles(&r["range"]), "rangeDS");
        assert_bits(
            &double_values(&hist_range),
            &doubles(&r["hist"]),
            "histogramDS1",
        );
    }
}

#[test]
fn non_numeric_vectors_get_dsbase_message_and_bad_methods_fail() {
    let session = Session::new(vec![("x", RObject::strings(["a", "b"]))]).seeded(1);
    let text = session
        .eval(&hist1(1.0, 0.25))
        .expect("a message, not an error");
    assert_eq!(
        text.str_values(),
        vec!["The input vector is not a numeric!"]
    );
    let text = session
        .eval(&call("rangeDS", vec![positional(Expr::Str("x".into()))]))
        .expect("message");
    assert_eq!(
        text.str_values(),
        vec!["The input vector is not a numeric!"]
    );

    let session = x_session((0..40).map(f64::from).collect(), 1);
    assert!(session.eval(&hist1(4.0, 0.25)).is_err());
    assert!(session.eval(&hist2(10.0, 0.0, 40.0, 5.0, 0.25)).is_err());
    // Missing arguments and a missing object.
    assert!(
        session
            .eval(&call(
                "histogramDS2",
                vec![positional(Expr::Symbol("x".into()))]
            ))
            .is_err()
    );
    assert!(
        session
            .eval(&call("rangeDS", vec![positional(Expr::Symbol("y".into()))]))
            .is_err()
    );
    // Breaks that do not cover the data, and degenerate breaks.
    let err = session
        .eval(&hist2(10.0, 0.0, 20.0, 1.0, 0.25))
        .expect_err("x outside the breaks");
    assert_eq!(
        err.to_string(),
        "some 'x' not counted; maybe 'breaks' do not span range of 'x'"
    );
    // R's seq counts down from a larger min and hist sorts the breaks: no error.
    assert!(session.eval(&hist2(10.0, 40.0, 0.0, 1.0, 0.25)).is_ok());
    assert!(session.eval(&hist2(10.0, 5.0, 5.0, 1.0, 0.25)).is_err());
    assert!(session.eval(&hist2(0.5, 0.0, 40.0, 1.0, 0.25)).is_err());
    // hist() of a character vector.
    let session = Session::new(vec![("x", RObject::strings(vec!["a"; 40]))]).seeded(1);
    assert_eq!(
        session
            .eval(&hist2(10.0, 0.0, 40.0, 1.0, 0.25))
            .expect_err("not numeric")
            .to_string(),
        "'x' must be numeric"
    );
}

/// The parts of a histogramDS2 result.
struct HistParts {
    breaks: Vec<f64>,
    counts: Vec<f64>,
    counts_type: &'static str,
    density: Vec<f64>,
    mids: Vec<f64>,
    xname: String,
    equidist: bool,
    invalid: f64,
    invalid_type: &'static str,
}

fn hist_parts(result: &RObject) -> HistParts {
    let object = result.element("histobject").expect("histobject");
    assert_eq!(object.explicit_class(), vec!["histogram"]);
    assert_eq!(
        object.names(),
        vec!["breaks", "counts", "density", "mids", "xname", "equidist"]
    );
    let part = |name: &str| object.element(name).expect(name);
    let invalid = result.element("invalidcells").expect("invalidcells");
    HistParts {
        breaks: double_values(part("breaks")),
        counts: double_values(part("counts")),
        counts_type: part("counts").vector.type_name(),
        density: double_values(part("density")),
        mids: double_values(part("mids")),
        xname: part("xname").str_values()[0].to_owned(),
        equidist: matches!(&part("equidist").vector, Vector::Logical(v) if v[0] == Some(true)),
        invalid: double_values(invalid)[0],
        invalid_type: invalid.vector.type_name(),
    }
}

/// R's histogramDS2 (method 1 or 3) on `xvect`, printed.
fn r_histogram(
    values: &[f64],
    num_breaks: f64,
    min: f64,
    max: f64,
    method: u8,
    seed: i32,
) -> BTreeMap<String, Vec<String>> {
    let prepare = if method == 2 {
        "x <- stats::na.omit(xvect); z <- (x-mean(x))/sd(x); \
         idx <- t(sapply(seq_along(z), function(i) order(abs(z - z[i]))[1:3])); \
         cent <- sapply(seq_along(z), function(i) mean(z[idx[i, ]])); \
         x.new <- (cent * (sd(z)/sd(cent))) * sd(x) + mean(x); h <- hist(x.new, breaks=brks, plot=FALSE); inv <- 0;"
            .to_owned()
    } else if method == 3 {
        format!(
            "x <- stats::na.omit(xvect); set.seed({seed}L); x.new <- x + rnorm(length(x), 0, sqrt(0.25*var(x))); h <- hist(x.new, breaks=brks, plot=FALSE); inv <- 0;"
        )
    } else {
        "h <- hist(xvect, breaks=brks, plot=FALSE); indx <- which(h$counts > 0 & h$counts < 3); inv <- length(indx); \
         if (inv > 0) { h$counts[indx] <- 0; h$density[indx] <- 0 };"
            .to_owned()
    };
    r_lines(&format!(
        "{PUT} xvect <- {}; min <- {}; max <- {}; brks <- seq(from=min, to=max, by=(max-min)/{}); {prepare} \
         put('breaks', h$breaks); put('counts', h$counts); put('density', h$density); put('mids', h$mids); \
         cat('xname', h$xname, '\\n'); cat('equidist', h$equidist, '\\n'); put('invalid', inv); \
         cat('types', typeof(h$counts), typeof(inv), '\\n')",
        r_vector(values),
        r_literal(min),
        r_literal(max),
        r_literal(num_breaks)
    ))
}

fn assert_histogram_matches(ours: &HistParts, r: &BTreeMap<String, Vec<String>>) {
    assert_bits(&ours.breaks, &doubles(&r["breaks"]), "breaks");
    assert_eq!(ours.counts, doubles(&r["counts"]), "counts");
    assert_close(&ours.density, &doubles(&r["density"]), "density");
    assert_bits(&ours.mids, &doubles(&r["mids"]), "mids");
    assert_eq!(ours.xname, r["xname"][0]);
    assert_eq!(ours.equidist, r["equidist"][0] == "TRUE");
    assert_eq!(ours.invalid, doubles(&r["invalid"])[0]);
    assert_eq!(ours.counts_type, r["types"][0], "typeof(counts)");
    assert_eq!(ours.invalid_type, r["types"][1], "typeof(invalidcells)");
}

#[test]
fn histogram_ds2_equals_r_hist_with_small_cells_suppressed() {
    let mut data = TestData(11);
    for (n, num_breaks, seed) in [
        (200usize, 20.0, 1),
        (500, 30.0, 42),
        (60, 7.0, -7),
        (40, 4.0, 9),
        (40, 2.0, 3),
    ] {
        let values = data.normalish(n, 30.0, 8.0);
        let session = x_session(values.clone(), seed);
        let range = double_values(&session.eval(&hist1(1.0, 0.25)).expect("range"));
        // As the Python client does: whole numbers around the range.
        let (min, max) = (range[0].floor(), range[1].ceil());
        let ours = hist_parts(
            &session
                .eval(&hist2(num_breaks, min, max, 1.0, 0.25))
                .expect("histogram"),
        );
        assert_histogram_matches(&ours, &r_histogram(&values, num_breaks, min, max, 1, seed));
        // And the client's raw, fractional range.
        let ours = hist_parts(
            &session
                .eval(&hist2(num_breaks, range[0], range[1], 1.0, 0.25))
                .expect("histogram"),
        );
        assert_histogram_matches(
            &ours,
            &r_histogram(&values, num_breaks, range[0], range[1], 1, seed),
        );
    }
}

#[test]
fn histogram_small_cell_rule_just_inside_and_outside_nfilter_tab() {
    // Bins of width 1 on [0, 10]: bin (1,2] holds 2 values (suppressed), bin (2,3] holds 3
    // (kept), values on the breaks themselves go to the lower bin, 0 to the first.
    let mut values = vec![0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 2.75, 3.0];
    values.extend((1..=30).map(|i| 5.0 + f64::from(i) / 10.0));
    let session = x_session(values.clone(), 5);
    let ours = hist_parts(
        &session
            .eval(&hist2(10.0, 0.0, 10.0, 1.0, 0.25))
            .expect("histogram"),
    );
    assert_eq!(ours.counts[..3], [3.0, 0.0, 3.0]);
    assert_eq!(ours.invalid, 1.0);
    assert_eq!(ours.counts_type, "double");
    assert_histogram_matches(&ours, &r_histogram(&values, 10.0, 0.0, 10.0, 1, 5));

    // No small cell: counts stay integers and nothing is reported.
    let values: Vec<f64> = (0..40).map(|i| f64::from(i % 10) + 0.5).collect();
    let session = x_session(values.clone(), 5);
    let ours = hist_parts(
        &session
            .eval(&hist2(10.0, 0.0, 10.0, 1.0, 0.25))
            .expect("histogram"),
    );
    assert_eq!(ours.invalid, 0.0);
    assert_eq!(ours.counts_type, "integer");
    assert_histogram_matches(&ours, &r_histogram(&values, 10.0, 0.0, 10.0, 1, 5));

    // A raised nfilter.tab: 18 values in the first bin are now too few, 24 are enough.
    let mut session = x_session([0.5, 0.6, 0.7, 1.5, 1.6, 1.7, 1.8].repeat(6), 5);
    session.settings.nfilter_tab = 19.0;
    let ours = hist_parts(
        &session
            .eval(&hist2(2.0, 0.0, 2.0, 1.0, 0.25))
            .expect("histogram"),
    );
    assert_eq!(ours.counts, [0.0, 24.0]);
    assert_eq!(ours.invalid, 1.0);
}

#[test]
fn histogram_number_of_breaks_just_inside_and_outside_nfilter_levels_density() {
    // 60 values: 0.33 * 60 = 19.8 breaks at most.
    let mut data = TestData(3);
    let values = data.normalish(60, 0.0, 1.0);
    let session = x_session(values.clone(), 1);
    assert!(session.eval(&hist2(19.0, -10.0, 10.0, 1.0, 0.25)).is_ok());
    let refused = session
        .eval(&hist2(20.0, -10.0, 10.0, 1.0, 0.25))
        .expect_err("too many breaks");
    assert_eq!(refused.rule(), Some("nfilter.levels.density"));
    assert_eq!(
        refused.to_string(),
        "FAILED: Number of breaks is too big. It may be disclosive - please shorten"
    );
    // NA values count in length(x) for this rule (61 * 0.33 = 20.13).
    let mut with_na = values;
    with_na.push(trellis_datashield::value::na_real());
    let session = x_session(with_na, 1);
    assert!(session.eval(&hist2(20.0, -10.0, 10.0, 1.0, 0.25)).is_ok());
    assert!(session.eval(&hist2(20.0, -10.0, 10.0, 3.0, 0.25)).is_ok());
    let refused = session
        .eval(&hist2(21.0, -10.0, 10.0, 3.0, 0.25))
        .expect_err("method 3 too");
    assert_eq!(refused.rule(), Some("nfilter.levels.density"));
}

#[test]
fn noise_method_matches_r_and_noise_below_nfilter_noise_is_refused() {
    let mut data = TestData(5);
    for (n, seed) in [(100usize, 1), (250, 123_456_789)] {
        let values = data.normalish(n, 10.0, 2.0);
        let session = x_session(values.clone(), seed);
        let range = double_values(&session.eval(&hist1(3.0, 0.25)).expect("noisy range"));
        let r = r_lines(&format!(
            "{PUT} x <- {}; set.seed({seed}L); x.new <- x + rnorm(length(x), 0, sqrt(0.25*var(x))); put('range', c(min(x.new), max(x.new)))",
            r_vector(&values)
        ));
        // var() is summed in long double in R: within an ulp or so.
        assert_close(&range, &doubles(&r["range"]), "noisy range");
        let (min, max) = (range[0].floor(), range[1].ceil());
        let ours = hist_parts(
            &session
                .eval(&hist2(15.0, min, max, 3.0, 0.25))
                .expect("noisy histogram"),
        );
        assert_histogram_matches(&ours, &r_histogram(&values, 15.0, min, max, 3, seed));
    }
    let session = x_session(data.normalish(50, 0.0, 1.0), 1);
    for refused in [
        session.eval(&hist1(3.0, 0.24)),
        session.eval(&hist2(10.0, -10.0, 10.0, 3.0, 0.2499)),
    ] {
        let refused = refused.expect_err("noise too small");
        assert_eq!(refused.rule(), Some("nfilter.noise"));
        assert_eq!(
            refused.to_string(),
            "'noise' must be greater than or equal to 0.25"
        );
    }
}

// ---- tableDS ----

fn table_call(
    rvar: &str,
    cvar: Option<&str>,
    stvar: Option<&str>,
    levels: [&str; 3],
    rest: [Option<&str>; 3],
) -> Expr {
    let string_or_null =
        |s: Option<&str>| s.map_or(Expr::Symbol("NULL".into()), |s| Expr::Str(s.into()));
    let dims = [Some(rvar), cvar, stvar];
    let mut args = vec![
        named("rvar.transmit", string_or_null(dims[0])),
        named("cvar.transmit", string_or_null(dims[1])),
        named("stvar.transmit", string_or_null(dims[2])),
    ];
    for (name, (level, dim)) in ["rvar", "cvar", "stvar"]
        .iter()
        .zip(levels.iter().zip(dims))
    {
        args.push(named(
            &format!("{name}.all.unique.levels.transmit"),
            string_or_null(dim.map(|_| *level)),
        ));
    }
    args.push(named("exclude.transmit", string_or_null(rest[0])));
    args.push(named("useNA.transmit", string_or_null(rest[1])));
    args.push(named("force.nfilter.transmit", string_or_null(rest[2])));
    call("tableDS", args)
}

/// A table's counts, dims and named dimnames.
type TableParts = (Vec<i32>, Vec<usize>, Vec<(String, Vec<String>)>);

/// The table's counts, dims and dimnames (NA level as `<NA>`).
fn table_parts(t: &RObject) -> TableParts {
    assert_eq!(t.explicit_class(), vec!["table"]);
    let Vector::Integer(counts) = &t.vector else {
        panic!("a table holds integers")
    };
    let dimnames = t.attr("dimnames").expect("dimnames");
    let Vector::List(levels) = &dimnames.vector else {
        panic!("dimnames is a list")
    };
    let names = dimnames.names();
    let dimnames = names
        .iter()
        .zip(levels)
        .map(|(name, l)| {
            let Vector::Character(v) = &l.vector else {
                panic!("levels are strings")
            };
            (
                (*name).to_owned(),
                v.iter()
                    .map(|s| s.clone().unwrap_or_else(|| "<NA>".into()))
                    .collect(),
            )
        })
        .collect();
    (
        counts.iter().map(|c| c.expect("no NA count")).collect(),
        t.dim().expect("dim"),
        dimnames,
    )
}

/// R's `table` of the same factors, printed as `counts`, `dim` and one `dn_<name>` line each.
fn r_table(setup: &str, table_args: &str, names: &[&str]) -> TableParts {
    let mut script = format!(
        "{setup}; t <- table({table_args}); cat('counts', as.vector(t), '\\n'); cat('dim', dim(t), '\\n');"
    );
    for name in names {
        script.push_str(&format!(
            "cat('dn_{name}', ifelse(is.na(dimnames(t)${name}), '<NA>', dimnames(t)${name}), '\\n');"
        ));
    }
    let r = r_lines(&script);
    let ints = |key: &str| {
        r[key]
            .iter()
            .map(|w| w.parse::<i64>().expect("integer"))
            .collect::<Vec<_>>()
    };
    (
        ints("counts").into_iter().map(|c| c as i32).collect(),
        ints("dim").into_iter().map(|d| d as usize).collect(),
        names
            .iter()
            .map(|n| {
                (
                    (*n).to_owned(),
                    r.get(&format!("dn_{n}")).cloned().unwrap_or_default(),
                )
            })
            .collect(),
    )
}

fn opt_r(values: &[Option<f64>]) -> String {
    format!(
        "c({})",
        values
            .iter()
            .map(|v| v.map_or("NA".to_owned(), |v| format!("{v}")))
            .collect::<Vec<_>>()
            .join(",")
    )
}

#[test]
fn table_ds_one_and_two_dimensions_equal_r_table() {
    // sex 1/2 as numbers, with NAs; group as a factor whose levels are a subset of the pooled ones.
    let sex: Vec<Option<f64>> = (0..60)
        .map(|i| {
            if i % 13 == 0 {
                None
            } else {
                Some(f64::from(1 + i % 2))
            }
        })
        .collect();
    let group_codes: Vec<Option<i32>> = (0..60)
        .map(|i| {
            if i % 17 == 5 {
                None
            } else {
                Some(1 + (i / 3) % 2)
            }
        })
        .collect();
    let group = RObject::factor(group_codes.clone(), vec!["b".into(), "a".into()]);
    let df = RObject::data_frame(
        [
            (
                "sex",
                RObject::doubles(
                    sex.iter()
                        .map(|v| v.unwrap_or_else(trellis_datashield::value::na_real))
                        .collect(),
                ),
            ),
            ("group", group),
        ],
        60,
    );
    let session = Session::new(vec![("D", df)]).seeded(1);
    let setup = format!(
        "sex <- {}; group <- factor(c({}), levels=1:2, labels=c('b','a')); \
         rvar <- factor(as.factor(sex), levels=c('1','2','3')); cvar <- factor(group, levels=c('a','b','c'))",
        opt_r(&sex),
        group_codes
            .iter()
            .map(|c| c.map_or("NA".into(), |c| c.to_string()))
            .collect::<Vec<_>>()
            .join(",")
    );
    for (use_na, exclude, r_exclude) in [
        (Some("always"), None, "NULL"),
        (Some("no"), None, "NULL"),
        (Some("ifany"), None, "NULL"),
        (Some("always"), Some("NA"), "NA"),
        (Some("always"), Some("3,c"), "c('3','c')"),
        (None, Some("2"), "2"),
    ] {
        let r_use_na = use_na.unwrap_or("no");
        let one = session
            .eval(&table_call(
                "D$sex",
                None,
                None,
                ["1,2,3", "", ""],
                [exclude, use_na, None],
            ))
            .expect("1-D table");
        assert_eq!(
            table_parts(&one),
            r_table(
                &setup,
                &format!("rvar, exclude={r_exclude}, useNA='{r_use_na}'"),
                &["rvar"]
            ),
            "1-D, useNA {use_na:?}, exclude {exclude:?}"
        );
        let two = session
            .eval(&table_call(
                "D$sex",
                Some("D$group"),
                None,
                ["1,2,3", "a,b,c", ""],
                [exclude, use_na, None],
            ))
            .expect("2-D table");
        assert_eq!(
            table_parts(&two),
            r_table(
                &setup,
                &format!("rvar, cvar, exclude={r_exclude}, useNA='{r_use_na}'"),
                &["rvar", "cvar"]
            ),
            "2-D, useNA {use_na:?}, exclude {exclude:?}"
        );
    }
    // Three dimensions pass through the same tabulation.
    let three = session
        .eval(&table_call(
            "D$sex",
            Some("D$group"),
            Some("D$sex"),
            ["1,2", "a,b", "1,2"],
            [None, Some("no"), None],
        ))
        .expect("3-D table");
    let setup3 = format!(
        "{setup}; rvar <- factor(as.factor(sex), levels=c('1','2')); cvar <- factor(group, levels=c('a','b')); stvar <- rvar"
    );
    assert_eq!(
        table_parts(&three),
        r_table(
            &setup3,
            "rvar, cvar, stvar, exclude=NULL, useNA='no'",
            &["rvar", "cvar", "stvar"]
        )
    );
}

#[test]
fn table_ds_small_cells_just_inside_and_outside_nfilter_tab() {
    // Level "a" 3 times (allowed), "b" 2 times (refused), "c" absent (0 is fine), NA twice (not checked).
    let ok = Session::new(vec![(
        "v",
        RObject::strings(["a", "a", "a", "b", "b", "b", "b"]),
    )])
    .seeded(1);
    let refused = Session::new(vec![("v", RObject::strings(["a", "a", "a", "b", "b"]))]).seeded(1);
    let with_na = Session::new(vec![(
        "v",
        RObject::new(Vector::Character(
            vec![Some("a".into()); 3]
                .into_iter()
                .chain([None, None])
                .collect(),
        )),
    )])
    .seeded(1);
    let one_d = |force: Option<&str>| {
        table_call(
            "v",
            None,
            None,
            ["a,b,c", "", ""],
            [None, Some("always"), force],
        )
    };
    let message = "Failed: at least one cell has a non-zero count less than nfilter.tab i.e. 3";
    let t = ok.eval(&one_d(None)).expect("valid");
    assert_eq!(table_parts(&t).0, vec![3, 4, 0, 0]);
    assert_eq!(
        refused.eval(&one_d(None)).expect("a message").str_values(),
        vec![message]
    );
    let t = with_na
        .eval(&one_d(None))
        .expect("NA cells are not checked");
    assert_eq!(table_parts(&t).0, vec![3, 0, 0, 2]);

    // force.nfilter raises the threshold, never lowers it.
    assert_eq!(
        ok.eval(&one_d(Some("4"))).expect("valid at 4").str_values(),
        vec!["Failed: at least one cell has a non-zero count less than nfilter.tab i.e. 4"]
    );
    assert!(
        ok.eval(&one_d(Some("3")))
            .is_ok_and(|t| t.inherits("table"))
    );
    let lowered = refused
        .eval(&one_d(Some("2")))
        .expect_err("lowering refused");
    assert_eq!(lowered.rule(), Some("nfilter.tab"));
    assert_eq!(
        lowered.to_string(),
        "Failed: if force.nfilter is non-null it must be >= to nfilter.tab i.e.3"
    );
    assert!(ok.eval(&one_d(Some("many"))).is_err());

    // A 3-D table with a small cell is an error, not a message.
    let three = table_call(
        "v",
        Some("v"),
        Some("v"),
        ["a,b", "a,b", "a,b"],
        [None, Some("no"), None],
    );
    let err = refused.eval(&three).expect_err("3-D refused");
    assert_eq!(err.rule(), Some("nfilter.tab"));
    assert_eq!(err.to_string(), message);
    assert!(ok.eval(&three).is_ok());
}

#[test]
fn table_ds_bad_arguments_fail() {
    let session = Session::new(vec![
        ("v", RObject::strings(["a", "a", "a"])),
        ("w", RObject::strings(["a"; 4])),
    ])
    .seeded(1);
    // Unknown useNA, duplicated pooled levels, lengths that differ, a missing object,
    // a stratum without a column variable, an exclude naming no object.
    for bad in [
        table_call(
            "v",
            None,
            None,
            ["a", "", ""],
            [None, Some("sometimes"), None],
        ),
        table_call("v", None, None, ["a,a", "", ""], [None, Some("no"), None]),
        table_call(
            "v",
            Some("w"),
            None,
            ["a", "a", ""],
            [None, Some("no"), None],
        ),
        table_call(
            "nothing",
            None,
            None,
            ["a", "", ""],
            [None, Some("no"), None],
        ),
        table_call(
            "v",
            None,
            Some("v"),
            ["a", "", "a"],
            [None, Some("no"), None],
        ),
        table_call(
            "v",
            None,
            None,
            ["a", "", ""],
            [Some("zzz"), Some("no"), None],
        ),
    ] {
        assert!(session.eval(&bad).is_err(), "{bad:?}");
    }
}

#[test]
fn centroid_method_matches_r_nearest_neighbours_and_k_is_bounded_by_nfilter_knn() {
    let mut data = TestData(13);
    for (n, num_breaks) in [(80usize, 12.0), (300, 25.0)] {
        let values = data.normalish(n, 100.0, 15.0);
        let session = x_session(values.clone(), 1);
        let range = double_values(
            &session
                .eval(&hist1_k(2.0, 3.0, 0.25))
                .expect("centroid range"),
        );
        let r = r_lines(&format!(
            "{PUT} x <- {}; z <- (x-mean(x))/sd(x); \
             idx <- t(sapply(seq_along(z), function(i) order(abs(z - z[i]))[1:3])); \
             cent <- sapply(seq_along(z), function(i) mean(z[idx[i, ]])); \
             x.new <- (cent * (sd(z)/sd(cent))) * sd(x) + mean(x); put('range', c(min(x.new), max(x.new)))",
            r_vector(&values)
        ));
        assert_close(&range, &doubles(&r["range"]), "centroid range");
        let (min, max) = (range[0].floor(), range[1].ceil());
        let ours = hist_parts(
            &session
                .eval(&hist2(num_breaks, min, max, 2.0, 0.25))
                .expect("centroid histogram"),
        );
        assert_histogram_matches(&ours, &r_histogram(&values, num_breaks, min, max, 2, 1));
    }
    // 40 values and an NA: k from 3 to 37.
    let mut values = data.normalish(40, 0.0, 1.0);
    values.push(trellis_datashield::value::na_real());
    let session = x_session(values, 1);
    for k in [3.0, 37.0] {
        assert!(session.eval(&hist1_k(2.0, k, 0.25)).is_ok(), "k = {k}");
    }
    for k in [2.0, 38.0] {
        let refused = session
            .eval(&hist1_k(2.0, k, 0.25))
            .expect_err("k out of bounds");
        assert_eq!(refused.rule(), Some("nfilter.kNN"));
        assert_eq!(
            refused.to_string(),
            "k must be greater than or equal to 3 and less than or equal to 37."
        );
    }
}

#[test]
fn table_ds_matches_numbers_to_levels_as_r_prints_them() {
    // Numbers whose text R shortens, rounds or writes in scientific notation.
    let distinct = [
        1e5,
        0.1 + 0.2,
        1.0 / 3.0,
        123456.0,
        2.5e-7,
        1234567.1,
        -42.0,
        1e15,
        0.000123,
    ];
    let values: Vec<f64> = distinct.iter().flat_map(|v| [*v; 3]).collect();
    let r = r_lines(&format!(
        "x <- {}; cat('levels', paste(levels(as.factor(x)), collapse=','), '\\n'); \
         rvar <- factor(as.factor(x), levels=levels(as.factor(x))); t <- table(rvar, exclude=NULL, useNA='no'); \
         cat('counts', as.vector(t), '\\n')",
        r_vector(&values)
    ));
    let levels = r["levels"].join(" ");
    let session = x_session(values, 1);
    let t = session
        .eval(&table_call(
            "x",
            None,
            None,
            [&levels, "", ""],
            [None, Some("no"), None],
        ))
        .expect("a table over R's levels");
    let (counts, _, dimnames) = table_parts(&t);
    assert_eq!(
        counts,
        r["counts"]
            .iter()
            .map(|c| c.parse::<i32>().expect("count"))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        counts,
        vec![3; distinct.len()],
        "every value found its level"
    );
    assert_eq!(dimnames[0].1.join(","), levels);
}
