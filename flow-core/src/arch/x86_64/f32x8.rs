//! The single-sample `f32` kernel in AVX2 intrinsics: each row's eight partial sums are one
//! 256-bit register (lane `j` = elements `j, j + 8, …`, as [`crate::nn::dense::dot_lanes`]), eight rows in
//! flight sharing each input load, the tail through masked loads and a blend (lanes past the tail
//! keep their value, as in the portable order), and the tree `((l₀+l₄)+(l₂+l₆)) + ((l₁+l₅)+(l₃+l₇))`
//! of four rows at once by shuffles. Inlined only into the functions of `mod.rs`, which are compiled for
//! AVX2 and FMA.

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
