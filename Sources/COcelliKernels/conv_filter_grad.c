#include "kernels_internal.h"

// ---------------------------------------------------------------------------------------------
// Filter and bias gradient of a convolution with a small window (KH·KW·Cin ≤ 12, e.g. a first
// layer on gray or RGB images), with the gradient of a fused relu/leaky applied on the fly:
//   dz[p][o] = dy[p][o] · (y[p][o] > 0 ? 1 : slope)      (dz = dy when y is NULL)
//   dW[k][o] += Σ_p patch[p][k] · dz[p][o],   db[o] += Σ_p dz[p][o]
// over output pixels p of rows rowBegin..<rowEnd (row = n·OH + oy). One pass over dy and y:
// the patches of a block of pixels are gathered once, then each 8-channel block of dz meets
// them with the kernel's KD + 1 accumulators (the bias as a patch value of 1) in registers.

enum { FGS_MAXK = 12, FGS_BLOCK = 256 };

typedef struct {
    const float *x; long H, W, C;
    const float *dy, *y; float slope; long O, OH, OW;
    long KH, KW, sh, sw, dh, dw, pt, pl;
} fgs_geom;

// cols[p][0..<kd] = the window of pixel p (zeros outside the input), cols[p][kd] = 1.
// (no_builtin: the per-tap copies are a few floats, not worth a memcpy call.)
__attribute__((no_builtin("memcpy"), no_builtin("memset")))
static void fgs_gather(const fgs_geom *g, long p0, long np, float *cols, long stride) {
    const long kd = g->KH * g->KW * g->C, C = g->C;
    long row = p0 / g->OW, ox = p0 % g->OW;
    long n = row / g->OH, oy = row % g->OH;
    const long rowStep = g->dh * g->W * C, colStep = g->dw * C;
    for (long q = 0; q < np; q++) {
        float *c = cols + q * stride;
        long y0 = oy * g->sh - g->pt, x0 = ox * g->sw - g->pl;
        if (y0 >= 0 && y0 + (g->KH - 1) * g->dh < g->H && x0 >= 0 && x0 + (g->KW - 1) * g->dw < g->W) {
            // The whole window inside the input (most pixels): plain strided copies.
            const float *base = g->x + ((n * g->H + y0) * g->W + x0) * C;
            if (C == 1 && g->KH == 3 && g->KW == 3) {
                c[0] = base[0]; c[1] = base[colStep]; c[2] = base[2 * colStep];
                c[3] = base[rowStep]; c[4] = base[rowStep + colStep]; c[5] = base[rowStep + 2 * colStep];
                c[6] = base[2 * rowStep]; c[7] = base[2 * rowStep + colStep]; c[8] = base[2 * rowStep + 2 * colStep];
            } else {
                long k = 0;
                for (long kh = 0; kh < g->KH; kh++)
                    for (long kw = 0; kw < g->KW; kw++, k += C)
                        for (long ci = 0; ci < C; ci++) c[k + ci] = base[kh * rowStep + kw * colStep + ci];
            }
            c[kd] = 1.0f;
            if (++ox == g->OW) { ox = 0; if (++oy == g->OH) { oy = 0; n++; } }
            continue;
        }
        long k = 0;
        for (long kh = 0; kh < g->KH; kh++) {
            long iy = oy * g->sh + kh * g->dh - g->pt;
            int rowInside = iy >= 0 && iy < g->H;
            const float *xr = g->x + (n * g->H + iy) * g->W * C;
            for (long kw = 0; kw < g->KW; kw++, k += C) {
                long ix = ox * g->sw + kw * g->dw - g->pl;
                if (rowInside && ix >= 0 && ix < g->W) {
                    const float *src = xr + ix * C;
                    for (long ci = 0; ci < C; ci++) c[k + ci] = src[ci];
                } else {
                    for (long ci = 0; ci < C; ci++) c[k + ci] = 0.0f;
                }
            }
        }
        c[kd] = 1.0f;
        if (++ox == g->OW) { ox = 0; if (++oy == g->OH) { oy = 0; n++; } }
    }
}

static void fgs_portable(const fgs_geom *g, const float *cols, long stride, long p0, long np,
                         float *dW, float *db) {
    long kd = g->KH * g->KW * g->C, O = g->O;
    for (long q = 0; q < np; q++) {
        const float *gy = g->dy + (p0 + q) * O, *yy = g->y ? g->y + (p0 + q) * O : NULL;
        const float *c = cols + q * stride;
        for (long o = 0; o < O; o++) {
            float dz = gy[o];
            if (yy && !(yy[o] > 0)) dz *= g->slope;
            for (long k = 0; k < kd; k++) dW[k * O + o] += c[k] * dz;
            db[o] += dz;
        }
    }
}

#if OCELLI_X86
static inline __attribute__((always_inline, target("avx2,fma")))
void fgs_block_avx2(const int KD, const fgs_geom *g, const float *cols, long stride, long np,
                    long p0, float *dW, float *db) {
    const long O = g->O;
    const __m256 zero = _mm256_setzero_ps(), sv = _mm256_set1_ps(g->slope);
    static const int laneMask[16] = { -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0 };
    for (long o0 = 0; o0 < O; o0 += 8) {
        long w = O - o0 < 8 ? O - o0 : 8;
        __m256i m = _mm256_loadu_si256((const __m256i *)(laneMask + 8 - w));
        __m256 acc[FGS_MAXK + 1];
        for (int k = 0; k <= KD; k++) acc[k] = zero;
        const float *gy = g->dy + p0 * O + o0, *yy = g->y ? g->y + p0 * O + o0 : NULL;
        // Four variants (fused activation or not, full or partial channel block), each a
        // tight loop: dz, then KD + 1 broadcast-FMAs.
#define FGS_LOOP(LOAD_DZ) \
        for (long q = 0; q < np; q++) { \
            __m256 dz = LOAD_DZ; \
            const float *c = cols + q * stride; \
            for (int k = 0; k <= KD; k++) acc[k] = _mm256_fmadd_ps(_mm256_broadcast_ss(c + k), dz, acc[k]); \
        }
#define FGS_MASKED(v, yv) _mm256_blendv_ps(_mm256_mul_ps(v, sv), v, _mm256_cmp_ps(yv, zero, _CMP_GT_OQ))
        if (yy && w == 8) {
            FGS_LOOP(FGS_MASKED(_mm256_loadu_ps(gy + q * O), _mm256_loadu_ps(yy + q * O)))
        } else if (yy) {
            FGS_LOOP(FGS_MASKED(_mm256_maskload_ps(gy + q * O, m), _mm256_maskload_ps(yy + q * O, m)))
        } else if (w == 8) {
            FGS_LOOP(_mm256_loadu_ps(gy + q * O))
        } else {
            FGS_LOOP(_mm256_maskload_ps(gy + q * O, m))
        }
#undef FGS_MASKED
#undef FGS_LOOP
        float t[8] __attribute__((aligned(32)));
        for (int k = 0; k <= KD; k++) {
            _mm256_store_ps(t, acc[k]);
            float *dst = k < KD ? dW + k * O + o0 : db + o0;
            for (long j = 0; j < w; j++) dst[j] += t[j];
        }
    }
}

__attribute__((target("avx2,fma")))
static void fgs_avx2(const fgs_geom *g, const float *cols, long stride, long p0, long np, float *dW, float *db) {
    switch (g->KH * g->KW * g->C) {
#define FGS_CASE(K) case K: fgs_block_avx2(K, g, cols, stride, np, p0, dW, db); break;
    FGS_CASE(1) FGS_CASE(2) FGS_CASE(3) FGS_CASE(4) FGS_CASE(5) FGS_CASE(6)
    FGS_CASE(7) FGS_CASE(8) FGS_CASE(9) FGS_CASE(10) FGS_CASE(11) FGS_CASE(12)
#undef FGS_CASE
    default: fgs_portable(g, cols, stride, p0, np, dW, db);
    }
}
#endif

int ocelli_conv_filter_grad_small(const float *x, long H, long W, long C,
                                  const float *dy, const float *y, float slope, long O, long OH, long OW,
                                  long KH, long KW, long sh, long sw, long dh, long dw, long pt, long pl,
                                  long rowBegin, long rowEnd, float *dW, float *db) {
    long kd = KH * KW * C;
    if (kd > FGS_MAXK) return 0;
    fgs_geom g = { x, H, W, C, dy, y, slope, O, OH, OW, KH, KW, sh, sw, dh, dw, pt, pl };
    float cols[FGS_BLOCK * (FGS_MAXK + 1)];
    long stride = kd + 1;
    for (long p0 = rowBegin * OW; p0 < rowEnd * OW; p0 += FGS_BLOCK) {
        long np = rowEnd * OW - p0 < FGS_BLOCK ? rowEnd * OW - p0 : FGS_BLOCK;
        fgs_gather(&g, p0, np, cols, stride);
#if OCELLI_X86
        if (ocelli_kernel_isa() == 1) { fgs_avx2(&g, cols, stride, p0, np, dW, db); continue; }
#endif
        fgs_portable(&g, cols, stride, p0, np, dW, db);
    }
    return 1;
}
