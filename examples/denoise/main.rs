//! # `denoise`: Wiener filter vs. flow MAP on a lognormal random field
//!
//! `cargo run --release --example denoise` (40–50 s on 2 cores; `--smoke`: about 3 s, for
//! CI). Prints what it measured, writes `examples/out/denoise.png` (truth / observed / Wiener /
//! flow MAP for three test fields), and ends with the line
//! `mse_wiener=<float> mse_flow=<float> fields=<int>`. Options for experiments (their picture goes
//! to the temporary directory, so the tracked one is only replaced by the documented run):
//! `--no-log --nsf --n N --log-sigma S --noise S --missing K --train N --fields N --epochs E
//! --transforms K --hidden 128,128 --map-iters N`. More in `examples/denoise/README.md`.
//!
//! ## Data
//!
//! A Gaussian field g on the periodic 8 × 8 grid with power spectrum P(k) ∝ |k|⁻³ (k in grid
//! units, components 0, ±1, ±2, ±3, 4). The zero mode gets the power of |k| = 1: with P(0) = 0
//! every field would sum to exactly zero in log space, a singular 63-dimensional distribution
//! that no flow over 64 coordinates has a density for. White noise → direct 2-D DFT (64 × 64
//! complex products, written out, no FFT) → × √P(k) → inverse DFT; the amplitude is normalized so
//! that every pixel has Var g = σ² = 1. The field is y = exp(g − σ²/2): positive, mean 1, pixel
//! std √(e^{σ²} − 1) = 1.31, skewed (median 0.61, rare peaks above 7) — non-Gaussian like the
//! late-time matter density. All randomness is `ChaCha8Rng` (training seed 1, test seed 2, fit
//! seed 7) with flow-core's Box–Muller normals, so every run prints the same numbers (up to the
//! fit's thread count).
//!
//! Observation of a test field: 16 of the 64 pixels (25 %, chosen uniformly per field) are
//! missing; the others are seen with white noise, d = y + n, σₙ = 0.25 (0.19 of the pixel std).
//!
//! ## The two reconstructions
//!
//! - **Wiener filter**: ŷ = μ + C Mᵀ (M C Mᵀ + σₙ² I)⁻¹ (d − M μ) with μ, C the empirical mean and
//!   covariance of the 24 000 training fields (a Cholesky solve per field, since masks differ).
//!   It is the best *linear* estimator; it knows nothing about positivity or skewness.
//! - **Flow MAP**: a MAF (3 affine transforms, one hidden layer of 128 ReLU units, zuko's
//!   defaults otherwise) fitted with `flow_train::fit` on the same 24 000 fields (10 % held out,
//!   20 epochs, batch 256, lr 2·10⁻³ cosine, all threads), with the fixed first layer
//!   `pre: [ElementwiseKind::Log]` followed by `fit`'s standardization (per-pixel mean and std of
//!   ln y; the base is N(0, I), the correlations between pixels are learned by the MAF). The model
//!   is serialized (`to_bytes`, f32 weights as in a file) and evaluated by the runtime
//!   `Evaluator<f64, _>` over those bytes; its `grad_log_prob` gives ∇_y log p_flow(y).
//!   The estimate maximizes log p(d | y) + log q(ln y), where log p(d | y) = −|M y − d|² / (2σₙ²)
//!   and q is the flow's density of the log field, log q(u) = log p_flow(eᵘ) + Σ u (the model's
//!   log p includes the Log layer's log-det −Σ ln y; adding Σ u back removes it). It is found in
//!   u = ln y (so y > 0 throughout) by L-BFGS (memory 8, Armijo backtracking, at most 300
//!   iterations, stop at relative change 10⁻¹⁰), starting from the Wiener estimate clipped at
//!   0.05; about 160 gradients per field. Starting from the truth instead changes the MSE by
//!   0.0003, so the optimizer finds the maximum, not a start-dependent point.
//!
//! Why the Log layer: ln y is exactly Gaussian, so after it the flow only has to learn a
//! 64-dimensional Gaussian (which an affine MAF represents), positivity is built in (the model
//! has no mass at y ≤ 0), and the non-Gaussianity of y is carried exactly by the Jacobian. Fitted
//! directly on y (`--no-log`, same budget) the flow must learn the skewed, bounded marginals and
//! their dependence from data: its density is 12.3 nats/field worse (KL to the truth, below) and
//! its MAP barely beats Wiener (0.189 vs 0.194).
//!
//! ## Why not the MAP of y's own density (what the issue literally asks, and why it loses)
//!
//! Maximizing log p(d | y) + log p_flow(y) with p_flow the density *of y* (the file's log p, Log
//! layer's Jacobian included) is printed as `flow MAP of y`. It loses badly, for two reasons the
//! example measures:
//!
//! 1. *The estimator, not the flow.* With the exact lognormal prior (known here in closed form:
//!    ln y ~ N(−σ²/2, C_g)) the MAP of y has MSE 0.297 against Wiener's 0.194, worse even on the
//!    observed pixels (0.105 vs 0.059, and worse than the raw data's 0.064). The density of y
//!    carries the factor 1/y, which drags the mode of a skewed posterior towards 0: for a
//!    lognormal conditional with log-variance s², the mode e^{m−s²} lies far below the mean
//!    e^{m+s²/2}, while the median e^m (the MAP of ln y) lies closer. The MAP of ln y with the
//!    exact prior has MSE 0.157: the parameterization of the MAP, not the prior, decides.
//! 2. *The flow's tails.* With the flow, the MAP of y does not even exist. The Jacobian term
//!    −Σ ln y grows without bound as pixels go to 0, and far outside the data the flow's density
//!    of ln y falls off much more slowly than the true Gaussian's (an affine MAF with ReLU
//!    conditioners is piecewise affine there, with scales up to 10³ under zuko's soft clip). The
//!    ascent runs off to y → 0 (85 of 200 fields have a pixel below 10⁻⁶, ln y reaching the −30
//!    guard) where log p_flow(y) ≈ +84 nats on average, above that of every test truth (at most
//!    35) for 106 of 200 fields; there the flow's log density of ln y is −173 nats, the exact one
//!    −869: a region the flow never saw and gets badly wrong. MSE ~ 10³. A MAP in a
//!    parameterization whose Jacobian rewards running away exploits exactly that. In ln y the
//!    prior term is bounded above and the MAP stays in the data region (log p_flow ≈ −15 at the
//!    MAP vs ≈ −25 at the truths; no pixel below 10⁻⁶).
//!
//! So `mse_flow` is the MAP of the log field, and the table prints all variants.
//!
//! ## Measured (documented run, 2 cores)
//!
//! | estimator | MSE all | observed | masked |
//! |---|---|---|---|
//! | data (μ where masked) | 0.399 | 0.064 | 1.406 |
//! | Wiener | 0.194 | 0.059 | 0.600 |
//! | **flow MAP of ln y** (`mse_flow`) | **0.163** | 0.041 | 0.530 |
//! | flow MAP of y | ~820 | 0.120 | ~3300 |
//! | exact-prior MAP of ln y | 0.157 | 0.041 | 0.507 |
//! | exact-prior MAP of y | 0.297 | 0.105 | 0.873 |
//!
//! Flow prior: mean log p over the 200 test truths −25.45 vs −24.78 for the exact density, so
//! KL(p ‖ p_flow) ≈ 0.66 nats per 64-pixel field; the remaining gap to the exact-prior MAP
//! (0.163 vs 0.157) is that. Fit: 20 epochs of 1.4–1.9 s; 200 × 4 MAPs: 8–10 s (a shared
//! 2-core machine). Last line:
//! `mse_wiener=0.194057 mse_flow=0.163460 fields=200`.

use std::path::PathBuf;
use std::time::Instant;

use flow_core::flow::standard_normal;
use flow_core::layers::elementwise::ElementwiseKind;
use flow_core::runtime::Evaluator;
use flow_train::{fit, ArchConfig, Dataset, FitConfig, FlowKind};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

mod estimate;
mod field;
mod linalg;
mod picture;

use estimate::*;
use field::*;
use linalg::*;
use picture::*;

/// Side of the periodic grid.
const SIDE: usize = 8;
/// Pixels per field.
const D: usize = SIDE * SIDE;

/// Everything the run depends on.
#[derive(Clone, Debug)]
struct Setup {
    spectral_index: f64,
    log_sigma: f64,
    noise_sigma: f64,
    missing: usize,
    n_train: usize,
    n_test: usize,
    epochs: usize,
    flow: FlowKind,
    transforms: usize,
    hidden: Vec<usize>,
    log_pre: bool,
    map_iters: usize,
    /// No options given: the documented run, whose picture goes to `examples/out/`.
    documented: bool,
}

impl Setup {
    fn from_args() -> Self {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let smoke = args.iter().any(|a| a == "--smoke");
        let mut s = Setup {
            spectral_index: 3.0,
            log_sigma: 1.0,
            noise_sigma: 0.25,
            missing: 16,
            n_train: if smoke { 4_000 } else { 24_000 },
            n_test: if smoke { 10 } else { 200 },
            epochs: if smoke { 8 } else { 20 },
            flow: FlowKind::Maf,
            transforms: 3,
            hidden: vec![128],
            log_pre: true,
            map_iters: 300,
            documented: args.is_empty(),
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut val = || it.next().map(String::as_str).unwrap_or("");
            match a.as_str() {
                "--smoke" => {}
                "--no-log" => s.log_pre = false,
                "--n" => s.spectral_index = val().parse().expect("--n"),
                "--log-sigma" => s.log_sigma = val().parse().expect("--log-sigma"),
                "--noise" => s.noise_sigma = val().parse().expect("--noise"),
                "--missing" => s.missing = val().parse().expect("--missing"),
                "--train" => s.n_train = val().parse().expect("--train"),
                "--fields" => s.n_test = val().parse().expect("--fields"),
                "--epochs" => s.epochs = val().parse().expect("--epochs"),
                "--transforms" => s.transforms = val().parse().expect("--transforms"),
                "--nsf" => s.flow = FlowKind::Nsf,
                "--hidden" => s.hidden = val().split(',').map(|h| h.parse().expect("--hidden")).collect(),
                "--map-iters" => s.map_iters = val().parse().expect("--map-iters"),
                other => panic!("unknown argument {other}"),
            }
        }
        s
    }
}

/// Scratch capacity of the runtime evaluator (checked against the model's need).
const SCRATCH: usize = 16_384;

/// The reconstructions compared, in the order of [`Recon::est`].
const ESTIMATORS: [&str; 6] = [
    "data (mean if masked)",
    "Wiener",
    "flow MAP of ln y",
    "flow MAP of y",
    "exact-prior MAP ln y",
    "exact-prior MAP of y",
];
const WIENER: usize = 1;
const FLOW: usize = 2;
const FLOW_Y: usize = 3;

/// Results for one test field.
struct Recon {
    est: [[f64; D]; ESTIMATORS.len()],
    /// Flow evaluations of the headline MAP.
    evals: usize,
    /// log p_flow(y) (density in y) at the truth and at the two flow MAPs.
    lp_truth: f64,
    lp_map: f64,
    lp_map_y: f64,
    /// Exact log p(y) at the truth.
    lp_exact: f64,
    /// The densities of ln y, log q(ln y) = log p(y) + Σ ln y, at the flow MAP of y: flow, exact.
    lq_map_y: (f64, f64),
}

fn reconstruct(
    case: &Case,
    s: &Setup,
    mu: &[f64],
    cov: &[f64],
    exact: &ExactPrior,
    ev: &mut Evaluator<'_, f64, SCRATCH>,
) -> Recon {
    let noise_var = s.noise_sigma * s.noise_sigma;
    let w = wiener(mu, cov, noise_var, case);
    let mut data = case.data;
    for i in 0..D {
        if !case.observed[i] {
            data[i] = mu[i];
        }
    }
    let mut flow_prior = |y: &[f64], g: &mut [f64]| ev.grad_log_prob(y, &[], g).expect("evaluate");
    let (flow, evals) = map_estimate(case, &w, noise_var, true, s.map_iters, &mut flow_prior);
    let (flow_y, _) = map_estimate(case, &w, noise_var, false, s.map_iters, &mut flow_prior);
    let mut exact_prior = |y: &[f64], g: &mut [f64]| exact.grad_log_prob(y, g);
    let (exact_u, _) = map_estimate(case, &w, noise_var, true, s.map_iters, &mut exact_prior);
    let (exact_y, _) = map_estimate(case, &w, noise_var, false, s.map_iters, &mut exact_prior);
    let mut g = [0.0; D];
    let lp_truth = flow_prior(&case.truth, &mut g);
    let lp_map = flow_prior(&flow, &mut g);
    let lp_map_y = flow_prior(&flow_y, &mut g);
    let sum_ln: f64 = flow_y.iter().map(|v| v.ln()).sum();
    let lq_map_y = (lp_map_y + sum_ln, exact_prior(&flow_y, &mut g) + sum_ln);
    Recon {
        est: [data, w, flow, flow_y, exact_u, exact_y],
        evals,
        lp_truth,
        lp_map,
        lp_map_y,
        lp_exact: exact.grad_log_prob(&case.truth, &mut g),
        lq_map_y,
    }
}

fn main() {
    let total = Instant::now();
    let s = Setup::from_args();
    let field = Field::new(s.spectral_index, s.log_sigma);
    let pixel_std = (s.log_sigma * s.log_sigma).exp_m1().sqrt();
    println!(
        "lognormal field {SIDE}x{SIDE} periodic: P(k) ~ |k|^-{}, sigma_ln = {} (pixel mean 1, std {:.3}); \
         noise sigma = {} ({:.2} std), {} of {D} pixels missing",
        s.spectral_index,
        s.log_sigma,
        pixel_std,
        s.noise_sigma,
        s.noise_sigma / pixel_std,
        s.missing
    );

    // Training fields, and their empirical mean and covariance (for the Wiener filter).
    let t0 = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let train: Vec<[f64; D]> = (0..s.n_train).map(|_| field.lognormal(&mut rng)).collect();
    let mut mu = vec![0.0; D];
    for f in &train {
        axpy(1.0, f, &mut mu);
    }
    mu.iter_mut().for_each(|m| *m /= s.n_train as f64);
    let mut cov = vec![0.0; D * D];
    for f in &train {
        for a in 0..D {
            let da = f[a] - mu[a];
            for b in 0..D {
                cov[a * D + b] += da * (f[b] - mu[b]);
            }
        }
    }
    cov.iter_mut().for_each(|c| *c /= (s.n_train - 1) as f64);
    println!(
        "generated {} training fields and their mean and covariance in {:.2} s",
        s.n_train,
        t0.elapsed().as_secs_f64()
    );

    // Fit the flow.
    let columns: Vec<String> = (0..D).map(|i| format!("y{}{}", i / SIDE, i % SIDE)).collect();
    let rows: Vec<Vec<f64>> = train.iter().map(|f| f.to_vec()).collect();
    let data = Dataset::from_rows(columns, &rows);
    let cfg = FitConfig {
        arch: ArchConfig {
            flow: s.flow,
            transforms: s.transforms,
            hidden: s.hidden.clone(),
            pre: if s.log_pre {
                vec![ElementwiseKind::Log]
            } else {
                Vec::new()
            },
            ..ArchConfig::default()
        },
        epochs: s.epochs,
        batch_size: 256,
        // The settings its figures were measured with (the library's defaults then).
        min_batches: 8,
        lr: 2e-3,
        seed: 7,
        patience: 10,
        threads: 0,
        ..FitConfig::default()
    };
    let out = fit(&data, &cfg).expect("fit");
    println!(
        "fit {} x{} hidden {:?} pre {:?}: {} epochs in {:.1} s ({:.2} s/epoch), best val NLL {:.3} nats/field ({:?})",
        s.flow.name(),
        s.transforms,
        s.hidden,
        cfg.arch.pre,
        out.epochs,
        out.seconds,
        out.seconds / out.epochs as f64,
        out.best_val_nll,
        out.stop
    );
    // The model as a file would hold it (f32 weights), evaluated by the runtime evaluator in f64.
    let bytes = out.model.parts.to_bytes("");
    let store = flow_train::golden::aligned(&bytes);
    let model_bytes = &flow_core::bytemuck::cast_slice::<u64, u8>(&store)[..bytes.len()];

    // Test fields, observed and reconstructed (in parallel, one evaluator per thread).
    let exact = ExactPrior::new(&field);
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let cases: Vec<Case> = (0..s.n_test).map(|_| make_case(&field, &s, &mut rng)).collect();
    let t1 = Instant::now();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = cases.len().div_ceil(threads).max(1);
    let recon: Vec<Recon> = std::thread::scope(|sc| {
        let handles: Vec<_> = cases
            .chunks(chunk)
            .map(|part| {
                let (mu, cov, exact, s) = (&mu, &cov, &exact, &s);
                sc.spawn(move || {
                    let mut ev = Evaluator::<f64, SCRATCH>::new(model_bytes).expect("model");
                    part.iter()
                        .map(|case| reconstruct(case, s, mu, cov, exact, &mut ev))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("worker"))
            .collect()
    });
    let nf = cases.len() as f64;
    let mut sse = [Sse::default(); ESTIMATORS.len()];
    for (c, r) in cases.iter().zip(&recon) {
        for (e, est) in sse.iter_mut().zip(&r.est) {
            e.add(c, est);
        }
    }
    let mean = |f: &dyn Fn(&Recon) -> f64| recon.iter().map(f).sum::<f64>() / nf;
    let max_truth_lp = recon.iter().map(|r| r.lp_truth).fold(f64::NEG_INFINITY, f64::max);
    println!(
        "reconstructed {} fields in {:.1} s (threads {threads}; {:.0} flow gradients per MAP)",
        cases.len(),
        t1.elapsed().as_secs_f64(),
        mean(&|r| r.evals as f64)
    );
    println!(
        "prior quality: mean log p(truth) flow {:.3}, exact {:.3} nats/field (KL estimate {:.3})",
        mean(&|r| r.lp_truth),
        mean(&|r| r.lp_exact),
        mean(&|r| r.lp_exact - r.lp_truth)
    );
    let escaped = |k: usize| {
        recon
            .iter()
            .filter(|r| r.est[k].iter().any(|&v| v < 1e-6))
            .count()
    };
    println!(
        "log p_flow(y) at the flow MAPs: of ln y {:.1}, of y {:.1} (mean; highest at any truth {:.1}); \
         MAPs of y above every truth: {} of {}; MAPs with a pixel < 1e-6: of ln y {}, of y {}",
        mean(&|r| r.lp_map),
        mean(&|r| r.lp_map_y),
        max_truth_lp,
        recon.iter().filter(|r| r.lp_map_y > max_truth_lp).count(),
        cases.len(),
        escaped(FLOW),
        escaped(FLOW_Y)
    );
    println!(
        "density of ln y at the flow MAPs of y: flow {:.1}, exact {:.1} nats (mean)",
        mean(&|r| r.lq_map_y.0),
        mean(&|r| r.lq_map_y.1)
    );
    println!("MSE vs truth            all       observed  masked");
    for (name, e) in ESTIMATORS.iter().zip(&sse) {
        println!(
            "  {name:<21} {:>9.5} {:>9.5} {:>9.5}",
            e.all(),
            e.observed(),
            e.masked()
        );
    }

    // Only the documented run replaces the tracked picture; smoke and experiment runs write to
    // the temporary directory.
    let path = if s.documented {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/out/denoise.png"))
    } else {
        std::env::temp_dir().join("denoise.png")
    };
    // Log colour scale over the central ±2.5σ of ln y.
    let (m, sd) = (-s.log_sigma * s.log_sigma / 2.0, s.log_sigma);
    let range = ((m - 2.5 * sd).exp(), (m + 2.5 * sd).exp());
    picture(&path, &cases, &recon, range).expect("write picture");
    println!("wrote {}", path.display());
    println!("total {:.1} s", total.elapsed().as_secs_f64());
    println!(
        "mse_wiener={:.6} mse_flow={:.6} fields={}",
        sse[WIENER].all(),
        sse[FLOW].all(),
        cases.len()
    );
}
