//! Context standardization: the layers at the standardized context, its gradients, and the
//! models where it is misplaced or bad.

extern crate std;
use std::vec;
use std::vec::Vec;

use super::*;

/// A model with a context standardization at raw context `c` is, bit for bit, the same layers
/// without it at `(c − m) / s` (computed as the layer computes it): log p, its gradient, samples
/// and batches, through the evaluator and `flow_of`.
#[test]
fn context_standardization_is_the_layers_at_the_standardized_context() {
    let (d, c) = (3, 2);
    let (with, stats) = random_maf_with_context_stats(d, c, 3, &[8, 8], &mut Lcg(12));
    let without = random_maf(d, c, 3, &[8, 8], &mut Lcg(12));
    let bytes = with.to_bytes("");
    let store = aligned(&bytes);
    let mut ev = Evaluator::<f32, 4096>::new(as_bytes(&store, bytes.len())).unwrap();
    let w = without.weights_f32();
    let plain = flow_of::<f32, f32>(&without.desc, &w, &without.ints);
    let stats32: Vec<f32> = stats.iter().map(|&v| v as f32).collect();
    let mut rng = Lcg(13);
    let mut s = vec![0.0f32; plain.scratch_len()];
    for _ in 0..300 {
        let x: Vec<f32> = (0..d).map(|_| rng.normal() as f32).collect();
        // Raw context around the statistics' mean and scale.
        let raw: Vec<f32> = (0..c)
            .map(|i| (stats[i] + stats[c + i] * rng.normal()) as f32)
            .collect();
        let mut std = [0.0f32; 2];
        crate::layers::context::standardize(&stats32, &raw, &mut std);
        let lp = ev.log_prob(&x, &raw).unwrap();
        assert_eq!(lp.to_bits(), plain.log_prob(&x, &std, &mut s).to_bits());
        let (mut ga, mut gb) = ([0.0f32; 3], [0.0f32; 3]);
        ev.grad_log_prob(&x, &raw, &mut ga).unwrap();
        plain.grad_log_prob(&x, &std, &mut gb, &mut s);
        assert_eq!(ga.map(f32::to_bits), gb.map(f32::to_bits));
        let (mut xa, mut xb) = ([0.0f32; 3], [0.0f32; 3]);
        ev.sample(&x, &raw, &mut xa).unwrap();
        plain.sample(&x, &std, &mut xb, &mut s);
        assert_eq!(xa.map(f32::to_bits), xb.map(f32::to_bits));
        // Far from the training context the standardization matters: the same raw context
        // without it is another density.
        assert_ne!(lp.to_bits(), plain.log_prob(&x, &raw, &mut s).to_bits());
    }
    // A batch of 37 rows (blocks and a tail) under one context.
    let raw = [stats[0] as f32 + 3.0, stats[1] as f32 - 7.0];
    let mut std = [0.0f32; 2];
    crate::layers::context::standardize(&stats32, &raw, &mut std);
    let xs: Vec<f32> = (0..37 * d).map(|_| rng.normal() as f32).collect();
    let (mut a, mut b) = (vec![0.0f32; 37], vec![0.0f32; 37]);
    let w_with = with.weights_f32();
    let with_flow = flow_of::<f32, f32>(&with.desc, &w_with, &with.ints);
    let mut sa = vec![0.0f32; with_flow.batch_scratch_len()];
    with_flow.log_prob_batch(&xs, &raw, &mut a, &mut sa);
    let mut sb = vec![0.0f32; plain.batch_scratch_len()];
    plain.log_prob_batch(&xs, &std, &mut b, &mut sb);
    assert_eq!(
        a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        b.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
}

/// The whole model's VJPs with a context standardization, against finite differences in f64:
/// data, context (through `(c − m) / s`), the statistics and the layers' weights.
#[test]
fn context_standardization_gradients_match_finite_differences() {
    let (parts, _) = random_maf_with_context_stats(3, 2, 2, &[8], &mut Lcg(14));
    // The checker's layer builder is a `'static` closure.
    let parts: &'static ModelParts = std::boxed::Box::leak(std::boxed::Box::new(parts));
    let n_layer_params = parts.weights.len() - 2 * 3;
    let build = crate::testing::builder(|p: &[f64]| {
        std::boxed::Box::new(Layers {
            desc: &parts.desc,
            weights: p,
            ints: &parts.ints,
        })
    });
    let w = &parts.weights;
    // Masked weights stay zero; the base's weights are not the layers'.
    let frozen = |k: usize| k >= n_layer_params || w[k] == 0.0;
    let rep = crate::testing::check_bijection_except(&build, w, &[0.4, -1.2, 0.7], &[13.0, -4.0], &frozen);
    std::eprintln!("context standardization: {rep:?}");
    assert!(rep.roundtrip < 1e-9 && rep.max_fd() < 1e-6, "{rep:?}");
}

/// The validator accepts a context standardization only as the first layer over the first
/// weights of a conditional model, with positive scales.
#[test]
fn misplaced_or_bad_context_standardizations_are_rejected() {
    let validate_parts = |p: &ModelParts| validate(&p.desc, &p.weights, &p.ints);
    let (good, _) = random_maf_with_context_stats(2, 2, 1, &[4], &mut Lcg(15));
    assert_eq!(validate_parts(&good), Ok(()));
    // A zero scale.
    let mut p = good.clone();
    p.weights[3] = 0.0;
    assert_eq!(validate_parts(&p), Err(Invalid::BadOption { layer: 0 }));
    // Not first: move it behind the MAF layer.
    let mut p = good.clone();
    p.desc.layers.swap(0, 1);
    assert_eq!(validate_parts(&p), Err(Invalid::BadOption { layer: 1 }));
    // Not over the first weights (the MAF layer's weights first).
    let mut p = random_maf(2, 2, 1, &[4], &mut Lcg(15));
    let params = p.push_weights(&[0.0, 0.0, 1.0, 1.0]);
    p.desc
        .layers
        .insert(0, LayerDesc::ContextStandardize { params })
        .unwrap();
    assert!(validate_parts(&p).is_err());
    // An unconditional model.
    let mut p = ModelParts::new(2, 0);
    let params = p.push_weights(&[0.0, 1.0]);
    p.push_layer(LayerDesc::ContextStandardize { params });
    assert_eq!(validate_parts(&p), Err(Invalid::BadOption { layer: 0 }));
}
