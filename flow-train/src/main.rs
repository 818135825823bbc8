//! The `flow-train` command line: a thin layer over the `flow_train` library.
//!
//! Output contract (scripts rely on these): `fit` ends with
//! `best_val_nll=<float> epochs=<int> seconds=<float>`, `fit-target` with
//! `ess=<float> kl=<float> steps=<int> seconds=<float>`, `eval` with `mean_log_prob=<float> n=<int>`.
//! Errors go to stderr with a non-zero exit status.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::{Parser, Subcommand};

mod cli;

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
    Fit(cli::FitOptions),
    /// Fit a flow to an unnormalized density by reverse KL (no data): phi4, funnel, banana.
    FitTarget(cli::FitTargetOptions),
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
        #[arg(long, value_parser = cli::parse_delimiter, help = cli::DELIMITER_HELP)]
        delimiter: Option<flow_train::csv::Delimiter>,
    },
    /// Draw samples (optionally only inside a box: posteriors within the prior).
    Sample(cli::SampleOptions),
    /// Simulation-based calibration and expected coverage of a posterior model on held-out
    /// simulations (exit status 1 beyond the miscalibration bound).
    Calibrate(cli::CalibrateOptions),
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
        Command::Fit(options) => match options.config() {
            Err(e) => Err(e),
            Ok(cfg) => {
                let show = !options.quiet && std::io::stderr().is_terminal();
                let stop = Arc::new(AtomicBool::new(false));
                cli::install_ctrlc(stop.clone());
                cli::fit(&cli::FitArgs {
                    data: &options.data,
                    output: &options.output,
                    cfg,
                    columns: options.columns,
                    context: options.context,
                    drop_invalid: options.drop_invalid,
                    delimiter: options.delimiter,
                    checkpoint_every: options.checkpoint_every,
                    progress: show,
                    stop: &stop,
                })
            }
        },
        Command::FitTarget(options) => {
            let show = !options.quiet && std::io::stderr().is_terminal();
            let stop = Arc::new(AtomicBool::new(false));
            cli::install_ctrlc(stop.clone());
            cli::fit_target(&options, show, &stop)
        }
        Command::Eval {
            model,
            data,
            output,
            drop_invalid,
            delimiter,
        } => cli::eval(&model, &data, output.as_deref(), drop_invalid, delimiter),
        Command::Sample(options) => cli::sample(&options),
        Command::Calibrate(options) => cli::calibrate(&options),
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
            })
            .map_err(|e| e.to_string()),
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
            flow_train::import::import_file(&file, &output, weights)
                .map(|(parts, meta)| {
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
                .map_err(|e| e.to_string())
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
