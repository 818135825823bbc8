//! MADE masks (Germain et al. 2015), built from degrees.
//!
//! Every unit has a degree. Feature `i` has input degree `order[i] + 1` (so `1..=D`, where `order[i]`
//! is the feature's rank in the autoregressive order); context inputs have degree 0. A hidden unit of
//! degree `m` may see an input or hidden unit of degree `d` when `m ≥ d`; an output of feature `i` may
//! see a hidden unit of degree `m` when `order[i] + 1 > m`. Outputs are feature-major: output `j`
//! belongs to feature `j / P` for `P` parameters per feature. Then output `i` depends only on features
//! ranked before `i`, which is what makes the Jacobian triangular.
//!
//! zuko's masks (from unique adjacency rows) and nflows'/FlowJAX's (cyclic hidden degrees) are both
//! of this form with their own hidden degrees, so a model stores its hidden degrees next to its order.

/// The default hidden degree of hidden unit `k` in a layer, for `d` features: it cycles over
/// `1..=d-1` (`0` when `d == 1`, where hidden units see only the context).
pub const fn default_hidden_degree(k: usize, d: usize) -> u16 {
    if d <= 1 {
        0
    } else {
        (k % (d - 1) + 1) as u16
    }
}

/// Whether the weight from input column `col` to the unit of degree `m_out` in the first layer is
/// allowed. Columns `< order.len()` are features, the rest are context (always allowed).
#[inline]
pub fn first_layer_allows(order: &[u16], col: usize, m_out: u16) -> bool {
    match order.get(col) {
        Some(&r) => m_out > r, // m ≥ r + 1
        None => true,
    }
}

/// Whether a hidden unit of degree `m_in` may feed the hidden unit of degree `m_out`.
#[inline]
pub fn hidden_allows(m_in: u16, m_out: u16) -> bool {
    m_out >= m_in
}

/// Whether a hidden unit of degree `m_in` may feed an output of the feature ranked `rank`.
#[inline]
pub fn output_allows(m_in: u16, rank: u16) -> bool {
    rank + 1 > m_in
}

/// Whether MLP weight `(row, col)` of layer `layer` is allowed by the masks.
///
/// `sizes` are the MLP sizes (`sizes[0] = D + C`), `hidden_degrees` the degrees of all hidden units
/// layer after layer, and `per_feature` the number of outputs per feature (`P`).
pub fn allows(
    order: &[u16],
    sizes: &[usize],
    hidden_degrees: &[u16],
    per_feature: usize,
    layer: usize,
    row: usize,
    col: usize,
) -> bool {
    let n_layers = sizes.len() - 1;
    // Offsets of the hidden layers' degrees.
    let hidden_start = |l: usize| -> usize { sizes[1..l].iter().sum() };
    let deg_in = |l: usize, k: usize| hidden_degrees[hidden_start(l) + k];
    if layer + 1 == n_layers {
        let rank = order[row / per_feature];
        if layer == 0 {
            // No hidden layer: output feature i sees features ranked before it and the context.
            match order.get(col) {
                Some(&r) => r < rank,
                None => true,
            }
        } else {
            output_allows(deg_in(layer, col), rank)
        }
    } else {
        let m_out = hidden_degrees[hidden_start(layer + 1) + row];
        if layer == 0 {
            first_layer_allows(order, col, m_out)
        } else {
            hidden_allows(deg_in(layer, col), m_out)
        }
    }
}

/// Calls `f(layer, row, col, allowed)` for every weight of a MADE, in parameter order.
pub fn for_each_weight(
    order: &[u16],
    sizes: &[usize],
    hidden_degrees: &[u16],
    per_feature: usize,
    mut f: impl FnMut(usize, usize, usize, bool),
) {
    for layer in 0..sizes.len() - 1 {
        for row in 0..sizes[layer + 1] {
            for col in 0..sizes[layer] {
                let ok = allows(order, sizes, hidden_degrees, per_feature, layer, row, col);
                f(layer, row, col, ok);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::mlp::{n_params, Activation, Mlp};

    /// Build a random MADE, apply its masks, and check output i does not move when feature j with
    /// rank ≥ rank(i) moves.
    #[test]
    fn masked_network_is_autoregressive() {
        let order = [2u16, 0, 3, 1];
        let sizes = [4 + 1, 7, 6, 4 * 2];
        let hidden: std::vec::Vec<u16> = (0..7)
            .map(|k| default_hidden_degree(k, 4))
            .chain((0..6).map(|k| default_hidden_degree(k, 4)))
            .collect();
        let mut rng = crate::testing::Lcg(3);
        let mut params: std::vec::Vec<f64> = (0..n_params(&sizes)).map(|_| rng.normal()).collect();
        // Zero the masked weights in place.
        let mut masked = std::vec::Vec::new();
        for_each_weight(&order, &sizes, &hidden, 2, |_, _, _, ok| masked.push(ok));
        let mut off = 0;
        let mut it = masked.iter();
        for l in 0..3 {
            let (i, o) = (sizes[l], sizes[l + 1]);
            for w in &mut params[off..off + i * o] {
                if !*it.next().unwrap() {
                    *w = 0.0;
                }
            }
            off += i * o + o;
        }
        let m = Mlp {
            sizes: &sizes,
            params: &params,
            activation: Activation::Tanh,
            residual: false,
        };
        let eval = |x: &[f64]| {
            let mut out = [0.0; 8];
            let mut s = [0.0; 14];
            m.forward(x, &[0.3], &mut out, &mut s);
            out
        };
        let x0 = [0.1, 0.2, -0.3, 0.4];
        let y0 = eval(&x0);
        let mut dependent = 0;
        for j in 0..4 {
            let mut x = x0;
            x[j] += 1.0;
            let y = eval(&x);
            for i in 0..4 {
                for p in 0..2 {
                    let moved = y[i * 2 + p] != y0[i * 2 + p];
                    if order[j] >= order[i] {
                        assert!(!moved, "output {i} depends on feature {j}");
                    } else if moved {
                        dependent += 1;
                    }
                }
            }
        }
        assert!(dependent > 0, "the network should depend on earlier features");
    }
}
