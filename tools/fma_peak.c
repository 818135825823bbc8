/* Single-core f32 FMA peak (the roofline of the speed report): 16 independent chains of
 * acc = acc * a + b per vector width; prints "peak_gflops=<best width's GFLOP/s>".
 * Build: cc -O3 -march=native -ffp-contract=fast fma_peak.c */
#include <stdio.h>
#include <time.h>
typedef float v8 __attribute__((vector_size(32)));
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
volatile float sink;
int main(void) {
    double best = 0;
    for (int trial = 0; trial < 5; trial++) {
        v8 acc[16], a = (v8){0} + 0.9999999f, b = (v8){0} + 1e-7f;
        for (int j = 0; j < 16; j++) acc[j] = (v8){0} + 0.001f * j;
        long iters = 20000000;
        double t0 = now();
        for (long i = 0; i < iters; i++) {
            for (int j = 0; j < 16; j++) acc[j] = acc[j] * a + b;
            __asm__ volatile("" : "+x"(a));
        }
        double dt = now() - t0;
        v8 s = acc[0];
        for (int j = 1; j < 16; j++) s += acc[j];
        sink = s[0];
        double g = 2.0 * 8 * 16 * iters / dt / 1e9;
        if (g > best) best = g;
    }
    printf("peak_gflops=%.1f\n", best);
    return 0;
}
