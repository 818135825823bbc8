//! Cortex-M4F/M7 (and Armv8-M/R): the dense layers in assembly, because stable Rust can neither
//! name the fused `vfma.f32` nor (before rust-lang/rust#159988) pass `f32` registers to inline
//! assembly on these targets.
//!
//! Each dot product is [`crate::nn::dense::dot_lanes`]'s order exactly: eight accumulators
//! `s0–s7`, lane `j` taking elements `j, j + 8, …` with `vfma.f32` (one rounding), the tail into
//! lanes `0, 1, …`, then `((l₀+l₄)+(l₂+l₆)) + ((l₁+l₅)+(l₃+l₇))`. Per eight multiply-adds the
//! loop is two `vldmia` (eight weights, eight inputs) and eight `vfma`.

// `flow_dense_f32(w, b, x, n, m, out)`: `out[r] = b[r] + Σᵢ w[r·n + i] x[i]` for `r < m`, each dot
// product in the order above. One call per layer: per row, eight zeros from the stack, the blocks
// (1.125 instructions per multiply-add), the tail, the tree, the bias and the store.
core::arch::global_asm!(
    ".syntax unified",
    ".thumb",
    ".fpu fpv4-sp-d16",
    ".section .text.flow_dense_f32,\"ax\",%progbits",
    ".global flow_dense_f32",
    ".type flow_dense_f32,%function",
    ".thumb_func",
    ".p2align 2",
    "flow_dense_f32:",
    // r0 = w, r1 = b, r2 = x, r3 = n; m and out on the stack.
    "push {{r4-r8, lr}}",
    "vpush {{s16-s23}}",
    "ldr r4, [sp, #56]",
    "ldr r5, [sp, #60]",
    // Eight zeros below the saved registers, reloaded per row with one vldmia.
    "sub sp, sp, #32",
    "movs r6, #0",
    "vmov s0, r6",
    "vmov.f32 s1, s0",
    "vmov.f32 s2, s0",
    "vmov.f32 s3, s0",
    "vmov.f32 s4, s0",
    "vmov.f32 s5, s0",
    "vmov.f32 s6, s0",
    "vmov.f32 s7, s0",
    "vstmia sp, {{s0-s7}}",
    "cmp r4, #0",
    "beq 19f",
    "10:",
    "vldmia sp, {{s0-s7}}",
    "mov r7, r2",
    // Blocks two at a time (the loop count costs 0.125 instead of 0.25 per multiply-add), then
    // an odd one.
    "lsrs r6, r3, #4",
    "beq 15f",
    "11:",
    "vldmia r0!, {{s8-s15}}",
    "vldmia r7!, {{s16-s23}}",
    "vfma.f32 s0, s8, s16",
    "vfma.f32 s1, s9, s17",
    "vfma.f32 s2, s10, s18",
    "vfma.f32 s3, s11, s19",
    "vfma.f32 s4, s12, s20",
    "vfma.f32 s5, s13, s21",
    "vfma.f32 s6, s14, s22",
    "vfma.f32 s7, s15, s23",
    "vldmia r0!, {{s8-s15}}",
    "vldmia r7!, {{s16-s23}}",
    "vfma.f32 s0, s8, s16",
    "vfma.f32 s1, s9, s17",
    "vfma.f32 s2, s10, s18",
    "vfma.f32 s3, s11, s19",
    "vfma.f32 s4, s12, s20",
    "vfma.f32 s5, s13, s21",
    "vfma.f32 s6, s14, s22",
    "vfma.f32 s7, s15, s23",
    "subs r6, r6, #1",
    "bne 11b",
    "15:",
    "tst r3, #8",
    "beq 12f",
    "vldmia r0!, {{s8-s15}}",
    "vldmia r7!, {{s16-s23}}",
    "vfma.f32 s0, s8, s16",
    "vfma.f32 s1, s9, s17",
    "vfma.f32 s2, s10, s18",
    "vfma.f32 s3, s11, s19",
    "vfma.f32 s4, s12, s20",
    "vfma.f32 s5, s13, s21",
    "vfma.f32 s6, s14, s22",
    "vfma.f32 s7, s15, s23",
    "12:",
    "ands r8, r3, #7",
    "beq 14f",
    "vldr s8, [r0, #0]",
    "vldr s16, [r7, #0]",
    "vfma.f32 s0, s8, s16",
    "cmp r8, #1",
    "beq 13f",
    "vldr s9, [r0, #4]",
    "vldr s17, [r7, #4]",
    "vfma.f32 s1, s9, s17",
    "cmp r8, #2",
    "beq 13f",
    "vldr s10, [r0, #8]",
    "vldr s18, [r7, #8]",
    "vfma.f32 s2, s10, s18",
    "cmp r8, #3",
    "beq 13f",
    "vldr s11, [r0, #12]",
    "vldr s19, [r7, #12]",
    "vfma.f32 s3, s11, s19",
    "cmp r8, #4",
    "beq 13f",
    "vldr s12, [r0, #16]",
    "vldr s20, [r7, #16]",
    "vfma.f32 s4, s12, s20",
    "cmp r8, #5",
    "beq 13f",
    "vldr s13, [r0, #20]",
    "vldr s21, [r7, #20]",
    "vfma.f32 s5, s13, s21",
    "cmp r8, #6",
    "beq 13f",
    "vldr s14, [r0, #24]",
    "vldr s22, [r7, #24]",
    "vfma.f32 s6, s14, s22",
    "13:",
    // Past this row's tail.
    "add r0, r0, r8, lsl #2",
    "14:",
    "vadd.f32 s0, s0, s4",
    "vadd.f32 s2, s2, s6",
    "vadd.f32 s1, s1, s5",
    "vadd.f32 s3, s3, s7",
    "vadd.f32 s0, s0, s2",
    "vadd.f32 s1, s1, s3",
    "vadd.f32 s0, s0, s1",
    "vldmia r1!, {{s1}}",
    "vadd.f32 s0, s1, s0",
    "vstmia r5!, {{s0}}",
    "subs r4, r4, #1",
    "bne 10b",
    "19:",
    "add sp, sp, #32",
    "vpop {{s16-s23}}",
    "pop {{r4-r8, pc}}",
    ".size flow_dense_f32, . - flow_dense_f32",
);

unsafe extern "C" {
    /// `out[r] = b[r] + Σᵢ w[r·n + i] x[i]` for `r < m`.
    fn flow_dense_f32(w: *const f32, b: *const f32, x: *const f32, n: usize, m: usize, out: *mut f32);
}

/// `out[r] = b[r] + w_r · x` for the rows that `w` (`n = x.len()` per row), `b` and `out` all
/// have, each dot product in the module's order: a dense layer without context in one call.
#[inline(always)]
pub fn dense(w: &[f32], b: &[f32], x: &[f32], out: &mut [f32]) {
    let n = x.len();
    // Rows of width 0 (a layer whose only inputs are the context) are `b[r] + 0`.
    let m = w
        .len()
        .checked_div(n)
        .unwrap_or(b.len())
        .min(b.len())
        .min(out.len());
    // SAFETY: the routine reads `w[..m·n]` (inside `w`: `m ≤ w.len() / n`, or nothing if n = 0), `b[..m]`, `x[..n]`,
    // and writes `out[..m]`, all inside their slices; `out` does not overlap the inputs (a `&mut`
    // slice). It saves and restores every callee-saved register it uses (r4–r8, s16–s23), and
    // its 32 bytes of zeros live below the saved registers and are released before it returns.
    unsafe { flow_dense_f32(w.as_ptr(), b.as_ptr(), x.as_ptr(), n, m, out.as_mut_ptr()) }
}

/// `out = W [x, c] + b` for the rows that `w`, `b` and `out` all have, in the order of
/// [`crate::nn::dense::dense_with`]: without context one call for the layer; with context two
/// calls per row, `v = b_r + w_rx · x`, then `v + w_rc · c` (the same two additions).
/// `false` unless every operand is `f32`.
#[inline(always)]
pub fn dense_f32<S: crate::Real, W: crate::Weight>(
    w: &[W],
    b: &[W],
    x: &[S],
    c: &[S],
    out: &mut [S],
) -> bool {
    let (Some(w), Some(b), Some(x), Some(c)) = (W::f32s(w), W::f32s(b), S::f32s(x), S::f32s(c)) else {
        return false;
    };
    let Some(out) = S::f32s_mut(out) else { return false };
    let (kx, n_in) = (x.len(), x.len() + c.len());
    if n_in == 0 {
        return true; // rows of width 0: nothing to compute, as in the portable kernel
    }
    if c.is_empty() {
        dense(w, b, x, out);
        return true;
    }
    for ((row, bias), o) in w.chunks_exact(n_in).zip(b).zip(out.iter_mut()) {
        let (wx, wc) = row.split_at_checked(kx).unwrap_or((row, &[]));
        let mut v = [0.0f32];
        dense(wx, core::slice::from_ref(bias), x, &mut v);
        let partial = v;
        dense(wc, &partial, c, &mut v);
        *o = v[0];
    }
    true
}
