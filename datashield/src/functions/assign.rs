//! Data management: factors (asFactorDS1/2), numbers (asNumericDS), complete cases
//! (completeCasesDS), row subsets of a data frame (dataFrameSubsetDS1/2) and removing objects
//! (rmDS), with dsBase's disclosure rules. dsBase was read for behaviour only.
//!
//! An assign function returns the value that the session stores under the client's name; the
//! aggregate halves (asFactorDS1, dataFrameSubsetDS1) return what the client sees.

use crate::error::DsError;
use crate::eval::{Invocation, Method, Symbols};
use crate::functions::formula::sort_levels;
use crate::functions::numeric::number_string;
use crate::language::Expr;
use crate::settings::{DisclosureSettings, PrivacyControlLevel};
use crate::value::{RObject, Vector, is_na_real, na_real};

pub fn methods() -> Vec<Method> {
    vec![
        Method::aggregate("asFactorDS1", as_factor_ds1),
        Method::assign("asFactorDS2", as_factor_ds2),
        Method::assign("asNumericDS", as_numeric_ds),
        Method::assign("completeCasesDS", complete_cases_ds),
        Method::aggregate("dataFrameSubsetDS1", data_frame_subset_ds1),
        Method::assign("dataFrameSubsetDS2", data_frame_subset_ds2),
        Method::aggregate("rmDS", rm_ds_builtin),
    ]
}

// ---- R's conversions ---------------------------------------------------------------------------

/// R's `as.numeric()` of one string: surrounding white space allowed, NA when not a number.
fn parse_r_number(s: &str) -> Option<f64> {
    let t = s.trim();
    match t {
        "NA" | "" => None,
        "Inf" | "inf" | "+Inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => {
            let (negative, body) = match t.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, t.strip_prefix('+').unwrap_or(t)),
            };
            let value =
                if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
                    u64::from_str_radix(hex, 16).ok().map(|v| v as f64)
                } else if body
                    .chars()
                    .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
                {
                    body.parse::<f64>().ok()
                } else {
                    None
                };
            value.map(|v| if negative { -v } else { v })
        }
    }
}

/// R's `as.character()` of an atomic vector or factor (`None` is NA); `None` for lists.
fn as_character(x: &RObject) -> Option<Vec<Option<String>>> {
    if x.is_factor() {
        let levels = x.levels();
        let Vector::Integer(codes) = &x.vector else {
            return None;
        };
        return Some(
            codes
                .iter()
                .map(|c| {
                    c.and_then(|c| usize::try_from(c).ok()?.checked_sub(1))
                        .and_then(|i| levels.get(i))
                        .map(|s| (*s).to_owned())
                })
                .collect(),
        );
    }
    match &x.vector {
        Vector::Null => Some(Vec::new()),
        Vector::Logical(v) => Some(
            v.iter()
                .map(|b| b.map(|b| if b { "TRUE".into() } else { "FALSE".into() }))
                .collect(),
        ),
        Vector::Integer(v) => Some(v.iter().map(|i| i.map(|i| i.to_string())).collect()),
        Vector::Double(v) => Some(
            v.iter()
                .map(|d| {
                    if is_na_real(*d) {
                        None
                    } else {
                        Some(number_string(*d))
                    }
                })
                .collect(),
        ),
        Vector::Character(v) => Some(v.clone()),
        Vector::List(_) => None,
    }
}

/// `levels(factor(x))`: a factor's used levels in order; numbers sorted numerically, then as
/// text; strings in byte order (R's C locale).
fn factor_levels(x: &RObject) -> Result<Vec<String>, DsError> {
    if x.is_factor() {
        let Some(labels) = as_character(x) else {
            return Err(DsError::failed("invalid factor"));
        };
        return Ok(x
            .levels()
            .into_iter()
            .filter(|l| labels.iter().flatten().any(|s| s == l))
            .map(str::to_owned)
            .collect());
    }
    match &x.vector {
        Vector::Integer(_) | Vector::Double(_) | Vector::Logical(_) => {
            let mut values: Vec<f64> = x
                .as_doubles()
                .unwrap_or_default()
                .into_iter()
                .flatten()
                .collect();
            values.sort_by(f64::total_cmp);
            values.dedup();
            let logical = matches!(x.vector, Vector::Logical(_));
            let mut levels: Vec<String> = Vec::new();
            for v in values {
                let label = if logical {
                    (if v == 1.0 { "TRUE" } else { "FALSE" }).to_owned()
                } else {
                    number_string(v)
                };
                if !levels.contains(&label) {
                    levels.push(label);
                }
            }
            Ok(levels)
        }
        Vector::Character(v) => Ok(sort_levels(v.iter().flatten().cloned().collect())),
        Vector::Null => Ok(Vec::new()),
        Vector::List(_) => Err(DsError::failed(
            "'x' must be atomic for 'sort.list'; have you called 'sort' on a list?",
        )),
    }
}

fn check_privacy_level(settings: &DisclosureSettings) -> Result<(), DsError> {
    match settings.privacy_control_level {
        PrivacyControlLevel::Permissive | PrivacyControlLevel::Banana => Ok(()),
        PrivacyControlLevel::Avocado => Err(DsError::disclosure(
            "datashield.privacyControlLevel",
            "BLOCKED: The server is running in 'non-permissive' mode which has caused this method to be blocked",
        )),
    }
}

/// A string argument (`'D$age'`); `None` when absent or `NULL`.
fn string_arg(
    call: &Invocation<'_>,
    position: usize,
    name: &str,
) -> Result<Option<String>, DsError> {
    match call.arg(position, name) {
        None => Ok(None),
        Some(Expr::Symbol(s)) if s == "NULL" => Ok(None),
        Some(Expr::Str(s)) => Ok(Some(s.clone())),
        Some(other) => {
            let value = call.env.evaluate(other)?;
            match value.str_values().as_slice() {
                [s] => Ok(Some((*s).to_owned())),
                _ => Err(DsError::failed(format!(
                    "{}: the argument '{name}' must be a string",
                    call.function
                ))),
            }
        }
    }
}

/// A logical argument (`TRUE`, `FALSE`, `T`, `F`, or the strings), `default` when absent or NULL.
fn logical_arg(
    call: &Invocation<'_>,
    position: usize,
    name: &str,
    default: bool,
) -> Result<bool, DsError> {
    match call.arg(position, name) {
        None => Ok(default),
        Some(Expr::Symbol(s) | Expr::Str(s))
            if matches!(s.as_str(), "TRUE" | "T" | "true" | "True") =>
        {
            Ok(true)
        }
        Some(Expr::Symbol(s) | Expr::Str(s))
            if matches!(s.as_str(), "FALSE" | "F" | "false" | "False") =>
        {
            Ok(false)
        }
        Some(Expr::Symbol(s)) if s == "NULL" => Ok(default),
        Some(other) => match call.env.evaluate(other)?.as_doubles().as_deref() {
            Some([Some(x)]) => Ok(*x != 0.0),
            _ => Err(DsError::failed("argument is not interpretable as logical")),
        },
    }
}

// ---- asFactorDS1 / asFactorDS2 -----------------------------------------------------------------

/// `asFactorDS1("x")`: the levels present, refused when there are more than
/// `nfilter.levels.max`, or more than `nfilter.levels.density × length(x)`.
fn as_factor_ds1(call: &Invocation<'_>) -> Result<RObject, DsError> {
    let settings = call.env.settings;
    let x = call.named_object(0, "input.var.name")?;
    let levels = factor_levels(&x)?;
    let n = levels.len();
    if n as f64 > settings.nfilter_levels_max {
        return Err(DsError::disclosure(
            "nfilter.levels.max",
            format!(
                "FAILED: this variable has too many levels and may be disclosive. It exceeds the max number of levels allowed by nfilter.levels.max: that is {}. In this study this variable has {n} factor levels",
                number_string(settings.nfilter_levels_max)
            ),
        ));
    }
    let by_density = settings.nfilter_levels_density * x.len() as f64;
    if n as f64 > by_density {
        return Err(DsError::disclosure(
            "nfilter.levels.density",
            format!(
                "FAILED: this variable has too many levels and may be disclosive. The number of factor levels must not exceed {}% of the length of the variable being converted to a factor. The max number of levels in this study is therefore {} but this variable has {n} factor levels",
                number_string(settings.nfilter_levels_density * 100.0),
                number_string(by_density)
            ),
        ));
    }
    Ok(RObject::strings(levels))
}

/// `asFactorDS2("x", "l1,l2,…", fixed.dummy.vars, baseline.level)`: `factor(x, levels=…)`, or
/// the indicator matrix `DV<level>` without the baseline level's column.
fn as_factor_ds2(call: &Invocation<'_>) -> Result<RObject, DsError> {
    let x = call.named_object(0, "input.var.name")?;
    let text = string_arg(call, 1, "all.unique.levels.transmit")?.ok_or_else(|| {
        DsError::failed("asFactorDS2: argument \"all.unique.levels.transmit\" is missing")
    })?;
    let levels = split_like_strsplit(&text);
    for (i, level) in levels.iter().enumerate() {
        if levels[..i].contains(level) {
            return Err(DsError::failed(format!(
                "factor level [{}] is duplicated",
                i + 1
            )));
        }
    }
    let labels = as_character(&x)
        .ok_or_else(|| DsError::failed("asFactorDS2: the input must be a vector or factor"))?;
    // dsBase compares fixed.dummy.vars with FALSE and fails when it is NULL; absent means FALSE here.
    if !logical_arg(call, 2, "fixed.dummy.vars", false)? {
        let codes = labels
            .iter()
            .map(|l| {
                l.as_ref()
                    .and_then(|l| levels.iter().position(|lv| lv == l))
                    .map(|i| i as i32 + 1)
            })
            .collect();
        return Ok(RObject::factor(codes, levels));
    }
    let baseline = call.number(3, "baseline.level", None)?;
    let n = labels.len();
    let kept: Vec<usize> = (0..levels.len())
        .filter(|&g| (g + 1) as f64 != baseline)
        .collect();
    let column = |g: usize| -> Vec<f64> {
        labels
            .iter()
            .map(|l| {
                l.as_ref()
                    .map_or(na_real(), |l| if *l == levels[g] { 1.0 } else { 0.0 })
            })
            .collect()
    };
    if kept.len() == 1 {
        // R's `m[, j]` with one column left drops to a vector.
        return Ok(RObject::doubles(column(kept[0])));
    }
    let data: Vec<f64> = kept.iter().flat_map(|&g| column(g)).collect();
    let names = RObject::strings(kept.iter().map(|&g| format!("DV{}", levels[g])));
    Ok(RObject::matrix(data, n, kept.len())
        .with_attr("dimnames", RObject::list(vec![RObject::null(), names])))
}

/// R's `strsplit(s, ",")[[1]]`: a trailing empty piece is dropped, others kept.
fn split_like_strsplit(s: &str) -> Vec<String> {
    let mut parts: Vec<String> = s.split(',').map(str::to_owned).collect();
    if parts.last().is_some_and(String::is_empty) {
        parts.pop();
    }
    parts
}

// ---- asNumericDS ------------------------------------------------------------------------------

/// `asNumericDS("x")`: `as.numeric(as.character(x))`, so a factor gives the numbers its labels
/// spell (not its codes) and a logical gives NA, as in dsBase.
fn as_numeric_ds(call: &Invocation<'_>) -> Result<RObject, DsError> {
    if !matches!(call.arg(0, "x.name"), Some(Expr::Str(_))) {
        return Ok(RObject::named_list([(
            "studysideMessage",
            RObject::string("ERROR: x.name must be specified as a character string"),
        )]));
    }
    let x = call.named_object(0, "x.name")?;
    let text = as_character(&x)
        .ok_or_else(|| DsError::failed("asNumericDS: x.name must name a vector or factor"))?;
    Ok(RObject::doubles(
        text.iter()
            .map(|s| {
                s.as_deref()
                    .and_then(parse_r_number)
                    .unwrap_or_else(na_real)
            })
            .collect(),
    ))
}

// ---- completeCasesDS --------------------------------------------------------------------------

/// dsBase's screen of a string it is about to evaluate: no `=` anywhere next to anything, no
/// `<-`, no `:;`.
fn looks_like_code(s: &str) -> bool {
    let c: Vec<char> = s.chars().filter(|&ch| ch != ',').collect();
    if c.len() == 1 {
        return c[0] == '=' || c[0] == '<';
    }
    c.windows(2).any(|w| {
        w[0] == '=' || w[1] == '=' || (w[0] == '<' && w[1] == '-') || (w[0] == ':' && w[1] == ';')
    })
}

/// `completeCasesDS("x")`: the rows (or elements) of `x` with no missing value.
fn complete_cases_ds(call: &Invocation<'_>) -> Result<RObject, DsError> {
    let name = string_arg(call, 0, "x1.transmit")?.ok_or_else(|| {
        DsError::failed("completeCasesDS: argument \"x1.transmit\" is missing, with no default")
    })?;
    if looks_like_code(&name) {
        return Err(DsError::failed(
            "FAILED: the object addressed by the x1.transmit argument is of an inappropriate class or it contains characters that could indicate malicious code. Where possible, please use standard alphanumerics in the elements of the clientside scalar/vector, or the name of the serverside scalar/vector, that is addressed by the x1.transmit argument. As a minimum you MUST avoid '=' and '<' as characters",
        ));
    }
    let x = call.lookup_path(&name)?;
    let wrong_class = || {
        DsError::failed(
            "FAILED: is x1 of wrong class. x1 argument must be a character string defining a serverside matrix, data.frame or vector",
        )
    };
    if x.is_data_frame() {
        let Vector::List(columns) = &x.vector else {
            return Err(wrong_class());
        };
        let nrow = x.nrow().unwrap_or(0);
        let rows: Vec<usize> = (0..nrow)
            .filter(|&r| columns.iter().all(|c| !element_is_na(c, r)))
            .collect();
        return Ok(data_frame_rows(&x, &rows));
    }
    if let Some(dim) = x.dim().filter(|d| d.len() == 2) {
        let (nrow, ncol) = (dim[0], dim[1]);
        let rows: Vec<usize> = (0..nrow)
            .filter(|&r| (0..ncol).all(|c| !element_is_na(&x, r + c * nrow)))
            .collect();
        return matrix_rows(&x, &rows, nrow, ncol);
    }
    if matches!(x.vector, Vector::List(_) | Vector::Null) && !matches!(x.vector, Vector::Null) {
        return Err(wrong_class());
    }
    let keep: Vec<usize> = (0..x.len()).filter(|&i| !element_is_na(&x, i)).collect();
    Ok(vector_elements(&x, &keep))
}

fn element_is_na(x: &RObject, i: usize) -> bool {
    match &x.vector {
        Vector::Null => false,
        Vector::Logical(v) => v.get(i).is_some_and(Option::is_none),
        Vector::Integer(v) => v.get(i).is_some_and(Option::is_none),
        Vector::Double(v) => v.get(i).is_some_and(|d| d.is_nan()),
        Vector::Character(v) => v.get(i).is_some_and(Option::is_none),
        // A list column counts as missing only if the element is an atomic NA of length one.
        Vector::List(v) => v
            .get(i)
            .is_some_and(|e| e.len() == 1 && element_is_na(e, 0)),
    }
}

fn pick<T: Clone>(v: &[T], keep: &[usize]) -> Vec<T> {
    keep.iter().filter_map(|&i| v.get(i).cloned()).collect()
}

fn pick_vector(v: &Vector, keep: &[usize]) -> Vector {
    match v {
        Vector::Null => Vector::Null,
        Vector::Logical(x) => Vector::Logical(pick(x, keep)),
        Vector::Integer(x) => Vector::Integer(pick(x, keep)),
        Vector::Double(x) => Vector::Double(pick(x, keep)),
        Vector::Character(x) => Vector::Character(pick(x, keep)),
        Vector::List(x) => Vector::List(pick(x, keep)),
    }
}

/// `x[keep]` for a vector or factor: names follow, other attributes (levels, class) stay.
fn vector_elements(x: &RObject, keep: &[usize]) -> RObject {
    let mut out = RObject::new(pick_vector(&x.vector, keep));
    for (name, value) in &x.attributes {
        match name.as_str() {
            "names" => out.set_attr("names", RObject::new(pick_vector(&value.vector, keep))),
            "levels" | "class" | "contrasts" => out.set_attr(name, value.clone()),
            _ => {}
        }
    }
    out
}

/// The row names of a data frame as R's `[` keeps them: automatic ones become the kept rows'
/// numbers; explicit ones are subset.
fn subset_row_names(x: &RObject, rows: &[usize]) -> RObject {
    match x.attr("row.names").map(|r| &r.vector) {
        Some(Vector::Integer(v)) if !(v.len() == 2 && v[0].is_none()) => {
            RObject::integers(pick(v, rows))
        }
        Some(Vector::Character(v)) => RObject::new(Vector::Character(pick(v, rows))),
        _ => RObject::integers(rows.iter().map(|&r| i32::try_from(r + 1).ok()).collect()),
    }
}

/// `df[rows, ]`; a one-column data frame drops to its column, as R's `[` does.
fn data_frame_rows(x: &RObject, rows: &[usize]) -> RObject {
    let Vector::List(columns) = &x.vector else {
        return x.clone();
    };
    let picked: Vec<RObject> = columns.iter().map(|c| vector_elements(c, rows)).collect();
    if picked.len() == 1 {
        return picked.into_iter().next().unwrap_or_else(RObject::null);
    }
    RObject::new(Vector::List(picked))
        .with_attr(
            "names",
            x.attr("names").cloned().unwrap_or_else(RObject::null),
        )
        .with_attr("row.names", subset_row_names(x, rows))
        .with_attr("class", RObject::string("data.frame"))
}

/// `m[rows, ]` for a matrix; R's `[` drops a dimension of extent one.
fn matrix_rows(x: &RObject, rows: &[usize], nrow: usize, ncol: usize) -> Result<RObject, DsError> {
    let index: Vec<usize> = (0..ncol)
        .flat_map(|c| rows.iter().map(move |&r| r + c * nrow))
        .collect();
    let data = pick_vector(&x.vector, &index);
    let dimnames = x.attr("dimnames").and_then(|d| match &d.vector {
        Vector::List(parts) if parts.len() == 2 => Some((parts[0].clone(), parts[1].clone())),
        _ => None,
    });
    if rows.len() == 1 || ncol == 1 {
        let mut out = RObject::new(data);
        if let Some((row_names, col_names)) = dimnames {
            let names = if ncol == 1 && rows.len() != 1 {
                (!matches!(row_names.vector, Vector::Null))
                    .then(|| RObject::new(pick_vector(&row_names.vector, rows)))
            } else {
                (!matches!(col_names.vector, Vector::Null)).then_some(col_names)
            };
            if let Some(names) = names {
                out.set_attr("names", names);
            }
        }
        return Ok(out);
    }
    let dim = |n: usize| i32::try_from(n).map_err(|_| DsError::failed("too many rows"));
    let mut out = RObject::new(data).with_attr(
        "dim",
        RObject::integers(vec![Some(dim(rows.len())?), Some(dim(ncol)?)]),
    );
    if let Some((row_names, col_names)) = dimnames {
        let row_names = if matches!(row_names.vector, Vector::Null) {
            row_names
        } else {
            RObject::new(pick_vector(&row_names.vector, rows))
        };
        out.set_attr("dimnames", RObject::list(vec![row_names, col_names]));
    }
    Ok(out)
}

// ---- dataFrameSubsetDS1 / dataFrameSubsetDS2 ---------------------------------------------------

/// The ten lines dsBase returns when a subset differs from its data frame by fewer than
/// `nfilter.subset` rows (a possible differencing attack); the request is also flagged.
const DIFFERENCE_WARNING: [&str; 10] = [
    "Warning: DataSHIELD monitors every session for potentially disclosive analytic requests.",
    "The analysis you just submitted has generated a subset in which the number of elements",
    "differs - but only very slightly so - from the original data frame. This is most likely to be",
    "an innocent consequence of your subsetting needs. However, it could in theory be one step",
    "in a difference-based attack aimed at identifying individuals. This analytic request has",
    "therefore been highlighted in the session log file. Please be reassured, if you do not try",
    "to identify individuals this will cause you no difficulty. However, if you do plan a ",
    "malicious attempt to identify individuals by differencing, this will become obvious in the",
    "session log and you will be sanctioned. Possible consequences include loss of future access",
    "to DataSHIELD and/or legal penalties.",
];

/// The comparison codes of `Boolean.operator.n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Comparison {
    Equal,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

impl Comparison {
    fn from_code(code: f64) -> Option<Comparison> {
        Some(match code {
            1.0 => Comparison::Equal,
            2.0 => Comparison::NotEqual,
            3.0 => Comparison::Less,
            4.0 => Comparison::LessOrEqual,
            5.0 => Comparison::Greater,
            6.0 => Comparison::GreaterOrEqual,
            _ => return None,
        })
    }

    fn holds(self, ordering: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Comparison::Equal => ordering == Equal,
            Comparison::NotEqual => ordering != Equal,
            Comparison::Less => ordering == Less,
            Comparison::LessOrEqual => ordering != Greater,
            Comparison::Greater => ordering == Greater,
            Comparison::GreaterOrEqual => ordering != Less,
        }
    }
}

/// One side of a comparison: numbers compare as numbers; otherwise both sides are compared as
/// text (as R coerces), and a factor only for (in)equality (R gives NA otherwise).
struct Operand {
    numbers: Option<Vec<Option<f64>>>,
    text: Vec<Option<String>>,
    factor: bool,
}

impl Operand {
    fn new(x: &RObject) -> Result<Operand, DsError> {
        let text = as_character(x)
            .ok_or_else(|| DsError::failed("comparison is possible only for atomic types"))?;
        let numbers = if x.is_factor() || matches!(x.vector, Vector::Character(_)) {
            None
        } else {
            x.as_doubles()
        };
        Ok(Operand {
            numbers,
            text,
            factor: x.is_factor(),
        })
    }

    fn len(&self) -> usize {
        self.text.len()
    }

    fn compare(&self, i: usize, other: &Operand, j: usize, op: Comparison) -> Option<bool> {
        if let (Some(a), Some(b)) = (&self.numbers, &other.numbers) {
            let (a, b) = ((*a.get(i)?)?, (*b.get(j)?)?);
            return a.partial_cmp(&b).map(|o| op.holds(o));
        }
        if (self.factor || other.factor) && !matches!(op, Comparison::Equal | Comparison::NotEqual)
        {
            return None;
        }
        let (a, b) = (self.text.get(i)?.as_ref()?, other.text.get(j)?.as_ref()?);
        Some(op.holds(a.as_bytes().cmp(b.as_bytes())))
    }
}

/// What dataFrameSubsetDS1 and DS2 share: the argument checks and the rows kept.
struct Subset {
    frame: RObject,
    rows: Vec<usize>,
    keep_cols: Option<Vec<f64>>,
    rm_cols: Option<Vec<f64>>,
}

fn column_numbers(
    call: &Invocation<'_>,
    position: usize,
    name: &str,
) -> Result<Option<Vec<f64>>, DsError> {
    let numbers = match call.arg(position, name) {
        None => return Ok(None),
        Some(Expr::Symbol(s)) if s == "NULL" => return Ok(None),
        Some(Expr::Str(text)) => split_like_strsplit(text)
            .iter()
            .map(|s| parse_r_number(s))
            .collect::<Option<Vec<f64>>>(),
        Some(other) => call
            .env
            .evaluate(other)?
            .as_doubles()
            .and_then(|v| v.into_iter().collect()),
    };
    numbers.map(Some).ok_or_else(|| {
        DsError::failed(format!(
            "FAILED: {name} argument contains non-numerics (disclosure risk)"
        ))
    })
}

/// V1 or V2: a number written as text, a logical, or an object's name.
fn operand(call: &Invocation<'_>, text: &str) -> Result<RObject, DsError> {
    match text {
        "TRUE" | "T" => Ok(RObject::logical(true)),
        "FALSE" | "F" => Ok(RObject::logical(false)),
        _ => match parse_r_number(text).filter(|_| {
            text.trim_start()
                .starts_with(|c: char| c.is_ascii_digit() || matches!(c, '-' | '+' | '.'))
        }) {
            Some(number) => Ok(RObject::double(number)),
            None => call.lookup_path(text),
        },
    }
}

fn subset_rows(call: &Invocation<'_>) -> Result<Subset, DsError> {
    let settings = call.env.settings;
    check_privacy_level(settings)?;
    let keep_cols = column_numbers(call, 4, "keep.cols")?;
    let rm_cols = column_numbers(call, 5, "rm.cols")?;
    let df_name = string_arg(call, 0, "df.name")?;
    let v1_name = string_arg(call, 1, "V1.name")?;
    let v2_name = string_arg(call, 2, "V2.name")?;
    let too_long = |s: &Option<String>| {
        s.as_ref()
            .is_some_and(|s| s.chars().count() as f64 > settings.nfilter_string)
    };
    if too_long(&df_name) {
        return Err(DsError::disclosure(
            "nfilter.string",
            "FAILED: df.name argument > nfilter.string - please shorten",
        ));
    }
    if too_long(&v1_name) {
        return Err(DsError::disclosure(
            "nfilter.string",
            "FAILED: V[i].name argument > nfilter.string - please shorten",
        ));
    }
    if too_long(&v2_name) {
        return Err(DsError::disclosure(
            "nfilter.string",
            "FAILED: V[ii].name argument > nfilter.string - please shorten",
        ));
    }
    let not_a_frame =
        || DsError::failed("FAILED: df.name argument must be character and must name a data.frame");
    let df_name = df_name.ok_or_else(not_a_frame)?;
    let frame = call.lookup_path(&df_name)?;
    if !frame.is_data_frame() {
        return Err(not_a_frame());
    }
    let v1_name = v1_name.ok_or_else(|| DsError::failed("FAILED: V[i].name must be character"))?;
    let v2_name = v2_name.ok_or_else(|| DsError::failed("FAILED: V[ii].name must be character"))?;
    let nrow = frame.nrow().unwrap_or(0);
    let bad_operator =
        || DsError::failed("FAILED: Boolean.operator must be: '==', '!=', '<', '<=', '>' or '>='");
    let (v1, v2, op) = if v1_name == "ONES" || v2_name == "ONES" {
        // "ONES" keeps every row (1 == 1), whatever the operator.
        let ones = RObject::doubles(vec![1.0; nrow]);
        (ones.clone(), ones, Comparison::Equal)
    } else {
        let v1 = operand(call, &v1_name)?;
        let v2 = operand(call, &v2_name)?;
        let code = call
            .number(3, "Boolean.operator.n", None)
            .map_err(|_| bad_operator())?;
        (
            v1,
            v2,
            Comparison::from_code(code).ok_or_else(bad_operator)?,
        )
    };
    let (a, b) = (Operand::new(&v1)?, Operand::new(&v2)?);
    if a.len() != nrow {
        return Err(DsError::failed(
            "FAILED: V[i] must of length equal to column length of df being subsetted",
        ));
    }
    if !(b.len() == a.len() || b.len() == 1) {
        return Err(DsError::failed(
            "FAILED: V[ii] must either be of length one or of length equal to V[i]",
        ));
    }
    let keep_nas = logical_arg(call, 6, "keep.NAs", false)?;
    let rows: Vec<usize> = (0..nrow)
        .filter(|&r| {
            let j = if b.len() == 1 { 0 } else { r };
            a.compare(r, &b, j, op).unwrap_or(keep_nas)
        })
        .collect();
    if (rows.len() as f64) < settings.nfilter_subset {
        return Err(DsError::disclosure(
            "nfilter.subset",
            "Subset to be created is too small (<nfilter.subset)",
        ));
    }
    Ok(Subset {
        frame,
        rows,
        keep_cols,
        rm_cols,
    })
}

/// `dataFrameSubsetDS1(df.name, V1.name, V2.name, Boolean.operator.n, keep.cols, rm.cols,
/// keep.NAs)`: checks the subset dataFrameSubsetDS2 would make, and warns when it differs from
/// the data frame by fewer than `nfilter.subset` rows.
fn data_frame_subset_ds1(call: &Invocation<'_>) -> Result<RObject, DsError> {
    let subset = subset_rows(call)?;
    let difference = subset.frame.nrow().unwrap_or(0).abs_diff(subset.rows.len());
    if difference > 0 && (difference as f64) < call.env.settings.nfilter_subset {
        return Ok(RObject::list(
            DIFFERENCE_WARNING
                .iter()
                .map(|s| RObject::string(*s))
                .collect(),
        ));
    }
    Ok(RObject::string("Subsetting undertaken without problems"))
}

/// `dataFrameSubsetDS2(…)`: the subset, with columns kept (`keep.cols`) or removed (`rm.cols`).
fn data_frame_subset_ds2(call: &Invocation<'_>) -> Result<RObject, DsError> {
    let subset = subset_rows(call)?;
    let frame = &subset.frame;
    let ncol = frame.len();
    let columns: Vec<usize> = match (&subset.keep_cols, &subset.rm_cols) {
        (Some(_), Some(_)) => {
            return Err(DsError::failed(
                "You can either specify keep.cols or rm.cols, not both",
            ));
        }
        (Some(keep), None) => {
            let mut out = Vec::new();
            for &k in keep {
                // R's `[` ignores 0; negative (dropping) indices are not supported here.
                if k == 0.0 {
                    continue;
                }
                if k.fract() != 0.0 || k < 1.0 || k as usize > ncol {
                    return Err(DsError::failed("undefined columns selected"));
                }
                out.push(k as usize - 1);
            }
            out
        }
        (None, Some(remove)) => {
            let mut removed = vec![0usize; ncol];
            for &r in remove {
                if r.fract() != 0.0 || r < 1.0 || r as usize > ncol {
                    return Err(DsError::failed("invalid 'times' argument"));
                }
                removed[r as usize - 1] += 1;
            }
            if removed.iter().any(|&n| n > 1) {
                return Err(DsError::failed("invalid 'times' argument"));
            }
            (0..ncol).filter(|&c| removed[c] == 0).collect()
        }
        (None, None) => (0..ncol).collect(),
    };
    let Vector::List(all) = &frame.vector else {
        return Err(DsError::failed("not a data frame"));
    };
    let names = frame.names();
    let selected = RObject::new(Vector::List(
        columns.iter().map(|&c| all[c].clone()).collect(),
    ))
    .with_attr(
        "names",
        RObject::strings(unique_names(
            columns.iter().map(|&c| names.get(c).copied().unwrap_or("")),
        )),
    )
    .with_attr("class", RObject::string("data.frame"))
    .with_attr(
        "row.names",
        frame
            .attr("row.names")
            .cloned()
            .unwrap_or_else(RObject::null),
    );
    Ok(data_frame_rows(&selected, &subset.rows))
}

/// R's `make.unique` of selected column names (a column chosen twice becomes `x`, `x.1`).
fn unique_names<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in names {
        let mut candidate = name.to_owned();
        let mut k = 1;
        while out.contains(&candidate) {
            candidate = format!("{name}.{k}");
            k += 1;
        }
        out.push(candidate);
    }
    out
}

// ---- rmDS -------------------------------------------------------------------------------------

/// What `rmDS` decided: a message to return without touching the session, or names to remove.
#[derive(Debug, Clone)]
pub enum RmPlan {
    Answer(RObject),
    Remove(Vec<String>),
}

/// The checks of `rmDS(x.name.transmit)`: a name longer than `nfilter.stringShort` is refused
/// with a message, a name that does not exist is reported; otherwise the comma-separated names
/// are to be removed.
pub fn rm_ds_plan(symbols: &Symbols, settings: &DisclosureSettings, transmit: &str) -> RmPlan {
    if transmit.chars().count() as f64 > settings.nfilter_string_short {
        return RmPlan::Answer(return_message(vec![format!(
            "Disclosure risk, number of characters in x.name must not exceed nfilter.stringShort which is currently set at: {}",
            number_string(settings.nfilter_string_short)
        )]));
    }
    let names = split_like_strsplit(transmit);
    // R's exists() looks at the first name only.
    if names
        .first()
        .is_none_or(|first| !symbols.contains_key(first))
    {
        return RmPlan::Answer(return_message(
            names.iter().map(|n| format!("Object to be deleted, i.e. <{n}> , does not exist so does not need deleting")).collect(),
        ));
    }
    RmPlan::Remove(names)
}

fn return_message(lines: Vec<String>) -> RObject {
    RObject::named_list([("return.message", RObject::strings(lines))])
}

/// `rmDS(x.name.transmit)`, run by the session with its symbols: removes the objects and answers
/// as dsBase does. rmDS is an aggregate method that changes the session, which a builtin
/// (reading the session only) cannot do, so the session layer must route calls of `rmDS` here.
pub fn rm_ds(symbols: &mut Symbols, settings: &DisclosureSettings, transmit: &str) -> RObject {
    match rm_ds_plan(symbols, settings, transmit) {
        RmPlan::Answer(answer) => answer,
        RmPlan::Remove(names) => {
            for name in &names {
                symbols.remove(name);
            }
            return_message(
                names
                    .iter()
                    .map(|n| format!("Object <{n}> successfully deleted"))
                    .collect(),
            )
        }
    }
}

/// The registered `rmDS`: its refusals are answered here; a removal needs the session's symbols
/// (see [`rm_ds`]), so reaching it here means the session did not route the call.
fn rm_ds_builtin(call: &Invocation<'_>) -> Result<RObject, DsError> {
    let transmit = string_arg(call, 0, "x.name.transmit")?.ok_or_else(|| {
        DsError::failed("rmDS: argument \"x.name.transmit\" is missing, with no default")
    })?;
    match rm_ds_plan(call.env.symbols, call.env.settings, &transmit) {
        RmPlan::Answer(answer) => Ok(answer),
        RmPlan::Remove(_) => Err(DsError::failed(
            "rmDS must be run by the session (functions::assign::rm_ds)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_as_r_prints_them() {
        let cases = [
            (0.1 + 0.2, "0.3"),
            (1e5, "1e+05"),
            (123456.0, "123456"),
            (1e-4, "1e-04"),
            (1e15, "1e+15"),
            (0.33 * 10.0, "3.3"),
            (1.0 / 3.0, "0.333333333333333"),
            (-2.5, "-2.5"),
            (100.0, "100"),
            (0.0, "0"),
        ];
        for (x, s) in cases {
            assert_eq!(number_string(x), s, "{x}");
        }
    }

    #[test]
    fn strings_read_as_r_numbers_or_na() {
        assert_eq!(parse_r_number(" 1.5 "), Some(1.5));
        assert_eq!(parse_r_number("1e+05"), Some(1e5));
        assert_eq!(parse_r_number("0x1A"), Some(26.0));
        assert_eq!(parse_r_number("TRUE"), None);
        assert_eq!(parse_r_number("a"), None);
        assert_eq!(parse_r_number("NA"), None);
    }

    #[test]
    fn the_code_screen_refuses_assignment_and_statement_breaks() {
        assert!(looks_like_code("a=b"));
        assert!(looks_like_code("x<-1"));
        assert!(looks_like_code("D:;x"));
        assert!(looks_like_code("="));
        assert!(!looks_like_code("D$age"));
        assert!(!looks_like_code("D"));
    }

    #[test]
    fn strsplit_drops_only_a_trailing_empty_piece() {
        assert_eq!(split_like_strsplit("a,b,"), vec!["a", "b"]);
        assert_eq!(split_like_strsplit(",a"), vec!["", "a"]);
    }
}
