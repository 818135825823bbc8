use flow_train::*;
use rand::{Rng, SeedableRng};
fn main() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let n = 10000;
    let mut rows = Vec::new();
    for i in 0..n {
        let t = rng.gen::<f64>() * std::f64::consts::PI;
        let (x, y) = if i % 2 == 0 { (t.cos(), t.sin()) } else { (1.0 - t.cos(), 0.5 - t.sin()) };
        let nz = |r: &mut rand_chacha::ChaCha8Rng| { let u1: f64 = r.gen::<f64>().max(1e-300); let u2: f64 = r.gen(); (-2.0*u1.ln()).sqrt()*(2.0*std::f64::consts::PI*u2).cos() };
        rows.push(vec![x + 0.1 * nz(&mut rng), y + 0.1 * nz(&mut rng)]);
    }
    let data = Dataset::from_rows(vec!["x0".into(), "x1".into()], &rows);
    let mut cfg = FitConfig::default();
    cfg.epochs = std::env::args().nth(1).map(|s| s.parse().unwrap()).unwrap_or(5);
    cfg.threads = 1;
    let out = fit_with(&data, &cfg, &mut |e| eprintln!("{e:?}"), &Default::default()).unwrap();
    println!("best {} epochs {} s {} per-epoch {}", out.best_val_nll, out.epochs, out.seconds, out.seconds / out.epochs as f64);
}
