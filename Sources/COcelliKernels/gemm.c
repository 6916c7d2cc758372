#include "kernels_internal.h"

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

void ocelli_pack_conv_weights(long K, long Cout, const float *W, long ldw, float *out) {
    pack_b(K, Cout, W, ldw, 1, out);
}
