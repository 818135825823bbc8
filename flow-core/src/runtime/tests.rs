//! Runtime evaluator tests: agreement with the typed composition, whole-model gradients, and
//! rejection of hostile bytes.

extern crate std;
use std::vec;
use std::vec::Vec;

use super::*;
use crate::base::DiagNormal;
use crate::layers::affine::Affine;
use crate::layers::affine::{AffineLayout, AffineScale};
use crate::layers::autoregressive::{AffineAutoregressive, Direction};
use crate::layers::chain::Chain;
use crate::model::builder::ModelParts;
use crate::model::file::WeightType;
use crate::model::{LayerDesc, NetDesc};
use crate::nn::{made, mlp, Activation};
use crate::testing::{exercise_model_bytes, Lcg};

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
    f.sample_and_log_prob_vjp(eps, c, g_x, g_lq, &mut gc, &mut g, &mut s);
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
            f.sample_and_log_prob_vjp(e, cx, g, S::from_f64(0.7), gc, &mut g1, &mut s);
        }
        let mut s = vec![S::ZERO; f.sample_vjp_head_scratch_len(N)];
        let (mut g2, mut gc2) = (start.clone(), vec![S::ZERO; N * c]);
        fn v<S>(b: &[S], n: usize) -> [&[S]; N] {
            crate::block::views::<S, N>(b, n)
        }
        let gcv = crate::block::views_mut::<S, N>(&mut gc2, c);
        let (e, cx, g) = (v(&eps, d), v(&cs, c), v(&gx, d));
        f.sample_and_log_prob_vjp_block(e, cx, g, S::from_f64(0.7), gcv, &mut g2, &mut s);
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
        f.sample_vjp_head_block(e, cx, S::from_f64(0.7), &mut head, gcv, &mut g3, &mut s);
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

fn reject(bytes: &[u8]) -> Error {
    let store = aligned(bytes);
    match Evaluator::<f32, 4096>::new(as_bytes(&store, bytes.len())) {
        Ok(_) => panic!("accepted invalid bytes"),
        Err(e) => e,
    }
}

#[test]
fn truncations_and_bit_flips_are_rejected() {
    let mut rng = Lcg(3);
    let bytes = random_maf(2, 0, 2, &[8], &mut rng).to_bytes("{\"a\":1}");
    for n in 0..bytes.len() {
        let e = reject(&bytes[..n]);
        assert!(
            matches!(e, Error::Format(FormatError::Truncated | FormatError::BadMagic)),
            "{n}: {e:?}"
        );
    }
    for i in 0..bytes.len() * 8 {
        let mut b = bytes.clone();
        b[i / 8] ^= 1 << (i % 8);
        let e = reject(&b);
        let want_checksum = i / 8 >= 16; // the header fields before the CRC have their own errors
        if want_checksum {
            assert_eq!(e, Error::Format(FormatError::ChecksumMismatch), "bit {i}");
        }
    }
}

/// Re-seal a modified file (fix the CRC) so the structural checks are reached.
fn reseal(b: &mut [u8]) {
    let crc = file::crc32(&b[16..]);
    b[12..16].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn inconsistent_models_are_rejected_with_the_right_error() {
    let mut rng = Lcg(4);
    let parts = random_maf(3, 0, 2, &[8], &mut rng);
    // A nonzero weight under the mask.
    let mut p = parts.clone();
    let k = p.weights.iter().position(|&w| w == 0.0).unwrap();
    p.weights[k] = 0.5;
    assert_eq!(
        reject(&p.to_bytes("")),
        Error::Invalid(Invalid::NotAutoregressive { layer: 0 })
    );
    // A NaN weight.
    let mut p = parts.clone();
    p.weights[5] = f64::NAN;
    assert_eq!(
        reject(&p.to_bytes("")),
        Error::Invalid(Invalid::NonFiniteWeight { index: 5 })
    );
    // An order with a rank outside 0..D.
    let mut p = parts.clone();
    p.ints[0] = p.desc.dim as u16;
    assert_eq!(
        reject(&p.to_bytes("")),
        Error::Invalid(Invalid::BadOrder { layer: 0 })
    );
    // Sizes that do not chain.
    let mut p = parts.clone();
    if let LayerDesc::AffineAutoregressive { net, .. } = &mut p.desc.layers[1] {
        net.sizes[0] = 4;
    }
    assert_eq!(
        reject(&p.to_bytes("")),
        Error::Invalid(Invalid::NetShape { layer: 1 })
    );
    // A span past the end.
    let mut p = parts.clone();
    if let LayerDesc::AffineAutoregressive { net, .. } = &mut p.desc.layers[0] {
        net.params.offset = 1 << 30;
    }
    assert!(matches!(
        reject(&p.to_bytes("")),
        Error::Invalid(Invalid::BadSpan { layer: 0 })
    ));
    // Negative base scale.
    let mut p = parts.clone();
    let n = p.weights.len();
    p.weights[n - 1] = -1.0;
    assert_eq!(reject(&p.to_bytes("")), Error::Invalid(Invalid::BadBase));
    // Bad version, magic; a lying length field.
    let good = parts.to_bytes("");
    let mut b = good.clone();
    b[4] = 9;
    assert_eq!(reject(&b), Error::Format(FormatError::UnsupportedVersion(9)));
    let mut b = good.clone();
    b[0] = b'X';
    assert_eq!(reject(&b), Error::Format(FormatError::BadMagic));
    let mut b = good.clone();
    b[24] = b[24].wrapping_add(1);
    reseal(&mut b);
    assert_eq!(reject(&b), Error::Format(FormatError::BadLayout));
    // Scratch capacity too small.
    let store = aligned(&good);
    assert!(matches!(
        Evaluator::<f32, 16>::new(as_bytes(&store, good.len())),
        Err(Error::ScratchTooSmall { .. })
    ));
    // Misaligned bytes.
    let mut shifted = vec![0u8];
    shifted.extend_from_slice(&good);
    let store = aligned(&shifted);
    assert!(matches!(
        Evaluator::<f32, 4096>::new(&as_bytes(&store, shifted.len())[1..]),
        Err(Error::Format(FormatError::Misaligned))
    ));
}

#[test]
fn seeded_mutations_of_the_description_never_panic() {
    let mut rng = Lcg(5);
    let good = random_maf(2, 1, 2, &[6], &mut rng).to_bytes("");
    let desc_len = u32::from_le_bytes([good[16], good[17], good[18], good[19]]) as usize;
    let mut accepted = 0;
    for _ in 0..20_000 {
        let mut b = good.clone();
        let flips = 1 + (rng.uniform() * 4.0) as usize;
        for _ in 0..flips {
            let at = 32 + (rng.uniform() * desc_len as f64) as usize;
            b[at] = (rng.uniform() * 256.0) as u8;
        }
        reseal(&mut b);
        let store = aligned(&b);
        if let Ok(mut ev) = Evaluator::<f32, 8192>::new(as_bytes(&store, b.len())) {
            accepted += 1;
            let mut x = [0.0f32; 2];
            let c = [0.1f32];
            let _ = ev.log_prob(&[0.5, -0.5], &c);
            let _ = ev.sample(&[0.5, -0.5], &c, &mut x);
        }
    }
    std::eprintln!("mutations accepted as valid models: {accepted} of 20000");
}

/// A random MAF stored with `f64` weights (format version 2).
fn random_maf_f64(seed: u64) -> ModelParts {
    let mut rng = Lcg(seed);
    let mut parts = random_maf(3, 1, 2, &[8, 8], &mut rng);
    parts.weight_type = WeightType::F64;
    // Weights that f32 cannot hold exactly (the random ones already are; make sure of one).
    let k = parts.weights.iter().position(|&w| w != 0.0).unwrap();
    parts.weights[k] = 0.1;
    parts
}

#[test]
fn f64_weights_round_trip_and_evaluate_exactly_in_f64_and_rounded_in_f32() {
    let parts = random_maf_f64(6);
    let bytes = parts.to_bytes("{\"m\":1}");
    assert_eq!(u16::from_le_bytes([bytes[4], bytes[5]]), file::VERSION_F64);
    let (back, meta) = ModelParts::from_bytes(&bytes).unwrap();
    assert_eq!(back, parts);
    assert_eq!(meta, "{\"m\":1}");
    // The same model stored as f32 is a version-1 file.
    let mut parts32 = parts.clone();
    parts32.weight_type = WeightType::F32;
    let bytes32 = parts32.to_bytes("{\"m\":1}");
    assert_eq!(u16::from_le_bytes([bytes32[4], bytes32[5]]), file::VERSION);

    let (store, store32) = (aligned(&bytes), aligned(&bytes32));
    let mut ev64 = Evaluator::<f64, 4096>::new(as_bytes(&store, bytes.len())).unwrap();
    let mut ev32 = Evaluator::<f32, 4096>::new(as_bytes(&store, bytes.len())).unwrap();
    let mut ev32_of_f32_file = Evaluator::<f32, 4096>::new(as_bytes(&store32, bytes32.len())).unwrap();
    assert_eq!(ev64.model().weights, Weights::F64(&parts.weights[..]));
    assert_eq!(ev64.model().n_params(), parts.weights.len());
    let exact = flow_of::<f64, f64>(&parts.desc, &parts.weights, &parts.ints);
    let mut scratch = vec![0.0; exact.scratch_len()];
    let mut rng = Lcg(7);
    let mut moved = 0;
    for _ in 0..300 {
        let x: Vec<f64> = (0..3).map(|_| rng.normal() * 1.5).collect();
        let c = [rng.normal()];
        // f64: the stored f64 weights, exactly.
        let lp = assert_same(&mut ev64, &exact, &x, &c);
        // f32: each weight rounded as it is read, i.e. what the f32 file of the same model gives.
        let (x32, c32): (Vec<f32>, [f32; 1]) = (x.iter().map(|&v| v as f32).collect(), [c[0] as f32]);
        let a = ev32.log_prob(&x32, &c32).unwrap();
        let b = ev32_of_f32_file.log_prob(&x32, &c32).unwrap();
        assert_eq!(a.to_bits(), b.to_bits());
        let (mut za, mut zb) = ([0.0f32; 3], [0.0f32; 3]);
        ev32.inverse(&x32, &c32, &mut za).unwrap();
        ev32_of_f32_file.inverse(&x32, &c32, &mut zb).unwrap();
        assert_eq!(za.map(f32::to_bits), zb.map(f32::to_bits));
        // And the f64 weights matter in f64.
        let f32_weights = parts32.stored_weights();
        let rounded = flow_of::<f64, f64>(&parts.desc, &f32_weights, &parts.ints);
        moved += usize::from(rounded.log_prob(&x, &c, &mut scratch) != lp);
    }
    assert!(
        moved > 250,
        "rounding the weights to f32 moved only {moved} of 300 log-densities"
    );
}

#[test]
fn bad_f64_sections_are_rejected_with_errors() {
    let parts = random_maf_f64(8);
    let good = parts.to_bytes("{}");
    // A weight beyond the f32 range (f32 evaluation would read infinity), a NaN, an infinity.
    for (v, k) in [(1e300, 4), (f64::NAN, 5), (f64::NEG_INFINITY, 6)] {
        let mut p = parts.clone();
        p.weights[k] = v;
        assert_eq!(
            reject(&p.to_bytes("")),
            Error::Invalid(Invalid::NonFiniteWeight { index: k }),
            "{v}"
        );
    }
    // A base scale that is positive in f64 but 0 in f32.
    let mut p = parts.clone();
    let n = p.weights.len();
    p.weights[n - 1] = 1e-300;
    assert_eq!(reject(&p.to_bytes("")), Error::Invalid(Invalid::BadBase));
    // The version field says f32 (or f64 for an f32 file): the section lengths no longer add up.
    let mut b = good.clone();
    b[4..6].copy_from_slice(&file::VERSION.to_le_bytes());
    assert_eq!(reject(&b), Error::Format(FormatError::BadLayout));
    let mut p32 = parts.clone();
    p32.weight_type = WeightType::F32;
    let mut b = p32.to_bytes("");
    b[4..6].copy_from_slice(&file::VERSION_F64.to_le_bytes());
    assert!(matches!(reject(&b), Error::Format(_)));
    // A weight count that does not match the section.
    let mut b = good.clone();
    b[24] = b[24].wrapping_add(1);
    reseal(&mut b);
    assert_eq!(reject(&b), Error::Format(FormatError::BadLayout));
    // 4-byte aligned but not 8-byte aligned memory.
    let mut shifted = vec![0u8; 4];
    shifted.extend_from_slice(&good);
    let store = aligned(&shifted);
    assert_eq!(
        Evaluator::<f64, 4096>::new(&as_bytes(&store, shifted.len())[4..]).err(),
        Some(Error::Format(FormatError::Misaligned))
    );
    // Truncations and bit flips, as for f32 files.
    for n in 0..good.len() {
        assert!(matches!(
            reject(&good[..n]),
            Error::Format(FormatError::Truncated | FormatError::BadMagic)
        ));
    }
    for i in 16 * 8..good.len() * 8 {
        let mut b = good.clone();
        b[i / 8] ^= 1 << (i % 8);
        assert_eq!(
            reject(&b),
            Error::Format(FormatError::ChecksumMismatch),
            "bit {i}"
        );
    }
}

#[test]
fn seeded_mutations_of_f64_weights_and_description_never_panic() {
    let good = random_maf_f64(9).to_bytes("");
    let sec = file::split(&good).unwrap();
    let desc_len = sec.desc.len();
    let w_start = good.len() - sec.weights.len() - sec.ints.len();
    let mut rng = Lcg(10);
    let mut accepted = 0;
    for round in 0..20_000 {
        let mut b = good.clone();
        for _ in 0..1 + (rng.uniform() * 4.0) as usize {
            // Half of the rounds hit the description, half the weights (exponent bytes included).
            let at = if round % 2 == 0 {
                32 + (rng.uniform() * desc_len as f64) as usize
            } else {
                w_start + (rng.uniform() * sec.weights.len() as f64) as usize
            };
            b[at] = (rng.uniform() * 256.0) as u8;
        }
        reseal(&mut b);
        let store = aligned(&b);
        let bytes = as_bytes(&store, b.len());
        for ok in [
            exercise_model_bytes::<f32>(bytes),
            exercise_model_bytes::<f64>(bytes),
        ] {
            accepted += usize::from(ok);
        }
    }
    std::eprintln!("f64 mutations accepted as valid models: {accepted} of 40000 evaluations");
}

/// `grad_block` of the runtime evaluator is `grad` called sample after sample, bit for bit: the
/// log-densities, the input gradients and the parameter gradients summed over the block (the
/// training step), in f32 and f64, with a context per sample.
#[test]
fn block_gradients_equal_per_sample_gradients_bit_for_bit() {
    const N: usize = 5;
    fn check<S: Real + crate::Weight>(parts: &ModelParts, what: &str) {
        let w: Vec<S> = parts.weights.iter().map(|&v| S::from_f64(v)).collect();
        let f = flow_of::<S, S>(&parts.desc, &w, &parts.ints);
        let (d, c) = (parts.desc.dim as usize, parts.desc.context_dim as usize);
        let mut rng = Lcg(5);
        let xs: Vec<S> = (0..N * d).map(|_| S::from_f64(rng.normal())).collect();
        let cs: Vec<S> = (0..N * c).map(|_| S::from_f64(rng.normal())).collect();
        let start: Vec<S> = (0..w.len()).map(|_| S::from_f64(rng.normal() * 0.1)).collect();
        // Per sample, in order.
        let mut s = vec![S::ZERO; f.scratch_len()];
        let mut g1 = start.clone();
        let mut gx1 = vec![S::ZERO; N * d];
        let mut lp1 = [S::ZERO; N];
        for i in 0..N {
            let (x, cx) = (&xs[i * d..(i + 1) * d], &cs[i * c..(i + 1) * c]);
            lp1[i] = f.grad(x, cx, &mut gx1[i * d..(i + 1) * d], Some(&mut g1), &mut s);
        }
        // The block.
        let mut s = vec![S::ZERO; f.grad_block_scratch_len(N)];
        let mut g2 = start.clone();
        let mut gx2 = vec![S::ZERO; N * d];
        let mut lp2 = [S::ZERO; N];
        let x = crate::block::views::<S, N>(&xs, d);
        let cx = crate::block::views::<S, N>(&cs, c);
        let gx = crate::block::views_mut::<S, N>(&mut gx2, d);
        f.grad_block(x, cx, gx, Some(&mut g2), &mut lp2, &mut s);
        let bits = |v: &[S]| v.iter().map(|a| a.to_f64().to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&lp1), bits(&lp2), "log p, {what}");
        assert_eq!(bits(&gx1), bits(&gx2), "g_x, {what}");
        assert_eq!(bits(&g1), bits(&g2), "g_params, {what}");
        assert!(
            g1.iter().zip(&start).filter(|(a, b)| a != b).count() > w.len() / 4,
            "{what}"
        );
    }
    let mut rng = Lcg(9);
    for (d, c, hidden) in [(3, 2, &[8, 8][..]), (2, 0, &[16, 16][..]), (1, 1, &[5][..])] {
        let parts = random_maf(d, c, 3, hidden, &mut rng);
        check::<f32>(&parts, &std::format!("MAF/IAF f32 d={d} c={c}"));
        check::<f64>(&parts, &std::format!("MAF/IAF f64 d={d} c={c}"));
    }
    let (parts, _) = random_maf_with_context_stats(3, 2, 3, &[8, 8], &mut rng);
    check::<f32>(&parts, "MAF/IAF with context standardization, f32");
    check::<f64>(&parts, "MAF/IAF with context standardization, f64");
}

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

/// A random tanh coupling conditioner `n_in → 10 → n_out` (weights `0.5 · N(0, 1)`) in `m`.
fn coupling_net(m: &mut ModelParts, n_in: usize, n_out: usize, rng: &mut Lcg) -> NetDesc {
    let sizes = heapless::Vec::from_slice(&[n_in, 10, n_out]).unwrap();
    let w: Vec<f64> = (0..mlp::n_params(&sizes)).map(|_| rng.normal() * 0.5).collect();
    NetDesc {
        sizes,
        activation: Activation::Tanh,
        residual: false,
        params: m.push_weights(&w),
    }
}

/// The block paths (`log_prob_batch`, `sample_batch`: the transformers in lanes, the kernels the
/// CPU has) give every row the bits of the single-sample methods, for every affine scale and
/// layout, additive couplings and every spline kind, autoregressive and coupling, MAF and IAF, in
/// f32 and f64, at ordinary points, far tails, ±∞ and NaN.
#[test]
fn block_paths_equal_single_samples_for_every_transformer() {
    use crate::arch::{kernel, limit_kernel, Kernel};
    use crate::layers::spline::{SplineKind, SplineOpts};
    let scales = [
        AffineScale::SoftclipExp { bound: 3.0 },
        AffineScale::SoftplusEps { eps: 1e-3 },
        AffineScale::Sigmoid { eps: 1e-3 },
        AffineScale::SoftplusOffset {
            offset: 0.54,
            eps: 0.0,
        },
        AffineScale::SoftplusOffset {
            offset: 0.54,
            eps: 1e-2,
        },
    ];
    let splines = [
        SplineOpts::zuko(8, 3.0, 1e-3),
        SplineOpts::nflows(6, 2.0, 1.0),
        SplineOpts::flowjax(5, 2.5),
        SplineOpts {
            bins: 4,
            bound: 3.0,
            kind: SplineKind::Nflows {
                min_bin_width: 1e-3,
                min_bin_height: 1e-3,
                min_derivative: 1e-3,
            },
            logit_scale: 0.5,
        },
    ];
    const MADE: (f64, f64, Activation) = (0.6, 0.5, Activation::Relu);
    let (d, c) = (5, 1);
    let mut rng = Lcg(23);
    let mut m = ModelParts::new(d, c);
    for (k, &scale) in scales.iter().enumerate() {
        let (net, order, hidden_degrees) = push_made_layer(&mut m, &[12], 2, k % 2 == 1, MADE, &mut rng);
        let layout = if k % 2 == 0 {
            AffineLayout::ShiftScale
        } else {
            AffineLayout::ScaleShift
        };
        let direction = if k % 3 == 1 {
            Direction::Iaf
        } else {
            Direction::Maf
        };
        m.push_layer(LayerDesc::AffineAutoregressive {
            net,
            order,
            hidden_degrees,
            scale,
            layout,
            direction,
        });
        let mask: Vec<u16> = (0..d).map(|i| u16::from((i + k) % 2 == 0)).collect();
        let n_id = mask.iter().filter(|&&v| v == 1).count();
        for additive in [false, k == 0] {
            let per = if additive { 1 } else { 2 };
            let net = coupling_net(&mut m, n_id + c, per * (d - n_id), &mut rng);
            let mask = m.push_ints(&mask);
            m.push_layer(LayerDesc::AffineCoupling {
                net,
                mask,
                scale,
                layout,
                additive,
            });
        }
    }
    for (k, &spline) in splines.iter().enumerate() {
        let p = spline.params_per_feature();
        let (net, order, hidden_degrees) = push_made_layer(&mut m, &[12], p, k % 2 == 0, MADE, &mut rng);
        let direction = if k % 2 == 1 {
            Direction::Iaf
        } else {
            Direction::Maf
        };
        m.push_layer(LayerDesc::SplineAutoregressive {
            net,
            order,
            hidden_degrees,
            spline,
            direction,
        });
        let mask: Vec<u16> = (0..d).map(|i| u16::from((i + k) % 2 == 1)).collect();
        let n_id = mask.iter().filter(|&&v| v == 1).count();
        let net = coupling_net(&mut m, n_id + c, p * (d - n_id), &mut rng);
        let mask = m.push_ints(&mask);
        m.push_layer(LayerDesc::SplineCoupling { net, mask, spline });
    }
    m.set_diag_base(&[0.1; 5], &[1.2; 5]);
    crate::runtime::validate(&m.desc, &m.weights, &m.ints).unwrap();

    fn check<S: Real + crate::Weight>(m: &ModelParts, rng: &mut Lcg, what: &str) {
        let w: Vec<S> = m.weights.iter().map(|&v| S::from_f64(v)).collect();
        let f = crate::runtime::flow_of::<S, S>(&m.desc, &w, &m.ints);
        let (d, n) = (5, 53);
        let special = [f64::NAN, f64::INFINITY, -f64::INFINITY, 1e4, -3.0, 3.0, 2.5];
        let xs: Vec<S> = (0..n * d)
            .map(|i| {
                S::from_f64(if i % 11 == 3 {
                    special[(i / 11) % special.len()]
                } else {
                    2.0 * rng.normal()
                })
            })
            .collect();
        let ctx = [S::from_f64(0.4)];
        let mut scratch = vec![S::ZERO; f.batch_scratch_len().max(f.scratch_len())];
        let mut lp = vec![S::ZERO; n];
        f.log_prob_batch(&xs, &ctx, &mut lp, &mut scratch);
        let mut ys = vec![S::ZERO; n * d];
        f.sample_batch(&xs, &ctx, &mut ys, &mut scratch);
        let same = |a: S, b: S| a.to_f64().to_bits() == b.to_f64().to_bits() || (a.is_nan() && b.is_nan());
        let mut finite = 0;
        for (r, x) in xs.chunks_exact(d).enumerate() {
            let want = f.log_prob(x, &ctx, &mut scratch);
            assert!(
                same(lp[r], want),
                "{what}: log_prob row {r}: {:?} vs {want:?}",
                lp[r]
            );
            finite += usize::from(want.is_finite());
            let mut y = vec![S::ZERO; d];
            f.sample(x, &ctx, &mut y, &mut scratch);
            for i in 0..d {
                assert!(
                    same(ys[r * d + i], y[i]),
                    "{what}: sample row {r}[{i}]: {:?} vs {:?}",
                    ys[r * d + i],
                    y[i]
                );
            }
        }
        assert!(finite > n / 2, "{what}: only {finite} finite log-densities");
    }
    let best = kernel();
    for k in [Kernel::Portable, Kernel::Avx2, Kernel::Avx512]
        .into_iter()
        .filter(|&k| k <= best)
    {
        limit_kernel(k);
        check::<f32>(&m, &mut rng, &std::format!("f32 {}", k.name()));
        check::<f64>(&m, &mut rng, &std::format!("f64 {}", k.name()));
    }
    limit_kernel(best);
}
