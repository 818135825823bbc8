//! A dense multi-layer perceptron, the conditioner network of every autoregressive and coupling layer.
//!
//! Parameters are one flat slice, layer after layer: the weight matrix `W` (`out × in`, row-major)
//! then the bias `b` (`out`). Hidden layers apply the activation; the last layer is linear.
//! The first layer reads two inputs, the features `x` then the context `c`, as if concatenated
//! (`[x, c]`, zuko's convention), without copying them.
//!
//! With `residual`, the layers are: an input layer (no activation after it), blocks of two
//! equal-width layers `h ← h + L₂(a(L₁(a(h))))`, and the output layer applied to `h` directly
//! (nflows' `ResidualNet` and residual MADE). Sizes are then `[n_in, H, H, …, H, n_out]` with an
//! even number of `H × H` layers.
//!
//! MADE masks are applied before the weights get here: model files store `W ⊙ mask` (the writers
//! multiply, the validator checks that masked entries are zero), so this kernel is a plain MLP.

use serde::{Deserialize, Serialize};

use crate::nn::dense::{self as kernel, dense_one as dense};
use crate::{math, Real, Weight};

/// The nonlinearity between hidden layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activation {
    /// max(0, x).
    Relu,
    /// tanh(x).
    Tanh,
    /// x for x > 0, eˣ − 1 otherwise.
    Elu,
    /// x · σ(x) (also called swish).
    Silu,
}

impl Activation {
    /// a(x).
    #[inline(always)]
    pub fn apply<S: Real>(self, x: S) -> S {
        match self {
            Activation::Relu => {
                if x > S::ZERO {
                    x
                } else {
                    S::ZERO
                }
            }
            Activation::Tanh => x.tanh(),
            Activation::Elu => {
                if x > S::ZERO {
                    x
                } else {
                    x.exp_m1()
                }
            }
            Activation::Silu => x * math::sigmoid(x),
        }
    }

    /// `v ← a(v)` for every element. The match is outside the loop, so each arm is a plain loop
    /// the compiler can vectorize (a per-element match compiled to an indirect jump per value).
    #[inline(always)]
    pub fn apply_all<S: Real>(self, v: &mut [S]) {
        match self {
            Activation::Relu => v.iter_mut().for_each(|x| *x = Activation::Relu.apply(*x)),
            Activation::Tanh => v.iter_mut().for_each(|x| *x = Activation::Tanh.apply(*x)),
            Activation::Elu => v.iter_mut().for_each(|x| *x = Activation::Elu.apply(*x)),
            Activation::Silu => v.iter_mut().for_each(|x| *x = Activation::Silu.apply(*x)),
        }
    }

    /// a'(x), given the pre-activation `x` and the activation `y = a(x)`.
    #[inline(always)]
    pub fn grad<S: Real>(self, x: S, y: S) -> S {
        match self {
            Activation::Relu => {
                if x > S::ZERO {
                    S::ONE
                } else {
                    S::ZERO
                }
            }
            Activation::Tanh => S::ONE - y * y,
            Activation::Elu => {
                if x > S::ZERO {
                    S::ONE
                } else {
                    y + S::ONE
                }
            }
            Activation::Silu => {
                let s = math::sigmoid(x);
                s * (S::ONE + x * (S::ONE - s))
            }
        }
    }
}

/// A borrowed MLP: layer sizes `[n_in, h_1, …, h_k, n_out]` (with `n_in` = features + context) and
/// its flat parameters.
#[derive(Clone, Copy, Debug)]
pub struct Mlp<'a, W> {
    /// `[n_in, h_1, …, n_out]`; at least two entries.
    pub sizes: &'a [usize],
    /// All weights and biases, layer by layer (see the module docs); `n_params(sizes)` long.
    pub params: &'a [W],
    /// Activation of the hidden layers.
    pub activation: Activation,
    /// Residual blocks (nflows' `ResidualNet` / residual MADE): see [`Mlp::forward`].
    pub residual: bool,
}

/// Number of parameters of an MLP with these sizes: Σ (in · out + out).
pub const fn n_params(sizes: &[usize]) -> usize {
    let mut n = 0;
    let mut i = 1;
    while i < sizes.len() {
        n += sizes[i - 1] * sizes[i] + sizes[i];
        i += 1;
    }
    n
}

/// Σ of the hidden widths (the activations a cached pass keeps, twice: pre- and post-activation).
pub const fn hidden_total(sizes: &[usize]) -> usize {
    let mut n = 0;
    let mut i = 1;
    while i + 1 < sizes.len() {
        n += sizes[i];
        i += 1;
    }
    n
}

/// The widest hidden layer (0 without hidden layers).
pub const fn hidden_max(sizes: &[usize]) -> usize {
    let mut n = 0;
    let mut i = 1;
    while i + 1 < sizes.len() {
        if sizes[i] > n {
            n = sizes[i];
        }
        i += 1;
    }
    n
}

impl<'a, W: Weight> Mlp<'a, W> {
    /// Number of inputs (features + context).
    #[inline]
    pub fn n_in(&self) -> usize {
        self.sizes[0]
    }

    /// Number of outputs.
    #[inline]
    pub fn n_out(&self) -> usize {
        self.sizes[self.sizes.len() - 1]
    }

    /// Scratch that [`Mlp::forward`] needs: three buffers of the widest hidden layer (residual
    /// networks), and at least the inputs, two hidden buffers and the outputs, so that a block of
    /// `n` samples ([`Mlp::block_scratch_len`]) never needs more than `n` times this.
    pub fn scratch_len(&self) -> usize {
        let h = hidden_max(self.sizes);
        (3 * h).max(2 * h + self.n_in() + self.n_out())
    }

    /// Cache that [`Mlp::forward_cached`] fills for [`Mlp::backward`]: pre- and post-activations.
    pub fn cache_len(&self) -> usize {
        2 * hidden_total(self.sizes)
    }

    /// Scratch that [`Mlp::backward`] needs besides the cache.
    pub fn backward_scratch_len(&self) -> usize {
        3 * self.backward_width()
    }

    fn backward_width(&self) -> usize {
        let h = hidden_max(self.sizes);
        let o = self.n_out();
        if h > o {
            h
        } else {
            o
        }
    }

    /// Evaluates the network on `[x, c]` into `out` (`n_out` long), using `scratch` for activations.
    pub fn forward<S: Real>(&self, x: &[S], c: &[S], out: &mut [S], scratch: &mut [S]) {
        if self.residual {
            return self.forward_residual(x, c, out, scratch, None);
        }
        let h = hidden_max(self.sizes);
        let (buf_a, rest) = scratch.split_at_mut(h);
        let buf_b = &mut rest[..h];
        let n_layers = self.sizes.len() - 1;
        let mut offset = 0;
        for l in 0..n_layers {
            let (n_in, n_out) = (self.sizes[l], self.sizes[l + 1]);
            let w = &self.params[offset..offset + n_in * n_out];
            let b = &self.params[offset + n_in * n_out..offset + n_in * n_out + n_out];
            offset += n_in * n_out + n_out;
            let last = l + 1 == n_layers;
            // Ping-pong between the two buffers: layer l reads the buffer layer l-1 wrote.
            let (src, dst): (&[S], &mut [S]) = if l % 2 == 0 {
                (&buf_b[..], &mut buf_a[..])
            } else {
                (&buf_a[..], &mut buf_b[..])
            };
            let dst: &mut [S] = if last { &mut *out } else { &mut dst[..n_out] };
            if l == 0 {
                dense(w, b, x, c, dst);
            } else {
                dense(w, b, &src[..n_in], &[], dst);
            }
            if !last {
                self.activation.apply_all(dst);
            }
        }
    }

    /// Scratch of [`Mlp::forward_block`] for `n` samples: the inputs, two buffers of the widest
    /// hidden layer and the outputs, for every sample (residual networks run sample by sample:
    /// [`Mlp::scratch_len`]). At most `n ·` [`Mlp::scratch_len`].
    pub fn block_scratch_len(&self, n: usize) -> usize {
        if self.residual {
            self.scratch_len()
        } else {
            n * (2 * hidden_max(self.sizes) + self.n_in() + self.n_out())
        }
    }

    /// [`Mlp::forward`] for `N` samples at once (`x[s]`, `c[s]` → `out[s]`). The samples are
    /// transposed to structure of arrays (`h[k][s]`), so every dense layer is one
    /// [`kernel::dense_soa`] call whose vector lanes are the `N` samples; each output is bit for
    /// bit the one [`Mlp::forward`] gives. Residual networks run sample by sample. `scratch` needs
    /// [`Mlp::block_scratch_len`]`(N)`.
    pub fn forward_block<S: Real, const N: usize>(
        &self,
        x: [&[S]; N],
        c: [&[S]; N],
        mut out: [&mut [S]; N],
        scratch: &mut [S],
    ) {
        if self.residual {
            for ((xs, cs), o) in x.into_iter().zip(c).zip(out) {
                self.forward(xs, cs, o, scratch);
            }
            return;
        }
        let h = hidden_max(self.sizes);
        let (n_in0, n_last) = (self.n_in(), self.n_out());
        let kx = x.first().map_or(0, |v| v.len()).min(n_in0);
        let (soa, _) = scratch.as_chunks_mut::<N>();
        let Some((inputs, rest)) = soa.split_at_mut_checked(n_in0) else {
            return;
        };
        let Some((buf_a, rest)) = rest.split_at_mut_checked(h) else {
            return;
        };
        let Some((buf_b, rest)) = rest.split_at_mut_checked(h) else {
            return;
        };
        let Some(out_t) = rest.get_mut(..n_last) else {
            return;
        };
        // Transpose the inputs: [x, c] of sample s becomes column s.
        for (k, row) in inputs.iter_mut().enumerate() {
            for (v, (xs, cs)) in row.iter_mut().zip(x.iter().zip(c.iter())) {
                let src = if k < kx { xs.get(k) } else { cs.get(k - kx) };
                *v = src.copied().unwrap_or(S::ZERO);
            }
        }
        let (in_x, in_c) = inputs.split_at(kx);
        let n_layers = self.sizes.len().saturating_sub(1);
        let mut offset = 0;
        for l in 0..n_layers {
            let (Some(&n_in), Some(&n_out)) = (self.sizes.get(l), self.sizes.get(l + 1)) else {
                return;
            };
            let n_w = n_in * n_out;
            let (Some(w), Some(b)) = (
                self.params.get(offset..offset + n_w),
                self.params.get(offset + n_w..offset + n_w + n_out),
            ) else {
                return;
            };
            offset += n_w + n_out;
            // Ping-pong as in `forward`: layer l reads what layer l − 1 wrote.
            let (src, dst): (&[[S; N]], &mut [[S; N]]) = if l % 2 == 0 {
                (&buf_b[..], &mut buf_a[..])
            } else {
                (&buf_a[..], &mut buf_b[..])
            };
            let last = l + 1 == n_layers;
            let dst: &mut [[S; N]] = if last {
                &mut out_t[..]
            } else {
                dst.get_mut(..n_out).unwrap_or(&mut [])
            };
            if l == 0 {
                kernel::dense_soa(w, b, in_x, in_c, dst);
            } else {
                kernel::dense_soa(w, b, src.get(..n_in).unwrap_or(&[]), &[], dst);
            }
            if !last {
                self.activation.apply_all(dst.as_flattened_mut());
            }
        }
        // Transpose the outputs back.
        for (r, row) in out_t.iter().enumerate() {
            for (o, &v) in out.iter_mut().zip(row.iter()) {
                if let Some(slot) = o.get_mut(r) {
                    *slot = v;
                }
            }
        }
    }

    /// As [`Mlp::forward`], keeping every hidden pre-activation and activation in `cache`
    /// (`cache_len()` long: for each hidden layer, its pre-activations then its activations).
    pub fn forward_cached<S: Real>(&self, x: &[S], c: &[S], out: &mut [S], cache: &mut [S]) {
        if self.residual {
            return self.forward_residual(x, c, out, &mut [], Some(cache));
        }
        let n_layers = self.sizes.len() - 1;
        let mut offset = 0;
        let mut cache_at = 0;
        for l in 0..n_layers {
            let (n_in, n_out) = (self.sizes[l], self.sizes[l + 1]);
            let w = &self.params[offset..offset + n_in * n_out];
            let b = &self.params[offset + n_in * n_out..offset + n_in * n_out + n_out];
            offset += n_in * n_out + n_out;
            if l + 1 == n_layers {
                if l == 0 {
                    dense(w, b, x, c, out);
                } else {
                    let prev = &cache[cache_at - n_in..cache_at];
                    dense(w, b, prev, &[], out);
                }
            } else {
                let (before, after) = cache.split_at_mut(cache_at);
                let (pre, post) = after[..2 * n_out].split_at_mut(n_out);
                if l == 0 {
                    dense(w, b, x, c, pre);
                } else {
                    dense(w, b, &before[cache_at - n_in..], &[], pre);
                }
                for (p, &z) in post.iter_mut().zip(pre.iter()) {
                    *p = self.activation.apply(z);
                }
                cache_at += 2 * n_out;
            }
        }
    }

    /// Back-propagates `g_out = dL/d out` through the network evaluated by [`Mlp::forward_cached`].
    ///
    /// Adds dL/dx into `g_x`, dL/dc into `g_c` and, when given, dL/dθ into `g_params`
    /// (same layout as `params`). `scratch` needs [`Mlp::backward_scratch_len`].
    #[allow(clippy::too_many_arguments)]
    pub fn backward<S: Real>(
        &self,
        x: &[S],
        c: &[S],
        cache: &[S],
        g_out: &[S],
        g_x: &mut [S],
        g_c: &mut [S],
        mut g_params: Option<&mut [S]>,
        scratch: &mut [S],
    ) {
        if self.residual {
            return self.backward_residual(x, c, cache, g_out, g_x, g_c, g_params, scratch);
        }
        let h = self.backward_width();
        let (buf_a, rest) = scratch.split_at_mut(h);
        let buf_b = &mut rest[..h];
        let n_layers = self.sizes.len() - 1;
        // Walk the layers backwards. `g_cur` holds dL/d(output of layer l) (post-activation for
        // hidden layers), and we write dL/d(input of layer l) into the other buffer.
        let mut offset = n_params(self.sizes);
        let mut cache_end = self.cache_len();
        for l in (0..n_layers).rev() {
            let (n_in, n_out) = (self.sizes[l], self.sizes[l + 1]);
            offset -= n_in * n_out + n_out;
            let w = &self.params[offset..offset + n_in * n_out];
            let last = l + 1 == n_layers;
            let use_a = (n_layers - 1 - l).is_multiple_of(2);
            let (g_cur, g_next): (&mut [S], &mut [S]) = if use_a {
                (&mut buf_b[..], &mut buf_a[..])
            } else {
                (&mut buf_a[..], &mut buf_b[..])
            };
            // dL/d(pre-activation) of this layer, in place.
            let g_pre: &mut [S] = if last {
                g_cur[..n_out].copy_from_slice(g_out);
                &mut g_cur[..n_out]
            } else {
                let pre = &cache[cache_end - 2 * n_out..cache_end - n_out];
                let post = &cache[cache_end - n_out..cache_end];
                cache_end -= 2 * n_out;
                for ((g, &z), &y) in g_cur[..n_out].iter_mut().zip(pre).zip(post) {
                    *g *= self.activation.grad(z, y);
                }
                &mut g_cur[..n_out]
            };
            // Input of this layer (activations of the previous one, or [x, c]).
            let input_prev: &[S] = if l == 0 {
                &[]
            } else {
                &cache[cache_end - n_in..cache_end]
            };
            if let Some(gp) = g_params.as_deref_mut() {
                let (gw, gb) = gp[offset..offset + n_in * n_out + n_out].split_at_mut(n_in * n_out);
                for ((row, gbo), &g) in gw.chunks_exact_mut(n_in).zip(gb.iter_mut()).zip(g_pre.iter()) {
                    *gbo += g;
                    if l == 0 {
                        let (rx, rc) = row.split_at_mut(x.len());
                        for (r, &xi) in rx.iter_mut().zip(x) {
                            *r += g * xi;
                        }
                        for (r, &ci) in rc.iter_mut().zip(c) {
                            *r += g * ci;
                        }
                    } else {
                        for (r, &xi) in row.iter_mut().zip(input_prev) {
                            *r += g * xi;
                        }
                    }
                }
            }
            // dL/d input = Wᵀ g_pre.
            if l == 0 {
                for (row, &g) in w.chunks_exact(n_in).zip(g_pre.iter()) {
                    let (wx, wc) = row.split_at(x.len());
                    for (gi, wi) in g_x.iter_mut().zip(wx) {
                        *gi += wi.get::<S>() * g;
                    }
                    for (gi, wi) in g_c.iter_mut().zip(wc) {
                        *gi += wi.get::<S>() * g;
                    }
                }
            } else {
                let g_in = &mut g_next[..n_in];
                g_in.fill(S::ZERO);
                for (row, &g) in w.chunks_exact(n_in).zip(g_pre.iter()) {
                    for (gi, wi) in g_in.iter_mut().zip(row) {
                        *gi += wi.get::<S>() * g;
                    }
                }
            }
        }
    }
}

/// `(weights, bias)` of layer `l`.
#[inline(always)]
fn layer_params<'p, W>(sizes: &[usize], params: &'p [W], l: usize) -> (&'p [W], &'p [W], usize) {
    let mut offset = 0;
    for k in 0..l {
        offset += sizes[k] * sizes[k + 1] + sizes[k + 1];
    }
    let (n_in, n_out) = (sizes[l], sizes[l + 1]);
    (
        &params[offset..offset + n_in * n_out],
        &params[offset + n_in * n_out..offset + n_in * n_out + n_out],
        offset,
    )
}

/// Adds `g ⊗ input` to the weight gradient and `g` to the bias gradient of one layer.
#[inline(always)]
fn accumulate<S: Real>(gp: &mut [S], offset: usize, n_in: usize, g: &[S], input_x: &[S], input_c: &[S]) {
    let n_out = g.len();
    let (gw, gb) = gp[offset..offset + n_in * n_out + n_out].split_at_mut(n_in * n_out);
    for ((row, gbo), &gv) in gw.chunks_exact_mut(n_in).zip(gb.iter_mut()).zip(g) {
        *gbo += gv;
        let (rx, rc) = row.split_at_mut(input_x.len());
        for (r, &xi) in rx.iter_mut().zip(input_x) {
            *r += gv * xi;
        }
        for (r, &ci) in rc.iter_mut().zip(input_c) {
            *r += gv * ci;
        }
    }
}

/// `g_in = Wᵀ g` (overwrite) for the first `g_in.len()` input columns.
#[inline(always)]
fn transpose_mul<S: Real, W: Weight>(w: &[W], n_in: usize, g: &[S], g_in: &mut [S]) {
    g_in.fill(S::ZERO);
    for (row, &gv) in w.chunks_exact(n_in).zip(g) {
        for (gi, wi) in g_in.iter_mut().zip(row) {
            *gi += wi.get::<S>() * gv;
        }
    }
}

impl<'a, W: Weight> Mlp<'a, W> {
    fn blocks(&self) -> usize {
        (self.sizes.len() - 3) / 2
    }

    /// Residual forward. Cache layout: `h₀`, then per block `a₁, t, a₂, h_out` (width H each).
    /// Without a cache, `scratch` holds `h, a, t`.
    fn forward_residual<S: Real>(
        &self,
        x: &[S],
        c: &[S],
        out: &mut [S],
        scratch: &mut [S],
        cache: Option<&mut [S]>,
    ) {
        let h = self.sizes[1];
        let n_layers = self.sizes.len() - 1;
        let act = self.activation;
        let (w0, b0, _) = layer_params(self.sizes, self.params, 0);
        let (wl, bl, _) = layer_params(self.sizes, self.params, n_layers - 1);
        match cache {
            Some(cache) => {
                dense(w0, b0, x, c, &mut cache[..h]);
                let mut cur = 0;
                for blk in 0..self.blocks() {
                    let base = h + 4 * h * blk;
                    let (before, after) = cache.split_at_mut(base);
                    let h_in = &before[cur..cur + h];
                    let (a1, r) = after.split_at_mut(h);
                    let (t, r) = r.split_at_mut(h);
                    let (a2, r) = r.split_at_mut(h);
                    let hout = &mut r[..h];
                    for (a, &v) in a1.iter_mut().zip(h_in) {
                        *a = act.apply(v);
                    }
                    let (w, b, _) = layer_params(self.sizes, self.params, 2 * blk + 1);
                    dense(w, b, a1, &[], t);
                    for (a, &v) in a2.iter_mut().zip(t.iter()) {
                        *a = act.apply(v);
                    }
                    let (w, b, _) = layer_params(self.sizes, self.params, 2 * blk + 2);
                    dense(w, b, a2, &[], hout);
                    for (o, &v) in hout.iter_mut().zip(h_in) {
                        *o += v;
                    }
                    cur = base + 3 * h;
                }
                dense(wl, bl, &cache[cur..cur + h], &[], out);
            }
            None => {
                let (hb, r) = scratch.split_at_mut(h);
                let (a, r) = r.split_at_mut(h);
                let t = &mut r[..h];
                dense(w0, b0, x, c, hb);
                for blk in 0..self.blocks() {
                    for (av, &v) in a.iter_mut().zip(hb.iter()) {
                        *av = act.apply(v);
                    }
                    let (w, b, _) = layer_params(self.sizes, self.params, 2 * blk + 1);
                    dense(w, b, a, &[], t);
                    for (av, &v) in a.iter_mut().zip(t.iter()) {
                        *av = act.apply(v);
                    }
                    let (w, b, _) = layer_params(self.sizes, self.params, 2 * blk + 2);
                    dense(w, b, a, &[], t);
                    for (hv, &u) in hb.iter_mut().zip(t.iter()) {
                        *hv += u;
                    }
                }
                dense(wl, bl, hb, &[], out);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn backward_residual<S: Real>(
        &self,
        x: &[S],
        c: &[S],
        cache: &[S],
        g_out: &[S],
        g_x: &mut [S],
        g_c: &mut [S],
        mut g_params: Option<&mut [S]>,
        scratch: &mut [S],
    ) {
        let h = self.sizes[1];
        let n_layers = self.sizes.len() - 1;
        let blocks = self.blocks();
        let (g_h, rest) = scratch.split_at_mut(h);
        let (g_a, rest) = rest.split_at_mut(h);
        let g_t = &mut rest[..h];
        // h entering the output layer: the last block's h_out, or h₀.
        let h_last = if blocks == 0 {
            &cache[..h]
        } else {
            &cache[h + 4 * h * (blocks - 1) + 3 * h..][..h]
        };
        let (w, _, off) = layer_params(self.sizes, self.params, n_layers - 1);
        if let Some(gp) = g_params.as_deref_mut() {
            accumulate(gp, off, h, g_out, h_last, &[]);
        }
        transpose_mul(w, h, g_out, g_h);
        for blk in (0..blocks).rev() {
            let base = h + 4 * h * blk;
            let a1 = &cache[base..base + h];
            let t = &cache[base + h..base + 2 * h];
            let a2 = &cache[base + 2 * h..base + 3 * h];
            let h_in = if blk == 0 {
                &cache[..h]
            } else {
                &cache[base - h..base]
            };
            // u = L₂(a₂): g_u = g_h.
            let (w2, _, off2) = layer_params(self.sizes, self.params, 2 * blk + 2);
            if let Some(gp) = g_params.as_deref_mut() {
                accumulate(gp, off2, h, g_h, a2, &[]);
            }
            transpose_mul(w2, h, g_h, g_a);
            for ((g, &tv), &av) in g_a.iter_mut().zip(t).zip(a2) {
                *g *= self.activation.grad(tv, av);
            }
            // t = L₁(a₁).
            let (w1, _, off1) = layer_params(self.sizes, self.params, 2 * blk + 1);
            if let Some(gp) = g_params.as_deref_mut() {
                accumulate(gp, off1, h, g_a, a1, &[]);
            }
            transpose_mul(w1, h, g_a, g_t);
            // h_out = h_in + u: g_h_in = g_h + g_a₁ · a'(h_in).
            for ((g, &gt), (&hv, &av)) in g_h.iter_mut().zip(g_t.iter()).zip(h_in.iter().zip(a1)) {
                *g += gt * self.activation.grad(hv, av);
            }
        }
        let (w0, _, off0) = layer_params(self.sizes, self.params, 0);
        if let Some(gp) = g_params {
            accumulate(gp, off0, self.sizes[0], g_h, x, c);
        }
        let n_in = self.sizes[0];
        for (row, &gv) in w0.chunks_exact(n_in).zip(g_h.iter()) {
            let (wx, wc) = row.split_at(x.len());
            for (gi, wi) in g_x.iter_mut().zip(wx) {
                *gi += wi.get::<S>() * gv;
            }
            for (gi, wi) in g_c.iter_mut().zip(wc) {
                *gi += wi.get::<S>() * gv;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
            m.backward(&x, &c, &cache, &v, &mut gx, &mut gc, Some(&mut gp), &mut scratch);
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
}
