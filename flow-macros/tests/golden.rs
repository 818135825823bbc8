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
