import Dispatch
import Foundation

/// How many threads Ocelli's kernels use, and the parallel-for they share.
///
/// The default is the `OCELLI_NUM_THREADS` environment variable, else the number of active cores.
/// Kernels split work so that every output element is computed by one thread in a fixed order:
/// the same seed and thread count give bitwise-identical results.
public enum Parallel {
    private final class Settings: @unchecked Sendable {
        let lock = NSLock()
        var threads: Int = {
            if let s = ProcessInfo.processInfo.environment["OCELLI_NUM_THREADS"], let n = Int(s), n > 0 {
                return n
            }
            return Swift.max(1, ProcessInfo.processInfo.activeProcessorCount)
        }()
    }
    private static let settings = Settings()

    /// The number of threads kernels split their work over (at least 1).
    public static var threadCount: Int {
        get { settings.lock.lock(); defer { settings.lock.unlock() }; return settings.threads }
        set {
            precondition(newValue >= 1, "Parallel.threadCount must be at least 1, got \(newValue)")
            settings.lock.lock(); settings.threads = newValue; settings.lock.unlock()
        }
    }

    /// Runs `body` with `threadCount` temporarily set to `n`.
    public static func withThreadCount<R>(_ n: Int, _ body: () throws -> R) rethrows -> R {
        let old = threadCount
        threadCount = n
        defer { threadCount = old }
        return try body()
    }

    /// Calls `body(chunk)` for `chunk` in `0..<chunks`, spread over the threads.
    @inline(__always)
    static func run(_ chunks: Int, _ body: (Int) -> Void) {
        if chunks <= 0 { return }
        if chunks == 1 { body(0); return }
        withoutActuallyEscaping(body) { body in
            let box = UnsafeSendable(body)
            DispatchQueue.concurrentPerform(iterations: chunks) { box.value($0) }
        }
    }

    /// Splits `0..<count` into at most `threadCount` contiguous ranges of at least `minimumChunk`
    /// elements (a multiple of `alignment`), and runs them in parallel.
    @inline(__always)
    static func forRanges(_ count: Int, minimumChunk: Int = 1, alignment: Int = 1,
                          _ body: (Range<Int>) -> Void) {
        if count <= 0 { return }
        let byWork = Swift.max(1, count / Swift.max(1, minimumChunk))
        let parts = Swift.min(threadCount, byWork)
        if parts <= 1 { body(0..<count); return }
        var chunk = (count + parts - 1) / parts
        chunk = (chunk + alignment - 1) / alignment * alignment
        let n = (count + chunk - 1) / chunk
        run(n) { i in
            let lo = i * chunk
            body(lo..<Swift.min(count, lo + chunk))
        }
    }
}

/// Wraps a value that is safe to share between the kernel threads (disjoint writes by design).
struct UnsafeSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
