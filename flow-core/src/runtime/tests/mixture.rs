//! Models with a Gaussian-mixture base: the runtime evaluator equals the typed flow bit for bit,
//! whole-model and sampling gradients match finite differences, the validator rejects bad
//! mixtures, and the exerciser finds no panic.

use std::vec::Vec;

use super::*;
use crate::base::mixture::{self, GaussianMixture};

/// A MAF (random, far from the identity) with a `k`-component mixture base.
fn maf_with_mixture(d: usize, c: usize, k: usize, rng: &mut Lcg) -> ModelParts {
    let mut m = random_maf(d, c, 3, &[8, 8], rng);
    // Replace the diagonal base (its weights are the last 2d) by the mixture.
    m.weights.truncate(m.weights.len() - 2 * d);
    let mut p: Vec<f64> = (0..k).map(|_| rng.normal()).collect();
    p.extend((0..k * d).map(|_| rng.normal() * 1.5));
    p.extend((0..k * d).map(|_| rng.normal() * 0.4));
    m.set_mixture_base(k as u16, &p);
    m
}

#[test]
fn runtime_equals_the_typed_flow_bit_for_bit() {
    let mut rng = Lcg(31);
    let parts = maf_with_mixture(3, 0, 4, &mut rng);
    let bytes = parts.to_bytes("{}");
    let store = aligned(&bytes);
    let mut ev = Evaluator::<f32, 4096>::new(as_bytes(&store, bytes.len())).unwrap();
    let w = parts.weights_f32();
    let crate::model::BaseDesc::GaussianMixture { components, params } = parts.desc.base else {
        unreachable!()
    };
    let base = GaussianMixture {
        dim: 3,
        components: components as usize,
        params: layers::slice(&w, params),
    };
    let typed = Flow::<f32, _, _>::new(flow_of::<f32, f32>(&parts.desc, &w, &parts.ints).layers, base);
    for _ in 0..300 {
        let x: Vec<f32> = (0..3).map(|_| (rng.normal() * 2.0) as f32).collect();
        assert_same(&mut ev, &typed, &x, &[]);
    }
}

#[test]
fn gradients_match_finite_differences() {
    let parts = maf_with_mixture(3, 2, 3, &mut Lcg(32));
    let (x, c) = ([0.3, -0.8, 1.1], [0.2, -0.5]);
    let (worst, g) = log_prob_gradient_error(&parts, &x, &c);
    assert!(worst < 1e-6, "log p: {worst}");
    let n_base = mixture::n_params(3, 3);
    assert!(g[g.len() - n_base..].iter().all(|v| *v != 0.0), "{g:?}");
    // The sampling map, at noise that picks an inner component (ε₀ = 0.3) and one from the far
    // tail (ε₀ = −2.5).
    for eps in [[0.3, -1.3, 0.2], [-2.5, 0.4, 1.0]] {
        let (worst, _) = sampling_gradient_error(&parts, &eps, &c, &[0.5, -0.7, 1.2], 0.8);
        assert!(worst < 1e-6, "sampling at {eps:?}: {worst}");
    }
}

#[test]
fn bad_mixtures_are_rejected() {
    let parts = maf_with_mixture(2, 0, 3, &mut Lcg(33));
    for (components, cut) in [(0u16, 0usize), (4, 0), (3, 1), (300, 0)] {
        let mut p = parts.clone();
        if let crate::model::BaseDesc::GaussianMixture {
            components: k,
            params,
        } = &mut p.desc.base
        {
            *k = components;
            params.len -= cut as u32;
        }
        p.weights.truncate(p.weights.len() - cut);
        assert_eq!(
            validation::reject(&p.to_bytes("")),
            Error::Invalid(Invalid::BadBase),
            "K = {components}, {cut} weights short"
        );
    }
    assert!(exercise_model_bytes::<f32>(&parts.to_bytes("")));
    assert!(exercise_model_bytes::<f64>(&parts.to_bytes("")));
}
