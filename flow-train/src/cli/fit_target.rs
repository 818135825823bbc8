//! `flow-train fit-target`: reverse-KL fits to a built-in target density.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use flow_core::flow::standard_normal;
use flow_core::runtime::flow_of;
use flow_train::arch::Trainable;
use flow_train::golden::golden_for;
use flow_train::io::{self, Meta, TargetFitRecord, META_FORMAT};
use flow_train::reverse_kl::{self, StepInfo, TargetConfig};
use flow_train::target::{Banana, Funnel, Phi4, Target};
use flow_train::train::{Dataset, FitConfig, Precision, Schedule};
use flow_train::FlowKind;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{choice, CliResult};

/// The built-in targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TargetName {
    /// 2-D lattice φ⁴ theory (--lattice, --m2, --lambda), periodic, sites row-major.
    Phi4,
    /// Neal's funnel (--dim, --scale), normalized.
    Funnel,
    /// Twisted Gaussian x0 ~ N(0, 4), x1 | x0 ~ N(x0²/4, 1), normalized.
    Banana,
}

/// Arguments of `flow-train fit-target`.
#[derive(clap::Args)]
pub struct FitTargetOptions {
    /// The target density.
    #[arg(value_enum)]
    pub target: TargetName,
    /// Output model file.
    #[arg(short = 'o', long)]
    pub output: PathBuf,
    /// φ⁴: lattice side L (L × L sites).
    #[arg(long, default_value_t = 8)]
    pub lattice: usize,
    /// φ⁴: bare mass squared m².
    #[arg(long, default_value_t = -4.0, allow_negative_numbers = true)]
    pub m2: f64,
    /// φ⁴: quartic coupling λ.
    #[arg(long, default_value_t = 8.0, allow_negative_numbers = true)]
    pub lambda: f64,
    /// funnel: dimension (x0 is the log-variance).
    #[arg(long, default_value_t = 2)]
    pub dim: usize,
    /// funnel: standard deviation of x0.
    #[arg(long, default_value_t = 3.0)]
    pub scale: f64,
    /// Flow family.
    #[arg(long, default_value = TargetConfig::default().arch.flow.name(), value_parser = choice::<FlowKind>(FlowKind::ALL.map(|v| (v.name(), v.about()))))]
    pub flow: FlowKind,
    /// Number of transforms.
    #[arg(long, default_value_t = TargetConfig::default().arch.transforms)]
    pub transforms: usize,
    /// Hidden widths, e.g. 64,64.
    #[arg(long, value_delimiter = ',')]
    pub hidden: Option<Vec<usize>>,
    /// Spline bins.
    #[arg(long, default_value_t = TargetConfig::default().arch.bins)]
    pub bins: usize,
    /// Adam steps.
    #[arg(long, default_value_t = TargetConfig::default().steps)]
    pub steps: usize,
    /// Draws per step.
    #[arg(long, default_value_t = TargetConfig::default().batch_size)]
    pub batch_size: usize,
    /// Adam learning rate (the peak of the schedule).
    #[arg(long, default_value_t = TargetConfig::default().lr)]
    pub lr: f64,
    /// Learning-rate schedule (cosine or constant).
    #[arg(long, default_value = TargetConfig::default().schedule.name(), value_parser = choice::<Schedule>(Schedule::ALL.map(|v| (v.name(), v.about()))))]
    pub schedule: Schedule,
    /// Random seed.
    #[arg(long, default_value_t = TargetConfig::default().seed)]
    pub seed: u64,
    /// Worker threads (default: all cores).
    #[arg(long, default_value_t = TargetConfig::default().threads)]
    pub threads: usize,
    /// Arithmetic of the gradient kernels.
    #[arg(long, default_value = TargetConfig::default().precision.name(), value_parser = choice::<Precision>(Precision::ALL.map(|v| (v.name(), v.about()))))]
    pub precision: Precision,
    /// Draws of the final ESS and KL.
    #[arg(long, default_value_t = TargetConfig::default().eval_samples)]
    pub eval_samples: usize,
    /// Write the model so far every this many steps (0 = only at the end).
    #[arg(long, default_value_t = 500)]
    pub checkpoint_every: usize,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

impl FitTargetOptions {
    /// The target and its one-line description (stored in the model).
    pub fn target(&self) -> Result<(Box<dyn Target>, String), String> {
        Ok(match self.target {
            TargetName::Phi4 => {
                if self.lattice < 2 {
                    return Err("--lattice must be at least 2".into());
                }
                let t = Phi4 {
                    side: self.lattice,
                    m2: self.m2,
                    lambda: self.lambda,
                };
                let about = format!(
                    "phi4 lattice={} m2={} lambda={}",
                    self.lattice, self.m2, self.lambda
                );
                (Box::new(t), about)
            }
            TargetName::Funnel => {
                if self.dim < 2 || self.scale.is_nan() || self.scale <= 0.0 {
                    return Err("funnel needs --dim ≥ 2 and a positive --scale".into());
                }
                let t = Funnel {
                    dim: self.dim,
                    scale: self.scale,
                };
                (
                    Box::new(t),
                    format!("funnel dim={} scale={}", self.dim, self.scale),
                )
            }
            TargetName::Banana => (Box::new(Banana), "banana".into()),
        })
    }

    /// The library's configuration for these options.
    pub fn config(&self) -> TargetConfig {
        let mut cfg = TargetConfig::default();
        cfg.arch.flow = self.flow;
        cfg.arch.transforms = self.transforms;
        if let Some(h) = &self.hidden {
            cfg.arch.hidden = h.clone();
        }
        cfg.arch.bins = self.bins;
        if self.target == TargetName::Phi4 {
            cfg.arch.checkerboard = self.lattice;
        }
        cfg.steps = self.steps;
        cfg.batch_size = self.batch_size;
        cfg.lr = self.lr;
        cfg.schedule = self.schedule;
        cfg.seed = self.seed;
        cfg.threads = self.threads;
        cfg.eval_samples = self.eval_samples;
        cfg.precision = self.precision;
        cfg
    }
}

/// `flow-train fit-target`.
pub fn fit_target(o: &FitTargetOptions, progress: bool, stop: &AtomicBool) -> CliResult {
    let (target, about) = o.target()?;
    let cfg = o.config();
    let bar = progress.then(|| {
        let b = indicatif::ProgressBar::new(cfg.steps as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {msg}  [{elapsed}<{eta}]")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let meta_base = Meta {
        format: META_FORMAT.into(),
        columns: target.columns(),
        flow: cfg.arch.flow.name().into(),
        ..Default::default()
    };
    let mut checkpoint_error: Option<String> = None;
    let mut on_step = |info: &StepInfo, model: &Trainable| {
        if let Some(b) = &bar {
            b.set_position(info.step as u64);
            b.set_message(format!("loss {:.4}  ess {:.3}", info.loss, info.ess));
        }
        if o.checkpoint_every > 0 && info.step.is_multiple_of(o.checkpoint_every) {
            if let Err(e) = io::write_model(&o.output, &model.parts, &meta_base) {
                checkpoint_error = Some(e.to_string());
            }
        }
    };
    let out = reverse_kl::fit_target_with(&*target, &cfg, &mut on_step, stop).map_err(|e| e.to_string())?;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    if let Some(e) = checkpoint_error {
        return Err(format!("checkpoint failed: {e}"));
    }
    if out.interrupted {
        eprintln!("interrupted: wrote the model after {} steps", out.steps);
    }
    let parts = &out.model.parts;
    let meta = Meta {
        target_fit: Some(TargetFitRecord {
            target: about,
            config: cfg.clone(),
            steps: out.steps,
            seconds: out.seconds,
            ess: out.ess,
            kl: out.kl,
            history: out.history.clone(),
        }),
        golden: Some(golden_for(
            parts,
            &draws(&out.model, &meta_base.columns),
            &fit_config(&cfg),
        )),
        ..meta_base
    };
    io::write_model(&o.output, parts, &meta).map_err(|e| e.to_string())?;
    println!(
        "ess={} kl={} steps={} seconds={:.3}",
        out.ess, out.kl, out.steps, out.seconds
    );
    Ok(ExitCode::SUCCESS)
}

/// 1 000 draws of the fitted flow: the typical points its golden vectors probe.
fn draws(model: &Trainable, columns: &[String]) -> Dataset {
    let parts = &model.parts;
    let flow = flow_of::<f64, f64>(&parts.desc, &parts.weights, &parts.ints);
    let d = columns.len();
    let mut rng = ChaCha8Rng::seed_from_u64(0x901d);
    let eps: Vec<f64> = (0..1000 * d).map(|_| standard_normal(&mut rng)).collect();
    let mut x = vec![0.0; eps.len()];
    let mut scratch = vec![0.0; flow.batch_scratch_len()];
    flow.sample_batch(&eps, &[], &mut x, &mut scratch);
    Dataset {
        columns: columns.to_vec(),
        x,
        ..Default::default()
    }
}

/// The parts of a maximum-likelihood configuration the golden probes read (the architecture).
fn fit_config(cfg: &TargetConfig) -> FitConfig {
    FitConfig {
        arch: cfg.arch.clone(),
        ..FitConfig::default()
    }
}
