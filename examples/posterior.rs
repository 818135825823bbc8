//! Neural posterior estimation (NPE) end to end: simulate, fit p(θ | x) with `fit`'s defaults,
//! draw posterior samples inside the prior for observations, calibrate, and compare with the
//! posterior in closed form.
//!
//!     cargo run --release --example posterior             # full run (about a minute on 2 cores)
//!     cargo run --release --example posterior -- --smoke  # small, for CI
//!
//! Options: `--epochs N`, `--flow maf|nsf` (default maf), `--seed S`.
//!
//! # The simulator
//!
//! θ ∈ [−2, 2]² with a uniform (box) prior; the observation is x = A θ + b + σ ε ∈ ℝ³ with
//! A = [[30, −5], [0, 20], [10, 15]], b = (100, 0, −50), σ = 15, ε ~ N(0, I): the context spreads
//! over ±100 around offsets far from 0, in the raw units a user's simulator gives (the model's
//! context standardization takes care of that). A's columns are orthogonal, so the posterior is
//! a product of two truncated normals, known in closed form: θⱼ | x ~ N(θ̂ⱼ, σ² / |aⱼ|²)
//! restricted to [−2, 2], with θ̂ = (AᵀA)⁻¹ Aᵀ (x − b).
//!
//! # What it reports
//!
//! - for a few observations: the acceptance rate of `sample_within` (the share of the flow's
//!   draws inside the prior box), and KL(true posterior ‖ flow) in nats, for the flow as fitted
//!   and restricted to the box (`KL + log acceptance`), estimated on draws of the true posterior;
//! - simulation-based calibration on held-out simulations (`flow_train::calibrate`): the rank KS
//!   distance per parameter, the expected-coverage error and the bound `1.628 / √N`;
//! - pictures in `examples/out/`: `posterior.png` (each observation's true posterior density and
//!   the flow's draws inside the box) and `posterior_calibration.png` (the figure of
//!   `flow-train calibrate`). Smoke runs write `*_smoke.png`.

use std::f64::consts::PI;
use std::time::Instant;

use flow_core::flow::standard_normal;
use flow_core::runtime::flow_of;
use flow_train::posterior::{self, Bounds};
use flow_train::{calibrate, ArchConfig, Dataset, FitConfig, FlowKind};
use flows::args::*;
use flows::plotting::*;
use flows::OUT;
use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The prior box: θⱼ ∈ [−LIM, LIM].
const LIM: f64 = 2.0;
/// Columns of A (orthogonal).
const A: [[f64; 3]; 2] = [[30.0, 0.0, 10.0], [-5.0, 20.0, 15.0]];
/// Offset b.
const B: [f64; 3] = [100.0, 0.0, -50.0];
/// Noise standard deviation σ.
const SIGMA: f64 = 15.0;

/// x = A θ + b + σ ε.
fn simulate(rng: &mut ChaCha8Rng, theta: [f64; 2]) -> [f64; 3] {
    let mut x = B;
    for (i, xi) in x.iter_mut().enumerate() {
        *xi += A[0][i] * theta[0] + A[1][i] * theta[1] + SIGMA * standard_normal(rng);
    }
    x
}

fn prior(rng: &mut ChaCha8Rng) -> [f64; 2] {
    [rng.gen_range(-LIM..LIM), rng.gen_range(-LIM..LIM)]
}

/// The closed-form posterior: per parameter, the mean and standard deviation of the normal that
/// is truncated to [−LIM, LIM].
struct Truth {
    mean: [f64; 2],
    sd: [f64; 2],
}

impl Truth {
    fn new(x: &[f64; 3]) -> Self {
        let mut mean = [0.0; 2];
        let mut sd = [0.0; 2];
        for j in 0..2 {
            let norm2: f64 = A[j].iter().map(|a| a * a).sum();
            let dot: f64 = A[j]
                .iter()
                .zip(x.iter().zip(&B))
                .map(|(a, (x, b))| a * (x - b))
                .sum();
            mean[j] = dot / norm2;
            sd[j] = SIGMA / norm2.sqrt();
        }
        Truth { mean, sd }
    }

    /// log p(θ | x) (−∞ outside the box).
    fn log_prob(&self, theta: &[f64]) -> f64 {
        let mut lp = 0.0;
        for ((&t, &m), &s) in theta.iter().zip(&self.mean).zip(&self.sd) {
            if t.abs() > LIM {
                return f64::NEG_INFINITY;
            }
            let z = (t - m) / s;
            let mass = phi((LIM - m) / s) - phi((-LIM - m) / s);
            lp += -0.5 * z * z - (s * (2.0 * PI).sqrt()).ln() - mass.ln();
        }
        lp
    }

    /// A draw (rejection from the normal).
    fn sample(&self, rng: &mut ChaCha8Rng) -> [f64; 2] {
        let mut t = [0.0; 2];
        for ((tj, &m), &s) in t.iter_mut().zip(&self.mean).zip(&self.sd) {
            *tj = loop {
                let v = m + s * standard_normal(rng);
                if v.abs() <= LIM {
                    break v;
                }
            };
        }
        t
    }
}

/// The standard normal CDF.
fn phi(z: f64) -> f64 {
    0.5 * libm::erfc(-z / std::f64::consts::SQRT_2)
}

fn main() {
    flows::main_with(run);
}

fn run() -> Result<(), String> {
    let start = Instant::now();
    let args = parse_args(FlowKind::Maf)?;
    if args.write_model {
        return Err("--write-model: this example ships no model".into());
    }
    let (n_train, n_calib, n_truth) = if args.smoke {
        (3_000, 200, 2_000)
    } else {
        (20_000, 1_000, 20_000)
    };
    std::fs::create_dir_all(OUT).map_err(|e| format!("{OUT}: {e}"))?;
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);

    // Simulations (θ, x): θ from the prior, x from the simulator, in raw units.
    let mut data = Dataset {
        columns: vec!["theta0".into(), "theta1".into()],
        context_columns: vec!["x0".into(), "x1".into(), "x2".into()],
        ..Default::default()
    };
    for _ in 0..n_train {
        let t = prior(&mut rng);
        data.x.extend_from_slice(&t);
        data.ctx.extend_from_slice(&simulate(&mut rng, t));
    }
    let cfg = FitConfig {
        arch: ArchConfig {
            flow: args.flow,
            ..ArchConfig::default()
        },
        epochs: args.epochs.unwrap_or(if args.smoke { 10 } else { 60 }),
        seed: args.seed,
        threads: 2,
        ..FitConfig::default()
    };
    let out = flow_train::fit(&data, &cfg).map_err(|e| e.to_string())?;
    println!(
        "fit: {} simulations, {} {}x{:?} (defaults), {} epochs in {:.1} s, best validation NLL {:.4}",
        n_train,
        cfg.arch.flow.name(),
        cfg.arch.transforms,
        cfg.arch.hidden,
        out.epochs,
        out.seconds,
        out.best_val_nll
    );
    let parts = &out.model.parts;
    let flow = flow_of::<f64, f64>(&parts.desc, &parts.weights, &parts.ints);
    let mut scratch = vec![0.0; flow.scratch_len()];

    // Posteriors for a few observations: inside the prior box, against the truth.
    let bounds = Bounds::parse(&format!("{},{}", -LIM, LIM), 2).map_err(|e| e.to_string())?;
    let thetas = [[0.3, -0.6], [1.8, 1.7], [-1.9, 0.2]];
    let mut panels = Vec::new();
    let mut worst_kl: f64 = 0.0;
    for (k, t) in thetas.iter().enumerate() {
        let x = simulate(&mut rng, *t);
        let truth = Truth::new(&x);
        let drawn = posterior::sample_within(
            &flow,
            &x,
            &bounds,
            2_000,
            args.seed + k as u64,
            posterior::MIN_ACCEPTANCE,
        )
        .map_err(|e| e.to_string())?;
        let acceptance = drawn.acceptance();
        let mut kl = 0.0;
        for _ in 0..n_truth {
            let s = truth.sample(&mut rng);
            kl += truth.log_prob(&s) - flow.log_prob(&s, &x, &mut scratch);
        }
        kl /= n_truth as f64;
        let kl_within = kl + acceptance.ln();
        worst_kl = worst_kl.max(kl_within);
        println!(
            "observation {k} (theta* = ({:.1}, {:.1})): acceptance inside the prior {:.4}, KL(true || flow) {kl:.4} nats, within the prior {kl_within:.4}",
            t[0], t[1], acceptance
        );
        panels.push(Panel {
            truth,
            samples: drawn.samples,
            theta: *t,
        });
    }

    // Simulation-based calibration on held-out simulations.
    let (mut theta, mut xs) = (Vec::new(), Vec::new());
    for _ in 0..n_calib {
        let t = prior(&mut rng);
        theta.extend_from_slice(&t);
        xs.extend_from_slice(&simulate(&mut rng, t));
    }
    let cal = calibrate::calibrate(&flow, &theta, &xs, calibrate::DEFAULT_SAMPLES, args.seed);
    let (cov, _) = cal.coverage_error();
    println!(
        "calibration on {} held-out simulations ({} posterior samples each): rank KS {:.4} / {:.4}, coverage error {:.4}, bound {:.4}: {}",
        cal.n(),
        cal.samples,
        cal.rank_ks(0),
        cal.rank_ks(1),
        cov,
        cal.bound(),
        if cal.is_calibrated() { "calibrated" } else { "MISCALIBRATED" }
    );
    let tag = args.png_tag();
    let cal_png = format!("{OUT}/posterior_calibration{tag}.png");
    flow_train::plot::write_calibration_png(&cal, &data.columns, std::path::Path::new(&cal_png))
        .map_err(|e| e.to_string())?;
    let png = draw(&panels, &format!("posterior{tag}.png"))?;
    println!("pictures: {png}, {cal_png}");
    println!(
        "posterior: worst KL within the prior {worst_kl:.4} nats, calibration {} in {:.1} s",
        if cal.is_calibrated() { "ok" } else { "FAILED" },
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// What a panel shows: the true posterior, the flow's draws inside the box, the true θ*.
struct Panel {
    truth: Truth,
    samples: Vec<f64>,
    theta: [f64; 2],
}

/// One panel per observation: the true posterior density (viridis) and the flow's draws inside
/// the box (white dots), the true θ* as a ring.
fn draw(panels: &[Panel], name: &str) -> Result<String, String> {
    let mut cv = Canvas::new(PANEL * panels.len(), PANEL);
    for (
        k,
        Panel {
            truth,
            samples,
            theta: t,
        },
    ) in panels.iter().enumerate()
    {
        let ax = Axes::new((k * PANEL) as i64, 0, (-LIM, LIM), (-LIM, LIM));
        ax.heatmap(&mut cv, 160, &mut |a, b| truth.log_prob(&[a, b]).exp());
        for s in samples.chunks_exact(2).take(600) {
            ax.dot(&mut cv, s[0], s[1], 1, [255, 255, 255]);
        }
        ax.ring(&mut cv, t[0], t[1], 5, [255, 80, 80]);
        ax.draw(
            &mut cv,
            &format!("OBSERVATION {k}: TRUTH, FLOW DRAWS"),
            "THETA0",
            "THETA1",
        );
    }
    cv.save(name)
}
