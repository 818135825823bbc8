//! The test models in `tests/models/` and the broken ones in `tests/models/bad/`, built from code.
//!
//! `cargo test -p flow-macros --test gen_models` rebuilds every file in memory and asserts that the
//! checked-in bytes are identical (the generator is deterministic: seeded ChaCha8 streams).
//! `FLOW_MACROS_BLESS=1 cargo test -p flow-macros --test gen_models` writes them instead.
//!
//! Good models (baked by `tests/bitexact.rs` and `tests/expand/`):
//! - `tiny.flow`: D = 2, two MAF layers (hidden 2, ReLU), diagonal-normal base (expansion snapshot);
//! - `tiny_cond.flow`: D = 2, C = 1, one IAF layer (hidden 2, tanh, softplus scale, nflows layout),
//!   Cholesky base (f64 expansion snapshot);
//! - `maf_diag.flow`: D = 3, 4 MAF layers (16×16 ReLU), diagonal-normal base;
//! - `maf_gmm.flow`: D = 3, 3 MAF layers (16×16 ReLU), a 4-component Gaussian-mixture base;
//! - `maf_t.flow`: D = 3, 3 MAF layers (16×16 ReLU), a Student-t base (ν from 0.6 to 40);
//! - `iaf_cholesky.flow`: D = 3, 3 IAF layers (8×8 ELU, sigmoid scale), Cholesky base;
//! - `cond_mixed.flow`: D = 2, C = 3, MAF and IAF alternating (12 SiLU, softplus scale and
//!   nflows layout on odd layers), diagonal-normal base;
//! - `gaussian.flow`: D = 3, no layers, Cholesky base;
//! - `moons_maf.flow`: `flow_train::arch::build` defaults (MAF, 5 transforms, 64×64 ReLU), D = 2,
//!   no standardization, untrained (standard-normal base);
//! - `realnvp_cond.flow` (C = 1), `nsf.flow`, `nsf_coupling_cond.flow` (C = 2), `planar.flow`,
//!   `radial.flow`: the trainer's families with a standardization layer, weights redrawn;
//! - `maf_context_std.flow`: the trainer's MAF with C = 3 and a context standardization (raw-unit
//!   context, means up to ±20, scales 0.2–30), weights redrawn;
//! - `misc_layers.flow`: ActNorm, batch norm, LU linear, permutation, tanh and atanh maps;
//! - `nflows_maf.flow`, `zuko_nsf_cond.flow`: imported from the peer fixtures (residual MADE,
//!   permutations, zuko splines with context);
//! - `misc_layers_f64.flow`, `iaf_cholesky_f64.flow`: the same models with `f64` weights (format
//!   version 2);
//! - `golden_*.flow`: models with golden vectors for `tests/golden.rs`: every trainer family fitted,
//!   `golden_maf_gmm.flow` a MAF fitted with a 3-component mixture base (`--base gmm:3`),
//!   `golden_maf_t.flow` one fitted with a Student-t base (`--base student-t`),
//!   and every peer fixture imported (`golden_flowjax_*64.flow` with FlowJAX's float64 parameters
//!   as `f64` weights, `golden_flowjax_maf.flow` the same MAF rounded to `f32`).
//!
//! Except `moons_maf`, every trainable weight is redrawn at a scale that makes the layers far from
//! the identity, so that agreement tests exercise the whole kernels.

use flow_core::layers::affine::{AffineLayout, AffineScale};
use flow_core::layers::autoregressive::Direction;
use flow_core::model::builder::ModelParts;
use flow_core::model::file::{crc32, WeightType, HEADER_LEN};
use flow_core::model::{LayerDesc, NetDesc};
use flow_core::nn::{made, mlp, Activation};
use flow_train::arch::{self, ArchConfig, FlowKind, Trainable};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// An affine-autoregressive model from `flow_train::arch::build`, with its trainable weights
/// redrawn uniformly in ±`spread` (0: keep the initialization).
#[allow(clippy::too_many_arguments)]
fn ar_model(
    flow: FlowKind,
    d: usize,
    c: usize,
    transforms: usize,
    hidden: &[usize],
    activation: Activation,
    spread: f64,
    seed: u64,
) -> ModelParts {
    let cfg = ArchConfig {
        flow,
        transforms,
        hidden: hidden.to_vec(),
        activation,
        ..ArchConfig::default()
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let Trainable { mut parts, trainable } =
        arch::build(&cfg, d, c, None, None, &mut rng).expect("arch::build");
    if spread > 0.0 {
        for (w, &t) in parts.weights.iter_mut().zip(&trainable) {
            if t {
                *w = rng.gen_range(-spread..spread);
            }
        }
    }
    parts
}

/// Rewrites the options of layer `i` (an affine-autoregressive layer).
fn set_options(p: &mut ModelParts, i: usize, s: AffineScale, l: AffineLayout, dir: Direction) {
    if let LayerDesc::AffineAutoregressive {
        scale,
        layout,
        direction,
        ..
    } = &mut p.desc.layers[i]
    {
        *scale = s;
        *layout = l;
        *direction = dir;
    }
}

fn diag_base(p: &mut ModelParts, rng: &mut ChaCha8Rng) {
    let d = p.desc.dim as usize;
    let mu: Vec<f64> = (0..d).map(|_| rng.gen_range(-0.5..0.5)).collect();
    let sigma: Vec<f64> = (0..d).map(|_| rng.gen_range(0.5..2.0)).collect();
    p.set_diag_base(&mu, &sigma);
}

fn cholesky_base(p: &mut ModelParts, rng: &mut ChaCha8Rng) {
    let d = p.desc.dim as usize;
    let mu: Vec<f64> = (0..d).map(|_| rng.gen_range(-0.5..0.5)).collect();
    let mut l = Vec::new();
    for i in 0..d {
        for j in 0..=i {
            l.push(if i == j {
                rng.gen_range(0.5..1.5)
            } else {
                rng.gen_range(-0.7..0.7)
            });
        }
    }
    p.set_cholesky_base(&mu, &l);
}

fn tiny() -> ModelParts {
    let mut p = ar_model(FlowKind::Maf, 2, 0, 2, &[2], Activation::Relu, 0.8, 1);
    diag_base(&mut p, &mut ChaCha8Rng::seed_from_u64(101));
    p
}

fn tiny_cond() -> ModelParts {
    let mut p = ar_model(FlowKind::Iaf, 2, 1, 1, &[2], Activation::Tanh, 0.8, 2);
    set_options(
        &mut p,
        0,
        AffineScale::SoftplusEps { eps: 1e-3 },
        AffineLayout::ScaleShift,
        Direction::Iaf,
    );
    cholesky_base(&mut p, &mut ChaCha8Rng::seed_from_u64(102));
    p
}

fn maf_diag() -> ModelParts {
    let mut p = ar_model(FlowKind::Maf, 3, 0, 4, &[16, 16], Activation::Relu, 0.45, 3);
    diag_base(&mut p, &mut ChaCha8Rng::seed_from_u64(103));
    p
}

fn maf_gmm() -> ModelParts {
    let mut p = ar_model(FlowKind::Maf, 3, 0, 3, &[16, 16], Activation::Relu, 0.45, 7);
    let mut rng = ChaCha8Rng::seed_from_u64(107);
    let (k, d) = (4, 3);
    let mut w: Vec<f64> = (0..k).map(|_| rng.gen_range(-1.0..1.0)).collect();
    w.extend((0..k * d).map(|_| rng.gen_range(-2.0..2.0)));
    w.extend((0..k * d).map(|_| rng.gen_range(-0.7..0.5)));
    p.set_mixture_base(k as u16, &w);
    p
}

fn maf_t() -> ModelParts {
    let mut p = ar_model(FlowKind::Maf, 3, 0, 3, &[16, 16], Activation::Relu, 0.45, 8);
    let mut rng = ChaCha8Rng::seed_from_u64(108);
    let d = 3;
    let mut w: Vec<f64> = (0..d).map(|_| rng.gen_range(-1.0..1.0)).collect();
    w.extend((0..d).map(|_| rng.gen_range(-0.7..0.5)));
    w.extend([0.6f64, 4.0, 40.0].map(f64::ln));
    p.set_student_t_base(&w);
    p
}

fn iaf_cholesky() -> ModelParts {
    let mut p = ar_model(FlowKind::Iaf, 3, 0, 3, &[8, 8], Activation::Elu, 0.6, 4);
    for i in 0..3 {
        set_options(
            &mut p,
            i,
            AffineScale::Sigmoid { eps: 1e-2 },
            AffineLayout::ShiftScale,
            Direction::Iaf,
        );
    }
    cholesky_base(&mut p, &mut ChaCha8Rng::seed_from_u64(104));
    p
}

fn cond_mixed() -> ModelParts {
    let mut p = ar_model(FlowKind::Maf, 2, 3, 4, &[12], Activation::Silu, 0.6, 5);
    for i in (1..4).step_by(2) {
        set_options(
            &mut p,
            i,
            AffineScale::SoftplusEps { eps: 1e-3 },
            AffineLayout::ScaleShift,
            Direction::Iaf,
        );
    }
    diag_base(&mut p, &mut ChaCha8Rng::seed_from_u64(105));
    p
}

fn gaussian() -> ModelParts {
    let mut p = ModelParts::new(3, 0);
    cholesky_base(&mut p, &mut ChaCha8Rng::seed_from_u64(106));
    p
}

/// The model of the report: `flow-train fit` defaults for D = 2, without standardization.
fn moons_maf() -> ModelParts {
    let cfg = ArchConfig::default();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    arch::build(&cfg, 2, 0, None, None, &mut rng)
        .expect("arch::build")
        .parts
}

/// A family from `flow_train::arch::build` with standardization and every weight redrawn.
fn family(flow: FlowKind, d: usize, c: usize, seed: u64) -> ModelParts {
    family_with(flow, d, c, seed, false)
}

/// As [`family`], with a context standardization (raw-unit context) when `context_stats`.
fn family_with(flow: FlowKind, d: usize, c: usize, seed: u64, context_stats: bool) -> ModelParts {
    let cfg = ArchConfig {
        flow,
        transforms: 3,
        hidden: vec![12, 12],
        ..ArchConfig::default()
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mean: Vec<f64> = (0..d).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let std: Vec<f64> = (0..d).map(|_| rng.gen_range(0.5..2.0)).collect();
    // Drawn only when used, so the other families' streams stay those of their files.
    let n = if context_stats { c } else { 0 };
    let c_mean: Vec<f64> = (0..n).map(|_| rng.gen_range(-20.0..20.0)).collect();
    let c_std: Vec<f64> = (0..n).map(|_| rng.gen_range(0.2..30.0)).collect();
    let context = Some((&c_mean[..], &c_std[..])).filter(|_| context_stats);
    let Trainable { mut parts, trainable } =
        arch::build(&cfg, d, c, Some((&mean, &std)), context, &mut rng).expect("arch::build");
    for (w, &t) in parts.weights.iter_mut().zip(&trainable) {
        if t {
            *w += rng.gen_range(-0.4..0.4);
        }
    }
    parts
}

/// The layers no trainer family builds: ActNorm, batch norm, LU linear, permutation, and the
/// parameter-free elementwise maps (tanh → atanh keeps every input in the domain), around a MAF.
fn misc_layers() -> ModelParts {
    use flow_core::layers::elementwise::ElementwiseKind;
    let d = 3;
    let mut rng = ChaCha8Rng::seed_from_u64(120);
    let mut p = ar_model(FlowKind::Maf, d, 0, 1, &[8], Activation::Tanh, 0.5, 121);
    let mut u = |n: usize, lo: f64, hi: f64| -> Vec<f64> { (0..n).map(|_| rng.gen_range(lo..hi)).collect() };
    let actnorm = [u(d, -0.5, 0.5), u(d, -0.5, 0.5)].concat();
    let bn = [u(d, -1.0, 1.0), u(d, -0.5, 0.5), u(d, -0.5, 0.5), u(d, 0.3, 2.0)].concat();
    let lu = u(flow_core::layers::lu_linear::n_params(d), -0.6, 0.6);
    let mut extra = Vec::new();
    let span = p.push_weights(&actnorm);
    extra.push(LayerDesc::ActNorm { params: span });
    let span = p.push_weights(&bn);
    extra.push(LayerDesc::BatchNorm {
        params: span,
        eps: 1e-5,
    });
    let span = p.push_weights(&lu);
    extra.push(LayerDesc::LuLinear {
        params: span,
        eps: 1e-3,
    });
    let perm = p.push_ints(&[2, 0, 1]);
    extra.push(LayerDesc::Permutation { perm });
    extra.push(LayerDesc::Elementwise {
        kind: ElementwiseKind::Tanh,
        params: Default::default(),
    });
    extra.push(LayerDesc::Elementwise {
        kind: ElementwiseKind::Atanh,
        params: Default::default(),
    });
    for l in extra {
        p.push_layer(l);
    }
    diag_base(&mut p, &mut ChaCha8Rng::seed_from_u64(122));
    p
}

/// The path of a peer library's fixture (`tests/fixtures`, made by `python/make_fixtures.py`).
fn fixture_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../tests/fixtures/{name}.json"))
}

/// A model imported from a peer library's fixture (real trained weights; residual MADE for
/// nflows).
fn imported(name: &str) -> ModelParts {
    let path = fixture_path(name);
    let fx = flow_train::import::read_fixture(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    flow_train::import::to_parts(&fx).expect("fixture imports")
}

/// A model fitted by `flow_train::fit` (NSF, a few epochs, one thread: deterministic) with the
/// golden vectors `flow-train fit` stores; and the same file with one weight changed afterwards.
fn golden_models() -> (Vec<u8>, Vec<u8>) {
    let mut rng = ChaCha8Rng::seed_from_u64(140);
    let rows: Vec<Vec<f64>> = (0..600)
        .map(|_| {
            let a: f64 = rng.gen_range(-2.0..2.0);
            vec![a, a * a * 0.5 + rng.gen_range(-0.3..0.3)]
        })
        .collect();
    let data = flow_train::Dataset::from_rows(vec!["x0".into(), "x1".into()], &rows);
    let mut cfg = flow_train::FitConfig {
        epochs: 3,
        threads: 1,
        seed: 1,
        // The checked-in bytes predate `min_batches`, the 2e-3 default rate and the batch of
        // 128: keep all three.
        min_batches: 0,
        batch_size: 256,
        lr: 1e-3,
        ..Default::default()
    };
    cfg.arch = ArchConfig {
        flow: FlowKind::Nsf,
        transforms: 2,
        hidden: vec![8, 8],
        ..ArchConfig::default()
    };
    let out = flow_train::fit(&data, &cfg).expect("fit");
    let parts = out.model.parts;
    let meta = flow_train::io::Meta {
        format: flow_train::io::META_FORMAT.into(),
        columns: data.columns.clone(),
        golden: Some(flow_train::golden::golden_for(&parts, &data, &cfg)),
        ..Default::default()
    };
    let json = serde_json::to_string(&meta).unwrap();
    let good = parts.to_bytes(&json);
    let mut edited = parts.clone();
    let k = edited.weights.len() / 3;
    edited.weights[k] += 0.05;
    (good, edited.to_bytes(&json))
}

/// A small model of `flow` fitted for 2 epochs on curved data, with golden vectors.
fn fitted_with_golden(flow: FlowKind, d: usize) -> Vec<u8> {
    fitted_with_golden_base(flow, d, arch::BaseKind::Standard)
}

/// [`fitted_with_golden`] with a trained base distribution.
fn fitted_with_golden_base(flow: FlowKind, d: usize, base: arch::BaseKind) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(160 + d as u64);
    let rows: Vec<Vec<f64>> = (0..400)
        .map(|_| {
            let a: f64 = rng.gen_range(-2.0..2.0);
            (0..d)
                .map(|j| {
                    if j == 0 {
                        a
                    } else {
                        a * a * 0.5 * j as f64 + rng.gen_range(-0.3..0.3)
                    }
                })
                .collect()
        })
        .collect();
    let cols: Vec<String> = (0..d).map(|j| format!("x{j}")).collect();
    let data = flow_train::Dataset::from_rows(cols.clone(), &rows);
    let mut cfg = flow_train::FitConfig {
        epochs: 2,
        threads: 1,
        seed: 3,
        // The checked-in bytes predate `min_batches`, the 2e-3 default rate and the batch of
        // 128: keep all three.
        min_batches: 0,
        batch_size: 256,
        lr: 1e-3,
        ..Default::default()
    };
    cfg.arch = ArchConfig {
        flow,
        transforms: 2,
        hidden: vec![8, 8],
        base,
        ..ArchConfig::default()
    };
    let out = flow_train::fit(&data, &cfg).expect("fit");
    let parts = out.model.parts;
    let meta = flow_train::io::Meta {
        format: flow_train::io::META_FORMAT.into(),
        columns: cols,
        golden: Some(flow_train::golden::golden_for(&parts, &data, &cfg)),
        ..Default::default()
    };
    parts.to_bytes(&serde_json::to_string(&meta).unwrap())
}

/// Start of the weight section of a well-formed file.
fn weights_at(bytes: &[u8]) -> usize {
    let u = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    (HEADER_LEN + u(16) + u(20) + 3) & !3
}

fn fix_crc(bytes: &mut [u8]) {
    let crc = crc32(&bytes[16..]);
    bytes[12..16].copy_from_slice(&crc.to_le_bytes());
}

/// A one-layer model whose network has `sizes` (input and output may not chain); weights under
/// the MADE masks are zero, so that only the intended problem is reported.
fn one_layer(d: usize, c: usize, sizes: &[usize], scale: AffineScale, rng: &mut ChaCha8Rng) -> ModelParts {
    let mut p = ModelParts::new(d, c);
    let order: Vec<u16> = (0..d as u16).collect();
    let hidden = vec![1; mlp::hidden_total(sizes)];
    let mut w = Vec::new();
    for l in 0..sizes.len() - 1 {
        for row in 0..sizes[l + 1] {
            for col in 0..sizes[l] {
                let v = rng.gen_range(-0.1..0.1);
                w.push(if made::allows(&order, sizes, &hidden, 2, l, row, col) {
                    v
                } else {
                    0.0
                });
            }
        }
        for _ in 0..sizes[l + 1] {
            w.push(rng.gen_range(-0.1..0.1));
        }
    }
    push_ar(&mut p, sizes, &w, scale);
    p
}

fn push_ar(p: &mut ModelParts, sizes: &[usize], w: &[f64], scale: AffineScale) {
    let d = p.desc.dim as usize;
    let params = p.push_weights(w);
    let order = p.push_ints(&(0..d as u16).collect::<Vec<_>>());
    let hidden: Vec<u16> = vec![1; mlp::hidden_total(sizes)];
    let hidden_degrees = p.push_ints(&hidden);
    let mut s = flow_core::heapless::Vec::new();
    for &v in sizes {
        s.push(v).unwrap();
    }
    p.push_layer(LayerDesc::AffineAutoregressive {
        net: NetDesc {
            sizes: s,
            activation: Activation::Relu,
            residual: false,
            params,
        },
        order,
        hidden_degrees,
        scale,
        layout: AffineLayout::ShiftScale,
        direction: Direction::Maf,
    });
}

/// Every file: (path under `tests/models/`, bytes).
fn all() -> Vec<(&'static str, Vec<u8>)> {
    let meta = "{\"generator\":\"flow-macros/tests/gen_models.rs\"}";
    let mut files = vec![
        ("tiny.flow", tiny().to_bytes(meta)),
        ("tiny_cond.flow", tiny_cond().to_bytes(meta)),
        ("maf_diag.flow", maf_diag().to_bytes(meta)),
        ("maf_gmm.flow", maf_gmm().to_bytes(meta)),
        ("maf_t.flow", maf_t().to_bytes(meta)),
        ("iaf_cholesky.flow", iaf_cholesky().to_bytes(meta)),
        ("cond_mixed.flow", cond_mixed().to_bytes(meta)),
        ("gaussian.flow", gaussian().to_bytes(meta)),
        ("moons_maf.flow", moons_maf().to_bytes(meta)),
        (
            "realnvp_cond.flow",
            family(FlowKind::Realnvp, 3, 1, 130).to_bytes(meta),
        ),
        ("nsf.flow", family(FlowKind::Nsf, 3, 0, 131).to_bytes(meta)),
        (
            "nsf_coupling_cond.flow",
            family(FlowKind::NsfCoupling, 2, 2, 132).to_bytes(meta),
        ),
        (
            "maf_context_std.flow",
            family_with(FlowKind::Maf, 2, 3, 135, true).to_bytes(meta),
        ),
        ("planar.flow", family(FlowKind::Planar, 2, 0, 133).to_bytes(meta)),
        ("radial.flow", family(FlowKind::Radial, 2, 0, 134).to_bytes(meta)),
        ("misc_layers.flow", misc_layers().to_bytes(meta)),
    ];
    // Speed benchmark models (examples/bench_speed.rs): `flow-train fit` default shapes, untrained.
    for (file, flow, d) in [
        ("bench_nsf.flow", FlowKind::Nsf, 2),
        ("bench_realnvp8.flow", FlowKind::Realnvp, 8),
        ("bench_maf16.flow", FlowKind::Maf, 16),
    ] {
        let cfg = ArchConfig {
            flow,
            ..ArchConfig::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(150 + d as u64);
        files.push((
            file,
            arch::build(&cfg, d, 0, None, None, &mut rng)
                .expect("arch::build")
                .parts
                .to_bytes(meta),
        ));
    }
    // Golden round trips: every trainer family fitted (fit → file), and two imported fixtures
    // (import → file), each carrying its golden vectors for tests/golden.rs to bake and check.
    for (file, flow, d) in [
        ("golden_maf.flow", FlowKind::Maf, 2),
        ("golden_iaf.flow", FlowKind::Iaf, 2),
        ("golden_realnvp.flow", FlowKind::Realnvp, 3),
        ("golden_nsf_coupling.flow", FlowKind::NsfCoupling, 2),
        ("golden_planar.flow", FlowKind::Planar, 2),
        ("golden_radial.flow", FlowKind::Radial, 2),
    ] {
        files.push((file, fitted_with_golden(flow, d)));
    }
    let gmm = arch::BaseKind::Gmm { components: 3 };
    files.push((
        "golden_maf_gmm.flow",
        fitted_with_golden_base(FlowKind::Maf, 2, gmm),
    ));
    files.push((
        "golden_maf_t.flow",
        fitted_with_golden_base(FlowKind::Maf, 2, arch::BaseKind::StudentT),
    ));
    // Imports of every peer fixture with the weight type `flow-train import` chooses (f64 for
    // FlowJAX's float64 parameters, f32 for torch's), and FlowJAX MAF also stored as f32.
    for (file, fixture, weights) in [
        ("golden_nflows_rq.flow", "nflows_rqcoupling_moons", None),
        (
            "golden_flowjax_maf.flow",
            "flowjax_maf_moons",
            Some(WeightType::F32),
        ),
        ("golden_flowjax_maf64.flow", "flowjax_maf_moons", None),
        ("golden_flowjax_rq64.flow", "flowjax_rqcoupling_banana4", None),
        ("golden_zuko_maf.flow", "zuko_maf_moons", None),
        ("golden_zuko_nsf.flow", "zuko_nsf_moons", None),
        ("golden_zuko_nsf_cond.flow", "zuko_nsf_conditional", None),
        ("golden_zuko_realnvp.flow", "zuko_realnvp_banana4", None),
        ("golden_zuko_nice.flow", "zuko_nice_randmask_conditional", None),
        ("golden_nflows_maf.flow", "nflows_maf_banana4", None),
    ] {
        let path = fixture_path(fixture);
        let out = std::env::temp_dir().join(format!("gen_models_{}_{file}", std::process::id()));
        flow_train::import::import_file(&path, &out, weights)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        files.push((file, std::fs::read(&out).unwrap()));
        let _ = std::fs::remove_file(&out);
    }
    // Synthetic models with f64 weights (format version 2): every simple layer kind and a
    // Cholesky base, with weights that f32 cannot hold.
    for (file, mut parts) in [
        ("misc_layers_f64.flow", misc_layers()),
        ("iaf_cholesky_f64.flow", iaf_cholesky()),
    ] {
        parts.weight_type = WeightType::F64;
        files.push((file, parts.to_bytes(meta)));
    }
    let (golden, edited) = golden_models();
    files.push(("golden.flow", golden));
    files.push(("golden_edited.flow", edited));
    // Peer-trained models.
    for (file, fixture) in [
        ("nflows_maf.flow", "nflows_maf_banana4"),
        ("zuko_nsf_cond.flow", "zuko_nsf_conditional"),
    ] {
        files.push((file, imported(fixture).to_bytes(meta)));
    }
    let good = tiny().to_bytes(meta);
    let w0 = weights_at(&good);

    // Header-level damage.
    files.push(("bad/truncated.flow", good[..good.len() - 10].to_vec()));
    let mut b = good.clone();
    b[..4].copy_from_slice(b"NFLX");
    files.push(("bad/bad_magic.flow", b));
    let mut b = good.clone();
    b[4..6].copy_from_slice(&7u16.to_le_bytes());
    files.push(("bad/bad_version.flow", b));
    let mut b = good.clone();
    b[w0 + 1] ^= 0x40;
    files.push(("bad/checksum.flow", b));
    // A description that does not decode, under a valid checksum.
    let mut b = good.clone();
    for v in &mut b[HEADER_LEN..HEADER_LEN + 6] {
        *v = 0xFF;
    }
    fix_crc(&mut b);
    files.push(("bad/corrupt_desc.flow", b));
    // A NaN and an infinity among the weights, under a valid checksum.
    let mut b = good.clone();
    b[w0 + 4 * 3..w0 + 4 * 4].copy_from_slice(&f32::NAN.to_le_bytes());
    b[w0 + 4 * 7..w0 + 4 * 8].copy_from_slice(&f32::INFINITY.to_le_bytes());
    fix_crc(&mut b);
    files.push(("bad/nan_weight.flow", b));

    // Description-level problems.
    let mut rng = ChaCha8Rng::seed_from_u64(200);
    // D = 2, C = 0: the network must map 2 inputs to 4 outputs; this one takes 3.
    let p = one_layer(
        2,
        0,
        &[3, 4, 4],
        AffineScale::SoftclipExp { bound: 6.9 },
        &mut rng,
    );
    files.push(("bad/bad_dims.flow", p.to_bytes(meta)));
    let p = one_layer(
        2,
        0,
        &[2, 4, 4],
        AffineScale::SoftclipExp { bound: 100.0 },
        &mut rng,
    );
    files.push(("bad/bad_option.flow", p.to_bytes(meta)));
    // Several problems at once: all must be reported.
    let mut p = one_layer(
        2,
        0,
        &[2, 4, 4],
        AffineScale::SoftclipExp { bound: 6.9 },
        &mut rng,
    );
    let w = vec![0.0; mlp::n_params(&[3, 4])];
    push_ar(&mut p, &[3, 4], &w, AffineScale::SoftplusEps { eps: -1.0 });
    // ActNorm needs 2·D = 4 weights; give it 3.
    let params = p.push_weights(&[0.0; 3]);
    p.push_layer(LayerDesc::ActNorm { params });
    p.weights[0] = f64::NAN;
    files.push(("bad/many_problems.flow", p.to_bytes(meta)));
    files
}

#[test]
fn checked_in_models_are_reproducible() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/models");
    let bless = std::env::var_os("FLOW_MACROS_BLESS").is_some();
    let mut stale = Vec::new();
    for (name, bytes) in all() {
        let path = dir.join(name);
        if bless {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        } else if std::fs::read(&path).ok().as_deref() != Some(&bytes[..]) {
            stale.push(name);
        }
    }
    assert!(
        stale.is_empty(),
        "these models differ from the generator's output: {stale:?}; rerun with FLOW_MACROS_BLESS=1 and review"
    );
}
