#include "kernels_internal.h"

// ---------------------------------------------------------------------------------------------
// Direct convolution.

// One tile: 6 output pixels x 16 output channels. rows[i] points at pixel i's input channels
// for the current kernel tap; w at the tap's [Cin][16] weight block.
static void conv_tile_portable(long Cin, const float *const rows[MR], const float *restrict w,
                               float acc[MR][NR]) {
    for (long ic = 0; ic < Cin; ic++) {
        const float *wr = w + ic * NR;
        for (int i = 0; i < MR; i++) {
            float a = rows[i][ic];
            for (int j = 0; j < NR; j++) acc[i][j] += a * wr[j];
        }
    }
}

typedef struct {
    const float *in; long H, W, Cin, inStride, KH, KW, sh, sw, dh, dw, pt, pl;
    const float *zeros;
} conv_geom;

static void conv_rows(const conv_geom *g, long n, long oy, long ox0, long kh, long kw,
                      const float *rows[MR], long npix) {
    long iy = oy * g->sh + kh * g->dh - g->pt;
    for (long i = 0; i < MR; i++) {
        long ix = (ox0 + i) * g->sw + kw * g->dw - g->pl;
        if (i < npix && iy >= 0 && iy < g->H && ix >= 0 && ix < g->W)
            rows[i] = g->in + ((n * g->H + iy) * g->W + ix) * g->inStride;
        else
            rows[i] = g->zeros;
    }
}

// Stores the first npix x nr values of a [MR][NR] tile plus the bias through max(v, slope·v).
__attribute__((noinline)) static void store_tile_scalar(const float *tile, float *out, long outPixelStride, long npix, long nr,
                              const float *bias, float slope) {
    for (long i = 0; i < npix; i++) {
        float *o = out + i * outPixelStride;
        for (long j = 0; j < nr; j++) {
            float v = tile[i * NR + j] + (bias ? bias[j] : 0.0f);
            o[j] = v > v * slope ? v : v * slope;
        }
    }
}

#if OCELLI_X86
// For output row oy: the kernel rows that read the input rather than padding, each as a pointer
// to input column x0 of its input row and a weight offset kh · wRowStride. Returns their count.
long ocelli_valid_kernel_rows(const float *in, long n, long H, long W, long Cin, long KH, long oy,
                              long strideH, long dilationH, long padTop, long x0, long wRowStride,
                              const float **rows, long *wOff) {
    long count = 0;
    for (long kh = 0; kh < KH; kh++) {
        long iy = oy * strideH + kh * dilationH - padTop;
        if (iy < 0 || iy >= H) continue;  // the whole kernel row reads padding: adds zero
        rows[count] = in + ((n * H + iy) * W + x0) * Cin;
        wOff[count] = kh * wRowStride;
        count++;
    }
    return count;
}

// One step of a 6x16 tile: the 16 weights at w times the input at each pixel pointer p0..p5,
// added to the accumulators c00..c51 in scope.
#define OCELLI_TILE_STEP(p0, p1, p2, p3, p4, p5, w) do { \
    __m256 b0_ = _mm256_loadu_ps(w), b1_ = _mm256_loadu_ps((w) + 8), a_; \
    a_ = _mm256_broadcast_ss(p0); c00 = _mm256_fmadd_ps(a_, b0_, c00); c01 = _mm256_fmadd_ps(a_, b1_, c01); \
    a_ = _mm256_broadcast_ss(p1); c10 = _mm256_fmadd_ps(a_, b0_, c10); c11 = _mm256_fmadd_ps(a_, b1_, c11); \
    a_ = _mm256_broadcast_ss(p2); c20 = _mm256_fmadd_ps(a_, b0_, c20); c21 = _mm256_fmadd_ps(a_, b1_, c21); \
    a_ = _mm256_broadcast_ss(p3); c30 = _mm256_fmadd_ps(a_, b0_, c30); c31 = _mm256_fmadd_ps(a_, b1_, c31); \
    a_ = _mm256_broadcast_ss(p4); c40 = _mm256_fmadd_ps(a_, b0_, c40); c41 = _mm256_fmadd_ps(a_, b1_, c41); \
    a_ = _mm256_broadcast_ss(p5); c50 = _mm256_fmadd_ps(a_, b0_, c50); c51 = _mm256_fmadd_ps(a_, b1_, c51); \
} while (0)

// Declares the accumulators of a tile, starting from the bias when the tile is full (npix == MR
// and nr == NR; the store adds it per element otherwise).
#define OCELLI_TILE_BEGIN(full, bias) \
    __m256 bl_ = (full) && (bias) ? _mm256_loadu_ps(bias) : _mm256_setzero_ps(); \
    __m256 bh_ = (full) && (bias) ? _mm256_loadu_ps((bias) + 8) : _mm256_setzero_ps(); \
    __m256 c00 = bl_, c01 = bh_, c10 = bl_, c11 = bh_, c20 = bl_, c21 = bh_; \
    __m256 c30 = bl_, c31 = bh_, c40 = bl_, c41 = bh_, c50 = bl_, c51 = bh_

#define OCELLI_TILE_END(out, outPixelStride, npix, nr, bias, slope, tile) \
    store_tile_avx2(c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, \
                    out, outPixelStride, npix, nr, bias, slope, tile)

// Stores a finished tile through max(v, slope·v) (leaky for 0 < slope < 1, relu for 0; slope 1
// is the identity and skips it). A full tile goes straight from the registers (its accumulators
// started from the bias); a partial one (fewer pixels or channels) through the aligned tile
// buffer, adding the bias per element — AVX2 masked stores are slow on AMD cores, and a
// full-width store would touch the next pixel.
static inline __attribute__((always_inline, target("avx2,fma")))
void store_tile_avx2(__m256 c00, __m256 c01, __m256 c10, __m256 c11, __m256 c20, __m256 c21,
                     __m256 c30, __m256 c31, __m256 c40, __m256 c41, __m256 c50, __m256 c51,
                     float *out, long outPixelStride, long npix, long nr, const float *bias,
                     float slope, float *tile /* [MR][NR], 32-byte aligned */) {
    if (npix == MR && nr == NR) {
        if (slope != 1.0f) {
            __m256 sv = _mm256_set1_ps(slope);
            c00 = _mm256_max_ps(c00, _mm256_mul_ps(c00, sv)); c01 = _mm256_max_ps(c01, _mm256_mul_ps(c01, sv));
            c10 = _mm256_max_ps(c10, _mm256_mul_ps(c10, sv)); c11 = _mm256_max_ps(c11, _mm256_mul_ps(c11, sv));
            c20 = _mm256_max_ps(c20, _mm256_mul_ps(c20, sv)); c21 = _mm256_max_ps(c21, _mm256_mul_ps(c21, sv));
            c30 = _mm256_max_ps(c30, _mm256_mul_ps(c30, sv)); c31 = _mm256_max_ps(c31, _mm256_mul_ps(c31, sv));
            c40 = _mm256_max_ps(c40, _mm256_mul_ps(c40, sv)); c41 = _mm256_max_ps(c41, _mm256_mul_ps(c41, sv));
            c50 = _mm256_max_ps(c50, _mm256_mul_ps(c50, sv)); c51 = _mm256_max_ps(c51, _mm256_mul_ps(c51, sv));
        }
        float *o = out;
        _mm256_storeu_ps(o, c00); _mm256_storeu_ps(o + 8, c01); o += outPixelStride;
        _mm256_storeu_ps(o, c10); _mm256_storeu_ps(o + 8, c11); o += outPixelStride;
        _mm256_storeu_ps(o, c20); _mm256_storeu_ps(o + 8, c21); o += outPixelStride;
        _mm256_storeu_ps(o, c30); _mm256_storeu_ps(o + 8, c31); o += outPixelStride;
        _mm256_storeu_ps(o, c40); _mm256_storeu_ps(o + 8, c41); o += outPixelStride;
        _mm256_storeu_ps(o, c50); _mm256_storeu_ps(o + 8, c51);
        return;
    }
    _mm256_store_ps(tile + 0 * NR, c00); _mm256_store_ps(tile + 0 * NR + 8, c01);
    _mm256_store_ps(tile + 1 * NR, c10); _mm256_store_ps(tile + 1 * NR + 8, c11);
    _mm256_store_ps(tile + 2 * NR, c20); _mm256_store_ps(tile + 2 * NR + 8, c21);
    _mm256_store_ps(tile + 3 * NR, c30); _mm256_store_ps(tile + 3 * NR + 8, c31);
    _mm256_store_ps(tile + 4 * NR, c40); _mm256_store_ps(tile + 4 * NR + 8, c41);
    _mm256_store_ps(tile + 5 * NR, c50); _mm256_store_ps(tile + 5 * NR + 8, c51);
    store_tile_scalar(tile, out, outPixelStride, npix, nr, bias, slope);
}

// One tile, any geometry: per kernel tap, each pixel's input pointer (the zero row where the
// tap reads padding).
__attribute__((target("avx2,fma")))
static void conv_panel_avx2(const conv_geom *g, long n, long oy, long ox0, long npix,
                            const float *wpanel, float *tile,
                            float *out, long outPixelStride, const float *bias, long nr, float slope) {
    OCELLI_TILE_BEGIN(npix == MR && nr == NR, bias);
    const float *rows[MR];
    long Cin = g->Cin;
    for (long kh = 0; kh < g->KH; kh++) {
        long iy = oy * g->sh + kh * g->dh - g->pt;
        if (iy < 0 || iy >= g->H) continue;  // the whole kernel row reads padding: adds zero
        for (long kw = 0; kw < g->KW; kw++) {
            conv_rows(g, n, oy, ox0, kh, kw, rows, npix);
            const float *w = wpanel + (kh * g->KW + kw) * Cin * NR;
            const float *r0 = rows[0], *r1 = rows[1], *r2 = rows[2], *r3 = rows[3], *r4 = rows[4], *r5 = rows[5];
            for (long ic = 0; ic < Cin; ic++, w += NR)
                OCELLI_TILE_STEP(r0 + ic, r1 + ic, r2 + ic, r3 + ic, r4 + ic, r5 + ic, w);
        }
    }
    OCELLI_TILE_END(out, outPixelStride, npix, nr, bias, slope, tile);
}

// The interior tiles of one output row (all six windows inside the input horizontally,
// dilation 1 along the width, dense channels): for each valid kernel row, a pixel's KW·Cin
// inputs are contiguous, and neighbouring pixels sit ps floats apart. The kernel rows' base
// pointers are set up once per row rather than per tile and tap.
__attribute__((target("avx2,fma")))
static void conv_row_interior_avx2(const float *const *rowBase, const long *wOff, long nrows, long len,
                                   long ps, const float *wpanel, float *out, long outPixelStride,
                                   long ntiles, const float *bias, long nr, float slope, float *tile) {
    for (long t = 0; t < ntiles; t++) {
        OCELLI_TILE_BEGIN(nr == NR, bias);
        for (long r = 0; r < nrows; r++) {
            const float *a0 = rowBase[r] + t * MR * ps;
            const float *a1 = a0 + ps, *a2 = a0 + 2 * ps, *a3 = a0 + 3 * ps, *a4 = a0 + 4 * ps, *a5 = a0 + 5 * ps;
            const float *w = wpanel + wOff[r];
            for (long q = 0; q < len; q++, w += NR)
                OCELLI_TILE_STEP(a0 + q, a1 + q, a2 + q, a3 + q, a4 + q, a5 + q, w);
        }
        OCELLI_TILE_END(out + t * MR * outPixelStride, outPixelStride, MR, nr, bias, slope, tile);
    }
}
#endif

static void conv_panel_portable(const conv_geom *g, long n, long oy, long ox0, long npix,
                                const float *wpanel, float *outTile) {
    float acc[MR][NR];
    memset(acc, 0, sizeof acc);
    const float *rows[MR];
    for (long kh = 0; kh < g->KH; kh++)
        for (long kw = 0; kw < g->KW; kw++) {
            conv_rows(g, n, oy, ox0, kh, kw, rows, npix);
            conv_tile_portable(g->Cin, rows, wpanel + (kh * g->KW + kw) * g->Cin * NR, acc);
        }
    memcpy(outTile, acc, sizeof acc);
}

void ocelli_conv2d_direct(const float *in, long n, long H, long W, long Cin, long inPixelStride,
                          const float *wpacked, long Cout, long KH, long KW,
                          long strideH, long strideW, long dilationH, long dilationW,
                          long padTop, long padLeft,
                          float *out, long OH, long OW, long outPixelStride,
                          long ohBegin, long ohEnd, const float *bias, const float *zeros, float slope) {
    conv_geom g = { in, H, W, Cin, inPixelStride, KH, KW, strideH, strideW, dilationH, dilationW,
                    padTop, padLeft, zeros };
    int avx = 0;
#if OCELLI_X86
    avx = ocelli_kernel_isa() == 1;
#endif
    long K = KH * KW * Cin;
    float tile[MR * NR] __attribute__((aligned(64)));
    // Interior tiles [tBegin, tEnd) of every row — all six windows inside the input
    // horizontally — run in one call per row and panel when the width is undilated and the
    // channels dense; the edge tiles go one by one.
    long tBegin = 0, tEnd = 0;
    if (avx && dilationW == 1 && inPixelStride == Cin && KH <= 64) {
        // The first tile whose first window starts inside the input (negative padding crops).
        tBegin = padLeft <= 0 ? 0 : (padLeft + strideW * MR - 1) / (strideW * MR);
        tEnd = OW / MR;
        while (tEnd > tBegin && (tEnd * MR - 1) * strideW - padLeft + KW - 1 >= W) tEnd--;
        if (tEnd <= tBegin) tBegin = tEnd = 0;
    }
    // A partial last tile whose shifted full version (the row's last MR pixels) is interior runs
    // as that full tile in the interior kernel: it recomputes the last pixels of the tile
    // before it with the same arithmetic, so they come out bitwise the same.
    int lastShifted = tEnd > tBegin && OW % MR != 0 && OW / MR == tEnd
        && (OW - MR) * strideW - padLeft >= 0 && (OW - 1) * strideW - padLeft + KW - 1 < W;
    // Panel-major within an output row: one 16-channel weight panel stays in L1 while the
    // row's input band (KH input rows) streams from L2.
    for (long oy = ohBegin; oy < ohEnd; oy++) {
#if OCELLI_X86
        const float *rowBase[64]; long wOff[64];
        long nrows = tEnd > tBegin ? ocelli_valid_kernel_rows(in, n, H, W, Cin, KH, oy, strideH, dilationH, padTop,
                                                              tBegin * MR * strideW - padLeft, KW * Cin * NR, rowBase, wOff) : 0;
#endif
        for (long oc0 = 0; oc0 < Cout; oc0 += NR) {
            long nr = Cout - oc0 < NR ? Cout - oc0 : NR;
            const float *wpanel = wpacked + (oc0 / NR) * K * NR;
            const float *b = bias ? bias + oc0 : NULL;
            float *orow = out + (n * OH + oy) * OW * outPixelStride + oc0;
#if OCELLI_X86
            if (tEnd > tBegin)
                conv_row_interior_avx2(rowBase, wOff, nrows, KW * Cin, strideW * Cin, wpanel,
                                       orow + tBegin * MR * outPixelStride, outPixelStride,
                                       tEnd - tBegin, b, nr, slope, tile);
            if (lastShifted) {
                const float *shifted[64];
                for (long r = 0; r < nrows; r++) shifted[r] = rowBase[r] + (OW - MR - tBegin * MR) * strideW * Cin;
                conv_row_interior_avx2(shifted, wOff, nrows, KW * Cin, strideW * Cin, wpanel,
                                       orow + (OW - MR) * outPixelStride, outPixelStride, 1, b, nr, slope, tile);
            }
#endif
            // The edge tiles: those before and after the interior ones (without the partial
            // last tile when its shifted version ran).
            long edges[2][2] = { { 0, tBegin }, { tEnd, (OW + MR - 1) / MR - lastShifted } };
            for (int e = 0; e < 2; e++)
                for (long t = edges[e][0]; t < edges[e][1]; t++) {
                    long ox0 = t * MR, npix = OW - ox0 < MR ? OW - ox0 : MR;
                    float *o = orow + ox0 * outPixelStride;
#if OCELLI_X86
                    if (avx) { conv_panel_avx2(&g, n, oy, ox0, npix, wpanel, tile, o, outPixelStride, b, nr, slope); continue; }
#endif
                    conv_panel_portable(&g, n, oy, ox0, npix, wpanel, tile);
                    store_tile_scalar(tile, o, outPixelStride, npix, nr, b, slope);
                }
        }
    }
}
