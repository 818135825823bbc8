//! Neal's funnel fitted by reverse KL, checked against the exact density.
//!
//!     cargo run --release --example funnel             # full run (a few seconds)
//!     cargo run --release --example funnel -- --smoke  # small, for CI
//!
//! Options: `--steps N`, `--seed S`.
//!
//! The target is `v ~ N(0, 3²)`, `x | v ~ N(0, eᵛ)` ([`flow_train::target::Funnel`], D = 2): a
//! density known in closed form, normalized, whose neck (v ≪ 0) and mouth (v ≫ 0) differ in
//! scale by e⁹ — the usual test of a sampler. No samples are used: the flow (RealNVP, 8 × 64 × 64)
//! is fitted by [`flow_train::fit_target`]. Reported, all against the exact density:
//! - `KL(q ‖ p) = E_q[log q − log p]` on draws of the flow (what the fit minimizes);
//! - `KL(p ‖ q) = E_p[log p − log q]` on exact draws of the funnel (the mass the flow misses: the
//!   mode-seeking reverse KL does not see it during the fit);
//! - ESS/N of the importance weights, and the self-normalized estimate of `E[v²] = 9` with its
//!   standard error;
//! - the picture `examples/out/funnel.png`: the exact density, the flow's density and its draws on
//!   a grid over v ∈ [−8, 8].

use flow_core::flow::standard_normal;
use flow_core::runtime::flow_of;
use flow_train::importance::importance_sample;
use flow_train::reverse_kl::TargetConfig;
use flow_train::target::{Funnel, Target};
use flows::plotting::*;
use flows::OUT;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn main() {
    flows::main_with(run);
}

fn run() -> Result<(), String> {
    let (mut smoke, mut steps, mut seed) = (false, None, 1u64);
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--smoke" => smoke = true,
            "--steps" => steps = it.next().and_then(|v| v.parse().ok()),
            "--seed" => {
                seed = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--seed needs a number")?
            }
            other => return Err(format!("unknown option {other} (--smoke, --steps N, --seed S)")),
        }
    }
    let target = Funnel { dim: 2, scale: 3.0 };
    let cfg = TargetConfig {
        steps: steps.unwrap_or(if smoke { 300 } else { 3000 }),
        seed,
        threads: 2,
        ..TargetConfig::default()
    };
    let out = flow_train::fit_target(&target, &cfg).map_err(|e| e.to_string())?;
    let parts = &out.model.parts;
    let flow = flow_of::<f64, f64>(&parts.desc, &parts.weights, &parts.ints);
    let n = if smoke { 20_000 } else { 200_000 };
    let w = importance_sample(&flow, &[], n, seed + 1, |x| target.log_prob(x)).map_err(|e| e.to_string())?;
    let kl_qp = -w.log_w.iter().sum::<f64>() / n as f64;
    // Exact draws of the funnel for KL(p ‖ q).
    let mut rng = ChaCha8Rng::seed_from_u64(seed + 2);
    let mut scratch = vec![0.0; flow.scratch_len()];
    let mut kl_pq = 0.0;
    for _ in 0..n {
        let v = 3.0 * standard_normal(&mut rng);
        let x = [v, (0.5 * v).exp() * standard_normal(&mut rng)];
        kl_pq += target.log_prob(&x) - flow.log_prob(&x, &[], &mut scratch);
    }
    kl_pq /= n as f64;
    let v2 = w.estimate(|x| x[0] * x[0]);
    println!(
        "fit: RealNVP {} x {:?}, {} steps in {:.1} s; on {n} draws: KL(q||p) {kl_qp:.4} nats, KL(p||q) {kl_pq:.4} nats, \
         ESS/N {:.4}; E[v^2] = {:.3} +- {:.3} (exact 9)",
        cfg.arch.transforms,
        cfg.arch.hidden,
        out.steps,
        out.seconds,
        w.ess() / n as f64,
        v2.mean,
        v2.std_error
    );
    std::fs::create_dir_all(OUT).map_err(|e| format!("{OUT}: {e}"))?;
    let name = format!("funnel{}.png", if smoke { "_smoke" } else { "" });
    let mut cv = Canvas::new(3 * PANEL, PANEL);
    let (vr, xr) = ((-8.0, 8.0), (-12.0, 12.0));
    // Axes: v horizontal, x vertical.
    let ax = Axes::new(0, 0, vr, xr);
    ax.heatmap(&mut cv, 160, &mut |v, x| target.log_prob(&[v, x]).exp());
    ax.draw(&mut cv, "EXACT DENSITY", "V", "X");
    let ax = Axes::new(PANEL as i64, 0, vr, xr);
    ax.heatmap(&mut cv, 160, &mut |v, x| {
        flow.log_prob(&[v, x], &[], &mut scratch).exp()
    });
    ax.draw(&mut cv, "FLOW DENSITY (REVERSE KL)", "V", "X");
    let ax = Axes::new(2 * PANEL as i64, 0, vr, xr);
    for s in w.samples.chunks_exact(2).take(3000) {
        ax.dot(&mut cv, s[0], s[1], 1, [90, 160, 255]);
    }
    ax.draw(&mut cv, "FLOW DRAWS", "V", "X");
    println!("wrote {}", cv.save(&name)?);
    println!(
        "funnel kl_qp={kl_qp:.4} kl_pq={kl_pq:.4} ess={:.4} v2={:.3}",
        w.ess() / n as f64,
        v2.mean
    );
    Ok(())
}
