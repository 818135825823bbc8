//! Bakes three test models with `#[flow_macros::flow]` into a `#![no_std]` `#![no_main]` binary for
//! a Cortex-M4F (`thumbv7em-none-eabihf`) and calls every generated method, so that the build
//! proves the generated code needs neither `std` nor an allocator, and the release binary shows
//! which panic paths survive optimization (see README.md).
#![no_std]
#![no_main]

use core::hint::black_box;
use core::panic::PanicInfo;
use core::ptr::{addr_of_mut, write_volatile};

/// `flow-train fit` defaults for D = 2: MAF, 5 transforms, 64×64 ReLU.
#[flow_macros::flow("../../flow-macros/tests/models/moons_maf.flow")]
pub struct Moons;

/// D = 2, C = 3: MAF and IAF layers, diagonal-normal base.
#[flow_macros::flow("../../flow-macros/tests/models/cond_mixed.flow")]
pub struct Conditional;

/// D = 3: IAF layers, Cholesky base, evaluated in f64.
#[flow_macros::flow("../../flow-macros/tests/models/iaf_cholesky.flow", precision = "f64")]
pub struct Cholesky64;

/// A xorshift generator for `sample_with`.
struct XorShift(u64);

impl rand_core::RngCore for XorShift {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        rand_core::impls::fill_bytes_via_next(self, dest)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

/// Results go here so that nothing is optimized away.
static mut SINK: [f32; 32] = [0.0; 32];
static mut SINK64: [f64; 8] = [0.0; 8];

fn put(i: usize, v: f32) {
    // SAFETY: single-threaded bare-metal program; `i` is a constant below 32 at every call.
    unsafe { write_volatile(addr_of_mut!(SINK[i]), v) }
}

/// The entry point (`rust-lld`'s default entry symbol).
#[no_mangle]
pub extern "C" fn _start() -> ! {
    let x: [f32; 2] = black_box([0.5, -0.25]);
    let c: [f32; 3] = black_box([0.1, 0.2, -0.3]);

    put(0, Moons::log_prob(&x));
    let g = Moons::grad_log_prob(&x);
    put(1, g[0]);
    let (z, ldj) = Moons::inverse(&x);
    put(2, z[1] + ldj);
    let (x2, ldj2) = Moons::forward(&z);
    put(3, x2[0] + ldj2);
    let s = Moons::sample(&x);
    put(4, s[1]);
    let mut rng = XorShift(black_box(0x9E37_79B9_7F4A_7C15));
    let s = Moons::sample_with(&mut rng);
    put(5, s[0]);
    let xs: [[f32; 2]; 4] = black_box([[0.0, 0.1], [0.2, 0.3], [0.4, 0.5], [0.6, 0.7]]);
    let mut out = [0.0f32; 4];
    Moons::log_prob_batch(&xs, &mut out);
    put(6, out[3]);

    put(7, Conditional::log_prob(&x, &c));
    let g = Conditional::grad_log_prob(&x, &c);
    put(8, g[1]);
    let (z, ldj) = Conditional::inverse(&x, &c);
    put(9, z[0] + ldj);
    let s = Conditional::sample(&x, &c);
    put(10, s[0]);

    let x3: [f64; 3] = black_box([0.3, -0.1, 0.7]);
    // SAFETY: as in `put`.
    unsafe {
        write_volatile(addr_of_mut!(SINK64[0]), Cholesky64::log_prob(&x3));
        write_volatile(addr_of_mut!(SINK64[1]), Cholesky64::grad_log_prob(&x3)[2]);
        write_volatile(addr_of_mut!(SINK64[2]), Cholesky64::forward(&x3).1);
    }
    put(11, (Moons::WEIGHT_BYTES + Moons::SCRATCH_BYTES) as f32);
    loop {}
}

/// A plain loop for now (see README.md: which panic paths remain).
#[panic_handler]
fn panic(_: &PanicInfo) -> ! {
    loop {}
}
