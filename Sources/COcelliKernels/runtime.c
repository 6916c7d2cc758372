#include "kernels_internal.h"

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

static int forcePortable = 0;
static int isaCache = -1;
// This thread's override of forcePortable: -1 none, else 0 or 1 (a scope set by the Swift side
// on the calling thread and on each kernel thread working for it).
static _Thread_local int threadPortable = -1;

void ocelli_force_portable(int on) { forcePortable = on; }
void ocelli_set_thread_portable(int on) { threadPortable = on; }
int ocelli_thread_portable(void) { return threadPortable; }

int ocelli_kernel_isa(void) {
    if (threadPortable >= 0 ? threadPortable : forcePortable) return 0;
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
