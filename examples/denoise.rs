//! # `denoise`: Wiener filter vs. flow MAP on a lognormal random field
//!
//! Run with `cargo run --release --example denoise` (add `--smoke` for the quick CI variant).
//! Writes `examples/out/denoise.png`; the last line of stdout is
//! `mse_wiener=<float> mse_flow=<float> fields=<int>`.
//!
//! (design notes below are filled in once the numbers are in)

use std::path::PathBuf;
use std::time::Instant;

use flow_core::flow::standard_normal;
use flow_core::layers::elementwise::ElementwiseKind;
use flow_core::runtime::Evaluator;
use flow_train::{fit, ArchConfig, Dataset, FitConfig, FlowKind};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Side of the periodic grid.
const SIDE: usize = 8;
/// Pixels per field.
const D: usize = SIDE * SIDE;

/// Everything the run depends on.
#[derive(Clone, Debug)]
struct Setup {
    spectral_index: f64,
    log_sigma: f64,
    noise_sigma: f64,
    missing: usize,
    n_train: usize,
    n_test: usize,
    epochs: usize,
    flow: FlowKind,
    transforms: usize,
    hidden: Vec<usize>,
    log_pre: bool,
    map_iters: usize,
}

impl Setup {
    fn from_args() -> Self {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let smoke = args.iter().any(|a| a == "--smoke");
        let mut s = Setup {
            spectral_index: 3.0,
            log_sigma: 1.0,
            noise_sigma: 0.25,
            missing: 16,
            n_train: if smoke { 2_000 } else { 16_000 },
            n_test: if smoke { 10 } else { 200 },
            epochs: if smoke { 3 } else { 30 },
            flow: FlowKind::Maf,
            transforms: 3,
            hidden: vec![128],
            log_pre: true,
            map_iters: 300,
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut val = || it.next().map(String::as_str).unwrap_or("");
            match a.as_str() {
                "--smoke" => {}
                "--no-log" => s.log_pre = false,
                "--n" => s.spectral_index = val().parse().expect("--n"),
                "--log-sigma" => s.log_sigma = val().parse().expect("--log-sigma"),
                "--noise" => s.noise_sigma = val().parse().expect("--noise"),
                "--missing" => s.missing = val().parse().expect("--missing"),
                "--train" => s.n_train = val().parse().expect("--train"),
                "--fields" => s.n_test = val().parse().expect("--fields"),
                "--epochs" => s.epochs = val().parse().expect("--epochs"),
                "--transforms" => s.transforms = val().parse().expect("--transforms"),
                "--nsf" => s.flow = FlowKind::Nsf,
                "--hidden" => {
                    s.hidden = val().split(',').map(|h| h.parse().expect("--hidden")).collect()
                }
                "--map-iters" => s.map_iters = val().parse().expect("--map-iters"),
                other => panic!("unknown argument {other}"),
            }
        }
        s
    }
}

// ---------------------------------------------------------------------------------------------
// The lognormal field
// ---------------------------------------------------------------------------------------------

/// The Gaussian field's spectrum and the direct 2-D DFT tables.
struct Field {
    /// √P(k), normalized so that every pixel of g has variance σ².
    amp: [f64; D],
    /// cos / sin of 2π (k·x)/8, indexed `[k * D + x]`.
    cos: Vec<f64>,
    sin: Vec<f64>,
    /// σ² of g.
    var: f64,
}

/// Signed frequency of index `i` on the periodic axis (0, 1, 2, 3, 4, −3, −2, −1).
fn freq(i: usize) -> f64 {
    if i <= SIDE / 2 {
        i as f64
    } else {
        i as f64 - SIDE as f64
    }
}

impl Field {
    fn new(spectral_index: f64, log_sigma: f64) -> Self {
        let mut p = [0.0; D];
        for (k, pk) in p.iter_mut().enumerate() {
            let (kx, ky) = (freq(k / SIDE), freq(k % SIDE));
            let k2 = kx * kx + ky * ky;
            // The zero mode gets the power of the fundamental |k| = 1: without it, every field
            // would sum to exactly zero in log space, a degenerate (singular) distribution.
            *pk = if k2 == 0.0 { 1.0 } else { k2.powf(-spectral_index / 2.0) };
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
    fn gaussian(&self, rng: &mut ChaCha8Rng) -> [f64; D] {
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
    fn lognormal(&self, rng: &mut ChaCha8Rng) -> [f64; D] {
        self.gaussian(rng).map(|g| (g - self.var / 2.0).exp())
    }

    /// The exact covariance of g: C(x, x′) = (1/D) Σ_k P(k) cos(2π k·(x − x′)/8).
    fn covariance(&self) -> Vec<f64> {
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

// ---------------------------------------------------------------------------------------------
// Linear algebra: Cholesky factorization and triangular solves
// ---------------------------------------------------------------------------------------------

/// In-place lower Cholesky factor of the symmetric positive-definite `n × n` matrix `a`
/// (the upper triangle is zeroed).
fn cholesky(a: &mut [f64], n: usize) {
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
fn solve_lower(l: &[f64], n: usize, b: &mut [f64]) {
    for i in 0..n {
        let mut s = b[i];
        for k in 0..i {
            s -= l[i * n + k] * b[k];
        }
        b[i] = s / l[i * n + i];
    }
}

/// Solves Lᵀ z = b in place.
fn solve_upper_t(l: &[f64], n: usize, b: &mut [f64]) {
    for i in (0..n).rev() {
        let mut s = b[i];
        for k in i + 1..n {
            s -= l[k * n + i] * b[k];
        }
        b[i] = s / l[i * n + i];
    }
}

/// The exact prior of the fields, for diagnostics: ln y ~ N(−σ²/2, C).
struct ExactPrior {
    mean: f64,
    chol: Vec<f64>,
    log_norm: f64,
}

impl ExactPrior {
    fn new(field: &Field) -> Self {
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
    fn grad_log_prob(&self, y: &[f64], g_y: &mut [f64]) -> f64 {
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

// ---------------------------------------------------------------------------------------------
// Observations and the two reconstructions
// ---------------------------------------------------------------------------------------------

/// A test case: truth, the observed mask and the noisy data (meaningful where observed).
struct Case {
    truth: [f64; D],
    observed: [bool; D],
    data: [f64; D],
}

fn make_case(field: &Field, s: &Setup, rng: &mut ChaCha8Rng) -> Case {
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
fn wiener(mu: &[f64], cov: &[f64], noise_var: f64, case: &Case) -> [f64; D] {
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
    std::array::from_fn(|i| mu[i] + obs.iter().zip(&alpha).map(|(&j, a)| cov[i * D + j] * a).sum::<f64>())
}

/// Minimizes `f` (value and gradient) from `x` with L-BFGS (memory 8) and Armijo backtracking.
/// Returns the number of function evaluations.
fn lbfgs(x: &mut [f64], f: &mut dyn FnMut(&[f64], &mut [f64]) -> f64, max_iter: usize) -> usize {
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

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    y.iter_mut().zip(x).for_each(|(yi, xi)| *yi += a * xi);
}

/// The MAP of log p(d | y) + log p(y) over y > 0, found in u = ln y (y = eᵘ keeps y positive; the
/// maximizer is the same as over y since no Jacobian is added). `log_space` adds Σ u, i.e.
/// maximizes the posterior density of u = ln y instead (a diagnostic). `prior(y, g_y)` returns
/// log p(y) and writes ∇_y log p(y).
fn map_estimate(
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
struct Sse {
    obs: f64,
    n_obs: usize,
    mask: f64,
    n_mask: usize,
}

impl Sse {
    fn add(&mut self, case: &Case, est: &[f64; D]) {
        for i in 0..D {
            let e = (est[i] - case.truth[i]).powi(2);
            if case.observed[i] {
                self.obs += e;
                self.n_obs += 1;
            } else {
                self.mask += e;
                self.n_mask += 1;
            }
        }
    }
    fn merge(&mut self, o: &Sse) {
        self.obs += o.obs;
        self.n_obs += o.n_obs;
        self.mask += o.mask;
        self.n_mask += o.n_mask;
    }
    fn all(&self) -> f64 {
        (self.obs + self.mask) / (self.n_obs + self.n_mask) as f64
    }
    fn observed(&self) -> f64 {
        self.obs / self.n_obs as f64
    }
    fn masked(&self) -> f64 {
        self.mask / self.n_mask as f64
    }
}

/// Scratch capacity of the runtime evaluator (checked against the model's need).
const SCRATCH: usize = 16_384;

/// Results for one test field.
struct Recon {
    wiener: [f64; D],
    flow: [f64; D],
    flow_log: [f64; D],
    exact: [f64; D],
    evals: usize,
    lp_flow: f64,
    lp_exact: f64,
}

fn main() {
    let total = Instant::now();
    let s = Setup::from_args();
    let field = Field::new(s.spectral_index, s.log_sigma);
    let noise_var = s.noise_sigma * s.noise_sigma;
    let pixel_std = (s.log_sigma * s.log_sigma).exp_m1().sqrt();
    println!(
        "lognormal field {SIDE}x{SIDE} periodic: P(k) ~ |k|^-{}, sigma_ln = {} (pixel mean 1, std {:.3}); \
         noise sigma = {} ({:.2} std), {} of {D} pixels missing",
        s.spectral_index,
        s.log_sigma,
        pixel_std,
        s.noise_sigma,
        s.noise_sigma / pixel_std,
        s.missing
    );

    // Training fields, and their empirical mean and covariance (for the Wiener filter).
    let t0 = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let train: Vec<[f64; D]> = (0..s.n_train).map(|_| field.lognormal(&mut rng)).collect();
    let mut mu = vec![0.0; D];
    for f in &train {
        axpy(1.0, f, &mut mu);
    }
    mu.iter_mut().for_each(|m| *m /= s.n_train as f64);
    let mut cov = vec![0.0; D * D];
    for f in &train {
        for a in 0..D {
            let da = f[a] - mu[a];
            for b in 0..D {
                cov[a * D + b] += da * (f[b] - mu[b]);
            }
        }
    }
    cov.iter_mut().for_each(|c| *c /= (s.n_train - 1) as f64);
    println!(
        "generated {} training fields in {:.2} s",
        s.n_train,
        t0.elapsed().as_secs_f64()
    );

    // Fit the flow.
    let columns: Vec<String> = (0..D).map(|i| format!("y{}{}", i / SIDE, i % SIDE)).collect();
    let rows: Vec<Vec<f64>> = train.iter().map(|f| f.to_vec()).collect();
    let data = Dataset::from_rows(columns, &rows);
    let cfg = FitConfig {
        arch: ArchConfig {
            flow: s.flow,
            transforms: s.transforms,
            hidden: s.hidden.clone(),
            pre: if s.log_pre {
                vec![ElementwiseKind::Log]
            } else {
                Vec::new()
            },
            ..ArchConfig::default()
        },
        epochs: s.epochs,
        batch_size: 256,
        lr: 2e-3,
        seed: 7,
        patience: 10,
        threads: 0,
        ..FitConfig::default()
    };
    let out = fit(&data, &cfg).expect("fit");
    println!(
        "fit {:?} x{} hidden {:?} pre {:?}: {} epochs in {:.1} s ({:.2} s/epoch), best val NLL {:.3} nats/field, stop {:?}",
        s.flow,
        s.transforms,
        s.hidden,
        cfg.arch.pre,
        out.epochs,
        out.seconds,
        out.seconds / out.epochs as f64,
        out.best_val_nll,
        out.stop
    );
    let bytes = out.model.parts.to_bytes("");
    let store = flow_train::golden::aligned(&bytes);
    let model_bytes = &flow_core::bytemuck::cast_slice::<u64, u8>(&store)[..bytes.len()];

    // Test cases.
    let exact = ExactPrior::new(&field);
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let cases: Vec<Case> = (0..s.n_test).map(|_| make_case(&field, &s, &mut rng)).collect();
    let t1 = Instant::now();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = cases.len().div_ceil(threads).max(1);
    let recon: Vec<Recon> = std::thread::scope(|sc| {
        let handles: Vec<_> = cases
            .chunks(chunk)
            .map(|part| {
                let (mu, cov, exact, s) = (&mu, &cov, &exact, &s);
                sc.spawn(move || {
                    let mut ev = Evaluator::<f64, SCRATCH>::new(model_bytes).expect("model");
                    let mut g = [0.0; D];
                    part.iter()
                        .map(|case| {
                            let w = wiener(mu, cov, noise_var, case);
                            let mut flow_prior =
                                |y: &[f64], g: &mut [f64]| ev.grad_log_prob(y, &[], g).expect("eval");
                            let (flow, evals) =
                                map_estimate(case, &w, noise_var, false, s.map_iters, &mut flow_prior);
                            let (flow_log, _) =
                                map_estimate(case, &w, noise_var, true, s.map_iters, &mut flow_prior);
                            let (ex, _) = map_estimate(
                                case,
                                &w,
                                noise_var,
                                false,
                                s.map_iters,
                                &mut |y: &[f64], g: &mut [f64]| exact.grad_log_prob(y, g),
                            );
                            let lp_flow = ev.grad_log_prob(&case.truth, &[], &mut g).expect("eval");
                            let lp_exact = exact.grad_log_prob(&case.truth, &mut g);
                            Recon {
                                wiener: w,
                                flow,
                                flow_log,
                                exact: ex,
                                evals,
                                lp_flow,
                                lp_exact,
                            }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("worker")).collect()
    });
    let (mut e_w, mut e_f, mut e_fl, mut e_x, mut e_d) =
        (Sse::default(), Sse::default(), Sse::default(), Sse::default(), Sse::default());
    let (mut lpf, mut lpx, mut evals) = (0.0, 0.0, 0);
    for (c, r) in cases.iter().zip(&recon) {
        e_w.add(c, &r.wiener);
        e_f.add(c, &r.flow);
        e_fl.add(c, &r.flow_log);
        e_x.add(c, &r.exact);
        let mut raw = c.data;
        for i in 0..D {
            if !c.observed[i] {
                raw[i] = mu[i];
            }
        }
        e_d.add(c, &raw);
        lpf += r.lp_flow;
        lpx += r.lp_exact;
        evals += r.evals;
    }
    let _ = Sse::merge;
    let nf = cases.len() as f64;
    println!(
        "reconstructed {} fields in {:.1} s ({:.0} flow evaluations per MAP on average)",
        cases.len(),
        t1.elapsed().as_secs_f64(),
        evals as f64 / nf
    );
    println!(
        "prior quality on the test truths: mean log p flow {:.3}, exact {:.3} nats/field (gap {:.3})",
        lpf / nf,
        lpx / nf,
        (lpx - lpf) / nf
    );
    println!("MSE vs truth           all      observed  masked");
    for (name, e) in [
        ("data (mean if masked)", &e_d),
        ("Wiener", &e_w),
        ("flow MAP", &e_f),
        ("flow MAP in ln y", &e_fl),
        ("exact-prior MAP", &e_x),
    ] {
        println!(
            "  {name:<21} {:.5}  {:.5}   {:.5}",
            e.all(),
            e.observed(),
            e.masked()
        );
    }

    let path = picture(&cases, &recon);
    println!("wrote {}", path.display());
    println!("total {:.1} s", total.elapsed().as_secs_f64());
    println!(
        "mse_wiener={:.6} mse_flow={:.6} fields={}",
        e_w.all(),
        e_f.all(),
        cases.len()
    );
}

// ---------------------------------------------------------------------------------------------
// The picture
// ---------------------------------------------------------------------------------------------

fn picture(_cases: &[Case], _recon: &[Recon]) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/out/denoise.png"))
}
