//! Maximum-likelihood training: Adam on mini-batches, data-parallel over the batch, validation,
//! early stopping with the best weights kept.
//!
//! Gradients come from flow-core's vector-Jacobian products through the same runtime composition
//! the evaluator uses (`flow_core::runtime::flow_of` with `f64` or `f32` weights): there is no
//! second copy of the flow math here. Each chunk runs [`flow_core::block::BLOCK`] rows at a time
//! (`Flow::grad_block`: the block's forward, then each layer's VJP for the block), the rest row by
//! row; either way each weight's gradient adds the rows in order, so the result does not depend on
//! the blocking.
//!
//! Determinism: for a given seed and thread count, results are identical run to run. Each batch is
//! cut into `threads` contiguous chunks whose gradient sums are added in chunk order.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use flow_core::block::{self, BLOCK};
use flow_core::runtime::flow_of;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::arch::{self, ArchConfig, Trainable};
use crate::error::{ArchError, UnknownName};

/// Rows of data (`n × D`, row-major) and optional context columns (`n × C`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Dataset {
    /// Names of the modelled columns.
    pub columns: Vec<String>,
    /// Names of the context (condition) columns.
    pub context_columns: Vec<String>,
    /// Modelled values, row-major.
    pub x: Vec<f64>,
    /// Context values, row-major (empty without context).
    pub ctx: Vec<f64>,
}

impl Dataset {
    /// A dataset without context from rows.
    pub fn from_rows(columns: Vec<String>, rows: &[Vec<f64>]) -> Self {
        Dataset {
            columns,
            context_columns: Vec::new(),
            x: rows.concat(),
            ctx: Vec::new(),
        }
    }

    /// Number of modelled columns D.
    pub fn dim(&self) -> usize {
        self.columns.len()
    }

    /// Number of context columns C.
    pub fn context_dim(&self) -> usize {
        self.context_columns.len()
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        if self.dim() == 0 {
            0
        } else {
            self.x.len() / self.dim()
        }
    }

    /// True without rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `i`: (values, context).
    pub fn row(&self, i: usize) -> (&[f64], &[f64]) {
        let (d, c) = (self.dim(), self.context_dim());
        (&self.x[i * d..(i + 1) * d], &self.ctx[i * c..(i + 1) * c])
    }
}

/// Learning-rate schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Schedule {
    /// Cosine annealing from `lr` to 0 over all steps.
    Cosine,
    /// Halve the rate after `patience / 2` epochs without validation improvement.
    Plateau,
    /// Constant rate.
    Constant,
}

impl Schedule {
    /// Every schedule.
    pub const ALL: [Schedule; 3] = [Schedule::Cosine, Schedule::Plateau, Schedule::Constant];

    /// One line on the schedule (`flow-train fit --help`).
    pub fn about(self) -> &'static str {
        match self {
            Schedule::Cosine => "Cosine annealing from `lr` to 0 over all steps",
            Schedule::Plateau => "Halve the rate after `patience / 2` epochs without validation improvement",
            Schedule::Constant => "Constant rate",
        }
    }

    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            Schedule::Cosine => "cosine",
            Schedule::Plateau => "plateau",
            Schedule::Constant => "constant",
        }
    }
}

impl std::str::FromStr for Schedule {
    type Err = UnknownName;

    /// The schedule named `s` ([`Schedule::name`]).
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| UnknownName {
                kind: "schedule",
                name: s.into(),
                choices: "cosine, plateau, constant".into(),
            })
    }
}

/// Everything `fit` needs besides the data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FitConfig {
    /// Architecture.
    pub arch: ArchConfig,
    /// Maximum number of epochs.
    pub epochs: usize,
    /// Mini-batch size (at most; see `min_batches`; default 128).
    ///
    /// An epoch budget is a budget of Adam steps: at short budgets the fit is limited by the
    /// number of steps, not by the gradient noise of a smaller batch. Moons, 9 000 training rows,
    /// mean test NLL of 3 seeds (`bench/train.sh`): MAF at 10 / 30 / 100 epochs 0.668 / 0.361 /
    /// 0.329 with 128, 0.892 / 0.532 / 0.359 with 256; every flow and budget on moons and
    /// checkerboard is better or the same within noise. 64 is better still at 10 epochs but
    /// had a diverging RealNVP seed at 100.
    pub batch_size: usize,
    /// Cut every epoch into at least this many mini-batches (default 32): on data sets with fewer
    /// than `min_batches · batch_size` training rows the batch shrinks to
    /// `ceil(n_train / min_batches)` rows (0 = off: always `batch_size`).
    ///
    /// Why: with fewer training rows than `batch_size`, an epoch is a single Adam step, so an
    /// epoch budget of 60 is 60 steps, and the cosine schedule anneals the rate to zero before
    /// the flow has fitted (wine, 96 training rows, MAF, 60 epochs, mean of 10 seeds: test NLL
    /// 16.38 with one batch per epoch, 15.77 with 8). With 32 rather than 8 (and batch 128),
    /// 1 000 rows of moons at 10 epochs: MAF 1.18 instead of 1.58 (zuko 1.56); wine at 100
    /// epochs (5 seeds): MAF 15.68 / NSF 15.17 instead of 15.72 / 15.63. Recorded configurations
    /// from before this field read as 0.
    #[serde(default)]
    pub min_batches: usize,
    /// Adam learning rate: the peak of the schedule (default 5e-3; cosine's mean rate is half
    /// of it). With batches of 128 and a cosine schedule a short budget is limited by how far
    /// the weights can move: `bench/train.sh` (3 seeds, test NLL), moons 9 000 rows, 10 epochs:
    /// MAF 0.437 at 5e-3, 0.534 at 3e-3, 0.668 at 2e-3 (FlowJAX 0.498); RealNVP 0.425 / 0.600 /
    /// 0.579 (FlowJAX 0.528). At 30 and 100 epochs, on checkerboard, and on breast_cancer and
    /// wine at 100 epochs, 5e-3 is better or the same within the seeds' spread.
    pub lr: f64,
    /// Seed for the split, the initialization and the batch order.
    pub seed: u64,
    /// Fraction of rows held out for validation (early stopping).
    pub val_fraction: f64,
    /// Stop after this many epochs without validation improvement.
    pub patience: usize,
    /// Worker threads (0 = all cores).
    pub threads: usize,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Clip the gradient's global norm to this value (0 = off).
    pub clip_norm: f64,
    /// Decoupled weight decay (AdamW, as `torch.optim.AdamW`): every step first multiplies each
    /// trainable weight by `1 − lr · weight_decay` (0 = off, plain Adam). A regularizer for small
    /// data sets: it pulls every layer towards the identity, so the flow towards the standardized
    /// Gaussian. Its strength per epoch grows with the number of batches per epoch. Wine (96
    /// training rows, MAF, 100 epochs, mean of 5 seeds): with the default 32 batches per epoch 1
    /// lowers the test NLL from 15.68 to 15.26; with 8 batches 5 lowers it from 15.72 to 14.90.
    /// On moons (9 000 rows) 0.1 already costs 0.007 nats.
    #[serde(default)]
    pub weight_decay: f64,
    /// Fit a standardization on the training split and store it as the first layer.
    pub standardize: bool,
    /// Arithmetic of the gradient kernels.
    pub precision: Precision,
}

impl Default for FitConfig {
    fn default() -> Self {
        FitConfig {
            arch: ArchConfig::default(),
            epochs: 100,
            batch_size: 128,
            min_batches: 32,
            lr: 5e-3,
            seed: 0,
            val_fraction: 0.1,
            patience: 20,
            threads: 0,
            schedule: Schedule::Cosine,
            clip_norm: 10.0,
            weight_decay: 0.0,
            standardize: true,
            precision: Precision::F32,
        }
    }
}

/// Progress after an epoch.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochInfo {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training NLL over the epoch's batches.
    #[serde(with = "flow_core::model::nonfinite::one")]
    pub train_nll: f64,
    /// Mean validation NLL after the epoch.
    #[serde(with = "flow_core::model::nonfinite::one")]
    pub val_nll: f64,
    /// Best validation NLL so far.
    #[serde(with = "flow_core::model::nonfinite::one")]
    pub best_val_nll: f64,
    /// Learning rate at the end of the epoch.
    #[serde(with = "flow_core::model::nonfinite::one")]
    pub lr: f64,
}

/// Why training stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StopReason {
    /// Ran all epochs.
    Epochs,
    /// No validation improvement for `patience` epochs.
    EarlyStopping,
    /// Interrupted (e.g. Ctrl-C); the best weights so far are kept.
    Interrupted,
    /// The loss became NaN or infinite; the best weights so far are kept.
    NonFiniteLoss,
}

/// The result of [`fit`].
#[derive(Clone, Debug)]
pub struct FitOutcome {
    /// The model with the best validation weights.
    pub model: Trainable,
    /// Best validation NLL (nats per row).
    pub best_val_nll: f64,
    /// Epochs run.
    pub epochs: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Per-epoch progress.
    pub history: Vec<EpochInfo>,
    /// Why training stopped.
    pub stop: StopReason,
    /// Rows used for training and validation.
    pub n_train: usize,
    /// Rows held out.
    pub n_val: usize,
}

/// Errors before training can start.
#[derive(Debug, thiserror::Error)]
pub enum FitError {
    /// Not enough rows.
    #[error("need at least 2 rows to fit (got {0})")]
    TooFewRows(usize),
    /// A column has zero variance.
    #[error("column '{0}' is constant (zero variance): it has no density; drop it")]
    ConstantColumn(String),
    /// The architecture cannot be built.
    #[error(transparent)]
    Arch(#[from] ArchError),
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// Per-column mean and standard deviation (population) of the modelled columns.
pub fn mean_std(data: &Dataset, rows: &[usize]) -> (Vec<f64>, Vec<f64>) {
    column_stats(data.dim(), rows.iter().map(|&i| data.row(i).0))
}

/// Per-column mean and standard deviation (population) of the context columns. A constant
/// context column (standard deviation 0) carries no information and gets scale 1, so it is only
/// centred.
pub fn context_mean_std(data: &Dataset, rows: &[usize]) -> (Vec<f64>, Vec<f64>) {
    let (mean, mut std) = column_stats(data.context_dim(), rows.iter().map(|&i| data.row(i).1));
    for s in std.iter_mut().filter(|s| s.is_nan() || **s <= 0.0) {
        *s = 1.0;
    }
    (mean, std)
}

/// Mean and population standard deviation of `d` columns over `rows` (two passes).
fn column_stats<'a>(d: usize, rows: impl Iterator<Item = &'a [f64]> + Clone) -> (Vec<f64>, Vec<f64>) {
    let mut n = 0.0;
    let mut mean = vec![0.0; d];
    for r in rows.clone() {
        n += 1.0;
        for (m, v) in mean.iter_mut().zip(r) {
            *m += v;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n);
    let mut var = vec![0.0; d];
    for r in rows {
        for ((s, v), m) in var.iter_mut().zip(r).zip(&mean) {
            *s += (v - m) * (v - m);
        }
    }
    (mean, var.iter().map(|s| (s / n).sqrt()).collect())
}

/// `(mean, std)` as slices.
fn as_slices(s: &Option<(Vec<f64>, Vec<f64>)>) -> Option<(&[f64], &[f64])> {
    s.as_ref().map(|(m, s)| (&m[..], &s[..]))
}

/// Arithmetic used for the per-sample gradients (Adam's state and the master weights are f64).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Precision {
    /// f32 kernels (about twice the SIMD width); per-chunk sums in f32, batch sum in f64.
    F32,
    /// f64 kernels throughout.
    F64,
}

impl Precision {
    /// Both precisions.
    pub const ALL: [Precision; 2] = [Precision::F32, Precision::F64];

    /// One line on the precision (`flow-train fit --help`).
    pub fn about(self) -> &'static str {
        match self {
            Precision::F32 => {
                "f32 kernels (about twice the SIMD width); per-chunk sums in f32, batch sum in f64"
            }
            Precision::F64 => "f64 kernels throughout",
        }
    }

    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F64 => "f64",
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = UnknownName;

    /// The precision named `s` ([`Precision::name`]).
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| UnknownName {
                kind: "precision",
                name: s.into(),
                choices: "f32, f64".into(),
            })
    }
}

/// The data after the fixed elementwise maps `pre` (to fit the standardization that follows them).
fn pre_transformed(
    data: &Dataset,
    pre: &[flow_core::layers::elementwise::ElementwiseKind],
) -> Result<Dataset, FitError> {
    let d = data.dim();
    let mut parts = flow_core::model::builder::ModelParts::new(d, 0);
    for &kind in pre {
        parts.push_layer(flow_core::model::LayerDesc::Elementwise {
            kind,
            params: Default::default(),
        });
    }
    let flow = flow_of::<f64, f64>(&parts.desc, &parts.weights, &parts.ints);
    let mut scratch = vec![0.0; flow.scratch_len()];
    let mut out = data.clone();
    for (i, row) in out.x.chunks_mut(d).enumerate() {
        let x = data.row(i).0;
        flow.inverse(x, &[], row, &mut scratch);
        if let Some(j) = row.iter().position(|v| !v.is_finite()) {
            return Err(FitError::Config(format!(
                "row {} column '{}': value {} is outside the domain of {:?}",
                i + 1,
                data.columns[j],
                x[j],
                pre
            )));
        }
    }
    Ok(out)
}

/// Sum of −log p over `rows` and its gradient w.r.t. all weights, data-parallel in `chunks`
/// contiguous pieces added in order (deterministic for a given chunk count).
fn nll_and_grad(
    model: &Trainable,
    data: &Dataset,
    rows: &[usize],
    chunks: usize,
    precision: Precision,
) -> (f64, Vec<f64>) {
    match precision {
        Precision::F64 => nll_and_grad_in::<f64>(model, data, rows, chunks),
        Precision::F32 => nll_and_grad_in::<f32>(model, data, rows, chunks),
    }
}

fn nll_and_grad_in<S: flow_core::Real + flow_core::Weight>(
    model: &Trainable,
    data: &Dataset,
    rows: &[usize],
    chunks: usize,
) -> (f64, Vec<f64>) {
    let parts = &model.parts;
    let weights: Vec<S> = parts.weights.iter().map(|&w| S::from_f64(w)).collect();
    let n_w = weights.len();
    let chunk_len = rows.len().div_ceil(chunks.max(1)).max(1);
    let partial: Vec<(f64, Vec<S>)> = rows
        .par_chunks(chunk_len)
        .map(|chunk| {
            let flow = flow_of::<S, S>(&parts.desc, &weights, &parts.ints);
            let len = flow.scratch_len().max(flow.grad_block_scratch_len(BLOCK));
            let mut scratch = vec![S::ZERO; len];
            let mut g = vec![S::ZERO; n_w];
            let (d, c) = (data.dim(), data.context_dim());
            let mut gx = vec![S::ZERO; BLOCK * d];
            let (mut x, mut ctx) = (vec![S::ZERO; BLOCK * d], vec![S::ZERO; BLOCK * c]);
            let mut lp = [S::ZERO; BLOCK];
            let mut nll = 0.0;
            // Blocks of BLOCK rows (each weight's gradient adds the rows in order, as row by row
            // would), then the remainder row by row.
            let blocks = chunk.chunks_exact(BLOCK);
            let tail = blocks.remainder();
            for rows in blocks {
                for (k, &i) in rows.iter().enumerate() {
                    let (xr, cr) = data.row(i);
                    let (xs, cs) = (&mut x[k * d..(k + 1) * d], &mut ctx[k * c..(k + 1) * c]);
                    xs.iter_mut().zip(xr).for_each(|(a, &b)| *a = S::from_f64(b));
                    cs.iter_mut().zip(cr).for_each(|(a, &b)| *a = S::from_f64(b));
                }
                let xv = block::views::<S, BLOCK>(&x, d);
                let cv = block::views::<S, BLOCK>(&ctx, c);
                let gv = block::views_mut::<S, BLOCK>(&mut gx, d);
                flow.grad_block(xv, cv, gv, Some(&mut g), &mut lp, &mut scratch);
                for v in lp {
                    nll -= v.to_f64();
                }
            }
            for &i in tail {
                let (xr, cr) = data.row(i);
                x.iter_mut().zip(xr).for_each(|(a, &b)| *a = S::from_f64(b));
                ctx.iter_mut().zip(cr).for_each(|(a, &b)| *a = S::from_f64(b));
                nll -= flow
                    .grad(&x[..d], &ctx[..c], &mut gx[..d], Some(&mut g), &mut scratch)
                    .to_f64();
            }
            (nll, g)
        })
        .collect();
    let mut total = 0.0;
    let mut grad = vec![0.0; n_w];
    for (nll, g) in partial {
        total += nll;
        for (a, b) in grad.iter_mut().zip(&g) {
            *a -= b.to_f64(); // gradient of the NLL
        }
    }
    (total, grad)
}

/// Mean −log p over `rows` (parallel, deterministic).
pub fn mean_nll(model: &Trainable, data: &Dataset, rows: &[usize], chunks: usize) -> f64 {
    let parts = &model.parts;
    let chunk_len = rows.len().div_ceil(chunks.max(1)).max(1);
    let sums: Vec<f64> = rows
        .par_chunks(chunk_len)
        .map(|chunk| {
            let flow = flow_of::<f64, f64>(&parts.desc, &parts.weights, &parts.ints);
            let mut scratch = vec![0.0; flow.batch_scratch_len().max(flow.scratch_len())];
            // Blocks of BLOCK rows through the layers together, then the rest row by row; the
            // sum adds the rows in order either way.
            let blocks = chunk.chunks_exact(BLOCK);
            let tail = blocks.remainder();
            let mut sum = 0.0;
            let mut lp = [0.0; BLOCK];
            for rows in blocks {
                let x: [&[f64]; BLOCK] = std::array::from_fn(|k| data.row(rows[k]).0);
                let c: [&[f64]; BLOCK] = std::array::from_fn(|k| data.row(rows[k]).1);
                flow.log_prob_block(x, c, &mut lp, &mut scratch);
                for v in lp {
                    sum += -v;
                }
            }
            for &i in tail {
                sum += -flow.log_prob(data.row(i).0, data.row(i).1, &mut scratch);
            }
            sum
        })
        .collect();
    sums.iter().sum::<f64>() / rows.len().max(1) as f64
}

/// Adam state.
pub(crate) struct Adam {
    m: Vec<f64>,
    v: Vec<f64>,
    t: i32,
}

impl Adam {
    const B1: f64 = 0.9;
    const B2: f64 = 0.999;
    const EPS: f64 = 1e-8;

    /// Zero moments for `n` weights.
    pub(crate) fn new(n: usize) -> Self {
        Adam {
            m: vec![0.0; n],
            v: vec![0.0; n],
            t: 0,
        }
    }

    /// One Adam step; `weight_decay` > 0 first shrinks every trainable weight by
    /// `lr · weight_decay` (decoupled weight decay, AdamW, as `torch.optim.AdamW`).
    pub(crate) fn step(&mut self, w: &mut [f64], g: &[f64], trainable: &[bool], lr: f64, weight_decay: f64) {
        self.t += 1;
        let c1 = 1.0 - Self::B1.powi(self.t);
        let c2 = 1.0 - Self::B2.powi(self.t);
        if weight_decay > 0.0 {
            for (wi, &t) in w.iter_mut().zip(trainable) {
                if t {
                    *wi -= lr * weight_decay * *wi;
                }
            }
        }
        // `fit` zeroes the gradient of every weight that is not trainable, so its moments stay 0
        // and its update is exactly 0: the loop needs no branch (and vectorizes).
        debug_assert!(g.iter().zip(trainable).all(|(&gi, &t)| t || gi == 0.0));
        let moments = self.m.iter_mut().zip(self.v.iter_mut());
        for ((wi, (mi, vi)), &gi) in w.iter_mut().zip(moments).zip(g) {
            *mi = Self::B1 * *mi + (1.0 - Self::B1) * gi;
            *vi = Self::B2 * *vi + (1.0 - Self::B2) * gi * gi;
            *wi -= lr * (*mi / c1) / ((*vi / c2).sqrt() + Self::EPS);
        }
    }
}

/// The mini-batch size `fit` uses with `n_train` training rows: `cfg.batch_size`, or fewer rows
/// so that an epoch has at least `cfg.min_batches` batches (never below 1).
pub fn effective_batch_size(cfg: &FitConfig, n_train: usize) -> usize {
    if cfg.min_batches == 0 {
        return cfg.batch_size;
    }
    cfg.batch_size.min(n_train.div_ceil(cfg.min_batches)).max(1)
}

/// Fits a flow to `data` (see [`fit_with`]).
pub fn fit(data: &Dataset, cfg: &FitConfig) -> Result<FitOutcome, FitError> {
    fit_with(data, cfg, &mut |_, _, _| {}, &AtomicBool::new(false))
}

/// Fits a flow, calling `on_epoch(info, model, best_weights)` after every epoch (e.g. to show
/// progress or write a checkpoint of the best weights); stops early (keeping the best weights)
/// when `stop` becomes true.
pub fn fit_with(
    data: &Dataset,
    cfg: &FitConfig,
    on_epoch: &mut (dyn FnMut(&EpochInfo, &Trainable, &[f64]) + Send),
    stop: &AtomicBool,
) -> Result<FitOutcome, FitError> {
    let start = Instant::now();
    let n = data.len();
    if n < 2 {
        return Err(FitError::TooFewRows(n));
    }
    if cfg.batch_size == 0 || cfg.epochs == 0 || cfg.lr.is_nan() || cfg.lr <= 0.0 {
        return Err(FitError::Config(
            "epochs, batch size and learning rate must be positive".into(),
        ));
    }
    if !(cfg.weight_decay >= 0.0 && cfg.weight_decay * cfg.lr < 1.0) {
        return Err(FitError::Config(
            "weight decay must be ≥ 0 and below 1 / learning rate".into(),
        ));
    }
    if !(0.0..1.0).contains(&cfg.val_fraction) {
        return Err(FitError::Config("validation fraction must be in [0, 1)".into()));
    }
    let threads = if cfg.threads == 0 {
        rayon::current_num_threads()
    } else {
        cfg.threads
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| FitError::Config(e.to_string()))?;
    pool.install(|| fit_inner(data, cfg, threads, on_epoch, stop, start))
}

fn fit_inner(
    data: &Dataset,
    cfg: &FitConfig,
    threads: usize,
    on_epoch: &mut (dyn FnMut(&EpochInfo, &Trainable, &[f64]) + Send),
    stop: &AtomicBool,
    start: Instant,
) -> Result<FitOutcome, FitError> {
    let n = data.len();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut rows: Vec<usize> = (0..n).collect();
    rows.shuffle(&mut rng);
    let n_val = ((n as f64 * cfg.val_fraction).round() as usize).min(n - 1);
    let (val_rows, train_rows) = rows.split_at(n_val);
    let mut train_rows = train_rows.to_vec();
    // Without a validation split, early stopping watches the training loss.
    let val_rows: Vec<usize> = if val_rows.is_empty() {
        train_rows.clone()
    } else {
        val_rows.to_vec()
    };

    let (mean, std) = if cfg.arch.pre.is_empty() {
        mean_std(data, &train_rows)
    } else {
        mean_std(&pre_transformed(data, &cfg.arch.pre)?, &train_rows)
    };
    if let Some(i) = std.iter().position(|&s| s.is_nan() || s <= 0.0) {
        return Err(FitError::ConstantColumn(data.columns[i].clone()));
    }
    let (standardize, context) = if cfg.standardize {
        let (c_mean, c_std) = context_mean_std(data, &train_rows);
        (
            Some((mean, std)),
            Some((c_mean, c_std)).filter(|(m, _)| !m.is_empty()),
        )
    } else {
        (None, None)
    };
    let mut model = arch::build(
        &cfg.arch,
        data.dim(),
        data.context_dim(),
        as_slices(&standardize),
        as_slices(&context),
        &mut rng,
    )
    .map_err(FitError::Arch)?;
    let n_w = model.parts.weights.len();
    let mut adam = Adam::new(n_w);
    let batch_size = effective_batch_size(cfg, train_rows.len());
    let batches_per_epoch = train_rows.len().div_ceil(batch_size);
    let total_steps = (cfg.epochs * batches_per_epoch) as f64;
    let mut lr = cfg.lr;
    // The untrained model is the first candidate, so a loss that diverges at once still leaves
    // finite, valid weights.
    let initial_val = mean_nll(&model, data, &val_rows, threads);
    let mut best = (
        if initial_val.is_nan() {
            f64::INFINITY
        } else {
            initial_val
        },
        model.parts.weights.clone(),
    );
    let mut since_best = 0;
    let mut history = Vec::new();
    let mut stop_reason = StopReason::Epochs;
    let mut step = 0usize;
    'epochs: for epoch in 1..=cfg.epochs {
        train_rows.shuffle(&mut rng);
        let mut epoch_nll = 0.0;
        for batch in train_rows.chunks(batch_size) {
            if stop.load(Ordering::Relaxed) {
                stop_reason = StopReason::Interrupted;
                break 'epochs;
            }
            let (nll, mut g) = nll_and_grad(&model, data, batch, threads, cfg.precision);
            if !nll.is_finite() || g.iter().any(|v| !v.is_finite()) {
                stop_reason = StopReason::NonFiniteLoss;
                break 'epochs;
            }
            epoch_nll += nll;
            let scale = 1.0 / batch.len() as f64;
            let mut norm2 = 0.0;
            for (gi, &t) in g.iter_mut().zip(&model.trainable) {
                *gi = if t { *gi * scale } else { 0.0 };
                norm2 += *gi * *gi;
            }
            if cfg.clip_norm > 0.0 && norm2.sqrt() > cfg.clip_norm {
                let f = cfg.clip_norm / norm2.sqrt();
                g.iter_mut().for_each(|v| *v *= f);
            }
            if cfg.schedule == Schedule::Cosine {
                lr = cfg.lr * 0.5 * (1.0 + (std::f64::consts::PI * step as f64 / total_steps).cos());
            }
            adam.step(
                &mut model.parts.weights,
                &g,
                &model.trainable,
                lr,
                cfg.weight_decay,
            );
            step += 1;
        }
        let val_nll = mean_nll(&model, data, &val_rows, threads);
        if val_nll < best.0 {
            best = (val_nll, model.parts.weights.clone());
            since_best = 0;
        } else {
            since_best += 1;
            if cfg.schedule == Schedule::Plateau && since_best % (cfg.patience / 2).max(1) == 0 {
                lr *= 0.5;
            }
        }
        let info = EpochInfo {
            epoch,
            train_nll: epoch_nll / train_rows.len() as f64,
            val_nll,
            best_val_nll: best.0,
            lr,
        };
        history.push(info);
        on_epoch(&info, &model, &best.1);
        if !val_nll.is_finite() {
            stop_reason = StopReason::NonFiniteLoss;
            break;
        }
        if since_best >= cfg.patience {
            stop_reason = StopReason::EarlyStopping;
            break;
        }
    }
    model.parts.weights = best.1;
    Ok(FitOutcome {
        model,
        best_val_nll: best.0,
        epochs: history.len(),
        seconds: start.elapsed().as_secs_f64(),
        history,
        stop: stop_reason,
        n_train: train_rows.len(),
        n_val,
    })
}
