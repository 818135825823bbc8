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

mod backward;
mod block;
mod residual;
#[cfg(test)]
mod tests;

use crate::nn::dense::{self as kernel, dense_one as dense};
use crate::{math, slicing, Real, Weight};

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

/// One dense layer of an [`Mlp`]: its sizes, weights (`n_out × n_in`, row-major), biases, and where
/// they start in the MLP's flat parameters.
#[derive(Clone, Copy, Debug)]
struct Layer<'p, W> {
    n_in: usize,
    n_out: usize,
    w: &'p [W],
    b: &'p [W],
    offset: usize,
}

/// The layers of an [`Mlp`], first to last (last to first with `.rev()`), carved from its
/// parameters without a panic path: iteration stops at a layer whose parameters are missing.
#[derive(Clone, Debug)]
struct Layers<'p, W> {
    /// The sizes of the layers not yet yielded: `[n_in, h, …, n_out]`.
    sizes: &'p [usize],
    /// Their parameters.
    params: &'p [W],
    /// Where `params` starts in the MLP's parameters.
    offset: usize,
}

impl<'p, W> Iterator for Layers<'p, W> {
    type Item = Layer<'p, W>;

    #[inline]
    fn next(&mut self) -> Option<Layer<'p, W>> {
        let [n_in, n_out, ..] = *self.sizes else {
            return None;
        };
        let n_w = n_in * n_out;
        let (w, rest) = self.params.split_at_checked(n_w)?;
        let (b, rest) = rest.split_at_checked(n_out)?;
        let layer = Layer {
            n_in,
            n_out,
            w,
            b,
            offset: self.offset,
        };
        self.sizes = self.sizes.split_first().map_or(&[], |(_, s)| s);
        self.params = rest;
        self.offset += n_w + n_out;
        Some(layer)
    }
}

impl<'p, W> DoubleEndedIterator for Layers<'p, W> {
    #[inline]
    fn next_back(&mut self) -> Option<Layer<'p, W>> {
        let [.., n_in, n_out] = *self.sizes else {
            return None;
        };
        let (rest, b) = self
            .params
            .split_at_checked(self.params.len().checked_sub(n_out)?)?;
        let (rest, w) = rest.split_at_checked(rest.len().checked_sub(n_in * n_out)?)?;
        let layer = Layer {
            n_in,
            n_out,
            w,
            b,
            offset: self.offset + rest.len(),
        };
        self.sizes = self.sizes.split_last().map_or(&[], |(_, s)| s);
        self.params = rest;
        Some(layer)
    }
}

impl<'a, W: Weight> Mlp<'a, W> {
    /// Number of inputs (features + context).
    #[inline]
    pub fn n_in(&self) -> usize {
        self.sizes.first().copied().unwrap_or(0)
    }

    /// Number of outputs.
    #[inline]
    pub fn n_out(&self) -> usize {
        self.sizes.last().copied().unwrap_or(0)
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

    /// Number of dense layers (`sizes.len() − 1`).
    #[inline]
    fn n_layers(&self) -> usize {
        self.sizes.len().saturating_sub(1)
    }

    /// The dense layers, first to last.
    #[inline]
    fn layers(&self) -> Layers<'a, W> {
        Layers {
            sizes: self.sizes,
            params: slicing::head(self.params, n_params(self.sizes)),
            offset: 0,
        }
    }

    /// Whether this is a ReLU network without residual blocks (the default of every library),
    /// which [`Mlp::forward`], [`Mlp::forward_cached`] and [`Mlp::backward`] run through code
    /// compiled for that case.
    #[inline(always)]
    fn is_plain_relu(&self) -> bool {
        self.activation == Activation::Relu && !self.residual
    }

    /// Evaluates the network on `[x, c]` into `out` (`n_out` long), using `scratch` for activations.
    ///
    /// A small dispatcher, always inlined: a ReLU network without residual blocks (the default of
    /// every library) runs `forward_relu`, any other `forward_dyn`. Where the network
    /// is a constant (baked models), the compiler keeps only the one that runs, so a firmware
    /// links neither the residual path nor the other activations' `tanh`/`expm1`.
    #[inline(always)]
    pub fn forward<S: Real>(&self, x: &[S], c: &[S], out: &mut [S], scratch: &mut [S]) {
        if self.is_plain_relu() {
            self.forward_relu(x, c, out, scratch);
        } else {
            self.forward_dyn(x, c, out, scratch);
        }
    }

    /// [`Mlp::forward`] of a ReLU network without residual blocks.
    #[inline(never)]
    fn forward_relu<S: Real>(&self, x: &[S], c: &[S], out: &mut [S], scratch: &mut [S]) {
        if x.len() + c.len() != self.n_in() {
            return;
        }
        self.eval_plain(Activation::Relu, x, c, out, scratch);
    }

    /// [`Mlp::forward`] with the activation and structure read at run time.
    #[inline(never)]
    fn forward_dyn<S: Real>(&self, x: &[S], c: &[S], out: &mut [S], scratch: &mut [S]) {
        // The first layer reads `[x, c]`: nothing is computed without exactly `n_in` values. Here
        // and below, a short buffer ends the evaluation rather than giving `dense` a row of
        // another width.
        if x.len() + c.len() != self.n_in() {
            return;
        }
        if self.residual {
            return self.forward_residual(x, c, out, scratch, None);
        }
        self.eval_plain(self.activation, x, c, out, scratch);
    }

    /// The layers of a network without residual blocks, `activation` after each hidden one.
    #[inline(always)]
    fn eval_plain<S: Real>(
        &self,
        activation: Activation,
        x: &[S],
        c: &[S],
        out: &mut [S],
        scratch: &mut [S],
    ) {
        let h = hidden_max(self.sizes);
        let (buf_a, rest) = slicing::split_mut(scratch, h);
        let buf_b = slicing::head_mut(rest, h);
        let n_layers = self.n_layers();
        for (l, layer) in self.layers().enumerate() {
            let last = l + 1 == n_layers;
            // Ping-pong between the two buffers: layer l reads the buffer layer l-1 wrote.
            let (src, dst): (&[S], &mut [S]) = if l % 2 == 0 {
                (&buf_b[..], &mut buf_a[..])
            } else {
                (&buf_a[..], &mut buf_b[..])
            };
            let dst: &mut [S] = if last {
                &mut *out
            } else {
                slicing::head_mut(dst, layer.n_out)
            };
            let (src_x, src_c) = if l == 0 {
                (x, c)
            } else {
                let Some(src) = src.get(..layer.n_in) else {
                    return;
                };
                (src, &[][..])
            };
            if !last && activation == Activation::Relu {
                kernel::dense_one_relu(layer.w, layer.b, src_x, src_c, dst);
            } else {
                dense(layer.w, layer.b, src_x, src_c, dst);
                if !last {
                    activation.apply_all(dst);
                }
            }
        }
    }

    /// Scratch of [`Mlp::forward_block`] and [`Mlp::forward_columns`] for `n` samples: the
    /// inputs, two buffers of the widest hidden layer and the outputs, for every sample (residual
    /// networks run sample by sample: [`Mlp::scratch_len`] and one output row). At most
    /// `n ·` [`Mlp::scratch_len`] `+ n_out`.
    pub fn block_scratch_len(&self, n: usize) -> usize {
        if self.residual {
            self.scratch_len() + self.n_out()
        } else {
            n * (2 * hidden_max(self.sizes) + self.n_in() + self.n_out())
        }
    }

    /// [`Mlp::forward`] for `N` samples at once (`x[s]`, `c[s]` → `out[s]`): [`Mlp::forward_columns`]
    /// then the outputs transposed back to one row per sample. `scratch` needs
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
        let (soa, _) = scratch.as_chunks_mut::<N>();
        let Some((out_t, rest)) = soa.split_at_mut_checked(self.n_out()) else {
            return;
        };
        self.forward_columns(x, c, out_t, rest.as_flattened_mut());
        block::transpose_out(out_t, &mut out);
    }

    /// [`Mlp::forward`] for `N` samples at once, the outputs as columns: `out[j][s]` is output `j`
    /// of sample `s` (`x[s]`, `c[s]`). The samples are transposed to structure of arrays
    /// (`h[k][s]`), so every dense layer is one [`kernel::dense_soa`] call whose vector lanes are
    /// the `N` samples; each output is bit for bit the one [`Mlp::forward`] gives. Residual
    /// networks run sample by sample. `scratch` needs [`Mlp::block_scratch_len`]`(N)`.
    pub fn forward_columns<S: Real, const N: usize>(
        &self,
        x: [&[S]; N],
        c: [&[S]; N],
        out: &mut [[S; N]],
        scratch: &mut [S],
    ) {
        if self.residual {
            let Some((row, rest)) = scratch.split_at_mut_checked(self.n_out()) else {
                return;
            };
            for (s, (xs, cs)) in x.into_iter().zip(c).enumerate() {
                self.forward(xs, cs, row, rest);
                for (col, &v) in out.iter_mut().zip(row.iter()) {
                    if let Some(o) = col.get_mut(s) {
                        *o = v;
                    }
                }
            }
            return;
        }
        let h = hidden_max(self.sizes);
        let n_in0 = self.n_in();
        let kx = x.first().map_or(0, |v| v.len()).min(n_in0);
        let (soa, _) = scratch.as_chunks_mut::<N>();
        let Some((inputs, rest)) = soa.split_at_mut_checked(n_in0) else {
            return;
        };
        let Some((buf_a, rest)) = rest.split_at_mut_checked(h) else {
            return;
        };
        let Some(buf_b) = rest.get_mut(..h) else {
            return;
        };
        let Some(out) = out.get_mut(..self.n_out()) else {
            return;
        };
        // Transpose the inputs: [x, c] of sample s becomes column s.
        block::transpose_in(inputs, &x, &c, kx);
        let (in_x, in_c) = inputs.split_at(kx);
        let n_layers = self.n_layers();
        for (l, layer) in self.layers().enumerate() {
            // Ping-pong as in `forward`: layer l reads what layer l − 1 wrote.
            let (src, dst): (&[[S; N]], &mut [[S; N]]) = if l % 2 == 0 {
                (&buf_b[..], &mut buf_a[..])
            } else {
                (&buf_a[..], &mut buf_b[..])
            };
            let last = l + 1 == n_layers;
            let dst: &mut [[S; N]] = if last {
                &mut out[..]
            } else {
                dst.get_mut(..layer.n_out).unwrap_or(&mut [])
            };
            let (src_x, src_c) = if l == 0 {
                (in_x, in_c)
            } else {
                (src.get(..layer.n_in).unwrap_or(&[]), &[][..])
            };
            if !last && self.activation == Activation::Relu {
                kernel::dense_soa_relu(layer.w, layer.b, src_x, src_c, dst);
            } else {
                kernel::dense_soa(layer.w, layer.b, src_x, src_c, dst);
                if !last {
                    self.activation.apply_all(dst.as_flattened_mut());
                }
            }
        }
    }

    /// As [`Mlp::forward`], keeping every hidden pre-activation and activation in `cache`
    /// (`cache_len()` long: for each hidden layer, its pre-activations then its activations).
    ///
    /// A dispatcher, always inlined, as [`Mlp::forward`]: where the network is a constant, the
    /// code of the other activations and of residual blocks is not linked.
    #[inline(always)]
    pub fn forward_cached<S: Real>(&self, x: &[S], c: &[S], out: &mut [S], cache: &mut [S]) {
        if self.is_plain_relu() {
            self.forward_cached_relu(x, c, out, cache);
        } else {
            self.forward_cached_dyn(x, c, out, cache);
        }
    }

    /// [`Mlp::forward_cached`] of a ReLU network without residual blocks.
    #[inline(never)]
    fn forward_cached_relu<S: Real>(&self, x: &[S], c: &[S], out: &mut [S], cache: &mut [S]) {
        self.cached_plain(Activation::Relu, x, c, out, cache);
    }

    /// [`Mlp::forward_cached`] with the activation and structure read at run time.
    #[inline(never)]
    fn forward_cached_dyn<S: Real>(&self, x: &[S], c: &[S], out: &mut [S], cache: &mut [S]) {
        if self.residual {
            // As in `forward`: exactly `n_in` inputs.
            if x.len() + c.len() != self.n_in() {
                return;
            }
            return self.forward_residual(x, c, out, &mut [], Some(cache));
        }
        self.cached_plain(self.activation, x, c, out, cache);
    }

    /// [`Mlp::forward_cached`] of a network without residual blocks, `activation` after each
    /// hidden layer.
    #[inline(always)]
    fn cached_plain<S: Real>(
        &self,
        activation: Activation,
        x: &[S],
        c: &[S],
        out: &mut [S],
        cache: &mut [S],
    ) {
        // As in `forward`: exactly `n_in` inputs, and a short cache ends the evaluation.
        if x.len() + c.len() != self.n_in() {
            return;
        }
        let n_layers = self.n_layers();
        // The part of the cache not yet written, and the activations the next layer reads.
        let mut free = cache;
        let mut prev: &[S] = &[];
        for (l, layer) in self.layers().enumerate() {
            // The first layer reads [x, c]; separate calls keep the others free of the context.
            let (w, b) = (layer.w, layer.b);
            if l + 1 == n_layers {
                if l == 0 {
                    dense(w, b, x, c, out);
                } else {
                    dense(w, b, prev, &[], out);
                }
            } else {
                let (Some(pre), Some(post)) = (
                    slicing::take_front(&mut free, layer.n_out),
                    slicing::take_front(&mut free, layer.n_out),
                ) else {
                    return;
                };
                if l == 0 {
                    dense(w, b, x, c, pre);
                } else {
                    dense(w, b, prev, &[], pre);
                }
                for (p, &z) in post.iter_mut().zip(pre.iter()) {
                    *p = activation.apply(z);
                }
                prev = post;
            }
        }
    }
}
