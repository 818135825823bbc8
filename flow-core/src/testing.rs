//! Test support (feature `testing`, or in this crate's own tests): a seeded generator and the
//! finite-difference checks every layer must pass.
//!
//! [`check_bijection`] verifies, in f64, for one layer at one point:
//! - `forward(inverse(x)) = x` and the two log-determinants cancel;
//! - log|det J| equals the log of the absolute determinant of a central finite-difference Jacobian;
//! - the vector-Jacobian products of both directions ([`Bijection::inverse_vjp`] at `x`,
//!   [`Bijection::forward_vjp`] at `z = inverse(x)`) equal finite differences for the input, the
//!   context and every parameter;
//! - no method panics when given buffers or parameters shorter than documented
//!   ([`check_short_buffers`]).

extern crate std;
use crate::layers::{Cotangent, Grads};
use std::boxed::Box;
use std::vec;
use std::vec::Vec;

use crate::layers::Bijection;

/// A tiny seeded generator (64-bit LCG + Box–Muller), enough for reproducible tests.
#[derive(Clone, Debug)]
pub struct Lcg(pub u64);

impl Lcg {
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal.
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * core::f64::consts::PI * u2).cos()
    }

    /// `n` standard normals.
    pub fn normals(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.normal()).collect()
    }
}

/// Largest errors found by [`check_bijection`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Report {
    /// max |forward(inverse(x)) − x|.
    pub roundtrip: f64,
    /// |ldj_inverse + ldj_forward|.
    pub ldj_cancel: f64,
    /// |ldj − log|det J_fd||.
    pub logdet: f64,
    /// max error of dL/dx against finite differences.
    pub vjp_x: f64,
    /// max error of dL/dc.
    pub vjp_ctx: f64,
    /// max error of dL/dθ.
    pub vjp_params: f64,
    /// max error of the sampling direction's dL/dz ([`Bijection::forward_vjp`]).
    pub fwd_vjp_z: f64,
    /// max error of its dL/dc.
    pub fwd_vjp_ctx: f64,
    /// max error of its dL/dθ.
    pub fwd_vjp_params: f64,
}

impl Report {
    /// The largest of the finite-difference errors (log-det and gradients).
    pub fn max_fd(&self) -> f64 {
        let density = self.logdet.max(self.vjp_x).max(self.vjp_ctx).max(self.vjp_params);
        density
            .max(self.fwd_vjp_z)
            .max(self.fwd_vjp_ctx)
            .max(self.fwd_vjp_params)
    }

    /// Keeps the larger of each field.
    pub fn merge(&mut self, o: &Report) {
        self.roundtrip = self.roundtrip.max(o.roundtrip);
        self.ldj_cancel = self.ldj_cancel.max(o.ldj_cancel);
        self.logdet = self.logdet.max(o.logdet);
        self.vjp_x = self.vjp_x.max(o.vjp_x);
        self.vjp_ctx = self.vjp_ctx.max(o.vjp_ctx);
        self.vjp_params = self.vjp_params.max(o.vjp_params);
        self.fwd_vjp_z = self.fwd_vjp_z.max(o.fwd_vjp_z);
        self.fwd_vjp_ctx = self.fwd_vjp_ctx.max(o.fwd_vjp_ctx);
        self.fwd_vjp_params = self.fwd_vjp_params.max(o.fwd_vjp_params);
    }
}

/// log|det A| of a square row-major matrix by Gaussian elimination with partial pivoting.
pub fn log_abs_det(a: &[f64], n: usize) -> f64 {
    let mut m = a.to_vec();
    let mut acc = 0.0;
    for c in 0..n {
        let p = (c..n)
            .max_by(|&i, &j| m[i * n + c].abs().total_cmp(&m[j * n + c].abs()))
            .unwrap();
        if m[p * n + c] == 0.0 {
            return f64::NEG_INFINITY;
        }
        if p != c {
            for k in 0..n {
                m.swap(c * n + k, p * n + k);
            }
        }
        let piv = m[c * n + c];
        acc += piv.abs().ln();
        for r in c + 1..n {
            let f = m[r * n + c] / piv;
            for k in c..n {
                m[r * n + k] -= f * m[c * n + k];
            }
        }
    }
    acc
}

/// Makes a layer from its parameters (so the checks can perturb them).
pub type Builder = dyn for<'a> Fn(&'a [f64]) -> Box<dyn Bijection<f64> + 'a>;

/// Fixes the higher-ranked signature of a layer-building closure (closures cannot declare it).
pub fn builder<F>(f: F) -> F
where
    F: for<'a> Fn(&'a [f64]) -> Box<dyn Bijection<f64> + 'a>,
{
    f
}

/// Runs every check on the layer `build(params)` at `x` with context `ctx`. Errors are absolute,
/// scaled by `1 + |reference|`.
pub fn check_bijection(build: &Builder, params: &[f64], x: &[f64], ctx: &[f64]) -> Report {
    check_bijection_except(build, params, x, ctx, &|_| false)
}

/// As [`check_bijection`], skipping the parameters for which `frozen(k)` is true (e.g. weights
/// under a MADE mask, which training never changes and whose perturbation breaks the
/// autoregressive structure that D-pass inverses rely on).
pub fn check_bijection_except(
    build: &Builder,
    params: &[f64],
    x: &[f64],
    ctx: &[f64],
    frozen: &dyn Fn(usize) -> bool,
) -> Report {
    let layer = build(params);
    let d = layer.dim();
    let mut scratch = vec![0.0; layer.scratch_len().max(layer.forward_vjp_scratch_len())];
    let mut rep = Report::default();
    let rel = |a: f64, b: f64| (a - b).abs() / (1.0 + b.abs());

    // Round trip.
    let mut z = vec![0.0; d];
    let ldj = layer.inverse(x, ctx, &mut z, &mut scratch);
    let mut x2 = vec![0.0; d];
    let ldj_f = layer.forward(&z, ctx, &mut x2, &mut scratch);
    for i in 0..d {
        rep.roundtrip = rep.roundtrip.max(rel(x2[i], x[i]));
    }
    rep.ldj_cancel = rel(ldj + ldj_f, 0.0);

    // Finite-difference Jacobian of the inverse.
    let h = 1e-6;
    let eval = |l: &dyn Bijection<f64>, x: &[f64], c: &[f64], scratch: &mut [f64]| {
        let mut z = vec![0.0; d];
        let ldj = l.inverse(x, c, &mut z, scratch);
        (z, ldj)
    };
    let mut jac = vec![0.0; d * d];
    for j in 0..d {
        let mut xp = x.to_vec();
        xp[j] += h;
        let mut xm = x.to_vec();
        xm[j] -= h;
        let (zp, _) = eval(&*layer, &xp, ctx, &mut scratch);
        let (zm, _) = eval(&*layer, &xm, ctx, &mut scratch);
        for i in 0..d {
            jac[i * d + j] = (zp[i] - zm[i]) / (2.0 * h);
        }
    }
    rep.logdet = rel(ldj, log_abs_det(&jac, d));

    // VJP against finite differences of L = g_z·z + g_l·ldj.
    let mut rng = Lcg(0x5eed ^ d as u64);
    let g_z: Vec<f64> = rng.normals(d);
    let g_l = 0.7;
    let loss = |l: &dyn Bijection<f64>, x: &[f64], c: &[f64], scratch: &mut [f64]| {
        let (z, ldj) = eval(l, x, c, scratch);
        z.iter().zip(&g_z).map(|(a, b)| a * b).sum::<f64>() + g_l * ldj
    };
    let mut g_x = vec![0.0; d];
    let mut g_c = vec![0.0; ctx.len()];
    let mut g_p = vec![0.0; layer.n_params()];
    layer.inverse_vjp(
        x,
        ctx,
        Cotangent::new(&g_z, g_l),
        Grads::new(&mut g_x, &mut g_c, Some(&mut g_p)),
        &mut scratch,
    );
    for j in 0..d {
        let mut xp = x.to_vec();
        xp[j] += h;
        let mut xm = x.to_vec();
        xm[j] -= h;
        let fd = (loss(&*layer, &xp, ctx, &mut scratch) - loss(&*layer, &xm, ctx, &mut scratch)) / (2.0 * h);
        rep.vjp_x = rep.vjp_x.max(rel(g_x[j], fd));
    }
    for j in 0..ctx.len() {
        let mut cp = ctx.to_vec();
        cp[j] += h;
        let mut cm = ctx.to_vec();
        cm[j] -= h;
        let fd = (loss(&*layer, x, &cp, &mut scratch) - loss(&*layer, x, &cm, &mut scratch)) / (2.0 * h);
        rep.vjp_ctx = rep.vjp_ctx.max(rel(g_c[j], fd));
    }
    for k in (0..params.len()).filter(|&k| !frozen(k)) {
        let mut pp = params.to_vec();
        pp[k] += h;
        let mut pm = params.to_vec();
        pm[k] -= h;
        let lp = build(&pp);
        let lm = build(&pm);
        let fd = (loss(&*lp, x, ctx, &mut scratch) - loss(&*lm, x, ctx, &mut scratch)) / (2.0 * h);
        rep.vjp_params = rep.vjp_params.max(rel(g_p[k], fd));
    }
    check_forward_vjp(build, params, &z, ctx, frozen, &mut rep);
    check_short_buffers(&*layer, x, ctx);
    for k in [0, params.len() / 2, params.len().saturating_sub(1)] {
        check_short_buffers(&*build(&params[..k]), x, ctx);
    }
    rep
}

/// The finite-difference check of [`Bijection::forward_vjp`] at `z`, for
/// `L = g_x·forward(z) + g_l·ldj_forward(z)`, into `rep`.
fn check_forward_vjp(
    build: &Builder,
    params: &[f64],
    z: &[f64],
    ctx: &[f64],
    frozen: &dyn Fn(usize) -> bool,
    rep: &mut Report,
) {
    let layer = build(params);
    let d = layer.dim();
    let mut scratch = vec![0.0; layer.scratch_len().max(layer.forward_vjp_scratch_len())];
    let rel = |a: f64, b: f64| (a - b).abs() / (1.0 + b.abs());
    let mut rng = Lcg(0xf0e ^ d as u64);
    let g_x: Vec<f64> = rng.normals(d);
    let g_l = -0.6;
    let loss = |l: &dyn Bijection<f64>, z: &[f64], c: &[f64], scratch: &mut [f64]| {
        let mut x = vec![0.0; d];
        let ldj = l.forward(z, c, &mut x, scratch);
        x.iter().zip(&g_x).map(|(a, b)| a * b).sum::<f64>() + g_l * ldj
    };
    let mut g_z = vec![0.0; d];
    let mut g_c = vec![0.0; ctx.len()];
    let mut g_p = vec![0.0; layer.n_params()];
    let gp = Some(&mut g_p[..]);
    layer.forward_vjp(
        z,
        ctx,
        Cotangent::new(&g_x, g_l),
        Grads::new(&mut g_z, &mut g_c, gp),
        &mut scratch,
    );
    let h = 1e-6;
    let central = |v: &[f64], j: usize, f: &mut dyn FnMut(&[f64]) -> f64| {
        let (mut p, mut m) = (v.to_vec(), v.to_vec());
        p[j] += h;
        m[j] -= h;
        (f(&p) - f(&m)) / (2.0 * h)
    };
    for j in 0..d {
        let fd = central(z, j, &mut |v| loss(&*layer, v, ctx, &mut scratch));
        rep.fwd_vjp_z = rep.fwd_vjp_z.max(rel(g_z[j], fd));
    }
    for j in 0..ctx.len() {
        let fd = central(ctx, j, &mut |c| loss(&*layer, z, c, &mut scratch));
        rep.fwd_vjp_ctx = rep.fwd_vjp_ctx.max(rel(g_c[j], fd));
    }
    for k in (0..params.len()).filter(|&k| !frozen(k)) {
        let fd = central(params, k, &mut |p| loss(&*build(p), z, ctx, &mut scratch));
        rep.fwd_vjp_params = rep.fwd_vjp_params.max(rel(g_p[k], fd));
    }
}

/// Calls every method of `layer` with slices shorter than documented (scratch, inputs, outputs,
/// context, parameter gradients). The results are unspecified; the test is that nothing panics,
/// as baked code, which must have no panic path, relies on (see `examples/nostd-check`).
pub fn check_short_buffers(layer: &dyn Bijection<f64>, x: &[f64], ctx: &[f64]) {
    let d = layer.dim();
    // `inverse_vjp_head` needs `2·dim` beyond the scratch of the other methods.
    let full = (layer.scratch_len() + 2 * d).max(layer.forward_vjp_scratch_len());
    for len in [0, 1, full / 3, full / 2, full.saturating_sub(1)] {
        for short in [0, 1] {
            let n = d.saturating_sub(short);
            let x = &x[..n.min(x.len())];
            let c = &ctx[..ctx.len().saturating_sub(short)];
            let mut scratch = vec![0.0; len];
            let mut z = vec![0.0; n];
            let mut ldj = layer.inverse(x, c, &mut z, &mut scratch);
            ldj += layer.forward(x, c, &mut z, &mut scratch);
            layer.inverse_acc(x, c, &mut z, &mut ldj, &mut scratch);
            layer.forward_acc(x, c, &mut z, &mut ldj, &mut scratch);
            let g = vec![0.5; n];
            let (mut g_x, mut g_c) = (vec![0.0; n], vec![0.0; c.len()]);
            let mut g_p = vec![0.0; layer.n_params().saturating_sub(short)];
            layer.inverse_vjp(
                x,
                c,
                Cotangent::new(&g, ldj),
                Grads::new(&mut g_x, &mut g_c, Some(&mut g_p)),
                &mut scratch,
            );
            layer.inverse_vjp(
                x,
                c,
                Cotangent::new(&g, 0.3),
                Grads::new(&mut g_x, &mut g_c, None),
                &mut scratch,
            );
            let mut head = |z: &[f64], g: &mut [f64]| {
                for (gi, &zi) in g.iter_mut().zip(z) {
                    *gi = -zi;
                }
            };
            layer.inverse_vjp_head(
                x,
                c,
                Cotangent::new(&mut head, 0.3),
                Grads::new(&mut g_x, &mut g_c, Some(&mut g_p)),
                &mut scratch,
            );
            layer.forward_vjp(
                x,
                c,
                Cotangent::new(&g, 0.3),
                Grads::new(&mut g_x, &mut g_c, Some(&mut g_p)),
                &mut scratch,
            );
            layer.forward_vjp(
                x,
                c,
                Cotangent::new(&g, -0.2),
                Grads::new(&mut g_x, &mut g_c, None),
                &mut scratch,
            );
        }
    }
}

/// Hostile-input check of the runtime evaluator: validates `bytes` with scalar `S` and, when they
/// are accepted, runs every method once on fixed inputs (the results do not matter, only that
/// nothing panics). Returns whether the bytes were accepted. Used by the mutation tests and the
/// fuzz target.
pub fn exercise_model_bytes<S: crate::Real>(bytes: &[u8]) -> bool {
    let Ok(mut ev) = crate::runtime::Evaluator::<S, 16384>::new(bytes) else {
        return false;
    };
    let (d, c) = (ev.dim(), ev.context_dim());
    let x = vec![S::from_f64(0.5); d];
    let ctx = vec![S::from_f64(0.1); c];
    let mut out = vec![S::ZERO; d];
    let _ = ev.log_prob(&x, &ctx);
    let _ = ev.inverse(&x, &ctx, &mut out);
    let _ = ev.sample(&x, &ctx, &mut out);
    let _ = ev.grad_log_prob(&x, &ctx, &mut out);
    true
}
