//! Golden vectors: reference answers that travel inside every model file, and their check.
//!
//! When `fit` or `import` writes a model, it evaluates probe points in f64 with the weights as
//! stored (f32 widened exactly, or f64) through the reference path (`flow_core::runtime::flow_of`), and
//! keeps the results in the metadata. `flow-train verify` and the code `flow-macros` generates
//! re-evaluate them.
//!
//! The schema ([`Golden`]) and the tolerances are `flow_core::model::golden`'s, shared with
//! `flow-macros`; they are re-exported here.

use flow_core::model::builder::ModelParts;
use flow_core::runtime::flow_of;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::train::{self, Dataset, FitConfig};

pub use flow_core::model::golden::{Golden, TOL_F32, TOL_F64, TOL_SOURCE, TOL_SOURCE_ROUNDED};

/// The weights as stored in a file: rounded to f32 and widened back for f32 files, unchanged for
/// f64 files (see `ModelParts::stored_weights`).
pub fn stored_weights(parts: &ModelParts) -> Vec<f64> {
    parts.stored_weights()
}

/// Evaluates probe points and noise vectors with the reference path (f64, stored weights).
pub fn compute(
    parts: &ModelParts,
    points: Vec<Vec<f64>>,
    context: Vec<Vec<f64>>,
    noise: Vec<Vec<f64>>,
    noise_context: Vec<Vec<f64>>,
) -> Golden {
    let w = stored_weights(parts);
    let flow = flow_of::<f64, f64>(&parts.desc, &w, &parts.ints);
    let mut scratch = vec![0.0; flow.scratch_len()];
    let d = parts.desc.dim as usize;
    let mut g = Golden {
        points,
        context,
        noise,
        noise_context,
        ..Default::default()
    };
    for (x, c) in g.points.iter().zip(&g.context) {
        g.log_prob.push(flow.log_prob(x, c, &mut scratch));
        let mut z = vec![0.0; d];
        g.ldj.push(flow.inverse(x, c, &mut z, &mut scratch));
        g.base.push(z);
    }
    for (e, c) in g.noise.iter().zip(&g.noise_context) {
        let mut x = vec![0.0; d];
        flow.sample(e, c, &mut x, &mut scratch);
        g.sample.push(x);
    }
    g
}

/// Largest errors of an evaluation against the golden values, each relative to `1 + |ref|`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Errors {
    /// log p.
    pub log_prob: f64,
    /// Base point coordinates.
    pub base: f64,
    /// log|det| of the inverse.
    pub ldj: f64,
    /// Sample coordinates.
    pub sample: f64,
}

impl Errors {
    /// The largest of the four.
    pub fn max(&self) -> f64 {
        self.log_prob.max(self.base).max(self.ldj).max(self.sample)
    }
}

fn rel(a: f64, b: f64) -> f64 {
    if a == b {
        0.0 // also equal infinities
    } else {
        let e = (a - b).abs() / (1.0 + b.abs());
        if e.is_nan() {
            f64::INFINITY
        } else {
            e
        }
    }
}

/// Evaluates the golden points with a runtime evaluator in scalar `S` and returns the errors.
pub fn check<S: flow_core::Real>(bytes: &[u8], g: &Golden) -> Result<Errors, flow_core::runtime::Error> {
    let store = aligned(bytes);
    let mut ev = flow_core::runtime::Evaluator::<S, 16384>::new(
        &flow_core::bytemuck::cast_slice(&store)[..bytes.len()],
    )?;
    let d = ev.dim();
    let to_s = |v: &[f64]| v.iter().map(|&x| S::from_f64(x)).collect::<Vec<S>>();
    let mut e = Errors::default();
    for (i, (x, c)) in g.points.iter().zip(&g.context).enumerate() {
        let (xs, cs) = (to_s(x), to_s(c));
        let lp = ev.log_prob(&xs, &cs)?.to_f64();
        e.log_prob = e.log_prob.max(rel(lp, g.log_prob[i]));
        let mut z = vec![S::ZERO; d];
        let ldj = ev.inverse(&xs, &cs, &mut z)?.to_f64();
        e.ldj = e.ldj.max(rel(ldj, g.ldj[i]));
        for (a, b) in z.iter().zip(&g.base[i]) {
            e.base = e.base.max(rel(a.to_f64(), *b));
        }
    }
    for (i, (n, c)) in g.noise.iter().zip(&g.noise_context).enumerate() {
        let mut x = vec![S::ZERO; d];
        ev.sample(&to_s(n), &to_s(c), &mut x)?;
        for (a, b) in x.iter().zip(&g.sample[i]) {
            e.sample = e.sample.max(rel(a.to_f64(), *b));
        }
    }
    Ok(e)
}

/// Copies bytes into 8-byte aligned storage (the in-place reader needs 4-byte alignment).
pub fn aligned(bytes: &[u8]) -> Vec<u64> {
    let mut store = vec![0u64; bytes.len().div_ceil(8)];
    flow_core::bytemuck::cast_slice_mut::<u64, u8>(&mut store)[..bytes.len()].copy_from_slice(bytes);
    store
}

/// Golden probe points for a model fitted on `data`: typical rows, far tails in each coordinate,
/// and (for spline models) the spline bound in standardized units, ±1e-4.
pub fn golden_for(parts: &ModelParts, data: &Dataset, cfg: &FitConfig) -> Golden {
    let (d, c) = (data.dim(), data.context_dim());
    let n = data.len();
    let rows: Vec<usize> = (0..24.min(n)).map(|k| k * n / 24.min(n).max(1)).collect();
    let (mean, std) = train::mean_std(data, &(0..n).collect::<Vec<_>>());
    let mut points = Vec::new();
    let mut context = Vec::new();
    for &i in &rows {
        points.push(data.row(i).0.to_vec());
        context.push(data.row(i).1.to_vec());
    }
    let ctx0 = if n > 0 {
        data.row(0).1.to_vec()
    } else {
        vec![0.0; c]
    };
    let mut offsets = vec![8.0, -8.0];
    if matches!(cfg.arch.flow, crate::FlowKind::Nsf | crate::FlowKind::NsfCoupling) {
        let b = cfg.arch.bound;
        offsets.extend_from_slice(&[b, -b, b + 1e-4, b - 1e-4, -b + 1e-4, -b - 1e-4]);
    }
    for j in 0..d {
        for &o in &offsets {
            let mut p = mean.clone();
            p[j] = mean[j] + o * std[j];
            points.push(p);
            context.push(ctx0.clone());
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(0x601d);
    let noise: Vec<Vec<f64>> = (0..8)
        .map(|_| {
            (0..d)
                .map(|_| flow_core::flow::standard_normal(&mut rng))
                .collect()
        })
        .collect();
    let noise_context: Vec<Vec<f64>> = (0..8)
        .map(|k| if n > 0 { data.row(k % n).1.to_vec() } else { vec![] })
        .collect();
    compute(parts, points, context, noise, noise_context)
}
