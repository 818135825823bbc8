//! Speed report: baked flows vs the runtime evaluator vs zuko and FlowJAX, in one run.
//!
//! `bench/speed.sh` (this example built for the host CPU with fused multiply-adds) or
//! `cargo run --release --example bench_speed` (the default build) prints one table: single-sample `log_prob`
//! latency, batch-10 000 `log_prob` and `sample` throughput on one thread and on all cores
//! (rayon), the achieved GFLOP/s of batch `log_prob` (2 × multiply-adds per sample) next to the
//! single-core f32 FMA peak measured in the same run (`tools/fma_peak.c`, built with `cc`), and
//! the peers' numbers when the Python environment of `python/peers/setup.sh` exists
//! (`PEERS_PY`, default `$HOME/.cache/flow-peers/bin/python`). Ratios are within this run; the
//! machine is shared and noisy. `--quick` uses fewer repetitions; `--no-peers` skips zuko and FlowJAX.

use std::hint::black_box;
use std::process::Command;
use std::time::Instant;

use flow_core::baked::BakedFlow;
use flow_core::runtime::Evaluator;
use flow_macros::flow;

#[flow("flow-macros/tests/models/moons_maf.flow", verify = false)]
struct MafMoons;
#[flow("flow-macros/tests/models/bench_nsf.flow", verify = false)]
struct NsfMoons;
#[flow("flow-macros/tests/models/bench_realnvp8.flow", verify = false)]
struct RealNvp8;
#[flow("flow-macros/tests/models/bench_maf16.flow", verify = false)]
struct Maf16;

/// Median of `reps` timings of `f`, in seconds.
fn time(reps: usize, mut f: impl FnMut()) -> f64 {
    let mut ts: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    ts.sort_by(f64::total_cmp);
    ts[reps / 2]
}

struct Row {
    name: &'static str,
    single_ns: f64,
    runtime_single_ns: f64,
    batch_per_s: f64,
    batch_all_per_s: f64,
    sample_per_s: f64,
    sample_all_per_s: f64,
    /// `grad_log_prob` of 10 000 rows one call per row, rows per second.
    grad_rows_per_s: f64,
    /// `grad_log_prob_batch` of 10 000 rows (blocks of `BLOCK`), one thread and all cores.
    grad_batch_per_s: f64,
    grad_all_per_s: f64,
    gflops: f64,
}

fn measure<F: BakedFlow<f32> + Sync, const D: usize>(
    name: &'static str,
    flow: &F,
    bytes: &[u8],
    macs: f64,
    quick: bool,
) -> Row {
    let reps = if quick { 3 } else { 7 };
    let mut rng = 0x2545_f491u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        ((rng >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 4.0
    };
    let xs: Vec<f32> = (0..10_000 * D).map(|_| next()).collect();
    let mut out = vec![0.0f32; 10_000];
    let ctx: [f32; 0] = [];
    // Single sample.
    let n1 = 2000;
    let single = time(reps, || {
        for k in 0..n1 {
            black_box(flow.log_prob(black_box(&xs[k * D..(k + 1) * D]), &ctx).unwrap());
        }
    }) / n1 as f64;
    let store = flow_train::golden::aligned(bytes);
    let mut ev =
        Evaluator::<f32, 8192>::new(&flow_core::bytemuck::cast_slice(&store)[..bytes.len()]).unwrap();
    let runtime_single = time(reps, || {
        for k in 0..n1 {
            black_box(ev.log_prob(black_box(&xs[k * D..(k + 1) * D]), &ctx).unwrap());
        }
    }) / n1 as f64;
    // Batch of 10 000, one thread and all cores.
    let batch = time(reps, || {
        flow.log_prob_batch(black_box(&xs), &ctx, &mut out).unwrap()
    });
    let batch_all = time(reps, || {
        flow.flow().par_log_prob_batch(black_box(&xs), &ctx, &mut out);
    });
    let mut xo = vec![0.0f32; 10_000 * D];
    let sample = time(reps, || flow.sample_batch(black_box(&xs), &ctx, &mut xo).unwrap());
    let sample_all = time(reps, || {
        flow.flow().par_sample_batch(black_box(&xs), &ctx, &mut xo);
    });
    let mut g = vec![0.0f32; 10_000 * D];
    let grad_rows = time(reps, || {
        for (x, gr) in xs.chunks_exact(D).zip(g.chunks_exact_mut(D)) {
            black_box(flow.grad_log_prob(black_box(x), &ctx, gr).unwrap());
        }
    });
    let grad = time(reps, || {
        flow.grad_log_prob_batch(black_box(&xs), &ctx, &mut g, &mut out)
            .unwrap()
    });
    let grad_all = time(reps, || {
        flow.flow()
            .par_grad_log_prob_batch(black_box(&xs), &ctx, &mut g, &mut out);
    });
    Row {
        name,
        grad_rows_per_s: 1e4 / grad_rows,
        grad_batch_per_s: 1e4 / grad,
        grad_all_per_s: 1e4 / grad_all,
        single_ns: single * 1e9,
        runtime_single_ns: runtime_single * 1e9,
        batch_per_s: 1e4 / batch,
        batch_all_per_s: 1e4 / batch_all,
        sample_per_s: 1e4 / sample,
        sample_all_per_s: 1e4 / sample_all,
        gflops: 2.0 * macs * 1e4 / batch / 1e9,
    }
}

fn macs(bytes: &[u8]) -> f64 {
    let (parts, _) = flow_core::model::builder::ModelParts::from_bytes(bytes).unwrap();
    flow_train::footprint::multiply_adds(&parts) as f64
}

/// The peers' script output `key=value ...` for one config, or None without the environment.
fn peers(py: &str, script: &str) -> Option<Vec<(String, f64)>> {
    let out = Command::new(py).args(["-c", script]).output().ok()?;
    if !out.status.success() {
        eprintln!(
            "peer script failed: {}",
            String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("")
        );
        return None;
    }
    let line = String::from_utf8_lossy(&out.stdout).lines().last()?.to_string();
    Some(
        line.split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.parse().unwrap_or(f64::NAN)))
            .collect(),
    )
}

fn zuko_script(ctor: &str, d: usize) -> String {
    format!(
        r#"
import os
os.sched_setaffinity(0, {{sorted(os.sched_getaffinity(0))[0]}})
import time, statistics, torch, zuko
torch.set_num_threads(1); torch.manual_seed(0)
flow = zuko.flows.{ctor}({d}, transforms=5, hidden_features=[64, 64]{extra})
x1 = torch.randn(1, {d}); xb = torch.randn(10000, {d})
with torch.no_grad():
    for _ in range(20): flow().log_prob(x1)
    lat = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(100): flow().log_prob(x1)
        lat.append((time.perf_counter() - t) / 100)
    thr = []; sthr = []
    for _ in range(3):
        t = time.perf_counter(); flow().log_prob(xb); thr.append(time.perf_counter() - t)
        t = time.perf_counter(); flow().sample((10000,)); sthr.append(time.perf_counter() - t)
print("single_ns=%.1f batch_per_s=%.1f sample_per_s=%.1f" % (statistics.median(lat)*1e9, 1e4/statistics.median(thr), 1e4/statistics.median(sthr)))
"#,
        extra = if ctor == "NSF" { ", bins=8" } else { "" }
    )
}

fn flowjax_script(kind: &str, d: usize) -> String {
    format!(
        r#"
import os
os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
# XLA:CPU still runs a thread pool under these flags (CPU time 1.7x wall time on 2 cores):
# pin the process to one core so that the comparison is one thread against one thread.
os.sched_setaffinity(0, {{sorted(os.sched_getaffinity(0))[0]}})
import time, statistics, jax, jax.numpy as jnp, equinox as eqx
from flowjax import flows, bijections
from flowjax.distributions import Normal
key = jax.random.key(0)
tr = bijections.Affine() if "{kind}" != "nsf" else bijections.RationalQuadraticSpline(knots=7, interval=5)
if "{kind}" == "realnvp":
    f = flows.coupling_flow(key, base_dist=Normal(jnp.zeros({d})), transformer=tr, flow_layers=5, nn_width=64, nn_depth=2)
else:
    f = flows.masked_autoregressive_flow(key, base_dist=Normal(jnp.zeros({d})), transformer=tr, flow_layers=5, nn_width=64, nn_depth=2)
lp = eqx.filter_jit(lambda x: f.log_prob(x)); sm = eqx.filter_jit(lambda k: f.sample(k, (10000,)))
x1 = jnp.zeros({d}); xb = jax.random.normal(key, (10000, {d}))
lp(x1).block_until_ready(); lp(xb).block_until_ready(); sm(key).block_until_ready()
lat = []
for _ in range(5):
    t = time.perf_counter()
    for _ in range(100): lp(x1).block_until_ready()
    lat.append((time.perf_counter() - t) / 100)
thr = []; sthr = []
for _ in range(3):
    t = time.perf_counter(); lp(xb).block_until_ready(); thr.append(time.perf_counter() - t)
    t = time.perf_counter(); sm(key).block_until_ready(); sthr.append(time.perf_counter() - t)
print("single_ns=%.1f batch_per_s=%.1f sample_per_s=%.1f" % (statistics.median(lat)*1e9, 1e4/statistics.median(thr), 1e4/statistics.median(sthr)))
"#
    )
}

/// The single-core f32 FMA peak (GFLOP/s) and the read bandwidth (GB/s) of a buffer as large as
/// the MAF bench model's weights (90 KiB), from `tools/fma_peak.c`.
fn rooflines() -> (Option<f64>, Option<f64>) {
    let dir = std::env::temp_dir().join(format!("fma_peak_{}", std::process::id()));
    if std::fs::create_dir_all(&dir).is_err() {
        return (None, None);
    }
    let exe = dir.join("fma_peak");
    let ok = Command::new("cc")
        .args(["-O3", "-march=native", "-ffp-contract=fast", "-o"])
        .arg(&exe)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tools/fma_peak.c"))
        .status()
        .is_ok_and(|s| s.success());
    let Some(out) = ok.then(|| Command::new(&exe).output().ok()).flatten() else {
        return (None, None);
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse().ok())
    };
    (value("peak_gflops="), value("read_gbs="))
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let bytes = |p: &str| std::fs::read(format!("{}/{p}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let (b1, b2, b3, b4) = (
        bytes("flow-macros/tests/models/moons_maf.flow"),
        bytes("flow-macros/tests/models/bench_nsf.flow"),
        bytes("flow-macros/tests/models/bench_realnvp8.flow"),
        bytes("flow-macros/tests/models/bench_maf16.flow"),
    );
    let rows = [
        measure::<_, 2>("MAF 5×64×64, D=2", &MafMoons, &b1, macs(&b1), quick),
        measure::<_, 2>("NSF 5×(8 bins)×64×64, D=2", &NsfMoons, &b2, macs(&b2), quick),
        measure::<_, 8>("RealNVP 5×64×64, D=8", &RealNvp8, &b3, macs(&b3), quick),
        measure::<_, 16>("MAF 5×64×64, D=16", &Maf16, &b4, macs(&b4), quick),
    ];
    let (peak, read_gbs) = rooflines();
    let py = std::env::var("PEERS_PY").unwrap_or_else(|_| {
        format!(
            "{}/.cache/flow-peers/bin/python",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    let have_py = std::path::Path::new(&py).exists() && !std::env::args().any(|a| a == "--no-peers");
    let peer_cfgs = [
        ("MAF", "maf", 2usize),
        ("NSF", "nsf", 2),
        ("RealNVP", "realnvp", 8),
        ("MAF", "maf", 16),
    ];
    println!(
        "kernel: {} (compiled for AVX2 {}, AVX-512 {}); batch block {} samples",
        flow_core::arch::kernel().name(),
        if cfg!(target_feature = "avx2") {
            "on"
        } else {
            "off"
        },
        if cfg!(target_feature = "avx512f") {
            "on"
        } else {
            "off"
        },
        flow_core::block::BLOCK,
    );
    println!(
        "threads: {}; single-core f32 FMA peak: {}; read bandwidth of 90 KiB (the MAF weights, more than L1): {}",
        rayon::current_num_threads(),
        peak.map_or("not measured (no cc)".into(), |p| format!("{p:.1} GFLOP/s")),
        read_gbs.map_or("not measured".into(), |g| format!(
            "{g:.1} GB/s = {:.2} µs per pass",
            92_160.0 / g / 1e3
        ))
    );
    println!();
    println!("| model | baked log_prob b1 | runtime b1 | zuko b1 | flowjax b1 | speed-up vs zuko b1 | baked log_prob b10k /s (1 thr) | all cores | zuko b10k /s | ×zuko | flowjax b10k /s | ×flowjax | baked sample b10k /s (1 thr) | all cores | zuko sample /s | ×zuko | GFLOP/s (1 thr) | % of FMA peak |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (r, (zc, fk, d)) in rows.iter().zip(peer_cfgs) {
        let z = if have_py {
            peers(&py, &zuko_script(zc, d))
        } else {
            None
        };
        let f = if have_py {
            peers(&py, &flowjax_script(fk, d))
        } else {
            None
        };
        let get = |v: &Option<Vec<(String, f64)>>, k: &str| {
            v.as_ref()
                .and_then(|v| v.iter().find(|(n, _)| n == k).map(|(_, x)| *x))
        };
        let fmt_ns = |v: Option<f64>| v.map_or("-".into(), |v| format!("{:.1} µs", v / 1e3));
        let ratio = |a: Option<f64>, b: f64| a.map_or("-".into(), |a| format!("{:.0}×", a / b));
        let ratio_t =
            |ours: f64, theirs: Option<f64>| theirs.map_or("-".into(), |t| format!("{:.1}×", ours / t));
        println!(
            "| {} | {:.2} µs | {:.2} µs | {} | {} | {} | {:.0} k | {:.0} k | {} | {} | {} | {} | {:.0} k | {:.0} k | {} | {} | {:.2} | {} |",
            r.name,
            r.single_ns / 1e3,
            r.runtime_single_ns / 1e3,
            fmt_ns(get(&z, "single_ns")),
            fmt_ns(get(&f, "single_ns")),
            ratio(get(&z, "single_ns"), r.single_ns),
            r.batch_per_s / 1e3,
            r.batch_all_per_s / 1e3,
            get(&z, "batch_per_s").map_or("-".into(), |v| format!("{:.0} k", v / 1e3)),
            ratio_t(r.batch_per_s, get(&z, "batch_per_s")),
            get(&f, "batch_per_s").map_or("-".into(), |v| format!("{:.0} k", v / 1e3)),
            ratio_t(r.batch_per_s, get(&f, "batch_per_s")),
            r.sample_per_s / 1e3,
            r.sample_all_per_s / 1e3,
            get(&z, "sample_per_s").map_or("-".into(), |v| format!("{:.0} k", v / 1e3)),
            ratio_t(r.sample_per_s, get(&z, "sample_per_s")),
            r.gflops,
            peak.map_or("-".into(), |p| format!("{:.1}%", 100.0 * r.gflops / p)),
        );
    }
    println!();
    println!("| model | baked grad_log_prob, row by row /s | grad_log_prob_batch /s (1 thr) | × rows | all cores |");
    println!("|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {:.0} k | {:.0} k | {:.1}× | {:.0} k |",
            r.name,
            r.grad_rows_per_s / 1e3,
            r.grad_batch_per_s / 1e3,
            r.grad_batch_per_s / r.grad_rows_per_s,
            r.grad_all_per_s / 1e3,
        );
    }
    if !have_py {
        println!("\n(peers not measured: no Python environment at {py}; see python/peers/setup.sh)");
    }
}
