//! The fixed-size array methods of a baked flow, written once: the generated inherent methods
//! (`Name::log_prob(&[f32; D])`, …) are one call each to these functions with `F = Name`.
//!
//! Each puts the flow's scratch array ([`BakedFlow::Scratch`], or [`BakedFlow::BlockScratch`] for
//! the batch forms) on the stack and calls the [`Flow`](crate::flow::Flow) kernel of the same
//! name. The arrays fix every length, so nothing can fail; `ctx` is the context array (`&[]` for
//! unconditional models). The batch forms take the first rows that all their arguments have.

use super::{BakedFlow, RngCore, Scratch};
use crate::Real;

/// log p(x | ctx).
#[inline]
pub fn log_prob<F: BakedFlow<S>, S: Real>(x: &[S], ctx: &[S]) -> S {
    let mut scratch = F::Scratch::zeroed();
    F::FLOW.log_prob(x, ctx, scratch.as_mut_slice())
}

/// ∇ₓ log p(x | ctx).
#[inline]
pub fn grad_log_prob<F: BakedFlow<S>, S: Real, const D: usize>(x: &[S; D], ctx: &[S]) -> [S; D] {
    let mut scratch = F::Scratch::zeroed();
    let mut g = [S::ZERO; D];
    F::FLOW.grad_log_prob(x, ctx, &mut g, scratch.as_mut_slice());
    g
}

/// Data → base: the base point z and log|det ∂z/∂x|.
#[inline]
pub fn inverse<F: BakedFlow<S>, S: Real, const D: usize>(x: &[S; D], ctx: &[S]) -> ([S; D], S) {
    let mut scratch = F::Scratch::zeroed();
    let mut z = [S::ZERO; D];
    let ldj = F::FLOW.inverse(x, ctx, &mut z, scratch.as_mut_slice());
    (z, ldj)
}

/// Base → data: the data point x and log|det ∂x/∂z|.
#[inline]
pub fn forward<F: BakedFlow<S>, S: Real, const D: usize>(z: &[S; D], ctx: &[S]) -> ([S; D], S) {
    let mut scratch = F::Scratch::zeroed();
    let mut x = [S::ZERO; D];
    let ldj = F::FLOW.forward(z, ctx, &mut x, scratch.as_mut_slice());
    (x, ldj)
}

/// A sample from standard-normal base noise `eps`.
#[inline]
pub fn sample<F: BakedFlow<S>, S: Real, const D: usize>(eps: &[S; D], ctx: &[S]) -> [S; D] {
    let mut scratch = F::Scratch::zeroed();
    let mut x = [S::ZERO; D];
    F::FLOW.sample(eps, ctx, &mut x, scratch.as_mut_slice());
    x
}

/// A sample with standard-normal noise drawn from `rng`.
#[inline]
pub fn sample_with<F: BakedFlow<S>, S: Real, R: RngCore + ?Sized, const D: usize>(
    rng: &mut R,
    ctx: &[S],
) -> [S; D] {
    let mut scratch = F::Scratch::zeroed();
    let mut x = [S::ZERO; D];
    F::FLOW.sample_with(rng, ctx, &mut x, scratch.as_mut_slice());
    x
}

/// A sample from standard-normal base noise `eps` and its log p from the same pass, without
/// inverting (the sample is [`sample`]'s).
#[inline]
pub fn sample_and_log_prob<F: BakedFlow<S>, S: Real, const D: usize>(eps: &[S; D], ctx: &[S]) -> ([S; D], S) {
    let mut scratch = F::Scratch::zeroed();
    let mut x = [S::ZERO; D];
    let lp = F::FLOW.sample_and_log_prob(eps, ctx, &mut x, scratch.as_mut_slice());
    (x, lp)
}

/// [`sample_and_log_prob`] of each row of `eps`: samples into the rows of `xs`, log p into `out`
/// (the first min(eps.len(), xs.len(), out.len()) rows).
#[inline]
pub fn sample_and_log_prob_batch<F: BakedFlow<S>, S: Real, const D: usize>(
    eps: &[[S; D]],
    ctx: &[S],
    xs: &mut [[S; D]],
    out: &mut [S],
) {
    let mut scratch = F::BlockScratch::zeroed();
    let (eps, xs) = (eps.as_flattened(), xs.as_flattened_mut());
    F::FLOW.sample_and_log_prob_batch(eps, ctx, xs, out, scratch.as_mut_slice());
}

/// log p of each row of `xs` into `out` (the first min(xs.len(), out.len()) rows).
#[inline]
pub fn log_prob_batch<F: BakedFlow<S>, S: Real, const D: usize>(xs: &[[S; D]], ctx: &[S], out: &mut [S]) {
    let mut scratch = F::BlockScratch::zeroed();
    F::FLOW.log_prob_batch(xs.as_flattened(), ctx, out, scratch.as_mut_slice());
}

/// Samples from the base noise in each row of `eps` into the rows of `xs` (the first
/// min(eps.len(), xs.len()) rows).
#[inline]
pub fn sample_batch<F: BakedFlow<S>, S: Real, const D: usize>(eps: &[[S; D]], ctx: &[S], xs: &mut [[S; D]]) {
    let mut scratch = F::BlockScratch::zeroed();
    F::FLOW.sample_batch(
        eps.as_flattened(),
        ctx,
        xs.as_flattened_mut(),
        scratch.as_mut_slice(),
    );
}

/// ∇ₓ log p of each row of `xs` into the rows of `grads` and log p into `out` (the first
/// min(xs.len(), grads.len(), out.len()) rows).
#[inline]
pub fn grad_log_prob_batch<F: BakedFlow<S>, S: Real, const D: usize>(
    xs: &[[S; D]],
    ctx: &[S],
    grads: &mut [[S; D]],
    out: &mut [S],
) {
    let mut scratch = F::BlockScratch::zeroed();
    let (xs, grads) = (xs.as_flattened(), grads.as_flattened_mut());
    F::FLOW.grad_log_prob_batch(xs, ctx, grads, out, scratch.as_mut_slice());
}
