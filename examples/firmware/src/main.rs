//! A normalizing flow evaluated on a Cortex-M4F (run under `qemu-system-arm -M mps2-an386`).
//!
//! Prints every result as the hex bits of its f32 so the host test can compare bit for bit, then
//! exits through semihosting with status 0. A panic exits with status 1 (panic-semihosting).
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
use flow_core::rng::XorShift64Star;
use panic_semihosting as _;

/// The model, baked at compile time: weights in flash, sizes as constants.
#[flow_macros::flow("model.flow")]
pub struct Model;

/// Fixed inputs (data space) and base noise; the host test uses the same values.
const POINTS: [[f32; 2]; 4] = [[0.0, 0.5], [1.0, -0.25], [-1.5, 2.0], [7.5, -12.0]];
const NOISE: [[f32; 2]; 2] = [[0.3, -1.1], [-2.0, 0.7]];

/// Called around measured operations; `flow-train/src/footprint/icount.c` counts executed instructions at its
/// address. Never inlined, and its body is unique so the linker cannot fold it.
#[inline(never)]
#[no_mangle]
pub extern "C" fn flow_marker() {
    cortex_m::asm::nop();
}

#[entry]
fn main() -> ! {
    // Measured section (see flow-train/src/footprint/icount.c): empty pair, then log_prob, sample, grad_log_prob.
    flow_marker();
    flow_marker();
    let lp0 = Model::log_prob(&POINTS[0]);
    flow_marker();
    flow_marker();
    let s0 = Model::sample(&NOISE[0]);
    flow_marker();
    flow_marker();
    let g0 = Model::grad_log_prob(&POINTS[0]);
    flow_marker();
    core::hint::black_box((lp0, s0, g0));
    for (i, x) in POINTS.iter().enumerate() {
        let lp = Model::log_prob(x);
        hprintln!("log_prob {} {:08x}", i, lp.to_bits());
        let (z, ldj) = Model::inverse(x);
        hprintln!("inverse {} {:08x} {:08x} {:08x}", i, z[0].to_bits(), z[1].to_bits(), ldj.to_bits());
        let g = Model::grad_log_prob(x);
        hprintln!("grad_log_prob {} {:08x} {:08x}", i, g[0].to_bits(), g[1].to_bits());
    }
    for (i, e) in NOISE.iter().enumerate() {
        let x = Model::sample(e);
        hprintln!("sample {} {:08x} {:08x}", i, x[0].to_bits(), x[1].to_bits());
    }
    let mut rng = XorShift64Star::new(0x1234_5678_9abc_def1);
    for i in 0..2 {
        let x = Model::sample_with(&mut rng);
        hprintln!("sample_with {} {:08x} {:08x}", i, x[0].to_bits(), x[1].to_bits());
    }
    // The model's golden vectors (computed in f64 on the host when it was written), checked on the
    // target with the baked methods.
    let e = Model::golden_errors();
    if e.iter().all(|&v| v <= Model::GOLDEN_TOLERANCE) {
        hprintln!("golden ok");
    } else {
        hprintln!("golden FAILED");
        debug::exit(debug::EXIT_FAILURE);
    }
    hprintln!("done");
    debug::exit(debug::EXIT_SUCCESS);
    loop {}
}
