//! The lognormal random field: a Gaussian field with power spectrum |k|⁻³ on the periodic grid,
//! made by a direct 2-D DFT, then exponentiated.

use super::*;

/// The Gaussian field's spectrum and the direct 2-D DFT tables.
pub(crate) struct Field {
    /// √P(k), normalized so that every pixel of g has variance σ².
    pub(crate) amp: [f64; D],
    /// cos / sin of 2π (k·x)/8, indexed `[k * D + x]`.
    pub(crate) cos: Vec<f64>,
    pub(crate) sin: Vec<f64>,
    /// σ² of g.
    pub(crate) var: f64,
}

/// Signed frequency of index `i` on the periodic axis (0, 1, 2, 3, 4, −3, −2, −1).
pub(crate) fn freq(i: usize) -> f64 {
    if i <= SIDE / 2 {
        i as f64
    } else {
        i as f64 - SIDE as f64
    }
}

impl Field {
    pub(crate) fn new(spectral_index: f64, log_sigma: f64) -> Self {
        let mut p = [0.0; D];
        for (k, pk) in p.iter_mut().enumerate() {
            let (kx, ky) = (freq(k / SIDE), freq(k % SIDE));
            let k2 = kx * kx + ky * ky;
            // The zero mode gets the power of the fundamental |k| = 1: without it, every field
            // would sum to exactly zero in log space, a degenerate (singular) distribution.
            *pk = if k2 == 0.0 {
                1.0
            } else {
                k2.powf(-spectral_index / 2.0)
            };
        }
        let var = log_sigma * log_sigma;
        let scale = (var / (p.iter().sum::<f64>() / D as f64)).sqrt();
        let amp = p.map(|pk| pk.sqrt() * scale);
        let mut cos = vec![0.0; D * D];
        let mut sin = vec![0.0; D * D];
        for k in 0..D {
            for x in 0..D {
                let ph = (k / SIDE) * (x / SIDE) + (k % SIDE) * (x % SIDE);
                let th = 2.0 * std::f64::consts::PI * (ph % SIDE) as f64 / SIDE as f64;
                cos[k * D + x] = th.cos();
                sin[k * D + x] = th.sin();
            }
        }
        Field { amp, cos, sin, var }
    }

    /// One Gaussian field g: white noise → DFT → ×√P(k) → inverse DFT (real part; the product is
    /// Hermitian, so the imaginary part is rounding only).
    pub(crate) fn gaussian(&self, rng: &mut ChaCha8Rng) -> [f64; D] {
        let w: [f64; D] = std::array::from_fn(|_| standard_normal(rng));
        let (mut re, mut im) = ([0.0; D], [0.0; D]);
        for k in 0..D {
            let (c, s) = (&self.cos[k * D..(k + 1) * D], &self.sin[k * D..(k + 1) * D]);
            for x in 0..D {
                re[k] += w[x] * c[x];
                im[k] -= w[x] * s[x];
            }
            re[k] *= self.amp[k];
            im[k] *= self.amp[k];
        }
        std::array::from_fn(|x| {
            let mut g = 0.0;
            for k in 0..D {
                g += re[k] * self.cos[k * D + x] - im[k] * self.sin[k * D + x];
            }
            g / D as f64
        })
    }

    /// One lognormal field y = exp(g − σ²/2) (mean 1 per pixel).
    pub(crate) fn lognormal(&self, rng: &mut ChaCha8Rng) -> [f64; D] {
        self.gaussian(rng).map(|g| (g - self.var / 2.0).exp())
    }

    /// The exact covariance of g: C(x, x′) = (1/D) Σ_k P(k) cos(2π k·(x − x′)/8).
    pub(crate) fn covariance(&self) -> Vec<f64> {
        let mut c = vec![0.0; D * D];
        for a in 0..D {
            for b in 0..D {
                let dx = (a / SIDE + SIDE - b / SIDE) % SIDE;
                let dy = (a % SIDE + SIDE - b % SIDE) % SIDE;
                let delta = dx * SIDE + dy;
                c[a * D + b] = (0..D)
                    .map(|k| self.amp[k] * self.amp[k] * self.cos[k * D + delta])
                    .sum::<f64>()
                    / D as f64;
            }
        }
        c
    }
}
