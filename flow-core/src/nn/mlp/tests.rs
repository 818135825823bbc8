//! Tests of the MLP: cached forward against forward, backward against finite differences.

use super::*;
use crate::cotangent::Grads;
use crate::testing::Lcg;

const ACTS: [Activation; 4] = [
    Activation::Relu,
    Activation::Tanh,
    Activation::Elu,
    Activation::Silu,
];

fn eval(m: &Mlp<f64>, x: &[f64], c: &[f64]) -> [f64; 3] {
    let mut out = [0.0; 3];
    let mut s = [0.0; 64];
    m.forward(x, c, &mut out, &mut s);
    out
}

#[test]
fn cached_forward_equals_forward_and_backward_equals_finite_differences() {
    for residual in [false, true] {
        check_mlp(residual);
    }
}

fn check_mlp(residual: bool) {
    let sizes: &[usize] = if residual {
        &[4, 5, 5, 5, 5, 5, 3]
    } else {
        &[4, 5, 6, 3]
    };
    let mut rng = Lcg(7);
    for act in ACTS {
        let params: std::vec::Vec<f64> = (0..n_params(sizes)).map(|_| rng.normal() * 0.7).collect();
        let x = [0.3, -1.2, 0.8];
        let c = [0.5];
        let m = Mlp {
            sizes,
            params: &params,
            activation: act,
            residual,
        };
        let out = eval(&m, &x, &c);
        let mut cache = std::vec![0.0; m.cache_len()];
        let mut out2 = [0.0; 3];
        m.forward_cached(&x, &c, &mut out2, &mut cache);
        assert_eq!(out, out2);
        // L = Σ v_i out_i.
        let v = [0.7, -1.1, 0.4];
        let (mut gx, mut gc) = ([0.0; 3], [0.0; 1]);
        let mut gp = std::vec![0.0; params.len()];
        let mut scratch = std::vec![0.0; m.backward_scratch_len()];
        m.backward(
            &x,
            &c,
            &cache,
            &v,
            Grads::new(&mut gx, &mut gc, Some(&mut gp)),
            &mut scratch,
        );
        let loss = |p: &[f64], x: &[f64], c: &[f64]| {
            let m = Mlp {
                sizes,
                params: p,
                activation: act,
                residual,
            };
            let o = eval(&m, x, c);
            v.iter().zip(o.iter()).map(|(a, b)| a * b).sum::<f64>()
        };
        let h = 1e-6;
        for i in 0..3 {
            let (mut xp, mut xm) = (x, x);
            xp[i] += h;
            xm[i] -= h;
            let fd = (loss(&params, &xp, &c) - loss(&params, &xm, &c)) / (2.0 * h);
            assert!((fd - gx[i]).abs() < 1e-6, "{act:?} x{i}: {fd} vs {}", gx[i]);
        }
        let fd = (loss(&params, &x, &[c[0] + h]) - loss(&params, &x, &[c[0] - h])) / (2.0 * h);
        assert!((fd - gc[0]).abs() < 1e-6);
        for k in 0..params.len() {
            let mut pp = params.clone();
            pp[k] += h;
            let mut pm = params.clone();
            pm[k] -= h;
            let fd = (loss(&pp, &x, &c) - loss(&pm, &x, &c)) / (2.0 * h);
            assert!((fd - gp[k]).abs() < 1e-6, "{act:?} param {k}: {fd} vs {}", gp[k]);
        }
    }
}
