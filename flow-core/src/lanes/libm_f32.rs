//! libm's `expf`, `logf` and `log1pf` (FreeBSD's `e_expf.c`, `e_logf.c`, `s_log1pf.c`, as ported
//! by the `libm` crate 0.2) written without branches: every case is computed and the result picked
//! with selects, so a loop over lanes compiles to vector instructions. Each function returns the
//! bits `libm` returns for every `f32` input (where libm returns a NaN, a NaN), which the tests check for all
//! 2³² inputs (`cargo test --release -p flow-core -- --ignored all_inputs`) and for a dense sample in
//! the default run. The operations, constants and their order are libm's; only the control flow
//! differs.

const EXP_LN2_HI: f32 = f32::from_bits(0x3f31_7200);
const EXP_LN2_LO: f32 = f32::from_bits(0x35bf_be8e);
const INV_LN2: f32 = f32::from_bits(0x3fb8_aa3b);
const P1: f32 = f32::from_bits(0x3e2a_aa8f);
const P2: f32 = f32::from_bits(0xbb35_5215);

/// 2ᵏ for an integer `k` in the normal exponent range `−126..=127`.
#[inline(always)]
fn pow2(k: i32) -> f32 {
    f32::from_bits((k.wrapping_add(0x7f) as u32) << 23)
}

/// The integer `k` held exactly in `kf` (`|kf| < 2²²`), by adding 1.5 · 2²³ and reading the
/// mantissa: bit operations only, so a lane loop vectorizes (`as i32` saturates, which compilers
/// turn into scalar code per lane).
#[inline(always)]
fn int_of(kf: f32) -> i32 {
    ((kf + 12_582_912.0).to_bits() as i32).wrapping_sub(0x4b40_0000)
}

/// `v` truncated toward zero for `|v| < 2²³` (libm's `(v as i32) as f32` there), by rounding
/// `|v|` with 2²³ and stepping back when it rounded up; other inputs give a value the caller
/// discards.
#[inline(always)]
fn trunc_small(v: f32) -> f32 {
    let a = f32::from_bits(v.to_bits() & 0x7fff_ffff);
    let r = (a + 8_388_608.0) - 8_388_608.0;
    let t = if r > a { r - 1.0 } else { r };
    f32::from_bits(t.to_bits() | (v.to_bits() & 0x8000_0000))
}

/// `eˣ`, the bits of `libm::expf`.
///
/// libm reduces `x = k ln 2 + r`, evaluates `y ≈ eʳ` and returns `scalbnf(y, k)`, the correctly
/// rounded `y · 2ᵏ`. Here `2ᵏ` is applied as `2^⌊k/2⌋` (exact: `y · 2^⌊k/2⌋` stays normal for
/// `k ∈ [−150, 128]`) then `2^(k − ⌊k/2⌋)`, which rounds once: the same value. libm's
/// `k = (x/ln 2 ± ½) as i32` is `trunc_small` (|x/ln 2| < 151 wherever `k` is used).
#[inline(always)]
pub fn expf(x: f32) -> f32 {
    let bits = x.to_bits();
    let negative = bits >> 31 != 0;
    let hx = bits & 0x7fff_ffff;
    let half = if negative { -0.5 } else { 0.5 };
    let kf = if hx > 0x3f85_1592 {
        trunc_small(INV_LN2 * x + half)
    } else if hx > 0x3eb1_7218 {
        if negative {
            -1.0
        } else {
            1.0
        }
    } else {
        0.0
    };
    let hi = x - kf * EXP_LN2_HI;
    let lo = kf * EXP_LN2_LO;
    let r = hi - lo;
    let rr = r * r;
    let c = r - rr * (P1 + rr * P2);
    let y = 1.0 + (r * c / (2.0 - c) - lo + hi);
    let k = int_of(kf);
    let k1 = k >> 1;
    let scaled = y * pow2(k1) * pow2(k.wrapping_sub(k1));
    let tiny = 1.0 + x;
    let overflow = x * f32::from_bits(0x7f00_0000);
    if hx > 0x7f80_0000 {
        x
    } else if hx >= 0x42b1_7218 && !negative {
        overflow
    } else if hx >= 0x42cf_f1b5 && negative {
        0.0
    } else if hx <= 0x3900_0000 {
        tiny
    } else {
        scaled
    }
}

const LN2_HI: f32 = f32::from_bits(0x3f31_7180);
const LN2_LO: f32 = f32::from_bits(0x3717_f7d1);
const LG1: f32 = f32::from_bits(0x3f2a_aaaa);
const LG2: f32 = f32::from_bits(0x3ecc_ce13);
const LG3: f32 = f32::from_bits(0x3e91_e9ee);
const LG4: f32 = f32::from_bits(0x3e78_9e26);

/// `ln(1 + f)` of the reduced argument plus `dk ln 2`, libm's shared kernel of `logf`/`log1pf`
/// (`c`: log1pf's correction term, 0 in `logf`, added where log1pf adds it).
#[inline(always)]
fn log_kernel(f: f32, dk: f32, c: f32, with_c: bool) -> f32 {
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * (LG2 + w * LG4);
    let t2 = z * (LG1 + w * LG3);
    let r = t2 + t1;
    let hfsq = 0.5 * f * f;
    if with_c {
        s * (hfsq + r) + (dk * LN2_LO + c) - hfsq + f + dk * LN2_HI
    } else {
        s * (hfsq + r) + dk * LN2_LO - hfsq + f + dk * LN2_HI
    }
}

/// `ln x`, the bits of `libm::logf`.
#[inline(always)]
pub fn logf(x: f32) -> f32 {
    let ix0 = x.to_bits();
    let subnormal = ix0 < 0x0080_0000;
    let xs = if subnormal {
        x * f32::from_bits(0x4c00_0000)
    } else {
        x
    };
    let k0 = if subnormal { -25 } else { 0 };
    let ix = xs.to_bits().wrapping_add(0x3f80_0000 - 0x3f35_04f3);
    let k = k0 + ((ix >> 23) as i32) - 0x7f;
    let f = f32::from_bits((ix & 0x007f_ffff) + 0x3f35_04f3) - 1.0;
    let v = log_kernel(f, k as f32, 0.0, false);
    if ix0 << 1 == 0 {
        f32::NEG_INFINITY
    } else if ix0 >> 31 != 0 {
        f32::NAN
    } else if ix0 >= 0x7f80_0000 {
        x
    } else if ix0 == 0x3f80_0000 {
        0.0
    } else {
        v
    }
}

/// `ln(1 + x)`, the bits of `libm::log1pf`.
#[inline(always)]
pub fn log1pf(x: f32) -> f32 {
    let ix = x.to_bits();
    // libm: k = 0, f = x, c = 0 when √2/2 ≤ 1 + x < √2 (x in [−0.2929, 0.4142)); otherwise
    // u = 1 + x is reduced with a correction term c.
    let near = (ix < 0x3ed4_13d0 || ix >> 31 > 0) && ix <= 0xbe95_f619;
    let u = 1.0 + x;
    let iu = u.to_bits().wrapping_add(0x3f80_0000 - 0x3f35_04f3);
    let ku = (iu >> 23) as i32 - 0x7f;
    let cu = if ku >= 2 { 1.0 - (u - x) } else { x - (u - 1.0) };
    let cu = if ku < 25 { cu / u } else { 0.0 };
    let fu = f32::from_bits((iu & 0x007f_ffff) + 0x3f35_04f3) - 1.0;
    let (f, k, c) = if near { (x, 0, 0.0) } else { (fu, ku, cu) };
    let v = log_kernel(f, k as f32, c, true);
    if ix >= 0xbf80_0000 {
        if x == -1.0 {
            f32::NEG_INFINITY
        } else {
            f32::NAN
        }
    } else if (ix >> 31 == 0 && ix >= 0x7f80_0000) || ix << 1 < 0x3380_0000 << 1 {
        // +∞ or NaN, and |x| < 2⁻²⁴: x itself.
        x
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Same bits, or both NaN.
    fn same(a: f32, b: f32) -> bool {
        a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
    }

    /// Checks `f` against `reference` on every `step`-th bit pattern (offset `start`) and on the
    /// edges of each of libm's cases; returns the first mismatch.
    fn check(f: fn(f32) -> f32, reference: fn(f32) -> f32, start: u32, step: u32) -> Option<(u32, f32, f32)> {
        let edges = [
            0u32,
            1,
            0x0080_0000,
            0x007f_ffff,
            0x3380_0000,
            0x3900_0000,
            0x3900_0001,
            0x3eb1_7218,
            0x3eb1_7219,
            0x3ed4_13d0,
            0x3ed4_13cf,
            0x3f35_04f3,
            0x3f80_0000,
            0x3f85_1592,
            0x3f85_1593,
            0x42ae_ac50,
            0x42b1_7217,
            0x42b1_7218,
            0x42cf_f1b4,
            0x42cf_f1b5,
            0x7f7f_ffff,
            0x7f80_0000,
            0x7fc0_0000,
            0xbe95_f619,
            0xbe95_f61a,
            0xbf7f_ffff,
            0xbf80_0000,
            0xbf80_0001,
        ];
        let pattern = |b: u32| {
            [
                b,
                b.wrapping_add(1),
                b.wrapping_sub(1),
                b | 0x8000_0000,
                b & 0x7fff_ffff,
            ]
        };
        let edge_bits = edges.iter().flat_map(|&b| pattern(b));
        let sample = (0..=u32::MAX / step).map(|i| start.wrapping_add(i.wrapping_mul(step)));
        edge_bits.chain(sample).find_map(|b| {
            let x = f32::from_bits(b);
            let (got, want) = (f(x), reference(x));
            (!same(got, want)).then_some((b, got, want))
        })
    }

    #[test]
    fn expf_logf_log1pf_give_libms_bits_on_a_dense_sample() {
        assert_eq!(check(expf, libm::expf, 7, 211), None);
        assert_eq!(check(logf, libm::logf, 3, 211), None);
        assert_eq!(check(log1pf, libm::log1pf, 5, 211), None);
    }

    #[test]
    #[ignore = "2³² inputs per function: about 100 s in release"]
    fn expf_logf_log1pf_give_libms_bits_on_all_inputs() {
        assert_eq!(check(expf, libm::expf, 0, 1), None);
        assert_eq!(check(logf, libm::logf, 0, 1), None);
        assert_eq!(check(log1pf, libm::log1pf, 0, 1), None);
    }
}
