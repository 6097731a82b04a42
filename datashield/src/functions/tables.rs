//! One- and two-way contingency tables (`table1DDS`, `table2DDS`), with dsBase's small-cell rule
//! (a cell holding 1..nfilter.tab−1 observations): table1DDS is then refused; table2DDS withholds
//! every inner cell (NA), releases only the margins, and says so in its message.

use crate::error::DsError;
use crate::eval::{Invocation, Method};
use crate::functions::numeric::number_string;
use crate::value::{RObject, Vector, na_real};

pub fn methods() -> Vec<Method> {
    vec![
        Method::aggregate("table1DDS", table1d_ds),
        Method::aggregate("table2DDS", table2d_ds),
    ]
}

const VALID: &str = "valid Table";
const INVALID: &str = "invalid table - invalid counts present";

/// The categories R's `table()` makes of a vector (NA left out): a factor's levels in order
/// (empty ones too); otherwise the sorted distinct values, named by `as.character`. Character
/// values sort by bytes (the C locale's collation). Returns the labels and each element's
/// category.
pub(crate) fn categories(
    x: &RObject,
    function: &str,
) -> Result<(Vec<String>, Vec<Option<usize>>), DsError> {
    if x.is_factor() {
        let levels: Vec<String> = x.levels().into_iter().map(str::to_owned).collect();
        let Vector::Integer(codes) = &x.vector else {
            return Err(DsError::failed(format!(
                "{function}: a factor must hold integer codes"
            )));
        };
        let index = codes
            .iter()
            .map(|c| {
                c.and_then(|c| usize::try_from(c).ok())
                    .and_then(|c| c.checked_sub(1))
                    .filter(|c| *c < levels.len())
            })
            .collect();
        return Ok((levels, index));
    }
    if x.is_data_frame() || x.attr("dim").is_some() {
        return Err(DsError::failed(format!(
            "{function}: a vector is needed, not a {}",
            x.class().join("/")
        )));
    }
    // Labels for every element (None for NA); categories are the distinct labels in value order.
    let (labels, order): (Vec<Option<String>>, Vec<usize>) = match &x.vector {
        Vector::Logical(v) => sorted(
            v.iter()
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
            v.iter().map(|b| b.map(f64::from)).collect(),
        ),
        Vector::Integer(v) => sorted(
            v.iter().map(|i| i.map(|i| i.to_string())).collect(),
            v.iter().map(|i| i.map(f64::from)).collect(),
        ),
        Vector::Double(v) => {
            let keys: Vec<Option<f64>> = v
                .iter()
                .map(|d| if d.is_nan() { None } else { Some(*d) })
                .collect();
            sorted(keys.iter().map(|d| d.map(number_string)).collect(), keys)
        }
        Vector::Character(v) => {
            let labels: Vec<Option<String>> = v.clone();
            let mut order: Vec<usize> =
                (0..labels.len()).filter(|i| labels[*i].is_some()).collect();
            order.sort_by(|a, b| labels[*a].cmp(&labels[*b]));
            (labels, order)
        }
        _ => {
            return Err(DsError::failed(format!(
                "{function}: a vector is needed, not a {}",
                x.class().join("/")
            )));
        }
    };
    let mut names: Vec<String> = Vec::new();
    // Distinct labels in value order (two doubles written alike are one category, as in R).
    for label in order.into_iter().filter_map(|i| labels[i].as_ref()) {
        // Sorted values put equal labels next to each other.
        if names.last() != Some(label) {
            names.push(label.clone());
        }
    }
    let position: std::collections::HashMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let index = labels
        .iter()
        .map(|l| l.as_ref().and_then(|l| position.get(l.as_str()).copied()))
        .collect();
    Ok((names, index))
}

/// Orders the non-NA elements by their numeric key.
fn sorted(
    labels: Vec<Option<String>>,
    keys: Vec<Option<f64>>,
) -> (Vec<Option<String>>, Vec<usize>) {
    let mut order: Vec<usize> = (0..keys.len()).filter(|i| keys[*i].is_some()).collect();
    order.sort_by(|a, b| keys[*a].unwrap_or(0.0).total_cmp(&keys[*b].unwrap_or(0.0)));
    (labels, order)
}

fn small(count: f64, nfilter_tab: f64) -> bool {
    count > 0.0 && count < nfilter_tab
}

/// `table1DDS(x)`: `list(table = one-row data frame of counts by category plus "Total",
/// message)`. Unlike table2DDS, a small count refuses the whole call (dsBase 6.x stops here; its
/// 6.0 returned the table with the counts NA).
fn table1d_ds(call: &Invocation<'_>) -> Result<RObject, DsError> {
    let x = call.named_object(0, "xvect")?;
    let (names, index) = categories(&x, call.function)?;
    let mut counts = vec![0.0_f64; names.len()];
    for i in index.into_iter().flatten() {
        counts[i] += 1.0;
    }
    if counts
        .iter()
        .any(|c| small(*c, call.env.settings.nfilter_tab))
    {
        return Err(DsError::disclosure("nfilter.tab", INVALID));
    }
    let total: f64 = counts.iter().sum();
    let columns = names
        .into_iter()
        .zip(counts)
        .map(|(name, count)| (name, RObject::double(count)))
        .chain(std::iter::once((
            "Total".to_owned(),
            RObject::double(total),
        )));
    let table = RObject::data_frame(columns, 1);
    Ok(RObject::named_list([
        ("table", table),
        ("message", RObject::string(VALID)),
    ]))
}

/// `table2DDS(x, y)`: `list(table = data frame of counts, rows by x and columns by y, each
/// with a "Total" margin, message)`. When any cell of the inner rows (row totals included) is
/// small, all inner cells become NA; the margins stay.
fn table2d_ds(call: &Invocation<'_>) -> Result<RObject, DsError> {
    let x = call.named_object(0, "xvect")?;
    let y = call.named_object(1, "yvect")?;
    if x.len() != y.len() {
        return Err(DsError::failed("all arguments must have the same length"));
    }
    let (rows, row_index) = categories(&x, call.function)?;
    let (cols, col_index) = categories(&y, call.function)?;
    let (k, l) = (rows.len(), cols.len());
    // cells[r][c], with the margins as row k and column l.
    let mut cells = vec![vec![0.0_f64; l + 1]; k + 1];
    for (r, c) in row_index.into_iter().zip(col_index) {
        if let (Some(r), Some(c)) = (r, c) {
            cells[r][c] += 1.0;
            cells[r][l] += 1.0;
            cells[k][c] += 1.0;
            cells[k][l] += 1.0;
        }
    }
    let nfilter = call.env.settings.nfilter_tab;
    let invalid = cells[..k]
        .iter()
        .any(|row| row.iter().any(|c| small(*c, nfilter)));
    if invalid {
        for row in &mut cells[..k] {
            row[..l].iter_mut().for_each(|c| *c = na_real());
        }
    }
    let columns = cols
        .into_iter()
        .chain(std::iter::once("Total".to_owned()))
        .enumerate()
        .map(|(c, name)| {
            (
                name,
                RObject::doubles(cells.iter().map(|row| row[c]).collect()),
            )
        });
    let row_names = RObject::strings(rows.into_iter().chain(std::iter::once("Total".to_owned())));
    let table = RObject::data_frame(columns, k + 1).with_attr("row.names", row_names);
    Ok(RObject::named_list([
        ("table", table),
        (
            "message",
            RObject::string(if invalid { INVALID } else { VALID }),
        ),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_follow_table_order_and_skip_na() {
        let x = RObject::doubles(vec![2.0, 10.0, na_real(), 2.0, 1.5]);
        let (names, index) = categories(&x, "t").unwrap();
        assert_eq!(names, vec!["1.5", "2", "10"]);
        assert_eq!(index, vec![Some(1), Some(2), None, Some(1), Some(0)]);
        let f = RObject::factor(
            vec![Some(2), None],
            vec!["a".into(), "b".into(), "c".into()],
        );
        assert_eq!(
            categories(&f, "t").unwrap(),
            (
                vec!["a".into(), "b".into(), "c".into()],
                vec![Some(1), None]
            )
        );
        let b = RObject::logicals(vec![Some(true), Some(false), None]);
        assert_eq!(categories(&b, "t").unwrap().0, vec!["FALSE", "TRUE"]);
        assert!(categories(&RObject::list(vec![]), "t").is_err());
    }
}
