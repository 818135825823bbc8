//! Assembling a model description and its sections on the host (feature `alloc`).

use alloc::string::String;
use alloc::vec::Vec;

use super::{file, BaseDesc, LayerDesc, ModelDesc, Span};

/// A model under construction: description plus `f64` weights (training precision) and integers.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelParts {
    /// The description; its spans index `weights` and `ints`.
    pub desc: ModelDesc,
    /// All weights, layer after layer, base last.
    pub weights: Vec<f64>,
    /// Orders, hidden degrees, masks, permutations.
    pub ints: Vec<u16>,
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

    /// The weights rounded to `f32`, as stored in files.
    pub fn weights_f32(&self) -> Vec<f32> {
        self.weights.iter().map(|&w| w as f32).collect()
    }

    /// Serializes to the model file format with `meta` JSON.
    pub fn to_bytes(&self, meta: &str) -> Vec<u8> {
        file::write(&self.desc, meta, &self.weights_f32(), &self.ints)
    }

    /// Reads a model file into owned parts (weights widened to f64), validating it first.
    /// Returns the parts and the metadata.
    pub fn from_bytes(bytes: &[u8]) -> Result<(Self, String), crate::runtime::Error> {
        let sec = file::split(bytes)?;
        let desc = file::decode_desc(sec.desc)?;
        let weights_f32: Vec<f32> = sec
            .weights
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let ints: Vec<u16> = sec
            .ints
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        crate::runtime::validate(&desc, &weights_f32, &ints)?;
        let weights = weights_f32.iter().map(|&w| w as f64).collect();
        Ok((ModelParts { desc, weights, ints }, String::from(sec.meta)))
    }
}
