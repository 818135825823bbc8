//! The block (batch) passes shared by the layers with a conditioner network: run the network
//! once for a block of samples ([`Mlp::forward_block`]), then the elementwise step of the block:
//! each sample through the step function the single-sample path calls, or all samples at once in
//! lanes with the same bits ([`crate::lanes`]): [`BlockStep`].

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
/// (`n_in` elements; with `n_in = 0` the sample itself is the input), then `layer`'s step
/// ([`BlockStep`], `flag`) maps `src` to `dst` and adds each sample's log-determinant into `ldj`.
#[inline]
#[allow(clippy::too_many_arguments)]
pub fn one_pass<L: BlockStep, S: Real, W: Weight, const N: usize>(
    layer: &L,
    flag: bool,
    net: &Mlp<W>,
    n_in: usize,
    extra: usize,
    src: [&[S]; N],
    ctx: [&[S]; N],
    mut dst: [&mut [S]; N],
    ldj: &mut [S; N],
    scratch: &mut [S],
    inputs: impl Fn(&[S], &mut [S]),
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
    let lanes = in_lanes(layer, N);
    network(net, lanes, net_in, ctx, out, rest);
    let l = apply(layer, flag, lanes, src, out, &mut dst, extra);
    for (acc, v) in ldj.iter_mut().zip(l) {
        *acc += v;
    }
}

/// The inverse of an autoregressive pass by `sweeps` passes for the block: `y` starts at 0 and
/// each sweep sets `y` from `layer`'s step of `z` ([`BlockStep`], `flag`) with the network
/// evaluated at the current `y`; the last sweep's log-determinant is added into `ldj[s]`.
#[inline]
#[allow(clippy::too_many_arguments)]
pub fn solve<L: BlockStep, S: Real, W: Weight, const N: usize>(
    layer: &L,
    flag: bool,
    net: &Mlp<W>,
    extra: usize,
    sweeps: usize,
    z: [&[S]; N],
    ctx: [&[S]; N],
    mut y: [&mut [S]; N],
    ldj: &mut [S; N],
    scratch: &mut [S],
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
    let lanes = in_lanes(layer, N);
    let mut last = [S::ZERO; N];
    for _ in 0..sweeps {
        network(net, lanes, block::shared(&y), ctx, out, rest);
        last = apply(layer, flag, lanes, z, out, &mut y, extra);
    }
    for (l, v) in ldj.iter_mut().zip(last) {
        *l += v;
    }
}
/// An autoregressive layer's block: its one-pass map ([`one_pass`], `pass`) or the inverse by
/// `dim` sweeps ([`solve`]), the network reading the samples themselves.
#[inline]
#[allow(clippy::too_many_arguments)]
pub fn autoregressive<L: BlockStep, S: Real, W: Weight, const N: usize>(
    layer: &L,
    pass: bool,
    net: &Mlp<W>,
    extra: usize,
    dim: usize,
    src: [&[S]; N],
    ctx: [&[S]; N],
    dst: [&mut [S]; N],
    ldj: &mut [S; N],
    scratch: &mut [S],
) {
    if pass {
        one_pass(layer, pass, net, 0, extra, src, ctx, dst, ldj, scratch, |_, _| {});
    } else {
        solve(layer, pass, net, extra, dim, src, ctx, dst, ldj, scratch);
    }
}

/// A layer's elementwise step after its network: per sample ([`BlockStep::step_one`], the
/// single-sample path's step) and for a block in lanes ([`BlockStep::step_lanes`], the same bits).
/// `flag` is the layer's direction or pass.
pub trait BlockStep {
    /// Whether this layer's lane step applies (e.g. a spline with at most
    /// [`LANES_MAX_BINS`](crate::layers::spline::LANES_MAX_BINS) bins); otherwise the block runs
    /// sample by sample.
    fn lanes_apply(&self) -> bool {
        true
    }

    /// The step of one sample: `src` and the network output `out` → `dst` (`extra`: the step's
    /// scratch); returns the log-determinant.
    fn step_one<S: Real>(&self, src: &[S], out: &[S], dst: &mut [S], extra: &mut [S], flag: bool) -> S;

    /// The step of every sample of the block in lanes, the network outputs as columns
    /// (`out[j][s]`); returns each sample's log-determinant.
    fn step_lanes<S: Real, const N: usize>(
        &self,
        src: [&[S]; N],
        out: &[[S; N]],
        dst: &mut [&mut [S]; N],
        flag: bool,
    ) -> [S; N];
}

/// Whether a block of `n` samples runs `layer`'s step in lanes: where the target has vectors
/// ([`lanes::ENABLED`]) and the layer's lane step applies.
#[inline(always)]
fn in_lanes<L: BlockStep>(layer: &L, n: usize) -> bool {
    lanes::ENABLED && n > 1 && layer.lanes_apply()
}

/// The network for the block into `out`: as columns (`out[j][s]`, [`Mlp::forward_columns`]) for
/// the lanes, as one row per sample ([`Mlp::forward_block`]) otherwise.
#[inline(always)]
fn network<S: Real, W: Weight, const N: usize>(
    net: &Mlp<W>,
    lanes: bool,
    x: [&[S]; N],
    ctx: [&[S]; N],
    out: &mut [S],
    scratch: &mut [S],
) {
    if lanes {
        net.forward_columns(x, ctx, out.as_chunks_mut::<N>().0, scratch);
    } else {
        net.forward_block(x, ctx, block::views_mut::<S, N>(out, net.n_out()), scratch);
    }
}

/// `layer`'s step of the block from the network output `network` wrote: in lanes compiled for the
/// CPU's vector extensions ([`arch::vectorized`]), else each sample. The same bits either way.
#[inline(always)]
fn apply<L: BlockStep, S: Real, const N: usize>(
    layer: &L,
    flag: bool,
    lanes: bool,
    src: [&[S]; N],
    out: &[S],
    dst: &mut [&mut [S]; N],
    extra: &mut [S],
) -> [S; N] {
    if lanes {
        return arch::vectorized(StepTask {
            layer,
            src,
            out: out.as_chunks::<N>().0,
            dst,
            flag,
        });
    }
    let n_out = out.len() / N.max(1);
    let mut ldj = [S::ZERO; N];
    let outs = block::views::<S, N>(out, n_out);
    for (((l, s), o), d) in ldj.iter_mut().zip(src).zip(outs).zip(dst.iter_mut()) {
        *l = layer.step_one(s, o, d, extra, flag);
    }
    ldj
}

/// [`BlockStep::step_lanes`] as a [`LaneTask`].
struct StepTask<'l, 'd, 'r, 'w, L, S, const N: usize> {
    layer: &'l L,
    src: [&'r [S]; N],
    out: &'r [[S; N]],
    dst: &'d mut [&'w mut [S]; N],
    flag: bool,
}

impl<L: BlockStep, S: Real, const N: usize> LaneTask for StepTask<'_, '_, '_, '_, L, S, N> {
    type Output = [S; N];
    #[inline(always)]
    fn run(self) -> [S; N] {
        self.layer.step_lanes(self.src, self.out, self.dst, self.flag)
    }
}
