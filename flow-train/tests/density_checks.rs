//! Every 2-D flow kind, with random (non-trivial) weights, is a normalized density that its own
//! sampler follows: ∫ p = 1 ± 1e-3 on a grid, and the mean log p of samples matches the grid's
//! −entropy (∫ p log p).

use flow_core::runtime::flow_of;
use flow_train::arch::{self, ArchConfig, FlowKind};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Kinds checked (all of `FlowKind` once every layer kind is available).
const KINDS: &[FlowKind] = &FlowKind::ALL;

fn random_model(kind: FlowKind, seed: u64) -> flow_core::model::builder::ModelParts {
    let cfg = ArchConfig {
        flow: kind,
        transforms: 3,
        hidden: vec![16, 16],
        ..Default::default()
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut t = arch::build(&cfg, 2, 0, None, None, &mut rng).unwrap();
    // Make every trainable weight matter: the initial last layers are scaled to near-identity.
    for (w, &tr) in t.parts.weights.iter_mut().zip(&t.trainable) {
        if tr {
            *w += rng.gen_range(-0.2..0.2);
        }
    }
    t.parts
}

#[test]
fn every_kind_integrates_to_one_and_samples_follow_the_density() {
    for &kind in KINDS {
        let parts = random_model(kind, 7);
        let flow = flow_of::<f64, f64>(&parts.desc, &parts.weights, &parts.ints);
        let mut s = vec![0.0; flow.scratch_len()];
        let (lo, hi, n) = (-14.0, 14.0, 700);
        let h = (hi - lo) / n as f64;
        let (mut mass, mut neg_entropy) = (0.0, 0.0);
        for i in 0..n {
            for j in 0..n {
                let x = [lo + (i as f64 + 0.5) * h, lo + (j as f64 + 0.5) * h];
                let lp = flow.log_prob(&x, &[], &mut s);
                let p = lp.exp();
                mass += p * h * h;
                neg_entropy += p * lp * h * h;
            }
        }
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let m = 20_000;
        let mut mean_lp = 0.0;
        for _ in 0..m {
            let mut x = [0.0; 2];
            flow.sample_with(&mut rng, &[], &mut x, &mut s);
            mean_lp += flow.log_prob(&x, &[], &mut s) / m as f64;
        }
        eprintln!(
            "{kind:?}: mass {mass:.6}, E_grid[log p] {neg_entropy:.4}, mean log p of samples {mean_lp:.4}"
        );
        assert!((mass - 1.0).abs() < 1e-3, "{kind:?}: mass {mass}");
        assert!(
            (mean_lp - neg_entropy).abs() < 0.03,
            "{kind:?}: {mean_lp} vs {neg_entropy}"
        );
    }
}
