//! Rational-quadratic spline coupling layers (Durkan et al. 2019; coupling as in Dinh et al. 2017).
//!
//! A mask splits the features into identity (conditioning) features `a` and transformed features
//! `b`. A conditioner `net([a, c])` (the identity features in index order, then the context) gives
//! `P` raw spline parameters per transformed feature, and
//!
//! `inverse` (data → base): `zₐ = xₐ`, `z_b = f(x_b; θ(xₐ, c))`,  log|det| = Σ_b ln f'(x_b)
//!
//! `forward` (base → data): `xₐ = zₐ`, `x_b = f⁻¹(z_b; θ(zₐ, c))`
//!
//! both in one network pass. Network outputs are feature-major over the transformed features in
//! index order: `out[t·P + p]` is parameter `p` of the `t`-th transformed feature.
//!
//! Peers: nflows' `PiecewiseRationalQuadraticCouplingTransform` (its mask is the complement of ours:
//! `mask > 0` marks transformed features; its `ResidualNet` conditioner makes the width and height
//! logits divided by `√hidden_features`, see [`SplineOpts::logit_scale`]); FlowJAX's `Coupling` with
//! a `RationalQuadraticSpline` transformer (the first `untransformed_dim` features are the identity
//! features; `coupling_flow`'s default `invert=True` makes its `transform` our `inverse`).

use crate::lanes::Lanes;
use crate::layers::affine_coupling::{
    coupling_forward_cached, coupling_vjp_block, coupling_vjp_block_scratch, gather, CouplingVjp, MaskBit,
};
use crate::layers::blockwise::{self, BlockStep};
use crate::layers::spline::{SplineOpts, LANES_MAX_BINS};
use crate::layers::Bijection;
use crate::nn::Mlp;
use crate::{slicing, Real, Weight};

/// A spline coupling layer (see the module docs).
#[derive(Clone, Copy, Debug)]
pub struct SplineCoupling<'a, W, M = bool> {
    /// The conditioner: `n_identity + C` inputs, `n_transformed · P` outputs.
    pub net: Mlp<'a, W>,
    /// One entry per feature (`D` long): `true` = identity (conditioning) feature, `false` =
    /// transformed by the spline.
    pub mask: &'a [M],
    /// The spline transformer.
    pub spline: SplineOpts,
}

impl<'a, W: Weight, M: MaskBit> SplineCoupling<'a, W, M> {
    /// Number of identity (conditioning) features.
    fn n_identity(&self) -> usize {
        self.mask.iter().filter(|m| m.is_identity()).count()
    }

    /// Network outputs: `n_transformed · P`.
    fn n_out(&self) -> usize {
        (self.mask.len() - self.n_identity()) * self.spline.params_per_feature()
    }

    /// The map in either direction: identity features copied, the others through the spline
    /// (`data_to_base`: the kernel's `forward`) or its inverse.
    #[inline]
    fn apply<S: Real>(&self, x: &[S], ctx: &[S], z: &mut [S], scratch: &mut [S], data_to_base: bool) -> S {
        let (a, rest) = slicing::split_mut(scratch, self.n_identity());
        let (out, rest) = slicing::split_mut(rest, self.n_out());
        let (knots, rest) = slicing::split_mut(rest, self.spline.knots_len());
        gather(self.mask, x, a);
        self.net.forward(a, ctx, out, rest);
        self.finish(x, out, z, knots, data_to_base)
    }

    /// The elementwise part of the VJP given the conditioner's output `out`: in the density
    /// direction (`density`) `z_b = f(x_b; θ)`, else `x_b = f⁻¹(z_b; θ)` (then `x` is `z` and
    /// `g_z` is `g_x`, and the other way round), so the input's cotangent of the transformed
    /// features directly and the cotangent `g_out` of the output; identity features pass the
    /// cotangent through (the network's gradient is added by the caller).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn vjp_step<S: Real>(
        &self,
        x: &[S],
        g_z: &[S],
        g_ldj: S,
        out: &[S],
        g_out: &mut [S],
        g_x: &mut [S],
        scratch: &mut [S],
        density: bool,
    ) {
        let p = self.spline.params_per_feature();
        let sp = self.spline.prepare::<S>();
        let mut raws = slicing::rows(out, p).zip(slicing::rows_mut(g_out, p));
        for (((gx, &gz), &xi), m) in g_x.iter_mut().zip(g_z).zip(x).zip(self.mask) {
            if m.is_identity() {
                *gx = gz;
            } else if let Some((raw, g_raw)) = raws.next() {
                *gx = if density {
                    sp.forward_vjp(raw, xi, gz, g_ldj, g_raw, scratch).2
                } else {
                    sp.inverse_vjp(raw, xi, gz, g_ldj, g_raw, scratch).2
                };
            }
        }
    }

    /// Either direction's VJP (see [`Self::vjp_step`]): the conditioner's cached forward on the
    /// identity features of `src`, the step, the backward added into their cotangents.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn vjp<S: Real>(
        &self,
        src: &[S],
        ctx: &[S],
        g_dst: &[S],
        g_ldj: S,
        g_src: &mut [S],
        g_ctx: &mut [S],
        g_params: Option<&mut [S]>,
        scratch: &mut [S],
        density: bool,
    ) {
        let CouplingVjp {
            xid: a,
            g_xid: g_a,
            out,
            g_out,
            cache,
            rest,
        } = coupling_forward_cached(&self.net, self.mask, src, ctx, self.n_out(), scratch);
        self.vjp_step(src, g_dst, g_ldj, out, g_out, g_src, rest, density);
        g_a.fill(S::ZERO);
        self.net
            .backward(a, ctx, cache, g_out, g_a, g_ctx, g_params, rest);
        for (gi, &ga) in g_src
            .iter_mut()
            .zip(self.mask)
            .filter(|(_, m)| m.is_identity())
            .map(|(g, _)| g)
            .zip(g_a.iter())
        {
            *gi += ga;
        }
    }

    /// The elementwise part of [`Self::apply`] given the network output `out`.
    #[inline(always)]
    fn finish<S: Real>(&self, x: &[S], out: &[S], z: &mut [S], knots: &mut [S], data_to_base: bool) -> S {
        let p = self.spline.params_per_feature();
        let sp = self.spline.prepare::<S>();
        let mut ldj = S::ZERO;
        let mut raws = slicing::rows(out, p);
        for ((zi, &xi), &m) in z.iter_mut().zip(x).zip(self.mask) {
            if m.is_identity() {
                *zi = xi;
            } else if let Some(raw) = raws.next() {
                sp.knots(raw, knots);
                let (v, l) = if data_to_base {
                    sp.forward(knots, xi)
                } else {
                    sp.inverse(knots, xi)
                };
                *zi = v;
                ldj += l;
            }
        }
        ldj
    }

    /// [`Self::apply`] for a block of samples: one network pass for all of them.
    fn apply_block<S: Real, const N: usize>(
        &self,
        src: [&[S]; N],
        ctx: [&[S]; N],
        dst: [&mut [S]; N],
        ldj: &mut [S; N],
        scratch: &mut [S],
        density: bool,
    ) {
        let gather = |x: &[S], a: &mut [S]| gather(self.mask, x, a);
        let (n_id, k) = (self.n_identity(), self.spline.knots_len());
        let net = &self.net;
        blockwise::one_pass(self, density, net, n_id, k, src, ctx, dst, ldj, scratch, gather);
    }
}

impl<W: Weight, M: MaskBit> BlockStep for SplineCoupling<'_, W, M> {
    fn lanes_apply(&self) -> bool {
        self.spline.bins <= LANES_MAX_BINS
    }

    #[inline(always)]
    fn step_one<S: Real>(&self, x: &[S], o: &[S], z: &mut [S], k: &mut [S], density: bool) -> S {
        self.finish(x, o, z, k, density)
    }

    /// [`Self::finish`] of each sample of a block, in lanes (`flag`: data to base).
    #[inline(always)]
    fn step_lanes<S: Real, const N: usize>(
        &self,
        x: [&[S]; N],
        out: &[[S; N]],
        z: &mut [&mut [S]; N],
        data_to_base: bool,
    ) -> [S; N] {
        let sp = self.spline.prepare::<S>();
        for (i, m) in self.mask.iter().enumerate() {
            if m.is_identity() {
                Lanes::column(&x, i).store_column(z, i);
            }
        }
        let transformed = self.mask.iter().enumerate().filter(|(_, m)| !m.is_identity());
        let coords = transformed.enumerate().map(|(r, (i, _))| (i, r));
        sp.eval_block(&x, out, z, coords, !data_to_base).0
    }
}

impl<'a, S: Real, W: Weight, M: MaskBit> Bijection<S> for SplineCoupling<'a, W, M> {
    fn dim(&self) -> usize {
        self.mask.len()
    }

    fn context_dim(&self) -> usize {
        self.net.n_in().saturating_sub(self.n_identity())
    }

    fn n_params(&self) -> usize {
        self.net.params.len()
    }

    fn scratch_len(&self) -> usize {
        let (na, no) = (self.n_identity(), self.n_out());
        let pass = na + no + self.spline.knots_len() + self.net.scratch_len();
        let vjp = 2 * na
            + 2 * no
            + self.net.cache_len()
            + self.spline.vjp_scratch_len().max(self.net.backward_scratch_len());
        pass.max(vjp)
    }

    #[inline]
    fn inverse(&self, x: &[S], ctx: &[S], z: &mut [S], scratch: &mut [S]) -> S {
        self.apply(x, ctx, z, scratch, true)
    }

    #[inline]
    fn forward(&self, z: &[S], ctx: &[S], x: &mut [S], scratch: &mut [S]) -> S {
        self.apply(z, ctx, x, scratch, false)
    }

    fn block_scratch_len(&self, n: usize) -> usize {
        blockwise::scratch_len(&self.net, self.n_identity(), self.spline.knots_len(), n)
    }

    fn inverse_acc_block<const N: usize>(
        &self,
        x: [&[S]; N],
        ctx: [&[S]; N],
        z: [&mut [S]; N],
        ldj: &mut [S; N],
        scratch: &mut [S],
    ) {
        self.apply_block(x, ctx, z, ldj, scratch, true);
    }

    fn forward_acc_block<const N: usize>(
        &self,
        z: [&[S]; N],
        ctx: [&[S]; N],
        x: [&mut [S]; N],
        ldj: &mut [S; N],
        scratch: &mut [S],
    ) {
        self.apply_block(z, ctx, x, ldj, scratch, false);
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
        self.vjp(x, ctx, g_z, g_ldj, g_x, g_ctx, g_params, scratch, true);
    }

    fn forward_vjp_scratch_len(&self) -> usize {
        <Self as Bijection<S>>::scratch_len(self)
    }

    /// The conditioner sees `z_a = x_a`, so one cached pass and the spline's inverse VJP
    /// ([`crate::layers::spline::Spline::inverse_vjp`]) per transformed feature.
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
        self.vjp(z, ctx, g_x, g_ldj, g_z, g_ctx, g_params, scratch, false);
    }

    fn block_forward_vjp_scratch_len(&self, n: usize) -> usize {
        let single = <Self as Bijection<S>>::scratch_len(self);
        let extra = self.spline.vjp_scratch_len();
        single.max(coupling_vjp_block_scratch(&self.net, self.mask, extra, n))
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
        let step = |z: &[S], g_x: &[S], out: &[S], g_out: &mut [S], g_z: &mut [S], extra: &mut [S]| {
            self.vjp_step(z, g_x, g_ldj, out, g_out, g_z, extra, false);
        };
        let extra = self.spline.vjp_scratch_len();
        coupling_vjp_block(
            &self.net, self.mask, extra, z, ctx, g_x, g_z, g_ctx, g_params, scratch, step,
        );
    }

    fn block_vjp_scratch_len(&self, n: usize) -> usize {
        let single = <Self as Bijection<S>>::scratch_len(self) + 2 * <Self as Bijection<S>>::dim(self);
        let extra = self.spline.vjp_scratch_len();
        single.max(coupling_vjp_block_scratch(&self.net, self.mask, extra, n))
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
        let step = |x: &[S], g_z: &[S], out: &[S], g_out: &mut [S], g_x: &mut [S], extra: &mut [S]| {
            self.vjp_step(x, g_z, g_ldj, out, g_out, g_x, extra, true);
        };
        let extra = self.spline.vjp_scratch_len();
        coupling_vjp_block(
            &self.net, self.mask, extra, x, ctx, g_z, g_x, g_ctx, g_params, scratch, step,
        );
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
    use crate::nn::mlp::n_params;
    use crate::nn::Activation;
    use crate::testing::{builder, check_bijection, Lcg, Report};

    fn layer<'a>(
        sizes: &'a [usize],
        params: &'a [f64],
        activation: Activation,
        mask: &'a [bool],
        spline: SplineOpts,
    ) -> SplineCoupling<'a, f64> {
        SplineCoupling {
            net: Mlp {
                sizes,
                params,
                activation,
                residual: false,
            },
            mask,
            spline,
        }
    }

    fn test_splines() -> [SplineOpts; 7] {
        [
            SplineOpts::zuko(5, 2.0, 1e-3),
            SplineOpts::zuko(2, 1.0, 1e-4),
            SplineOpts::nflows(4, 1.5, 1.0 / 8f64.sqrt()),
            SplineOpts::nflows(1, 3.0, 1.0),
            SplineOpts::flowjax(3, 1.0),
            SplineOpts::flowjax(9, 2.5),
            SplineOpts {
                bins: 6,
                bound: 2.0,
                kind: SplineKind::FlowJax {
                    min_width: 0.1,
                    min_derivative: 5e-2,
                },
                logit_scale: 0.7,
            },
        ]
    }

    fn dist(v: f64, ps: &[f64]) -> f64 {
        ps.iter().map(|p| (v - p).abs()).fold(f64::INFINITY, f64::min)
    }

    /// Whether central differences are meaningful at `x`: transformed inputs at least 1e-4 from
    /// their x-knots, outputs from their y-knots, and slopes within [1/20, 20] (see `spline_ar`).
    fn fd_safe(l: &SplineCoupling<f64>, x: &[f64], ctx: &[f64]) -> bool {
        let sp = l.spline;
        let (p, n) = (sp.params_per_feature(), sp.bins + 1);
        let a: Vec<f64> = x
            .iter()
            .zip(l.mask)
            .filter(|(_, &m)| m)
            .map(|(&v, _)| v)
            .collect();
        let mut out = vec![0.0; l.n_out()];
        let mut s = vec![0.0; l.net.scratch_len()];
        l.net.forward(&a, ctx, &mut out, &mut s);
        let mut knots = vec![0.0; sp.knots_len()];
        let xb: Vec<f64> = x
            .iter()
            .zip(l.mask)
            .filter(|(_, &m)| !m)
            .map(|(&v, _)| v)
            .collect();
        xb.iter().zip(out.chunks_exact(p)).all(|(&xi, raw)| {
            sp.knots(raw, &mut knots);
            let (z, ld) = sp.forward(&knots, xi);
            dist(xi, &knots[..n]) > 1e-4 && dist(z, &knots[n..2 * n]) > 1e-4 && ld.abs() < 20f64.ln()
        })
    }

    #[test]
    fn spline_coupling_passes_finite_difference_checks() {
        let masks: [&'static [bool]; 7] = [
            &[false],
            &[true, false],
            &[false, true],
            &[true, false, true],
            &[false, true, false],
            &[false, false, true],
            &[true, true, false],
        ];
        let mut worst = Report::default();
        let mut rng = Lcg(53);
        let (mut n_in, mut n_out, mut n_skipped) = (0, 0, 0);
        for (case, spline) in test_splines().into_iter().enumerate() {
            let p = spline.params_per_feature();
            for mask in masks {
                let na = mask.iter().filter(|&&m| m).count();
                let nt = mask.len() - na;
                // A one-feature coupling has no identity feature: its net needs a context.
                let ctxs: &[usize] = if na == 0 { &[1, 2] } else { &[0, 2] };
                for &c in ctxs {
                    let sizes = [na + c, 9, 6, nt * p];
                    let params: Vec<f64> = (0..n_params(&sizes)).map(|_| rng.normal() * 0.4).collect();
                    let act = [Activation::Tanh, Activation::Silu, Activation::Elu][case % 3];
                    let sizes: &'static [usize] = Box::leak(Box::new(sizes));
                    let build = builder(move |p| Box::new(layer(sizes, p, act, mask, spline)));
                    for _ in 0..3 {
                        let ctx = rng.normals(c);
                        let mut draw = || -> Vec<f64> {
                            rng.normals(mask.len())
                                .iter()
                                .map(|v| v * 0.8 * spline.bound)
                                .collect()
                        };
                        let mut x = draw();
                        for _ in 0..100 {
                            if fd_safe(&layer(sizes, &params, act, mask, spline), &x, &ctx) {
                                break;
                            }
                            x = draw();
                        }
                        if !fd_safe(&layer(sizes, &params, act, mask, spline), &x, &ctx) {
                            n_skipped += 1;
                            continue;
                        }
                        for (&xi, &m) in x.iter().zip(mask) {
                            if !m && xi.abs() < spline.bound {
                                n_in += 1;
                            } else if !m {
                                n_out += 1;
                            }
                        }
                        let r = check_bijection(&build, &params, &x, &ctx);
                        assert!(
                            r.roundtrip < 1e-10 && r.ldj_cancel < 1e-10,
                            "{spline:?} {mask:?} c={c}: {r:?}"
                        );
                        assert!(r.max_fd() < 1e-6, "{spline:?} {mask:?} c={c} x={x:?}: {r:?}");
                        worst.merge(&r);
                    }
                }
            }
        }
        assert!(
            n_in > 200 && n_out > 30 && n_skipped < 10,
            "{n_in} inside, {n_out} tails, {n_skipped}"
        );
        std::eprintln!("spline_coupling worst ({n_in} coordinates inside, {n_out} in the tails): {worst:?}");
    }

    #[test]
    fn identity_features_pass_through_and_f32_stays_finite() {
        let mut rng = Lcg(59);
        let mask: &[bool] = &[true, false, true, false];
        for spline in test_splines() {
            let p = spline.params_per_feature();
            let sizes = [2 + 1, 7, 2 * p];
            let params: Vec<f64> = (0..n_params(&sizes)).map(|_| rng.normal() * 0.5).collect();
            let params32: Vec<f32> = params.iter().map(|&v| v as f32).collect();
            let l64 = layer(&sizes, &params, Activation::Tanh, mask, spline);
            let l32 = SplineCoupling {
                net: Mlp {
                    sizes: &sizes,
                    params: &params32,
                    activation: Activation::Tanh,
                    residual: false,
                },
                mask,
                spline,
            };
            let b = spline.bound;
            let mut s64 = vec![0.0f64; Bijection::<f64>::scratch_len(&l64)];
            let mut s32 = vec![0.0f32; Bijection::<f32>::scratch_len(&l32)];
            for x in [
                [0.3, -0.2 * b, 9.0, 0.7 * b],
                [b, b, -b, -b],
                [-1e5, 1e5, 0.0, -3.0 * b],
            ] {
                let mut z = [0.0; 4];
                let l = l64.inverse(&x, &[0.1], &mut z, &mut s64);
                assert_eq!((z[0], z[2]), (x[0], x[2]));
                let x32 = x.map(|v| v as f32);
                let mut z32 = [0.0f32; 4];
                let l32v = l32.inverse(&x32, &[0.1], &mut z32, &mut s32);
                assert!(l32v.is_finite() && z32.iter().all(|v| v.is_finite()));
                assert!((l32v as f64 - l).abs() < 1e-3, "{spline:?} {l} {l32v}");
                let mut back = [0.0f32; 4];
                assert!(l32.forward(&z32, &[0.1], &mut back, &mut s32).is_finite());
                assert_eq!((back[0], back[2]), (x32[0], x32[2]));
            }
        }
    }
}
