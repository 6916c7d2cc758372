// Innermost SIMD kernels of Ocelli: a packed 6x16 SGEMM micro-kernel and a direct NHWC
// convolution tile kernel that shares its register layout. The AVX2+FMA versions are compiled
// with a target attribute and chosen at run time, so the package needs no unsafe flags and an
// older CPU runs the portable C versions instead.
//
// kernels_internal.h: what the kernel files share (not the module's public header, which is
// include/COcelliKernels.h).
#ifndef OCELLI_KERNELS_INTERNAL_H
#define OCELLI_KERNELS_INTERNAL_H

#include "COcelliKernels.h"
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define OCELLI_X86 1
#else
#define OCELLI_X86 0
#endif

enum { MR = 6, NR = 16, MC = 144, KC = 256, NC = 4080 };

#if OCELLI_X86
// Defined in conv_direct.c; the dot-product convolution (conv_dot.c) uses it too.
long ocelli_valid_kernel_rows(const float *in, long n, long H, long W, long Cin, long KH, long oy,
                              long strideH, long dilationH, long padTop, long x0, long wRowStride,
                              const float **rows, long *wOff);
#endif

#endif
