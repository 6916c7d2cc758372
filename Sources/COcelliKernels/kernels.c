// Innermost SIMD kernels of Ocelli: a packed 6x16 SGEMM micro-kernel and a direct NHWC
// convolution tile kernel that shares its register layout. The AVX2+FMA versions are compiled
// with a target attribute and chosen at run time, so the package needs no unsafe flags and an
// older CPU runs the portable C versions instead.
#include "COcelliKernels.h"
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define OCELLI_X86 1
#else
#define OCELLI_X86 0
#endif

#if defined(__GLIBC__)
#include <malloc.h>
#endif

int ocelli_tune_malloc(void) {
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, 256 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    return 1;
#else
    return 0;
#endif
}

enum { MR = 6, NR = 16, MC = 144, KC = 256, NC = 4080 };

static int forcePortable = 0;
static int isaCache = -1;

void ocelli_force_portable(int on) { forcePortable = on; }

int ocelli_kernel_isa(void) {
    if (forcePortable) return 0;
    if (isaCache < 0) {
#if OCELLI_X86
        __builtin_cpu_init();
        isaCache = (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? 1 : 0;
#else
        isaCache = 0;
#endif
    }
    return isaCache;
}

// ---------------------------------------------------------------------------------------------
// Micro-kernels. c (+)= a[kc][MR] * b[kc][NR]; mode 0 overwrites c, mode 1 adds to it.

static void micro_portable(long kc, const float *restrict a, const float *restrict b,
                           float *restrict c, long ldc, int mode) {
    float acc[MR][NR];
    memset(acc, 0, sizeof acc);
    for (long p = 0; p < kc; p++) {
        for (int i = 0; i < MR; i++) {
            float ai = a[p * MR + i];
            for (int j = 0; j < NR; j++) acc[i][j] += ai * b[p * NR + j];
        }
    }
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++)
            c[i * ldc + j] = mode ? c[i * ldc + j] + acc[i][j] : acc[i][j];
}

#if OCELLI_X86
__attribute__((target("avx2,fma")))
static void micro_avx2(long kc, const float *restrict a, const float *restrict b,
                       float *restrict c, long ldc, int mode) {
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    for (long p = 0; p < kc; p++) {
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
        __m256 ai;
        ai = _mm256_broadcast_ss(a + 0); c00 = _mm256_fmadd_ps(ai, b0, c00); c01 = _mm256_fmadd_ps(ai, b1, c01);
        ai = _mm256_broadcast_ss(a + 1); c10 = _mm256_fmadd_ps(ai, b0, c10); c11 = _mm256_fmadd_ps(ai, b1, c11);
        ai = _mm256_broadcast_ss(a + 2); c20 = _mm256_fmadd_ps(ai, b0, c20); c21 = _mm256_fmadd_ps(ai, b1, c21);
        ai = _mm256_broadcast_ss(a + 3); c30 = _mm256_fmadd_ps(ai, b0, c30); c31 = _mm256_fmadd_ps(ai, b1, c31);
        ai = _mm256_broadcast_ss(a + 4); c40 = _mm256_fmadd_ps(ai, b0, c40); c41 = _mm256_fmadd_ps(ai, b1, c41);
        ai = _mm256_broadcast_ss(a + 5); c50 = _mm256_fmadd_ps(ai, b0, c50); c51 = _mm256_fmadd_ps(ai, b1, c51);
        a += MR; b += NR;
    }
#define OCELLI_STORE(row, lo, hi) do { \
        float *cr = c + (row) * ldc; \
        if (mode) { lo = _mm256_add_ps(lo, _mm256_loadu_ps(cr)); hi = _mm256_add_ps(hi, _mm256_loadu_ps(cr + 8)); } \
        _mm256_storeu_ps(cr, lo); _mm256_storeu_ps(cr + 8, hi); } while (0)
    OCELLI_STORE(0, c00, c01); OCELLI_STORE(1, c10, c11); OCELLI_STORE(2, c20, c21);
    OCELLI_STORE(3, c30, c31); OCELLI_STORE(4, c40, c41); OCELLI_STORE(5, c50, c51);
#undef OCELLI_STORE
}
#endif

// Copies (mode 0) or adds (mode 1) the top-left mr x nr corner of a 6x16 tile into C.
static void edge_portable(const float *tile, float *c, long ldc, long mr, long nr, int mode) {
    for (long i = 0; i < mr; i++)
        for (long j = 0; j < nr; j++)
            c[i * ldc + j] = mode ? c[i * ldc + j] + tile[i * NR + j] : tile[i * NR + j];
}

#if OCELLI_X86
__attribute__((target("avx2,fma")))
static void edge_avx2(const float *tile, float *c, long ldc, long mr, long nr, int mode) {
    // Lane masks for columns [0, nr): the low and high halves of the 16-wide row.
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i lo = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)nr), lane);
    __m256i hi = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)nr - 8), lane);
    for (long i = 0; i < mr; i++) {
        float *cr = c + i * ldc;
        __m256 a = _mm256_load_ps(tile + i * NR), b = _mm256_load_ps(tile + i * NR + 8);
        if (mode) {
            a = _mm256_add_ps(a, _mm256_maskload_ps(cr, lo));
            if (nr > 8) b = _mm256_add_ps(b, _mm256_maskload_ps(cr + 8, hi));
        }
        _mm256_maskstore_ps(cr, lo, a);
        if (nr > 8) _mm256_maskstore_ps(cr + 8, hi, b);
    }
}
#endif

typedef void (*micro_fn)(long, const float *, const float *, float *, long, int);

static micro_fn pick_micro(void) {
#if OCELLI_X86
    if (ocelli_kernel_isa() == 1) return micro_avx2;
#endif
    return micro_portable;
}

// ---------------------------------------------------------------------------------------------
// Packing. Panels are zero padded so the micro-kernel never reads past a matrix edge.

static void pack_a(long mc, long kc, const float *A, long rsA, long csA, float *out) {
    for (long i0 = 0; i0 < mc; i0 += MR) {
        long mr = mc - i0 < MR ? mc - i0 : MR;
        const float *a = A + i0 * rsA;
        if (mr == MR && csA == 1) {
            for (long p = 0; p < kc; p++) {
                out[0] = a[p]; out[1] = a[rsA + p]; out[2] = a[2 * rsA + p];
                out[3] = a[3 * rsA + p]; out[4] = a[4 * rsA + p]; out[5] = a[5 * rsA + p];
                out += MR;
            }
        } else {
            for (long p = 0; p < kc; p++) {
                for (long i = 0; i < MR; i++) out[i] = i < mr ? a[i * rsA + p * csA] : 0.0f;
                out += MR;
            }
        }
    }
}

static void pack_b(long kc, long nc, const float *B, long rsB, long csB, float *out) {
    for (long j0 = 0; j0 < nc; j0 += NR) {
        long nr = nc - j0 < NR ? nc - j0 : NR;
        const float *b = B + j0 * csB;
        if (nr == NR && csB == 1) {
            for (long p = 0; p < kc; p++) { memcpy(out, b + p * rsB, NR * sizeof(float)); out += NR; }
        } else {
            for (long p = 0; p < kc; p++) {
                for (long j = 0; j < NR; j++) out[j] = j < nr ? b[p * rsB + j * csB] : 0.0f;
                out += NR;
            }
        }
    }
}

// Per-thread packing buffers, grown on demand and reused by every call on that thread.
static _Thread_local float *bufA = NULL, *bufB = NULL;
static _Thread_local size_t capA = 0, capB = 0;

static float *grow(float **buf, size_t *cap, size_t need) {
    if (need > *cap) {
        free(*buf);
        size_t bytes = (need * sizeof(float) + 63) & ~(size_t)63;
        *buf = (float *)aligned_alloc(64, bytes);
        *cap = *buf ? need : 0;
    }
    return *buf;
}

typedef void (*edge_fn)(const float *, float *, long, long, long, int);

static edge_fn pick_edge(void) {
#if OCELLI_X86
    if (ocelli_kernel_isa() == 1) return edge_avx2;
#endif
    return edge_portable;
}

// The macro-kernel: C[0..mc, j0..j1) (+)= packed A panels · packed B panels (kc deep), 6x16 tiles,
// edge tiles through a scratch tile.
static void macro_kernel(micro_fn micro, edge_fn edge, long mc, long j0, long j1, long kc,
                         const float *ap, const float *bp, float *C, long ldc, int mode) {
    float tile[MR * NR] __attribute__((aligned(64)));
    for (long jr = j0; jr < j1; jr += NR) {
        long nr = j1 - jr < NR ? j1 - jr : NR;
        const float *bpanel = bp + jr * kc;
        for (long ir = 0; ir < mc; ir += MR) {
            long mr = mc - ir < MR ? mc - ir : MR;
            float *c = C + ir * ldc + jr;
            const float *apanel = ap + ir * kc;
            if (mr == MR && nr == NR) {
                micro(kc, apanel, bpanel, c, ldc, mode);
            } else {
                micro(kc, apanel, bpanel, tile, NR, 0);
                edge(tile, c, ldc, mr, nr, mode);
            }
        }
    }
}

void ocelli_sgemm(long M, long N, long K,
                  const float *A, long rsA, long csA,
                  const float *B, long rsB, long csB,
                  float *C, long ldc, int accumulate) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        if (!accumulate) for (long i = 0; i < M; i++) memset(C + i * ldc, 0, (size_t)N * sizeof(float));
        return;
    }
    micro_fn micro = pick_micro();
    edge_fn edge = pick_edge();
    long ncMax = N < NC ? N : NC, kcMax = K < KC ? K : KC, mcMax = M < MC ? M : MC;
    float *bp = grow(&bufB, &capB, (size_t)((ncMax + NR - 1) / NR * NR) * (size_t)kcMax);
    float *ap = grow(&bufA, &capA, (size_t)((mcMax + MR - 1) / MR * MR) * (size_t)kcMax);
    if (!bp || !ap) abort();

    for (long jc = 0; jc < N; jc += NC) {
        long nc = N - jc < NC ? N - jc : NC;
        for (long pc = 0; pc < K; pc += KC) {
            long kc = K - pc < KC ? K - pc : KC;
            int mode = (pc > 0 || accumulate) ? 1 : 0;
            pack_b(kc, nc, B + pc * rsB + jc * csB, rsB, csB, bp);
            for (long ic = 0; ic < M; ic += MC) {
                long mc = M - ic < MC ? M - ic : MC;
                pack_a(mc, kc, A + ic * rsA + pc * csA, rsA, csA, ap);
                macro_kernel(micro, edge, mc, 0, nc, kc, ap, bp, C + ic * ldc + jc, ldc, mode);
            }
        }
    }
}

// Fully packed B: for each NC block of columns, for each KC block of rows, the panels pack_b
// writes. Full NC blocks are NC wide (a multiple of NR), so block jc starts at jc * K.

long ocelli_packed_b_size(long K, long N) {
    long full = N / NC * NC, rest = N - full;
    return full * K + (rest + NR - 1) / NR * NR * K;
}

void ocelli_pack_b_full(long K, long N, const float *B, long rsB, long csB, float *out) {
    for (long jc = 0; jc < N; jc += NC) {
        long nc = N - jc < NC ? N - jc : NC, ncr = (nc + NR - 1) / NR * NR;
        for (long pc = 0; pc < K; pc += KC) {
            long kc = K - pc < KC ? K - pc : KC;
            pack_b(kc, nc, B + pc * rsB + jc * csB, rsB, csB, out + jc * K + pc * ncr);
        }
    }
}

void ocelli_sgemm_packed(long M, long N, long K, const float *A, long rsA, long csA,
                         const float *packedB, long n0, long n1, float *C, long ldc, int accumulate) {
    if (M <= 0 || n1 <= n0) return;
    if (K <= 0) {
        if (!accumulate) for (long i = 0; i < M; i++) memset(C + i * ldc + n0, 0, (size_t)(n1 - n0) * sizeof(float));
        return;
    }
    micro_fn micro = pick_micro();
    edge_fn edge = pick_edge();
    long kcMax = K < KC ? K : KC, mcMax = M < MC ? M : MC;
    float *ap = grow(&bufA, &capA, (size_t)((mcMax + MR - 1) / MR * MR) * (size_t)kcMax);
    if (!ap) abort();
    for (long jc = n0 / NC * NC; jc < n1; jc += NC) {
        long nc = N - jc < NC ? N - jc : NC, ncr = (nc + NR - 1) / NR * NR;
        long j0 = n0 > jc ? n0 - jc : 0, j1 = n1 - jc < nc ? n1 - jc : nc;
        for (long pc = 0; pc < K; pc += KC) {
            long kc = K - pc < KC ? K - pc : KC;
            int mode = (pc > 0 || accumulate) ? 1 : 0;
            const float *bp = packedB + jc * K + pc * ncr;
            for (long ic = 0; ic < M; ic += MC) {
                long mc = M - ic < MC ? M - ic : MC;
                pack_a(mc, kc, A + ic * rsA + pc * csA, rsA, csA, ap);
                macro_kernel(micro, edge, mc, j0, j1, kc, ap, bp, C + ic * ldc + jc, ldc, mode);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Direct convolution.

void ocelli_pack_conv_weights(long K, long Cout, const float *W, long ldw, float *out) {
    pack_b(K, Cout, W, ldw, 1, out);
}

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
static long valid_kernel_rows(const float *in, long n, long H, long W, long Cin, long KH, long oy,
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
        long nrows = tEnd > tBegin ? valid_kernel_rows(in, n, H, W, Cin, KH, oy, strideH, dilationH, padTop,
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
                long nrows = valid_kernel_rows(in, n, H, W, Cin, KH, oy, strideH, dilationH, padTop,
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

// ---------------------------------------------------------------------------------------------
// Dropout: a counter-based mask. Element i keeps its value when hash(i, key) >= threshold, so
// the mask depends only on the key and the element's index: any split over threads gives the
// same bits, the backward recomputes it from the key, and the loop vectorizes (8 hashes per
// AVX2 instruction sequence).

static inline unsigned dropout_hash(unsigned x) {  // Wellons' lowbias32 mixer
    x ^= x >> 16; x *= 0x7feb352du;
    x ^= x >> 15; x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

static inline __attribute__((always_inline)) void dropout_body(const float *restrict x, float *restrict y, long start, long end,
                                unsigned long long key, unsigned threshold, float scale) {
    unsigned k0 = (unsigned)key, k1 = (unsigned)(key >> 32);
    long i = start;
    while (i < end) {
        // Indices are hashed in 2^32 segments so the inner loop works on 32-bit lanes.
        unsigned hi = (unsigned)((unsigned long long)i >> 32);
        long segEnd = (long)(((unsigned long long)hi + 1) << 32);
        if (segEnd > end) segEnd = end;
        unsigned kk = k1 ^ dropout_hash(hi + 0x9e3779b9u);
        unsigned lo = (unsigned)i;
        long m = segEnd - i;
        const float *xs = x + i; float *ys = y + i;
        for (long j = 0; j < m; j++) {
            unsigned h = dropout_hash(dropout_hash((lo + (unsigned)j) ^ k0) + kk);
            ys[j] = xs[j] * (h >= threshold ? scale : 0.0f);
        }
        i = segEnd;
    }
}

#if OCELLI_X86
__attribute__((target("avx2,fma")))
static void dropout_avx2(const float *restrict x, float *restrict y, long start, long end,
                         unsigned long long key, unsigned threshold, float scale) {
    dropout_body(x, y, start, end, key, threshold, scale);
}
#endif

void ocelli_dropout(const float *x, float *y, long start, long end,
                    unsigned long long key, unsigned threshold, float scale) {
#if OCELLI_X86
    if (ocelli_kernel_isa() == 1) { dropout_avx2(x, y, start, end, key, threshold, scale); return; }
#endif
    dropout_body(x, y, start, end, key, threshold, scale);
}

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

// ---------------------------------------------------------------------------------------------
// Tiny atomics for the thread pool's spin-wait (Swift's Atomic needs newer OS versions).

long ocelli_atomic_load(const long *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
void ocelli_atomic_store(long *p, long v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
void ocelli_cpu_relax(void) {
#if OCELLI_X86
    _mm_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

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
