//! The MLP's backward pass: the cotangents of the inputs, the context and the parameters from
//! those of the outputs, through the cache of [`Mlp::forward_cached`], and the transposed
//! products and gradient accumulation it shares with the residual network's.

use super::{Activation, Layer, Mlp};
use crate::cotangent::Grads;
use crate::{slicing, Real, Weight};

/// Adds `g ⊗ [input_x, input_c]` to the weight gradient and `g` to the bias gradient of `layer`
/// (`gp` laid out as the MLP's parameters).
#[inline(always)]
pub(super) fn accumulate<S: Real, W>(
    gp: &mut [S],
    layer: &Layer<'_, W>,
    g: &[S],
    input_x: &[S],
    input_c: &[S],
) {
    let n_w = layer.n_in * layer.n_out;
    let (gw, gb) = slicing::split_mut(slicing::range_mut(gp, layer.offset, n_w + layer.n_out), n_w);
    for ((row, gbo), &gv) in slicing::rows_mut(gw, layer.n_in).zip(gb.iter_mut()).zip(g) {
        *gbo += gv;
        let (rx, rc) = slicing::split_mut(row, input_x.len());
        for (r, &xi) in rx.iter_mut().zip(input_x) {
            *r += gv * xi;
        }
        for (r, &ci) in rc.iter_mut().zip(input_c) {
            *r += gv * ci;
        }
    }
}

/// `out += (Wᵀ g)[col..col + out.len()]`: for each output `j`, the products `w[r][col + j] · g[r]`
/// added in increasing `r`. Out of line: one copy for every layer and both passes (on a
/// microcontroller a copy per call site costs flash, and the call is nothing next to the loop).
#[inline(never)]
pub(super) fn add_transpose_cols<S: Real, W: Weight>(
    w: &[W],
    n_in: usize,
    col: usize,
    g: &[S],
    out: &mut [S],
) {
    if col > n_in {
        return;
    }
    for (row, &gv) in slicing::rows(w, n_in).zip(g) {
        for (gi, wi) in out.iter_mut().zip(slicing::split(row, col).1) {
            *gi += wi.get::<S>() * gv;
        }
    }
}

/// `g_in = Wᵀ g` (overwrite) for the first `g_in.len()` input columns.
#[inline(always)]
pub(super) fn transpose_mul<S: Real, W: Weight>(w: &[W], n_in: usize, g: &[S], g_in: &mut [S]) {
    g_in.fill(S::ZERO);
    add_transpose_cols(w, n_in, 0, g, g_in);
}

/// `[g_x, g_c] += Wᵀ g` for the first layer, whose input columns are split at `n_x` into the
/// features and the context.
#[inline(always)]
pub(super) fn add_transpose_mul<S: Real, W: Weight>(
    w: &[W],
    n_in: usize,
    n_x: usize,
    g: &[S],
    g_x: &mut [S],
    g_c: &mut [S],
) {
    if n_x > n_in {
        return;
    }
    let n_x = n_x.min(g_x.len());
    add_transpose_cols(w, n_in, 0, g, slicing::head_mut(g_x, n_x));
    add_transpose_cols(w, n_in, n_x, g, g_c);
}

impl<'a, W: Weight> Mlp<'a, W> {
    /// Back-propagates `g_out = dL/d out` through the network evaluated by [`Mlp::forward_cached`].
    ///
    /// Adds dL/dx into `g_x`, dL/dc into `g_c` and, when given, dL/dθ into `g_params`
    /// (same layout as `params`). `scratch` needs [`Mlp::backward_scratch_len`].
    ///
    /// A dispatcher, always inlined, as [`Mlp::forward`].
    #[inline(always)]
    pub fn backward<S: Real>(
        &self,
        x: &[S],
        c: &[S],
        cache: &[S],
        g_out: &[S],
        grads: Grads<'_, S>,
        scratch: &mut [S],
    ) {
        // The out-of-line kernels take the buffers one by one: a caller's `None` for the
        // parameters then reaches them as a constant and their accumulation is compiled out
        // (2.5 KB instead of 6 KB of Cortex-M4F code for a model's `grad_log_prob`).
        let (g_x, g_c, g_params) = grads.into_parts();
        if self.is_plain_relu() {
            self.backward_relu(x, c, cache, g_out, g_x, g_c, g_params, scratch);
        } else {
            self.backward_dyn(x, c, cache, g_out, g_x, g_c, g_params, scratch);
        }
    }

    /// [`Mlp::backward`] of a ReLU network without residual blocks.
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn backward_relu<S: Real>(
        &self,
        x: &[S],
        c: &[S],
        cache: &[S],
        g_out: &[S],
        g_x: &mut [S],
        g_c: &mut [S],
        g_params: Option<&mut [S]>,
        scratch: &mut [S],
    ) {
        self.backward_plain(Activation::Relu, x, c, cache, g_out, g_x, g_c, g_params, scratch);
    }

    /// [`Mlp::backward`] with the activation and structure read at run time.
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn backward_dyn<S: Real>(
        &self,
        x: &[S],
        c: &[S],
        cache: &[S],
        g_out: &[S],
        g_x: &mut [S],
        g_c: &mut [S],
        g_params: Option<&mut [S]>,
        scratch: &mut [S],
    ) {
        if self.residual {
            let grads = Grads::new(g_x, g_c, g_params);
            return self.backward_residual(x, c, cache, g_out, grads, scratch);
        }
        let act = self.activation;
        self.backward_plain(act, x, c, cache, g_out, g_x, g_c, g_params, scratch);
    }

    /// [`Mlp::backward`] of a network without residual blocks, `activation` after each hidden
    /// layer.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn backward_plain<S: Real>(
        &self,
        activation: Activation,
        x: &[S],
        c: &[S],
        cache: &[S],
        g_out: &[S],
        g_x: &mut [S],
        g_c: &mut [S],
        mut g_params: Option<&mut [S]>,
        scratch: &mut [S],
    ) {
        let h = self.backward_width();
        let (buf_a, rest) = slicing::split_mut(scratch, h);
        let buf_b = slicing::head_mut(rest, h);
        let n_layers = self.n_layers();
        // Walk the layers backwards (`k` = 0 is the last layer). `g_cur` holds dL/d(output of the
        // layer) (post-activation for hidden layers), and we write dL/d(input of the layer) into
        // the other buffer. `cache` shrinks from its end: it ends with the layer's input.
        let mut cache = slicing::head(cache, self.cache_len());
        for (k, layer) in self.layers().rev().enumerate() {
            let first = k + 1 == n_layers;
            let (g_cur, g_next): (&mut [S], &mut [S]) = if k % 2 == 0 {
                (&mut buf_b[..], &mut buf_a[..])
            } else {
                (&mut buf_a[..], &mut buf_b[..])
            };
            // dL/d(pre-activation) of this layer: `g_out` for the last layer, else in place.
            // (Early returns rather than empty fallbacks here: exact lengths let the loops below
            // vectorize as well as before.)
            let g_pre: &[S] = if k == 0 {
                let Some(g_pre) = g_out.get(..layer.n_out) else {
                    return;
                };
                g_pre
            } else {
                let Some(g_pre) = g_cur.get_mut(..layer.n_out) else {
                    return;
                };
                let Some((rest, pre_post)) = slicing::split_back_checked(cache, 2 * layer.n_out) else {
                    return;
                };
                let Some((pre, post)) = pre_post.split_at_checked(layer.n_out) else {
                    return;
                };
                cache = rest;
                for ((g, &z), &y) in g_pre.iter_mut().zip(pre).zip(post) {
                    *g *= activation.grad(z, y);
                }
                g_pre
            };
            // Input of this layer: [x, c], or the activations of the previous one.
            if let Some(gp) = g_params.as_deref_mut() {
                if first {
                    accumulate(gp, &layer, g_pre, x, c);
                } else {
                    accumulate(gp, &layer, g_pre, slicing::split_back(cache, layer.n_in).1, &[]);
                }
            }
            // dL/d input = Wᵀ g_pre.
            if first {
                add_transpose_mul(layer.w, layer.n_in, x.len(), g_pre, g_x, g_c);
            } else {
                let Some(g_in) = g_next.get_mut(..layer.n_in) else {
                    return;
                };
                transpose_mul(layer.w, layer.n_in, g_pre, g_in);
            }
        }
    }
}
