//! JSON exactly as Opal/Rock write a result for the Python clients:
//! `tryCatch(jsonlite::toJSON(x, auto_unbox = TRUE, null = "null", na = "null", digits = NA),
//!  error = function(e) jsonlite::serializeJSON(x))`.
//!
//! The rules follow jsonlite 1.8's `asJSON` methods (read for behaviour): numbers with C's `%.15g`
//! (`digits = NA`), every missing or non-finite value as `null`, length-1 vectors unboxed, names of
//! atomic vectors dropped, named lists as objects, data frames as arrays of row objects, matrices
//! row-major, factors as their labels. An object of a class jsonlite has no method for (a
//! "histogram", a "table", a "family") makes `toJSON` stop, so the whole result is then
//! `serializeJSON(x)`'s `{"type", "attributes", "value"}` form, with its own number format.

use std::collections::{HashMap, HashSet};

use crate::value::{RObject, Vector, is_na_real};

/// `toJSON` stopped: some (nested) object has a class jsonlite cannot encode, or a data frame's
/// columns do not match its row count.
#[derive(Debug)]
struct NoMethod;

/// The JSON text Opal/Rock would send for `x` (see the module documentation).
pub fn to_json(x: &RObject) -> String {
    as_json(x, true).unwrap_or_else(|NoMethod| serialize_json(x))
}

/// How `asJSON` dispatches on an object (S4 dispatch on its class, then jsonlite's `ANY` method,
/// which drops the first of several classes and tries again, and stops on the last).
enum Kind {
    Null,
    Atomic,
    Factor,
    List,
    DataFrame,
    Array,
    /// `I(x)`: encoded as `x` without the "AsIs" class, and never unboxed when atomic of length 1.
    AsIs,
}

fn kind(x: &RObject) -> Result<Kind, NoMethod> {
    let classes = x.explicit_class();
    for (i, class) in classes.iter().enumerate() {
        let found = match *class {
            "data.frame" => Some(Kind::DataFrame),
            "factor" | "ordered" => Some(Kind::Factor),
            "AsIs" => Some(Kind::AsIs),
            "matrix" | "array" => Some(Kind::Array),
            "list" if matches!(x.vector, Vector::List(_)) => Some(Kind::List),
            "numeric" | "integer" | "double" | "character" | "logical"
                if !matches!(x.vector, Vector::List(_) | Vector::Null) =>
            {
                Some(Kind::Atomic)
            }
            _ => None,
        };
        if let Some(found) = found {
            return Ok(found);
        }
        if i + 1 == classes.len() {
            // "No method asJSON S3 class: …": toJSON stops.
            return Err(NoMethod);
        }
    }
    Ok(match &x.vector {
        Vector::Null => Kind::Null,
        _ if x.attr("dim").is_some() => Kind::Array,
        Vector::List(_) => Kind::List,
        _ => Kind::Atomic,
    })
}

/// `asJSON(x, auto_unbox = unbox, na = "null", digits = NA)`, collapsed to one JSON text.
fn as_json(x: &RObject, unbox: bool) -> Result<String, NoMethod> {
    match kind(x)? {
        Kind::Null => Ok("null".to_owned()),
        Kind::Atomic | Kind::Factor => {
            let items = elements(x)?;
            Ok(if unbox && items.len() == 1 {
                items.into_iter().collect()
            } else {
                array(&items)
            })
        }
        Kind::List => {
            let Vector::List(items) = &x.vector else {
                return Ok("null".to_owned());
            };
            let values = items
                .iter()
                .map(|item| as_json(item, true))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(match x.attr("names") {
                Some(names) => object(&clean_names(names, values.len()), &values),
                None => array(&values),
            })
        }
        Kind::DataFrame => Ok(array(&data_frame_rows(x)?)),
        Kind::Array => array_json(x),
        Kind::AsIs => {
            let inner = without_class(x, "AsIs");
            let atomic_scalar =
                !matches!(inner.vector, Vector::List(_) | Vector::Null) && inner.len() == 1;
            as_json(&inner, unbox && !atomic_scalar)
        }
    }
}

/// `asJSON(x, collapse = FALSE)`: one JSON text per element, as a data frame's column or a
/// matrix's cells need them.
fn elements(x: &RObject) -> Result<Vec<String>, NoMethod> {
    match kind(x)? {
        Kind::Null => Ok(vec!["null".to_owned()]),
        Kind::Factor => Ok(factor_labels(x)
            .iter()
            .map(|label| label.map_or_else(null, escape))
            .collect()),
        Kind::Atomic => Ok(match &x.vector {
            Vector::Null => Vec::new(),
            Vector::Logical(v) => v
                .iter()
                .map(|b| {
                    b.map_or("null", |b| if b { "true" } else { "false" })
                        .to_owned()
                })
                .collect(),
            Vector::Integer(v) => v
                .iter()
                .map(|i| i.map_or_else(null, |i| i.to_string()))
                .collect(),
            Vector::Double(v) => v.iter().map(|d| format_double_15(*d)).collect(),
            Vector::Character(v) => v
                .iter()
                .map(|s| s.as_deref().map_or_else(null, escape))
                .collect(),
            Vector::List(v) => v
                .iter()
                .map(|item| as_json(item, true))
                .collect::<Result<_, _>>()?,
        }),
        Kind::List => {
            let Vector::List(items) = &x.vector else {
                return Ok(Vec::new());
            };
            items.iter().map(|item| as_json(item, true)).collect()
        }
        Kind::DataFrame => data_frame_rows(x),
        Kind::Array => {
            let dim = x.dim().unwrap_or_default();
            let cells = elements(&strip_array(x))?;
            if dim.len() < 2 {
                return Ok(cells);
            }
            if cell_count(&dim) != Some(cells.len()) {
                return Err(NoMethod);
            }
            Ok(nest(&cells, &dim, 0, 0, 1)
                .map(|rows| {
                    rows.into_iter()
                        .map(|row| row.unwrap_or_default())
                        .collect()
                })
                .unwrap_or_default())
        }
        Kind::AsIs => elements(&without_class(x, "AsIs")),
    }
}

fn null() -> String {
    "null".to_owned()
}

/// A matrix or array: row-major nested arrays (`[[row 1], [row 2], …]`); a 1-d array is a plain
/// array, never unboxed.
fn array_json(x: &RObject) -> Result<String, NoMethod> {
    let dim = x.dim().unwrap_or_default();
    let cells = elements(&strip_array(x))?;
    if dim.len() < 2 {
        return Ok(array(&cells));
    }
    if cell_count(&dim) != Some(cells.len()) {
        return Err(NoMethod);
    }
    Ok(nest(&cells, &dim, 0, 0, 1)
        .map(|rows| array(&rows.into_iter().flatten().collect::<Vec<_>>()))
        .unwrap_or_default())
}

/// `prod(dim)`, or `None` if it overflows (R would have refused such a `dim` anyway).
fn cell_count(dim: &[usize]) -> Option<usize> {
    dim.iter().try_fold(1usize, |n, d| n.checked_mul(*d))
}

/// The JSON arrays for the sub-array at `offset` (column-major) from dimension `level` on:
/// index 1 varies slowest in the output, as jsonlite's `row_collapse`/`collapse_array` nest.
fn nest(
    cells: &[String],
    dim: &[usize],
    level: usize,
    offset: usize,
    stride: usize,
) -> Option<Vec<Option<String>>> {
    let n = *dim.get(level)?;
    let inner_stride = stride * n;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let at = offset + i * stride;
        let text = if level + 1 == dim.len() {
            cells.get(at).cloned()?
        } else {
            let inner = nest(cells, dim, level + 1, at, inner_stride)?;
            array(&inner.into_iter().flatten().collect::<Vec<_>>())
        };
        out.push(Some(text));
    }
    Some(out)
}

/// `c(x)` of an array: the cells without `dim`, `dimnames` (or any other attribute).
fn strip_array(x: &RObject) -> RObject {
    let mut bare = RObject::new(x.vector.clone());
    // A factor matrix keeps its labels; other attributes do not matter to the cells.
    if x.is_factor() {
        bare.attributes = x
            .attributes
            .iter()
            .filter(|(k, _)| k == "levels" || k == "class")
            .cloned()
            .collect();
    }
    bare
}

fn without_class(x: &RObject, class: &str) -> RObject {
    let mut out = x.clone();
    let rest: Vec<String> = x
        .explicit_class()
        .into_iter()
        .filter(|c| *c != class)
        .map(str::to_owned)
        .collect();
    out.attributes.retain(|(k, _)| k != "class");
    if !rest.is_empty() {
        out.set_attr("class", RObject::strings(rest));
    }
    out
}

/// `as.character()` of a factor: each code's level, NA for NA or a code outside the levels.
fn factor_labels(x: &RObject) -> Vec<Option<&str>> {
    let levels: Vec<Option<&str>> = match x.attr("levels").map(|l| &l.vector) {
        Some(Vector::Character(v)) => v.iter().map(|s| s.as_deref()).collect(),
        _ => Vec::new(),
    };
    let label = |code: Option<i64>| -> Option<&str> {
        let index = usize::try_from(code? - 1).ok()?;
        levels.get(index).copied().flatten()
    };
    match &x.vector {
        Vector::Integer(v) => v.iter().map(|c| label(c.map(i64::from))).collect(),
        Vector::Double(v) => v
            .iter()
            .map(|d| {
                if d.is_finite() {
                    label(Some(*d as i64))
                } else {
                    None
                }
            })
            .collect(),
        other => vec![None; other.len()],
    }
}

/// A data frame's rows as JSON objects: one member per column, in column order, plus `_row`
/// (last) when the row names are character and not all digits.
fn data_frame_rows(x: &RObject) -> Result<Vec<String>, NoMethod> {
    let Vector::List(columns) = &x.vector else {
        return Err(NoMethod);
    };
    let nrow = x.nrow().unwrap_or(0);
    let mut names: Vec<Option<String>> = match x.attr("names").map(|n| &n.vector) {
        Some(Vector::Character(v)) => v.clone(),
        _ => Vec::new(),
    };
    if names.len() != columns.len() {
        // jsonlite writes rows as arrays then; data frames always have names in practice.
        return Err(NoMethod);
    }
    let mut columns: Vec<RObject> = columns.clone();
    if let Some(RObject {
        vector: Vector::Character(row_names),
        ..
    }) = x.attr("row.names")
    {
        let all_digits = row_names.iter().all(|r| {
            r.as_deref()
                .is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()))
        });
        if !all_digits {
            let column = RObject::new(Vector::Character(row_names.clone()));
            match names.iter().position(|n| n.as_deref() == Some("_row")) {
                Some(i) => columns[i] = column,
                None => {
                    names.push(Some("_row".to_owned()));
                    columns.push(column);
                }
            }
        }
    }
    if nrow == 0 {
        return Ok(Vec::new());
    }
    let keys = clean_names(&RObject::new(Vector::Character(names)), columns.len());
    let mut cells = Vec::with_capacity(columns.len());
    for column in &columns {
        // A named list column is unnamed first (jsonlite's `is.namedlistnotdf`).
        let column = if matches!(column.vector, Vector::List(_))
            && !column.is_data_frame()
            && column.attr("names").is_some()
        {
            let mut c = column.clone();
            c.attributes.retain(|(k, _)| k != "names");
            c
        } else {
            column.clone()
        };
        let values = elements(&column)?;
        if values.len() != nrow {
            return Err(NoMethod);
        }
        cells.push(values);
    }
    Ok((0..nrow)
        .map(|row| {
            let values: Vec<String> = cells.iter().map(|column| column[row].clone()).collect();
            object(&keys, &values)
        })
        .collect())
}

fn array(items: &[String]) -> String {
    format!("[{}]", items.join(","))
}

/// `{key:value,…}` from already-escaped keys.
fn object(keys: &[String], values: &[String]) -> String {
    let members: Vec<String> = keys
        .iter()
        .zip(values)
        .map(|(k, v)| format!("{k}:{v}"))
        .collect();
    format!("{{{}}}", members.join(","))
}

/// jsonlite's `cleannames`: an empty or NA name becomes its position, then `make.unique`; escaped.
fn clean_names(names: &RObject, len: usize) -> Vec<String> {
    let raw: Vec<Option<&str>> = match &names.vector {
        Vector::Character(v) => v.iter().map(|s| s.as_deref()).collect(),
        _ => Vec::new(),
    };
    let filled: Vec<String> = (0..len)
        .map(|i| match raw.get(i).copied().flatten() {
            Some(name) if !name.is_empty() => name.to_owned(),
            _ => (i + 1).to_string(),
        })
        .collect();
    make_unique(filled).iter().map(|n| escape(n)).collect()
}

/// R's `make.unique(names, sep = ".")`: later duplicates get `.1`, `.2`, … skipping any name
/// already taken.
fn make_unique(names: Vec<String>) -> Vec<String> {
    let mut taken: HashSet<String> = names.iter().cloned().collect();
    let mut seen: HashSet<String> = HashSet::new();
    let mut counters: HashMap<String, usize> = HashMap::new();
    names
        .into_iter()
        .map(|name| {
            if seen.insert(name.clone()) {
                return name;
            }
            let counter = counters.entry(name.clone()).or_insert(1);
            loop {
                let candidate = format!("{name}.{counter}");
                *counter += 1;
                if taken.insert(candidate.clone()) {
                    return candidate;
                }
            }
        })
        .collect()
}

/// A JSON string literal as jsonlite's `escape_chars` writes it: `\\ \" \n \r \t \b \f`,
/// `/` only after `<`, other control characters as `\u00xx`; everything else (non-ASCII
/// included) verbatim.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut previous = '\0';
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '/' if previous == '<' => out.push_str("\\/"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
        previous = c;
    }
    out.push('"');
    out
}

/// A double under `digits = NA`: C's `%.15g`, and `null` for NA, NaN and ±Inf.
fn format_double_15(x: f64) -> String {
    if x.is_finite() {
        format_g(x, 15)
    } else {
        null()
    }
}

/// C's `printf("%.{precision}g", x)` for a finite `x`: `precision` significant digits, exponent
/// form when the exponent is below -4 or at least `precision`, trailing zeros removed.
pub(crate) fn format_g(x: f64, precision: usize) -> String {
    let precision = precision.max(1);
    let scientific = format!("{:.*e}", precision - 1, x);
    let (mantissa, exponent) = scientific
        .split_once('e')
        .unwrap_or((scientific.as_str(), "0"));
    let exponent: i64 = exponent.parse().unwrap_or(0);
    let p = i64::try_from(precision).unwrap_or(17);
    if exponent < -4 || exponent >= p {
        let mantissa = trim_fraction(mantissa);
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.unsigned_abs())
    } else {
        let decimals = usize::try_from(p - 1 - exponent).unwrap_or(0);
        trim_fraction(&format!("{x:.decimals$}")).to_owned()
    }
}

/// Drops trailing zeros after a decimal point, and the point itself if nothing follows.
fn trim_fraction(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// `jsonlite::serializeJSON(x)` (digits = 8): `{"type":…,"attributes":{…},"value":[…]}`
/// recursively, with the attributes as `attributes(x)` lists them (compact row names expanded).
pub fn serialize_json(x: &RObject) -> String {
    let Some(value) = packed_value(x) else {
        return "{\"type\":\"NULL\"}".to_owned();
    };
    let attributes: Vec<String> = x
        .attributes
        .iter()
        .map(|(k, a)| serialize_json(&expanded(k, a)))
        .collect();
    let keys: Vec<String> = x
        .attributes
        .iter()
        .map(|(k, _)| k.as_str())
        .map(escape)
        .collect();
    format!(
        "{{\"type\":{},\"attributes\":{},\"value\":{}}}",
        escape(x.vector.type_name()),
        object(&keys, &attributes),
        value
    )
}

/// `attributes(x)` gives compact row names (`c(NA, -n)`) as `1:n`.
fn expanded(name: &str, attribute: &RObject) -> RObject {
    match &attribute.vector {
        Vector::Integer(v) if name == "row.names" && v.len() == 2 && v[0].is_none() => {
            let n = v[1].map_or(0, i32::unsigned_abs);
            RObject::integers((1..=n).map(|i| i32::try_from(i).ok()).collect())
        }
        _ => attribute.clone(),
    }
}

/// The `value` member of the packed form; `None` for NULL, which packs to `{"type":"NULL"}` alone.
fn packed_value(x: &RObject) -> Option<String> {
    let items: Vec<String> = match &x.vector {
        Vector::Null => return None,
        Vector::Logical(v) => v
            .iter()
            .map(|b| {
                b.map_or("null", |b| if b { "true" } else { "false" })
                    .to_owned()
            })
            .collect(),
        Vector::Integer(v) => v
            .iter()
            .map(|i| i.map_or_else(|| "\"NA\"".to_owned(), |i| i.to_string()))
            .collect(),
        Vector::Double(v) => v.iter().map(|d| format_double_8(*d)).collect(),
        Vector::Character(v) => v
            .iter()
            .map(|s| s.as_deref().map_or_else(null, escape))
            .collect(),
        Vector::List(v) => v.iter().map(serialize_json).collect(),
    };
    Some(array(&items))
}

/// A double under `digits = 8` (serializeJSON's default, decimal digits rather than significant):
/// jsonlite's fixed-point writer between 1e-5 and 2^31-1, `%g` with as many significant digits
/// as keep 8 decimals (at most 15 in jsonlite 1.8.4; newer sources say 17, but the installed
/// release, which the tests run, prints 15) elsewhere; non-finite values as the strings R prints.
fn format_double_8(x: f64) -> String {
    const DIGITS: f64 = 8.0;
    if is_na_real(x) {
        return "\"NA\"".to_owned();
    }
    if x.is_nan() {
        return "\"NaN\"".to_owned();
    }
    if x.is_infinite() {
        return if x > 0.0 { "\"Inf\"" } else { "\"-Inf\"" }.to_owned();
    }
    if x.abs() < 2_147_483_647.0 && x.abs() > 1e-5 {
        return fixed_decimals(x, 8);
    }
    let significant = (x.abs().log10().max(1.0) + DIGITS).min(15.0).ceil();
    format_g(x, significant as usize)
}

/// jsonlite's `modp_dtoa2`: at most `precision` decimals for |x| < 2^31-1, with its own rounding
/// (the fraction is scaled in double arithmetic, ties go to an even last digit) and trailing
/// zeros dropped. Reproduced step by step because its results differ from `printf` in the last
/// digit for some inputs.
fn fixed_decimals(x: f64, precision: u32) -> String {
    let scale = f64::from(10u32.pow(precision));
    let negative = x < 0.0;
    let value = x.abs();
    let mut whole = value.trunc() as i64;
    let scaled = (value - whole as f64) * scale;
    let mut frac = scaled as u64;
    let diff = scaled - frac as f64;
    let round_up = diff > 0.5
        || (diff == 0.5 && precision > 0 && frac & 1 == 1)
        || (diff == 0.5 && precision == 0 && whole & 1 == 1);
    if round_up {
        frac += 1;
        if frac as f64 >= scale {
            frac = 0;
            whole += 1;
        }
    }
    let mut count = precision;
    if precision > 0 {
        while count > 0 && frac.is_multiple_of(10) {
            count -= 1;
            frac /= 10;
        }
    }
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    out.push_str(&whole.to_string());
    if count > 0 {
        out.push('.');
        out.push_str(&format!("{frac:0width$}", width = count as usize));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_g_follows_printf() {
        assert_eq!(format_g(1.0, 15), "1");
        assert_eq!(format_g(0.1 + 0.2, 15), "0.3");
        assert_eq!(format_g(1e15, 15), "1e+15");
        assert_eq!(format_g(100000.0, 15), "100000");
        assert_eq!(format_g(1e-300, 15), "1e-300");
        assert_eq!(format_g(0.0001, 15), "0.0001");
        assert_eq!(format_g(0.00001, 15), "1e-05");
        assert_eq!(format_g(-0.0, 15), "-0");
        assert_eq!(format_g(123456789012345678.0, 15), "1.23456789012346e+17");
    }

    #[test]
    fn fixed_decimals_trims_and_rounds() {
        assert_eq!(fixed_decimals(1.5, 8), "1.5");
        assert_eq!(fixed_decimals(2.0, 8), "2");
        assert_eq!(fixed_decimals(-0.25, 8), "-0.25");
        assert_eq!(fixed_decimals(0.05, 8), "0.05");
        assert_eq!(fixed_decimals(1.0 / 3.0, 8), "0.33333333");
        assert_eq!(fixed_decimals(0.999_999_999_9, 8), "1");
    }

    #[test]
    fn escape_follows_jsonlite() {
        assert_eq!(
            escape("a\"b\\c\n\t\u{1}</x/é"),
            "\"a\\\"b\\\\c\\n\\t\\u0001<\\/x/é\""
        );
    }

    #[test]
    fn make_unique_skips_taken_names() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            make_unique(names(&["a", "a", "a.1", "a"])),
            names(&["a", "a.2", "a.1", "a.3"])
        );
    }

    #[test]
    fn malformed_objects_do_not_panic() {
        let dim = |d: Vec<Option<i32>>| RObject::integers(d);
        let odd = [
            // dim that does not match the length, negative, NA, or whose product overflows
            RObject::doubles(vec![1.0, 2.0, 3.0]).with_attr("dim", dim(vec![Some(2), Some(2)])),
            RObject::doubles(vec![1.0]).with_attr("dim", dim(vec![Some(-1), None])),
            RObject::doubles(vec![1.0]).with_attr(
                "dim",
                dim(vec![Some(i32::MAX), Some(i32::MAX), Some(i32::MAX)]),
            ),
            // factor codes outside the levels, and a factor without levels
            RObject::factor(vec![Some(0), Some(5), Some(-3), None], vec!["a".into()]),
            RObject::integers(vec![Some(1)]).with_attr("class", RObject::string("factor")),
            // data frames with missing names, a non-list body, a column too short
            RObject::list(vec![RObject::double(1.0)])
                .with_attr("class", RObject::string("data.frame")),
            RObject::double(1.0).with_attr("class", RObject::string("data.frame")),
            RObject::data_frame([("a", RObject::doubles(vec![1.0]))], 4),
            // a class attribute that is not character, and names that are not
            RObject::double(1.0).with_attr("class", RObject::double(2.0)),
            RObject::list(vec![RObject::null()]).with_attr("names", RObject::double(1.0)),
        ];
        for x in &odd {
            let json = to_json(x);
            assert!(!json.is_empty());
            let _ = serialize_json(x);
        }
        // The short data frame makes toJSON stop, so the result is serializeJSON's form.
        assert!(to_json(&odd[7]).starts_with("{\"type\":\"list\""));
        assert_eq!(to_json(&odd[3]), "[null,null,null,null]");
    }

    #[test]
    fn unknown_class_falls_back_to_serialize_json() {
        let h = RObject::named_list([("a", RObject::double(1.0))])
            .with_attr("class", RObject::string("histogram"));
        assert!(to_json(&h).starts_with("{\"type\":\"list\""));
        let nested = RObject::list(vec![
            RObject::integer(1).with_attr("class", RObject::string("table")),
        ]);
        assert!(to_json(&nested).starts_with("{\"type\":\"list\""));
        let two = RObject::double(1.0).with_attr("class", RObject::strings(["foo", "numeric"]));
        assert_eq!(to_json(&two), "1");
    }
}
