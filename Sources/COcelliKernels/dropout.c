#include "kernels_internal.h"

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
                                long base, unsigned long long key, unsigned threshold, float scale) {
    unsigned k0 = (unsigned)key, k1 = (unsigned)(key >> 32);
    long i = start;
    while (i < end) {
        // Indices (i + base) are hashed in 2^32 segments so the inner loop works on 32-bit lanes.
        unsigned long long gi = (unsigned long long)(i + base);
        unsigned hi = (unsigned)(gi >> 32);
        unsigned long long left = (((unsigned long long)hi + 1) << 32) - gi;
        long segEnd = (left >= (unsigned long long)(end - i)) ? end : i + (long)left;
        unsigned kk = k1 ^ dropout_hash(hi + 0x9e3779b9u);
        unsigned lo = (unsigned)gi;
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
static void dropout_avx2(const float *restrict x, float *restrict y, long start, long end, long base,
                         unsigned long long key, unsigned threshold, float scale) {
    dropout_body(x, y, start, end, base, key, threshold, scale);
}
#endif

void ocelli_dropout(const float *x, float *y, long start, long end, long base,
                    unsigned long long key, unsigned threshold, float scale) {
#if OCELLI_X86
    if (ocelli_kernel_isa() == 1) { dropout_avx2(x, y, start, end, base, key, threshold, scale); return; }
#endif
    dropout_body(x, y, start, end, base, key, threshold, scale);
}
