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
        q * (((((((r * 2509.080_928_730_122_7 + 33430.575_583_588_128) * r + 67265.770_927_008_7) * r
            + 45921.953_931_549_871)
            * r
            + 13731.693_765_509_461)
            * r
            + 1971.590_950_306_551_4)
            * r
            + 133.141_667_891_784_38)
            * r
            + 3.387_132_872_796_366_6)
            / (((((((r * 5226.495_278_852_545_9 + 28729.085_735_721_943) * r + 39307.895_800_092_71) * r
                + 21213.794_301_586_596)
                * r
                + 5394.196_021_424_751)
                * r
                + 687.187_007_492_057_9)
                * r
                + 42.313_330_701_600_911)
                * r
                + 1.0)
    } else {
        // The distance to the nearer end; R forms 1 - p as 0.5 - p + 0.5.
        let tail = if q < 0.0 { p } else { 0.5 - p + 0.5 };
        let mut r = (-tail.ln()).sqrt();
        let val = if r <= 5.0 {
            r -= 1.6;
            (((((((r * 7.745_450_142_783_414e-4 + 0.022_723_844_989_269_184) * r + 0.241_780_725_177_450_6) * r
                + 1.270_458_252_452_368_4)
                * r
                + 3.647_848_324_763_204_5)
                * r
                + 5.769_497_221_460_691)
                * r
                + 4.630_337_846_156_545)
                * r
                + 1.423_437_110_749_683_6)
                / (((((((r * 1.050_750_071_644_416_8e-9 + 5.475_938_084_995_345e-4) * r
                    + 0.015_198_666_563_616_457)
                    * r
                    + 0.148_103_976_427_480_07)
                    * r
                    + 0.689_767_334_985_1)
                    * r
                    + 1.676_384_830_183_803_8)
                    * r
                    + 2.053_191_626_637_758_8)
                    * r
                    + 1.0)
        } else {
            r -= 5.0;
            (((((((r * 2.010_334_399_292_288_1e-7 + 2.711_555_568_743_487_6e-5) * r
                + 0.001_242_660_947_388_078_4)
                * r
                + 0.026_532_189_526_576_124)
                * r
                + 0.296_560_571_828_504_9)
                * r
                + 1.784_826_539_917_291_3)
                * r
                + 5.463_784_911_164_114)
                * r
                + 6.657_904_643_501_103)
                / (((((((r * 2.044_263_103_389_939_8e-15 + 1.421_511_758_316_445_9e-7) * r
                    + 1.846_318_317_510_054_8e-5)
                    * r
                    + 7.868_691_311_456_133e-4)
                    * r
                    + 0.014_875_361_290_850_615)
                    * r
                    + 0.136_929_880_922_735_8)
                    * r
                    + 0.599_832_206_555_887_9)
                    * r
                    + 1.0)
        };
        if q < 0.0 {
            -val
        } else {
            val
        }
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
