//! The generated golden-vector test: every baked type whose model carries golden vectors gets a
//! `#[cfg(test)]` test in the crate that bakes it (`verify = false` turns it off), and
//! `golden_errors()` to run the same check anywhere (e.g. on the target).

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

#[test]
fn golden_vectors_survive_fit_and_import_into_baked_code_for_every_kind() {
    let all: [(&str, [f64; 4], f64); 16] = [
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
