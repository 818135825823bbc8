//! The univariate transformer of a conditioned layer: the monotone map `y = f(x; θ)` applied to
//! each transformed feature, with the raw parameters `θ` that the layer's conditioner computes.
//!
//! A layer is a conditioner × a transformer (as in zuko, where NSF is MAF with another
//! transformer): [`Autoregressive`](crate::layers::autoregressive::Autoregressive) and
//! [`Coupling`](crate::layers::coupling::Coupling) run the conditioner network and hand each
//! transformed feature's input and raw parameters to a [`Transformer`]. The transformers:
//! [`Affine`](crate::layers::affine::Affine) (`x · s(a) + t`, and NICE's shift) and the
//! rational-quadratic spline ([`SplineOpts`](crate::layers::spline::SplineOpts)).
//!
//! Every method takes the features as an iterator, so that the transformer prepares its
//! constants once per sample and the layer decides which features it transforms (all of them in
//! order, or a coupling's transformed features) — the same loop for every layer.

use crate::Real;

/// A univariate monotone transformer (see the module docs).
///
/// The log-determinants are summed in the order of the features, and every path (single sample,
/// lanes) gives the same bits for the same sample.
pub trait Transformer: Copy + core::fmt::Debug {
    /// Raw parameters per feature `P` (the conditioner gives `P` outputs per transformed feature,
    /// feature-major).
    fn params_per_feature(&self) -> usize;

    /// Scratch of [`Transformer::map`] and [`Transformer::derivatives`] (e.g. a spline's knots).
    fn map_len(&self) -> usize;

    /// Scratch of [`Transformer::vjp`].
    fn vjp_len(&self) -> usize;

    /// Whether [`Transformer::map_lanes`] applies (e.g. a spline with at most
    /// [`LANES_MAX_BINS`](crate::layers::spline::LANES_MAX_BINS) bins); otherwise a block runs
    /// sample by sample.
    fn lanes_apply(&self) -> bool {
        true
    }

    /// For each feature `(x, θ, y)`: `y = f(x; θ)` (`forward`) or `f⁻¹(x; θ)`; returns the sum of
    /// `ln |dy/dx|` over the features.
    fn map<'f, S: Real + 'f>(
        &self,
        features: impl Iterator<Item = (&'f S, &'f [S], &'f mut S)>,
        scratch: &mut [S],
        forward: bool,
    ) -> S;

    /// [`Transformer::map`] of `N` samples at once: for each `(i, r)` of `coords`,
    /// `dst[s][i] = f(src[s][i])` (or `f⁻¹`) with the raw parameters at row `r` of sample `s`'s
    /// conditioner output (`out[j][s]`, `P` per row); returns each sample's sum of log-derivatives,
    /// with the bits of [`Transformer::map`] of that sample alone. `side_by_side` asks for two
    /// coordinates at a time where the transformer has that form (a speed choice of the layer;
    /// the bits do not depend on it).
    fn map_lanes<S: Real, const N: usize>(
        &self,
        src: &[&[S]; N],
        out: &[[S; N]],
        dst: &mut [&mut [S]; N],
        coords: impl Iterator<Item = (usize, usize)>,
        forward: bool,
        side_by_side: bool,
    ) -> [S; N];

    /// For each feature `(x, θ, d)`: the slope `d = f'(x; θ)` of the forward map.
    fn derivatives<'f, S: Real + 'f>(
        &self,
        features: impl Iterator<Item = (&'f S, &'f [S], &'f mut S)>,
        scratch: &mut [S],
    );

    /// The VJP of [`Transformer::map`] for cotangents `g_y` of the outputs and `g_ldj` of the
    /// log-determinant: for each feature [`FeatureVjp`], writes the cotangents of its input
    /// (through `y` and the log-derivative) and of its raw parameters.
    fn vjp<'f, S: Real + 'f>(
        &self,
        features: impl Iterator<Item = FeatureVjp<'f, S>>,
        g_ldj: S,
        scratch: &mut [S],
        forward: bool,
    );
}

/// One feature of [`Transformer::vjp`]: `(x, g_y, θ, g_θ, g_x)` — the input, the output's
/// cotangent, the raw parameters, then what the VJP writes: the parameters' and the input's
/// cotangents.
pub type FeatureVjp<'f, S> = (&'f S, &'f S, &'f [S], &'f mut [S], &'f mut S);
