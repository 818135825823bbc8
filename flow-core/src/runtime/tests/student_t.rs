//! Models with a Student-t base: the runtime evaluator equals the typed flow bit for bit,
//! whole-model and sampling gradients match finite differences, the validator rejects bad
//! Student-t parameters, and the exerciser finds no panic.

use std::vec::Vec;

use super::*;
use crate::base::student_t::{self, StudentT};

/// A MAF (random, far from the identity) with a Student-t base of degrees of freedom `nu`.
fn maf_with_student_t(d: usize, c: usize, nu: &[f64], rng: &mut Lcg) -> ModelParts {
    let mut m = random_maf(d, c, 3, &[8, 8], rng);
    // Replace the diagonal base (its weights are the last 2d) by the Student-t.
    m.weights.truncate(m.weights.len() - 2 * d);
    let mut p: Vec<f64> = (0..d).map(|_| rng.normal()).collect();
    p.extend((0..d).map(|_| rng.normal() * 0.4));
    p.extend(nu.iter().map(|v| v.ln()));
    m.set_student_t_base(&p);
    m
}

#[test]
fn runtime_equals_the_typed_flow_bit_for_bit() {
    let mut rng = Lcg(41);
    let parts = maf_with_student_t(3, 0, &[0.7, 3.0, 25.0], &mut rng);
    let bytes = parts.to_bytes("{}");
    let store = aligned(&bytes);
    let mut ev = Evaluator::<f32, 4096>::new(as_bytes(&store, bytes.len())).unwrap();
    let w = parts.weights_f32();
    let base = StudentT {
        params: layers::slice(&w, parts.desc.base.params()),
    };
    let typed = Flow::<f32, _, _>::new(flow_of::<f32, f32>(&parts.desc, &w, &parts.ints).layers, base);
    for _ in 0..300 {
        let x: Vec<f32> = (0..3).map(|_| (rng.normal() * 3.0) as f32).collect();
        assert_same(&mut ev, &typed, &x, &[]);
    }
}

#[test]
fn gradients_match_finite_differences() {
    let parts = maf_with_student_t(3, 2, &[1.5, 4.0, 30.0], &mut Lcg(42));
    let (x, c) = ([0.3, -3.8, 1.1], [0.2, -0.5]);
    let (worst, g) = log_prob_gradient_error(&parts, &x, &c);
    assert!(worst < 1e-6, "log p: {worst}");
    let n_base = student_t::n_params(3);
    assert!(g[g.len() - n_base..].iter().all(|v| *v != 0.0), "{g:?}");
    // The sampling map, in the body and in both tails.
    for eps in [[0.3, -1.3, 0.2], [-2.5, 0.4, 3.0]] {
        let (worst, _) = sampling_gradient_error(&parts, &eps, &c, &[0.5, -0.7, 1.2], 0.8);
        assert!(worst < 1e-6, "sampling at {eps:?}: {worst}");
    }
}

#[test]
fn bad_student_t_bases_are_rejected() {
    let parts = maf_with_student_t(2, 0, &[2.0, 5.0], &mut Lcg(43));
    // One weight short; ln ν beyond ±80.
    let mut short = parts.clone();
    if let crate::model::BaseDesc::StudentT { params } = &mut short.desc.base {
        params.len -= 1;
    }
    short.weights.pop();
    let mut huge = parts.clone();
    let n = huge.weights.len();
    huge.weights[n - 1] = 81.0;
    let mut tiny = parts.clone();
    tiny.weights[n - 2] = -81.0;
    for (what, p) in [("short", short), ("ln ν = 81", huge), ("ln ν = −81", tiny)] {
        assert_eq!(
            validation::reject(&p.to_bytes("")),
            Error::Invalid(Invalid::BadBase),
            "{what}"
        );
    }
    assert!(exercise_model_bytes::<f32>(&parts.to_bytes("")));
    assert!(exercise_model_bytes::<f64>(&parts.to_bytes("")));
}
