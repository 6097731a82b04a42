//! R's default random numbers, bit for bit: `set.seed(seed)` with R's default kinds
//! (Mersenne-Twister, normal by inversion), `runif` and `rnorm`. dsBase seeds with
//! `datashield.seed` before each noisy draw, so a client can check a server's results against R's
//! only if the streams are identical. Written from the published algorithms (MT19937 of Matsumoto
//! and Nishimura; Wichura's AS 241 for the normal quantile) and R's documented behaviour.

/// MT19937's state size.
const N: usize = 624;
/// MT19937's middle word offset.
const M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;
/// 1 / (2^32 - 1): R keeps uniforms this far inside (0, 1).
const I2_32M1: f64 = 2.328_306_437_080_797e-10;
/// R's `rnorm` by inversion draws two uniforms to fill more than 32 bits: 2^27.
const BIG: f64 = 134_217_728.0;

/// The state after `set.seed(seed)` under R's default kinds.
#[derive(Clone)]
pub struct RRng {
    mt: [u32; N],
    /// The next word to use; `N` means the block must be regenerated first (R's `dummy[0]`).
    mti: usize,
}

impl RRng {
    /// `set.seed(seed)`: R scrambles the seed with 50 rounds of the LCG `seed*69069 + 1`, then
    /// fills R's 625-word seed vector (the position word and 624 state words) with further rounds,
    /// and finally sets the position to 624 so that the first draw regenerates the block.
    pub fn set_seed(seed: i32) -> RRng {
        let lcg = |s: u32| s.wrapping_mul(69069).wrapping_add(1);
        let mut s = seed as u32;
        for _ in 0..50 {
            s = lcg(s);
        }
        // The first word of the 625 is the position, overwritten right after.
        s = lcg(s);
        let mut mt = [0u32; N];
        for word in mt.iter_mut() {
            s = lcg(s);
            *word = s;
        }
        // R's check for an all-zero state (impossible from this LCG, kept for fidelity).
        if mt.iter().all(|w| *w == 0) {
            return RRng::set_seed(seed.wrapping_add(1));
        }
        RRng { mt, mti: N }
    }

    fn regenerate(&mut self) {
        let mag = |y: u32| if y & 1 == 1 { MATRIX_A } else { 0 };
        for kk in 0..N - M {
            let y = (self.mt[kk] & UPPER_MASK) | (self.mt[kk + 1] & LOWER_MASK);
            self.mt[kk] = self.mt[kk + M] ^ (y >> 1) ^ mag(y);
        }
        for kk in N - M..N - 1 {
            let y = (self.mt[kk] & UPPER_MASK) | (self.mt[kk + 1] & LOWER_MASK);
            self.mt[kk] = self.mt[kk + M - N] ^ (y >> 1) ^ mag(y);
        }
        let y = (self.mt[N - 1] & UPPER_MASK) | (self.mt[0] & LOWER_MASK);
        self.mt[N - 1] = self.mt[M - 1] ^ (y >> 1) ^ mag(y);
        self.mti = 0;
    }

    /// One tempered MT19937 output scaled to [0, 1) as R scales it (by 2.3283064365386963e-10).
    fn genrand(&mut self) -> f64 {
        if self.mti >= N {
            self.regenerate();
        }
        let mut y = self.mt[self.mti];
        self.mti += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        f64::from(y) * 2.328_306_436_538_696_3e-10
    }

    /// R's `unif_rand()`: never exactly 0 or 1.
    pub fn unif_rand(&mut self) -> f64 {
        let x = self.genrand();
        if x <= 0.0 {
            0.5 * I2_32M1
        } else if 1.0 - x <= 0.0 {
            1.0 - 0.5 * I2_32M1
        } else {
            x
        }
    }

    /// R's `norm_rand()` by inversion: a 2^27-grid uniform refined by a second uniform, then
    /// the normal quantile.
    pub fn norm_rand(&mut self) -> f64 {
        let u = self.unif_rand();
        let u = (BIG * u).trunc() + self.unif_rand();
        qnorm(u / BIG, 0.0, 1.0)
    }

    /// `runif(1, a, b)`. Like R, `a == b` gives `a` without drawing; bad bounds give NaN.
    pub fn runif(&mut self, a: f64, b: f64) -> f64 {
        if !a.is_finite() || !b.is_finite() || b < a {
            return f64::NAN;
        }
        if a == b {
            return a;
        }
        a + (b - a) * self.unif_rand()
    }

    /// `rnorm(1, mu, sigma)`. Like R, `sigma == 0` (or an infinite mean) gives `mu` without drawing.
    pub fn rnorm(&mut self, mu: f64, sigma: f64) -> f64 {
        if mu.is_nan() || !sigma.is_finite() || sigma < 0.0 {
            return f64::NAN;
        }
        if sigma == 0.0 || !mu.is_finite() {
            return mu;
        }
        mu + sigma * self.norm_rand()
    }
}

// Wichura's AS 241 (PPND16) coefficients, highest power first, verbatim from the publication
// so that each rounds to the same double as in R.
#[allow(clippy::excessive_precision)]
const CENTRAL_NUM: [f64; 8] = [
    2.5090809287301226727e+3,
    3.3430575583588128105e+4,
    6.7265770927008700853e+4,
    4.5921953931549871457e+4,
    1.3731693765509461125e+4,
    1.9715909503065514427e+3,
    1.3314166789178437745e+2,
    3.3871328727963666080e+0,
];
#[allow(clippy::excessive_precision)]
const CENTRAL_DEN: [f64; 8] = [
    5.2264952788528545610e+3,
    2.8729085735721942674e+4,
    3.9307895800092710610e+4,
    2.1213794301586595867e+4,
    5.3941960214247511077e+3,
    6.8718700749205790830e+2,
    4.2313330701600911252e+1,
    1.0,
];
#[allow(clippy::excessive_precision)]
const NEAR_NUM: [f64; 8] = [
    7.74545014278341407640e-4,
    2.27238449892691845833e-2,
    2.41780725177450611770e-1,
    1.27045825245236838258e+0,
    3.64784832476320460504e+0,
    5.76949722146069140550e+0,
    4.63033784615654529590e+0,
    1.42343711074968357734e+0,
];
#[allow(clippy::excessive_precision)]
const NEAR_DEN: [f64; 8] = [
    1.05075007164441684324e-9,
    5.47593808499534494600e-4,
    1.51986665636164571966e-2,
    1.48103976427480074590e-1,
    6.89767334985100004550e-1,
    1.67638483018380384940e+0,
    2.05319162663775882187e+0,
    1.0,
];
#[allow(clippy::excessive_precision)]
const FAR_NUM: [f64; 8] = [
    2.01033439929228813265e-7,
    2.71155556874348757815e-5,
    1.24266094738807843860e-3,
    2.65321895265761230930e-2,
    2.96560571828504891230e-1,
    1.78482653991729133580e+0,
    5.46378491116411436990e+0,
    6.65790464350110377720e+0,
];
#[allow(clippy::excessive_precision)]
const FAR_DEN: [f64; 8] = [
    2.04426310338993978564e-15,
    1.42151175831644588870e-7,
    1.84631831751005468180e-5,
    7.86869131145613259100e-4,
    1.48753612908506148525e-2,
    1.36929880922735805310e-1,
    5.99832206555887937690e-1,
    1.0,
];

/// A polynomial by Horner's rule, coefficients highest power first (the published order of
/// operations, which the last bit depends on).
fn horner(coefficients: &[f64; 8], r: f64) -> f64 {
    coefficients[1..]
        .iter()
        .fold(coefficients[0], |acc, c| acc * r + c)
}

/// The normal quantile for a lower-tail probability `p` (Wichura 1988, AS 241 `PPND16`, as R's
/// `qnorm` evaluates it for probabilities that are not logged).
pub fn qnorm(p: f64, mu: f64, sigma: f64) -> f64 {
    if p.is_nan() || mu.is_nan() || sigma.is_nan() {
        return p + mu + sigma;
    }
    if !(0.0..=1.0).contains(&p) || sigma < 0.0 {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    if sigma == 0.0 {
        return mu;
    }
    let q = p - 0.5;
    let val = if q.abs() <= 0.425 {
        let r = 0.180625 - q * q;
        q * horner(&CENTRAL_NUM, r) / horner(&CENTRAL_DEN, r)
    } else {
        // The distance to the nearer end; R forms 1 - p as 0.5 - p + 0.5.
        let tail = if q < 0.0 { p } else { 0.5 - p + 0.5 };
        let r = (-tail.ln()).sqrt();
        let val = if r <= 5.0 {
            let r = r - 1.6;
            horner(&NEAR_NUM, r) / horner(&NEAR_DEN, r)
        } else {
            let r = r - 5.0;
            horner(&FAR_NUM, r) / horner(&FAR_DEN, r)
        };
        if q < 0.0 { -val } else { val }
    };
    mu + sigma * val
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qnorm_matches_reference_values_and_edges() {
        assert_eq!(qnorm(0.5, 0.0, 1.0), 0.0);
        assert_eq!(qnorm(0.0, 0.0, 1.0), f64::NEG_INFINITY);
        assert_eq!(qnorm(1.0, 0.0, 1.0), f64::INFINITY);
        assert!(qnorm(1.5, 0.0, 1.0).is_nan());
        // Reference values of the normal quantile (to 15 digits).
        assert!((qnorm(0.025, 0.0, 1.0) + 1.959_963_984_540_054).abs() < 1e-15);
        assert!((qnorm(1e-10, 0.0, 1.0) + 6.361_340_902_404_056).abs() < 1e-13);
        assert!((qnorm(1e-20, 0.0, 1.0) + 9.262_340_089_798_408).abs() < 1e-13);
        assert_eq!(qnorm(0.1, 2.0, 0.0), 2.0);
        assert!((qnorm(0.975, 0.0, 1.0) - 1.959_963_984_540_054).abs() < 1e-15);
    }

    #[test]
    fn equal_bounds_and_zero_sd_draw_nothing() {
        let mut a = RRng::set_seed(1);
        let mut b = RRng::set_seed(1);
        assert_eq!(a.runif(2.0, 2.0), 2.0);
        assert_eq!(a.rnorm(3.0, 0.0), 3.0);
        assert_eq!(a.unif_rand(), b.unif_rand());
        assert!(a.runif(1.0, 0.0).is_nan());
        assert!(a.rnorm(0.0, -1.0).is_nan());
    }
}
