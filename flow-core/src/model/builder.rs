//! Assembling a model description and its sections on the host (feature `alloc`).

use alloc::string::String;
use alloc::vec::Vec;

use super::file::{self, WeightType, Weights};
use super::{BaseDesc, LayerDesc, ModelDesc, Span};

/// A model under construction: description plus `f64` weights (training precision) and integers.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelParts {
    /// The description; its spans index `weights` and `ints`.
    pub desc: ModelDesc,
    /// All weights, layer after layer, base last.
    pub weights: Vec<f64>,
    /// Orders, hidden degrees, masks, permutations.
    pub ints: Vec<u16>,
    /// How [`ModelParts::to_bytes`] stores the weights: `f32` (the default, format version 1) or
    /// `f64` (version 2, for parameters trained in float64). [`ModelParts::from_bytes`] sets it
    /// from the file.
    pub weight_type: WeightType,
}

impl ModelParts {
    /// An empty model of dimension `dim` with `context_dim` context inputs and a standard-normal base.
    pub fn new(dim: usize, context_dim: usize) -> Self {
        ModelParts {
            desc: ModelDesc {
                dim: dim as u32,
                context_dim: context_dim as u32,
                layers: heapless::Vec::new(),
                base: BaseDesc::StandardNormal,
            },
            weights: Vec::new(),
            ints: Vec::new(),
            weight_type: WeightType::F32,
        }
    }

    /// Appends weights, returning their span.
    pub fn push_weights(&mut self, w: &[f64]) -> Span {
        let span = Span {
            offset: self.weights.len() as u32,
            len: w.len() as u32,
        };
        self.weights.extend_from_slice(w);
        span
    }

    /// Appends integers, returning their span.
    pub fn push_ints(&mut self, v: &[u16]) -> Span {
        let span = Span {
            offset: self.ints.len() as u32,
            len: v.len() as u32,
        };
        self.ints.extend_from_slice(v);
        span
    }

    /// Appends a layer (its spans must already point at pushed data).
    ///
    /// # Panics
    /// With more than [`super::MAX_LAYERS`] layers.
    pub fn push_layer(&mut self, l: LayerDesc) {
        assert!(
            self.desc.layers.push(l).is_ok(),
            "too many layers (max {})",
            super::MAX_LAYERS
        );
    }

    /// Sets a diagonal-normal base `N(μ, diag σ²)`; call after the last layer.
    pub fn set_diag_base(&mut self, mu: &[f64], sigma: &[f64]) {
        let mut p = mu.to_vec();
        p.extend_from_slice(sigma);
        let params = self.push_weights(&p);
        self.desc.base = BaseDesc::DiagNormal { params };
    }

    /// Sets a full-covariance base `N(μ, L Lᵀ)` with packed lower-triangular `L`; call last.
    pub fn set_cholesky_base(&mut self, mu: &[f64], packed_l: &[f64]) {
        let mut p = mu.to_vec();
        p.extend_from_slice(packed_l);
        let params = self.push_weights(&p);
        self.desc.base = BaseDesc::CholeskyNormal { params };
    }

    /// Sets a mixture of `components` diagonal normals with weights `[logits (K), μ (K·D),
    /// ln σ (K·D)]` (see [`crate::base::GaussianMixture`]); call after the last layer. Returns
    /// the span of its weights.
    pub fn set_mixture_base(&mut self, components: u16, params: &[f64]) -> Span {
        let params = self.push_weights(params);
        self.desc.base = BaseDesc::GaussianMixture { components, params };
        params
    }

    /// Sets independent Student-t coordinates with weights `[μ (D), ln σ (D), ln ν (D)]` (see
    /// [`crate::base::StudentT`]); call after the last layer. Returns the span of its weights.
    pub fn set_student_t_base(&mut self, params: &[f64]) -> Span {
        let params = self.push_weights(params);
        self.desc.base = BaseDesc::StudentT { params };
        params
    }

    /// The weights rounded to `f32`, as version-1 files store them.
    pub fn weights_f32(&self) -> Vec<f32> {
        self.weights.iter().map(|&w| w as f32).collect()
    }

    /// The weights as [`ModelParts::to_bytes`] stores them, as `f64`: rounded to `f32` and widened
    /// back (exactly) for `f32` storage, unchanged for `f64`. A flow over these (`W = f64`) computes
    /// the same bits as the runtime evaluator on the file, in either scalar type: kernels read
    /// weights only through [`crate::Weight::get`], which gives the same value for an `f32` and its
    /// exact widening.
    pub fn stored_weights(&self) -> Vec<f64> {
        match self.weight_type {
            WeightType::F32 => self.weights.iter().map(|&w| w as f32 as f64).collect(),
            WeightType::F64 => self.weights.clone(),
        }
    }

    /// Serializes to the model file format with `meta` JSON, storing the weights as
    /// [`ModelParts::weight_type`] says.
    pub fn to_bytes(&self, meta: &str) -> Vec<u8> {
        match self.weight_type {
            WeightType::F32 => file::write(&self.desc, meta, Weights::F32(&self.weights_f32()), &self.ints),
            WeightType::F64 => file::write(&self.desc, meta, Weights::F64(&self.weights), &self.ints),
        }
    }

    /// Reads a model file into owned parts (weights widened to f64, [`ModelParts::weight_type`]
    /// from the file), validating it first. Returns the parts and the metadata.
    pub fn from_bytes(bytes: &[u8]) -> Result<(Self, String), crate::runtime::Error> {
        let sec = file::split(bytes)?;
        let desc = file::decode_desc(sec.desc)?;
        let ints: Vec<u16> = sec
            .ints
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        let weights: Vec<f64> = sec.weight_values().collect();
        match sec.weight_type {
            WeightType::F32 => {
                let w32: Vec<f32> = weights.iter().map(|&w| w as f32).collect();
                crate::runtime::validate(&desc, &w32, &ints)?;
            }
            WeightType::F64 => crate::runtime::validate(&desc, &weights, &ints)?,
        }
        let parts = ModelParts {
            desc,
            weights,
            ints,
            weight_type: sec.weight_type,
        };
        Ok((parts, String::from(sec.meta)))
    }
}
