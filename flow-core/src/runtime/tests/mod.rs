//! Runtime evaluator tests: agreement with the typed composition, whole-model gradients, and
//! rejection of hostile bytes.

extern crate std;
use std::vec;
use std::vec::Vec;

use super::*;
use crate::base::DiagNormal;
use crate::cotangent::Cotangent;
use crate::layers::affine::Affine;
use crate::layers::affine::{AffineLayout, AffineScale};
use crate::layers::autoregressive::{AffineAutoregressive, Direction};
use crate::layers::chain::Chain;
use crate::model::builder::ModelParts;
use crate::model::file::WeightType;
use crate::model::{LayerDesc, NetDesc};
use crate::nn::{made, mlp, Activation};
use crate::testing::{exercise_model_bytes, Lcg};

mod blocks;
mod context;
mod mixture;
mod student_t;
mod validation;

/// A random MAF/IAF with masks applied and a diagonal base.
pub(crate) fn random_maf(d: usize, c: usize, n_layers: usize, hidden: &[usize], rng: &mut Lcg) -> ModelParts {
    random_maf_after(ModelParts::new(d, c), n_layers, hidden, rng)
}

/// [`random_maf`] with a leading context standardization `[m, s]` (drawn from its own stream, so
/// the other layers are those of `random_maf` with the same `rng`).
fn random_maf_with_context_stats(
    d: usize,
    c: usize,
    n_layers: usize,
    hidden: &[usize],
    rng: &mut Lcg,
) -> (ModelParts, Vec<f64>) {
    let mut own = Lcg(77);
    let mut stats: Vec<f64> = (0..c).map(|_| own.normal() * 10.0).collect();
    stats.extend((0..c).map(|_| 0.1 + own.uniform() * 20.0));
    let mut m = ModelParts::new(d, c);
    let params = m.push_weights(&stats);
    m.push_layer(LayerDesc::ContextStandardize { params });
    (random_maf_after(m, n_layers, hidden, rng), stats)
}

/// Appends `n_layers` random MAF/IAF layers and a diagonal base to `m`.
fn random_maf_after(mut m: ModelParts, n_layers: usize, hidden: &[usize], rng: &mut Lcg) -> ModelParts {
    for k in 0..n_layers {
        let made = (0.4, 0.2, Activation::Tanh);
        let (net, order, hidden_degrees) = push_made_layer(&mut m, hidden, 2, k % 2 == 1, made, rng);
        m.push_layer(LayerDesc::AffineAutoregressive {
            net,
            order,
            hidden_degrees,
            scale: AffineScale::SoftclipExp {
                bound: -(1e-3f64).ln(),
            },
            layout: AffineLayout::ShiftScale,
            direction: if k == 1 { Direction::Iaf } else { Direction::Maf },
        });
    }
    let d = m.desc.dim as usize;
    let mu: Vec<f64> = (0..d).map(|_| rng.normal() * 0.1).collect();
    let sigma: Vec<f64> = (0..d).map(|_| 1.0 + rng.uniform() * 0.5).collect();
    m.set_diag_base(&mu, &sigma);
    m
}

/// Copies bytes into 8-byte aligned storage.
pub(crate) fn aligned(bytes: &[u8]) -> Vec<u64> {
    let mut v = vec![0u64; bytes.len().div_ceil(8)];
    bytemuck::cast_slice_mut::<u64, u8>(&mut v)[..bytes.len()].copy_from_slice(bytes);
    v
}

fn as_bytes(v: &[u64], len: usize) -> &[u8] {
    &bytemuck::cast_slice::<u64, u8>(v)[..len]
}

#[test]
fn runtime_equals_typed_chain_bit_for_bit() {
    let mut rng = Lcg(1);
    let parts = random_maf(3, 1, 2, &[16, 16], &mut rng);
    let bytes = parts.to_bytes("{}");
    let store = aligned(&bytes);
    let mut ev = Evaluator::<f32, 4096>::new(as_bytes(&store, bytes.len())).unwrap();
    let w = parts.weights_f32();
    let model = ev.model().clone();
    let view = |i: usize| match &model.desc.layers[i] {
        LayerDesc::AffineAutoregressive {
            net,
            scale,
            layout,
            direction,
            ..
        } => AffineAutoregressive {
            net: mlp::Mlp {
                sizes: &net.sizes,
                params: layers::slice(&w, net.params),
                activation: net.activation,
                residual: net.residual,
            },
            dim: 3,
            transformer: Affine::new(*scale, *layout),
            direction: *direction,
        },
        _ => unreachable!(),
    };
    let base = match model.desc.base {
        crate::model::BaseDesc::DiagNormal { params } => DiagNormal {
            params: layers::slice(&w, params),
        },
        _ => unreachable!(),
    };
    let typed = Flow::<f32, _, _>::new(Chain(view(0), view(1)), base);
    for _ in 0..500 {
        let x: Vec<f32> = (0..3).map(|_| (rng.normal() * 2.0) as f32).collect();
        let c = [(rng.normal()) as f32];
        assert_same(&mut ev, &typed, &x, &c);
    }
}

/// Asserts that the evaluator and `flow` agree bit for bit on log p, its gradient and a sample at
/// `(x, c)`; returns log p.
fn assert_same<S: Real, L: crate::Bijection<S>, B: crate::Base<S>, const N: usize>(
    ev: &mut Evaluator<'_, S, N>,
    flow: &Flow<S, L, B>,
    x: &[S],
    c: &[S],
) -> S {
    let bits = |v: &[S]| v.iter().map(|s| s.to_f64().to_bits()).collect::<Vec<u64>>();
    let mut scratch = vec![S::ZERO; flow.scratch_len()];
    let lp = ev.log_prob(x, c).unwrap();
    assert_eq!(bits(&[lp]), bits(&[flow.log_prob(x, c, &mut scratch)]));
    let (mut ga, mut gb) = (vec![S::ZERO; x.len()], vec![S::ZERO; x.len()]);
    ev.grad_log_prob(x, c, &mut ga).unwrap();
    flow.grad_log_prob(x, c, &mut gb, &mut scratch);
    assert_eq!(bits(&ga), bits(&gb));
    let (mut sa, mut sb) = (vec![S::ZERO; x.len()], vec![S::ZERO; x.len()]);
    ev.sample(x, c, &mut sa).unwrap();
    flow.sample(x, c, &mut sb, &mut scratch);
    assert_eq!(bits(&sa), bits(&sb));
    lp
}

#[test]
fn whole_model_parameter_gradient_matches_finite_differences() {
    let mut rng = Lcg(2);
    let parts = random_maf(3, 2, 3, &[8, 8], &mut rng);
    let x = [0.3, -0.8, 1.1];
    let c = [0.2, -0.5];
    let lp = |w: &[f64]| {
        let f = flow_of::<f64, f64>(&parts.desc, w, &parts.ints);
        let mut s = vec![0.0; f.scratch_len()];
        f.log_prob(&x, &c, &mut s)
    };
    let f = flow_of::<f64, f64>(&parts.desc, &parts.weights, &parts.ints);
    let mut s = vec![0.0; f.scratch_len()];
    let mut g = vec![0.0; parts.weights.len()];
    let mut gx = [0.0; 3];
    let l0 = f.grad(&x, &c, &mut gx, Some(&mut g), &mut s);
    assert_eq!(l0, lp(&parts.weights));
    let h = 1e-6;
    let mut worst: f64 = 0.0;
    for k in 0..parts.weights.len() {
        if parts.weights[k] == 0.0 {
            continue; // under a MADE mask
        }
        let (mut wp, mut wm) = (parts.weights.clone(), parts.weights.clone());
        wp[k] += h;
        wm[k] -= h;
        let fd = (lp(&wp) - lp(&wm)) / (2.0 * h);
        worst = worst.max((fd - g[k]).abs() / (1.0 + fd.abs()));
    }
    std::eprintln!("whole-model parameter gradient worst error: {worst:e}");
    assert!(worst < 1e-6, "{worst}");
    for j in 0..3 {
        let (mut xp, mut xm) = (x, x);
        xp[j] += h;
        xm[j] -= h;
        let f = |x: &[f64]| {
            flow_of::<f64, f64>(&parts.desc, &parts.weights, &parts.ints).log_prob(x, &c, &mut s.clone())
        };
        let fd = (f(&xp) - f(&xm)) / (2.0 * h);
        assert!((fd - gx[j]).abs() < 1e-6);
    }
}

/// The reparameterization gradient of `sample_and_log_prob` (MAF and IAF layers, a context, a
/// trained diagonal base) against finite differences of every weight and context element.
#[test]
fn sample_and_log_prob_gradient_matches_finite_differences() {
    let parts = random_maf(3, 2, 3, &[8, 8], &mut Lcg(21));
    let (worst, g) = sampling_gradient_error(&parts, &[0.6, -1.3, 0.2], &[0.2, -0.5], &[0.5, -0.7, 1.2], 0.8);
    std::eprintln!("sample_and_log_prob gradient worst error: {worst:e}");
    assert!(worst < 1e-6, "{worst}");
    // The base's parameters get a gradient (its last 6 weights: μ, σ).
    assert!(g[g.len() - 6..].iter().all(|v| *v != 0.0), "{g:?}");
}

/// The worst relative error of the whole-model parameter gradient of `log p(x | c)` against
/// central differences over every nonzero weight, and the gradient.
fn log_prob_gradient_error(parts: &ModelParts, x: &[f64], c: &[f64]) -> (f64, Vec<f64>) {
    let lp = |w: &[f64]| {
        let f = flow_of::<f64, f64>(&parts.desc, w, &parts.ints);
        f.log_prob(x, c, &mut vec![0.0; f.scratch_len()])
    };
    let f = flow_of::<f64, f64>(&parts.desc, &parts.weights, &parts.ints);
    let mut g = vec![0.0; parts.weights.len()];
    let mut g_x = vec![0.0; x.len()];
    f.grad(x, c, &mut g_x, Some(&mut g), &mut vec![0.0; f.scratch_len()]);
    let h = 1e-6;
    let mut worst: f64 = 0.0;
    for k in (0..parts.weights.len()).filter(|&k| parts.weights[k] != 0.0) {
        let (mut wp, mut wm) = (parts.weights.clone(), parts.weights.clone());
        wp[k] += h;
        wm[k] -= h;
        let fd = (lp(&wp) - lp(&wm)) / (2.0 * h);
        worst = worst.max((fd - g[k]).abs() / (1.0 + fd.abs()));
    }
    (worst, g)
}

/// The worst relative error of `Flow::sample_and_log_prob_vjp` against central differences of
/// `L = g_xᵀ x + g_lq · log q` over every (unmasked) weight and context element, and the gradient.
fn sampling_gradient_error(
    parts: &ModelParts,
    eps: &[f64],
    c: &[f64],
    g_x: &[f64],
    g_lq: f64,
) -> (f64, Vec<f64>) {
    let loss = |w: &[f64], c: &[f64]| {
        let f = flow_of::<f64, f64>(&parts.desc, w, &parts.ints);
        let mut s = vec![0.0; f.scratch_len()];
        let mut x = vec![0.0; eps.len()];
        let lq = f.sample_and_log_prob(eps, c, &mut x, &mut s);
        x.iter().zip(g_x).map(|(a, b)| a * b).sum::<f64>() + g_lq * lq
    };
    let f = flow_of::<f64, f64>(&parts.desc, &parts.weights, &parts.ints);
    let mut s = vec![0.0; f.sample_vjp_scratch_len()];
    let (mut g, mut gc) = (vec![0.0; parts.weights.len()], vec![0.0; c.len()]);
    f.sample_and_log_prob_vjp(eps, c, Cotangent::new(g_x, g_lq), &mut gc, &mut g, &mut s);
    let h = 1e-6;
    let central = |v: &[f64], k: usize, f: &dyn Fn(&[f64]) -> f64| {
        let (mut p, mut m) = (v.to_vec(), v.to_vec());
        p[k] += h;
        m[k] -= h;
        (f(&p) - f(&m)) / (2.0 * h)
    };
    let rel = |a: f64, fd: f64| (fd - a).abs() / (1.0 + fd.abs());
    let mut worst: f64 = 0.0;
    for k in (0..parts.weights.len()).filter(|&k| parts.weights[k] != 0.0) {
        worst = worst.max(rel(g[k], central(&parts.weights, k, &|w| loss(w, c))));
    }
    for j in 0..c.len() {
        worst = worst.max(rel(gc[j], central(c, j, &|c| loss(&parts.weights, c))));
    }
    (worst, g)
}

/// A random coupling flow: RealNVP, NICE and spline couplings (alternating masks) around a
/// permutation and an ActNorm, then `random_maf_after`'s MAF/IAF layers and diagonal base.
fn random_coupling(d: usize, c: usize, hidden: &[usize], rng: &mut Lcg) -> ModelParts {
    use crate::layers::spline::{SplineKind, SplineOpts};
    let mut m = ModelParts::new(d, c);
    let spline = SplineOpts {
        bins: 5,
        bound: 3.0,
        kind: SplineKind::FlowJax {
            min_width: 0.1,
            min_derivative: 5e-2,
        },
        logit_scale: 1.0,
    };
    let perm: Vec<u16> = (0..d as u16).rev().collect();
    for k in 0..4 {
        let mask: Vec<u16> = (0..d).map(|i| u16::from(i % 2 == k % 2)).collect();
        let n_id = mask.iter().filter(|&&v| v == 1).count();
        let per = [2, 1, spline.params_per_feature(), 2][k];
        let mut sizes = heapless::Vec::<usize, 8>::new();
        sizes.push(n_id + c).unwrap();
        for &h in hidden {
            sizes.push(h).unwrap();
        }
        sizes.push(per * (d - n_id)).unwrap();
        let w: Vec<f64> = (0..mlp::n_params(&sizes)).map(|_| rng.normal() * 0.3).collect();
        let params = m.push_weights(&w);
        let mask = m.push_ints(&mask);
        let net = NetDesc {
            sizes,
            activation: Activation::Tanh,
            residual: false,
            params,
        };
        m.push_layer(if k == 2 {
            LayerDesc::SplineCoupling { net, mask, spline }
        } else {
            LayerDesc::AffineCoupling {
                net,
                mask,
                scale: AffineScale::SoftclipExp { bound: 5.0 },
                layout: AffineLayout::ShiftScale,
                additive: k == 1,
            }
        });
        if k == 1 {
            let perm = m.push_ints(&perm);
            m.push_layer(LayerDesc::Permutation { perm });
            let p: Vec<f64> = (0..2 * d).map(|_| rng.normal() * 0.3).collect();
            let params = m.push_weights(&p);
            m.push_layer(LayerDesc::ActNorm { params });
        }
    }
    random_maf_after(m, 2, hidden, rng)
}

/// The block form of the sampling gradient is the single-sample one bit for bit, and the
/// single-sample one matches finite differences, on coupling flows (affine, additive, spline)
/// with a permutation, an ActNorm, MAF/IAF layers and a diagonal base.
#[test]
fn sampling_gradients_of_coupling_flows_match_finite_differences_and_blocks() {
    const N: usize = 5;
    fn blocks<S: Real + crate::Weight>(parts: &ModelParts, what: &str) {
        let w: Vec<S> = parts.weights.iter().map(|&v| S::from_f64(v)).collect();
        let f = flow_of::<S, S>(&parts.desc, &w, &parts.ints);
        let (d, c) = (parts.desc.dim as usize, parts.desc.context_dim as usize);
        let mut rng = Lcg(8);
        let eps: Vec<S> = (0..N * d).map(|_| S::from_f64(rng.normal())).collect();
        let cs: Vec<S> = (0..N * c).map(|_| S::from_f64(rng.normal())).collect();
        let gx: Vec<S> = (0..N * d).map(|_| S::from_f64(rng.normal())).collect();
        let start: Vec<S> = (0..w.len()).map(|_| S::from_f64(rng.normal() * 0.1)).collect();
        let mut s = vec![S::ZERO; f.sample_vjp_scratch_len()];
        let (mut g1, mut gc1) = (start.clone(), vec![S::ZERO; N * c]);
        for i in 0..N {
            let (e, cx, g) = (
                &eps[i * d..(i + 1) * d],
                &cs[i * c..(i + 1) * c],
                &gx[i * d..(i + 1) * d],
            );
            let gc = &mut gc1[i * c..(i + 1) * c];
            f.sample_and_log_prob_vjp(e, cx, Cotangent::new(g, S::from_f64(0.7)), gc, &mut g1, &mut s);
        }
        let mut s = vec![S::ZERO; f.sample_vjp_head_scratch_len(N)];
        let (mut g2, mut gc2) = (start.clone(), vec![S::ZERO; N * c]);
        fn v<S>(b: &[S], n: usize) -> [&[S]; N] {
            crate::block::views::<S, N>(b, n)
        }
        let gcv = crate::block::views_mut::<S, N>(&mut gc2, c);
        let (e, cx, g) = (v(&eps, d), v(&cs, c), v(&gx, d));
        f.sample_and_log_prob_vjp_block(e, cx, Cotangent::new(g, S::from_f64(0.7)), gcv, &mut g2, &mut s);
        let bits = |v: &[S]| v.iter().map(|a| a.to_f64().to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&g1), bits(&g2), "g_params, {what}");
        assert_eq!(bits(&gc1), bits(&gc2), "g_ctx, {what}");
        // The one-pass form: the head sees the samples and densities of sample_and_log_prob.
        let mut s = vec![S::ZERO; f.sample_vjp_head_scratch_len(N)];
        let (mut g3, mut gc3) = (start.clone(), vec![S::ZERO; N * c]);
        let (mut seen_x, mut seen_q) = (vec![S::ZERO; N * d], vec![S::ZERO; N]);
        let mut head = |x: &[S], lq: &[S], g: &mut [S]| {
            seen_x.copy_from_slice(x);
            seen_q.copy_from_slice(lq);
            g.copy_from_slice(&gx);
        };
        let gcv = crate::block::views_mut::<S, N>(&mut gc3, c);
        f.sample_vjp_head_block(
            e,
            cx,
            Cotangent::new(&mut head, S::from_f64(0.7)),
            gcv,
            &mut g3,
            &mut s,
        );
        assert_eq!(bits(&g1), bits(&g3), "g_params (head), {what}");
        assert_eq!(bits(&gc1), bits(&gc3), "g_ctx (head), {what}");
        let mut s = vec![S::ZERO; f.scratch_len()];
        for i in 0..N {
            let mut x = vec![S::ZERO; d];
            let lq = f.sample_and_log_prob(&eps[i * d..(i + 1) * d], &cs[i * c..(i + 1) * c], &mut x, &mut s);
            assert_eq!(bits(&x), bits(&seen_x[i * d..(i + 1) * d]), "x (head), {what}");
            assert_eq!(
                lq.to_f64().to_bits(),
                seen_q[i].to_f64().to_bits(),
                "log q (head), {what}"
            );
        }
        let moved = g1.iter().zip(&start).filter(|(a, b)| a != b).count();
        assert!(moved > w.len() / 2, "{what}: {moved} of {}", w.len());
    }
    let mut rng = Lcg(31);
    for (d, c) in [(4, 0), (5, 2), (2, 1)] {
        let parts = random_coupling(d, c, &[8, 8], &mut rng);
        blocks::<f32>(&parts, &std::format!("f32 d={d} c={c}"));
        blocks::<f64>(&parts, &std::format!("f64 d={d} c={c}"));
    }
    // Finite differences of the whole flow's sampling loss, every weight and context element.
    let parts = random_coupling(4, 2, &[8], &mut Lcg(3));
    let (eps, c, g_x) = ([0.4, -0.9, 1.1, 0.2], [0.3, -0.6], [0.5, -0.7, 1.2, 0.1]);
    let (worst, _) = sampling_gradient_error(&parts, &eps, &c, &g_x, -0.4);
    std::eprintln!("coupling flow sampling gradient worst error: {worst:e}");
    assert!(worst < 1e-6, "{worst}");
}

/// Appends the parameters of a random MADE conditioner (`per` outputs per feature, features in
/// reverse order when `reverse`) to `m`: weights `w_scale · N(0, 1)` (0 where masked), biases
/// `b_scale · N(0, 1)`. Returns the network, the order and the hidden degrees.
fn push_made_layer(
    m: &mut ModelParts,
    hidden: &[usize],
    per: usize,
    reverse: bool,
    (w_scale, b_scale, activation): (f64, f64, Activation),
    rng: &mut Lcg,
) -> (NetDesc, crate::model::Span, crate::model::Span) {
    let (d, c) = (m.desc.dim as usize, m.desc.context_dim as usize);
    let order: Vec<u16> = if reverse {
        (0..d as u16).rev().collect()
    } else {
        (0..d as u16).collect()
    };
    let mut sizes = heapless::Vec::<usize, 8>::new();
    sizes.push(d + c).unwrap();
    for &h in hidden {
        sizes.push(h).unwrap();
    }
    sizes.push(per * d).unwrap();
    let degrees: Vec<u16> = hidden
        .iter()
        .flat_map(|&h| (0..h).map(move |j| made::default_hidden_degree(j, d)))
        .collect();
    let mut allowed = Vec::new();
    made::for_each_weight(&order, &sizes, &degrees, per, |_, _, _, ok| allowed.push(ok));
    let mut it = allowed.iter();
    let mut w = Vec::new();
    for l in 0..sizes.len() - 1 {
        for _ in 0..sizes[l] * sizes[l + 1] {
            let v = rng.normal() * w_scale;
            w.push(if *it.next().unwrap() { v } else { 0.0 });
        }
        for _ in 0..sizes[l + 1] {
            w.push(rng.normal() * b_scale);
        }
    }
    assert_eq!(w.len(), mlp::n_params(&sizes));
    let params = m.push_weights(&w);
    let net = NetDesc {
        sizes,
        activation,
        residual: false,
        params,
    };
    (net, m.push_ints(&order), m.push_ints(&degrees))
}
