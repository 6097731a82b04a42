//! `rangeDS`, `histogramDS1` and `histogramDS2`: a vector's range blurred by seeded random
//! factors, and `graphics::hist`'s object with small bins suppressed (dsBase 6.3's behaviour and
//! disclosure rules; read for behaviour only).
//!
//! Each call seeds R's generator afresh with `datashield.seed`, as dsBase does, so the same call
//! always gives the same answer (a client cannot average the noise away by repeating it).

use crate::error::DsError;
use crate::eval::{Invocation, Method};
use crate::functions::numeric;
use crate::functions::rng::RRng;
use crate::value::{RObject, Vector};

pub fn methods() -> Vec<Method> {
    vec![
        Method::aggregate("rangeDS", range_ds),
        Method::aggregate("histogramDS1", histogram_ds1),
        Method::aggregate("histogramDS2", histogram_ds2),
    ]
}

/// dsBase's answer (a result, not an error) when the vector is not numeric.
const NOT_NUMERIC: &str = "The input vector is not a numeric!";

/// The vector argument: dsBase 6.3 names it `xvect` and takes the object, later versions name it
/// `x` and take its name; both are accepted.
fn vector_arg(call: &Invocation<'_>) -> Result<RObject, DsError> {
    if call.args.iter().any(|a| a.name.as_deref() == Some("xvect")) {
        call.named_object(0, "xvect")
    } else {
        call.named_object(0, "x")
    }
}

/// R's `is.numeric`: integer or double, and not a factor. NA and NaN are `None`.
pub(crate) fn numeric_values(x: &RObject) -> Option<Vec<Option<f64>>> {
    match x.vector {
        Vector::Integer(_) | Vector::Double(_) if !x.is_factor() => x.as_doubles(),
        _ => None,
    }
}

/// `c(min(x, na.rm=TRUE), max(x, na.rm=TRUE))`; `Inf`/`-Inf` when nothing is left, as R gives
/// (with a warning).
fn range_na_rm(values: &[Option<f64>]) -> (f64, f64) {
    values
        .iter()
        .flatten()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        })
}

/// `rangeDS(x)`: `c(min * runif(1, 0.95, 1), max * runif(1, 1, 1.05))` after `set.seed`.
fn range_ds(call: &Invocation<'_>) -> Result<RObject, DsError> {
    let x = vector_arg(call)?;
    let Some(values) = numeric_values(&x) else {
        return Ok(RObject::string(NOT_NUMERIC));
    };
    let mut rng = RRng::set_seed(call.env.seed);
    let (lo, hi) = range_na_rm(&values);
    let low_factor = rng.runif(0.95, 1.0);
    let high_factor = rng.runif(1.0, 1.05);
    Ok(RObject::doubles(vec![lo * low_factor, hi * high_factor]))
}

/// The disclosure method: 1 small-cells rule, 2 k-nearest-neighbour centroids, 3 added noise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HistMethod {
    SmallCells,
    Centroids,
    Noise,
}

fn method_arg(
    call: &Invocation<'_>,
    position: usize,
    missing_result: &str,
) -> Result<HistMethod, DsError> {
    let method = call.number(position, "method.indicator", None)?;
    if method == 1.0 {
        Ok(HistMethod::SmallCells)
    } else if method == 3.0 {
        Ok(HistMethod::Noise)
    } else if method == 2.0 {
        Ok(HistMethod::Centroids)
    } else {
        // dsBase falls through every branch and fails on the missing result.
        Err(DsError::failed(format!(
            "object '{missing_result}' not found"
        )))
    }
}

/// R's `paste0` of a setting (15 significant digits, shortest form).
fn setting_text(x: f64) -> String {
    let rounded: f64 = format!("{x:.14e}").parse().unwrap_or(x);
    format!("{rounded}")
}

/// Method 3's check and noisy vector: `na.omit(x) + rnorm(N, 0, sqrt(noise * var(x)))` after
/// `set.seed`. Refused when `noise < nfilter.noise`.
fn noisy_vector(
    call: &Invocation<'_>,
    values: &[Option<f64>],
    noise_position: usize,
) -> Result<Vec<f64>, DsError> {
    let noise = call.number(noise_position, "noise", None)?;
    let threshold = call.env.settings.nfilter_noise;
    if noise.is_nan() || noise < threshold {
        return Err(DsError::disclosure(
            "nfilter.noise",
            format!(
                "'noise' must be greater than or equal to {}",
                setting_text(threshold)
            ),
        ));
    }
    let x: Vec<f64> = values.iter().flatten().copied().collect();
    let sd = (noise * var_or_na(&x)).sqrt();
    let mut rng = RRng::set_seed(call.env.seed);
    Ok(x.iter().map(|v| v + rng.rnorm(0.0, sd)).collect())
}

/// Method 2's check and masked vector: each value of `na.omit(x)`, standardised, is replaced by
/// the centroid of its `k` nearest neighbours (itself included); the centroids are rescaled to the
/// standardised values' SD and mapped back to x's scale. Refused unless
/// `nfilter.kNN <= k <= N - nfilter.kNN`.
///
/// dsBase finds the neighbours with RANN's kd-tree. In one dimension the k nearest values form a
/// run of the sorted values, found here by a sliding window; only when two candidates are exactly
/// equally far can the choice differ from RANN's (the result is then still a centroid of k values).
fn centroid_vector(
    call: &Invocation<'_>,
    values: &[Option<f64>],
    k_position: usize,
) -> Result<Vec<f64>, DsError> {
    let x: Vec<f64> = values.iter().flatten().copied().collect();
    let n = x.len() as f64;
    let k = call.number(k_position, "k", None)?;
    let threshold = call.env.settings.nfilter_knn;
    if k.is_nan() || k < threshold || k > n - threshold {
        return Err(DsError::disclosure(
            "nfilter.kNN",
            format!(
                "k must be greater than or equal to {} and less than or equal to {}.",
                setting_text(threshold),
                setting_text(n - threshold)
            ),
        ));
    }
    // RANN takes k as a whole number of neighbours.
    let k = k as usize;
    let (mean, sd) = (numeric::mean(&x), var_or_na(&x).sqrt());
    let standardised: Vec<f64> = x.iter().map(|v| (v - mean) / sd).collect();
    let centroids = knn_centroids(&standardised, k);
    let scaling = var_or_na(&standardised).sqrt() / var_or_na(&centroids).sqrt();
    Ok(centroids
        .iter()
        .map(|c| (c * scaling) * sd + mean)
        .collect())
}

/// The mean of each value's `k` nearest values (itself included), in one dimension.
fn knn_centroids(z: &[f64], k: usize) -> Vec<f64> {
    let n = z.len();
    if k == 0 || k > n {
        return vec![f64::NAN; n];
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|a, b| z[*a].total_cmp(&z[*b]));
    let sorted: Vec<f64> = order.iter().map(|i| z[*i]).collect();
    // Prefix sums in double-double (TwoSum), so a window's sum keeps full precision.
    let mut prefix = Vec::with_capacity(n + 1);
    prefix.push((0.0f64, 0.0f64));
    for v in &sorted {
        let (hi, lo) = prefix[prefix.len() - 1];
        let s = hi + v;
        let bb = s - hi;
        let err = (hi - (s - bb)) + (v - bb);
        prefix.push((s, lo + err));
    }
    let mut centroids = vec![0.0; n];
    let mut start = 0usize;
    for (j, &value) in sorted.iter().enumerate() {
        // Slide right until the window holds this value and the next value beyond it is no
        // nearer than the window's first.
        while start + k < n && (j >= start + k || sorted[start + k] - value < value - sorted[start])
        {
            start += 1;
        }
        let (hi1, lo1) = prefix[start + k];
        let (hi0, lo0) = prefix[start];
        centroids[order[j]] = ((hi1 - hi0) + (lo1 - lo0)) / k as f64;
    }
    centroids
}

/// R's `var(x)`: NA for fewer than two values.
fn var_or_na(x: &[f64]) -> f64 {
    numeric::var(x).unwrap_or_else(crate::value::na_real)
}

/// R's `min`/`max` without `na.rm`: NaN when any value is NaN, `Inf`/`-Inf` when empty.
fn min_max(x: &[f64]) -> (f64, f64) {
    if x.iter().any(|v| v.is_nan()) {
        return (f64::NAN, f64::NAN);
    }
    range_na_rm(&x.iter().map(|v| Some(*v)).collect::<Vec<_>>())
}

/// `histogramDS1(x, method.indicator, k, noise)`: the range the client builds common breaks from.
/// Method 1 widens `c(min, max)` outward by seeded factors in [1.01, 1.05] (or shrinks toward
/// zero by [0.95, 0.99] for a bound on the other side of zero); methods 2 and 3 give the range of
/// the masked vector.
fn histogram_ds1(call: &Invocation<'_>) -> Result<RObject, DsError> {
    let x = vector_arg(call)?;
    let Some(values) = numeric_values(&x) else {
        return Ok(RObject::string(NOT_NUMERIC));
    };
    match method_arg(call, 1, "output")? {
        HistMethod::SmallCells => {
            let mut rng = RRng::set_seed(call.env.seed);
            let (lo, hi) = range_na_rm(&values);
            // Two draws, in this order, as dsBase makes them.
            let lo = if lo < 0.0 {
                lo * rng.runif(1.01, 1.05)
            } else {
                lo * rng.runif(0.95, 0.99)
            };
            let hi = if hi < 0.0 {
                hi * rng.runif(0.95, 0.99)
            } else {
                hi * rng.runif(1.01, 1.05)
            };
            Ok(RObject::doubles(vec![lo, hi]))
        }
        HistMethod::Centroids => {
            let masked = centroid_vector(call, &values, 2)?;
            let (lo, hi) = min_max(&masked);
            Ok(RObject::doubles(vec![lo, hi]))
        }
        HistMethod::Noise => {
            let noisy = noisy_vector(call, &values, 3)?;
            let (lo, hi) = min_max(&noisy);
            Ok(RObject::doubles(vec![lo, hi]))
        }
    }
}

/// `histogramDS2(x, num.breaks, min, max, method.indicator, k, noise)`:
/// `list(histobject = hist(x, breaks = seq(min, max, by = (max - min)/num.breaks), plot = FALSE),
/// invalidcells)`. Refused when `num.breaks > nfilter.levels.density * length(x)`. Method 1 sets
/// the counts and densities of bins holding 1..nfilter.tab-1 values to 0 and reports how many;
/// methods 2 and 3 bin the masked vector (`x.new`) and report 0.
fn histogram_ds2(call: &Invocation<'_>) -> Result<RObject, DsError> {
    let x = vector_arg(call)?;
    let num_breaks = call.number(1, "num.breaks", None)?;
    let min = call.number(2, "min", None)?;
    let max = call.number(3, "max", None)?;
    let method = method_arg(call, 4, "histout")?;
    let settings = call.env.settings;
    let check_breaks = || {
        if num_breaks > settings.nfilter_levels_density * x.len() as f64 {
            Err(DsError::disclosure(
                "nfilter.levels.density",
                "FAILED: Number of breaks is too big. It may be disclosive - please shorten",
            ))
        } else {
            seq_by(min, max, (max - min) / num_breaks)
        }
    };
    let not_numeric = || DsError::failed("'x' must be numeric");
    match method {
        HistMethod::SmallCells => {
            let breaks = check_breaks()?;
            let values = numeric_values(&x).ok_or_else(not_numeric)?;
            let finite: Vec<f64> = values
                .iter()
                .flatten()
                .copied()
                .filter(|v| v.is_finite())
                .collect();
            let hist = Histogram::compute(&finite, breaks)?;
            let invalid: Vec<usize> = (0..hist.counts.len())
                .filter(|&i| hist.counts[i] > 0 && f64::from(hist.counts[i]) < settings.nfilter_tab)
                .collect();
            let object = if invalid.is_empty() {
                hist.to_r("xvect", None)
            } else {
                // `counts[indx] <- 0` assigns a double, so R's counts become doubles.
                let mut density = hist.density.clone();
                let mut counts: Vec<f64> = hist.counts.iter().map(|c| f64::from(*c)).collect();
                for &i in &invalid {
                    counts[i] = 0.0;
                    density[i] = 0.0;
                }
                hist.to_r("xvect", Some((counts, density)))
            };
            let invalid = i32::try_from(invalid.len()).unwrap_or(i32::MAX);
            Ok(RObject::named_list([
                ("histobject", object),
                ("invalidcells", RObject::integer(invalid)),
            ]))
        }
        HistMethod::Centroids | HistMethod::Noise => {
            let values = numeric_values(&x).ok_or_else(not_numeric)?;
            let masked = if method == HistMethod::Noise {
                noisy_vector(call, &values, 6)?
            } else {
                centroid_vector(call, &values, 5)?
            };
            let breaks = check_breaks()?;
            let finite: Vec<f64> = masked.into_iter().filter(|v| v.is_finite()).collect();
            let hist = Histogram::compute(&finite, breaks)?;
            Ok(RObject::named_list([
                ("histobject", hist.to_r("x.new", None)),
                ("invalidcells", RObject::double(0.0)),
            ]))
        }
    }
}

/// `seq(from, to, by = by)` for double arguments, as R's `seq.default` computes it: `n` steps
/// with a 1e-10 allowance, `from + (0:n) * by`, then capped at `to`. Degenerate requests that R
/// would answer with a single point (which `hist` then reads as a number of cells) are refused.
pub fn seq_by(from: f64, to: f64, by: f64) -> Result<Vec<f64>, DsError> {
    if !from.is_finite() {
        return Err(DsError::failed("'from' must be a finite number"));
    }
    if !to.is_finite() {
        return Err(DsError::failed("'to' must be a finite number"));
    }
    let del = to - from;
    let n = del / by;
    if !n.is_finite() {
        return Err(DsError::failed("invalid '(to - from)/by' in seq(.)"));
    }
    if n < 0.0 {
        return Err(DsError::failed("wrong sign in 'by' argument"));
    }
    if n > f64::from(i32::MAX) {
        return Err(DsError::failed("'by' argument is much too small"));
    }
    let degenerate = del == 0.0 || del.abs() / to.abs().max(from.abs()) < 100.0 * f64::EPSILON;
    let n = (n + 1e-10) as i64;
    if degenerate || n < 1 {
        return Err(DsError::failed(
            "the breaks seq(min, max, by=(max-min)/num.breaks) would be a single point: 'max' must exceed 'min' and 'num.breaks' be at least 1",
        ));
    }
    Ok((0..=n)
        .map(|i| from + i as f64 * by)
        .map(|b| if by > 0.0 { b.min(to) } else { b.max(to) })
        .collect())
}

/// `graphics::hist(x, breaks, plot = FALSE)` with R's defaults (right-closed bins, the lowest
/// break included, break fuzz 1e-7 times the median bin width).
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    pub breaks: Vec<f64>,
    pub counts: Vec<i32>,
    pub density: Vec<f64>,
    pub mids: Vec<f64>,
    pub equidist: bool,
}

impl Histogram {
    /// `x` holds the finite values only (hist drops the rest). `breaks` needs two or more values.
    pub fn compute(x: &[f64], mut breaks: Vec<f64>) -> Result<Histogram, DsError> {
        breaks.retain(|b| !b.is_nan());
        breaks.sort_by(f64::total_cmp);
        let nb = breaks.len();
        if nb < 2 {
            return Err(DsError::failed("hist: at least two breaks are needed"));
        }
        let h: Vec<f64> = breaks.windows(2).map(|w| w[1] - w[0]).collect();
        let (h_min, h_max) = min_max(&h);
        let equidist = h_max - h_min < 1e-7 * numeric::sum(h.iter().copied()) / h.len() as f64;
        let diddle = 1e-7
            * if nb > 5 {
                median(&h)
            } else if nb <= 3 {
                let (lo, hi) = min_max(x);
                hi - lo
            } else {
                h.iter()
                    .copied()
                    .filter(|v| *v > 0.0)
                    .fold(f64::INFINITY, f64::min)
            };
        // Right-closed bins with the lowest included: the first break moves down, the rest up.
        let fuzzy: Vec<f64> = breaks
            .iter()
            .enumerate()
            .map(|(i, b)| if i == 0 { b - diddle } else { b + diddle })
            .collect();
        let counts = bin_count(x, &fuzzy);
        let total: i64 = counts.iter().map(|c| i64::from(*c)).sum();
        if total < x.len() as i64 {
            return Err(DsError::failed(
                "some 'x' not counted; maybe 'breaks' do not span range of 'x'",
            ));
        }
        let n = x.len() as f64;
        let density = counts
            .iter()
            .zip(&h)
            .map(|(c, w)| f64::from(*c) / (n * w))
            .collect();
        let mids = breaks.windows(2).map(|w| 0.5 * (w[1] + w[0])).collect();
        Ok(Histogram {
            breaks,
            counts,
            density,
            mids,
            equidist,
        })
    }

    /// The R object of class `histogram`; `suppressed` replaces counts (as doubles) and density.
    fn to_r(&self, xname: &str, suppressed: Option<(Vec<f64>, Vec<f64>)>) -> RObject {
        let (counts, density) = match suppressed {
            Some((counts, density)) => (RObject::doubles(counts), RObject::doubles(density)),
            None => (
                RObject::integers(self.counts.iter().map(|c| Some(*c)).collect()),
                RObject::doubles(self.density.clone()),
            ),
        };
        RObject::named_list([
            ("breaks", RObject::doubles(self.breaks.clone())),
            ("counts", counts),
            ("density", density),
            ("mids", RObject::doubles(self.mids.clone())),
            ("xname", RObject::string(xname)),
            ("equidist", RObject::logical(self.equidist)),
        ])
        .with_attr("class", RObject::string("histogram"))
    }
}

/// R's `median` of non-empty finite values (the mean of the middle two for an even count).
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let half = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[half]
    } else {
        // R's mean of two values, summed in long double: exact for widths of similar size.
        (sorted[half - 1] + sorted[half]) / 2.0
    }
}

/// R's bin counting for right-closed bins with the lowest break included: a value in
/// [b0, b_last] goes to the bin i with b_i < x <= b_{i+1} (the first bin also takes b0).
fn bin_count(x: &[f64], breaks: &[f64]) -> Vec<i32> {
    let last = breaks.len() - 1;
    let mut counts = vec![0i32; last];
    for &v in x {
        if !(breaks[0] <= v && v <= breaks[last]) {
            continue;
        }
        let (mut lo, mut hi) = (0usize, last);
        while hi - lo >= 2 {
            let mid = (hi + lo) / 2;
            if v > breaks[mid] {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        counts[lo] += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_refuses_what_r_would_not_make_into_breaks() {
        assert!(seq_by(0.0, 1.0, -0.1).is_err());
        assert!(seq_by(1.0, 1.0, 0.0).is_err());
        assert!(seq_by(0.0, 1.0, 2.0).is_err());
        assert!(seq_by(f64::NAN, 1.0, 0.1).is_err());
        assert_eq!(seq_by(0.0, 1.0, 0.5).ok(), Some(vec![0.0, 0.5, 1.0]));
    }

    #[test]
    fn bins_are_right_closed_with_the_lowest_break_included() {
        let counts = bin_count(&[0.0, 1.0, 1.5, 2.0, 3.0, -1.0], &[0.0, 1.0, 2.0]);
        assert_eq!(counts, vec![2, 2]);
    }

    #[test]
    fn histogram_refuses_values_outside_the_breaks() {
        assert!(Histogram::compute(&[5.0], vec![0.0, 1.0, 2.0]).is_err());
        assert!(Histogram::compute(&[0.5], vec![0.0]).is_err());
    }

    #[test]
    fn centroids_are_means_of_the_nearest_values() {
        let c = knn_centroids(&[0.0, 10.0, 1.0, 11.0, 2.0, 30.0], 3);
        assert_eq!(c, vec![1.0, 23.0 / 3.0, 1.0, 23.0 / 3.0, 1.0, 17.0]);
        assert!(knn_centroids(&[1.0], 2)[0].is_nan());
    }

    #[test]
    fn variance_matches_textbook_values() {
        assert_eq!(var_or_na(&[1.0, 2.0, 3.0, 4.0]), 5.0 / 3.0);
        assert!(crate::value::is_na_real(var_or_na(&[1.0])));
    }
}
