//! A fixed permutation of the features (nflows' `Permutation`, `ReversePermutation`,
//! `RandomPermutation`).
//!
//! nflows' convention: in the density direction (data → base)
//!
//! `zᵢ = x_{perm[i]}`   (`index_select(x, 1, perm)`),
//!
//! and in the sampling direction `x_{perm[i]} = zᵢ`. The map is volume preserving:
//! log|det| = 0 both ways. There are no trainable parameters.

use crate::layers::Bijection;
use crate::layers::{Cotangent, Grads};
use crate::Real;

/// A fixed permutation layer: `z[i] = x[perm[i]]` in the density direction.
///
/// `perm` must hold each of `0..D` exactly once (see [`is_permutation`]; the model validator
/// checks it). With a non-permutation the layer does not panic as long as every entry is `< D`,
/// but it is not invertible.
#[derive(Clone, Copy, Debug)]
pub struct Permutation<'a> {
    /// `perm[i]` = the input feature that becomes output feature `i` (density direction).
    pub perm: &'a [u16],
}

/// Largest length for which [`is_permutation`] uses its on-stack bitset (O(n)); longer slices
/// fall back to an O(n²) scan.
const BITSET_BITS: usize = 4096;

/// `true` when `p` holds each of `0..p.len()` exactly once.
///
/// No allocation: a 4096-bit bitset on the stack (512 bytes) for `p.len() ≤ 4096` (O(n)), an
/// O(n²) duplicate scan beyond that.
pub fn is_permutation(p: &[u16]) -> bool {
    let n = p.len();
    if n <= BITSET_BITS {
        let mut seen = [0u64; BITSET_BITS / 64];
        for &v in p {
            let v = v as usize;
            if v >= n {
                return false;
            }
            let (word, bit) = (v / 64, 1u64 << (v % 64));
            if seen[word] & bit != 0 {
                return false;
            }
            seen[word] |= bit;
        }
        true
    } else {
        p.iter()
            .enumerate()
            .all(|(i, &v)| (v as usize) < n && !p[..i].contains(&v))
    }
}

impl<'a, S: Real> Bijection<S> for Permutation<'a> {
    fn dim(&self) -> usize {
        self.perm.len()
    }

    fn n_params(&self) -> usize {
        0
    }

    fn scratch_len(&self) -> usize {
        0
    }

    /// `zᵢ = x_{perm[i]}`; log|det| = 0.
    fn inverse(&self, x: &[S], _ctx: &[S], z: &mut [S], _scratch: &mut [S]) -> S {
        for (zi, &p) in z.iter_mut().zip(self.perm) {
            *zi = x.get(usize::from(p)).copied().unwrap_or(S::NAN);
        }
        S::ZERO
    }

    /// `x_{perm[i]} = zᵢ`; log|det| = 0.
    fn forward(&self, z: &[S], _ctx: &[S], x: &mut [S], _scratch: &mut [S]) -> S {
        for (&zi, &p) in z.iter().zip(self.perm) {
            if let Some(xi) = x.get_mut(usize::from(p)) {
                *xi = zi;
            }
        }
        S::ZERO
    }

    /// `g_x[perm[i]] = g_z[i]`; nothing for the context or parameters.
    fn inverse_vjp(
        &self,
        _x: &[S],
        _ctx: &[S],
        cot: Cotangent<&[S], S>,
        grads: Grads<'_, S>,
        _scratch: &mut [S],
    ) {
        let (g_z, _g_ldj) = cot.into_parts();
        let (g_x, _g_ctx, _g_params) = grads.into_parts();
        for (&g, &p) in g_z.iter().zip(self.perm) {
            if let Some(gx) = g_x.get_mut(usize::from(p)) {
                *gx = g;
            }
        }
    }

    fn forward_vjp_scratch_len(&self) -> usize {
        0
    }

    /// `g_z[i] = g_x[perm[i]]`; nothing for the context or parameters.
    fn forward_vjp(
        &self,
        _z: &[S],
        _ctx: &[S],
        cot: Cotangent<&[S], S>,
        grads: Grads<'_, S>,
        _scratch: &mut [S],
    ) {
        let (g_x, _g_ldj) = cot.into_parts();
        let (g_z, _g_ctx, _g_params) = grads.into_parts();
        for (gz, &p) in g_z.iter_mut().zip(self.perm) {
            *gz = g_x.get(usize::from(p)).copied().unwrap_or(S::NAN);
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::boxed::Box;
    use std::vec::Vec;

    use super::*;
    use crate::testing::{builder, check_bijection, Lcg, Report};

    /// A random permutation of `0..d` (Fisher–Yates).
    fn random_perm(d: usize, rng: &mut Lcg) -> Vec<u16> {
        let mut p: Vec<u16> = (0..d as u16).collect();
        for i in (1..d).rev() {
            let j = (rng.uniform() * (i + 1) as f64) as usize;
            p.swap(i, j);
        }
        p
    }

    #[test]
    fn permutation_passes_finite_difference_checks() {
        let mut worst = Report::default();
        for seed in 0..4u64 {
            let mut rng = Lcg(100 + seed);
            for d in [1usize, 2, 3, 5] {
                let perm: &'static [u16] = Box::leak(random_perm(d, &mut rng).into_boxed_slice());
                assert!(is_permutation(perm));
                let build = builder(move |_| Box::new(Permutation { perm }));
                let x = rng.normals(d);
                let r = check_bijection(&build, &[], &x, &[]);
                assert!(r.roundtrip < 1e-10 && r.ldj_cancel < 1e-10, "{r:?}");
                assert!(r.max_fd() < 1e-6, "d={d}: {r:?}");
                worst.merge(&r);
            }
        }
        std::eprintln!("permutation worst: {worst:?}");
    }

    #[test]
    fn permutation_follows_nflows_index_select() {
        let perm = [2u16, 0, 1];
        let l = Permutation { perm: &perm };
        let x = [10.0f64, 11.0, 12.0];
        let mut z = [0.0; 3];
        assert_eq!(l.inverse(&x, &[], &mut z, &mut []), 0.0);
        assert_eq!(z, [12.0, 10.0, 11.0]);
    }

    #[test]
    fn is_permutation_accepts_and_rejects() {
        assert!(is_permutation(&[]));
        assert!(is_permutation(&[0]));
        assert!(is_permutation(&[1, 0, 2]));
        assert!(!is_permutation(&[1, 1, 2]));
        assert!(!is_permutation(&[0, 3, 1]));
        assert!(!is_permutation(&[1]));
        let long: Vec<u16> = (0..5000u16).rev().collect();
        assert!(is_permutation(&long));
        let mut bad = long.clone();
        bad[4999] = 7;
        assert!(!is_permutation(&bad));
        let mid: Vec<u16> = (0..4096u16).collect();
        assert!(is_permutation(&mid));
    }
}
