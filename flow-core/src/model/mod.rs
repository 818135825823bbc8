//! The model description (serde) and the model file format.
//!
//! # File format (versions 1 and 2)
//!
//! All integers little-endian. A file is a 32-byte header followed by four sections:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `b"NFLW"` |
//! | 4 | 2 | format version: `1` (`f32` weights) or `2` (`f64` weights) |
//! | 6 | 2 | header length (`32`) |
//! | 8 | 4 | total file length in bytes |
//! | 12 | 4 | CRC-32 (IEEE) of bytes `16..total` |
//! | 16 | 4 | length of the description (postcard) |
//! | 20 | 4 | length of the metadata (UTF-8 JSON; may be 0) |
//! | 24 | 4 | number of weights |
//! | 28 | 4 | number of `u16` integers |
//! | 32 | … | description, metadata, zero padding to a multiple of the weight size (4 or 8), weights (`f32` or `f64` LE), integers (`u16` LE) |
//!
//! The description ([`ModelDesc`]) says which layers there are and where each one's parameters sit
//! in the weight and integer sections ([`Span`]). Integers hold orders, hidden degrees, coupling
//! masks and permutations. MADE weights are stored already multiplied by their masks.
//!
//! # Weight precision
//! Version 1 stores weights as `f32` (the deployment precision); f64 evaluation widens them
//! exactly. Version 2 is version 1 with `f64` weights ([`file::WeightType`]), for parameters
//! trained in float64 (FlowJAX) that `f32` would move by ~3e-8 relative each, i.e. ~4e-7 in log p:
//! f64 evaluation then uses them exactly, and f32 evaluation (runtime and baked alike) rounds each
//! weight to `f32` as it reads it, which is what a version-1 file of the same model would hold.
//! Writers use version 2 only for `f64` weights, so `f32` files are byte for byte what they always
//! were, and readers that know only version 1 reject `f64` files with an error rather than misread
//! them. The validator requires every weight to be finite and, in `f64` files, to round to a
//! finite `f32` (and positive scales to stay positive in `f32`), so that both precisions evaluate
//! any accepted file.
//!
//! The metadata is free-form JSON for host tools (column names, training record, golden vectors);
//! evaluators never read it.
//!
//! The sections are aligned: weights at a multiple of their size, so a file held in 8-byte aligned
//! memory (see [`crate::runtime::Aligned`]) is evaluated in place without copying.
//!
//! # What breaks the format
//! Any change to the header layout, or to the order or shape of the serde types in this module
//! (postcard is not self-describing: adding a variant at the end of an enum is compatible for
//! reading old files; reordering, removing or changing a field is not) needs a new format
//! version. Readers reject versions they do not know.
//!
//! # JSON form
//! The same description serializes to JSON with serde (host tools add the weights as arrays), so
//! people and other tools can read a model; `flow-train inspect --json` prints it.

#[cfg(any(test, feature = "alloc"))]
pub mod builder;
pub mod file;
pub mod golden;
#[cfg(any(test, feature = "alloc"))]
pub mod nonfinite;

use heapless::Vec;
use serde::{Deserialize, Serialize};

use crate::layers::affine::{AffineLayout, AffineScale};
use crate::layers::autoregressive::Direction;
use crate::layers::elementwise::ElementwiseKind;
use crate::layers::spline::SplineOpts;
use crate::nn::Activation;

/// Most layers a model may have.
pub const MAX_LAYERS: usize = 48;
/// Most entries of an MLP's size list (input, up to 6 hidden layers, output).
pub const MAX_NET_SIZES: usize = 8;
/// Largest dimension (data or context) a model may have.
pub const MAX_DIM: usize = 1024;
/// Most components a mixture base may have.
pub const MAX_COMPONENTS: usize = 256;

/// A range of the weight or integer section.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    /// First element.
    pub offset: u32,
    /// Number of elements.
    pub len: u32,
}

impl Span {
    /// `offset..offset + len` checked against a section of `n` elements.
    pub fn range(&self, n: usize) -> Option<core::ops::Range<usize>> {
        let start = self.offset as usize;
        let end = start.checked_add(self.len as usize)?;
        if end <= n {
            Some(start..end)
        } else {
            None
        }
    }
}

/// A conditioner network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetDesc {
    /// `[inputs, hidden…, outputs]`.
    pub sizes: Vec<usize, MAX_NET_SIZES>,
    /// Hidden activation.
    pub activation: Activation,
    /// Residual blocks (see [`crate::nn::mlp`]).
    pub residual: bool,
    /// Weights and biases (see [`crate::nn::mlp`]).
    pub params: Span,
}

/// The base distribution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum BaseDesc {
    /// N(0, I).
    StandardNormal,
    /// N(μ, diag σ²): weights `[μ, σ]`.
    DiagNormal {
        /// `2D` weights.
        params: Span,
    },
    /// N(μ, L Lᵀ): weights `[μ, packed L]`.
    CholeskyNormal {
        /// `D + D(D+1)/2` weights.
        params: Span,
    },
    /// A mixture of `components` diagonal normals: weights `[logits, μ (K·D), ln σ (K·D)]` (see
    /// [`crate::base::GaussianMixture`]).
    GaussianMixture {
        /// K ≥ 1.
        components: u16,
        /// `K (1 + 2D)` weights.
        params: Span,
    },
    /// Independent Student-t coordinates: weights `[μ, ln σ, ln ν]` (see
    /// [`crate::base::StudentT`]).
    StudentT {
        /// `3D` weights.
        params: Span,
    },
}

impl BaseDesc {
    /// The span of the base's weights (empty for the standard normal).
    pub fn params(&self) -> Span {
        match self {
            BaseDesc::StandardNormal => Span::default(),
            BaseDesc::DiagNormal { params }
            | BaseDesc::CholeskyNormal { params }
            | BaseDesc::GaussianMixture { params, .. }
            | BaseDesc::StudentT { params } => *params,
        }
    }
}

/// One layer of a model; spans point into the weight (`params`) or integer sections.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum LayerDesc {
    /// Elementwise bijection (e.g. the standardization fitted on the training data).
    Elementwise {
        /// Which map.
        kind: ElementwiseKind,
        /// Its parameters (may be empty).
        params: Span,
    },
    /// MAF / IAF with an affine transformer.
    AffineAutoregressive {
        /// MADE conditioner (masked weights stored as zero).
        net: NetDesc,
        /// Rank of each feature in the autoregressive order (integers, `D`).
        order: Span,
        /// Degrees of the hidden units (integers, Σ hidden).
        hidden_degrees: Span,
        /// Scale parameterization.
        scale: AffineScale,
        /// Output layout.
        layout: AffineLayout,
        /// MAF or IAF.
        direction: Direction,
    },
    /// Autoregressive rational-quadratic spline.
    SplineAutoregressive {
        /// MADE conditioner.
        net: NetDesc,
        /// Rank of each feature (integers, `D`).
        order: Span,
        /// Degrees of the hidden units.
        hidden_degrees: Span,
        /// Spline options.
        spline: SplineOpts,
        /// MAF or IAF.
        direction: Direction,
    },
    /// Affine coupling (RealNVP; NICE when `additive`).
    AffineCoupling {
        /// Conditioner on the identity features (and context).
        net: NetDesc,
        /// 1 = identity (conditioning) feature, 0 = transformed (integers, `D`).
        mask: Span,
        /// Scale parameterization.
        scale: AffineScale,
        /// Output layout.
        layout: AffineLayout,
        /// Shift only (NICE).
        additive: bool,
    },
    /// Rational-quadratic spline coupling.
    SplineCoupling {
        /// Conditioner on the identity features (and context).
        net: NetDesc,
        /// 1 = identity feature, 0 = transformed (integers, `D`).
        mask: Span,
        /// Spline options.
        spline: SplineOpts,
    },
    /// Planar flow: weights `[u, w, b]`.
    Planar {
        /// `2D + 1` weights.
        params: Span,
    },
    /// Radial flow: weights `[z0, α̃, β̃]`.
    Radial {
        /// `D + 2` weights.
        params: Span,
    },
    /// ActNorm: weights `[log_scale, shift]`.
    ActNorm {
        /// `2D` weights.
        params: Span,
    },
    /// Batch norm in evaluation form.
    BatchNorm {
        /// `4D` weights.
        params: Span,
        /// Variance epsilon.
        eps: f64,
    },
    /// Invertible LU linear map.
    LuLinear {
        /// Weights (see [`crate::layers::lu_linear`]).
        params: Span,
        /// Lower bound of the diagonal of U.
        eps: f64,
    },
    /// Fixed permutation: `out[i] = in[perm[i]]` in the density direction (integers, `D`).
    Permutation {
        /// The permutation.
        perm: Span,
    },
    /// Context standardization: every later layer sees `(c − m) / s` (see
    /// [`crate::layers::context`]). Only as the first layer, with the first weights, and only in
    /// conditional models.
    ContextStandardize {
        /// `2C` weights `[m (C), s (C)]`, `s > 0`.
        params: Span,
    },
}

/// A whole model: dimensions, layers in the density direction (data → base), base.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelDesc {
    /// Data dimension D.
    pub dim: u32,
    /// Context dimension C (0 = unconditional).
    pub context_dim: u32,
    /// Layers, applied in order from data to base.
    pub layers: Vec<LayerDesc, MAX_LAYERS>,
    /// Base distribution.
    pub base: BaseDesc,
}
