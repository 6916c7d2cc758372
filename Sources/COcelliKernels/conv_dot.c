#include "kernels_internal.h"

// ---------------------------------------------------------------------------------------------
// Dot-product convolution for few output channels (<= 4): one vector accumulator per output
// channel over the whole window, the input loaded once for all of them, one horizontal sum at
// the end.

typedef struct {
    const float *in; long H, W, Cin, inStride, KH, KW, sh, sw, dh, dw, pt, pl;
    const float *wt; long Cout;
} dot_geom;

// Calls body(x, wOffset, len) for each contiguous run of the window of output pixel (oy, ox).
#define OCELLI_FOR_WINDOW_RUNS(g, n, oy, ox, BODY) do { \
    long x0_ = (ox) * (g)->sw - (g)->pl; \
    int contiguous_ = (g)->dw == 1 && (g)->inStride == (g)->Cin && x0_ >= 0 && x0_ + (g)->KW <= (g)->W; \
    for (long kh_ = 0; kh_ < (g)->KH; kh_++) { \
        long iy_ = (oy) * (g)->sh + kh_ * (g)->dh - (g)->pt; \
        if (iy_ < 0 || iy_ >= (g)->H) continue; \
        const float *xr_ = (g)->in + ((n) * (g)->H + iy_) * (g)->W * (g)->inStride; \
        if (contiguous_) { \
            const float *x = xr_ + x0_ * (g)->Cin; long woff = kh_ * (g)->KW * (g)->Cin; long len = (g)->KW * (g)->Cin; \
            BODY; \
        } else { \
            for (long kw_ = 0; kw_ < (g)->KW; kw_++) { \
                long ix_ = x0_ + kw_ * (g)->dw; \
                if (ix_ < 0 || ix_ >= (g)->W) continue; \
                const float *x = xr_ + ix_ * (g)->inStride; long woff = (kh_ * (g)->KW + kw_) * (g)->Cin; long len = (g)->Cin; \
                BODY; \
            } \
        } \
    } } while (0)

static void dot_pixel_portable(const dot_geom *g, long n, long oy, long ox, float *acc) {
    long wstride = g->KH * g->KW * g->Cin;
    for (long oc = 0; oc < g->Cout; oc++) acc[oc] = 0;
    OCELLI_FOR_WINDOW_RUNS(g, n, oy, ox, {
        for (long oc = 0; oc < g->Cout; oc++) {
            const float *w = g->wt + oc * wstride + woff;
            float s = 0;
            for (long i = 0; i < len; i++) s += x[i] * w[i];
            acc[oc] += s;
        }
    });
}

#if OCELLI_X86
__attribute__((target("avx2,fma")))
static float hsum_avx(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_shuffle_ps(lo, lo, 1));
    return _mm_cvtss_f32(lo);
}

__attribute__((target("avx2,fma")))
static void dot_pixel_avx2(const dot_geom *g, long n, long oy, long ox, float *acc) {
    long wstride = g->KH * g->KW * g->Cin;
    long cout = g->Cout;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    float t0 = 0, t1 = 0, t2 = 0, t3 = 0;  // scalar tails
    const float *w0 = g->wt, *w1 = w0 + wstride, *w2 = w1 + wstride, *w3 = w2 + wstride;
    OCELLI_FOR_WINDOW_RUNS(g, n, oy, ox, {
        long i = 0;
        for (; i + 8 <= len; i += 8) {
            __m256 xv = _mm256_loadu_ps(x + i);
            a0 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(w0 + woff + i), a0);
            if (cout > 1) a1 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(w1 + woff + i), a1);
            if (cout > 2) a2 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(w2 + woff + i), a2);
            if (cout > 3) a3 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(w3 + woff + i), a3);
        }
        for (; i < len; i++) {
            float xv = x[i];
            t0 += xv * w0[woff + i];
            if (cout > 1) t1 += xv * w1[woff + i];
            if (cout > 2) t2 += xv * w2[woff + i];
            if (cout > 3) t3 += xv * w3[woff + i];
        }
    });
    acc[0] = hsum_avx(a0) + t0;
    if (cout > 1) acc[1] = hsum_avx(a1) + t1;
    if (cout > 2) acc[2] = hsum_avx(a2) + t2;
    if (cout > 3) acc[3] = hsum_avx(a3) + t3;
}

// P neighbouring output pixels whose windows are contiguous runs (interior, dense channels),
// ps floats apart, for COUT ≤ 4 output channels: each weight vector is loaded once for all P.
// rows[r] is the first pixel's run in valid kernel row r, wOffs[r] that row's weight offset.
// Every pixel's sum runs in the same order as in dot_pixel_avx2 (vector chunks, scalar tail,
// one horizontal sum), so the results are bitwise the same as pixel by pixel.
static inline __attribute__((always_inline, target("avx2,fma")))
void dot_group_avx2(const int P, const int COUT, const float *const *rows, const long *wOffs, long nrows,
                    long len, long ps, const float *wt, long wstride, float *out, long outPixelStride,
                    const float *bias) {
    __m256 a[8][4];
    float t[8][4];
    for (int p = 0; p < P; p++)
        for (int c = 0; c < COUT; c++) { a[p][c] = _mm256_setzero_ps(); t[p][c] = 0; }
    for (long r = 0; r < nrows; r++) {
        const float *x = rows[r], *w = wt + wOffs[r];
        long i = 0;
        for (; i + 8 <= len; i += 8) {
            __m256 wv[4];
            for (int c = 0; c < COUT; c++) wv[c] = _mm256_loadu_ps(w + c * wstride + i);
            for (int p = 0; p < P; p++) {
                __m256 xv = _mm256_loadu_ps(x + p * ps + i);
                for (int c = 0; c < COUT; c++) a[p][c] = _mm256_fmadd_ps(xv, wv[c], a[p][c]);
            }
        }
        for (; i < len; i++)
            for (int p = 0; p < P; p++)
                for (int c = 0; c < COUT; c++) t[p][c] += x[p * ps + i] * w[c * wstride + i];
    }
    for (int p = 0; p < P; p++)
        for (int c = 0; c < COUT; c++)
            out[p * outPixelStride + c] = hsum_avx(a[p][c]) + t[p][c] + (bias ? bias[c] : 0.0f);
}

// The interior pixels of one output row, in groups of as many pixels as the registers hold.
#define OCELLI_DOT_ROW(COUT, P) do { \
    long p0 = 0; \
    for (; p0 + (P) <= npix; p0 += (P)) { \
        for (long r = 0; r < nrows; r++) shifted[r] = rows[r] + p0 * ps; \
        dot_group_avx2((P), (COUT), shifted, wOffs, nrows, len, ps, wt, wstride, out + p0 * outPixelStride, outPixelStride, bias); \
    } \
    for (; p0 < npix; p0++) { \
        for (long r = 0; r < nrows; r++) shifted[r] = rows[r] + p0 * ps; \
        dot_group_avx2(1, (COUT), shifted, wOffs, nrows, len, ps, wt, wstride, out + p0 * outPixelStride, outPixelStride, bias); \
    } } while (0)

__attribute__((target("avx2,fma")))
static void dot_row_interior_avx2(long cout, const float *const *rows, const long *wOffs, long nrows,
                                  long len, long ps, const float *wt, long wstride, float *out,
                                  long outPixelStride, long npix, const float *bias) {
    const float *shifted[64];
    switch (cout) {
    case 1: OCELLI_DOT_ROW(1, 8); break;
    case 2: OCELLI_DOT_ROW(2, 6); break;
    case 3: OCELLI_DOT_ROW(3, 4); break;
    default: OCELLI_DOT_ROW(4, 2); break;
    }
}
#undef OCELLI_DOT_ROW
#endif

void ocelli_conv2d_dot(const float *in, long n, long H, long W, long Cin, long inPixelStride,
                       const float *wt, long Cout, long KH, long KW,
                       long strideH, long strideW, long dilationH, long dilationW,
                       long padTop, long padLeft,
                       float *out, long OH, long OW, long outPixelStride,
                       long ohBegin, long ohEnd, const float *bias) {
    dot_geom g = { in, H, W, Cin, inPixelStride, KH, KW, strideH, strideW, dilationH, dilationW,
                   padTop, padLeft, wt, Cout };
    int avx = 0;
#if OCELLI_X86
    avx = ocelli_kernel_isa() == 1 && Cout <= 4;
#endif
    float acc[4];
    long wstride = KH * KW * Cin;
    // Interior pixels [xBegin, xEnd) — windows inside the input horizontally, dense channels —
    // go a row at a time, several pixels per pass; the others one by one.
    long xBegin = 0, xEnd = 0;
    if (avx && dilationW == 1 && inPixelStride == Cin && KH <= 64) {
        xBegin = padLeft <= 0 ? 0 : (padLeft + strideW - 1) / strideW;  // negative padding crops
        xEnd = W - KW + padLeft >= 0 ? (W - KW + padLeft) / strideW + 1 : 0;
        if (xEnd > OW) xEnd = OW;
        if (xEnd <= xBegin) xBegin = xEnd = 0;
    }
    for (long oy = ohBegin; oy < ohEnd; oy++) {
        float *orow = out + (n * OH + oy) * OW * outPixelStride;
        for (long oc0 = 0; oc0 < Cout; oc0 += 4) {
            dot_geom gg = g;
            gg.wt = wt + oc0 * wstride;
            gg.Cout = Cout - oc0 < 4 ? Cout - oc0 : 4;
            const float *b = bias ? bias + oc0 : NULL;
#if OCELLI_X86
            if (xEnd > xBegin) {
                const float *rows[64]; long wOffs[64];
                long nrows = ocelli_valid_kernel_rows(in, n, H, W, Cin, KH, oy, strideH, dilationH, padTop,
                                                      xBegin * strideW - padLeft, KW * Cin, rows, wOffs);
                dot_row_interior_avx2(gg.Cout, rows, wOffs, nrows, KW * Cin, strideW * Cin, gg.wt, wstride,
                                      orow + xBegin * outPixelStride + oc0, outPixelStride, xEnd - xBegin, b);
            }
#endif
            // The edge pixels: those before and after the interior ones.
            long edges[2][2] = { { 0, xBegin }, { xEnd, OW } };
            for (int e = 0; e < 2; e++)
                for (long ox = edges[e][0]; ox < edges[e][1]; ox++) {
                    float *o = orow + ox * outPixelStride + oc0;
#if OCELLI_X86
                    if (avx) dot_pixel_avx2(&gg, n, oy, ox, acc); else
#endif
                    dot_pixel_portable(&gg, n, oy, ox, acc);
                    for (long j = 0; j < gg.Cout; j++) o[j] = acc[j] + (b ? b[j] : 0.0f);
                }
        }
    }
}
