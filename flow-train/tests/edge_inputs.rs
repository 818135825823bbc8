//! Documented behaviour for non-finite and extreme inputs, for every flow family (f32, as on a
//! device, and f64):
//! - NaN in any coordinate → `log_prob`, `inverse` and `grad_log_prob` give NaN (never a number);
//! - ±∞ in a coordinate → `log_prob` is −∞ or NaN (never finite, never +∞);
//! - finite inputs up to |x| = 1e6 (f32) and 1e30 (f64) (the data here have unit scale), and
//!   subnormals → finite log p, base point, log-det and gradient;
//! - `sample` from finite noise up to |ε| = 8 → finite.

use flow_core::runtime::flow_of;
use flow_train::arch::{self, ArchConfig, FlowKind};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const KINDS: &[FlowKind] = &FlowKind::ALL;

fn check<S: flow_core::Real + flow_core::Weight>(kind: FlowKind, big: f64) {
    let cfg = ArchConfig {
        flow: kind,
        transforms: 3,
        hidden: vec![16, 16],
        ..Default::default()
    };
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut t = arch::build(&cfg, 2, 0, Some((&[0.5, -0.2], &[1.2, 0.8])), None, &mut rng).unwrap();
    for (w, &tr) in t.parts.weights.iter_mut().zip(&t.trainable) {
        if tr {
            *w += rng.gen_range(-0.3..0.3);
        }
    }
    let w: Vec<S> = t.parts.weights.iter().map(|&v| S::from_f64(v)).collect();
    let flow = flow_of::<S, S>(&t.parts.desc, &w, &t.parts.ints);
    let mut s = vec![S::ZERO; flow.scratch_len()];
    let v = |a: f64, b: f64| [S::from_f64(a), S::from_f64(b)];
    let finite = |x: [S; 2]| x.iter().all(|c| c.is_finite());
    let mut z = [S::ZERO; 2];
    let mut g = [S::ZERO; 2];
    // NaN in → NaN out.
    for x in [v(f64::NAN, 0.3), v(0.3, f64::NAN)] {
        assert!(
            flow.log_prob(&x, &[], &mut s).is_nan(),
            "{kind:?}: NaN in, log p not NaN"
        );
        flow.inverse(&x, &[], &mut z, &mut s);
        assert!(!finite(z), "{kind:?}: NaN in, finite base point");
        flow.grad_log_prob(&x, &[], &mut g, &mut s);
        assert!(!finite(g), "{kind:?}: NaN in, finite gradient");
    }
    // ±∞ in → log p is −∞ or NaN.
    for x in [v(f64::INFINITY, 0.3), v(0.3, f64::NEG_INFINITY)] {
        let lp = flow.log_prob(&x, &[], &mut s);
        assert!(
            !lp.is_finite() && lp != S::INFINITY,
            "{kind:?}: ±inf in, log p {lp:?}"
        );
    }
    // Finite in → finite out, out to `big`, and subnormals.
    let tiny = if core::mem::size_of::<S>() == 4 {
        f32::MIN_POSITIVE as f64 / 8.0
    } else {
        f64::MIN_POSITIVE / 8.0
    };
    for x in [
        v(big, 0.1),
        v(-big, big),
        v(0.1, -big),
        v(tiny, -tiny),
        v(0.0, 0.0),
    ] {
        let lp = flow.log_prob(&x, &[], &mut s);
        assert!(lp.is_finite(), "{kind:?}: x = {x:?}: log p {lp:?}");
        let ldj = flow.inverse(&x, &[], &mut z, &mut s);
        assert!(
            finite(z) && ldj.is_finite(),
            "{kind:?}: x = {x:?}: z {z:?} ldj {ldj:?}"
        );
        flow.grad_log_prob(&x, &[], &mut g, &mut s);
        assert!(finite(g), "{kind:?}: x = {x:?}: grad {g:?}");
    }
    for e in [v(8.0, -8.0), v(0.0, 0.0), v(-8.0, 3.0)] {
        let mut x = [S::ZERO; 2];
        flow.sample(&e, &[], &mut x, &mut s);
        assert!(finite(x), "{kind:?}: sample of {e:?} = {x:?}");
    }
}

#[test]
fn every_family_follows_the_edge_input_policy() {
    for &kind in KINDS {
        check::<f32>(kind, 1e6);
        check::<f64>(kind, 1e30);
    }
}
