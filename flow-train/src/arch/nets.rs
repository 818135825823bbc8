//! Conditioner networks of the flows `fit` builds: MADE (autoregressive) and coupling MLPs,
//! PyTorch-style initialization with the last layer scaled by 1e-2 (each layer starts near the
//! identity), and the model being assembled (`Trainable`).

use flow_core::model::builder::ModelParts;
use flow_core::model::{NetDesc, Span};
use flow_core::nn::{made, mlp, Activation};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// A model to train: its parts (f64 weights) and which weights training may change.
#[derive(Clone, Debug)]
pub struct Trainable {
    /// Description and weights.
    pub parts: ModelParts,
    /// `true` for weights the optimizer updates (false: MADE-masked, standardization, base).
    pub trainable: Vec<bool>,
}

impl Trainable {
    pub(crate) fn new(d: usize, c: usize) -> Self {
        Trainable {
            parts: ModelParts::new(d, c),
            trainable: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, w: &[f64], trainable: &[bool]) -> Span {
        self.trainable.extend_from_slice(trainable);
        self.parts.push_weights(w)
    }
}

/// PyTorch-style initialization of an MLP with `sizes`; returns weights and which are trainable
/// (`allowed(layer, row, col)` says whether a weight survives the mask).
pub(crate) fn init_net(
    sizes: &[usize],
    rng: &mut ChaCha8Rng,
    allowed: &dyn Fn(usize, usize, usize) -> bool,
) -> (Vec<f64>, Vec<bool>) {
    let mut w = Vec::with_capacity(mlp::n_params(sizes));
    let mut t = Vec::with_capacity(w.capacity());
    let n_layers = sizes.len() - 1;
    for l in 0..n_layers {
        let (n_in, n_out) = (sizes[l], sizes[l + 1]);
        let bound = 1.0 / (n_in as f64).sqrt();
        let scale = if l + 1 == n_layers { 1e-2 } else { 1.0 };
        for row in 0..n_out {
            for col in 0..n_in {
                let ok = allowed(l, row, col);
                let v = rng.gen_range(-bound..bound) * scale;
                w.push(if ok { v } else { 0.0 });
                t.push(ok);
            }
        }
        for _ in 0..n_out {
            w.push(rng.gen_range(-bound..bound) * scale);
            t.push(true);
        }
    }
    (w, t)
}

pub(crate) fn sizes_vec(
    sizes: &[usize],
) -> flow_core::heapless::Vec<usize, { flow_core::model::MAX_NET_SIZES }> {
    let mut v = flow_core::heapless::Vec::new();
    for &s in sizes {
        let _ = v.push(s);
    }
    v
}

/// Appends an autoregressive conditioner (MADE) and returns its description, order and degrees.
pub(crate) fn push_made(
    t: &mut Trainable,
    order: &[u16],
    c: usize,
    hidden: &[usize],
    per_feature: usize,
    activation: Activation,
    rng: &mut ChaCha8Rng,
) -> (NetDesc, Span, Span) {
    let d = order.len();
    let mut sizes = vec![d + c];
    sizes.extend_from_slice(hidden);
    sizes.push(per_feature * d);
    let degrees: Vec<u16> = hidden
        .iter()
        .flat_map(|&h| (0..h).map(move |k| made::default_hidden_degree(k, d)))
        .collect();
    let (w, tr) = init_net(&sizes, rng, &|l, row, col| {
        made::allows(order, &sizes, &degrees, per_feature, l, row, col)
    });
    let params = t.push(&w, &tr);
    let order_span = t.parts.push_ints(order);
    let deg_span = t.parts.push_ints(&degrees);
    (
        NetDesc {
            sizes: sizes_vec(&sizes),
            activation,
            residual: false,
            params,
        },
        order_span,
        deg_span,
    )
}

/// Alternating halves: feature `i` is an identity (conditioning) feature of layer `k` when
/// `i % 2 == k % 2` (zuko's RealNVP masks). With one feature, nothing conditions it. With
/// `checkerboard = L` and `d = L²` the features are the sites of a row-major `L × L` lattice and
/// site `(r, c)` is an identity feature when `(r + c) % 2 == k % 2` (the lattice-flow masks:
/// every transformed site sees its four neighbours).
pub fn coupling_mask(d: usize, k: usize, checkerboard: usize) -> Vec<u16> {
    if d == 1 {
        return vec![0];
    }
    if checkerboard > 1 && checkerboard * checkerboard == d {
        let l = checkerboard;
        return (0..d).map(|i| u16::from((i / l + i % l) % 2 == k % 2)).collect();
    }
    (0..d).map(|i| u16::from(i % 2 == k % 2)).collect()
}

/// Appends a coupling conditioner: input = identity features + context, output `per_feature`
/// values per transformed feature.
pub(crate) fn push_coupling_net(
    t: &mut Trainable,
    mask: &[u16],
    c: usize,
    hidden: &[usize],
    per_feature: usize,
    activation: Activation,
    rng: &mut ChaCha8Rng,
) -> (NetDesc, Span) {
    let n_id = mask.iter().filter(|&&m| m == 1).count();
    let n_tr = mask.len() - n_id;
    let mut sizes = vec![n_id + c];
    sizes.extend_from_slice(hidden);
    sizes.push(per_feature * n_tr);
    let (w, tr) = init_net(&sizes, rng, &|_, _, _| true);
    let params = t.push(&w, &tr);
    let mask_span = t.parts.push_ints(mask);
    (
        NetDesc {
            sizes: sizes_vec(&sizes),
            activation,
            residual: false,
            params,
        },
        mask_span,
    )
}
