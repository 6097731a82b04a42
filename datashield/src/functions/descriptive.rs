//! Descriptive statistics: meanDS, varDS, quantileMeanDS, meanSdGpDS, corDS and covDS, with
//! dsBase's return shapes (names, order, integer vs double) and disclosure rules.

use crate::error::DsError;
use crate::eval::{Invocation, Method};
use crate::functions::metadata::is_valid;
use crate::functions::numeric::{self, count_na, number_string, numeric_values, r_int, round15};
use crate::value::{NA_INTEGER, RObject, Vector, na_real};

pub fn methods() -> Vec<Method> {
    vec![
        Method::aggregate("meanDS", mean_ds),
        Method::aggregate("varDS", var_ds),
        Method::aggregate("quantileMeanDS", quantile_mean_ds),
        Method::aggregate("meanSdGpDS", mean_sd_gp_ds),
        Method::aggregate("corDS", cor_ds),
        Method::aggregate("covDS", cov_ds),
    ]
}

const NVALID_REFUSED: &str = "FAILED: Nvalid less than nfilter.tab";

/// Missing, valid and total counts of a vector, refused when 0 < valid < nfilter.tab.
fn counts(call: &Invocation<'_>, x: &RObject) -> Result<(i32, i32, i32), DsError> {
    let missing = r_int(count_na(x)?)?;
    let total = r_int(x.len())?;
    let valid = total - missing;
    if valid != 0 && f64::from(valid) < call.env.settings.nfilter_tab {
        return Err(DsError::disclosure("nfilter.tab", NVALID_REFUSED));
    }
    Ok((missing, valid, total))
}

/// An atomic vector (lists and data frames are not: R's `mean` and `sum` do not take them).
fn atomic(call: &Invocation<'_>, x: &RObject) -> Result<(), DsError> {
    match x.vector {
        Vector::List(_) | Vector::Null => Err(DsError::failed(format!(
            "{}: the object must be a vector, not a {}",
            call.function,
            x.class().join("/")
        ))),
        _ => Ok(()),
    }
}

/// `meanDS(x)`: `list(EstimatedMean, Nmissing, Nvalid, Ntotal, ValidityMessage)`, the counts
/// integers. A factor or character vector has no mean: R's `mean` gives NA, and so does this.
fn mean_ds(call: &Invocation<'_>) -> Result<RObject, DsError> {
    let x = call.named_object(0, "xvect")?;
    atomic(call, &x)?;
    let mean = match numeric_values(&x) {
        Some(values) => numeric::mean(&values.into_iter().flatten().collect::<Vec<_>>()),
        None => na_real(),
    };
    let (missing, valid, total) = counts(call, &x)?;
    Ok(RObject::named_list([
        ("EstimatedMean", RObject::double(mean)),
        ("Nmissing", RObject::integer(missing)),
        ("Nvalid", RObject::integer(valid)),
        ("Ntotal", RObject::integer(total)),
        ("ValidityMessage", RObject::string("VALID ANALYSIS")),
    ]))
}

/// R's `sum(x, na.rm = TRUE)`: an integer for logical and integer vectors (NA on overflow),
/// else a double; R's errors for factors and strings.
fn r_sum(x: &RObject) -> Result<RObject, DsError> {
    if x.is_factor() {
        return Err(DsError::failed(
            "\u{2018}sum\u{2019} not meaningful for factors",
        ));
    }
    match &x.vector {
        Vector::Logical(_) | Vector::Integer(_) => {
            let total: i64 = x
                .as_doubles()
                .unwrap_or_default()
                .into_iter()
                .flatten()
                .map(|v| v as i64)
                .sum();
            Ok(RObject::integers(vec![
                i32::try_from(total).ok().filter(|t| *t != NA_INTEGER),
            ]))
        }
        Vector::Double(v) => Ok(RObject::double(numeric::sum(
            v.iter().copied().filter(|d| !d.is_nan()),
        ))),
        other => Err(DsError::failed(format!(
            "invalid 'type' ({}) of argument",
            other.type_name()
        ))),
    }
}

/// `varDS(x)`: `list(Sum, SumOfSquares, Nmissing, Nvalid, Ntotal, ValidityMessage)`; the
/// client computes the variance from them.
fn var_ds(call: &Invocation<'_>) -> Result<RObject, DsError> {
    let x = call.named_object(0, "xvect")?;
    atomic(call, &x)?;
    let sum = r_sum(&x)?;
    let values = numeric_values(&x).unwrap_or_default();
    let squares = numeric::sum(values.into_iter().flatten().map(|v| v * v));
    let (missing, valid, total) = counts(call, &x)?;
    Ok(RObject::named_list([
        ("Sum", sum),
        ("SumOfSquares", RObject::double(squares)),
        ("Nmissing", RObject::integer(missing)),
        ("Nvalid", RObject::integer(valid)),
        ("Ntotal", RObject::integer(total)),
        ("ValidityMessage", RObject::string("VALID ANALYSIS")),
    ]))
}

const QUANTILE_PROBS: [f64; 7] = [0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95];
const QUANTILE_NAMES: [&str; 8] = ["5%", "10%", "25%", "50%", "75%", "90%", "95%", "Mean"];

/// `quantileMeanDS(x)`: the 5…95% quantiles (type 7) and the mean, named; a bare NA when the
/// vector fails isValidDS.
fn quantile_mean_ds(call: &Invocation<'_>) -> Result<RObject, DsError> {
    let x = call.named_object(0, "xvect")?;
    if !is_valid(&x, call.env.settings) {
        return Ok(RObject::logicals(vec![None]));
    }
    if x.is_factor() {
        return Err(DsError::failed("(unordered) factors are not allowed"));
    }
    let Some(values) = numeric_values(&x) else {
        return Err(DsError::failed("non-numeric argument to binary operator"));
    };
    let values: Vec<f64> = values.into_iter().flatten().collect();
    let mut out: Vec<f64> = numeric::quantile7(&values, &QUANTILE_PROBS)
        .into_iter()
        .map(|q| q.unwrap_or_else(na_real))
        .collect();
    out.push(numeric::mean(&values));
    Ok(RObject::doubles(out).with_attr("names", RObject::strings(QUANTILE_NAMES)))
}

/// The grouping values of meanSdGpDS's INDEX: a factor's codes, or the values themselves.
fn group_values(index: &RObject) -> Option<Vec<Option<f64>>> {
    if index.is_factor() {
        let Vector::Integer(codes) = &index.vector else {
            return None;
        };
        return Some(codes.iter().map(|c| c.map(f64::from)).collect());
    }
    numeric_values(index)
}

/// A one-dimensional array with names (R's `array(dim = k, dimnames = list(names))`).
fn array1(
    values: RObject,
    names: &[String],
    dimnames_name: Option<&str>,
) -> Result<RObject, DsError> {
    let mut dimnames = RObject::list(vec![RObject::strings(names.iter().cloned())]);
    if let Some(name) = dimnames_name {
        dimnames.set_attr("names", RObject::string(name));
    }
    Ok(values
        .with_attr("dim", RObject::integer(r_int(names.len())?))
        .with_attr("dimnames", dimnames))
}

/// `meanSdGpDS(X, INDEX)`: group means, SDs and sizes of X by INDEX over complete cases. When
/// some group has 1..nfilter.tab−1 members only the counts and a warning are returned.
///
/// As in dsBase, the groups are named by INDEX's codes among the complete cases ("1", "2", …),
/// not by a factor's labels, because dsBase binds X and INDEX into a numeric matrix first.
fn mean_sd_gp_ds(call: &Invocation<'_>) -> Result<RObject, DsError> {
    let x = call.named_object(0, "X")?;
    let index = call.named_object(1, "INDEX")?;
    let (Some(xs), Some(groups)) = (numeric_values(&x), group_values(&index)) else {
        return Err(DsError::failed(
            "meanSdGpDS: X must be a numeric vector and INDEX a factor or numeric vector",
        ));
    };
    if xs.len() != groups.len() {
        return Err(DsError::failed("arguments must have same length"));
    }
    let complete: Vec<(f64, f64)> = xs
        .iter()
        .zip(&groups)
        .filter_map(|(x, g)| Some(((*x)?, (*g)? + 0.0))) // + 0.0: −0 and 0 are one group
        .collect();
    let ntotal = r_int(xs.len())?;
    let nvalid = r_int(complete.len())?;
    let nmissing = ntotal - nvalid;
    let mut keys: Vec<f64> = complete.iter().map(|(_, g)| *g).collect();
    keys.sort_by(f64::total_cmp);
    keys.dedup();
    let labels: Vec<String> = keys.iter().map(|k| number_string(*k)).collect();
    let mut members: Vec<Vec<f64>> = vec![Vec::new(); keys.len()];
    for (x, g) in &complete {
        if let Ok(i) = keys.binary_search_by(|k| k.total_cmp(g)) {
            members[i].push(*x);
        }
    }
    let nfilter = call.env.settings.nfilter_tab;
    if members.iter().any(|m| (m.len() as f64) < nfilter) {
        let warning = format!(
            "At least one group has between 1 and {} observations. Please change groups",
            number_string(nfilter - 1.0)
        );
        return Ok(RObject::named_list([
            ("Table_valid", RObject::logical(false)),
            ("Nvalid", RObject::integer(nvalid)),
            ("Nmissing", RObject::integer(nmissing)),
            ("Ntotal", RObject::integer(ntotal)),
            ("Warning", RObject::string(warning)),
        ]));
    }
    let means = members.iter().map(|m| numeric::mean(m)).collect();
    let sds = members
        .iter()
        .map(|m| numeric::var(m).map_or_else(na_real, f64::sqrt))
        .collect();
    let sizes = members
        .iter()
        .map(|m| r_int(m.len()).map(Some))
        .collect::<Result<Vec<_>, _>>()?;
    let group_ids: Vec<String> = (1..=keys.len()).map(|i| i.to_string()).collect();
    Ok(RObject::named_list([
        ("Table_valid", RObject::logical(true)),
        ("Mean_gp", array1(RObject::doubles(means), &labels, None)?),
        ("StDev_gp", array1(RObject::doubles(sds), &labels, None)?),
        (
            "N_gp",
            array1(RObject::integers(sizes), &group_ids, Some("group"))?
                .with_attr("class", RObject::string("table")),
        ),
        ("Nvalid", RObject::integer(nvalid)),
        ("Nmissing", RObject::integer(nmissing)),
        ("Ntotal", RObject::integer(ntotal)),
        ("Message", RObject::string("All tables valid")),
    ]))
}

/// One variable of corDS/covDS: its name and values.
type Variable = (String, Vec<Option<f64>>);

/// The variables of `as.data.frame(cbind(x.val, y.val))`: a vector is named after dsBase's local
/// variable (`x.val`, `y.val`), a data frame brings its columns.
fn variables_of(
    call: &Invocation<'_>,
    object: &RObject,
    own_name: &str,
) -> Result<Vec<Variable>, DsError> {
    let not_numeric = || {
        DsError::failed(format!(
            "{}: the variables must be numeric vectors or a data frame of them",
            call.function
        ))
    };
    if object.is_data_frame() {
        let Vector::List(columns) = &object.vector else {
            return Err(not_numeric());
        };
        let names = object.names();
        return columns
            .iter()
            .enumerate()
            .map(|(i, column)| {
                let values = numeric_values(column).ok_or_else(not_numeric)?;
                Ok((
                    names
                        .get(i)
                        .map_or_else(|| format!("V{}", i + 1), |n| (*n).to_owned()),
                    values,
                ))
            })
            .collect();
    }
    if object.attr("dim").is_some() || matches!(object.vector, Vector::List(_) | Vector::Null) {
        return Err(not_numeric());
    }
    Ok(vec![(
        own_name.to_owned(),
        numeric_values(object).ok_or_else(not_numeric)?,
    )])
}

/// The variables named by corDS/covDS's `x` and optional `y`, rounded as dsBase's
/// `as.numeric(as.character(...))` rounds them.
fn variables(call: &Invocation<'_>) -> Result<Vec<Variable>, DsError> {
    let x = call.named_object(0, "x")?;
    let mut vars = variables_of(call, &x, "x.val")?;
    let y = match call.arg(1, "y") {
        None => None,
        // `NULL`, or the string "NULL" that dsBase would parse to it.
        Some(crate::language::Expr::Symbol(s) | crate::language::Expr::Str(s)) if s == "NULL" => {
            None
        }
        Some(_) => Some(call.named_object(1, "y")?),
    };
    if let Some(y) = y {
        vars.extend(variables_of(call, &y, "y.val")?);
    }
    let n = vars.first().map_or(0, |(_, v)| v.len());
    if vars.iter().any(|(_, v)| v.len() != n) {
        return Err(DsError::failed(format!(
            "{}: the variables must have the same length",
            call.function
        )));
    }
    for (_, values) in &mut vars {
        values.iter_mut().for_each(|v| *v = v.map(round15));
    }
    Ok(vars)
}

const SATURATION: &str = "ERROR: The ratio of the number of variables over the number of individual-level records exceeds the allowed threshold, there is a possible risk of disclosure";
const BINARY: &str = "ERROR: at least one variable is binary with one category less than the filter threshold for table cell size";

/// nfilter.glm: more variables than nfilter.glm × rows is refused.
fn saturated(call: &Invocation<'_>, vars: &[Variable]) -> bool {
    let rows = vars.first().map_or(0, |(_, v)| v.len());
    vars.len() as f64 > call.env.settings.nfilter_glm * rows as f64
}

/// A binary variable (two distinct values) whose rarer value has fewer than nfilter.tab rows.
fn small_binary(call: &Invocation<'_>, vars: &[Variable]) -> bool {
    vars.iter().any(|(_, values)| {
        let mut distinct: Vec<f64> = values.iter().flatten().copied().collect();
        distinct.sort_by(f64::total_cmp);
        distinct.dedup();
        if distinct.len() != 2 {
            return false;
        }
        distinct
            .iter()
            .map(|d| values.iter().filter(|v| **v == Some(*d)).count())
            .any(|count| (count as f64) < call.env.settings.nfilter_tab)
    })
}

/// An R matrix from column-major cells, with optional row and column names.
fn matrix(
    cells: Vector,
    nrow: usize,
    ncol: usize,
    rows: Option<&[String]>,
    cols: Option<&[String]>,
) -> Result<RObject, DsError> {
    let mut m = RObject::new(cells).with_attr(
        "dim",
        RObject::integers(vec![Some(r_int(nrow)?), Some(r_int(ncol)?)]),
    );
    if rows.is_some() || cols.is_some() {
        let names = |n: Option<&[String]>| {
            n.map_or_else(RObject::null, |n| RObject::strings(n.iter().cloned()))
        };
        m.set_attr("dimnames", RObject::list(vec![names(rows), names(cols)]));
    }
    Ok(m)
}

fn na_matrix(
    nrow: usize,
    ncol: usize,
    rows: Option<&[String]>,
    cols: Option<&[String]>,
) -> Result<RObject, DsError> {
    matrix(
        Vector::Logical(vec![None; nrow * ncol]),
        nrow,
        ncol,
        rows,
        cols,
    )
}

fn doubles(cells: Vec<f64>) -> Vector {
    Vector::Double(cells)
}

fn integers(cells: Vec<usize>) -> Result<Vector, DsError> {
    Ok(Vector::Integer(
        cells
            .into_iter()
            .map(|c| r_int(c).map(Some))
            .collect::<Result<_, _>>()?,
    ))
}

/// Rows complete in every variable.
fn casewise(vars: &[Variable]) -> Vec<Vec<f64>> {
    let rows = vars.first().map_or(0, |(_, v)| v.len());
    let complete: Vec<usize> = (0..rows)
        .filter(|r| vars.iter().all(|(_, v)| v[*r].is_some()))
        .collect();
    vars.iter()
        .map(|(_, v)| complete.iter().filter_map(|r| v[*r]).collect())
        .collect()
}

fn column_nas(vars: &[Variable], names: &[String]) -> Result<RObject, DsError> {
    let counts = vars
        .iter()
        .map(|(_, v)| v.iter().filter(|x| x.is_none()).count())
        .collect();
    matrix(integers(counts)?, 1, vars.len(), None, Some(names))
}

/// `corDS("x", "y")`: sums of products, sums, complete counts, NA counts and sums of squares
/// over the complete cases; refused for saturation (nfilter.glm) and small binary variables.
fn cor_ds(call: &Invocation<'_>) -> Result<RObject, DsError> {
    let vars = variables(call)?;
    if saturated(call, &vars) {
        // dsBase's message carries its source line break and indentation.
        return Err(DsError::disclosure(
            "nfilter.glm",
            SATURATION.replace(
                "individual-level records",
                "individual-level\n                          records",
            ),
        ));
    }
    if small_binary(call, &vars) {
        return Err(DsError::disclosure("nfilter.tab", BINARY));
    }
    let names: Vec<String> = vars.iter().map(|(n, _)| n.clone()).collect();
    let n = vars.len();
    let complete = casewise(&vars);
    let rows = complete.first().map_or(0, Vec::len);
    let dropped = vars.first().map_or(0, |(_, v)| v.len()) - rows;
    let products: Vec<f64> = (0..n)
        .flat_map(|p| (0..n).map(move |m| (m, p)))
        .map(|(m, p)| numeric::sum(complete[m].iter().zip(&complete[p]).map(|(a, b)| a * b)))
        .collect();
    let sums: Vec<f64> = (0..n)
        .flat_map(|_| (0..n).map(|m| numeric::sum(complete[m].iter().copied())))
        .collect();
    let squares: Vec<f64> = (0..n)
        .flat_map(|_| (0..n).map(|m| numeric::sum(complete[m].iter().map(|a| a * a))))
        .collect();
    let na_counts = RObject::named_list([
        ("Number of NAs in each column", column_nas(&vars, &names)?),
        (
            "Number of NAs casewise",
            matrix(
                integers(vec![dropped; n * n])?,
                n,
                n,
                Some(&names),
                Some(&names),
            )?,
        ),
    ]);
    Ok(RObject::named_list([
        (
            "sums.of.products",
            matrix(doubles(products), n, n, Some(&names), Some(&names))?,
        ),
        (
            "sums",
            matrix(doubles(sums), n, n, Some(&names), Some(&names))?,
        ),
        (
            "complete.counts",
            matrix(
                integers(vec![rows; n * n])?,
                n,
                n,
                Some(&names),
                Some(&names),
            )?,
        ),
        ("na.counts", na_counts),
        (
            "sums.of.squares",
            matrix(doubles(squares), n, n, Some(&names), Some(&names))?,
        ),
    ]))
}

/// `covDS("x", "y", use)`: as corDS, casewise or pairwise; a disclosure failure does not stop
/// but returns every matrix as NA with the reason in `errorMessage`.
fn cov_ds(call: &Invocation<'_>) -> Result<RObject, DsError> {
    let vars = variables(call)?;
    let use_ = call.string(2, "use")?;
    let pairwise = match use_.as_str() {
        "casewise.complete" => false,
        "pairwise.complete" => true,
        _ => {
            return Err(DsError::failed(
                "covDS: use must be 'casewise.complete' or 'pairwise.complete'",
            ));
        }
    };
    let names: Vec<String> = vars.iter().map(|(n, _)| n.clone()).collect();
    let names = names.as_slice();
    let n = vars.len();
    let second_na_name = if pairwise {
        "Number of NAs pairwise"
    } else {
        "Number of NAs casewise"
    };
    let refusal = if saturated(call, &vars) {
        Some(SATURATION)
    } else if small_binary(call, &vars) {
        Some(BINARY)
    } else {
        None
    };
    if let Some(message) = refusal {
        let second = if pairwise {
            na_matrix(n, n, Some(names), Some(names))?
        } else {
            na_matrix(1, 1, None, None)?
        };
        let sums = if pairwise {
            na_matrix(n, n, Some(names), None)?
        } else {
            na_matrix(n, 1, Some(names), None)?
        };
        return Ok(RObject::named_list([
            (
                "sums.of.products",
                na_matrix(n, n, Some(names), Some(names))?,
            ),
            ("sums", sums),
            (
                "complete.counts",
                na_matrix(n, n, Some(names), Some(names))?,
            ),
            (
                "na.counts",
                RObject::named_list([
                    (
                        "Number of NAs in each column",
                        na_matrix(1, n, None, Some(names))?,
                    ),
                    (second_na_name, second),
                ]),
            ),
            ("errorMessage", RObject::string(message)),
        ]));
    }
    let total = vars.first().map_or(0, |(_, v)| v.len());
    let (products, sums, counts, second) = if pairwise {
        // Each pair (m, p) over the rows where both are present.
        let pair = |m: usize, p: usize| -> Vec<(f64, f64)> {
            vars[m]
                .1
                .iter()
                .zip(&vars[p].1)
                .filter_map(|(a, b)| Some(((*a)?, (*b)?)))
                .collect()
        };
        let cells: Vec<(usize, usize)> = (0..n).flat_map(|p| (0..n).map(move |m| (m, p))).collect();
        let pairs: Vec<Vec<(f64, f64)>> = cells.iter().map(|(m, p)| pair(*m, *p)).collect();
        let products = pairs
            .iter()
            .map(|v| numeric::sum(v.iter().map(|(a, b)| a * b)))
            .collect();
        let sums = pairs
            .iter()
            .map(|v| numeric::sum(v.iter().map(|(a, _)| *a)))
            .collect();
        let counts: Vec<usize> = pairs.iter().map(Vec::len).collect();
        let nas = counts.iter().map(|c| total - c).collect();
        (
            matrix(doubles(products), n, n, Some(names), Some(names))?,
            matrix(doubles(sums), n, n, Some(names), Some(names))?,
            matrix(integers(counts)?, n, n, Some(names), Some(names))?,
            matrix(integers(nas)?, n, n, Some(names), Some(names))?,
        )
    } else {
        let complete = casewise(&vars);
        let rows = complete.first().map_or(0, Vec::len);
        let products = (0..n)
            .flat_map(|p| (0..n).map(move |m| (m, p)))
            .map(|(m, p)| numeric::sum(complete[m].iter().zip(&complete[p]).map(|(a, b)| a * b)))
            .collect();
        let sums = (0..n)
            .map(|m| numeric::sum(complete[m].iter().copied()))
            .collect();
        (
            matrix(doubles(products), n, n, Some(names), Some(names))?,
            matrix(doubles(sums), n, 1, Some(names), None)?,
            matrix(integers(vec![rows; n * n])?, n, n, Some(names), Some(names))?,
            matrix(integers(vec![total - rows])?, 1, 1, None, None)?,
        )
    };
    Ok(RObject::named_list([
        ("sums.of.products", products),
        ("sums", sums),
        ("complete.counts", counts),
        (
            "na.counts",
            RObject::named_list([
                ("Number of NAs in each column", column_nas(&vars, names)?),
                (second_na_name, second),
            ]),
        ),
        ("errorMessage", RObject::logicals(vec![None])),
    ]))
}
