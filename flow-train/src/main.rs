//! The `flow-train` command line: a thin layer over the `flow_train` library.
//!
//! Output contract (scripts rely on these): `fit` ends with
//! `best_val_nll=<float> epochs=<int> seconds=<float>`, `eval` with `mean_log_prob=<float> n=<int>`.
//! Errors go to stderr with a non-zero exit status.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use flow_train::arch::FlowKind;
use flow_train::cli;
use flow_train::train::{Precision, Schedule};

#[derive(Parser)]
#[command(
    name = "flow-train",
    version,
    about = "Fit, evaluate, sample, import and verify normalizing flows"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a built-in 2-D data set as CSV (header `x0,x1`).
    Data {
        /// moons, circles, eight-gaussians, checkerboard, pinwheel or spirals.
        name: String,
        /// Number of rows.
        #[arg(long, default_value_t = 10_000)]
        n: usize,
        /// Random seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Output CSV.
        #[arg(short = 'o', long)]
        output: PathBuf,
    },
    /// Fit a flow to a CSV by maximum likelihood and write the model file.
    Fit {
        /// Training data (CSV with a header row).
        data: PathBuf,
        /// Output model file.
        #[arg(short = 'o', long)]
        output: PathBuf,
        /// Flow family.
        #[arg(long, value_enum, default_value = "maf")]
        flow: FlowKind,
        /// Number of transforms.
        #[arg(long)]
        transforms: Option<usize>,
        /// Hidden widths, e.g. 64,64.
        #[arg(long, value_delimiter = ',')]
        hidden: Option<Vec<usize>>,
        /// Spline bins.
        #[arg(long, default_value_t = 8)]
        bins: usize,
        /// Maximum epochs.
        #[arg(long, default_value_t = 100)]
        epochs: usize,
        /// Mini-batch size (smaller on small data sets, see --min-batches).
        #[arg(long, default_value_t = 256)]
        batch_size: usize,
        /// Cut every epoch into at least this many batches: with fewer than
        /// min-batches × batch-size training rows the batch shrinks to rows / min-batches
        /// (0 = off).
        #[arg(long, default_value_t = 8)]
        min_batches: usize,
        /// Adam learning rate (the peak of the schedule; cosine's mean rate is half of it).
        #[arg(long, default_value_t = 2e-3)]
        lr: f64,
        /// Decoupled weight decay (AdamW): each step multiplies every weight by 1 - lr × this
        /// (0 = off). Regularizes fits on small data sets (a few hundred rows or fewer).
        #[arg(long, default_value_t = 0.0)]
        weight_decay: f64,
        /// Random seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Fraction held out for validation.
        #[arg(long, default_value_t = 0.1)]
        val_fraction: f64,
        /// Epochs without improvement before stopping.
        #[arg(long, default_value_t = 20)]
        patience: usize,
        /// Columns to model (default: all but the context columns).
        #[arg(long, value_delimiter = ',')]
        columns: Option<Vec<String>>,
        /// Columns that are conditions (context), not modelled.
        #[arg(long, value_delimiter = ',')]
        context: Option<Vec<String>>,
        /// Worker threads (default: all cores).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Learning-rate schedule.
        #[arg(long, value_enum, default_value = "cosine")]
        schedule: Schedule,
        /// Arithmetic of the gradient kernels.
        #[arg(long, value_enum, default_value = "f32")]
        precision: Precision,
        /// Fixed maps applied to the data before the flow: log (positive data), logit (0..1),
        /// atanh (-1..1), inv-softplus (positive), comma-separated, in order.
        #[arg(long, value_delimiter = ',')]
        pre: Option<Vec<String>>,
        /// Drop rows with NaN, infinite or missing values (prints how many).
        #[arg(long)]
        drop_invalid: bool,
        /// Write the best model so far every this many epochs (0 = only at the end).
        #[arg(long, default_value_t = 10)]
        checkpoint_every: usize,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// log p of every row of a CSV.
    Eval {
        /// Model file.
        model: PathBuf,
        /// Data (columns matched by the names stored in the model).
        data: PathBuf,
        /// Write the input columns plus `log_prob` here.
        #[arg(short = 'o', long)]
        output: Option<PathBuf>,
        /// Drop rows with NaN, infinite or missing values.
        #[arg(long)]
        drop_invalid: bool,
    },
    /// Draw samples.
    Sample {
        /// Model file.
        model: PathBuf,
        /// Number of samples (per context row with --context-file).
        #[arg(short = 'n', long, default_value_t = 1000)]
        n: usize,
        /// Random seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Output CSV.
        #[arg(short = 'o', long)]
        output: PathBuf,
        /// CSV of context rows (conditional models).
        #[arg(long)]
        context_file: Option<PathBuf>,
    },
    /// Describe a model: layers, sizes, parameters, training record.
    Inspect {
        /// Model file.
        model: PathBuf,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Plot a model: density heat map with data (2-D), samples vs data, training curve.
    Plot {
        /// Model file.
        model: PathBuf,
        /// Data to draw on top (CSV; columns matched by name).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Output PNG.
        #[arg(short = 'o', long)]
        output: PathBuf,
    },
    /// Flash, RAM, stack and instructions of a model baked for a Cortex-M4F (qemu mps2-an386).
    Footprint {
        /// Model file.
        model: PathBuf,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// Take flow-core and flow-macros from this checkout of the repository (default: the
        /// copies compiled into this binary).
        #[arg(long)]
        repo: Option<PathBuf>,
        /// Where to build the firmware (default: <repo>/target/footprint/<model name> with
        /// --repo, else flow-train/footprint/<model name> in the user's cache folder).
        #[arg(long)]
        work_dir: Option<PathBuf>,
    },
    /// Import a flow trained with zuko, nflows or FlowJAX (flow-fixture/1 JSON).
    Import {
        /// The exported JSON.
        file: PathBuf,
        /// Output model file.
        #[arg(short = 'o', long)]
        output: PathBuf,
        /// How the file stores the weights: f32 (format version 1) or f64 (version 2). Default:
        /// f64 when the library's parameters were float64 (FlowJAX), f32 otherwise.
        #[arg(long, value_parser = ["f32", "f64"])]
        weights: Option<String>,
    },
    /// Re-evaluate the golden vectors stored in a model (f32 and f64) and report the errors.
    Verify {
        /// Model file.
        model: PathBuf,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Data {
            name,
            n,
            seed,
            output,
        } => cli::data(&name, n, seed, &output),
        Command::Fit {
            data,
            output,
            flow,
            transforms,
            hidden,
            bins,
            epochs,
            batch_size,
            min_batches,
            lr,
            weight_decay,
            seed,
            val_fraction,
            patience,
            columns,
            context,
            threads,
            schedule,
            precision,
            pre,
            drop_invalid,
            checkpoint_every,
            quiet,
        } => {
            let mut cfg = flow_train::FitConfig::default();
            cfg.arch.flow = flow;
            cfg.arch.transforms = transforms.unwrap_or(match flow {
                FlowKind::Planar | FlowKind::Radial => 16,
                _ => 5,
            });
            if let Some(h) = hidden {
                cfg.arch.hidden = h;
            }
            cfg.arch.bins = bins;
            cfg.epochs = epochs;
            cfg.batch_size = batch_size;
            cfg.min_batches = min_batches;
            cfg.lr = lr;
            cfg.weight_decay = weight_decay;
            cfg.seed = seed;
            cfg.val_fraction = val_fraction;
            cfg.patience = patience;
            cfg.threads = threads;
            cfg.schedule = schedule;
            cfg.precision = precision;
            for name in pre.unwrap_or_default() {
                use flow_core::layers::elementwise::ElementwiseKind as K;
                cfg.arch.pre.push(match name.as_str() {
                    "log" => K::Log,
                    "logit" => K::Logit,
                    "atanh" => K::Atanh,
                    "inv-softplus" => K::InvSoftplus,
                    other => {
                        eprintln!("error: unknown --pre map '{other}' (log, logit, atanh, inv-softplus)");
                        return ExitCode::from(2);
                    }
                });
            }
            let show = !quiet && std::io::stderr().is_terminal();
            let stop = Arc::new(AtomicBool::new(false));
            cli::install_ctrlc(stop.clone());
            cli::fit(&cli::FitArgs {
                data: &data,
                output: &output,
                cfg,
                columns,
                context,
                drop_invalid,
                checkpoint_every,
                progress: show,
                stop: &stop,
            })
        }
        Command::Eval {
            model,
            data,
            output,
            drop_invalid,
        } => cli::eval(&model, &data, output.as_deref(), drop_invalid),
        Command::Sample {
            model,
            n,
            seed,
            output,
            context_file,
        } => cli::sample(&model, n, seed, &output, context_file.as_deref()),
        Command::Inspect { model, json } => cli::inspect(&model, json),
        Command::Footprint {
            model,
            json,
            repo,
            work_dir,
        } => cli::footprint(&model, json, repo, work_dir),
        Command::Plot { model, data, output } => flow_train::plot::plot(&model, data.as_deref(), &output)
            .map(|_| {
                println!("wrote {}", output.display());
                ExitCode::SUCCESS
            }),
        Command::Verify { model, json } => cli::verify(&model, json),
        Command::Import {
            file,
            output,
            weights,
        } => {
            use flow_core::model::file::WeightType;
            let weights = weights.map(|w| {
                if w == "f64" {
                    WeightType::F64
                } else {
                    WeightType::F32
                }
            });
            flow_train::import::import_file(&file, &output, weights).map(|(parts, meta)| {
                println!(
                    "imported {} ({} layers, {} parameters, {} weights) to {}",
                    meta.flow,
                    parts.desc.layers.len(),
                    parts.weights.len(),
                    parts.weight_type,
                    output.display()
                );
                ExitCode::SUCCESS
            })
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
