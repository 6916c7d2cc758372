#include "kernels_internal.h"

// ---------------------------------------------------------------------------------------------
// Max pooling over NHWC windows. Cells outside the input (padding) are skipped: they count as
// −∞, Darknet's rule too. Plain loops over the channels, which the compiler vectorizes.

typedef struct {
    long H, W, C, OH, OW, kh, kw, sh, sw, pt, pl;
} pool_geom;

static inline void pool_window(const pool_geom *g, long oy, long ox, long *y0, long *y1, long *x0, long *x1) {
    long ys = oy * g->sh - g->pt, xs = ox * g->sw - g->pl;
    *y0 = ys < 0 ? 0 : ys; *y1 = ys + g->kh < g->H ? ys + g->kh : g->H;
    *x0 = xs < 0 ? 0 : xs; *x1 = xs + g->kw < g->W ? xs + g->kw : g->W;
}

static inline __attribute__((always_inline)) void maxpool_forward_body(const pool_geom *g, const float *restrict x, float *restrict y,
                                        long rowBegin, long rowEnd) {
    const long C = g->C;
    for (long row = rowBegin; row < rowEnd; row++) {
        long n = row / g->OH, oy = row % g->OH;
        for (long ox = 0; ox < g->OW; ox++) {
            float *restrict o = y + (row * g->OW + ox) * C;
            for (long c = 0; c < C; c++) o[c] = -__builtin_inff();
            long y0, y1, x0, x1;
            pool_window(g, oy, ox, &y0, &y1, &x0, &x1);
            for (long iy = y0; iy < y1; iy++) {
                for (long ix = x0; ix < x1; ix++) {
                    const float *restrict s = x + ((n * g->H + iy) * g->W + ix) * C;
                    for (long c = 0; c < C; c++) o[c] = s[c] > o[c] ? s[c] : o[c];
                }
            }
        }
    }
}

enum { POOL_CB = 256 };  // channels per block of the backward's "still open" flags

static inline __attribute__((always_inline)) void maxpool_backward_body(const pool_geom *g, const float *restrict x, const float *restrict y,
                                         const float *restrict dy, float *restrict dx,
                                         long imageBegin, long imageEnd) {
    const long C = g->C;
    float open[POOL_CB];
    if (g->kh == g->sh && g->kw == g->sw && g->pt == 0 && g->pl == 0) {
        // Windows tile the input without overlap (pool 2 stride 2): every covered cell is
        // written exactly once, so no zero fill and no read-modify-write; only the cells no
        // window covers (a last odd row or column) are zeroed.
        for (long n = imageBegin; n < imageEnd; n++) {
            for (long oy = 0; oy < g->OH; oy++) {
                for (long ox = 0; ox < g->OW; ox++) {
                    long o = ((n * g->OH + oy) * g->OW + ox) * C;
                    for (long c0 = 0; c0 < C; c0 += POOL_CB) {
                        long cb = C - c0 < POOL_CB ? C - c0 : POOL_CB;
                        const float *restrict yo = y + o + c0, *restrict go = dy + o + c0;
                        for (long c = 0; c < cb; c++) open[c] = 1.0f;
                        // (clipped: "same" padding may add cells after the last row or column)
                        long iyEnd = oy * g->sh + g->kh < g->H ? oy * g->sh + g->kh : g->H;
                        long ixEnd = ox * g->sw + g->kw < g->W ? ox * g->sw + g->kw : g->W;
                        for (long iy = oy * g->sh; iy < iyEnd; iy++) {
                            for (long ix = ox * g->sw; ix < ixEnd; ix++) {
                                long b = ((n * g->H + iy) * g->W + ix) * C + c0;
                                const float *restrict xs = x + b;
                                float *restrict ds = dx + b;
                                for (long c = 0; c < cb; c++) {
                                    float hit = xs[c] == yo[c] ? open[c] : 0.0f;
                                    ds[c] = hit * go[c];
                                    open[c] -= hit;
                                }
                            }
                        }
                    }
                }
                long rowEnd = (oy + 1) * g->sh < g->H ? (oy + 1) * g->sh : g->H;
                for (long iy = oy * g->sh; iy < rowEnd; iy++) {
                    long ix0 = g->OW * g->sw;
                    if (ix0 < g->W) memset(dx + ((n * g->H + iy) * g->W + ix0) * C, 0, (size_t)((g->W - ix0) * C) * sizeof(float));
                }
            }
            long iy0 = g->OH * g->sh;
            if (iy0 < g->H) memset(dx + (n * g->H + iy0) * g->W * C, 0, (size_t)((g->H - iy0) * g->W * C) * sizeof(float));
        }
        return;
    }
    memset(dx + imageBegin * g->H * g->W * C, 0, (size_t)((imageEnd - imageBegin) * g->H * g->W * C) * sizeof(float));
    for (long n = imageBegin; n < imageEnd; n++) {
        for (long oy = 0; oy < g->OH; oy++) {
            for (long ox = 0; ox < g->OW; ox++) {
                long y0, y1, x0, x1;
                pool_window(g, oy, ox, &y0, &y1, &x0, &x1);
                long o = ((n * g->OH + oy) * g->OW + ox) * C;
                for (long c0 = 0; c0 < C; c0 += POOL_CB) {
                    long cb = C - c0 < POOL_CB ? C - c0 : POOL_CB;
                    const float *restrict yo = y + o + c0, *restrict go = dy + o + c0;
                    // The gradient goes to the first cell (row-major) of the window holding the
                    // maximum: `open` is 1 until a channel's maximum has been found.
                    for (long c = 0; c < cb; c++) open[c] = 1.0f;
                    for (long iy = y0; iy < y1; iy++) {
                        for (long ix = x0; ix < x1; ix++) {
                            long b = ((n * g->H + iy) * g->W + ix) * C + c0;
                            const float *restrict xs = x + b;
                            float *restrict ds = dx + b;
                            for (long c = 0; c < cb; c++) {
                                float hit = xs[c] == yo[c] ? open[c] : 0.0f;
                                ds[c] += hit * go[c];
                                open[c] -= hit;
                            }
                        }
                    }
                }
            }
        }
    }
}

#if OCELLI_X86
__attribute__((target("avx2,fma")))
static void maxpool_forward_avx2(const pool_geom *g, const float *x, float *y, long r0, long r1) {
    maxpool_forward_body(g, x, y, r0, r1);
}
__attribute__((target("avx2,fma")))
static void maxpool_backward_avx2(const pool_geom *g, const float *x, const float *y, const float *dy,
                                  float *dx, long n0, long n1) {
    maxpool_backward_body(g, x, y, dy, dx, n0, n1);
}
#endif

void ocelli_maxpool_forward(const float *x, float *y, long H, long W, long C, long OH, long OW,
                            long kh, long kw, long sh, long sw, long pt, long pl,
                            long rowBegin, long rowEnd) {
    pool_geom g = { H, W, C, OH, OW, kh, kw, sh, sw, pt, pl };
#if OCELLI_X86
    if (ocelli_kernel_isa() == 1) { maxpool_forward_avx2(&g, x, y, rowBegin, rowEnd); return; }
#endif
    maxpool_forward_body(&g, x, y, rowBegin, rowEnd);
}

void ocelli_maxpool_backward(const float *x, const float *y, const float *dy, float *dx,
                             long H, long W, long C, long OH, long OW,
                             long kh, long kw, long sh, long sw, long pt, long pl,
                             long imageBegin, long imageEnd) {
    pool_geom g = { H, W, C, OH, OW, kh, kw, sh, sw, pt, pl };
#if OCELLI_X86
    if (ocelli_kernel_isa() == 1) { maxpool_backward_avx2(&g, x, y, dy, dx, imageBegin, imageEnd); return; }
#endif
    maxpool_backward_body(&g, x, y, dy, dx, imageBegin, imageEnd);
}

// dst[px][c] = max of the 2x2 block (top/bottom rows, columns 2px and 2px+1), for px < pw.
static inline __attribute__((always_inline)) void pool2x2_body(const float *restrict top, const float *restrict bottom,
                                                              float *restrict dst, long pw, long C) {
    for (long px = 0; px < pw; px++) {
        const float *a = top + 2 * px * C, *b = bottom + 2 * px * C;
        float *d = dst + px * C;
        for (long c = 0; c < C; c++) {
            float m = a[c];
            m = a[C + c] > m ? a[C + c] : m;
            m = b[c] > m ? b[c] : m;
            m = b[C + c] > m ? b[C + c] : m;
            d[c] = m;
        }
    }
}

#if OCELLI_X86
__attribute__((target("avx2,fma")))
static void pool2x2_avx2(const float *top, const float *bottom, float *dst, long pw, long C) {
    pool2x2_body(top, bottom, dst, pw, C);
}
#endif

void ocelli_maxpool2x2_rows(const float *top, const float *bottom, float *dst, long pw, long C) {
#if OCELLI_X86
    if (ocelli_kernel_isa() == 1) { pool2x2_avx2(top, bottom, dst, pw, C); return; }
#endif
    pool2x2_body(top, bottom, dst, pw, C);
}
