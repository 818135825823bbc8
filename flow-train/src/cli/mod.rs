//! The commands behind the `flow-train` binary: each reads its inputs, calls the `flow_train`
//! library and prints its results (the library itself neither parses arguments nor prints).

use std::path::{Path, PathBuf};

use clap::builder::{PossibleValue, TypedValueParser};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use flow_core::model::file::WeightType;

use flow_train::arch::BaseKind;
use flow_train::csv::Delimiter;
use flow_train::eval::log_probs;
use flow_train::golden::{self, golden_for};
use flow_train::io::{self, Meta, TrainingRecord, META_FORMAT};
use flow_train::train::{self, Dataset, FitConfig, Precision, Schedule};
use flow_train::{ArchConfig, FlowKind};

mod calibrate;
mod fit_target;
mod sample;
pub use calibrate::{calibrate, CalibrateOptions};
pub use fit_target::{fit_target, FitTargetOptions};
pub use sample::{sample, SampleOptions};

/// `--delimiter`'s parser: `,`, `;` or `tab` ([`Delimiter`]'s `FromStr`).
pub fn parse_delimiter(s: &str) -> Result<Delimiter, flow_train::error::UnknownName> {
    s.parse()
}

/// The help of every `--delimiter`.
pub const DELIMITER_HELP: &str =
    "CSV field delimiter: ',', ';' or 'tab' (default: detected from the header line)";

/// A command's outcome: an exit code, or a message for stderr.
pub type CliResult = Result<ExitCode, String>;

/// Reads a CSV (with the line/column errors of [`flow_train::csv`]) or a NumPy file
/// ([`flow_train::npy`]; `names` names a `.npy` array's columns), printing how many rows
/// `drop_invalid` dropped.
pub fn load_table(
    path: &Path,
    names: Option<&[String]>,
    drop_invalid: bool,
    delimiter: Option<Delimiter>,
) -> Result<flow_train::csv::Table, String> {
    let (table, report) =
        flow_train::csv::read_table(path, names, drop_invalid, delimiter).map_err(|e| e.to_string())?;
    if drop_invalid && report.dropped > 0 {
        println!("dropped_rows={}", report.dropped);
    }
    Ok(table)
}

/// `flow-train data`.
pub fn data(name: &str, n: usize, seed: u64, output: &Path) -> CliResult {
    let rows = flow_train::datasets::generate(name, n, seed).map_err(|e| e.to_string())?;
    let cols = vec!["x0".to_string(), "x1".to_string()];
    flow_train::csv::write_csv(output, &cols, rows.iter().map(|r| r.to_vec()))
        .map_err(|e| format!("{}: {e}", output.display()))?;
    println!("wrote {n} rows of {name} to {}", output.display());
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `flow-train fit`.
pub struct FitArgs<'a> {
    /// Training CSV.
    pub data: &'a Path,
    /// Output model.
    pub output: &'a Path,
    /// Training configuration.
    pub cfg: FitConfig,
    /// Modelled columns (default: all but the context).
    pub columns: Option<Vec<String>>,
    /// Context columns.
    pub context: Option<Vec<String>>,
    /// Drop invalid rows instead of failing.
    pub drop_invalid: bool,
    /// CSV delimiter (`None`: detected).
    pub delimiter: Option<Delimiter>,
    /// Checkpoint interval in epochs (0 = off).
    pub checkpoint_every: usize,
    /// Show a progress bar.
    pub progress: bool,
    /// Set by Ctrl-C.
    pub stop: &'a AtomicBool,
}

/// The options of `flow-train fit`; every default is the library's ([`FitConfig::default`],
/// [`ArchConfig::default`]).
#[derive(clap::Args)]
pub struct FitOptions {
    /// Training data (CSV with a header row).
    pub data: PathBuf,
    /// Output model file.
    #[arg(short = 'o', long)]
    pub output: PathBuf,
    /// Flow family.
    #[arg(long, default_value = ArchConfig::default().flow.name(), value_parser = choice::<FlowKind>(FlowKind::ALL.map(|v| (v.name(), v.about()))))]
    pub flow: FlowKind,
    /// Number of transforms.
    #[arg(long)]
    pub transforms: Option<usize>,
    /// Hidden widths, e.g. 64,64.
    #[arg(long, value_delimiter = ',')]
    pub hidden: Option<Vec<usize>>,
    /// Spline bins.
    #[arg(long, default_value_t = ArchConfig::default().bins)]
    pub bins: usize,
    /// Base distribution: standard (N(0, I)), diag (learned means and scales) or gmm:K (a
    /// mixture of K learned diagonal normals, e.g. gmm:4).
    #[arg(long, default_value_t = ArchConfig::default().base)]
    pub base: BaseKind,
    /// Maximum epochs.
    #[arg(long, default_value_t = FitConfig::default().epochs)]
    pub epochs: usize,
    /// Mini-batch size (smaller on small data sets, see --min-batches).
    #[arg(long, default_value_t = FitConfig::default().batch_size)]
    pub batch_size: usize,
    /// Cut every epoch into at least this many batches: with fewer than
    /// min-batches × batch-size training rows the batch shrinks to rows / min-batches
    /// (0 = off).
    #[arg(long, default_value_t = FitConfig::default().min_batches)]
    pub min_batches: usize,
    /// Adam learning rate (the peak of the schedule; cosine's mean rate is half of it).
    #[arg(long, default_value_t = FitConfig::default().lr)]
    pub lr: f64,
    /// Decoupled weight decay (AdamW): each step multiplies every weight by 1 - lr × this
    /// (0 = off). Regularizes fits on small data sets (a few hundred rows or fewer).
    #[arg(long, default_value_t = FitConfig::default().weight_decay)]
    pub weight_decay: f64,
    /// Random seed.
    #[arg(long, default_value_t = FitConfig::default().seed)]
    pub seed: u64,
    /// Fraction held out for validation.
    #[arg(long, default_value_t = FitConfig::default().val_fraction)]
    pub val_fraction: f64,
    /// Epochs without improvement before stopping.
    #[arg(long, default_value_t = FitConfig::default().patience)]
    pub patience: usize,
    /// Columns to model (default: all but the context columns).
    #[arg(long, value_delimiter = ',')]
    pub columns: Option<Vec<String>>,
    /// Columns that are conditions (context), not modelled.
    #[arg(long, value_delimiter = ',')]
    pub context: Option<Vec<String>>,
    /// Worker threads (default: all cores).
    #[arg(long, default_value_t = FitConfig::default().threads)]
    pub threads: usize,
    /// Learning-rate schedule.
    #[arg(long, default_value = FitConfig::default().schedule.name(), value_parser = choice::<Schedule>(Schedule::ALL.map(|v| (v.name(), v.about()))))]
    pub schedule: Schedule,
    /// Arithmetic of the gradient kernels.
    #[arg(long, default_value = FitConfig::default().precision.name(), value_parser = choice::<Precision>(Precision::ALL.map(|v| (v.name(), v.about()))))]
    pub precision: Precision,
    /// Fixed maps applied to the data before the flow: log (positive data), logit (0..1),
    /// atanh (-1..1), inv-softplus (positive), comma-separated, in order.
    #[arg(long, value_delimiter = ',')]
    pub pre: Option<Vec<String>>,
    /// Drop rows with NaN, infinite or missing values (prints how many).
    #[arg(long)]
    pub drop_invalid: bool,
    #[arg(long, value_parser = parse_delimiter, help = DELIMITER_HELP)]
    pub delimiter: Option<Delimiter>,
    /// Write the best model so far every this many epochs (0 = only at the end).
    #[arg(long, default_value_t = 10)]
    pub checkpoint_every: usize,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

impl FitOptions {
    /// The library's configuration for these options; an unknown `--pre` map is an error.
    pub fn config(&self) -> Result<FitConfig, String> {
        use flow_core::layers::elementwise::ElementwiseKind as K;
        let mut cfg = FitConfig::default();
        cfg.arch.flow = self.flow;
        cfg.arch.transforms = self.transforms.unwrap_or(self.flow.default_transforms());
        if let Some(h) = &self.hidden {
            cfg.arch.hidden = h.clone();
        }
        cfg.arch.bins = self.bins;
        cfg.arch.base = self.base;
        cfg.epochs = self.epochs;
        cfg.batch_size = self.batch_size;
        cfg.min_batches = self.min_batches;
        cfg.lr = self.lr;
        cfg.weight_decay = self.weight_decay;
        cfg.seed = self.seed;
        cfg.val_fraction = self.val_fraction;
        cfg.patience = self.patience;
        cfg.threads = self.threads;
        cfg.schedule = self.schedule;
        cfg.precision = self.precision;
        for name in self.pre.iter().flatten() {
            cfg.arch.pre.push(match name.as_str() {
                "log" => K::Log,
                "logit" => K::Logit,
                "atanh" => K::Atanh,
                "inv-softplus" => K::InvSoftplus,
                other => {
                    return Err(format!(
                        "unknown --pre map '{other}' (log, logit, atanh, inv-softplus)"
                    ))
                }
            });
        }
        Ok(cfg)
    }
}

/// A parser for one of the library's named choices (`FromStr`), with the names as clap's possible
/// values (shown by `--help`, checked before parsing).
pub(crate) fn choice<T>(
    values: impl IntoIterator<Item = (&'static str, &'static str)>,
) -> impl TypedValueParser<Value = T>
where
    T: std::str::FromStr + Clone + Send + Sync + 'static,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let values = values
        .into_iter()
        .map(|(name, about)| PossibleValue::new(name).help(about));
    clap::builder::PossibleValuesParser::new(values).try_map(|s| s.parse::<T>())
}

/// Stops training gracefully on Ctrl-C (the best model so far is written).
pub fn install_ctrlc(stop: Arc<AtomicBool>) {
    let _ = ctrlc::set_handler(move || {
        if stop.swap(true, Ordering::SeqCst) {
            std::process::exit(130); // a second Ctrl-C aborts
        }
        eprintln!("\ninterrupted: finishing the batch and writing the best model so far");
    });
}

/// Loads a dataset for fitting from a CSV.
pub fn load_dataset(
    path: &Path,
    columns: Option<Vec<String>>,
    context: Option<Vec<String>>,
    drop_invalid: bool,
    delimiter: Option<Delimiter>,
) -> Result<Dataset, String> {
    let table = load_table(path, None, drop_invalid, delimiter)?;
    let context = context.unwrap_or_default();
    let columns = columns.unwrap_or_else(|| {
        let all = table.columns.iter();
        all.filter(|h| !context.contains(h)).cloned().collect()
    });
    if columns.is_empty() {
        return Err(format!("{}: no columns to model", path.display()));
    }
    // All columns, in file order, without context (the usual case): the table's values are
    // the data, taken without a copy (peak memory one copy of the data).
    if context.is_empty() && columns == table.columns {
        return Ok(Dataset {
            x: table.values,
            ctx: Vec::new(),
            columns,
            context_columns: context,
        });
    }
    let pick = |names: &[String]| table.select(names, path).map_err(|e| e.to_string());
    Ok(Dataset {
        x: pick(&columns)?,
        ctx: pick(&context)?,
        columns,
        context_columns: context,
    })
}

/// `flow-train fit`.
pub fn fit(a: &FitArgs) -> CliResult {
    let data = load_dataset(
        a.data,
        a.columns.clone(),
        a.context.clone(),
        a.drop_invalid,
        a.delimiter,
    )?;
    let bar = if a.progress {
        let b = indicatif::ProgressBar::new(a.cfg.epochs as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} epochs  {msg}  [{elapsed}<{eta}]")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Some(b)
    } else {
        None
    };
    let meta_base = Meta {
        format: META_FORMAT.into(),
        columns: data.columns.clone(),
        context_columns: data.context_columns.clone(),
        flow: a.cfg.arch.flow.name().into(),
        ..Default::default()
    };
    let checkpoint_every = a.checkpoint_every;
    let output = a.output.to_path_buf();
    let mut checkpoint_error: Option<String> = None;
    let mut on_epoch = |info: &train::EpochInfo, model: &flow_train::arch::Trainable, best: &[f64]| {
        if let Some(b) = &bar {
            b.set_position(info.epoch as u64);
            b.set_message(format!(
                "train {:.4}  val {:.4}  best {:.4}",
                info.train_nll, info.val_nll, info.best_val_nll
            ));
        }
        if checkpoint_every > 0 && info.epoch.is_multiple_of(checkpoint_every) {
            let mut parts = model.parts.clone();
            parts.weights = best.to_vec();
            if let Err(e) = io::write_model(&output, &parts, &meta_base) {
                checkpoint_error = Some(e.to_string());
            }
        }
    };
    let out = train::fit_with(&data, &a.cfg, &mut on_epoch, a.stop).map_err(|e| e.to_string())?;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    if let Some(e) = checkpoint_error {
        return Err(format!("checkpoint failed: {e}"));
    }
    match out.stop {
        train::StopReason::NonFiniteLoss => {
            eprintln!("warning: the loss became NaN or infinite; stopped and kept the best weights so far")
        }
        train::StopReason::Interrupted => eprintln!("interrupted: wrote the best model so far"),
        _ => {}
    }
    let parts = out.model.parts.clone();
    let meta = Meta {
        training: Some(TrainingRecord::of(&a.cfg, &out)),
        golden: Some(golden_for(&parts, &data, &a.cfg)),
        ..meta_base
    };
    io::write_model(a.output, &parts, &meta).map_err(|e| e.to_string())?;
    println!(
        "best_val_nll={} epochs={} seconds={:.3}",
        out.best_val_nll, out.epochs, out.seconds
    );
    Ok(ExitCode::SUCCESS)
}

/// `flow-train eval`.
pub fn eval(
    model: &Path,
    data: &Path,
    output: Option<&Path>,
    drop_invalid: bool,
    delimiter: Option<Delimiter>,
) -> CliResult {
    let (parts, meta) = io::read_model(model).map_err(|e| e.to_string())?;
    let columns = if meta.columns.is_empty() {
        (0..parts.desc.dim).map(|i| format!("x{i}")).collect()
    } else {
        meta.columns.clone()
    };
    let all: Vec<String> = columns.iter().chain(&meta.context_columns).cloned().collect();
    let table = load_table(data, Some(&all), drop_invalid, delimiter)?;
    let pick = |names: &[String]| table.select(names, data).map_err(|e| e.to_string());
    let ds = Dataset {
        x: pick(&columns)?,
        ctx: pick(&meta.context_columns)?,
        columns,
        context_columns: meta.context_columns.clone(),
    };
    let header = &table.columns;
    let lps = log_probs(&parts, &ds);
    if let Some(out) = output.filter(|o| o.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy"))) {
        // The input columns, then log p, as one float64 array.
        let w = header.len() + 1;
        let mut rows = Vec::with_capacity(lps.len() * w);
        for (r, &lp) in table.rows().zip(&lps) {
            rows.extend_from_slice(r);
            rows.push(lp);
        }
        flow_train::npy::write_npy(out, w, &rows).map_err(|e| format!("{}: {e}", out.display()))?;
    } else if let Some(out) = output {
        let mut cols = header.clone();
        cols.push("log_prob".into());
        flow_train::csv::write_csv(
            out,
            &cols,
            table.rows().zip(&lps).map(|(r, &lp)| {
                let mut r = r.to_vec();
                r.push(lp);
                r
            }),
        )
        .map_err(|e| format!("{}: {e}", out.display()))?;
    }
    let mean = lps.iter().sum::<f64>() / lps.len().max(1) as f64;
    println!("mean_log_prob={mean} n={}", lps.len());
    Ok(ExitCode::SUCCESS)
}

/// `flow-train inspect`.
pub fn inspect(model: &Path, json: bool) -> CliResult {
    let (parts, meta) = io::read_model(model).map_err(|e| e.to_string())?;
    let n_weights = parts.weights.len();
    let weight_type = parts.weight_type;
    let weight_bytes = weight_type.size() * n_weights + 2 * parts.ints.len();
    if json {
        let v = serde_json::json!({
            "dim": parts.desc.dim,
            "context_dim": parts.desc.context_dim,
            "layers": parts.desc.layers,
            "base": parts.desc.base,
            "params": n_weights,
            "weight_type": weight_type.name(),
            "weight_bytes": weight_bytes,
            "meta": {
                "columns": meta.columns,
                "context_columns": meta.context_columns,
                "flow": meta.flow,
                "training": meta.training.as_ref().map(|t| serde_json::json!({
                    "best_val_nll": t.best_val_nll, "epochs": t.epochs, "seconds": t.seconds,
                    "stop": t.stop, "config": t.config, "n_train": t.n_train, "n_val": t.n_val })),
                "target_fit": meta.target_fit.as_ref().map(|t| serde_json::json!({
                    "target": t.target, "steps": t.steps, "seconds": t.seconds, "ess": t.ess,
                    "kl": t.kl, "config": t.config, "history": t.history })),
                "source": meta.source,
                "golden_points": meta.golden.as_ref().map(|g| g.points.len()),
            }
        });
        println!("{}", serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("model {}", model.display());
    println!(
        "  dimension {}  context {}",
        parts.desc.dim, parts.desc.context_dim
    );
    println!("  columns {}", meta.columns.join(","));
    if !meta.context_columns.is_empty() {
        println!("  context columns {}", meta.context_columns.join(","));
    }
    for (i, l) in parts.desc.layers.iter().enumerate() {
        println!("  layer {i}: {}", flow_train::describe::layer(l));
    }
    println!("  base: {:?}", parts.desc.base);
    println!("  parameters {n_weights} ({weight_type})  weight bytes {weight_bytes}");
    if let Some(t) = &meta.training {
        println!(
            "  trained: {} epochs, best_val_nll {:.5}, {:.1} s, stop {:?}, {} train / {} val rows",
            t.epochs, t.best_val_nll, t.seconds, t.stop, t.n_train, t.n_val
        );
    }
    if let Some(t) = &meta.target_fit {
        println!(
            "  fitted to {} by reverse KL: {} steps, ess {:.4}, kl {:.5}, {:.1} s",
            t.target, t.steps, t.ess, t.kl, t.seconds
        );
    }
    if let Some(s) = &meta.source {
        println!("  source: {s}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `flow-train verify`: exit 0 when the golden vectors agree within the documented tolerances,
/// 1 otherwise.
pub fn verify(model: &Path, json: bool) -> CliResult {
    let bytes = std::fs::read(model).map_err(|e| format!("{}: {e}", model.display()))?;
    let (parts, meta) = io::read_model(model).map_err(|e| e.to_string())?;
    // Only an f32 file can have rounded its source's parameters.
    let rounded = parts.weight_type == WeightType::F32
        && meta
            .source
            .as_ref()
            .and_then(|s| s.get("weights_rounded_to_f32"))
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
    let tol_source = if rounded {
        golden::TOL_SOURCE_ROUNDED
    } else {
        golden::TOL_SOURCE
    };
    let g = meta
        .golden
        .ok_or_else(|| format!("{}: the model carries no golden vectors", model.display()))?;
    let e64 = golden::check::<f64>(&bytes, &g).map_err(|e| e.to_string())?;
    let e32 = golden::check::<f32>(&bytes, &g).map_err(|e| e.to_string())?;
    // Imported models also carry the source library's own answers.
    let source = g.source_log_prob.as_ref().map(|lib| {
        let lp = g
            .log_prob
            .iter()
            .zip(lib)
            .map(|(a, b)| (a - b).abs() / b.abs().max(1.0))
            .fold(0.0, f64::max);
        let sample = match &g.source_sample {
            Some(xs) => g
                .sample
                .iter()
                .flatten()
                .zip(xs.iter().flatten())
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max),
            None => 0.0,
        };
        (lp, sample)
    });
    let source_ok = source.is_none_or(|(lp, s)| lp <= tol_source && s <= tol_source);
    let ok = e64.max() <= golden::TOL_F64 && e32.max() <= golden::TOL_F32 && source_ok;
    if json {
        let v = serde_json::json!({
            "ok": ok, "points": g.points.len(), "samples": g.noise.len(),
            "f64": e64, "f32": e32, "tol_f64": golden::TOL_F64, "tol_f32": golden::TOL_F32,
            "source_log_prob": source.map(|s| s.0), "source_sample": source.map(|s| s.1),
            "tol_source": tol_source, "weight_type": parts.weight_type.name(),
        });
        println!("{v}");
    } else {
        println!(
            "golden points {}  samples {}  weights {}",
            g.points.len(),
            g.noise.len(),
            parts.weight_type
        );
        for (name, e, tol) in [("f64", e64, golden::TOL_F64), ("f32", e32, golden::TOL_F32)] {
            println!(
                "{name}: log_prob {:.3e}  base {:.3e}  log_det {:.3e}  sample {:.3e}  (tolerance {tol:.0e})",
                e.log_prob, e.base, e.ldj, e.sample
            );
        }
        if let Some((lp, smp)) = source {
            println!(
                "source library (f64): log_prob {lp:.3e} (relative)  sample {smp:.3e}  (tolerance {tol_source:.0e}{})",
                if rounded { ", the library's f64 parameters were stored as f32" } else { "" }
            );
        }
        println!("verify={}", if ok { "ok" } else { "FAILED" });
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// `flow-train footprint`.
pub fn footprint(
    model: &Path,
    json: bool,
    repo: Option<std::path::PathBuf>,
    work_dir: Option<std::path::PathBuf>,
) -> CliResult {
    let (parts, _) = io::read_model(model).map_err(|e| e.to_string())?;
    let source = flow_train::footprint::CrateSource::new(repo);
    let work = work_dir.unwrap_or_else(|| flow_train::footprint::default_work_dir(&source, model));
    let fp = flow_train::footprint::measure(model, &parts, &source, &work).map_err(|e| e.to_string())?;
    if json {
        println!("{}", serde_json::to_string(&fp).map_err(|e| e.to_string())?);
    } else {
        print!("{}", flow_train::footprint::table(&fp));
    }
    Ok(ExitCode::SUCCESS)
}
