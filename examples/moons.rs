//! The whole path on the two-moons data: generate, fit (flow-train library), bake, evaluate,
//! sample, plot.
//!
//! `cargo run --release --example moons` fits a MAF on freshly generated moons, evaluates it and
//! the baked model shipped in `examples/models/moons.flow` on the same test set, samples from the
//! baked model, and writes `examples/out/moons.png` (density and samples next to the data, and the
//! training curve). `--write-model` also replaces the shipped model with the one just fitted (the
//! documented way to re-make it; rebuild to bake it). `--smoke`: a tiny fit for CI.

use flow_train::{datasets, fit, io, plot, ArchConfig, Dataset, FitConfig, FlowKind};

/// The shipped model, baked at compile time.
#[flow_macros::flow("examples/models/moons.flow")]
struct Moons;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let smoke = args.iter().any(|a| a == "--smoke");
    let write_model = args.iter().any(|a| a == "--write-model");
    let out_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/out");
    std::fs::create_dir_all(&out_dir).expect("create examples/out");

    // Data: the benchmark's moons (noise 0.05), 10 000 training and 5 000 test rows.
    let (n_train, n_test) = if smoke { (2000, 1000) } else { (10_000, 5000) };
    let train = datasets::generate("moons", n_train, 1).expect("moons");
    let test = datasets::generate("moons", n_test, 2).expect("moons");
    let cols = vec!["x0".to_string(), "x1".to_string()];
    let data = Dataset::from_rows(
        cols.clone(),
        &train.iter().map(|r| r.to_vec()).collect::<Vec<_>>(),
    );

    // Fit a MAF (5 × 64 × 64) with the library.
    let cfg = FitConfig {
        arch: ArchConfig {
            flow: FlowKind::Maf,
            ..ArchConfig::default()
        },
        epochs: if smoke { 2 } else { 60 },
        // The settings the shipped model was fitted with (the library's defaults then).
        lr: 1e-3,
        batch_size: 256,
        min_batches: 8,
        seed: 0,
        ..FitConfig::default()
    };
    let out = fit(&data, &cfg).expect("fit");
    println!(
        "fitted: best_val_nll={:.4} epochs={} seconds={:.1}",
        out.best_val_nll, out.epochs, out.seconds
    );
    let parts = out.model.parts.clone();
    let meta = io::Meta {
        format: io::META_FORMAT.into(),
        columns: cols.clone(),
        flow: "maf".into(),
        training: Some(io::TrainingRecord::of(&cfg, &out)),
        golden: Some(flow_train::golden::golden_for(&parts, &data, &cfg)),
        ..Default::default()
    };
    let fitted = out_dir.join("moons_fitted.flow");
    io::write_model(&fitted, &parts, &meta).expect("write model");
    if write_model {
        let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/models/moons.flow");
        io::write_model(&shipped, &parts, &meta).expect("write the shipped model");
        println!("wrote {} (rebuild to bake it)", shipped.display());
    }

    // Evaluate: the fitted model through the runtime path, the shipped one baked.
    let test_data = Dataset::from_rows(cols, &test.iter().map(|r| r.to_vec()).collect::<Vec<_>>());
    let fitted_nll = -flow_train::eval::log_probs(&parts, &test_data)
        .iter()
        .sum::<f64>()
        / n_test as f64;
    let xs: Vec<[f32; 2]> = test.iter().map(|r| [r[0] as f32, r[1] as f32]).collect();
    let mut lp = vec![0.0f32; xs.len()];
    Moons::log_prob_batch(&xs, &mut lp);
    let baked_nll = -lp.iter().map(|&v| v as f64).sum::<f64>() / n_test as f64;
    println!("test NLL: fitted now {fitted_nll:.4}, shipped baked model {baked_nll:.4} (nats; zuko's MAF: 0.36-0.40)");
    let eps = [[0.0f32, 0.0], [1.0, -0.5], [-1.2, 0.8]];
    for e in &eps {
        let x = Moons::sample(e);
        println!("baked sample from base noise {e:?}: [{:.4}, {:.4}]", x[0], x[1]);
    }
    let golden = Moons::golden_errors().iter().cloned().fold(0.0, f64::max);
    println!(
        "baked golden vectors: max error {golden:.2e} (tolerance {:.0e})",
        Moons::GOLDEN_TOLERANCE
    );
    assert!(
        golden <= Moons::GOLDEN_TOLERANCE,
        "the baked code misses the golden vectors of examples/models/moons.flow"
    );

    // Plot the fitted model with the training data on top.
    let data_csv = out_dir.join("moons_train.csv");
    flow_train::csv::write_csv(
        &data_csv,
        &["x0".into(), "x1".into()],
        train.iter().map(|r| r.to_vec()),
    )
    .expect("csv");
    let png = out_dir.join(if smoke { "moons_smoke.png" } else { "moons.png" });
    plot::plot(&fitted, Some(&data_csv), &png).expect("plot");
    let _ = std::fs::remove_file(&data_csv);
    println!("wrote {}", png.display());
    println!("test_nll_fitted={fitted_nll} test_nll_baked={baked_nll} n={n_test}");
}
