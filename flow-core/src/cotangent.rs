//! What a vector-Jacobian product reads and writes, as two values instead of six arguments.
//!
//! A layer maps `input → (output, ℓ)` (ℓ its log-determinant). For a loss `L`, the VJP of
//! [`Bijection::inverse`](crate::layers::Bijection::inverse) (input `x`, output `z`) or of
//! [`Bijection::forward`](crate::layers::Bijection::forward) (input `z`, output `x`) starts from a
//! [`Cotangent`] — `∂L/∂output` and `∂L/∂ℓ` — and writes [`Grads`]: `∂L/∂input` (overwritten),
//! `∂L/∂ctx` and `∂L/∂θ` (added into). The block methods use the same two types with one slice
//! per sample.

/// The cotangent a VJP starts from: `out = ∂L/∂output` and `ldj = ∂L/∂ℓ`.
///
/// `out` is a slice (`&[S]`), a block of slices (`[&[S]; N]`), or, in the methods that run the
/// pass first (`*_vjp_head*`), a head that computes `∂L/∂output` from the output it sees
/// ([`Head`], [`BlockHead`], [`SampleHead`]).
#[derive(Clone, Copy, Debug)]
pub struct Cotangent<G, S> {
    /// `∂L/∂output`, or the head that writes it.
    pub out: G,
    /// `∂L/∂ℓ`, the same for every sample of a block.
    pub ldj: S,
}

impl<G, S> Cotangent<G, S> {
    /// `Cotangent { out, ldj }`.
    #[inline(always)]
    pub const fn new(out: G, ldj: S) -> Self {
        Self { out, ldj }
    }

    /// `(out, ldj)`.
    #[inline(always)]
    pub fn into_parts(self) -> (G, S) {
        (self.out, self.ldj)
    }
}

/// Where a VJP writes: `input = ∂L/∂input` (overwritten), `ctx = ∂L/∂ctx` (added into) and, when
/// given, `params = ∂L/∂θ` (added into, in the layout of the layer's parameters).
///
/// `X` is `&mut [S]` for one sample and `[&mut [S]; N]` for a block ([`BlockGrads`]); the
/// parameter gradient is one buffer either way (a block adds every sample's into it).
#[derive(Debug)]
pub struct Grads<'g, S, X = &'g mut [S]> {
    /// `∂L/∂input`, overwritten.
    pub input: X,
    /// `∂L/∂ctx`, added into.
    pub ctx: X,
    /// `∂L/∂θ`, added into; `None` skips the parameter gradient.
    pub params: Option<&'g mut [S]>,
}

/// [`Grads`] of a block of `N` samples.
pub type BlockGrads<'g, S, const N: usize> = Grads<'g, S, [&'g mut [S]; N]>;

impl<'g, S, X> Grads<'g, S, X> {
    /// `Grads { input, ctx, params }`.
    #[inline(always)]
    pub fn new(input: X, ctx: X, params: Option<&'g mut [S]>) -> Self {
        Self { input, ctx, params }
    }

    /// `(input, ctx, params)`.
    #[inline(always)]
    #[allow(clippy::type_complexity)]
    pub fn into_parts(self) -> (X, X, Option<&'g mut [S]>) {
        (self.input, self.ctx, self.params)
    }
}

impl<S> Grads<'_, S> {
    /// A shorter borrow of the same buffers (for a call inside a loop).
    #[inline(always)]
    pub fn reborrow(&mut self) -> Grads<'_, S> {
        Grads {
            input: &mut *self.input,
            ctx: &mut *self.ctx,
            params: self.params.as_deref_mut(),
        }
    }
}

impl<S, const N: usize> BlockGrads<'_, S, N> {
    /// A shorter borrow of the same buffers (for a call inside a loop).
    #[inline(always)]
    pub fn reborrow(&mut self) -> BlockGrads<'_, S, N> {
        Grads {
            input: self.input.each_mut().map(|g| &mut **g),
            ctx: self.ctx.each_mut().map(|g| &mut **g),
            params: self.params.as_deref_mut(),
        }
    }
}

/// The head of a single-sample VJP that runs the pass first: `head(z, g_z)` sees the output `z`
/// and writes `∂L/∂z` (see [`Bijection::inverse_vjp_head`](crate::layers::Bijection::inverse_vjp_head)).
pub type Head<'h, S> = dyn FnMut(&[S], &mut [S]) + 'h;

/// The head of a block vector-Jacobian product: `head(s, z, g_z)` sees sample `s`'s base point
/// `z` and writes `∂L/∂z` (see
/// [`Bijection::inverse_vjp_head_block`](crate::layers::Bijection::inverse_vjp_head_block)).
pub type BlockHead<'h, S> = dyn FnMut(usize, &[S], &mut [S]) + 'h;

/// The head of a sampling-direction block VJP: `head(x, ldj, g_x)` sees the block's outputs
/// (`N × D`, sample after sample) and log-determinants and writes `∂L/∂x` in the same layout
/// (see [`Bijection::forward_vjp_head_block`](crate::layers::Bijection::forward_vjp_head_block)).
pub type SampleHead<'h, S> = dyn FnMut(&[S], &[S], &mut [S]) + 'h;
