import COcelliKernels

/// Matrix multiply on strided operands, the engine under matmul, dense layers and convolutions.
///
/// `C[i, j] (+)= Σ_p A[i·rsA + p·csA] · B[p·rsB + j·csB]`, C row-major with leading dimension
/// `ldc`. The built-in path is a packed, cache-blocked 6×16 AVX2/FMA kernel (portable C
/// elsewhere), split over the threads by rows (or columns when there are few rows); the
/// platform BLAS is used instead when `GEMM.backend` is `.blas` and it is present.
public enum GEMM {
    public enum Backend: String, Sendable { case builtin, blas }

    private final class State: @unchecked Sendable { var backend: Backend = BLAS.isAvailable ? .blas : .builtin }
    private static let state = State()

    /// Which implementation runs: `.blas` (the default when a BLAS is present) or `.builtin`.
    public static var backend: Backend {
        get { state.backend }
        set { state.backend = newValue == .blas && !BLAS.isAvailable ? .builtin : newValue }
    }

    /// Runs `body` with the given backend.
    public static func withBackend<R>(_ b: Backend, _ body: () throws -> R) rethrows -> R {
        let old = backend
        backend = b
        defer { backend = old }
        return try body()
    }

    /// The SIMD family of the built-in kernel on this CPU: "avx2-fma" or "portable".
    public static var kernelISA: String { ocelli_kernel_isa() == 1 ? "avx2-fma" : "portable" }

    /// Makes the built-in kernel use its portable C path even on an AVX2 CPU (for tests).
    public static func forcePortableKernel(_ on: Bool) { ocelli_force_portable(on ? 1 : 0) }

    public static func sgemm(m: Int, n: Int, k: Int,
                             a: UnsafePointer<Float>, rsA: Int, csA: Int,
                             b: UnsafePointer<Float>, rsB: Int, csB: Int,
                             c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool = false) {
        if m == 0 || n == 0 { return }
        // BLAS only for large products: below ~512³ the built-in kernel is as fast, and
        // OpenBLAS's threads keep spinning (sched_yield) after each call, stealing the cores
        // from the next op during training.
        if backend == .blas, k > 0, m * n * k >= 1 << 27,
           BLAS.sgemm(m, n, k, a, rsA, csA, b, rsB, csB, c, ldc, accumulate: accumulate) { return }
        builtin(m: m, n: n, k: k, a: a, rsA: rsA, csA: csA, b: b, rsB: rsB, csB: csB, c: c, ldc: ldc, accumulate: accumulate)
    }

    /// The built-in kernel only. Every C element is summed in the same order whatever the split,
    /// so results are bitwise identical for any thread count.
    public static func builtin(m: Int, n: Int, k: Int,
                               a: UnsafePointer<Float>, rsA: Int, csA: Int,
                               b: UnsafePointer<Float>, rsB: Int, csB: Int,
                               c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool = false) {
        let p = UnsafeSendable((a, b, c))
        let work = m * n * Swift.max(k, 1)
        let threads = work < 1 << 17 ? 1 : Parallel.threadCount
        if threads == 1 {
            ocelli_sgemm(m, n, k, a, rsA, csA, b, rsB, csB, c, ldc, accumulate ? 1 : 0)
        } else if m >= n || n < 32 {
            Parallel.forRanges(m, minimumChunk: 6, alignment: 6) { r in
                let (a, b, c) = p.value
                ocelli_sgemm(r.count, n, k, a + r.lowerBound * rsA, rsA, csA, b, rsB, csB,
                             c + r.lowerBound * ldc, ldc, accumulate ? 1 : 0)
            }
        } else {
            Parallel.forRanges(n, minimumChunk: 16, alignment: 16) { r in
                let (a, b, c) = p.value
                ocelli_sgemm(m, r.count, k, a, rsA, csA, b + r.lowerBound * csB, rsB, csB,
                             c + r.lowerBound, ldc, accumulate ? 1 : 0)
            }
        }
    }
}

