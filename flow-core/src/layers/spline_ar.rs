//! Autoregressive rational-quadratic spline layers: the neural spline flow's autoregressive form
//! (Durkan et al. 2019) in the MAF and IAF directions.
//!
//! A MADE conditioner `net([y, c])` gives, for every feature `i`, the `P` raw parameters `θᵢ` of a
//! monotone spline ([`SplineOpts`]) that depend only on features ranked before `i`. The map
//!
//! `F: zᵢ = fᵢ(yᵢ; θᵢ(y<ᵢ))`,   log|det ∂F| = Σᵢ ln fᵢ'(yᵢ)
//!
//! takes one network pass; its inverse takes D passes (`y ← f⁻¹(z; θ(y))`, exact after D).
//! - [`Direction::Maf`]: `inverse` (data → base, density) is `F` (one pass), `forward` is `F⁻¹`.
//!   This is zuko's `NSF`, nflows' `MaskedPiecewiseRationalQuadraticAutoregressiveTransform` and
//!   FlowJAX's `MaskedAutoregressive` with its default `invert=True`.
//! - [`Direction::Iaf`]: `inverse` is `F⁻¹` and `forward` (sampling) is `F` (one pass).
//!
//! Network outputs are feature-major: `out[i·P + p]` is parameter `p` of feature `i`, which is how
//! zuko (`unflatten(-1, (D, P))`), nflows (`view(B, D, P)`) and FlowJAX (`reshape(dim, -1)`) read them.

use crate::layers::autoregressive::{
    ar_block_forward_vjp_scratch_len, ar_block_vjp_scratch_len, ar_forward_vjp_block, ar_inverse_vjp_block,
    iaf_vjp, Autoregressive, Direction,
};
use crate::layers::blockwise::{self, BlockStep};
use crate::layers::spline::{SplineOpts, LANES_MAX_BINS};
use crate::layers::Bijection;
use crate::nn::Mlp;
use crate::{slicing, Real, Weight};

/// An autoregressive spline layer (see the module docs).
#[derive(Clone, Copy, Debug)]
pub struct SplineAutoregressive<'a, W> {
    /// The MADE conditioner (masks already applied to its weights); `D + C` inputs, `D·P` outputs.
    pub net: Mlp<'a, W>,
    /// Number of features D.
    pub dim: usize,
    /// The spline transformer.
    pub spline: SplineOpts,
    /// MAF or IAF.
    pub direction: Direction,
}

impl<'a, W: Weight> SplineAutoregressive<'a, W> {
    fn ctx_dim(&self) -> usize {
        self.net.n_in().saturating_sub(self.dim)
    }

    /// Network outputs: `D·P`.
    fn n_out(&self) -> usize {
        self.dim * self.spline.params_per_feature()
    }

    /// Scratch of the one-pass map `F` (and of one sweep of `F⁻¹`).
    fn pass_scratch(&self) -> usize {
        self.n_out() + self.spline.knots_len() + self.net.scratch_len()
    }

    /// Scratch of the VJP of `F`.
    fn pass_vjp_scratch(&self) -> usize {
        2 * self.n_out()
            + self.net.cache_len()
            + self.spline.vjp_scratch_len().max(self.net.backward_scratch_len())
    }

    /// `F(y)`: `zᵢ = fᵢ(yᵢ)`, returns Σ ln fᵢ'(yᵢ).
    #[inline(always)]
    fn pass<S: Real>(&self, y: &[S], ctx: &[S], z: &mut [S], scratch: &mut [S]) -> S {
        let (out, rest) = slicing::split_mut(scratch, self.n_out());
        let (knots, rest) = slicing::split_mut(rest, self.spline.knots_len());
        self.net.forward(y, ctx, out, rest);
        self.step(y, out, z, knots, true)
    }

    /// `F⁻¹(z)` by D passes; returns Σ ln dyᵢ/dzᵢ (log|det ∂y/∂z|).
    #[inline(always)]
    fn solve<S: Real>(&self, z: &[S], ctx: &[S], y: &mut [S], scratch: &mut [S]) -> S {
        let (out, rest) = slicing::split_mut(scratch, self.n_out());
        let (knots, rest) = slicing::split_mut(rest, self.spline.knots_len());
        y.fill(S::ZERO);
        let mut ldj = S::ZERO;
        for _ in 0..self.dim {
            self.net.forward(y, ctx, out, rest);
            ldj = self.step(z, out, y, knots, false);
        }
        ldj
    }

    /// The elementwise part given the network output `out`: `dst = f(src)` (`pass`: the
    /// spline) or one sweep `dst = f⁻¹(src)` of the solve; returns the summed log-derivatives.
    #[inline(always)]
    fn step<S: Real>(&self, src: &[S], out: &[S], dst: &mut [S], knots: &mut [S], pass: bool) -> S {
        let p = self.spline.params_per_feature();
        let sp = self.spline.prepare::<S>();
        let mut ldj = S::ZERO;
        for ((di, &si), raw) in dst.iter_mut().zip(src).zip(slicing::rows(out, p)) {
            sp.knots(raw, knots);
            let (v, l) = if pass {
                sp.forward(knots, si)
            } else {
                sp.inverse(knots, si)
            };
            *di = v;
            ldj += l;
        }
        ldj
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
        let k = self.spline.knots_len();
        blockwise::autoregressive(self, pass, &self.net, k, self.dim, src, ctx, dst, ldj, scratch);
    }
}

impl<W: Weight> BlockStep for SplineAutoregressive<'_, W> {
    fn lanes_apply(&self) -> bool {
        self.spline.bins <= LANES_MAX_BINS
    }

    #[inline(always)]
    fn step_one<S: Real>(&self, a: &[S], o: &[S], b: &mut [S], knots: &mut [S], pass: bool) -> S {
        self.step(a, o, b, knots, pass)
    }

    /// [`Self::step`] of each sample of a block, in lanes (`flag`: the one-pass map).
    #[inline(always)]
    fn step_lanes<S: Real, const N: usize>(
        &self,
        src: [&[S]; N],
        out: &[[S; N]],
        dst: &mut [&mut [S]; N],
        pass: bool,
    ) -> [S; N] {
        let sp = self.spline.prepare::<S>();
        sp.eval_block(&src, out, dst, (0..self.dim).map(|i| (i, i)), !pass)
            .0
    }
}

impl<'a, S: Real, W: Weight> Autoregressive<S> for SplineAutoregressive<'a, W> {
    fn maf(&self) -> Self {
        SplineAutoregressive {
            direction: Direction::Maf,
            ..*self
        }
    }

    /// The spline slopes `fᵢ'(uᵢ)`.
    fn diagonal(&self, u: &[S], ctx: &[S], diag: &mut [S], scratch: &mut [S]) {
        let p = self.spline.params_per_feature();
        let sp = self.spline.prepare::<S>();
        let (out, rest) = slicing::split_mut(scratch, self.n_out());
        let (knots, rest) = slicing::split_mut(rest, self.spline.knots_len());
        self.net.forward(u, ctx, out, rest);
        for ((di, &ui), raw) in diag.iter_mut().zip(u.iter()).zip(slicing::rows(out, p)) {
            sp.knots(raw, knots);
            *di = sp.forward(knots, ui).1.exp();
        }
    }

    fn is_maf(&self) -> bool {
        self.direction == Direction::Maf
    }

    type W = W;

    fn net(&self) -> &Mlp<'_, W> {
        &self.net
    }

    fn net_outputs(&self) -> usize {
        self.n_out()
    }

    fn pass_vjp_step_len(&self) -> usize {
        self.spline.vjp_scratch_len()
    }

    /// `zᵢ = f(yᵢ; θᵢ)`: ∂/∂yᵢ directly, ∂/∂θᵢ through the network.
    #[inline(always)]
    fn pass_vjp_step(
        &self,
        y: &[S],
        out: &[S],
        g_z: &[S],
        g_ldj: S,
        g_y: &mut [S],
        g_out: &mut [S],
        scratch: &mut [S],
    ) {
        let p = self.spline.params_per_feature();
        let sp = self.spline.prepare::<S>();
        let raws = slicing::rows(out, p).zip(slicing::rows_mut(g_out, p));
        for (((gy, &yi), &gz), (raw, g_raw)) in g_y.iter_mut().zip(y).zip(g_z).zip(raws) {
            *gy = sp.forward_vjp(raw, yi, gz, g_ldj, g_raw, scratch).2;
        }
    }
}

impl<'a, S: Real, W: Weight> Bijection<S> for SplineAutoregressive<'a, W> {
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
        let a = self.pass_scratch().max(self.pass_vjp_scratch());
        match self.direction {
            Direction::Maf => a,
            // iaf_vjp: u, w, v, tmp, diag (D each) and a context buffer, then the pass buffers.
            Direction::Iaf => 5 * self.dim + self.ctx_dim() + a,
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
        blockwise::scratch_len(&self.net, 0, self.spline.knots_len(), n)
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
            Direction::Maf => {
                scratch.max(5 * self.dim + self.ctx_dim() + self.pass_scratch().max(self.pass_vjp_scratch()))
            }
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

#[cfg(test)]
mod tests {
    extern crate std;
    use std::boxed::Box;
    use std::vec;
    use std::vec::Vec;

    use super::*;
    use crate::layers::spline::SplineKind;
    use crate::nn::made;
    use crate::nn::mlp::n_params;
    use crate::nn::Activation;
    use crate::testing::{builder, check_bijection_except, Lcg, Report};

    /// Random MADE parameters with masks applied (masked weights exactly 0).
    fn made_params(order: &[u16], sizes: &[usize], per: usize, rng: &mut Lcg) -> Vec<f64> {
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
        params
    }

    /// The spline options exercised: every kind, several bins and bounds.
    fn test_splines() -> [SplineOpts; 7] {
        [
            SplineOpts::zuko(4, 2.0, 1e-3),
            SplineOpts::zuko(1, 1.0, 1e-4),
            SplineOpts::nflows(5, 1.5, 1.0),
            SplineOpts::nflows(2, 3.0, 0.3),
            SplineOpts::flowjax(3, 1.0),
            SplineOpts::flowjax(6, 2.5),
            SplineOpts {
                bins: 8,
                bound: 2.0,
                kind: SplineKind::Nflows {
                    min_bin_width: 1e-2,
                    min_bin_height: 2e-2,
                    min_derivative: 5e-2,
                },
                logit_scale: 0.5,
            },
        ]
    }

    fn layer<'a>(
        sizes: &'a [usize],
        params: &'a [f64],
        activation: Activation,
        dim: usize,
        spline: SplineOpts,
        direction: Direction,
    ) -> SplineAutoregressive<'a, f64> {
        SplineAutoregressive {
            net: Mlp {
                sizes,
                params,
                activation,
                residual: false,
            },
            dim,
            spline,
            direction,
        }
    }

    /// Distance from `v` to the nearest of `ps`.
    fn dist(v: f64, ps: &[f64]) -> f64 {
        ps.iter().map(|p| (v - p).abs()).fold(f64::INFINITY, f64::min)
    }

    /// Whether central differences with step 1e-6 are meaningful at `x`: `F`'s inputs are at least
    /// 1e-4 from their x-knots and its outputs from their y-knots (the log-derivative has kinks
    /// there), and no slope is below 1/20 or above 20 (there, rounding noise in the log-derivative,
    /// divided by the step, exceeds the tolerance; the kernel's own tests cover steep bins with a
    /// higher-order stencil).
    fn fd_safe(layer: &SplineAutoregressive<f64>, x: &[f64], ctx: &[f64]) -> bool {
        let d = layer.dim;
        let sp = layer.spline;
        let (p, n) = (sp.params_per_feature(), sp.bins + 1);
        let mut scratch = vec![0.0; Bijection::<f64>::scratch_len(layer)];
        let mut u = x.to_vec();
        if layer.direction == Direction::Iaf {
            layer.solve(x, ctx, &mut u, &mut scratch);
        }
        let mut out = vec![0.0; d * p];
        layer.net.forward(&u, ctx, &mut out, &mut scratch);
        let mut knots = vec![0.0; sp.knots_len()];
        (0..d).all(|i| {
            sp.knots(&out[i * p..(i + 1) * p], &mut knots);
            let (z, l) = sp.forward(&knots, u[i]);
            dist(u[i], &knots[..n]) > 1e-4 && dist(z, &knots[n..2 * n]) > 1e-4 && l.abs() < 20f64.ln()
        })
    }

    #[test]
    fn spline_maf_and_iaf_pass_finite_difference_checks() {
        let mut worst = Report::default();
        let mut rng = Lcg(41);
        let (mut n_in, mut n_out, mut n_skipped) = (0, 0, 0);
        for (case, spline) in test_splines().into_iter().enumerate() {
            let p = spline.params_per_feature();
            for direction in [Direction::Maf, Direction::Iaf] {
                for &(d, c) in &[(1usize, 0usize), (1, 2), (2, 0), (2, 1), (3, 0), (3, 2)] {
                    let order: Vec<u16> = if case % 2 == 0 {
                        (0..d as u16).rev().collect()
                    } else {
                        (0..d as u16).collect()
                    };
                    let sizes = [d + c, 8, 7, d * p];
                    let params = made_params(&order, &sizes, p, &mut rng);
                    let act = [Activation::Tanh, Activation::Silu, Activation::Elu][case % 3];
                    let sizes: &'static [usize] = Box::leak(Box::new(sizes));
                    let make = move |p| layer(sizes, p, act, d, spline, direction);
                    let build = builder(move |p| Box::new(layer(sizes, p, act, d, spline, direction)));
                    for _ in 0..3 {
                        // Normals scaled to the bound: about a fifth of the coordinates in the tails.
                        let ctx = rng.normals(c);
                        let mut draw = || -> Vec<f64> {
                            rng.normals(d).iter().map(|v| v * 0.8 * spline.bound).collect()
                        };
                        let mut x = draw();
                        for _ in 0..100 {
                            if fd_safe(&make(&params), &x, &ctx) {
                                break;
                            }
                            x = draw();
                        }
                        if !fd_safe(&make(&params), &x, &ctx) {
                            n_skipped += 1;
                            continue;
                        }
                        for &xi in &x {
                            if xi.abs() < spline.bound {
                                n_in += 1;
                            } else {
                                n_out += 1;
                            }
                        }
                        let r = check_bijection_except(&build, &params, &x, &ctx, &|k| params[k] == 0.0);
                        assert!(
                            r.roundtrip < 1e-10 && r.ldj_cancel < 1e-10,
                            "{spline:?} {direction:?} d={d} c={c}: {r:?}"
                        );
                        assert!(
                            r.max_fd() < 1e-6,
                            "{spline:?} {direction:?} d={d} c={c} x={x:?}: {r:?}"
                        );
                        worst.merge(&r);
                    }
                }
            }
        }
        assert!(
            n_in > 200 && n_out > 30 && n_skipped < 10,
            "{n_in} inside, {n_out} tails, {n_skipped}"
        );
        std::eprintln!("spline_ar worst ({n_in} coordinates inside, {n_out} in the tails): {worst:?}");
    }

    #[test]
    fn f32_evaluation_matches_f64_and_stays_finite_far_out() {
        let mut rng = Lcg(43);
        for spline in test_splines() {
            let p = spline.params_per_feature();
            let (d, c) = (3, 1);
            let order: Vec<u16> = (0..d as u16).collect();
            let sizes = [d + c, 6, d * p];
            let params = made_params(&order, &sizes, p, &mut rng);
            let params32: Vec<f32> = params.iter().map(|&v| v as f32).collect();
            for direction in [Direction::Maf, Direction::Iaf] {
                let l64 = SplineAutoregressive {
                    net: Mlp {
                        sizes: &sizes,
                        params: &params,
                        activation: Activation::Tanh,
                        residual: false,
                    },
                    dim: d,
                    spline,
                    direction,
                };
                let l32 = SplineAutoregressive {
                    net: Mlp {
                        sizes: &sizes,
                        params: &params32,
                        activation: Activation::Tanh,
                        residual: false,
                    },
                    dim: d,
                    spline,
                    direction,
                };
                let mut s64 = vec![0.0f64; Bijection::<f64>::scratch_len(&l64)];
                let mut s32 = vec![0.0f32; Bijection::<f32>::scratch_len(&l32)];
                let b = spline.bound;
                for x in [
                    vec![0.1, -0.5 * b, 0.9 * b],
                    vec![b, -b, 0.0],
                    vec![1e4, -3.0 * b, 0.5 * b],
                ] {
                    let ctx = [0.3];
                    let mut z = vec![0.0; d];
                    let l = l64.inverse(&x, &ctx, &mut z, &mut s64);
                    let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
                    let mut z32 = vec![0.0f32; d];
                    let l32v = l32.inverse(&x32, &[0.3], &mut z32, &mut s32);
                    assert!(l32v.is_finite() && z32.iter().all(|v| v.is_finite()));
                    assert!(
                        (l32v as f64 - l).abs() < 1e-3,
                        "{spline:?} {direction:?} {l} {l32v}"
                    );
                    let mut back = vec![0.0f32; d];
                    let lf = l32.forward(&z32, &[0.3], &mut back, &mut s32);
                    assert!(lf.is_finite() && back.iter().all(|v| v.is_finite()));
                }
            }
        }
    }
}
