//! The generated golden-vector test: every baked type whose model carries golden vectors gets a
//! `#[cfg(test)]` test in the crate that bakes it (`verify = false` turns it off), and
//! `golden_errors()` to run the same check anywhere (e.g. on the target).

use flow_core::baked::BakedFlow;
use flow_macros::flow;

/// Generates `__flow_golden_vectors_of_Golden`, run by this test binary.
#[flow("tests/models/golden.flow")]
struct Golden;

#[flow("tests/models/golden.flow", precision = "f64")]
struct Golden64;

/// Weights edited after the golden vectors were computed: its generated test would fail, so it is
/// turned off here and the failure is asserted below.
#[flow("tests/models/golden_edited.flow", verify = false)]
struct Edited;

// Every family through fit → file → macro, and imports through import → file → macro. Each one
// gets its generated test (run by this binary) and is checked here in f32 and f64 as well.
#[flow("tests/models/golden_maf.flow")]
struct GMaf;
#[flow("tests/models/golden_iaf.flow")]
struct GIaf;
#[flow("tests/models/golden_realnvp.flow")]
struct GRealnvp;
#[flow("tests/models/golden_nsf_coupling.flow")]
struct GNsfCoupling;
#[flow("tests/models/golden_planar.flow")]
struct GPlanar;
#[flow("tests/models/golden_radial.flow")]
struct GRadial;
#[flow("tests/models/golden_nflows_rq.flow")]
struct GNflowsRq;
#[flow("tests/models/golden_flowjax_maf.flow")]
struct GFlowjaxMaf;
#[flow("tests/models/golden_maf.flow", precision = "f64")]
struct GMaf64;
#[flow("tests/models/golden_realnvp.flow", precision = "f64")]
struct GRealnvp64;
#[flow("tests/models/golden_nsf_coupling.flow", precision = "f64")]
struct GNsfCoupling64;
#[flow("tests/models/golden_planar.flow", precision = "f64")]
struct GPlanar64;
#[flow("tests/models/golden_radial.flow", precision = "f64")]
struct GRadial64;
#[flow("tests/models/golden_nflows_rq.flow", precision = "f64")]
struct GNflowsRq64;
#[flow("tests/models/golden_flowjax_maf.flow", precision = "f64")]
struct GFlowjaxMaf64;
#[flow("tests/models/golden_iaf.flow", precision = "f64")]
struct GIaf64;
#[flow("tests/models/golden_maf_gmm.flow")]
struct GMafGmm;
#[flow("tests/models/golden_maf_gmm.flow", precision = "f64")]
struct GMafGmm64;
#[flow("tests/models/golden_maf_t.flow")]
struct GMafT;
#[flow("tests/models/golden_maf_t.flow", precision = "f64")]
struct GMafT64;

#[test]
fn golden_vectors_survive_fit_and_import_into_baked_code_for_every_kind() {
    let all: [(&str, [f64; 4], f64); 20] = [
        (
            "maf, Student-t base",
            GMafT::golden_errors(),
            GMafT::GOLDEN_TOLERANCE,
        ),
        (
            "maf, Student-t base f64",
            GMafT64::golden_errors(),
            GMafT64::GOLDEN_TOLERANCE,
        ),
        (
            "maf, mixture base",
            GMafGmm::golden_errors(),
            GMafGmm::GOLDEN_TOLERANCE,
        ),
        (
            "maf, mixture base f64",
            GMafGmm64::golden_errors(),
            GMafGmm64::GOLDEN_TOLERANCE,
        ),
        ("maf", GMaf::golden_errors(), GMaf::GOLDEN_TOLERANCE),
        ("iaf", GIaf::golden_errors(), GIaf::GOLDEN_TOLERANCE),
        ("realnvp", GRealnvp::golden_errors(), GRealnvp::GOLDEN_TOLERANCE),
        (
            "nsf-coupling",
            GNsfCoupling::golden_errors(),
            GNsfCoupling::GOLDEN_TOLERANCE,
        ),
        ("planar", GPlanar::golden_errors(), GPlanar::GOLDEN_TOLERANCE),
        ("radial", GRadial::golden_errors(), GRadial::GOLDEN_TOLERANCE),
        (
            "nflows rq coupling (import)",
            GNflowsRq::golden_errors(),
            GNflowsRq::GOLDEN_TOLERANCE,
        ),
        (
            "flowjax maf (import)",
            GFlowjaxMaf::golden_errors(),
            GFlowjaxMaf::GOLDEN_TOLERANCE,
        ),
        ("maf f64", GMaf64::golden_errors(), GMaf64::GOLDEN_TOLERANCE),
        ("iaf f64", GIaf64::golden_errors(), GIaf64::GOLDEN_TOLERANCE),
        (
            "realnvp f64",
            GRealnvp64::golden_errors(),
            GRealnvp64::GOLDEN_TOLERANCE,
        ),
        (
            "nsf-coupling f64",
            GNsfCoupling64::golden_errors(),
            GNsfCoupling64::GOLDEN_TOLERANCE,
        ),
        (
            "planar f64",
            GPlanar64::golden_errors(),
            GPlanar64::GOLDEN_TOLERANCE,
        ),
        (
            "radial f64",
            GRadial64::golden_errors(),
            GRadial64::GOLDEN_TOLERANCE,
        ),
        (
            "nflows rq f64",
            GNflowsRq64::golden_errors(),
            GNflowsRq64::GOLDEN_TOLERANCE,
        ),
        (
            "flowjax maf f64",
            GFlowjaxMaf64::golden_errors(),
            GFlowjaxMaf64::GOLDEN_TOLERANCE,
        ),
    ];
    for (name, e, tol) in all {
        eprintln!("{name}: golden errors {e:?}");
        assert!(e.iter().all(|&v| v <= tol), "{name}: {e:?} > {tol}");
    }
}

// Every peer fixture imported by `flow-train import` (f64 weights for FlowJAX's float64
// parameters, f32 for torch's float32 ones) and baked in f64.
#[flow("tests/models/golden_zuko_maf.flow", precision = "f64")]
struct LibZukoMaf;
#[flow("tests/models/golden_zuko_nsf.flow", precision = "f64")]
struct LibZukoNsf;
#[flow("tests/models/golden_zuko_nsf_cond.flow", precision = "f64")]
struct LibZukoNsfCond;
#[flow("tests/models/golden_zuko_realnvp.flow", precision = "f64")]
struct LibZukoRealnvp;
#[flow("tests/models/golden_zuko_nice.flow", precision = "f64")]
struct LibZukoNice;
#[flow("tests/models/golden_nflows_maf.flow", precision = "f64")]
struct LibNflowsMaf;
#[flow("tests/models/golden_nflows_rq.flow", precision = "f64")]
struct LibNflowsRq;
#[flow("tests/models/golden_flowjax_maf64.flow", precision = "f64")]
struct LibFlowjaxMaf;
#[flow("tests/models/golden_flowjax_rq64.flow", precision = "f64")]
struct LibFlowjaxRq;

/// The largest errors of a baked f64 flow against the source library's own float64 answers kept
/// in the model's golden vectors: log p relative to `max(1, |ref|)` over every probe point (typical,
/// spline bounds ±1e-4, far out), and base noise → sample, absolute.
fn against_library<F: BakedFlow<f64>>(flow: &F, file: &str) -> (f64, f64) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/models")
        .join(file);
    let (_, meta) = flow_train::io::read_model(&path).unwrap();
    let g = meta.golden.expect("golden vectors");
    let (lib_lp, lib_x) = (g.source_log_prob.unwrap(), g.source_sample.unwrap());
    assert_eq!(lib_lp.len(), g.points.len());
    let mut lp_err: f64 = 0.0;
    for ((x, c), want) in g.points.iter().zip(&g.context).zip(&lib_lp) {
        let lp = flow.log_prob(x, c).unwrap();
        lp_err = lp_err.max((lp - want).abs() / want.abs().max(1.0));
    }
    let mut sample_err: f64 = 0.0;
    for ((eps, c), want) in g.noise.iter().zip(&g.noise_context).zip(&lib_x) {
        let mut x = vec![0.0; eps.len()];
        flow.sample(eps, c, &mut x).unwrap();
        for (a, b) in x.iter().zip(want) {
            sample_err = sample_err.max((a - b).abs());
        }
    }
    (lp_err, sample_err)
}

/// Asserts the criteria for one baked import: f64 log p within 1e-9 relative of the
/// library's float64 on every probe point, and base noise → sample within 1e-6.
fn assert_matches_library<F: BakedFlow<f64>>(name: &str, flow: &F, file: &str) {
    let (lp, sample) = against_library(flow, file);
    eprintln!("{name}: baked f64 vs library f64: log p {lp:.2e} (relative), sample {sample:.2e}");
    assert!(lp <= 1e-9, "{name}: log p {lp:e}");
    assert!(sample <= 1e-6, "{name}: sample {sample:e}");
}

#[test]
fn every_imported_fixture_baked_in_f64_matches_its_library_within_1e_9() {
    assert_matches_library("zuko MAF", &LibZukoMaf, "golden_zuko_maf.flow");
    assert_matches_library("zuko NSF", &LibZukoNsf, "golden_zuko_nsf.flow");
    assert_matches_library("zuko NSF cond.", &LibZukoNsfCond, "golden_zuko_nsf_cond.flow");
    assert_matches_library("zuko RealNVP", &LibZukoRealnvp, "golden_zuko_realnvp.flow");
    assert_matches_library(
        "zuko NICE cond. (random masks)",
        &LibZukoNice,
        "golden_zuko_nice.flow",
    );
    assert_matches_library("nflows MAF", &LibNflowsMaf, "golden_nflows_maf.flow");
    assert_matches_library("nflows RQ coupling", &LibNflowsRq, "golden_nflows_rq.flow");
    assert_matches_library(
        "FlowJAX MAF (f64 w.)",
        &LibFlowjaxMaf,
        "golden_flowjax_maf64.flow",
    );
    assert_matches_library("FlowJAX RQ (f64 w.)", &LibFlowjaxRq, "golden_flowjax_rq64.flow");
    assert_eq!(LibFlowjaxMaf::WEIGHT_BYTES, 8 * LibFlowjaxMaf::PARAMS);
    assert_eq!(LibZukoMaf::WEIGHT_BYTES, 4 * LibZukoMaf::PARAMS);
    // The same FlowJAX MAF with its parameters rounded to f32 is ~4e-7 off: what f64 weights fix.
    let (rounded, _) = against_library(&GFlowjaxMaf64, "golden_flowjax_maf.flow");
    eprintln!("FlowJAX MAF (f32 weights): baked f64 vs library f64: log p {rounded:.2e}");
    assert!(rounded > 1e-8, "{rounded:e}");
}

#[test]
fn golden_vectors_pass_in_f32_and_f64() {
    let e32 = Golden::golden_errors();
    let e64 = Golden64::golden_errors();
    eprintln!(
        "golden errors f32 {e32:?} (tol {}), f64 {e64:?} (tol {})",
        Golden::GOLDEN_TOLERANCE,
        Golden64::GOLDEN_TOLERANCE
    );
    assert!(e32.iter().all(|&v| v <= Golden::GOLDEN_TOLERANCE));
    assert!(e64.iter().all(|&v| v <= Golden64::GOLDEN_TOLERANCE));
    // The generated tests are ordinary functions of this crate: call them too.
    __flow_golden_vectors_of_Golden();
    __flow_golden_vectors_of_Golden64();
}

#[test]
fn a_model_edited_after_its_golden_vectors_fails_the_check() {
    let e = Edited::golden_errors();
    assert!(e.iter().any(|&v| v > Edited::GOLDEN_TOLERANCE), "{e:?}");
    assert!(std::panic::catch_unwind(|| {
        let e = Edited::golden_errors();
        assert!(e.iter().all(|&v| v <= Edited::GOLDEN_TOLERANCE));
    })
    .is_err());
}
