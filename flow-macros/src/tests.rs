//! Unit tests: the expansion snapshot and the checker's messages.
//!
//! The snapshot: `expand` runs on `proc_macro2` tokens, so the whole macro runs here without a
//! compiler. Its pretty-printed output for two tiny models is compared with
//! `tests/expand/*.expanded.rs`, so every change to the generated code shows up in review.
//! `FLOW_MACROS_BLESS=1 cargo test -p flow-macros --lib` rewrites the snapshots.

use std::path::Path;

use flow_core::model::file::WeightType;
use quote::quote;

use crate::check::check_bytes;
use crate::parse::{Args, Precision};

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn snapshot(attr: proc_macro2::TokenStream, item: proc_macro2::TokenStream, file: &str) {
    let out = super::expand(attr, item).unwrap_or_else(|e| panic!("expansion failed: {e}"));
    let parsed: syn::File = syn::parse2(out).expect("the expansion parses as a file");
    let pretty = format!(
        "// Expansion snapshot (see flow-macros/src/tests.rs); FLOW_MACROS_BLESS=1 rewrites it.\n{}",
        prettyplease::unparse(&parsed)
    );
    let path = manifest_dir().join("tests/expand").join(file);
    if std::env::var_os("FLOW_MACROS_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &pretty).unwrap();
        return;
    }
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    if old != pretty {
        let first = old
            .lines()
            .zip(pretty.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(old.lines().count().min(pretty.lines().count()));
        panic!(
            "the expansion differs from {} from line {}:\n  old: {:?}\n  new: {:?}\nreview, then rerun with FLOW_MACROS_BLESS=1",
            path.display(),
            first + 1,
            old.lines().nth(first).unwrap_or(""),
            pretty.lines().nth(first).unwrap_or("")
        );
    }
}

#[test]
fn expansion_of_tiny_model_matches_snapshot() {
    snapshot(
        quote!("tests/models/tiny.flow"),
        quote!(
            /// A tiny MAF.
            pub struct Tiny;
        ),
        "tiny.expanded.rs",
    );
}

#[test]
fn expansion_of_tiny_conditional_f64_model_matches_snapshot() {
    snapshot(
        quote!("tests/models/tiny_cond.flow", precision = "f64"),
        quote!(
            pub(crate) struct TinyCond;
        ),
        "tiny_cond_f64.expanded.rs",
    );
}

fn problems(file: &str) -> Vec<String> {
    let bytes = std::fs::read(manifest_dir().join("tests/models").join(file)).unwrap();
    match check_bytes(&bytes, Precision::F32) {
        Ok(_) => Vec::new(),
        Err(p) => p,
    }
}

#[test]
fn every_broken_fixture_is_rejected_with_its_reason() {
    let cases = [
        ("bad/truncated.flow", "truncated model file"),
        ("bad/bad_magic.flow", "bad magic"),
        ("bad/bad_version.flow", "unsupported format version 7"),
        ("bad/checksum.flow", "checksum mismatch"),
        ("bad/corrupt_desc.flow", "corrupt model description"),
        (
            "bad/nan_weight.flow",
            "2 weights are NaN or infinite: #3 (layer 0) = NaN, #7 (layer 0) = inf",
        ),
        ("bad/bad_dims.flow", "layer 0: dimensions do not chain"),
        ("bad/bad_option.flow", "layer 0: unsupported option"),
    ];
    for (file, reason) in cases {
        let p = problems(file);
        assert_eq!(p.len(), 1, "{file}: {p:?}");
        assert!(p[0].contains(reason), "{file}: {:?} lacks {reason:?}", p[0]);
    }
}

#[test]
fn all_problems_are_reported_together() {
    let p = problems("bad/many_problems.flow");
    let expected = [
        "1 weight is NaN or infinite: #0 (layer 0) = NaN",
        "layer 1: dimensions do not chain: the network's sizes are [3, 4], but with D = 2 and C = 0",
        "layer 1: unsupported option: scale SoftplusEps { eps: -1.0 }",
        "layer 2: parameters out of range or wrong length",
    ];
    assert_eq!(p.len(), expected.len(), "{p:#?}");
    for (got, want) in p.iter().zip(expected) {
        assert!(got.starts_with(want), "{got:?} does not start with {want:?}");
    }
}

#[test]
fn good_models_pass_and_are_measured() {
    for file in [
        "tiny.flow",
        "tiny_cond.flow",
        "maf_diag.flow",
        "iaf_cholesky.flow",
        "cond_mixed.flow",
        "gaussian.flow",
        "moons_maf.flow",
    ] {
        let bytes = std::fs::read(manifest_dir().join("tests/models").join(file)).unwrap();
        let m = check_bytes(&bytes, Precision::F32).unwrap_or_else(|p| panic!("{file}: {p:?}"));
        assert!(m.scratch >= 3 * m.desc.dim as usize, "{file}");
        assert_eq!(m.n_params, m.weights.len(), "{file}: every weight is a parameter");
        assert_eq!(m.weight_type, WeightType::F32, "{file}");
    }
}

/// A model fitted by reverse KL (`flow_train::fit_target`, as `flow-train fit-target` writes it:
/// RealNVP over a standard normal, checkerboard masks for φ⁴) passes the macro's checks, golden
/// vectors included.
#[test]
fn reverse_kl_models_bake() {
    use flow_train::reverse_kl::{fit_target, TargetConfig};
    use flow_train::target::Phi4;
    let target = Phi4 {
        side: 4,
        m2: -4.0,
        lambda: 8.0,
    };
    let mut cfg = TargetConfig {
        steps: 3,
        threads: 1,
        eval_samples: 10,
        ..TargetConfig::default()
    };
    cfg.arch.transforms = 2;
    cfg.arch.hidden = vec![8];
    cfg.arch.checkerboard = 4;
    let out = fit_target(&target, &cfg).unwrap();
    let parts = &out.model.parts;
    let data = flow_train::Dataset {
        columns: (0..16).map(|i| format!("phi{i}")).collect(),
        x: vec![0.1; 16 * 30],
        ..Default::default()
    };
    let fit_cfg = flow_train::FitConfig {
        arch: cfg.arch.clone(),
        ..Default::default()
    };
    let meta = flow_train::io::Meta {
        golden: Some(flow_train::golden::golden_for(parts, &data, &fit_cfg)),
        ..Default::default()
    };
    let bytes = parts.to_bytes(&serde_json::to_string(&meta).unwrap());
    let m = check_bytes(&bytes, Precision::F32).unwrap_or_else(|p| panic!("{p:?}"));
    assert_eq!(m.desc.dim, 16);
    assert_eq!(m.n_params, parts.weights.len());
    let golden = crate::golden::read(&bytes, 16, m.desc.context_dim as usize)
        .unwrap()
        .expect("golden vectors");
    assert!(!golden.points.is_empty());
    // The expansion (with its golden test) is generated and parses.
    let path = std::env::temp_dir().join(format!("flow-macros-rkl-{}.flow", std::process::id()));
    std::fs::write(&path, &bytes).unwrap();
    let lit = path.to_string_lossy().into_owned();
    let out = super::expand(
        quote::quote!(#lit),
        quote::quote!(
            struct Phi4Flow;
        ),
    );
    std::fs::remove_file(&path).unwrap();
    let out = out.unwrap_or_else(|e| panic!("expansion failed: {e}"));
    let text = out.to_string();
    assert!(
        syn::parse2::<syn::File>(out).is_ok() && text.contains("golden"),
        "{text:.200}"
    );
}

#[test]
fn f64_weight_files_pass_and_bad_f64_weights_are_named() {
    let bytes = std::fs::read(manifest_dir().join("tests/models/iaf_cholesky_f64.flow")).unwrap();
    let m = check_bytes(&bytes, Precision::F32).unwrap_or_else(|p| panic!("{p:?}"));
    assert_eq!(m.weight_type, WeightType::F64);
    assert_eq!(m.n_params, m.weights.len());
    assert!(
        m.weights.iter().any(|&w| w as f32 as f64 != w),
        "weights that f32 cannot hold"
    );
    // A weight beyond the f32 range: finite in f64, infinite when f32 evaluation reads it.
    let sec = flow_core::model::file::split(&bytes).unwrap();
    let w0 = bytes.len() - sec.weights.len() - sec.ints.len();
    let mut b = bytes.clone();
    b[w0 + 8..w0 + 16].copy_from_slice(&1e300f64.to_le_bytes());
    let crc = flow_core::model::file::crc32(&b[16..]);
    b[12..16].copy_from_slice(&crc.to_le_bytes());
    let p = check_bytes(&b, Precision::F64).unwrap_err();
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("1 weight is NaN, infinite or beyond the f32 range: #1 (layer 0) = 1e300"),
        "{p:?}"
    );
}

#[test]
fn garbage_never_panics() {
    // Every prefix and every single-byte corruption of a good file is an error or a model, never a
    // panic (the checker runs inside the compiler).
    for file in ["tiny_cond.flow", "misc_layers_f64.flow"] {
        garbage_of(file);
    }
}

fn garbage_of(file: &str) {
    let good = std::fs::read(manifest_dir().join("tests/models").join(file)).unwrap();
    for n in 0..good.len() {
        let _ = check_bytes(&good[..n], Precision::F64);
    }
    for i in 0..good.len() {
        for v in [0x00, 0xFF, good[i] ^ 0x01, good[i] ^ 0x80] {
            let mut b = good.clone();
            b[i] = v;
            // With a fixed checksum, so that the description and weights are really read.
            let crc = flow_core::model::file::crc32(&b[16..]);
            if i >= 16 {
                b[12..16].copy_from_slice(&crc.to_le_bytes());
            }
            let _ = check_bytes(&b, Precision::F32);
        }
    }
}

fn args(tokens: proc_macro2::TokenStream) -> syn::Result<Args> {
    syn::parse2(tokens)
}

#[test]
fn arguments_parse_and_bad_ones_are_all_reported() {
    let a = args(quote!("m.flow")).unwrap();
    assert_eq!(
        (a.path.value(), a.precision),
        ("m.flow".to_string(), Precision::F32)
    );
    let a = args(quote!("m.flow", precision = "f64",)).unwrap();
    assert_eq!(a.precision, Precision::F64);
    let e = args(quote!("m.flow", precison = "f64", precision = "f16"))
        .err()
        .unwrap();
    let msgs: Vec<String> = e.into_iter().map(|e| e.to_string()).collect();
    assert_eq!(
        msgs,
        [
            "unknown option `precison` (expected `precision`, `verify`)",
            "unsupported precision \"f16\" (expected \"f32\" or \"f64\")"
        ]
    );
    assert!(args(quote!()).is_err());
    assert!(args(quote!(precision = "f64")).is_err());
    let e = args(quote!("m.flow", precision = "f32", precision = "f64"))
        .err()
        .unwrap();
    assert_eq!(e.to_string(), "`precision` is given twice");
}

#[test]
fn items_other_than_plain_structs_are_rejected() {
    assert!(crate::parse::item(quote!(
        pub struct A;
    ))
    .is_ok());
    assert!(crate::parse::item(quote!(
        struct A {
            x: u8,
        }
    ))
    .is_ok());
    assert!(crate::parse::item(quote!(
        enum A {
            X,
        }
    ))
    .is_err());
    assert!(crate::parse::item(quote!(
        struct A<T>(T);
    ))
    .is_err());
    assert!(crate::parse::item(quote!(
        fn a() {}
    ))
    .is_err());
}

#[test]
fn missing_file_is_reported_on_the_literal() {
    let e = super::expand(
        quote!("tests/models/does_not_exist.flow"),
        quote!(
            struct A;
        ),
    )
    .err()
    .unwrap();
    assert_eq!(
        e.to_string(),
        "tests/models/does_not_exist.flow: model file not found (relative paths start at the crate's CARGO_MANIFEST_DIR)"
    );
}
