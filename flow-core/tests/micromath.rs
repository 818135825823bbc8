//! Error of the `micromath` feature's f32 math against f64 (run with `--features micromath`).
//!
//! Measured (documented in `real.rs`): micromath's exp is within 2.4e-3 relative on [−20, 20]
//! (libm: 1 ULP). Its ln (0.12 absolute) and sqrt (6%) were too coarse, so the feature keeps libm
//! for those; this test checks both facts.
#![cfg(feature = "micromath")]

use flow_core::Real;

fn worst(
    f32f: impl Fn(f32) -> f32,
    f64f: impl Fn(f64) -> f64,
    xs: impl Iterator<Item = f64>,
    abs: bool,
) -> f64 {
    xs.map(|x| {
        let a = f32f(x as f32) as f64;
        let b = f64f(x);
        if abs {
            (a - b).abs() / b.abs().max(1.0)
        } else {
            ((a - b) / b).abs()
        }
    })
    .fold(0.0, f64::max)
}

#[test]
fn micromath_error_is_within_its_documented_bounds() {
    let grid = |lo: f64, hi: f64| (0..=20_000).map(move |i| lo + (hi - lo) * i as f64 / 20_000.0);
    let exp = worst(Real::exp, f64::exp, grid(-20.0, 20.0), false);
    let ln = worst(
        Real::ln,
        f64::ln,
        (0..=20_000).map(|i| 10f64.powf(-6.0 + 12.0 * i as f64 / 20_000.0)),
        true,
    );
    let sqrt = worst(Real::sqrt, f64::sqrt, grid(1e-6, 1e6), false);
    eprintln!("micromath worst errors: exp {exp:.2e}, ln {ln:.2e}, sqrt {sqrt:.2e}");
    assert!(exp < 3e-3, "exp {exp}");
    // ln and sqrt stay on libm: f32 rounding only.
    assert!(ln < 1e-6 && sqrt < 1e-6, "ln {ln} sqrt {sqrt}");
    // And they are approximations, not libm: the feature is really on.
    assert!(exp > 1e-6, "micromath feature does not seem active");
}
