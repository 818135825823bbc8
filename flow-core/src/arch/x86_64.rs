//! x86-64: CPU detection and the AVX2 / AVX-512 compilations of the dense kernels.
//!
//! Each compilation is the portable kernel of [`crate::nn::dense`] instantiated with [`Fused`]
//! (the FMA instruction instead of libm's routine) inside a function compiled for the feature
//! set, so the compiler vectorizes the same operations in the same order with wider registers.

use crate::lanes::LaneTask;
use core::arch::x86_64::{__cpuid, __cpuid_count, _mm_cvtsd_f64, _mm_cvtss_f32, _mm_fmadd_sd, _mm_fmadd_ss};
use core::arch::x86_64::{_mm_set_sd, _mm_set_ss, _xgetbv};
use core::sync::atomic::{AtomicU8, Ordering};

use super::Kernel;
use crate::nn::dense::{self, MulAdd};
use crate::nn::mlp::{Activation, Mlp};
use crate::{Real, Weight};

/// `a · b + c` rounded once, by the FMA instruction.
///
/// # Safety
/// Only on a CPU with FMA.
#[inline(always)]
pub(crate) unsafe fn fmaf_native(a: f32, b: f32, c: f32) -> f32 {
    // SAFETY: the caller guarantees FMA; the intrinsics only touch registers.
    unsafe { _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(c))) }
}

/// `a · b + c` rounded once, by the FMA instruction.
///
/// # Safety
/// Only on a CPU with FMA.
#[inline(always)]
pub(crate) unsafe fn fma_native(a: f64, b: f64, c: f64) -> f64 {
    // SAFETY: as for `fmaf_native`.
    unsafe { _mm_cvtsd_f64(_mm_fmadd_sd(_mm_set_sd(a), _mm_set_sd(b), _mm_set_sd(c))) }
}

/// The FMA instruction as the kernels' multiply-add. A value exists only inside the functions
/// below that are compiled for AVX2 or AVX-512 (its field is private to this module), and those
/// run only after [`detect`] found the features.
#[derive(Clone, Copy)]
pub(crate) struct Fused(());

impl MulAdd for Fused {
    #[inline(always)]
    fn mul_add<S: Real>(self, a: S, b: S, c: S) -> S {
        // SAFETY: a `Fused` exists only in code that runs on a CPU with FMA (see the type).
        unsafe { a.fma_native(b, c) }
    }
}

/// What the CPU and the OS support (the OS must save the wide registers: XCR0).
fn detect() -> Kernel {
    // SAFETY: `cpuid` exists on every x86-64 processor and only reads identification registers.
    #[allow(unused_unsafe)]
    let (max, l1) = unsafe { (__cpuid(0).eax, __cpuid(1)) };
    let (fma, osxsave, avx) = (
        l1.ecx >> 12 & 1 == 1,
        l1.ecx >> 27 & 1 == 1,
        l1.ecx >> 28 & 1 == 1,
    );
    if !(fma && osxsave && avx) || max < 7 {
        return Kernel::Portable;
    }
    // SAFETY: OSXSAVE is set, so the OS enabled `xgetbv`; leaf 7 exists (max ≥ 7).
    #[allow(unused_unsafe)]
    let (xcr0, l7) = unsafe { (xcr0(), __cpuid_count(7, 0)) };
    let (avx2, avx512f, avx512vl) = (l7.ebx >> 5 & 1 == 1, l7.ebx >> 16 & 1 == 1, l7.ebx >> 31 & 1 == 1);
    // XMM and YMM state (bits 1, 2); opmask, upper ZMM and ZMM16-31 state (bits 5, 6, 7).
    if !avx2 || xcr0 & 0b110 != 0b110 {
        return Kernel::Portable;
    }
    if avx512f && avx512vl && xcr0 & 0b1110_0000 == 0b1110_0000 {
        Kernel::Avx512
    } else {
        Kernel::Avx2
    }
}

/// XCR0, the register states the OS saves.
///
/// # Safety
/// Only when cpuid reports OSXSAVE (otherwise `xgetbv` faults).
#[target_feature(enable = "xsave")]
unsafe fn xcr0() -> u64 {
    // SAFETY: the caller checked OSXSAVE.
    unsafe { _xgetbv(0) }
}

/// 0 until detected, then 1 + the detected kernel.
static DETECTED: AtomicU8 = AtomicU8::new(0);
/// 1 + the highest kernel allowed to run ([`limit_kernel`]).
static LIMIT: AtomicU8 = AtomicU8::new(3);

fn from_code(v: u8) -> Kernel {
    match v {
        3 => Kernel::Avx512,
        2 => Kernel::Avx2,
        _ => Kernel::Portable,
    }
}

fn code(k: Kernel) -> u8 {
    match k {
        Kernel::Portable => 1,
        Kernel::Avx2 => 2,
        Kernel::Avx512 => 3,
    }
}

/// The detected kernel (detection runs once).
#[inline]
fn detected() -> Kernel {
    match DETECTED.load(Ordering::Relaxed) {
        0 => {
            let k = detect();
            DETECTED.store(code(k), Ordering::Relaxed);
            k
        }
        v => from_code(v),
    }
}

/// See [`super::kernel`].
#[inline]
pub(crate) fn kernel() -> Kernel {
    detected().min(from_code(LIMIT.load(Ordering::Relaxed)))
}

/// See [`super::limit_kernel`].
pub(crate) fn limit_kernel(k: Kernel) -> Kernel {
    LIMIT.store(code(k), Ordering::Relaxed);
    kernel()
}

/// `task` in code compiled for AVX-512 (its `run` is always inlined).
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
fn run_avx512<T: LaneTask>(task: T) -> T::Output {
    task.run()
}

/// `task` in code compiled for AVX2.
#[target_feature(enable = "avx2,fma")]
fn run_avx2<T: LaneTask>(task: T) -> T::Output {
    task.run()
}

/// See [`super::vectorized`].
#[inline(always)]
pub(crate) fn vectorized<T: LaneTask>(task: T) -> T::Output {
    match kernel() {
        // SAFETY: `kernel()` is `Avx512` only when `cpuid`/`xgetbv` report AVX-512 F and VL, AVX2
        // and FMA with the OS saving their registers (`detect`), and `Avx2` only with AVX2 and FMA.
        Kernel::Avx512 => unsafe { run_avx512(task) },
        // SAFETY: as above.
        Kernel::Avx2 => unsafe { run_avx2(task) },
        Kernel::Portable => task.run(),
    }
}

/// Rows per step of the single-sample kernel: four independent accumulator chains.
const ROWS: usize = dense::ROWS;

/// The single-sample dense layer (then ReLU when `RELU`) in code compiled for FMA: the
/// intrinsics kernel for `f32`, with the ReLU fused into its stores, the generic kernel with the
/// FMA instruction otherwise.
#[inline(always)]
fn dense_one_fused<S: Real, W: Weight, const RELU: bool>(w: &[W], b: &[W], x: &[S], c: &[S], out: &mut [S]) {
    if let (Some(w), Some(b), Some(x), Some(c)) = (W::f32s(w), W::f32s(b), S::f32s(x), S::f32s(c)) {
        if let Some(out) = S::f32s_mut(out) {
            f32x8::dense::<RELU>(w, b, x, c, out);
            return;
        }
    }
    dense::dense_with::<S, W, Fused, ROWS, 1>(Fused(()), w, b, [x], [c], &mut [&mut *out]);
    if RELU {
        Activation::Relu.apply_all(out);
    }
}

#[target_feature(enable = "avx2,fma")]
fn dense_one_avx2<S: Real, W: Weight, const RELU: bool>(w: &[W], b: &[W], x: &[S], c: &[S], out: &mut [S]) {
    dense_one_fused::<S, W, RELU>(w, b, x, c, out);
}

#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
fn dense_one_avx512<S: Real, W: Weight, const RELU: bool>(w: &[W], b: &[W], x: &[S], c: &[S], out: &mut [S]) {
    dense_one_fused::<S, W, RELU>(w, b, x, c, out);
}

/// `(n_in, m)` of a dense layer: its row width and the rows that the weights (`w_len`), biases
/// and outputs all have; `None` for rows of width 0.
#[inline(always)]
fn rows(w_len: usize, b_len: usize, out_len: usize, n_in: usize) -> Option<(usize, usize)> {
    (n_in > 0).then(|| (n_in, (w_len / n_in).min(b_len).min(out_len)))
}

/// The single-sample `f32` kernel in AVX2 intrinsics: each row's eight partial sums are one
/// 256-bit register (lane `j` = elements `j, j + 8, …`, as [`dense::dot_lanes`]), eight rows in
/// flight sharing each input load, the tail through masked loads and a blend (lanes past the tail
/// keep their value, as in the portable order), and the tree `((l₀+l₄)+(l₂+l₆)) + ((l₁+l₅)+(l₃+l₇))`
/// of four rows at once by shuffles. Inlined only into the functions above, which are compiled for
/// AVX2 and FMA.
mod f32x8 {
    use core::arch::x86_64::*;

    /// Lane masks for a tail of `t` elements (`t` = 0..7): lanes `< t` all ones.
    const TAIL: [[i32; 8]; 8] = {
        let mut m = [[0; 8]; 8];
        let mut t = 0;
        while t < 8 {
            let mut j = 0;
            while j < t {
                m[t][j] = -1;
                j += 1;
            }
            t += 1;
        }
        m
    };

    /// One operand (`x` or the context) of a dense layer: `len` elements at `ptr`, in `len / 8`
    /// blocks and a tail of `len mod 8` held masked in a register.
    #[derive(Clone, Copy)]
    struct Operand {
        ptr: *const f32,
        blocks: usize,
        tail: usize,
        mask: __m256i,
        tail_v: __m256,
    }

    impl Operand {
        /// # Safety
        /// AVX2 and FMA; `v` is valid for reads of `v.len()` elements (it is a slice).
        #[inline(always)]
        unsafe fn new(v: &[f32]) -> Self {
            let (blocks, tail) = (v.len() / 8, v.len() % 8);
            // SAFETY: `TAIL[tail]` is a `[i32; 8]` (tail < 8); the masked load reads only the
            // `tail` elements after the blocks, which exist.
            unsafe {
                let mask = _mm256_loadu_si256(TAIL[tail].as_ptr().cast());
                // No masked load without a tail: with every lane masked off from a dangling
                // pointer (an empty context), the CPU takes a microcode assist on each call.
                let tail_v = if tail > 0 {
                    _mm256_maskload_ps(v.as_ptr().add(8 * blocks), mask)
                } else {
                    _mm256_setzero_ps()
                };
                Operand {
                    ptr: v.as_ptr(),
                    blocks,
                    tail,
                    mask,
                    tail_v,
                }
            }
        }

        /// The dot products of `R` rows (`rows[i]` points at the operand's weights in row `i`)
        /// with this operand: `R` registers of eight partial sums.
        ///
        /// # Safety
        /// AVX2 and FMA; every `rows[i]` is valid for reads of `8 · blocks + tail` elements.
        #[inline(always)]
        unsafe fn partials<const R: usize>(&self, rows: [*const f32; R]) -> [__m256; R] {
            // SAFETY: the loads stay inside the `8 · blocks + tail` elements of the operand and
            // of every row (the caller's guarantee); the masked loads read only the tail.
            unsafe {
                let mut acc = [_mm256_setzero_ps(); R];
                // `black_box` hides that the rows are one stride apart: knowing it, the compiler
                // derived each row's address from the previous one's, a chain of dependent adds
                // longer than the FMAs' 4 cycles; now each is its own base plus the block offset.
                let p = core::hint::black_box(rows);
                for blk in 0..self.blocks {
                    let xv = _mm256_loadu_ps(self.ptr.add(8 * blk));
                    for i in 0..R {
                        acc[i] = _mm256_fmadd_ps(_mm256_loadu_ps(p[i].add(8 * blk)), xv, acc[i]);
                    }
                }
                if self.tail > 0 {
                    let keep = _mm256_castsi256_ps(self.mask);
                    for i in 0..R {
                        let wv = _mm256_maskload_ps(rows[i].add(8 * self.blocks), self.mask);
                        let sum = _mm256_fmadd_ps(wv, self.tail_v, acc[i]);
                        acc[i] = _mm256_blendv_ps(acc[i], sum, keep);
                    }
                }
                acc
            }
        }
    }

    /// Per 128-bit half: `[a₀+a₂, a₁+a₃, b₀+b₂, b₁+b₃]`.
    ///
    /// # Safety
    /// AVX.
    #[inline(always)]
    unsafe fn add_halves(a: __m256, b: __m256) -> __m256 {
        // SAFETY: register-only intrinsics.
        unsafe {
            _mm256_add_ps(
                _mm256_shuffle_ps(a, b, 0b01_00_01_00),
                _mm256_shuffle_ps(a, b, 0b11_10_11_10),
            )
        }
    }

    /// Per 128-bit half: `[a₀+a₁, a₂+a₃, b₀+b₁, b₂+b₃]`.
    ///
    /// # Safety
    /// AVX.
    #[inline(always)]
    unsafe fn add_neighbours(a: __m256, b: __m256) -> __m256 {
        // SAFETY: register-only intrinsics.
        unsafe {
            _mm256_add_ps(
                _mm256_shuffle_ps(a, b, 0b10_00_10_00),
                _mm256_shuffle_ps(a, b, 0b11_01_11_01),
            )
        }
    }

    /// The trees of eight rows' partial sums, as `[t₀, …, t₇]`: vertical adds after shuffles,
    /// in the order of [`super::dense::dot_lanes`].
    ///
    /// # Safety
    /// AVX2.
    #[inline(always)]
    unsafe fn tree8(a: [__m256; 8]) -> __m256 {
        // SAFETY: register-only intrinsics on a CPU with AVX2.
        unsafe {
            // [l₀+l₄, l₁+l₅, l₂+l₆, l₃+l₇] of rows 2i | 2i + 1.
            let mut s = [_mm256_setzero_ps(); 4];
            for (i, si) in s.iter_mut().enumerate() {
                let (lo, hi) = (a[2 * i], a[2 * i + 1]);
                *si = _mm256_add_ps(
                    _mm256_permute2f128_ps(lo, hi, 0x20),
                    _mm256_permute2f128_ps(lo, hi, 0x31),
                );
            }
            // [(l₀+l₄)+(l₂+l₆), (l₁+l₅)+(l₃+l₇)] of rows 0, 2 | 1, 3 and 4, 6 | 5, 7.
            let (t0, t1) = (add_halves(s[0], s[1]), add_halves(s[2], s[3]));
            // Rows [0, 2, 4, 6 | 1, 3, 5, 7].
            let u = add_neighbours(t0, t1);
            _mm256_permutevar8x32_ps(u, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
        }
    }

    /// The trees of four rows' partial sums, as `[t₀, t₁, t₂, t₃]`.
    ///
    /// # Safety
    /// AVX2.
    #[inline(always)]
    unsafe fn tree4(a: [__m256; 4]) -> __m128 {
        // SAFETY: register-only intrinsics on a CPU with AVX2.
        unsafe {
            // [sᵣ] = [l0+l4, l1+l5, l2+l6, l3+l7] of rows 0,1 and 2,3.
            let s01 = _mm256_add_ps(
                _mm256_permute2f128_ps(a[0], a[1], 0x20),
                _mm256_permute2f128_ps(a[0], a[1], 0x31),
            );
            let s23 = _mm256_add_ps(
                _mm256_permute2f128_ps(a[2], a[3], 0x20),
                _mm256_permute2f128_ps(a[2], a[3], 0x31),
            );
            // Per 128-bit half: [(l0+l4)+(l2+l6), (l1+l5)+(l3+l7)] of rows 0, 2 | 1, 3.
            let v = add_halves(s01, s23);
            // [t₀, t₂, t₀, t₂ | t₁, t₃, t₁, t₃]
            let t = add_neighbours(v, v);
            _mm_unpacklo_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1))
        }
    }

    /// The dot products of eight consecutive rows of width `n` ∈ {1, 2, 4} (no context) starting
    /// at `wp`, `8n` contiguous weights, packed `8 / n` rows per register. With `n < 8` lanes
    /// `n..8` of every row's partial sums stay `+0`, so the tree
    /// `((l₀+l₄)+(l₂+l₆)) + ((l₁+l₅)+(l₃+l₇))` is the sum of the `n` products in the same shape,
    /// plus `+0` (which makes a `−0` sum `+0`, as the zero lanes do): `(l₀+l₂)+(l₁+l₃)`,
    /// `l₀+l₁` or `l₀`, then `+ 0`.
    ///
    /// # Safety
    /// AVX2 and FMA; `wp` is valid for reads of `8n` elements.
    #[inline(always)]
    unsafe fn packed8(wp: *const f32, n: usize, x: &[f32]) -> __m256 {
        // SAFETY: the loads read `8n` elements from `wp` (the caller's guarantee); the rest is
        // register-only.
        unsafe {
            let zero = _mm256_setzero_ps();
            let t = match n {
                1 => _mm256_fmadd_ps(_mm256_loadu_ps(wp), _mm256_set1_ps(x[0]), zero),
                2 => {
                    // [x₀, x₁] repeated: four rows per register.
                    let xv = _mm256_setr_ps(x[0], x[1], x[0], x[1], x[0], x[1], x[0], x[1]);
                    let a = _mm256_fmadd_ps(_mm256_loadu_ps(wp), xv, zero);
                    let b = _mm256_fmadd_ps(_mm256_loadu_ps(wp.add(8)), xv, zero);
                    // Rows [0, 1, 4, 5 | 2, 3, 6, 7].
                    let s = add_neighbours(a, b);
                    _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(s), 0b11_01_10_00))
                }
                _ => {
                    // [x₀, x₁, x₂, x₃] twice: two rows per register.
                    let xv = _mm256_setr_ps(x[0], x[1], x[2], x[3], x[0], x[1], x[2], x[3]);
                    let mut v = [zero; 4];
                    for (i, vi) in v.iter_mut().enumerate() {
                        *vi = _mm256_fmadd_ps(_mm256_loadu_ps(wp.add(8 * i)), xv, zero);
                    }
                    // [l₀+l₂, l₁+l₃] of rows [0, 2 | 1, 3] and [4, 6 | 5, 7].
                    let (s01, s23) = (add_halves(v[0], v[1]), add_halves(v[2], v[3]));
                    // Rows [0, 2, 4, 6 | 1, 3, 5, 7].
                    let t = add_neighbours(s01, s23);
                    _mm256_permutevar8x32_ps(t, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
                }
            };
            _mm256_add_ps(t, zero)
        }
    }

    /// `max(v, 0)` per lane when `RELU` (`v > 0 ? v : +0`), else `v`.
    ///
    /// # Safety
    /// SSE.
    #[inline(always)]
    unsafe fn relu4<const RELU: bool>(v: __m128) -> __m128 {
        // SAFETY: register-only intrinsics.
        unsafe {
            if RELU {
                _mm_max_ps(v, _mm_setzero_ps())
            } else {
                v
            }
        }
    }

    /// The tree of one row's partial sums.
    ///
    /// # Safety
    /// AVX2.
    #[inline(always)]
    unsafe fn tree1(a: __m256) -> f32 {
        // SAFETY: register-only intrinsics on a CPU with AVX2.
        unsafe {
            let s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
            let t = _mm_add_ps(s, _mm_movehl_ps(s, s));
            _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)))
        }
    }

    /// `out = W [x, c] + b` in the order of [`super::dense::dense_with`]: output `r` is
    /// `(bᵣ + wᵣₓ · x) + wᵣ꜀ · c` (the context term only when `c` is not empty), for the rows that
    /// `w`, `b` and `out` all have; with `RELU`, `max(v, 0)` of each (`+0` for −0 and NaN, as
    /// [`crate::nn::mlp::Activation::Relu`]).
    #[inline(always)]
    pub(super) fn dense<const RELU: bool>(w: &[f32], b: &[f32], x: &[f32], c: &[f32], out: &mut [f32]) {
        let (kx, kc) = (x.len(), c.len());
        let Some((n_in, m)) = super::rows(w.len(), b.len(), out.len(), kx + kc) else {
            return;
        };
        // SAFETY: this module runs only in functions compiled for AVX2 and FMA (see above). Row
        // `r < m` occupies `w[r·n_in .. (r+1)·n_in]`, inside `w` because `m ≤ w.len() / n_in`: its
        // `kx` weights start at `r·n_in` and its `kc` context weights at `r·n_in + kx`, which is
        // what `partials` reads; `b` and `out` have at least `m` elements.
        unsafe {
            let xo = Operand::new(x);
            let co = Operand::new(c);
            let (wp, bp, op) = (w.as_ptr(), b.as_ptr(), out.as_mut_ptr());
            let mut r = 0;
            // Rows of one, two or four inputs (a first layer): several rows per register
            // instead of a register of mostly zero lanes per row.
            if kc == 0 && matches!(kx, 1 | 2 | 4) {
                while r + 8 <= m {
                    let t = packed8(wp.add(r * n_in), kx, x);
                    let v = _mm256_add_ps(_mm256_loadu_ps(bp.add(r)), t);
                    _mm256_storeu_ps(
                        op.add(r),
                        if RELU {
                            _mm256_max_ps(v, _mm256_setzero_ps())
                        } else {
                            v
                        },
                    );
                    r += 8;
                }
            }
            // Eight rows in flight: eight independent chains cover the FMA latency (4 cycles,
            // two per cycle); then four, then one.
            while r + 8 <= m {
                let mut rows = [wp; 8];
                for (i, row) in rows.iter_mut().enumerate() {
                    *row = wp.add((r + i) * n_in);
                }
                let mut v = _mm256_add_ps(_mm256_loadu_ps(bp.add(r)), tree8(xo.partials(rows)));
                if kc > 0 {
                    for row in rows.iter_mut() {
                        *row = row.add(kx);
                    }
                    v = _mm256_add_ps(v, tree8(co.partials(rows)));
                }
                _mm256_storeu_ps(
                    op.add(r),
                    if RELU {
                        _mm256_max_ps(v, _mm256_setzero_ps())
                    } else {
                        v
                    },
                );
                r += 8;
            }
            while r + 4 <= m {
                let rows = [0, 1, 2, 3].map(|i| wp.add((r + i) * n_in));
                let mut v = _mm_add_ps(_mm_loadu_ps(bp.add(r)), tree4(xo.partials(rows)));
                if kc > 0 {
                    v = _mm_add_ps(v, tree4(co.partials(rows.map(|p| p.add(kx)))));
                }
                _mm_storeu_ps(op.add(r), relu4::<RELU>(v));
                r += 4;
            }
            while r < m {
                let row = wp.add(r * n_in);
                let [acc] = xo.partials([row]);
                let mut v = *bp.add(r) + tree1(acc);
                if kc > 0 {
                    let [acc] = co.partials([row.add(kx)]);
                    v += tree1(acc);
                }
                *op.add(r) = if RELU { super::Activation::Relu.apply(v) } else { v };
                r += 1;
            }
        }
    }
}

/// [`dense::dense_one`] compiled for `k` (at most the detected kernel); `false` for
/// [`Kernel::Portable`], which the caller runs itself.
#[inline]
pub(crate) fn dense_one<S: Real, W: Weight, const RELU: bool>(
    k: Kernel,
    w: &[W],
    b: &[W],
    x: &[S],
    c: &[S],
    out: &mut [S],
) -> bool {
    match k.min(detected()) {
        // SAFETY: `detected()` returns Avx512 only when cpuid reports AVX-512F/VL, AVX2 and FMA
        // and XCR0 shows the OS saves their registers.
        Kernel::Avx512 => unsafe { dense_one_avx512::<S, W, RELU>(w, b, x, c, out) },
        // SAFETY: likewise for AVX2 and FMA.
        Kernel::Avx2 => unsafe { dense_one_avx2::<S, W, RELU>(w, b, x, c, out) },
        Kernel::Portable => return false,
    }
    true
}

/// The mutable arguments of [`Mlp::backward_block`]: `g_x`, `g_c`, `g_params`, `scratch`.
type BackwardOut<'a, S, const N: usize> = (
    [&'a mut [S]; N],
    [&'a mut [S]; N],
    Option<&'a mut [S]>,
    &'a mut [S],
);

/// [`Mlp::backward_block_impl`] compiled for AVX2. Its sums are separate multiplies and adds
/// (Rust never contracts them into FMAs), so the wider registers give the portable bits.
#[target_feature(enable = "avx2,fma")]
fn mlp_backward_block_avx2<S: Real, W: Weight, const N: usize>(
    mlp: &Mlp<'_, W>,
    [x, c, g_out]: [[&[S]; N]; 3],
    cache: &[S],
    (g_x, g_c, g_params, scratch): BackwardOut<'_, S, N>,
) {
    mlp.backward_block_impl(x, c, cache, g_out, g_x, g_c, g_params, scratch);
}

/// [`Mlp::backward_block_impl`] compiled for AVX-512 (see [`mlp_backward_block_avx2`]).
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
fn mlp_backward_block_avx512<S: Real, W: Weight, const N: usize>(
    mlp: &Mlp<'_, W>,
    [x, c, g_out]: [[&[S]; N]; 3],
    cache: &[S],
    (g_x, g_c, g_params, scratch): BackwardOut<'_, S, N>,
) {
    mlp.backward_block_impl(x, c, cache, g_out, g_x, g_c, g_params, scratch);
}

/// [`Mlp::backward_block`] compiled for `k` (at most the detected kernel): `None` when it ran,
/// the mutable arguments back for [`Kernel::Portable`], which the caller runs itself.
#[inline]
pub(crate) fn mlp_backward_block<'a, S: Real, W: Weight, const N: usize>(
    k: Kernel,
    mlp: &Mlp<'_, W>,
    inputs: [[&[S]; N]; 3],
    cache: &[S],
    out: BackwardOut<'a, S, N>,
) -> Option<BackwardOut<'a, S, N>> {
    match k.min(detected()) {
        // SAFETY: as in `dense_one`.
        Kernel::Avx512 => unsafe { mlp_backward_block_avx512(mlp, inputs, cache, out) },
        // SAFETY: as in `dense_one`.
        Kernel::Avx2 => unsafe { mlp_backward_block_avx2(mlp, inputs, cache, out) },
        Kernel::Portable => return Some(out),
    }
    None
}

/// A block of `f32` samples through the intrinsics kernels: [`soa16`] on each 16 samples when
/// `WIDE` (AVX-512), else [`soa8`] on each 8, if the types are `f32` and the block is a multiple
/// of the vector; `false` otherwise.
#[inline(always)]
fn dense_soa_f32<S: Real, W: Weight, const NB: usize, const R: usize, const WIDE: bool, const RELU: bool>(
    w: &[W],
    b: &[W],
    x: &[[S; NB]],
    c: &[[S; NB]],
    out: &mut [[S; NB]],
) -> bool {
    let lanes = if WIDE { 16 } else { 8 };
    if !NB.is_multiple_of(lanes) {
        return false;
    }
    let (Some(w), Some(b)) = (W::f32s(w), W::f32s(b)) else {
        return false;
    };
    let (Some(x), Some(c)) = (S::f32s(x.as_flattened()), S::f32s(c.as_flattened())) else {
        return false;
    };
    let Some(out) = S::f32s_mut(out.as_flattened_mut()) else {
        return false;
    };
    let (x, c, out) = (
        x.as_chunks::<NB>().0,
        c.as_chunks::<NB>().0,
        out.as_chunks_mut::<NB>().0,
    );
    let mut h = 0;
    while h < NB {
        if WIDE {
            soa16::dense::<R, NB, RELU>(w, b, x, c, out, h);
        } else {
            soa8::dense::<R, NB, RELU>(w, b, x, c, out, h);
        }
        h += lanes;
    }
    true
}

#[target_feature(enable = "avx2,fma")]
fn dense_soa_avx2<S: Real, W: Weight, const NB: usize, const RELU: bool>(
    w: &[W],
    b: &[W],
    x: &[[S; NB]],
    c: &[[S; NB]],
    out: &mut [[S; NB]],
) {
    if !dense_soa_f32::<S, W, NB, 1, false, RELU>(w, b, x, c, out) {
        dense::dense_soa_with::<S, W, Fused, 1, NB>(Fused(()), w, b, x, c, out);
        if RELU {
            Activation::Relu.apply_all(out.as_flattened_mut());
        }
    }
}

/// Sixteen samples per 512-bit register, three rows per step with AVX-512's 32 registers: 24
/// accumulators, each loaded input vector feeds three multiply-adds.
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
fn dense_soa_avx512<S: Real, W: Weight, const NB: usize, const RELU: bool>(
    w: &[W],
    b: &[W],
    x: &[[S; NB]],
    c: &[[S; NB]],
    out: &mut [[S; NB]],
) {
    if !dense_soa_f32::<S, W, NB, 3, true, RELU>(w, b, x, c, out) {
        dense::dense_soa_with::<S, W, Fused, 2, NB>(Fused(()), w, b, x, c, out);
        if RELU {
            Activation::Relu.apply_all(out.as_flattened_mut());
        }
    }
}

/// [`dense::dense_soa`] (then ReLU on every output when `RELU`, fused into the store) compiled
/// for `k` (at most the detected kernel); `false` for [`Kernel::Portable`].
#[inline]
pub(crate) fn dense_soa<S: Real, W: Weight, const NB: usize, const RELU: bool>(
    k: Kernel,
    w: &[W],
    b: &[W],
    x: &[[S; NB]],
    c: &[[S; NB]],
    out: &mut [[S; NB]],
) -> bool {
    match k.min(detected()) {
        // SAFETY: as in `dense_one`.
        Kernel::Avx512 => unsafe { dense_soa_avx512::<S, W, NB, RELU>(w, b, x, c, out) },
        // SAFETY: as in `dense_one`.
        Kernel::Avx2 => unsafe { dense_soa_avx2::<S, W, NB, RELU>(w, b, x, c, out) },
        Kernel::Portable => return false,
    }
    true
}

/// The batch `f32` kernels in intrinsics, a vector of samples per register (structure of
/// arrays): `R` rows at a time keep `8 · R` accumulators (lane `j`, row `r`), each input element
/// is loaded once for the `R` rows and each weight broadcast once for the vector's samples; the
/// tree is vertical adds. The same operations in the same order per sample as
/// [`dense::dot_lanes`]. `soa8` (256-bit, `R = 3` needs AVX-512's 32 registers) runs inside the
/// functions above compiled for AVX2 and FMA, `soa16` (512-bit) inside those compiled for AVX-512.
macro_rules! soa_kernel {
    ($name:ident, $v:ty, $lanes:literal, $zero:ident, $load:ident, $store:ident, $set1:ident,
     $fmadd:ident, $add:ident, $max:ident) => {
        mod $name {
            use core::arch::x86_64::*;

            /// Samples per register.
            const LANES: usize = $lanes;

            /// `R` rows' dot products with samples `h .. h + LANES` of `x` (`x[k]` = element `k`
            /// of the block's samples), one vector of samples per row. `rows[r]` points at row
            /// `r`'s weights for `x`.
            ///
            /// # Safety
            /// The target features of the vector; every `rows[r]` is valid for reads of
            /// `x.len()` elements; `h + LANES ≤ NB`.
            #[inline(always)]
            unsafe fn dots<const R: usize, const NB: usize>(
                rows: [*const f32; R],
                x: &[[f32; NB]],
                h: usize,
            ) -> [$v; R] {
                let (xb, xt) = x.as_chunks::<8>();
                // SAFETY: the broadcasts read element `8·blk + j < x.len()` of each row (the
                // caller's guarantee); the input loads read `LANES` elements from `h` of one
                // `[f32; NB]` of `x`, inside it since `h + LANES ≤ NB`.
                unsafe {
                    let mut acc = [[$zero(); R]; 8];
                    for (blk, xv) in xb.iter().enumerate() {
                        for j in 0..8 {
                            let v = $load(xv[j].as_ptr().add(h));
                            for r in 0..R {
                                let wv = $set1(*rows[r].add(8 * blk + j));
                                acc[j][r] = $fmadd(wv, v, acc[j][r]);
                            }
                        }
                    }
                    let base = 8 * xb.len();
                    for (j, xe) in xt.iter().enumerate() {
                        let v = $load(xe.as_ptr().add(h));
                        for r in 0..R {
                            let wv = $set1(*rows[r].add(base + j));
                            acc[j][r] = $fmadd(wv, v, acc[j][r]);
                        }
                    }
                    // Plain loops and indexing, no closures or `map`: those are compiled without
                    // the target features, so the intrinsics in them would not be inlined.
                    let mut out = [$zero(); R];
                    for (r, o) in out.iter_mut().enumerate() {
                        *o = $add(
                            $add($add(acc[0][r], acc[4][r]), $add(acc[2][r], acc[6][r])),
                            $add($add(acc[1][r], acc[5][r]), $add(acc[3][r], acc[7][r])),
                        );
                    }
                    out
                }
            }

            /// A dense layer over samples `h .. h + LANES` of a block: row `r`'s weights at
            /// `wp + r·n_in` (its `x` part, then its context part), bias `bp + r`, output `op + r`.
            struct Layer<'a, const NB: usize> {
                wp: *const f32,
                bp: *const f32,
                op: *mut [f32; NB],
                n_in: usize,
                x: &'a [[f32; NB]],
                c: &'a [[f32; NB]],
                h: usize,
            }

            impl<const NB: usize> Layer<'_, NB> {
                /// Rows `r0 .. r0 + K` computed together and stored (with `RELU`, `max(v, 0)`:
                /// `v` if `v > 0`, else `+0`, NaN and −0 too, as
                /// [`crate::nn::mlp::Activation::Relu`]).
                ///
                /// # Safety
                /// The target features of the vector; rows `r0 .. r0 + K` exist in the weights
                /// (`n_in` each), biases and outputs; `h + LANES ≤ NB`.
                #[inline(always)]
                unsafe fn rows<const K: usize, const RELU: bool>(&self, r0: usize) {
                    let kx = self.x.len();
                    // SAFETY: rows `r0 .. r0 + K` are in bounds (the caller's guarantee): their
                    // weights are `n_in = kx + c.len()` long, which is what `dots` reads, and
                    // the stores write `LANES` elements from `h` of one `[f32; NB]`.
                    unsafe {
                        let mut rows = [self.wp; K];
                        for (i, row) in rows.iter_mut().enumerate() {
                            *row = self.wp.add((r0 + i) * self.n_in);
                        }
                        let dx = dots::<K, NB>(rows, self.x, self.h);
                        let dc = if self.c.is_empty() {
                            [$zero(); K]
                        } else {
                            for row in rows.iter_mut() {
                                *row = row.add(kx);
                            }
                            dots::<K, NB>(rows, self.c, self.h)
                        };
                        for i in 0..K {
                            let mut v = $add($set1(*self.bp.add(r0 + i)), dx[i]);
                            if !self.c.is_empty() {
                                v = $add(v, dc[i]);
                            }
                            if RELU {
                                // max(a, b) = a > b ? a : b, b when either is NaN.
                                v = $max(v, $zero());
                            }
                            $store(self.op.add(r0 + i).cast::<f32>().add(self.h), v);
                        }
                    }
                }
            }

            /// `out[r] = (b[r] + W_rx · x) + W_rc · c` for samples `h .. h + LANES` of the block
            /// (the context term only when `c` is not empty), for the rows that `w`, `b` and
            /// `out` all have, `R` rows at a time and the last `m mod R` one by one; nothing when
            /// `h + LANES > NB`. With `RELU`, `max(v, 0)` of each output.
            #[inline(always)]
            pub(super) fn dense<const R: usize, const NB: usize, const RELU: bool>(
                w: &[f32],
                b: &[f32],
                x: &[[f32; NB]],
                c: &[[f32; NB]],
                out: &mut [[f32; NB]],
                h: usize,
            ) {
                let Some((n_in, m)) = super::rows(w.len(), b.len(), out.len(), x.len() + c.len()) else {
                    return;
                };
                if h + LANES > NB {
                    return;
                }
                let layer = Layer {
                    wp: w.as_ptr(),
                    bp: b.as_ptr(),
                    op: out.as_mut_ptr(),
                    n_in,
                    x,
                    c,
                    h,
                };
                // SAFETY: compiled for the vector's features (see the module). Row `r < m` is
                // `w[r·n_in .. (r+1)·n_in]`, inside `w` since `m ≤ w.len() / n_in`; `b` and
                // `out` have at least `m` entries; `h + LANES ≤ NB` (checked above). The loops
                // ask only for rows below `m`.
                unsafe {
                    let mut r0 = 0;
                    while r0 + R <= m {
                        layer.rows::<R, RELU>(r0);
                        r0 += R;
                    }
                    while r0 < m {
                        layer.rows::<1, RELU>(r0);
                        r0 += 1;
                    }
                }
            }
        }
    };
}

soa_kernel!(
    soa8,
    __m256,
    8,
    _mm256_setzero_ps,
    _mm256_loadu_ps,
    _mm256_storeu_ps,
    _mm256_set1_ps,
    _mm256_fmadd_ps,
    _mm256_add_ps,
    _mm256_max_ps
);
soa_kernel!(
    soa16,
    __m512,
    16,
    _mm512_setzero_ps,
    _mm512_loadu_ps,
    _mm512_storeu_ps,
    _mm512_set1_ps,
    _mm512_fmadd_ps,
    _mm512_add_ps,
    _mm512_max_ps
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Lcg;
    use std::vec::Vec;

    fn random(rng: &mut Lcg, n: usize) -> Vec<f64> {
        (0..n).map(|_| rng.normal()).collect()
    }

    /// Every compilation the CPU can run gives the portable kernel's bits, in f32 and f64, for
    /// shapes that include 0 and 1 and sizes that are not multiples of the lanes or rows.
    #[test]
    fn every_kernel_gives_the_portable_bits() {
        let mut rng = Lcg(7);
        let kernels: Vec<Kernel> = [Kernel::Avx2, Kernel::Avx512]
            .into_iter()
            .filter(|&k| k <= detected())
            .collect();
        std::eprintln!(
            "detected {:?}; comparing {kernels:?} against portable",
            detected()
        );
        let shapes = [
            (0, 3, 0),
            (1, 1, 0),
            (3, 0, 2),
            (5, 2, 0),
            (7, 13, 3),
            (64, 64, 0),
            (4, 64, 0),
            (9, 17, 5),
            (2, 8, 8),
            (6, 7, 9),
            (64, 2, 0),
            (21, 1, 0),
            (19, 4, 0),
            (16, 2, 1),
        ];
        for (m, kx, kc) in shapes {
            let w = random(&mut rng, m * (kx + kc));
            let b = random(&mut rng, m);
            let x = random(&mut rng, kx);
            let c = random(&mut rng, kc);
            let w32: Vec<f32> = w.iter().map(|&v| v as f32).collect();
            let b32: Vec<f32> = b.iter().map(|&v| v as f32).collect();
            let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            let c32: Vec<f32> = c.iter().map(|&v| v as f32).collect();
            let mut want32 = std::vec![0.0f32; m];
            let mut want64 = std::vec![0.0f64; m];
            dense::dense_with::<f32, f32, dense::Portable, ROWS, 1>(
                dense::Portable,
                &w32,
                &b32,
                [&x32],
                [&c32],
                &mut [&mut want32[..]],
            );
            dense::dense_with::<f64, f64, dense::Portable, ROWS, 1>(
                dense::Portable,
                &w,
                &b,
                [&x],
                [&c],
                &mut [&mut want64[..]],
            );
            // Batches: 8 samples in structure-of-arrays form, sample 0 the one above.
            let xs: Vec<[f32; 8]> = (0..kx)
                .map(|k| core::array::from_fn(|s| if s == 0 { x32[k] } else { rng.normal() as f32 }))
                .collect();
            let cs: Vec<[f32; 8]> = (0..kc)
                .map(|k| core::array::from_fn(|s| if s == 0 { c32[k] } else { rng.normal() as f32 }))
                .collect();
            let mut want_soa = std::vec![[0.0f32; 8]; m];
            dense::dense_soa_with::<f32, f32, dense::Portable, 1, 8>(
                dense::Portable,
                &w32,
                &b32,
                &xs,
                &cs,
                &mut want_soa,
            );
            for (r, o) in want_soa.iter().enumerate() {
                assert_eq!(
                    o[0].to_bits(),
                    want32[r].to_bits(),
                    "portable batch = single, m={m} kx={kx} kc={kc} r={r}"
                );
            }
            let bits32 = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            let bits64 = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            for &k in &kernels {
                let mut got32 = std::vec![0.0f32; m];
                let mut got64 = std::vec![0.0f64; m];
                assert!(dense_one::<_, _, false>(k, &w32, &b32, &x32, &c32, &mut got32));
                assert!(dense_one::<_, _, false>(k, &w, &b, &x, &c, &mut got64));
                assert_eq!(bits32(&got32), bits32(&want32), "{k:?} f32 m={m} kx={kx} kc={kc}");
                let mut relu32 = std::vec![0.0f32; m];
                assert!(dense_one::<_, _, true>(k, &w32, &b32, &x32, &c32, &mut relu32));
                let want_relu: Vec<f32> = want32.iter().map(|&v| Activation::Relu.apply(v)).collect();
                assert_eq!(
                    bits32(&relu32),
                    bits32(&want_relu),
                    "{k:?} f32 relu m={m} kx={kx} kc={kc}"
                );
                assert_eq!(bits64(&got64), bits64(&want64), "{k:?} f64 m={m} kx={kx} kc={kc}");
                // f32 computed from f64 weights (the generic compilation).
                let mut mixed = std::vec![0.0f32; m];
                let mut mixed_want = std::vec![0.0f32; m];
                assert!(dense_one::<_, _, false>(k, &w, &b, &x32, &c32, &mut mixed));
                dense::dense_with::<f32, f64, dense::Portable, ROWS, 1>(
                    dense::Portable,
                    &w,
                    &b,
                    [&x32],
                    [&c32],
                    &mut [&mut mixed_want[..]],
                );
                assert_eq!(
                    bits32(&mixed),
                    bits32(&mixed_want),
                    "{k:?} f32 over f64 weights m={m} kx={kx} kc={kc}"
                );
                let mut got_soa = std::vec![[0.0f32; 8]; m];
                assert!(dense_soa::<_, _, 8, false>(k, &w32, &b32, &xs, &cs, &mut got_soa));
                for (g, w) in got_soa.iter().zip(&want_soa) {
                    assert_eq!(
                        g.map(f32::to_bits),
                        w.map(f32::to_bits),
                        "{k:?} batch m={m} kx={kx} kc={kc}"
                    );
                }
                // Blocks of 16 (the x86-64 block: one 512-bit vector, or two 256-bit ones), with
                // and without the fused ReLU; samples 8..16 repeat 0..8.
                let wide = |v: &[[f32; 8]]| -> Vec<[f32; 16]> {
                    v.iter().map(|a| core::array::from_fn(|s| a[s % 8])).collect()
                };
                let (xs16, cs16) = (wide(&xs), wide(&cs));
                for relu in [false, true] {
                    let mut got16 = std::vec![[0.0f32; 16]; m];
                    if relu {
                        assert!(dense_soa::<_, _, 16, true>(
                            k, &w32, &b32, &xs16, &cs16, &mut got16
                        ));
                    } else {
                        assert!(dense_soa::<_, _, 16, false>(
                            k, &w32, &b32, &xs16, &cs16, &mut got16
                        ));
                    }
                    for (g, w) in got16.iter().zip(&want_soa) {
                        let want: [u32; 16] = core::array::from_fn(|s| {
                            let v = w[s % 8];
                            if relu { Activation::Relu.apply(v) } else { v }.to_bits()
                        });
                        assert_eq!(
                            g.map(f32::to_bits),
                            want,
                            "{k:?} block 16 relu={relu} m={m} kx={kx} kc={kc}"
                        );
                    }
                }
            }
            assert!(!dense_one::<_, _, false>(
                Kernel::Portable,
                &w32,
                &b32,
                &x32,
                &c32,
                &mut want32
            ));
        }
    }

    /// Partial sums that round to −0 stay −0 in every kernel: eleven products that round to −0 make
    /// all eight lanes −0 in the first block, and the tail of three must leave lanes 3–7 alone
    /// (adding a masked-out 0 would make them +0, and the result +0).
    #[test]
    fn negative_zero_partial_sums_keep_their_sign() {
        let tiny = f32::from_bits(1); // 2⁻¹⁴⁹: tiny · (−tiny) rounds to −0
        let w = [tiny; 11];
        let x = [-tiny; 11];
        let b = [-0.0f32];
        let mut want = [1.0f32];
        dense::dense_with::<f32, f32, dense::Portable, ROWS, 1>(
            dense::Portable,
            &w,
            &b,
            [&x],
            [&[]],
            &mut [&mut want[..]],
        );
        assert_eq!(want[0].to_bits(), (-0.0f32).to_bits());
        for k in [Kernel::Avx2, Kernel::Avx512]
            .into_iter()
            .filter(|&k| k <= detected())
        {
            let mut got = [1.0f32];
            assert!(dense_one::<_, _, false>(k, &w, &b, &x, &[], &mut got));
            assert_eq!(got[0].to_bits(), want[0].to_bits(), "{k:?}");
        }
    }

    /// Rows of one, two or four inputs whose products all round to −0 sum to +0 (their zero lanes
    /// make them +0), so a −0 bias gives +0 in every kernel, as in the portable one.
    #[test]
    fn short_rows_of_negative_zero_products_sum_to_positive_zero() {
        let tiny = f32::from_bits(1);
        for n in [1, 2, 4] {
            let w = std::vec![tiny; 8 * n];
            let x = std::vec![-tiny; n];
            let b = [-0.0f32; 8];
            let mut want = [1.0f32; 8];
            dense::dense_with::<f32, f32, dense::Portable, ROWS, 1>(
                dense::Portable,
                &w,
                &b,
                [&x],
                [&[]],
                &mut [&mut want[..]],
            );
            assert_eq!(want.map(f32::to_bits), [0.0f32.to_bits(); 8], "portable n={n}");
            for k in [Kernel::Avx2, Kernel::Avx512]
                .into_iter()
                .filter(|&k| k <= detected())
            {
                let mut got = [1.0f32; 8];
                assert!(dense_one::<_, _, false>(k, &w, &b, &x, &[], &mut got));
                assert_eq!(got.map(f32::to_bits), want.map(f32::to_bits), "{k:?} n={n}");
            }
        }
    }

    /// The fused ReLU is `Activation::Relu`: `−0` and NaN become `+0`, in blocks of 8 and 16 and
    /// for one sample.
    #[test]
    fn fused_relu_maps_negative_zero_and_nan_to_zero() {
        let tiny = f32::from_bits(1);
        // Eight products that round to −0 make the tree −0; a −0 bias keeps the output −0.
        let w = [tiny; 24];
        let b = [-0.0f32, f32::NAN, 2.0];
        let x8: Vec<[f32; 8]> = std::vec![[-tiny; 8]; 8];
        let x16: Vec<[f32; 16]> = std::vec![[-tiny; 16]; 8];
        let mut plain = std::vec![[1.0f32; 8]; 3];
        dense::dense_soa_with::<f32, f32, dense::Portable, 1, 8>(
            dense::Portable,
            &w,
            &b,
            &x8,
            &[],
            &mut plain,
        );
        assert_eq!(plain[0][0].to_bits(), (-0.0f32).to_bits());
        assert!(plain[1][0].is_nan());
        for k in [Kernel::Avx2, Kernel::Avx512]
            .into_iter()
            .filter(|&k| k <= detected())
        {
            let mut got8 = std::vec![[1.0f32; 8]; 3];
            let mut got16 = std::vec![[1.0f32; 16]; 3];
            assert!(dense_soa::<_, _, 8, true>(k, &w, &b, &x8, &[], &mut got8));
            assert!(dense_soa::<_, _, 16, true>(k, &w, &b, &x16, &[], &mut got16));
            for (r, want) in [0.0f32, 0.0, 2.0].into_iter().enumerate() {
                assert!(
                    got8[r]
                        .iter()
                        .chain(&got16[r])
                        .all(|v| v.to_bits() == want.to_bits()),
                    "{k:?} row {r}"
                );
            }
            // One sample, 13 rows: the 8-row, 4-row and 1-row paths.
            let w13 = [tiny; 8 * 13];
            let b13: [f32; 13] = core::array::from_fn(|r| b[r % 3]);
            let mut one = [1.0f32; 13];
            assert!(dense_one::<_, _, true>(k, &w13, &b13, &[-tiny; 8], &[], &mut one));
            let want13: [u32; 13] = core::array::from_fn(|r| [0.0f32, 0.0, 2.0][r % 3].to_bits());
            assert_eq!(one.map(f32::to_bits), want13, "{k:?} one sample");
        }
    }

    /// The fused multiply-add rounds once: `(1 + 2⁻²³)(1 − 2⁻²³) − 1 = −2⁻⁴⁶` exactly, which a
    /// multiply then an add rounds to 0.
    #[test]
    fn the_multiply_add_is_fused_on_every_path() {
        let (a, b, c) = (1.0 + f32::EPSILON, 1.0 - f32::EPSILON, -1.0f32);
        let exact = -(2.0f32.powi(-46));
        assert_eq!(crate::Real::fmadd(a, b, c), exact);
        assert_eq!(dense::Portable.mul_add(a, b, c), exact);
        if detected() >= Kernel::Avx2 {
            // SAFETY: the CPU has FMA (detected above).
            assert_eq!(unsafe { fmaf_native(a, b, c) }, exact);
        }
    }
}
