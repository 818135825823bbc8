//! Baked models agree bit for bit with the runtime evaluator on the same file: `log_prob`,
//! `inverse`, `forward`, `sample`, `sample_with`, `grad_log_prob` and `log_prob_batch`, through the
//! inherent array API and through `BakedFlow`, in f32 and f64, on thousands of random points
//! (including far tails), for every test model in `tests/models/` (see `gen_models.rs`).

use flow_core::baked::BakedFlow;
use flow_core::runtime::{Aligned, Error, Evaluator};
use flow_core::testing::Lcg;
use flow_core::Real;
use flow_macros::flow;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// `(x, ctx) → (point, log|det|)`: the shape of `inverse` and `forward`.
type Map<S, const D: usize, const C: usize> = fn(&[S; D], &[S; C]) -> ([S; D], S);

/// `(rows, ctx, out rows)`: the shape of `sample_batch`.
type BatchMap<S, const D: usize, const C: usize> = fn(&[[S; D]], &[S; C], &mut [[S; D]]);

/// `(rows, ctx, output rows, one value per row)`: the shape of `grad_log_prob_batch` and
/// `sample_and_log_prob_batch`.
type GradBatch<S, const D: usize, const C: usize> = fn(&[[S; D]], &[S; C], &mut [[S; D]], &mut [S]);

/// The inherent methods of one baked type, as function pointers over `(x, ctx)`.
struct Api<S, const D: usize, const C: usize> {
    log_prob: fn(&[S; D], &[S; C]) -> S,
    grad_log_prob: fn(&[S; D], &[S; C]) -> [S; D],
    inverse: Map<S, D, C>,
    forward: Map<S, D, C>,
    sample: fn(&[S; D], &[S; C]) -> [S; D],
    sample_with: fn(&mut ChaCha8Rng, &[S; C]) -> [S; D],
    sample_and_log_prob: Map<S, D, C>,
    sample_and_log_prob_batch: GradBatch<S, D, C>,
    log_prob_batch: fn(&[[S; D]], &[S; C], &mut [S]),
    sample_batch: BatchMap<S, D, C>,
    grad_log_prob_batch: GradBatch<S, D, C>,
}

/// `Api` of an unconditional (`api!(T)`) or conditional (`api!(T, ctx)`) baked type.
macro_rules! api {
    ($t:ty) => {
        Api {
            log_prob: |x, _| <$t>::log_prob(x),
            grad_log_prob: |x, _| <$t>::grad_log_prob(x),
            inverse: |x, _| <$t>::inverse(x),
            forward: |z, _| <$t>::forward(z),
            sample: |e, _| <$t>::sample(e),
            sample_with: |r, _| <$t>::sample_with(r),
            sample_and_log_prob: |e, _| <$t>::sample_and_log_prob(e),
            sample_and_log_prob_batch: |es, _, xs, out| <$t>::sample_and_log_prob_batch(es, xs, out),
            log_prob_batch: |xs, _, out| <$t>::log_prob_batch(xs, out),
            sample_batch: |es, _, out| <$t>::sample_batch(es, out),
            grad_log_prob_batch: |xs, _, g, out| <$t>::grad_log_prob_batch(xs, g, out),
        }
    };
    ($t:ty, ctx) => {
        Api {
            log_prob: |x, c| <$t>::log_prob(x, c),
            grad_log_prob: |x, c| <$t>::grad_log_prob(x, c),
            inverse: |x, c| <$t>::inverse(x, c),
            forward: |z, c| <$t>::forward(z, c),
            sample: |e, c| <$t>::sample(e, c),
            sample_with: |r, c| <$t>::sample_with(r, c),
            sample_and_log_prob: |e, c| <$t>::sample_and_log_prob(e, c),
            sample_and_log_prob_batch: |es, c, xs, out| <$t>::sample_and_log_prob_batch(es, c, xs, out),
            log_prob_batch: |xs, c, out| <$t>::log_prob_batch(xs, c, out),
            sample_batch: |es, c, out| <$t>::sample_batch(es, c, out),
            grad_log_prob_batch: |xs, c, g, out| <$t>::grad_log_prob_batch(xs, c, g, out),
        }
    };
}

/// Bit patterns, so that NaNs compare too (both sides run the same operations).
trait Bits: Real {
    fn bits(self) -> u64;
}
impl Bits for f32 {
    fn bits(self) -> u64 {
        u64::from(self.to_bits())
    }
}
impl Bits for f64 {
    fn bits(self) -> u64 {
        self.to_bits()
    }
}

fn same<S: Bits>(a: &[S], b: &[S], what: &str, k: usize) {
    let (ab, bb): (Vec<u64>, Vec<u64>) = (
        a.iter().map(|v| v.bits()).collect(),
        b.iter().map(|v| v.bits()).collect(),
    );
    assert_eq!(ab, bb, "{what} differs at point {k}: baked {a:?}, runtime {b:?}");
}

/// Points: standard normal at scales 0.5, 1, 3 and 10 (tails), plus a few extremes.
fn point<S: Real, const N: usize>(rng: &mut Lcg, k: usize) -> [S; N] {
    const SCALES: [f64; 4] = [0.5, 1.0, 3.0, 10.0];
    const EXTREME: [f64; 6] = [30.0, -30.0, 100.0, -100.0, 1e4, -1e4];
    let mut p = [S::ZERO; N];
    for (i, v) in p.iter_mut().enumerate() {
        *v = if k % 97 == 13 {
            S::from_f64(EXTREME[(k / 97 + i) % EXTREME.len()])
        } else {
            S::from_f64(rng.normal() * SCALES[k % SCALES.len()])
        };
    }
    p
}

const POINTS: usize = 3000;

/// Compares every method of a baked type with `Evaluator` on `bytes`.
fn agree<S: Bits, F: BakedFlow<S>, const D: usize, const C: usize>(
    api: Api<S, D, C>,
    flow: &F,
    bytes: &[u8],
    seed: u64,
) {
    let mut ev = Evaluator::<S, 4096>::new(bytes).expect("runtime evaluator accepts the model");
    let mut ev64 = Evaluator::<f64, 4096>::new(bytes).expect("runtime evaluator accepts the model");
    assert_eq!((F::DIM, F::CONTEXT_DIM), (D, C));
    assert_eq!((ev.dim(), ev.context_dim()), (D, C));
    assert_eq!(F::PARAMS, ev.model().n_params());
    // 4 bytes per weight in f32 files, 8 in f64 files, whatever the precision S.
    assert_eq!(
        F::WEIGHT_BYTES,
        ev.model().weights.weight_type().size() * F::PARAMS
    );
    assert_eq!(
        F::SCRATCH_BYTES,
        flow.flow().scratch_len() * core::mem::size_of::<S>() * flow_core::block::BLOCK
    );
    assert_eq!(flow.flow().n_params(), F::PARAMS);

    let mut rng = Lcg(seed);
    let mut finite = 0;
    let mut sampled_close = 0;
    let mut xs = Vec::new();
    let mut ctxs = Vec::new();
    for k in 0..POINTS {
        let x: [S; D] = point(&mut rng, k);
        let ctx: [S; C] = point(&mut rng, k / 2);
        // log p, through both APIs.
        let lp = (api.log_prob)(&x, &ctx);
        let lp_rt = ev.log_prob(&x, &ctx).unwrap();
        same(&[lp], &[lp_rt], "log_prob", k);
        same(
            &[flow.log_prob(&x, &ctx).unwrap()],
            &[lp_rt],
            "BakedFlow::log_prob",
            k,
        );
        if lp.to_f64().is_finite() {
            finite += 1;
        }
        // Density direction.
        let (z, ldj) = (api.inverse)(&x, &ctx);
        let mut z_rt = [S::ZERO; D];
        let ldj_rt = ev.inverse(&x, &ctx, &mut z_rt).unwrap();
        same(&z, &z_rt, "inverse z", k);
        same(&[ldj], &[ldj_rt], "inverse log|det|", k);
        // Sampling direction, from a base-like point.
        let e: [S; D] = point(&mut rng, 4 * (k / 4) + (k % 3));
        let (x2, ldj2) = (api.forward)(&e, &ctx);
        let mut x2_rt = [S::ZERO; D];
        let ldj2_rt = ev.forward(&e, &ctx, &mut x2_rt).unwrap();
        same(&x2, &x2_rt, "forward x", k);
        same(&[ldj2], &[ldj2_rt], "forward log|det|", k);
        let s = (api.sample)(&e, &ctx);
        let mut s_rt = [S::ZERO; D];
        ev.sample(&e, &ctx, &mut s_rt).unwrap();
        same(&s, &s_rt, "sample", k);
        let mut s_tr = [S::ZERO; D];
        flow.sample(&e, &ctx, &mut s_tr).unwrap();
        same(&s_tr, &s_rt, "BakedFlow::sample", k);
        // A sample and its density from one pass: the sample is `sample`'s, the density is the
        // runtime's bit for bit and log p of the sample up to the rounding of the inverse.
        let (s_lp, lq) = (api.sample_and_log_prob)(&e, &ctx);
        same(&s_lp, &s_rt, "sample_and_log_prob sample", k);
        let mut s_lp_rt = [S::ZERO; D];
        let lq_rt = ev.sample_and_log_prob(&e, &ctx, &mut s_lp_rt).unwrap();
        same(&[lq], &[lq_rt], "sample_and_log_prob log q", k);
        let mut s_lp_tr = [S::ZERO; D];
        let lq_tr = flow.sample_and_log_prob(&e, &ctx, &mut s_lp_tr).unwrap();
        same(&[lq_tr], &[lq_rt], "BakedFlow::sample_and_log_prob", k);
        // The density of the sample as drawn: in f64 it is log p of the sample up to rounding. In
        // f32 it is compared with the f64 value from the same noise at a loose bound that catches
        // a wrong formula, not rounding: these test layers are far from the identity and the f32
        // passes (and the f32-rounded weights of f64 files) move log q by up to ~3e-3 relative.
        let e64 = e.map(|v| v.to_f64());
        let c64 = ctx.map(|v| v.to_f64());
        let mut x64 = [0.0f64; D];
        let lq64 = ev64.sample_and_log_prob(&e64, &c64, &mut x64).unwrap();
        let lp64 = ev64.log_prob(&x64, &c64).unwrap();
        let lq = lq.to_f64();
        let moderate = x64.iter().all(|v| v.abs() < 20.0);
        if moderate && lq64.is_finite() && lp64.is_finite() {
            assert!(
                (lq64 - lp64).abs() <= 1e-9 * (1.0 + lp64.abs()),
                "point {k}: f64 sample_and_log_prob {lq64} vs log_prob of the sample {lp64}"
            );
            assert!(
                (lq - lq64).abs() <= 1e-2 * (1.0 + lq64.abs()),
                "point {k} ({} bytes): sample_and_log_prob {lq} vs {lq64} in f64",
                core::mem::size_of::<S>()
            );
            sampled_close += 1;
        }
        // Gradients.
        let g = (api.grad_log_prob)(&x, &ctx);
        let mut g_rt = [S::ZERO; D];
        let lp_g = ev.grad_log_prob(&x, &ctx, &mut g_rt).unwrap();
        same(&g, &g_rt, "grad_log_prob", k);
        same(&[lp_g], &[lp_rt], "log p from grad_log_prob", k);
        let mut g_tr = [S::ZERO; D];
        flow.grad_log_prob(&x, &ctx, &mut g_tr).unwrap();
        same(&g_tr, &g_rt, "BakedFlow::grad_log_prob", k);
        // 203 rows: whole blocks and a remainder.
        if k < 203 {
            xs.push(x);
            ctxs.push(ctx);
        }
    }
    assert!(
        finite > POINTS / 2,
        "only {finite} finite log-densities: the test points are too far out"
    );
    assert!(
        sampled_close > POINTS / 2,
        "only {sampled_close} samples compared"
    );

    // Batches, under the first context.
    let mut out = vec![S::ZERO; xs.len()];
    (api.log_prob_batch)(&xs, &ctxs[0], &mut out);
    let flat: Vec<S> = xs.iter().flatten().copied().collect();
    let mut out_tr = vec![S::ZERO; xs.len()];
    flow.log_prob_batch(&flat, &ctxs[0], &mut out_tr).unwrap();
    for (k, x) in xs.iter().enumerate() {
        let lp_rt = ev.log_prob(x, &ctxs[0]).unwrap();
        same(&[out[k]], &[lp_rt], "log_prob_batch", k);
        same(&[out_tr[k]], &[lp_rt], "BakedFlow::log_prob_batch", k);
    }

    // Batch sampling from the same rows taken as base noise.
    let mut xs_s = vec![[S::ZERO; D]; xs.len()];
    (api.sample_batch)(&xs, &ctxs[0], &mut xs_s);
    for (k, (e, x)) in xs.iter().zip(&xs_s).enumerate() {
        let mut x_rt = [S::ZERO; D];
        ev.sample(e, &ctxs[0], &mut x_rt).unwrap();
        same(x, &x_rt, "sample_batch", k);
    }
    let (mut xs_b, mut lq_b) = (vec![[S::ZERO; D]; xs.len()], vec![S::ZERO; xs.len()]);
    (api.sample_and_log_prob_batch)(&xs, &ctxs[0], &mut xs_b, &mut lq_b);
    let (mut xs_t, mut lq_t) = (vec![S::ZERO; flat.len()], vec![S::ZERO; xs.len()]);
    flow.sample_and_log_prob_batch(&flat, &ctxs[0], &mut xs_t, &mut lq_t)
        .unwrap();
    for (k, e) in xs.iter().enumerate() {
        let mut x_rt = [S::ZERO; D];
        let lq_rt = ev.sample_and_log_prob(e, &ctxs[0], &mut x_rt).unwrap();
        same(&xs_b[k], &x_rt, "sample_and_log_prob_batch sample", k);
        same(
            &xs_t[k * D..(k + 1) * D],
            &x_rt,
            "BakedFlow::sample_and_log_prob_batch sample",
            k,
        );
        same(
            &[lq_b[k], lq_t[k]],
            &[lq_rt, lq_rt],
            "sample_and_log_prob_batch log q",
            k,
        );
    }

    // Batch gradients (blocks of BLOCK rows, then a tail): the single-sample gradient and log p
    // of each row. The generated scratch must be large enough for the block path.
    let fl = flow.flow();
    let block = flow_core::block::BLOCK;
    assert!(
        fl.grad_block_scratch_len(block) <= block * fl.scratch_len(),
        "the batch gradient would fall back to rows: {} > {block} x {}",
        fl.grad_block_scratch_len(block),
        fl.scratch_len()
    );
    let mut gs = vec![[S::ZERO; D]; xs.len()];
    let mut lps = vec![S::ZERO; xs.len()];
    (api.grad_log_prob_batch)(&xs, &ctxs[0], &mut gs, &mut lps);
    let (mut gs_tr, mut lps_tr) = (vec![S::ZERO; flat.len()], vec![S::ZERO; xs.len()]);
    flow.grad_log_prob_batch(&flat, &ctxs[0], &mut gs_tr, &mut lps_tr)
        .unwrap();
    for (k, x) in xs.iter().enumerate() {
        let mut g_rt = [S::ZERO; D];
        let lp_rt = ev.grad_log_prob(x, &ctxs[0], &mut g_rt).unwrap();
        same(&gs[k], &g_rt, "grad_log_prob_batch", k);
        same(
            &gs_tr[k * D..(k + 1) * D],
            &g_rt,
            "BakedFlow::grad_log_prob_batch",
            k,
        );
        same(
            &[lps[k], lps_tr[k]],
            &[lp_rt, lp_rt],
            "grad_log_prob_batch log p",
            k,
        );
    }

    // Random sampling with the same generator state.
    let (mut r1, mut r2, mut r3) = (
        ChaCha8Rng::seed_from_u64(seed),
        ChaCha8Rng::seed_from_u64(seed),
        ChaCha8Rng::seed_from_u64(seed),
    );
    for k in 0..500 {
        let ctx = &ctxs[k % ctxs.len()];
        let x = (api.sample_with)(&mut r1, ctx);
        let mut x_rt = [S::ZERO; D];
        ev.sample_with(&mut r2, ctx, &mut x_rt).unwrap();
        same(&x, &x_rt, "sample_with", k);
        let mut x_tr = [S::ZERO; D];
        flow.sample_with(&mut r3, ctx, &mut x_tr).unwrap();
        same(&x_tr, &x_rt, "BakedFlow::sample_with", k);
    }

    // Wrong lengths through the trait are errors, not panics.
    let long = vec![S::ZERO; D + 1];
    let err = Error::WrongLength {
        expected: D,
        got: D + 1,
    };
    assert_eq!(flow.log_prob(&long, &ctxs[0]), Err(err));
    let mut short = vec![S::ZERO; D + 1];
    assert_eq!(flow.inverse(&xs[0], &ctxs[0], &mut short).unwrap_err(), err);
    let ctx_long = vec![S::ZERO; C + 1];
    assert_eq!(
        flow.log_prob(&xs[0], &ctx_long),
        Err(Error::WrongLength {
            expected: C,
            got: C + 1
        })
    );
    let mut out = [S::ZERO; 2];
    assert!(flow.log_prob_batch(&flat[..3 * D], &ctxs[0], &mut out).is_err());
}

macro_rules! model {
    ($bytes:ident, $file:literal) => {
        static $bytes: &Aligned<[u8]> = &Aligned(*include_bytes!($file));
    };
}

model!(MAF_DIAG, "models/maf_diag.flow");
model!(MAF_GMM, "models/maf_gmm.flow");
model!(MAF_T, "models/maf_t.flow");
model!(IAF_CHOLESKY, "models/iaf_cholesky.flow");
model!(COND_MIXED, "models/cond_mixed.flow");
model!(GAUSSIAN, "models/gaussian.flow");
model!(MOONS_MAF, "models/moons_maf.flow");
model!(TINY, "models/tiny.flow");
model!(TINY_COND, "models/tiny_cond.flow");
model!(REALNVP_COND, "models/realnvp_cond.flow");
model!(NSF, "models/nsf.flow");
model!(NSF_COUPLING_COND, "models/nsf_coupling_cond.flow");
model!(MAF_CONTEXT_STD, "models/maf_context_std.flow");
model!(PLANAR, "models/planar.flow");
model!(RADIAL, "models/radial.flow");
model!(MISC_LAYERS, "models/misc_layers.flow");
model!(NFLOWS_MAF, "models/nflows_maf.flow");
model!(ZUKO_NSF_COND, "models/zuko_nsf_cond.flow");

/// Every other layer kind, each in f32 and f64.
#[flow("tests/models/realnvp_cond.flow")]
struct RealnvpCond;
#[flow("tests/models/realnvp_cond.flow", precision = "f64")]
struct RealnvpCond64;
#[flow("tests/models/nsf.flow")]
struct Nsf;
#[flow("tests/models/nsf.flow", precision = "f64")]
struct Nsf64;
#[flow("tests/models/nsf_coupling_cond.flow")]
struct NsfCouplingCond;
#[flow("tests/models/nsf_coupling_cond.flow", precision = "f64")]
struct NsfCouplingCond64;
#[flow("tests/models/maf_context_std.flow")]
struct MafContextStd;
#[flow("tests/models/maf_context_std.flow", precision = "f64")]
struct MafContextStd64;
#[flow("tests/models/planar.flow")]
struct Planar;
#[flow("tests/models/planar.flow", precision = "f64")]
struct Planar64;
#[flow("tests/models/radial.flow")]
struct Radial;
#[flow("tests/models/radial.flow", precision = "f64")]
struct Radial64;
#[flow("tests/models/maf_gmm.flow")]
struct MafGmm;
#[flow("tests/models/maf_gmm.flow", precision = "f64")]
struct MafGmm64;
#[flow("tests/models/maf_t.flow")]
struct MafT;
#[flow("tests/models/maf_t.flow", precision = "f64")]
struct MafT64;
#[flow("tests/models/misc_layers.flow")]
struct MiscLayers;
#[flow("tests/models/misc_layers.flow", precision = "f64")]
struct MiscLayers64;
#[flow("tests/models/nflows_maf.flow")]
struct NflowsMaf;
#[flow("tests/models/nflows_maf.flow", precision = "f64")]
struct NflowsMaf64;
#[flow("tests/models/zuko_nsf_cond.flow")]
struct ZukoNsfCond;
#[flow("tests/models/zuko_nsf_cond.flow", precision = "f64")]
struct ZukoNsfCond64;

#[test]
fn every_layer_kind_agrees_with_runtime() {
    agree::<f32, _, 3, 1>(api!(RealnvpCond, ctx), &RealnvpCond, &REALNVP_COND.0, 20);
    agree::<f64, _, 3, 1>(api!(RealnvpCond64, ctx), &RealnvpCond64, &REALNVP_COND.0, 21);
    agree::<f32, _, 3, 0>(api!(Nsf), &Nsf, &NSF.0, 22);
    agree::<f64, _, 3, 0>(api!(Nsf64), &Nsf64, &NSF.0, 23);
    agree::<f32, _, 2, 2>(
        api!(NsfCouplingCond, ctx),
        &NsfCouplingCond,
        &NSF_COUPLING_COND.0,
        24,
    );
    agree::<f64, _, 2, 2>(
        api!(NsfCouplingCond64, ctx),
        &NsfCouplingCond64,
        &NSF_COUPLING_COND.0,
        25,
    );
    agree::<f32, _, 2, 3>(api!(MafContextStd, ctx), &MafContextStd, &MAF_CONTEXT_STD.0, 36);
    agree::<f64, _, 2, 3>(
        api!(MafContextStd64, ctx),
        &MafContextStd64,
        &MAF_CONTEXT_STD.0,
        37,
    );
    agree::<f32, _, 2, 0>(api!(Planar), &Planar, &PLANAR.0, 26);
    agree::<f64, _, 2, 0>(api!(Planar64), &Planar64, &PLANAR.0, 27);
    agree::<f32, _, 2, 0>(api!(Radial), &Radial, &RADIAL.0, 28);
    agree::<f64, _, 2, 0>(api!(Radial64), &Radial64, &RADIAL.0, 29);
    agree::<f32, _, 3, 0>(api!(MafGmm), &MafGmm, &MAF_GMM.0, 38);
    agree::<f64, _, 3, 0>(api!(MafGmm64), &MafGmm64, &MAF_GMM.0, 39);
    agree::<f32, _, 3, 0>(api!(MafT), &MafT, &MAF_T.0, 48);
    agree::<f64, _, 3, 0>(api!(MafT64), &MafT64, &MAF_T.0, 49);
    agree::<f32, _, 3, 0>(api!(MiscLayers), &MiscLayers, &MISC_LAYERS.0, 30);
    agree::<f64, _, 3, 0>(api!(MiscLayers64), &MiscLayers64, &MISC_LAYERS.0, 31);
    agree::<f32, _, 4, 0>(api!(NflowsMaf), &NflowsMaf, &NFLOWS_MAF.0, 32);
    agree::<f64, _, 4, 0>(api!(NflowsMaf64), &NflowsMaf64, &NFLOWS_MAF.0, 33);
    agree::<f32, _, 3, 2>(api!(ZukoNsfCond, ctx), &ZukoNsfCond, &ZUKO_NSF_COND.0, 34);
    agree::<f64, _, 3, 2>(api!(ZukoNsfCond64, ctx), &ZukoNsfCond64, &ZUKO_NSF_COND.0, 35);
}

model!(MISC_LAYERS_F64, "models/misc_layers_f64.flow");
model!(IAF_CHOLESKY_F64, "models/iaf_cholesky_f64.flow");
model!(FLOWJAX_MAF64, "models/golden_flowjax_maf64.flow");
model!(FLOWJAX_RQ64, "models/golden_flowjax_rq64.flow");

/// Files with f64 weights (format version 2): `static` f64 arrays; f32 methods round each weight
/// as they read it, like the runtime evaluator.
#[flow("tests/models/misc_layers_f64.flow")]
struct MiscLayersF64W;
#[flow("tests/models/misc_layers_f64.flow", precision = "f64")]
struct MiscLayersF64W64;
#[flow("tests/models/iaf_cholesky_f64.flow")]
struct IafCholeskyF64W;
#[flow("tests/models/iaf_cholesky_f64.flow", precision = "f64")]
struct IafCholeskyF64W64;
#[flow("tests/models/golden_flowjax_maf64.flow")]
struct FlowjaxMafF64W;
#[flow("tests/models/golden_flowjax_maf64.flow", precision = "f64")]
struct FlowjaxMafF64W64;
#[flow("tests/models/golden_flowjax_rq64.flow")]
struct FlowjaxRqF64W;
#[flow("tests/models/golden_flowjax_rq64.flow", precision = "f64")]
struct FlowjaxRqF64W64;

#[test]
fn f64_weight_files_agree_with_runtime_in_f32_and_f64() {
    agree::<f32, _, 3, 0>(api!(MiscLayersF64W), &MiscLayersF64W, &MISC_LAYERS_F64.0, 40);
    agree::<f64, _, 3, 0>(api!(MiscLayersF64W64), &MiscLayersF64W64, &MISC_LAYERS_F64.0, 41);
    agree::<f32, _, 3, 0>(api!(IafCholeskyF64W), &IafCholeskyF64W, &IAF_CHOLESKY_F64.0, 42);
    agree::<f64, _, 3, 0>(
        api!(IafCholeskyF64W64),
        &IafCholeskyF64W64,
        &IAF_CHOLESKY_F64.0,
        43,
    );
    agree::<f32, _, 2, 0>(api!(FlowjaxMafF64W), &FlowjaxMafF64W, &FLOWJAX_MAF64.0, 44);
    agree::<f64, _, 2, 0>(api!(FlowjaxMafF64W64), &FlowjaxMafF64W64, &FLOWJAX_MAF64.0, 45);
    agree::<f32, _, 4, 0>(api!(FlowjaxRqF64W), &FlowjaxRqF64W, &FLOWJAX_RQ64.0, 46);
    agree::<f64, _, 4, 0>(api!(FlowjaxRqF64W64), &FlowjaxRqF64W64, &FLOWJAX_RQ64.0, 47);
    // Twice the flash of the same model with f32 weights, in either precision.
    assert_eq!(MiscLayersF64W::WEIGHT_BYTES, 2 * MiscLayers::WEIGHT_BYTES);
    assert_eq!(MiscLayersF64W64::WEIGHT_BYTES, MiscLayersF64W::WEIGHT_BYTES);
    // f32 evaluation of f64 weights is f32 evaluation of the same weights rounded (the f32 file).
    let x = [0.3f32, -1.1, 0.7];
    assert_eq!(
        IafCholeskyF64W::log_prob(&x).to_bits(),
        IafCholesky::log_prob(&x).to_bits()
    );
    assert_ne!(
        IafCholeskyF64W64::log_prob(&x.map(f64::from)),
        IafCholesky64::log_prob(&x.map(f64::from))
    );
}

/// D = 3, four MAF layers, diagonal-normal base.
#[flow("tests/models/maf_diag.flow")]
struct MafDiag;
#[flow("tests/models/maf_diag.flow", precision = "f64")]
struct MafDiag64;

/// D = 3, three IAF layers, Cholesky base.
#[flow("tests/models/iaf_cholesky.flow")]
struct IafCholesky;
#[flow("tests/models/iaf_cholesky.flow", precision = "f64")]
struct IafCholesky64;

/// D = 2, C = 3, MAF and IAF layers.
#[flow("tests/models/cond_mixed.flow")]
struct CondMixed;
#[flow("tests/models/cond_mixed.flow", precision = "f64")]
struct CondMixed64;

/// D = 3, no layers.
#[flow("tests/models/gaussian.flow")]
struct Gaussian;

/// `flow-train` defaults: MAF, 5 × (64 × 64).
#[flow("tests/models/moons_maf.flow")]
struct MoonsMaf;
#[flow("tests/models/moons_maf.flow", precision = "f64")]
struct MoonsMaf64;

#[flow("tests/models/tiny.flow")]
struct Tiny;
#[flow("tests/models/tiny_cond.flow", precision = "f64")]
struct TinyCond64;

#[test]
fn maf_diag_agrees_with_runtime() {
    agree::<f32, _, 3, 0>(api!(MafDiag), &MafDiag, &MAF_DIAG.0, 1);
    agree::<f64, _, 3, 0>(api!(MafDiag64), &MafDiag64, &MAF_DIAG.0, 2);
}

#[test]
fn iaf_cholesky_agrees_with_runtime() {
    agree::<f32, _, 3, 0>(api!(IafCholesky), &IafCholesky, &IAF_CHOLESKY.0, 3);
    agree::<f64, _, 3, 0>(api!(IafCholesky64), &IafCholesky64, &IAF_CHOLESKY.0, 4);
}

#[test]
fn conditional_mixed_agrees_with_runtime() {
    agree::<f32, _, 2, 3>(api!(CondMixed, ctx), &CondMixed, &COND_MIXED.0, 5);
    agree::<f64, _, 2, 3>(api!(CondMixed64, ctx), &CondMixed64, &COND_MIXED.0, 6);
}

#[test]
fn layerless_gaussian_agrees_with_runtime() {
    agree::<f32, _, 3, 0>(api!(Gaussian), &Gaussian, &GAUSSIAN.0, 7);
}

#[test]
fn moons_maf_agrees_with_runtime() {
    agree::<f32, _, 2, 0>(api!(MoonsMaf), &MoonsMaf, &MOONS_MAF.0, 8);
    agree::<f64, _, 2, 0>(api!(MoonsMaf64), &MoonsMaf64, &MOONS_MAF.0, 9);
}

#[test]
fn tiny_models_agree_with_runtime() {
    agree::<f32, _, 2, 0>(api!(Tiny), &Tiny, &TINY.0, 10);
    agree::<f64, _, 2, 1>(api!(TinyCond64, ctx), &TinyCond64, &TINY_COND.0, 11);
}

/// Generic code takes any baked flow through `BakedFlow`.
fn mean_log_prob<F: BakedFlow<f32>>(flow: &F, xs: &[f32]) -> Result<f32, Error> {
    let n = xs.len() / F::DIM;
    let mut out = vec![0.0; n];
    flow.log_prob_batch(xs, &[], &mut out)?;
    Ok(out.iter().sum::<f32>() / n as f32)
}

#[test]
fn generic_code_takes_any_baked_flow() {
    let xs = [0.1f32, -0.4, 0.3, 1.2, -0.7, 0.05];
    let a = mean_log_prob(&MafDiag, &xs).unwrap();
    let b = mean_log_prob(&Gaussian, &xs).unwrap();
    assert_eq!(
        a,
        (MafDiag::log_prob(&[0.1, -0.4, 0.3]) + MafDiag::log_prob(&[1.2, -0.7, 0.05])) / 2.0
    );
    assert_eq!(
        b,
        (Gaussian::log_prob(&[0.1, -0.4, 0.3]) + Gaussian::log_prob(&[1.2, -0.7, 0.05])) / 2.0
    );
    let xs2 = [0.1f32, -0.4, 0.3, 1.2];
    assert!(mean_log_prob(&MoonsMaf, &xs2).is_ok());
}

#[test]
fn constants_are_what_the_model_needs() {
    // D = 2, 5 × MADE 2 → 64 → 64 → 4, standard-normal base.
    let per_layer = (2 * 64 + 64) + (64 * 64 + 64) + (64 * 4 + 4);
    assert_eq!(MoonsMaf::PARAMS, 5 * per_layer);
    assert_eq!(MoonsMaf::WEIGHT_BYTES, 4 * 5 * per_layer);
    assert_eq!(
        MoonsMaf64::WEIGHT_BYTES,
        MoonsMaf::WEIGHT_BYTES,
        "f64 evaluation keeps f32 weights"
    );
    assert_eq!(MoonsMaf64::SCRATCH_BYTES, 2 * MoonsMaf::SCRATCH_BYTES);
    assert_eq!((CondMixed::DIM, CondMixed::CONTEXT_DIM), (2, 3));
    assert_eq!(Gaussian::PARAMS, 3 + 6);
    println!(
        "moons_maf: WEIGHT_BYTES = {}, SCRATCH_BYTES = {} (f32), {} (f64)",
        MoonsMaf::WEIGHT_BYTES,
        MoonsMaf::SCRATCH_BYTES,
        MoonsMaf64::SCRATCH_BYTES
    );
}
