//! Baked models: what `#[flow_macros::flow("m.flow")]` generates, and the trait that lets generic
//! code take any baked flow.
//!
//! The macro reads the model file at compile time and emits, for the struct it annotates:
//! - one `static` array of weights per layer (and one for the base), in the file's weight type
//!   (`f32`, or `f64` for files of format version 2), each weight written as `f32::from_bits(0x…)`
//!   (`f64::from_bits`) so it round-trips exactly, plus `static` network size lists;
//! - one `static` [`Flow`] whose layers are a typed composition
//!   (`Chain<L0, Chain<L1, …>>`, see [`crate::layers::chain`]) of this crate's layer structs over
//!   those arrays — no dynamic dispatch, every size a constant the optimizer can see;
//! - inherent methods on fixed-size arrays (`log_prob(&[f32; D]) -> f32`, `inverse`, `forward`,
//!   `sample`, `sample_with`, `sample_and_log_prob`, `grad_log_prob`, the batch forms) that put a scratch array of
//!   exactly the flow's [`Flow::scratch_len`] elements on the stack and call the flow's kernels;
//! - an implementation of [`BakedFlow`].
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

use crate::base::Base;
use crate::flow::Flow;
use crate::layers::Bijection;
use crate::runtime::Error;
use crate::{slicing, Real};

/// The random-number trait of [`BakedFlow::sample_with`], re-exported so that generated code
/// (and its users) need no direct dependency on `rand_core`.
pub use rand_core::{Error as RngError, RngCore};

/// A flow baked into a type at compile time by `flow_macros::flow`.
///
/// The generated type also has inherent methods on fixed-size arrays (which cannot fail); the
/// methods here take slices, for code generic over the model, and check their lengths, returning
/// [`Error::WrongLength`] instead of panicking. `ctx` is empty for unconditional models.
pub trait BakedFlow<S: Real>: 'static {
    /// Data dimension D.
    const DIM: usize;
    /// Context dimension C (0 for unconditional models).
    const CONTEXT_DIM: usize;
    /// Number of parameters (layers, then base), as [`Flow::n_params`].
    const PARAMS: usize;
    /// Bytes of weights in the `static` arrays (flash): 4 per `f32` weight, 8 per `f64` weight.
    const WEIGHT_BYTES: usize;
    /// Bytes of the scratch array every method puts on the stack: the flow's
    /// [`Flow::scratch_len`] elements of `S`, measured by the macro on the same composition.
    const SCRATCH_BYTES: usize;

    /// The typed composition of layers.
    type Layers: Bijection<S> + Sync + 'static;
    /// The base distribution.
    type Base: Base<S> + Sync + 'static;

    /// The baked flow itself, for any [`Flow`] method not wrapped here (e.g. parameter
    /// gradients); bring a scratch slice of `SCRATCH_BYTES / size_of::<S>()` elements.
    fn flow(&self) -> &'static Flow<S, Self::Layers, Self::Base>;

    /// log p(x | ctx).
    fn log_prob(&self, x: &[S], ctx: &[S]) -> Result<S, Error>;

    /// ∇ₓ log p(x | ctx) into `g`; returns log p.
    fn grad_log_prob(&self, x: &[S], ctx: &[S], g: &mut [S]) -> Result<S, Error>;

    /// Data → base: writes `z`, returns log|det ∂z/∂x|.
    fn inverse(&self, x: &[S], ctx: &[S], z: &mut [S]) -> Result<S, Error>;

    /// Base → data: writes `x`, returns log|det ∂x/∂z|.
    fn forward(&self, z: &[S], ctx: &[S], x: &mut [S]) -> Result<S, Error>;

    /// A sample from standard-normal base noise `eps` into `x`.
    fn sample(&self, eps: &[S], ctx: &[S], x: &mut [S]) -> Result<(), Error>;

    /// A sample from standard-normal base noise `eps` into `x` and its log-density from the same
    /// pass ([`Flow::sample_and_log_prob`]).
    fn sample_and_log_prob(&self, eps: &[S], ctx: &[S], x: &mut [S]) -> Result<S, Error>;

    /// [`BakedFlow::sample_and_log_prob`] of every row of `eps` into the rows of `xs` and `out`
    /// (`eps` and `xs` `out.len() · D` long), under one context.
    fn sample_and_log_prob_batch(
        &self,
        eps: &[S],
        ctx: &[S],
        xs: &mut [S],
        out: &mut [S],
    ) -> Result<(), Error>;

    /// A sample into `x` with noise drawn from `rng` (see [`crate::flow::standard_normal`]).
    fn sample_with<R: RngCore + ?Sized>(&self, rng: &mut R, ctx: &[S], x: &mut [S]) -> Result<(), Error>;

    /// log p of every row of `xs` (rows of D values, one after the other) under one context into
    /// `out`; `xs.len()` must be `out.len() · D`.
    fn log_prob_batch(&self, xs: &[S], ctx: &[S], out: &mut [S]) -> Result<(), Error>;

    /// Samples from the base noise in every row of `eps` into the rows of `xs` (both `n · D`
    /// long), under one context.
    fn sample_batch(&self, eps: &[S], ctx: &[S], xs: &mut [S]) -> Result<(), Error>;

    /// ∇ₓ log p of every row of `xs` under one context into the rows of `grads` (as long as `xs`)
    /// and log p into `out`; `xs.len()` must be `out.len() · D`.
    fn grad_log_prob_batch(&self, xs: &[S], ctx: &[S], grads: &mut [S], out: &mut [S]) -> Result<(), Error>;
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

    fn inverse_vjp(
        &self,
        _: &[S],
        _: &[S],
        g_z: &[S],
        _: S,
        g_x: &mut [S],
        _: &mut [S],
        _: Option<&mut [S]>,
        _: &mut [S],
    ) {
        slicing::copy(g_x, g_z);
    }

    fn forward_vjp_scratch_len(&self) -> usize {
        0
    }

    fn forward_vjp(
        &self,
        _: &[S],
        _: &[S],
        g_x: &[S],
        _: S,
        g_z: &mut [S],
        _: &mut [S],
        _: Option<&mut [S]>,
        _: &mut [S],
    ) {
        slicing::copy(g_z, g_x);
    }
}
