//! glmDS1/glmDS2 against R: the whole ds.glm loop (as datashield-base's ModelsClient.get_glm
//! drives it) is run here over our glmDS1/glmDS2 and compared with R's own glm() on the same
//! data; the disclosure checks are tried just inside and just outside their thresholds.

mod common;

use common::Session;

use trellis_datashield::language::{Arg, Expr, FormulaExpr, FormulaOp};
use trellis_datashield::value::{RObject, Vector, na_real};

// ---- data, the same in Rust and R -------------------------------------------------------------

/// A small deterministic generator (the data must be the same on both sides, and printed values
/// must read back exactly: every value is a multiple of 1/8).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A column for both sides: its R object and its R literal.
struct Col {
    name: &'static str,
    value: RObject,
    r: String,
}

fn num_col(name: &'static str, xs: &[Option<f64>]) -> Col {
    let value = RObject::doubles(xs.iter().map(|x| x.unwrap_or_else(na_real)).collect());
    let r = format!(
        "c({})",
        xs.iter()
            .map(|x| x.map_or("NA".into(), |v| format!("{v:?}")))
            .collect::<Vec<_>>()
            .join(",")
    );
    Col { name, value, r }
}

fn factor_col(name: &'static str, codes: &[Option<usize>], levels: &[&str]) -> Col {
    let value = RObject::factor(
        codes.iter().map(|c| c.map(|c| c as i32 + 1)).collect(),
        levels.iter().map(|l| (*l).to_owned()).collect(),
    );
    let labels = codes
        .iter()
        .map(|c| c.map_or("NA".into(), |c| format!("\"{}\"", levels[c])))
        .collect::<Vec<_>>()
        .join(",");
    let lv = levels
        .iter()
        .map(|l| format!("\"{l}\""))
        .collect::<Vec<_>>()
        .join(",");
    Col {
        name,
        value,
        r: format!("factor(c({labels}), levels=c({lv}))"),
    }
}

fn logical_col(name: &'static str, xs: &[Option<bool>]) -> Col {
    let r = xs
        .iter()
        .map(|x| x.map_or("NA", |b| if b { "TRUE" } else { "FALSE" }))
        .collect::<Vec<_>>()
        .join(",");
    Col {
        name,
        value: RObject::logicals(xs.to_vec()),
        r: format!("c({r})"),
    }
}

fn character_col(name: &'static str, xs: &[Option<&str>]) -> Col {
    let value = RObject::new(Vector::Character(
        xs.iter().map(|x| x.map(str::to_owned)).collect(),
    ));
    let r = xs
        .iter()
        .map(|x| x.map_or("NA".into(), |v| format!("\"{v}\"")))
        .collect::<Vec<_>>()
        .join(",");
    Col {
        name,
        value,
        r: format!("c({r})"),
    }
}

fn frame(cols: &[Col]) -> (RObject, String) {
    let n = cols[0].value.len();
    let df = RObject::data_frame(cols.iter().map(|c| (c.name, c.value.clone())), n);
    let r = format!(
        "D <- data.frame({}, stringsAsFactors=FALSE)",
        cols.iter()
            .map(|c| format!("{}={}", c.name, c.r))
            .collect::<Vec<_>>()
            .join(", ")
    );
    (df, r)
}

/// Sixty rows: a continuous outcome, a case/control factor, counts with an exposure offset,
/// two factors, two covariates and weights, with a few values missing.
fn study() -> (RObject, String) {
    let mut g = Lcg(20261129);
    let n = 60;
    let mut age = Vec::new();
    let mut bmi = Vec::new();
    let mut sex = Vec::new();
    let mut grp = Vec::new();
    let mut y = Vec::new();
    let mut case = Vec::new();
    let mut count = Vec::new();
    let mut off = Vec::new();
    let mut w = Vec::new();
    for i in 0..n {
        let a = 20.0 + g.below(50) as f64;
        let b = 18.0 + g.below(120) as f64 / 8.0;
        let s = g.below(2) as usize;
        let k = g.below(3) as usize;
        age.push(if i % 17 == 5 { None } else { Some(a) });
        bmi.push(Some(b));
        sex.push(if i % 23 == 7 { None } else { Some(s) });
        grp.push(Some(k));
        y.push(Some(
            ((10.0 + 0.25 * a + 2.0 * s as f64 - k as f64) * 8.0 + g.below(40) as f64).round()
                / 8.0,
        ));
        case.push(if i % 19 == 3 {
            None
        } else {
            Some(((g.below(100) as f64) < 25.0 + a * 0.8) as usize)
        });
        count.push(Some((g.below(6) + (a as u64 / 20) + k as u64) as f64));
        off.push(Some(g.below(16) as f64 / 8.0));
        w.push(if i % 29 == 11 {
            None
        } else {
            Some(0.5 + g.below(4) as f64 / 2.0)
        });
    }
    frame(&[
        num_col("age", &age),
        num_col("bmi", &bmi),
        factor_col("sex", &sex, &["F", "M"]),
        factor_col("grp", &grp, &["a", "b", "c"]),
        num_col("y", &y),
        factor_col("case", &case, &["control", "case"]),
        num_col("count", &count),
        num_col("off", &off),
        num_col("w", &w),
    ])
}

// ---- calls ------------------------------------------------------------------------------------

fn v(name: &str) -> FormulaExpr {
    FormulaExpr::Variable(name.into())
}

fn op(op: FormulaOp, lhs: FormulaExpr, rhs: FormulaExpr) -> FormulaExpr {
    FormulaExpr::Op {
        op,
        lhs: Box::new(lhs),
        rhs: Box::new(rhs),
    }
}

fn plus(lhs: FormulaExpr, rhs: FormulaExpr) -> FormulaExpr {
    op(FormulaOp::Plus, lhs, rhs)
}

fn formula(response: &str, rhs: FormulaExpr) -> Expr {
    Expr::Formula {
        response: response.into(),
        rhs,
    }
}

fn s(text: &str) -> Expr {
    Expr::Str(text.into())
}

fn null() -> Expr {
    Expr::Symbol("NULL".into())
}

fn opt(x: Option<&str>) -> Expr {
    x.map_or_else(null, s)
}

fn call(function: &str, args: Vec<Expr>) -> Expr {
    Expr::Call {
        function: function.into(),
        args: args
            .into_iter()
            .map(|value| Arg { name: None, value })
            .collect(),
    }
}

fn el<'a>(x: &'a RObject, name: &str) -> &'a RObject {
    x.element(name)
        .unwrap_or_else(|| panic!("no element {name} in {x:?}"))
}

fn doubles(x: &RObject) -> Vec<f64> {
    x.as_doubles()
        .expect("numeric")
        .into_iter()
        .map(|v| v.unwrap_or(f64::NAN))
        .collect()
}

fn strings(x: &RObject) -> Vec<String> {
    x.str_values().into_iter().map(str::to_owned).collect()
}

// ---- the client's loop (datashield-base ModelsClient.get_glm) -----------------------------------

struct Spec<'a> {
    formula: Expr,
    family: &'a str,
    weights: Option<&'a str>,
    offset: Option<&'a str>,
    data: Option<&'a str>,
}

struct Fit {
    names: Vec<String>,
    coef: Vec<f64>,
    se: Vec<f64>,
    dev: f64,
    nvalid: f64,
    ntotal: f64,
    nsubs: f64,
    iterations: usize,
    /// The coefficients of the last glmDS2 call (the information matrix behind the SEs is theirs).
    last_sent: Vec<f64>,
}

/// Gauss-Jordan with partial pivoting, as the client solves `I·Δ = s` and inverts I (written
/// as the client's index loops, to keep its order of operations).
#[allow(clippy::needless_range_loop)]
fn gauss_jordan(a: &[Vec<f64>], rhs: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let n = a.len();
    let m = rhs[0].len();
    let mut aug: Vec<Vec<f64>> = a
        .iter()
        .zip(rhs)
        .map(|(row, r)| row.iter().chain(r).copied().collect())
        .collect();
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&x, &y| aug[x][col].abs().total_cmp(&aug[y][col].abs()))
            .unwrap();
        assert!(
            aug[pivot][col].abs() >= 1e-12,
            "singular information matrix"
        );
        aug.swap(col, pivot);
        let p = aug[col][col];
        for j in col..n + m {
            aug[col][j] /= p;
        }
        for r in 0..n {
            if r != col {
                let f = aug[r][col];
                for j in col..n + m {
                    aug[r][j] -= f * aug[col][j];
                }
            }
        }
    }
    aug.into_iter().map(|row| row[n..].to_vec()).collect()
}

fn client_glm(session: &Session, spec: &Spec) -> Fit {
    let ds1 = session
        .eval(&call(
            "glmDS1",
            vec![
                spec.formula.clone(),
                s(spec.family),
                opt(spec.weights),
                opt(spec.offset),
                opt(spec.data),
            ],
        ))
        .expect("glmDS1");
    assert_eq!(strings(el(&ds1, "errorMessage")), vec!["No errors"]);
    let names = strings(el(&ds1, "coef.names"));
    let p = names.len();
    let mut beta = vec![0.0; p];
    let mut dev_old = 9.99e99;
    let mut iterations = 0;
    let mut nsubs = 0.0;
    let (mut vcov, mut dev, mut nvalid, mut ntotal, mut last_sent): (
        Vec<Vec<f64>>,
        f64,
        f64,
        f64,
        Vec<f64>,
    );
    loop {
        iterations += 1;
        assert!(iterations <= 20, "no convergence");
        // Python's str(float) and Rust's {:?} both print the shortest string that reads back.
        let beta_csv = beta
            .iter()
            .map(|b| format!("{b:?}"))
            .collect::<Vec<_>>()
            .join(",");
        let ds2 = session
            .eval(&call(
                "glmDS2",
                vec![
                    spec.formula.clone(),
                    s(spec.family),
                    s(&beta_csv),
                    opt(spec.offset),
                    opt(spec.weights),
                    opt(spec.data),
                ],
            ))
            .expect("glmDS2");
        last_sent = beta.clone();
        assert_eq!(doubles(el(&ds2, "disclosure.risk")), vec![0.0]);
        assert_eq!(strings(el(&ds2, "errorMessage2")), vec!["No errors"]);
        assert_eq!(strings(el(el(&ds2, "family"), "family")), vec![spec.family]);
        let info_obj = el(&ds2, "info.matrix");
        assert_eq!(info_obj.dim(), Some(vec![p, p]));
        let flat = doubles(info_obj);
        let info: Vec<Vec<f64>> = (0..p)
            .map(|r| (0..p).map(|c| flat[r + c * p]).collect())
            .collect();
        let score = doubles(el(&ds2, "score.vect"));
        assert_eq!(el(&ds2, "score.vect").dim(), Some(vec![p, 1]));
        dev = doubles(el(&ds2, "dev"))[0];
        nvalid = doubles(el(&ds2, "Nvalid"))[0];
        ntotal = doubles(el(&ds2, "Ntotal"))[0];
        assert_eq!(doubles(el(&ds2, "Nmissing"))[0], ntotal - nvalid);
        if iterations == 1 {
            nsubs = doubles(el(&ds2, "numsubs"))[0];
        }
        let delta = gauss_jordan(&info, &score.iter().map(|x| vec![*x]).collect::<Vec<_>>());
        for (b, d) in beta.iter_mut().zip(&delta) {
            *b += d[0];
        }
        let identity: Vec<Vec<f64>> = (0..p)
            .map(|i| (0..p).map(|j| if i == j { 1.0 } else { 0.0 }).collect())
            .collect();
        vcov = gauss_jordan(&info, &identity);
        let converge = (dev - dev_old).abs() / (dev.abs() + 0.1);
        if converge <= 1e-8 {
            break;
        }
        dev_old = dev;
    }
    let scale = if spec.family == "gaussian" {
        dev / (nsubs - p as f64)
    } else {
        1.0
    };
    let se = (0..p)
        .map(|i| vcov[i][i].max(0.0).sqrt() * scale.sqrt())
        .collect();
    Fit {
        names,
        coef: beta,
        se,
        dev,
        nvalid,
        ntotal,
        nsubs,
        iterations,
        last_sent,
    }
}

/// R's fit of the same model, fully converged: names, coefficients, SEs, deviance, nobs.
fn r_glm(data_r: &str, glm_call: &str) -> (Vec<String>, Vec<f64>, Vec<f64>, f64, f64) {
    let script = format!(
        "{data_r}\n\
         fit <- suppressWarnings({glm_call})\n\
         cf <- summary(fit)$coefficients\n\
         cat(names(coef(fit)), sep='\\n'); cat('--\\n')\n\
         cat(sprintf('%.17g', cf[,1]), sep='\\n'); cat('--\\n')\n\
         cat(sprintf('%.17g', cf[,2]), sep='\\n'); cat('--\\n')\n\
         cat(sprintf('%.17g', deviance(fit)), '\\n'); cat(sprintf('%d', nobs(fit)), '\\n')\n"
    );
    let out = common::rscript(&script);
    let parts: Vec<&str> = out.split("--\n").collect();
    let lines = |s: &str| {
        s.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let nums = |s: &str| {
        lines(s)
            .iter()
            .map(|l| l.parse::<f64>().expect("a number from R"))
            .collect::<Vec<_>>()
    };
    let tail = nums(parts[3]);
    (
        lines(parts[0]),
        nums(parts[1]),
        nums(parts[2]),
        tail[0],
        tail[1],
    )
}

fn assert_close(what: &str, ours: f64, r: f64) {
    let rel = (ours - r).abs() / r.abs().max(1e-300);
    assert!(
        rel <= 1e-8 || (ours - r).abs() <= 1e-12,
        "{what}: ours {ours:e}, R {r:e}, relative difference {rel:e}"
    );
}

/// Compares the client's fit with R's: coefficients and deviance with R's glm() converged (its
/// maximum), and the SEs with R's own last step from the same place. The client's SEs come from
/// the information matrix at the coefficients it last sent (one step before the final ones), and
/// R's glm() started there with one iteration (`start=`, `maxit=1`) makes exactly that step: its
/// coefficients are the client's final ones and its SEs use the same weights.
fn compare_with_r(spec: &Spec, glm_call: &str) -> Fit {
    let (df, data_r) = study();
    let session = Session::new(vec![("D", df)]);
    let fit = client_glm(&session, spec);
    let (names, coef, se_converged, dev, nobs) =
        r_glm(&data_r, &glm_call.replace("CONTROL", TIGHT));
    assert_eq!(fit.names, names, "coefficient names");
    for i in 0..names.len() {
        assert_close(&format!("coefficient {}", names[i]), fit.coef[i], coef[i]);
        let rel = (fit.se[i] - se_converged[i]).abs() / se_converged[i];
        assert!(
            rel < 1e-6,
            "SE {} is far from R's converged one: {rel:e}",
            names[i]
        );
    }
    assert_close("deviance", fit.dev, dev);
    let start = fit
        .last_sent
        .iter()
        .map(|b| format!("{b:?}"))
        .collect::<Vec<_>>()
        .join(",");
    let one_step = glm_call.replace(
        "CONTROL",
        &format!("start=c({start}), control=glm.control(maxit=1)"),
    );
    let (names_step, coef_step, se_step, _, _) = r_glm(&data_r, &one_step);
    assert_eq!(fit.names, names_step);
    for i in 0..names.len() {
        assert_close(
            &format!("last step's coefficient {}", names[i]),
            fit.coef[i],
            coef_step[i],
        );
        assert_close(&format!("SE {}", names[i]), fit.se[i], se_step[i]);
    }
    assert_eq!(fit.nsubs, nobs, "rows used");
    assert_eq!(fit.ntotal, 60.0);
    assert!(fit.iterations >= 2);
    fit
}

/// R's glm(), converged far past its default, is the reference for the client's fixed point.
const TIGHT: &str = "control=glm.control(epsilon=1e-14, maxit=100)";

#[test]
fn gaussian_with_a_factor_and_an_interaction_matches_r() {
    // D$y ~ D$age * D$sex + D$grp
    let rhs = plus(op(FormulaOp::Times, v("D$age"), v("D$sex")), v("D$grp"));
    let spec = Spec {
        formula: formula("D$y", rhs),
        family: "gaussian",
        weights: None,
        offset: None,
        data: None,
    };
    let fit = compare_with_r(
        &spec,
        "glm(D$y ~ D$age * D$sex + D$grp, family=gaussian, CONTROL)",
    );
    assert_eq!(
        fit.names,
        [
            "(Intercept)",
            "D$age",
            "D$sexM",
            "D$grpb",
            "D$grpc",
            "D$age:D$sexM"
        ]
    );
    // Nvalid counts rows complete in the formula's variables (age and sex have gaps).
    let out = common::rscript(&format!(
        "{}\ncat(sum(complete.cases(D$y, D$age, D$sex, D$grp)))",
        study().1
    ));
    assert_eq!(fit.nvalid, out.trim().parse::<f64>().unwrap());
}

#[test]
fn binomial_with_a_factor_response_and_weights_matches_r() {
    let rhs = plus(v("D$age"), v("D$sex"));
    let spec = Spec {
        formula: formula("D$case", rhs),
        family: "binomial",
        weights: Some("D$w"),
        offset: None,
        data: None,
    };
    compare_with_r(
        &spec,
        "glm(D$case ~ D$age + D$sex, family=binomial, weights=D$w, CONTROL)",
    );
}

#[test]
fn poisson_with_an_offset_and_bare_names_in_data_matches_r() {
    let rhs = plus(v("age"), v("grp"));
    let spec = Spec {
        formula: formula("count", rhs),
        family: "poisson",
        weights: None,
        offset: Some("D$off"),
        data: Some("D"),
    };
    let fit = compare_with_r(
        &spec,
        "glm(count ~ age + grp, family=poisson, offset=off, data=D, CONTROL)",
    );
    assert_eq!(fit.names, ["(Intercept)", "age", "grpb", "grpc"]);
}

#[test]
fn a_model_without_intercept_codes_its_first_factor_fully_as_r_does() {
    // D$y ~ D$grp + D$bmi:D$sex - 1
    let rhs = op(
        FormulaOp::Minus,
        plus(v("D$grp"), op(FormulaOp::Colon, v("D$bmi"), v("D$sex"))),
        FormulaExpr::Number(1.0),
    );
    let spec = Spec {
        formula: formula("D$y", rhs),
        family: "gaussian",
        weights: None,
        offset: None,
        data: None,
    };
    let fit = compare_with_r(&spec, "glm(D$y ~ D$grp + D$bmi:D$sex - 1, CONTROL)");
    assert_eq!(
        fit.names,
        ["D$grpa", "D$grpb", "D$grpc", "D$bmi:D$sexF", "D$bmi:D$sexM"]
    );
}

#[test]
fn a_logical_response_and_a_character_covariate_match_r() {
    // A logical y is 0/1 for binomial; a character x becomes a factor with R's (ICU) level order,
    // here a, B, c (byte order would put B first).
    let mut g = Lcg(7);
    let n = 45;
    let x: Vec<Option<f64>> = (0..n)
        .map(|i| {
            if i == 4 {
                None
            } else {
                Some(g.below(40) as f64 / 4.0)
            }
        })
        .collect();
    let grp: Vec<Option<&str>> = (0..n)
        .map(|i| {
            if i == 9 {
                None
            } else {
                Some(["a", "B", "c"][g.below(3) as usize])
            }
        })
        .collect();
    let y: Vec<Option<bool>> = (0..n)
        .map(|i| {
            x[i].map(|xv| {
                (g.below(10) as f64) < 2.0 + xv * 0.6 + if grp[i] == Some("c") { 2.0 } else { 0.0 }
            })
        })
        .collect();
    let (df, data_r) = frame(&[
        logical_col("y", &y),
        num_col("x", &x),
        character_col("g", &grp),
    ]);
    let session = Session::new(vec![("D", df)]);
    let spec = Spec {
        formula: formula("y", plus(v("x"), v("g"))),
        family: "binomial",
        weights: None,
        offset: None,
        data: Some("D"),
    };
    let fit = client_glm(&session, &spec);
    let (names, coef, _, dev, nobs) = r_glm(
        &data_r,
        &format!("glm(y ~ x + g, family=binomial, data=D, {TIGHT})"),
    );
    assert_eq!(fit.names, names);
    assert_eq!(fit.names, ["(Intercept)", "x", "gB", "gc"]);
    for i in 0..names.len() {
        assert_close(&names[i], fit.coef[i], coef[i]);
    }
    assert_close("deviance", fit.dev, dev);
    assert_eq!(fit.nsubs, nobs);
}

#[test]
fn model_matrices_match_r_for_power_in_and_factor_interactions() {
    let (df, data_r) = study();
    let session = Session::new(vec![("D", df)]);
    let cases: Vec<(FormulaExpr, &str)> = vec![
        (
            op(
                FormulaOp::Power,
                FormulaExpr::Paren(Box::new(plus(plus(v("age"), v("sex")), v("grp")))),
                FormulaExpr::Number(2.0),
            ),
            "y ~ (age + sex + grp)^2",
        ),
        (op(FormulaOp::In, v("age"), v("grp")), "y ~ age %in% grp"),
        (op(FormulaOp::Colon, v("sex"), v("grp")), "y ~ sex:grp"),
        (
            plus(op(FormulaOp::Colon, v("grp"), v("sex")), v("grp")),
            "y ~ grp:sex + grp",
        ),
        (
            op(
                FormulaOp::Minus,
                op(FormulaOp::Times, v("bmi"), v("grp")),
                v("bmi"),
            ),
            "y ~ bmi*grp - bmi",
        ),
        (
            plus(
                FormulaExpr::Number(0.0),
                op(FormulaOp::Times, v("sex"), v("grp")),
            ),
            "y ~ 0 + sex*grp",
        ),
    ];
    for (rhs, r_formula) in cases {
        let ds1 = session
            .eval(&call(
                "glmDS1",
                vec![formula("y", rhs), s("gaussian"), null(), null(), s("D")],
            ))
            .unwrap_or_else(|e| panic!("{r_formula}: {e}"));
        let r = common::rscript(&format!(
            "{data_r}\nm <- glm({r_formula}, data=D, x=TRUE)$x\ncat(colnames(m), sep='\\n'); cat('--\\n'); cat(dim(m), sep='\\n')"
        ));
        let (names, dims) = r.split_once("--\n").unwrap();
        assert_eq!(
            strings(el(&ds1, "coef.names")),
            names.lines().collect::<Vec<_>>(),
            "{r_formula}"
        );
        let dims: Vec<f64> = dims.lines().map(|l| l.parse().unwrap()).collect();
        assert_eq!(doubles(el(&ds1, "dimX")), dims, "{r_formula}");
    }
}

#[test]
fn one_scoring_step_matches_r_information_score_and_deviance() {
    // glmDS2 at a given beta: XᵀWX, XᵀWu and the deviance, against R computing them from
    // glm()'s own model matrix and family functions.
    let (df, data_r) = study();
    let session = Session::new(vec![("D", df)]);
    let rhs = plus(v("D$age"), v("D$grp"));
    let beta = "-0.5,0.01,0.25,-0.125";
    let ds2 = session
        .eval(&call(
            "glmDS2",
            vec![
                formula("D$case", rhs),
                s("binomial"),
                s(beta),
                null(),
                s("D$w"),
                null(),
            ],
        ))
        .unwrap();
    let r = common::rscript(&format!(
        "{data_r}\nm <- glm(D$case ~ D$age + D$grp, family=binomial, weights=D$w, x=TRUE)\n\
         X <- m$x; y <- m$y; w <- m$prior.weights; f <- binomial(); b <- c({beta})\n\
         eta <- drop(X %*% b); mu <- f$linkinv(eta); me <- f$mu.eta(eta); W <- me^2/f$variance(mu)*w\n\
         I <- t(X) %*% (W*X); s <- t(X) %*% (W*(y-mu)/me)\n\
         cat(sprintf('%.17g', c(I, s, sum(f$dev.resids(y, mu, w)), nrow(X))), sep='\\n')"
    ));
    let expected: Vec<f64> = r.lines().map(|l| l.parse().unwrap()).collect();
    let got: Vec<f64> = [
        doubles(el(&ds2, "info.matrix")),
        doubles(el(&ds2, "score.vect")),
        doubles(el(&ds2, "dev")),
        doubles(el(&ds2, "numsubs")),
    ]
    .concat();
    assert_eq!(got.len(), expected.len());
    for (i, (a, b)) in got.iter().zip(&expected).enumerate() {
        assert_close(&format!("value {i}"), *a, *b);
    }
    let Vector::List(_) = &el(&ds2, "family").vector else {
        panic!("family is a list")
    };
    assert_eq!(el(&ds2, "family").class(), vec!["family"]);
    assert_eq!(strings(el(el(&ds2, "family"), "link")), vec!["logit"]);
    assert_eq!(
        el(&ds2, "info.matrix").attr("dimnames").map(RObject::len),
        Some(2)
    );
}

// ---- disclosure checks, just inside and just outside ---------------------------------------------

fn small(cols: Vec<(&'static str, Vec<f64>)>) -> Session {
    let n = cols[0].1.len();
    let df = RObject::data_frame(cols.into_iter().map(|(k, v)| (k, RObject::doubles(v))), n);
    Session::new(vec![("D", df)])
}

fn ds1(
    session: &Session,
    rhs: FormulaExpr,
    family: &str,
    weights: Option<&str>,
    offset: Option<&str>,
) -> RObject {
    session
        .eval(&call(
            "glmDS1",
            vec![
                formula("y", rhs),
                s(family),
                opt(weights),
                opt(offset),
                s("D"),
            ],
        ))
        .unwrap()
}

fn ds2(
    session: &Session,
    rhs: FormulaExpr,
    family: &str,
    beta: &str,
    weights: Option<&str>,
    offset: Option<&str>,
) -> RObject {
    session
        .eval(&call(
            "glmDS2",
            vec![
                formula("y", rhs),
                s(family),
                s(beta),
                opt(offset),
                opt(weights),
                s("D"),
            ],
        ))
        .unwrap()
}

fn flag(x: &RObject, name: &str) -> f64 {
    doubles(el(x, name))[0]
}

/// 1..n, not binary.
fn seq(n: usize) -> Vec<f64> {
    (1..=n).map(|i| i as f64 * 1.5 + (i % 3) as f64).collect()
}

#[test]
fn saturation_is_p_greater_than_nfilter_glm_times_n() {
    // p = 3: with N = 9, 3 > 0.33·9 = 2.97 (refused); with N = 10, 3 > 3.3 is false.
    for (n, invalid) in [(9, true), (10, false)] {
        let session = small(vec![
            ("y", seq(n)),
            ("a", seq(n).iter().map(|x| x * x).collect()),
            ("b", seq(n).iter().map(|x| (x * 7.0) % 5.0).collect()),
        ]);
        let rhs = plus(v("a"), v("b"));
        let r1 = ds1(&session, rhs.clone(), "gaussian", None, None);
        assert_eq!(
            flag(&r1, "glm.saturation.invalid"),
            if invalid { 1.0 } else { 0.0 },
            "N={n}"
        );
        let expected = if invalid {
            "STUDY DATA OR APPLIED MODEL INVALID FOR THIS SOURCE"
        } else {
            "No errors"
        };
        assert_eq!(strings(el(&r1, "errorMessage")), vec![expected]);
        let r2 = ds2(&session, rhs, "gaussian", "0,0,0", None, None);
        assert_eq!(
            flag(&r2, "disclosure.risk"),
            if invalid { 1.0 } else { 0.0 }
        );
        if invalid {
            assert_eq!(
                strings(el(&r2, "errorMessage2")),
                vec![
                    "ERROR: Model has too many parameters, there is a possible risk of disclosure - please simplify model",
                    "MODEL FAILED: model or data invalid, info.matrix and score.vector destroyed"
                ]
            );
            // Both destroyed (dsBase leaves the score vector by a slip; we do not).
            assert!(
                matches!(el(&r2, "info.matrix").vector, Vector::Logical(ref v) if v == &[None])
            );
            assert!(matches!(el(&r2, "score.vect").vector, Vector::Logical(ref v) if v == &[None]));
        } else {
            assert_eq!(el(&r2, "info.matrix").dim(), Some(vec![3, 3]));
        }
    }
}

/// Ten rows where `column` is binary with `rare` rows in its rarer category.
fn binary(rare: usize) -> Vec<f64> {
    (0..12).map(|i| if i < rare { 1.0 } else { 0.0 }).collect()
}

#[test]
fn binary_y_x_weights_and_offset_need_nfilter_tab_in_the_rarer_category() {
    // nfilter.tab = 3: two rows in the rarer category is refused, three is not.
    for (rare, invalid) in [(2, 1.0), (3, 0.0)] {
        let x = seq(12);
        let b = binary(rare);
        let w: Vec<f64> = b.iter().map(|v| v + 1.0).collect();
        let session = small(vec![
            ("y", b.clone()),
            ("x", x.clone()),
            ("b", b.clone()),
            ("w", w.clone()),
            ("o", b.clone()),
            ("z", seq(12)),
        ]);

        // y binary (binomial)
        let r = ds1(&session, v("x"), "binomial", None, None);
        assert_eq!(flag(&r, "y.invalid"), invalid, "y, rare={rare}");
        let r2 = ds2(&session, v("x"), "binomial", "0,0", None, None);
        assert_eq!(flag(&r2, "disclosure.risk"), invalid);

        // an X column binary, y continuous
        let session_x = small(vec![
            ("y", seq(12)),
            ("x", x.clone()),
            ("b", b.clone()),
            ("w", w.clone()),
            ("o", b.clone()),
        ]);
        let r = ds1(&session_x, plus(v("x"), v("b")), "gaussian", None, None);
        assert_eq!(
            doubles(el(&r, "Xpar.invalid")),
            vec![0.0, 0.0, invalid],
            "X, rare={rare}"
        );
        let r2 = ds2(
            &session_x,
            plus(v("x"), v("b")),
            "gaussian",
            "0,0,0",
            None,
            None,
        );
        assert_eq!(flag(&r2, "disclosure.risk"), invalid);

        // weights binary
        let r = ds1(&session_x, v("x"), "gaussian", Some("D$w"), None);
        assert_eq!(flag(&r, "w.invalid"), invalid, "w, rare={rare}");
        let r2 = ds2(&session_x, v("x"), "gaussian", "0,0", Some("D$w"), None);
        assert_eq!(flag(&r2, "disclosure.risk"), invalid);

        // offset binary
        let r = ds1(&session_x, v("x"), "gaussian", None, Some("D$o"));
        assert_eq!(flag(&r, "o.invalid"), invalid, "offset, rare={rare}");
        let r2 = ds2(&session_x, v("x"), "gaussian", "0,0", None, Some("D$o"));
        assert_eq!(flag(&r2, "disclosure.risk"), invalid);
        if invalid == 1.0 {
            assert!(
                strings(el(&r2, "errorMessage2"))
                    .iter()
                    .any(|m| m.starts_with("ERROR: offset vector is binary"))
            );
        }
    }
}

#[test]
fn missing_weights_drop_rows_in_glmds2_and_the_counts_say_so() {
    let mut w = seq(12);
    w[4] = na_real();
    let mut x = seq(12);
    x[7] = na_real();
    let session = small(vec![
        ("y", seq(12).iter().map(|v| v * 2.0 + 1.0).collect()),
        ("x", x),
        ("w", w),
    ]);
    let r2 = ds2(&session, v("x"), "gaussian", "0,0", Some("D$w"), None);
    assert_eq!(doubles(el(&r2, "Ntotal")), vec![12.0]);
    assert_eq!(doubles(el(&r2, "Nvalid")), vec![11.0]);
    assert_eq!(doubles(el(&r2, "Nmissing")), vec![1.0]);
    assert_eq!(doubles(el(&r2, "numsubs")), vec![10.0]);
}

// ---- errors ------------------------------------------------------------------------------------

#[test]
fn errors_are_rs_messages() {
    let session = small(vec![
        ("y", vec![0.0, 1.0, 2.0, 1.0, 0.0]),
        ("x", seq(5)),
        ("n", vec![-1.0, 1.0, 2.0, 1.0, 0.0]),
    ]);
    let err = |expr: Expr| session.eval(&expr).unwrap_err().to_string();
    let glm1 = |resp: &str, rhs: FormulaExpr, family: &str| {
        call(
            "glmDS1",
            vec![formula(resp, rhs), s(family), null(), null(), s("D")],
        )
    };
    assert_eq!(
        err(glm1("y", v("x"), "binomial")),
        "y values must be 0 <= y <= 1"
    );
    assert_eq!(
        err(glm1("n", v("x"), "poisson")),
        "negative values not allowed for the 'Poisson' family"
    );
    assert!(err(glm1("y", v("x"), "gamma")).contains("not supported"));
    assert_eq!(
        err(glm1("y", v("nope"), "gaussian")),
        "object 'nope' not found"
    );
    assert_eq!(
        err(glm1(
            "y",
            plus(v("x"), FormulaExpr::Number(2.0)),
            "gaussian"
        )),
        "invalid model formula in ExtractVars"
    );
    assert_eq!(
        err(glm1("y", FormulaExpr::Number(0.0), "gaussian")),
        "subscript out of bounds"
    );
    assert!(
        err(call(
            "glmDS1",
            vec![s("y~x"), s("gaussian"), null(), null(), s("D")]
        ))
        .contains("must be a formula")
    );
    assert_eq!(
        err(call(
            "glmDS2",
            vec![
                formula("y", v("x")),
                s("gaussian"),
                s("0,0,0"),
                null(),
                null(),
                s("D")
            ]
        )),
        "non-conformable arguments"
    );
    assert!(
        err(call(
            "glmDS2",
            vec![
                formula("y", v("x")),
                s("gaussian"),
                s("0,zero"),
                null(),
                null(),
                s("D")
            ]
        ))
        .contains("beta.vect")
    );
    assert!(
        err(call(
            "glmDS1",
            vec![
                formula("y", v("x")),
                s("gaussian"),
                s("D$w;x"),
                null(),
                s("D")
            ]
        ))
        .contains("not the name")
    );
    // A factor that keeps one level after complete-case deletion cannot take contrasts.
    let df = RObject::data_frame(
        [
            ("y", RObject::doubles(seq(4))),
            (
                "f",
                RObject::factor(
                    vec![Some(1), Some(1), Some(1), Some(2)],
                    vec!["a".into(), "b".into()],
                ),
            ),
            ("z", RObject::doubles(vec![1.0, 2.0, 3.0, na_real()])),
        ],
        4,
    );
    let session = Session::new(vec![("D", df)]);
    assert_eq!(
        session
            .eval(&call(
                "glmDS1",
                vec![
                    formula("y", plus(v("f"), v("z"))),
                    s("gaussian"),
                    null(),
                    null(),
                    s("D")
                ]
            ))
            .unwrap_err()
            .to_string(),
        "contrasts can be applied only to factors with 2 or more levels"
    );
}
