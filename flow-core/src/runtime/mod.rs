//! The runtime evaluator: validate a model file held in memory, then evaluate it with fixed-size
//! scratch memory and no allocation.
//!
//! ```
//! use flow_core::runtime::{Aligned, Evaluator};
//! static MODEL: &Aligned<[u8]> = &Aligned(*include_bytes!("../../../examples/models/moons.flow"));
//! let mut ev = Evaluator::<f32, 4096>::new(&MODEL.0)?;   // validates everything once
//! let lp = ev.log_prob(&[0.5, -0.2], &[])?;                // only input lengths can fail now
//! assert!(lp.is_finite());
//! assert!(ev.log_prob(&[0.5], &[]).is_err());              // wrong length: an Err, not a panic
//! # Ok::<(), flow_core::runtime::Error>(())
//! ```
//!
//! [`Evaluator::new`] runs the shared validator ([`validate`]): header, checksum, description,
//! dimensions that chain, finite weights, autoregressive masks, spline options in range, valid
//! permutations, and the scratch need against the capacity `N`. Every problem is a typed
//! [`Error`]; nothing panics. Evaluation then runs the same kernels as baked code, in the same
//! order, so results agree bit for bit.
//!
//! Files store `f32` weights (format version 1) or `f64` weights (version 2); the evaluator reads
//! both, in either scalar type, so it carries the kernels for both weight types (which one a file
//! has is known only at run time). Measured for an `Evaluator<f32, _>` of every layer kind on a
//! Cortex-M4F (opt-level `s`, LTO): 32.8 KB of code before version 2, 46.6 KB with it. Baked
//! models contain only their file's weight type.

mod base_view;
mod layers;
mod model_layers;
mod sequence;
mod validate;

pub use base_view::BaseView;
pub use layers::{layer_span, AnyLayer};
pub use model_layers::Layers;
pub use validate::{validate, Invalid};

use crate::flow::Flow;
pub use crate::model::file::Weights;
use crate::model::file::{self, FormatError, WeightType};
use crate::model::ModelDesc;
use crate::Real;

/// Bytes with 8-byte alignment, for `include_bytes!` or buffers that hold a model file:
/// `static M: &Aligned<[u8]> = &Aligned(*include_bytes!("m.flow"));`. Files with `f32` weights
/// need 4-byte alignment, files with `f64` weights 8.
#[repr(C, align(8))]
#[derive(Debug)]
pub struct Aligned<T: ?Sized>(pub T);

/// Everything that can go wrong in the runtime evaluator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The bytes are not a readable model file.
    Format(FormatError),
    /// The file reads, but describes an invalid model.
    Invalid(Invalid),
    /// The model needs more scratch than the evaluator's capacity.
    ScratchTooSmall {
        /// Elements needed.
        needed: usize,
        /// The capacity `N`.
        capacity: usize,
    },
    /// An input slice has the wrong length.
    WrongLength {
        /// Expected length.
        expected: usize,
        /// Given length.
        got: usize,
    },
}

impl From<FormatError> for Error {
    fn from(e: FormatError) -> Self {
        Error::Format(e)
    }
}

impl From<Invalid> for Error {
    fn from(e: Invalid) -> Self {
        Error::Invalid(e)
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Format(e) => write!(f, "{e}"),
            Error::Invalid(e) => write!(f, "{e}"),
            Error::ScratchTooSmall { needed, capacity } => {
                write!(f, "model needs {needed} scratch elements, capacity is {capacity}")
            }
            Error::WrongLength { expected, got } => write!(f, "expected {expected} values, got {got}"),
        }
    }
}

impl core::error::Error for Error {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Error::Format(e) => Some(e),
            Error::Invalid(e) => Some(e),
            _ => None,
        }
    }
}

/// A validated model borrowed from its file's bytes.
#[derive(Clone, Debug)]
pub struct Model<'a> {
    /// The description.
    pub desc: ModelDesc,
    /// The weights, in the file's type (`f32` or `f64`).
    pub weights: Weights<'a>,
    /// The integer section.
    pub ints: &'a [u16],
    /// The metadata JSON.
    pub meta: &'a str,
}

/// Binds `$f` to the flow of `$model` (a [`Model`]) in scalar `$s` over the model's weight type and
/// evaluates `$body`: the one place that dispatches on `f32` / `f64` weights. Both arms run the
/// same generic kernels; with `f64` weights and `$s = f32` each weight is rounded as it is read.
macro_rules! with_flow {
    ($model:expr, $s:ty, |$f:ident| $body:expr) => {
        match $model.weights {
            Weights::F32(w) => {
                let $f = flow_of::<$s, f32>(&$model.desc, w, $model.ints);
                $body
            }
            Weights::F64(w) => {
                let $f = flow_of::<$s, f64>(&$model.desc, w, $model.ints);
                $body
            }
        }
    };
}

impl<'a> Model<'a> {
    /// Checks and decodes a model file in place. The bytes must be aligned in memory to the
    /// weight size, 4 (`f32` weights) or 8 (`f64`; use [`Aligned`]); the target must be
    /// little-endian.
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, Error> {
        let sec = file::split(bytes)?;
        let desc = file::decode_desc(sec.desc)?;
        if cfg!(target_endian = "big") {
            return Err(FormatError::UnsupportedEndian.into());
        }
        let misaligned = |_| FormatError::Misaligned;
        let weights = match sec.weight_type {
            WeightType::F32 => Weights::F32(bytemuck::try_cast_slice(sec.weights).map_err(misaligned)?),
            WeightType::F64 => Weights::F64(bytemuck::try_cast_slice(sec.weights).map_err(misaligned)?),
        };
        let ints: &[u16] = bytemuck::try_cast_slice(sec.ints).map_err(misaligned)?;
        match weights {
            Weights::F32(w) => validate(&desc, w, ints)?,
            Weights::F64(w) => validate(&desc, w, ints)?,
        }
        Ok(Model {
            desc,
            weights,
            ints,
            meta: sec.meta,
        })
    }

    /// Number of parameters (layers, then base), as [`Flow::n_params`].
    pub fn n_params(&self) -> usize {
        with_flow!(self, f64, |f| f.n_params())
    }

    /// Scratch elements of type `S` that evaluating this model needs ([`Flow::scratch_len`]).
    pub fn scratch_len<S: Real>(&self) -> usize {
        with_flow!(self, S, |f| f.scratch_len())
    }
}

/// A flow over any description and weight vector (e.g. f64 weights while training). The
/// description must have passed [`validate`] for these weights.
pub fn flow_of<'a, S: Real, W: crate::Weight>(
    desc: &'a ModelDesc,
    weights: &'a [W],
    ints: &'a [u16],
) -> Flow<S, Layers<'a, W>, BaseView<'a, W>> {
    Flow::new(Layers { desc, weights, ints }, BaseView { desc, weights })
}

/// A validated model with `N` elements of scratch of type `S`.
pub struct Evaluator<'a, S: Real, const N: usize> {
    model: Model<'a>,
    scratch: [S; N],
}

impl<'a, S: Real, const N: usize> Evaluator<'a, S, N> {
    /// Validates `bytes` (see [`Model::from_bytes`]) and checks the scratch need against `N`.
    pub fn new(bytes: &'a [u8]) -> Result<Self, Error> {
        let model = Model::from_bytes(bytes)?;
        let needed = model.scratch_len::<S>();
        if needed > N {
            return Err(Error::ScratchTooSmall { needed, capacity: N });
        }
        Ok(Evaluator {
            model,
            scratch: [S::ZERO; N],
        })
    }

    /// The model.
    pub fn model(&self) -> &Model<'a> {
        &self.model
    }

    /// Data dimension D.
    pub fn dim(&self) -> usize {
        self.model.desc.dim as usize
    }

    /// Context dimension C.
    pub fn context_dim(&self) -> usize {
        self.model.desc.context_dim as usize
    }

    fn check(&self, x: &[S], ctx: &[S]) -> Result<(), Error> {
        if x.len() != self.dim() {
            return Err(Error::WrongLength {
                expected: self.dim(),
                got: x.len(),
            });
        }
        if ctx.len() != self.context_dim() {
            return Err(Error::WrongLength {
                expected: self.context_dim(),
                got: ctx.len(),
            });
        }
        Ok(())
    }

    /// log p(x | ctx).
    pub fn log_prob(&mut self, x: &[S], ctx: &[S]) -> Result<S, Error> {
        self.check(x, ctx)?;
        Ok(with_flow!(self.model, S, |f| f.log_prob(
            x,
            ctx,
            &mut self.scratch
        )))
    }

    /// Data → base: writes `z`, returns log|det ∂z/∂x|.
    pub fn inverse(&mut self, x: &[S], ctx: &[S], z: &mut [S]) -> Result<S, Error> {
        self.check(x, ctx)?;
        self.check(z, ctx)?;
        Ok(with_flow!(self.model, S, |f| f.inverse(
            x,
            ctx,
            z,
            &mut self.scratch
        )))
    }

    /// Base → data: writes `x`, returns log|det ∂x/∂z|.
    pub fn forward(&mut self, z: &[S], ctx: &[S], x: &mut [S]) -> Result<S, Error> {
        self.check(z, ctx)?;
        self.check(x, ctx)?;
        Ok(with_flow!(self.model, S, |f| f.forward(
            z,
            ctx,
            x,
            &mut self.scratch
        )))
    }

    /// A sample from standard-normal noise `eps`.
    pub fn sample(&mut self, eps: &[S], ctx: &[S], x: &mut [S]) -> Result<(), Error> {
        self.check(eps, ctx)?;
        self.check(x, ctx)?;
        with_flow!(self.model, S, |f| f.sample(eps, ctx, x, &mut self.scratch));
        Ok(())
    }

    /// A sample from standard-normal noise `eps` into `x` and its log-density from the same
    /// pass (see [`Flow::sample_and_log_prob`]).
    pub fn sample_and_log_prob(&mut self, eps: &[S], ctx: &[S], x: &mut [S]) -> Result<S, Error> {
        self.check(eps, ctx)?;
        self.check(x, ctx)?;
        Ok(with_flow!(self.model, S, |f| f.sample_and_log_prob(
            eps,
            ctx,
            x,
            &mut self.scratch
        )))
    }

    /// A sample with noise from `rng`.
    pub fn sample_with<R: rand_core::RngCore + ?Sized>(
        &mut self,
        rng: &mut R,
        ctx: &[S],
        x: &mut [S],
    ) -> Result<(), Error> {
        self.check(x, ctx)?;
        with_flow!(self.model, S, |f| f.sample_with(rng, ctx, x, &mut self.scratch));
        Ok(())
    }

    /// ∇ₓ log p(x | ctx) into `g`; returns log p.
    pub fn grad_log_prob(&mut self, x: &[S], ctx: &[S], g: &mut [S]) -> Result<S, Error> {
        self.check(x, ctx)?;
        self.check(g, ctx)?;
        Ok(with_flow!(self.model, S, |f| f.grad_log_prob(
            x,
            ctx,
            g,
            &mut self.scratch
        )))
    }
}

#[cfg(test)]
mod tests;
