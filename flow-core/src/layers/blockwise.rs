//! The block (batch) passes shared by the layers with a conditioner network: run the network
//! once for a block of samples ([`Mlp::forward_block`]), then the elementwise step of the block:
//! each sample through the step function the single-sample path calls ([`each`]), or all samples
//! at once in lanes with the same bits ([`crate::lanes`]).

use crate::block;
use crate::lanes::{self, LaneTask};
use crate::nn::Mlp;
use crate::{arch, Real, Weight};

/// Scratch of [`one_pass`] and [`solve`] for `n` samples: `n` network outputs (`n_out` each),
/// `n` network inputs (`n_in` each, 0 when the inputs are the samples themselves), `extra`
/// elements for the step and the network's block scratch.
pub fn scratch_len<W: Weight>(net: &Mlp<W>, n_in: usize, extra: usize, n: usize) -> usize {
    n * (net.n_out() + n_in) + extra + net.block_scratch_len(n)
}

/// One network pass for the block: `inputs(src[s], buf)` writes sample `s`'s network input
/// (`n_in` elements; with `n_in = 0` the sample itself is the input), then
/// `ldj[s] += step(src, out, dst, extra)[s]`.
#[allow(clippy::too_many_arguments)]
#[inline]
pub fn one_pass<S: Real, W: Weight, const N: usize>(
    net: &Mlp<W>,
    n_in: usize,
    extra: usize,
    src: [&[S]; N],
    ctx: [&[S]; N],
    dst: [&mut [S]; N],
    ldj: &mut [S; N],
    scratch: &mut [S],
    inputs: impl Fn(&[S], &mut [S]),
    step: impl Fn([&[S]; N], [&[S]; N], &mut [&mut [S]; N], &mut [S]) -> [S; N],
) {
    let n_out = net.n_out();
    let Some((out, rest)) = scratch.split_at_mut_checked(N * n_out) else {
        return;
    };
    let Some((ins, rest)) = rest.split_at_mut_checked(N * n_in) else {
        return;
    };
    let Some((extra, rest)) = rest.split_at_mut_checked(extra) else {
        return;
    };
    let net_in = if n_in == 0 {
        src
    } else {
        for (s, buf) in src.iter().zip(block::views_mut::<S, N>(ins, n_in)) {
            inputs(s, buf);
        }
        block::views::<S, N>(ins, n_in)
    };
    net.forward_block(net_in, ctx, block::views_mut::<S, N>(out, n_out), rest);
    let mut dst = dst;
    let l = step(src, block::views::<S, N>(out, n_out), &mut dst, extra);
    for (acc, v) in ldj.iter_mut().zip(l) {
        *acc += v;
    }
}

/// The block step of a per-sample step: `step(src[s], out[s], dst[s], extra)` for each sample.
#[inline(always)]
pub fn each<S: Real, const N: usize>(
    src: [&[S]; N],
    out: [&[S]; N],
    dst: &mut [&mut [S]; N],
    extra: &mut [S],
    step: impl Fn(&[S], &[S], &mut [S], &mut [S]) -> S,
) -> [S; N] {
    let mut ldj = [S::ZERO; N];
    for (((l, s), o), d) in ldj.iter_mut().zip(src).zip(out).zip(dst.iter_mut()) {
        *l = step(s, o, d, extra);
    }
    ldj
}

/// The inverse of an autoregressive pass by `sweeps` passes for the block: `y` starts at 0 and
/// each sweep sets `y` from `step(z, out, y, extra)`; the last sweep's returned
/// log-determinant is added into `ldj[s]`.
#[allow(clippy::too_many_arguments)]
#[inline]
pub fn solve<S: Real, W: Weight, const N: usize>(
    net: &Mlp<W>,
    extra: usize,
    sweeps: usize,
    z: [&[S]; N],
    ctx: [&[S]; N],
    mut y: [&mut [S]; N],
    ldj: &mut [S; N],
    scratch: &mut [S],
    step: impl Fn([&[S]; N], [&[S]; N], &mut [&mut [S]; N], &mut [S]) -> [S; N],
) {
    let n_out = net.n_out();
    let Some((out, rest)) = scratch.split_at_mut_checked(N * n_out) else {
        return;
    };
    let Some((extra, rest)) = rest.split_at_mut_checked(extra) else {
        return;
    };
    for ys in y.iter_mut() {
        ys.fill(S::ZERO);
    }
    let mut last = [S::ZERO; N];
    for _ in 0..sweeps {
        net.forward_block(block::shared(&y), ctx, block::views_mut::<S, N>(out, n_out), rest);
        last = step(z, block::views::<S, N>(out, n_out), &mut y, extra);
    }
    for (l, v) in ldj.iter_mut().zip(last) {
        *l += v;
    }
}

/// A layer whose block step can run in lanes: all samples of the block at once, each with the bits
/// of its single-sample step (`flag`: the layer's direction or pass).
pub trait LaneStep {
    /// Whether this layer's lane step applies (e.g. a spline with at most
    /// [`LANES_MAX_BINS`](crate::layers::spline::LANES_MAX_BINS) bins); otherwise [`step_block`]
    /// runs the samples one by one.
    fn lanes_apply(&self) -> bool {
        true
    }

    /// The step of every sample of the block, in lanes; returns each sample's log-determinant.
    fn step_lanes<S: Real, const N: usize>(
        &self,
        src: [&[S]; N],
        out: [&[S]; N],
        dst: &mut [&mut [S]; N],
        flag: bool,
    ) -> [S; N];
}

/// The block step of `layer`: [`LaneStep::step_lanes`] compiled for the CPU's vector extensions
/// ([`arch::vectorized`]) where the target has them ([`lanes::ENABLED`]) and the layer's lane step
/// applies, else `per_sample` for each sample ([`each`]). The same bits either way.
#[inline(always)]
pub fn step_block<L: LaneStep, S: Real, const N: usize>(
    layer: &L,
    src: [&[S]; N],
    out: [&[S]; N],
    dst: &mut [&mut [S]; N],
    extra: &mut [S],
    flag: bool,
    per_sample: impl Fn(&[S], &[S], &mut [S], &mut [S]) -> S,
) -> [S; N] {
    if lanes::ENABLED && N > 1 && layer.lanes_apply() {
        return arch::vectorized(StepTask {
            layer,
            src,
            out,
            dst,
            flag,
        });
    }
    each(src, out, dst, extra, per_sample)
}

/// [`LaneStep::step_lanes`] as a [`LaneTask`].
struct StepTask<'l, 'd, 'r, 'w, L, S, const N: usize> {
    layer: &'l L,
    src: [&'r [S]; N],
    out: [&'r [S]; N],
    dst: &'d mut [&'w mut [S]; N],
    flag: bool,
}

impl<L: LaneStep, S: Real, const N: usize> LaneTask for StepTask<'_, '_, '_, '_, L, S, N> {
    type Output = [S; N];
    #[inline(always)]
    fn run(self) -> [S; N] {
        self.layer.step_lanes(self.src, self.out, self.dst, self.flag)
    }
}
