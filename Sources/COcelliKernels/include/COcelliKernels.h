#ifndef OCELLI_KERNELS_H
#define OCELLI_KERNELS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Raises glibc's mmap and trim thresholds so freed tensor buffers are reused instead of being
/// unmapped and faulted in again (no-op elsewhere). Returns 1 when applied.
int ocelli_tune_malloc(void);

/// Which micro-kernel family this CPU runs: 1 for AVX2+FMA, 0 for the portable C fallback.
int ocelli_kernel_isa(void);

/// Forces the portable fallback (1) or lets the CPU decide (0). For tests and benchmarks.
void ocelli_force_portable(int on);

/// This thread's override of `ocelli_force_portable`: 1 or 0, or -1 for none; and its value.
void ocelli_set_thread_portable(int on);
int ocelli_thread_portable(void);

/// Single-threaded packed, cache-blocked SGEMM on strided operands:
///   C[i, j] (+)= sum_p A[i*rsA + p*csA] * B[p*rsB + j*csB]
/// C is row-major with leading dimension ldc. If `accumulate` is 0, C is overwritten.
/// The summation order of every C element depends only on K (blocks of 256 in order),
/// never on M or N, so splitting rows or columns over threads gives identical bits.
void ocelli_sgemm(long M, long N, long K,
                  const float *A, long rsA, long csA,
                  const float *B, long rsB, long csB,
                  float *C, long ldc, int accumulate);

/// Packs an HWIO kernel slice (K = KH*KW*Cin rows, Cout columns with row stride ldw)
/// into 16-wide column panels: out[panel][k][16], zero padded. Size: ceil(Cout/16)*K*16.
/// The number of floats `ocelli_pack_b_full` writes for a K x N matrix B.
long ocelli_packed_b_size(long K, long N);

/// Packs all of B (K x N, strides rsB/csB) once, in the order ocelli_sgemm_packed reads it, so
/// a matrix used many times (inference weights, the weights of every im2col chunk) is packed once.
void ocelli_pack_b_full(long K, long N, const float *B, long rsB, long csB, float *out);

/// C[:, n0..<n1] (+)= A · B with B packed by ocelli_pack_b_full. n0 must be a multiple of 16.
void ocelli_sgemm_packed(long M, long N, long K, const float *A, long rsA, long csA,
                         const float *packedB, long n0, long n1, float *C, long ldc, int accumulate);

void ocelli_pack_conv_weights(long K, long Cout, const float *W, long ldw, float *out);

/// Direct NHWC convolution for output rows [ohBegin, ohEnd) of image `n`.
/// Input pixel (n, y, x) starts at in + ((n*H + y)*W + x)*inPixelStride; channels [0, Cin).
/// Output pixel (n, y, x) starts at out + ((n*OH + y)*OW + x)*outPixelStride; channels [0, Cout).
/// `wpacked` comes from ocelli_pack_conv_weights with K = KH*KW*Cin. `bias` may be NULL. Each
/// output v (after the bias) is stored as max(v, slope·v): slope 1 leaves it, 0 is relu, 0 < slope
/// < 1 leaky relu.
/// `zeros` must point to at least Cin zero floats (used for padded cells).
void ocelli_conv2d_direct(const float *in, long n, long H, long W, long Cin, long inPixelStride,
                          const float *wpacked, long Cout, long KH, long KW,
                          long strideH, long strideW, long dilationH, long dilationW,
                          long padTop, long padLeft,
                          float *out, long OH, long OW, long outPixelStride,
                          long ohBegin, long ohEnd, const float *bias, const float *zeros, float slope);

/// Direct convolution for few output channels (Cout <= 4): each output value is a dot product
/// over the window's KH*KW*Cin inputs, vectorised along the input channels. `wt` holds the
/// filter as [Cout][KH][KW][Cin] (for this group). Arguments otherwise as ocelli_conv2d_direct.
void ocelli_conv2d_dot(const float *in, long n, long H, long W, long Cin, long inPixelStride,
                       const float *wt, long Cout, long KH, long KW,
                       long strideH, long strideW, long dilationH, long dilationW,
                       long padTop, long padLeft,
                       float *out, long OH, long OW, long outPixelStride,
                       long ohBegin, long ohEnd, const float *bias);

/// y[i] = x[i] * (hash(i + base, key) >= threshold ? scale : 0) for i in start..<end: inverted
/// dropout with a counter-based mask (the same key and index give the same decision on every
/// thread split and on every CPU). threshold = rate * 2^32. `base` is the index of x[0] in a
/// larger batch (a data-parallel rank's shard draws the mask the whole batch would).
void ocelli_dropout(const float *x, float *y, long start, long end, long base,
                    unsigned long long key, unsigned threshold, float scale);

/// Max pooling of NHWC images: output rows rowBegin..<rowEnd (row = n*OH + oy). Window of output
/// (oy, ox) starts at (oy*sh − pt, ox*sw − pl); cells outside the input count as −∞.
void ocelli_maxpool_forward(const float *x, float *y, long H, long W, long C, long OH, long OW,
                            long kh, long kw, long sh, long sw, long pt, long pl,
                            long rowBegin, long rowEnd);

/// Its gradient for images imageBegin..<imageEnd: dx (zeroed here for those images) gets each
/// output's dy at the first cell (row-major) of its window that holds the maximum y.
void ocelli_maxpool_backward(const float *x, const float *y, const float *dy, float *dx,
                             long H, long W, long C, long OH, long OW,
                             long kh, long kw, long sh, long sw, long pt, long pl,
                             long imageBegin, long imageEnd);

/// Acquire load, release store and a spin-loop hint, for the thread pool's spin-wait.
long ocelli_atomic_load(const long *p);
void ocelli_atomic_store(long *p, long v);
void ocelli_cpu_relax(void);

/// Filter and bias gradients of a convolution whose window holds at most 12 values
/// (KH·KW·Cin ≤ 12), for output rows rowBegin..<rowEnd (row = n·OH + oy), accumulated into
/// dW ([KH·KW·Cin][O]) and db ([O]). With y (the output of a fused relu/leaky) the incoming dy
/// is first multiplied by 1 where y > 0 and by slope elsewhere. Returns 0 (and does nothing)
/// when the window is larger.
int ocelli_conv_filter_grad_small(const float *x, long H, long W, long C,
                                  const float *dy, const float *y, float slope, long O, long OH, long OW,
                                  long KH, long KW, long sh, long sw, long dh, long dw, long pt, long pl,
                                  long rowBegin, long rowEnd, float *dW, float *db);

/// One row of a 2x2 stride-2 max pool: dst[px][c] = max(top[2px][c], top[2px+1][c],
/// bottom[2px][c], bottom[2px+1][c]) for px < pw, c < C.
void ocelli_maxpool2x2_rows(const float *top, const float *bottom, float *dst, long pw, long C);

/// Darknet's batch normalization in training (batchnorm.c), x as [rows][C], rows r0..<r1:
/// ocelli_bn_sums adds Σ(x − shift) and Σ(x − shift)² per channel into s1, s2 (scratch: 2·C floats);
/// ocelli_bn_apply writes y = (x − mean)·mul + beta, then leaky (y ≤ 0 → y·slope) when `leaky`;
/// ocelli_bn_backward_sums adds Σg and Σg·x̂ into sg, sgx (scratch: 2·C floats), where g is dy
/// times the leaky derivative at that y and x̂ = (x − mean)·invS;
/// ocelli_bn_backward_dx writes dx = mul·(g − dBetaM) − x̂·b.
void ocelli_bn_sums(const float *x, long r0, long r1, long C, const float *shift, float *scratch, double *s1, double *s2);
void ocelli_bn_apply(const float *x, float *y, long r0, long r1, long C, const float *mean, const float *mul,
                     const float *beta, int leaky, float slope);
void ocelli_bn_backward_sums(const float *x, const float *dy, long r0, long r1, long C, const float *mean,
                             const float *mul, const float *beta, const float *invS, int leaky, float slope,
                             float *scratch, double *sg, double *sgx);
void ocelli_bn_backward_dx(const float *x, const float *dy, float *dx, long r0, long r1, long C, const float *mean,
                           const float *mul, const float *beta, const float *invS, const float *dBetaM,
                           const float *b, int leaky, float slope);

#ifdef __cplusplus
}
#endif

#endif
