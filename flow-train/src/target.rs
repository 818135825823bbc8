//! Unnormalized target densities for reverse-KL fits ([`crate::fit_target`]) and importance
//! sampling: `log p*(x) = log p(x) + log Z` with its gradient.
//!
//! Built in (the `flow-train fit-target` targets):
//! - [`Phi4`]: the 2-D lattice φ⁴ theory, `S = Σₓ [−2 Σ_μ φₓ φₓ₊μ + (4 + m²) φₓ² + λ φₓ⁴]` on an
//!   `L × L` periodic lattice (μ over the two positive directions), `log p* = −S` (log Z unknown).
//!   Sites are row-major, column `phi_<row>_<col>`.
//! - [`Funnel`]: Neal's funnel, `v ~ N(0, σ²)`, `xᵢ | v ~ N(0, eᵛ)` (i = 1 … D−1); normalized.
//! - [`Banana`]: a twisted Gaussian, `x₀ ~ N(0, 2²)`, `x₁ | x₀ ~ N(x₀²/4, 1)`; normalized.
//!
//! Values: `−∞` means outside the support; NaN and `+∞` are errors the trainer reports with the
//! step and the point.

use std::f64::consts::PI;

use rayon::prelude::*;

/// A log density known up to a constant, with its gradient.
pub trait Target: Sync {
    /// Dimension D.
    fn dim(&self) -> usize;

    /// Column names of the samples (`x0`, `x1`, … unless the target names them).
    fn columns(&self) -> Vec<String> {
        (0..self.dim()).map(|i| format!("x{i}")).collect()
    }

    /// `log p*(x)` of every row of `xs` (`n × D`, row-major) into `log_p` (`n`), and
    /// `∇ₓ log p*(x)` into the rows of `grad` (`n × D`).
    fn log_prob_grad(&self, xs: &[f64], log_p: &mut [f64], grad: &mut [f64]);

    /// `log p*(x)` of one point.
    fn log_prob(&self, x: &[f64]) -> f64 {
        let (mut lp, mut g) = ([0.0], vec![0.0; x.len()]);
        self.log_prob_grad(x, &mut lp, &mut g);
        lp[0]
    }
}

/// A target from a closure `f(x, grad) -> log p*(x)` that writes `∇ₓ log p*(x)` into `grad`
/// ([`from_fn`]); batches are evaluated in parallel.
pub struct FnTarget<F> {
    dim: usize,
    f: F,
}

/// The target of the closure `f(x, grad) -> log p*(x)` in dimension `dim`.
pub fn from_fn<F>(dim: usize, f: F) -> FnTarget<F>
where
    F: Fn(&[f64], &mut [f64]) -> f64 + Sync,
{
    FnTarget { dim, f }
}

impl<F> Target for FnTarget<F>
where
    F: Fn(&[f64], &mut [f64]) -> f64 + Sync,
{
    fn dim(&self) -> usize {
        self.dim
    }

    fn log_prob_grad(&self, xs: &[f64], log_p: &mut [f64], grad: &mut [f64]) {
        rows(self.dim, xs, log_p, grad, &self.f);
    }
}

/// Row by row through `one(x, grad) -> log p*`, in parallel.
fn rows(
    d: usize,
    xs: &[f64],
    log_p: &mut [f64],
    grad: &mut [f64],
    one: impl Fn(&[f64], &mut [f64]) -> f64 + Sync,
) {
    let d = d.max(1);
    log_p
        .par_iter_mut()
        .zip(xs.par_chunks(d))
        .zip(grad.par_chunks_mut(d))
        .for_each(|((lp, x), g)| *lp = one(x, g));
}

/// The 2-D lattice φ⁴ action on an `side × side` periodic lattice (module docs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Phi4 {
    /// Lattice side L (D = L²).
    pub side: usize,
    /// Bare mass squared m².
    pub m2: f64,
    /// Quartic coupling λ.
    pub lambda: f64,
}

impl Phi4 {
    /// The action `S(φ)` and `∂S/∂φ` into `grad`:
    /// `∂S/∂φₓ = −2 Σ_μ (φₓ₊μ + φₓ₋μ) + 2(4 + m²) φₓ + 4λ φₓ³`.
    pub fn action(&self, phi: &[f64], grad: &mut [f64]) -> f64 {
        let l = self.side;
        let mass = 4.0 + self.m2;
        let mut s = 0.0;
        for r in 0..l {
            for c in 0..l {
                let i = r * l + c;
                let (right, down) = (r * l + (c + 1) % l, ((r + 1) % l) * l + c);
                let (left, up) = (r * l + (c + l - 1) % l, ((r + l - 1) % l) * l + c);
                let p = phi[i];
                s += -2.0 * p * (phi[right] + phi[down]) + mass * p * p + self.lambda * p * p * p * p;
                grad[i] = -2.0 * (phi[right] + phi[down] + phi[left] + phi[up])
                    + 2.0 * mass * p
                    + 4.0 * self.lambda * p * p * p;
            }
        }
        s
    }

    /// The magnetization per site `M = Σₓ φₓ / V`.
    pub fn magnetization(phi: &[f64]) -> f64 {
        phi.iter().sum::<f64>() / phi.len().max(1) as f64
    }

    /// The two-point function at distance `t` along the lattice axes of one configuration,
    /// `G(t) = (1 / 2V) Σₓ Σ_μ φₓ φₓ₊ₜμ` (average it over samples; ⟨φ⟩ = 0 by the φ → −φ symmetry).
    pub fn two_point(&self, phi: &[f64], t: usize) -> f64 {
        let l = self.side;
        let mut g = 0.0;
        for r in 0..l {
            for c in 0..l {
                let p = phi[r * l + c];
                g += p * (phi[r * l + (c + t) % l] + phi[((r + t) % l) * l + c]);
            }
        }
        g / (2.0 * (l * l) as f64)
    }
}

impl Target for Phi4 {
    fn dim(&self) -> usize {
        self.side * self.side
    }

    fn columns(&self) -> Vec<String> {
        let l = self.side;
        (0..l * l).map(|i| format!("phi_{}_{}", i / l, i % l)).collect()
    }

    fn log_prob_grad(&self, xs: &[f64], log_p: &mut [f64], grad: &mut [f64]) {
        rows(self.dim(), xs, log_p, grad, |x, g| {
            let s = self.action(x, g);
            g.iter_mut().for_each(|v| *v = -*v);
            -s
        });
    }
}

/// Neal's funnel in `dim` dimensions (module docs), normalized.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Funnel {
    /// Dimension D ≥ 2 (`x₀ = v`).
    pub dim: usize,
    /// Standard deviation σ of `v` (Neal: 3).
    pub scale: f64,
}

impl Target for Funnel {
    fn dim(&self) -> usize {
        self.dim
    }

    /// `log p = −v²/(2σ²) − ln(σ√2π) + Σᵢ [−xᵢ² e⁻ᵛ/2 − v/2 − ½ ln 2π]`.
    fn log_prob_grad(&self, xs: &[f64], log_p: &mut [f64], grad: &mut [f64]) {
        let s2 = self.scale * self.scale;
        let half_ln_2pi = 0.5 * (2.0 * PI).ln();
        rows(self.dim, xs, log_p, grad, |x, g| {
            let v = x[0];
            let ev = (-v).exp();
            let mut lp = -v * v / (2.0 * s2) - self.scale.ln() - half_ln_2pi;
            let mut gv = -v / s2;
            for (xi, gi) in x[1..].iter().zip(&mut g[1..]) {
                lp += -0.5 * xi * xi * ev - 0.5 * v - half_ln_2pi;
                gv += 0.5 * xi * xi * ev - 0.5;
                *gi = -xi * ev;
            }
            g[0] = gv;
            lp
        });
    }
}

/// The twisted Gaussian `x₀ ~ N(0, 2²)`, `x₁ | x₀ ~ N(x₀²/4, 1)`, normalized.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Banana;

impl Target for Banana {
    fn dim(&self) -> usize {
        2
    }

    /// `log p = −x₀²/8 − (x₁ − x₀²/4)²/2 − ln(4π)`.
    fn log_prob_grad(&self, xs: &[f64], log_p: &mut [f64], grad: &mut [f64]) {
        rows(2, xs, log_p, grad, |x, g| {
            let r = x[1] - x[0] * x[0] / 4.0;
            g[0] = -x[0] / 4.0 + r * x[0] / 2.0;
            g[1] = -r;
            -x[0] * x[0] / 8.0 - 0.5 * r * r - (4.0 * PI).ln()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every built-in gradient against central differences.
    #[test]
    fn gradients_match_finite_differences() {
        let targets: Vec<Box<dyn Target>> = vec![
            Box::new(Phi4 {
                side: 3,
                m2: -4.0,
                lambda: 8.0,
            }),
            Box::new(Phi4 {
                side: 4,
                m2: 0.5,
                lambda: 0.3,
            }),
            Box::new(Funnel { dim: 4, scale: 3.0 }),
            Box::new(Banana),
            Box::new(from_fn(2, |x: &[f64], g: &mut [f64]| {
                g[0] = -x[0];
                g[1] = -2.0 * x[1];
                -0.5 * x[0] * x[0] - x[1] * x[1]
            })),
        ];
        for t in &targets {
            let d = t.dim();
            let x: Vec<f64> = (0..d).map(|i| 0.3 * (i as f64 + 1.0).sin() + 0.1).collect();
            let (mut lp, mut g) = ([0.0], vec![0.0; d]);
            t.log_prob_grad(&x, &mut lp, &mut g);
            assert_eq!(lp[0], t.log_prob(&x));
            for j in 0..d {
                let (mut p, mut m) = (x.clone(), x.clone());
                p[j] += 1e-6;
                m[j] -= 1e-6;
                let fd = (t.log_prob(&p) - t.log_prob(&m)) / 2e-6;
                assert!(
                    (fd - g[j]).abs() < 1e-6 * (1.0 + fd.abs()),
                    "d={d} j={j}: {fd} vs {}",
                    g[j]
                );
            }
        }
    }

    /// The normalized targets integrate to 1 (a grid over the bulk of their mass).
    #[test]
    fn funnel_and_banana_are_normalized() {
        let integrate = |t: &dyn Target, (a, b): (f64, f64), (c, d): (f64, f64)| {
            let n = 800;
            let (hx, hy) = ((b - a) / n as f64, (d - c) / n as f64);
            let mut sum = 0.0;
            for i in 0..n {
                for j in 0..n {
                    let x = [a + (i as f64 + 0.5) * hx, c + (j as f64 + 0.5) * hy];
                    sum += t.log_prob(&x).exp() * hx * hy;
                }
            }
            sum
        };
        let banana = integrate(&Banana, (-12.0, 12.0), (-6.0, 40.0));
        assert!((banana - 1.0).abs() < 1e-3, "{banana}");
        let funnel = integrate(&Funnel { dim: 2, scale: 1.0 }, (-6.0, 6.0), (-30.0, 30.0));
        assert!((funnel - 1.0).abs() < 1e-3, "{funnel}");
    }

    /// φ⁴ with λ = 0 is a Gaussian: S = ½ φᵀ K φ; the action is quadratic (S(2φ) = 4 S(φ)) and
    /// its gradient is K φ, so φᵀ ∇S = 2S.
    #[test]
    fn phi4_action_is_the_lattice_formula() {
        let t = Phi4 {
            side: 4,
            m2: 1.0,
            lambda: 0.0,
        };
        let phi: Vec<f64> = (0..16).map(|i| ((i * 7 % 5) as f64 - 2.0) * 0.3).collect();
        let mut g = vec![0.0; 16];
        let s = t.action(&phi, &mut g);
        let dot: f64 = phi.iter().zip(&g).map(|(a, b)| a * b).sum();
        assert!((dot - 2.0 * s).abs() < 1e-12, "{dot} vs {s}");
        // A constant field φ = a: S = V [−4a² + (4 + m²) a²] = V m² a².
        let flat = vec![0.5; 16];
        let s = t.action(&flat, &mut g);
        assert!((s - 16.0 * 1.0 * 0.25).abs() < 1e-12, "{s}");
    }
}
