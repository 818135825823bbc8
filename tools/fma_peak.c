/* The rooflines of the speed report, on one core:
 * - f32 FMA peak: 16 independent chains of acc = acc * a + b for 256-bit and 512-bit vectors;
 *   prints "peak_gflops=<best width's GFLOP/s>" (on a CPU without 512-bit vectors the compiler
 *   splits them, which only lowers that width);
 * - read bandwidth of a buffer of KB kibibytes (argv[1], default 90: the weights of the MAF
 *   5x64x64 bench model, more than an L1 cache holds), summed over and over as a single-sample
 *   log_prob reads its weights; prints "read_gbs=<GB/s>".
 * Build: cc -O3 -march=native -ffp-contract=fast fma_peak.c */
#include <stdlib.h>
#include <stdio.h>
#include <time.h>
typedef float v8 __attribute__((vector_size(32)));
typedef float v16 __attribute__((vector_size(64)));
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
volatile float sink;
#define PEAK(NAME, V, LANES)                                                        \
    static double NAME(void) {                                                      \
        double best = 0;                                                            \
        for (int trial = 0; trial < 5; trial++) {                                   \
            V acc[16], a = (V){0} + 0.9999999f, b = (V){0} + 1e-7f;                 \
            for (int j = 0; j < 16; j++) acc[j] = (V){0} + 0.001f * j;              \
            long iters = 20000000;                                                  \
            double t0 = now();                                                      \
            for (long i = 0; i < iters; i++) {                                      \
                for (int j = 0; j < 16; j++) acc[j] = acc[j] * a + b;               \
                __asm__ volatile("" : "+v"(a));                                     \
            }                                                                       \
            double dt = now() - t0;                                                 \
            V s = acc[0];                                                           \
            for (int j = 1; j < 16; j++) s += acc[j];                               \
            sink = s[0];                                                            \
            double g = 2.0 * LANES * 16 * iters / dt / 1e9;                         \
            if (g > best) best = g;                                                 \
        }                                                                           \
        return best;                                                                \
    }
PEAK(peak256, v8, 8)
PEAK(peak512, v16, 16)
static double read_gbs(long kb) {
    long n = kb * 256 / 64 * 64; /* floats, a multiple of 64 */
    v16 *buf = aligned_alloc(64, n * 4);
    if (!buf) return 0;
    for (long i = 0; i < n / 16; i++) buf[i] = (v16){0} + 1.0f;
    double best = 0;
    for (int trial = 0; trial < 5; trial++) {
        long reps = 200000000 / n + 1;
        v16 acc[4] = {{0}};
        double t0 = now();
        for (long r = 0; r < reps; r++) {
            for (long i = 0; i < n / 16; i += 4)
                for (int j = 0; j < 4; j++) acc[j] += buf[i + j];
            __asm__ volatile("" : : "r"(buf) : "memory");
        }
        double dt = now() - t0;
        sink = acc[0][0] + acc[1][0] + acc[2][0] + acc[3][0];
        double g = 4.0 * n * reps / dt / 1e9;
        if (g > best) best = g;
    }
    free(buf);
    return best;
}
int main(int argc, char **argv) {
    double a = peak256(), b = peak512();
    printf("peak_gflops=%.1f\n", a > b ? a : b);
    printf("read_gbs=%.1f\n", read_gbs(argc > 1 ? atol(argv[1]) : 90));
    return 0;
}
