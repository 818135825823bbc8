//! Bakes test models of every layer kind with `#[flow_macros::flow]` into a `#![no_std]`
//! `#![no_main]` binary for a Cortex-M4F (`thumbv7em-none-eabihf`) and calls every generated
//! method. The build proves that the generated code needs neither `std` nor an allocator, and,
//! because the panic handler cannot be linked, that no panic path survives optimization
//! (see README.md).
#![no_std]
#![no_main]

use core::hint::black_box;
use core::panic::PanicInfo;
use core::ptr::{addr_of_mut, write_volatile};

use flow_core::baked::BakedFlow;
use flow_core::rng::XorShift64Star;

/// `flow-train fit` defaults for D = 2: MAF, 5 transforms, 64×64 ReLU.
#[flow_macros::flow("../../flow-macros/tests/models/moons_maf.flow")]
pub struct Moons;

/// D = 2, C = 3: MAF and IAF layers, diagonal-normal base.
#[flow_macros::flow("../../flow-macros/tests/models/cond_mixed.flow")]
pub struct Conditional;

/// D = 3: IAF layers, Cholesky base, evaluated in f64.
#[flow_macros::flow("../../flow-macros/tests/models/iaf_cholesky.flow", precision = "f64")]
pub struct Cholesky64;

/// D = 3, C = 1: standardization (elementwise affine) and RealNVP affine couplings.
#[flow_macros::flow("../../flow-macros/tests/models/realnvp_cond.flow")]
pub struct RealNvp;

/// D = 3: autoregressive rational-quadratic splines (zuko's parameterization).
#[flow_macros::flow("../../flow-macros/tests/models/nsf.flow")]
pub struct Nsf;

/// D = 2, C = 2: spline couplings, evaluated in f64.
#[flow_macros::flow("../../flow-macros/tests/models/nsf_coupling_cond.flow", precision = "f64")]
pub struct NsfCoupling64;

/// Spline couplings in nflows' parameterization (imported), with golden vectors.
#[flow_macros::flow("../../flow-macros/tests/models/golden_nflows_rq.flow")]
pub struct NflowsRq;

/// nflows' residual MADE with permutations (imported).
#[flow_macros::flow("../../flow-macros/tests/models/nflows_maf.flow")]
pub struct NflowsMaf;

/// D = 2: planar layers.
#[flow_macros::flow("../../flow-macros/tests/models/planar.flow")]
pub struct Planar;

/// D = 2: radial layers.
#[flow_macros::flow("../../flow-macros/tests/models/radial.flow")]
pub struct Radial;

/// D = 3: ActNorm, batch norm, LU linear, permutation, tanh and atanh around a MAF layer.
#[flow_macros::flow("../../flow-macros/tests/models/misc_layers.flow")]
pub struct Misc;

/// D = 3: MAF layers and a 4-component Gaussian-mixture base.
#[flow_macros::flow("../../flow-macros/tests/models/maf_gmm.flow")]
pub struct MafGmm;

/// D = 3: MAF layers and a Student-t base.
#[flow_macros::flow("../../flow-macros/tests/models/maf_t.flow")]
pub struct MafT;

/// D = 3: no layers, Cholesky base.
#[flow_macros::flow("../../flow-macros/tests/models/gaussian.flow")]
pub struct Gaussian;

/// Results go here (volatile writes) so that nothing is optimized away.
static mut SINK: f64 = 0.0;

/// Parameter gradients of `flow().grad` (the largest model has fewer parameters).
static mut GRADS: [f32; 32768] = [0.0; 32768];
static mut GRADS64: [f64; 4096] = [0.0; 4096];

/// Writes `v` to [`SINK`].
fn put(v: impl Into<f64>) {
    // SAFETY: single-threaded bare-metal program; nothing else accesses `SINK`.
    unsafe { write_volatile(addr_of_mut!(SINK), v.into()) }
}

/// Calls every generated method of the baked model `$t` in precision `$s` (with its context when
/// `ctx` is given): the inherent array methods, the `BakedFlow` slice methods, and parameter
/// gradients through `flow()` into `$grads`.
macro_rules! exercise {
    ($t:ident, $s:ty, $grads:ident $(, $ctx:ident)?) => {{
        let x: [$s; $t::DIM] = black_box([0.25; $t::DIM]);
        let context: [$s; $t::CONTEXT_DIM] = black_box([0.1; $t::CONTEXT_DIM]);
        $(let $ctx = context;)?
        put($t::log_prob(&x $(, &$ctx)?));
        put($t::grad_log_prob(&x $(, &$ctx)?)[0]);
        let (z, ldj) = $t::inverse(&x $(, &$ctx)?);
        put(z[0] + ldj);
        let (x2, ldj2) = $t::forward(&z $(, &$ctx)?);
        put(x2[0] + ldj2);
        put($t::sample(&x $(, &$ctx)?)[0]);
        let mut rng = XorShift64Star::new(black_box(0x9E37_79B9_7F4A_7C15));
        put($t::sample_with(&mut rng $(, &$ctx)?)[0]);
        let xs: [[$s; $t::DIM]; 3] = black_box([[0.5; $t::DIM]; 3]);
        let mut out = [0.0; 3];
        $t::log_prob_batch(&xs $(, &$ctx)?, &mut out);
        put(out[2]);
        let mut ys = [[0.0; $t::DIM]; 3];
        $t::sample_batch(&xs $(, &$ctx)?, &mut ys);
        put(ys[2][0]);
        $t::grad_log_prob_batch(&xs $(, &$ctx)?, &mut ys, &mut out);
        put(ys[1][0] + out[1]);

        let c: &[$s] = &context;
        let mut v = [0.0; $t::DIM];
        let flow = &$t;
        let lp = BakedFlow::<$s>::log_prob(flow, &x, c).unwrap_or(0.0);
        let g = BakedFlow::<$s>::grad_log_prob(flow, &x, c, &mut v).unwrap_or(0.0);
        let l1 = BakedFlow::<$s>::inverse(flow, &x, c, &mut v).unwrap_or(0.0);
        let l2 = BakedFlow::<$s>::forward(flow, &x, c, &mut v).unwrap_or(0.0);
        put(lp + g + l1 + l2 + v[0]);
        let _ = BakedFlow::<$s>::sample(flow, &x, c, &mut v);
        let _ = BakedFlow::<$s>::sample_with(flow, &mut rng, c, &mut v);
        let _ = BakedFlow::<$s>::log_prob_batch(flow, xs.as_flattened(), c, &mut out);
        let _ = BakedFlow::<$s>::sample_batch(flow, xs.as_flattened(), c, ys.as_flattened_mut());
        let _ = BakedFlow::<$s>::grad_log_prob_batch(flow, xs.as_flattened(), c, ys.as_flattened_mut(), &mut out);
        put(v[0] + out[1]);

        let mut scratch = [0.0; $t::SCRATCH_BYTES / core::mem::size_of::<$s>()];
        // SAFETY: single-threaded; this is the only reference to the buffer, and it lives until
        // the end of this block.
        let grads = unsafe { &mut *addr_of_mut!($grads) };
        let grads = &mut grads[..$t::PARAMS];
        put(flow.flow().grad(&x, c, &mut v, Some(grads), &mut scratch));
        put(grads[$t::PARAMS - 1]);
    }};
}

/// The entry point (`rust-lld`'s default entry symbol).
#[no_mangle]
pub extern "C" fn _start() -> ! {
    exercise!(Moons, f32, GRADS);
    exercise!(Conditional, f32, GRADS, ctx);
    exercise!(Cholesky64, f64, GRADS64);
    exercise!(RealNvp, f32, GRADS, ctx);
    exercise!(Nsf, f32, GRADS);
    exercise!(NsfCoupling64, f64, GRADS64, ctx);
    exercise!(NflowsRq, f32, GRADS);
    put(NflowsRq::golden_errors()[0]);
    exercise!(NflowsMaf, f32, GRADS);
    exercise!(Planar, f32, GRADS);
    exercise!(Radial, f32, GRADS);
    exercise!(Misc, f32, GRADS);
    exercise!(MafGmm, f32, GRADS);
    exercise!(MafT, f32, GRADS);
    exercise!(Gaussian, f32, GRADS);
    put((Moons::WEIGHT_BYTES + Moons::SCRATCH_BYTES) as f64);
    loop {
        core::hint::spin_loop();
    }
}

#[cfg(not(feature = "list-panics"))]
extern "C" {
    /// Defined nowhere, on purpose: see [`panic`].
    fn flow_nostd_check_a_panic_path_survived_optimization() -> !;
}

/// Unlinkable on purpose: it calls a function that no object file defines, so the link (and with
/// it `cargo build`) fails as soon as any panic path survives optimization, and the linker's
/// error names the missing symbol. A binary that links therefore contains no call to the panic
/// machinery at all. With `--features list-panics` the handler is a plain loop instead, so that
/// the binary links and the remaining call sites can be listed (see README.md).
#[cfg(not(feature = "list-panics"))]
#[panic_handler]
fn panic(_: &PanicInfo) -> ! {
    // SAFETY: never executed. The handler is only kept (and the symbol only needed) when some
    // code can panic, and then the link fails before any binary exists.
    unsafe { flow_nostd_check_a_panic_path_survived_optimization() }
}

/// A linkable handler, only for listing the panic call sites that remain (see README.md).
#[cfg(feature = "list-panics")]
#[panic_handler]
fn panic(_: &PanicInfo) -> ! {
    loop {
        core::hint::spin_loop();
    }
}
