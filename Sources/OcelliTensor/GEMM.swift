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
    /// Setting it changes the process-wide default; `withBackend` changes it for a block only.
    public static var backend: Backend {
        get { KernelScope.current.backend ?? state.backend }
        set { state.backend = available(newValue) }
    }

    private static func available(_ b: Backend) -> Backend { b == .blas && !BLAS.isAvailable ? .builtin : b }

    /// Runs `body` with the given backend: on this thread or task and the kernel threads working
    /// for it, not in code running concurrently elsewhere.
    public static func withBackend<R>(_ b: Backend, _ body: () throws -> R) rethrows -> R {
        try KernelScope.with({ $0.backend = available(b) }, body)
    }

    /// The SIMD family of the built-in kernel here: "avx2-fma" or "portable".
    public static var kernelISA: String { ocelli_kernel_isa() == 1 ? "avx2-fma" : "portable" }

    /// Makes the built-in kernel use its portable C path even on an AVX2 CPU, process-wide (for
    /// benchmarks); `withPortableKernel` does it for a block only.
    public static func forcePortableKernel(_ on: Bool) { ocelli_force_portable(on ? 1 : 0) }

    /// Runs `body` with the portable C kernels (`true`) or the CPU's best (`false`), on this
    /// thread or task and the kernel threads working for it.
    public static func withPortableKernel<R>(_ on: Bool, _ body: () throws -> R) rethrows -> R {
        try KernelScope.with({ $0.portable = on }, body)
    }

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


/// A right-hand matrix B (K × N) packed once in the layout of the built-in kernel, for products
/// that reuse it: the weights of every im2col chunk of a convolution, or inference weights kept
/// across calls. Immutable after creation, so threads may share it.
public final class PackedMatrix: @unchecked Sendable {
    public let k: Int
    public let n: Int
    let storage: UnsafeMutablePointer<Float>

    /// Packs B[p, j] = scalars[offset + p·rsB + j·csB].
    public init(k: Int, n: Int, scalars: [Float], offset: Int = 0, rsB: Int, csB: Int) {
        precondition(k >= 0 && n >= 0, "PackedMatrix: negative size \(k) x \(n)")
        precondition(k == 0 || n == 0 || offset + (k - 1) * rsB + (n - 1) * csB < scalars.count,
                     "PackedMatrix: \(k) x \(n) with strides (\(rsB), \(csB)) reads past \(scalars.count) values")
        self.k = k
        self.n = n
        let count = Swift.max(1, ocelli_packed_b_size(k, n))
        storage = UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<Float>.stride, alignment: 64)
            .bindMemory(to: Float.self, capacity: count)
        scalars.withUnsafeBufferPointer { ocelli_pack_b_full(k, n, $0.baseAddress! + offset, rsB, csB, storage) }
    }

    /// Packs a row-major [k, n] tensor.
    public convenience init(_ t: Tensor) {
        precondition(t.rank == 2, "PackedMatrix: expected a [K, N] matrix, got \(t.shape)")
        self.init(k: t.shape[0], n: t.shape[1], scalars: t.scalars, rsB: t.shape[1], csB: 1)
    }

    deinit { UnsafeMutableRawPointer(storage).deallocate() }
}

extension GEMM {
    /// C (+)= A · B with B packed in advance, on one thread (callers split the work).
    @inline(__always)
    static func sgemmPacked(m: Int, a: UnsafePointer<Float>, rsA: Int, csA: Int, packed b: PackedMatrix,
                            columns: Range<Int>? = nil, c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool = false) {
        let cols = columns ?? 0..<b.n
        ocelli_sgemm_packed(m, b.n, b.k, a, rsA, csA, b.storage, cols.lowerBound, cols.upperBound, c, ldc, accumulate ? 1 : 0)
    }

    /// C (+)= A · B with B packed in advance, split over the threads by rows (or by 16-column
    /// panels when there are few rows). Each C element is summed in the same order whatever the split.
    public static func sgemm(m: Int, a: UnsafePointer<Float>, rsA: Int, csA: Int, packed b: PackedMatrix,
                             c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool = false) {
        if m == 0 || b.n == 0 { return }
        let p = UnsafeSendable((a, c))
        let work = m * b.n * Swift.max(b.k, 1)
        if work < 1 << 17 || Parallel.threadCount == 1 {
            sgemmPacked(m: m, a: a, rsA: rsA, csA: csA, packed: b, c: c, ldc: ldc, accumulate: accumulate)
        } else if m >= 6 * Parallel.threadCount * 4 || b.n < 32 {
            Parallel.forRanges(m, minimumChunk: 6, alignment: 6) { r in
                let (a, c) = p.value
                sgemmPacked(m: r.count, a: a + r.lowerBound * rsA, rsA: rsA, csA: csA, packed: b,
                            c: c + r.lowerBound * ldc, ldc: ldc, accumulate: accumulate)
            }
        } else {
            Parallel.forRanges(b.n, minimumChunk: 16, alignment: 16) { r in
                let (a, c) = p.value
                sgemmPacked(m: m, a: a, rsA: rsA, csA: csA, packed: b, columns: r, c: c, ldc: ldc, accumulate: accumulate)
            }
        }
    }
}
