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

use crate::lanes::{Lanes, Pair, Vals};
use crate::layers::affine::{add_ldj, affine_map, AffineLayout, AffineScale};
use crate::layers::autoregressive::{
    ar_block_forward_vjp_scratch_len, ar_block_vjp_scratch_len, ar_forward_vjp_block, ar_inverse_vjp_block,
    iaf_vjp, Autoregressive, Direction,
};
use crate::layers::blockwise::{self, BlockStep};
use crate::layers::Bijection;
use crate::nn::Mlp;
use crate::{slicing, Real, Weight};

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

    type W = W;

    fn net(&self) -> &Mlp<'_, W> {
        &self.net
    }

    fn net_outputs(&self) -> usize {
        2 * self.dim
    }

    fn pass_vjp_step_len(&self) -> usize {
        0
    }

    /// `z = y s + t`: ∂z/∂y = s, ∂z/∂t = 1, ∂z/∂a = y s (d ln s/da); ∂ldj/∂a = d ln s/da.
    #[inline(always)]
    fn pass_vjp_step(
        &self,
        y: &[S],
        out: &[S],
        g_z: &[S],
        g_ldj: S,
        g_y: &mut [S],
        g_out: &mut [S],
        _: &mut [S],
    ) {
        let pairs = out.chunks_exact(2).zip(g_out.chunks_exact_mut(2));
        for (((gy, &gz), &yi), (p, gp)) in g_y.iter_mut().zip(g_z).zip(y).zip(pairs) {
            let (s, _, dls) = self.scale.eval(self.layout.split(p).1);
            *gy = gz * s;
            self.layout.join(gp, gz, (gz * yi * s + g_ldj) * dls);
        }
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
