//! The residual MLP (nflows' `ResidualNet`, residual MADE): input layer, blocks
//! `h ← h + L₂(a(L₁(a(h))))`, output layer; its forward (with or without a cache) and backward.

use super::backward::{accumulate, add_transpose_mul, transpose_mul};
use super::Mlp;
use crate::cotangent::Grads;
use crate::nn::dense::dense_one as dense;
use crate::{slicing, Real, Weight};

impl<'a, W: Weight> Mlp<'a, W> {
    /// Residual forward. Cache layout: `h₀`, then per block `a₁, t, a₂, h_out` (width H each).
    /// Without a cache, `scratch` holds `h, a, t`.
    pub(super) fn forward_residual<S: Real>(
        &self,
        x: &[S],
        c: &[S],
        out: &mut [S],
        scratch: &mut [S],
        cache: Option<&mut [S]>,
    ) {
        let mut layers = self.layers();
        let (Some(first), Some(last)) = (layers.next(), layers.next_back()) else {
            return;
        };
        let h = first.n_out;
        let act = self.activation;
        match cache {
            Some(mut free) => {
                let Some(h0) = slicing::take_front(&mut free, h) else {
                    return;
                };
                dense(first.w, first.b, x, c, h0);
                let mut h_in: &[S] = h0;
                while let (Some(l1), Some(l2)) = (layers.next(), layers.next()) {
                    let mut take = || slicing::take_front(&mut free, h);
                    let (Some(a1), Some(t), Some(a2), Some(hout)) = (take(), take(), take(), take()) else {
                        return;
                    };
                    for (a, &v) in a1.iter_mut().zip(h_in) {
                        *a = act.apply(v);
                    }
                    dense(l1.w, l1.b, a1, &[], t);
                    for (a, &v) in a2.iter_mut().zip(t.iter()) {
                        *a = act.apply(v);
                    }
                    dense(l2.w, l2.b, a2, &[], hout);
                    for (o, &v) in hout.iter_mut().zip(h_in) {
                        *o += v;
                    }
                    h_in = hout;
                }
                dense(last.w, last.b, h_in, &[], out);
            }
            None => {
                let (hb, r) = slicing::split_mut(scratch, h);
                let (a, r) = slicing::split_mut(r, h);
                let t = slicing::head_mut(r, h);
                // A short scratch ends the evaluation (then `t`, the last one, is short).
                if t.len() != h {
                    return;
                }
                dense(first.w, first.b, x, c, hb);
                while let (Some(l1), Some(l2)) = (layers.next(), layers.next()) {
                    for (av, &v) in a.iter_mut().zip(hb.iter()) {
                        *av = act.apply(v);
                    }
                    dense(l1.w, l1.b, a, &[], t);
                    for (av, &v) in a.iter_mut().zip(t.iter()) {
                        *av = act.apply(v);
                    }
                    dense(l2.w, l2.b, a, &[], t);
                    for (hv, &u) in hb.iter_mut().zip(t.iter()) {
                        *hv += u;
                    }
                }
                dense(last.w, last.b, hb, &[], out);
            }
        }
    }

    pub(super) fn backward_residual<S: Real>(
        &self,
        x: &[S],
        c: &[S],
        cache: &[S],
        g_out: &[S],
        grads: Grads<'_, S>,
        scratch: &mut [S],
    ) {
        let (g_x, g_c, mut g_params) = grads.into_parts();
        let mut layers = self.layers();
        let (Some(first), Some(last)) = (layers.next(), layers.next_back()) else {
            return;
        };
        let h = first.n_out;
        let (g_h, rest) = slicing::split_mut(scratch, h);
        let (g_a, rest) = slicing::split_mut(rest, h);
        let g_t = slicing::head_mut(rest, h);
        // The cache in use, `h₀` and 4H per block; it shrinks from its end block by block, so
        // that it ends with the h entering the block (the previous block's h_out, or h₀).
        let blocks = self.sizes.len().saturating_sub(3) / 2;
        let mut cache = slicing::head(cache, h + 4 * h * blocks);
        if let Some(gp) = g_params.as_deref_mut() {
            accumulate(gp, &last, g_out, slicing::split_back(cache, h).1, &[]);
        }
        transpose_mul(last.w, h, g_out, g_h);
        while let (Some(l2), Some(l1)) = (layers.next_back(), layers.next_back()) {
            let (rest, block) = slicing::split_back(cache, 4 * h);
            cache = rest;
            let (a1, block) = slicing::split(block, h);
            let (t, block) = slicing::split(block, h);
            let a2 = slicing::head(block, h);
            let h_in = slicing::split_back(cache, h).1;
            // u = L₂(a₂): g_u = g_h.
            if let Some(gp) = g_params.as_deref_mut() {
                accumulate(gp, &l2, g_h, a2, &[]);
            }
            transpose_mul(l2.w, h, g_h, g_a);
            for ((g, &tv), &av) in g_a.iter_mut().zip(t).zip(a2) {
                *g *= self.activation.grad(tv, av);
            }
            // t = L₁(a₁).
            if let Some(gp) = g_params.as_deref_mut() {
                accumulate(gp, &l1, g_a, a1, &[]);
            }
            transpose_mul(l1.w, h, g_a, g_t);
            // h_out = h_in + u: g_h_in = g_h + g_a₁ · a'(h_in).
            for ((g, &gt), (&hv, &av)) in g_h.iter_mut().zip(g_t.iter()).zip(h_in.iter().zip(a1)) {
                *g += gt * self.activation.grad(hv, av);
            }
        }
        if let Some(gp) = g_params {
            accumulate(gp, &first, g_h, x, c);
        }
        add_transpose_mul(first.w, first.n_in, x.len(), g_h, g_x, g_c);
    }
}
