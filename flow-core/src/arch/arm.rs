//! Cortex-M4F/M7 (and Armv8-M/R): the dot product of the dense layers in assembly, because
//! stable Rust can neither name the fused `vfma.f32` nor (before rust-lang/rust#159988) pass
//! `f32` registers to inline assembly on these targets.
//!
//! `flow_dot_f32(w, x, n)` computes [`crate::nn::dense::dot_lanes`]'s order exactly: eight
//! accumulators `s0–s7`, lane `j` taking elements `j, j + 8, …` with `vfma.f32` (one rounding),
//! the tail into lanes `0, 1, …`, then `((l₀+l₄)+(l₂+l₆)) + ((l₁+l₅)+(l₃+l₇))`. Per eight
//! multiply-adds the loop is two `vldmia` (eight weights, eight inputs), eight `vfma` and the
//! loop count: 1.25 instructions per multiply-add.

core::arch::global_asm!(
    // Module-level assembly does not see the target's features: name the FPU (FPv4-SP, a
    // subset of every FPU `build.rs` enables this file for).
    ".syntax unified",
    ".thumb",
    ".fpu fpv4-sp-d16",
    ".section .text.flow_dot_f32,\"ax\",%progbits",
    ".global flow_dot_f32",
    ".type flow_dot_f32,%function",
    ".thumb_func",
    ".p2align 2",
    "flow_dot_f32:",
    // s16–s23 are callee-saved (AAPCS-VFP); they hold eight inputs.
    "vpush {{s16-s23}}",
    "movs r3, #0",
    "vmov s0, r3",
    "vmov.f32 s1, s0",
    "vmov.f32 s2, s0",
    "vmov.f32 s3, s0",
    "vmov.f32 s4, s0",
    "vmov.f32 s5, s0",
    "vmov.f32 s6, s0",
    "vmov.f32 s7, s0",
    "lsrs r3, r2, #3",
    "beq 2f",
    "1:",
    "vldmia r0!, {{s8-s15}}",
    "vldmia r1!, {{s16-s23}}",
    "vfma.f32 s0, s8, s16",
    "vfma.f32 s1, s9, s17",
    "vfma.f32 s2, s10, s18",
    "vfma.f32 s3, s11, s19",
    "vfma.f32 s4, s12, s20",
    "vfma.f32 s5, s13, s21",
    "vfma.f32 s6, s14, s22",
    "vfma.f32 s7, s15, s23",
    "subs r3, r3, #1",
    "bne 1b",
    "2:",
    // The tail: n mod 8 elements into lanes 0, 1, …
    "ands r2, r2, #7",
    "beq 3f",
    "vldr s8, [r0, #0]",
    "vldr s16, [r1, #0]",
    "vfma.f32 s0, s8, s16",
    "cmp r2, #1",
    "beq 3f",
    "vldr s9, [r0, #4]",
    "vldr s17, [r1, #4]",
    "vfma.f32 s1, s9, s17",
    "cmp r2, #2",
    "beq 3f",
    "vldr s10, [r0, #8]",
    "vldr s18, [r1, #8]",
    "vfma.f32 s2, s10, s18",
    "cmp r2, #3",
    "beq 3f",
    "vldr s11, [r0, #12]",
    "vldr s19, [r1, #12]",
    "vfma.f32 s3, s11, s19",
    "cmp r2, #4",
    "beq 3f",
    "vldr s12, [r0, #16]",
    "vldr s20, [r1, #16]",
    "vfma.f32 s4, s12, s20",
    "cmp r2, #5",
    "beq 3f",
    "vldr s13, [r0, #20]",
    "vldr s21, [r1, #20]",
    "vfma.f32 s5, s13, s21",
    "cmp r2, #6",
    "beq 3f",
    "vldr s14, [r0, #24]",
    "vldr s22, [r1, #24]",
    "vfma.f32 s6, s14, s22",
    "3:",
    "vadd.f32 s0, s0, s4",
    "vadd.f32 s2, s2, s6",
    "vadd.f32 s1, s1, s5",
    "vadd.f32 s3, s3, s7",
    "vadd.f32 s0, s0, s2",
    "vadd.f32 s1, s1, s3",
    "vadd.f32 s0, s0, s1",
    "vpop {{s16-s23}}",
    "bx lr",
    ".size flow_dot_f32, . - flow_dot_f32",
);

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
    /// `Σ wᵢ xᵢ` over `n` elements in the order of the module docs.
    fn flow_dot_f32(w: *const f32, x: *const f32, n: usize) -> f32;
    /// `out[r] = b[r] + Σᵢ w[r·n + i] x[i]` for `r < m`.
    fn flow_dense_f32(w: *const f32, b: *const f32, x: *const f32, n: usize, m: usize, out: *mut f32);
}

/// `out[r] = b[r] + w_r · x` for the rows that `w` (`n = x.len()` per row), `b` and `out` all
/// have, each dot product in [`dot`]'s order: a dense layer without context in one call.
#[inline(always)]
pub fn dense(w: &[f32], b: &[f32], x: &[f32], out: &mut [f32]) {
    let n = x.len();
    if n == 0 {
        return;
    }
    let m = (w.len() / n).min(b.len()).min(out.len());
    // SAFETY: the routine reads `w[..m·n]` (inside `w`: `m ≤ w.len() / n`), `b[..m]`, `x[..n]`,
    // and writes `out[..m]`, all inside their slices; `out` does not overlap the inputs (a `&mut`
    // slice). It saves and restores every callee-saved register it uses (r4–r8, s16–s23), and
    // its 32 bytes of zeros live below the saved registers and are released before it returns.
    unsafe { flow_dense_f32(w.as_ptr(), b.as_ptr(), x.as_ptr(), n, m, out.as_mut_ptr()) }
}

/// `Σ wᵢ xᵢ` over the common length of `w` and `x`, in [`crate::nn::dense::dot_lanes`]'s order.
#[inline(always)]
pub fn dot(w: &[f32], x: &[f32]) -> f32 {
    let n = w.len().min(x.len());
    // SAFETY: the routine reads exactly elements `0..n` of each pointer (`n / 8` blocks with
    // `vldmia`, then `n mod 8` single loads), and `n` is at most both lengths; `f32` slices are
    // 4-byte aligned, as `vldmia`/`vldr` need. It follows the AAPCS-VFP calling convention: it
    // saves and restores the callee-saved `s16–s23` it uses and writes only caller-saved
    // registers and flags, and it touches no other memory.
    unsafe { flow_dot_f32(w.as_ptr(), x.as_ptr(), n) }
}
