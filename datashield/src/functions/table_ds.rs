//! `tableDS`, the server side of `ds.table`: R's `table()` of one, two or three variables made
//! factors over the levels pooled from all studies (dsBase 6.3's behaviour and rules; read for
//! behaviour only).
//!
//! The rule: with NA left out, no cell may hold 1..nfilter.tab-1 rows. A failing 1-D or 2-D
//! table is answered with dsBase's failure string (the client shows it per study); a failing 3-D
//! table is an error. `force.nfilter` may raise nfilter.tab for the call, never lower it.

use crate::error::DsError;
use crate::eval::{Invocation, Method};
use crate::functions::numeric::number_string;
use crate::language::Expr;
use crate::value::{RObject, Vector};

pub fn methods() -> Vec<Method> {
    vec![Method::aggregate("tableDS", table_ds)]
}

/// The parameters in dsBase's order.
const PARAMS: [&str; 9] = [
    "rvar.transmit",
    "cvar.transmit",
    "stvar.transmit",
    "rvar.all.unique.levels.transmit",
    "cvar.all.unique.levels.transmit",
    "stvar.all.unique.levels.transmit",
    "exclude.transmit",
    "useNA.transmit",
    "force.nfilter.transmit",
];

fn is_null(call: &Invocation<'_>, position: usize) -> bool {
    match call.arg(position, PARAMS[position]) {
        None => true,
        Some(Expr::Symbol(s)) => s == "NULL",
        Some(_) => false,
    }
}

/// An optional string argument (`NULL` or absent is `None`).
fn optional_string(call: &Invocation<'_>, position: usize) -> Result<Option<String>, DsError> {
    if is_null(call, position) {
        return Ok(None);
    }
    call.string(position, PARAMS[position]).map(Some)
}

/// `useNA`: R's `match.arg` over its three choices (a unique prefix matches; NULL is "no").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UseNa {
    No,
    IfAny,
    Always,
}

impl UseNa {
    fn parse(text: Option<&str>) -> Result<UseNa, DsError> {
        let Some(text) = text else {
            return Ok(UseNa::No);
        };
        let choices = [
            ("no", UseNa::No),
            ("ifany", UseNa::IfAny),
            ("always", UseNa::Always),
        ];
        if let Some((_, exact)) = choices.iter().find(|(name, _)| *name == text) {
            return Ok(*exact);
        }
        let matches: Vec<UseNa> = choices
            .iter()
            .filter(|(name, _)| !text.is_empty() && name.starts_with(text))
            .map(|(_, v)| *v)
            .collect();
        match matches.as_slice() {
            [one] => Ok(*one),
            _ => Err(DsError::failed(
                "'arg' should be one of \u{201c}no\u{201d}, \u{201c}ifany\u{201d}, \u{201c}always\u{201d}",
            )),
        }
    }
}

/// `exclude`: levels to leave out of the table. dsBase evaluates the comma-split text, so one
/// part is an R literal (`NA` is the missing value, a number matches its text) and several parts
/// are strings (`"NA"` then is the string, not the missing value).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Exclude {
    pub values: Vec<String>,
    pub na: bool,
}

impl Exclude {
    fn parse(text: &str) -> Result<Exclude, DsError> {
        let parts = split_levels(text);
        match parts.as_slice() {
            [] => Ok(Exclude::default()),
            [one] => {
                let one = one.trim();
                if one == "NA" {
                    Ok(Exclude {
                        values: Vec::new(),
                        na: true,
                    })
                } else if one == "NaN"
                    || one == "TRUE"
                    || one == "FALSE"
                    || one.starts_with(['"', '\''])
                {
                    Ok(Exclude {
                        values: vec![one.trim_matches(['"', '\'']).to_owned()],
                        na: false,
                    })
                } else if let Ok(number) = one.trim_end_matches('L').parse::<f64>() {
                    Ok(Exclude {
                        values: vec![number_string(number)],
                        na: false,
                    })
                } else {
                    // R would evaluate the text as an expression in the session.
                    Err(DsError::failed(format!("object '{one}' not found")))
                }
            }
            many => Ok(Exclude {
                values: many.to_vec(),
                na: false,
            }),
        }
    }

    fn contains(&self, level: Option<&str>) -> bool {
        match level {
            None => self.na,
            Some(level) => self.values.iter().any(|v| v == level),
        }
    }
}

/// R's `unlist(strsplit(text, ","))`: empty parts kept, except a trailing one.
fn split_levels(text: &str) -> Vec<String> {
    if text.is_empty() {
        return Vec::new();
    }
    let mut parts: Vec<String> = text.split(',').map(str::to_owned).collect();
    if parts.last().is_some_and(String::is_empty) {
        parts.pop();
    }
    parts
}

/// Each element of an atomic vector as `as.character` gives it (a factor's as its level).
fn as_character(x: &RObject) -> Result<Vec<Option<String>>, DsError> {
    if x.is_factor() {
        let levels = x.levels();
        let Vector::Integer(codes) = &x.vector else {
            return Err(DsError::failed("a factor must hold integer codes"));
        };
        return Ok(codes
            .iter()
            .map(|c| {
                c.and_then(|c| usize::try_from(c - 1).ok())
                    .and_then(|i| levels.get(i))
                    .map(|s| (*s).to_owned())
            })
            .collect());
    }
    Ok(match &x.vector {
        Vector::Logical(v) => v
            .iter()
            .map(|b| {
                b.map(|b| {
                    if b {
                        "TRUE".to_owned()
                    } else {
                        "FALSE".to_owned()
                    }
                })
            })
            .collect(),
        Vector::Integer(v) => v.iter().map(|i| i.map(|i| i.to_string())).collect(),
        Vector::Double(v) => v
            .iter()
            .map(|d| {
                if crate::value::is_na_real(*d) {
                    None
                } else {
                    Some(number_string(*d))
                }
            })
            .collect(),
        Vector::Character(v) => v.clone(),
        _ => {
            return Err(DsError::failed(
                "all arguments must be atomic vectors or factors to be tabulated",
            ));
        }
    })
}

/// A factor over the pooled levels: `factor(as.factor(x), levels = levels)`. Values outside the
/// levels become NA. Codes are 0-based.
struct Factor {
    codes: Vec<Option<usize>>,
    levels: Vec<String>,
}

fn factor_over(x: &RObject, levels: Vec<String>, what: &str) -> Result<Factor, DsError> {
    for (i, level) in levels.iter().enumerate() {
        if levels[..i].contains(level) {
            return Err(DsError::failed(format!(
                "factor level [{}] is duplicated ({what})",
                i + 1
            )));
        }
    }
    let codes = as_character(x)?
        .into_iter()
        .map(|value| value.and_then(|value| levels.iter().position(|l| *l == value)))
        .collect();
    Ok(Factor { codes, levels })
}

/// R's `table(f1, f2, …, exclude, useNA)` of factors: counts (column-major) and the levels of
/// each dimension (`None` is the NA level).
fn tabulate(
    factors: &[&Factor],
    exclude: &Exclude,
    use_na: UseNa,
) -> (Vec<i32>, Vec<Vec<Option<String>>>) {
    let mut dims: Vec<Vec<Option<String>>> = Vec::new();
    // Per factor, each value's 0-based index into its dimension (None: not counted).
    let mut indices: Vec<Vec<Option<usize>>> = Vec::new();
    for factor in factors {
        let has_na = factor.codes.iter().any(Option::is_none);
        let add_na = match use_na {
            UseNa::No => false,
            UseNa::IfAny => has_na,
            UseNa::Always => true,
        };
        let mut levels: Vec<Option<String>> = factor.levels.iter().cloned().map(Some).collect();
        if add_na {
            levels.push(None);
        }
        let codes: Vec<Option<usize>> = factor
            .codes
            .iter()
            .map(|c| {
                if add_na {
                    Some(c.unwrap_or(factor.levels.len()))
                } else {
                    *c
                }
            })
            .collect();
        // Levels named in `exclude` are dropped, with their values.
        let keep: Vec<usize> = (0..levels.len())
            .filter(|&i| !exclude.contains(levels[i].as_deref()))
            .collect();
        let index = codes
            .iter()
            .map(|c| c.and_then(|c| keep.iter().position(|k| *k == c)))
            .collect();
        dims.push(keep.iter().map(|&i| levels[i].clone()).collect());
        indices.push(index);
    }
    let size: usize = dims.iter().map(Vec::len).product();
    let mut counts = vec![0i32; size];
    let rows = indices.first().map_or(0, Vec::len);
    'rows: for row in 0..rows {
        let (mut cell, mut stride) = (0usize, 1usize);
        for (d, index) in indices.iter().enumerate() {
            let Some(i) = index[row] else { continue 'rows };
            cell += i * stride;
            stride *= dims[d].len();
        }
        counts[cell] = counts[cell].saturating_add(1);
    }
    (counts, dims)
}

/// The R `table` object: an integer array with `dim`, named `dimnames` and class "table".
fn table_object(counts: Vec<i32>, dims: Vec<Vec<Option<String>>>, names: &[&str]) -> RObject {
    let dim = dims
        .iter()
        .map(|d| Some(i32::try_from(d.len()).unwrap_or(i32::MAX)))
        .collect();
    let dimnames = RObject::named_list(
        names
            .iter()
            .zip(dims)
            .map(|(name, levels)| (*name, RObject::new(Vector::Character(levels)))),
    );
    RObject::integers(counts.into_iter().map(Some).collect())
        .with_attr("dim", RObject::integers(dim))
        .with_attr("dimnames", dimnames)
        .with_attr("class", RObject::string("table"))
}

/// `tableDS(rvar.transmit, cvar.transmit, stvar.transmit, rvar.all.unique.levels.transmit, …,
/// exclude.transmit, useNA.transmit, force.nfilter.transmit)`.
fn table_ds(call: &Invocation<'_>) -> Result<RObject, DsError> {
    let mut nfilter_tab = call.env.settings.nfilter_tab;
    if let Some(force) = optional_string(call, 8)? {
        let forced: f64 = force.trim().parse().map_err(|_| {
            DsError::failed(format!("force.nfilter must be a number, not '{force}'"))
        })?;
        if forced.is_nan() || forced < nfilter_tab {
            return Err(DsError::disclosure(
                "nfilter.tab",
                format!(
                    "Failed: if force.nfilter is non-null it must be >= to nfilter.tab i.e.{}",
                    number_string(nfilter_tab)
                ),
            ));
        }
        nfilter_tab = forced;
    }
    let names = ["rvar", "cvar", "stvar"];
    let mut given = Vec::new();
    for (i, name) in names.iter().enumerate() {
        if i > 0 && is_null(call, i) {
            given.push(None);
            continue;
        }
        let x = call.named_object(i, PARAMS[i])?;
        let levels = optional_string(call, i + 3)?
            .map(|text| split_levels(&text))
            .unwrap_or_default();
        given.push(Some(factor_over(&x, levels, name)?));
    }
    // dsBase tabulates rvar, rvar×cvar or rvar×cvar×stvar; a stratum without a column variable
    // falls through all its cases and fails on the missing result.
    if given[1].is_none() && given[2].is_some() {
        return Err(DsError::failed("object 'outobj' not found"));
    }
    let factors: Vec<Factor> = given.into_iter().flatten().collect();
    if factors.len() > 1
        && factors
            .iter()
            .any(|f| f.codes.len() != factors[0].codes.len())
    {
        return Err(DsError::failed("all arguments must have the same length"));
    }
    let exclude = optional_string(call, 6)?
        .map(|text| Exclude::parse(&text))
        .transpose()?
        .unwrap_or_default();
    let use_na = UseNa::parse(optional_string(call, 7)?.as_deref())?;
    let refs: Vec<&Factor> = factors.iter().collect();

    // The check: NA left out (and a level literally named "NaN").
    let check = Exclude {
        values: vec!["NaN".to_owned()],
        na: false,
    };
    let (test_counts, _) = tabulate(&refs, &check, UseNa::No);
    if test_counts
        .iter()
        .any(|&c| c > 0 && f64::from(c) < nfilter_tab)
    {
        let message = format!(
            "Failed: at least one cell has a non-zero count less than nfilter.tab i.e. {}",
            number_string(nfilter_tab)
        );
        return if factors.len() == 3 {
            Err(DsError::disclosure("nfilter.tab", message))
        } else {
            Ok(RObject::string(message))
        };
    }
    let (counts, dims) = tabulate(&refs, &exclude, use_na);
    Ok(table_object(counts, dims, &names[..factors.len()]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_as_r_prints_them() {
        for (x, text) in [
            (1e5, "1e+05"),
            (123456.0, "123456"),
            (0.1 + 0.2, "0.3"),
            (1.0 / 3.0, "0.333333333333333"),
            (1e-5, "1e-05"),
            (2.5e-7, "2.5e-07"),
            (100.0, "100"),
            (1234567.1, "1234567.1"),
            (-3.0, "-3"),
            (0.25, "0.25"),
        ] {
            assert_eq!(number_string(x), text, "{x}");
        }
    }

    #[test]
    fn levels_split_like_strsplit() {
        assert_eq!(split_levels(""), Vec::<String>::new());
        assert_eq!(split_levels("a,,b,"), vec!["a", "", "b"]);
    }

    #[test]
    fn use_na_matches_prefixes_and_refuses_others() {
        assert_eq!(UseNa::parse(Some("al")).ok(), Some(UseNa::Always));
        assert_eq!(UseNa::parse(None).ok(), Some(UseNa::No));
        assert!(UseNa::parse(Some("maybe")).is_err());
    }

    #[test]
    fn exclude_reads_one_part_as_a_literal_and_several_as_strings() {
        assert_eq!(
            Exclude::parse("NA").ok(),
            Some(Exclude {
                values: vec![],
                na: true
            })
        );
        assert_eq!(
            Exclude::parse("NA,1").ok(),
            Some(Exclude {
                values: vec!["NA".into(), "1".into()],
                na: false
            })
        );
        assert_eq!(
            Exclude::parse("3").ok(),
            Some(Exclude {
                values: vec!["3".into()],
                na: false
            })
        );
        assert!(Exclude::parse("abc").is_err());
    }
}
