//! TEMPORARY (replaced by the full generators).
use rand::{Rng, SeedableRng};
pub fn generate(name: &str, n: usize, seed: u64) -> Result<Vec<[f64; 2]>, String> {
    if name != "moons" {
        return Err(format!("unknown {name}"));
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    Ok((0..n)
        .map(|i| {
            let t = std::f64::consts::PI * (i / 2) as f64 / (n / 2) as f64;
            let nz = |r: &mut rand_chacha::ChaCha8Rng| {
                let u1: f64 = r.gen::<f64>().max(1e-300);
                let u2: f64 = r.gen();
                (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
            };
            let (x, y) = if i % 2 == 0 {
                (t.cos(), t.sin())
            } else {
                (1.0 - t.cos(), 0.5 - t.sin())
            };
            [x + 0.05 * nz(&mut rng), y + 0.05 * nz(&mut rng)]
        })
        .collect())
}
