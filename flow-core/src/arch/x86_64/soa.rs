//! The batch `f32` kernels in intrinsics, a vector of samples per register (structure of
//! arrays): `R` rows at a time keep `8 · R` accumulators (lane `j`, row `r`), each input element
//! is loaded once for the `R` rows and each weight broadcast once for the vector's samples; the
//! tree is vertical adds. The same operations in the same order per sample as
//! [`crate::nn::dense::dot_lanes`]. `soa8` (256-bit, `R = 3` needs AVX-512's 32 registers) runs inside the
//! functions of `mod.rs` compiled for AVX2 and FMA, `soa16` (512-bit) inside those compiled for AVX-512.

macro_rules! soa_kernel {
    ($name:ident, $v:ty, $lanes:literal, $zero:ident, $load:ident, $store:ident, $set1:ident,
     $fmadd:ident, $add:ident, $max:ident) => {
        pub(super) mod $name {
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
            pub(in crate::arch::x86_64) fn dense<const R: usize, const NB: usize, const RELU: bool>(
                w: &[f32],
                b: &[f32],
                x: &[[f32; NB]],
                c: &[[f32; NB]],
                out: &mut [[f32; NB]],
                h: usize,
            ) {
                let Some((n_in, m)) = super::super::rows(w.len(), b.len(), out.len(), x.len() + c.len())
                else {
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
