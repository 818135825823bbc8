//! Exact answers from an approximate flow: self-normalized importance sampling and independence
//! Metropolis–Hastings with the flow `q` as the proposal, for a target known up to a constant,
//! `log p*(x) = log p(x) + log Z`.
//!
//! - [`importance_sample`] draws `xᵢ ~ q` with their `log q(xᵢ)` from one pass
//!   ([`Flow::sample_and_log_prob_batch`]) and the log weights `log wᵢ = log p*(xᵢ) − log q(xᵢ)`.
//!   [`Weighted::estimate`] gives `E_p[f] ≈ Σ wᵢ f(xᵢ) / Σ wᵢ` with its delta-method standard
//!   error `√(Σ w̄ᵢ² (f(xᵢ) − μ)²)` (`w̄` the normalized weights); [`Weighted::ess`] the effective
//!   sample size `(Σ w)² / Σ w²` (N for a perfect flow; a small ESS / N means the error bars are not
//!   to be trusted); [`Weighted::log_evidence`] `log Z ≈ log(Σ wᵢ / N)`.
//! - [`independence_mh`] runs the chain that proposes `x' ~ q` and accepts with
//!   `min(1, w(x') / w(x))`: its samples are exactly `p` in the limit, whatever `q` is, as long as
//!   `q` covers `p`; [`Chain::estimate`] gives the mean with a batch-means standard error.
//!
//! Target values: `−∞` is a point outside the target's support (weight 0); NaN or `+∞` is an
//! error naming the draw ([`ImportanceError::BadTarget`]). Draws use one ChaCha8 stream from
//! `seed`; the target is evaluated in parallel, so the result does not depend on the thread count.

use flow_core::base::Base;
use flow_core::flow::{standard_normal, Flow};
use flow_core::layers::Bijection;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Why the weights cannot be formed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ImportanceError {
    /// The target returned NaN or +∞.
    #[error("the target's log density is {value} at draw {index} (x = {x:?}); it must be finite or −inf")]
    BadTarget {
        /// 0-based draw.
        index: usize,
        /// The value.
        value: f64,
        /// The point.
        x: Vec<f64>,
    },
    /// Every draw has weight 0 (the target is −∞ wherever the flow puts its mass).
    #[error("all {0} draws have zero weight: the flow puts no mass where the target has any")]
    NoWeight(usize),
}

/// An estimate and its standard error.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    /// The estimate.
    pub mean: f64,
    /// Its standard error.
    pub std_error: f64,
}

/// Weighted draws from the flow (see [`importance_sample`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Weighted {
    /// `n` draws of D values, row after row.
    pub samples: Vec<f64>,
    /// `log q(xᵢ)`.
    pub log_q: Vec<f64>,
    /// `log wᵢ = log p*(xᵢ) − log q(xᵢ)` (−∞ outside the target's support).
    pub log_w: Vec<f64>,
}

impl Weighted {
    /// Normalized weights `w̄ᵢ = wᵢ / Σ w` (computed from the largest log weight, no overflow).
    pub fn normalized(&self) -> Vec<f64> {
        let top = self.log_w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let w: Vec<f64> = self.log_w.iter().map(|&l| (l - top).exp()).collect();
        let sum: f64 = w.iter().sum();
        w.into_iter().map(|v| v / sum).collect()
    }

    /// Effective sample size `(Σ w)² / Σ w²`, between 1 and N ([`effective_sample_size`]).
    pub fn ess(&self) -> f64 {
        effective_sample_size(&self.log_w)
    }

    /// `log Z ≈ log(Σ wᵢ / N)`, the log normalizer of the target.
    pub fn log_evidence(&self) -> f64 {
        let top = self.log_w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = self.log_w.iter().map(|&l| (l - top).exp()).sum();
        top + (sum / self.log_w.len() as f64).ln()
    }

    /// `E_p[f]` by self-normalized importance sampling, with its delta-method standard error.
    pub fn estimate(&self, f: impl Fn(&[f64]) -> f64) -> Estimate {
        let d = self.samples.len() / self.log_w.len().max(1);
        let w = self.normalized();
        let values: Vec<f64> = self.samples.chunks_exact(d.max(1)).map(f).collect();
        let mean: f64 = w.iter().zip(&values).map(|(w, v)| w * v).sum();
        let var: f64 = w
            .iter()
            .zip(&values)
            .map(|(w, v)| w * w * (v - mean) * (v - mean))
            .sum();
        Estimate {
            mean,
            std_error: var.sqrt(),
        }
    }
}

/// Effective sample size `(Σ w)² / Σ w²` of log weights, from the normalized weights (no
/// overflow): between 1 and N, 0 when every weight is 0.
pub fn effective_sample_size(log_w: &[f64]) -> f64 {
    let top = log_w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !top.is_finite() {
        return 0.0;
    }
    let w: Vec<f64> = log_w.iter().map(|&l| (l - top).exp()).collect();
    let sum: f64 = w.iter().sum();
    1.0 / w.iter().map(|v| (v / sum) * (v / sum)).sum::<f64>()
}

/// Draws `n` samples from `flow` (context `ctx`) with their log-densities and importance weights
/// against `log_target` (`log p*`, up to a constant).
pub fn importance_sample<L, B>(
    flow: &Flow<f64, L, B>,
    ctx: &[f64],
    n: usize,
    seed: u64,
    log_target: impl Fn(&[f64]) -> f64 + Sync,
) -> Result<Weighted, ImportanceError>
where
    L: Bijection<f64> + Sync,
    B: Base<f64> + Sync,
{
    let d = flow.dim();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let eps: Vec<f64> = (0..n * d).map(|_| standard_normal(&mut rng)).collect();
    let (mut samples, mut log_q) = (vec![0.0; n * d], vec![0.0; n]);
    let mut scratch = vec![0.0; flow.batch_scratch_len()];
    flow.sample_and_log_prob_batch(&eps, ctx, &mut samples, &mut log_q, &mut scratch);
    let log_p: Vec<f64> = samples.par_chunks(d.max(1)).map(&log_target).collect();
    if let Some(i) = log_p.iter().position(|v| v.is_nan() || *v == f64::INFINITY) {
        return Err(ImportanceError::BadTarget {
            index: i,
            value: log_p[i],
            x: samples[i * d..(i + 1) * d].to_vec(),
        });
    }
    let log_w: Vec<f64> = log_p.iter().zip(&log_q).map(|(p, q)| p - q).collect();
    if !log_w.iter().any(|w| w.is_finite()) {
        return Err(ImportanceError::NoWeight(n));
    }
    Ok(Weighted {
        samples,
        log_q,
        log_w,
    })
}

/// The states of an independence Metropolis–Hastings chain.
#[derive(Clone, Debug, PartialEq)]
pub struct Chain {
    /// `n` states of D values (repeated where a proposal was rejected).
    pub samples: Vec<f64>,
    /// Fraction of proposals accepted.
    pub acceptance: f64,
    /// Values per state (D).
    pub dim: usize,
}

impl Chain {
    /// The mean of `f` over the chain, with a batch-means standard error (√n batches).
    pub fn estimate(&self, f: impl Fn(&[f64]) -> f64) -> Estimate {
        let d = self.dim.max(1);
        let n = self.samples.len() / d;
        let values: Vec<f64> = self.samples.chunks_exact(d).map(f).collect();
        let mean = values.iter().sum::<f64>() / n.max(1) as f64;
        let size = ((n as f64).sqrt() as usize).max(1);
        let batches: Vec<f64> = values
            .chunks_exact(size)
            .map(|b| b.iter().sum::<f64>() / size as f64)
            .collect();
        let k = batches.len() as f64;
        let var = batches.iter().map(|b| (b - mean) * (b - mean)).sum::<f64>() / (k - 1.0).max(1.0);
        Estimate {
            mean,
            std_error: (var / k.max(1.0)).sqrt(),
        }
    }
}

/// `n` states of the independence Metropolis–Hastings chain with `flow` as the proposal for
/// `log_target`: proposals `x' ~ q` (all drawn in one batch), accepted with
/// `min(1, w(x') / w(x))`, `w = p*/q`. The chain starts at the first proposal with a finite weight.
pub fn independence_mh<L, B>(
    flow: &Flow<f64, L, B>,
    ctx: &[f64],
    n: usize,
    seed: u64,
    log_target: impl Fn(&[f64]) -> f64 + Sync,
) -> Result<Chain, ImportanceError>
where
    L: Bijection<f64> + Sync,
    B: Base<f64> + Sync,
{
    let d = flow.dim();
    let proposals = importance_sample(flow, ctx, n, seed, log_target)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15);
    let start = proposals.log_w.iter().position(|w| w.is_finite()).unwrap_or(0);
    let (mut current, mut accepted) = (start, 0usize);
    let mut samples = Vec::with_capacity(n * d);
    for i in 0..n {
        let (lw_new, lw_cur) = (proposals.log_w[i], proposals.log_w[current]);
        if i != current && lw_new.is_finite() && rng.gen::<f64>().ln() < lw_new - lw_cur {
            current = i;
            accepted += 1;
        }
        samples.extend_from_slice(&proposals.samples[current * d..(current + 1) * d]);
    }
    Ok(Chain {
        samples,
        acceptance: accepted as f64 / n.max(1) as f64,
        dim: d,
    })
}
