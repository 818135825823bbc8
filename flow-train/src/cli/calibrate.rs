//! `flow-train calibrate`: simulation-based calibration and expected coverage of a posterior
//! model on held-out simulations (see [`flow_train::calibrate`]).

use std::path::PathBuf;
use std::process::ExitCode;

use flow_core::runtime::flow_of;
use flow_train::calibrate::{self, Calibration};
use flow_train::io;

use super::{load_table, CliResult};

/// Arguments of `flow-train calibrate`.
#[derive(clap::Args)]
pub struct CalibrateOptions {
    /// Model file (a conditional flow q(θ | x)).
    pub model: PathBuf,
    /// Held-out simulations: the modelled columns (θ) and the context columns (x), by name.
    pub sims: PathBuf,
    /// Posterior samples per simulation (L).
    #[arg(long, default_value_t = calibrate::DEFAULT_SAMPLES)]
    pub samples: usize,
    /// Use only the first N simulations.
    #[arg(long)]
    pub n_sims: Option<usize>,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The figure: rank histograms and the coverage curve (PNG).
    #[arg(short = 'o', long, default_value = "calibration.png")]
    pub output: PathBuf,
    /// Drop rows with NaN, infinite or missing values.
    #[arg(long)]
    pub drop_invalid: bool,
    #[arg(long, value_parser = super::parse_delimiter, help = super::DELIMITER_HELP)]
    pub delimiter: Option<flow_train::csv::Delimiter>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `flow-train calibrate`: exit status 1 when a statistic exceeds the miscalibration bound.
pub fn calibrate(o: &CalibrateOptions) -> CliResult {
    let (parts, meta) = io::read_model(&o.model).map_err(|e| e.to_string())?;
    let (d, c) = (parts.desc.dim as usize, parts.desc.context_dim as usize);
    if o.samples == 0 {
        return Err("--samples must be at least 1".into());
    }
    if meta.columns.len() != d || meta.context_columns.len() != c {
        return Err(format!(
            "{}: the model does not name its columns; calibrate matches the simulations' columns by name",
            o.model.display()
        ));
    }
    let all: Vec<String> = meta
        .columns
        .iter()
        .chain(&meta.context_columns)
        .cloned()
        .collect();
    let table = load_table(&o.sims, Some(&all), o.drop_invalid, o.delimiter)?;
    let theta = table.select(&meta.columns, &o.sims).map_err(|e| e.to_string())?;
    let x = table
        .select(&meta.context_columns, &o.sims)
        .map_err(|e| e.to_string())?;
    let n = o.n_sims.unwrap_or(usize::MAX).min(theta.len() / d);
    if n == 0 {
        return Err(format!("{}: no simulations", o.sims.display()));
    }
    let w = parts.stored_weights();
    let flow = flow_of::<f64, f64>(&parts.desc, &w, &parts.ints);
    let cal = calibrate::calibrate(&flow, &theta[..n * d], &x[..n * c], o.samples, o.seed);
    flow_train::plot::write_calibration_png(&cal, &meta.columns, &o.output).map_err(|e| e.to_string())?;
    report(&cal, &meta.columns, o);
    Ok(if cal.is_calibrated() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn report(cal: &Calibration, names: &[String], o: &CalibrateOptions) {
    let ok = cal.is_calibrated();
    let (err, signed) = cal.coverage_error();
    let ks: Vec<f64> = (0..names.len()).map(|j| cal.rank_ks(j)).collect();
    if o.json {
        let v = serde_json::json!({
            "ok": ok, "simulations": cal.n(), "samples": cal.samples,
            "rank_ks": names.iter().zip(&ks).map(|(n, k)| (n.clone(), serde_json::json!(k))).collect::<serde_json::Map<_, _>>(),
            "coverage_error": err, "coverage_error_signed": signed, "bound": cal.bound(),
            "coverage": cal.coverage(), "figure": o.output.display().to_string(),
        });
        println!("{v}");
        return;
    }
    println!("simulations={} samples={}", cal.n(), cal.samples);
    let ks_line: Vec<String> = names
        .iter()
        .zip(&ks)
        .map(|(n, k)| format!("{n}={k:.4}"))
        .collect();
    println!("rank_ks {}", ks_line.join(" "));
    let kind = if signed > 0.0 {
        "under-confident"
    } else {
        "over-confident"
    };
    println!(
        "coverage_error={err:.4} ({kind} where largest) bound={:.4}",
        cal.bound()
    );
    println!("calibrate={}", if ok { "ok" } else { "FAILED" });
    println!("wrote {}", o.output.display());
}
