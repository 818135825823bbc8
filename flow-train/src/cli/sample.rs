//! `flow-train sample`: draws from a model, optionally restricted to a box (posteriors inside
//! the prior).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use flow_core::flow::standard_normal;
use flow_core::runtime::flow_of;
use flow_train::io;
use flow_train::posterior::{self, Bounds};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::{load_table, CliResult};

/// Arguments of `flow-train sample`.
#[derive(clap::Args)]
pub struct SampleOptions {
    /// Model file.
    pub model: PathBuf,
    /// Number of samples (per context row with --context-file).
    #[arg(short = 'n', long, default_value_t = 1000)]
    pub n: usize,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output CSV.
    #[arg(short = 'o', long)]
    pub output: PathBuf,
    /// CSV of context rows (conditional models).
    #[arg(long)]
    pub context_file: Option<PathBuf>,
    #[arg(long, value_parser = super::parse_delimiter, help = super::DELIMITER_HELP)]
    pub delimiter: Option<flow_train::csv::Delimiter>,
    /// Keep only draws inside a box, drawing until -n per context row are inside: LOW,HIGH for
    /// every column, or LOW0,HIGH0,LOW1,HIGH1,… per column (inf allowed). Prints the acceptance rate.
    #[arg(
        long,
        value_name = "LOW,HIGH[,...]",
        allow_hyphen_values = true,
        conflicts_with = "bounds"
    )]
    pub within: Option<String>,
    /// As --within, with the box from a CSV with the header column,low,high (one row per column).
    #[arg(long, value_name = "CSV")]
    pub bounds: Option<PathBuf>,
    /// With --within or --bounds: stop with an error when a context row's acceptance rate is
    /// below this (checked after 1000 draws).
    #[arg(long, default_value_t = posterior::MIN_ACCEPTANCE)]
    pub min_acceptance: f64,
}

/// `flow-train sample`.
pub fn sample(o: &SampleOptions) -> CliResult {
    let (parts, meta) = io::read_model(&o.model).map_err(|e| e.to_string())?;
    let d = parts.desc.dim as usize;
    let c = parts.desc.context_dim as usize;
    let columns: Vec<String> = if meta.columns.len() == d {
        meta.columns.clone()
    } else {
        (0..d).map(|i| format!("x{i}")).collect()
    };
    let contexts: Vec<f64> = match (c, &o.context_file) {
        (0, None) => vec![],
        (0, Some(_)) => return Err("this model is unconditional: --context-file does not apply".into()),
        (_, None) => {
            return Err(format!(
                "this model is conditional on {c} values: give --context-file"
            ))
        }
        (_, Some(p)) => {
            let table = load_table(p, Some(&meta.context_columns), false, o.delimiter)?;
            table
                .select(&meta.context_columns, p)
                .map_err(|e| e.to_string())?
        }
    };
    let n_rows = contexts.len().checked_div(c).unwrap_or(1);
    let bounds = match (&o.within, &o.bounds) {
        (Some(spec), _) => Some(Bounds::parse(spec, d)),
        (None, Some(path)) => Some(Bounds::from_csv(path, &columns)),
        (None, None) => None,
    }
    .transpose()
    .map_err(|e| e.to_string())?;
    let w = parts.stored_weights();
    let flow = flow_of::<f64, f64>(&parts.desc, &w, &parts.ints);
    let xs = match &bounds {
        None => {
            // One stream in row order (the draws `sample_with` would make one at a time), then the
            // batch kernels in parallel over the context rows.
            let mut rng = ChaCha8Rng::seed_from_u64(o.seed);
            let eps: Vec<f64> = (0..n_rows * o.n * d).map(|_| standard_normal(&mut rng)).collect();
            let mut xs = vec![0.0; eps.len()];
            let rows = xs
                .par_chunks_mut((o.n * d).max(1))
                .zip(eps.par_chunks((o.n * d).max(1)));
            rows.enumerate().for_each(|(r, (x, e))| {
                let mut scratch = vec![0.0; flow.batch_scratch_len()];
                flow.sample_batch(e, ctx_row(&contexts, c, r), x, &mut scratch);
            });
            xs
        }
        Some(b) => {
            let drawn = posterior::sample_within(&flow, &contexts, b, o.n, o.seed, o.min_acceptance)
                .map_err(|e| e.to_string())?;
            if o.n > 0 {
                println!("acceptance_rate={:.4}", drawn.acceptance());
                if n_rows > 1 {
                    let (row, rate) = drawn.lowest();
                    println!("lowest_acceptance_rate={rate:.4} context_row={row}");
                }
            }
            drawn.samples
        }
    };
    write_samples(o, &meta.context_columns, columns, &contexts, c, &xs)?;
    println!("wrote {} samples to {}", o.n * n_rows, o.output.display());
    Ok(ExitCode::SUCCESS)
}

/// Context row `r` (empty for unconditional models).
fn ctx_row(contexts: &[f64], c: usize, r: usize) -> &[f64] {
    contexts.get(r * c..(r + 1) * c).unwrap_or(&[])
}

/// The samples as CSV: the context columns (repeated for each draw), then the modelled ones.
fn write_samples(
    o: &SampleOptions,
    context_columns: &[String],
    columns: Vec<String>,
    contexts: &[f64],
    c: usize,
    xs: &[f64],
) -> Result<(), String> {
    let d = columns.len();
    let mut cols: Vec<String> = if c > 0 { context_columns.to_vec() } else { vec![] };
    cols.extend(columns);
    let rows = xs.chunks_exact(d).enumerate().map(|(k, x)| {
        let mut r = ctx_row(contexts, c, k / o.n.max(1)).to_vec();
        r.extend_from_slice(x);
        r
    });
    flow_train::csv::write_csv(&o.output, &cols, rows)
        .map_err(|e| format!("{}: {e}", Path::display(&o.output)))
}
