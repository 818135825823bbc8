//! Autoregressive layers: a MADE conditioner × a univariate [`Transformer`], in the MAF
//! (Papamakarios et al. 2017) and IAF (Kingma et al. 2016) directions.
//!
//! The conditioner `net([y, c])` gives, for every feature `i`, the `P` raw parameters `θᵢ` of the
//! transformer, which depend only on features ranked before `i`. The map
//!
//! `F: zᵢ = f(yᵢ; θᵢ(y<ᵢ))`,   log|det ∂F| = Σᵢ ln f'(yᵢ; θᵢ)
//!
//! takes one network pass; its inverse takes D passes (`y ← f⁻¹(z; θ(y))`, exact after D).
//! - [`Direction::Maf`]: `inverse` (data → base, density) is `F` (one pass), `forward` is `F⁻¹`.
//! - [`Direction::Iaf`]: `inverse` is `F⁻¹` and `forward` (sampling) is `F` (one pass).
//!
//! The transformers: [`Affine`] (`zᵢ = yᵢ · s(aᵢ) + tᵢ`, [`AffineAutoregressive`]: MAF/IAF) and
//! the rational-quadratic spline ([`SplineOpts`], [`SplineAutoregressive`]: the neural spline
//! flow's autoregressive form, Durkan et al. 2019 — zuko's `NSF`, nflows'
//! `MaskedPiecewiseRationalQuadraticAutoregressiveTransform` and FlowJAX's `MaskedAutoregressive`
//! with its default `invert=True`, all in the MAF direction).
//!
//! Network outputs are feature-major: `out[i·P + p]` is parameter `p` of feature `i` (for the
//! affine transformer `P = 2`, the pair in [`AffineLayout`](crate::layers::affine::AffineLayout)'s
//! order), which is how zuko (`unflatten(-1, (D, P))`), nflows (`view(B, D, P)`) and FlowJAX
//! (`reshape(dim, -1)`) read them.
//!
//! The VJPs (single sample, block, and the D-pass inverse's by implicit differentiation) are in
//! `vjp.rs`.

use crate::layers::{BlockGrads, Cotangent, Grads};
use serde::{Deserialize, Serialize};

use crate::layers::affine::Affine;
use crate::layers::blockwise::{self, BlockStep};
use crate::layers::spline::SplineOpts;
use crate::layers::transformer::Transformer;
use crate::layers::Bijection;
use crate::nn::Mlp;
use crate::{slicing, Real, Weight};

#[cfg(test)]
mod tests;
mod vjp;

/// Which direction the one-pass map runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    /// Masked autoregressive flow: one pass for density.
    Maf,
    /// Inverse autoregressive flow: one pass for sampling.
    Iaf,
}

/// An autoregressive layer (see the module docs).
#[derive(Clone, Copy, Debug)]
pub struct Autoregressive<'a, W, T> {
    /// The MADE conditioner (masks already applied to its weights); `D + C` inputs, `D·P` outputs.
    pub net: Mlp<'a, W>,
    /// Number of features D.
    pub dim: usize,
    /// The univariate transformer.
    pub transformer: T,
    /// MAF or IAF.
    pub direction: Direction,
}

/// MAF / IAF: the affine transformer.
pub type AffineAutoregressive<'a, W> = Autoregressive<'a, W, Affine>;

/// The autoregressive neural spline flow layer: the rational-quadratic spline transformer.
pub type SplineAutoregressive<'a, W> = Autoregressive<'a, W, SplineOpts>;

impl<'a, W: Weight, T: Transformer> Autoregressive<'a, W, T> {
    fn ctx_dim(&self) -> usize {
        self.net.n_in().saturating_sub(self.dim)
    }

    /// Network outputs: `D·P`.
    fn n_out(&self) -> usize {
        self.dim * self.transformer.params_per_feature()
    }

    /// Whether the layer runs in the MAF direction (its `inverse` is the one-pass map `F`).
    fn is_maf(&self) -> bool {
        self.direction == Direction::Maf
    }

    /// The same layer in the MAF direction: its `inverse` is `F`, its `forward` `F⁻¹` and its
    /// `inverse_vjp` the VJP of `F`.
    fn maf(&self) -> Self {
        Autoregressive {
            direction: Direction::Maf,
            ..*self
        }
    }

    /// Scratch of the one-pass map `F` (and of one sweep of `F⁻¹`).
    fn pass_scratch(&self) -> usize {
        self.n_out() + self.transformer.map_len() + self.net.scratch_len()
    }

    /// Scratch of the VJP of `F`.
    fn pass_vjp_scratch(&self) -> usize {
        2 * self.n_out()
            + self.net.cache_len()
            + self.transformer.vjp_len().max(self.net.backward_scratch_len())
    }

    /// Scratch of `iaf_vjp`: `u, w, v, tmp, diag` (D each), a context buffer, then the passes.
    fn iaf_vjp_scratch(&self) -> usize {
        5 * self.dim + self.ctx_dim() + self.pass_scratch().max(self.pass_vjp_scratch())
    }

    /// `F(y)`: `zᵢ = f(yᵢ; θᵢ)`, returns Σ ln f'(yᵢ).
    #[inline(always)]
    fn pass<S: Real>(&self, y: &[S], ctx: &[S], z: &mut [S], scratch: &mut [S]) -> S {
        let (out, rest) = slicing::split_mut(scratch, self.n_out());
        let (step, rest) = slicing::split_mut(rest, self.transformer.map_len());
        self.net.forward(y, ctx, out, rest);
        self.step(y, out, z, step, true)
    }

    /// `F⁻¹(z)` by D passes; returns log|det ∂y/∂z|.
    #[inline(always)]
    fn solve<S: Real>(&self, z: &[S], ctx: &[S], y: &mut [S], scratch: &mut [S]) -> S {
        let (out, rest) = slicing::split_mut(scratch, self.n_out());
        let (step, rest) = slicing::split_mut(rest, self.transformer.map_len());
        y.fill(S::ZERO);
        let mut ldj = S::ZERO;
        for _ in 0..self.dim {
            self.net.forward(y, ctx, out, rest);
            ldj = self.step(z, out, y, step, false);
        }
        ldj
    }

    /// The elementwise part given the network output `out`: `dst = f(src)` (`pass`) or one sweep
    /// `dst = f⁻¹(src)` of the solve; returns the summed log-derivatives.
    #[inline(always)]
    fn step<S: Real>(&self, src: &[S], out: &[S], dst: &mut [S], scratch: &mut [S], pass: bool) -> S {
        let p = self.transformer.params_per_feature();
        let features = src.iter().zip(slicing::rows(out, p)).zip(dst.iter_mut());
        let features = features.map(|((x, raw), y)| (x, raw, y));
        self.transformer.map(features, scratch, pass)
    }

    /// The diagonal of the Jacobian of `F` at `u` (`∂Fᵢ/∂uᵢ = f'(uᵢ; θᵢ)`, which depends on
    /// `u<ᵢ` only) into `diag`.
    fn diagonal<S: Real>(&self, u: &[S], ctx: &[S], diag: &mut [S], scratch: &mut [S]) {
        let p = self.transformer.params_per_feature();
        let (out, rest) = slicing::split_mut(scratch, self.n_out());
        let (step, rest) = slicing::split_mut(rest, self.transformer.map_len());
        self.net.forward(u, ctx, out, rest);
        let features = u.iter().zip(slicing::rows(out, p)).zip(diag.iter_mut());
        let features = features.map(|((x, raw), d)| (x, raw, d));
        self.transformer.derivatives(features, step);
    }

    /// `F` (`pass`) or its D-sweep inverse for a block of samples.
    fn block<S: Real, const N: usize>(
        &self,
        src: [&[S]; N],
        ctx: [&[S]; N],
        dst: [&mut [S]; N],
        ldj: &mut [S; N],
        scratch: &mut [S],
        pass: bool,
    ) {
        let k = self.transformer.map_len();
        blockwise::autoregressive(self, pass, &self.net, k, self.dim, src, ctx, dst, ldj, scratch);
    }
}

impl<W: Weight, T: Transformer> BlockStep for Autoregressive<'_, W, T> {
    fn lanes_apply(&self) -> bool {
        self.transformer.lanes_apply()
    }

    #[inline(always)]
    fn step_one<S: Real>(&self, a: &[S], o: &[S], b: &mut [S], scratch: &mut [S], pass: bool) -> S {
        self.step(a, o, b, scratch, pass)
    }

    /// [`Transformer::map_lanes`] over every feature (`flag`: the one-pass map).
    #[inline(always)]
    fn step_lanes<S: Real, const N: usize>(
        &self,
        src: [&[S]; N],
        out: &[[S; N]],
        dst: &mut [&mut [S]; N],
        pass: bool,
    ) -> [S; N] {
        let coords = (0..self.dim).map(|i| (i, i));
        self.transformer.map_lanes(&src, out, dst, coords, pass, true)
    }
}

impl<'a, S: Real, W: Weight, T: Transformer> Bijection<S> for Autoregressive<'a, W, T> {
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
        match self.direction {
            Direction::Maf => self.pass_scratch().max(self.pass_vjp_scratch()),
            Direction::Iaf => self.iaf_vjp_scratch(),
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
        blockwise::scratch_len(&self.net, 0, self.transformer.map_len(), n)
    }

    fn inverse_acc_block<const N: usize>(
        &self,
        x: [&[S]; N],
        ctx: [&[S]; N],
        z: [&mut [S]; N],
        ldj: &mut [S; N],
        scratch: &mut [S],
    ) {
        self.block(x, ctx, z, ldj, scratch, self.is_maf());
    }

    fn forward_acc_block<const N: usize>(
        &self,
        z: [&[S]; N],
        ctx: [&[S]; N],
        x: [&mut [S]; N],
        ldj: &mut [S; N],
        scratch: &mut [S],
    ) {
        self.block(z, ctx, x, ldj, scratch, !self.is_maf());
    }

    /// The density direction: in the MAF direction the VJP of the one pass `F`; in the IAF
    /// direction `F⁻¹`'s, by implicit differentiation (`iaf_vjp`: D sweeps of `F`'s VJP).
    #[inline(always)]
    fn inverse_vjp(
        &self,
        x: &[S],
        ctx: &[S],
        cot: Cotangent<&[S], S>,
        grads: Grads<'_, S>,
        scratch: &mut [S],
    ) {
        match self.direction {
            Direction::Maf => self.pass_vjp(x, ctx, cot, grads, scratch),
            Direction::Iaf => self.iaf_vjp(x, ctx, cot, grads, scratch),
        }
    }

    fn forward_vjp_scratch_len(&self) -> usize {
        let scratch = <Self as Bijection<S>>::scratch_len(self);
        match self.direction {
            Direction::Maf => scratch.max(self.iaf_vjp_scratch()),
            Direction::Iaf => scratch,
        }
    }

    /// The sampling direction: in the MAF direction `F⁻¹`, by implicit differentiation; in the
    /// IAF direction the one pass `F`.
    #[inline(always)]
    fn forward_vjp(
        &self,
        z: &[S],
        ctx: &[S],
        cot: Cotangent<&[S], S>,
        grads: Grads<'_, S>,
        scratch: &mut [S],
    ) {
        match self.direction {
            Direction::Maf => self.iaf_vjp(z, ctx, cot, grads, scratch),
            Direction::Iaf => self.pass_vjp(z, ctx, cot, grads, scratch),
        }
    }

    fn block_forward_vjp_scratch_len(&self, n: usize) -> usize {
        let single = <Self as Bijection<S>>::forward_vjp_scratch_len(self);
        if self.is_maf() {
            single
        } else {
            single.max(self.pass_vjp_block_len(n))
        }
    }

    /// The block VJP of `F` in the IAF direction (sampling is the one pass), `iaf_vjp` sample by
    /// sample in the MAF direction.
    fn forward_vjp_block<const N: usize>(
        &self,
        z: [&[S]; N],
        ctx: [&[S]; N],
        cot: Cotangent<[&[S]; N], S>,
        grads: BlockGrads<'_, S, N>,
        scratch: &mut [S],
    ) {
        if self.is_maf() {
            self.iaf_vjp_each(z, ctx, cot, grads, scratch);
        } else {
            self.pass_vjp_block(z, ctx, cot, grads, scratch);
        }
    }

    fn block_vjp_scratch_len(&self, n: usize) -> usize {
        let single = <Self as Bijection<S>>::scratch_len(self) + 2 * self.dim;
        if self.is_maf() {
            single.max(self.pass_vjp_block_len(n))
        } else {
            single
        }
    }

    /// The block VJP of `F` in the MAF direction, `iaf_vjp` sample by sample in the IAF
    /// direction.
    fn inverse_vjp_block<const N: usize>(
        &self,
        x: [&[S]; N],
        ctx: [&[S]; N],
        cot: Cotangent<[&[S]; N], S>,
        grads: BlockGrads<'_, S, N>,
        scratch: &mut [S],
    ) {
        if self.is_maf() {
            self.pass_vjp_block(x, ctx, cot, grads, scratch);
        } else {
            self.iaf_vjp_each(x, ctx, cot, grads, scratch);
        }
    }
}
