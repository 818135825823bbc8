//! Baked models: what `#[flow_macros::flow("m.flow")]` generates, and the trait that lets generic
//! code take any baked flow.
//!
//! The macro reads the model file at compile time and emits, for the struct it annotates:
//! - one `static` array of weights per layer (and one for the base), in the file's weight type
//!   (`f32`, or `f64` for files of format version 2), decoded at compile time from the bytes of
//!   the model file itself ([`f32_array`], [`f64_array`], [`u16_array`] over `include_bytes!`), so
//!   the baked weights are the file's bits; plus `static` network size lists;
//! - one `static` [`Flow`] whose layers are a typed composition
//!   (`Chain<L0, Chain<L1, …>>`, see [`crate::layers::chain`]) of this crate's layer structs over
//!   those arrays — no dynamic dispatch, every size a constant the optimizer can see;
//! - an implementation of [`BakedFlow`]: the constants, the types and the one hook (the flow and
//!   its two fixed-size scratch types); every slice method is provided here;
//! - inherent methods on fixed-size arrays (`log_prob(&[f32; D]) -> f32`, `inverse`, `forward`,
//!   `sample`, `sample_with`, `sample_and_log_prob`, `grad_log_prob`, the batch forms), each one
//!   call into [`fixed`], which puts the flow's scratch array on the stack and calls its kernels.
//!
//! The math is all here in `flow-core`: the baked flow and the runtime evaluator
//! ([`crate::runtime::Evaluator`]) call the same kernels in the same order, so they agree bit for
//! bit.
//!
//! ```ignore
//! #[flow_macros::flow("models/moons.flow")]
//! pub struct Moons;
//!
//! let lp: f32 = Moons::log_prob(&[0.5, -0.2]);
//!
//! // Generic code takes any baked flow through the trait (slices, checked lengths):
//! fn mean_log_prob<F: BakedFlow<f32>>(flow: &F, xs: &[f32]) -> Result<f32, Error> {
//!     let mut sum = 0.0;
//!     for x in xs.chunks_exact(F::DIM) {
//!         sum += flow.log_prob(x, &[])?;
//!     }
//!     Ok(sum / (xs.len() / F::DIM) as f32)
//! }
//! ```

pub mod fixed;

use crate::base::Base;
use crate::block::{Aligned, BLOCK};
use crate::flow::Flow;
use crate::layers::Bijection;
use crate::layers::{Cotangent, Grads};
use crate::runtime::Error;
use crate::{slicing, Real};

/// The random-number trait of [`BakedFlow::sample_with`], re-exported so that generated code
/// (and its users) need no direct dependency on `rand_core`.
pub use rand_core::{Error as RngError, RngCore};

/// A fixed-size scratch array of `S` that a baked flow puts on the stack: `[S; N]` (one sample)
/// or [`Aligned`]`<[S; N]>` (a block of [`BLOCK`] samples, aligned for the vector kernels).
pub trait Scratch<S>: Sized + 'static {
    /// Elements N.
    const LEN: usize;
    /// N zeros.
    fn zeroed() -> Self;
    /// The N elements.
    fn as_mut_slice(&mut self) -> &mut [S];
}

impl<S: Real, const N: usize> Scratch<S> for [S; N] {
    const LEN: usize = N;

    #[inline(always)]
    fn zeroed() -> Self {
        [S::ZERO; N]
    }

    #[inline(always)]
    fn as_mut_slice(&mut self) -> &mut [S] {
        self
    }
}

impl<S: Real, const N: usize> Scratch<S> for Aligned<[S; N]> {
    const LEN: usize = N;

    #[inline(always)]
    fn zeroed() -> Self {
        Aligned([S::ZERO; N])
    }

    #[inline(always)]
    fn as_mut_slice(&mut self) -> &mut [S] {
        &mut self.0
    }
}

/// A flow baked into a type at compile time by `flow_macros::flow`.
///
/// The generated code gives the constants, the types and [`BakedFlow::FLOW`] with its two
/// scratch types; every method here is provided. They take slices, for code generic over the
/// model, and check their lengths, returning [`Error::WrongLength`] instead of panicking; `ctx`
/// is empty for unconditional models. The generated type also has inherent methods on fixed-size
/// arrays (which cannot fail, see [`fixed`]).
pub trait BakedFlow<S: Real>: 'static {
    /// Data dimension D.
    const DIM: usize;
    /// Context dimension C (0 for unconditional models).
    const CONTEXT_DIM: usize;
    /// Number of parameters (layers, then base), as [`Flow::n_params`].
    const PARAMS: usize;
    /// Bytes of weights in the `static` arrays (flash): 4 per `f32` weight, 8 per `f64` weight.
    const WEIGHT_BYTES: usize;
    /// Bytes of the largest scratch array a method puts on the stack: the batch methods'
    /// [`BLOCK`] samples of the flow's [`Flow::scratch_len`] elements of `S`.
    const SCRATCH_BYTES: usize = core::mem::size_of::<S>() * <Self::Scratch as Scratch<S>>::LEN * BLOCK;

    /// The typed composition of layers.
    type Layers: Bijection<S> + Sync + 'static;
    /// The base distribution.
    type Base: Base<S> + Sync + 'static;
    /// One sample's scratch, `[S; N]` with N = [`Flow::scratch_len`] (measured by the macro on
    /// the same composition).
    type Scratch: Scratch<S>;
    /// A block's scratch for the batch methods: [`Aligned`]`<[S; N · BLOCK]>`.
    type BlockScratch: Scratch<S>;

    /// The baked flow (a `static` of the generated code).
    const FLOW: &'static Flow<S, Self::Layers, Self::Base>;

    /// The baked flow itself, for any [`Flow`] method not wrapped here (e.g. parameter
    /// gradients); bring a scratch slice of `SCRATCH_BYTES / size_of::<S>()` elements.
    #[inline]
    fn flow(&self) -> &'static Flow<S, Self::Layers, Self::Base> {
        Self::FLOW
    }

    /// log p(x | ctx).
    #[inline]
    fn log_prob(&self, x: &[S], ctx: &[S]) -> Result<S, Error> {
        expect_len(Self::DIM, x.len())?;
        expect_len(Self::CONTEXT_DIM, ctx.len())?;
        let mut scratch = Self::Scratch::zeroed();
        Ok(Self::FLOW.log_prob(x, ctx, scratch.as_mut_slice()))
    }

    /// ∇ₓ log p(x | ctx) into `g`; returns log p.
    #[inline]
    fn grad_log_prob(&self, x: &[S], ctx: &[S], g: &mut [S]) -> Result<S, Error> {
        expect_len(Self::DIM, x.len())?;
        expect_len(Self::CONTEXT_DIM, ctx.len())?;
        expect_len(Self::DIM, g.len())?;
        let mut scratch = Self::Scratch::zeroed();
        Ok(Self::FLOW.grad_log_prob(x, ctx, g, scratch.as_mut_slice()))
    }

    /// Data → base: writes `z`, returns log|det ∂z/∂x|.
    #[inline]
    fn inverse(&self, x: &[S], ctx: &[S], z: &mut [S]) -> Result<S, Error> {
        expect_len(Self::DIM, x.len())?;
        expect_len(Self::CONTEXT_DIM, ctx.len())?;
        expect_len(Self::DIM, z.len())?;
        let mut scratch = Self::Scratch::zeroed();
        Ok(Self::FLOW.inverse(x, ctx, z, scratch.as_mut_slice()))
    }

    /// Base → data: writes `x`, returns log|det ∂x/∂z|.
    #[inline]
    fn forward(&self, z: &[S], ctx: &[S], x: &mut [S]) -> Result<S, Error> {
        expect_len(Self::DIM, z.len())?;
        expect_len(Self::CONTEXT_DIM, ctx.len())?;
        expect_len(Self::DIM, x.len())?;
        let mut scratch = Self::Scratch::zeroed();
        Ok(Self::FLOW.forward(z, ctx, x, scratch.as_mut_slice()))
    }

    /// A sample from standard-normal base noise `eps` into `x`.
    #[inline]
    fn sample(&self, eps: &[S], ctx: &[S], x: &mut [S]) -> Result<(), Error> {
        expect_len(Self::DIM, eps.len())?;
        expect_len(Self::CONTEXT_DIM, ctx.len())?;
        expect_len(Self::DIM, x.len())?;
        let mut scratch = Self::Scratch::zeroed();
        Self::FLOW.sample(eps, ctx, x, scratch.as_mut_slice());
        Ok(())
    }

    /// A sample from standard-normal base noise `eps` into `x` and its log-density from the same
    /// pass ([`Flow::sample_and_log_prob`]).
    #[inline]
    fn sample_and_log_prob(&self, eps: &[S], ctx: &[S], x: &mut [S]) -> Result<S, Error> {
        expect_len(Self::DIM, eps.len())?;
        expect_len(Self::CONTEXT_DIM, ctx.len())?;
        expect_len(Self::DIM, x.len())?;
        let mut scratch = Self::Scratch::zeroed();
        Ok(Self::FLOW.sample_and_log_prob(eps, ctx, x, scratch.as_mut_slice()))
    }

    /// [`BakedFlow::sample_and_log_prob`] of every row of `eps` into the rows of `xs` and `out`
    /// (`eps` and `xs` `out.len() · D` long), under one context.
    #[inline]
    fn sample_and_log_prob_batch(
        &self,
        eps: &[S],
        ctx: &[S],
        xs: &mut [S],
        out: &mut [S],
    ) -> Result<(), Error> {
        expect_len(out.len().saturating_mul(Self::DIM), eps.len())?;
        expect_len(eps.len(), xs.len())?;
        expect_len(Self::CONTEXT_DIM, ctx.len())?;
        let mut scratch = Self::BlockScratch::zeroed();
        Self::FLOW.sample_and_log_prob_batch(eps, ctx, xs, out, scratch.as_mut_slice());
        Ok(())
    }

    /// A sample into `x` with noise drawn from `rng` (see [`crate::flow::standard_normal`]).
    #[inline]
    fn sample_with<R: RngCore + ?Sized>(&self, rng: &mut R, ctx: &[S], x: &mut [S]) -> Result<(), Error> {
        expect_len(Self::CONTEXT_DIM, ctx.len())?;
        expect_len(Self::DIM, x.len())?;
        let mut scratch = Self::Scratch::zeroed();
        Self::FLOW.sample_with(rng, ctx, x, scratch.as_mut_slice());
        Ok(())
    }

    /// log p of every row of `xs` (rows of D values, one after the other) under one context into
    /// `out`; `xs.len()` must be `out.len() · D`.
    #[inline]
    fn log_prob_batch(&self, xs: &[S], ctx: &[S], out: &mut [S]) -> Result<(), Error> {
        expect_len(out.len().saturating_mul(Self::DIM), xs.len())?;
        expect_len(Self::CONTEXT_DIM, ctx.len())?;
        let mut scratch = Self::BlockScratch::zeroed();
        Self::FLOW.log_prob_batch(xs, ctx, out, scratch.as_mut_slice());
        Ok(())
    }

    /// Samples from the base noise in every row of `eps` into the rows of `xs` (both `n · D`
    /// long), under one context.
    #[inline]
    fn sample_batch(&self, eps: &[S], ctx: &[S], xs: &mut [S]) -> Result<(), Error> {
        expect_len(eps.len(), xs.len())?;
        // Whole rows only: the length rounded down to a multiple of D must be the length.
        expect_len(eps.len() - eps.len() % Self::DIM.max(1), eps.len())?;
        expect_len(Self::CONTEXT_DIM, ctx.len())?;
        let mut scratch = Self::BlockScratch::zeroed();
        Self::FLOW.sample_batch(eps, ctx, xs, scratch.as_mut_slice());
        Ok(())
    }

    /// ∇ₓ log p of every row of `xs` under one context into the rows of `grads` (as long as `xs`)
    /// and log p into `out`; `xs.len()` must be `out.len() · D`.
    #[inline]
    fn grad_log_prob_batch(&self, xs: &[S], ctx: &[S], grads: &mut [S], out: &mut [S]) -> Result<(), Error> {
        expect_len(out.len().saturating_mul(Self::DIM), xs.len())?;
        expect_len(xs.len(), grads.len())?;
        expect_len(Self::CONTEXT_DIM, ctx.len())?;
        let mut scratch = Self::BlockScratch::zeroed();
        Self::FLOW.grad_log_prob_batch(xs, ctx, grads, out, scratch.as_mut_slice());
        Ok(())
    }
}

/// `N` little-endian `f32` from byte `at` of `bytes`: the generated code's weight arrays, decoded
/// at compile time from the model file's weight section (`include_bytes!`). For `const`
/// initializers: bytes missing past the end stop compilation (a const-evaluation error).
pub const fn f32_array<const N: usize>(bytes: &[u8], at: usize) -> [f32; N] {
    let mut out = [0.0f32; N];
    let mut i = 0;
    while i < N {
        let b = at + 4 * i;
        out[i] = f32::from_bits(u32::from_le_bytes([
            bytes[b],
            bytes[b + 1],
            bytes[b + 2],
            bytes[b + 3],
        ]));
        i += 1;
    }
    out
}

/// `N` little-endian `f64` from byte `at` of `bytes`, as [`f32_array`] (format-version-2 files).
pub const fn f64_array<const N: usize>(bytes: &[u8], at: usize) -> [f64; N] {
    let mut out = [0.0f64; N];
    let mut i = 0;
    while i < N {
        let b = at + 8 * i;
        let w = [
            bytes[b],
            bytes[b + 1],
            bytes[b + 2],
            bytes[b + 3],
            bytes[b + 4],
            bytes[b + 5],
            bytes[b + 6],
            bytes[b + 7],
        ];
        out[i] = f64::from_bits(u64::from_le_bytes(w));
        i += 1;
    }
    out
}

/// `N` little-endian `u16` from byte `at` of `bytes` (the integer section: masks, permutations),
/// as [`f32_array`].
pub const fn u16_array<const N: usize>(bytes: &[u8], at: usize) -> [u16; N] {
    let mut out = [0u16; N];
    let mut i = 0;
    while i < N {
        let b = at + 2 * i;
        out[i] = u16::from_le_bytes([bytes[b], bytes[b + 1]]);
        i += 1;
    }
    out
}

/// `Ok` when `got == expected`, else [`Error::WrongLength`]. Generated code calls it before every
/// slice-based method.
#[inline]
pub fn expect_len(expected: usize, got: usize) -> Result<(), Error> {
    if got == expected {
        Ok(())
    } else {
        Err(Error::WrongLength { expected, got })
    }
}

/// The layers of a model without layers: `z = x`, log|det| = 0.
///
/// Baked models with an empty layer list use it where others have their `Chain`; it matches the
/// runtime evaluator, which copies and adds nothing.
#[derive(Clone, Copy, Debug)]
pub struct Identity {
    /// Dimension D.
    pub dim: usize,
}

impl<S: Real> Bijection<S> for Identity {
    fn dim(&self) -> usize {
        self.dim
    }

    fn n_params(&self) -> usize {
        0
    }

    fn scratch_len(&self) -> usize {
        0
    }

    #[inline]
    fn inverse(&self, x: &[S], _: &[S], z: &mut [S], _: &mut [S]) -> S {
        slicing::copy(z, x);
        S::ZERO
    }

    #[inline]
    fn forward(&self, z: &[S], _: &[S], x: &mut [S], _: &mut [S]) -> S {
        slicing::copy(x, z);
        S::ZERO
    }

    #[inline]
    fn inverse_acc(&self, x: &[S], _: &[S], z: &mut [S], _: &mut S, _: &mut [S]) {
        slicing::copy(z, x);
    }

    #[inline]
    fn forward_acc(&self, z: &[S], _: &[S], x: &mut [S], _: &mut S, _: &mut [S]) {
        slicing::copy(x, z);
    }

    fn inverse_vjp(&self, _: &[S], _: &[S], cot: Cotangent<&[S], S>, grads: Grads<'_, S>, _: &mut [S]) {
        let (g_z, _) = cot.into_parts();
        let (g_x, _, _) = grads.into_parts();
        slicing::copy(g_x, g_z);
    }

    fn forward_vjp_scratch_len(&self) -> usize {
        0
    }

    fn forward_vjp(&self, _: &[S], _: &[S], cot: Cotangent<&[S], S>, grads: Grads<'_, S>, _: &mut [S]) {
        let (g_x, _) = cot.into_parts();
        let (g_z, _, _) = grads.into_parts();
        slicing::copy(g_z, g_x);
    }
}
