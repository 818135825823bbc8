//! The dense-layer kernel every conditioner network runs: `out = W [x, c] + b`.
//!
//! **One summation order.** Each output is `bias + Σₖ wₖ xₖ` computed by [`dot_lanes`]'s fixed
//! order: `LANES` partial sums (lane `j` takes the elements `j, j + LANES, …` in increasing
//! order, each step a fused multiply-add [`Real::fmadd`]), then the lanes added in a fixed tree
//! `((l₀+l₄)+(l₂+l₆)) + ((l₁+l₅)+(l₃+l₇))`. Compilers vectorize the lanes without reassociating
//! anything, so every path (one sample or a block of samples, baked, runtime, training) and every
//! processor gets the same bits. Why this order:
//! - eight independent partial sums hide the multiply-add latency on every core, both within one
//!   row (one 8-lane vector per row on x86-64 and NEON, eight registers on a Cortex-M4F, whose
//!   weights and inputs stream with one `vldmia` of eight) and across samples (a batch keeps one
//!   vector of samples per lane, so the tree is vertical adds);
//! - the multiply-add is fused: one instruction on x86-64 since 2013, aarch64 and the Cortex-M4F
//!   (`vfma.f32`), twice the throughput of a multiply then an add, and one rounding instead of
//!   two; where it is not an instruction, libm computes the same bits in software;
//! - row-major weights (the model file's layout) give each row's partial sums contiguous loads.
//!
//! **Dispatch.** [`dense_one`] and [`dense_soa`] run the compilation for the CPU
//! ([`crate::arch::kernel`]); the generic kernels below take the multiply-add as a parameter
//! ([`MulAdd`]) so that the same code is the portable kernel and, inside functions compiled for
//! AVX2 or AVX-512, the vectorized one.
//!
//! **Register blocking.** [`dot_block`] computes `R` rows against `N` inputs at once: each weight
//! block is loaded once for `N` samples and each input block once for `R` rows, so on a SIMD CPU
//! the loop is bound by multiply-adds rather than loads. The order inside every single dot product
//! is still [`dot_lanes`]'s, so `R` and `N` change the speed, never the result. Single-sample
//! evaluation uses `R = ROWS` rows at a time.
//!
//! **Batches.** [`crate::block::BLOCK`] samples at a time are stored as structure of arrays
//! (`h[k][s]`) and go through [`dense_soa`]: there a vector register holds one lane of all the
//! samples, so each step is a broadcast weight times a loaded row (shared by the rows of one step),
//! and the lane tree is vertical adds — again the same order per sample, so the same bits.
//!
//! Everything here is free of panic paths: lengths are reconciled up front (the common length of
//! all operands is used), so indexing is provably in bounds.

use crate::{Real, Weight};

/// The multiply-add a kernel is instantiated with: [`Portable`] ([`Real::fmadd`]) or, on x86-64,
/// the FMA instruction inside code compiled for it. Both round once, so both give the same bits.
pub trait MulAdd: Copy {
    /// `a · b + c`, rounded once.
    fn mul_add<S: Real>(self, a: S, b: S, c: S) -> S;
}

/// [`Real::fmadd`]: the multiply-add of every target's baseline.
#[derive(Clone, Copy, Debug)]
pub struct Portable;

impl MulAdd for Portable {
    #[inline(always)]
    fn mul_add<S: Real>(self, a: S, b: S, c: S) -> S {
        a.fmadd(b, c)
    }
}

/// Number of independent partial sums in a dot product (see the module docs).
pub const LANES: usize = 8;

/// Rows per step of single-sample evaluation: four independent accumulator chains hide the
/// multiply-add latency. Measured on x86-64 (CPU time of 200 000 MAF 5×64×64 `log_prob` calls):
/// 1 row 1.8 s, 4 rows 0.9–1.05 s, 8 rows 1.06–1.18 s. 1 on targets without SIMD (Cortex-M),
/// where more accumulators than registers would only spill.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub const ROWS: usize = 4;
/// Rows per step of single-sample evaluation (see above).
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub const ROWS: usize = 1;

/// `Σ wᵢ xᵢ` over the common length of `w` and `x`, in the fixed order of the module docs.
#[inline(always)]
pub fn dot_lanes<S: Real, W: Weight>(w: &[W], x: &[S]) -> S {
    let [[v]] = dot_block::<S, W, Portable, 1, 1>(Portable, [w], [x]);
    v
}

/// The `R × N` dot products `w_r · x_s` (over the common length of all operands), each in the
/// order of [`dot_lanes`].
#[inline(always)]
pub fn dot_block<S: Real, W: Weight, F: MulAdd, const R: usize, const N: usize>(
    f: F,
    w: [&[W]; R],
    x: [&[S]; N],
) -> [[S; N]; R] {
    let mut k = usize::MAX;
    for r in &w {
        k = k.min(r.len());
    }
    for s in &x {
        k = k.min(s.len());
    }
    // All operands cut to length k: every block slice below has exactly k / LANES blocks and
    // every tail exactly k % LANES elements, which is what lets the compiler drop the checks.
    let w = w.map(|r| r.get(..k).unwrap_or(&[]));
    let x = x.map(|s| s.get(..k).unwrap_or(&[]));
    let wb = w.map(|r| r.as_chunks::<LANES>());
    let xb = x.map(|s| s.as_chunks::<LANES>());
    let blocks = k / LANES;
    let mut acc = [[[S::ZERO; LANES]; N]; R];
    for b in 0..blocks {
        // Every operand has exactly `blocks` blocks, so these lookups never fail.
        let wv: [[S; LANES]; R] = core::array::from_fn(|r| {
            wb[r]
                .0
                .get(b)
                .map_or([S::ZERO; LANES], |c| c.map(|v| v.get::<S>()))
        });
        let xv: [[S; LANES]; N] =
            core::array::from_fn(|s| xb[s].0.get(b).copied().unwrap_or([S::ZERO; LANES]));
        for r in 0..R {
            for s in 0..N {
                for j in 0..LANES {
                    acc[r][s][j] = f.mul_add(wv[r][j], xv[s][j], acc[r][s][j]);
                }
            }
        }
    }
    // The tail, with a constant lane index per step (see `dot_soa`).
    for j in 0..LANES {
        for r in 0..R {
            for s in 0..N {
                if let (Some(wi), Some(&xi)) = (wb[r].1.get(j), xb[s].1.get(j)) {
                    acc[r][s][j] = f.mul_add(wi.get::<S>(), xi, acc[r][s][j]);
                }
            }
        }
    }
    acc.map(|acc_r| acc_r.map(|a| ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]))))
}

/// `out_s = W [x_s, c_s] + b` for `N` samples at once, `R` rows at a time.
///
/// `w` is `out × (kx + kc)` row-major with `kx = x_s.len()` and `kc = c_s.len()` (the same for
/// every sample); each output is `(bᵣ + wᵣₓ · x_s) + wᵣ꜀ · c_s` (the context term only when
/// `kc > 0`), the order [`crate::nn::Mlp`] has always used.
#[inline(always)]
pub fn dense_with<S: Real, W: Weight, F: MulAdd, const R: usize, const N: usize>(
    f: F,
    w: &[W],
    b: &[W],
    x: [&[S]; N],
    c: [&[S]; N],
    out: &mut [&mut [S]; N],
) {
    let kx = x.first().map_or(0, |v| v.len());
    let kc = c.first().map_or(0, |v| v.len());
    let n_in = kx + kc;
    if n_in == 0 {
        return;
    }
    let mut rows = w.chunks_exact(n_in).zip(b.iter());
    let mut r0 = 0;
    loop {
        let (got, wx, wc, bias) = next_rows::<S, W, R>(&mut rows, kx);
        if got == 0 {
            return;
        }
        let dx = dot_block::<S, W, F, R, N>(f, wx, x);
        let dc = if kc > 0 {
            dot_block::<S, W, F, R, N>(f, wc, c)
        } else {
            [[S::ZERO; N]; R]
        };
        for i in 0..got.min(R) {
            for (s, o) in out.iter_mut().enumerate() {
                let mut v = bias[i] + dx[i][s];
                if kc > 0 {
                    v += dc[i][s];
                }
                if let Some(slot) = o.get_mut(r0 + i) {
                    *slot = v;
                }
            }
        }
        if got < R {
            return;
        }
        r0 += R;
    }
}

/// The next `R` rows of a dense layer (`(row, bias)` pairs), each row split into its `x` part
/// (`kx` weights) and its context part; returns how many rows there were. A short last group
/// repeats its first row: the dot-product kernels work on the common length of their operands,
/// so no slot may be empty; the extra results are not written.
#[inline(always)]
#[allow(clippy::type_complexity)]
fn next_rows<'w, S: Real, W: Weight, const R: usize>(
    rows: &mut impl Iterator<Item = (&'w [W], &'w W)>,
    kx: usize,
) -> (usize, [&'w [W]; R], [&'w [W]; R], [S; R]) {
    let mut wx: [&[W]; R] = [&[]; R];
    let mut wc: [&[W]; R] = [&[]; R];
    let mut bias = [S::ZERO; R];
    let mut got = 0;
    for i in 0..R {
        let Some((row, bv)) = rows.next() else { break };
        let (a, bpart) = row.split_at_checked(kx).unwrap_or((row, &[]));
        wx[i] = a;
        wc[i] = bpart;
        bias[i] = bv.get::<S>();
        got += 1;
    }
    if got > 0 {
        for i in got..R {
            wx[i] = wx[0];
            wc[i] = wc[0];
        }
    }
    (got, wx, wc, bias)
}

/// `acc_r += w_r · x` for every row `r` and sample: one lane step of [`dot_soa`] (no loop over
/// lanes, so nothing depends on the compiler unrolling one).
#[inline(always)]
fn lane_step<S: Real, F: MulAdd, const R: usize, const NB: usize>(
    f: F,
    acc: &mut [[S; NB]; R],
    w: [S; R],
    x: &[S; NB],
) {
    for (a, wr) in acc.iter_mut().zip(w) {
        for (ai, &xi) in a.iter_mut().zip(x) {
            *ai = f.mul_add(wr, xi, *ai);
        }
    }
}

/// Block `b` of every row, or `None` if some row has fewer blocks.
#[inline(always)]
fn block_of<'w, W, const R: usize>(wb: &[&'w [[W; LANES]]; R], b: usize) -> Option<[&'w [W; LANES]; R]> {
    let first = wb.first()?.get(b)?;
    let mut out = [first; R];
    for (o, rb) in out.iter_mut().zip(wb) {
        *o = rb.get(b)?;
    }
    Some(out)
}

/// The dot products `w_r · x` for `R` rows against `NB` samples stored as structure of arrays
/// (`x[k][s]` = element `k` of sample `s`), each in [`dot_lanes`]'s order: lane `j` of every
/// sample is one vector register of `NB` samples, so each step is one broadcast weight times one
/// loaded row of samples (loaded once for all `R` rows), and the final tree is vertical adds.
#[inline(always)]
fn dot_soa<S: Real, W: Weight, F: MulAdd, const R: usize, const NB: usize>(
    f: F,
    w: [&[W]; R],
    x: &[[S; NB]],
) -> [[S; NB]; R] {
    let mut k = x.len();
    for r in &w {
        k = k.min(r.len());
    }
    let x = x.get(..k).unwrap_or(&[]);
    let w = w.map(|r| r.get(..k).unwrap_or(&[]));
    let (xb, xt) = x.as_chunks::<LANES>();
    let wb = w.map(|r| r.as_chunks::<LANES>().0);
    let wt = w.map(|r| r.as_chunks::<LANES>().1);
    // `acc[j][r]`: lane `j` of row `r`. Only constant indices into it (the lanes are spelled out
    // below), so the accumulators stay in registers. Every operand has exactly `xb.len()` blocks
    // and `xt.len()` tail elements.
    let mut acc = [[[S::ZERO; NB]; R]; LANES];
    macro_rules! lanes {
        ($xv:ident, $wv:ident, $($j:literal)*) => {$(
            lane_step(f, &mut acc[$j], $wv.map(|c| c[$j].get::<S>()), &$xv[$j]);
        )*};
    }
    for (b, xv) in xb.iter().enumerate() {
        // Never `None` (see above); stopping there keeps the weights plain loads.
        let Some(wv) = block_of(&wb, b) else { break };
        lanes!(xv, wv, 0 1 2 3 4 5 6 7);
    }
    // The tail, lane `j` taking tail element `j`.
    macro_rules! tail {
        ($($j:literal)*) => {$(
            if let Some(xv) = xt.get($j) {
                let wv: [S; R] = wt.map(|t| t.get($j).map_or(S::ZERO, |v| v.get::<S>()));
                lane_step(f, &mut acc[$j], wv, xv);
            }
        )*};
    }
    tail!(0 1 2 3 4 5 6 7);
    let mut out = [[S::ZERO; NB]; R];
    for (r, o) in out.iter_mut().enumerate() {
        for (s, v) in o.iter_mut().enumerate() {
            let a = |j: usize| {
                acc.get(j)
                    .and_then(|l| l.get(r))
                    .and_then(|l| l.get(s))
                    .copied()
                    .unwrap_or(S::ZERO)
            };
            *v = ((a(0) + a(4)) + (a(2) + a(6))) + ((a(1) + a(5)) + (a(3) + a(7)));
        }
    }
    out
}

/// `out = W [x, c] + b` for `NB` samples in structure-of-arrays form (`x[k][s]`, `c[k][s]`,
/// `out[r][s]`), in the compilation for the CPU; every output is bit for bit what [`dense_one`]
/// gives for that sample.
#[inline(always)]
pub fn dense_soa<S: Real, W: Weight, const NB: usize>(
    w: &[W],
    b: &[W],
    x: &[[S; NB]],
    c: &[[S; NB]],
    out: &mut [[S; NB]],
) {
    #[cfg(target_arch = "x86_64")]
    if crate::arch::x86_64::dense_soa::<S, W, NB, false>(crate::arch::kernel(), w, b, x, c, out) {
        return;
    }
    // One sample per block on the Cortex-M4F: the single-sample kernel.
    #[cfg(flow_vfma)]
    if NB == 1
        && crate::arch::arm::dense_f32(w, b, x.as_flattened(), c.as_flattened(), out.as_flattened_mut())
    {
        return;
    }
    dense_soa_with::<S, W, Portable, 1, NB>(Portable, w, b, x, c, out);
}

/// [`dense_soa`], then ReLU on every output ([`crate::nn::mlp::Activation::Relu`]: `v` if
/// `v > 0`, else `+0`), fused into the kernel's store where it can be.
#[inline(always)]
pub fn dense_soa_relu<S: Real, W: Weight, const NB: usize>(
    w: &[W],
    b: &[W],
    x: &[[S; NB]],
    c: &[[S; NB]],
    out: &mut [[S; NB]],
) {
    #[cfg(target_arch = "x86_64")]
    if crate::arch::x86_64::dense_soa::<S, W, NB, true>(crate::arch::kernel(), w, b, x, c, out) {
        return;
    }
    dense_soa(w, b, x, c, out);
    crate::nn::mlp::Activation::Relu.apply_all(out.as_flattened_mut());
}

/// [`dense_soa`] with multiply-add `f`, `R` rows at a time: its accumulators are `R × LANES`
/// vectors of samples, which must fit the vector registers (two rows with AVX-512's 32: each
/// loaded input vector feeds two multiply-adds; three made the compiler give up vectorizing).
#[inline(always)]
pub fn dense_soa_with<S: Real, W: Weight, F: MulAdd, const R: usize, const NB: usize>(
    f: F,
    w: &[W],
    b: &[W],
    x: &[[S; NB]],
    c: &[[S; NB]],
    out: &mut [[S; NB]],
) {
    let (kx, kc) = (x.len(), c.len());
    let n_in = kx + kc;
    if n_in == 0 {
        return;
    }
    let mut rows = w.chunks_exact(n_in).zip(b.iter());
    let mut outs = out.iter_mut();
    loop {
        let (got, wx, wc, bias) = next_rows::<S, W, R>(&mut rows, kx);
        if got == 0 {
            return;
        }
        let dx = dot_soa::<S, W, F, R, NB>(f, wx, x);
        let dc = if kc > 0 {
            dot_soa::<S, W, F, R, NB>(f, wc, c)
        } else {
            [[S::ZERO; NB]; R]
        };
        for i in 0..got.min(R) {
            let Some(o) = outs.next() else { return };
            for (s, v) in o.iter_mut().enumerate() {
                let mut acc = bias[i] + dx[i][s];
                if kc > 0 {
                    acc += dc[i][s];
                }
                *v = acc;
            }
        }
        if got < R {
            return;
        }
    }
}

/// One sample through one dense layer: `out = W [x, c] + b`, in the compilation for the CPU.
#[inline(always)]
pub fn dense_one<S: Real, W: Weight>(w: &[W], b: &[W], x: &[S], c: &[S], out: &mut [S]) {
    #[cfg(target_arch = "x86_64")]
    if crate::arch::x86_64::dense_one::<S, W, false>(crate::arch::kernel(), w, b, x, c, out) {
        return;
    }
    #[cfg(flow_vfma)]
    if crate::arch::arm::dense_f32(w, b, x, c, out) {
        return;
    }
    dense_with::<S, W, Portable, ROWS, 1>(Portable, w, b, [x], [c], &mut [out]);
}

/// [`dense_one`], then ReLU on every output ([`crate::nn::mlp::Activation::Relu`]), fused into
/// the kernel's stores where it can be.
#[inline(always)]
pub fn dense_one_relu<S: Real, W: Weight>(w: &[W], b: &[W], x: &[S], c: &[S], out: &mut [S]) {
    #[cfg(target_arch = "x86_64")]
    if crate::arch::x86_64::dense_one::<S, W, true>(crate::arch::kernel(), w, b, x, c, out) {
        return;
    }
    dense_one(w, b, x, c, out);
    crate::nn::mlp::Activation::Relu.apply_all(out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Lcg;

    /// The reference: one plain loop per output in the documented order.
    fn reference(w: &[f32], x: &[f32]) -> f32 {
        let mut acc = [0.0f32; LANES];
        for (i, (&wi, &xi)) in w.iter().zip(x).enumerate() {
            let j = if i < w.len() / LANES * LANES {
                i % LANES
            } else {
                i - w.len() / LANES * LANES
            };
            acc[j] = wi.fmadd(xi, acc[j]);
        }
        ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]))
    }

    #[test]
    fn blocked_dot_products_equal_the_reference_order_bit_for_bit() {
        let mut rng = Lcg(3);
        for k in [0usize, 1, 5, 8, 13, 64, 67] {
            let w: [std::vec::Vec<f32>; 3] =
                core::array::from_fn(|_| (0..k).map(|_| rng.normal() as f32).collect());
            let x: [std::vec::Vec<f32>; 2] =
                core::array::from_fn(|_| (0..k).map(|_| rng.normal() as f32).collect());
            let got = dot_block::<f32, f32, Portable, 3, 2>(Portable, [&w[0], &w[1], &w[2]], [&x[0], &x[1]]);
            for r in 0..3 {
                for s in 0..2 {
                    let want = reference(&w[r], &x[s]);
                    assert_eq!(got[r][s].to_bits(), want.to_bits(), "k={k} r={r} s={s}");
                    assert_eq!(dot_lanes(&w[r], &x[s]).to_bits(), want.to_bits());
                }
            }
        }
    }

    #[test]
    fn dense_equals_row_by_row_for_every_row_and_sample_grouping() {
        let mut rng = Lcg(11);
        let (m, kx, kc) = (7, 9, 3);
        let w: std::vec::Vec<f32> = (0..m * (kx + kc)).map(|_| rng.normal() as f32).collect();
        let b: std::vec::Vec<f32> = (0..m).map(|_| rng.normal() as f32).collect();
        let xs: [std::vec::Vec<f32>; 3] =
            core::array::from_fn(|_| (0..kx).map(|_| rng.normal() as f32).collect());
        let cs: [std::vec::Vec<f32>; 3] =
            core::array::from_fn(|_| (0..kc).map(|_| rng.normal() as f32).collect());
        let want: [std::vec::Vec<f32>; 3] = core::array::from_fn(|s| {
            (0..m)
                .map(|r| {
                    let row = &w[r * (kx + kc)..(r + 1) * (kx + kc)];
                    (b[r] + reference(&row[..kx], &xs[s])) + reference(&row[kx..], &cs[s])
                })
                .collect()
        });
        let mut o = [[0.0f32; 7]; 3];
        {
            let [o0, o1, o2] = &mut o;
            let mut outs: [&mut [f32]; 3] = [o0, o1, o2];
            dense_with::<f32, f32, Portable, 2, 3>(
                Portable,
                &w,
                &b,
                [&xs[0], &xs[1], &xs[2]],
                [&cs[0], &cs[1], &cs[2]],
                &mut outs,
            );
        }
        for s in 0..3 {
            assert_eq!(o[s].as_slice(), want[s].as_slice(), "sample {s}");
            let mut one = [0.0f32; 7];
            dense_one(&w, &b, &xs[s], &cs[s], &mut one);
            assert_eq!(one.as_slice(), want[s].as_slice());
            let mut r3 = [0.0f32; 7];
            dense_with::<f32, f32, Portable, 3, 1>(Portable, &w, &b, [&xs[s]], [&cs[s]], &mut [&mut r3[..]]);
            assert_eq!(r3.as_slice(), want[s].as_slice());
        }
    }

    #[test]
    fn dense_soa_equals_the_reference_for_every_sample_and_row_count() {
        let mut rng = Lcg(5);
        for (m, kx, kc) in [(7, 13, 3), (8, 64, 0), (1, 2, 0), (5, 9, 0)] {
            let w: std::vec::Vec<f32> = (0..m * (kx + kc)).map(|_| rng.normal() as f32).collect();
            let b: std::vec::Vec<f32> = (0..m).map(|_| rng.normal() as f32).collect();
            let x: std::vec::Vec<[f32; 8]> = (0..kx)
                .map(|_| core::array::from_fn(|_| rng.normal() as f32))
                .collect();
            let c: std::vec::Vec<[f32; 8]> = (0..kc)
                .map(|_| core::array::from_fn(|_| rng.normal() as f32))
                .collect();
            let mut out = std::vec![[0.0f32; 8]; m];
            dense_soa(&w, &b, &x, &c, &mut out);
            for (r, o) in out.iter().enumerate() {
                let row = &w[r * (kx + kc)..(r + 1) * (kx + kc)];
                for s in 0..8 {
                    let xs: std::vec::Vec<f32> = x.iter().map(|v| v[s]).collect();
                    let cs: std::vec::Vec<f32> = c.iter().map(|v| v[s]).collect();
                    let mut want = b[r] + reference(&row[..kx], &xs);
                    if kc > 0 {
                        want += reference(&row[kx..], &cs);
                    }
                    assert_eq!(o[s].to_bits(), want.to_bits(), "m={m} kx={kx} r={r} s={s}");
                }
            }
        }
    }
}
