//! Reverse-KL training: fit a flow `q` to an unnormalized density `p*` ([`Target`]) without
//! samples of it, by minimizing
//!
//! `KL(q ‖ p) − log Z = E_{u ~ N(0, I)} [log q(T(u)) − log p*(T(u))]`
//!
//! with the reparameterized gradient: each step draws a batch of base noise, samples it through the
//! flow with its density from the same pass ([`flow_core::flow::Flow::sample_and_log_prob`]),
//! evaluates the target and its gradient, and back-propagates `g_x = −∇ log p*(x)`, `g_log q = 1`
//! through the sampling direction ([`flow_core::flow::Flow::sample_and_log_prob_vjp`]). Adam,
//! schedules and gradient clipping as in [`crate::fit`]; data-parallel over the batch (`threads`
//! contiguous chunks added in order, so a seed and thread count give the same model run to run).
//!
//! Every step reports the loss (the batch mean of `log q − log p*`), the effective sample size of
//! the importance weights `w = p*/q` as a fraction of the batch, and the acceptance rate of an
//! independence Metropolis–Hastings chain run through the batch's draws — the two numbers that say
//! how well [`crate::importance`] will correct the flow. The final figures come from a fresh
//! evaluation batch with the final weights.
//!
//! A draw where the target is 0 (`log p* = −∞`) makes the objective infinite: an error naming the
//! step and the point ([`TargetError::OutsideSupport`]), as NaN or +∞ from the target are.
//!
//! What it does not do (decided): it keeps the final weights, not the best batch's (the per-step
//! loss is a noisy estimate of the same objective, and no held-out data exists to choose by); the
//! flow is unconditional; its base is the standard normal (the layers carry the fit).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use flow_core::block::{self, BLOCK};
use flow_core::cotangent::Cotangent;
use flow_core::flow::standard_normal;
use flow_core::runtime::flow_of;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::arch::{self, ArchConfig, FlowKind, Trainable};
use crate::importance::{effective_sample_size, importance_sample, ImportanceError};
use crate::target::Target;
use crate::train::{Adam, Precision, Schedule};

/// Everything [`fit_target`] needs besides the target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetConfig {
    /// Architecture (default: RealNVP, 8 coupling layers of 64 × 64: sampling is one pass per
    /// layer, as reverse-KL training needs at every step).
    pub arch: ArchConfig,
    /// Adam steps.
    pub steps: usize,
    /// Draws per step.
    pub batch_size: usize,
    /// Adam learning rate (the peak of the schedule).
    pub lr: f64,
    /// Learning-rate schedule (`cosine` or `constant`; `plateau` needs a validation loss).
    pub schedule: Schedule,
    /// Seed of the initialization and of every step's noise.
    pub seed: u64,
    /// Worker threads (0 = all cores).
    pub threads: usize,
    /// Clip the gradient's global norm to this value (0 = off).
    pub clip_norm: f64,
    /// Draws of the final evaluation (ESS, KL).
    pub eval_samples: usize,
    /// Arithmetic of the gradient kernels (the final evaluation is in f64).
    pub precision: Precision,
}

impl Default for TargetConfig {
    fn default() -> Self {
        TargetConfig {
            arch: ArchConfig {
                flow: FlowKind::Realnvp,
                transforms: 8,
                ..ArchConfig::default()
            },
            steps: 2000,
            batch_size: 256,
            lr: 1e-3,
            schedule: Schedule::Cosine,
            seed: 0,
            threads: 0,
            clip_norm: 10.0,
            eval_samples: 10_000,
            precision: Precision::F32,
        }
    }
}

/// Progress after a step.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepInfo {
    /// 1-based step.
    pub step: usize,
    /// Batch mean of `log q(x) − log p*(x)` (KL(q‖p) − log Z).
    #[serde(with = "flow_core::model::nonfinite::one")]
    pub loss: f64,
    /// Effective sample size of the batch's importance weights, as a fraction of the batch.
    #[serde(with = "flow_core::model::nonfinite::one")]
    pub ess: f64,
    /// Acceptance rate of independence Metropolis–Hastings through the batch's draws.
    #[serde(with = "flow_core::model::nonfinite::one")]
    pub acceptance: f64,
    /// Learning rate of the step.
    #[serde(with = "flow_core::model::nonfinite::one")]
    pub lr: f64,
}

/// The result of [`fit_target`].
#[derive(Clone, Debug)]
pub struct TargetOutcome {
    /// The model with the final weights.
    pub model: Trainable,
    /// Per-step progress.
    pub history: Vec<StepInfo>,
    /// Steps run.
    pub steps: usize,
    /// Wall-clock seconds of the training (without the final evaluation).
    pub seconds: f64,
    /// ESS / N of the final evaluation batch.
    pub ess: f64,
    /// Mean `log q − log p*` of the final evaluation batch.
    pub kl: f64,
    /// Whether Ctrl-C (the `stop` flag) ended the training early.
    pub interrupted: bool,
}

/// Why a reverse-KL fit cannot start or had to stop.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TargetError {
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The architecture cannot be built.
    #[error(transparent)]
    Arch(#[from] crate::error::ArchError),
    /// The target returned NaN or +∞ (or a non-finite gradient).
    #[error("step {step}: the target's {what} is {value} at draw {index} (x = {x:?}); it must be finite (log p* may be −inf)")]
    BadTarget {
        /// 1-based step (0: the final evaluation).
        step: usize,
        /// 0-based draw in the batch.
        index: usize,
        /// `log density` or `gradient`.
        what: &'static str,
        /// The value.
        value: f64,
        /// The point.
        x: Vec<f64>,
    },
    /// A draw of the flow fell where the target is 0 (`log p* = −∞`): the reverse KL is infinite.
    #[error(
        "step {step}: draw {index} (x = {x:?}) is outside the target's support (log p* = -inf), so \
         the reverse KL is infinite; map the flow onto the support (e.g. an elementwise sigmoid or \
         softplus last)"
    )]
    OutsideSupport {
        /// 1-based step.
        step: usize,
        /// 0-based draw in the batch.
        index: usize,
        /// The point.
        x: Vec<f64>,
    },
    /// The flow's own loss or gradient became NaN or infinite.
    #[error("step {0}: the loss or its gradient became NaN or infinite (try a smaller --lr)")]
    NonFinite(usize),
}

/// Fits a flow to `target` by reverse KL (see [`fit_target_with`]).
pub fn fit_target(target: &dyn Target, cfg: &TargetConfig) -> Result<TargetOutcome, TargetError> {
    fit_target_with(target, cfg, &mut |_, _| {}, &AtomicBool::new(false))
}

/// Fits a flow to `target`, calling `on_step(info, model)` after every step (progress,
/// checkpoints); stops early, keeping the weights so far, when `stop` becomes true.
pub fn fit_target_with(
    target: &dyn Target,
    cfg: &TargetConfig,
    on_step: &mut (dyn FnMut(&StepInfo, &Trainable) + Send),
    stop: &AtomicBool,
) -> Result<TargetOutcome, TargetError> {
    if cfg.steps == 0 || cfg.batch_size < 2 || cfg.eval_samples < 2 || cfg.lr.is_nan() || cfg.lr <= 0.0 {
        return Err(TargetError::Config(
            "steps and learning rate must be positive, batch and evaluation sizes at least 2".into(),
        ));
    }
    if cfg.schedule == Schedule::Plateau {
        return Err(TargetError::Config(
            "the plateau schedule needs a validation loss; use cosine or constant".into(),
        ));
    }
    let threads = if cfg.threads == 0 {
        rayon::current_num_threads()
    } else {
        cfg.threads
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| TargetError::Config(e.to_string()))?;
    pool.install(|| fit_inner(target, cfg, threads, on_step, stop))
}

fn fit_inner(
    target: &dyn Target,
    cfg: &TargetConfig,
    threads: usize,
    on_step: &mut (dyn FnMut(&StepInfo, &Trainable) + Send),
    stop: &AtomicBool,
) -> Result<TargetOutcome, TargetError> {
    let start = Instant::now();
    let d = target.dim();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut model = arch::build(&cfg.arch, d, 0, None, None, &mut rng).map_err(TargetError::Arch)?;
    let mut adam = Adam::new(model.parts.weights.len());
    let mut history = Vec::with_capacity(cfg.steps);
    let mut interrupted = false;
    for step in 1..=cfg.steps {
        if stop.load(Ordering::Relaxed) {
            interrupted = true;
            break;
        }
        let eps: Vec<f64> = (0..cfg.batch_size * d)
            .map(|_| standard_normal(&mut rng))
            .collect();
        let batch = loss_and_grad(&model, target, &eps, threads, step, cfg.precision)?;
        let mut g = batch.grad;
        let scale = 1.0 / cfg.batch_size as f64;
        let mut norm2 = 0.0;
        for (gi, &t) in g.iter_mut().zip(&model.trainable) {
            *gi = if t { *gi * scale } else { 0.0 };
            norm2 += *gi * *gi;
        }
        let loss = batch.loss.iter().sum::<f64>() * scale;
        if !loss.is_finite() || !norm2.is_finite() {
            return Err(TargetError::NonFinite(step));
        }
        if cfg.clip_norm > 0.0 && norm2.sqrt() > cfg.clip_norm {
            let f = cfg.clip_norm / norm2.sqrt();
            g.iter_mut().for_each(|v| *v *= f);
        }
        let lr = match cfg.schedule {
            Schedule::Cosine => {
                cfg.lr * 0.5 * (1.0 + (std::f64::consts::PI * (step - 1) as f64 / cfg.steps as f64).cos())
            }
            _ => cfg.lr,
        };
        adam.step(&mut model.parts.weights, &g, &model.trainable, lr, 0.0);
        let log_w: Vec<f64> = batch.loss.iter().map(|l| -l).collect();
        let info = StepInfo {
            step,
            loss,
            ess: effective_sample_size(&log_w) / log_w.len() as f64,
            acceptance: mh_acceptance(&log_w, &mut rng),
            lr,
        };
        history.push(info);
        on_step(&info, &model);
    }
    let seconds = start.elapsed().as_secs_f64();
    let (ess, kl) = evaluate(&model, target, cfg.eval_samples, cfg.seed ^ 0xe7a1)?;
    Ok(TargetOutcome {
        model,
        steps: history.len(),
        history,
        seconds,
        ess,
        kl,
        interrupted,
    })
}

/// Acceptance rate of the independence Metropolis–Hastings chain that visits the draws in order,
/// accepting draw `i` with `min(1, wᵢ / w_current)`.
fn mh_acceptance(log_w: &[f64], rng: &mut ChaCha8Rng) -> f64 {
    let Some(mut current) = log_w.first().copied() else {
        return 0.0;
    };
    let mut accepted = 0usize;
    for &l in &log_w[1..] {
        if l.is_finite() && rng.gen::<f64>().ln() < l - current {
            current = l;
            accepted += 1;
        }
    }
    accepted as f64 / (log_w.len() - 1).max(1) as f64
}

/// One batch: per-draw losses `log q − log p*` and the summed gradient.
struct Batch {
    loss: Vec<f64>,
    grad: Vec<f64>,
}

/// Draws `x = T(eps)` with `log q` for every row of `eps`, evaluates the target and sums the
/// reparameterized gradients, in `chunks` contiguous pieces added in order.
fn loss_and_grad(
    model: &Trainable,
    target: &dyn Target,
    eps: &[f64],
    chunks: usize,
    step: usize,
    precision: Precision,
) -> Result<Batch, TargetError> {
    match precision {
        Precision::F64 => loss_and_grad_in::<f64>(model, target, eps, chunks, step),
        Precision::F32 => loss_and_grad_in::<f32>(model, target, eps, chunks, step),
    }
}

fn loss_and_grad_in<S: flow_core::Real + flow_core::Weight>(
    model: &Trainable,
    target: &dyn Target,
    eps: &[f64],
    chunks: usize,
    step: usize,
) -> Result<Batch, TargetError> {
    let parts = &model.parts;
    let weights: Vec<S> = parts.weights.iter().map(|&w| S::from_f64(w)).collect();
    let d = target.dim();
    let n = eps.len() / d;
    let n_w = parts.weights.len();
    let chunk_rows = n.div_ceil(chunks.max(1)).max(1);
    type Chunk<S> = Result<(Vec<f64>, Vec<S>), TargetError>;
    let partial: Vec<Chunk<S>> = eps
        .par_chunks(chunk_rows * d)
        .enumerate()
        .map(|(k, eps)| {
            let flow = flow_of::<S, S>(&parts.desc, &weights, &parts.ints);
            let rows = eps.len() / d;
            let eps: Vec<S> = eps.iter().map(|&e| S::from_f64(e)).collect();
            let len = (flow.scratch_len())
                .max(flow.sample_vjp_scratch_len())
                .max(flow.sample_vjp_head_scratch_len(BLOCK));
            let mut scratch = vec![S::ZERO; len];
            let mut g = vec![S::ZERO; n_w];
            let mut loss = Vec::with_capacity(rows);
            // The target and the cotangents g_x = −∇ log p*, g_log q = 1 of `m` draws starting at
            // row `at` of the chunk.
            let mut head = |at: usize, x: &[S], log_q: &[S], g_x: &mut [S]| -> Result<(), TargetError> {
                let m = log_q.len();
                let x64: Vec<f64> = x.iter().map(|v| v.to_f64()).collect();
                let (mut log_p, mut grad_p) = (vec![0.0; m], vec![0.0; m * d]);
                target.log_prob_grad(&x64, &mut log_p, &mut grad_p);
                check_target(&x64, &log_p, &grad_p, d, step, k * chunk_rows + at)?;
                for (i, (q, p)) in log_q.iter().zip(&log_p).enumerate() {
                    if *p == f64::NEG_INFINITY {
                        return Err(TargetError::OutsideSupport {
                            step,
                            index: k * chunk_rows + at + i,
                            x: x64[i * d..(i + 1) * d].to_vec(),
                        });
                    }
                    let l = q.to_f64() - p;
                    if !l.is_finite() {
                        return Err(TargetError::NonFinite(step));
                    }
                    loss.push(l);
                }
                for (gx, &gp) in g_x.iter_mut().zip(&grad_p) {
                    *gx = S::from_f64(-gp);
                }
                Ok(())
            };
            // Blocks of BLOCK rows in one sampling pass each, then the rest row by row (each
            // weight adds the rows in order either way).
            let full = rows / BLOCK * BLOCK;
            let mut failed = None;
            for (b, e) in eps[..full * d].chunks_exact(BLOCK * d).enumerate() {
                let e = block::views::<S, BLOCK>(e, d);
                let ctx: [&[S]; BLOCK] = [&[]; BLOCK];
                let g_ctx: [&mut [S]; BLOCK] = std::array::from_fn(|_| &mut [][..]);
                let mut h = |x: &[S], lq: &[S], gx: &mut [S]| {
                    if failed.is_none() {
                        failed = head(b * BLOCK, x, lq, gx).err();
                    }
                };
                flow.sample_vjp_head_block(
                    e,
                    ctx,
                    Cotangent::new(&mut h, S::ONE),
                    g_ctx,
                    &mut g,
                    &mut scratch,
                );
                if let Some(err) = failed.take() {
                    return Err(err);
                }
            }
            let mut x = vec![S::ZERO; d];
            let mut gx = vec![S::ZERO; d];
            for (i, e) in eps[full * d..].chunks_exact(d).enumerate() {
                let lq = flow.sample_and_log_prob(e, &[], &mut x, &mut scratch);
                head(full + i, &x, &[lq], &mut gx)?;
                flow.sample_and_log_prob_vjp(
                    e,
                    &[],
                    Cotangent::new(&gx, S::ONE),
                    &mut [],
                    &mut g,
                    &mut scratch,
                );
            }
            Ok((loss, g))
        })
        .collect();
    let mut batch = Batch {
        loss: Vec::with_capacity(n),
        grad: vec![0.0; n_w],
    };
    for p in partial {
        let (loss, g) = p?;
        batch.loss.extend(loss);
        for (a, b) in batch.grad.iter_mut().zip(&g) {
            *a += b.to_f64();
        }
    }
    Ok(batch)
}

/// NaN or +∞ log densities and non-finite gradients (where log p* is finite) are errors.
fn check_target(
    x: &[f64],
    log_p: &[f64],
    grad: &[f64],
    d: usize,
    step: usize,
    first: usize,
) -> Result<(), TargetError> {
    for (i, &lp) in log_p.iter().enumerate() {
        let g = &grad[i * d..(i + 1) * d];
        let bad = if lp.is_nan() || lp == f64::INFINITY {
            Some(("log density", lp))
        } else if lp.is_finite() {
            g.iter().find(|v| !v.is_finite()).map(|&v| ("gradient", v))
        } else {
            None
        };
        if let Some((what, value)) = bad {
            return Err(TargetError::BadTarget {
                step,
                index: first + i,
                what,
                value,
                x: x[i * d..(i + 1) * d].to_vec(),
            });
        }
    }
    Ok(())
}

/// `(ESS / N, mean(log q − log p*))` of `n` fresh draws ([`importance_sample`]).
fn evaluate(model: &Trainable, target: &dyn Target, n: usize, seed: u64) -> Result<(f64, f64), TargetError> {
    let parts = &model.parts;
    let flow = flow_of::<f64, f64>(&parts.desc, &parts.weights, &parts.ints);
    let w = match importance_sample(&flow, &[], n, seed, |x| target.log_prob(x)) {
        Ok(w) => w,
        // Every draw outside the support: no effective samples, an infinite KL.
        Err(ImportanceError::NoWeight(_)) => return Ok((0.0, f64::INFINITY)),
        Err(ImportanceError::BadTarget { index, value, x }) => {
            return Err(TargetError::BadTarget {
                step: 0,
                index,
                what: "log density",
                value,
                x,
            })
        }
    };
    let kl = -w.log_w.iter().sum::<f64>() / n as f64;
    Ok((w.ess() / n as f64, kl))
}
