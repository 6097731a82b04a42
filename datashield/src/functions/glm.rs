//! `glmDS1` and `glmDS2`: the server side of DataSHIELD's distributed GLM (ds.glm). The client
//! iterates Fisher scoring: it sends the current coefficients, each server returns XᵀWX, XᵀWu
//! and the deviance for its rows, and the client sums them and solves. Nothing is kept between
//! calls: each one rebuilds the model matrix from the formula.
//!
//! Behaviour follows dsBase's functions (read for behaviour, not translated): the model matrix is
//! what `glm(formula, family, data, x = TRUE)` builds (complete cases over the formula's
//! variables, unused levels dropped); weights and offset are then taken for those rows, and rows
//! where they are missing dropped (glmDS2). Both functions apply the same disclosure checks: a
//! model with more than `nfilter.glm × N` parameters, and any binary y, X column, weight or offset
//! vector whose smaller category has fewer than `nfilter.tab` rows.

use crate::error::DsError;
use crate::eval::{Invocation, Method};
use crate::functions::formula::{self, Column, ModelFrame, ModelMatrix};
use crate::language::{Expr, FormulaExpr};
use crate::value::{RObject, Vector};

pub fn methods() -> Vec<Method> {
    vec![
        Method::aggregate("glmDS1", glm_ds1),
        Method::aggregate("glmDS2", glm_ds2),
    ]
}

/// The GLM families ds.glm offers, each with its canonical link, as R's `stats` defines them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Gaussian,
    Binomial,
    Poisson,
}

/// R's `.Machine$double.eps`.
const EPSILON: f64 = f64::EPSILON;
/// The logit link's cut-offs in R's C code (family.c).
const LOGIT_THRESHOLD: f64 = 30.0;

impl Family {
    pub fn parse(name: &str) -> Result<Family, DsError> {
        match name {
            "gaussian" => Ok(Family::Gaussian),
            "binomial" => Ok(Family::Binomial),
            "poisson" => Ok(Family::Poisson),
            other => Err(DsError::failed(format!(
                "family '{other}' is not supported: use \"gaussian\", \"binomial\" or \"poisson\""
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::Gaussian => "gaussian",
            Family::Binomial => "binomial",
            Family::Poisson => "poisson",
        }
    }

    pub fn link(self) -> &'static str {
        match self {
            Family::Gaussian => "identity",
            Family::Binomial => "logit",
            Family::Poisson => "log",
        }
    }

    /// `family$linkinv(eta)`.
    pub fn linkinv(self, eta: f64) -> f64 {
        match self {
            Family::Gaussian => eta,
            Family::Binomial => {
                let t = if eta < -LOGIT_THRESHOLD {
                    EPSILON
                } else if eta > LOGIT_THRESHOLD {
                    1.0 / EPSILON
                } else {
                    eta.exp()
                };
                t / (1.0 + t)
            }
            Family::Poisson => eta.exp().max(EPSILON),
        }
    }

    /// `family$mu.eta(eta)`: dμ/dη.
    pub fn mu_eta(self, eta: f64) -> f64 {
        match self {
            Family::Gaussian => 1.0,
            Family::Binomial => {
                if !(-LOGIT_THRESHOLD..=LOGIT_THRESHOLD).contains(&eta) {
                    EPSILON
                } else {
                    let opexp = 1.0 + eta.exp();
                    eta.exp() / (opexp * opexp)
                }
            }
            Family::Poisson => eta.exp().max(EPSILON),
        }
    }

    /// `family$variance(mu)`.
    pub fn variance(self, mu: f64) -> f64 {
        match self {
            Family::Gaussian => 1.0,
            Family::Binomial => mu * (1.0 - mu),
            Family::Poisson => mu,
        }
    }

    /// `family$dev.resids(y, mu, wt)` for one observation.
    pub fn dev_resid(self, y: f64, mu: f64, wt: f64) -> f64 {
        let y_log_y = |y: f64, mu: f64| if y != 0.0 { y * (y / mu).ln() } else { 0.0 };
        match self {
            Family::Gaussian => wt * (y - mu) * (y - mu),
            Family::Binomial => 2.0 * wt * (y_log_y(y, mu) + y_log_y(1.0 - y, 1.0 - mu)),
            Family::Poisson => {
                if y > 0.0 {
                    2.0 * wt * (y * (y / mu).ln() - (y - mu))
                } else {
                    2.0 * mu * wt
                }
            }
        }
    }

    /// The response as glm() reads it for this family, with its `initialize` checks.
    fn response(self, column: &Column) -> Result<Vec<f64>, DsError> {
        let y: Vec<f64> = match column {
            Column::Numeric(values) => values.iter().map(|v| v.unwrap_or(f64::NAN)).collect(),
            // A logical response is 0/1; a factor's first level is failure, any other success.
            Column::Categorical {
                codes,
                levels,
                logical,
            } if self == Family::Binomial || *logical => {
                let one = |c: usize| {
                    if *logical {
                        levels.get(c).is_some_and(|l| l == "TRUE")
                    } else {
                        c != 0
                    }
                };
                codes
                    .iter()
                    .map(|c| c.map_or(f64::NAN, |c| if one(c) { 1.0 } else { 0.0 }))
                    .collect()
            }
            Column::Categorical { .. } => return Err(DsError::failed("NA/NaN/Inf in 'y'")),
        };
        if y.iter().any(|v| !v.is_finite()) {
            return Err(DsError::failed("NA/NaN/Inf in 'y'"));
        }
        match self {
            Family::Binomial if y.iter().any(|&v| !(0.0..=1.0).contains(&v)) => {
                Err(DsError::failed("y values must be 0 <= y <= 1"))
            }
            Family::Poisson if y.iter().any(|&v| v < 0.0) => Err(DsError::failed(
                "negative values not allowed for the 'Poisson' family",
            )),
            _ => Ok(y),
        }
    }

    /// What glmDS2 returns as `family`. R returns the family object itself, whose functions
    /// (linkinv, variance, …) are closures no other runtime can produce; the client reads only
    /// `family` (and `link`), so this is `list(family=, link=)` with class "family".
    fn as_robject(self) -> RObject {
        RObject::named_list([
            ("family", RObject::string(self.name())),
            ("link", RObject::string(self.link())),
        ])
        .with_attr("class", RObject::string("family"))
    }
}

/// The model of one glmDS call: the formula's matrix on its complete rows, and the response.
struct Model {
    family: Family,
    frame: ModelFrame,
    /// Rows (of the full data) complete in every formula variable.
    complete: Vec<usize>,
    x: ModelMatrix,
    y: Vec<f64>,
}

/// `formula, family` and the data frame named by `data` (positions given), resolved.
fn build_model(
    call: &Invocation<'_>,
    data_position: usize,
    data_name: &str,
) -> Result<Model, DsError> {
    let (response, rhs) = formula_arg(call)?;
    let family = family_arg(call)?;
    let data = match path_arg(call, data_position, data_name)? {
        None => None,
        Some(path) => {
            let value = call.env.lookup(&path)?;
            if !matches!(value.vector, Vector::List(_)) {
                return Err(DsError::failed(
                    "'data' must be a data.frame, environment, or list",
                ));
            }
            Some(value)
        }
    };
    let resolve = |name: &str| resolve_variable(call, data.as_ref(), name);
    let terms = formula::terms(response, rhs)?;
    let frame = ModelFrame::new(terms, &resolve)?;
    let complete = frame.complete_rows();
    let (x, response) = formula::model_matrix(&frame, &complete)?;
    if x.ncol() == 0 {
        // dsBase indexes the first column of X, which fails for an empty model.
        return Err(DsError::failed("subscript out of bounds"));
    }
    if x.columns.iter().flatten().any(|v| !v.is_finite()) {
        return Err(DsError::failed("NA/NaN/Inf in 'x'"));
    }
    let y = family.response(&response)?;
    Ok(Model {
        family,
        frame,
        complete,
        x,
        y,
    })
}

/// A formula variable: a bare name is a column of `data` when it has one, else (as R's formula
/// environment would find it) a session symbol; `D$age` is always a session path.
fn resolve_variable(
    call: &Invocation<'_>,
    data: Option<&RObject>,
    name: &str,
) -> Result<RObject, DsError> {
    if let Some(column) = data
        .filter(|_| !name.contains('$'))
        .and_then(|d| d.element(name))
    {
        return Ok(column.clone());
    }
    call.env.lookup(name)
}

fn formula_arg<'a>(call: &'a Invocation<'_>) -> Result<(&'a str, &'a FormulaExpr), DsError> {
    match call.arg(0, "formula") {
        Some(Expr::Formula { response, rhs }) => Ok((response, rhs)),
        Some(_) => Err(DsError::failed(format!(
            "{}: the argument 'formula' must be a formula (y ~ x)",
            call.function
        ))),
        None => Err(DsError::failed(format!(
            "{}: argument \"formula\" is missing, with no default",
            call.function
        ))),
    }
}

fn family_arg(call: &Invocation<'_>) -> Result<Family, DsError> {
    match call.arg(1, "family") {
        // R's glm() takes the family's name as a string or the family function itself.
        Some(Expr::Str(name) | Expr::Symbol(name)) => Family::parse(name),
        Some(_) => Err(DsError::failed(format!(
            "{}: the argument 'family' must be a family name",
            call.function
        ))),
        None => Err(DsError::failed(format!(
            "{}: argument \"family\" is missing, with no default",
            call.function
        ))),
    }
}

/// An argument that names an object as a string (`'D$w'`), or `NULL` (also when absent).
fn path_arg(call: &Invocation<'_>, position: usize, name: &str) -> Result<Option<String>, DsError> {
    let path = match call.arg(position, name) {
        None => return Ok(None),
        Some(Expr::Symbol(s)) if s == "NULL" => return Ok(None),
        Some(Expr::Str(s) | Expr::Symbol(s)) => s,
        Some(_) => {
            return Err(DsError::failed(format!(
                "{}: the argument '{name}' must name an object",
                call.function
            )));
        }
    };
    call.check_path(path)?;
    Ok(Some(path.clone()))
}

/// The weights or offset vector named by an argument, full length, as `cbind(x)` gives it.
fn numeric_vector(
    call: &Invocation<'_>,
    position: usize,
    name: &str,
    data: Option<&RObject>,
    nrow: usize,
) -> Result<Option<Vec<Option<f64>>>, DsError> {
    let Some(path) = path_arg(call, position, name)? else {
        return Ok(None);
    };
    let value = resolve_variable(call, data, &path)?;
    let values = value.as_doubles().ok_or_else(|| {
        DsError::failed(format!(
            "{}: '{path}' ({name}) must be numeric",
            call.function
        ))
    })?;
    if values.len() != nrow {
        return Err(DsError::failed(format!(
            "variable lengths differ (found for '{path}')"
        )));
    }
    Ok(Some(values))
}

/// The data frame named by the data argument again (for weights and offset given as bare names).
fn data_frame(
    call: &Invocation<'_>,
    position: usize,
    name: &str,
) -> Result<Option<RObject>, DsError> {
    path_arg(call, position, name)?
        .map(|path| call.env.lookup(&path))
        .transpose()
}

/// dsBase's binary-vector check: true when the vector's non-missing values take exactly two
/// distinct values and the rarer one occurs fewer than `nfilter.tab` times.
pub fn binary_with_small_category(values: &[Option<f64>], nfilter_tab: f64) -> bool {
    let mut distinct: Vec<(f64, usize)> = Vec::new();
    for v in values.iter().flatten() {
        match distinct.iter_mut().find(|(d, _)| d == v) {
            Some((_, count)) => *count += 1,
            None => {
                if distinct.len() == 2 {
                    return false;
                }
                distinct.push((*v, 1));
            }
        }
    }
    distinct.len() == 2
        && distinct
            .iter()
            .map(|(_, c)| *c)
            .min()
            .is_some_and(|c| (c as f64) < nfilter_tab)
}

fn present(values: &[f64]) -> Vec<Option<f64>> {
    values.iter().map(|v| Some(*v)).collect()
}

fn r_int(n: usize) -> Option<i32> {
    i32::try_from(n).ok()
}

const MESSAGE_SATURATED: &str = "ERROR: Model has too many parameters, there is a possible risk of disclosure - please simplify model";
const MESSAGE_Y: &str =
    "ERROR: y vector is binary with one category less than filter threshold for table cell size";
const MESSAGE_X: &str = "ERROR: at least one column in X matrix is binary with one category less than filter threshold for table cell size";
const MESSAGE_W: &str =
    "ERROR: w vector is binary with one category less than filter threshold for table cell size";
const MESSAGE_O: &str = "ERROR: offset vector is binary with one category less than filter threshold for table cell size";

/// `glmDS1(formula, family, weights, offset, data)`: the model's shape and the disclosure checks,
/// so that the client can stop before iterating.
fn glm_ds1(call: &Invocation<'_>) -> Result<RObject, DsError> {
    let settings = call.env.settings;
    let model = build_model(call, 4, "data")?;
    let data = data_frame(call, 4, "data")?;
    let (n, p) = (model.x.nrow, model.x.ncol());
    let saturated = p as f64 > settings.nfilter_glm * n as f64;
    let y_invalid = binary_with_small_category(&present(&model.y), settings.nfilter_tab);
    let x_invalid: Vec<bool> = model
        .x
        .columns
        .iter()
        .map(|c| binary_with_small_category(&present(c), settings.nfilter_tab))
        .collect();
    // glmDS1 checks weights and offset over all rows, as given (an absent one is all ones).
    let nrow = model.frame.nrow;
    let weights = numeric_vector(call, 2, "weights", data.as_ref(), nrow)?;
    let offset = numeric_vector(call, 3, "offset", data.as_ref(), nrow)?;
    let w_invalid = weights
        .as_deref()
        .is_some_and(|w| binary_with_small_category(w, settings.nfilter_tab));
    let o_invalid = offset
        .as_deref()
        .is_some_and(|o| binary_with_small_category(o, settings.nfilter_tab));
    let any_invalid =
        saturated || y_invalid || x_invalid.iter().any(|&b| b) || w_invalid || o_invalid;
    let flag = |b: bool| RObject::double(if b { 1.0 } else { 0.0 });
    Ok(RObject::named_list([
        ("dimX", RObject::integers(vec![r_int(n), r_int(p)])),
        ("coef.names", RObject::strings(model.x.names.clone())),
        ("y.invalid", flag(y_invalid)),
        (
            "Xpar.invalid",
            RObject::doubles(
                x_invalid
                    .iter()
                    .map(|&b| if b { 1.0 } else { 0.0 })
                    .collect(),
            ),
        ),
        ("w.invalid", flag(w_invalid)),
        ("o.invalid", flag(o_invalid)),
        ("glm.saturation.invalid", flag(saturated)),
        (
            "errorMessage",
            RObject::string(if any_invalid {
                "STUDY DATA OR APPLIED MODEL INVALID FOR THIS SOURCE"
            } else {
                "No errors"
            }),
        ),
    ]))
}

/// Parses `beta.vect` ("b1,b2,…") as R's `as.numeric(strsplit(…, ","))`.
fn parse_beta(text: &str, p: usize) -> Result<Vec<f64>, DsError> {
    let beta: Vec<f64> = text
        .split(',')
        .map(|part| {
            let part = part.trim();
            let lower = part.to_ascii_lowercase();
            match lower.as_str() {
                "inf" | "+inf" => Ok(f64::INFINITY),
                "-inf" => Ok(f64::NEG_INFINITY),
                _ => part.parse::<f64>().ok().filter(|v| v.is_finite()).ok_or(()),
            }
        })
        .collect::<Result<_, ()>>()
        .map_err(|()| {
            DsError::failed(format!(
                "glmDS2: beta.vect must be {p} numbers separated by commas"
            ))
        })?;
    if beta.len() != p {
        return Err(DsError::failed("non-conformable arguments"));
    }
    if beta.iter().any(|b| !b.is_finite()) {
        return Err(DsError::failed(format!(
            "glmDS2: beta.vect must be {p} finite numbers"
        )));
    }
    Ok(beta)
}

/// The result of one scoring step on one server's rows.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoringStep {
    /// XᵀWX, row-major p×p.
    pub info: Vec<Vec<f64>>,
    /// XᵀWu.
    pub score: Vec<f64>,
    pub deviance: f64,
}

/// One Fisher-scoring step at `beta`: working weights W = (dμ/dη)²/V(μ)·w and working residuals
/// u = (y−μ)/(dμ/dη).
pub fn scoring_step(
    family: Family,
    x: &ModelMatrix,
    y: &[f64],
    weights: &[f64],
    offset: &[f64],
    beta: &[f64],
) -> ScoringStep {
    let (n, p) = (x.nrow, x.ncol());
    let mut info = vec![vec![0.0; p]; p];
    let mut score = vec![0.0; p];
    let mut deviance = 0.0;
    for i in 0..n {
        let eta = offset[i] + (0..p).map(|j| x.columns[j][i] * beta[j]).sum::<f64>();
        let mu = family.linkinv(eta);
        let mu_eta = family.mu_eta(eta);
        let w = mu_eta * mu_eta / family.variance(mu) * weights[i];
        let u = (y[i] - mu) / mu_eta;
        deviance += family.dev_resid(y[i], mu, 1.0) * weights[i];
        for (a, row) in info.iter_mut().enumerate() {
            let wxa = w * x.columns[a][i];
            score[a] += wxa * u;
            for (cell, column) in row.iter_mut().zip(&x.columns) {
                *cell += wxa * column[i];
            }
        }
    }
    ScoringStep {
        info,
        score,
        deviance,
    }
}

/// `glmDS2(formula, family, beta.vect, offset, weights, dataName)`: one scoring step.
fn glm_ds2(call: &Invocation<'_>) -> Result<RObject, DsError> {
    let settings = call.env.settings;
    let model = build_model(call, 5, "dataName")?;
    let data = data_frame(call, 5, "dataName")?;
    let nrow = model.frame.nrow;
    let weights_full = numeric_vector(call, 4, "weights", data.as_ref(), nrow)?;
    let offset_full = numeric_vector(call, 3, "offset", data.as_ref(), nrow)?;
    // Rows complete in y and X that also have their weight and offset.
    let keep: Vec<usize> = (0..model.complete.len())
        .filter(|&i| {
            let row = model.complete[i];
            let has = |v: &Option<Vec<Option<f64>>>| v.as_ref().is_none_or(|v| v[row].is_some());
            has(&weights_full) && has(&offset_full)
        })
        .collect();
    let x = model.x.rows(&keep);
    let y: Vec<f64> = keep.iter().map(|&i| model.y[i]).collect();
    let pick = |v: &Option<Vec<Option<f64>>>, default: f64| -> Vec<f64> {
        keep.iter()
            .map(|&i| {
                v.as_ref()
                    .and_then(|v| v[model.complete[i]])
                    .unwrap_or(default)
            })
            .collect()
    };
    let weights = pick(&weights_full, 1.0);
    let offset = pick(&offset_full, 0.0);
    let (n, p) = (x.nrow, x.ncol());
    let beta_text = match call.arg(2, "beta.vect") {
        Some(Expr::Str(text)) => text.clone(),
        Some(other) => {
            let value = call.env.evaluate(other)?;
            match value.str_values().as_slice() {
                [text] => (*text).to_owned(),
                _ => {
                    return Err(DsError::failed(
                        "glmDS2: beta.vect must be a string \"b1,b2,...\"",
                    ));
                }
            }
        }
        None => {
            return Err(DsError::failed(
                "glmDS2: argument \"beta.vect\" is missing, with no default",
            ));
        }
    };
    let beta = parse_beta(&beta_text, p)?;
    let step = scoring_step(model.family, &x, &y, &weights, &offset, &beta);

    let mut messages: Vec<&str> = Vec::new();
    let saturated = p as f64 > settings.nfilter_glm * n as f64;
    if saturated {
        messages.push(MESSAGE_SATURATED);
    }
    let y_invalid = binary_with_small_category(&present(&y), settings.nfilter_tab);
    if y_invalid {
        messages.push(MESSAGE_Y);
    }
    let x_invalid = x
        .columns
        .iter()
        .any(|c| binary_with_small_category(&present(c), settings.nfilter_tab));
    if x_invalid {
        messages.push(MESSAGE_X);
    }
    let w_invalid = binary_with_small_category(&present(&weights), settings.nfilter_tab);
    if w_invalid {
        messages.push(MESSAGE_W);
    }
    let o_invalid = binary_with_small_category(&present(&offset), settings.nfilter_tab);
    if o_invalid {
        messages.push(MESSAGE_O);
    }
    let risk = saturated || y_invalid || x_invalid || w_invalid || o_invalid;

    let names = RObject::strings(x.names.clone());
    let (info, score) = if risk {
        messages
            .push("MODEL FAILED: model or data invalid, info.matrix and score.vector destroyed");
        // dsBase means to destroy both; it assigns `score.vector` by mistake and so still returns
        // the score vector. Here both are destroyed, as intended: the client stops on
        // disclosure.risk before reading either.
        (RObject::logicals(vec![None]), RObject::logicals(vec![None]))
    } else {
        messages = vec!["No errors"];
        let info_data: Vec<f64> = (0..p)
            .flat_map(|col| (0..p).map(move |row| (row, col)))
            .map(|(r, c)| step.info[r][c])
            .collect();
        let info = RObject::matrix(info_data, p, p).with_attr(
            "dimnames",
            RObject::list(vec![names.clone(), names.clone()]),
        );
        let score = RObject::matrix(step.score.clone(), p, 1).with_attr(
            "dimnames",
            RObject::list(vec![names.clone(), RObject::null()]),
        );
        (info, score)
    };
    let ntotal = nrow;
    let nvalid = model.complete.len();
    Ok(RObject::named_list([
        ("family", model.family.as_robject()),
        ("info.matrix", info),
        ("score.vect", score),
        ("numsubs", RObject::integers(vec![r_int(n)])),
        ("dev", RObject::double(step.deviance)),
        ("Nvalid", RObject::integers(vec![r_int(nvalid)])),
        ("Nmissing", RObject::integers(vec![r_int(ntotal - nvalid)])),
        ("Ntotal", RObject::integers(vec![r_int(ntotal)])),
        (
            "disclosure.risk",
            RObject::double(if risk { 1.0 } else { 0.0 }),
        ),
        ("errorMessage2", RObject::strings(messages)),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_check_counts_the_rarer_value_only_for_two_values() {
        let v = |xs: &[f64]| xs.iter().map(|x| Some(*x)).collect::<Vec<_>>();
        assert!(binary_with_small_category(&v(&[0.0, 1.0, 1.0, 1.0]), 3.0));
        assert!(!binary_with_small_category(
            &v(&[0.0, 0.0, 0.0, 1.0, 1.0, 1.0]),
            3.0
        ));
        assert!(!binary_with_small_category(&v(&[0.0, 1.0, 2.0]), 3.0));
        assert!(!binary_with_small_category(&v(&[1.0, 1.0]), 3.0));
        assert!(!binary_with_small_category(
            &[
                Some(0.0),
                None,
                None,
                Some(1.0),
                Some(1.0),
                Some(0.0),
                Some(0.0),
                Some(1.0)
            ],
            3.0
        ));
    }

    #[test]
    fn beta_parsing_needs_p_finite_numbers() {
        assert_eq!(
            parse_beta("0,1.5,-2e-3", 3).unwrap(),
            vec![0.0, 1.5, -0.002]
        );
        assert_eq!(
            parse_beta("0,1", 3).unwrap_err().to_string(),
            "non-conformable arguments"
        );
        assert!(parse_beta("0,a", 2).is_err());
        assert!(parse_beta("0,Inf", 2).is_err());
        assert!(parse_beta("0,NaN", 2).is_err());
    }

    #[test]
    fn logit_link_clamps_as_r_does() {
        let f = Family::Binomial;
        assert_eq!(f.linkinv(-40.0), EPSILON / (1.0 + EPSILON));
        assert_eq!(f.mu_eta(40.0), EPSILON);
        assert!((f.linkinv(0.0) - 0.5).abs() < 1e-15);
        assert_eq!(Family::Poisson.linkinv(-1000.0), EPSILON);
    }
}
