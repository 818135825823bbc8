//! Bakes `model.flow` (copied here by `demo.sh`) and evaluates the baked code on a CSV with
//! columns x0,x1: mean log p, a few samples, and the golden-vector check.
//! Usage: `cargo run --release -- TEST.csv`.

#[flow_macros::flow("model.flow")]
struct Moons;

fn main() {
    let path = std::env::args().nth(1).expect("usage: bake-demo TEST.csv");
    let text = std::fs::read_to_string(&path).expect("read the CSV");
    let rows: Vec<[f32; 2]> = text
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut it = l.split(',').map(|v| v.trim().parse::<f32>().expect("a number"));
            [it.next().unwrap(), it.next().unwrap()]
        })
        .collect();
    let mut lp = vec![0.0f32; rows.len()];
    Moons::log_prob_batch(&rows, &mut lp);
    let mean = lp.iter().map(|&v| v as f64).sum::<f64>() / lp.len() as f64;
    println!(
        "baked: {} weights ({} bytes, flash), {} bytes of stack scratch per call",
        Moons::PARAMS,
        Moons::WEIGHT_BYTES,
        Moons::SCRATCH_BYTES
    );
    let mut rng = flow_core::rng::XorShift64Star::new(42);
    for _ in 0..3 {
        let x = Moons::sample_with(&mut rng);
        println!("baked sample: [{:.4}, {:.4}]", x[0], x[1]);
    }
    let e = Moons::golden_errors();
    println!("baked golden vectors: max error {:.2e} (tolerance {:.0e})", e.iter().cloned().fold(0.0, f64::max), Moons::GOLDEN_TOLERANCE);
    println!("baked_mean_log_prob={mean} n={}", lp.len());
}
