//! Built-in 2-D toy densities of the normalizing-flow literature, generated deterministically.
//!
//! [`generate`] returns `n` points of one of the sets in [`NAMES`]. The constructions follow the peer
//! benchmark's `python/peers/datasets.py` (itself the FFJORD / NSF toy-data code and
//! scikit-learn's `make_moons` / `make_circles`), constant for constant, so a model fitted here is
//! compared with zuko / nflows / FlowJAX on the same densities:
//!
//! | name | construction |
//! | --- | --- |
//! | `moons` | scikit-learn `make_moons(noise=0.05)`, unscaled: `n / 2` points (rounded down) on the upper half circle of radius 1 centred at (0, 0), the rest on the lower half circle centred at (1, 0.5), at evenly spaced angles (endpoints included), plus N(0, 0.05²) noise per coordinate |
//! | `circles` | `3 * make_circles(factor=0.5, noise=0.08)`: radii 3 and 1.5, evenly spaced angles, noise sd 0.24 |
//! | `eight-gaussians` | N(c, 0.5²) around one of 8 centres on the circle of radius 4 (uniform choice), all divided by 1.414 |
//! | `checkerboard` | uniform on the 8 black cells of a 4 x 4 board on [-4, 4]² |
//! | `pinwheel` | 5 arms, radial sd 0.3, tangential sd 0.1, rate 0.25, times 2; arms of equal size (`i % 5`) |
//! | `spirals` | two interleaved spirals (`sqrt(U) * 3π` turns, `+ U(0, 0.5)` jitter, `/ 3`, `+ N(0, 0.1²)`) |
//!
//! The benchmark's names `8gaussians` and `2spirals` are accepted as aliases ([`ALIASES`]).
//!
//! Points come back shuffled (the evenly spaced constructions would otherwise be ordered), so any
//! prefix is a sample of the density, as in the benchmark's pools.
//!
//! Determinism: the stream is a [`ChaCha8Rng`] seeded with `seed_from_u64(seed)`; normals are drawn by
//! Box-Muller, integers only from `u32` ranges, and every transcendental function is the pure-Rust
//! [`libm`], so the output is bit-identical for a `(name, n, seed)` on every platform. The samples are
//! *not* the benchmark's numbers (that uses numpy's PCG64 and stores float32); only the distribution
//! is the same.

use std::f64::consts::PI;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The data set names [`generate`] accepts (besides the [`ALIASES`]).
pub const NAMES: &[&str] = &[
    "moons",
    "circles",
    "eight-gaussians",
    "checkerboard",
    "pinwheel",
    "spirals",
];

/// Other accepted spellings, `(alias, name)`: the peer benchmark's file names.
pub const ALIASES: &[(&str, &str)] = &[("8gaussians", "eight-gaussians"), ("2spirals", "spirals")];

/// Errors of [`generate`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    /// The name is neither in [`NAMES`] nor in [`ALIASES`]; the message lists the valid names.
    #[error("unknown data set '{name}' (valid names: {})", NAMES.join(", "))]
    UnknownName {
        /// The name that was asked for.
        name: String,
    },
}

/// `n` points of the 2-D toy density `name` (one of [`NAMES`] or [`ALIASES`]), deterministic in
/// `(name, n, seed)` and shuffled. `n = 0` gives an empty vector.
///
/// ```
/// # use flow_train::datasets::generate;
/// let pts = generate("moons", 1000, 7).unwrap();
/// assert_eq!(pts.len(), 1000);
/// assert_eq!(pts, generate("moons", 1000, 7).unwrap());
/// assert!(generate("mooons", 10, 7).unwrap_err().to_string().contains("eight-gaussians"));
/// ```
pub fn generate(name: &str, n: usize, seed: u64) -> Result<Vec<[f64; 2]>, DataError> {
    let canonical = ALIASES
        .iter()
        .find(|(alias, _)| *alias == name)
        .map_or(name, |(_, to)| *to);
    let mut s = Sampler::new(seed);
    let mut pts = match canonical {
        "moons" => moons(n, &mut s),
        "circles" => circles(n, &mut s),
        "eight-gaussians" => eight_gaussians(n, &mut s),
        "checkerboard" => checkerboard(n, &mut s),
        "pinwheel" => pinwheel(n, &mut s),
        "spirals" => spirals(n, &mut s),
        _ => {
            return Err(DataError::UnknownName {
                name: name.to_string(),
            })
        }
    };
    s.shuffle(&mut pts);
    Ok(pts)
}

/// The random source: ChaCha8 plus portable uniform, normal and integer draws.
struct Sampler {
    rng: ChaCha8Rng,
    /// Box-Muller makes normals in pairs; the second waits here.
    spare: Option<f64>,
}

impl Sampler {
    fn new(seed: u64) -> Self {
        Sampler {
            rng: ChaCha8Rng::seed_from_u64(seed),
            spare: None,
        }
    }

    /// Uniform on [0, 1) with 53 random bits.
    fn uniform(&mut self) -> f64 {
        self.rng.gen::<f64>()
    }

    /// Standard normal (Box-Muller with libm, so identical on every platform).
    fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        let u1 = 1.0 - self.uniform(); // (0, 1]: log is finite
        let u2 = self.uniform();
        let r = libm::sqrt(-2.0 * libm::log(u1));
        let (s, c) = libm::sincos(2.0 * PI * u2);
        self.spare = Some(r * s);
        r * c
    }

    /// Uniform integer in `0..k` (drawn from a `u32` range: the same stream on 32- and 64-bit targets).
    fn below(&mut self, k: u32) -> u32 {
        self.rng.gen_range(0..k)
    }

    /// Fisher-Yates shuffle with portable index draws.
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = if i < u32::MAX as usize {
                self.below(i as u32 + 1) as usize
            } else {
                self.rng.gen_range(0..=i as u64) as usize
            };
            v.swap(i, j);
        }
    }
}

/// numpy's `linspace(start, stop, num, endpoint)[i]`, computed the way numpy does.
fn linspace(start: f64, stop: f64, num: usize, endpoint: bool, i: usize) -> f64 {
    let div = if endpoint { num.saturating_sub(1) } else { num };
    if div == 0 {
        return start;
    }
    if endpoint && i == num - 1 {
        return stop;
    }
    i as f64 * ((stop - start) / div as f64) + start
}

fn moons(n: usize, s: &mut Sampler) -> Vec<[f64; 2]> {
    const NOISE: f64 = 0.05;
    let n_out = n / 2;
    let n_in = n - n_out;
    let outer = (0..n_out).map(|i| {
        let t = linspace(0.0, PI, n_out, true, i);
        [libm::cos(t), libm::sin(t)]
    });
    let inner = (0..n_in).map(|i| {
        let t = linspace(0.0, PI, n_in, true, i);
        [1.0 - libm::cos(t), 1.0 - libm::sin(t) - 0.5]
    });
    let mut pts: Vec<[f64; 2]> = outer.chain(inner).collect();
    for p in &mut pts {
        p[0] += NOISE * s.normal();
        p[1] += NOISE * s.normal();
    }
    pts
}

fn circles(n: usize, s: &mut Sampler) -> Vec<[f64; 2]> {
    const FACTOR: f64 = 0.5;
    const NOISE: f64 = 0.08;
    const SCALE: f64 = 3.0;
    let n_out = n / 2;
    let n_in = n - n_out;
    let ring = |m: usize, r: f64| {
        (0..m).map(move |i| {
            let (sin, cos) = libm::sincos(linspace(0.0, 2.0 * PI, m, false, i));
            [r * cos, r * sin]
        })
    };
    let mut pts: Vec<[f64; 2]> = ring(n_out, 1.0).chain(ring(n_in, FACTOR)).collect();
    for p in &mut pts {
        p[0] = SCALE * (p[0] + NOISE * s.normal());
        p[1] = SCALE * (p[1] + NOISE * s.normal());
    }
    pts
}

fn eight_gaussians(n: usize, s: &mut Sampler) -> Vec<[f64; 2]> {
    let h = 1.0 / libm::sqrt(2.0);
    let dirs = [
        (1.0, 0.0),
        (-1.0, 0.0),
        (0.0, 1.0),
        (0.0, -1.0),
        (h, h),
        (h, -h),
        (-h, h),
        (-h, -h),
    ];
    (0..n)
        .map(|_| {
            let (cx, cy) = dirs[s.below(8) as usize];
            let x = s.normal() * 0.5 + 4.0 * cx;
            let y = s.normal() * 0.5 + 4.0 * cy;
            [x / 1.414, y / 1.414]
        })
        .collect()
}

fn checkerboard(n: usize, s: &mut Sampler) -> Vec<[f64; 2]> {
    (0..n)
        .map(|_| {
            let x1 = s.uniform() * 4.0 - 2.0;
            let x2 = s.uniform() - f64::from(s.below(2)) * 2.0 + libm::floor(x1).rem_euclid(2.0);
            [x1 * 2.0, x2 * 2.0]
        })
        .collect()
}

fn pinwheel(n: usize, s: &mut Sampler) -> Vec<[f64; 2]> {
    const RADIAL_SD: f64 = 0.3;
    const TANGENTIAL_SD: f64 = 0.1;
    const ARMS: usize = 5;
    const RATE: f64 = 0.25;
    (0..n)
        .map(|i| {
            let f0 = s.normal() * RADIAL_SD + 1.0;
            let f1 = s.normal() * TANGENTIAL_SD;
            let angle = linspace(0.0, 2.0 * PI, ARMS, false, i % ARMS) + RATE * libm::exp(f0);
            let (sin, cos) = libm::sincos(angle);
            [2.0 * (f0 * cos + f1 * sin), 2.0 * (f1 * cos - f0 * sin)]
        })
        .collect()
}

fn spirals(n: usize, s: &mut Sampler) -> Vec<[f64; 2]> {
    const NOISE: f64 = 0.1;
    // The benchmark puts n / 2 points on the second arm and the rest on the first.
    let first = n - n / 2;
    (0..n)
        .map(|i| {
            let m = libm::sqrt(s.uniform()) * 540.0 * (2.0 * PI) / 360.0;
            let x = -libm::cos(m) * m + s.uniform() * 0.5;
            let y = libm::sin(m) * m + s.uniform() * 0.5;
            let sign = if i < first { 1.0 } else { -1.0 };
            [
                sign * x / 3.0 + NOISE * s.normal(),
                sign * y / 3.0 + NOISE * s.normal(),
            ]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sample mean, variances and covariance: (mx, my, vx, vy, cxy).
    fn moments(p: &[[f64; 2]]) -> (f64, f64, f64, f64, f64) {
        let n = p.len() as f64;
        let mx = p.iter().map(|q| q[0]).sum::<f64>() / n;
        let my = p.iter().map(|q| q[1]).sum::<f64>() / n;
        let vx = p.iter().map(|q| (q[0] - mx).powi(2)).sum::<f64>() / n;
        let vy = p.iter().map(|q| (q[1] - my).powi(2)).sum::<f64>() / n;
        let cxy = p.iter().map(|q| (q[0] - mx) * (q[1] - my)).sum::<f64>() / n;
        (mx, my, vx, vy, cxy)
    }

    fn close(what: &str, got: f64, want: f64, tol: f64) {
        assert!(
            (got - want).abs() <= tol,
            "{what}: got {got}, want {want} ± {tol}"
        );
    }

    #[test]
    fn every_name_gives_n_finite_points() {
        for name in NAMES.iter().chain(ALIASES.iter().map(|(a, _)| a)) {
            for n in [0, 1, 2, 3, 5, 7, 1000] {
                let p = generate(name, n, 11).unwrap();
                assert_eq!(p.len(), n, "{name} n={n}");
                assert!(p.iter().flatten().all(|v| v.is_finite()), "{name} n={n}");
            }
        }
    }

    #[test]
    fn deterministic_for_a_seed_and_different_across_seeds() {
        for name in NAMES {
            let a = generate(name, 500, 42).unwrap();
            let b = generate(name, 500, 42).unwrap();
            let bits = |v: &[[f64; 2]]| v.iter().flatten().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&a), bits(&b), "{name}");
            assert_ne!(a, generate(name, 500, 43).unwrap(), "{name}");
        }
    }

    #[test]
    fn pinned_first_values() {
        // Guards against an accidental change of the stream (rand / rand_chacha / libm upgrade,
        // reordered draws): the data behind recorded fits would silently change.
        let p = generate("moons", 4, 0).unwrap();
        let got: Vec<u64> = p.iter().flatten().map(|x| x.to_bits()).collect();
        assert_eq!(got, PINNED_MOONS_4_SEED0, "{p:?}");
    }
    const PINNED_MOONS_4_SEED0: [u64; 8] = [
        13829905729365409904,
        4583902223098763439,
        4606490872456019476,
        4580469356379006204,
        13815086991777052084,
        4602111838563327727,
        4611880437384440135,
        4602010701230983022,
    ];

    #[test]
    fn aliases_are_the_same_sets() {
        assert_eq!(
            generate("8gaussians", 100, 1).unwrap(),
            generate("eight-gaussians", 100, 1).unwrap()
        );
        assert_eq!(
            generate("2spirals", 100, 1).unwrap(),
            generate("spirals", 100, 1).unwrap()
        );
    }

    #[test]
    fn unknown_name_lists_the_valid_names() {
        let e = generate("moon", 10, 0).unwrap_err();
        assert_eq!(e, DataError::UnknownName { name: "moon".into() });
        let msg = e.to_string();
        assert!(msg.contains("'moon'"), "{msg}");
        for name in NAMES {
            assert!(msg.contains(name), "{msg}");
        }
    }

    // Reference moments below: the benchmark's own generators (numpy, 2e6 points) and, for moons,
    // the closed form of make_moons: mean (1/2, 1/4), var x = 3/4 + σ², var y = 9/16 - 1/π + σ²,
    // cov = 1/8 - 1/π, with σ = 0.05.

    #[test]
    fn moons_match_the_benchmark_distribution() {
        let p = generate("moons", 200_000, 3).unwrap();
        let (mx, my, vx, vy, cxy) = moments(&p);
        close("mean x", mx, 0.5, 0.005);
        close("mean y", my, 0.25, 0.005);
        close("var x", vx, 0.75 + 0.0025, 0.005);
        close("var y", vy, 0.5625 - 1.0 / PI + 0.0025, 0.003);
        close("cov", cxy, 0.125 - 1.0 / PI, 0.003);
        // Noise level: distance to the nearer of the two unit circles (0.049 in the benchmark for
        // σ = 0.05; σ = 0.1 would give about 0.09).
        let resid = p
            .iter()
            .map(|q| {
                let d0 = (q[0].hypot(q[1]) - 1.0).abs();
                let d1 = ((q[0] - 1.0).hypot(q[1] - 0.5) - 1.0).abs();
                d0.min(d1).powi(2)
            })
            .sum::<f64>()
            / p.len() as f64;
        close("rms residual", resid.sqrt(), 0.04902, 0.001);
    }

    #[test]
    fn eight_gaussians_modes() {
        let p = generate("eight-gaussians", 80_000, 5).unwrap();
        let h = 1.0 / 2f64.sqrt();
        let dirs = [
            (1.0, 0.0),
            (-1.0, 0.0),
            (0.0, 1.0),
            (0.0, -1.0),
            (h, h),
            (h, -h),
            (-h, h),
            (-h, -h),
        ];
        let centres: Vec<[f64; 2]> = dirs
            .iter()
            .map(|(x, y)| [4.0 * x / 1.414, 4.0 * y / 1.414])
            .collect();
        let mut count = [0usize; 8];
        let mut sq = [0.0f64; 8];
        for q in &p {
            let (k, d2) = centres
                .iter()
                .map(|c| (q[0] - c[0]).powi(2) + (q[1] - c[1]).powi(2))
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .unwrap();
            count[k] += 1;
            sq[k] += d2;
        }
        for k in 0..8 {
            close("mode share", count[k] as f64 / p.len() as f64, 0.125, 0.01);
            // Per-coordinate sd 0.5 / 1.414 => E|x - c|² = 2 * (0.5 / 1.414)².
            close(
                "mode spread",
                sq[k] / count[k] as f64,
                2.0 * (0.5f64 / 1.414).powi(2),
                0.01,
            );
        }
        let (mx, my, vx, vy, _) = moments(&p);
        close("mean x", mx, 0.0, 0.03);
        close("mean y", my, 0.0, 0.03);
        close("var x", vx, 4.128, 0.06);
        close("var y", vy, 4.128, 0.06);
    }

    #[test]
    fn checkerboard_only_black_cells() {
        let p = generate("checkerboard", 50_000, 9).unwrap();
        for q in &p {
            assert!(q.iter().all(|v| (-4.0..4.0).contains(v)), "{q:?}");
            let parity = (libm::floor(q[0] / 2.0) + libm::floor(q[1] / 2.0)).rem_euclid(2.0);
            assert_eq!(parity, 0.0, "{q:?}");
        }
        let (mx, my, vx, vy, cxy) = moments(&p);
        close("mean x", mx, 0.0, 0.05);
        close("mean y", my, 0.0, 0.05);
        close("var x", vx, 5.333, 0.08);
        close("var y", vy, 5.333, 0.08);
        close("cov", cxy, 0.998, 0.06);
    }

    #[test]
    fn pinwheel_circles_spirals_moments_match_the_benchmark() {
        // (name, E r², var x, var y, cov), from the benchmark's generators.
        let refs = [
            ("pinwheel", 4.399, 2.199, 2.199, 0.0),
            ("circles", 5.739, 2.870, 2.870, 0.0),
            ("spirals", 5.107, 2.599, 2.508, 0.585),
        ];
        for (name, r2, rvx, rvy, rc) in refs {
            let p = generate(name, 200_000, 13).unwrap();
            let (mx, my, vx, vy, cxy) = moments(&p);
            let m2 = p.iter().map(|q| q[0] * q[0] + q[1] * q[1]).sum::<f64>() / p.len() as f64;
            close(name, mx, 0.0, 0.02);
            close(name, my, 0.0, 0.02);
            close(name, m2, r2, 0.04);
            close(name, vx, rvx, 0.04);
            close(name, vy, rvy, 0.04);
            close(name, cxy, rc, 0.04);
        }
    }

    #[test]
    fn circles_radii() {
        let p = generate("circles", 40_000, 1).unwrap();
        // Radius around 3 or 1.5 (noise sd 0.24): a point's distance to the nearer ring is small.
        let far = p.iter().filter(|q| {
            let r = q[0].hypot(q[1]);
            (r - 3.0).abs().min((r - 1.5).abs()) > 0.24 * 4.0
        });
        assert!(far.count() < 20);
        let outer = p.iter().filter(|q| q[0].hypot(q[1]) > 2.25).count();
        close("outer share", outer as f64 / p.len() as f64, 0.5, 0.01);
    }

    #[test]
    fn linspace_matches_numpy() {
        assert_eq!(linspace(0.0, PI, 1, true, 0), 0.0);
        assert_eq!(linspace(0.0, PI, 3, true, 2), PI);
        assert_eq!(linspace(0.0, PI, 3, true, 1), PI / 2.0);
        assert_eq!(linspace(0.0, 2.0 * PI, 4, false, 3), 3.0 * (PI / 2.0));
    }
}
