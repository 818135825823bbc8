//! Whole-model gradient check: for every flow family the trainer builds (standardization layer
//! included, with context where the family takes one), d log p / dθ from the vector-Jacobian
//! products equals central finite differences in f64 for every trainable parameter, and
//! d log p / dx likewise.

use flow_core::runtime::flow_of;
use flow_train::arch::{self, ArchConfig, FlowKind};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const KINDS: &[FlowKind] = &FlowKind::ALL;

#[test]
fn every_family_has_exact_parameter_and_input_gradients() {
    for &kind in KINDS {
        let c = if matches!(kind, FlowKind::Planar | FlowKind::Radial) {
            0
        } else {
            2
        };
        let d = 3;
        let cfg = ArchConfig {
            flow: kind,
            transforms: 3,
            hidden: vec![8, 8],
            ..Default::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mean = [0.5, -1.0, 2.0];
        let std = [1.5, 0.7, 2.0];
        let mut t = arch::build(&cfg, d, c, Some((&mean, &std)), None, &mut rng).unwrap();
        for (w, &tr) in t.parts.weights.iter_mut().zip(&t.trainable) {
            if tr {
                *w += rng.gen_range(-0.3..0.3);
            }
        }
        let parts = t.parts;
        let x = [0.9, -1.4, 2.5];
        let ctx: Vec<f64> = (0..c).map(|i| 0.3 - 0.4 * i as f64).collect();
        let lp = |w: &[f64], x: &[f64]| {
            let f = flow_of::<f64, f64>(&parts.desc, w, &parts.ints);
            let mut s = vec![0.0; f.scratch_len()];
            f.log_prob(x, &ctx, &mut s)
        };
        let f = flow_of::<f64, f64>(&parts.desc, &parts.weights, &parts.ints);
        let mut s = vec![0.0; f.scratch_len()];
        let mut g = vec![0.0; parts.weights.len()];
        let mut gx = [0.0; 3];
        let l0 = f.grad(&x, &ctx, &mut gx, Some(&mut g), &mut s);
        assert_eq!(
            l0,
            lp(&parts.weights, &x),
            "{kind:?}: grad's log p differs from log_prob"
        );
        let h = 1e-6;
        let mut worst: f64 = 0.0;
        let mut checked = 0;
        for k in (0..parts.weights.len()).filter(|&k| t.trainable[k]) {
            let (mut wp, mut wm) = (parts.weights.clone(), parts.weights.clone());
            wp[k] += h;
            wm[k] -= h;
            let fd = (lp(&wp, &x) - lp(&wm, &x)) / (2.0 * h);
            worst = worst.max((fd - g[k]).abs() / (1.0 + fd.abs()));
            checked += 1;
        }
        for j in 0..d {
            let (mut xp, mut xm) = (x, x);
            xp[j] += h;
            xm[j] -= h;
            let fd = (lp(&parts.weights, &xp) - lp(&parts.weights, &xm)) / (2.0 * h);
            worst = worst.max((fd - gx[j]).abs() / (1.0 + fd.abs()));
        }
        eprintln!("{kind:?}: {checked} parameters, worst relative error {worst:.2e}");
        assert!(worst < 1e-6, "{kind:?}: {worst}");
    }
}
