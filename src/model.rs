//! The model file of an example's fit, the shipped copy that `--write-model` replaces, and the
//! checks that tie the baked shipped model to its file and to this run's fit (`anomaly`,
//! `conditional`).

use std::path::Path;

use flow_train::{ArchConfig, Dataset, FitConfig};

use crate::args::Args;
use crate::OUT;

/// The fit both examples run: 5 transforms of 64×64 (3 of 32×32 with `--smoke`), Adam at 2e-3,
/// batch 256, patience 10, and a fixed thread count so that a full run re-makes the shipped model
/// bit for bit on any machine. `epochs` is the default number of epochs (`--epochs` overrides).
pub fn example_fit_config(args: &Args, epochs: usize) -> FitConfig {
    FitConfig {
        arch: ArchConfig {
            flow: args.flow,
            transforms: if args.smoke { 3 } else { 5 },
            hidden: if args.smoke { vec![32, 32] } else { vec![64, 64] },
            ..Default::default()
        },
        epochs: args.epochs.unwrap_or(epochs),
        batch_size: 256,
        // The shipped models predate the defaults of batch 128, 32 batches per epoch and 5e-3.
        min_batches: 8,
        lr: 2e-3,
        seed: args.seed,
        patience: 10,
        threads: 2,
        ..FitConfig::default()
    }
}

/// Fits `data` with `cfg` and prints the run's summary line:
/// `fit: <flow> <transforms>×<hidden><what>, <epochs> epochs in <s> s, best validation NLL <nll>
/// nats (<why it stopped>)`.
pub fn fit_and_report(data: &Dataset, cfg: &FitConfig, what: &str) -> Result<flow_train::FitOutcome, String> {
    let out = flow_train::fit(data, cfg).map_err(|e| e.to_string())?;
    println!(
        "fit: {} {}×{:?}{what}, {} epochs in {:.1} s, best validation NLL {:.4} nats ({:?})",
        cfg.arch.flow.name(),
        cfg.arch.transforms,
        cfg.arch.hidden,
        out.epochs,
        out.seconds,
        out.best_val_nll,
        out.stop
    );
    Ok(out)
}

/// The folder of the shipped models (baked at compile time by `#[flow_macros::flow]`).
pub const MODELS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/models");

/// Writes the model fitted in this run, with its training record and golden vectors, to
/// `examples/out/{name}.flow`, checks that file's golden vectors in f32, and with `write_model`
/// also writes it over the shipped `examples/models/{name}.flow` (rebuild to bake it).
pub fn save_fitted(
    name: &str,
    data: &Dataset,
    cfg: &FitConfig,
    out: &flow_train::FitOutcome,
    write_model: bool,
) -> Result<(), String> {
    use flow_train::io::{Meta, TrainingRecord, META_FORMAT};
    let parts = &out.model.parts;
    let golden = flow_train::golden::golden_for(parts, data, cfg);
    let meta = Meta {
        format: META_FORMAT.into(),
        columns: data.columns.clone(),
        context_columns: data.context_columns.clone(),
        flow: cfg.arch.flow.name().into(),
        training: Some(TrainingRecord::of(cfg, out)),
        golden: Some(golden.clone()),
        ..Default::default()
    };
    let path = Path::new(OUT).join(format!("{name}.flow"));
    flow_train::io::write_model(&path, parts, &meta).map_err(|e| e.to_string())?;
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let err = flow_train::golden::check::<f32>(&bytes, &golden).map_err(|e| e.to_string())?;
    println!(
        "fitted model: {} ({} bytes), f32 golden-vector error {:.1e} (tolerance {:.0e})",
        path.display(),
        bytes.len(),
        err.max(),
        flow_train::golden::TOL_F32
    );
    if write_model {
        let shipped = Path::new(MODELS).join(format!("{name}.flow"));
        flow_train::io::write_model(&shipped, parts, &meta).map_err(|e| e.to_string())?;
        println!("wrote {} (rebuild to bake it)", shipped.display());
    }
    Ok(())
}

/// Checks the baked shipped model against the golden vectors stored in its file (the result of the
/// generated `golden_errors()`, and `GOLDEN_TOLERANCE`): an error when the baked code no longer
/// computes the density the file was made with.
pub fn check_baked_golden(name: &str, errors: [f64; 4], tolerance: f64) -> Result<(), String> {
    let worst = errors.iter().cloned().fold(0.0, f64::max);
    println!(
        "shipped model: examples/models/{name}.flow, baked; golden-vector error {worst:.1e} \
         (tolerance {tolerance:.0e})"
    );
    if worst <= tolerance {
        Ok(())
    } else {
        Err(format!(
            "the baked model misses its golden vectors ([log p, base point, log-det, sample] errors \
             [{}] > {tolerance:.0e}): the baked code does not compute the shipped model",
            errors.map(|e| format!("{e:.1e}")).join(", ")
        ))
    }
}

/// The fitted model of this run as a host evaluator: f64 arithmetic over its f32-rounded weights
/// (what its file stores), through flow-core's runtime composition.
pub struct Fitted {
    pub weights: Vec<f32>,
    pub parts: flow_core::model::builder::ModelParts,
}

impl Fitted {
    pub fn new(parts: &flow_core::model::builder::ModelParts) -> Self {
        Fitted {
            weights: parts.weights_f32(),
            parts: parts.clone(),
        }
    }

    /// log p(x | ctx) as a function of `(x, ctx)` (one scratch buffer, reused).
    pub fn log_prob_fn(&self) -> impl FnMut(&[f64], &[f64]) -> f64 + '_ {
        let p = &self.parts;
        let flow = flow_core::runtime::flow_of::<f64, f32>(&p.desc, &self.weights, &p.ints);
        let mut scratch = vec![0.0; flow.scratch_len()];
        move |x, c| flow.log_prob(x, c, &mut scratch)
    }
}

/// Prints how the fit of this run relates to the shipped model, from their log p on the same
/// points: the same model (largest difference within the f32 golden tolerance, relative to
/// 1 + |log p|: a full default run re-makes the shipped model) or another fit.
pub fn compare_with_shipped(fitted: &[f64], shipped: &[f64]) {
    let worst = fitted
        .iter()
        .zip(shipped)
        .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
        .fold(0.0, f64::max);
    let verdict = if worst <= flow_train::golden::TOL_F32 {
        "the same model (this run re-made the shipped one)"
    } else {
        "a different fit (smoke size, other options, seed or thread count, or changed kernels)"
    };
    println!(
        "this run's fit vs the shipped model on {} points: largest |log p difference| / (1 + |log p|) \
         = {worst:.1e}: {verdict}",
        fitted.len()
    );
}
