//! The block (batch) passes shared by the layers with a conditioner network: run the network
//! once for a block of samples ([`Mlp::forward_block`]), then each sample's elementwise step —
//! the same step function the single-sample path calls, so every sample gets the same bits.

use crate::block;
use crate::nn::Mlp;
use crate::{Real, Weight};

/// Scratch of [`one_pass`] and [`solve`] for `n` samples: `n` network outputs (`n_out` each),
/// `n` network inputs (`n_in` each, 0 when the inputs are the samples themselves), `extra`
/// elements for the step and the network's block scratch.
pub fn scratch_len<W: Weight>(net: &Mlp<W>, n_in: usize, extra: usize, n: usize) -> usize {
    n * (net.n_out() + n_in) + extra + net.block_scratch_len(n)
}

/// One network pass for the block: `inputs(src[s], buf)` writes sample `s`'s network input
/// (`n_in` elements; with `n_in = 0` the sample itself is the input), then
/// `ldj[s] += step(src[s], out[s], dst[s], extra)`.
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
    step: impl Fn(&[S], &[S], &mut [S], &mut [S]) -> S,
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
    let outs = block::views::<S, N>(out, n_out);
    for (((s, o), d), l) in src.into_iter().zip(outs).zip(dst).zip(ldj.iter_mut()) {
        *l += step(s, o, d, extra);
    }
}

/// The inverse of an autoregressive pass by `sweeps` passes for the block: `y` starts at 0 and
/// each sweep sets `y[s]` from `step(z[s], out[s], y[s], extra)`; the last sweep's returned
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
    step: impl Fn(&[S], &[S], &mut [S], &mut [S]) -> S,
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
        let outs = block::views::<S, N>(out, n_out);
        for (((zs, o), ys), l) in z.into_iter().zip(outs).zip(y.iter_mut()).zip(last.iter_mut()) {
            *l = step(zs, o, ys, extra);
        }
    }
    for (l, v) in ldj.iter_mut().zip(last) {
        *l += v;
    }
}
