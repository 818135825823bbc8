//! The cached forward pass and the vector-Jacobian product of an [`Mlp`] for a block of `N`
//! samples at once, the building blocks of batch `grad_log_prob` and of training's gradients.
//!
//! As in [`Mlp::forward_block`], the samples are transposed to structure of arrays (`h[k][s]`,
//! one `[S; N]` per unit), so every dense layer is one [`dense_soa`] call and every transposed
//! product `Wᵀ g` is a loop whose vector lanes are the samples. Each sum runs in the order of the
//! single-sample [`Mlp::forward_cached`] and [`Mlp::backward`] (dot products in `dot_lanes` order;
//! `Wᵀ g` over the output rows in ascending order, multiply then add), so every sample gets the
//! single-sample bits. Residual networks run sample by sample.

use super::{Activation, Mlp};
use crate::cotangent::{BlockGrads, Grads};
use crate::nn::dense::dense_soa;
use crate::{slicing, Real, Weight};

/// Writes `[x[s], c[s]]` into column `s` of `dst` (`dst[k][s]`; missing values are 0).
#[inline(always)]
pub(super) fn transpose_in<S: Real, const N: usize>(
    dst: &mut [[S; N]],
    x: &[&[S]; N],
    c: &[&[S]; N],
    kx: usize,
) {
    for (k, row) in dst.iter_mut().enumerate() {
        for (v, (xs, cs)) in row.iter_mut().zip(x.iter().zip(c.iter())) {
            let src = if k < kx { xs.get(k) } else { cs.get(k - kx) };
            *v = src.copied().unwrap_or(S::ZERO);
        }
    }
}

/// Writes column `s` of `src` into `dst[s]` (as far as both reach).
#[inline(always)]
pub(super) fn transpose_out<S: Real, const N: usize>(src: &[[S; N]], dst: &mut [&mut [S]; N]) {
    for (r, row) in src.iter().enumerate() {
        for (o, &v) in dst.iter_mut().zip(row.iter()) {
            if let Some(slot) = o.get_mut(r) {
                *slot = v;
            }
        }
    }
}

/// `g_in[k][s] (+)= Σ_r w[r][k] · g[r][s]` over the rows `r` in ascending order (from 0 when
/// `overwrite`, else from the current `g_in`): per sample, the order of the single-sample
/// `transpose_mul` and `add_transpose_mul`.
///
/// Eight inputs at a time: eight independent sums per sample rather than one chain of `n_out`
/// dependent adds (each sum still adds its rows in ascending order).
#[inline(always)]
fn transpose_mul_soa<S: Real, W: Weight, const N: usize>(
    w: &[W],
    n_in: usize,
    g: &[[S; N]],
    g_in: &mut [[S; N]],
    overwrite: bool,
) {
    const K: usize = 8;
    let mut groups = g_in.chunks_exact_mut(K);
    let mut k0 = 0;
    for gi in groups.by_ref() {
        transpose_mul_group::<S, W, N, K>(w, n_in, g, gi, k0, overwrite);
        k0 += K;
    }
    for gi in groups.into_remainder().chunks_mut(1) {
        transpose_mul_group::<S, W, N, 1>(w, n_in, g, gi, k0, overwrite);
        k0 += 1;
    }
}

/// [`transpose_mul_soa`] for the `K` inputs `k0..k0 + K` (`g_in` holds their `K` rows).
#[inline(always)]
fn transpose_mul_group<S: Real, W: Weight, const N: usize, const K: usize>(
    w: &[W],
    n_in: usize,
    g: &[[S; N]],
    g_in: &mut [[S; N]],
    k0: usize,
    overwrite: bool,
) {
    let mut acc = [[S::ZERO; N]; K];
    if !overwrite {
        for (a, gi) in acc.iter_mut().zip(g_in.iter()) {
            *a = *gi;
        }
    }
    for (row, gr) in slicing::rows(w, n_in).zip(g) {
        for (j, a) in acc.iter_mut().enumerate() {
            let wk: S = slicing::weight(row, k0 + j);
            for (av, &gv) in a.iter_mut().zip(gr) {
                *av += wk * gv;
            }
        }
    }
    for (gi, a) in g_in.iter_mut().zip(acc) {
        *gi = a;
    }
}

impl<W: Weight> Mlp<'_, W> {
    /// Cache of [`Mlp::forward_cached_block`] for `n` samples: `n ·` [`Mlp::cache_len`].
    pub fn block_cache_len(&self, n: usize) -> usize {
        n * self.cache_len()
    }

    /// Scratch of [`Mlp::forward_cached_block`] for `n` samples: the inputs and the outputs of
    /// every sample.
    pub fn block_forward_cached_scratch_len(&self, n: usize) -> usize {
        n * (self.n_in() + self.n_out())
    }

    /// Scratch of [`Mlp::backward_block`] for `n` samples: two gradient buffers of the widest
    /// layer and the inputs' gradients, per sample ([`Mlp::backward_scratch_len`] for residual
    /// networks).
    pub fn block_backward_scratch_len(&self, n: usize) -> usize {
        if self.residual {
            self.backward_scratch_len()
        } else {
            n * (2 * self.backward_width() + self.n_in())
        }
    }

    /// [`Mlp::forward_cached`] for `N` samples: `out[s]` and the cache, bit for bit the
    /// single-sample values. The cache ([`Mlp::block_cache_len`]`(N)`) is in structure of arrays
    /// (each hidden layer's pre-activations, then its activations, one `[S; N]` per unit), or
    /// sample after sample for residual networks; only [`Mlp::backward_block`] reads it.
    /// `scratch` needs [`Mlp::block_forward_cached_scratch_len`]`(N)`.
    pub fn forward_cached_block<S: Real, const N: usize>(
        &self,
        x: [&[S]; N],
        c: [&[S]; N],
        mut out: [&mut [S]; N],
        cache: &mut [S],
        scratch: &mut [S],
    ) {
        if self.residual {
            let caches = cache.chunks_mut(self.cache_len().max(1));
            for (((xs, cs), o), cs_cache) in x.into_iter().zip(c).zip(out).zip(caches) {
                self.forward_cached(xs, cs, o, cs_cache);
            }
            return;
        }
        let (n_in, n_last) = (self.n_in(), self.n_out());
        let kx = x.first().map_or(0, |v| v.len()).min(n_in);
        let (soa, _) = scratch.as_chunks_mut::<N>();
        let Some((inputs, rest)) = soa.split_at_mut_checked(n_in) else {
            return;
        };
        let Some(out_t) = rest.get_mut(..n_last) else {
            return;
        };
        transpose_in(inputs, &x, &c, kx);
        let (in_x, in_c) = inputs.split_at(kx);
        let (mut free, _) = cache.as_chunks_mut::<N>();
        let n_layers = self.n_layers();
        let mut prev: &[[S; N]] = &[];
        for (l, layer) in self.layers().enumerate() {
            let (src_x, src_c) = if l == 0 { (in_x, in_c) } else { (prev, &[][..]) };
            if l + 1 == n_layers {
                dense_soa(layer.w, layer.b, src_x, src_c, out_t);
                break;
            }
            let (Some(pre), Some(post)) = (
                slicing::take_front(&mut free, layer.n_out),
                slicing::take_front(&mut free, layer.n_out),
            ) else {
                return;
            };
            dense_soa(layer.w, layer.b, src_x, src_c, pre);
            for (p, &z) in post.as_flattened_mut().iter_mut().zip(pre.as_flattened()) {
                *p = self.activation.apply(z);
            }
            prev = post;
        }
        transpose_out(out_t, &mut out);
    }

    /// [`Mlp::backward`] for `N` samples evaluated by [`Mlp::forward_cached_block`]: adds dL/dx
    /// into `g_x[s]` and dL/dc into `g_c[s]` for `g_out[s] = dL/d out`, and, when given, adds
    /// every sample's dL/dθ into `g_params`, bit for bit the single-sample calls made sample after
    /// sample (each weight's gradient adds the samples in order `s = 0, 1, …`; it is one pass over
    /// the weights for the block rather than one per sample). `x` and `c` are read by the first
    /// layer's parameter gradient and by residual networks. `scratch` needs
    /// [`Mlp::block_backward_scratch_len`]`(N)`.
    ///
    /// On x86-64 it runs compiled for AVX-512 or AVX2 when the CPU has them: the same multiplies
    /// and adds in the same order (never contracted into FMAs) in wider registers, so the same
    /// bits.
    pub fn backward_block<S: Real, const N: usize>(
        &self,
        x: [&[S]; N],
        c: [&[S]; N],
        cache: &[S],
        g_out: [&[S]; N],
        grads: BlockGrads<'_, S, N>,
        scratch: &mut [S],
    ) {
        let (g_x, g_c, g_params) = grads.into_parts();
        #[cfg(target_arch = "x86_64")]
        let Some((g_x, g_c, g_params, scratch)) = crate::arch::x86_64::mlp_backward_block(
            crate::arch::kernel(),
            self,
            [x, c, g_out],
            cache,
            (g_x, g_c, g_params, scratch),
        ) else {
            return;
        };
        self.backward_block_impl(x, c, cache, g_out, Grads::new(g_x, g_c, g_params), scratch);
    }

    /// [`Mlp::backward_block`] in the compilation of its caller.
    #[inline(always)]
    pub(crate) fn backward_block_impl<S: Real, const N: usize>(
        &self,
        x: [&[S]; N],
        c: [&[S]; N],
        cache: &[S],
        g_out: [&[S]; N],
        grads: BlockGrads<'_, S, N>,
        scratch: &mut [S],
    ) {
        let (mut g_x, mut g_c, mut g_params) = grads.into_parts();
        if self.residual {
            let caches = cache.chunks(self.cache_len().max(1));
            let per_sample = x.into_iter().zip(c).zip(g_out).zip(g_x).zip(g_c).zip(caches);
            for (((((xs, cs), go), gx), gc), cs_cache) in per_sample {
                let gp = g_params.as_deref_mut();
                self.backward(xs, cs, cs_cache, go, Grads::new(gx, gc, gp), scratch);
            }
            return;
        }
        let wide = self.backward_width();
        let n_in = self.n_in();
        let kx = x.first().map_or(0, |v| v.len()).min(n_in);
        let (soa, _) = scratch.as_chunks_mut::<N>();
        let Some((buf_a, rest)) = soa.split_at_mut_checked(wide) else {
            return;
        };
        let Some((buf_b, rest)) = rest.split_at_mut_checked(wide) else {
            return;
        };
        let Some(g_first) = rest.get_mut(..n_in) else {
            return;
        };
        let (cache, _) = cache.as_chunks::<N>();
        let mut cache = slicing::head(cache, self.cache_len());
        let n_layers = self.n_layers();
        for (k, layer) in self.layers().rev().enumerate() {
            let (g_cur, g_next): (&mut [[S; N]], &mut [[S; N]]) = if k % 2 == 0 {
                (&mut buf_b[..], &mut buf_a[..])
            } else {
                (&mut buf_a[..], &mut buf_b[..])
            };
            let Some(g_pre) = g_cur.get_mut(..layer.n_out) else {
                return;
            };
            if k == 0 {
                let g_out: [&[S]; N] = g_out.map(|g| slicing::head(g, layer.n_out));
                transpose_in(g_pre, &g_out, &[&[]; N], layer.n_out);
            } else {
                let Some((rest, pre_post)) = slicing::split_back_checked(cache, 2 * layer.n_out) else {
                    return;
                };
                let Some((pre, post)) = pre_post.split_at_checked(layer.n_out) else {
                    return;
                };
                cache = rest;
                let act = pre.as_flattened().iter().zip(post.as_flattened());
                let g_pre = g_pre.as_flattened_mut().iter_mut();
                // The activation chosen once for the layer (a loop that vectorizes for ReLU).
                if self.activation == Activation::Relu {
                    for (g, (&z, &y)) in g_pre.zip(act) {
                        *g *= Activation::Relu.grad(z, y);
                    }
                } else {
                    for (g, (&z, &y)) in g_pre.zip(act) {
                        *g *= self.activation.grad(z, y);
                    }
                }
            }
            if let Some(gp) = g_params.as_deref_mut() {
                if k + 1 == n_layers {
                    // g_pre sample after sample, in the buffer the first layer does not use.
                    let Some(g_t) = g_next.as_flattened_mut().get_mut(..N * layer.n_out) else {
                        return;
                    };
                    for (r, gr) in g_pre.iter().enumerate() {
                        for (s, &v) in gr.iter().enumerate() {
                            if let Some(slot) = g_t.get_mut(s * layer.n_out + r) {
                                *slot = v;
                            }
                        }
                    }
                    accumulate_block_first(gp, &layer, g_t, x, c);
                } else {
                    // The layer's input: the previous layer's activations, sample after sample,
                    // in the buffer that receives this layer's input gradient below.
                    let Some(input) = slicing::split_back_checked(cache, layer.n_in) else {
                        return;
                    };
                    let Some(aos) = g_next.as_flattened_mut().get_mut(..N * layer.n_in) else {
                        return;
                    };
                    for (k, unit) in input.1.iter().enumerate() {
                        for (s, &v) in unit.iter().enumerate() {
                            if let Some(slot) = aos.get_mut(s * layer.n_in + k) {
                                *slot = v;
                            }
                        }
                    }
                    accumulate_block_hidden(gp, &layer, g_pre, aos);
                }
            }
            if k + 1 == n_layers {
                // The first layer adds into the callers' gradients: start from them.
                let (gx, gc) = (shared(&g_x), shared(&g_c));
                transpose_in(g_first, &gx, &gc, kx);
                transpose_mul_soa(layer.w, layer.n_in, g_pre, g_first, false);
                let (first_x, first_c) = g_first.split_at(kx);
                transpose_out(first_x, &mut g_x);
                transpose_out(first_c, &mut g_c);
            } else {
                let Some(g_in) = g_next.get_mut(..layer.n_in) else {
                    return;
                };
                transpose_mul_soa(layer.w, layer.n_in, g_pre, g_in, true);
            }
        }
    }
}

/// `dW += g ⊗ [x, c]` and `db += g` of the first dense layer for `N` samples (`g_t` holds
/// `g[s][r]`, sample after sample; inputs `[x[s], c[s]]`), adding the samples in order into
/// each weight: the sums of the single-sample `accumulate` called sample after sample. A first
/// layer has few inputs and many outputs, so each input column runs over [`COLS`] rows at a
/// time, vectorized across the rows.
#[inline(always)]
fn accumulate_block_first<S: Real, W, const N: usize>(
    gp: &mut [S],
    layer: &super::Layer<'_, W>,
    g_t: &[S],
    x: [&[S]; N],
    c: [&[S]; N],
) {
    let (n_in, n_out) = (layer.n_in, layer.n_out);
    let n_w = n_in * n_out;
    let (gw, gb) = slicing::split_mut(slicing::range_mut(gp, layer.offset, n_w + n_out), n_w);
    let kx = x.first().map_or(0, |v| v.len());
    let mut r0 = 0;
    while r0 < n_out {
        let rows = COLS.min(n_out - r0);
        // Column k of the weights (k = n_in: the biases), rows r0..r0 + rows.
        for k in 0..=n_in {
            let mut acc = [S::ZERO; COLS];
            for (j, a) in acc.iter_mut().enumerate().take(rows) {
                let slot = if k < n_in {
                    gw.get((r0 + j) * n_in + k)
                } else {
                    gb.get(r0 + j)
                };
                *a = slot.copied().unwrap_or(S::ZERO);
            }
            for (s, (xs, cs)) in x.iter().zip(c.iter()).enumerate() {
                let v = match k {
                    k if k < kx => xs.get(k).copied().unwrap_or(S::ZERO),
                    k if k < n_in => cs.get(k - kx).copied().unwrap_or(S::ZERO),
                    _ => S::ONE,
                };
                let g = slicing::range(g_t, s * n_out + r0, rows);
                if k < n_in {
                    for (a, &gv) in acc.iter_mut().zip(g) {
                        *a += gv * v;
                    }
                } else {
                    for (a, &gv) in acc.iter_mut().zip(g) {
                        *a += gv;
                    }
                }
            }
            for (j, &a) in acc.iter().enumerate().take(rows) {
                let slot = if k < n_in {
                    gw.get_mut((r0 + j) * n_in + k)
                } else {
                    gb.get_mut(r0 + j)
                };
                if let Some(slot) = slot {
                    *slot = a;
                }
            }
        }
        r0 += rows;
    }
}

/// `dW += g ⊗ input` and `db += g` of a layer whose inputs are `inputs` (`N` rows of `n_in`, sample after
/// sample), the hidden layers: the weights are updated [`COLS`] columns at a time, each group
/// kept in registers while the block's samples are added in order.
#[inline(always)]
fn accumulate_block_hidden<S: Real, W, const N: usize>(
    gp: &mut [S],
    layer: &super::Layer<'_, W>,
    g: &[[S; N]],
    inputs: &[S],
) {
    let n_in = layer.n_in;
    let n_w = n_in * layer.n_out;
    let (gw, gb) = slicing::split_mut(slicing::range_mut(gp, layer.offset, n_w + layer.n_out), n_w);
    for ((row, gbo), gr) in slicing::rows_mut(gw, n_in).zip(gb.iter_mut()).zip(g) {
        for &gv in gr {
            *gbo += gv;
        }
        let mut groups = row.chunks_exact_mut(COLS);
        let mut k0 = 0;
        for cols in groups.by_ref() {
            let mut acc = [S::ZERO; COLS];
            acc.copy_from_slice(cols);
            for (&gv, input) in gr.iter().zip(slicing::rows(inputs, n_in)) {
                for (a, &xi) in acc.iter_mut().zip(slicing::range(input, k0, COLS)) {
                    *a += gv * xi;
                }
            }
            cols.copy_from_slice(&acc);
            k0 += COLS;
        }
        let cols = groups.into_remainder();
        let width = cols.len();
        for (&gv, input) in gr.iter().zip(slicing::rows(inputs, n_in)) {
            for (a, &xi) in cols.iter_mut().zip(slicing::range(input, k0, width)) {
                *a += gv * xi;
            }
        }
    }
}

/// Columns of a weight row that [`accumulate_block_hidden`] keeps in registers (four 512-bit
/// registers of `f32`).
const COLS: usize = 64;

/// Shared views of mutable per-sample slices.
#[inline(always)]
fn shared<'a, S, const N: usize>(v: &'a [&mut [S]; N]) -> [&'a [S]; N] {
    v.each_ref().map(|s| &**s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::Activation;
    use crate::testing::Lcg;

    /// Every sample of a block equals the single-sample cached forward and input VJP, bit for bit,
    /// with and without a context, for plain and residual networks and every activation.
    #[test]
    fn block_forward_cached_and_backward_equal_single_samples() {
        const N: usize = 5;
        let mut rng = Lcg(11);
        for residual in [false, true] {
            for (kx, kc) in [(3, 0), (3, 2), (1, 1)] {
                let sizes: std::vec::Vec<usize> = if residual {
                    std::vec![kx + kc, 6, 6, 6, 6, 6, 4]
                } else {
                    std::vec![kx + kc, 7, 9, 4]
                };
                let params: std::vec::Vec<f32> = (0..super::super::n_params(&sizes))
                    .map(|_| rng.normal() as f32 * 0.6)
                    .collect();
                for activation in [
                    Activation::Relu,
                    Activation::Tanh,
                    Activation::Elu,
                    Activation::Silu,
                ] {
                    let m = Mlp {
                        sizes: &sizes,
                        params: &params,
                        activation,
                        residual,
                    };
                    let n_out = m.n_out();
                    let mut draw = |n: usize| -> std::vec::Vec<f32> {
                        (0..n).map(|_| rng.normal() as f32 * 1.5).collect()
                    };
                    let xs: [std::vec::Vec<f32>; N] = core::array::from_fn(|_| draw(kx));
                    let cs: [std::vec::Vec<f32>; N] = core::array::from_fn(|_| draw(kc));
                    let gos: [std::vec::Vec<f32>; N] = core::array::from_fn(|_| draw(n_out));
                    let gx0: [std::vec::Vec<f32>; N] = core::array::from_fn(|_| draw(kx));
                    let gc0: [std::vec::Vec<f32>; N] = core::array::from_fn(|_| draw(kc));

                    let mut outs = [[0.0f32; 4]; N];
                    let mut cache = std::vec![0.0f32; m.block_cache_len(N)];
                    let mut scratch = std::vec![0.0f32; m.block_forward_cached_scratch_len(N)];
                    let x: [&[f32]; N] = core::array::from_fn(|s| &xs[s][..]);
                    let c: [&[f32]; N] = core::array::from_fn(|s| &cs[s][..]);
                    let out: [&mut [f32]; N] = {
                        let mut it = outs.iter_mut();
                        core::array::from_fn(|_| &mut it.next().unwrap()[..])
                    };
                    m.forward_cached_block(x, c, out, &mut cache, &mut scratch);

                    let (mut gxs, mut gcs) = (gx0.clone(), gc0.clone());
                    let mut scratch = std::vec![0.0f32; m.block_backward_scratch_len(N)];
                    let go: [&[f32]; N] = core::array::from_fn(|s| &gos[s][..]);
                    let gx: [&mut [f32]; N] = {
                        let mut it = gxs.iter_mut();
                        core::array::from_fn(|_| &mut it.next().unwrap()[..])
                    };
                    let gc: [&mut [f32]; N] = {
                        let mut it = gcs.iter_mut();
                        core::array::from_fn(|_| &mut it.next().unwrap()[..])
                    };
                    m.backward_block(x, c, &cache, go, Grads::new(gx, gc, None), &mut scratch);

                    let mut changed = 0;
                    for s in 0..N {
                        let mut out1 = [0.0f32; 4];
                        let mut cache1 = std::vec![0.0f32; m.cache_len()];
                        m.forward_cached(&xs[s], &cs[s], &mut out1, &mut cache1);
                        let bits = |v: &[f32]| v.iter().map(|a| a.to_bits()).collect::<std::vec::Vec<_>>();
                        assert_eq!(bits(&outs[s]), bits(&out1), "out, sample {s}, {activation:?}");
                        let (mut gx1, mut gc1) = (gx0[s].clone(), gc0[s].clone());
                        let mut scratch1 = std::vec![0.0f32; m.backward_scratch_len()];
                        m.backward(
                            &xs[s],
                            &cs[s],
                            &cache1,
                            &gos[s],
                            Grads::new(&mut gx1, &mut gc1, None),
                            &mut scratch1,
                        );
                        let what =
                            std::format!("residual {residual}, {kx}+{kc} inputs, {activation:?}, sample {s}");
                        assert_eq!(bits(&gxs[s]), bits(&gx1), "g_x, {what}");
                        assert_eq!(bits(&gcs[s]), bits(&gc1), "g_c, {what}");
                        assert!(gx1.iter().all(|v| v.is_finite()), "{what}");
                        changed += usize::from(gx1 != gx0[s]);
                    }
                    assert!(changed > 0, "no gradient reached the inputs: {activation:?}");
                }
            }
        }
    }
}
