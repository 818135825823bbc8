//! [`BaseView`]: the base distribution of a runtime model over its weight vector.

use super::layers::{base_span, slice};
use crate::base::{Base, CholeskyNormal, DiagNormal, GaussianMixture, StandardNormal, StudentT};
use crate::model::{BaseDesc, ModelDesc};
use crate::{Real, Weight};

/// The base distribution of a runtime model.
#[derive(Clone, Copy, Debug)]
pub struct BaseView<'a, W> {
    /// The description.
    pub desc: &'a ModelDesc,
    /// All weights.
    pub weights: &'a [W],
}

/// Dispatches a base call.
macro_rules! base_dispatch {
    ($self:expr, $b:ident => $call:expr) => {{
        let d = $self.desc.dim as usize;
        match &$self.desc.base {
            BaseDesc::StandardNormal => {
                let $b = StandardNormal { dim: d };
                $call
            }
            BaseDesc::DiagNormal { params } => {
                let $b = DiagNormal {
                    params: slice($self.weights, *params),
                };
                $call
            }
            BaseDesc::CholeskyNormal { params } => {
                let $b = CholeskyNormal {
                    dim: d,
                    params: slice($self.weights, *params),
                };
                $call
            }
            BaseDesc::GaussianMixture { components, params } => {
                let $b = GaussianMixture {
                    dim: d,
                    components: *components as usize,
                    params: slice($self.weights, *params),
                };
                $call
            }
            BaseDesc::StudentT { params } => {
                let $b = StudentT {
                    params: slice($self.weights, *params),
                };
                $call
            }
        }
    }};
}

impl<'a, S: Real, W: Weight> Base<S> for BaseView<'a, W> {
    fn dim(&self) -> usize {
        self.desc.dim as usize
    }
    fn n_params(&self) -> usize {
        base_span(&self.desc.base).len as usize
    }
    fn scratch_len(&self) -> usize {
        base_dispatch!(self, b => Base::<S>::scratch_len(&b))
    }
    #[inline]
    fn log_prob(&self, z: &[S], scratch: &mut [S]) -> S {
        base_dispatch!(self, b => b.log_prob(z, scratch))
    }
    #[inline]
    fn noise_to_base(&self, eps: &[S], z: &mut [S]) {
        base_dispatch!(self, b => b.noise_to_base(eps, z))
    }
    fn log_prob_vjp(&self, z: &[S], g: S, g_z: &mut [S], g_params: Option<&mut [S]>, scratch: &mut [S]) {
        base_dispatch!(self, b => b.log_prob_vjp(z, g, g_z, g_params, scratch))
    }
    fn noise_to_base_vjp(&self, eps: &[S], g_z: &[S], g_params: &mut [S]) {
        base_dispatch!(self, b => b.noise_to_base_vjp(eps, g_z, g_params))
    }
}
