//! Observations of a field and the reconstructions: the Wiener filter, L-BFGS and the MAP
//! estimates, and their squared errors.

use super::*;

/// A test case: truth, the observed mask and the noisy data (meaningful where observed).
pub(crate) struct Case {
    pub(crate) truth: [f64; D],
    pub(crate) observed: [bool; D],
    pub(crate) data: [f64; D],
}

pub(crate) fn make_case(field: &Field, s: &Setup, rng: &mut ChaCha8Rng) -> Case {
    let truth = field.lognormal(rng);
    // `missing` distinct pixels chosen uniformly (partial Fisher–Yates).
    let mut idx: [usize; D] = std::array::from_fn(|i| i);
    for i in 0..s.missing {
        let j = rng.gen_range(i..D);
        idx.swap(i, j);
    }
    let mut observed = [true; D];
    for &i in &idx[..s.missing] {
        observed[i] = false;
    }
    let mut data = [0.0; D];
    for i in 0..D {
        let n = standard_normal(rng);
        if observed[i] {
            data[i] = truth[i] + s.noise_sigma * n;
        }
    }
    Case {
        truth,
        observed,
        data,
    }
}

/// Wiener filter: ŷ = μ + C Mᵀ (M C Mᵀ + σ² I)⁻¹ (d − M μ).
pub(crate) fn wiener(mu: &[f64], cov: &[f64], noise_var: f64, case: &Case) -> [f64; D] {
    let obs: Vec<usize> = (0..D).filter(|&i| case.observed[i]).collect();
    let n = obs.len();
    let mut k = vec![0.0; n * n];
    for (a, &i) in obs.iter().enumerate() {
        for (b, &j) in obs.iter().enumerate() {
            k[a * n + b] = cov[i * D + j] + if a == b { noise_var } else { 0.0 };
        }
    }
    cholesky(&mut k, n);
    let mut alpha: Vec<f64> = obs.iter().map(|&i| case.data[i] - mu[i]).collect();
    solve_lower(&k, n, &mut alpha);
    solve_upper_t(&k, n, &mut alpha);
    std::array::from_fn(|i| {
        mu[i]
            + obs
                .iter()
                .zip(&alpha)
                .map(|(&j, a)| cov[i * D + j] * a)
                .sum::<f64>()
    })
}

/// Minimizes `f` (value and gradient) from `x` with L-BFGS (memory 8) and Armijo backtracking.
/// Returns the number of function evaluations.
pub(crate) fn lbfgs(x: &mut [f64], f: &mut dyn FnMut(&[f64], &mut [f64]) -> f64, max_iter: usize) -> usize {
    const M: usize = 8;
    let n = x.len();
    let mut g = vec![0.0; n];
    let mut fx = f(x, &mut g);
    let mut evals = 1;
    let mut hist: Vec<(Vec<f64>, Vec<f64>, f64)> = Vec::new();
    let (mut xn, mut gn, mut dir) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    let mut fresh = true;
    for _ in 0..max_iter {
        // Two-loop recursion: dir = −H g.
        dir.copy_from_slice(&g);
        let mut alphas = [0.0; M];
        for (j, (s, y, rho)) in hist.iter().enumerate().rev() {
            let a = rho * dot(s, &dir);
            alphas[j] = a;
            axpy(-a, y, &mut dir);
        }
        let gamma = match hist.last() {
            Some((s, y, _)) => dot(s, y) / dot(y, y),
            None => 1e-2 / (1.0 + dot(&g, &g).sqrt()),
        };
        dir.iter_mut().for_each(|d| *d *= gamma);
        for (j, (s, y, rho)) in hist.iter().enumerate() {
            let b = rho * dot(y, &dir);
            axpy(alphas[j] - b, s, &mut dir);
        }
        dir.iter_mut().for_each(|d| *d = -*d);
        let slope = dot(&g, &dir);
        if slope >= 0.0 {
            hist.clear();
            if fresh {
                break;
            }
            fresh = true;
            continue;
        }
        let mut step = 1.0;
        let mut accepted = false;
        for _ in 0..40 {
            for i in 0..n {
                xn[i] = x[i] + step * dir[i];
            }
            let fnew = f(&xn, &mut gn);
            evals += 1;
            if fnew.is_finite() && fnew <= fx + 1e-4 * step * slope {
                accepted = true;
                let s: Vec<f64> = xn.iter().zip(x.iter()).map(|(a, b)| a - b).collect();
                let y: Vec<f64> = gn.iter().zip(&g).map(|(a, b)| a - b).collect();
                let sy = dot(&s, &y);
                if sy > 1e-12 {
                    if hist.len() == M {
                        hist.remove(0);
                    }
                    hist.push((s, y, 1.0 / sy));
                }
                let done = (fx - fnew).abs() <= 1e-10 * (1.0 + fx.abs());
                x.copy_from_slice(&xn);
                g.copy_from_slice(&gn);
                fx = fnew;
                if done {
                    return evals;
                }
                break;
            }
            step *= 0.5;
        }
        if !accepted {
            if fresh {
                break;
            }
            hist.clear();
            fresh = true;
        } else {
            fresh = false;
        }
        if g.iter().all(|v| v.abs() < 1e-7) {
            break;
        }
    }
    evals
}

pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

pub(crate) fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    y.iter_mut().zip(x).for_each(|(yi, xi)| *yi += a * xi);
}

/// The MAP of log p(d | y) + log p(y) over y > 0, found in u = ln y (y = eᵘ keeps y positive; the
/// maximizer is the same as over y since no Jacobian is added). `log_space` adds Σ u, i.e.
/// maximizes the posterior density of u = ln y instead (a diagnostic). `prior(y, g_y)` returns
/// log p(y) and writes ∇_y log p(y).
pub(crate) fn map_estimate(
    case: &Case,
    start: &[f64; D],
    noise_var: f64,
    log_space: bool,
    max_iter: usize,
    prior: &mut dyn FnMut(&[f64], &mut [f64]) -> f64,
) -> ([f64; D], usize) {
    let floor = 0.05;
    let mut u: Vec<f64> = start.iter().map(|&v| v.max(floor).ln()).collect();
    let mut y = [0.0; D];
    let mut gy = [0.0; D];
    let mut f = |u: &[f64], g: &mut [f64]| -> f64 {
        if u.iter().any(|v| !v.is_finite() || v.abs() > 30.0) {
            return f64::INFINITY;
        }
        for i in 0..D {
            y[i] = u[i].exp();
        }
        let mut lp = prior(&y, &mut gy);
        for i in 0..D {
            if case.observed[i] {
                let r = y[i] - case.data[i];
                lp -= r * r / (2.0 * noise_var);
                gy[i] -= r / noise_var;
            }
            g[i] = -gy[i] * y[i];
            if log_space {
                g[i] -= 1.0;
            }
        }
        if log_space {
            lp += u.iter().sum::<f64>();
        }
        -lp
    };
    let evals = lbfgs(&mut u, &mut f, max_iter);
    (std::array::from_fn(|i| u[i].exp()), evals)
}

/// Squared errors split by pixel type: (sum over observed, count, sum over masked, count).
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct Sse {
    pub(crate) obs: f64,
    pub(crate) n_obs: usize,
    pub(crate) mask: f64,
    pub(crate) n_mask: usize,
}

impl Sse {
    pub(crate) fn add(&mut self, case: &Case, est: &[f64; D]) {
        for ((v, t), &observed) in est.iter().zip(&case.truth).zip(&case.observed) {
            let e = (v - t).powi(2);
            if observed {
                self.obs += e;
                self.n_obs += 1;
            } else {
                self.mask += e;
                self.n_mask += 1;
            }
        }
    }
    pub(crate) fn all(&self) -> f64 {
        (self.obs + self.mask) / (self.n_obs + self.n_mask) as f64
    }
    pub(crate) fn observed(&self) -> f64 {
        self.obs / self.n_obs as f64
    }
    pub(crate) fn masked(&self) -> f64 {
        self.mask / self.n_mask as f64
    }
}
