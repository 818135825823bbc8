//! A conditional flow p(x | y) whose shape changes with y, and likelihood-based inference of y from
//! a handful of observations by a grid search over the flow's conditional log p.
//!
//!     cargo run --release --example conditional                  # full run (40–110 s on 2 shared cores)
//!     cargo run --release --example conditional -- --smoke       # tiny fit, for CI
//!     cargo run --release --example conditional -- --write-model # re-make examples/models/conditional.flow
//!
//! Options: `--epochs N`, `--flow maf|nsf` (default nsf), `--seed S`.
//!
//! # The shipped model and this run's fit
//!
//! Samples, densities and the inference use the model shipped in
//! `examples/models/conditional.flow`, baked into the example at compile time
//! (`#[flow_macros::flow]`: f32, no allocation, as on a device); the example first checks the
//! baked code against the golden vectors stored in that file and stops if they disagree. Every run
//! also fits a conditional flow with the library on freshly simulated pairs (the demo of
//! `flow_train::fit`), writes it to `examples/out/conditional.flow`, and reports how it relates to
//! the shipped model: data, seeds and the thread count (2) are fixed, so a full run with the
//! default options re-makes the shipped model (their log p agree to f32 rounding); `--smoke`,
//! other options or changed kernels give a different fit. The run's fit is scored next to the
//! shipped model (held-out KL, and the same inference: the `run's fit` line). `--write-model`
//! writes the run's fit over the shipped file (the documented way to re-make it); rebuild to bake
//! it.
//!
//! # The simulator
//!
//! `y ∈ [0, 1]` is a parameter; `x ∈ ℝ²` is what we observe. With `m = 0.2 + 1.6 y`,
//! `k = 0.6 (1 − 2y)`, `θ = (π/3) y`:
//!
//! - `u = ±m + 0.35 ε₁` (sign equally likely): one bump at y = 0, two well-separated bumps at y = 1;
//! - `v = k u² + 0.3 ε₂`: bent upwards for small y, straight at y = ½, bent downwards for large y;
//! - `x = R(θ) (u, v)`: the whole picture turns by up to 60°.
//!
//! The true density is known in closed form (the rotation has unit Jacobian), so the example can
//! compare the flow with the truth: the held-out KL divergence, and the inference below done once
//! with the flow and once with the exact likelihood.
//!
//! # Inference (a small likelihood-free-inference demo)
//!
//! The flow is fitted on simulated pairs (y ~ U[0, 1], x ~ p(x | y)) only; it never sees the
//! formula. For a true y*, draw 20 observations x₁…x₂₀ ~ p(x | y*), evaluate
//! `L(y) = Σᵢ log p(xᵢ | y)` on a grid of 201 values of y in [0, 1], and report the maximizer and the
//! posterior standard deviation under a flat prior (`p(y | x) ∝ exp L(y)` normalized on the grid).
//! Pictures: `examples/out/conditional_*.png` (the baked model's samples and densities for five y
//! next to the simulator's; estimates against the truth and posterior curves).
//!
//! # What to expect
//!
//! Full run (seed 1, NSF 5×[64, 64], 30 000 pairs; the shipped model, and this run's fit, which is
//! the same model up to f32 rounding): held-out KL(true ‖ flow) ≈ 0.012 nats; over
//! 27 cases (y* = 0.1 … 0.9, three draws each) the flow's estimates are off by 0.022 on average,
//! the exact likelihood's by 0.020, with posterior widths of 0.028 against 0.028: the flow's
//! posterior is as good as the true one, and y* lies within 2 sd in 26 of 27 cases (the exact
//! likelihood: 27). Small y is the hardest: the two bumps overlap.
//! `--smoke` (3 cases) fits a small flow (3×[32, 32], 15 epochs, KL ≈ 0.3) next to the shipped one.

use std::f64::consts::PI;
use std::time::Instant;

use flow_core::flow::standard_normal;
use flow_train::{Dataset, FlowKind};
use flows::args::*;
use flows::model::*;
use flows::plotting::*;
use flows::OUT;
use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const SIGMA_U: f64 = 0.35;
const SIGMA_V: f64 = 0.3;
/// Observations per inference.
const N_OBS: usize = 20;
/// Grid of y values searched.
const GRID: usize = 201;

// ---------------------------------------------------------------------------------------------
// The simulator and its exact density
// ---------------------------------------------------------------------------------------------

struct Shape {
    m: f64,
    k: f64,
    cos: f64,
    sin: f64,
}

fn shape(y: f64) -> Shape {
    let th = PI / 3.0 * y;
    Shape {
        m: 0.2 + 1.6 * y,
        k: 0.6 * (1.0 - 2.0 * y),
        cos: th.cos(),
        sin: th.sin(),
    }
}

fn simulate(rng: &mut ChaCha8Rng, y: f64) -> [f64; 2] {
    let s = shape(y);
    let sign = if rng.gen_bool(0.5) { 1.0 } else { -1.0 };
    let u = sign * s.m + SIGMA_U * standard_normal(rng);
    let v = s.k * u * u + SIGMA_V * standard_normal(rng);
    [s.cos * u - s.sin * v, s.sin * u + s.cos * v]
}

fn log_normal(x: f64, mean: f64, sd: f64) -> f64 {
    let z = (x - mean) / sd;
    -0.5 * z * z - sd.ln() - 0.5 * (2.0 * PI).ln()
}

/// The exact log p(x | y).
fn true_log_prob(x: &[f64; 2], y: f64) -> f64 {
    let s = shape(y);
    let u = s.cos * x[0] + s.sin * x[1];
    let v = -s.sin * x[0] + s.cos * x[1];
    let (a, b) = (log_normal(u, s.m, SIGMA_U), log_normal(u, -s.m, SIGMA_U));
    let hi = a.max(b);
    let log_mix = hi + ((a - hi).exp() + (b - hi).exp()).ln() + 0.5f64.ln();
    log_mix + log_normal(v, s.k * u * u, SIGMA_V)
}

// ---------------------------------------------------------------------------------------------
// The flow as a device evaluates it
// ---------------------------------------------------------------------------------------------

/// The shipped model (`examples/models/conditional.flow`), baked at compile time: f32, no
/// allocation, as a device evaluates it. `--write-model` re-makes the file; rebuild to bake it.
#[flow_macros::flow("examples/models/conditional.flow")]
struct Conditional;

/// The baked model's conditional log p(x | y) in f64 terms.
fn baked_log_prob(x: &[f64; 2], y: f64) -> f64 {
    Conditional::log_prob(&[x[0] as f32, x[1] as f32], &[y as f32]) as f64
}

/// A sample of the baked model given y.
fn baked_sample(rng: &mut ChaCha8Rng, y: f64) -> [f64; 2] {
    Conditional::sample_with(rng, &[y as f32]).map(|v| v as f64)
}

// ---------------------------------------------------------------------------------------------
// Inference by grid search
// ---------------------------------------------------------------------------------------------

fn y_grid() -> Vec<f64> {
    (0..GRID).map(|i| i as f64 / (GRID - 1) as f64).collect()
}

/// The result of one grid search.
struct Posterior {
    /// `L(y)` on the grid.
    log_lik: Vec<f64>,
    /// argmax of `L`.
    map: f64,
    /// Posterior mean and standard deviation (flat prior on [0, 1]).
    mean: f64,
    sd: f64,
}

fn grid_search(log_lik: Vec<f64>) -> Posterior {
    let ys = y_grid();
    let best = (0..GRID)
        .max_by(|&a, &b| log_lik[a].total_cmp(&log_lik[b]))
        .unwrap_or(0);
    let w: Vec<f64> = log_lik.iter().map(|l| (l - log_lik[best]).exp()).collect();
    let total: f64 = w.iter().sum();
    let mean = ys.iter().zip(&w).map(|(y, w)| y * w).sum::<f64>() / total;
    let var = ys
        .iter()
        .zip(&w)
        .map(|(y, w)| (y - mean).powi(2) * w)
        .sum::<f64>()
        / total;
    Posterior {
        log_lik,
        map: ys[best],
        mean,
        sd: var.sqrt(),
    }
}

/// One inference case: the true y* and the searches with the shipped baked model, this run's fit
/// and the exact likelihood.
struct Case {
    y_true: f64,
    flow: Posterior,
    fitted: Posterior,
    exact: Posterior,
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------

fn main() {
    flows::main_with(run);
}

fn run() -> Result<(), String> {
    let start = Instant::now();
    let args = parse_args(FlowKind::Nsf)?;
    let (n_train, n_test, y_stars, reps) = if args.smoke {
        (3_000, 2_000, vec![0.2, 0.5, 0.8], 1)
    } else {
        (
            30_000,
            10_000,
            (1..=9).map(|k| k as f64 / 10.0).collect::<Vec<_>>(),
            3,
        )
    };
    std::fs::create_dir_all(OUT).map_err(|e| format!("{OUT}: {e}"))?;
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);

    // Simulated training pairs: y uniform, x from the simulator.
    let mut data = Dataset {
        columns: vec!["x0".into(), "x1".into()],
        context_columns: vec!["y".into()],
        ..Default::default()
    };
    for _ in 0..n_train {
        let y = rng.gen::<f64>();
        data.x.extend_from_slice(&simulate(&mut rng, y));
        data.ctx.push(y);
    }
    println!("data: {n_train} simulated pairs (y ~ U[0,1], x ~ p(x|y) in R^2)");
    let cfg = example_fit_config(&args, if args.smoke { 15 } else { 40 });
    let out = fit_and_report(&data, &cfg, " with context y")?;
    save_fitted("conditional", &data, &cfg, &out, args.write_model)?;
    check_baked_golden(
        "conditional",
        Conditional::golden_errors(),
        Conditional::GOLDEN_TOLERANCE,
    )?;
    let fitted = Fitted::new(&out.model.parts);
    let mut fitted_lp = fitted.log_prob_fn();

    // Held-out fit quality: E[log p_true − log p_flow] estimates KL(p_true(x|y) ‖ p_flow(x|y)).
    let pairs: Vec<([f64; 2], f64)> = (0..n_test)
        .map(|_| {
            let y = rng.gen::<f64>();
            (simulate(&mut rng, y), y)
        })
        .collect();
    let lp_baked: Vec<f64> = pairs.iter().map(|(x, y)| baked_log_prob(x, *y)).collect();
    let lp_fitted: Vec<f64> = pairs.iter().map(|(x, y)| fitted_lp(x, &[*y])).collect();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let lp_true = mean(
        &pairs
            .iter()
            .map(|(x, y)| true_log_prob(x, *y))
            .collect::<Vec<_>>(),
    );
    let (lp_flow, lp_fit) = (mean(&lp_baked), mean(&lp_fitted));
    compare_with_shipped(&lp_fitted, &lp_baked);
    println!(
        "held-out mean log p(x|y) over {n_test} pairs: flow {lp_flow:.4} (run's fit {lp_fit:.4}), \
         exact {lp_true:.4}; KL(true||flow) ~ {:.4} nats (run's fit {:.4})",
        lp_true - lp_flow,
        lp_true - lp_fit
    );

    // Inference of y by grid search.
    let ys = y_grid();
    let mut baked_seconds = 0.0;
    let mut cases = Vec::new();
    for &y_true in &y_stars {
        for _ in 0..reps {
            let obs: Vec<[f64; 2]> = (0..N_OBS).map(|_| simulate(&mut rng, y_true)).collect();
            let sum = |f: &mut dyn FnMut(&[f64; 2], f64) -> f64| -> Vec<f64> {
                ys.iter().map(|&y| obs.iter().map(|x| f(x, y)).sum()).collect()
            };
            let t = Instant::now();
            let flow = grid_search(sum(&mut baked_log_prob));
            baked_seconds += t.elapsed().as_secs_f64();
            cases.push(Case {
                y_true,
                flow,
                fitted: grid_search(sum(&mut |x, y| fitted_lp(x, &[y]))),
                exact: grid_search(sum(&mut |x, y| true_log_prob(x, y))),
            });
        }
    }
    let inference_ms = baked_seconds * 1e3 / cases.len() as f64;
    println!(
        "inference: {N_OBS} observations per case, grid of {GRID} values of y in [0,1], flat prior; \
         flow: the shipped model, baked; 'exact' uses the true likelihood"
    );
    println!("   y*    flow y_hat   post.sd  |err|    exact y_hat  post.sd  |err|");
    for c in &cases {
        println!(
            "{:>6.2}  {:>10.3}  {:>8.3}  {:>5.3}  {:>12.3}  {:>7.3}  {:>5.3}",
            c.y_true,
            c.flow.map,
            c.flow.sd,
            (c.flow.map - c.y_true).abs(),
            c.exact.map,
            c.exact.sd,
            (c.exact.map - c.y_true).abs()
        );
    }
    // Summaries for the flow's and the exact likelihood's searches.
    let n = cases.len() as f64;
    let summary = |pick: fn(&Case) -> &Posterior| {
        let mae = cases.iter().map(|c| (pick(c).map - c.y_true).abs()).sum::<f64>() / n;
        let sd = cases.iter().map(|c| pick(c).sd).sum::<f64>() / n;
        let covered = cases
            .iter()
            .filter(|c| (pick(c).mean - c.y_true).abs() <= 2.0 * pick(c).sd)
            .count();
        (mae, sd, covered)
    };
    let flow_summary = summary(|c| &c.flow);
    for (name, (mae, sd, covered)) in [
        ("flow", flow_summary),
        ("exact", summary(|c| &c.exact)),
        ("run's fit", summary(|c| &c.fitted)),
    ] {
        println!(
            "{:<10} mean |y_hat - y*| = {mae:.4}, mean posterior sd = {sd:.4}, \
             y* within 2 sd of the posterior mean in {covered}/{} cases",
            format!("{name}:"),
            cases.len()
        );
    }
    println!(
        "grid search: {inference_ms:.1} ms per case ({} baked flow evaluations, f32, 1 core)",
        GRID * N_OBS
    );

    for p in draw(args.png_tag(), &mut rng, &cases)? {
        println!("wrote {p}");
    }
    println!("total {:.1} s", start.elapsed().as_secs_f64());
    println!("mean_abs_error_y={:.4} n={}", flow_summary.0, cases.len());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Pictures
// ---------------------------------------------------------------------------------------------

const GREY: Rgb = [175, 175, 175];
const FLOW_COLOUR: Rgb = [31, 119, 180];
const Y_COLOURS: [Rgb; 5] = [
    [68, 1, 84],
    [59, 82, 139],
    [33, 145, 140],
    [94, 201, 98],
    [220, 190, 20],
];
const SHOW_Y: [f64; 5] = [0.0, 0.25, 0.5, 0.75, 1.0];
const N_SHOW: usize = 1500;
/// Density grid cells per axis (each cell is PLOT / HEAT pixels wide).
const HEAT: i64 = 160;

/// Draws the pictures into `examples/out/conditional_*{tag}.png`.
fn draw(tag: &str, rng: &mut ChaCha8Rng, cases: &[Case]) -> Result<Vec<String>, String> {
    let mut written = Vec::new();
    // One square window for all panels: the simulator's central 99.6 % over the shown y, padded.
    let sims: Vec<Vec<[f64; 2]>> = SHOW_Y
        .iter()
        .map(|&y| (0..N_SHOW).map(|_| simulate(rng, y)).collect())
        .collect();
    let window = |j: usize| {
        let v: Vec<f64> = sims.iter().flatten().map(|x| x[j]).collect();
        (percentile(&v, 0.002), percentile(&v, 0.998))
    };
    let ((a0, b0), (a1, b1)) = (window(0), window(1));
    let half = 0.55 * (b0 - a0).max(b1 - a1);
    let (c0, c1) = (0.5 * (a0 + b0), 0.5 * (a1 + b1));
    let (xr, yr) = ((c0 - half, c0 + half), (c1 - half, c1 + half));

    // 1. Samples (top), the flow's density (middle) and the exact density (bottom) for five y.
    let rows = 3;
    let mut cv = Canvas::new(SHOW_Y.len() * PANEL, rows * PANEL + 24);
    cv.legend(
        10,
        6,
        &[
            (GREY, "simulator samples"),
            (FLOW_COLOUR, "flow samples (baked, f32)"),
        ],
    );
    cv.text(
        420,
        6,
        "middle: flow density p(x|y), bottom: exact density (viridis, scaled per panel)",
        TEXT,
    );
    for (p, &y) in SHOW_Y.iter().enumerate() {
        let px = (p * PANEL) as i64;
        let ax = Axes::new(px, 24, xr, yr);
        ax.draw(&mut cv, &format!("samples, y = {y:.2}"), "x0", "x1");
        for x in &sims[p] {
            ax.dot(&mut cv, x[0], x[1], 1, GREY);
        }
        for _ in 0..N_SHOW {
            let x = baked_sample(rng, y);
            ax.dot(&mut cv, x[0], x[1], 0, FLOW_COLOUR);
        }
        let ax = Axes::new(px, 24 + PANEL as i64, xr, yr);
        ax.draw(&mut cv, &format!("flow p(x|y), y = {y:.2}"), "x0", "x1");
        ax.heatmap(&mut cv, HEAT, &mut |x0, x1| baked_log_prob(&[x0, x1], y).exp());
        let ax = Axes::new(px, 24 + 2 * PANEL as i64, xr, yr);
        ax.draw(&mut cv, &format!("exact p(x|y), y = {y:.2}"), "x0", "x1");
        ax.heatmap(&mut cv, HEAT, &mut |x0, x1| true_log_prob(&[x0, x1], y).exp());
    }
    written.push(cv.save(&format!("conditional_samples{tag}.png"))?);

    // 2. Inference: estimates against the truth, and posterior curves.
    let mut cv = Canvas::new(2 * PANEL, PANEL + 24);
    cv.legend(10, 6, &[(FLOW_COLOUR, "flow"), (GREY, "exact likelihood")]);
    let ax = Axes::new(0, 24, (0.0, 1.0), (0.0, 1.0));
    ax.draw(&mut cv, "y_hat (+-1 sd) vs y*", "true y*", "estimated y");
    ax.polyline(&mut cv, &[(0.0, 0.0), (1.0, 1.0)], GRID_LINE);
    for (k, c) in cases.iter().enumerate() {
        // Spread the replicates of one y* sideways a little so their bars do not overlap.
        let dx = 0.012 * ((k % 3) as f64 - 1.0);
        let x = c.y_true + dx;
        ax.polyline(
            &mut cv,
            &[(x - 0.004, c.exact.map), (x + 0.004, c.exact.map)],
            GREY,
        );
        ax.polyline(
            &mut cv,
            &[(x, c.flow.map - c.flow.sd), (x, c.flow.map + c.flow.sd)],
            FLOW_COLOUR,
        );
        ax.dot(&mut cv, x, c.flow.map, 2, FLOW_COLOUR);
    }
    let ys = y_grid();
    let ax = Axes::new(PANEL as i64, 24, (0.0, 1.0), (0.0, 1.05));
    ax.draw(
        &mut cv,
        "posterior p(y|x1..x20), flat prior",
        "y",
        "relative density",
    );
    let mut shown = Vec::new();
    for c in cases {
        if shown.iter().any(|&y: &f64| (y - c.y_true).abs() < 0.15) {
            continue;
        }
        shown.push(c.y_true);
        let colour = Y_COLOURS[(shown.len() - 1) % Y_COLOURS.len()];
        for (post, col) in [(&c.exact, GREY), (&c.flow, colour)] {
            let top = post.log_lik.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let pts: Vec<(f64, f64)> = ys
                .iter()
                .zip(&post.log_lik)
                .map(|(&y, l)| (y, (l - top).exp()))
                .collect();
            ax.polyline(&mut cv, &pts, col);
        }
        ax.polyline(&mut cv, &[(c.y_true, 0.0), (c.y_true, 1.05)], colour);
    }
    written.push(cv.save(&format!("conditional_inference{tag}.png"))?);
    Ok(written)
}
