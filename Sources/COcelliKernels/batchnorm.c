// Darknet's batch normalization in training, fused with leaky: the per-channel sums of the
// statistics and of the backward, and the two elementwise passes. x is [rows][C], row-major.
// The Swift side (Normalization.swift) splits the rows into fixed blocks, runs these per block
// on its threads and adds the blocks' Double sums in order, so results do not depend on the
// thread count.
#include "kernels_internal.h"

// Rows are summed in Float over chunks of CHUNK rows, each chunk added into the Double sums.
enum { CHUNK = 8 };

static inline __attribute__((always_inline))
void bn_sums_body(const float *restrict x, long r0, long r1, long C, const float *restrict shift,
                  float *restrict f1, float *restrict f2, double *restrict s1, double *restrict s2) {
    for (long r = r0; r < r1; r += CHUNK) {
        long end = r + CHUNK < r1 ? r + CHUNK : r1;
        for (long j = 0; j < C; j++) { f1[j] = 0; f2[j] = 0; }
        for (long i = r; i < end; i++) {
            const float *xr = x + i * C;
            for (long j = 0; j < C; j++) {
                float d = xr[j] - shift[j];
                f1[j] += d;
                f2[j] += d * d;
            }
        }
        for (long j = 0; j < C; j++) { s1[j] += f1[j]; s2[j] += f2[j]; }
    }
}

// The value before the activation; one definition so that forward and backward agree on its sign.
static inline __attribute__((always_inline)) float bn_pre(float x, float mean, float mul, float beta) { return (x - mean) * mul + beta; }

static inline __attribute__((always_inline))
void bn_apply_body(const float *restrict x, float *restrict y, long r0, long r1, long C,
                   const float *restrict mean, const float *restrict mul, const float *restrict beta, int leaky, float slope) {
    for (long i = r0; i < r1; i++) {
        const float *xr = x + i * C;
        float *yr = y + i * C;
        if (leaky) {
            for (long j = 0; j < C; j++) { float v = bn_pre(xr[j], mean[j], mul[j], beta[j]); yr[j] = v > 0 ? v : v * slope; }
        } else {
            for (long j = 0; j < C; j++) yr[j] = bn_pre(xr[j], mean[j], mul[j], beta[j]);
        }
    }
}

static inline __attribute__((always_inline))
void bn_backward_sums_body(const float *restrict x, const float *restrict dy, long r0, long r1, long C,
                           const float *restrict mean, const float *restrict mul, const float *restrict beta,
                           const float *restrict invS, int leaky, float slope,
                           float *restrict f1, float *restrict f2, double *restrict sg, double *restrict sgx) {
    for (long r = r0; r < r1; r += CHUNK) {
        long end = r + CHUNK < r1 ? r + CHUNK : r1;
        for (long j = 0; j < C; j++) { f1[j] = 0; f2[j] = 0; }
        for (long i = r; i < end; i++) {
            const float *xr = x + i * C, *dr = dy + i * C;
            for (long j = 0; j < C; j++) {
                float g = dr[j];
                if (leaky) g = bn_pre(xr[j], mean[j], mul[j], beta[j]) > 0 ? g : g * slope;
                f1[j] += g;
                f2[j] += g * ((xr[j] - mean[j]) * invS[j]);
            }
        }
        for (long j = 0; j < C; j++) { sg[j] += f1[j]; sgx[j] += f2[j]; }
    }
}

static inline __attribute__((always_inline))
void bn_backward_dx_body(const float *restrict x, const float *restrict dy, float *restrict dx, long r0, long r1, long C,
                         const float *restrict mean, const float *restrict mul, const float *restrict beta,
                         const float *restrict invS, const float *restrict dBetaM,
                         const float *restrict b, int leaky, float slope) {
    for (long i = r0; i < r1; i++) {
        const float *xr = x + i * C, *dr = dy + i * C;
        float *o = dx + i * C;
        for (long j = 0; j < C; j++) {
            float g = dr[j];
            if (leaky) g = bn_pre(xr[j], mean[j], mul[j], beta[j]) > 0 ? g : g * slope;
            float xhat = (xr[j] - mean[j]) * invS[j];
            o[j] = mul[j] * (g - dBetaM[j]) - xhat * b[j];
        }
    }
}

#if OCELLI_X86
__attribute__((target("avx2,fma")))
static void bn_sums_avx2(const float *x, long r0, long r1, long C, const float *shift, float *f1, float *f2, double *s1, double *s2) {
    bn_sums_body(x, r0, r1, C, shift, f1, f2, s1, s2);
}
__attribute__((target("avx2,fma")))
static void bn_apply_avx2(const float *x, float *y, long r0, long r1, long C, const float *mean, const float *mul, const float *beta, int leaky, float slope) {
    bn_apply_body(x, y, r0, r1, C, mean, mul, beta, leaky, slope);
}
__attribute__((target("avx2,fma")))
static void bn_backward_sums_avx2(const float *x, const float *dy, long r0, long r1, long C, const float *mean, const float *mul,
                                  const float *beta, const float *invS, int leaky, float slope,
                                  float *f1, float *f2, double *sg, double *sgx) {
    bn_backward_sums_body(x, dy, r0, r1, C, mean, mul, beta, invS, leaky, slope, f1, f2, sg, sgx);
}
__attribute__((target("avx2,fma")))
static void bn_backward_dx_avx2(const float *x, const float *dy, float *dx, long r0, long r1, long C, const float *mean,
                                const float *mul, const float *beta, const float *invS,
                                const float *dBetaM, const float *b, int leaky, float slope) {
    bn_backward_dx_body(x, dy, dx, r0, r1, C, mean, mul, beta, invS, dBetaM, b, leaky, slope);
}
#endif

void ocelli_bn_sums(const float *x, long r0, long r1, long C, const float *shift, float *scratch, double *s1, double *s2) {
#if OCELLI_X86
    if (ocelli_kernel_isa() == 1) { bn_sums_avx2(x, r0, r1, C, shift, scratch, scratch + C, s1, s2); return; }
#endif
    bn_sums_body(x, r0, r1, C, shift, scratch, scratch + C, s1, s2);
}

void ocelli_bn_apply(const float *x, float *y, long r0, long r1, long C, const float *mean, const float *mul,
                     const float *beta, int leaky, float slope) {
#if OCELLI_X86
    if (ocelli_kernel_isa() == 1) { bn_apply_avx2(x, y, r0, r1, C, mean, mul, beta, leaky, slope); return; }
#endif
    bn_apply_body(x, y, r0, r1, C, mean, mul, beta, leaky, slope);
}

void ocelli_bn_backward_sums(const float *x, const float *dy, long r0, long r1, long C, const float *mean,
                             const float *mul, const float *beta, const float *invS, int leaky, float slope,
                             float *scratch, double *sg, double *sgx) {
#if OCELLI_X86
    if (ocelli_kernel_isa() == 1) {
        bn_backward_sums_avx2(x, dy, r0, r1, C, mean, mul, beta, invS, leaky, slope, scratch, scratch + C, sg, sgx);
        return;
    }
#endif
    bn_backward_sums_body(x, dy, r0, r1, C, mean, mul, beta, invS, leaky, slope, scratch, scratch + C, sg, sgx);
}

void ocelli_bn_backward_dx(const float *x, const float *dy, float *dx, long r0, long r1, long C, const float *mean,
                           const float *mul, const float *beta, const float *invS, const float *dBetaM,
                           const float *b, int leaky, float slope) {
#if OCELLI_X86
    if (ocelli_kernel_isa() == 1) { bn_backward_dx_avx2(x, dy, dx, r0, r1, C, mean, mul, beta, invS, dBetaM, b, leaky, slope); return; }
#endif
    bn_backward_dx_body(x, dy, dx, r0, r1, C, mean, mul, beta, invS, dBetaM, b, leaky, slope);
}
