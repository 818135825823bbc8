//! Importance sampling and independence Metropolis–Hastings with a flow as the proposal: exact
//! answers for a target the flow only approximates.

use flow_core::model::builder::ModelParts;
use flow_core::runtime::flow_of;
use flow_train::arch::{build, ArchConfig, FlowKind};
use flow_train::importance::{importance_sample, independence_mh, ImportanceError};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// An untrained MAF standardized to N(0, diag std²) (close to it: the last layers start near 0).
fn near_normal(d: usize, std: f64) -> ModelParts {
    let cfg = ArchConfig {
        flow: FlowKind::Maf,
        transforms: 2,
        hidden: vec![8],
        ..ArchConfig::default()
    };
    let (m, s) = (vec![0.0; d], vec![std; d]);
    build(
        &cfg,
        d,
        0,
        Some((&m, &s)),
        None,
        &mut ChaCha8Rng::seed_from_u64(1),
    )
    .unwrap()
    .parts
}

/// log of an unnormalized N(μ, I): −|x − μ|²/2 + `log_z` (so log Z = `log_z` + (D/2) log 2π).
fn gaussian(mu: f64, log_z: f64) -> impl Fn(&[f64]) -> f64 + Sync {
    move |x: &[f64]| -0.5 * x.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() + log_z
}

#[test]
fn weights_recover_a_shifted_target_its_evidence_and_report_the_ess() {
    // Proposal ≈ N(0, 1.5² I), target N(0.7, I) with log Z = 3 + log 2π (D = 2).
    let parts = near_normal(2, 1.5);
    let flow = flow_of::<f64, f64>(&parts.desc, &parts.weights, &parts.ints);
    let w = importance_sample(&flow, &[], 20_000, 3, gaussian(0.7, 3.0)).unwrap();
    let mean = w.estimate(|x| x[0]);
    assert!((mean.mean - 0.7).abs() < 4.0 * mean.std_error, "{mean:?}");
    assert!(mean.std_error > 0.002 && mean.std_error < 0.03, "{mean:?}");
    let second = w.estimate(|x| (x[1] - 0.7) * (x[1] - 0.7));
    assert!((second.mean - 1.0).abs() < 4.0 * second.std_error, "{second:?}");
    let log_z = 3.0 + (2.0 * std::f64::consts::PI).ln();
    assert!(
        (w.log_evidence() - log_z).abs() < 0.05,
        "{} vs {log_z}",
        w.log_evidence()
    );
    // A mismatched proposal loses effective samples; a matching one keeps nearly all.
    let ess = w.ess() / 20_000.0;
    assert!(ess > 0.3 && ess < 0.9, "ESS/N {ess}");
    let close = near_normal(2, 1.0);
    let flow1 = flow_of::<f64, f64>(&close.desc, &close.weights, &close.ints);
    let w1 = importance_sample(&flow1, &[], 5_000, 3, gaussian(0.0, 0.0)).unwrap();
    assert!(w1.ess() / 5_000.0 > 0.95, "{}", w1.ess());
    // log q is the flow's density of each draw.
    let mut s = vec![0.0; flow.scratch_len()];
    for (x, lq) in w.samples.chunks(2).zip(&w.log_q).take(50) {
        assert!((flow.log_prob(x, &[], &mut s) - lq).abs() < 1e-9);
    }
}

#[test]
fn metropolis_hastings_chain_targets_the_target() {
    let parts = near_normal(2, 1.5);
    let flow = flow_of::<f64, f64>(&parts.desc, &parts.weights, &parts.ints);
    let chain = independence_mh(&flow, &[], 40_000, 5, gaussian(-0.5, 0.0)).unwrap();
    assert_eq!(chain.samples.len(), 80_000);
    assert!(
        chain.acceptance > 0.3 && chain.acceptance < 0.95,
        "{}",
        chain.acceptance
    );
    for j in 0..2 {
        let m = chain.estimate(|x| x[j]);
        assert!((m.mean + 0.5).abs() < 4.0 * m.std_error + 0.01, "{m:?}");
        let v = chain.estimate(|x| (x[j] + 0.5) * (x[j] + 0.5));
        assert!((v.mean - 1.0).abs() < 4.0 * v.std_error + 0.02, "{v:?}");
    }
}

#[test]
fn nan_or_infinite_targets_are_errors_naming_the_draw_and_minus_infinity_is_zero_weight() {
    let parts = near_normal(2, 1.0);
    let flow = flow_of::<f64, f64>(&parts.desc, &parts.weights, &parts.ints);
    let e = importance_sample(
        &flow,
        &[],
        100,
        1,
        |x: &[f64]| if x[0] > 1.0 { f64::NAN } else { 0.0 },
    )
    .unwrap_err();
    match &e {
        ImportanceError::BadTarget { index, value, x } => {
            assert!(value.is_nan() && x[0] > 1.0 && *index < 100);
            assert!(e.to_string().contains(&format!("draw {index}")));
        }
        other => panic!("{other:?}"),
    }
    // A half-space target: weight 0 outside it, estimates from the rest.
    let half = |x: &[f64]| {
        if x[0] < 0.0 {
            f64::NEG_INFINITY
        } else {
            -0.5 * (x[0] * x[0] + x[1] * x[1])
        }
    };
    let w = importance_sample(&flow, &[], 20_000, 2, half).unwrap();
    let m = w.estimate(|x| x[0]);
    let exact = (2.0 / std::f64::consts::PI).sqrt(); // E|z| for z ~ N(0, 1)
    assert!(
        (m.mean - exact).abs() < 4.0 * m.std_error + 0.01,
        "{m:?} vs {exact}"
    );
    assert!(w
        .samples
        .chunks(2)
        .zip(&w.log_w)
        .all(|(x, lw)| (x[0] < 0.0) == (*lw == f64::NEG_INFINITY)));
    assert_eq!(
        importance_sample(&flow, &[], 10, 2, |_: &[f64]| f64::NEG_INFINITY),
        Err(ImportanceError::NoWeight(10))
    );
}
