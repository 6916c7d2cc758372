#if canImport(Accelerate)
import Accelerate
#endif
#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The platform BLAS, when there is one: OpenBLAS loaded at run time with `dlopen` on Linux (so
/// the package builds and runs without it), Accelerate on macOS. Set `OCELLI_BLAS=0` to ignore it.
public enum BLAS {
    typealias SgemmFn = @convention(c) (Int32, Int32, Int32, Int32, Int32, Int32, Float,
                                        UnsafePointer<Float>?, Int32, UnsafePointer<Float>?, Int32,
                                        Float, UnsafeMutablePointer<Float>?, Int32) -> Void
    typealias SetThreadsFn = @convention(c) (Int32) -> Void

    struct Library: @unchecked Sendable {
        let name: String
        let sgemm: SgemmFn
        let setThreads: SetThreadsFn?
    }

    static let library: Library? = {
        if ProcessInfo.processInfo.environment["OCELLI_BLAS"] == "0" { return nil }
        #if canImport(Accelerate)
        return Library(name: "accelerate", sgemm: { o, ta, tb, m, n, k, al, a, lda, b, ldb, be, c, ldc in
            cblas_sgemm(CBLAS_ORDER(rawValue: UInt32(o))!, CBLAS_TRANSPOSE(rawValue: UInt32(ta))!,
                        CBLAS_TRANSPOSE(rawValue: UInt32(tb))!, m, n, k, al, a, lda, b, ldb, be, c, ldc)
        }, setThreads: nil)
        #else
        for name in ["libopenblas.so.0", "libopenblas.so", "libopenblasp-r0.3.so"] {
            guard let h = dlopen(name, RTLD_NOW | RTLD_LOCAL) else { continue }
            guard let s = dlsym(h, "cblas_sgemm") else { continue }
            let t = dlsym(h, "openblas_set_num_threads")
            return Library(name: "openblas", sgemm: unsafeBitCast(s, to: SgemmFn.self),
                           setThreads: t.map { unsafeBitCast($0, to: SetThreadsFn.self) })
        }
        return nil
        #endif
    }()

    /// "openblas", "accelerate", or nil when no BLAS was found.
    public static var name: String? { library?.name }
    public static var isAvailable: Bool { library != nil }

    private final class ThreadState: @unchecked Sendable {
        let lock = NSLock()
        var threads = 0
    }
    private static let threadState = ThreadState()

    /// C[m,n] (+)= op(A) op(B) through cblas_sgemm; returns false if the strides do not map
    /// onto BLAS' transposes (the caller then uses the built-in kernel).
    static func sgemm(_ m: Int, _ n: Int, _ k: Int,
                      _ a: UnsafePointer<Float>, _ rsA: Int, _ csA: Int,
                      _ b: UnsafePointer<Float>, _ rsB: Int, _ csB: Int,
                      _ c: UnsafeMutablePointer<Float>, _ ldc: Int, accumulate: Bool) -> Bool {
        guard let lib = library else { return false }
        let rowMajor: Int32 = 101, noTrans: Int32 = 111, trans: Int32 = 112
        let (ta, lda): (Int32, Int) = csA == 1 && rsA >= Swift.max(1, k) ? (noTrans, rsA)
            : (rsA == 1 && csA >= Swift.max(1, m) ? (trans, csA) : (0, 0))
        let (tb, ldb): (Int32, Int) = csB == 1 && rsB >= Swift.max(1, n) ? (noTrans, rsB)
            : (rsB == 1 && csB >= Swift.max(1, k) ? (trans, csB) : (0, 0))
        guard ta != 0, tb != 0, m < Int(Int32.max), n < Int(Int32.max), k < Int(Int32.max) else { return false }
        if let set = lib.setThreads {
            let want = Parallel.threadCount
            threadState.lock.lock()
            if threadState.threads != want { set(Int32(want)); threadState.threads = want }
            threadState.lock.unlock()
        }
        lib.sgemm(rowMajor, ta, tb, Int32(m), Int32(n), Int32(k), 1, a, Int32(lda), b, Int32(ldb),
                  accumulate ? 1 : 0, c, Int32(ldc))
        return true
    }
}
