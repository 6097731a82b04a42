//! R's numerics where the functions need them to agree with R: sums accumulated beyond double
//! precision (R uses `long double`; a compensated sum comes as close), `mean`'s two passes,
//! `var` with n − 1, `quantile` type 7, and `as.character` of a double.

use crate::error::DsError;
use crate::value::{RObject, Vector};

/// Neumaier's compensated sum: within an ulp or so of R's `long double` accumulation.
pub fn sum(xs: impl IntoIterator<Item = f64>) -> f64 {
    let (mut total, mut compensation) = (0.0_f64, 0.0_f64);
    for x in xs {
        let t = total + x;
        if total.abs() >= x.abs() {
            compensation += (total - t) + x;
        } else {
            compensation += (x - t) + total;
        }
        total = t;
    }
    let result = total + compensation;
    // Infinities make the compensation NaN; R's sum is then the plain infinite sum.
    if result.is_nan() && !total.is_nan() {
        total
    } else {
        result
    }
}

/// R's `mean` of doubles: the sum divided by n, then corrected by the mean of the residuals
/// (R's second pass). NaN for no values, as R.
pub fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let n = xs.len() as f64;
    let first = sum(xs.iter().copied()) / n;
    if !first.is_finite() {
        return first;
    }
    first + sum(xs.iter().map(|x| x - first)) / n
}

/// R's `var` (n − 1 denominator, R's two-pass mean); NA for fewer than two values.
pub fn var(xs: &[f64]) -> Option<f64> {
    if xs.len() < 2 {
        return None;
    }
    let m = mean(xs);
    Some(sum(xs.iter().map(|x| (x - m) * (x - m))) / (xs.len() as f64 - 1.0))
}

/// `stats::quantile(x, probs, type = 7)` of values already free of NA; NA (`None`) for none.
pub fn quantile7(values: &[f64], probs: &[f64]) -> Vec<Option<f64>> {
    if values.is_empty() {
        return vec![None; probs.len()];
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    probs
        .iter()
        .map(|p| {
            // R's own arithmetic: index = 1 + (n-1)p, interpolated as (1-h)·x[lo] + h·x[hi].
            let index = 1.0 + (n as f64 - 1.0) * p;
            let lo = index.floor();
            let hi = index.ceil();
            let at = |i: f64| sorted[(i as usize).clamp(1, n) - 1];
            let q = at(lo);
            let upper = at(hi);
            if index > lo && upper != q {
                let h = index - lo;
                Some((1.0 - h) * q + h * upper)
            } else {
                Some(q)
            }
        })
        .collect()
}

/// R's `as.character` of a double: up to 15 significant digits, fixed or scientific notation
/// whichever is narrower (fixed on a tie).
pub fn number_string(x: f64) -> String {
    if x.is_nan() {
        return if crate::value::is_na_real(x) {
            "NA".into()
        } else {
            "NaN".into()
        };
    }
    if x.is_infinite() {
        return if x > 0.0 { "Inf".into() } else { "-Inf".into() };
    }
    if x == 0.0 {
        return "0".into();
    }
    let sci = format!("{x:.14e}");
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let nsig = digits.len() as i32;
    let sign = if negative { "-" } else { "" };
    let exp_width = if exponent.abs() >= 100 { 3 } else { 2 };
    let sci_width = i32::from(negative) + if nsig > 1 { nsig + 1 } else { 1 } + 2 + exp_width;
    let fixed_width = if exponent >= 0 {
        let decimals = (nsig - exponent - 1).max(0);
        i32::from(negative) + exponent + 1 + if decimals > 0 { decimals + 1 } else { 0 }
    } else {
        i32::from(negative) + 2 + (-exponent - 1) + nsig
    };
    if fixed_width <= sci_width {
        if exponent >= 0 {
            let e = exponent as usize;
            let mut int_part: String = digits.chars().take(e + 1).collect();
            while int_part.len() < e + 1 {
                int_part.push('0');
            }
            let frac: String = digits.chars().skip(e + 1).collect();
            if frac.is_empty() {
                format!("{sign}{int_part}")
            } else {
                format!("{sign}{int_part}.{frac}")
            }
        } else {
            format!("{sign}0.{}{digits}", "0".repeat((-exponent - 1) as usize))
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let mantissa = if rest.is_empty() {
            first.to_owned()
        } else {
            format!("{first}.{rest}")
        };
        let exp_sign = if exponent < 0 { "-" } else { "+" };
        format!(
            "{sign}{mantissa}e{exp_sign}{:0width$}",
            exponent.abs(),
            width = exp_width as usize
        )
    }
}

/// A double rounded to 15 significant digits (what `as.numeric(as.character(x))` gives).
pub fn round15(x: f64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    format!("{x:.14e}").parse().unwrap_or(x)
}

/// The values of a numeric vector (logical, integer or double, not a factor), NA as `None`.
/// `None` when the object is not such a vector.
pub fn numeric_values(x: &RObject) -> Option<Vec<Option<f64>>> {
    if x.is_factor() || x.is_data_frame() {
        return None;
    }
    x.as_doubles()
}

/// R's `is.na()` of each element of an atomic vector (list elements are never NA here).
pub fn is_na(x: &RObject) -> Vec<bool> {
    match &x.vector {
        Vector::Null => Vec::new(),
        Vector::Logical(v) => v.iter().map(Option::is_none).collect(),
        Vector::Integer(v) => v.iter().map(Option::is_none).collect(),
        Vector::Double(v) => v.iter().map(|d| d.is_nan()).collect(),
        Vector::Character(v) => v.iter().map(Option::is_none).collect(),
        Vector::List(items) => items
            .iter()
            .map(|item| {
                item.len() == 1 && !matches!(item.vector, Vector::List(_)) && is_na(item)[0]
            })
            .collect(),
    }
}

/// The number of NA cells: of a vector, or of every column of a data frame.
pub fn count_na(x: &RObject) -> Result<usize, DsError> {
    if x.is_data_frame() {
        let Vector::List(columns) = &x.vector else {
            return Ok(0);
        };
        return Ok(columns
            .iter()
            .map(|c| is_na(c).into_iter().filter(|na| *na).count())
            .sum());
    }
    Ok(is_na(x).into_iter().filter(|na| *na).count())
}

/// `length()` as the R integer it is.
pub fn r_int(n: usize) -> Result<i32, DsError> {
    i32::try_from(n).map_err(|_| DsError::failed("a count does not fit an R integer"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compensated_sum_keeps_what_plain_summation_loses() {
        let xs = [1e16, 1.0, -1e16, 1.0];
        assert_eq!(sum(xs), 2.0);
        assert_eq!(sum([f64::INFINITY, 1.0]), f64::INFINITY);
        assert_eq!(sum(std::iter::empty()), 0.0);
    }

    #[test]
    fn mean_var_and_quantile_follow_r_definitions() {
        assert!(mean(&[]).is_nan());
        assert_eq!(mean(&[1.0, 2.0, 4.0]), 7.0 / 3.0);
        assert_eq!(var(&[1.0]), None);
        assert_eq!(var(&[1.0, 2.0, 3.0, 4.0]), Some(5.0 / 3.0));
        // quantile(1:10, c(0, .05, .5, 1)) in R: 1, 1.45, 5.5, 10
        let xs: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(
            quantile7(&xs, &[0.0, 0.05, 0.5, 1.0]),
            vec![Some(1.0), Some(1.45), Some(5.5), Some(10.0)]
        );
        assert_eq!(quantile7(&[], &[0.5]), vec![None]);
        assert_eq!(quantile7(&[3.0], &[0.05, 0.95]), vec![Some(3.0), Some(3.0)]);
    }

    #[test]
    fn numbers_are_written_as_r_writes_them() {
        assert_eq!(number_string(3.0), "3");
        assert_eq!(number_string(-2.0), "-2");
        assert_eq!(number_string(1.5), "1.5");
        assert_eq!(number_string(0.1 + 0.2), "0.3");
        assert_eq!(number_string(1e20), "1e+20");
        assert_eq!(number_string(1.25e-5), "1.25e-05");
        assert_eq!(number_string(f64::NAN), "NaN");
        assert_eq!(round15(0.1 + 0.2), 0.3);
    }
}
