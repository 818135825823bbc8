//! Calibration of a posterior model `q(θ | x)` on held-out simulations `(θ*, x)`:
//! simulation-based calibration (SBC, Talts et al. 2018) and expected coverage.
//!
//! For each simulation the model draws `L` posterior samples `θ₁ … θ_L ~ q(θ | x)` and records
//! - per dimension `j`, the **rank** `#{l : θ_l,j < θ*_j}` ∈ {0 … L}: for a calibrated model it is
//!   uniform on {0 … L};
//! - the **HPD rank** `#{l : log q(θ_l | x) > log q(θ* | x)}` ∈ {0 … L}: `θ*` lies in the
//!   highest-density region of credibility `α = k / (L + 1)` when it is below `k`, so the fraction
//!   of simulations with HPD rank below `k` is the expected coverage at `α`; calibrated, it is `α`.
//!
//! Each statistic is summarized by its Kolmogorov–Smirnov distance from the uniform ranks,
//! `max_k |F̂(k) − (k + 1)/(L + 1)|` (for coverage: the largest |coverage(α) − α|, the
//! **coverage error**; positive coverage − α means an under-confident model, negative an
//! over-confident one). The miscalibration bound is [`KS_99`]`/√N` for N simulations, the 99 %
//! point of the KS distance of a calibrated model (asymptotically; the discrete ranks only make
//! it conservative), so a calibrated model exceeds it for a given statistic about 1 % of the time.

use std::cmp::Ordering;

use flow_core::base::Base;
use flow_core::flow::{standard_normal, Flow};
use flow_core::layers::Bijection;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// The 99 % point of the Kolmogorov distribution (`√N · D` of a calibrated model).
pub const KS_99: f64 = 1.628;

/// Posterior samples per simulation by default (L + 1 = 100 ranks: 20 equal histogram bins).
pub const DEFAULT_SAMPLES: usize = 99;

/// The calibration of a model on a set of simulations.
#[derive(Clone, Debug, PartialEq)]
pub struct Calibration {
    /// Posterior samples per simulation (L).
    pub samples: usize,
    /// `ranks[j][i]`: rank of simulation `i`'s true value in dimension `j`, in 0 ..= L.
    pub ranks: Vec<Vec<usize>>,
    /// HPD rank of each simulation's true value, in 0 ..= L.
    pub hpd_ranks: Vec<usize>,
}

impl Calibration {
    /// Simulations (N).
    pub fn n(&self) -> usize {
        self.hpd_ranks.len()
    }

    /// KS distance of dimension `j`'s ranks from uniform.
    pub fn rank_ks(&self, j: usize) -> f64 {
        ks_uniform(&self.ranks[j], self.samples)
    }

    /// Empirical coverage at each credibility level `α_k = k / (L + 1)`, `k = 0 ..= L + 1`:
    /// `(α_k, fraction of simulations whose HPD rank is below k)`.
    pub fn coverage(&self) -> Vec<(f64, f64)> {
        let l = self.samples;
        let counts = histogram(&self.hpd_ranks, l);
        let n = self.n().max(1) as f64;
        let mut below = 0usize;
        let mut out = vec![(0.0, 0.0)];
        for (k, c) in counts.iter().enumerate() {
            below += c;
            out.push(((k + 1) as f64 / (l + 1) as f64, below as f64 / n));
        }
        out
    }

    /// The largest |coverage(α) − α| (the HPD ranks' KS distance), and its sign: coverage −
    /// α where it is largest (positive: under-confident, negative: over-confident).
    pub fn coverage_error(&self) -> (f64, f64) {
        self.coverage()
            .into_iter()
            .map(|(a, c)| c - a)
            .fold(
                (0.0, 0.0),
                |best, e| if e.abs() > best.0 { (e.abs(), e) } else { best },
            )
    }

    /// The miscalibration bound `KS_99 / √N`.
    pub fn bound(&self) -> f64 {
        KS_99 / (self.n().max(1) as f64).sqrt()
    }

    /// Whether every statistic (each dimension's ranks, the coverage) is within the bound.
    pub fn is_calibrated(&self) -> bool {
        let b = self.bound();
        self.coverage_error().0 <= b && (0..self.ranks.len()).all(|j| self.rank_ks(j) <= b)
    }
}

/// Counts of each rank 0 ..= L.
pub fn histogram(ranks: &[usize], l: usize) -> Vec<usize> {
    let mut h = vec![0; l + 1];
    for &r in ranks {
        h[r.min(l)] += 1;
    }
    h
}

/// `max_k |F̂(k) − (k + 1)/(L + 1)|` of ranks in 0 ..= L.
fn ks_uniform(ranks: &[usize], l: usize) -> f64 {
    let n = ranks.len().max(1) as f64;
    let mut below = 0usize;
    let mut worst: f64 = 0.0;
    for (k, c) in histogram(ranks, l).into_iter().enumerate() {
        below += c;
        worst = worst.max((below as f64 / n - (k + 1) as f64 / (l + 1) as f64).abs());
    }
    worst
}

/// Calibrates `flow` on the simulations `theta` (D values each) and `x` (its context, C values
/// each) with `samples` posterior draws per simulation, in parallel over the simulations
/// (simulation `i` draws from ChaCha8 stream `i` of `seed`: the same for any thread count).
pub fn calibrate<L, B>(
    flow: &Flow<f64, L, B>,
    theta: &[f64],
    x: &[f64],
    samples: usize,
    seed: u64,
) -> Calibration
where
    L: Bijection<f64> + Sync,
    B: Base<f64> + Sync,
{
    let (d, c) = (flow.dim(), flow.context_dim());
    let n = theta.len() / d.max(1);
    let per_sim: Vec<(Vec<usize>, usize)> = (0..n)
        .into_par_iter()
        .map(|i| {
            let truth = &theta[i * d..(i + 1) * d];
            let ctx = x.get(i * c..(i + 1) * c).unwrap_or(&[]);
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(i as u64);
            let eps: Vec<f64> = (0..samples * d).map(|_| standard_normal(&mut rng)).collect();
            let mut draws = vec![0.0; samples * d];
            let mut scratch = vec![0.0; flow.batch_scratch_len().max(flow.scratch_len())];
            flow.sample_batch(&eps, ctx, &mut draws, &mut scratch);
            let mut lq = vec![0.0; samples];
            flow.log_prob_batch(&draws, ctx, &mut lq, &mut scratch);
            let lq_true = flow.log_prob(truth, ctx, &mut scratch);
            let ranks = (0..d)
                .map(|j| draws.chunks_exact(d).filter(|s| s[j] < truth[j]).count())
                .collect();
            // NaN log q(θ*) (θ* outside the support) counts as the lowest density.
            let at_most = |v: &f64| matches!(v.partial_cmp(&lq_true), Some(Ordering::Less | Ordering::Equal));
            let hpd = lq.iter().filter(|v| !at_most(v)).count();
            (ranks, hpd)
        })
        .collect();
    let mut ranks = vec![Vec::with_capacity(n); d];
    let mut hpd_ranks = Vec::with_capacity(n);
    for (r, h) in per_sim {
        for (dst, v) in ranks.iter_mut().zip(r) {
            dst.push(v);
        }
        hpd_ranks.push(h);
    }
    Calibration {
        samples,
        ranks,
        hpd_ranks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ranks spread evenly over 0 ..= L are calibrated; ranks piled at one end (an
    /// over-confident model) are not.
    #[test]
    fn uniform_ranks_pass_and_piled_ranks_fail() {
        let l = 9;
        let even: Vec<usize> = (0..1000).map(|i| i % (l + 1)).collect();
        let cal = Calibration {
            samples: l,
            ranks: vec![even.clone()],
            hpd_ranks: even,
        };
        assert!(cal.rank_ks(0) < 1e-12 && cal.coverage_error().0 < 1e-12);
        assert!(cal.is_calibrated());
        let piled: Vec<usize> = (0..1000).map(|i| if i % 2 == 0 { 0 } else { l }).collect();
        let cal = Calibration {
            samples: l,
            ranks: vec![piled.clone()],
            hpd_ranks: vec![l; 1000],
        };
        assert!(cal.rank_ks(0) > 0.3);
        // Every true value outside every HPD region: coverage 0 up to α = L/(L+1).
        let (e, signed) = cal.coverage_error();
        assert!((e - 0.9).abs() < 1e-12 && signed < 0.0, "{e} {signed}");
        assert!(!cal.is_calibrated());
        assert_eq!(cal.coverage().last(), Some(&(1.0, 1.0)));
    }
}
