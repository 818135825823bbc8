//! Affine autoregressive layers: MAF (Papamakarios et al. 2017) and its inverse twin IAF
//! (Kingma et al. 2016).
//!
//! A MADE conditioner `net([y, c])` gives, for every feature `i`, a shift `tᵢ` and a raw scale `aᵢ`
//! that depend only on features ranked before `i`. The map
//!
//! `F: zᵢ = yᵢ · s(aᵢ(y<ᵢ)) + tᵢ(y<ᵢ)`,   log|det ∂F| = Σᵢ ln s(aᵢ)
//!
//! takes one network pass; its inverse takes D passes (`y ← (z − t(y)) / s(a(y))`, exact after D).
//! - [`Direction::Maf`]: `inverse` (data → base, density) is `F` (one pass), `forward` is `F⁻¹`.
//! - [`Direction::Iaf`]: `inverse` is `F⁻¹` and `forward` (sampling) is `F` (one pass).
//!
//! Network outputs are feature-major: `out[2i + k]`, with `k` given by [`AffineLayout`].

use serde::{Deserialize, Serialize};

use crate::block;
use crate::lanes::{Lanes, Pair, Vals};
use crate::layers::blockwise::{self, BlockStep};
use crate::layers::Bijection;
use crate::nn::Mlp;
use crate::{math, slicing, Real, Weight};

/// How the raw network output `a` becomes a positive scale `s(a)`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum AffineScale {
    /// zuko: `ln s = a / (1 + |a| / bound)` with `bound = −ln(slope)` (6.9078 for slope 1e-3),
    /// so `s ∈ (e^−bound, e^bound)`.
    SoftclipExp {
        /// The bound on |ln s|.
        bound: f64,
    },
    /// nflows (eps 1e-3): `s = softplus(a) + eps`.
    SoftplusEps {
        /// Lower bound of the scale.
        eps: f64,
    },
    /// normflows: `s = σ(a + 2) + eps`.
    Sigmoid {
        /// Lower bound of the scale.
        eps: f64,
    },
    /// FlowJAX 19 `Affine` transformers: `s = softplus(a + offset) + eps` with JAX's softplus
    /// (`max(v, 0) + ln(1 + e^{−|v|})`, no threshold). FlowJAX's ravelled-parameter constructor
    /// adds the transformer's initial raw value to the network output, so the offset is
    /// `inv_softplus(s₀ − eps)` (paramax: `ln(−expm1(−x)) + x`) for the initial scale `s₀ = 1`:
    /// `Affine()` has `offset = ln(e − 1)`, `eps = 0`; FlowJAX's default transformer
    /// (`_affine_with_min_scale`) has `offset = inv_softplus(0.99)`, `eps = 1e-2`.
    ///
    /// With `eps = 0`, `ln s` is taken as `v = a + offset` for `v < −30` (where
    /// `ln softplus(v) = v − e^v/2 + …`, an error below 1e-13), so the log-determinant stays finite
    /// where `softplus(v)` underflows.
    SoftplusOffset {
        /// Added to the raw output before the softplus.
        offset: f64,
        /// Lower bound of the scale (≥ 0).
        eps: f64,
    },
}

/// The affine transformer of one coordinate: `x · s + t` (`forward`) or `(x − t) / s`, in one lane
/// or in lanes (the operations of every path).
#[inline(always)]
pub(crate) fn affine_map<V: Vals>(x: V, t: V, s: V, forward: bool) -> V {
    if forward {
        x * s + t
    } else {
        (x - t) / s
    }
}

/// `ldj + ln s` (`forward`) or `ldj − ln s`: a subtraction, not the sum with `−ln s`, so that a NaN
/// keeps the sign bit the single-sample path gives it.
#[inline(always)]
pub(crate) fn add_ldj<V: Vals>(ldj: V, ls: V, forward: bool) -> V {
    if forward {
        ldj + ls
    } else {
        ldj - ls
    }
}

impl AffineScale {
    /// Returns `(s, ln s, d ln s / da)`.
    #[inline]
    pub fn eval<S: Real>(self, a: S) -> (S, S, S) {
        self.eval_with::<S, true>(a)
    }

    /// `(s, ln s)`: [`AffineScale::eval`] without the derivative (the same bits), for the
    /// forward and inverse passes; in lanes too ([`Vals`]), each lane with the bits of one value.
    #[inline(always)]
    pub fn scale<V: Vals>(self, a: V) -> (V, V) {
        let (s, ls, _) = self.eval_with::<V, false>(a);
        (s, ls)
    }

    /// `(s, ln s, d ln s / da)`, the derivative only when `GRAD` (else 0).
    #[inline(always)]
    pub(crate) fn eval_with<V: Vals, const GRAD: bool>(self, a: V) -> (V, V, V) {
        let c = |v: f64| V::splat(V::Elem::from_f64(v));
        match self {
            AffineScale::SoftclipExp { bound } => {
                let b = c(bound);
                let ls = math::softclip(a, b);
                (ls.exp(), ls, when::<V, GRAD>(|| math::softclip_grad(a, b)))
            }
            AffineScale::SoftplusEps { eps } => {
                let s = math::softplus(a) + c(eps);
                (s, s.ln(), when::<V, GRAD>(|| math::sigmoid(a) / s))
            }
            AffineScale::Sigmoid { eps } => {
                let sg = math::sigmoid(a + c(2.0));
                let s = sg + c(eps);
                (s, s.ln(), when::<V, GRAD>(|| sg * (c(1.0) - sg) / s))
            }
            AffineScale::SoftplusOffset { offset, eps } => {
                let v = a + c(offset);
                let s = v.max(c(0.0)) + (-v.abs()).exp().ln_1p() + c(eps);
                let grad = when::<V, GRAD>(|| math::sigmoid(v) / s);
                if eps == 0.0 {
                    // ln s is taken as v below −30; d ln s / da = σ(v) / softplus(v) = 1 − e^v/2 + …
                    let far = v.lt(c(-30.0));
                    (
                        s,
                        V::select(far, v, s.ln()),
                        V::select(far, when::<V, GRAD>(|| c(1.0)), grad),
                    )
                } else {
                    (s, s.ln(), grad)
                }
            }
        }
    }
}

/// `g()` when `GRAD`, else 0 (not computed).
#[inline(always)]
fn when<V: Vals, const GRAD: bool>(g: impl FnOnce() -> V) -> V {
    if GRAD {
        g()
    } else {
        V::splat(V::Elem::ZERO)
    }
}

/// Which of the two outputs per feature is the shift.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AffineLayout {
    /// `[shift, raw scale]` per feature (zuko).
    ShiftScale,
    /// `[raw scale, shift]` per feature (nflows).
    ScaleShift,
}

impl AffineLayout {
    /// Indices of (shift, raw scale) within a feature's pair.
    #[inline(always)]
    pub fn indices(self) -> (usize, usize) {
        match self {
            AffineLayout::ShiftScale => (0, 1),
            AffineLayout::ScaleShift => (1, 0),
        }
    }

    /// `(shift, raw scale)` of one feature's pair of network outputs (NaNs if `pair` is not two
    /// values long).
    #[inline(always)]
    pub fn split<S: Real>(self, pair: &[S]) -> (S, S) {
        match (self, pair) {
            (AffineLayout::ShiftScale, &[t, a]) | (AffineLayout::ScaleShift, &[a, t]) => (t, a),
            _ => (S::NAN, S::NAN),
        }
    }

    /// Writes `(shift, raw scale)` into one feature's pair of network outputs (nothing if `pair` is
    /// not two values long).
    #[inline(always)]
    pub fn join<S: Real>(self, pair: &mut [S], shift: S, raw_scale: S) {
        match (self, pair) {
            (AffineLayout::ShiftScale, [t, a]) | (AffineLayout::ScaleShift, [a, t]) => {
                *t = shift;
                *a = raw_scale;
            }
            _ => {}
        }
    }
}

/// Which direction the one-pass map runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    /// Masked autoregressive flow: one pass for density.
    Maf,
    /// Inverse autoregressive flow: one pass for sampling.
    Iaf,
}

/// An affine autoregressive layer (see the module docs).
#[derive(Clone, Copy, Debug)]
pub struct AffineAutoregressive<'a, W> {
    /// The MADE conditioner (masks already applied to its weights); `D + C` inputs, `2D` outputs.
    pub net: Mlp<'a, W>,
    /// Number of features D.
    pub dim: usize,
    /// Scale parameterization.
    pub scale: AffineScale,
    /// Output layout.
    pub layout: AffineLayout,
    /// MAF or IAF.
    pub direction: Direction,
}

impl<'a, W: Weight> AffineAutoregressive<'a, W> {
    fn ctx_dim(&self) -> usize {
        self.net.n_in().saturating_sub(self.dim)
    }

    /// Scratch of the one-pass map `F`.
    fn pass_scratch(&self) -> usize {
        2 * self.dim + self.net.scratch_len()
    }

    /// Scratch of the VJP of `F`.
    fn pass_vjp_scratch(&self) -> usize {
        4 * self.dim + self.net.cache_len() + self.net.backward_scratch_len()
    }

    /// `F(y) = y · s + t`, returns Σ ln s.
    #[inline(always)]
    fn pass<S: Real>(&self, y: &[S], ctx: &[S], z: &mut [S], scratch: &mut [S]) -> S {
        let (out, rest) = slicing::split_mut(scratch, 2 * self.dim);
        self.net.forward(y, ctx, out, rest);
        self.pass_step(y, out, z)
    }

    /// The elementwise part of `F` given the network output `out` at `y`; returns Σ ln s.
    #[inline(always)]
    fn pass_step<S: Real>(&self, y: &[S], out: &[S], z: &mut [S]) -> S {
        let mut ldj = S::ZERO;
        for ((zi, &yi), p) in z.iter_mut().zip(y).zip(out.chunks_exact(2)) {
            let (t, a) = self.layout.split(p);
            let (s, ls) = self.scale.scale(a);
            *zi = yi * s + t;
            ldj += ls;
        }
        ldj
    }

    /// `F⁻¹(z)` by D passes; returns −Σ ln s (log|det ∂y/∂z|).
    #[inline(always)]
    fn solve<S: Real>(&self, z: &[S], ctx: &[S], y: &mut [S], scratch: &mut [S]) -> S {
        let (out, rest) = slicing::split_mut(scratch, 2 * self.dim);
        y.fill(S::ZERO);
        let mut ldj = S::ZERO;
        for _ in 0..self.dim {
            self.net.forward(y, ctx, out, rest);
            ldj = self.solve_step(z, out, y);
        }
        ldj
    }

    /// One sweep of `F⁻¹` given the network output `out` at the current `y`:
    /// `y ← (z − t) / s`; returns −Σ ln s.
    #[inline(always)]
    fn solve_step<S: Real>(&self, z: &[S], out: &[S], y: &mut [S]) -> S {
        let mut ldj = S::ZERO;
        for ((yi, &zi), p) in y.iter_mut().zip(z).zip(out.chunks_exact(2)) {
            let (t, a) = self.layout.split(p);
            let (s, ls) = self.scale.scale(a);
            *yi = (zi - t) / s;
            ldj -= ls;
        }
        ldj
    }

    /// VJP of `F` at `y` for cotangents `(g_z, g_ldj)`: writes `g_y`, adds into `g_ctx`, `g_params`.
    /// `z = y s + t`: ∂z/∂y = s, ∂z/∂t = 1, ∂z/∂a = y s (d ln s/da); ∂ldj/∂a = d ln s/da.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn pass_vjp<S: Real>(
        &self,
        y: &[S],
        ctx: &[S],
        g_z: &[S],
        g_ldj: S,
        g_y: &mut [S],
        g_ctx: &mut [S],
        g_params: Option<&mut [S]>,
        scratch: &mut [S],
    ) {
        let d = self.dim;
        let (out, rest) = slicing::split_mut(scratch, 2 * d);
        let (g_out, rest) = slicing::split_mut(rest, 2 * d);
        let (cache, rest) = slicing::split_mut(rest, self.net.cache_len());
        self.net.forward_cached(y, ctx, out, cache);
        self.pass_vjp_step(y, out, g_z, g_ldj, g_y, g_out);
        self.net
            .backward(y, ctx, cache, g_out, g_y, g_ctx, g_params, rest);
    }

    /// The elementwise part of [`Self::pass_vjp`] given the network output `out` at `y`: writes
    /// the direct part of `g_y` (`g_z · s`) and the cotangent `g_out` of the network output.
    #[inline(always)]
    fn pass_vjp_step<S: Real>(
        &self,
        y: &[S],
        out: &[S],
        g_z: &[S],
        g_ldj: S,
        g_y: &mut [S],
        g_out: &mut [S],
    ) {
        let pairs = out.chunks_exact(2).zip(g_out.chunks_exact_mut(2));
        for (((gy, &gz), &yi), (p, gp)) in g_y.iter_mut().zip(g_z).zip(y).zip(pairs) {
            let (s, _, dls) = self.scale.eval(self.layout.split(p).1);
            *gy = gz * s;
            self.layout.join(gp, gz, (gz * yi * s + g_ldj) * dls);
        }
    }
}

/// An autoregressive layer (affine or spline) with what [`iaf_vjp`] needs besides [`Bijection`].
pub(crate) trait Autoregressive<S: Real>: Bijection<S> + Sized {
    /// The same layer in the MAF direction: its `inverse` is the one-pass map `F`, its `forward`
    /// `F⁻¹` and its `inverse_vjp` the VJP of `F`.
    fn maf(&self) -> Self;

    /// The diagonal of the Jacobian of `F` at `u` (`∂Fᵢ/∂uᵢ`, which depends on `u<ᵢ` only) into
    /// `diag`.
    fn diagonal(&self, u: &[S], ctx: &[S], diag: &mut [S], scratch: &mut [S]);

    /// Whether the layer runs in the MAF direction (its `inverse` is the one-pass map `F`).
    fn is_maf(&self) -> bool;

    /// Scratch of [`Autoregressive::pass_vjp_block`] for `n` samples.
    fn pass_vjp_block_len(&self, n: usize) -> usize;

    /// The VJP of `F` for a block of samples (the network's cached forward and backward once
    /// for the block), adding the samples' parameter gradients in order into `g_params` when
    /// given; bit for bit the single-sample VJPs called sample after sample.
    #[allow(clippy::too_many_arguments)]
    fn pass_vjp_block<const N: usize>(
        &self,
        y: [&[S]; N],
        ctx: [&[S]; N],
        g_z: [&[S]; N],
        g_ldj: S,
        g_y: [&mut [S]; N],
        g_ctx: [&mut [S]; N],
        g_params: Option<&mut [S]>,
        scratch: &mut [S],
    );
}

/// [`Bijection::block_vjp_scratch_len`] of an autoregressive layer.
pub(crate) fn ar_block_vjp_scratch_len<S: Real, L: Autoregressive<S>>(layer: &L, n: usize) -> usize {
    let single = layer.scratch_len() + 2 * layer.dim();
    if layer.is_maf() {
        single.max(layer.pass_vjp_block_len(n))
    } else {
        single
    }
}

/// [`Bijection::inverse_vjp_block`] of an autoregressive layer: the block VJP of `F` in the MAF
/// direction, [`iaf_vjp`] sample by sample in the IAF direction.
#[allow(clippy::too_many_arguments)]
pub(crate) fn ar_inverse_vjp_block<S: Real, L: Autoregressive<S>, const N: usize>(
    layer: &L,
    x: [&[S]; N],
    ctx: [&[S]; N],
    g_z: [&[S]; N],
    g_ldj: S,
    g_x: [&mut [S]; N],
    g_ctx: [&mut [S]; N],
    mut g_params: Option<&mut [S]>,
    scratch: &mut [S],
) {
    if layer.is_maf() {
        return layer.pass_vjp_block(x, ctx, g_z, g_ldj, g_x, g_ctx, g_params, scratch);
    }
    let per_sample = x.into_iter().zip(ctx).zip(g_z).zip(g_x).zip(g_ctx);
    for ((((xs, cs), gz), gx), gc) in per_sample {
        iaf_vjp(layer, xs, cs, gz, g_ldj, gx, gc, g_params.as_deref_mut(), scratch);
    }
}

/// [`Bijection::block_forward_vjp_scratch_len`] of an autoregressive layer.
pub(crate) fn ar_block_forward_vjp_scratch_len<S: Real, L: Autoregressive<S>>(layer: &L, n: usize) -> usize {
    let single = layer.forward_vjp_scratch_len();
    if layer.is_maf() {
        single
    } else {
        single.max(layer.pass_vjp_block_len(n))
    }
}

/// [`Bijection::forward_vjp_block`] of an autoregressive layer: the block VJP of `F` in the IAF
/// direction (sampling is the one pass), [`iaf_vjp`] sample by sample in the MAF direction.
#[allow(clippy::too_many_arguments)]
pub(crate) fn ar_forward_vjp_block<S: Real, L: Autoregressive<S>, const N: usize>(
    layer: &L,
    z: [&[S]; N],
    ctx: [&[S]; N],
    g_x: [&[S]; N],
    g_ldj: S,
    g_z: [&mut [S]; N],
    g_ctx: [&mut [S]; N],
    mut g_params: Option<&mut [S]>,
    scratch: &mut [S],
) {
    if !layer.is_maf() {
        return layer.pass_vjp_block(z, ctx, g_x, g_ldj, g_z, g_ctx, g_params, scratch);
    }
    let per_sample = z.into_iter().zip(ctx).zip(g_x).zip(g_z).zip(g_ctx);
    for ((((zs, cs), gx), gz), gc) in per_sample {
        iaf_vjp(layer, zs, cs, gx, g_ldj, gz, gc, g_params.as_deref_mut(), scratch);
    }
}

/// VJP of `u = F⁻¹(x)` with ℓ = −Σ ln Fᵢ'(uᵢ) (the `inverse` of an IAF layer, affine or spline), by
/// implicit differentiation: with `w = g_u + ∂ℓ/∂u · g_ℓ`, solve `vᵀ J_F(u) = wᵀ` (triangular; D
/// sweeps of F's VJP), then `g_x = v` and `g_θ = ∂ℓ/∂θ · g_ℓ − vᵀ ∂F/∂θ` (likewise for the
/// context).
///
/// `scratch`: `u, w, v, tmp, diag` (D each), a context buffer, then what the layer needs.
#[allow(clippy::too_many_arguments)]
pub(crate) fn iaf_vjp<S: Real, L: Autoregressive<S>>(
    layer: &L,
    x: &[S],
    ctx: &[S],
    g_u: &[S],
    g_ldj: S,
    g_x: &mut [S],
    g_ctx: &mut [S],
    mut g_params: Option<&mut [S]>,
    scratch: &mut [S],
) {
    let maf = layer.maf();
    let d = maf.dim();
    let (u, rest) = slicing::split_mut(scratch, d);
    let (w, rest) = slicing::split_mut(rest, d);
    let (v, rest) = slicing::split_mut(rest, d);
    let (tmp, rest) = slicing::split_mut(rest, d);
    let (diag, rest) = slicing::split_mut(rest, d);
    let (c_tmp, rest) = slicing::split_mut(rest, ctx.len());
    maf.forward(x, ctx, u, rest);
    // ∂ℓ/∂u and ∂ℓ/∂θ: ℓ = −ldj(F at u), so pass cotangents (0, −g_ℓ).
    tmp.fill(S::ZERO);
    maf.inverse_vjp(u, ctx, tmp, -g_ldj, w, g_ctx, g_params.as_deref_mut(), rest);
    for (wi, &gi) in w.iter_mut().zip(g_u) {
        *wi += gi;
    }
    layer.diagonal(u, ctx, diag, rest);
    // Back substitution for vᵀJ = wᵀ: v ← (w − (vᵀJ − v∘diag)) / diag, exact after D sweeps.
    v.fill(S::ZERO);
    for _ in 0..d {
        c_tmp.fill(S::ZERO);
        maf.inverse_vjp(u, ctx, v, S::ZERO, tmp, c_tmp, None, rest);
        for (((vi, &ti), &si), &wi) in v.iter_mut().zip(tmp.iter()).zip(diag.iter()).zip(w.iter()) {
            let off = ti - *vi * si;
            *vi = (wi - off) / si;
        }
    }
    slicing::copy(g_x, v);
    for vi in v.iter_mut() {
        *vi = -*vi;
    }
    maf.inverse_vjp(u, ctx, v, S::ZERO, tmp, g_ctx, g_params, rest);
}

impl<'a, S: Real, W: Weight> Autoregressive<S> for AffineAutoregressive<'a, W> {
    fn maf(&self) -> Self {
        AffineAutoregressive {
            direction: Direction::Maf,
            ..*self
        }
    }

    /// The scales `s(aᵢ)` at `u`.
    fn diagonal(&self, u: &[S], ctx: &[S], diag: &mut [S], scratch: &mut [S]) {
        let (out, rest) = slicing::split_mut(scratch, 2 * self.dim);
        self.net.forward(u, ctx, out, rest);
        for (si, p) in diag.iter_mut().zip(out.chunks_exact(2)) {
            *si = self.scale.scale(self.layout.split(p).1).0;
        }
    }

    fn is_maf(&self) -> bool {
        self.direction == Direction::Maf
    }

    fn pass_vjp_block_len(&self, n: usize) -> usize {
        let net = &self.net;
        let passes = net
            .block_forward_cached_scratch_len(n)
            .max(net.block_backward_scratch_len(n));
        n * 4 * self.dim + net.block_cache_len(n) + passes
    }

    fn pass_vjp_block<const N: usize>(
        &self,
        y: [&[S]; N],
        ctx: [&[S]; N],
        g_z: [&[S]; N],
        g_ldj: S,
        mut g_y: [&mut [S]; N],
        g_ctx: [&mut [S]; N],
        g_params: Option<&mut [S]>,
        scratch: &mut [S],
    ) {
        let w = 2 * self.dim;
        let Some((out, rest)) = scratch.split_at_mut_checked(N * w) else {
            return;
        };
        let Some((g_out, rest)) = rest.split_at_mut_checked(N * w) else {
            return;
        };
        let Some((cache, rest)) = rest.split_at_mut_checked(self.net.block_cache_len(N)) else {
            return;
        };
        self.net
            .forward_cached_block(y, ctx, block::views_mut::<S, N>(out, w), cache, rest);
        let outs = block::views::<S, N>(out, w);
        let per_sample = y.iter().zip(outs).zip(g_z).zip(g_y.iter_mut());
        for ((((ys, o), gz), gy), go) in per_sample.zip(block::views_mut::<S, N>(g_out, w)) {
            self.pass_vjp_step(ys, o, gz, g_ldj, gy, go);
        }
        let g_out = block::views::<S, N>(g_out, w);
        self.net
            .backward_block(y, ctx, cache, g_out, g_y, g_ctx, g_params, rest);
    }
}

impl<'a, S: Real, W: Weight> Bijection<S> for AffineAutoregressive<'a, W> {
    fn dim(&self) -> usize {
        self.dim
    }

    fn context_dim(&self) -> usize {
        self.ctx_dim()
    }

    fn n_params(&self) -> usize {
        self.net.params.len()
    }

    fn scratch_len(&self) -> usize {
        let c = self.ctx_dim();
        let iaf = 5 * self.dim + c + self.pass_vjp_scratch();
        let a = self.pass_scratch().max(self.pass_vjp_scratch());
        if self.direction == Direction::Iaf {
            a.max(iaf)
        } else {
            a
        }
    }

    #[inline(always)]
    fn inverse(&self, x: &[S], ctx: &[S], z: &mut [S], scratch: &mut [S]) -> S {
        match self.direction {
            Direction::Maf => self.pass(x, ctx, z, scratch),
            Direction::Iaf => self.solve(x, ctx, z, scratch),
        }
    }

    #[inline(always)]
    fn forward(&self, z: &[S], ctx: &[S], x: &mut [S], scratch: &mut [S]) -> S {
        match self.direction {
            Direction::Maf => self.solve(z, ctx, x, scratch),
            Direction::Iaf => self.pass(z, ctx, x, scratch),
        }
    }

    fn block_scratch_len(&self, n: usize) -> usize {
        blockwise::scratch_len(&self.net, 0, 0, n)
    }

    fn inverse_acc_block<const N: usize>(
        &self,
        x: [&[S]; N],
        ctx: [&[S]; N],
        z: [&mut [S]; N],
        ldj: &mut [S; N],
        scratch: &mut [S],
    ) {
        self.block(x, ctx, z, ldj, scratch, self.direction == Direction::Maf);
    }

    fn forward_acc_block<const N: usize>(
        &self,
        z: [&[S]; N],
        ctx: [&[S]; N],
        x: [&mut [S]; N],
        ldj: &mut [S; N],
        scratch: &mut [S],
    ) {
        self.block(z, ctx, x, ldj, scratch, self.direction == Direction::Iaf);
    }

    #[inline(always)]
    fn inverse_vjp(
        &self,
        x: &[S],
        ctx: &[S],
        g_z: &[S],
        g_ldj: S,
        g_x: &mut [S],
        g_ctx: &mut [S],
        g_params: Option<&mut [S]>,
        scratch: &mut [S],
    ) {
        match self.direction {
            Direction::Maf => self.pass_vjp(x, ctx, g_z, g_ldj, g_x, g_ctx, g_params, scratch),
            Direction::Iaf => iaf_vjp(self, x, ctx, g_z, g_ldj, g_x, g_ctx, g_params, scratch),
        }
    }

    /// The sampling direction: in the MAF direction `F⁻¹`, by implicit differentiation
    /// (`iaf_vjp`: D sweeps of `F`'s VJP); in the IAF direction the one pass `F`.
    fn forward_vjp_scratch_len(&self) -> usize {
        let scratch = <Self as Bijection<S>>::scratch_len(self);
        match self.direction {
            Direction::Maf => scratch.max(5 * self.dim + self.ctx_dim() + self.pass_vjp_scratch()),
            Direction::Iaf => scratch,
        }
    }

    #[inline(always)]
    fn forward_vjp(
        &self,
        z: &[S],
        ctx: &[S],
        g_x: &[S],
        g_ldj: S,
        g_z: &mut [S],
        g_ctx: &mut [S],
        g_params: Option<&mut [S]>,
        scratch: &mut [S],
    ) {
        match self.direction {
            Direction::Maf => iaf_vjp(self, z, ctx, g_x, g_ldj, g_z, g_ctx, g_params, scratch),
            Direction::Iaf => self.pass_vjp(z, ctx, g_x, g_ldj, g_z, g_ctx, g_params, scratch),
        }
    }

    fn block_forward_vjp_scratch_len(&self, n: usize) -> usize {
        ar_block_forward_vjp_scratch_len::<S, _>(self, n)
    }

    fn forward_vjp_block<const N: usize>(
        &self,
        z: [&[S]; N],
        ctx: [&[S]; N],
        g_x: [&[S]; N],
        g_ldj: S,
        g_z: [&mut [S]; N],
        g_ctx: [&mut [S]; N],
        g_params: Option<&mut [S]>,
        scratch: &mut [S],
    ) {
        ar_forward_vjp_block(self, z, ctx, g_x, g_ldj, g_z, g_ctx, g_params, scratch);
    }

    fn block_vjp_scratch_len(&self, n: usize) -> usize {
        ar_block_vjp_scratch_len::<S, _>(self, n)
    }

    fn inverse_vjp_block<const N: usize>(
        &self,
        x: [&[S]; N],
        ctx: [&[S]; N],
        g_z: [&[S]; N],
        g_ldj: S,
        g_x: [&mut [S]; N],
        g_ctx: [&mut [S]; N],
        g_params: Option<&mut [S]>,
        scratch: &mut [S],
    ) {
        ar_inverse_vjp_block(self, x, ctx, g_z, g_ldj, g_x, g_ctx, g_params, scratch);
    }
}

impl<'a, W: Weight> AffineAutoregressive<'a, W> {
    /// The one-pass map `F` (`pass`) or its D-sweep inverse for a block of samples.
    fn block<S: Real, const N: usize>(
        &self,
        src: [&[S]; N],
        ctx: [&[S]; N],
        dst: [&mut [S]; N],
        ldj: &mut [S; N],
        scratch: &mut [S],
        pass: bool,
    ) {
        blockwise::autoregressive(self, pass, &self.net, 0, self.dim, src, ctx, dst, ldj, scratch);
    }
}

impl<W: Weight> BlockStep for AffineAutoregressive<'_, W> {
    /// [`Self::pass_step`] (`pass`) or [`Self::solve_step`].
    #[inline(always)]
    fn step_one<S: Real>(&self, u: &[S], o: &[S], v: &mut [S], _: &mut [S], pass: bool) -> S {
        if pass {
            self.pass_step(u, o, v)
        } else {
            self.solve_step(u, o, v)
        }
    }

    /// [`Self::pass_step`] (`pass`) or [`Self::solve_step`] of each sample of a block, in lanes.
    #[inline(always)]
    fn step_lanes<S: Real, const N: usize>(
        &self,
        src: [&[S]; N],
        out: &[[S; N]],
        dst: &mut [&mut [S]; N],
        pass: bool,
    ) -> [S; N] {
        let (ti, ai) = self.layout.indices();
        let cols = |i| (Lanes::at(out, 2 * i + ti), Lanes::at(out, 2 * i + ai));
        let mut ldj = Lanes::splat(S::ZERO);
        let mut i = 0;
        // Two coordinates side by side (independent divisions and exponentials in flight).
        while i + 1 < self.dim {
            let ((t0, a0), (t1, a1)) = (cols(i), cols(i + 1));
            let x = Pair(Lanes::column(&src, i), Lanes::column(&src, i + 1));
            let (s, l) = self.scale.scale(Pair(a0, a1));
            let v = affine_map(x, Pair(t0, t1), s, pass);
            v.0.store_column(dst, i);
            v.1.store_column(dst, i + 1);
            ldj = add_ldj(add_ldj(ldj, l.0, pass), l.1, pass);
            i += 2;
        }
        if i < self.dim {
            let (t, a) = cols(i);
            let (s, l) = self.scale.scale(a);
            affine_map(Lanes::column(&src, i), t, s, pass).store_column(dst, i);
            ldj = add_ldj(ldj, l, pass);
        }
        ldj.0
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::boxed::Box;
    use std::vec::Vec;

    use super::*;
    use crate::nn::made;
    use crate::nn::mlp::n_params;
    use crate::nn::Activation;
    use crate::testing::{builder, check_bijection_except, Lcg, Report};

    /// Random MADE parameters with masks applied.
    pub(crate) fn made_params(
        order: &[u16],
        sizes: &[usize],
        per: usize,
        rng: &mut Lcg,
    ) -> (Vec<f64>, Vec<u16>) {
        let d = order.len();
        let hidden: Vec<u16> = sizes[1..sizes.len() - 1]
            .iter()
            .flat_map(|&h| (0..h).map(move |k| made::default_hidden_degree(k, d)))
            .collect();
        let mut allowed = Vec::new();
        made::for_each_weight(order, sizes, &hidden, per, |_, _, _, ok| allowed.push(ok));
        let mut params = Vec::new();
        let mut it = allowed.iter();
        for l in 0..sizes.len() - 1 {
            let (i, o) = (sizes[l], sizes[l + 1]);
            for _ in 0..i * o {
                let w = rng.normal() * 0.5;
                params.push(if *it.next().unwrap() { w } else { 0.0 });
            }
            for _ in 0..o {
                params.push(rng.normal() * 0.3);
            }
        }
        assert_eq!(params.len(), n_params(sizes));
        (params, hidden)
    }

    #[test]
    fn maf_and_iaf_pass_finite_difference_checks() {
        let mut worst = Report::default();
        let scales = [
            AffineScale::SoftclipExp {
                bound: -(1e-3f64).ln(),
            },
            AffineScale::SoftplusEps { eps: 1e-3 },
            AffineScale::Sigmoid { eps: 1e-3 },
            AffineScale::SoftplusOffset {
                offset: flowjax_inv_softplus(1.0),
                eps: 0.0,
            },
            AffineScale::SoftplusOffset {
                offset: flowjax_inv_softplus(0.99),
                eps: 1e-2,
            },
        ];
        let mut rng = Lcg(11);
        for (case, &scale) in scales.iter().enumerate() {
            for direction in [Direction::Maf, Direction::Iaf] {
                for &(d, c) in &[(1usize, 0usize), (2, 0), (3, 2), (4, 1)] {
                    let order: Vec<u16> = (0..d as u16).rev().collect();
                    let sizes = [d + c, 8, 7, 2 * d];
                    let (params, _) = made_params(&order, &sizes, 2, &mut rng);
                    let layout = if case % 2 == 0 {
                        AffineLayout::ShiftScale
                    } else {
                        AffineLayout::ScaleShift
                    };
                    let act = [Activation::Tanh, Activation::Silu, Activation::Elu][case % 3];
                    let sizes: &'static [usize] = Box::leak(Box::new(sizes));
                    let build = builder(move |p| {
                        Box::new(AffineAutoregressive {
                            net: Mlp {
                                sizes,
                                params: p,
                                activation: act,
                                residual: false,
                            },
                            dim: d,
                            scale,
                            layout,
                            direction,
                        })
                    });
                    let x = rng.normals(d);
                    let ctx = rng.normals(c);
                    let r = check_bijection_except(&build, &params, &x, &ctx, &|k| params[k] == 0.0);
                    assert!(
                        r.roundtrip < 1e-10 && r.ldj_cancel < 1e-10,
                        "{scale:?} {direction:?} {r:?}"
                    );
                    assert!(r.max_fd() < 1e-6, "{scale:?} {direction:?} d={d} c={c}: {r:?}");
                    worst.merge(&r);
                }
            }
        }
        std::eprintln!("affine_ar worst: {worst:?}");
    }

    /// paramax's `inv_softplus`: `ln(−expm1(−x)) + x`.
    fn flowjax_inv_softplus(x: f64) -> f64 {
        (-(-x).exp_m1()).ln() + x
    }

    #[test]
    fn softplus_offset_scale_follows_flowjax_and_its_derivative() {
        // FlowJAX's initial transformer: raw output 0 gives scale 1 (both parameterizations).
        for (s0, eps) in [(1.0, 0.0), (0.99, 1e-2)] {
            let scale = AffineScale::SoftplusOffset {
                offset: flowjax_inv_softplus(s0),
                eps,
            };
            let (s, ls, _) = scale.eval(0.0f64);
            assert!((s - 1.0).abs() < 1e-15 && ls.abs() < 1e-15, "{s} {ls}");
        }
        let offset = flowjax_inv_softplus(1.0);
        for eps in [0.0, 1e-2] {
            let scale = AffineScale::SoftplusOffset { offset, eps };
            for a in [
                -800.0, -60.0, -31.0, -29.0, -5.0, -0.3, 0.0, 0.7, 4.0, 25.0, 40.0, 800.0,
            ] {
                let (s, ls, dls) = scale.eval(a);
                // Reference: JAX's softplus(v) = logaddexp(v, 0).
                let v = a + offset;
                let sp = v.max(0.0) + (-v.abs()).exp().ln_1p();
                assert_eq!(s, sp + eps);
                assert!(ls.is_finite() && dls.is_finite(), "{a}: {ls} {dls}");
                if s > 0.0 {
                    assert!(
                        (ls - s.ln()).abs() <= 1e-13 * ls.abs().max(1.0),
                        "{a}: {ls} vs {}",
                        s.ln()
                    );
                }
                let h = 1e-5;
                let fd = (scale.eval(a + h).1 - scale.eval(a - h).1) / (2.0 * h);
                assert!((fd - dls).abs() < 1e-8, "eps {eps} a {a}: fd {fd} vs {dls}");
                let (s32, ls32, dls32) = scale.eval(a as f32);
                assert!(s32 >= 0.0 && ls32.is_finite() && dls32.is_finite(), "f32 {a}");
            }
        }
    }
}
