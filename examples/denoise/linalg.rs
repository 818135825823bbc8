//! Linear algebra: Cholesky factorization, triangular solves and the exact lognormal prior.

use super::*;

/// In-place lower Cholesky factor of the symmetric positive-definite `n × n` matrix `a`
/// (the upper triangle is zeroed).
pub(crate) fn cholesky(a: &mut [f64], n: usize) {
    for j in 0..n {
        let mut s = a[j * n + j];
        for k in 0..j {
            s -= a[j * n + k] * a[j * n + k];
        }
        assert!(s > 0.0, "matrix not positive definite");
        let l = s.sqrt();
        a[j * n + j] = l;
        for i in j + 1..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = s / l;
        }
        for k in j + 1..n {
            a[j * n + k] = 0.0;
        }
    }
}

/// Solves L z = b in place.
pub(crate) fn solve_lower(l: &[f64], n: usize, b: &mut [f64]) {
    for i in 0..n {
        let mut s = b[i];
        for k in 0..i {
            s -= l[i * n + k] * b[k];
        }
        b[i] = s / l[i * n + i];
    }
}

/// Solves Lᵀ z = b in place.
pub(crate) fn solve_upper_t(l: &[f64], n: usize, b: &mut [f64]) {
    for i in (0..n).rev() {
        let mut s = b[i];
        for k in i + 1..n {
            s -= l[k * n + i] * b[k];
        }
        b[i] = s / l[i * n + i];
    }
}

/// The exact prior of the fields, for diagnostics: ln y ~ N(−σ²/2, C).
pub(crate) struct ExactPrior {
    pub(crate) mean: f64,
    pub(crate) chol: Vec<f64>,
    pub(crate) log_norm: f64,
}

impl ExactPrior {
    pub(crate) fn new(field: &Field) -> Self {
        let mut chol = field.covariance();
        cholesky(&mut chol, D);
        let half_logdet: f64 = (0..D).map(|i| chol[i * D + i].ln()).sum();
        ExactPrior {
            mean: -field.var / 2.0,
            chol,
            log_norm: -half_logdet - 0.5 * D as f64 * (2.0 * std::f64::consts::PI).ln(),
        }
    }

    /// log p(y) at y = exp(u) (density in y, i.e. with −Σ u) and its gradient w.r.t. y.
    pub(crate) fn grad_log_prob(&self, y: &[f64], g_y: &mut [f64]) -> f64 {
        let mut z: Vec<f64> = y.iter().map(|v| v.ln() - self.mean).collect();
        solve_lower(&self.chol, D, &mut z);
        let quad: f64 = z.iter().map(|v| v * v).sum();
        solve_upper_t(&self.chol, D, &mut z); // C⁻¹ (ln y − m)
        for i in 0..D {
            g_y[i] = (-z[i] - 1.0) / y[i];
        }
        self.log_norm - 0.5 * quad - y.iter().map(|v| v.ln()).sum::<f64>()
    }
}
